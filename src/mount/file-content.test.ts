/**
 * FileContent over the local store, in-process: the chunk starts are summed as reads reach
 * them (not on open), so these cover manifests of more chunks than one step of that sum.
 */
import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ChunkStore } from '../store/chunk-store.js';
import { hashBytes, hashHex } from '../hashing/blake3.js';
import { xorshift32Bytes } from '../chunking/pseudo-random.js';
import { ManifestBuilder } from '../manifest/manifest.js';
import { treeCv } from '../hashing/tree-cv.js';
import { FileContent, MAX_READ_AHEAD, MIN_READ_AHEAD, advanceReadAhead, newReadAhead, type ReadSink } from './file-content.js';
import { RamCache } from './ram-cache.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const CHUNKER = { algorithm: 'fastcdc-2020' as const, min: 16, avg: 64, max: 256 };

/**
 * A store holding two chunks and a manifest of `count` entries alternating between them;
 * with `mixed`, 64 chunks of 40 to 229 bytes in a pseudo-random order instead (a manifest
 * whose pieces are not all alike). The file's bytes and each chunk's start beside.
 */
async function fixture(count: number, mixed = false, media: Record<string, unknown> | null = null): Promise<{ store: ChunkStore; dir: string; bytes: Buffer; manifest: Buffer; oid: string; starts: number[] }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dits-file-content-'));
  dirs.push(dir);
  const store = ChunkStore.open(dir, { create: true });
  const parts = mixed ? Array.from({ length: 64 }, (_, k) => xorshift32Bytes(40 + ((k * 37) % 190), 100 + k)) : [xorshift32Bytes(61, 5), xorshift32Bytes(103, 6)];
  const ids = parts.map((p) => hashBytes(p));
  for (let k = 0; k < parts.length; k++) await store.putChunk(ids[k]!, parts[k]!);
  store.commit();
  const b = new ManifestBuilder();
  const chunks: Buffer[] = [];
  const starts: number[] = [];
  let x = 88172645;
  let at = 0;
  for (let i = 0; i < count; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const k = mixed ? (x >>> 0) % parts.length : i % 2;
    b.add(ids[k]!, parts[k]!.length);
    chunks.push(parts[k]!);
    starts.push(at);
    at += parts[k]!.length;
  }
  const bytes = Buffer.concat(chunks);
  const oid = hashHex(bytes);
  return { store, dir, bytes, oid, starts, manifest: b.encode({ oid, chunker: CHUNKER, media }).bytes };
}

function deps(store: ChunkStore) {
  return { store, cache: null, ram: new RamCache(1 << 20), remote: null };
}

describe('FileContent (local store)', () => {
  it('reads byte-exact anywhere in a file of many chunks: far ahead first, back to the start, across the steps of the sum', async () => {
    const f = await fixture(10_000); // about two and a half steps of the chunk starts' sum
    const id = hashHex(f.manifest);
    f.store.putManifest(id, f.manifest);
    const fc = await FileContent.open({ oid: f.oid, size: f.bytes.length, manifest: id }, deps(f.store));
    try {
      const size = f.bytes.length;
      for (const [pos, len] of [
        // first, across and at where the steps of the sum end (4,096 chunks of 61 and 103 bytes)
        [4096 * 82 - 1, 2],
        [8192 * 82, 50],
        [size - 10, 100],
        [0, 4096],
        [size - 300_000, 200_000],
        [700_000, 1],
        [500_000, 2_000],
        [Math.floor(size / 2) - 5, 10],
      ] as const) {
        const got = await fc.read(pos, len);
        expect(got.equals(f.bytes.subarray(pos, pos + len))).toBe(true);
      }
      // sequential, across the first steps
      const all: Buffer[] = [];
      for (let pos = 0; pos < 700_000; pos += 128 * 1024) all.push(await fc.read(pos, 128 * 1024));
      expect(Buffer.concat(all).equals(f.bytes.subarray(0, all.length * 128 * 1024))).toBe(true);
    } finally {
      await fc.close();
      f.store.close();
    }
  });

  it('a read whose answer was given otherwise (timed out, unmounted) writes nothing more into its buffer', async () => {
    const f = await fixture(2_000);
    const id = hashHex(f.manifest);
    f.store.putManifest(id, f.manifest);
    const fc = await FileContent.open({ oid: f.oid, size: f.bytes.length, manifest: id }, deps(f.store));
    try {
      // the buffer is FUSE's: once the read is answered, it may hold another request's bytes
      const target = Buffer.alloc(50_000, 0xee);
      const stop = { stopped: false };
      const pending = fc.readInto(target, 1_000, target.length, undefined, stop);
      stop.stopped = true;
      expect(await pending).toBe(0);
      expect(target.every((b) => b === 0xee)).toBe(true);
      // the same read, not stopped, fills it
      expect(await fc.readInto(target, 1_000, target.length, undefined, { stopped: false })).toBe(target.length);
      expect(target.equals(f.bytes.subarray(1_000, 1_000 + target.length))).toBe(true);
      // through a sink (native-fuse.ts copies each piece into libfuse's buffer): the same
      // bytes, every piece inside the read, and nothing put once stopped
      const puts: [number, number][] = [];
      const into = Buffer.alloc(50_000, 0xee);
      const sink: ReadSink = {
        length: into.length,
        put: (src, start, end, at) => {
          puts.push([at, end - start]);
          src.copy(into, at, start, end);
        },
      };
      const stopped = { stopped: false };
      const late = fc.readInto(sink, 3_000, into.length, undefined, stopped);
      stopped.stopped = true;
      expect(await late).toBe(0);
      expect(puts).toEqual([]);
      expect(await fc.readInto(sink, 3_000, into.length, undefined, { stopped: false })).toBe(into.length);
      expect(into.equals(f.bytes.subarray(3_000, 3_000 + into.length))).toBe(true);
      expect(puts.length).toBeGreaterThan(1);
      expect(puts.every(([at, n]) => at >= 0 && n > 0 && at + n <= into.length)).toBe(true);
      expect(puts.reduce((a, [, n]) => a + n, 0)).toBe(into.length);
    } finally {
      await fc.close();
    }
  });

  it('a manifest whose chunk lengths fall short of its size: reads past the shortfall fail, never served from a wrong chunk', async () => {
    const f = await fixture(10_000);
    // the same chunks, a size 64 bytes larger than they add up to (its id is of these bytes)
    const text = f.manifest.toString('latin1');
    const sizeField = `"size":${f.bytes.length}`;
    expect(text.includes(sizeField)).toBe(true);
    const bad = Buffer.from(text.replace(sizeField, `"size":${f.bytes.length + 64}`), 'latin1');
    expect(bad.length).toBe(f.manifest.length);
    const id = hashHex(bad);
    f.store.putManifest(id, bad);
    const fc = await FileContent.open({ oid: f.oid, size: f.bytes.length + 64, manifest: id }, deps(f.store));
    try {
      // the first chunks' bytes depend on the first entries only (verified with the whole manifest)
      expect((await fc.read(0, 1000)).equals(f.bytes.subarray(0, 1000))).toBe(true);
      await expect(fc.read(f.bytes.length + 10, 20)).rejects.toThrow(/chunk lengths do not add up to the file size/);
      await expect(fc.read(f.bytes.length - 10, 20)).rejects.toThrow(/chunk lengths do not add up to the file size/);
    } finally {
      await fc.close();
      f.store.close();
    }
  });

  it.skipIf(!treeCv())('a big manifest: the first byte is served from its first leaf, verified; the rest is read when a read reaches it, and a corrupt rest is never served', async () => {
    const f = await fixture(120_000, true); // a manifest of 4.4 MB: more than one 4 MiB leaf
    const id = hashHex(f.manifest);
    f.store.putManifest(id, f.manifest); // (its leaves filed: tree-cv.ts)
    f.store.close();
    const size = f.bytes.length;
    // chunk 113,300 (its entry near the end of the first leaf: about 113,355 entries fit), and on either side of it
    const second = f.starts[113_300]!;
    const open = async (store: ChunkStore) => FileContent.open({ oid: f.oid, size, manifest: id }, deps(store));
    let store = ChunkStore.open(f.dir);
    let fc = await open(store);
    for (const [pos, len] of [
      [0, 4096],
      [second - 30_000, 60_000],
      [size - 100, 100],
    ] as const) {
      expect((await fc.read(pos, len)).equals(f.bytes.subarray(pos, pos + len))).toBe(true);
    }
    await fc.close();
    // a byte flipped in a piece of the manifest's last leaf
    const pieces = store.manifestPieceIds(id);
    const loc = store.locate(pieces[pieces.length - 2]!)!;
    const pack = store.packPath(loc.pack);
    store.close();
    const fd = fs.openSync(pack, 'r+');
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, loc.offset + 3);
    b[0]! ^= 1;
    fs.writeSync(fd, b, 0, 1, loc.offset + 3);
    fs.closeSync(fd);
    store = ChunkStore.open(f.dir);
    try {
      fc = await open(store);
      expect((await fc.read(0, 4096)).equals(f.bytes.subarray(0, 4096))).toBe(true);
      await expect(fc.read(size - 100, 100)).rejects.toThrow(/manifest .* is corrupt/);
      // an entry in the second leaf fails; one near the end of the first still reads (its
      // start is summed from verified entries only)
      await expect(fc.read(f.starts[113_600]!, 100)).rejects.toThrow(/manifest .* is corrupt/);
      expect((await fc.read(second, 100)).equals(f.bytes.subarray(second, second + 100))).toBe(true);
      await fc.close();
    } finally {
      store.close();
    }
  });

  it.skipIf(!treeCv())('a big manifest whose header is longer than its first leaf is read whole on open', async () => {
    const f = await fixture(1000, true, { notes: 'x'.repeat(5_000_000) });
    const id = hashHex(f.manifest);
    f.store.putManifest(id, f.manifest);
    expect(f.store.readManifestFromStart(id).verified).toBeLessThan(f.manifest.length); // read from its start
    try {
      const fc = await FileContent.open({ oid: f.oid, size: f.bytes.length, manifest: id }, deps(f.store));
      expect((await fc.read(0, f.bytes.length)).equals(f.bytes)).toBe(true);
      await fc.close();
    } finally {
      f.store.close();
    }
  });
});

describe('advanceReadAhead', () => {
  const L = 1 << 20;
  it('a sequential reader whose requests arrive a little out of order stays sequential, and its window grows', () => {
    const ra = newReadAhead();
    expect(advanceReadAhead(ra, 0, L, L)).toBe(false); // the first read: nothing to continue
    expect(advanceReadAhead(ra, L, L, 2 * L)).toBe(true);
    expect(ra.window).toBe(MIN_READ_AHEAD);
    // [3L, 4L) comes before [2L, 3L): it jumps the gap, then the late one fills it
    expect(advanceReadAhead(ra, 3 * L, L, 4 * L)).toBe(true);
    expect(advanceReadAhead(ra, 2 * L, L, 3 * L)).toBe(true);
    expect(ra.next).toBe(4 * L);
    expect(advanceReadAhead(ra, 4 * L, L, 5 * L)).toBe(true);
    for (let k = 5; k < 20; k++) advanceReadAhead(ra, k * L, L, (k + 1) * L);
    expect(ra.window).toBe(MAX_READ_AHEAD);
  });

  it('random reads, even close together, are not sequential and keep no window', () => {
    const ra = newReadAhead();
    const b = 4096;
    for (const off of [500_000, 120_000, 900_000, 130_000, 700_000, 730_000]) {
      expect(advanceReadAhead(ra, off, b, off + b)).toBe(false);
      expect(ra.window).toBe(0);
    }
    // a read back inside a stretch already read is not a late one either
    advanceReadAhead(ra, 0, b, b);
    advanceReadAhead(ra, b, b, 2 * b);
    expect(advanceReadAhead(ra, 0, b, b)).toBe(false);
  });
});
