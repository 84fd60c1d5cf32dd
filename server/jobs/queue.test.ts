import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createRepo } from '../admin.js';
import { openServerDb, type ServerDb } from '../db.js';
import { JobQueue } from './queue.js';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const ORIG = (n: number): string => n.toString(16).padStart(64, '0');
const MANI = (n: number): string => (n + 0x1000).toString(16).padStart(64, '0');

const dirs: string[] = [];
const dbs: ServerDb[] = [];
afterEach(() => {
  for (const d of dbs.splice(0)) d.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function memoryQueue(opts: ConstructorParameters<typeof JobQueue>[1] = {}): { q: JobQueue; clock: { t: number } } {
  const db = openServerDb(':memory:');
  dbs.push(db);
  createRepo(db, 'team/film');
  const clock = { t: 1_000_000 };
  return { q: new JobQueue(db, { now: () => clock.t, ...opts }), clock };
}

describe('JobQueue', () => {
  it('enqueue is idempotent per repository, original and kind', () => {
    const { q } = memoryQueue();
    const a = q.enqueue({ repo: 'team/film', kind: 'variants', original: ORIG(1), manifest: MANI(1), pathHint: 'a.mov' });
    const b = q.enqueue({ repo: 'team/film', kind: 'variants', original: ORIG(1), manifest: MANI(2), pathHint: 'renamed.mov' });
    expect(a).toEqual({ id: a!.id, created: true });
    expect(b).toEqual({ id: a!.id, created: false });
    expect(q.counts()).toEqual({ queued: 1, leased: 0, done: 0, failed: 0, dead: 0 });
    expect(q.get(a!.id)).toMatchObject({ repo: 'team/film', original: ORIG(1), manifest: MANI(1), pathHint: 'a.mov', state: 'queued', attempts: 0 });
    // another original is another job; an unknown repository none
    expect(q.enqueue({ repo: 'team/film', kind: 'variants', original: ORIG(2), manifest: MANI(2) })!.created).toBe(true);
    expect(q.enqueue({ repo: 'team/none', kind: 'variants', original: ORIG(3), manifest: MANI(3) })).toBeNull();
  });

  it('a leased job is not leased again while its heartbeats keep it; once they stop it is taken back', () => {
    const { q, clock } = memoryQueue({ leaseMs: 10_000 });
    q.enqueue({ repo: 'team/film', kind: 'variants', original: ORIG(1), manifest: MANI(1) });
    const a = q.lease('w1')!;
    expect(a.job).toMatchObject({ state: 'leased', attempts: 1, leaseOwner: 'w1', leaseUntil: clock.t + 10_000 });
    expect(q.lease('w2')).toBeNull();
    // heartbeats every 6 s for a minute: never expires
    for (let i = 0; i < 10; i++) {
      clock.t += 6_000;
      expect(q.heartbeat(a)).toBe(true);
      expect(q.lease('w2')).toBeNull();
    }
    // w1 dies: after the lease runs out, w2 gets the job (attempt 2)
    clock.t += 10_001;
    const b = q.lease('w2')!;
    expect(b.job).toMatchObject({ id: a.job.id, attempts: 2, leaseOwner: 'w2' });
    expect(b.job.lastError).toMatch(/lease of w1 expired/);
    // w1 comes back: its heartbeat, completion and failure are refused
    expect(q.heartbeat(a)).toBe(false);
    expect(q.complete(a)).toBe(false);
    expect(q.fail(a, 'late')).toBe('lost');
    expect(q.complete(b)).toBe(true);
    expect(q.get(a.job.id)).toMatchObject({ state: 'done', lastError: null, leaseOwner: null });
  });

  it('fails with exponential backoff, then dead after 3 failures with the last error kept; retry revives it', () => {
    const { q, clock } = memoryQueue({ backoffBaseMs: 1_000 });
    const { id } = q.enqueue({ repo: 'team/film', kind: 'variants', original: ORIG(1), manifest: MANI(1) })!;
    const l1 = q.lease('w')!;
    expect(q.fail(l1, 'ffmpeg: boom 1')).toBe('failed');
    expect(q.get(id)).toMatchObject({ state: 'failed', notBefore: clock.t + 1_000, lastError: 'ffmpeg: boom 1' });
    clock.t += 999;
    expect(q.lease('w')).toBeNull();
    clock.t += 1;
    const l2 = q.lease('w')!;
    expect(q.fail(l2, 'ffmpeg: boom 2')).toBe('failed');
    expect(q.get(id)!.notBefore).toBe(clock.t + 2_000); // doubled
    clock.t += 2_000;
    const l3 = q.lease('w')!;
    expect(l3.attempt).toBe(3);
    expect(q.fail(l3, 'ffmpeg: boom 3')).toBe('dead');
    expect(q.get(id)).toMatchObject({ state: 'dead', attempts: 3, lastError: 'ffmpeg: boom 3' });
    clock.t += 10 * 60_000;
    expect(q.lease('w')).toBeNull();
    expect(q.counts()).toMatchObject({ dead: 1 });
    expect(q.retry(id)).toBe(true);
    expect(q.get(id)).toMatchObject({ state: 'queued', attempts: 0 });
    expect(q.lease('w')!.job.id).toBe(id);
    expect(q.retry(id)).toBe(false); // leased: not retried
  });

  it('a job whose lease keeps expiring (it kills its worker) goes dead after 3 leases', () => {
    const { q, clock } = memoryQueue({ leaseMs: 1_000 });
    const { id } = q.enqueue({ repo: 'team/film', kind: 'variants', original: ORIG(1), manifest: MANI(1) })!;
    for (let i = 0; i < 3; i++) {
      expect(q.lease(`w${i}`)).not.toBeNull();
      clock.t += 1_001;
    }
    expect(q.lease('w9')).toBeNull();
    expect(q.get(id)).toMatchObject({ state: 'dead', attempts: 3 });
    expect(q.get(id)!.lastError).toMatch(/lease of w2 expired/);
  });

  it('a deferral (content still arriving) is not a failure: attempts unchanged, leased again after the delay', () => {
    const { q, clock } = memoryQueue({ maxDeferrals: 5 });
    const { id } = q.enqueue({ repo: 'team/film', kind: 'variants', original: ORIG(1), manifest: MANI(1) })!;
    for (let i = 0; i < 5; i++) {
      const l = q.lease('w')!;
      expect(l.attempt).toBe(1);
      expect(q.defer(l, 'chunk x is not stored yet', 500)).toBe('deferred');
      expect(q.get(id)).toMatchObject({ state: 'queued', attempts: 0, deferrals: i + 1, lastError: 'waiting: chunk x is not stored yet' });
      expect(q.lease('w')).toBeNull();
      clock.t += 500;
    }
    // past maxDeferrals, waiting counts as a failure
    const l = q.lease('w')!;
    expect(q.defer(l, 'still missing', 500)).toBe('failed');
    expect(q.get(id)!.lastError).toBe('gave up waiting: still missing');
  });

  it('lists jobs newest first with filters, and workers seen lately', () => {
    const { q, clock } = memoryQueue({ leaseMs: 1_000 });
    for (let i = 1; i <= 3; i++) q.enqueue({ repo: 'team/film', kind: 'variants', original: ORIG(i), manifest: MANI(i) });
    q.complete(q.lease('w')!);
    expect(q.list().map((j) => j.original)).toEqual([ORIG(3), ORIG(2), ORIG(1)]);
    expect(q.list({ state: 'done' }).map((j) => j.original)).toEqual([ORIG(1)]);
    expect(q.list({ repo: 'team/other' })).toEqual([]);
    q.registerWorker('a', 11, 'h');
    q.workerSeen('a', 7);
    q.workerSeen('a', null, 'done');
    expect(q.listWorkers()).toEqual([{ id: 'a', pid: 11, host: 'h', startedAt: clock.t, seenAt: clock.t, jobId: null, jobsDone: 1, jobsFailed: 0 }]);
    clock.t += 2_001;
    expect(q.listWorkers()).toEqual([]);
  });
});

/** One race of two worker processes over N queued jobs; checks no job was leased twice and all were done. */
async function raceTwoWorkers(): Promise<[number[], number[]]> {
  const dir = mkdtempSync(path.join(tmpdir(), 'dits-queue-race-'));
  dirs.push(dir);
  const file = path.join(dir, 'server.sqlite');
  const db = openServerDb(file);
  createRepo(db, 'team/film');
  const q = new JobQueue(db);
  const N = 1000;
  for (let i = 0; i < N; i++) q.enqueue({ repo: 'team/film', kind: 'variants', original: ORIG(i), manifest: MANI(i) });
  db.close();
  // each process leases until the queue is empty and prints the ids it got
  const script = `
    const { openServerDb } = await import(${JSON.stringify(path.join(ROOT, 'dist/server/db.js'))});
    const { JobQueue } = await import(${JSON.stringify(path.join(ROOT, 'dist/server/jobs/queue.js'))});
    const db = openServerDb(${JSON.stringify(file)});
    const q = new JobQueue(db);
    const got = [];
    // both start leasing at the same moment: a line on stdin says go
    process.stdout.write('ready\\n');
    await new Promise((r) => process.stdin.once('data', r));
    for (let l; (l = q.lease(process.argv[1])) !== null; ) { got.push(l.job.id); q.complete(l); }
    db.close();
    process.stdout.write(JSON.stringify(got) + '\\n');
    process.exit(0);
  `;
  const racers = ['w1', 'w2'].map((name) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, name], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    let readyNow: () => void;
    const ready = new Promise<void>((r, reject) => {
      readyNow = r;
      child.once('exit', (code) => reject(new Error(`racer exited ${code} before it was ready`)));
    });
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.startsWith('ready\n')) readyNow();
    });
    const got = new Promise<number[]>((resolve, reject) =>
      child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.slice('ready\n'.length)) as number[]) : reject(new Error(`racer exited ${code}`)))),
    );
    return { child, ready, got };
  });
  await Promise.all(racers.map((r) => r.ready));
  for (const r of racers) r.child.stdin.write('go\n');
  const [a, b] = await Promise.all(racers.map((r) => r.got));
  const all = [...a!, ...b!].sort((x, y) => x - y);
  expect(new Set(all).size).toBe(all.length); // no job leased twice
  expect(all.length).toBe(N);
  const check = openServerDb(file);
  dbs.push(check);
  expect(new JobQueue(check).counts()).toMatchObject({ done: N, queued: 0, leased: 0 });
  return [a!, b!];
}

it('two worker processes racing on one data dir never lease the same job', async () => {
  // Both must really race (each gets a share) for the test to mean anything; on a loaded
  // machine one process may be scheduled only after the other emptied the queue, so a race
  // where one got nothing is run again (every race is checked for double leases).
  let shares: [number, number] = [0, 0];
  for (let attempt = 0; attempt < 4 && (shares[0] === 0 || shares[1] === 0); attempt++) {
    const [a, b] = await raceTwoWorkers();
    shares = [a.length, b.length];
  }
  expect(shares[0]).toBeGreaterThan(0);
  expect(shares[1]).toBeGreaterThan(0);
});
