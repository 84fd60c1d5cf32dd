import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ChunkStore } from './chunk-store.js';
import { ingest } from './ingest.js';
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
    expect(fs.statSync(s.manifestPath(a.manifestId)).size).toBeLessThan(5_000); // the file lists pieces
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
