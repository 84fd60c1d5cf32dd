/**
 * The server's job queue, in its own SQLite (migration 3 in db.ts; no other broker).
 * Every statement on `jobs` and `workers` is here.
 *
 * Life of a job:
 *
 *   enqueue ─▶ queued ─lease─▶ leased ─complete─▶ done
 *                ▲               │ fail (attempts < max)      ─▶ failed (not_before = now + backoff) ─lease─▶ leased ...
 *                │               │ fail (attempts = max)      ─▶ dead   (last_error kept; retry() puts it back)
 *                └──defer────────┤ content not all stored yet ─▶ queued (not_before = now + delay; not a failure)
 *                                │ lease_until passes (worker gone) ─▶ failed, leasable at once (or dead at max)
 *
 * - enqueue is idempotent per (repository, original file id, kind): a second push of the
 *   same file version, on any branch, finds the job already there.
 * - lease is one UPDATE ... RETURNING inside an IMMEDIATE transaction: SQLite's write lock
 *   serialises leasers, in this process or another on the same data dir, so two workers
 *   never hold the same job. A lease is (job id, owner, attempt); heartbeat, complete, fail
 *   and defer act only while that lease is the job's current one, so a worker that lost its
 *   lease (it stalled past lease_until and another took the job) learns it from a false
 *   heartbeat and stops, and its late result is ignored.
 * - attempts counts leases taken; a job whose lease expired used one (a job that kills its
 *   worker every time goes dead after `maxAttempts`, instead of looping).
 * - Times are integers, ms since the epoch, from the injected clock.
 */
import os from 'node:os';
import type { ServerDb } from '../db.js';

export type JobState = 'queued' | 'leased' | 'done' | 'failed' | 'dead';
export const JOB_STATES: readonly JobState[] = ['queued', 'leased', 'done', 'failed', 'dead'];

/** 'variants': every variant of one original video (proxy, poster, sprite, preview); 'inspect': read a manifest that arrived unseen (video-manifests.ts). */
export type JobKind = 'variants' | 'inspect';

export interface Job {
  id: number;
  repo: string;
  kind: JobKind;
  /** the original file's id (BLAKE3 of the whole file) */
  original: string;
  /** the manifest that describes it (its chunks) */
  manifest: string;
  pathHint: string | null;
  state: JobState;
  attempts: number;
  deferrals: number;
  leaseOwner: string | null;
  leaseUntil: number | null;
  heartbeatAt: number | null;
  notBefore: number;
  lastError: string | null;
  createdAt: number;
  updatedAt: number;
}

export interface Lease {
  job: Job;
  owner: string;
  /** the job's attempts count when leased: identifies this lease */
  attempt: number;
}

export interface JobQueueOptions {
  now?: () => number;
  /** How long a lease lasts without a heartbeat (default 30 s). */
  leaseMs?: number;
  /** Failures (leases that did not complete) before a job is dead (default 3). */
  maxAttempts?: number;
  /** Delay after the first failure; doubled after each next one (default 30 s). */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** Deferrals before waiting for content counts as a failure (default 200: hours at the capped delay). */
  maxDeferrals?: number;
}

export interface WorkerInfo {
  id: string;
  pid: number;
  host: string;
  startedAt: number;
  seenAt: number;
  jobId: number | null;
  jobsDone: number;
  jobsFailed: number;
}

interface JobRow {
  id: number;
  repo: string;
  kind: string;
  original: string;
  manifest: string;
  path_hint: string | null;
  state: JobState;
  attempts: number;
  deferrals: number;
  lease_owner: string | null;
  lease_until: number | null;
  heartbeat_at: number | null;
  not_before: number;
  last_error: string | null;
  created_at: number;
  updated_at: number;
}

const JOB_COLUMNS = `j.id, r.name AS repo, j.kind, j.original, j.manifest, j.path_hint, j.state, j.attempts, j.deferrals,
  j.lease_owner, j.lease_until, j.heartbeat_at, j.not_before, j.last_error, j.created_at, j.updated_at`;

function toJob(r: JobRow): Job {
  return {
    id: r.id,
    repo: r.repo,
    kind: r.kind as JobKind,
    original: r.original,
    manifest: r.manifest,
    pathHint: r.path_hint,
    state: r.state,
    attempts: r.attempts,
    deferrals: r.deferrals,
    leaseOwner: r.lease_owner,
    leaseUntil: r.lease_until,
    heartbeatAt: r.heartbeat_at,
    notBefore: r.not_before,
    lastError: r.last_error,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** Error texts are kept short in the table (ffmpeg's tail is in the variant record, not here). */
const MAX_ERROR_CHARS = 4000;
const clip = (s: string): string => (s.length > MAX_ERROR_CHARS ? s.slice(0, MAX_ERROR_CHARS - 1) + '…' : s);

export class JobQueue {
  readonly now: () => number;
  readonly leaseMs: number;
  readonly maxAttempts: number;
  private readonly backoffBaseMs: number;
  private readonly backoffMaxMs: number;
  private readonly maxDeferrals: number;

  constructor(
    readonly db: ServerDb,
    options: JobQueueOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.leaseMs = options.leaseMs ?? 30_000;
    this.maxAttempts = options.maxAttempts ?? 3;
    this.backoffBaseMs = options.backoffBaseMs ?? 30_000;
    this.backoffMaxMs = options.backoffMaxMs ?? 60 * 60_000;
    this.maxDeferrals = options.maxDeferrals ?? 200;
  }

  /** Delay before the next lease after the `failures`-th failure. */
  backoffMs(failures: number): number {
    return Math.min(this.backoffMaxMs, this.backoffBaseMs * 2 ** Math.max(0, failures - 1));
  }

  /**
   * Adds a job unless one exists for (repo, original, kind); `created` says which. Returns
   * null when the repository does not exist (deleted meanwhile).
   */
  enqueue(o: { repo: string; kind: JobKind; original: string; manifest: string; pathHint?: string | null }): { id: number; created: boolean } | null {
    return this.db.tx(() => {
      const repo = this.db.stmt('SELECT id FROM repos WHERE name = ?').get(o.repo) as { id: number } | undefined;
      if (repo === undefined) return null;
      const now = this.now();
      const inserted = this.db
        .stmt(
          `INSERT INTO jobs (repo_id, kind, original, manifest, path_hint, state, not_before, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, 'queued', 0, ?, ?) ON CONFLICT (repo_id, original, kind) DO NOTHING`,
        )
        .run(repo.id, o.kind, o.original, o.manifest, o.pathHint ?? null, now, now);
      if (inserted.changes === 1) return { id: Number(inserted.lastInsertRowid), created: true };
      const row = this.db.stmt('SELECT id FROM jobs WHERE repo_id = ? AND original = ? AND kind = ?').get(repo.id, o.original, o.kind) as { id: number };
      return { id: row.id, created: false };
    });
  }

  /** Expired leases (their worker stopped heartbeating) back to the queue, or dead at the limit. */
  reclaimExpired(): number {
    const now = this.now();
    return this.db
      .stmt(
        `UPDATE jobs SET state = CASE WHEN attempts >= ? THEN 'dead' ELSE 'failed' END,
           last_error = 'the lease of ' || COALESCE(lease_owner, '?') || ' expired (the worker stopped or stalled)',
           lease_owner = NULL, lease_until = NULL, not_before = ?, updated_at = ?
         WHERE state = 'leased' AND lease_until < ?`,
      )
      .run(this.maxAttempts, now, now, now).changes;
  }

  /** The next ready job, leased to `owner` for `leaseMs`; null when none is ready. */
  lease(owner: string, opts: { kinds?: readonly JobKind[] } = {}): Lease | null {
    return this.db.tx(() => {
      this.reclaimExpired();
      const now = this.now();
      const kinds = opts.kinds ?? ['variants', 'inspect'];
      const placeholders = kinds.map(() => '?').join(', ');
      const row = this.db
        .stmt(
          `UPDATE jobs SET state = 'leased', attempts = attempts + 1, lease_owner = ?, lease_until = ?, heartbeat_at = ?, updated_at = ?
           WHERE id = (SELECT id FROM jobs WHERE state IN ('queued', 'failed') AND not_before <= ? AND kind IN (${placeholders})
                       ORDER BY not_before, id LIMIT 1)
           RETURNING id`,
        )
        .get(owner, now + this.leaseMs, now, now, now, ...kinds) as { id: number } | undefined;
      if (row === undefined) return null;
      const job = this.get(row.id)!;
      return { job, owner, attempt: job.attempts };
    });
  }

  /** Extends the lease; false when it is no longer this worker's (the handler must stop). */
  heartbeat(lease: Lease): boolean {
    const now = this.now();
    return (
      this.db
        .stmt(`UPDATE jobs SET lease_until = ?, heartbeat_at = ?, updated_at = ? WHERE id = ? AND state = 'leased' AND lease_owner = ? AND attempts = ?`)
        .run(now + this.leaseMs, now, now, lease.job.id, lease.owner, lease.attempt).changes === 1
    );
  }

  /** Done; false when the lease was lost (the result is then ignored). */
  complete(lease: Lease): boolean {
    const now = this.now();
    return (
      this.db
        .stmt(
          `UPDATE jobs SET state = 'done', lease_owner = NULL, lease_until = NULL, last_error = NULL, updated_at = ?
           WHERE id = ? AND state = 'leased' AND lease_owner = ? AND attempts = ?`,
        )
        .run(now, lease.job.id, lease.owner, lease.attempt).changes === 1
    );
  }

  /** A failed attempt: retried after a backoff, or dead after `maxAttempts`. 'lost' when the lease was not ours any more. */
  fail(lease: Lease, error: string): 'failed' | 'dead' | 'lost' {
    return this.db.tx(() => {
      const now = this.now();
      const dead = lease.attempt >= this.maxAttempts;
      const changed = this.db
        .stmt(
          `UPDATE jobs SET state = ?, last_error = ?, not_before = ?, lease_owner = NULL, lease_until = NULL, updated_at = ?
           WHERE id = ? AND state = 'leased' AND lease_owner = ? AND attempts = ?`,
        )
        .run(dead ? 'dead' : 'failed', clip(error), dead ? 0 : now + this.backoffMs(lease.attempt), now, lease.job.id, lease.owner, lease.attempt).changes;
      if (changed !== 1) return 'lost';
      return dead ? 'dead' : 'failed';
    });
  }

  /**
   * Not ready yet (the content is still arriving): back to the queue after `delayMs`,
   * the attempt not counted. After `maxDeferrals` it counts as a failure with `reason`.
   */
  defer(lease: Lease, reason: string, delayMs: number): 'deferred' | 'failed' | 'dead' | 'lost' {
    if (lease.job.deferrals + 1 > this.maxDeferrals) return this.fail(lease, `gave up waiting: ${reason}`);
    const now = this.now();
    const changed = this.db
      .stmt(
        `UPDATE jobs SET state = 'queued', attempts = attempts - 1, deferrals = deferrals + 1, last_error = ?, not_before = ?,
           lease_owner = NULL, lease_until = NULL, updated_at = ?
         WHERE id = ? AND state = 'leased' AND lease_owner = ? AND attempts = ?`,
      )
      .run(clip(`waiting: ${reason}`), now + delayMs, now, lease.job.id, lease.owner, lease.attempt).changes;
    return changed === 1 ? 'deferred' : 'lost';
  }

  /** A dead or failed job back to the queue with its attempts reset; false for other states. */
  retry(id: number): boolean {
    const now = this.now();
    return (
      this.db
        .stmt(`UPDATE jobs SET state = 'queued', attempts = 0, deferrals = 0, not_before = 0, updated_at = ? WHERE id = ? AND state IN ('dead', 'failed')`)
        .run(now, id).changes === 1
    );
  }

  get(id: number): Job | undefined {
    const r = this.db.stmt(`SELECT ${JOB_COLUMNS} FROM jobs j JOIN repos r ON r.id = j.repo_id WHERE j.id = ?`).get(id) as JobRow | undefined;
    return r === undefined ? undefined : toJob(r);
  }

  /** Newest first; `state` and `repo` filter. */
  list(opts: { state?: JobState; repo?: string; limit?: number } = {}): Job[] {
    const limit = Math.min(Math.max(1, Math.floor(opts.limit ?? 100)), 10_000);
    const rows = this.db
      .stmt(
        `SELECT ${JOB_COLUMNS} FROM jobs j JOIN repos r ON r.id = j.repo_id
         WHERE (? IS NULL OR j.state = ?) AND (? IS NULL OR r.name = ?) ORDER BY j.id DESC LIMIT ?`,
      )
      .all(opts.state ?? null, opts.state ?? null, opts.repo ?? null, opts.repo ?? null, limit) as JobRow[];
    return rows.map(toJob);
  }

  /** How many jobs are in each state (every state present, 0 when none). */
  counts(): Record<JobState, number> {
    const out = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
    for (const r of this.db.stmt('SELECT state, COUNT(*) AS n FROM jobs GROUP BY state').all() as { state: JobState; n: number }[]) out[r.state] = r.n;
    return out;
  }

  // ---- workers (for status) ----

  registerWorker(id: string, pid = process.pid, host = os.hostname()): void {
    const now = this.now();
    // rows of workers killed without a goodbye, long gone
    this.db.stmt('DELETE FROM workers WHERE seen_at < ?').run(now - 24 * 60 * 60_000);
    this.db
      .stmt(
        `INSERT INTO workers (id, pid, host, started_at, seen_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET pid = excluded.pid, host = excluded.host, started_at = excluded.started_at, seen_at = excluded.seen_at, job_id = NULL`,
      )
      .run(id, pid, host, now, now);
  }

  workerSeen(id: string, jobId: number | null, outcome?: 'done' | 'failed'): void {
    this.db
      .stmt(
        `UPDATE workers SET seen_at = ?, job_id = ?, jobs_done = jobs_done + ?, jobs_failed = jobs_failed + ? WHERE id = ?`,
      )
      .run(this.now(), jobId, outcome === 'done' ? 1 : 0, outcome === 'failed' ? 1 : 0, id);
  }

  removeWorker(id: string): void {
    this.db.stmt('DELETE FROM workers WHERE id = ?').run(id);
  }

  /** Workers seen within `withinMs` (default: two leases), newest first. */
  listWorkers(withinMs = 2 * this.leaseMs): WorkerInfo[] {
    const rows = this.db.stmt('SELECT * FROM workers WHERE seen_at >= ? ORDER BY started_at DESC, id').all(this.now() - withinMs) as {
      id: string;
      pid: number;
      host: string;
      started_at: number;
      seen_at: number;
      job_id: number | null;
      jobs_done: number;
      jobs_failed: number;
    }[];
    return rows.map((r) => ({ id: r.id, pid: r.pid, host: r.host, startedAt: r.started_at, seenAt: r.seen_at, jobId: r.job_id, jobsDone: r.jobs_done, jobsFailed: r.jobs_failed }));
  }
}
