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
import { FileContent } from './file-content.js';
import { RamCache } from './ram-cache.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const CHUNKER = { algorithm: 'fastcdc-2020' as const, min: 16, avg: 64, max: 256 };

/** A store holding two chunks, and a manifest of `count` entries alternating between them (the file's bytes beside). */
async function fixture(count: number): Promise<{ store: ChunkStore; bytes: Buffer; manifest: Buffer; oid: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dits-file-content-'));
  dirs.push(dir);
  const store = ChunkStore.open(dir, { create: true });
  const parts = [xorshift32Bytes(61, 5), xorshift32Bytes(103, 6)];
  const ids = parts.map((p) => hashBytes(p));
  for (let k = 0; k < 2; k++) await store.putChunk(ids[k]!, parts[k]!);
  store.commit();
  const b = new ManifestBuilder();
  const chunks: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    b.add(ids[i % 2]!, parts[i % 2]!.length);
    chunks.push(parts[i % 2]!);
  }
  const bytes = Buffer.concat(chunks);
  const oid = hashHex(bytes);
  return { store, bytes, oid, manifest: b.encode({ oid, chunker: CHUNKER, media: null }).bytes };
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
});
