/**
 * A worker: leases a job, runs its handler with heartbeats, then completes, fails or defers
 * it; again until stopped. Several run in one process (`git dits worker --workers N`) or
 * one per child process (`git dits serve --workers N`, see serve.ts).
 *
 * - Heartbeats every `heartbeatMs` (default a third of the lease). A heartbeat refused
 *   (the lease expired and another worker took the job) aborts the handler; its result is
 *   ignored, so two workers never both finish one job.
 * - RemoteContentNotReadyError from the handler: deferred (the push is still uploading),
 *   with a delay doubling from 5 s to 5 min; not a failure.
 * - Stopping (the signal): the running handler is aborted and its job handed back at once
 *   (deferred with no delay), so the next worker takes it without waiting for the lease.
 * - A crash (SIGKILL, power loss) leaves the lease to expire; the next lease() takes it back.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { RemoteContentNotReadyError } from '../../src/remote/content/remote-file-reader.js';
import type { Logger } from '../logger.js';
import type { StorageBackend } from '../storage-backend.js';
import type { JobHandler } from './handlers.js';
import type { JobKind, JobQueue, Lease } from './queue.js';

export interface WorkerOptions {
  id: string;
  queue: JobQueue;
  backend: StorageBackend;
  handlers: Record<JobKind, JobHandler>;
  /** Stops the worker (the running job is handed back). */
  signal: AbortSignal;
  /** Per-attempt work directories are made under it. */
  workRoot: string;
  indexCacheDir: string;
  logger: Logger;
  env?: NodeJS.ProcessEnv;
  heartbeatMs?: number;
  /** Wait between polls of an empty queue (default 1 s). */
  pollMs?: number;
  /**
   * Diagnostics and tests: hold each lease this long (heartbeating) before the handler
   * starts, so a job can be watched, or its worker killed, mid-job. 0 by default.
   */
  holdMs?: number;
}

export const DEFER_MIN_MS = 5_000;
export const DEFER_MAX_MS = 5 * 60_000;

export async function runWorker(o: WorkerOptions): Promise<void> {
  const { queue, id, logger } = o;
  const heartbeatMs = o.heartbeatMs ?? Math.max(100, Math.floor(queue.leaseMs / 3));
  const pollMs = o.pollMs ?? 1_000;
  queue.registerWorker(id);
  logger.info('worker started', { worker: id, pid: process.pid });
  try {
    while (!o.signal.aborted) {
      const lease = queue.lease(id);
      queue.workerSeen(id, lease?.job.id ?? null);
      if (lease === null) {
        await sleep(pollMs, undefined, { signal: o.signal }).catch(() => {});
        continue;
      }
      await runOne(o, lease, heartbeatMs);
    }
  } finally {
    queue.removeWorker(id);
    logger.info('worker stopped', { worker: id });
  }
}

async function runOne(o: WorkerOptions, lease: Lease, heartbeatMs: number): Promise<void> {
  const { queue, id, logger } = o;
  const job = lease.job;
  const ac = new AbortController();
  let lost = false;
  const stop = (): void => ac.abort(new Error('the worker is stopping'));
  o.signal.addEventListener('abort', stop, { once: true });
  const heartbeat = (): void => {
    if (lost) return;
    if (!queue.heartbeat(lease)) {
      lost = true;
      logger.warn('lease lost: another worker has the job', { worker: id, job: job.id });
      ac.abort(new Error('the lease was lost'));
      return;
    }
    queue.workerSeen(id, job.id);
  };
  const timer = setInterval(heartbeat, heartbeatMs);
  let workDir: string | undefined;
  logger.info('job leased', { worker: id, job: job.id, kind: job.kind, repo: job.repo, attempt: lease.attempt });
  try {
    if (o.holdMs) await sleep(o.holdMs, undefined, { signal: ac.signal });
    const handler = o.handlers[job.kind];
    if (handler === undefined) throw new Error(`no handler for jobs of kind '${job.kind}'`);
    workDir = await mkdtemp(path.join(o.workRoot, `job-${job.id}-`));
    await handler(job, {
      signal: ac.signal,
      heartbeat,
      storage: await o.backend.forRepo(job.repo),
      repo: job.repo,
      queue,
      workDir,
      indexCacheDir: o.indexCacheDir,
      env: o.env ?? process.env,
      logger,
    });
    if (lost) return;
    if (queue.complete(lease)) {
      queue.workerSeen(id, null, 'done');
      logger.info('job done', { worker: id, job: job.id });
    }
  } catch (err) {
    if (lost) return;
    const message = err instanceof Error ? err.message : String(err);
    if (o.signal.aborted) {
      queue.defer(lease, 'handed back by a stopping worker', 0);
      logger.info('job handed back', { worker: id, job: job.id });
    } else if (err instanceof RemoteContentNotReadyError) {
      const delay = Math.min(DEFER_MAX_MS, DEFER_MIN_MS * 2 ** job.deferrals);
      const r = queue.defer(lease, message, delay);
      logger.info('job deferred', { worker: id, job: job.id, outcome: r, delayMs: delay, reason: message });
    } else {
      const r = queue.fail(lease, message);
      queue.workerSeen(id, null, 'failed');
      logger.warn('job failed', { worker: id, job: job.id, outcome: r, attempt: lease.attempt, error: message });
    }
  } finally {
    clearInterval(timer);
    o.signal.removeEventListener('abort', stop);
    if (workDir !== undefined) await rm(workDir, { recursive: true, force: true }).catch(() => {});
  }
}
