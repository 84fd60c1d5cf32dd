/**
 * The mount's read path in-process (no FUSE): a lazy clone whose content is only on a file
 * remote, read through MountedRevision with the remote behind FlakyStorage, so each fault is
 * stated in the test: content frozen in an archive tier, a corrupt range, a dropped
 * connection. Also what read-ahead fetches for sequential and random reads, and the disk
 * cache's eviction within its budget.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { GitSandbox, SMALL_CHUNKS, cloneInto, randomBytesSeeded } from './helpers/git-env.js';
import { ChunkStore } from '../src/store/chunk-store.js';
import { FileStorage } from '../src/transfer/file-storage.js';
import { FlakyStorage, connectionResetError, type FaultPlan } from '../src/transfer/testing/flaky-storage.js';
import { FrozenObjectError } from '../src/tier/tier-storage.js';
import { hashBytes } from '../src/hashing/blake3.js';
import { BlobReader } from '../src/mount/blob-reader.js';
import { CacheStore } from '../src/mount/cache-store.js';
import { EIO, MountedRevision } from '../src/mount/mounted-revision.js';
import { RamCache } from '../src/mount/ram-cache.js';
import { RemoteSource } from '../src/mount/remote-source.js';
import { loadRevisionTree } from '../src/mount/revision-tree.js';

let sb: GitSandbox;
let clone: string;
let author: string;
let remoteDir: string;
const a = randomBytesSeeded(1_000_000, 31);
const b = randomBytesSeeded(600_000, 32);

beforeAll(() => {
  sb = new GitSandbox('dits-mount-content-');
  remoteDir = path.join(sb.dir, 'remote');
  author = sb.repo('author', { track: ['*.mov'], config: SMALL_CHUNKS, files: { 'a.mov': a, 'b.mov': b, 'notes.txt': 'n\n' } });
  sb.mustGit(['add', '.'], author);
  sb.mustGit(['commit', '-q', '-m', 'one'], author);
  sb.mustGit(['remote', 'add', 'origin', `dits::file://${remoteDir}`], author);
  sb.mustGit(['push', '-q', 'origin', 'main'], author);
  clone = cloneInto(sb, `dits::file://${remoteDir}`, 'clone', { ...SMALL_CHUNKS, 'dits.fetchMode': 'lazy' });
});
afterAll(() => sb?.cleanup());

interface Rig {
  mounted: MountedRevision;
  flaky: FlakyStorage;
  logs: string[];
  cache: CacheStore;
  close(): Promise<void>;
}

let rigs = 0;
/** A MountedRevision of the clone's HEAD with a fresh disk cache and the remote behind `plan`. */
async function rig(plan: FaultPlan = () => ({ kind: 'pass' }), memory = 64 << 20): Promise<Rig> {
  const ditsDir = path.join(clone, '.git', 'dits');
  const cacheDir = path.join(sb.dir, `cache-${rigs++}`);
  fs.mkdirSync(cacheDir);
  const store = ChunkStore.open(ditsDir, { create: true });
  const cache = CacheStore.open(cacheDir, 256 << 20);
  const flaky = new FlakyStorage(new FileStorage(remoteDir), plan);
  const logs: string[] = [];
  const blobs = new BlobReader(clone);
  const mounted = new MountedRevision(await loadRevisionTree(clone, 'HEAD'), {
    deps: { store, cache, ram: new RamCache(memory), remote: new RemoteSource(async () => [{ name: 'origin', storage: flaky }]) },
    blobs,
    log: (l) => logs.push(l),
  });
  return {
    mounted,
    flaky,
    logs,
    cache,
    async close() {
      await mounted.close();
      blobs.close();
      await cache.settled(); // as an unmount does
      cache.close();
      store.close();
    },
  };
}

async function readAll(m: MountedRevision, file: string, piece = 128 * 1024): Promise<Buffer | number> {
  const fd = m.open(file, 0);
  if (fd < 0) return fd;
  const parts: Buffer[] = [];
  try {
    for (let pos = 0; ; ) {
      const buf = Buffer.alloc(piece);
      const n = await m.read(fd, buf, piece, pos);
      if (n < 0) return n;
      if (n === 0) break;
      parts.push(buf.subarray(0, n));
      pos += n;
    }
  } finally {
    m.release(fd);
  }
  return Buffer.concat(parts);
}

const packGets = (f: FlakyStorage): number => f.calls.filter((c) => c.op === 'get' && c.key.endsWith('.pack')).length;

describe('the mount read path', () => {
  it('reads files whose content is only on the remote, byte-exact', async () => {
    const r = await rig();
    try {
      expect(r.mounted.getattr('/a.mov')).toMatchObject({ size: a.length });
      const got = await readAll(r.mounted, '/a.mov');
      expect(Buffer.isBuffer(got) && hashBytes(got).equals(hashBytes(a))).toBe(true);
      expect((await readAll(r.mounted, '/notes.txt'))!.toString()).toBe('n\n');
      expect(r.logs).toEqual([]);
    } finally {
      await r.close();
    }
  });

  it('frozen content fails with EIO at once, the log names the file and says git dits thaw, the rest works', async () => {
    let frozen = true;
    const r = await rig((c) => (frozen && c.op === 'get' && c.key.endsWith('.pack') ? { kind: 'fail', error: new FrozenObjectError(c.key, 'DEEP_ARCHIVE') } : { kind: 'pass' }));
    try {
      const fd = r.mounted.open('/a.mov', 0);
      const buf = Buffer.alloc(4096);
      expect(await r.mounted.read(fd, buf, 4096, 0)).toBe(EIO);
      expect(packGets(r.flaky)).toBe(1); // one GET, answered frozen: no retry, no wait
      expect(r.logs.join('\n')).toMatch(/^a\.mov: content is frozen in an archive tier .*DEEP_ARCHIVE.*Restore it with `git dits thaw a\.mov`$/m);
      expect(await r.mounted.read(fd, buf, 4096, 500_000)).toBe(EIO);
      expect(r.logs.filter((l) => l.includes('frozen'))).toHaveLength(1); // one line per file, not per read
      expect((await readAll(r.mounted, '/notes.txt'))!.toString()).toBe('n\n');
      frozen = false; // thawed: the same handle reads
      expect(await r.mounted.read(fd, buf, 4096, 0)).toBe(4096);
      expect(buf.equals(a.subarray(0, 4096))).toBe(true);
      r.mounted.release(fd);
    } finally {
      await r.close();
    }
  });

  it('a corrupt range from the remote is never served: EIO and a log line; a dropped connection: EIO, then reads recover', async () => {
    let fault: 'corrupt' | 'reset' | null = 'corrupt';
    const r = await rig((c) => {
      if (c.op !== 'get' || !c.key.endsWith('.pack') || fault === null) return { kind: 'pass' };
      return fault === 'corrupt' ? { kind: 'corrupt', atByte: 100 } : { kind: 'fail', error: connectionResetError() };
    });
    try {
      const fd = r.mounted.open('/b.mov', 0);
      const buf = Buffer.alloc(8192);
      expect(await r.mounted.read(fd, buf, 8192, 0)).toBe(EIO);
      expect(buf.equals(Buffer.alloc(8192))).toBe(true); // nothing was copied out
      expect(r.logs.join('\n')).toMatch(/b\.mov: a chunk from the remote does not match its id, not served \(EIO\)/);
      fault = 'reset';
      expect(await r.mounted.read(fd, buf, 8192, 300_000)).toBe(EIO);
      fault = null;
      expect(await r.mounted.read(fd, buf, 8192, 300_000)).toBe(8192);
      expect(buf.equals(b.subarray(300_000, 308_192))).toBe(true);
      r.mounted.release(fd);
      const whole = await readAll(r.mounted, '/b.mov');
      expect(Buffer.isBuffer(whole) && whole.equals(b)).toBe(true);
    } finally {
      await r.close();
    }
  });

  it('sequential reads are coalesced and read ahead; random reads fetch only what they touch', async () => {
    const seq = await rig();
    try {
      const got = await readAll(seq.mounted, '/a.mov', 64 * 1024);
      expect(Buffer.isBuffer(got) && got.equals(a)).toBe(true);
      const chunks = (await (seq.mounted as unknown as { contents: Map<string, { content: Promise<{ manifest: { chunkCount: number } }> }> }).contents.values().next().value!.content).manifest.chunkCount;
      // about 250 chunks of 4 KiB on average: fetched in a few ranged GETs, not one per chunk
      expect(chunks).toBeGreaterThan(100);
      expect(packGets(seq.flaky)).toBeLessThan(chunks / 8);
    } finally {
      await seq.close();
    }

    const rnd = await rig();
    try {
      const fd = rnd.mounted.open('/a.mov', 0);
      const buf = Buffer.alloc(4096);
      const offsets = Array.from({ length: 20 }, (_, i) => ((i * 7919 * 97) % (a.length - 4096)) | 0);
      for (const off of offsets) {
        expect(await rnd.mounted.read(fd, buf, 4096, off)).toBe(4096);
        expect(buf.equals(a.subarray(off, off + 4096))).toBe(true);
      }
      rnd.mounted.release(fd);
      // each random read fetched the one or two chunks it touched (at most 16 KiB each), nothing ahead
      const fetched = fs
        .readdirSync(path.join(rnd.cache.dir, 'packs'))
        .reduce((n, f) => n + fs.statSync(path.join(rnd.cache.dir, 'packs', f)).size, 0);
      expect(fetched).toBeLessThan(20 * 2 * 16 * 1024 + 64 * 1024);
      expect(packGets(rnd.flaky)).toBeLessThanOrEqual(40);
    } finally {
      await rnd.close();
    }
  });

  it('read-ahead is held for its reader, not pushed out of a small RAM cache before it is read: each chunk fetched once, none read back from the disk cache', async () => {
    const r = await rig(undefined, 64 * 1024); // a RAM cache of 16 chunks; the read-ahead covers the file
    try {
      const got = await readAll(r.mounted, '/a.mov', 64 * 1024);
      expect(Buffer.isBuffer(got) && got.equals(a)).toBe(true);
      const fc = await (r.mounted as unknown as { contents: Map<string, { content: Promise<{ manifest: { chunkCount: number }; stats: { remoteChunks: number; cacheChunks: number } }> }> }).contents.values().next().value!.content;
      expect(fc.stats.cacheChunks).toBe(0);
      expect(fc.stats.remoteChunks).toBe(fc.manifest.chunkCount);
    } finally {
      await r.close();
    }
  });

  it('a second read of remote content comes from the disk cache, not the remote', async () => {
    const cacheDir = path.join(sb.dir, 'shared-cache');
    fs.mkdirSync(cacheDir);
    const ditsDir = path.join(clone, '.git', 'dits');
    const tree = await loadRevisionTree(clone, 'HEAD');
    for (const round of [1, 2]) {
      const store = ChunkStore.open(ditsDir, { create: true });
      const cache = CacheStore.open(cacheDir, 256 << 20);
      const flaky = new FlakyStorage(new FileStorage(remoteDir));
      const blobs = new BlobReader(clone);
      const m = new MountedRevision(tree, { deps: { store, cache, ram: new RamCache(16 << 20), remote: new RemoteSource(async () => [{ name: 'origin', storage: flaky }]) }, blobs, log: () => {} });
      const got = await readAll(m, '/b.mov');
      expect(Buffer.isBuffer(got) && got.equals(b)).toBe(true);
      if (round === 1) expect(packGets(flaky)).toBeGreaterThan(0);
      else expect(packGets(flaky)).toBe(0);
      await m.close();
      blobs.close();
      await cache.settled(); // as an unmount does: what was fetched stays in the disk cache
      cache.close();
      store.close();
    }
  });

  it('a damaged disk cache is never served: flipped bytes, a pack cut short, a pack gone; each is fetched again and kept again', async () => {
    const cacheDir = path.join(sb.dir, 'damaged-cache');
    fs.mkdirSync(cacheDir);
    const packsDir = path.join(cacheDir, 'mount-cache', 'packs');
    const ditsDir = path.join(clone, '.git', 'dits');
    const tree = await loadRevisionTree(clone, 'HEAD');
    const packs = (): string[] => fs.readdirSync(packsDir).filter((f) => f.endsWith('.pack')).map((f) => path.join(packsDir, f));
    /** Reads b.mov through a new mount sharing the cache; the pack GETs it needed. */
    const readB = async (): Promise<number> => {
      const store = ChunkStore.open(ditsDir, { create: true });
      const cache = CacheStore.open(cacheDir, 256 << 20);
      const flaky = new FlakyStorage(new FileStorage(remoteDir));
      const blobs = new BlobReader(clone);
      const m = new MountedRevision(tree, { deps: { store, cache, ram: new RamCache(16 << 20), remote: new RemoteSource(async () => [{ name: 'origin', storage: flaky }]) }, blobs, log: () => {} });
      try {
        const got = await readAll(m, '/b.mov');
        expect(Buffer.isBuffer(got) && got.equals(b)).toBe(true);
        return packGets(flaky);
      } finally {
        await m.close();
        blobs.close();
        await cache.settled();
        cache.close();
        store.close();
      }
    };
    expect(await readB()).toBeGreaterThan(0);
    expect(await readB()).toBe(0); // all of it from the cache
    const damages: [string, () => void][] = [
      [
        'flipped bytes in every pack',
        () => {
          for (const p of packs()) {
            fs.chmodSync(p, 0o644);
            const fd = fs.openSync(p, 'r+');
            const size = fs.fstatSync(fd).size;
            for (let at = 4096; at < size; at += 50_000) fs.writeSync(fd, Buffer.from([0xff, 0x00, 0x5a]), 0, 3, at);
            fs.closeSync(fd);
          }
        },
      ],
      ['every pack cut to half (a kill mid-write, a full disk)', () => packs().forEach((p) => fs.truncateSync(p, Math.floor(fs.statSync(p).size / 2)))],
      ['every pack deleted (evicted by another mount)', () => packs().forEach((p) => fs.rmSync(p))],
    ];
    for (const [what, damage] of damages) {
      damage();
      // byte-exact from the remote for what the cache cannot give
      expect(await readB(), what).toBeGreaterThan(0);
      // and kept again: the damaged entries were forgotten, not left to miss every time
      expect(await readB(), `${what}, read again`).toBe(0);
    }
  });
});

describe('local content', () => {
  it('a file the local store holds is read with about one lookup per chunk, none for read-ahead', async () => {
    const store = ChunkStore.open(path.join(author, '.git', 'dits'));
    let looked = 0;
    // counts every chunk looked up in the store's index
    const counting = new Proxy(store, {
      get(target, prop, receiver) {
        if (prop === 'locate') return (id: Buffer) => (looked++, target.locate(id));
        if (prop === 'locateMany') return (ids: Buffer[]) => ((looked += ids.length), target.locateMany(ids));
        const v = Reflect.get(target, prop, receiver) as unknown;
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    const blobs = new BlobReader(author);
    const flaky = new FlakyStorage(new FileStorage(remoteDir));
    const m = new MountedRevision(await loadRevisionTree(author, 'HEAD'), {
      deps: { store: counting, cache: null, ram: new RamCache(16 << 20), remote: new RemoteSource(async () => [{ name: 'origin', storage: flaky }]) },
      blobs,
      log: () => {},
    });
    try {
      const got = await readAll(m, '/a.mov', 128 * 1024);
      expect(Buffer.isBuffer(got) && got.equals(a)).toBe(true);
      const chunks = (await (m as unknown as { contents: Map<string, { content: Promise<{ manifest: { chunkCount: number } }> }> }).contents.values().next().value!.content).manifest.chunkCount;
      expect(looked).toBeLessThanOrEqual(chunks * 2);
      expect(flaky.calls).toEqual([]); // nothing asked of the remote
    } finally {
      await m.close();
      blobs.close();
      store.close();
    }
  });
});

describe('local content, concurrently', () => {
  it('many reads at once, sequential and random, on several handles, each get exactly their bytes', async () => {
    const store = ChunkStore.open(path.join(author, '.git', 'dits'));
    const blobs = new BlobReader(author);
    const m = new MountedRevision(await loadRevisionTree(author, 'HEAD'), { deps: { store, cache: null, ram: new RamCache(16 << 20), remote: null }, blobs, log: () => {} });
    try {
      const jobs: Promise<void>[] = [];
      for (let h = 0; h < 4; h++) {
        const fd = m.open('/a.mov', 0);
        // a sequential reader per handle, interleaved with random reads on the same handle
        jobs.push(
          (async () => {
            for (let pos = h * 1000; pos < a.length; pos += 128 * 1024) {
              const buf = Buffer.alloc(128 * 1024);
              const n = await m.read(fd, buf, buf.length, pos);
              expect(buf.subarray(0, n).equals(a.subarray(pos, pos + n))).toBe(true);
            }
          })(),
        );
        for (let r = 0; r < 25; r++) {
          const pos = ((h * 31 + r) * 104_729) % a.length;
          const len = 1 + ((r * 7919) % 200_000);
          jobs.push(
            (async () => {
              const buf = Buffer.alloc(len);
              const n = await m.read(fd, buf, len, pos);
              expect(n).toBe(Math.min(len, a.length - pos));
              expect(buf.subarray(0, n).equals(a.subarray(pos, pos + n))).toBe(true);
            })(),
          );
        }
      }
      await Promise.all(jobs);
    } finally {
      await m.close();
      blobs.close();
      store.close();
    }
  });
});

describe('CacheStore', () => {
  it('keeps a small budget during a long stream of puts that the caller commits only at its end', async () => {
    const dir = path.join(sb.dir, 'evict-stream');
    fs.mkdirSync(dir);
    const budget = 4 << 20; // packs of 256 KiB; put commits every 1 MiB
    const cache = CacheStore.open(dir, budget);
    const packsDir = path.join(dir, 'mount-cache', 'packs');
    const onDisk = (): number => fs.readdirSync(packsDir).reduce((n, f) => n + fs.statSync(path.join(packsDir, f)).blocks * 512, 0);
    let peak = 0;
    try {
      // 24 MiB in chunks of 64 KiB, as one fetch would put them: a turn of the event loop
      // between chunks (their arrival), the writes' backpressure minded, no commit until the end
      for (let i = 0; i < 384; i++) {
        const data = randomBytesSeeded(64 * 1024, 5000 + i);
        cache.put(Buffer.from(hashBytes(data)), data);
        await (cache.backpressure() ?? new Promise<void>((r) => setImmediate(r)));
        peak = Math.max(peak, onDisk());
      }
      cache.commit();
      await cache.settled();
      peak = Math.max(peak, onDisk());
      // the budget, plus what arrives while the commits queued catch up (each waits for its
      // writes), plus the disk the packs being written reserve ahead: 6.6-8.8 MiB in three
      // runs; 48 MiB when only the caller's commit at the end evicted (as a mount's commit
      // after each 32 MiB fetch piece did, whatever the budget)
      expect(peak).toBeLessThanOrEqual(budget * 2.5);
    } finally {
      cache.close();
    }
  });

  it('holds the caller back while its commits are behind (what they have not indexed, eviction cannot drop)', async () => {
    const dir = path.join(sb.dir, 'evict-behind');
    fs.mkdirSync(dir);
    const cache = CacheStore.open(dir, 4 << 20); // commits every 1 MiB; holds back past 2 MiB behind
    try {
      const put = (i: number): void => {
        const data = randomBytesSeeded(64 * 1024, 9000 + i);
        cache.put(Buffer.from(hashBytes(data)), data);
      };
      // 1.5 MiB put at once (no turn of the event loop: no commit can finish): not held back
      // for commits yet (the writes' own backpressure aside, waited out here)
      for (let i = 0; i < 24; i++) put(i);
      let wait = cache.backpressure();
      if (wait) await wait;
      await cache.settled();
      expect(cache.backpressure()).toBeNull();
      for (let i = 24; i < 24 + 48; i++) put(i); // 3 MiB more at once: commits behind
      wait = cache.backpressure();
      expect(wait).not.toBeNull();
      await wait;
      await cache.settled();
      expect(cache.backpressure()).toBeNull(); // caught up
    } finally {
      cache.close();
    }
  });

  it('stays within its budget, dropping the least recently used packs first', async () => {
    const dir = path.join(sb.dir, 'evict');
    fs.mkdirSync(dir);
    const budget = 4 << 20; // packs of 256 KiB
    let now = Date.now() + 3_600_000; // packs not read count as their creation time (ms)
    const cache = CacheStore.open(dir, budget, () => now);
    try {
      const ids: Buffer[] = [];
      for (let i = 0; i < 160; i++) {
        const data = randomBytesSeeded(64 * 1024, 1000 + i);
        const id = Buffer.from(hashBytes(data)); // (hashBytes may answer in a buffer it reuses)
        ids.push(id);
        cache.put(id, data);
        if (i % 4 === 3) {
          cache.commit();
          await cache.settled(); // readable once written (the writes go through the thread pool)
        }
        now += 10;
        // the first chunk is read now and then: it stays
        if (i % 8 === 3) expect(await cache.get(ids[0]!)).not.toBeNull();
      }
      cache.commit();
      await cache.settled();
      const onDisk = fs.readdirSync(path.join(dir, 'mount-cache', 'packs')).reduce((n, f) => n + fs.statSync(path.join(dir, 'mount-cache', 'packs', f)).size, 0);
      expect(onDisk).toBeLessThanOrEqual(budget + (256 << 10) + 64 * 1024);
      expect(cache.has(ids[0]!)).toBe(true); // used recently
      expect(cache.has(ids[20]!)).toBe(false); // old, unused: evicted
      expect(cache.has(ids[159]!)).toBe(true); // newest
      const back = await cache.get(ids[159]!);
      expect(back && hashBytes(back).equals(ids[159]!)).toBe(true);
    } finally {
      cache.close();
    }
  });
});
