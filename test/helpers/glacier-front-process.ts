/**
 * s3rver and the Glacier front (src/transfer/testing/glacier-front.ts) in their own
 * process, for end-to-end tests: those drive git synchronously (spawnSync blocks the
 * test's event loop), so an in-process front would never answer. The test controls the
 * front over IPC: every method is async and answers once the front has done it.
 * Runs the compiled front (dist/), which vitest's globalSetup builds first.
 */
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from './git-env.js';
import type { FrontCounts, FrontOp, RestoreView } from '../../src/transfer/testing/glacier-front.js';

export interface GlacierFrontProcess {
  /** The front's endpoint (set it as dits.s3.endpoint); s3rver's is not needed by tests. */
  endpoint: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  counts(): Promise<FrontCounts>;
  resetCounts(): Promise<void>;
  classOf(key: string, bucket?: string): Promise<string>;
  setClass(key: string, storageClass: string, bucket: string): Promise<void>;
  restoreOf(key: string, bucket?: string): Promise<RestoreView | null>;
  setRestoreDelay(ms: number): Promise<void>;
  finishRestores(): Promise<void>;
  failNext(op: FrontOp, status: number | 'cut' | 'cut-after', code?: string, opts?: { times?: number; key?: string }): Promise<void>;
  /** Moves the front's clock (restore finishes and expiries) `ms` forward from now on. */
  advanceClock(ms: number): Promise<void>;
  close(): Promise<void>;
}

const CHILD = `
  const { startS3rver } = await import(${JSON.stringify(path.join(ROOT, 'dist/src/transfer/testing/s3rver.js'))});
  const { startGlacierFront } = await import(${JSON.stringify(path.join(ROOT, 'dist/src/transfer/testing/glacier-front.js'))});
  const opts = JSON.parse(process.argv[2]);
  const s3 = await startS3rver({ buckets: opts.buckets, directory: opts.directory });
  let offset = 0;
  const front = await startGlacierFront(s3.endpoint, { restoreDelayMs: opts.restoreDelayMs, minPartSize: opts.minPartSize, clock: () => Date.now() + offset });
  process.on('message', async (m) => {
    try {
      let value;
      if (m.op === 'counts') value = { ...front.counts };
      else if (m.op === 'advanceClock') offset += m.args[0];
      else value = await front[m.op](...m.args.map((a) => (a === null ? undefined : a))); // IPC turns undefined into null
      process.send({ id: m.id, ok: true, value: value === undefined ? null : value });
    } catch (err) {
      process.send({ id: m.id, ok: false, error: String(err && err.message || err) });
    }
  });
  process.on('SIGTERM', async () => { await front.close(); await s3.close(); process.exit(0); });
  process.send({ ready: front.endpoint });
`;

export async function startGlacierFrontProcess(buckets: string[], opts: { restoreDelayMs?: number; minPartSize?: number } = {}): Promise<GlacierFrontProcess> {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'dits-glacier-'));
  const script = path.join(directory, 'front.mjs');
  const dataDir = path.join(directory, 'data');
  fs.mkdirSync(dataDir);
  fs.writeFileSync(script, CHILD);
  const child: ChildProcess = fork(script, [JSON.stringify({ buckets, directory: dataDir, restoreDelayMs: opts.restoreDelayMs ?? 0, minPartSize: opts.minPartSize })], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const endpoint = await new Promise<string>((resolve, reject) => {
    child.once('message', (m: { ready?: string }) => (m.ready ? resolve(m.ready) : reject(new Error('front did not start'))));
    child.once('exit', (c) => reject(new Error(`the Glacier front exited (${c}) before listening`)));
  });
  let next = 0;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  child.on('message', (m: { id?: number; ok?: boolean; value?: unknown; error?: string }) => {
    if (m.id === undefined) return;
    const p = pending.get(m.id);
    pending.delete(m.id);
    if (m.ok) p?.resolve(m.value);
    else p?.reject(new Error(m.error));
  });
  const call = <T>(op: string, ...args: unknown[]): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const id = next++;
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      child.send({ id, op, args });
    });
  return {
    endpoint,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    counts: () => call<FrontCounts>('counts'),
    resetCounts: () => call('resetCounts'),
    classOf: (key, bucket) => call<string>('classOf', key, bucket),
    setClass: (key, storageClass, bucket) => call('setClass', key, storageClass, bucket),
    restoreOf: (key, bucket) => call<RestoreView | null>('restoreOf', key, bucket),
    setRestoreDelay: (ms) => call('setRestoreDelay', ms),
    finishRestores: () => call('finishRestores'),
    failNext: (op, status, code, o) => call('failNext', op, status, code, o),
    advanceClock: (ms) => call('advanceClock', ms),
    async close() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
      fs.rmSync(directory, { recursive: true, force: true });
    },
  };
}
