/**
 * The bytes of one tracked file version, read at any offset: offset -> chunk through the
 * manifest, then for each chunk the first of
 *   1. the RAM cache (chunks from the disk cache or a remote, within a byte budget),
 *   2. the repository's local store, read in runs of up to 1 MiB back to back in a pack,
 *      verified on a pool thread (loadRun: the last runs of each file stay, so the next
 *      128 KiB requests of a sequential reader copy from memory),
 *   3. the mount's disk cache of remote chunks (cache-store.ts, verified as read),
 *   4. the remote: ranged GETs of pack ranges (openRemoteFile's fetchChunks coalesces
 *      neighbours in a pack into one GET and hands each chunk over once it has arrived and
 *      verified, while the rest of its GET is still coming).
 * No byte reaches a reader that was not checked against its chunk id.
 *
 * Read-ahead from the remote (for a file a remote has had to serve): a read that starts
 * where the handle's last one ended doubles the handle's window (from 1 MiB up to 64 MiB),
 * fetched in the background in pieces of at most 32 MiB (a ranged GET each: the server's
 * cost is largely per request, see FETCH_PIECE); any other read
 * resets it, so random seeks fetch only the chunks they touch. Chunks being fetched are
 * shared: a second reader of the same range waits for the same request. Fetched chunks
 * wait for their reader outside the RAM cache (at most AHEAD_LIMIT bytes a file), then go
 * into it as they are read: in the RAM cache they would push out, or be pushed out by,
 * each other before being read.
 */
import { DitsUserError } from '../errors.js';
import { CHUNK_ENTRY_SIZE, Manifest, ManifestError } from '../manifest/manifest.js';
import type { Pointer } from '../manifest/pointer.js';
import type { ChunkStore } from '../store/chunk-store.js';
import type { ManifestFromStart } from '../store/manifest-store.js';
import { ALIGN_SLACK } from '../store/aligned-buffer.js';
import type { RemoteFileReader } from '../remote/content/remote-file-reader.js';
import type { CacheStore } from './cache-store.js';
import type { RamCache } from './ram-cache.js';
import type { RemoteSource } from './remote-source.js';

export const MIN_READ_AHEAD = 1 << 20;
export const MAX_READ_AHEAD = 64 << 20;
/**
 * Largest piece of a remote fetch (one GET; RemoteSource's largest range). Measured on
 * s3rver over loopback, 258 MiB read through the mount, medians of 3 alternating runs:
 * pieces of 8 MiB (window 32 MiB) cost the server 0.84 CPU s and the proxy 0.36 s, pieces of
 * 32 MiB (window 64 MiB) 0.63 s and 0.30 s; the mount's own CPU is the same.
 */
export const FETCH_PIECE = 32 << 20;
/** How long after a remote file's open its manifest is stored in the disk cache (off the first read's path). */
const MANIFEST_CACHE_DELAY_MS = 1000;
/** One read from a local pack, at most (a read from FUSE is at most 128 KiB). */
const STORE_READ = 1 << 20;
/** Read buffers kept for the next reads of a file. */
const POOL_BUFFERS = 8;
/** Runs of the local store kept per file version (see loadRun). */
const LOCAL_RUNS = 4;
/**
 * Chunk starts summed at a time, at least (see fillStarts): about 256 MiB of a file; the
 * first sums are shorter (from 256, doubling), so the first read does not wait for 4,096.
 */
const FILL_STEP = 4096;

/**
 * Read-ahead from the remote not taken by a read yet, at most (a reader that went elsewhere
 * leaves it behind): the part of --memory set aside for the read-ahead (mount-session.ts).
 */
export const AHEAD_LIMIT = 2 * MAX_READ_AHEAD;

/**
 * Where a read's bytes go when not into a Buffer: put() copies bytes [start, end) of `src`
 * to byte `at` of the read (native-fuse.ts: straight into libfuse's buffer).
 */
export interface ReadSink {
  readonly length: number;
  put(src: Buffer, start: number, end: number, at: number): void;
}

/** Bytes [start, end) of `src` to byte `at` of `target`. */
export function putBytes(target: Buffer | ReadSink, src: Buffer, start: number, end: number, at: number): void {
  if (Buffer.isBuffer(target)) src.copy(target, at, start, end);
  else target.put(src, start, end, at);
}

/** A chunk of the read-ahead (see FileContent.takeAhead). */
interface AheadChunk {
  p: Promise<Buffer>;
  /** its bytes once arrived and verified */
  b: Buffer | null;
  /** a read waits for it: into the RAM cache as it arrives */
  taken: boolean;
  resolve(c: Buffer): void;
  reject(err: unknown): void;
}

/** Chunks read together from the local store (see FileContent.loadRun). */
interface LocalRun {
  first: number;
  last: number;
  views: Map<number, Buffer>;
  /** buffers lent from the pool, given back when the run is dropped */
  bufs: Buffer[];
  /** reads copying from it now */
  pins: number;
  settled: boolean;
  loaded: Promise<void>;
}

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
  /** a stretch an early read jumped over, which a late one may fill */
  gap: [number, number];
}

export function newReadAhead(): ReadAhead {
  return { next: -1, window: 0, gap: [0, 0] };
}

/**
 * Whether a read of [offset, offset + length) (ending at `end`) continues the handle's
 * sequential reading; grows or resets its window. The kernel's read-ahead requests come on
 * several of libfuse's threads at once, so a sequential reader's reads may arrive a little
 * out of order: one that starts at most two requests past where the last ended jumps a
 * gap, and one that fits in that gap fills it; both are sequential. Reads elsewhere are not.
 */
export function advanceReadAhead(ra: ReadAhead, offset: number, length: number, end: number): boolean {
  const early = ra.next >= 0 && offset > ra.next && offset - ra.next <= 2 * length;
  const late = offset < ra.next && offset >= ra.gap[0] && end <= ra.gap[1];
  const sequential = offset === ra.next || early || late;
  if (early) ra.gap = [ra.next, offset];
  ra.next = sequential ? Math.max(ra.next, end) : end;
  ra.window = sequential ? Math.min(MAX_READ_AHEAD, Math.max(MIN_READ_AHEAD, ra.window * 2)) : 0;
  return sequential;
}

/** The manifest must name the pointer's file id and size (as materialize's loadManifest checks). */
function checkPointer(pointer: Pointer, m: Manifest): void {
  if (m.header.oid !== pointer.oid || m.header.size !== pointer.size) {
    throw new DitsUserError('pointer-mismatch', `the pointer's file id or size does not match its manifest ${pointer.manifest}`, {
      hint: 'the pointer was edited by hand or damaged: restore it from another commit, or re-add the real file',
    });
  }
}

export class FileContent {
  /**
   * Where each chunk starts, summed from the manifest's lengths as reads reach them (valid
   * up to index `filled`; see fillStarts): the first byte of a 20 GiB file does not wait
   * for 300,000 lengths to be summed.
   */
  private readonly starts: Float64Array;
  private filled = 0;
  /** Entries of the manifest read and verified (the rest: fromStart.complete()). */
  private verifiedEntries: number;
  private remoteReader: Promise<RemoteFileReader> | null = null;
  /** Chunks from the remote no read has taken yet (see takeAhead), and their bytes. */
  private readonly ahead = new Map<number, AheadChunk>();
  private aheadBytes = 0;
  /** Whether any chunk of this file had to come from a remote (read-ahead is for those only). */
  private sawRemote = false;
  /** Buffers for runs of the local store, free again (see loadRun). */
  private readonly pool: Buffer[] = [];
  /** Runs of the local store, oldest first. */
  private runs: LocalRun[] = [];
  /** The chunks [first, end) that prefetches looked at last, in one stretch (see prefetch). */
  private readonly scanned: [number, number] = [0, 0];
  /** A remote manifest still arriving: resolves once it is whole and verified (null: it is). */
  private remoteWhole: (() => Promise<void>) | null = null;
  private closed = false;
  /** Stores the manifest in the disk cache, when that is still to do (cacheManifestLater). */
  private storeManifest: (() => void) | null = null;
  /** Statistics for the log and the tests. */
  readonly stats = { localChunks: 0, cacheChunks: 0, remoteChunks: 0, ramHits: 0 };

  private constructor(
    readonly pointer: Pointer,
    readonly manifest: Manifest,
    private readonly deps: ContentDeps,
    /**
     * the manifest's bytes, verified (all, or up to fromStart.verified: see fillStarts; the
     * Manifest's table is a view of them: no copy kept)
     */
    private readonly manifestBytes: Buffer,
    /** a big manifest read from its start: its entries past `verifiedEntries` are read on first need */
    private readonly fromStart: ManifestFromStart | null = null,
  ) {
    this.starts = new Float64Array(manifest.chunkCount + 1);
    this.verifiedEntries = fromStart ? Math.floor((fromStart.verified - (manifestBytes.length - manifest.chunkCount * CHUNK_ENTRY_SIZE)) / CHUNK_ENTRY_SIZE) : manifest.chunkCount;
  }

  /**
   * Sums chunk starts up to index `k` at least (FILL_STEP at a time, at most). Reaching the last, it
   * checks that the lengths add up to the size (as Manifest.parse does): a read past a
   * shortfall fails, never served from a wrong chunk.
   */
  private fillStarts(k: number): void {
    const n = this.manifest.chunkCount;
    if (k <= this.filled || this.filled === n) return;
    let to = Math.min(n, Math.max(k, this.filled + Math.min(FILL_STEP, Math.max(256, this.filled))));
    if (k <= this.verifiedEntries) to = Math.min(to, this.verifiedEntries); // no further than asked past what is verified
    if (to > this.verifiedEntries) {
      this.fromStart!.complete(); // the rest of the manifest, verified whole (a few ms for 20 GiB, once)
      this.verifiedEntries = n;
    }
    const s = this.starts;
    for (let i = this.filled; i < to; i++) s[i + 1] = s[i]! + this.manifest.lengthAt(i);
    if (to === n && s[n] !== this.size) throw new ManifestError(`manifest ${this.pointer.manifest}: chunk lengths do not add up to the file size`);
    this.filled = to;
  }

  /**
   * The manifest from the local store, else the disk cache, else a remote (verified against
   * its id there, then kept in the disk cache); it must name the pointer's file id and size.
   */
  static async open(pointer: Pointer, deps: ContentDeps): Promise<FileContent> {
    for (const store of [deps.store, deps.cache?.store]) {
      if (!store?.hasManifest(pointer.manifest)) continue;
      // a big one: its first 4 MiB (113,000 chunks, 7 GiB of file) verified, the rest read
      // when a read reaches it (fillStarts); the lengths are summed as reads reach them
      const read = store.readManifestFromStart(pointer.manifest);
      if (read.verified < read.bytes.length && read.bytes.readUInt32LE(12) + 16 > read.verified) read.complete(); // a header that long: whole
      const m = Manifest.parse(read.bytes, false);
      checkPointer(pointer, m);
      return new FileContent(pointer, m, deps, read.bytes, read.verified < read.bytes.length ? read : null);
    }
    if (!deps.remote) {
      throw new DitsUserError('content-missing', `manifest ${pointer.manifest} is not in the local store and no remote was given`, { hint: 'fetch it with `git dits pull -- <path>`' });
    }
    // a manifest only a remote has: so are its chunks, surely. The remote reader fetches the
    // manifest and its location table together (then reads start at once) and hands the
    // manifest over: one GET of it, not two. A reader that cannot open (content not complete
    // on any remote) is opened again on the first read; the manifest alone is fetched then.
    const reader = deps.remote.open(pointer.manifest);
    reader.catch(() => {});
    const { bytes, m, r } = await reader.then(
      (r) => ({ bytes: r.manifestBytes, m: r.manifest, r: r as RemoteFileReader | null }),
      async () => {
        const b = await deps.remote!.manifest(pointer.manifest);
        return { bytes: b, m: Manifest.parse(b), r: null };
      },
    );
    checkPointer(pointer, m);
    // a big manifest from its first 4 MiB on (the reader verified them through the leaves
    // its location table carries); the rest arrives in the background, and a read that needs
    // an entry past them waits for it (readInto)
    let fromStart: ManifestFromStart | null = null;
    if (r !== null && r.manifestVerifiedBytes < bytes.length) {
      const early = r;
      fromStart = {
        bytes,
        get verified() {
          return early.manifestVerifiedBytes;
        },
        complete() {
          if (early.manifestVerifiedBytes < bytes.length) throw new Error(`the rest of manifest ${pointer.manifest} has not arrived`); // readInto waits for it first
        },
      };
    }
    const fc = new FileContent(pointer, m, deps, bytes, fromStart);
    if (r !== null && fromStart !== null) fc.remoteWhole = () => r.whole();
    if (deps.cache) fc.cacheManifestLater(deps.cache);
    fc.remoteReader = reader;
    reader.catch(() => fc.remoteReader === reader && (fc.remoteReader = null)); // opened again on the next read
    return fc;
  }

  /**
   * Keeps a remote file's manifest in the disk cache for later mounts, a moment after the
   * open (or at close, if sooner) rather than before the first read: storing a 20 GiB file's
   * 12 MB manifest takes 50-80 ms.
   */
  private cacheManifestLater(cache: CacheStore): void {
    const store = (): void => {
      clearTimeout(timer);
      this.storeManifest = null;
      if (this.fromStart !== null && this.fromStart.verified < this.manifestBytes.length) {
        // only a whole, verified manifest is kept (at close, one still arriving is not)
        if (!this.closed && this.remoteWhole !== null) this.remoteWhole().then(store, () => {});
        return;
      }
      try {
        if (!cache.store.hasManifest(this.pointer.manifest)) cache.store.putManifest(this.pointer.manifest, this.manifestBytes);
      } catch {
        // the store closed meanwhile, or a full disk: a cache only
      }
    };
    const timer = setTimeout(store, MANIFEST_CACHE_DELAY_MS);
    timer.unref();
    this.storeManifest = store;
  }

  get size(): number {
    return this.pointer.size;
  }

  /** Index of the chunk holding byte `pos` (0 <= pos < size). */
  chunkAt(pos: number): number {
    // summed until a chunk starts past pos, so the one found has its end summed too
    while (this.filled < this.manifest.chunkCount && this.starts[this.filled]! <= pos) this.fillStarts(this.filled + 1);
    let lo = 0;
    let hi = Math.min(this.filled, this.manifest.chunkCount) - 1;
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
   * Reads into `target` (FUSE's buffer, or a sink that copies into it: no copy of our own);
   * the byte count. Chunks come from the RAM cache, else a run of the local store (see
   * loadRun), else the disk cache, else the remote.
   */
  async readInto(target: Buffer | ReadSink, offset: number, length: number, ra: ReadAhead = newReadAhead(), stop?: { readonly stopped: boolean }): Promise<number> {
    const end = Math.min(this.size, offset + length, offset + target.length);
    if (end <= offset) return 0;
    // the chunk buffers this read finds are not used again until it ends (chunk-pool.ts)
    const pool = this.deps.ram.pool;
    const epoch = pool.enter();
    try {
      return await this.readRange(target, offset, length, end, ra, stop);
    } finally {
      pool.leave(epoch);
    }
  }

  /** readInto's work, for bytes [offset, end) of the file (end within the file and target). */
  private async readRange(target: Buffer | ReadSink, offset: number, length: number, end: number, ra: ReadAhead, stop: { readonly stopped: boolean } | undefined): Promise<number> {
    const sequential = advanceReadAhead(ra, offset, length, end);
    if (this.remoteWhole !== null && (ra.window > 0 || end > this.verifiedEnd())) await this.awaitWhole();
    const first = this.chunkAt(offset);
    const last = this.chunkAt(end - 1);
    // a sequential reader's run of the local store reaches a little further (one read of a
    // pack serves the next several requests: FUSE asks 128 KiB at a time)
    const aheadEnd = sequential ? this.chunkAt(Math.min(this.size - 1, end + STORE_READ)) : last;
    const pinned: LocalRun[] = [];
    try {
      const chunks = await this.chunks(first, last, aheadEnd, pinned);
      if (ra.window > 0) this.prefetch(last + 1, end + ra.window, ra.window / 2);
      let pos = offset;
      for (let k = 0; k < chunks.length; k++) {
        const i = first + k;
        const c = await chunks[k]!;
        // the target is no longer this read's (its answer was given: timed out, unmounted)
        if (stop?.stopped) return 0;
        const from = pos - this.starts[i]!;
        const take = Math.min(c.length - from, end - pos);
        putBytes(target, c, from, from + take, pos - offset);
        pos += take;
      }
      // a remote manifest still arriving: the rest is asked for once this read is served
      // (not before: its GET would share the first read's time)
      if (this.remoteWhole !== null) this.remoteWhole().catch(() => {});
      return end - offset;
    } finally {
      for (const r of pinned) r.pins--;
      this.trimRuns();
    }
  }

  /** Where the entries of the manifest verified so far end, in the file. */
  private verifiedEnd(): number {
    this.fillStarts(this.verifiedEntries);
    return this.starts[Math.min(this.filled, this.verifiedEntries)]!;
  }

  /** The rest of a remote manifest still arriving, verified (see open). */
  private async awaitWhole(): Promise<void> {
    const w = this.remoteWhole;
    if (w === null) return;
    await w();
    if (this.remoteWhole === w) this.remoteWhole = null;
  }

  private key(i: number): string {
    return this.manifest.idRawAt(i).toString('base64');
  }

  /** The run of the local store holding chunk i, loaded or loading. */
  private runFor(i: number): LocalRun | undefined {
    for (let k = this.runs.length - 1; k >= 0; k--) {
      const r = this.runs[k]!;
      if (i >= r.first && i <= r.last) return r;
    }
    return undefined;
  }

  /**
   * Chunks [i, up to `until`] while the local store holds them (at least chunk i, or
   * undefined), at most STORE_READ bytes past chunk i's start unless the read needs more
   * (`need`): read in runs back to back in a pack, verified on a pool thread, into buffers
   * from this file's pool. The run stays (its chunks are views of those buffers) while it
   * is one of the last LOCAL_RUNS or a read holds it (pins); then its buffers go back to the
   * pool. This is the local store's cache: its chunks never go to the RAM cache.
   */
  private loadRun(i: number, need: number, until: number): LocalRun | undefined {
    let end = Math.max(need, until);
    while (end > need && this.starts[end + 1]! - this.starts[i]! > STORE_READ) end--;
    const ids: Buffer[] = [];
    for (let j = i; j <= end; j++) ids.push(this.manifest.idRawAt(j));
    const located = this.deps.store.locateMany(ids);
    let take = 0;
    while (take < located.length && located[take] !== undefined) take++;
    if (take === 0) return undefined;
    const run: LocalRun = { first: i, last: i + take - 1, views: new Map(), bufs: [], pins: 0, settled: false, loaded: Promise.resolve() };
    run.loaded = (async () => {
      let j = i;
      const lend = (): Buffer => {
        const b = this.pool.pop() ?? Buffer.allocUnsafeSlow(STORE_READ + ALIGN_SLACK);
        run.bufs.push(b);
        return b;
      };
      try {
        const locs = located.slice(0, take) as NonNullable<(typeof located)[number]>[];
        for await (const group of this.deps.store.readChunkGroups(ids.slice(0, take), { maxRead: STORE_READ, buffer: lend, located: locs, ahead: 1 })) {
          for (const c of group.chunks) {
            run.views.set(j++, c);
            this.stats.localChunks++;
          }
        }
      } catch (err) {
        this.runs = this.runs.filter((r) => r !== run); // not kept: the next read tries again
        throw err;
      } finally {
        run.settled = true;
      }
    })();
    run.loaded.catch(() => {});
    this.runs.push(run);
    return run;
  }

  /** Drops the oldest runs no read holds beyond the last LOCAL_RUNS; their buffers go back to the pool. */
  private trimRuns(): void {
    let extra = this.runs.length - LOCAL_RUNS;
    if (extra <= 0) return;
    this.runs = this.runs.filter((r) => {
      if (extra <= 0 || r.pins > 0 || !r.settled) return true;
      extra--;
      for (const b of r.bufs) if (this.pool.length < POOL_BUFFERS) this.pool.push(b);
      return false;
    });
  }

  private async chunks(first: number, last: number, aheadEnd: number, pinned: LocalRun[]): Promise<(Buffer | Promise<Buffer>)[]> {
    const got: (Buffer | Promise<Buffer> | null)[] = [];
    let missing = false;
    for (let i = first; i <= last; i++) {
      const hit = this.deps.ram.get(this.key(i)) ?? this.takeAhead(i) ?? null;
      if (hit === null) missing = true;
      else if (Buffer.isBuffer(hit)) this.stats.ramHits++;
      got.push(hit);
    }
    if (!missing) return got as (Buffer | Promise<Buffer>)[];
    // the local store, a run at a time
    for (let k = 0; k < got.length; k++) {
      if (got[k] !== null) continue;
      const i = first + k;
      let run = this.runFor(i);
      if (run && run.settled && !run.views.has(i)) run = undefined;
      run ??= this.loadRun(i, last, aheadEnd);
      if (!run) continue;
      run.pins++;
      pinned.push(run);
      await run.loaded;
      for (let j = k; j < got.length; j++) {
        const v = got[j] === null ? run.views.get(first + j) : undefined;
        if (v) got[j] = v;
      }
    }
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
  private prefetch(from: number, toByte: number, slack = 0): void {
    // only for a file a remote has had to serve: a local file would be looked up chunk by
    // chunk for nothing (64 MiB ahead is a thousand lookups a read)
    if (!this.deps.remote || !this.sawRemote) return;
    const n = this.manifest.chunkCount;
    this.fillStarts(n);
    // a read continuing the stretch the last prefetch looked at starts where that one ended,
    // and asks for nothing while more than `slack` (half the window) is still ahead of it:
    // otherwise a reader at the full window would slide it by one read each time, one GET
    // of one read's size a read (about a thousand GETs a GiB for 1 MiB reads, measured)
    let i = from;
    if (from >= this.scanned[0] && from <= this.scanned[1]) {
      if (this.starts[this.scanned[1]]! >= toByte - slack) return;
      i = this.scanned[1];
    } else this.scanned[0] = from;
    const from0 = i;
    while (i < n && this.starts[i]! < toByte) i++;
    const missing = this.missingIn(from0, i);
    for (let k = 0; k < missing.length; k++) {
      let e = k;
      while (e + 1 < missing.length && missing[e + 1] === missing[e]! + 1) e++;
      for (const p of this.fetch(missing[k]!, missing[e]!).values()) p.catch(() => {}); // a reader that needs it sees the error
      k = e;
    }
    this.scanned[1] = i;
  }

  /**
   * The chunks of [a, b) that are nowhere here (not being fetched, not in the RAM cache, the
   * local store or the disk cache), ascending. The stores are asked in one read transaction
   * each: a query apiece took the main thread 4% of a remote read (a read lock each).
   */
  private missingIn(a: number, b: number): number[] {
    let out: number[] = [];
    for (let i = a; i < b; i++) if (!this.ahead.has(i) && this.deps.ram.get(this.key(i)) === undefined) out.push(i);
    const ids = (): Buffer[] => out.map((i) => this.manifest.idRawAt(i));
    if (out.length > 0) {
      const local = this.deps.store.locateMany(ids());
      out = out.filter((_, k) => local[k] === undefined);
    }
    const cache = this.deps.cache;
    if (cache && out.length > 0) {
      const cached = cache.hasMany(ids());
      out = out.filter((_, k) => !cached[k]);
    }
    return out;
  }

  private reader(): Promise<RemoteFileReader> {
    if (!this.remoteReader) {
      if (!this.deps.remote) {
        return Promise.reject(new DitsUserError('content-missing', `chunks of ${this.pointer.manifest} are not in the local store and no remote was given`, { hint: 'fetch the file with `git dits pull -- <path>`' }));
      }
      this.remoteReader = this.deps.remote.open(this.pointer.manifest, this.remoteWhole === null ? this.manifestBytes : undefined);
      this.remoteReader.catch(() => (this.remoteReader = null)); // tried again on the next read
    }
    return this.remoteReader;
  }

  /**
   * A chunk fetched or being fetched from the remote that no read has taken yet: the read
   * that takes it moves it into the RAM cache (at once, or as it arrives).
   */
  private takeAhead(i: number): Buffer | Promise<Buffer> | undefined {
    const e = this.ahead.get(i);
    if (e === undefined) return undefined;
    if (e.b === null) {
      e.taken = true;
      return e.p;
    }
    this.dropAhead(i, e, true);
    return e.b;
  }

  /** Chunk i leaves the read-ahead; into the RAM cache when it arrived (`keep`). */
  private dropAhead(i: number, e: AheadChunk, keep: boolean): void {
    if (this.ahead.get(i) !== e) return;
    this.ahead.delete(i);
    this.aheadBytes -= this.manifest.lengthAt(i);
    if (keep && e.b !== null) this.deps.ram.put(this.key(i), e.b);
  }

  /**
   * Over AHEAD_LIMIT (a reader that went elsewhere): the oldest chunks that arrived go to
   * the RAM cache, where the least recently used go first.
   */
  private trimAhead(): void {
    if (this.aheadBytes <= AHEAD_LIMIT) return;
    for (const [i, e] of this.ahead) {
      if (this.aheadBytes <= AHEAD_LIMIT) break;
      if (e.b !== null) this.dropAhead(i, e, true);
    }
  }

  /**
   * Fetches chunks [a, b] from the remote in pieces of at most FETCH_PIECE (openRemoteFile's
   * fetchChunks: each chunk handed over as soon as it arrived and verified, not when its
   * GET ends), each kept in the disk cache as it arrives, and held for the reads that will
   * take them (the read-ahead: not in the RAM cache, whose least recently used entries they
   * would push out, or be pushed out by, before they are read); chunk index -> its promise.
   */
  private fetch(a: number, b: number): Map<number, Promise<Buffer>> {
    this.sawRemote = true;
    this.fillStarts(b + 1); // starts[a..b+1] (a remote manifest still arriving: b is in its first part)
    const out = new Map<number, Promise<Buffer>>();
    let i = a;
    while (i <= b) {
      let e = i;
      while (e + 1 <= b && this.starts[e + 2]! - this.starts[i]! <= FETCH_PIECE) e++;
      const from = i;
      const to = e;
      const entries: AheadChunk[] = [];
      for (let j = from; j <= to; j++) {
        let resolve!: (c: Buffer) => void;
        let reject!: (err: unknown) => void;
        const p = new Promise<Buffer>((res, rej) => {
          resolve = res;
          reject = rej;
        });
        p.catch(() => {}); // a reader that needs it sees the error
        const entry: AheadChunk = { p, b: null, taken: false, resolve, reject };
        entries.push(entry);
        this.ahead.set(j, entry);
        this.aheadBytes += this.manifest.lengthAt(j);
        out.set(j, p);
      }
      const cache = this.deps.cache;
      const pool = this.deps.ram.pool;
      if (cache) pool.fence ??= () => cache.fence();
      this.reader()
        .then((r) =>
          r.fetchChunks(
            from,
            to,
            (j, c) => {
              const entry = entries[j - from]!;
              this.stats.remoteChunks++;
              cache?.put(this.manifest.idRawAt(j), c);
              entry.b = c;
              entry.resolve(c);
              if (entry.taken) this.dropAhead(j, entry, true);
              this.trimAhead();
              // the disk cache's writes behind (direct I/O copies what is put): this GET waits
              return cache?.backpressure() ?? undefined;
            },
            (n) => pool.take(n),
          ),
        )
        .catch((err: unknown) => {
          for (let j = from; j <= to; j++) {
            const entry = entries[j - from]!;
            if (entry.b !== null) continue;
            entry.reject(err);
            this.dropAhead(j, entry, false); // the next read asks again
          }
        })
        .finally(() => cache?.commit());
      i = e + 1;
    }
    return out;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.storeManifest?.(); // before the stores close (the unmount calls this first)
    const r = this.remoteReader;
    this.remoteReader = null;
    if (r) await r.then((x) => x.close()).catch(() => {});
  }
}
