/**
 * A pipe read on its own thread, as an async iterable of buffers.
 *
 * Why: git writes a filter's input in 64 KiB packets into a pipe of at most 1 MiB; when
 * the filter's main thread is busy storing chunks it does not read, the pipe fills and git
 * waits, so git and the filter take turns instead of working at the same time (measured:
 * the filter spent 2.6 s of a 3.8 s `git add` of 1 GiB waiting for the pipe). A worker
 * thread that only reads keeps the pipe drained, into a ring of shared memory.
 *
 * Lifetime of a yielded buffer (a view of the ring): valid until the consumer has pulled
 * `keep` more bytes after it (default 4 MiB). A consumer that copies what it needs before
 * pulling much more (PacketReader and everything over it do) is safe. Only then is its
 * room given back to the reader, so the reader runs at most ring - keep bytes ahead.
 *
 * The thread starts only once `threadAfter` bytes have come through (default 8 MiB): until
 * then the pipe is read from this thread's event loop (one read at a time on libuv's
 * thread pool, into the same ring). Starting a thread costs a whole Node environment
 * (about 30 ms of CPU here), more than a `git add` of one small file spends on everything
 * else, and a checkout's small requests never need it. When the thread is up it takes
 * over after the read in flight: it reads on from where this thread stopped.
 *
 * The descriptor must be blocking (a plain pipe from git); do not also read it through
 * process.stdin.
 */
import fs from 'node:fs';
import type { Worker } from 'node:worker_threads';
import { CTL_AT, CTL_GO, CTL_RELEASED, CTL_STOP, CTL_TAKEN, CTL_WAITING, CTL_WORDS, ringUsed, type FdReaderData, type FdReaderMessage } from './fd-reader-ring.js';
import { alignedSharedViews } from '../store/aligned-buffer.js';
import { workerScript } from '../worker-script.js';

export interface FdReaderOptions {
  /** bytes per read (default 1 MiB: the largest pipe an unprivileged process gets) */
  readSize?: number;
  /** ring size (default 16 MiB) */
  ringSize?: number;
  /** bytes a yielded buffer stays valid for, counted in bytes pulled after it (default 4 MiB) */
  keep?: number;
  /** bytes read on this thread before the reading thread starts (default 8 MiB; 0: at once) */
  threadAfter?: number;
}

interface Piece {
  view: Buffer;
  used: number;
}

export class FdReader implements AsyncIterable<Buffer> {
  private worker: Worker | null = null;
  private readonly ctl: Int32Array;
  private readonly mem: Buffer;
  private readonly data: FdReaderData;
  private readonly keep: number;
  private readonly threadAfter: number;
  private readonly queue: Piece[] = [];
  /** pieces yielded and not yet released, oldest first */
  private readonly out: Piece[] = [];
  private outBytes = 0;
  private released = 0;
  private ended = false;
  private closed = false;
  private failure: Error | null = null;
  private wake: (() => void) | null = null;
  // reading on this thread (until the reading thread takes over): the next read's offset in
  // the ring, ring bytes handed over (wraps like released), bytes read, a read in flight
  private at = 0;
  private taken = 0;
  private readBytes = 0;
  private reading = false;
  private threadStarted = false;
  /** process 'exit' listener while this thread may have a read in flight (wakeOnExit) */
  private exitHook: (() => void) | null = null;
  /** the reading thread is up and waits to be told where to go on */
  private threadReady = false;
  private handedOver = false;

  constructor(fd: number, opts: FdReaderOptions = {}) {
    const readSize = opts.readSize ?? 1024 * 1024;
    const ringSize = opts.ringSize ?? 16 * 1024 * 1024;
    this.keep = opts.keep ?? 4 * 1024 * 1024;
    this.threadAfter = opts.threadAfter ?? 8 * 1024 * 1024;
    // Unreleased while the consumer waits for data, at worst: the pieces of the last `keep`
    // bytes plus the piece before them (at most keep + readSize bytes of data, taking at most
    // twice that of ring: a read of a page or more is rounded up to a page, see
    // fd-reader-worker.ts) and one skipped tail short of a read; the reader then needs room
    // for one more read. A smaller ring can leave both sides waiting for good.
    if (ringSize < 2 * this.keep + 4 * readSize) throw new Error('FdReader: the ring must hold twice keep plus four reads');
    const { shared, skip, views } = alignedSharedViews(ringSize, 1);
    this.mem = views[0]!;
    const control = new SharedArrayBuffer(CTL_WORDS * 4);
    this.ctl = new Int32Array(control);
    this.data = { fd, ring: shared, skip, ringSize, readSize, control };
    if (this.threadAfter <= 0) this.startThread();
  }

  /** The ring offset and ring bytes a read of up to `readSize` may take next (as the thread computes them). */
  private nextRead(): { start: number; want: number } | null {
    const { ringSize, readSize } = this.data;
    if (ringSize - this.at < readSize) {
      // too little room before the end: the rest of the ring is skipped
      this.taken = (this.taken + (ringSize - this.at)) | 0;
      this.queue.push({ view: this.mem.subarray(this.at, this.at), used: ringSize - this.at });
      this.at = 0;
      this.signal(); // its room is given back once the consumer has passed it
    }
    if (((this.taken - this.released) | 0) + readSize > ringSize) return null; // releaseOld() pumps again
    return { start: this.at, want: readSize };
  }

  /**
   * Hands over to the thread when it is up and no read is in flight; else, when the
   * consumer waits, starts a read on this thread (libuv's pool). Only then: a read that
   * blocks for want of input holds a pool thread, and Node waits for every pool thread
   * before the process ends, so a read left waiting on a writer that waits for this
   * process would keep both waiting for good (wakeOnExit is the last resort).
   */
  private pump(): void {
    if (this.reading || this.handedOver || this.closed) return;
    if (this.threadReady) {
      this.handOver();
      return;
    }
    if (this.ended || this.failure || !this.wake) return;
    const next = this.nextRead();
    if (!next) return;
    this.reading = true;
    if (!this.exitHook) {
      this.exitHook = () => wakeOnExit(this.data.fd, this.reading);
      process.on('exit', this.exitHook);
    }
    fs.read(this.data.fd, this.mem, next.start, next.want, null, (err, n) => {
      this.reading = false;
      if (this.closed) return;
      if (err) {
        if (err.code === 'EAGAIN' || err.code === 'EINTR') {
          setTimeout(() => this.pump(), 1); // someone made the descriptor non-blocking: poll gently
          return;
        }
        const e = new Error(`reading the pipe failed: ${err.message}`) as NodeJS.ErrnoException;
        if (err.code) e.code = err.code;
        this.failure = e;
      } else if (n === 0) {
        this.ended = true;
      } else {
        // a big read ends on a page boundary, as the thread's do (fd-reader-worker.ts)
        const used = ringUsed(next.start, n, this.data.ringSize);
        this.taken = (this.taken + used) | 0;
        this.queue.push({ view: this.mem.subarray(next.start, next.start + n), used });
        this.at = next.start + used >= this.data.ringSize ? 0 : next.start + used;
        this.readBytes += n;
        if (this.readBytes >= this.threadAfter && !this.threadStarted) this.startThread();
      }
      if (this.threadReady) this.handOver();
      this.signal();
    });
  }

  /**
   * Starts the reading thread; it takes over once it is up. If it cannot start, or fails
   * before it took over, this thread simply reads on (the thread only makes reading faster).
   */
  private startThread(): void {
    this.threadStarted = true;
    // loaded here: a process that never needs the thread never loads worker_threads
    import('node:worker_threads')
      .then(({ Worker }) => {
        if (this.closed) return;
        this.worker = new Worker(workerScript(import.meta.url, 'git/fd-reader-worker.js'), { workerData: this.data });
        this.listen(this.worker);
      })
      .catch(() => this.pump());
  }

  private listen(worker: Worker): void {
    worker.on('message', (m: FdReaderMessage) => {
      if (m.op === 'ready') {
        this.threadReady = true;
        this.pump();
        return;
      }
      if (m.op === 'data') this.queue.push({ view: this.mem.subarray(m.start, m.start + m.length), used: m.used });
      else if (m.op === 'end') this.ended = true;
      else {
        const e = new Error(`reading the pipe failed: ${m.message}`) as NodeJS.ErrnoException;
        if (m.code) e.code = m.code;
        this.failure = e;
      }
      this.signal();
    });
    const lost = (e: Error): void => {
      if (!this.handedOver) {
        // it never read: this thread reads on
        this.worker = null;
        this.threadReady = false;
        this.pump();
        return;
      }
      if (!this.ended) this.failure ??= e;
      this.signal();
    };
    worker.on('error', (e) => lost(e instanceof Error ? e : new Error(String(e))));
    worker.on('exit', () => lost(new Error('the pipe reader stopped')));
  }

  /** Whether the reading thread has taken over (else this thread reads). */
  get threadTookOver(): boolean {
    return this.handedOver && this.worker !== null;
  }

  /** The thread reads on from where this thread stopped (no read in flight here). */
  private handOver(): void {
    this.handedOver = true;
    if (this.ended || this.failure) {
      Atomics.store(this.ctl, CTL_STOP, 1); // nothing left to read: the thread just ends
    } else {
      Atomics.store(this.ctl, CTL_AT, this.at);
      Atomics.store(this.ctl, CTL_TAKEN, this.taken);
    }
    Atomics.store(this.ctl, CTL_GO, 1);
    Atomics.notify(this.ctl, CTL_GO);
  }

  private signal(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  /** Gives back the room of yielded pieces that more than `keep` bytes have followed. */
  private releaseOld(): void {
    let freed = 0;
    while (this.out.length && this.outBytes - this.out[0]!.view.length >= this.keep) {
      const p = this.out.shift()!;
      this.outBytes -= p.view.length;
      freed += p.used;
    }
    if (freed) {
      this.released = (this.released + freed) | 0;
      Atomics.store(this.ctl, CTL_RELEASED, this.released);
      if (Atomics.load(this.ctl, CTL_WAITING) !== 0) Atomics.notify(this.ctl, CTL_RELEASED);
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    for (;;) {
      const p = this.queue.shift();
      if (p) {
        this.out.push(p);
        this.outBytes += p.view.length;
        this.releaseOld();
        if (p.view.length) yield p.view;
        continue;
      }
      if (this.failure) throw this.failure;
      if (this.ended) return;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        this.pump();
      });
    }
  }

  /** Stops the reader (it also ends by itself at the end of input). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.exitHook && !this.reading) process.off('exit', this.exitHook);
    Atomics.store(this.ctl, CTL_STOP, 1);
    Atomics.notify(this.ctl, CTL_RELEASED);
    Atomics.notify(this.ctl, CTL_GO);
    if (!this.worker) return; // a read in flight here ends with the process or when the writer closes the pipe
    this.worker.removeAllListeners('exit');
    // a thread blocked in read(2) ends with the process or when the writer closes the pipe
    this.worker.unref();
  }
}

/**
 * At exit, with a read of `fd` still waiting for input on libuv's pool (see pump): one byte
 * written into the pipe through /proc ends that read, so the process can end (Node waits
 * for its pool threads). Input is no longer wanted then. Where there is no /proc, nothing
 * is done.
 */
function wakeOnExit(fd: number, reading: boolean): void {
  if (!reading) return;
  try {
    const w = fs.openSync(`/proc/self/fd/${fd}`, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
    try {
      fs.writeSync(w, Buffer.alloc(1));
    } finally {
      fs.closeSync(w);
    }
  } catch {
    /* not a pipe, no /proc: nothing to wake */
  }
}
