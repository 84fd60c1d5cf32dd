import { afterAll, afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ChunkStore } from './chunk-store.js';
import { ingest, type CutPlan } from './ingest.js';
import { CutWorker } from './cut-pipeline.js';
import { hashHex } from '../hashing/blake3.js';
import { LEAF_SIZE, readTreeCvs, treeCv, treeCvPath } from '../hashing/tree-cv.js';
import { readContent, loadManifest } from './materialize.js';
import { xorshift32Bytes } from '../chunking/pseudo-random.js';
import { FLAG_KEYFRAME } from '../manifest/manifest.js';

const params = { minSize: 1024, avgSize: 4096, maxSize: 16384 };
const dirs: string[] = [];
function store(): ChunkStore {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'dits-ingest-'));
  dirs.push(d);
  return ChunkStore.open(d, { create: true });
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

async function* pieces(b: Buffer, size: number) {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of it) parts.push(p);
  return Buffer.concat(parts);
}

describe('ingest', () => {
  it('round-trips, dedups a second copy, and stores little for an insertion', async () => {
    const s = store();
    const data = xorshift32Bytes(300_000, 7);
    const a = await ingest(s, pieces(data, 7777), { params });
    expect(a.newBytes).toBeGreaterThan(300_000);
    const again = await ingest(s, pieces(data, 65536), { params });
    expect(again.manifestId).toBe(a.manifestId);
    expect(again.newBytes).toBe(0);
    const edited = Buffer.concat([data.subarray(0, 5000), Buffer.alloc(4096, 1), data.subarray(5000)]);
    const b = await ingest(s, pieces(edited, 4096), { params });
    expect(b.newBytes).toBeLessThan(40_000);
    expect((await collect(readContent(s, loadManifest(s, b.pointer)))).equals(edited)).toBe(true);
    s.close();
  });

  it('splits at forced offsets and at keyframes near a boundary, without moving the content-defined ones', async () => {
    const s = store();
    const data = xorshift32Bytes(200_000, 9);
    const plain = loadManifest(s, (await ingest(s, pieces(data, 3000), { params })).pointer);
    const spine = [...plain.chunks()].map((c) => c.offset);
    const near = spine[10]! + 100; // within the snap distance of a spine boundary
    const far = spine[20]! + Math.floor((spine[21]! - spine[20]!) / 2);
    const forced = [1000, 150_000];
    const r = await ingest(s, pieces(data, 3000), { params, cutPlan: { forced, preferred: [near, far] } });
    const m = loadManifest(s, r.pointer);
    const starts = new Map([...m.chunks()].map((c) => [c.offset, c.flags]));
    for (const o of spine) expect(starts.has(o)).toBe(true); // every spine boundary stays
    expect(starts.has(1000)).toBe(true);
    expect(starts.has(150_000)).toBe(true);
    expect(starts.get(near)).toBe(FLAG_KEYFRAME);
    if (far - spine[20]! > 8192 && spine[21]! - far > 8192) expect(starts.has(far)).toBe(false);
    expect((await collect(readContent(s, m))).equals(data)).toBe(true);
    s.close();
  });

  it('stores a large manifest as pieces, so an edit stores only a few new ones', async () => {
    const s = store();
    const tiny = { minSize: 256, avgSize: 1024, maxSize: 4096 };
    const data = xorshift32Bytes(4_000_000, 11);
    const a = await ingest(s, pieces(data, 65536), { params: tiny });
    expect(a.header.chunkCount * 37).toBeGreaterThan(100_000); // a manifest of over 100 KB
    expect(s.manifestBytes()).toBeLessThan(5_000); // the stored row lists pieces
    expect(s.manifestPieceIds(a.manifestId).length).toBeGreaterThan(5);
    const edited = Buffer.from(data);
    edited.fill(1, 2_000_000, 2_000_100);
    const before = s.stats().rawBytes;
    const b = await ingest(s, pieces(edited, 65536), { params: tiny });
    const grew = s.stats().rawBytes - before;
    expect(grew).toBeLessThan(40_000); // a few data chunks and a few manifest pieces, not 100 KB+
    expect((await collect(readContent(s, loadManifest(s, b.pointer)))).equals(edited)).toBe(true);
    expect(loadManifest(s, a.pointer).header.size).toBe(4_000_000);
    s.close();
  });

  it('a failure mid-ingest leaves nothing indexed', async () => {
    const s = store();
    async function* broken() {
      yield xorshift32Bytes(100_000, 3);
      throw new Error('read error');
    }
    await expect(ingest(s, broken(), { params })).rejects.toThrow('read error');
    expect(s.stats().chunks).toBe(0);
    s.close();
  });
});

const workers: CutWorker[] = [];
function worker(slotSize = 16384, slots = 4): CutWorker {
  const w = new CutWorker({ slotSize, slots });
  workers.push(w);
  return w;
}
afterAll(async () => {
  for (const w of workers) await w.close();
});

// Tiny chunks and slots, so pieces span slots and every slot boundary case is reached.
describe('ingest on cutting workers', () => {
  it('gives exactly the pieces, ids and file id of ingest on this thread, for many streams on one worker', async () => {
    const w = worker();
    const inputs: { data: Buffer; plan?: CutPlan; feed: number }[] = [
      { data: Buffer.alloc(0), feed: 100 },
      { data: Buffer.from('x'), feed: 100 },
      { data: xorshift32Bytes(16384, 5), feed: 16384 }, // exactly one slot
      { data: xorshift32Bytes(300_000, 7), feed: 7777 },
      { data: xorshift32Bytes(250_000, 8), feed: 100_000, plan: { forced: [1000, 70_000, 70_001], preferred: [20_000, 120_003] } },
      { data: Buffer.concat([Buffer.alloc(100_000), xorshift32Bytes(50_000, 9)]), feed: 4096 }, // max-size cuts, duplicate pieces
    ];
    for (const { data, plan, feed } of inputs) {
      const local = await ingest(store(), pieces(data, feed), { params, cutPlan: plan });
      const s = store();
      const par = await ingest(s, pieces(data, feed), { params, cutPlan: plan, worker: w });
      expect(par.manifestId).toBe(local.manifestId);
      expect(par.pointer).toEqual(local.pointer);
      expect(par.newBytes).toBe(local.newBytes);
      expect(par.pointer.oid).toBe(hashHex(data));
      expect((await collect(readContent(s, loadManifest(s, par.pointer)))).equals(data)).toBe(true);
      s.close();
    }
  });

  it('files the 4 MiB leaves of a big file, on this thread and on a worker, and none for a small one', async () => {
    process.env.DITS_TREE_CV_MIN_SIZE = String(LEAF_SIZE + 1);
    try {
      const w = worker();
      const data = xorshift32Bytes(2 * LEAF_SIZE + 5000, 12);
      for (const opts of [{ params }, { params, worker: w }]) {
        const s = store();
        const r = await ingest(s, pieces(data, 300_001), opts);
        expect(r.pointer.oid).toBe(hashHex(data));
        const leaves = readTreeCvs(s.dir, r.pointer.oid, data.length)!;
        expect(leaves.length).toBe(3 * 32);
        expect(treeCv()!.rootOf(leaves).toString('hex')).toBe(r.pointer.oid);
        const small = await ingest(s, pieces(data.subarray(0, LEAF_SIZE), 65536), opts);
        expect(fs.existsSync(treeCvPath(s.dir, small.pointer.oid))).toBe(false);
        s.close();
      }
    } finally {
      delete process.env.DITS_TREE_CV_MIN_SIZE;
    }
  });

  it('after a failed stream, stores nothing of it and serves the next stream correctly', async () => {
    const w = worker();
    const s = store();
    async function* broken() {
      yield xorshift32Bytes(100_000, 3);
      throw new Error('read error');
    }
    await expect(ingest(s, broken(), { params, worker: w })).rejects.toThrow('read error');
    expect(s.stats().chunks).toBe(0);
    const data = xorshift32Bytes(200_000, 4);
    const r = await ingest(s, pieces(data, 65536), { params, worker: w });
    expect(r.pointer.oid).toBe(hashHex(data));
    expect((await collect(readContent(s, loadManifest(s, r.pointer)))).equals(data)).toBe(true);
    s.close();
  });

  it('cuts on this thread when a piece could be larger than the slots', async () => {
    const w = worker(4096);
    const data = xorshift32Bytes(100_000, 6);
    const local = await ingest(store(), pieces(data, 5000), { params });
    const par = await ingest(store(), pieces(data, 5000), { params, worker: w });
    expect(par.manifestId).toBe(local.manifestId);
  });

  it('once closed, or after a worker died mid-stream, ingest cuts on its own thread (the stream that was cut short fails clearly)', async () => {
    const closed = new CutWorker({ slotSize: 16384, slots: 4 });
    await closed.close();
    expect(closed.usable).toBe(false);
    const data = xorshift32Bytes(100_000, 12);
    expect((await ingest(store(), pieces(data, 9000), { params, worker: closed })).pointer.oid).toBe(hashHex(data));

    const w = worker();
    const s = store();
    let kill: (() => void) | undefined;
    const killed = new Promise<void>((resolve) => (kill = resolve));
    async function* slow() {
      yield data.subarray(0, 50_000);
      // fault injection: the hashing thread dies while the stream is being cut
      await (w as unknown as { hashThread: { terminate(): Promise<number> } }).hashThread.terminate();
      kill!();
      yield data.subarray(50_000);
    }
    await expect(ingest(s, slow(), { params, worker: w })).rejects.toThrow(/cutting worker stopped|cutting/);
    await killed;
    expect(s.stats().chunks).toBe(0);
    expect(w.usable).toBe(false);
    const again = await ingest(s, pieces(data, 9000), { params, worker: w });
    expect(again.pointer.oid).toBe(hashHex(data));
    s.close();
  });
});

describe('manifests without fsync', () => {
  it('stores a manifest again when an earlier version left its file empty (what a power loss could leave of one not fsynced)', async () => {
    const s = store();
    const data = xorshift32Bytes(100_000, 21);
    const a = await ingest(s, pieces(data, 65536), { params });
    // as an earlier version stored manifests: a file each, here an empty one
    s.deleteManifest(a.pointer.manifest);
    const file = s.manifestPath(a.pointer.manifest);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, '');
    expect(() => loadManifest(s, a.pointer)).toThrow(/corrupt/);
    await ingest(s, pieces(data, 65536), { params });
    expect((await collect(readContent(s, loadManifest(s, a.pointer)))).equals(data)).toBe(true);
    s.close();
  });
});
