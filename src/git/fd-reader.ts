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
 * The descriptor must be blocking (a plain pipe from git); do not also read it through
 * process.stdin.
 */
import { Worker } from 'node:worker_threads';
import type { FdReaderData, FdReaderMessage } from './fd-reader-worker.js';
import { alignedSharedViews } from '../store/aligned-buffer.js';
import { workerScript } from '../worker-script.js';

export interface FdReaderOptions {
  /** bytes per read (default 1 MiB: the largest pipe an unprivileged process gets) */
  readSize?: number;
  /** ring size (default 16 MiB) */
  ringSize?: number;
  /** bytes a yielded buffer stays valid for, counted in bytes pulled after it (default 4 MiB) */
  keep?: number;
}

interface Piece {
  view: Buffer;
  used: number;
}

export class FdReader implements AsyncIterable<Buffer> {
  private readonly worker: Worker;
  private readonly ctl: Int32Array;
  private readonly mem: Buffer;
  private readonly keep: number;
  private readonly queue: Piece[] = [];
  /** pieces yielded and not yet released, oldest first */
  private readonly out: Piece[] = [];
  private outBytes = 0;
  private released = 0;
  private ended = false;
  private failure: Error | null = null;
  private wake: (() => void) | null = null;

  constructor(fd: number, opts: FdReaderOptions = {}) {
    const readSize = opts.readSize ?? 1024 * 1024;
    const ringSize = opts.ringSize ?? 16 * 1024 * 1024;
    this.keep = opts.keep ?? 4 * 1024 * 1024;
    // Unreleased while the consumer waits for data, at worst: the pieces of the last `keep`
    // bytes plus the piece before them (at most keep + readSize bytes of data, taking at most
    // twice that of ring: a read of a page or more is rounded up to a page, see
    // fd-reader-worker.ts) and one skipped tail short of a read; the reader then needs room
    // for one more read. A smaller ring can leave both sides waiting for good.
    if (ringSize < 2 * this.keep + 4 * readSize) throw new Error('FdReader: the ring must hold twice keep plus four reads');
    const { shared, skip, views } = alignedSharedViews(ringSize, 1);
    this.mem = views[0]!;
    const control = new SharedArrayBuffer(12);
    this.ctl = new Int32Array(control);
    const data: FdReaderData = { fd, ring: shared, skip, ringSize, readSize, control };
    this.worker = new Worker(workerScript(import.meta.url, 'git/fd-reader-worker.js'), { workerData: data });
    this.worker.on('message', (m: FdReaderMessage) => {
      if (m.op === 'data') this.queue.push({ view: this.mem.subarray(m.start, m.start + m.length), used: m.used });
      else if (m.op === 'end') this.ended = true;
      else {
        const e = new Error(`reading the pipe failed: ${m.message}`) as NodeJS.ErrnoException;
        if (m.code) e.code = m.code;
        this.failure = e;
      }
      this.signal();
    });
    this.worker.on('error', (e) => {
      this.failure ??= e instanceof Error ? e : new Error(String(e));
      this.signal();
    });
    this.worker.on('exit', () => {
      if (!this.ended) this.failure ??= new Error('the pipe reader stopped');
      this.signal();
    });
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
      Atomics.store(this.ctl, 0, this.released);
      if (Atomics.load(this.ctl, 2) !== 0) Atomics.notify(this.ctl, 0);
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
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  /** Stops the reader (it also ends by itself at the end of input). */
  async close(): Promise<void> {
    Atomics.store(this.ctl, 1, 1);
    Atomics.notify(this.ctl, 0);
    this.worker.removeAllListeners('exit');
    // a thread blocked in read(2) ends with the process or when the writer closes the pipe
    this.worker.unref();
  }
}
