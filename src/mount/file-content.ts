/**
 * The bytes of one tracked file version, read at any offset: offset -> chunk through the
 * manifest, then for each chunk the first of
 *   1. the RAM cache (verified chunks, a byte budget),
 *   2. the repository's local store (verified as read),
 *   3. the mount's disk cache of remote chunks (cache-store.ts, verified as read),
 *   4. the remote: ranged GETs of pack ranges (openRemoteFile coalesces neighbours in a
 *      pack into one GET and verifies every chunk before returning a byte of it).
 * No byte reaches a reader that was not checked against its chunk id.
 *
 * Read-ahead (remote only: the local store answers faster than a request could be planned):
 * a read that starts where the handle's last one ended doubles the handle's window (from
 * 1 MiB up to 64 MiB), fetched in the background in pieces of at most 8 MiB; any other read
 * resets it, so random seeks fetch only the chunks they touch. Chunks being fetched are
 * shared: a second reader of the same range waits for the same request.
 */
import { DitsUserError } from '../errors.js';
import { Manifest } from '../manifest/manifest.js';
import type { Pointer } from '../manifest/pointer.js';
import type { ChunkStore } from '../store/chunk-store.js';
import { ALIGN_SLACK } from '../store/aligned-buffer.js';
import { loadManifest } from '../store/materialize.js';
import type { RemoteFileReader } from '../remote/content/remote-file-reader.js';
import type { CacheStore } from './cache-store.js';
import type { RamCache } from './ram-cache.js';
import type { RemoteSource } from './remote-source.js';

export const MIN_READ_AHEAD = 1 << 20;
export const MAX_READ_AHEAD = 64 << 20;
/** Largest piece of a remote fetch (one or a few GETs). */
const FETCH_PIECE = 8 << 20;
/** One read from a local pack, at most (a read from FUSE is at most 128 KiB). */
const STORE_READ = 1 << 20;
/** Read buffers kept for the next reads of a file. */
const POOL_BUFFERS = 4;

export interface ContentDeps {
  store: ChunkStore;
  cache: CacheStore | null;
  ram: RamCache;
  remote: RemoteSource | null;
}

/** Per open handle: where the last read ended and the read-ahead window. */
export interface ReadAhead {
  next: number;
  window: number;
}

export function newReadAhead(): ReadAhead {
  return { next: -1, window: 0 };
}

export class FileContent {
  private readonly starts: Float64Array;
  private remoteReader: Promise<RemoteFileReader> | null = null;
  private readonly inflight = new Map<number, Promise<Buffer>>();
  /** Whether any chunk of this file had to come from a remote (read-ahead is for those only). */
  private sawRemote = false;
  /** Buffers lent to reads from the local store, free again (see readInto). */
  private readonly pool: Buffer[] = [];
  /** The chunks [first, end) that prefetches looked at last, in one stretch (see prefetch). */
  private readonly scanned: [number, number] = [0, 0];
  /** Statistics for the log and the tests. */
  readonly stats = { localChunks: 0, cacheChunks: 0, remoteChunks: 0, ramHits: 0 };

  private constructor(
    readonly pointer: Pointer,
    readonly manifest: Manifest,
    private readonly deps: ContentDeps,
  ) {
    const n = manifest.chunkCount;
    this.starts = new Float64Array(n + 1);
    for (let i = 0; i < n; i++) this.starts[i + 1] = this.starts[i]! + manifest.lengthAt(i);
  }

  /**
   * The manifest from the local store, else the disk cache, else a remote (verified against
   * its id there, then kept in the disk cache); it must name the pointer's file id and size.
   */
  static async open(pointer: Pointer, deps: ContentDeps): Promise<FileContent> {
    if (deps.store.hasManifest(pointer.manifest)) return new FileContent(pointer, loadManifest(deps.store, pointer), deps);
    if (deps.cache?.store.hasManifest(pointer.manifest)) return new FileContent(pointer, loadManifest(deps.cache.store, pointer), deps);
    if (!deps.remote) {
      throw new DitsUserError('content-missing', `manifest ${pointer.manifest} is not in the local store and no remote was given`, { hint: 'fetch it with `git dits pull -- <path>`' });
    }
    const bytes = await deps.remote.manifest(pointer.manifest);
    const m = Manifest.parse(bytes);
    if (m.header.oid !== pointer.oid || m.header.size !== pointer.size) {
      throw new DitsUserError('pointer-mismatch', `the pointer's file id or size does not match its manifest ${pointer.manifest}`);
    }
    deps.cache?.store.putManifest(pointer.manifest, bytes);
    return new FileContent(pointer, m, deps);
  }

  get size(): number {
    return this.pointer.size;
  }

  /** Index of the chunk holding byte `pos` (0 <= pos < size). */
  chunkAt(pos: number): number {
    let lo = 0;
    let hi = this.manifest.chunkCount - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.starts[mid]! <= pos) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Up to `length` bytes at `offset` (fewer only at the end; none past it), every chunk verified. */
  async read(offset: number, length: number, ra: ReadAhead = newReadAhead()): Promise<Buffer> {
    const out = Buffer.allocUnsafe(Math.max(0, Math.min(this.size, offset + length) - offset));
    const n = await this.readInto(out, offset, out.length, ra);
    return out.subarray(0, n);
  }

  /**
   * Reads into `target` (FUSE's buffer: no copy of our own); the byte count. Chunks come
   * from the RAM cache, else the local store (read in runs into buffers lent for this read
   * only, verified on a pool thread, copied out, then lent again; only a chunk the read
   * ends inside is kept in RAM, for the next read), else the disk cache, else the remote.
   */
  async readInto(target: Buffer, offset: number, length: number, ra: ReadAhead = newReadAhead()): Promise<number> {
    const end = Math.min(this.size, offset + length, offset + target.length);
    if (end <= offset) return 0;
    const sequential = offset === ra.next;
    ra.next = end;
    ra.window = sequential ? Math.min(MAX_READ_AHEAD, Math.max(MIN_READ_AHEAD, ra.window * 2)) : 0;
    const first = this.chunkAt(offset);
    const last = this.chunkAt(end - 1);
    const lent: Buffer[] = [];
    try {
      const chunks = await this.chunks(first, last, lent);
      if (ra.window > 0) this.prefetch(last + 1, end + ra.window);
      let pos = offset;
      for (let k = 0; k < chunks.length; k++) {
        const i = first + k;
        const c = await chunks[k]!;
        const from = pos - this.starts[i]!;
        const take = Math.min(c.length - from, end - pos);
        c.copy(target, pos - offset, from, from + take);
        pos += take;
      }
      // the chunk this read ends inside is where the next sequential read starts
      const tail = chunks[chunks.length - 1]!;
      if (end < this.starts[last + 1]! && Buffer.isBuffer(tail) && lent.some((b) => b.buffer === tail.buffer)) this.deps.ram.put(this.key(last), Buffer.from(tail));
      return end - offset;
    } finally {
      for (const b of lent) if (this.pool.length < POOL_BUFFERS) this.pool.push(b);
    }
  }

  private key(i: number): string {
    return this.manifest.idRawAt(i).toString('base64');
  }

  /**
   * Chunks [a, b] that the local store holds, read in runs that lie back to back in its
   * packs (one read each, read and verified on a pool thread) into buffers lent for this
   * read (added to `lent`; the chunks are views of them); index -> bytes.
   */
  private async fromStore(idx: readonly number[], lent: Buffer[]): Promise<Map<number, Buffer>> {
    const found = new Map<number, Buffer>();
    const ids = idx.map((i) => this.manifest.idRawAt(i));
    const located = this.deps.store.locateMany(ids);
    const wantIds: Buffer[] = [];
    const wantLocs: NonNullable<(typeof located)[number]>[] = [];
    const wantIdx: number[] = [];
    for (let k = 0; k < idx.length; k++) {
      const loc = located[k];
      if (loc === undefined) continue;
      wantIds.push(ids[k]!);
      wantLocs.push(loc);
      wantIdx.push(idx[k]!);
    }
    if (wantIds.length === 0) return found;
    const lend = (): Buffer => {
      const b = this.pool.pop() ?? Buffer.allocUnsafeSlow(STORE_READ + ALIGN_SLACK);
      lent.push(b);
      return b;
    };
    let w = 0;
    for await (const group of this.deps.store.readChunkGroups(wantIds, { maxRead: STORE_READ, buffer: lend, located: wantLocs, ahead: 1 })) {
      // (a chunk larger than a lent buffer comes in a buffer of its own: not lent)
      for (const c of group.chunks) {
        found.set(wantIdx[w++]!, c);
        this.stats.localChunks++;
      }
    }
    return found;
  }

  private async chunks(first: number, last: number, lent: Buffer[]): Promise<(Buffer | Promise<Buffer>)[]> {
    const got: (Buffer | Promise<Buffer> | null)[] = [];
    const missing: number[] = [];
    for (let i = first; i <= last; i++) {
      const hit = this.deps.ram.get(this.key(i)) ?? this.inflight.get(i) ?? null;
      if (hit === null) missing.push(i);
      else if (Buffer.isBuffer(hit)) this.stats.ramHits++;
      got.push(hit);
    }
    if (missing.length) {
      for (const [i, b] of await this.fromStore(missing, lent)) got[i - first] = b;
      // then the disk cache, chunk by chunk
      if (this.deps.cache) {
        for (let k = 0; k < got.length; k++) {
          if (got[k] !== null) continue;
          const c = await this.deps.cache.get(this.manifest.idRawAt(first + k));
          if (c) {
            this.stats.cacheChunks++;
            this.deps.ram.put(this.key(first + k), c);
            got[k] = c;
          }
        }
      }
    }
    // runs of chunks found nowhere here: fetched from the remote
    for (let k = 0; k < got.length; k++) {
      if (got[k] !== null) continue;
      let e = k;
      while (e + 1 < got.length && got[e + 1] === null) e++;
      const fetched = this.fetch(first + k, first + e);
      for (let j = k; j <= e; j++) got[j] = fetched.get(first + j)!;
      k = e;
    }
    return got as (Buffer | Promise<Buffer>)[];
  }

  /** Starts fetching, in the background, the chunks of [from chunk, to byte) that are nowhere here. */
  private prefetch(from: number, toByte: number): void {
    // only for a file a remote has had to serve: a local file would be looked up chunk by
    // chunk for nothing (64 MiB ahead is a thousand lookups a read)
    if (!this.deps.remote || !this.sawRemote) return;
    const n = this.manifest.chunkCount;
    // a read continuing the stretch the last prefetch looked at starts where that one ended
    let i = from;
    if (from >= this.scanned[0] && from <= this.scanned[1]) i = this.scanned[1];
    else this.scanned[0] = from;
    while (i < n && this.starts[i]! < toByte) {
      if (this.inflight.has(i) || this.isHere(i)) {
        i++;
        continue;
      }
      let e = i;
      while (e + 1 < n && this.starts[e + 1]! < toByte && !this.inflight.has(e + 1) && !this.isHere(e + 1)) e++;
      for (const p of this.fetch(i, e).values()) p.catch(() => {}); // a reader that needs it sees the error
      i = e + 1;
    }
    this.scanned[1] = i;
  }

  private isHere(i: number): boolean {
    const idRaw = this.manifest.idRawAt(i);
    return this.deps.ram.get(this.key(i)) !== undefined || this.deps.store.locate(idRaw) !== undefined || (this.deps.cache?.has(idRaw) ?? false);
  }

  private reader(): Promise<RemoteFileReader> {
    if (!this.remoteReader) {
      if (!this.deps.remote) {
        return Promise.reject(new DitsUserError('content-missing', `chunks of ${this.pointer.manifest} are not in the local store and no remote was given`, { hint: 'fetch the file with `git dits pull -- <path>`' }));
      }
      this.remoteReader = this.deps.remote.open(this.pointer.manifest);
      this.remoteReader.catch(() => (this.remoteReader = null)); // tried again on the next read
    }
    return this.remoteReader;
  }

  /**
   * Fetches chunks [a, b] from the remote in pieces of at most FETCH_PIECE, each kept in the
   * RAM cache and the disk cache as it arrives; chunk index -> its promise.
   */
  private fetch(a: number, b: number): Map<number, Promise<Buffer>> {
    this.sawRemote = true;
    const out = new Map<number, Promise<Buffer>>();
    let i = a;
    while (i <= b) {
      let e = i;
      while (e + 1 <= b && this.starts[e + 2]! - this.starts[i]! <= FETCH_PIECE) e++;
      const from = i;
      const to = e;
      const piece = this.reader().then(async (r) => {
        // stream: neighbours in a pack come in one GET (read() with no cache of its own would
        // fetch a group again for each of its chunks)
        const parts: Buffer[] = [];
        for await (const part of r.stream(this.starts[from]!, this.starts[to + 1]!)) parts.push(part);
        const bytes = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
        const chunks: Buffer[] = [];
        for (let j = from; j <= to; j++) {
          // a slice at chunk bounds of a range openRemoteFile verified chunk by chunk
          // (copied: a view would keep the whole piece alive in the RAM cache)
          const c = Buffer.from(bytes.subarray(this.starts[j]! - this.starts[from]!, this.starts[j + 1]! - this.starts[from]!));
          chunks.push(c);
          this.deps.ram.put(this.key(j), c);
          this.deps.cache?.put(this.manifest.idRawAt(j), c);
        }
        this.deps.cache?.commit();
        this.stats.remoteChunks += chunks.length;
        return chunks;
      });
      for (let j = from; j <= to; j++) {
        const p = piece.then((cs) => cs[j - from]!);
        p.catch(() => {});
        this.inflight.set(j, p);
        out.set(j, p);
      }
      piece.then(
        () => {
          for (let j = from; j <= to; j++) this.inflight.delete(j);
        },
        () => {
          for (let j = from; j <= to; j++) this.inflight.delete(j);
        },
      );
      i = e + 1;
    }
    return out;
  }

  async close(): Promise<void> {
    const r = this.remoteReader;
    this.remoteReader = null;
    if (r) await r.then((x) => x.close()).catch(() => {});
  }
}
