import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ChunkStore } from './chunk-store.js';
import { applyGc, beginGc, planGc } from './gc.js';
import { hashBytes } from '../hashing/blake3.js';
import { xorshift32Bytes } from '../chunking/pseudo-random.js';

const dirs: string[] = [];
function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'dits-gc-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const chunk = (i: number): { id: Buffer; data: Buffer } => {
  const data = xorshift32Bytes(30_000 + i, i + 1);
  return { id: hashBytes(data), data };
};

/** A gc with no live manifests, everything older than the grace. */
function gcAll(dir: string, graceMs = 0) {
  const g = ChunkStore.open(dir);
  try {
    const session = beginGc(g);
    const plan = planGc(g, [], { graceMs, now: Date.now() + 1000, session });
    return { plan, result: applyGc(g, plan, session) };
  } finally {
    g.close();
  }
}

describe('pack ids', () => {
  it('are never handed out twice, not even after the pack with the highest id was deleted', async () => {
    const dir = tmpDir();
    const s = ChunkStore.open(dir, { create: true });
    const a = chunk(1);
    await s.putChunk(a.id, a.data);
    s.commit();
    const first = s.locate(a.id)!.pack;
    s.rewritePack(first, () => false); // as gc deletes a pack whose chunks are all dead
    s.close();
    const again = ChunkStore.open(dir);
    const b = chunk(2);
    await again.putChunk(b.id, b.data);
    again.commit();
    expect(again.locate(b.id)!.pack).toBeGreaterThan(first);
    again.close();
  });
});

describe('gc and writers', () => {
  it('keeps everything while a writer is alive, and leaves its pack alone', async () => {
    const dir = tmpDir();
    const w = ChunkStore.open(dir, { create: true });
    const a = chunk(1);
    const b = chunk(2);
    await w.putChunk(a.id, a.data);
    w.commit();
    await w.putChunk(b.id, b.data); // not committed yet
    const pack = w.locate(a.id)!.pack;
    const { plan, result } = gcAll(dir);
    expect(plan.busyPacks).toEqual([pack]);
    expect(result.kept?.reason).toBe('writers');
    expect(result.deletedChunks).toBe(0);
    w.commit();
    expect((await w.getChunk(a.id)).equals(a.data)).toBe(true);
    expect((await w.getChunk(b.id)).equals(b.data)).toBe(true);
    w.close();
    // finished: the next gc may remove what nothing refers to
    expect(gcAll(dir).result.deletedChunks).toBe(2);
    expect(fs.readdirSync(path.join(dir, 'packs'))).toEqual([]);
  });

  it('keeps everything when a writer ended after gc began (it may have staged pointers gc did not list)', async () => {
    const dir = tmpDir();
    const w = ChunkStore.open(dir, { create: true });
    const a = chunk(1);
    await w.putChunk(a.id, a.data);
    w.commit();
    const g = ChunkStore.open(dir);
    const session = beginGc(g);
    w.close(); // while gc "lists what is reachable"
    const plan = planGc(g, [], { graceMs: 0, now: Date.now() + 1000, session });
    const result = applyGc(g, plan, session);
    expect(result.kept?.reason).toBe('writers');
    expect(g.locate(a.id)).toBeDefined();
    g.close();
    expect(gcAll(dir).result.deletedChunks).toBe(1);
  });

  it('after gc deleted a chunk, a writer stores it again (its lookup sees the deletion)', async () => {
    const dir = tmpDir();
    const w0 = ChunkStore.open(dir, { create: true });
    const a = chunk(1);
    await w0.putChunk(a.id, a.data);
    w0.close();
    gcAll(dir);
    const w = ChunkStore.open(dir);
    expect(await w.putChunk(a.id, a.data)).toBeGreaterThan(0); // stored anew, not deduplicated against a deleted row
    w.close();
  });

  it('cuts back a pack its writer gave up on at once, whatever the grace, keeping its committed chunks', async () => {
    const dir = tmpDir();
    const w = ChunkStore.open(dir, { create: true });
    const a = chunk(1);
    const b = chunk(2);
    await w.putChunk(a.id, a.data);
    w.commit();
    await w.putChunk(b.id, b.data);
    w.abandon(); // b's bytes stay in the pack, unindexed
    w.close();
    const file = path.join(dir, 'packs', fs.readdirSync(path.join(dir, 'packs'))[0]!);
    // the close writes b's bytes in the background: wait until they are on the file
    const withTail = 16 + 41 + a.data.length + 41 + b.data.length;
    for (let i = 0; i < 500 && fs.statSync(file).size < withTail; i++) await new Promise((r) => setTimeout(r, 10));
    const before = fs.statSync(file).size;
    const { plan } = gcAll(dir, 3600_000);
    expect(plan.partialPacks).toHaveLength(1);
    const after = fs.statSync(file).size;
    expect(before).toBeGreaterThan(after);
    expect(after).toBe(16 + 41 + a.data.length); // the header and a's entry: up to the last indexed chunk
    const r = ChunkStore.open(dir);
    expect((await r.getChunk(a.id)).equals(a.data)).toBe(true);
    r.close();
    expect(gcAll(dir, 3600_000).plan.partialPacks).toHaveLength(0); // sealed now
  });

  it('runs one gc at a time; a gc that is gone does not block the next', () => {
    const dir = tmpDir();
    ChunkStore.open(dir, { create: true }).close();
    const first = ChunkStore.open(dir);
    beginGc(first);
    const second = ChunkStore.open(dir);
    expect(() => beginGc(second)).toThrow(/another `git dits gc` is running/);
    first.close();
    expect(() => beginGc(second)).not.toThrow();
    second.close();
  });
});

describe('gc and the leaves kept for file ids (hashing/tree-cv.ts)', () => {
  it('removes the side files of versions gc removes, and keeps those of live ones', async () => {
    const { ingest } = await import('./ingest.js');
    const { LEAF_SIZE, treeCvPath } = await import('../hashing/tree-cv.js');
    const dir = tmpDir();
    process.env.DITS_TREE_CV_MIN_SIZE = String(LEAF_SIZE + 1);
    const s = ChunkStore.open(dir, { create: true });
    const params = { minSize: 16384, avgSize: 65536, maxSize: 262144 };
    let live: Awaited<ReturnType<typeof ingest>>;
    let dead: Awaited<ReturnType<typeof ingest>>;
    try {
      async function* once(b: Buffer) {
        yield b;
      }
      live = await ingest(s, once(xorshift32Bytes(LEAF_SIZE + 5000, 31)), { params });
      dead = await ingest(s, once(xorshift32Bytes(LEAF_SIZE + 5000, 32)), { params });
    } finally {
      delete process.env.DITS_TREE_CV_MIN_SIZE;
      s.close();
    }
    const liveFile = treeCvPath(dir, live.pointer.oid);
    const deadFile = treeCvPath(dir, dead.pointer.oid);
    expect(fs.existsSync(liveFile) && fs.existsSync(deadFile)).toBe(true);
    fs.writeFileSync(`${deadFile}.123.tmp`, 'left by a crash');
    const g = ChunkStore.open(dir);
    try {
      const session = beginGc(g);
      const plan = planGc(g, [live.manifestId], { graceMs: 0, now: Date.now() + 1000, session });
      expect(applyGc(g, plan, session).deletedManifests).toBe(1);
    } finally {
      g.close();
    }
    expect(fs.existsSync(liveFile)).toBe(true);
    expect(fs.existsSync(deadFile)).toBe(false);
    expect(fs.readdirSync(path.dirname(liveFile))).toEqual([live.pointer.oid]);
  });

  it("keeps a live big manifest's own leaves (ManifestStore.readFromStart) and removes a dead one's", async () => {
    const { ManifestBuilder } = await import('../manifest/manifest.js');
    const { LEAF_SIZE, treeCvPath, treeCv } = await import('../hashing/tree-cv.js');
    if (!treeCv()) return; // (no leaves without the addon's leaf tree)
    const dir = tmpDir();
    const s = ChunkStore.open(dir, { create: true });
    // two manifests of 120,000 entries (4.4 MB, two leaves), naming chunks the store lacks
    const big = (seed: number): { id: string; bytes: Buffer } => {
      const b = new ManifestBuilder();
      const ids = xorshift32Bytes(120_000 * 32, seed);
      for (let i = 0; i < 120_000; i++) b.add(ids.subarray(i * 32, i * 32 + 32), 1000);
      const { bytes, id } = b.encode({ oid: 'ab'.repeat(32), chunker: { algorithm: 'fastcdc-2020', min: 256, avg: 1024, max: 4096 }, media: null });
      expect(bytes.length).toBeGreaterThan(LEAF_SIZE);
      return { id, bytes };
    };
    const live = big(41);
    const dead = big(42);
    try {
      s.putManifest(live.id, live.bytes);
      s.putManifest(dead.id, dead.bytes);
    } finally {
      s.close();
    }
    expect(fs.existsSync(treeCvPath(dir, live.id)) && fs.existsSync(treeCvPath(dir, dead.id))).toBe(true);
    const g = ChunkStore.open(dir);
    try {
      const session = beginGc(g);
      const plan = planGc(g, [live.id], { graceMs: 0, now: Date.now() + 1000, session });
      expect(applyGc(g, plan, session).deletedManifests).toBe(1);
    } finally {
      g.close();
    }
    expect(fs.existsSync(treeCvPath(dir, live.id))).toBe(true);
    expect(fs.existsSync(treeCvPath(dir, dead.id))).toBe(false);
  });
});
