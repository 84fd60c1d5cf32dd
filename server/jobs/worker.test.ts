import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ManifestBuilder } from '../../src/manifest/manifest.js';
import { manifestKey } from '../../src/remote/content/layout.js';
import { RemoteContentNotReadyError } from '../../src/remote/content/remote-file-reader.js';
import { createRepo } from '../admin.js';
import { openServerDb, type ServerDb } from '../db.js';
import { silentLogger } from '../logger.js';
import { createStorageBackend } from '../storage-backend.js';
import { inspectManifestHandler, type JobHandler } from './handlers.js';
import { JobQueue } from './queue.js';
import { enqueueIfVideo, enqueueInspection, isVideoHeader, manifestIdOfKey } from './video-manifests.js';
import { runWorker } from './worker.js';

const dirs: string[] = [];
const dbs: ServerDb[] = [];
afterEach(() => {
  for (const d of dbs.splice(0)) d.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function setup(leaseMs = 60_000) {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'dits-worker-'));
  dirs.push(dataDir);
  const db = openServerDb(':memory:');
  dbs.push(db);
  createRepo(db, 'team/film');
  const queue = new JobQueue(db, { leaseMs });
  const backend = createStorageBackend({ dataDir });
  return { dataDir, db, queue, backend };
}

const hex = (n: number): string => n.toString(16).padStart(64, '0');

/** Runs one worker until `stopWhen` holds, then stops it. */
async function workUntil(s: ReturnType<typeof setup>, handler: JobHandler, stopWhen: () => boolean, extra: { heartbeatMs?: number } = {}): Promise<void> {
  const ac = new AbortController();
  const running = runWorker({
    id: 'w1',
    queue: s.queue,
    backend: s.backend,
    handlers: { variants: handler, inspect: inspectManifestHandler },
    signal: ac.signal,
    workRoot: s.dataDir,
    indexCacheDir: path.join(s.dataDir, 'idx'),
    logger: silentLogger,
    pollMs: 10,
    ...extra,
  });
  const deadline = Date.now() + 10_000;
  while (!stopWhen() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  ac.abort();
  await running;
}

describe('runWorker', () => {
  it('completes, fails with the error kept, and defers content that is not ready without counting it', async () => {
    const s = setup();
    const ok = s.queue.enqueue({ repo: 'team/film', kind: 'variants', original: hex(1), manifest: hex(11) })!.id;
    const bad = s.queue.enqueue({ repo: 'team/film', kind: 'variants', original: hex(2), manifest: hex(12) })!.id;
    const early = s.queue.enqueue({ repo: 'team/film', kind: 'variants', original: hex(3), manifest: hex(13) })!.id;
    const seen: { id: number; repo: string; workDir: string }[] = [];
    await workUntil(
      s,
      async (job, ctx) => {
        seen.push({ id: job.id, repo: ctx.repo, workDir: ctx.workDir });
        if (job.id === bad) throw new Error('ffmpeg: moov atom not found');
        if (job.id === early) throw new RemoteContentNotReadyError(ctx.storage.location, 'chunk x is in no complete pack');
      },
      () => seen.length >= 3,
    );
    expect(s.queue.get(ok)).toMatchObject({ state: 'done', attempts: 1 });
    expect(s.queue.get(bad)).toMatchObject({ state: 'failed', attempts: 1, lastError: 'ffmpeg: moov atom not found' });
    expect(s.queue.get(early)).toMatchObject({ state: 'queued', attempts: 0, deferrals: 1 });
    expect(s.queue.get(early)!.lastError).toMatch(/^waiting: .*chunk x is in no complete pack/);
    expect(s.queue.get(early)!.notBefore).toBeGreaterThan(Date.now() + 3_000);
    expect(seen.every((x) => x.repo === 'team/film')).toBe(true);
    expect(new Set(seen.map((x) => x.workDir)).size).toBe(3); // one work dir per attempt
    expect(s.queue.listWorkers()).toEqual([]); // gone from status once stopped
  });

  it('a stopping worker aborts its handler and hands the job back at once (not a failure)', async () => {
    const s = setup();
    const id = s.queue.enqueue({ repo: 'team/film', kind: 'variants', original: hex(1), manifest: hex(11) })!.id;
    let started = false;
    let aborted = false;
    await workUntil(
      s,
      (_job, ctx) =>
        new Promise<void>((_resolve, reject) => {
          started = true;
          ctx.signal.addEventListener('abort', () => {
            aborted = true;
            reject(ctx.signal.reason);
          });
        }),
      () => started,
    );
    expect(aborted).toBe(true);
    expect(s.queue.get(id)).toMatchObject({ state: 'queued', attempts: 0, notBefore: expect.any(Number) });
    expect(s.queue.get(id)!.notBefore).toBeLessThanOrEqual(Date.now());
  });

  it('a worker that loses its lease (another took the job) stops its handler and its result is ignored', async () => {
    const s = setup(60_000);
    const id = s.queue.enqueue({ repo: 'team/film', kind: 'variants', original: hex(1), manifest: hex(11) })!.id;
    let aborted = false;
    let started = false;
    await workUntil(
      s,
      (_job, ctx) =>
        new Promise<void>((resolve) => {
          started = true;
          // another worker takes the job as if this one's lease had expired
          s.db.sqlite.prepare("UPDATE jobs SET lease_owner = 'w2' WHERE id = ?").run(id);
          ctx.signal.addEventListener('abort', () => {
            aborted = true;
            resolve(); // resolving after the loss: still not recorded as done
          });
        }),
      () => aborted,
      { heartbeatMs: 20 },
    );
    expect(started).toBe(true);
    expect(aborted).toBe(true);
    expect(s.queue.get(id)).toMatchObject({ state: 'leased', leaseOwner: 'w2' });
  });
});

describe('video manifests fill the queue', () => {
  const header = (media: Record<string, unknown> | null, mediaFallback?: string) => {
    const b = new ManifestBuilder();
    b.add(Buffer.alloc(32, 1), 10);
    return b.encode({ oid: hex(7), chunker: { algorithm: 'fastcdc-2020', min: 1, avg: 2, max: 4 }, media, ...(mediaFallback ? { mediaFallback } : {}) });
  };
  const video = { version: 1, container: 'mov', brands: [], durationSeconds: 2, fastStart: false, tracks: [{ id: 1, type: 'video', codec: 'mp4v', sampleCount: 50, durationSeconds: 2 }] };
  const audioOnly = { ...video, tracks: [{ id: 1, type: 'audio', codec: 'sowt', sampleCount: 10, durationSeconds: 2 }] };

  it('tells video from the manifest header alone', () => {
    expect(isVideoHeader(header(video).header)).toBe(true);
    expect(isVideoHeader(header(audioOnly).header)).toBe(false);
    expect(isVideoHeader(header(null, 'MXF: plain chunking for now').header)).toBe(true);
    expect(isVideoHeader(header(null, 'Matroska/WebM: plain chunking for now').header)).toBe(true);
    expect(isVideoHeader(header(null, 'RIFF WAVE (WAV): plain chunking for now').header)).toBe(false);
    expect(isVideoHeader(header(null).header)).toBe(false);
    expect(manifestIdOfKey(manifestKey(hex(5)))).toBe(hex(5));
    expect(manifestIdOfKey('v1/packs/x.pack')).toBeNull();
  });

  it('a stored video manifest gets a variants job keyed by the original file id; an inspection waits for a manifest put unseen', async () => {
    const s = setup();
    const storage = await s.backend.forRepo('team/film');
    const v = header(video);
    const a = header(audioOnly);
    await storage.put(manifestKey(v.id), v.bytes);
    await storage.put(manifestKey(a.id), a.bytes);
    const id = await enqueueIfVideo(s.queue, 'team/film', storage, manifestKey(v.id));
    expect(s.queue.get(id!)).toMatchObject({ kind: 'variants', original: hex(7), manifest: v.id, state: 'queued' });
    expect(await enqueueIfVideo(s.queue, 'team/film', storage, manifestKey(a.id))).toBeNull();

    // presigned put: an 'inspect' job; deferred until the manifest is there, then it queues 'variants'
    const other = header({ ...video, durationSeconds: 3 });
    const inspect = enqueueInspection(s.queue, 'team/film', manifestKey(other.id))!;
    await workUntil(s, async () => {}, () => s.queue.get(inspect)!.deferrals > 0 || s.queue.get(inspect)!.state === 'done');
    expect(s.queue.get(inspect)).toMatchObject({ state: 'queued', deferrals: 1 });
    await storage.put(manifestKey(other.id), other.bytes);
    s.db.sqlite.prepare('UPDATE jobs SET not_before = 0 WHERE id = ?').run(inspect);
    await workUntil(s, async () => {}, () => s.queue.get(inspect)!.state === 'done');
    expect(s.queue.get(inspect)!.state).toBe('done');
    // same original file id (oid) as the first manifest: that job is the one kept, no second
    expect(s.queue.list().filter((j) => j.kind === 'variants').map((j) => [j.original, j.manifest])).toEqual([[hex(7), v.id]]);
  });
});
