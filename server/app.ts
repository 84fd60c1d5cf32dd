/**
 * The Dits server as a Hono app, with no I/O of its own beyond the database it is
 * given: tests drive it through `app.request()`, main.ts puts it on a socket.
 *
 * Order of the pipeline: request log (one line per request) -> `GET /health` (the only
 * unauthenticated route) -> authentication (401 with `WWW-Authenticate: Basic` so git's
 * credential machinery prompts) -> feature routers from `server/routes/*.ts`, then any
 * `deps.routes` the caller adds. Errors become `{message, code}` JSON: HttpError with
 * its status, DitsUserError from admin.ts mapped by code, anything else 500 (logged,
 * not shown).
 */
import { Hono } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { isUserError } from '../src/errors.js';
import type { AccessTracker } from './access-tracker.js';
import { createAuthenticator, tokenFromAuthorization } from './auth.js';
import type { ServerDb } from './db.js';
import { errorBody, HttpError, type AppEnv, type RouteDeps, type RouteModule } from './http.js';
import { silentLogger, type Logger } from './logger.js';
import { jobRoutes } from './routes/jobs.js';
import { lockRoutes } from './routes/locks.js';
import { repoRoutes } from './routes/repos.js';
import type { StorageBackend } from './storage-backend.js';

export interface AppDeps {
  db: ServerDb;
  clock?: () => Date;
  logger?: Logger;
  /** Read tracking, handed to route modules (push/fetch record pack and file reads). */
  access?: AccessTracker;
  /** Largest JSON request body, in bytes. */
  maxJsonBytes?: number;
  /** Monotonic milliseconds, for request durations. */
  monotonicMs?: () => number;
  /**
   * Where repositories' content lives (main.ts passes the one its storage routes use).
   * Without it the app cannot delete content, so deleting a repository needs
   * `?keep_content=1` (and says so).
   */
  storage?: StorageBackend;
  /** Feature routers added after the built-in ones (e.g. the `dits::http://` remote). */
  routes?: readonly RouteModule[];
  /** How often a token's last-used time is written, at most. */
  tokenLastUsedResolutionMs?: number;
}

/** The built-in feature routers, in the order they are mounted. */
export const BUILTIN_ROUTES: readonly RouteModule[] = [repoRoutes, lockRoutes, jobRoutes];

export const DEFAULT_MAX_JSON_BYTES = 1024 * 1024;

const USER_ERROR_STATUS: Record<string, ContentfulStatusCode> = {
  'repo-exists': 409,
  'repo-content-exists': 409,
  'repo-content-delete-failed': 500,
  'repo-storage-unreachable': 503,
  'user-exists': 409,
  'token-exists': 409,
  'repo-not-found': 404,
  'user-not-found': 404,
  'token-not-found': 404,
  'grant-not-found': 404,
};

export function createApp(deps: AppDeps): Hono<AppEnv> {
  const routeDeps: RouteDeps = {
    db: deps.db,
    clock: deps.clock ?? (() => new Date()),
    logger: deps.logger ?? silentLogger,
    access: deps.access,
    maxJsonBytes: deps.maxJsonBytes ?? DEFAULT_MAX_JSON_BYTES,
    storage: deps.storage,
  };
  const { logger } = routeDeps;
  const monotonic = deps.monotonicMs ?? (() => performance.now());
  const auth = createAuthenticator(deps.db, { clock: routeDeps.clock, lastUsedResolutionMs: deps.tokenLastUsedResolutionMs });
  const app = new Hono<AppEnv>();

  app.use('*', async (c, next) => {
    const start = monotonic();
    await next();
    const ms = Math.round((monotonic() - start) * 100) / 100;
    const principal = c.get('principal') as AppEnv['Variables']['principal'] | undefined;
    logger.info('request', {
      method: c.req.method,
      path: c.req.path,
      status: c.res.status,
      ms,
      user: principal?.name ?? null,
    });
  });

  app.onError((err, c) => {
    if (err instanceof HttpError) return c.json(errorBody(err), err.status);
    if (isUserError(err)) return c.json({ message: err.message, code: err.code }, USER_ERROR_STATUS[err.code] ?? 400);
    logger.error('unhandled error', { method: c.req.method, path: c.req.path, err });
    return c.json({ message: 'internal server error', code: 'internal' }, 500);
  });

  app.notFound((c) => c.json({ message: 'not found', code: 'not-found' }, 404));

  app.get('/health', (c) => c.json({ status: 'ok' }));

  app.use('*', async (c, next) => {
    const token = tokenFromAuthorization(c.req.header('authorization'));
    const principal = token === undefined ? undefined : auth.authenticate(token);
    if (principal === undefined) {
      c.header('WWW-Authenticate', 'Basic realm="dits"');
      return c.json(
        { message: token === undefined ? 'authentication required' : 'invalid or revoked token', code: 'auth-required' },
        401,
      );
    }
    c.set('principal', principal);
    await next();
  });

  for (const module of [...BUILTIN_ROUTES, ...(deps.routes ?? [])]) app.route('/', module(routeDeps));
  return app;
}
