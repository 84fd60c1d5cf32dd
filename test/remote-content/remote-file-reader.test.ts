/**
 * openRemoteFile: one file version read from a remote's storage by ranged pack reads, with
 * no local store: byte-exact for random ranges (FileStorage and S3), a damaged chunk never
 * returned, content not (yet) complete reported as such.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import { ENTRY_HEAD_SIZE } from '../../src/store/pack-format.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushContent } from '../../src/remote/content/index.js';
import { indexKey, manifestKey, PACKS_PREFIX, packKey, parsePackKey } from '../../src/remote/content/layout.js';
import { decodeLocationTable, LocationTableWriter, locationTableKey, locationTableLeaves, LOCATIONS_PREFIX } from '../../src/remote/content/location-table.js';
import { LEAF_SIZE, treeCv } from '../../src/hashing/tree-cv.js';
import { ingest } from '../../src/store/ingest.js';
import { CacheStore } from '../../src/mount/cache-store.js';
import { FileContent, newReadAhead } from '../../src/mount/file-content.js';
import { RamCache } from '../../src/mount/ram-cache.js';
import { RemoteSource } from '../../src/mount/remote-source.js';
import { FrozenObjectError } from '../../src/tier/tier-storage.js';
import { Manifest } from '../../src/manifest/manifest.js';
import { decodePackIndex } from '../../src/remote/content/pack-index.js';
import { openRemoteFile, RemoteChunkCorruptError, RemoteContentNotReadyError } from '../../src/remote/content/remote-file-reader.js';
import { FileStorage } from '../../src/transfer/file-storage.js';
import { FlakyStorage } from '../../src/transfer/testing/flaky-storage.js';
import type { ObjectStorage } from '../../src/transfer/object-storage.js';
import { S3Storage } from '../../src/transfer/s3-storage.js';
import { startS3rver, type RunningS3rver } from '../../src/transfer/testing/s3rver.js';
import { addFile, openStore, seededBytes, TempDirs } from './fixtures.js';

const dirs = new TempDirs();
afterAll(() => dirs.cleanup());

const KiB = 1024;
/** ~1.5 MiB: noise with compressible stretches (so some chunks are zstd in the packs). */
const CONTENT = seededBytes(1536 * KiB + 123, 7, 200 * KiB);

/** Pushes CONTENT to `storage` in several small packs; returns its manifest id. */
async function pushed(storage: ObjectStorage): Promise<string> {
  const store = openStore(dirs);
  const m = await addFile(store, CONTENT);
  await pushContent(storage, store, [m], { remoteName: 'origin', packSize: 256 * KiB });
  store.close();
  return m;
}

/** Fetches every chunk of the file at once: each handed over exactly once, each byte-exact. */
async function expectEveryChunkOnce(r: Awaited<ReturnType<typeof openRemoteFile>>, chunks: { offset: number; length: number }[], label: string): Promise<void> {
  const got = new Map<number, Buffer>();
  let twice = 0;
  await r.fetchChunks(0, chunks.length - 1, (i, c) => {
    if (got.has(i)) twice++;
    got.set(i, Buffer.from(c));
  });
  expect(twice).toBe(0);
  expect(got.size).toBe(chunks.length);
  for (const [i, c] of chunks.entries()) expect(got.get(i)!.equals(CONTENT.subarray(c.offset, c.offset + c.length)), `${label}chunk ${i}`).toBe(true);
}

/** Deterministic pseudo-random ranges, including the edges. */
function ranges(size: number, count: number): [number, number][] {
  let x = 12345;
  const rnd = (k: number): number => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return x % k;
  };
  const out: [number, number][] = [
    [0, 1],
    [0, size],
    [size - 1, 1],
    [size - 10, 100], // past the end: fewer bytes
  ];
  for (let i = 0; i < count; i++) out.push([rnd(size), 1 + rnd(i % 3 === 0 ? 400 * KiB : 20 * KiB)]);
  return out;
}

async function checkByteExact(storage: ObjectStorage, m: string): Promise<void> {
  const r = await openRemoteFile(storage, m, { maxRangeBytes: 128 * KiB, cacheBytes: 64 * KiB });
  expect(r.size).toBe(CONTENT.length);
  for (const [off, len] of ranges(CONTENT.length, 60)) {
    const got = await r.read(off, len);
    expect(got.equals(CONTENT.subarray(off, off + len)), `read(${off}, ${len})`).toBe(true);
  }
  for (const [off, len] of ranges(CONTENT.length, 10)) {
    const parts: Buffer[] = [];
    for await (const p of r.stream(off, off + len)) parts.push(Buffer.from(p));
    expect(Buffer.concat(parts).equals(CONTENT.subarray(off, off + len)), `stream(${off}, ${off + len})`).toBe(true);
  }
  await r.close();
}

describe('over FileStorage', () => {
  let root: string;
  let storage: FileStorage;
  let m: string;
  beforeAll(async () => {
    root = dirs.make('dits-rfr-remote-');
    storage = new FileStorage(root);
    m = await pushed(storage);
  });

  it('through the mount\'s FileContent with a small RAM cache: chunk buffers are used again, and many reads at once (sequential and random, on several handles) each get exactly their bytes', async () => {
    for (const withCache of [false, true]) {
      const store = openStore(dirs);
      const cache = withCache ? CacheStore.open(dirs.make('dits-rfr-pool-cache-'), 1 << 30) : null;
      const ram = new RamCache(1 << 20);
      const manifest = Manifest.parse(await storage.getBuffer(manifestKey(m)));
      const fc = await FileContent.open({ oid: manifest.header.oid, size: CONTENT.length, manifest: m }, { store, cache, ram, remote: new RemoteSource(async () => [{ name: 'origin', storage }]) });
      let x = 99;
      const rnd = (k: number): number => {
        x = (x * 1103515245 + 12345) % 2 ** 31;
        return x % k;
      };
      const handle = async (sequential: boolean): Promise<void> => {
        const ra = newReadAhead();
        for (let n = 0, off = 0; n < 40; n++) {
          const at = sequential ? off : rnd(CONTENT.length);
          const len = 1 + rnd(128 * KiB);
          const got = await fc.read(at, len, ra);
          expect(got.equals(CONTENT.subarray(at, at + len)), `read(${at}, ${len})`).toBe(true);
          off = (at + len) % CONTENT.length;
        }
      };
      // several rounds: the RAM cache (1 MiB) lets chunks go all the time, the disk cache
      // (when there is one) serves some of them the second time
      for (let round = 0; round < 3; round++) await Promise.all([handle(true), handle(true), handle(false), handle(false)]);
      if (!withCache) expect(ram.pool.stats.reused).toBeGreaterThan(0);
      await fc.close();
      cache?.close();
      store.close();
    }
  });

  it('reads random ranges byte-exact, several packs and zstd chunks among them', async () => {
    const packs: string[] = [];
    let zstd = 0;
    for await (const o of storage.list(PACKS_PREFIX)) {
      const k = parsePackKey(o.key);
      if (k?.kind !== 'idx') continue;
      packs.push(k.packId);
      zstd += decodePackIndex(await storage.getBuffer(o.key)).filter((e) => e.codec === 1).length;
    }
    expect(packs.length).toBeGreaterThan(3);
    expect(zstd).toBeGreaterThan(0);
    await checkByteExact(storage, m);
  });

  it('records the file version and each pack it reads (tier access), nothing for packs it does not read', async () => {
    const reads: string[] = [];
    const r = await openRemoteFile(storage, m, { access: { record: (kind, id) => reads.push(`${kind}:${id}`) } });
    expect(reads).toEqual([`file:${m}`]);
    await r.read(700 * KiB, 10);
    expect(reads).toHaveLength(2);
    const packId = reads[1]!.slice('pack:'.length);
    expect(await storage.head(`${PACKS_PREFIX}${packId}.pack`)).not.toBeNull();
    await r.close();
  });

  it('takes the manifest from the caller when given (one GET fewer), and still checks it against its id', async () => {
    const bytes = await storage.getBuffer(manifestKey(m));
    const plain = await openRemoteFile(storage, m);
    const given = await openRemoteFile(storage, m, { manifestBytes: bytes });
    expect(given.stats.requests).toBe(plain.stats.requests - 1);
    expect((await given.read(0, CONTENT.length)).equals(CONTENT)).toBe(true);
    const wrong = Buffer.from(bytes);
    wrong[wrong.length - 1]! ^= 1;
    await expect(openRemoteFile(storage, m, { manifestBytes: wrong })).rejects.toMatchObject({ code: 'remote-manifest-corrupt' });
  });

  it('fetches only the chunks a range needs, and keeps indexes in a cache dir for the next reader (no location table)', async () => {
    const cacheDir = path.join(dirs.make('dits-rfr-cache-'), 'idx');
    const a = await openRemoteFile(storage, m, { indexCacheDir: cacheDir, locationTable: false });
    expect(a.stats.indexesDownloaded).toBeGreaterThan(0);
    expect((await a.read(700 * KiB, 10)).equals(CONTENT.subarray(700 * KiB, 700 * KiB + 10))).toBe(true);
    expect(a.stats.rangeRequests).toBe(1);
    expect(a.stats.rangeBytes).toBeLessThan(64 * KiB); // a few chunks, not the pack
    const b = await openRemoteFile(storage, m, { indexCacheDir: cacheDir, locationTable: false });
    expect(b.stats.indexesDownloaded).toBe(0);
    expect(b.stats.indexesFromCache).toBe(a.stats.indexesDownloaded);
    expect((await b.read(0, CONTENT.length)).equals(CONTENT)).toBe(true);
  });

  it('never returns a damaged chunk: a flipped byte in a pack fails the reads that need it, the rest reads fine', async () => {
    const copy = dirs.make('dits-rfr-damaged-');
    fs.cpSync(root, copy, { recursive: true });
    const damaged = new FileStorage(copy);
    // the third chunk of some pack: flip one byte in the middle of its stored data
    let packId = '';
    for await (const o of damaged.list(PACKS_PREFIX)) {
      const k = parsePackKey(o.key);
      if (k?.kind === 'pack') {
        packId = k.packId;
        break;
      }
    }
    const entry = decodePackIndex(await damaged.getBuffer(indexKey(packId)))[2]!;
    const file = path.join(copy, 'v1', 'packs', `${packId}.pack`);
    const bytes = fs.readFileSync(file);
    bytes[entry.offset + (entry.storedLength >> 1)]! ^= 0x40;
    fs.writeFileSync(file, bytes);

    const r = await openRemoteFile(damaged, m);
    const err = await r.read(0, CONTENT.length).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RemoteChunkCorruptError);
    expect((err as Error).message).toContain(entry.idRaw.toString('hex'));
    const streamed = await (async () => {
      for await (const _ of r.stream(0, CONTENT.length)) void _;
    })().catch((e: unknown) => e);
    expect(streamed).toBeInstanceOf(RemoteChunkCorruptError);
    // ranges that do not touch that chunk read fine
    const manifest = Manifest.parse(await damaged.getBuffer(manifestKey(m)));
    const spans = [...manifest.chunks()].filter((c) => c.id === entry.idRaw.toString('hex'));
    expect(spans.length).toBeGreaterThan(0);
    const fresh = await openRemoteFile(damaged, m, { maxRangeBytes: 1 }); // one chunk a GET: neighbours not fetched
    for (const c of [...manifest.chunks()].filter((x) => x.id !== entry.idRaw.toString('hex')).slice(0, 20)) {
      expect((await fresh.read(c.offset, c.length)).equals(CONTENT.subarray(c.offset, c.offset + c.length))).toBe(true);
    }
    await expect(fresh.read(spans[0]!.offset, 1)).rejects.toBeInstanceOf(RemoteChunkCorruptError);
  });

  it('fetchChunks hands each chunk over, verified, as it arrives: before its GET has ended', async () => {
    let open!: () => void;
    const gate = new Promise<void>((res) => (open = res));
    // every GET gives its first half, then waits for the gate
    const gated: ObjectStorage = Object.assign(Object.create(storage) as ObjectStorage, {
      async get(key: string, range?: { start: number; end: number }) {
        if (!key.endsWith('.pack')) return storage.get(key, range);
        const all = await storage.getBuffer(key, range);
        return Readable.from(
          (async function* () {
            yield all.subarray(0, all.length >> 1);
            await gate;
            yield all.subarray(all.length >> 1);
          })(),
        );
      },
    });
    const r = await openRemoteFile(gated, m);
    const manifest = Manifest.parse(await storage.getBuffer(manifestKey(m)));
    const chunks = [...manifest.chunks()];
    const got = new Map<number, Buffer>();
    const done = r.fetchChunks(0, chunks.length - 1, (i, c) => got.set(i, Buffer.from(c)));
    for (let k = 0; k < 50 && got.size === 0; k++) await new Promise((res) => setTimeout(res, 5));
    expect(got.size).toBeGreaterThan(0); // while every GET is still waiting for its second half
    expect(got.size).toBeLessThan(chunks.length);
    open();
    await done;
    expect(got.size).toBe(chunks.length);
    for (const [i, c] of chunks.entries()) expect(got.get(i)!.equals(CONTENT.subarray(c.offset, c.offset + c.length)), `chunk ${i}`).toBe(true);
    await r.close();
  });

  it('fetchChunks: a taker that asks to wait (a promise) holds its GET until it resolves: at most one wait per GET in flight, every chunk byte-exact', async () => {
    const manifest = Manifest.parse(await storage.getBuffer(manifestKey(m)));
    const chunks = [...manifest.chunks()];
    const r = await openRemoteFile(storage, m, { maxRangeBytes: 4 << 20 });
    const got = new Map<number, Buffer>();
    let pending = 0;
    let most = 0;
    await r.fetchChunks(0, chunks.length - 1, (i, c) => {
      got.set(i, Buffer.from(c));
      pending++;
      most = Math.max(most, pending);
      return new Promise<void>((resolve) =>
        setTimeout(() => {
          pending--;
          resolve();
        }, 2),
      );
    });
    expect(got.size).toBe(chunks.length);
    for (const [i, c] of chunks.entries()) expect(got.get(i)!.equals(CONTENT.subarray(c.offset, c.offset + c.length)), `chunk ${i}`).toBe(true);
    expect(most).toBeLessThanOrEqual(2); // two GETs in flight at most, each waiting on its last chunk
    await r.close();
  });

  it('fetchChunks: a chunk that does not verify is asked once more from that chunk on, then fails; only verified chunks were handed over', async () => {
    const copy = dirs.make('dits-rfr-damaged2-');
    fs.cpSync(root, copy, { recursive: true });
    const damagedInner = new FileStorage(copy);
    let packId = '';
    for await (const o of damagedInner.list(PACKS_PREFIX)) {
      const k = parsePackKey(o.key);
      if (k?.kind === 'pack') {
        packId = k.packId;
        break;
      }
    }
    const entry = decodePackIndex(await damagedInner.getBuffer(indexKey(packId)))[2]!;
    const file = path.join(copy, 'v1', 'packs', `${packId}.pack`);
    const bytes = fs.readFileSync(file);
    bytes[entry.offset + (entry.storedLength >> 1)]! ^= 0x40;
    fs.writeFileSync(file, bytes);
    const starts: number[] = [];
    const damaged: ObjectStorage = Object.assign(Object.create(damagedInner) as ObjectStorage, {
      async get(key: string, range?: { start: number; end: number }) {
        if (key.endsWith(`${packId}.pack`)) starts.push(range!.start);
        return damagedInner.get(key, range);
      },
    });
    const manifest = Manifest.parse(await damagedInner.getBuffer(manifestKey(m)));
    const chunks = [...manifest.chunks()];
    const bad = chunks.findIndex((c) => c.id === entry.idRaw.toString('hex'));
    const r = await openRemoteFile(damaged, m);
    const got = new Map<number, Buffer>();
    const err = await r.fetchChunks(0, chunks.length - 1, (i, c) => got.set(i, Buffer.from(c))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RemoteChunkCorruptError);
    expect((err as Error).message).toContain(entry.idRaw.toString('hex'));
    expect(got.has(bad)).toBe(false);
    expect(got.has(bad - 1)).toBe(true); // its neighbour in the same GET, before it
    for (const [i, c] of got) expect(c.equals(CONTENT.subarray(chunks[i]!.offset, chunks[i]!.offset + chunks[i]!.length))).toBe(true);
    // the GETs of that pack after the first start at the bad chunk's entry, not at the pack's
    // first (located by the table, then once more through the pack indexes, then once again)
    expect(starts.length).toBeGreaterThanOrEqual(2);
    expect(starts.length).toBeLessThanOrEqual(3);
    expect(starts[0]).toBeLessThan(entry.offset - ENTRY_HEAD_SIZE);
    for (const s of starts.slice(1)) expect(s).toBe(entry.offset - ENTRY_HEAD_SIZE);
  });

  it('fetchChunks: a GET cut off mid-body is asked once more from the chunk it stopped in; every chunk arrives once, byte-exact', async () => {
    const starts: { key: string; start: number }[] = [];
    let cut = true;
    const flaky = new FlakyStorage(storage, (c) => {
      if (c.op !== 'get' || !c.key.endsWith('.pack') || !cut) return { kind: 'pass' };
      cut = false;
      return { kind: 'break-stream', afterBytes: 100 * KiB };
    });
    const recording: ObjectStorage = Object.assign(Object.create(flaky) as ObjectStorage, {
      async get(key: string, range?: { start: number; end: number }) {
        if (key.endsWith('.pack')) starts.push({ key, start: range!.start });
        return flaky.get(key, range);
      },
    });
    const manifest = Manifest.parse(await storage.getBuffer(manifestKey(m)));
    const chunks = [...manifest.chunks()];
    const r = await openRemoteFile(recording, m, { maxRangeBytes: 4 << 20 });
    await expectEveryChunkOnce(r, chunks, '');
    // the first GET was cut after 100 KiB: the next GET of that pack starts at the first chunk
    // not handed over (its start again when the cut came before any of its data was taken in)
    const again = starts.slice(1).find((s) => s.key === starts[0]!.key)!;
    expect(again.start).toBeGreaterThanOrEqual(starts[0]!.start);
    expect(again.start).toBeLessThanOrEqual(starts[0]!.start + 100 * KiB);
  });

  it('bounds a GET by the bytes it decodes to, not only the bytes it reads (zstd chunks of text)', async () => {
    const text = Buffer.from(Array.from({ length: 30_000 }, (_, i) => `line ${i}: the quick brown fox jumps over the lazy dog\n`).join(''));
    const store = openStore(dirs);
    const tm = await addFile(store, text);
    const textRoot = dirs.make('dits-rfr-text-');
    await pushContent(new FileStorage(textRoot), store, [tm], { remoteName: 'origin' });
    store.close();
    const r = await openRemoteFile(new FileStorage(textRoot), tm, { maxRangeBytes: 64 * KiB });
    const parts: Buffer[] = [];
    for await (const p of r.stream(0, r.size)) parts.push(Buffer.from(p));
    expect(Buffer.concat(parts).equals(text)).toBe(true);
    expect(r.stats.rangeBytes).toBeLessThan(text.length / 4); // it did compress
    expect(r.stats.rangeRequests).toBeGreaterThanOrEqual(Math.floor(text.length / (64 * KiB)));
  });

  it('content not complete yet: a missing manifest or an index not uploaded is "not ready", not corrupt', async () => {
    await expect(openRemoteFile(storage, 'ab'.repeat(32))).rejects.toBeInstanceOf(RemoteContentNotReadyError);
    const copy = dirs.make('dits-rfr-partial-');
    fs.cpSync(root, copy, { recursive: true });
    const partial = new FileStorage(copy);
    await partial.delete(locationTableKey(m)); // pushed by a version that wrote none
    for await (const o of partial.list(PACKS_PREFIX)) {
      if (parsePackKey(o.key)?.kind === 'idx') {
        await partial.delete(o.key); // as if the push had uploaded the pack, not yet its index
        break;
      }
    }
    const err = await openRemoteFile(partial, m).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RemoteContentNotReadyError);
    expect((err as Error).message).toMatch(/chunk\(s\) of manifest .* are in no complete pack/);
  });
});

describe('the location table', () => {
  let root: string;
  let storage: FileStorage;
  let m: string;
  let manifest: Manifest;
  beforeAll(async () => {
    root = dirs.make('dits-rfr-loc-');
    storage = new FileStorage(root);
    m = await pushed(storage);
    manifest = Manifest.parse(await storage.getBuffer(manifestKey(m)));
  });

  /** A copy of the remote (to damage). */
  const copyOf = (): { dir: string; storage: FileStorage } => {
    const dir = dirs.make('dits-rfr-loc-copy-');
    fs.cpSync(root, dir, { recursive: true });
    return { dir, storage: new FileStorage(dir) };
  };

  /** The same content pushed alone to another remote with other pack sizes: other packs. */
  const repacked = async (): Promise<{ dir: string; storage: FileStorage }> => {
    const dir = dirs.make('dits-rfr-loc-repacked-');
    const other = new FileStorage(dir);
    const store = openStore(dirs);
    const id = await addFile(store, CONTENT);
    expect(id).toBe(m);
    await pushContent(other, store, [id], { remoteName: 'other', packSize: 384 * KiB });
    store.close();
    return { dir, storage: other };
  };

  const readsWhole = async (s: ObjectStorage, log?: string[]): Promise<Awaited<ReturnType<typeof openRemoteFile>>> => {
    const r = await openRemoteFile(s, m, { maxRangeBytes: 128 * KiB, log: (l) => log?.push(l) });
    expect((await r.read(0, CONTENT.length)).equals(CONTENT)).toBe(true);
    for (const [off, len] of ranges(CONTENT.length, 10)) expect((await r.read(off, len)).equals(CONTENT.subarray(off, off + len))).toBe(true);
    // and the mount's path (fetchChunks: chunks handed over as they arrive), on a reader of its own
    const f = await openRemoteFile(s, m, { maxRangeBytes: 128 * KiB });
    const got: Buffer[] = [];
    await f.fetchChunks(0, manifest.chunkCount - 1, (i, c) => (got[i] = Buffer.from(c)));
    expect(Buffer.concat(got).equals(CONTENT)).toBe(true);
    return r;
  };

  it('is pushed beside the manifest and names every chunk where its pack index does, in runs', async () => {
    const bytes = await storage.getBuffer(locationTableKey(m));
    const t = decodeLocationTable(bytes, Buffer.from(m, 'hex'), manifest.chunkCount, (i) => manifest.lengthAt(i));
    const indexes = new Map<string, Map<string, { offset: number; storedLength: number; codec: number }>>();
    for (const p of new Set(t.packIds)) indexes.set(p, new Map(decodePackIndex(await storage.getBuffer(indexKey(p))).map((e) => [e.idRaw.toString('hex'), e])));
    for (let i = 0; i < manifest.chunkCount; i++) {
      const e = indexes.get(t.packIds[t.packOf[i]!]!)!.get(manifest.idAt(i));
      expect(e, `chunk ${i}`).toBeDefined();
      expect([t.offsetOf[i], t.storedOf[i], t.codecOf[i]]).toEqual([e!.offset, e!.storedLength, e!.codec]);
    }
    expect(t.packIds.length).toBeGreaterThan(3);
    // runs: far smaller than a pack index entry per chunk (49 bytes)
    expect(bytes.length).toBeLessThan(manifest.chunkCount * 49);
  });

  it('serves reads at once: the manifest, the table and one ranged GET, no listing, no pack index', async () => {
    const r = await openRemoteFile(storage, m);
    expect(r.stats.locatedBy).toBe('table');
    expect(r.stats.indexesDownloaded + r.stats.indexesFromCache).toBe(0);
    expect((await r.read(0, 4096)).equals(CONTENT.subarray(0, 4096))).toBe(true);
    expect(r.stats.requests).toBe(3);
    await checkByteExact(storage, m);
  });

  it('absent (pushed by an older version, or a mirror that did not copy it): the pack indexes, byte-exact', async () => {
    const c = copyOf();
    await c.storage.delete(locationTableKey(m));
    const r = await readsWhole(c.storage);
    expect(r.stats.locatedBy).toBe('indexes');
    expect(r.stats.indexesDownloaded).toBeGreaterThan(0);
  });

  it('damaged: the pack indexes, said in the log', async () => {
    const c = copyOf();
    const file = path.join(c.dir, ...locationTableKey(m).split('/'));
    const bytes = fs.readFileSync(file);
    bytes[70]! ^= 1;
    fs.writeFileSync(file, bytes);
    const log: string[] = [];
    const r = await readsWhole(c.storage, log);
    expect(r.stats.locatedBy).toBe('indexes');
    expect(log.join('\n')).toMatch(/location table .* unusable \(location table does not match its checksum\)/);
  });

  it('naming packs that are gone (repacked, or a copy from a remote with other packs): located again, byte-exact', async () => {
    const other = await repacked();
    await other.storage.put(locationTableKey(m), await storage.getBuffer(locationTableKey(m))); // the first remote's table
    const log: string[] = [];
    const r = await readsWhole(other.storage, log);
    expect(r.stats.locatedBy).toBe('indexes');
    expect(r.stats.tableFallbacks).toBe(1);
    expect(log.join('\n')).toMatch(/no such pack; locating its chunks through the pack indexes/);
  });

  it('with entries that do not verify (a sound table, wrong places): located again, never a wrong byte', async () => {
    const c = copyOf();
    // every chunk at the place of chunk 0: a table that parses, names packs that exist, and lies
    const t = decodeLocationTable(await storage.getBuffer(locationTableKey(m)), Buffer.from(m, 'hex'), manifest.chunkCount, (i) => manifest.lengthAt(i));
    const w = new LocationTableWriter(Buffer.from(m, 'hex'));
    for (let i = 0; i < manifest.chunkCount; i++) w.add(t.packIds[t.packOf[0]!]!, t.offsetOf[0]!, t.storedOf[0]!, t.codecOf[0]!, manifest.lengthAt(0));
    await c.storage.put(locationTableKey(m), w.finish());
    const log: string[] = [];
    const r = await readsWhole(c.storage, log);
    expect(r.stats.tableFallbacks).toBe(1);
    expect(log.join('\n')).toMatch(/has an entry head that does not match the pack index; locating/);
  });

  it('naming a pack that is frozen while another copy is readable: the other copy', async () => {
    const other = await repacked();
    // the first remote's packs and table, plus other packs holding the same chunks
    const both = copyOf();
    for await (const o of other.storage.list(PACKS_PREFIX)) await both.storage.put(o.key, await other.storage.getBuffer(o.key));
    const t = decodeLocationTable(await storage.getBuffer(locationTableKey(m)), Buffer.from(m, 'hex'), manifest.chunkCount, (i) => manifest.lengthAt(i));
    const frozenKey = packKey(t.packIds[t.packOf[0]!]!);
    const frozen = new FlakyStorage(both.storage, (call) => (call.op === 'get' && call.key === frozenKey ? { kind: 'fail', error: new FrozenObjectError(call.key, 'GLACIER') } : { kind: 'pass' }));
    const log: string[] = [];
    const r = await readsWhole(frozen, log);
    expect(r.stats.tableFallbacks).toBe(1);
    expect(log.join('\n')).toMatch(/frozen; locating/);
    // and with no other copy, the read says it is frozen (the thaw hint), as without a table
    const alone = new FlakyStorage(storage, (call) => (call.op === 'get' && call.key === frozenKey ? { kind: 'fail', error: new FrozenObjectError(call.key, 'GLACIER') } : { kind: 'pass' }));
    const r2 = await openRemoteFile(alone, m);
    await expect(r2.read(0, 10)).rejects.toBeInstanceOf(FrozenObjectError);
    await expect(r2.fetchChunks(0, 0, () => {})).rejects.toBeInstanceOf(FrozenObjectError);
  });

  it('of an edited version names the old packs for the chunks they hold, the new pack for the rest; not packs pending a move', async () => {
    const dir = dirs.make('dits-rfr-loc-edit-');
    const s = new FileStorage(dir);
    const store = openStore(dirs);
    const first = await addFile(store, CONTENT);
    await pushContent(s, store, [first], { remoteName: 'origin', packSize: 256 * KiB });
    const oldPacks = new Set<string>();
    for await (const o of s.list(PACKS_PREFIX)) if (parsePackKey(o.key)?.kind === 'pack') oldPacks.add(parsePackKey(o.key)!.packId);
    const edited = Buffer.from(CONTENT);
    edited.write('a few bytes changed in the middle of the file', 800 * KiB);
    const second = await addFile(store, edited);
    await pushContent(s, store, [second], { remoteName: 'origin', packSize: 256 * KiB });
    const m2 = Manifest.parse(await s.getBuffer(manifestKey(second)));
    const t = decodeLocationTable(await s.getBuffer(locationTableKey(second)), Buffer.from(second, 'hex'), m2.chunkCount, (i) => m2.lengthAt(i));
    const named = new Set(t.packIds);
    expect([...named].filter((p) => !oldPacks.has(p))).toHaveLength(1); // the one new pack
    expect([...named].filter((p) => oldPacks.has(p)).length).toBeGreaterThan(3);
    const r = await openRemoteFile(s, second);
    expect(r.stats.locatedBy).toBe('table');
    expect((await r.read(0, edited.length)).equals(edited)).toBe(true);
    expect(r.stats.tableFallbacks).toBe(0);

    // every old pack pending a move: a third version's chunks there are uploaded again, and
    // its table names only the fresh copies
    for (const p of oldPacks) await s.put(`v1/tier/pending/${p}.json`, Buffer.from(JSON.stringify({ tier: 'deep', markedAt: 1 })));
    const third = await addFile(store, Buffer.concat([CONTENT, Buffer.from('and a tail')]));
    const before = decodeLocationTable(await s.getBuffer(locationTableKey(first)), Buffer.from(first, 'hex'), manifest.chunkCount, (i) => manifest.lengthAt(i));
    expect(before.packIds.every((p) => oldPacks.has(p))).toBe(true);
    await pushContent(s, store, [first, third], { remoteName: 'origin', packSize: 256 * KiB });
    store.close();
    // the first version's manifest was there already: its table is written again, naming
    // the fresh copies of what it held in the packs being moved
    const after = decodeLocationTable(await s.getBuffer(locationTableKey(first)), Buffer.from(first, 'hex'), manifest.chunkCount, (i) => manifest.lengthAt(i));
    expect(after.packIds.filter((p) => oldPacks.has(p))).toEqual([]);
    const r1 = await openRemoteFile(s, first);
    expect((await r1.read(0, CONTENT.length)).equals(CONTENT)).toBe(true);
    expect(r1.stats.tableFallbacks).toBe(0);
    const m3 = Manifest.parse(await s.getBuffer(manifestKey(third)));
    const t3 = decodeLocationTable(await s.getBuffer(locationTableKey(third)), Buffer.from(third, 'hex'), m3.chunkCount, (i) => m3.lengthAt(i));
    expect(t3.packIds.filter((p) => oldPacks.has(p))).toEqual([]);
    const r3 = await openRemoteFile(s, third);
    expect((await r3.read(0, r3.size)).equals(Buffer.concat([CONTENT, Buffer.from('and a tail')]))).toBe(true);
  });

  it('is not written for an empty file, and lives under its own prefix only', async () => {
    const dir = dirs.make('dits-rfr-loc-empty-');
    const s = new FileStorage(dir);
    const store = openStore(dirs);
    const e = await addFile(store, Buffer.alloc(0));
    await pushContent(s, store, [e], { remoteName: 'origin' });
    store.close();
    const keys: string[] = [];
    for await (const o of s.list('v1/')) keys.push(o.key);
    expect(keys.filter((k) => k.startsWith(LOCATIONS_PREFIX))).toEqual([]);
    const all: string[] = [];
    for await (const o of storage.list('v1/')) all.push(o.key);
    expect(all.filter((k) => k.startsWith(LOCATIONS_PREFIX))).toEqual([locationTableKey(m)]);
  });
});

describe('an early reader (a manifest over one 4 MiB leaf: a file over about 7 GiB at the default chunk sizes)', () => {
  // 10 MiB in chunks of about 80 bytes: about 130,000 entries, a manifest of about 4.8 MB (two leaves)
  const BIG = seededBytes(10 * 1024 * KiB + 77, 21);
  let root: string;
  let storage: FileStorage;
  let m: string;
  let manifestBytes: Buffer;
  beforeAll(async () => {
    root = dirs.make('dits-rfr-early-');
    storage = new FileStorage(root);
    const store = openStore(dirs);
    async function* source(): AsyncGenerator<Buffer> {
      for (let i = 0; i < BIG.length; i += 65536) yield BIG.subarray(i, i + 65536);
    }
    m = (await ingest(store, source(), { params: { minSize: 16, avgSize: 64, maxSize: 256 } })).manifestId;
    await pushContent(storage, store, [m], { remoteName: 'origin', packSize: 4 * 1024 * KiB });
    store.close();
    manifestBytes = await storage.getBuffer(manifestKey(m));
  }, 60_000);

  const copyOf = (): FileStorage => {
    const dir = dirs.make('dits-rfr-early-copy-');
    fs.cpSync(root, dir, { recursive: true });
    return new FileStorage(dir);
  };

  it('push writes a version 2 table carrying the manifest\'s leaves, whose root is the manifest id', async () => {
    expect(manifestBytes.length).toBeGreaterThan(LEAF_SIZE);
    const table = await storage.getBuffer(locationTableKey(m));
    expect(table.readUInt32LE(8)).toBe(2);
    const leaves = locationTableLeaves(table, Buffer.from(m, 'hex'))!;
    expect(leaves.length).toBe(Math.ceil(manifestBytes.length / LEAF_SIZE) * 32);
    expect(treeCv()!.rootOf(leaves).toString('hex')).toBe(m);
  });

  it('opens on the first 4 MiB of the manifest, serves reads there at once, and waits for the rest only past it; byte-exact everywhere', async () => {
    const r = await openRemoteFile(storage, m, { early: true, maxRangeBytes: 256 * KiB });
    expect(r.manifestVerifiedBytes).toBe(LEAF_SIZE);
    expect((await r.read(0, 4096)).equals(BIG.subarray(0, 4096))).toBe(true);
    // the manifest's head, the table and one range: the rest of the manifest not asked yet
    expect(r.stats.requests).toBe(3);
    expect(r.manifestVerifiedBytes).toBe(LEAF_SIZE);
    // past the first leaf (the end of the file): the rest arrives, verified whole
    expect((await r.read(BIG.length - 5000, 5000)).equals(BIG.subarray(BIG.length - 5000))).toBe(true);
    expect(r.manifestVerifiedBytes).toBe(manifestBytes.length);
    expect(r.manifestBytes.equals(manifestBytes)).toBe(true);
    for (const [off, len] of ranges(BIG.length, 20)) expect((await r.read(off, len)).equals(BIG.subarray(off, off + len)), `read(${off}, ${len})`).toBe(true);
    await r.close();
    // fetchChunks across the first leaf's end, on a fresh early reader
    const f = await openRemoteFile(storage, m, { early: true });
    const n = f.manifest.chunkCount;
    const got: Buffer[] = [];
    await f.fetchChunks(n - 3000, n - 1, (i, c) => (got[i - (n - 3000)] = Buffer.from(c)));
    const tail = Buffer.concat(got);
    expect(tail.equals(BIG.subarray(BIG.length - tail.length))).toBe(true);
  });

  it('the rest of the manifest corrupt on the remote: reads in the first part are served, reads past it fail, never a wrong byte', async () => {
    const s = copyOf();
    const bad = Buffer.from(manifestBytes);
    bad[LEAF_SIZE + 1000]! ^= 0x40; // an entry past the first leaf
    await s.put(manifestKey(m), bad);
    const r = await openRemoteFile(s, m, { early: true });
    expect((await r.read(0, 100_000)).equals(BIG.subarray(0, 100_000))).toBe(true);
    await expect(r.read(BIG.length - 10, 10)).rejects.toMatchObject({ code: 'remote-manifest-corrupt' });
    await expect(r.whole()).rejects.toMatchObject({ code: 'remote-manifest-corrupt' });
    // the first part still reads
    expect((await r.read(1000, 1000)).equals(BIG.subarray(1000, 2000))).toBe(true);
    // and a first leaf that does not match the table's leaves is refused at open
    const head = Buffer.from(manifestBytes);
    head[200]! ^= 1;
    await s.put(manifestKey(m), head);
    await expect(openRemoteFile(s, m, { early: true })).rejects.toMatchObject({ code: 'remote-manifest-corrupt' });
  });

  it('leaves that do not combine to the manifest id, or a version 1 table: the whole manifest first, then reads as usual', async () => {
    const parsed = Manifest.parse(manifestBytes);
    for (const variant of ['wrong-leaves', 'v1'] as const) {
      const s = copyOf();
      const t = decodeLocationTable(await storage.getBuffer(locationTableKey(m)), Buffer.from(m, 'hex'), parsed.chunkCount, (i) => parsed.lengthAt(i));
      const w = new LocationTableWriter(Buffer.from(m, 'hex'));
      for (let i = 0; i < t.packOf.length; i++) w.add(t.packIds[t.packOf[i]!]!, t.offsetOf[i]!, t.storedOf[i]!, t.codecOf[i]!, parsed.lengthAt(i));
      const leaves = variant === 'v1' ? null : Buffer.alloc(Math.ceil(manifestBytes.length / LEAF_SIZE) * 32, 7);
      await s.put(locationTableKey(m), w.finish(leaves));
      const r = await openRemoteFile(s, m, { early: true });
      expect(r.manifestVerifiedBytes, variant).toBe(manifestBytes.length);
      expect((await r.read(BIG.length - 100, 100)).equals(BIG.subarray(BIG.length - 100)), variant).toBe(true);
      expect(r.stats.locatedBy, variant).toBe('table');
    }
  });

  it('through the mount\'s FileContent (no local copy): the first read from the first part, the rest fetched after it, byte-exact across; the disk cache keeps only the whole manifest', async () => {
    const store = openStore(dirs);
    const cacheDir = dirs.make('dits-rfr-early-cache-');
    const cache = CacheStore.open(cacheDir, 1 << 30);
    const remote = new RemoteSource(async () => [{ name: 'origin', storage }]);
    const oid = Manifest.parse(manifestBytes).header.oid;
    const fc = await FileContent.open({ oid, size: BIG.length, manifest: m }, { store, cache, ram: new RamCache(16 << 20), remote });
    const ra = newReadAhead();
    expect((await fc.read(0, 128 * KiB, ra)).equals(BIG.subarray(0, 128 * KiB))).toBe(true);
    // sequential from there on: the read-ahead waits for the whole manifest, then runs
    for (let off = 128 * KiB; off < BIG.length; off += 128 * KiB) {
      const got = await fc.read(off, 128 * KiB, ra);
      expect(got.equals(BIG.subarray(off, off + 128 * KiB)), `read at ${off}`).toBe(true);
    }
    await fc.close();
    expect(cache.store.hasManifest(m)).toBe(true);
    expect(cache.store.getManifestBytes(m).equals(manifestBytes)).toBe(true);
    cache.close();
    store.close();
  });
});

describe('over S3 (s3rver)', () => {
  let s3: RunningS3rver;
  beforeAll(async () => {
    s3 = await startS3rver({ buckets: ['media'] });
  });
  afterAll(async () => {
    await s3?.close();
  });

  it('reads random ranges byte-exact with ranged GETs', async () => {
    const storage = new S3Storage({ bucket: 'media', prefix: 'team/film', endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: s3.credentials });
    const m = await pushed(storage);
    await checkByteExact(storage, m);
  });

  it('fetchChunks reads pack bodies into reused buffers (openPieces), byte-exact; a connection cut mid-body is asked again from the chunk it stopped in', async () => {
    // a TCP relay to s3rver that cuts the first answer carrying a pack range after 100 KiB
    // of it (the answer's head, then part of the body)
    let cut = true;
    let cuts = 0;
    const relay = net.createServer((client) => {
      const up = net.connect(new URL(s3.endpoint).port ? Number(new URL(s3.endpoint).port) : 80, '127.0.0.1');
      let packRange = false;
      let down = 0;
      client.on('data', (d) => {
        if (/^GET [^ ]*\.pack /m.test(d.toString('latin1')) && /range: bytes=/i.test(d.toString('latin1'))) packRange = true;
        up.write(d);
      });
      up.on('data', (d: Buffer) => {
        down += d.length;
        if (cut && packRange && down > 100 * KiB) {
          cut = false;
          cuts++;
          client.write(d.subarray(0, d.length - (down - 100 * KiB)), () => {
            client.destroy();
            up.destroy();
          });
          return;
        }
        client.write(d);
      });
      const end = (): void => {
        client.destroy();
        up.destroy();
      };
      up.on('error', end);
      client.on('error', end);
      up.on('close', end);
      client.on('close', end);
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    try {
      const endpoint = `http://127.0.0.1:${(relay.address() as net.AddressInfo).port}`;
      const storage = new S3Storage({ bucket: 'media', prefix: 'team/cut', endpoint, region: 'us-east-1', forcePathStyle: true, credentials: s3.credentials });
      const m = await pushed(storage);
      const manifest = Manifest.parse(await storage.getBuffer(manifestKey(m)));
      const chunks = [...manifest.chunks()];
      for (const attempt of ['cut', 'whole']) {
        const before = storage.directGets;
        const r = await openRemoteFile(storage, m, { maxRangeBytes: 1 << 20 });
        await expectEveryChunkOnce(r, chunks, `${attempt}: `);
        // every pack range went on the direct path (the pieces), none through the SDK
        expect(storage.directGets - before).toBe(r.stats.requests);
        await r.close();
      }
      expect(cuts).toBe(1);
    } finally {
      await new Promise<void>((resolve) => relay.close(() => resolve()));
    }
  });
});
