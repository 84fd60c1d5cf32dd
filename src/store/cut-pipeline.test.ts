import { afterAll, afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ChunkStore } from './chunk-store.js';
import { CutWorker } from './cut-pipeline.js';
import { ingest, type CutPlan } from './ingest.js';
import { loadManifest, readContent } from './materialize.js';
import { xorshift32Bytes } from '../chunking/pseudo-random.js';
import { hashHex } from '../hashing/blake3.js';

// Tiny chunks and slots, so pieces span slots and every slot boundary case is reached.
const params = { minSize: 1024, avgSize: 4096, maxSize: 16384 };
const dirs: string[] = [];
function store(): ChunkStore {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'dits-cutw-'));
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

const workers: CutWorker[] = [];
function worker(slotSize = 16384, slots = 4): CutWorker {
  const w = new CutWorker({ slotSize, slots });
  workers.push(w);
  return w;
}
afterAll(async () => {
  for (const w of workers) await w.close();
});

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
