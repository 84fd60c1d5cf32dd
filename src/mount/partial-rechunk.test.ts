import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { xorshift32Bytes } from '../chunking/pseudo-random.js';
import { hashHex } from '../hashing/blake3.js';
import { Manifest, ManifestBuilder } from '../manifest/manifest.js';
import { ChunkStore } from '../store/chunk-store.js';
import { ingest } from '../store/ingest.js';
import { normaliseChanged, rechunkPartially, type ByteRange } from './partial-rechunk.js';
import type { CutPlan } from '../store/piece-cutter.js';

const params = { minSize: 256, avgSize: 1024, maxSize: 4096 };
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
function store(): ChunkStore {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'dits-rechunk-'));
  dirs.push(d);
  return ChunkStore.open(d, { create: true });
}
async function* once(b: Buffer) {
  if (b.length) yield b;
}

/** Applies writes and a size change to a copy of `old`, as the overlay would. */
function edited(old: Buffer, writes: { at: number; bytes: Buffer }[], size = old.length): Buffer {
  const out = Buffer.alloc(size);
  old.copy(out, 0, 0, Math.min(size, old.length));
  for (const w of writes) w.bytes.copy(out, w.at, 0, Math.max(0, Math.min(w.bytes.length, size - w.at)));
  return out;
}

/** The new version's manifest both ways: a full ingest, and the partial re-chunk; they must be the same bytes. */
async function compare(old: Buffer, writes: { at: number; bytes: Buffer }[], size = old.length, plan?: CutPlan) {
  const s = store();
  try {
    const before = await ingest(s, once(old), { params, cutPlan: plan });
    const oldManifest = Manifest.parse(s.getManifestBytes(before.manifestId));
    const now = edited(old, writes, size);
    const full = await ingest(s, once(now), { params, cutPlan: plan });
    const b = new ManifestBuilder();
    const changed: ByteRange[] = writes.map((w) => ({ start: w.at, end: Math.min(size, w.at + w.bytes.length) }));
    const cut: Buffer[] = [];
    const r = await rechunkPartially(
      {
        old: oldManifest,
        newSize: size,
        changed,
        params,
        window: 3000, // odd, smaller than a chunk: cuts must not depend on it
        plan,
        read: async (o, l) => Buffer.from(now.subarray(o, o + l)),
        onNewChunk: (id, data) => {
          expect(id.toString('hex')).toBe(hashHex(data));
          cut.push(Buffer.from(data));
        },
      },
      b,
    );
    const mine = b.encode({ oid: hashHex(now), chunker: { algorithm: 'fastcdc-2020', min: params.minSize, avg: params.avgSize, max: params.maxSize }, media: null });
    expect(mine.id).toBe(full.manifestId);
    expect(mine.bytes.equals(s.getManifestBytes(full.manifestId))).toBe(true);
    return { r, oldChunks: oldManifest.chunkCount, fullChunks: full.header.chunkCount, cutBytes: cut.reduce((a, c) => a + c.length, 0) };
  } finally {
    s.close();
  }
}

describe('rechunkPartially', () => {
  const old = xorshift32Bytes(400_000, 99);

  it('cuts again only around a 100-byte edit, and gives the manifest a full ingest gives', async () => {
    const { r, fullChunks, cutBytes } = await compare(old, [{ at: 200_000, bytes: xorshift32Bytes(100, 5) }]);
    expect(r.chunksReused + r.chunksCut).toBe(fullChunks);
    expect(r.chunksCut).toBeLessThanOrEqual(4);
    expect(r.bytesRead).toBeLessThan(3 * 3000 + 4 * params.maxSize);
    expect(cutBytes).toBeLessThan(4 * params.maxSize);
  });

  it('handles edits at the start, at the very end, several far apart, and two in one chunk', async () => {
    await compare(old, [{ at: 0, bytes: Buffer.from('x') }]);
    await compare(old, [{ at: old.length - 1, bytes: Buffer.from('y') }]);
    const far = await compare(old, [
      { at: 10_000, bytes: xorshift32Bytes(50, 1) },
      { at: 10_100, bytes: xorshift32Bytes(50, 2) },
      { at: 150_000, bytes: xorshift32Bytes(3000, 3) },
      { at: 390_000, bytes: xorshift32Bytes(7, 4) },
    ]);
    expect(far.r.chunksReused).toBeGreaterThan(far.r.chunksCut);
  });

  it('handles a write of the same bytes (no change), a rewrite of everything, and overlapping writes', async () => {
    await compare(old, [{ at: 1000, bytes: old.subarray(1000, 5000) }]);
    await compare(old, [{ at: 0, bytes: xorshift32Bytes(old.length, 8) }]);
    await compare(old, [
      { at: 5000, bytes: xorshift32Bytes(8000, 9) },
      { at: 9000, bytes: xorshift32Bytes(8000, 10) },
    ]);
  });

  it('handles a file grown by writes past its end, truncated, truncated to nothing, and extended with zeros', async () => {
    await compare(old, [{ at: old.length, bytes: xorshift32Bytes(20_000, 11) }], old.length + 20_000);
    await compare(old, [], 123_457);
    const zero = await compare(old, [], 0);
    expect(zero.r.chunksCut + zero.r.chunksReused).toBe(0);
    await compare(old, [], old.length + 70_000); // truncate up: zeros appended
    await compare(old, [{ at: 50_000, bytes: Buffer.from('edit') }], 300_000);
  });

  it('starts from an empty version', async () => {
    await compare(Buffer.alloc(0), [{ at: 0, bytes: xorshift32Bytes(30_000, 12) }], 30_000);
  });

  it('random edits agree with a full ingest (100 cases)', async () => {
    let seed = 12345;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const base = xorshift32Bytes(60_000, 77);
    for (let k = 0; k < 100; k++) {
      const size = rnd(4) === 0 ? rnd(80_000) : base.length;
      const writes = Array.from({ length: 1 + rnd(4) }, (_, i) => {
        const at = rnd(Math.max(1, size));
        return { at, bytes: xorshift32Bytes(1 + rnd(Math.min(5000, Math.max(1, size - at))), 1000 + k * 10 + i) };
      }).filter((w) => w.at < size);
      await compare(base, writes, size);
    }
  });

  it('with a media cut plan: the pieces a full ingest with the same plan gives, also where plan offsets fall on spine cuts', async () => {
    const base = xorshift32Bytes(120_000, 55);
    // the plain (spine) cuts of the old version: plan offsets placed exactly on some of them
    // make boundaries that are spine cuts and plan splits at once
    const plain = store();
    const spine = Manifest.parse(plain.getManifestBytes((await ingest(plain, once(base), { params })).manifestId));
    plain.close();
    const cuts: number[] = [];
    for (let i = 0, at = 0; i < spine.chunkCount - 1; i++) cuts.push((at += spine.lengthAt(i)));
    const forced = [...new Set([700, 1234, 50_000, 50_001, 99_999, ...cuts.filter((_, i) => i % 5 === 0)])].sort((a, b) => a - b);
    const preferred = [...new Set([3000, 20_000, 20_480, 77_777, ...cuts.filter((_, i) => i % 7 === 3)])].filter((x) => !forced.includes(x)).sort((a, b) => a - b);
    const plan: CutPlan = { forced: Float64Array.from(forced), preferred: Float64Array.from(preferred) };
    const one = await compare(base, [{ at: 60_000, bytes: xorshift32Bytes(100, 5) }], base.length, plan);
    expect(one.r.chunksReused).toBeGreaterThan(10 * one.r.chunksCut);
    await compare(base, [{ at: 0, bytes: Buffer.from('x') }], base.length, plan);
    await compare(base, [{ at: base.length - 1, bytes: Buffer.from('y') }], base.length, plan);
    for (const c of cuts.slice(0, 40)) await compare(base, [{ at: c, bytes: Buffer.from('z') }, { at: c - 1, bytes: Buffer.from('w') }], base.length, plan);
    let seed = 999;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let k = 0; k < 60; k++) {
      const writes = Array.from({ length: 1 + rnd(3) }, (_, i) => ({ at: rnd(base.length - 10), bytes: xorshift32Bytes(1 + rnd(3000), 5000 + k * 10 + i) }));
      await compare(base, writes.map((w) => ({ at: w.at, bytes: w.bytes.subarray(0, base.length - w.at) })), base.length, plan);
    }
  });

  it('merges changed ranges and adds the tail a size change touches', () => {
    expect(normaliseChanged([{ start: 10, end: 20 }, { start: 15, end: 30 }, { start: 40, end: 40 }], 100, 100)).toEqual([{ start: 10, end: 30 }]);
    expect(normaliseChanged([{ start: 10, end: 20 }], 100, 50)).toEqual([{ start: 10, end: 20 }, { start: 50, end: 100 }]);
    expect(normaliseChanged([], 100, 150)).toEqual([{ start: 99, end: 150 }]);
  });
});
