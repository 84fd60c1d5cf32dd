/**
 * Buffered positional writes to one file, handed to the disk asynchronously (libuv's
 * thread pool) so that chunking, hashing and downloading go on while the kernel copies
 * bytes. Used for packs (appends) and for files assembled from chunks that arrive out of
 * order (several runs of contiguous bytes are filled at once).
 *
 * - `write(data, pos)` copies `data` (the caller may reuse it) into the run that ends at
 *   `pos`, or starts a run there; full runs go to the disk without waiting.
 * - `backpressure()`: a promise to await when the writes in flight reach their bound, else
 *   null. Memory stays at most (maxRuns + maxInflight) buffers.
 * - `drain()` waits until everything written so far is on the file; `flushSync()` does the
 *   same synchronously by writing the open runs and, again, every run still in flight: the
 *   same bytes at the same offsets, so racing the asynchronous write is harmless.
 * - A failed asynchronous write is remembered and thrown by the next drain/flushSync.
 * - `close()` closes the descriptor once no write is in flight (a closed descriptor's
 *   number could be reused by another file while a write to it is still queued).
 */
import fs from 'node:fs';

export interface PositionalWriterOptions {
  /** bytes per run buffer (default 8 MiB) */
  bufferSize?: number;
  /** runs being filled at once (default 1: appends) */
  maxRuns?: number;
  /** runs being written at once before backpressure() asks to wait (default 4) */
  maxInflight?: number;
  /** spare buffers, shareable between writers of one buffer size (default: this writer's own) */
  pool?: Buffer[];
  /** spare buffers kept (default maxInflight) */
  maxPool?: number;
}

interface Run {
  buf: Buffer;
  start: number;
  used: number;
}

interface Inflight extends Run {
  done: Promise<void>;
}

export class PositionalWriter {
  private readonly bufferSize: number;
  private readonly maxRuns: number;
  private readonly maxInflight: number;
  private runs: Run[] = [];
  private readonly inflight = new Set<Inflight>();
  private readonly pool: Buffer[];
  private readonly maxPool: number;
  private writeError: unknown = null;
  private closeRequested = false;
  private closed = false;

  constructor(
    readonly fd: number,
    opts: PositionalWriterOptions = {},
  ) {
    this.bufferSize = opts.bufferSize ?? 8 * 1024 * 1024;
    this.maxRuns = opts.maxRuns ?? 1;
    this.maxInflight = opts.maxInflight ?? 4;
    this.pool = opts.pool ?? [];
    this.maxPool = opts.maxPool ?? this.maxInflight;
  }

  /** Whether runs are being filled (holding buffers until written). */
  get filling(): boolean {
    return this.runs.length > 0;
  }

  write(data: Buffer, pos: number): void {
    if (data.length === 0) return;
    let run = this.runs.find((r) => r.start + r.used === pos);
    if (run && run.used + data.length > this.bufferSize) {
      this.submit(run);
      run = undefined;
    }
    if (data.length > this.bufferSize) {
      writeAllSync(this.fd, data, data.length, pos); // larger than a buffer: straight to the file
      return;
    }
    if (!run) {
      if (this.runs.length >= this.maxRuns) this.submit(this.runs.reduce((a, b) => (b.used > a.used ? b : a)));
      run = { buf: this.pool.pop() ?? Buffer.allocUnsafe(this.bufferSize), start: pos, used: 0 };
      this.runs.push(run);
    }
    data.copy(run.buf, run.used);
    run.used += data.length;
    if (run.used === this.bufferSize) this.submit(run);
  }

  private submit(run: Run): void {
    this.runs = this.runs.filter((r) => r !== run);
    if (run.used === 0) {
      this.recycle(run.buf);
      return;
    }
    const w: Inflight = { ...run, done: Promise.resolve() };
    w.done = writeAll(this.fd, run.buf, run.used, run.start).then(
      () => this.settle(w, null),
      (err: unknown) => this.settle(w, err),
    );
    this.inflight.add(w);
  }

  private recycle(buf: Buffer): void {
    if (this.pool.length < this.maxPool) this.pool.push(buf);
  }

  private settle(w: Inflight, err: unknown): void {
    this.inflight.delete(w);
    if (err) this.writeError ??= err;
    else this.recycle(w.buf);
    this.closeIfIdle();
  }

  /** Sends every open run to the disk without waiting. */
  submitAll(): void {
    for (const r of [...this.runs]) this.submit(r);
  }

  backpressure(): Promise<void> | null {
    if (this.inflight.size < this.maxInflight) return null;
    return Promise.race([...this.inflight].map((w) => w.done));
  }

  async drain(): Promise<void> {
    this.submitAll();
    while (this.inflight.size) await Promise.all([...this.inflight].map((w) => w.done));
    this.throwWriteError();
  }

  flushSync(): void {
    for (const r of this.runs) writeAllSync(this.fd, r.buf, r.used, r.start);
    for (const r of this.runs) this.recycle(r.buf);
    this.runs = [];
    for (const w of this.inflight) writeAllSync(this.fd, w.buf, w.used, w.start);
    this.throwWriteError();
  }

  async fsync(): Promise<void> {
    await this.drain();
    await new Promise<void>((resolve, reject) => fs.fsync(this.fd, (err) => (err ? reject(err) : resolve())));
  }

  close(): void {
    this.closeRequested = true;
    this.closeIfIdle();
  }

  private closeIfIdle(): void {
    if (!this.closeRequested || this.closed || this.inflight.size) return;
    this.closed = true;
    try {
      fs.closeSync(this.fd);
    } catch {
      /* already failing */
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

export function writeAllSync(fd: number, buf: Buffer, len: number, pos: number): void {
  let done = 0;
  while (done < len) done += fs.writeSync(fd, buf, done, len - done, pos + done);
}

function writeAll(fd: number, buf: Buffer, len: number, pos: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const step = (done: number): void => {
      if (done >= len) return resolve();
      fs.write(fd, buf, done, len - done, pos + done, (err, n) => (err ? reject(err) : step(done + n)));
    };
    step(0);
  });
}
