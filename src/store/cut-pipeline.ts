/**
 * The cutting stage of ingest (find the pieces of a stream, hash each one, and hash the
 * whole stream for the file id), either on the calling thread (LocalCutter) or on worker
 * threads (CutWorker), behind one interface so that ingest runs the same loop over both
 * and gets the same pieces and ids.
 *
 * The bytes live in slots: buffers the caller reads the stream into, in order. `push(slot,
 * n)` hands the first n bytes of a slot to the stage; results come back in push order
 * through poll() / next(). The caller must not change a slot's bytes until it gives the
 * slot back with release(), which it may do once a result has reported every byte of it
 * done (CutBatch.doneUpTo at or past its end); the slot is reused only when the stage is
 * done with it too.
 *
 * Why workers: cutting (FastCDC) and hashing the pieces, and hashing the whole file, are
 * most of the CPU of adding a big file. On workers, one cuts and hashes pieces and one
 * hashes the file, on the second core, while the main thread reads and stores. The slots
 * are one SharedArrayBuffer, so no byte is copied between threads; only the pieces'
 * offsets and ids come back.
 */
import fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import type { ChunkerParams } from '../chunking/chunker.js';
import { StreamHasher } from '../hashing/blake3.js';
import { PieceCutter, type CutBatch, type CutPlan } from './piece-cutter.js';
import type { CutRequest, CutReply, CutWorkerData } from './piece-cutter-worker.js';
import { allocAligned, alignedSharedViews } from './aligned-buffer.js';

/** Streams at least this large are worth the workers' start-up (tens of milliseconds). */
export const PARALLEL_INGEST_MIN = 32 * 1024 * 1024;

export interface CutPipeline {
  /** A free slot's number, or -1 when none is free (wait for a result and release first). */
  acquire(): number;
  slot(n: number): Buffer;
  release(n: number): void;
  /** The first `length` bytes of slot `n` are the stream's next bytes. */
  push(n: number, length: number): void;
  /** End of the stream: the last result follows the last push's. */
  finish(): void;
  /** Results pushed for but not yet taken. */
  readonly pending: number;
  /** The next result if it is already here. */
  poll(): CutBatch | undefined;
  /** The next result, in push order. */
  next(): Promise<CutBatch>;
  /** After finish: BLAKE3 of the whole stream, hex. */
  digest(): Promise<string>;
  /** Stops this stream (after an error): results not taken are dropped, slots freed. */
  abort(): void;
}

/** Cuts on the calling thread; slots are allocated as needed (a piece may span many). */
export class LocalCutter implements CutPipeline {
  private readonly cutter: PieceCutter;
  private readonly hasher = new StreamHasher();
  private readonly buffers: Buffer[] = [];
  private readonly free: number[] = [];
  private readonly results: CutBatch[] = [];

  constructor(params: ChunkerParams, plan: CutPlan | undefined, private readonly slotSize = 4 * 1024 * 1024) {
    this.cutter = new PieceCutter(params, plan);
  }

  acquire(): number {
    const n = this.free.pop();
    if (n !== undefined) return n;
    this.buffers.push(allocAligned(this.slotSize));
    return this.buffers.length - 1;
  }

  slot(n: number): Buffer {
    return this.buffers[n]!;
  }

  release(n: number): void {
    this.free.push(n);
  }

  push(n: number, length: number): void {
    const bytes = this.buffers[n]!.subarray(0, length);
    this.results.push(this.cutter.push(bytes));
    this.hasher.update(bytes);
  }

  finish(): void {
    this.results.push(this.cutter.finish());
  }

  get pending(): number {
    return this.results.length;
  }

  poll(): CutBatch | undefined {
    return this.results.shift();
  }

  async next(): Promise<CutBatch> {
    const r = this.results.shift();
    if (!r) throw new Error('LocalCutter.next: nothing pushed');
    return r;
  }

  async digest(): Promise<string> {
    return this.hasher.digestHex();
  }

  abort(): void {
    this.results.length = 0;
  }
}

/** Where the compiled worker is: beside this module, or (tests run the sources) in dist/. */
function workerFile(): URL {
  const beside = new URL('./piece-cutter-worker.js', import.meta.url);
  if (fs.existsSync(beside)) return beside;
  const compiled = new URL('../../dist/src/store/piece-cutter-worker.js', import.meta.url);
  if (fs.existsSync(compiled)) return compiled;
  throw new Error(`the cutting worker is not built (${fileURLToPath(beside)}); run \`npm run build\``);
}

export interface CutWorkerOptions {
  /** bytes per slot (default 4 MiB) */
  slotSize?: number;
  /** slots (default 8: up to ~6 in flight while one is read and one still held) */
  slots?: number;
}

/**
 * Two worker threads, one cutting and hashing pieces, one hashing the whole stream, for
 * one stream at a time; reused for many streams (start one with begin()). Close when done.
 * A piece's maximum size must not exceed `slotSize` (a piece then spans at most two slots,
 * so the fixed slots always suffice): ingest checks.
 */
export class CutWorker {
  readonly slotSize: number;
  private readonly cutThread: Worker;
  private readonly hashThread: Worker;
  private readonly views: Buffer[];
  private readonly free: number[];
  /** per slot: released by the caller / hashed by the hash thread (free when both) */
  private readonly released: boolean[];
  private readonly hashed: boolean[];
  /** The stream in progress: replies to earlier (aborted) streams are ignored. */
  private stream = 0;
  private active = false;
  private readonly results: CutBatch[] = [];
  private waiting: { resolve: (b: CutBatch) => void; reject: (e: unknown) => void } | null = null;
  private expected = 0;
  private digestResult: { hex: string } | null = null;
  private digestWaiting: { resolve: (hex: string) => void; reject: (e: unknown) => void } | null = null;
  private failure: Error | null = null;

  constructor(opts: CutWorkerOptions = {}) {
    this.slotSize = opts.slotSize ?? 4 * 1024 * 1024;
    const count = opts.slots ?? 8;
    const { shared, skip, views } = alignedSharedViews(this.slotSize, count);
    this.views = views;
    this.free = views.map((_, i) => count - 1 - i);
    this.released = views.map(() => true);
    this.hashed = views.map(() => true);
    const spawn = (role: CutWorkerData['role']): Worker => {
      const data: CutWorkerData = { role, shared, skip, slotSize: this.slotSize };
      const w = new Worker(workerFile(), { workerData: data });
      w.unref(); // held open only while a stream is in progress (begin/end)
      w.on('message', (m: CutReply) => this.onReply(m));
      w.on('error', (e) => this.fail(e instanceof Error ? e : new Error(String(e))));
      w.on('exit', (code) => this.fail(new Error(`a cutting worker stopped (exit code ${code})`)));
      return w;
    };
    this.cutThread = spawn('cut');
    this.hashThread = spawn('hash');
  }

  /** Starts a stream; the previous one must have finished or been aborted. */
  begin(params: ChunkerParams, plan?: CutPlan): CutPipeline {
    if (this.failure) throw this.failure;
    if (this.active) throw new Error('CutWorker.begin: a stream is still in progress');
    this.active = true;
    this.stream++;
    this.expected = 0;
    this.results.length = 0;
    this.digestResult = null;
    this.cutThread.ref();
    this.hashThread.ref();
    const begin: CutRequest = {
      op: 'begin',
      stream: this.stream,
      params: { minSize: params.minSize, avgSize: params.avgSize, maxSize: params.maxSize },
      forced: plan ? Float64Array.from(plan.forced) : undefined,
      preferred: plan ? Float64Array.from(plan.preferred) : undefined,
    };
    this.send(begin);
    const stream = this.stream;
    const self = this;
    return {
      acquire: () => self.free.pop() ?? -1,
      slot: (n) => self.views[n]!,
      release: (n) => {
        if (stream !== self.stream) return; // an aborted stream's late release: slots were reset
        self.released[n] = true;
        if (self.hashed[n]) self.free.push(n);
      },
      push: (n, length) => {
        self.released[n] = false;
        self.hashed[n] = false;
        self.expected++;
        self.send({ op: 'push', stream, slot: n, length });
      },
      finish: () => {
        self.expected++;
        self.send({ op: 'finish', stream });
      },
      get pending() {
        return self.expected;
      },
      poll: () => self.take(),
      next: () => self.nextResult(),
      digest: () => self.nextDigest(),
      abort: () => self.abort(),
    };
  }

  private send(m: CutRequest): void {
    if (this.failure) throw this.failure;
    this.cutThread.postMessage(m);
    this.hashThread.postMessage(m);
  }

  private take(): CutBatch | undefined {
    if (this.failure) throw this.failure;
    const r = this.results.shift();
    if (r) this.expected--;
    return r;
  }

  private nextResult(): Promise<CutBatch> {
    const r = this.take();
    if (r) return Promise.resolve(r);
    if (this.expected === 0) return Promise.reject(new Error('CutWorker.next: nothing pushed'));
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
    });
  }

  private nextDigest(): Promise<string> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.digestResult) {
      const hex = this.digestResult.hex;
      this.end();
      return Promise.resolve(hex);
    }
    return new Promise((resolve, reject) => {
      this.digestWaiting = { resolve, reject };
    });
  }

  private onReply(m: CutReply): void {
    if (m.stream !== this.stream) return; // a reply to an aborted stream
    switch (m.op) {
      case 'error':
        return this.fail(new Error(`cutting failed: ${m.message}`));
      case 'hashed':
        this.hashed[m.slot] = true;
        if (this.released[m.slot]) this.free.push(m.slot);
        return;
      case 'digest': {
        const w = this.digestWaiting;
        if (w) {
          this.digestWaiting = null;
          this.end();
          w.resolve(m.hex);
        } else this.digestResult = { hex: m.hex };
        return;
      }
      case 'batch': {
        const w = this.waiting;
        if (w) {
          this.waiting = null;
          this.expected--;
          w.resolve(m.batch);
        } else this.results.push(m.batch);
        return;
      }
    }
  }

  /** The stream is over: the workers may let the process exit. */
  private end(): void {
    this.active = false;
    this.digestResult = null;
    this.cutThread.unref();
    this.hashThread.unref();
  }

  private resetSlots(): void {
    this.free.length = 0;
    for (let i = this.views.length - 1; i >= 0; i--) {
      this.free.push(i);
      this.released[i] = true;
      this.hashed[i] = true;
    }
  }

  private abort(): void {
    // Replies still coming for the aborted stream are dropped. A worker may still be reading
    // a slot of it while the next stream writes there: that only spoils a dropped result.
    this.stream++;
    this.results.length = 0;
    this.expected = 0;
    this.waiting?.reject(new Error('cutting aborted'));
    this.waiting = null;
    this.digestWaiting?.reject(new Error('cutting aborted'));
    this.digestWaiting = null;
    this.resetSlots();
    if (!this.failure) {
      this.cutThread.postMessage({ op: 'abort' } satisfies CutRequest);
      this.hashThread.postMessage({ op: 'abort' } satisfies CutRequest);
    }
    this.end();
  }

  private fail(e: Error): void {
    if (this.failure) return;
    this.failure = e;
    this.waiting?.reject(e);
    this.waiting = null;
    this.digestWaiting?.reject(e);
    this.digestWaiting = null;
    this.cutThread.unref();
    this.hashThread.unref();
  }

  async close(): Promise<void> {
    this.failure ??= new Error('the cutting workers are closed');
    this.cutThread.removeAllListeners('exit');
    this.hashThread.removeAllListeners('exit');
    await Promise.all([this.cutThread.terminate(), this.hashThread.terminate()]);
  }
}
