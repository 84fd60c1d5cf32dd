/**
 * Chunks the mount fetched from a remote, kept on disk so a second read is local: a store
 * of its own in `.git/dits/mount-cache/` (the same pack and index format as the local
 * store), within a byte budget (`--cache`), the least recently used packs dropped first.
 *
 * Why not the repository's own store: eviction deletes, and the local store may hold the
 * only copy of content not pushed yet. Everything in this cache was just read from a remote
 * and verified there, so dropping any of it loses nothing. Small packs (a sixteenth of the
 * budget, 256 KiB to 64 MiB) make eviction fine-grained: a whole pack goes at once.
 *
 * Several mounts of one repository share the cache (the store takes concurrent writers);
 * a pack another mount evicted reads as missing here and is fetched again.
 */
import path from 'node:path';
import { ChunkStore } from '../store/chunk-store.js';
import { CODEC_NONE } from '../store/pack-format.js';

export class CacheStore {
  readonly store: ChunkStore;
  /** pack id -> last use (ms) in this process; packs not used here count as their creation time */
  private readonly lastUse = new Map<number, number>();
  /** bytes of packs, as of the last look, plus what was appended since */
  private estimate: number;
  /** bytes put since the last commit (see put) */
  private bytesSinceCommit = 0;
  /** bytes put whose commit has not finished: on disk, not yet counted by eviction (see backpressure) */
  private uncommitted = 0;
  /**
   * put() commits (and so evicts) on its own past this many bytes: a tenth of the budget, at
   * least 1 MiB. The mount commits after each fetch piece (32 MiB), which alone let a small
   * budget be exceeded by about 100 MiB during a long read; a big budget is not touched (a
   * tenth of the default 2 GiB is more than a piece).
   */
  private readonly commitEvery: number;
  /** After close(): fetches still arriving are not kept, reads miss. */
  private closed = false;
  /** The commits asked for, one after the other (see commit). */
  private committing: Promise<void> = Promise.resolve();

  private constructor(
    store: ChunkStore,
    readonly budget: number,
    private readonly now: () => number,
  ) {
    this.store = store;
    this.commitEvery = Math.max(1 << 20, Math.floor(budget / 10));
    // packUsage counts rows against a live set (gc's, this connection's own): here an empty one
    store.markLive(() => {});
    this.estimate = this.measure();
  }

  /**
   * Packs are written with direct I/O where the file system takes it (store/direct-appender.ts;
   * DITS_DIRECT_WRITE=0: through the page cache), as the local store's are: the mount writes
   * as many bytes to the cache as it reads, and buffered, each GiB cost the mount 1.1 to 4+ s
   * of system time in fresh page-cache pages (1 GiB cat from s3rver, 3 alternating runs: 4.3
   * to 10.1 s of the mount's CPU buffered, 3.3 to 3.7 s direct). The copy into aligned
   * buffers is bounded: past two 4 MiB writes waiting, backpressure() makes the fetch wait.
   */
  static open(ditsDir: string, budget: number, now: () => number = Date.now): CacheStore {
    const packRollSize = Math.max(256 << 10, Math.min(64 << 20, Math.floor(budget / 16)));
    const store = ChunkStore.open(path.join(ditsDir, 'mount-cache'), { create: true, packRollSize });
    return new CacheStore(store, budget, now);
  }

  get dir(): string {
    return this.store.dir;
  }

  /** A verified chunk, or null when this cache lacks it (or lost it to another mount's eviction). */
  async get(idRaw: Buffer): Promise<Buffer | null> {
    if (this.closed) return null;
    const loc = this.store.locate(idRaw);
    if (!loc) return null;
    try {
      const b = await this.store.getChunk(idRaw);
      this.lastUse.set(loc.pack, this.now());
      return b;
    } catch {
      // damaged, cut short, or its pack deleted by another mount's eviction: fetched again
      // from the remote, and the row forgotten so that the chunk fetched is kept again (a row
      // left pointing at bad bytes would send every later read of it to the remote)
      try {
        this.store.forgetChunkAt(idRaw, loc);
      } catch {
        // a cache: the next read misses again
      }
      return null;
    }
  }

  has(idRaw: Buffer): boolean {
    if (this.closed) return false;
    return this.store.locate(idRaw) !== undefined;
  }

  /** has() for many ids, in one read transaction. */
  hasMany(idsRaw: readonly Buffer[]): boolean[] {
    if (this.closed) return idsRaw.map(() => false);
    return this.store.locateMany(idsRaw).map((loc) => loc !== undefined);
  }

  /**
   * Keeps chunks just fetched and verified (plain bytes), copied into the direct writes'
   * aligned buffers, or (buffered) written from where they are: the caller does not change
   * `plain` until a fence() taken after the call resolved (the mount's chunk pool waits for
   * it before using a buffer again). Call commit() after a batch (put also commits on its
   * own, every tenth of the budget); mind backpressure(). Not looked up in the index first
   * (a query a chunk): the mount fetches only what this cache lacked a moment ago; a chunk
   * another mount kept meanwhile costs its bytes twice in the packs, the index keeps one.
   */
  put(idRaw: Buffer, plain: Buffer): void {
    if (this.closed) return;
    if (this.store.putStoredChunk(idRaw, CODEC_NONE, plain.length, plain, true, true)) {
      this.estimate += plain.length + 64;
      this.bytesSinceCommit += plain.length;
      this.uncommitted += plain.length;
      if (this.bytesSinceCommit >= this.commitEvery) this.commit();
    }
  }

  /**
   * Null, or a promise (never rejected) to wait on before putting more: the writes of what
   * was put are that far behind (the caller's fetch waits, so memory stays bounded).
   */
  backpressure(): Promise<void> | null {
    if (this.closed) return null;
    const writes = this.store.backpressure();
    // commits behind: what they have not indexed yet, eviction cannot see nor drop (with a
    // small --cache, packs of 1 MiB, the commits fell 20-40 MiB behind a read from s3rver
    // and the packs on disk reached 100 MiB for a budget of 16); never with the default
    // budget, whose commits come a fetch piece (32 MiB) at a time
    const commits = this.uncommitted > 2 * this.commitEvery ? this.committing : null;
    return writes && commits ? Promise.all([writes, commits]).then(() => {}) : (writes ?? commits);
  }

  /**
   * Makes the chunks put so far readable once they are written, then drops the least
   * recently used packs while over budget. Returns at once: the writes go through the thread
   * pool (the reader is not held up by the disk; a synchronous commit also wrote the runs in
   * flight a second time), one commit after the other. A failure (a full disk) costs only
   * what the cache would have kept: those chunks are fetched again next time.
   */
  commit(): void {
    // (chunks are never empty: no bytes put, nothing to index)
    if (this.closed || this.bytesSinceCommit === 0) return;
    // the bytes this commit indexes (put since the last one)
    const bytes = this.bytesSinceCommit;
    this.bytesSinceCommit = 0;
    this.committing = this.committing
      .then(async () => {
        if (this.closed) return;
        // the open run goes out asynchronously too (commitAsync writes one left behind
        // synchronously, on this thread)
        await this.store.writeFence();
        if (this.closed) return;
        await this.store.commitAsync();
        if (!this.closed && this.estimate > this.budget) this.evict();
      })
      .catch(() => {})
      .finally(() => (this.uncommitted -= bytes));
  }

  /**
   * Resolves when the chunks put so far may change (their borrowed writes have finished);
   * rejects once the cache is closed (a write of them may still be under way).
   */
  fence(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the mount cache is closed'));
    return this.store.writeFence().then(() => {
      if (this.closed) throw new Error('the mount cache is closed');
    });
  }

  /** Resolves when every commit asked for so far is done (tests, and before close). */
  settled(): Promise<void> {
    return this.committing;
  }

  /** Bytes of every pack of the cache (their indexed ends). */
  private measure(): number {
    return this.store.packUsage(0).reduce((n, p) => n + p.indexedEnd, 0);
  }

  private evict(): void {
    const packs = this.store.packUsage(0).map((p) => ({ pack: p.pack, bytes: p.indexedEnd, used: this.lastUse.get(p.pack) ?? p.created }));
    let total = packs.reduce((n, p) => n + p.bytes, 0);
    packs.sort((a, b) => a.used - b.used);
    // down to 90% so eviction does not run again on the next batch
    for (const p of packs) {
      if (total <= this.budget * 0.9) break;
      this.store.rewritePack(p.pack, () => false);
      this.lastUse.delete(p.pack);
      total -= p.bytes;
    }
    this.estimate = total;
  }

  /** Bytes on disk now, as far as this process knows. */
  get bytes(): number {
    return this.estimate;
  }

  /**
   * Stops keeping chunks. What was put and is not committed yet is written and indexed now,
   * synchronously (the rows a commit in flight took are then lost to the index: unindexed
   * bytes at a pack's end, as after a crash; the chunks are fetched again next time).
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.store.commit();
    } catch {
      // a cache: nothing lost that a remote does not hold
    }
    this.store.close();
  }
}
