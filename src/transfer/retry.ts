/**
 * Retry with exponential backoff and jitter, shared by the transfer queue (whole items)
 * and the S3 back end (single multipart parts). Only errors that `isRetryable` accepts are
 * retried: 5xx, throttling (SlowDown, 503, 429), timeouts, dropped connections. A 4xx that
 * needs the user (no such bucket, access denied) fails at once.
 */
import { isRetryable } from './storage-error.js';

export interface RetryPolicy {
  /** Total attempts including the first (default 6). */
  maxAttempts: number;
  /** Delay before the first retry, before jitter (default 250 ms). */
  baseDelayMs: number;
  /** Cap of a single delay (default 20 s). */
  maxDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { maxAttempts: 6, baseDelayMs: 250, maxDelayMs: 20_000 };

export interface RetryDeps {
  sleep: (ms: number) => Promise<void>;
  /** Uniform in [0, 1); injected so tests are deterministic. */
  random: () => number;
}

export const realRetryDeps: RetryDeps = {
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  random: Math.random,
};

/**
 * Delay before retry number `retry` (1 for the first retry): "equal jitter", half fixed and
 * half random, so the delays still grow when many clients back off together but never
 * collapse to zero (full jitter can retry a throttled server immediately).
 */
export function backoffDelay(retry: number, policy: RetryPolicy, random: () => number): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (retry - 1));
  return Math.round(ceiling / 2 + (ceiling / 2) * random());
}

export interface RetryObserver {
  /** Called before each wait: the error, the attempt that failed (1-based), the delay. */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

export class RetriesExhaustedError extends Error {
  constructor(
    readonly attempts: number,
    readonly lastError: unknown,
  ) {
    super(`gave up after ${attempts} attempts: ${(lastError as Error)?.message ?? String(lastError)}`, { cause: lastError });
    this.name = 'RetriesExhaustedError';
  }
}

/**
 * Runs `attempt` until it succeeds, fails with a non-retryable error (rethrown as is), or
 * runs out of attempts (RetriesExhaustedError, carrying the last error).
 */
export async function withRetry<T>(
  attempt: (attemptNumber: number) => Promise<T>,
  policy: RetryPolicy,
  deps: RetryDeps,
  observer: RetryObserver & { retryable?: (err: unknown) => boolean } = {},
): Promise<T> {
  const retryable = observer.retryable ?? isRetryable;
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (err) {
      if (!retryable(err)) throw err;
      if (n >= policy.maxAttempts) throw new RetriesExhaustedError(n, err);
      const delay = backoffDelay(n, policy, deps.random);
      observer.onRetry?.(err, n, delay);
      await deps.sleep(delay);
    }
  }
}
