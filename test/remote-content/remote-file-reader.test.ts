/**
 * openRemoteFile: one file version read from a remote's storage by ranged pack reads, with
 * no local store: byte-exact for random ranges (FileStorage and S3), a damaged chunk never
 * returned, content not (yet) complete reported as such.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { ENTRY_HEAD_SIZE } from '../../src/store/pack-format.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushContent } from '../../src/remote/content/index.js';
import { indexKey, manifestKey, PACKS_PREFIX, parsePackKey } from '../../src/remote/content/layout.js';
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

  it('fetches only the chunks a range needs, and keeps indexes in a cache dir for the next reader', async () => {
    const cacheDir = path.join(dirs.make('dits-rfr-cache-'), 'idx');
    const a = await openRemoteFile(storage, m, { indexCacheDir: cacheDir });
    expect(a.stats.indexesDownloaded).toBeGreaterThan(0);
    expect((await a.read(700 * KiB, 10)).equals(CONTENT.subarray(700 * KiB, 700 * KiB + 10))).toBe(true);
    expect(a.stats.rangeRequests).toBe(1);
    expect(a.stats.rangeBytes).toBeLessThan(64 * KiB); // a few chunks, not the pack
    const b = await openRemoteFile(storage, m, { indexCacheDir: cacheDir });
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
    // the second GET of that pack starts at the bad chunk's entry, not at the pack's first
    expect(starts).toHaveLength(2);
    expect(starts[1]).toBe(entry.offset - ENTRY_HEAD_SIZE);
    expect(starts[0]).toBeLessThan(starts[1]!);
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
    const got = new Map<number, Buffer>();
    let twice = 0;
    await r.fetchChunks(0, chunks.length - 1, (i, c) => {
      if (got.has(i)) twice++;
      got.set(i, Buffer.from(c));
    });
    expect(twice).toBe(0);
    expect(got.size).toBe(chunks.length);
    for (const [i, c] of chunks.entries()) expect(got.get(i)!.equals(CONTENT.subarray(c.offset, c.offset + c.length)), `chunk ${i}`).toBe(true);
    // the first GET was cut after 100 KiB: the next GET of that pack starts in those bytes, not at its start again
    const again = starts.slice(1).find((s) => s.key === starts[0]!.key)!;
    expect(again.start).toBeGreaterThan(starts[0]!.start);
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
});
