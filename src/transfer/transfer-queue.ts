/**
 * TransferQueue: the one queue every upload and download goes through (push, fetch,
 * clone, lazy reads, prune verification). It owns orchestration, not bytes: concurrency,
 * retries with backoff, integrity checks and progress; the ObjectStorage moves the bytes.
 *
 * - Concurrency: at most `concurrency` items run at once (default 8), first in, first out.
 * - Retries: an attempt that fails with a retryable error (5xx, throttling, timeouts,
 *   dropped connections; see storage-error.ts) is retried after an exponential backoff with
 *   jitter, up to `retry.maxAttempts`; a non-retryable error (wrong bucket, access denied,
 *   missing object) fails the item at once and is passed through unchanged. When attempts
 *   run out the item fails with TransferError (code transfer-failed) naming the object.
 * - Integrity: a download may carry `verify`; if it throws, the object is downloaded once
 *   more, and a second failure is reported as TransferError transfer-verify-failed naming
 *   the object. Other items are unaffected.
 * - Streams: an upload body is a Buffer or a factory of streams, called once per attempt.
 *   A download hands each attempt's stream to `consume`, which must read it to the end
 *   (or throw) and must be safe to run again (write to a temp file from the start, say).
 * - Progress: `onProgress` receives totals, bytes done, a rate over the last few seconds
 *   and an ETA, at most every `progressIntervalMs` and once when the queue goes idle.
 *   Bytes of a failed attempt are taken back. Rendering is the caller's job.
 * - Each `upload`/`download` call returns its own promise; `onIdle()` waits for all.
 */
import { pipeline, Transform, type Readable } from 'node:stream';
import { DitsUserError } from '../errors.js';
import type { ByteRange, ObjectStorage, PutBody } from './object-storage.js';
import { readStreamToBuffer } from './object-storage.js';
import { backoffDelay, DEFAULT_RETRY_POLICY, type RetryPolicy } from './retry.js';
import { isRetryable } from './storage-error.js';

export interface TransferProgress {
  doneBytes: number;
  totalBytes: number;
  doneItems: number;
  totalItems: number;
  failedItems: number;
  /** bytes per second over the last `rateWindowMs` */
  rateBytesPerSec: number;
  /** seconds left at the current rate; null while the rate is unknown */
  etaSec: number | null;
}

export interface TransferQueueOptions {
  /** Items in flight at once (default 8). */
  concurrency?: number;
  retry?: RetryPolicy;
  onProgress?: (progress: TransferProgress) => void;
  /** Minimum time between progress calls (default 200 ms). */
  progressIntervalMs?: number;
  /** Window of the rate estimate (default 5 s). */
  rateWindowMs?: number;
  /** Injected world, for tests. */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

export interface UploadItem {
  key: string;
  body: PutBody;
  /** Size in bytes when known: counted in totals before the item starts. */
  size?: number;
  contentType?: string;
}

export interface UploadResult {
  key: string;
  etag: string;
  bytes: number;
  attempts: number;
}

export interface DownloadItem<T> {
  key: string;
  range?: ByteRange;
  /** Expected bytes when known (for totals and ETA). */
  size?: number;
  /** Reads one attempt's stream to the end; must be repeatable. */
  consume: (body: Readable, attempt: number) => Promise<T>;
  /** Throws if the result is not what was expected (e.g. a BLAKE3 mismatch). */
  verify?: (result: T) => void | Promise<void>;
}

export interface BufferDownloadItem {
  key: string;
  range?: ByteRange;
  size?: number;
  verify?: (data: Buffer) => void | Promise<void>;
}

export class TransferError extends DitsUserError {
  readonly key: string;
  readonly attempts: number;
  constructor(code: 'transfer-failed' | 'transfer-verify-failed', message: string, opts: { key: string; attempts: number; hint?: string; cause?: unknown }) {
    super(code, message, { hint: opts.hint, cause: opts.cause });
    this.name = 'TransferError';
    this.key = opts.key;
    this.attempts = opts.attempts;
  }
}

/** Raised inside an attempt when `verify` rejected the result. */
class VerifyFailure extends Error {
  constructor(readonly reason: unknown) {
    super((reason as Error)?.message ?? String(reason));
  }
}

export class TransferQueue {
  readonly storage: ObjectStorage;
  private readonly concurrency: number;
  private readonly retryPolicy: RetryPolicy;
  private readonly onProgress?: (p: TransferProgress) => void;
  private readonly progressIntervalMs: number;
  private readonly rateWindowMs: number;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;

  private running = 0;
  private readonly waiting: (() => void)[] = [];
  private idleWaiters: (() => void)[] = [];
  private doneBytes = 0;
  private totalBytes = 0;
  private doneItems = 0;
  private totalItems = 0;
  private failedItems = 0;
  private retries = 0;
  private samples: { t: number; bytes: number }[] = [];
  private lastEmit = -Infinity;

  constructor(storage: ObjectStorage, options: TransferQueueOptions = {}) {
    this.storage = storage;
    this.concurrency = Math.max(1, options.concurrency ?? 8);
    this.retryPolicy = options.retry ?? DEFAULT_RETRY_POLICY;
    this.onProgress = options.onProgress;
    this.progressIntervalMs = options.progressIntervalMs ?? 200;
    this.rateWindowMs = options.rateWindowMs ?? 5000;
    this.now = options.now ?? Date.now;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.random = options.random ?? Math.random;
  }

  upload(item: UploadItem): Promise<UploadResult> {
    const size = item.size ?? (Buffer.isBuffer(item.body) ? item.body.length : undefined);
    return this.run(item.key, size, 'upload', async (count, attempt) => {
      let body: PutBody;
      if (Buffer.isBuffer(item.body)) {
        body = item.body;
      } else {
        const factory = item.body;
        body = () => countingStream(factory(), count);
      }
      const { etag } = await this.storage.put(item.key, body, { size, contentType: item.contentType });
      if (Buffer.isBuffer(item.body)) count(item.body.length);
      return { key: item.key, etag, bytes: size ?? 0, attempts: attempt };
    }).then((r) => ({ ...r.value, bytes: r.bytes, attempts: r.attempts }));
  }

  download<T>(item: DownloadItem<T>): Promise<T> {
    const size = item.size ?? (item.range ? item.range.end - item.range.start + 1 : undefined);
    return this.run(item.key, size, 'download', async (count, attempt) => {
      const source = await this.storage.get(item.key, item.range);
      const result = await item.consume(countingStream(source, count), attempt);
      if (item.verify) {
        try {
          await item.verify(result);
        } catch (err) {
          throw new VerifyFailure(err);
        }
      }
      return result;
    }).then((r) => r.value);
  }

  downloadBuffer(item: BufferDownloadItem): Promise<Buffer> {
    return this.download({ key: item.key, range: item.range, size: item.size, consume: readStreamToBuffer, verify: item.verify });
  }

  /** Resolves when nothing is queued or running. */
  onIdle(): Promise<void> {
    if (this.running === 0 && this.waiting.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  progress(): TransferProgress {
    const rate = this.rate();
    const left = Math.max(0, this.totalBytes - this.doneBytes);
    return {
      doneBytes: this.doneBytes,
      totalBytes: this.totalBytes,
      doneItems: this.doneItems,
      totalItems: this.totalItems,
      failedItems: this.failedItems,
      rateBytesPerSec: rate,
      etaSec: rate > 0 ? left / rate : left === 0 ? 0 : null,
    };
  }

  /** Retries made so far (for reports and tests). */
  get retryCount(): number {
    return this.retries;
  }

  // ---- internals ----

  private async run<T>(
    key: string,
    size: number | undefined,
    direction: 'upload' | 'download',
    attemptFn: (count: (n: number) => void, attempt: number) => Promise<T>,
  ): Promise<{ value: T; bytes: number; attempts: number }> {
    this.totalItems += 1;
    if (size !== undefined) this.totalBytes += size;
    await this.acquire();
    let counted = 0;
    let attempts = 0;
    try {
      const value = await this.attemptWithRetries(key, direction, (n) => {
        attempts = n;
        this.addBytes(-counted); // take back what a failed attempt counted
        counted = 0;
        return attemptFn((bytes) => {
          if (n !== attempts) return; // a late chunk of an abandoned attempt
          counted += bytes;
          this.addBytes(bytes);
        }, n);
      });
      if (size === undefined) this.totalBytes += counted;
      else if (counted !== size) this.addBytes(size - counted); // e.g. a Buffer counted at the end
      this.doneItems += 1;
      return { value, bytes: counted, attempts };
    } catch (err) {
      this.addBytes(-counted);
      if (size !== undefined) this.totalBytes -= size;
      this.failedItems += 1;
      throw err;
    } finally {
      this.release();
      this.emit(false);
    }
  }

  /**
   * Transient errors: up to retry.maxAttempts attempts with backoff. Verify failures: one
   * more attempt at once. Anything else: fails at once, unchanged.
   */
  private async attemptWithRetries<T>(key: string, direction: string, attempt: (n: number) => Promise<T>): Promise<T> {
    let transient = 0;
    let verifyFailures = 0;
    for (let n = 1; ; n++) {
      try {
        return await attempt(n);
      } catch (err) {
        const where = `${this.storage.location.replace(/\/?$/, '/')}${key}`;
        if (err instanceof VerifyFailure) {
          verifyFailures += 1;
          if (verifyFailures > 1) {
            throw new TransferError('transfer-verify-failed', `Integrity check failed twice for ${where}: ${err.message}`, {
              key,
              attempts: n,
              cause: err.reason,
              hint: 'The stored copy is damaged or not what was expected; other objects are unaffected. Re-upload it from a machine that has the content.',
            });
          }
          this.retries += 1;
          continue;
        }
        if (!isRetryable(err)) throw err; // already says what is wrong (or is a bug)
        transient += 1;
        if (transient >= this.retryPolicy.maxAttempts) {
          const hint = (err as { hint?: unknown }).hint;
          throw new TransferError('transfer-failed', `Could not ${direction} ${where} after ${n} attempts: ${(err as Error)?.message ?? String(err)}`, {
            key,
            attempts: n,
            cause: err,
            hint: typeof hint === 'string' ? hint : 'The storage kept failing; re-run later, completed transfers are not repeated.',
          });
        }
        this.retries += 1;
        await this.sleep(backoffDelay(transient, this.retryPolicy, this.random));
      }
    }
  }

  private addBytes(n: number): void {
    if (n === 0) return;
    this.doneBytes += n;
    this.emit(false);
  }

  private rate(): number {
    const t = this.now();
    this.samples.push({ t, bytes: this.doneBytes });
    while (this.samples.length > 2 && this.samples[0].t < t - this.rateWindowMs) this.samples.shift();
    const first = this.samples[0];
    const dt = (t - first.t) / 1000;
    return dt > 0 ? Math.max(0, (this.doneBytes - first.bytes) / dt) : 0;
  }

  private emit(force: boolean): void {
    if (!this.onProgress) return;
    const t = this.now();
    if (!force && t - this.lastEmit < this.progressIntervalMs) return;
    this.lastEmit = t;
    this.onProgress(this.progress());
  }

  private acquire(): Promise<void> {
    if (this.running < this.concurrency) {
      this.running += 1;
      return Promise.resolve();
    }
    return new Promise((resolve) =>
      this.waiting.push(() => {
        this.running += 1;
        resolve();
      }),
    );
  }

  private release(): void {
    this.running -= 1;
    const next = this.waiting.shift();
    if (next) {
      next();
      return;
    }
    if (this.running === 0) {
      this.emit(true);
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }
}

/** Passes a stream through, reporting each chunk's length; errors propagate both ways. */
function countingStream(source: Readable, count: (n: number) => void): Readable {
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      count(chunk.length);
      done(null, chunk);
    },
  });
  pipeline(source, counter, () => undefined);
  return counter;
}
