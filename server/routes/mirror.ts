/**
 * The scheduled mirror of the server's storage (server/mirror-scheduler.ts), site admins only:
 *
 *   GET  /api/mirror                {configured: false} or the state: mirror, schedule, nextRun,
 *                                   running, lastRun {trigger, startedAt, finishedAt, result
 *                                   (ok|partial|failed|interrupted), error, repos[]}
 *   POST /api/mirror/run[?wait=0]   a run now (the one the schedule makes; joins one running);
 *                                   waits for it and answers {run}, or with wait=0 answers
 *                                   202 {started: true} at once. 409 when no mirror is set.
 */
import { Hono } from 'hono';
import { HttpError, type AppEnv, type RouteModule } from '../http.js';
import type { MirrorScheduler } from '../mirror-scheduler.js';

export function mirrorRoutes(scheduler: MirrorScheduler | null): RouteModule {
  return (deps) => {
    const app = new Hono<AppEnv>();
    const admin = (c: { get(k: 'principal'): AppEnv['Variables']['principal'] }): void => {
      if (!c.get('principal').isAdmin) throw new HttpError(403, 'only site admins can see or run the mirror', 'forbidden');
    };
    app.get('/api/mirror', (c) => {
      admin(c);
      return c.json(scheduler === null ? { configured: false } : { configured: true, ...scheduler.state() });
    });
    app.post('/api/mirror/run', async (c) => {
      admin(c);
      if (scheduler === null) throw new HttpError(409, 'no mirror is set: start the server with --mirror <folder or s3:// URL>', 'mirror-not-configured');
      const run = scheduler.runNow('admin');
      if (c.req.query('wait') === '0') {
        run.catch((err: unknown) => deps.logger.error('mirror run failed', { err }));
        return c.json({ started: true }, 202);
      }
      return c.json({ run: await run });
    });
    return app;
  };
}
