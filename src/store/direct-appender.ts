/**
 * Appends to a new file with direct I/O (O_DIRECT): the bytes go from this process's
 * buffers to the disk without passing through the page cache. Used for packs while adding
 * (chunk-store.ts, `dits.directWrite`).
 *
 * Why: a buffered write copies every byte into page-cache pages the kernel must find
 * first. Adding a big file writes as many new bytes as the file holds, so that copy, and
 * the allocation of pages that no read wants soon (the source file is in the cache already,
 * and ingest of terabytes would only push other files out), are a large share of an add's
 * CPU: measured on the 2-core machines here, 1 GiB of fresh page cache took 3.7 to 4.1 s of
 * system time (`dd bs=4M count=256`, guest pages the hypervisor hands out on first touch)
 * against 0.3 s with `oflag=direct`; and two buffered writes to one file in flight spin on
 * the inode lock. Direct writes are sent one at a time, in order.
 *
 * Direct I/O wants offsets, lengths and buffer addresses on a block boundary, so bytes are
 * copied into page-aligned buffers of BUFFER_SIZE (each covering an aligned span of the
 * file) and written in whole blocks. A flush in the middle of a block writes a zero-padded
 * copy of that block (a buffer must not change under a direct write, and appends go on
 * filling the block); the next write of the block carries the bytes appended since, and
 * close() cuts the file to the bytes appended. So until close the file may be up to
 * BLOCK - 1 bytes longer than its content: after a crash such padding stays at a pack's
 * end, like any unindexed tail (chunk-store.ts).
 *
 * Bytes in a buffer never change once appended (appends only fill it further), so every
 * write carries the same bytes whenever it runs: flushSync may write synchronously what
 * queued writes will write again.
 *
 * Where the file system refuses direct I/O (EINVAL: tmpfs on older kernels, some network
 * and FUSE file systems), open() returns null and the caller writes buffered; a refusal at
 * a later write switches this file to buffered writes of the same bytes.
 */
import fs from 'node:fs';
import { allocAligned } from './aligned-buffer.js';
import { copyBytes } from '../native-addon.js';
import { errnoCode } from '../errors.js';

/** Direct I/O alignment used for offsets, lengths and addresses (the page: covers 512 B and 4 KiB devices). */
export const BLOCK = 4096;
/** Bytes per buffer (one direct write when full). */
const BUFFER_SIZE = 4 * 1024 * 1024;
/** Full buffers waiting or being written before backpressure() asks to wait. */
const MAX_QUEUED = 2;
/** Spare buffers a pool keeps (the appenders of one store share one: packs roll often). */
const MAX_POOL = MAX_QUEUED + 1;
/** sendEarly sends no less than this (smaller writes cost more per byte than they save). */
const EARLY_MIN = 256 * 1024;
/** flushSync writes at most this many unsent bytes through the page cache (see there). */
const TAIL_BUFFERED_MAX = 1024 * 1024;

interface Span {
  /** page-aligned, BUFFER_SIZE bytes */
  buf: Buffer;
  /** file offset of buf[0] (a multiple of BUFFER_SIZE) */
  base: number;
  /** bytes appended into buf */
  fill: number;
  /**
   * buf[0, sent) is on its way to the disk: the whole blocks from buf, the block it ends in
   * (when sent is not on a block boundary) from a padded copy, so that block goes again
   */
  sent: number;
}

interface Job {
  /** the bytes: a span's buffer, or a copy of the block a flush ends in */
  buf: Buffer;
  /** file offset of buf[0] */
  base: number;
  /** the range of buf to write: from is block-aligned, to is block-aligned (direct) */
  from: number;
  to: number;
  /** bytes of the range that are content (to, or less when the range ends in padding) */
  valid: number;
  /** a span's buffer that is free once this (its last) write is done */
  recycle: Buffer | null;
}

const roundUp = (n: number): number => Math.ceil(n / BLOCK) * BLOCK;
const roundDown = (n: number): number => Math.floor(n / BLOCK) * BLOCK;
/** Where the next write of span `s` starts: the first block not yet sent whole. */
const unsentFrom = (s: Span): number => roundDown(s.sent);

export class DirectAppender {
  /** Bytes appended so far: the file's size once everything is written. */
  private end = 0;
  /** the buffer being filled; null once sealed */
  private span: Span | null;
  private readonly queue: Job[] = [];
  /** the job being written asynchronously */
  private current: Job | null = null;
  /** fence(): woken by every finished write */
  private waiters: (() => void)[] = [];
  /** backpressure(): woken when fewer than MAX_QUEUED writes are waiting */
  private roomWaiters: (() => void)[] = [];
  private writeError: unknown = null;
  /** set once the file system refused a direct write: later writes go through this descriptor */
  private bufferedFd: number | null = null;
  private closeRequested = false;
  private beforeClose: ((fd: number) => void) | null = null;
  private closed = false;

  private constructor(
    /** the O_DIRECT descriptor */
    readonly fd: number,
    private readonly file: string,
    /** spare buffers, taken from and given back to */
    private readonly pool: Buffer[],
    /** a descriptor without O_DIRECT for small flushes (see flushSync), or null */
    private readonly tailFd: number | null = null,
  ) {
    this.span = { buf: pool.pop() ?? allocAligned(BUFFER_SIZE), base: 0, fill: 0, sent: 0 };
  }

  /**
   * Creates `file` (which must not exist) for direct appends, or returns null when the file
   * system does not take direct I/O (the file is then not created). `pool`: spare buffers
   * shared with other appenders (each returns its buffers there when closed).
   */
  static create(file: string, mode: number, pool: Buffer[] = []): DirectAppender | null {
    const { O_WRONLY, O_CREAT, O_EXCL, O_DIRECT } = fs.constants as typeof fs.constants & { O_DIRECT?: number };
    if (O_DIRECT === undefined) return null;
    let fd: number;
    try {
      // writable by its owner until both descriptors are open: a pack is read-only (0444)
      // once made, and a later open for writing would fail for anyone but root
      fd = fs.openSync(file, O_WRONLY | O_CREAT | O_EXCL | O_DIRECT, mode | 0o200);
    } catch (err) {
      if (errnoCode(err) === 'EINVAL') return null;
      throw err;
    }
    let tailFd: number | null = null;
    try {
      tailFd = fs.openSync(file, 'r+');
    } catch {
      /* small flushes then go direct, padded */
    }
    try {
      if ((mode & 0o200) === 0) fs.fchmodSync(fd, mode);
    } catch (err) {
      for (const d of [fd, tailFd]) if (d !== null) fs.closeSync(d);
      fs.rmSync(file, { force: true });
      throw err;
    }
    return new DirectAppender(fd, file, pool, tailFd);
  }

  /** Whether writes are queued or in flight. */
  get busy(): boolean {
    return this.current !== null || this.queue.length > 0;
  }

  /** The next bytes of the file (copied: the caller may reuse `data` at once). */
  append(data: Buffer): void {
    let done = 0;
    while (done < data.length) {
      const s = this.span;
      if (!s) throw new Error('DirectAppender.append: the file is sealed');
      const n = Math.min(data.length - done, BUFFER_SIZE - s.fill);
      copyBytes(done === 0 && n === data.length ? data : data.subarray(done, done + n), s.buf, s.fill);
      s.fill += n;
      done += n;
      this.end += n;
      if (s.fill === BUFFER_SIZE) {
        this.enqueue({ buf: s.buf, base: s.base, from: unsentFrom(s), to: BUFFER_SIZE, valid: BUFFER_SIZE, recycle: s.buf });
        this.span = { buf: this.pool.pop() ?? allocAligned(BUFFER_SIZE), base: s.base + BUFFER_SIZE, fill: 0, sent: 0 };
      }
    }
    this.sendEarly();
  }

  /**
   * With no write in flight, sends the whole blocks appended since the last write without
   * waiting for the buffer to fill: the disk then writes while the caller goes on cutting,
   * and a commit at the end of a file of a few MiB waits only for its last bytes (it waited
   * for a whole 4 MiB write, about 5 ms here, once per file). When the disk is busy, bytes
   * gather until it is free, so writes stay as large as the disk needs them to be.
   */
  private sendEarly(): void {
    const s = this.span;
    if (!s || this.busy) return;
    const from = unsentFrom(s);
    const to = roundDown(s.fill);
    if (to - from < EARLY_MIN) return;
    // (appends only fill the buffer past `to`: the blocks written do not change under the write)
    s.sent = Math.max(s.sent, to);
    this.enqueue({ buf: s.buf, base: s.base, from, to, valid: to, recycle: null });
  }

  /** Sends the bytes not yet on their way (the last block padded) without waiting. */
  submitAll(): void {
    const s = this.span;
    if (!s || s.fill === s.sent) return;
    for (const job of this.flushJobs(s)) this.enqueue(job);
  }

  /**
   * The writes of a flush of span `s`: its whole blocks not yet sent, from its buffer, and the
   * block the valid bytes end in from a copy, padded. Appends go on filling that block in the
   * buffer while the write is in flight; a buffer must not change under a direct write (file
   * systems that checksum data, such as btrfs, would store a checksum of other bytes). That
   * block is written again, whole, by a later write.
   */
  private flushJobs(s: Span): Job[] {
    const jobs: Job[] = [];
    const whole = roundDown(s.fill);
    const from = unsentFrom(s);
    if (whole > from) jobs.push({ buf: s.buf, base: s.base, from, to: whole, valid: whole, recycle: null });
    if (s.fill > whole) {
      const tail = allocAligned(BLOCK);
      copyBytes(s.buf.subarray(whole, s.fill), tail, 0);
      tail.fill(0, s.fill - whole);
      jobs.push({ buf: tail, base: s.base + whole, from: 0, to: BLOCK, valid: s.fill - whole, recycle: null });
    }
    s.sent = s.fill;
    return jobs;
  }

  /**
   * No more appends: sends the rest and gives the last buffer back to the pool once it is
   * written, so that a full pack waiting for its rows to commit holds no buffer.
   */
  seal(): void {
    const s = this.span;
    if (!s) return;
    this.span = null;
    // no byte of the buffer changes any more: its rest goes straight from it, zero-padded
    s.buf.fill(0, s.fill, roundUp(s.fill));
    this.enqueue({ buf: s.buf, base: s.base, from: unsentFrom(s), to: roundUp(s.fill), valid: s.fill, recycle: s.buf });
  }

  /** Null, or a promise to wait on before appending more (full buffers are waiting on the disk). */
  backpressure(): Promise<void> | null {
    if (!this.full) return null;
    return new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  private get full(): boolean {
    return this.queue.length + (this.current ? 1 : 0) >= MAX_QUEUED;
  }

  /** Resolves when every write sent so far has finished (failed or not). */
  async fence(): Promise<void> {
    this.submitAll();
    while (this.busy) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  /** Everything appended so far is on the file (throws a failed write's error). */
  async drain(): Promise<void> {
    await this.fence();
    this.throwWriteError();
  }

  /**
   * drain() without yielding: writes, synchronously, what is queued or in flight and what
   * is not sent yet (the asynchronous writes then write the same bytes again).
   *
   * With nothing in flight and less than TAIL_BUFFERED_MAX unsent, the unsent bytes are
   * written through the page cache instead (a descriptor without O_DIRECT, exact bytes, no
   * padding): a direct write waits for the device (about 0.8 ms for 256 KiB here), which
   * adding many small files paid once per file. The block they end in goes again, direct,
   * with the next write of the span, as after a padded flush; the kernel writes the cached
   * pages of a range back before a direct write over it, so the file ends the same.
   */
  flushSync(): void {
    const t = this.span;
    if (!this.busy && t && t.fill > t.sent && t.fill - t.sent <= TAIL_BUFFERED_MAX && this.writeTailBuffered(t)) return this.throwWriteError();
    const jobs = this.current ? [this.current, ...this.queue] : [...this.queue];
    for (const j of jobs) this.writeSync(j);
    const s = this.span;
    if (s && s.fill > s.sent) for (const job of this.flushJobs(s)) this.writeSync(job);
    this.throwWriteError();
  }

  async fsync(): Promise<void> {
    await this.drain();
    await new Promise<void>((resolve, reject) => fs.fsync(this.bufferedFd ?? this.fd, (err) => (err ? reject(err) : resolve())));
  }

  fsyncSync(): void {
    this.flushSync();
    fs.fsyncSync(this.bufferedFd ?? this.fd);
  }

  /**
   * Sends what is left, then, once no write is in flight, cuts the file to the bytes
   * appended (dropping padding and blocks reserved past the end), runs `beforeClose(fd)`
   * and closes the descriptors.
   */
  close(beforeClose?: (fd: number) => void): void {
    this.submitAll();
    this.closeRequested = true;
    if (beforeClose) this.beforeClose = beforeClose;
    this.closeIfIdle();
  }

  private closeIfIdle(): void {
    if (!this.closeRequested || this.closed || this.busy) return;
    this.closed = true;
    if (this.span) this.recycle(this.span.buf);
    this.span = null;
    try {
      fs.ftruncateSync(this.fd, this.end);
    } catch {
      /* at worst padding stays at the end, like an unindexed tail */
    }
    try {
      this.beforeClose?.(this.fd);
    } catch {
      /* best effort */
    }
    for (const fd of new Set([this.fd, this.bufferedFd, this.tailFd])) {
      if (fd === null) continue;
      try {
        fs.closeSync(fd);
      } catch {
        /* already failing */
      }
    }
  }

  private recycle(buf: Buffer): void {
    if (this.pool.length < MAX_POOL) this.pool.push(buf);
  }

  private enqueue(job: Job): void {
    this.queue.push(job);
    this.pump();
  }

  private pump(): void {
    if (this.current || this.queue.length === 0) return;
    const job = this.queue.shift()!;
    this.current = job;
    const step = (at: number): void => {
      const buffered = this.bufferedFd !== null;
      const to = buffered ? job.valid : job.to;
      if (at >= to) return this.settle(job, null);
      const fd = this.bufferedFd ?? this.fd;
      fs.write(fd, job.buf, at, to - at, job.base + at, (err, n) => {
        if (err && !buffered && errnoCode(err) === 'EINVAL' && this.useBuffered()) return step(job.from);
        if (err) return this.settle(job, err);
        // a short direct write ends on a block boundary; go on from there
        step(at + n);
      });
    };
    step(job.from);
  }

  private settle(job: Job, err: unknown): void {
    this.current = null;
    if (err) this.writeError ??= err;
    if (job.recycle) this.recycle(job.recycle);
    this.pump();
    if (!this.closeRequested) this.sendEarly();
    for (const w of this.waiters.splice(0)) w();
    if (!this.full) for (const w of this.roomWaiters.splice(0)) w();
    this.closeIfIdle();
  }

  private writeSync(job: Job): void {
    let at = job.from;
    for (;;) {
      const buffered = this.bufferedFd !== null;
      const to = buffered ? job.valid : job.to;
      if (at >= to) return;
      try {
        at += fs.writeSync(this.bufferedFd ?? this.fd, job.buf, at, to - at, job.base + at);
      } catch (err) {
        if (!buffered && errnoCode(err) === 'EINVAL' && this.useBuffered()) {
          at = job.from;
          continue;
        }
        throw err;
      }
    }
  }

  /** Writes span `t`'s unsent bytes through the page cache; false without a descriptor for that (then they go direct). */
  private writeTailBuffered(t: Span): boolean {
    if (this.tailFd === null) return false;
    let at = t.sent;
    while (at < t.fill) at += fs.writeSync(this.tailFd, t.buf, at, t.fill - at, t.base + at);
    t.sent = t.fill;
    return true;
  }

  /** The file system refused a direct write: write buffered from now on. False if even that cannot open. */
  private useBuffered(): boolean {
    if (this.bufferedFd !== null) return true;
    // the descriptor opened with the file (the file is read-only now: a new open fails but for root)
    if (this.tailFd !== null) {
      this.bufferedFd = this.tailFd;
      return true;
    }
    try {
      this.bufferedFd = fs.openSync(this.file, 'r+');
      return true;
    } catch {
      return false;
    }
  }

  private throwWriteError(): void {
    if (this.writeError) {
      const err = this.writeError;
      this.writeError = null;
      throw err;
    }
  }
}
