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
 * Why workers: cutting (FastCDC), hashing the pieces and hashing the whole file are most
 * of the CPU of adding a big file. On workers (one cuts, the next hashes), they share the
 * two cores with the main thread, which reads and stores. The slots are one
 * SharedArrayBuffer, so no byte is copied between threads; only offsets and ids travel.
 */
import { createRequire } from 'node:module';
import type { MessagePort, Worker } from 'node:worker_threads';
import type { ChunkerParams } from '../chunking/chunker.js';
import { leafHasher } from '../hashing/tree-cv.js';
import { PieceCutter, type CutBatch, type CutPlan } from './piece-cutter.js';
import type { CutRequest, CutReply, CutWorkerData } from './piece-cutter-worker.js';
import { allocAligned, alignedSharedViews } from './aligned-buffer.js';
import { workerScript } from '../worker-script.js';

const require = createRequire(import.meta.url);

/** Streams at least this large are worth the workers' start-up (tens of milliseconds). */
export const PARALLEL_INGEST_MIN = 32 * 1024 * 1024;

export interface CutPipeline {
  /** A free slot's number, or -1 when none is free (see whenFree). */
  acquire(): number;
  /** Resolves when a slot is free (at once if one is): released by the caller and done here. */
  whenFree(): Promise<void>;
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
  /**
   * After digest: the chaining values of the stream's 4 MiB leaves (hashing/tree-cv.ts),
   * or null (stream of 4 MiB or less, or no leaf tree without the addon).
   */
  leaves(): Buffer | null;
  /** Stops this stream (after an error): results not taken are dropped, slots freed. */
  abort(): void;
}

/** Slot size of a LocalCutter unless told. */
const LOCAL_SLOT_SIZE = 4 * 1024 * 1024;
/**
 * Slots of finished LocalCutters (the default size), taken by the next one: adding many
 * small files allocated two 4 MiB buffers per file, and collecting them cost more than
 * cutting the files.
 */
const spareSlots: Buffer[] = [];
const SPARE_SLOTS_MAX = 4;

/** Cuts on the calling thread; slots are allocated as needed (a piece may span many). */
export class LocalCutter implements CutPipeline {
  private readonly cutter: PieceCutter;
  private readonly file = leafHasher();
  private readonly hasher = this.file.hasher;
  private readonly buffers: Buffer[] = [];
  private readonly free: number[] = [];
  private readonly results: CutBatch[] = [];

  constructor(params: ChunkerParams, plan: CutPlan | undefined, private readonly slotSize = LOCAL_SLOT_SIZE) {
    this.cutter = new PieceCutter(params, plan);
  }

  acquire(): number {
    const n = this.free.pop();
    if (n !== undefined) return n;
    this.buffers.push((this.slotSize === LOCAL_SLOT_SIZE ? spareSlots.pop() : undefined) ?? allocAligned(this.slotSize));
    return this.buffers.length - 1;
  }

  /**
   * Hands the slots released so far to the next LocalCutter; this one is done. Call only
   * once nothing reads or writes them any more (ingest: after the store's last commit).
   */
  recycle(): void {
    if (this.slotSize === LOCAL_SLOT_SIZE) {
      for (const n of this.free) if (spareSlots.length < SPARE_SLOTS_MAX) spareSlots.push(this.buffers[n]!);
    }
    this.buffers.length = 0;
    this.free.length = 0;
  }

  async whenFree(): Promise<void> {
    /* acquire always succeeds */
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

  leaves(): Buffer | null {
    const l = this.file.leaves();
    return l && l.length ? l : null;
  }

  abort(): void {
    this.results.length = 0;
  }
}

export interface CutWorkerOptions {
  /** bytes per slot (default 4 MiB) */
  slotSize?: number;
  /** slots (default 8: up to ~6 in flight while one is read and one still held) */
  slots?: number;
}

/**
 * Two worker threads in a row, one cutting, one hashing the pieces and the whole stream
 * (piece-cutter-worker.ts), for one stream at a time; reused for many streams (start one
 * with begin()). Close when done. A piece's maximum size must not exceed `slotSize`, so
 * that the fixed slots always suffice: ingest checks.
 */
export class CutWorker {
  readonly slotSize: number;
  private readonly cutThread: Worker;
  private readonly hashThread: Worker;
  private readonly views: Buffer[];
  private readonly free: number[];
  private freeWaiters: (() => void)[] = [];
  /** The stream in progress: replies to earlier (aborted) streams are ignored. */
  private stream = 0;
  private active = false;
  private readonly results: CutBatch[] = [];
  private waiting: { resolve: (b: CutBatch) => void; reject: (e: unknown) => void } | null = null;
  private expected = 0;
  private fileId: string | null = null;
  private fileLeaves: Buffer | null = null;
  private failure: Error | null = null;

  constructor(opts: CutWorkerOptions = {}) {
    this.slotSize = opts.slotSize ?? 4 * 1024 * 1024;
    const count = opts.slots ?? 8;
    const { shared, skip, views } = alignedSharedViews(this.slotSize, count);
    this.views = views;
    this.free = views.map((_, i) => count - 1 - i);
    // loaded here: node:worker_threads costs milliseconds to load, and most ingests cut on
    // their own thread (LocalCutter)
    const { MessageChannel, Worker } = require('node:worker_threads') as typeof import('node:worker_threads');
    const { port1, port2 } = new MessageChannel();
    const spawn = (role: CutWorkerData['role'], link: MessagePort): Worker => {
      const data: CutWorkerData = { role, shared, skip, slotSize: this.slotSize, link };
      const w = new Worker(workerScript(import.meta.url, 'store/piece-cutter-worker.js'), { workerData: data, transferList: [link] });
      w.unref(); // held open only while a stream is in progress (begin/end)
      w.on('message', (m: CutReply) => this.onReply(m));
      w.on('error', (e) => this.fail(e instanceof Error ? e : new Error(String(e))));
      w.on('exit', (code) => this.fail(new Error(`a cutting worker stopped (exit code ${code})`)));
      return w;
    };
    this.cutThread = spawn('cut', port1);
    this.hashThread = spawn('hash', port2);
  }

  /** False once a worker has failed or the pair was closed (ingest then cuts on its own thread). */
  get usable(): boolean {
    return this.failure === null;
  }

  /** Starts a stream; the previous one must have finished or been aborted. */
  begin(params: ChunkerParams, plan?: CutPlan): CutPipeline {
    if (this.failure) throw this.failure;
    if (this.active) throw new Error('CutWorker.begin: a stream is still in progress');
    this.active = true;
    this.stream++;
    this.expected = 0;
    this.results.length = 0;
    this.fileId = null;
    this.fileLeaves = null;
    this.cutThread.ref();
    this.hashThread.ref();
    this.send({
      op: 'begin',
      stream: this.stream,
      params: { minSize: params.minSize, avgSize: params.avgSize, maxSize: params.maxSize },
      forced: plan ? Float64Array.from(plan.forced) : undefined,
      preferred: plan ? Float64Array.from(plan.preferred) : undefined,
    });
    const stream = this.stream;
    const self = this;
    return {
      acquire: () => self.free.pop() ?? -1,
      whenFree: () => self.whenFree(),
      slot: (n) => self.views[n]!,
      release: (n) => {
        if (stream !== self.stream) return; // an aborted stream's late release: slots were reset
        self.free.push(n);
        for (const w of self.freeWaiters.splice(0)) w();
      },
      push: (n, length) => {
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
      digest: async () => {
        if (self.failure) throw self.failure;
        if (self.fileId === null) throw new Error('CutWorker.digest: the stream has not finished');
        const id = self.fileId;
        self.end();
        return id;
      },
      leaves: () => self.fileLeaves,
      abort: () => self.abort(),
    };
  }

  private whenFree(): Promise<void> {
    if (this.free.length || this.failure) return Promise.resolve();
    return new Promise((resolve) => this.freeWaiters.push(resolve));
  }

  private send(m: CutRequest): void {
    if (this.failure) throw this.failure;
    this.cutThread.postMessage(m);
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

  private onReply(m: CutReply): void {
    if (m.stream !== this.stream) return; // a reply to an aborted stream
    if (m.op === 'error') return this.fail(new Error(`cutting failed: ${m.message}`));
    // the last batch comes after every other: the file id is known when it is taken
    if (m.final) {
      this.fileId = m.fileId ?? null;
      this.fileLeaves = m.leaves && m.leaves.length ? Buffer.from(m.leaves.buffer, m.leaves.byteOffset, m.leaves.length) : null;
    }
    const w = this.waiting;
    if (w) {
      this.waiting = null;
      this.expected--;
      w.resolve(m.batch);
    } else this.results.push(m.batch);
  }

  /** The stream is over: the workers may let the process exit. */
  private end(): void {
    this.active = false;
    this.cutThread.unref();
    this.hashThread.unref();
  }

  private abort(): void {
    // Replies still coming for the aborted stream are dropped. A worker may still be reading
    // a slot of it while the next stream writes there: that only spoils a dropped result.
    this.stream++;
    this.results.length = 0;
    this.expected = 0;
    this.waiting?.reject(new Error('cutting aborted'));
    this.waiting = null;
    this.free.length = 0;
    for (let i = this.views.length - 1; i >= 0; i--) this.free.push(i);
    for (const w of this.freeWaiters.splice(0)) w();
    if (!this.failure) this.cutThread.postMessage({ op: 'abort' } satisfies CutRequest);
    this.end();
  }

  private fail(e: Error): void {
    if (this.failure) return;
    this.failure = e;
    this.waiting?.reject(e);
    this.waiting = null;
    for (const w of this.freeWaiters.splice(0)) w();
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
