/**
 * Errors raised by ObjectStorage back ends. A StorageError is a DitsUserError (its code
 * and hint are shown to the user as they are) that also says whether trying again may
 * help: `retryable` is true for 5xx answers, throttling, timeouts and dropped
 * connections, false for everything that needs the user to act (wrong bucket, missing
 * credentials, access denied, bad URL).
 */
import { DitsUserError, errnoCode } from '../errors.js';

export interface StorageErrorOptions {
  hint?: string;
  cause?: unknown;
  retryable?: boolean;
  key?: string;
  /** HTTP status when the error came from an HTTP back end. */
  status?: number;
}

export class StorageError extends DitsUserError {
  readonly retryable: boolean;
  readonly key?: string;
  readonly status?: number;

  constructor(code: string, message: string, options: StorageErrorOptions = {}) {
    super(code, message, { hint: options.hint, cause: options.cause });
    this.name = 'StorageError';
    this.retryable = options.retryable ?? false;
    this.key = options.key;
    this.status = options.status;
  }
}

/**
 * Failures to reach a host at all (refused, no route, no such name, timed out before a
 * connection): every back end says "cannot reach <where>" for these, with its own hint.
 */
const UNREACHABLE_ERRNO = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT']);

export function isUnreachableErrno(code: string | undefined): boolean {
  return code !== undefined && UNREACHABLE_ERRNO.has(code);
}

/** Socket-level failures that a later attempt may not meet. */
const TRANSIENT_ERRNO = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'UND_ERR_SOCKET',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

/** Error names used by S3 and its SDK for answers worth retrying. */
const TRANSIENT_NAMES = new Set([
  'SlowDown',
  'ServiceUnavailable',
  'InternalError',
  'RequestTimeout',
  'RequestTimeoutException',
  'Throttling',
  'ThrottlingException',
  'TooManyRequestsException',
  'TimeoutError',
  'RequestTimeTooSkewed',
]);

/**
 * Whether an error is worth another attempt. StorageErrors say so themselves; raw errors
 * (a stream that broke mid-transfer, an SDK error not mapped yet) are classified by their
 * errno code, name or HTTP status. Unknown errors are not retried: a bug should surface.
 */
export function isRetryable(err: unknown): boolean {
  if (err instanceof StorageError) return err.retryable;
  if (err instanceof DitsUserError) return false;
  if (typeof err !== 'object' || err === null) return false;
  const code = errnoCode(err);
  if (code !== undefined && TRANSIENT_ERRNO.has(code)) return true;
  const e = err as { name?: unknown; message?: unknown; $retryable?: unknown; $metadata?: { httpStatusCode?: number } };
  if (typeof e.name === 'string' && TRANSIENT_NAMES.has(e.name)) return true;
  if (e.$retryable) return true;
  const status = e.$metadata?.httpStatusCode;
  if (typeof status === 'number' && (status >= 500 || status === 429)) return true;
  if (typeof e.message === 'string' && /socket hang up|premature close|aborted/i.test(e.message)) return true;
  const cause = (err as { cause?: unknown }).cause;
  return cause !== undefined && cause !== err && isRetryable(cause);
}
