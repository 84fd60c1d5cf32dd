/**
 * Buffers for chunks fetched from a remote, used again once nothing can read them any more,
 * so a sequential read of a remote file does not make a new buffer per chunk.
 *
 * Why: V8 starts a full garbage collection for every 64 MiB of new ArrayBuffers (its
 * external memory limit), whatever the heap holds. A 1 GiB cat through the mount made a
 * gigabyte of chunk buffers, which the RAM cache then let go: about 40 full collections;
 * with the buffers used again, about 20 (measured with the RAM cache's buffers from a ring).
 *
 * The lifecycle, and why a buffer given out again is never one still read:
 * - take(size): a view of `size` bytes of a buffer whose capacity is `size` rounded up to
 *   STEP (one of up to three classes above is taken too, when free).
 * - The buffer holds one chunk, verified, from then on: in the read-ahead, then the RAM
 *   cache, and written to the disk cache from where it is (a borrowed write).
 * - retire(b): the RAM cache let it go (evicted or replaced). A read that found it in the
 *   RAM cache or the read-ahead may still be copying from it, so it waits in quarantine,
 *   tagged with the last read epoch given out: every read (FileContent.readInto) takes an
 *   epoch at its start (enter) and gives it back at its end (leave), and a read that
 *   started after the retire cannot find the buffer any more. Once every read with an
 *   epoch at or below the tag has ended, and the disk cache's writes sent so far have
 *   finished (`fence`: borrowed writes), the buffer is free for take().
 * - Buffers not taken from here (chunks of the local store, the disk cache, decoded zstd
 *   chunks, small blobs) are not retired: retire() ignores them, the GC has them.
 * - Dropping a buffer (to the GC) is always safe: over `limit` bytes of free and quarantined
 *   buffers, or when the fence fails (the disk cache closed), that is what happens.
 */

/** Capacity step of the buffers (a chunk of n bytes takes ceil(n / STEP) * STEP). */
export const STEP = 8 * 1024;
/** Quarantined bytes safe to free that are worth a fence (a fence sends the disk cache's open writes early). */
const BATCH = 4 << 20;

interface Owned {
  /** the whole buffer (its capacity) */
  whole: Buffer;
  /** given out by take() and not retired since */
  out: boolean;
}

export class ChunkPool {
  private epoch = 0;
  /** epochs of reads in progress, oldest first (a Set keeps insertion order) */
  private readonly active = new Set<number>();
  /** retired buffers, in the order retired (tags ascending) */
  private quarantine: { whole: Buffer; tag: number }[] = [];
  private quarantineBytes = 0;
  /** free buffers by capacity class (capacity / STEP) */
  private readonly free = new Map<number, Buffer[]>();
  private freeBytes = 0;
  private releasing = false;
  private readonly owned = new WeakMap<ArrayBufferLike, Owned>();
  /**
   * Resolves once the disk cache's writes sent before the call have finished (its borrowed
   * writes of retired buffers); rejects when that cannot be known (the buffers are dropped).
   * Null: no disk cache.
   */
  fence: (() => Promise<void>) | null = null;
  readonly stats = { taken: 0, reused: 0, dropped: 0 };

  constructor(
    /** bytes of free and quarantined buffers kept, at most */
    readonly limit: number,
    /** quarantined bytes safe to free that are worth a fence (tests: less) */
    private readonly batch = BATCH,
  ) {}

  /** A buffer for a chunk of `size` bytes (a view of exactly that length). */
  take(size: number): Buffer {
    this.stats.taken++;
    const cls = Math.max(1, Math.ceil(size / STEP));
    for (let c = cls; c <= cls + 3; c++) {
      const whole = this.free.get(c)?.pop();
      if (whole === undefined) continue;
      this.freeBytes -= whole.length;
      this.owned.get(whole.buffer)!.out = true;
      this.stats.reused++;
      return whole.subarray(0, size);
    }
    const whole = Buffer.allocUnsafeSlow(cls * STEP);
    this.owned.set(whole.buffer, { whole, out: true });
    return whole.subarray(0, size);
  }

  /** A read starts: its epoch (give it back with leave()). */
  enter(): number {
    const e = ++this.epoch;
    this.active.add(e);
    return e;
  }

  /** The read of epoch `e` has ended: nothing it found is read by it any more. */
  leave(e: number): void {
    this.active.delete(e);
    this.release();
  }

  /** `b` left the RAM cache (see the lifecycle above); anything not from take() is ignored. */
  retire(b: Buffer): void {
    const o = this.owned.get(b.buffer);
    if (o === undefined || !o.out) return;
    o.out = false;
    this.quarantine.push({ whole: o.whole, tag: this.epoch });
    this.quarantineBytes += o.whole.length;
    // a read that never ends must not hold memory: the oldest go to the GC
    while (this.quarantineBytes + this.freeBytes > this.limit && this.quarantine.length > 0) {
      this.quarantineBytes -= this.quarantine.shift()!.whole.length;
      this.stats.dropped++;
    }
    this.release();
  }

  /** Bytes held: free and quarantined buffers. */
  get bytes(): number {
    return this.freeBytes + this.quarantineBytes;
  }

  /** Moves the quarantined buffers no read can hold any more to the free lists, after a fence. */
  private release(): void {
    if (this.releasing || this.quarantine.length === 0) return;
    const oldest = this.active.values().next();
    const safeBelow = oldest.done ? Infinity : oldest.value;
    let k = 0;
    let bytes = 0;
    while (k < this.quarantine.length && this.quarantine[k]!.tag < safeBelow) bytes += this.quarantine[k++]!.whole.length;
    if (k === 0 || (bytes < this.batch && this.fence !== null)) return;
    const batch = this.quarantine.splice(0, k);
    this.quarantineBytes -= bytes;
    const done = (): void => {
      this.releasing = false;
      for (const { whole } of batch) {
        if (this.freeBytes + this.quarantineBytes + whole.length > this.limit) {
          this.stats.dropped++;
          continue;
        }
        const cls = whole.length / STEP;
        let list = this.free.get(cls);
        if (list === undefined) this.free.set(cls, (list = []));
        list.push(whole);
        this.freeBytes += whole.length;
      }
      this.release();
    };
    if (this.fence === null) return done();
    this.releasing = true;
    this.fence().then(done, () => {
      this.releasing = false;
      this.stats.dropped += batch.length; // not known to be written: left to the GC
    });
  }
}
