import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ChunkMissingError, ChunkStore } from './chunk-store.js';
import Database from 'better-sqlite3';
import { ingest } from './ingest.js';
import { ReadBuffers, materializeFile, loadManifest, readContent } from './materialize.js';
import { xorshift32Bytes } from '../chunking/pseudo-random.js';
import { DEFAULT_CHUNKER_PARAMS } from '../chunking/chunker.js';
import { hashBytes } from '../hashing/blake3.js';

const dirs: string[] = [];
function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'dits-materialize-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

async function* once(b: Buffer): AsyncGenerator<Buffer> {
  yield b;
}

describe('materializeFile', () => {
  it('writes the file from the read buffers (several groups in flight), leaves zero runs unwritten, and verifies', async () => {
    const dir = tmpDir();
    const store = ChunkStore.open(path.join(dir, 'store'), { create: true });
    // data, a long zero run, data: more groups than read buffers, reserved blocks on both sides
    const data = Buffer.concat([xorshift32Bytes(45 * 1024 * 1024, 5), Buffer.alloc(40 * 1024 * 1024), xorshift32Bytes(3 * 1024 * 1024 + 17, 6)]);
    const r = await ingest(store, once(data), { params: DEFAULT_CHUNKER_PARAMS });
    expect(loadManifest(store, r.pointer).chunkCount).toBeGreaterThan(100);
    const dest = path.join(dir, 'out.bin');
    await materializeFile(store, r.pointer, dest);
    const back = fs.readFileSync(dest);
    expect(back.length).toBe(data.length);
    expect(back.equals(data)).toBe(true);
    // the zero run is not on disk, but for at most one reservation step after the data
    expect(fs.statSync(dest).blocks * 512).toBeLessThan(data.length - 40 * 1024 * 1024 + 33 * 1024 * 1024);
    store.close();
  });

  it('readChunkGroups refuses a lent buffer too small for a group, and reads a chunk larger than maxRead into its own', async () => {
    const store = ChunkStore.open(tmpDir(), { create: true });
    const chunks = [xorshift32Bytes(300_000, 1), xorshift32Bytes(300_000, 2)];
    for (const c of chunks) await store.putChunk(hashBytes(c), c);
    store.commit();
    const ids = chunks.map((c) => hashBytes(c));
    const small = Buffer.alloc(1000);
    await expect(async () => {
      for await (const _ of store.readChunkGroups(ids, { maxRead: 1 << 20, buffer: () => small })) void _;
    }).rejects.toThrow(/lent for a read/);
    const groups: Buffer[][] = [];
    for await (const g of store.readChunkGroups(ids, { maxRead: 100_000, buffer: () => small })) {
      expect(g.buffer).not.toBe(small);
      groups.push(g.chunks);
    }
    expect(groups.length).toBe(2);
    expect(groups[0]![0]!.equals(chunks[0]!)).toBe(true);
    expect(groups[1]![0]!.equals(chunks[1]!)).toBe(true);
    store.close();
  });
});

describe('readContent', () => {
  it('gives each file exactly, with read buffers shared by the files and pieces used before the next is asked for', async () => {
    const dir = tmpDir();
    const store = ChunkStore.open(path.join(dir, 'store'), { create: true });
    // a small file (one read), a file of several groups (reads ahead into both buffers), the small one again
    const small = xorshift32Bytes(300 * 1024 + 5, 11);
    const big = xorshift32Bytes(19 * 1024 * 1024 + 3, 12);
    const ptrs = [];
    for (const d of [small, big]) ptrs.push((await ingest(store, once(d), { params: DEFAULT_CHUNKER_PARAMS })).pointer);
    const buffers = new ReadBuffers();
    for (const [i, want] of [small, big, small].entries()) {
      const parts: Buffer[] = [];
      for await (const piece of readContent(store, loadManifest(store, ptrs[i % 2]!), buffers)) parts.push(Buffer.from(piece));
      expect(Buffer.concat(parts).equals(want)).toBe(true);
    }
    // without buffers each piece is the caller's to keep
    const kept: Buffer[] = [];
    for await (const piece of readContent(store, loadManifest(store, ptrs[1]!))) kept.push(piece);
    expect(Buffer.concat(kept).equals(big)).toBe(true);
    store.close();
  });

  it('throws before giving any byte when a chunk is missing, the last one too (smudge then leaves the pointer)', async () => {
    const dir = tmpDir();
    const storeDir = path.join(dir, 'store');
    const store = ChunkStore.open(storeDir, { create: true });
    const data = xorshift32Bytes(2 * 1024 * 1024, 13);
    const r = await ingest(store, once(data), { params: DEFAULT_CHUNKER_PARAMS });
    const m = loadManifest(store, r.pointer);
    store.close();
    const db = new Database(path.join(storeDir, 'index.sqlite'));
    db.prepare('DELETE FROM chunks WHERE id = ?').run(m.idRawAt(m.chunkCount - 1));
    db.close();
    const again = ChunkStore.open(storeDir);
    expect(() => readContent(again, m)).toThrow(ChunkMissingError);
    again.close();
  });
});

