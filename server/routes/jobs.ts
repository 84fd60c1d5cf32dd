/**
 * The job queue seen from outside (site admins only, like /api/storage):
 *
 *   GET  /api/jobs[?state=&repo=&limit=]  {counts: {queued, leased, done, failed, dead}, workers, jobs}
 *                                         jobs newest first: id, repo, kind, original, manifest, state,
 *                                         attempts, last_error, not_before, lease_owner, lease_until, ...
 *   POST /api/jobs/:id/retry              a dead (or failed) job queued again, attempts reset -> {job};
 *                                         404 no such job, 409 not dead or failed
 */
import { Hono } from 'hono';
import { JobQueue, JOB_STATES, type Job, type JobState } from '../jobs/queue.js';
import { HttpError, type AppEnv, type RouteDeps } from '../http.js';

function jobJson(j: Job) {
  const iso = (ms: number | null) => (ms === null || ms === 0 ? null : new Date(ms).toISOString());
  return {
    id: j.id,
    repo: j.repo,
    kind: j.kind,
    original: j.original,
    manifest: j.manifest,
    path_hint: j.pathHint,
    state: j.state,
    attempts: j.attempts,
    deferrals: j.deferrals,
    last_error: j.lastError,
    not_before: iso(j.notBefore),
    lease_owner: j.leaseOwner,
    lease_until: iso(j.leaseUntil),
    heartbeat_at: iso(j.heartbeatAt),
    created_at: iso(j.createdAt),
    updated_at: iso(j.updatedAt),
  };
}

export function jobRoutes(deps: RouteDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const queue = new JobQueue(deps.db, { now: () => deps.clock().getTime() });
  const admin = (c: { get(k: 'principal'): AppEnv['Variables']['principal'] }): void => {
    if (!c.get('principal').isAdmin) throw new HttpError(403, 'only site admins can see the job queue', 'forbidden');
  };

  app.get('/api/jobs', (c) => {
    admin(c);
    const state = c.req.query('state');
    if (state !== undefined && !(JOB_STATES as readonly string[]).includes(state)) throw new HttpError(400, `state must be one of ${JOB_STATES.join(', ')}`, 'invalid-request');
    const limitText = c.req.query('limit');
    const limit = limitText === undefined ? 100 : Number(limitText);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new HttpError(400, 'limit must be 1..1000', 'invalid-request');
    const jobs = queue.list({ state: state as JobState | undefined, repo: c.req.query('repo'), limit });
    const workers = queue.listWorkers().map((w) => ({ id: w.id, pid: w.pid, host: w.host, job: w.jobId, jobs_done: w.jobsDone, jobs_failed: w.jobsFailed, seen_at: new Date(w.seenAt).toISOString() }));
    return c.json({ counts: queue.counts(), workers, jobs: jobs.map(jobJson) });
  });

  app.post('/api/jobs/:id/retry', (c) => {
    admin(c);
    const id = Number(c.req.param('id'));
    if (!Number.isSafeInteger(id) || id < 1) throw new HttpError(400, 'a job id is a positive integer', 'invalid-request');
    const job = queue.get(id);
    if (job === undefined) throw new HttpError(404, `no job ${id}`, 'job-not-found');
    if (!queue.retry(id)) throw new HttpError(409, `job ${id} is ${job.state}: only dead or failed jobs are retried`, 'job-not-retryable');
    return c.json({ job: jobJson(queue.get(id)!) });
  });
  return app;
}
