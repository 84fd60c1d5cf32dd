import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ChunkStore } from '../store/chunk-store.js';
import { applyGc, beginGc, planGc } from '../store/gc.js';
import { ingest, byteSourceOf } from '../store/ingest.js';
import { loadManifest, readContent } from '../store/materialize.js';
import { DEFAULT_CHUNKER_PARAMS } from '../chunking/params.js';
import { xorshift32Bytes } from '../chunking/pseudo-random.js';
import { hashHex } from '../hashing/blake3.js';
import { openStoreDb } from '../store/store-db.js';
import { pickVariant, storeVariant } from './store-variant.js';

const dirs: string[] = [];
function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'dits-variant-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

async function* once(b: Buffer): AsyncGenerator<Buffer> {
  yield b;
}

async function readAll(store: ChunkStore, p: { oid: string; size: number; manifest: string }): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of readContent(store, loadManifest(store, p))) parts.push(Buffer.from(b));
  return Buffer.concat(parts);
}

function gcWith(dir: string, live: string[]) {
  const g = ChunkStore.open(dir);
  try {
    const session = beginGc(g);
    const plan = planGc(g, live, { graceMs: 0, now: Date.now() + 1000, session });
    return applyGc(g, plan, session);
  } finally {
    g.close();
  }
}

function format(dir: string): string {
  const db = openStoreDb(dir, {});
  try {
    return db.prepare(`SELECT value FROM meta WHERE key = 'format'`).pluck().get() as string;
  } finally {
    db.close();
  }
}

describe('variants as stored content', () => {
  it('stores the output as content, records it, and gc keeps it while its original is reachable and drops it after', async () => {
    const dir = tmpDir();
    const store = ChunkStore.open(dir, { create: true });
    const original = xorshift32Bytes(300_000, 7);
    const orig = await ingest(store, byteSourceOf(once(original)), { params: DEFAULT_CHUNKER_PARAMS });
    expect(format(dir)).toBe('2'); // no variants yet: readable by the Dits before them
    const proxyBytes = xorshift32Bytes(90_000, 99);
    const out = path.join(dir, 'proxy.mov');
    fs.writeFileSync(out, proxyBytes);
    const { record } = await storeVariant(store, orig.pointer.oid, { kind: 'proxy', recipe: 'prores_proxy/h1080', status: 'ok', file: out, warnings: ['vfr'] }, DEFAULT_CHUNKER_PARAMS);
    await storeVariant(store, orig.pointer.oid, { kind: 'poster', recipe: '', status: 'failed', reason: 'all frames black', ffmpegTail: ['x'], warnings: [] }, DEFAULT_CHUNKER_PARAMS);
    expect(record.fileId).toBe(hashHex(proxyBytes));
    expect(pickVariant(store, orig.pointer.oid, 'proxy')?.fileId).toBe(record.fileId);
    expect(pickVariant(store, orig.pointer.oid, 'poster')).toBeUndefined(); // failed: never offered
    expect(store.variantOwner(record.fileId!)?.original).toBe(orig.pointer.oid);
    expect(store.variantsOf(orig.pointer.oid).map((v) => v.kind).sort()).toEqual(['poster', 'proxy']);
    store.close();
    expect(format(dir)).toBe('3');

    // reachable original: its proxy survives gc, byte-exact
    gcWith(dir, [orig.manifestId]);
    let s = ChunkStore.open(dir);
    expect(await readAll(s, { oid: record.fileId!, size: record.size!, manifest: record.manifest! })).toEqual(proxyBytes);
    s.close();

    // original unreachable: the proxy's content goes with it
    gcWith(dir, []);
    s = ChunkStore.open(dir);
    expect(s.hasManifest(record.manifest!)).toBe(false);
    s.close();
  });

  it('a store with variants is refused by a Dits that reads only format 2', () => {
    const dir = tmpDir();
    const store = ChunkStore.open(dir, { create: true });
    store.putVariant({ original: 'a'.repeat(64), kind: 'proxy', recipe: 'r', status: 'failed', reason: 'x', warnings: [], createdAt: 1 });
    store.close();
    expect(format(dir)).toBe('3');
    // reopening keeps 3 (the upgrade of a format-1 store never lowers it)
    ChunkStore.open(dir).close();
    expect(format(dir)).toBe('3');
  });
});
