/**
 * Buffered positional writes to one file, handed to the disk asynchronously (libuv's
 * thread pool) so that chunking, hashing and downloading go on while the kernel copies
 * bytes. Used for packs (appends) and for files assembled from chunks that arrive out of
 * order (several runs of contiguous bytes are filled at once).
 *
 * - `write(data, pos)` copies `data` (the caller may reuse it) into the run that ends at
 *   `pos`, or starts a run there; full runs go to the disk without waiting.
 * - `writeBorrowed(data, pos)` does the same without copying: the run keeps a reference
 *   and the bytes go out with writev. The caller must not change `data` until a `fence()`
 *   taken after the call has resolved (ingest keeps its read buffers until then).
 * - `backpressure()`: a promise to await when the writes in flight reach their bound, else
 *   null. Memory stays at most (maxRuns + maxInflight) buffers (plus what is borrowed).
 * - `drain()` waits until everything written so far is on the file; `flushSync()` does the
 *   same synchronously by writing the open runs and, again, every run still in flight: the
 *   same bytes at the same offsets, so racing the asynchronous write is harmless.
 * - `fence()` sends the open runs and resolves when every write sent so far has finished
 *   (failed or not: a failure is thrown by the next drain/flushSync).
 * - A failed asynchronous write is remembered and thrown by the next drain/flushSync.
 * - `close(beforeClose?)` closes the descriptor once no write is in flight (a closed
 *   descriptor's number could be reused by another file while a write to it is still
 *   queued); `beforeClose(fd)` runs just before (its errors are ignored).
 */
import fs from 'node:fs';
import { copyBytes } from '../native-addon.js';

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
  /** the run's own buffer: copied bytes go here */
  buf: Buffer;
  start: number;
  /** bytes in the run */
  used: number;
  /** bytes of `buf` in use */
  fill: number;
  /** with borrowed bytes: the run as pieces, in order (copied bytes as views of buf) */
  parts: Buffer[] | null;
}

interface Inflight extends Run {
  done: Promise<void>;
}

/** A run with this many pieces goes out (writev takes at most IOV_MAX = 1024). */
const MAX_PARTS = 512;

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
  private beforeClose: ((fd: number) => void) | null = null;
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

  /** Whether writes are in flight. */
  get busy(): boolean {
    return this.inflight.size > 0;
  }

  /** Whether runs are being filled (holding buffers until written). */
  get filling(): boolean {
    return this.runs.length > 0;
  }

  /** The run that `pos` continues (after submitting it if `len` more bytes would not fit), or a new one. */
  private runAt(pos: number, len: number, borrowed: boolean): Run {
    let run = this.runs.find((r) => r.start + r.used === pos);
    if (run && (run.used + len > this.bufferSize || (!borrowed && run.fill + len > this.bufferSize) || (run.parts && run.parts.length >= MAX_PARTS))) {
      this.submit(run);
      run = undefined;
    }
    if (!run) {
      if (this.runs.length >= this.maxRuns) this.submit(this.runs.reduce((a, b) => (b.used > a.used ? b : a)));
      run = { buf: this.pool.pop() ?? Buffer.allocUnsafe(this.bufferSize), start: pos, used: 0, fill: 0, parts: null };
      this.runs.push(run);
    }
    return run;
  }

  write(data: Buffer, pos: number): void {
    if (data.length === 0) return;
    if (data.length > this.bufferSize) {
      const run = this.runs.find((r) => r.start + r.used === pos);
      if (run) this.submit(run); // (its bytes lie before pos: any order of the two writes is fine)
      writeAllSync(this.fd, data, data.length, pos); // larger than a buffer: straight to the file
      return;
    }
    const run = this.runAt(pos, data.length, false);
    copyBytes(data, run.buf, run.fill);
    if (run.parts) {
      const last = run.parts[run.parts.length - 1];
      // extend the last piece when it is the end of buf, else add a view
      if (last && last.buffer === run.buf.buffer && last.byteOffset + last.length === run.buf.byteOffset + run.fill) {
        run.parts[run.parts.length - 1] = run.buf.subarray(run.fill - last.length, run.fill + data.length);
      } else run.parts.push(run.buf.subarray(run.fill, run.fill + data.length));
    }
    run.fill += data.length;
    run.used += data.length;
    if (run.used >= this.bufferSize) this.submit(run);
  }

  writeBorrowed(data: Buffer, pos: number): void {
    if (data.length === 0) return;
    const run = this.runAt(pos, Math.min(data.length, this.bufferSize), true);
    run.parts ??= run.fill ? [run.buf.subarray(0, run.fill)] : [];
    run.parts.push(data);
    run.used += data.length;
    if (run.used >= this.bufferSize) this.submit(run);
  }

  private submit(run: Run): void {
    this.runs = this.runs.filter((r) => r !== run);
    if (run.used === 0) {
      this.recycle(run.buf);
      return;
    }
    const w: Inflight = { ...run, done: Promise.resolve() };
    w.done = writeRun(this.fd, run).then(
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

  async fence(): Promise<void> {
    this.submitAll();
    await Promise.all([...this.inflight].map((w) => w.done));
  }

  flushSync(): void {
    for (const r of this.runs) writeRunSync(this.fd, r);
    for (const r of this.runs) this.recycle(r.buf);
    this.runs = [];
    for (const w of this.inflight) writeRunSync(this.fd, w);
    this.throwWriteError();
  }

  async fsync(): Promise<void> {
    await this.drain();
    await new Promise<void>((resolve, reject) => fs.fsync(this.fd, (err) => (err ? reject(err) : resolve())));
  }

  close(beforeClose?: (fd: number) => void): void {
    this.closeRequested = true;
    if (beforeClose) this.beforeClose = beforeClose;
    this.closeIfIdle();
  }

  private closeIfIdle(): void {
    if (!this.closeRequested || this.closed || this.inflight.size) return;
    this.closed = true;
    try {
      this.beforeClose?.(this.fd);
    } catch {
      /* best effort */
    }
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

/** The pieces still to write after `done` bytes of `parts`. */
function partsFrom(parts: Buffer[], done: number): Buffer[] {
  let i = 0;
  while (i < parts.length && done >= parts[i]!.length) done -= parts[i++]!.length;
  const rest = parts.slice(i);
  if (done > 0 && rest.length) rest[0] = rest[0]!.subarray(done);
  return rest;
}

function writeRunSync(fd: number, run: Run): void {
  if (!run.parts) return writeAllSync(fd, run.buf, run.used, run.start);
  let done = 0;
  while (done < run.used) done += fs.writevSync(fd, partsFrom(run.parts, done), run.start + done);
}

function writeRun(fd: number, run: Run): Promise<void> {
  if (!run.parts) return writeAll(fd, run.buf, run.used, run.start);
  const parts = run.parts;
  return new Promise((resolve, reject) => {
    const step = (done: number): void => {
      if (done >= run.used) return resolve();
      fs.writev(fd, partsFrom(parts, done), run.start + done, (err, n) => (err ? reject(err) : step(done + n)));
    };
    step(0);
  });
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
