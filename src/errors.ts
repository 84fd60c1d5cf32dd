/**
 * Errors with a stable `code`, in two families:
 * - `DitsUserError`: the user's situation (bad input, missing content, not a repo).
 *   The CLI prints the message and the hint, and exits 1 (or the error's exitCode).
 * - anything else is ours (a bug): the CLI prints the stack and exits 70.
 * Library code throws these; only src/cli maps them to output and exit codes.
 *
 * Every code Dits gives an error is kebab-case (ERROR_CODE_STYLE), as the server's JSON
 * errors, the lock codes and `--json` outputs always were; src/error-codes.test.ts walks
 * the source and holds every code to it.
 */
export const ERROR_CODE_STYLE = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;

/**
 * Codes of the transfer layer and the project parsers that were UPPER_SNAKE before all
 * codes became kebab-case, and were documented (and sent by the Dits server's storage
 * routes): a code that arrives under its old name (from an older server) is read as the new.
 */
export const RENAMED_ERROR_CODES: Readonly<Record<string, string>> = {
  BAD_STORAGE_URL: 'bad-storage-url',
  DITS_PROJECT_FORMAT: 'project-format-unknown',
  DITS_PROJECT_PARSE: 'project-corrupt',
  S3_ACCESS_DENIED: 's3-access-denied',
  S3_BAD_CREDENTIALS: 's3-bad-credentials',
  S3_CAS_MODE_CONFLICT: 's3-cas-mode-conflict',
  S3_CREDENTIALS_EXPIRED: 's3-credentials-expired',
  S3_ERROR: 's3-error',
  S3_NO_CREDENTIALS: 's3-no-credentials',
  S3_NO_REGION: 's3-no-region',
  S3_NO_SUCH_BUCKET: 's3-no-such-bucket',
  S3_REFUSED: 's3-refused',
  S3_WRONG_REGION: 's3-wrong-region',
  SERVER_ERROR: 'server-error',
  SERVER_REFUSED: 'server-refused',
  STORAGE_ACCESS_DENIED: 'storage-access-denied',
  STORAGE_BAD_KEY: 'storage-bad-key',
  STORAGE_BAD_RANGE: 'storage-bad-range',
  STORAGE_CAS_CONTENDED: 'storage-cas-contended',
  STORAGE_CAS_CORRUPT: 'storage-cas-corrupt',
  STORAGE_FORMAT: 'storage-format',
  STORAGE_FULL: 'storage-full',
  STORAGE_IO: 'storage-io',
  STORAGE_KEY_CONFLICT: 'storage-key-conflict',
  STORAGE_LOCK_LOST: 'storage-lock-lost',
  STORAGE_NETWORK: 'storage-network',
  STORAGE_NOT_FOUND: 'storage-not-found',
  STORAGE_ROOT_MISSING: 'storage-root-missing',
  STORAGE_SIZE_MISMATCH: 'storage-size-mismatch',
  STORAGE_UNAVAILABLE: 'storage-unavailable',
  STORAGE_UNREACHABLE: 'storage-unreachable',
  TRANSFER_FAILED: 'transfer-failed',
  TRANSFER_VERIFY_FAILED: 'transfer-verify-failed',
};

/** `code` under its current name (see RENAMED_ERROR_CODES); undefined stays undefined. */
export function currentErrorCode<T extends string | undefined>(code: T): T {
  return (code !== undefined && Object.hasOwn(RENAMED_ERROR_CODES, code) ? RENAMED_ERROR_CODES[code] : code) as T;
}
export class DitsUserError extends Error {
  readonly code: string;
  readonly hint?: string;
  readonly exitCode: number;

  constructor(code: string, message: string, options: { hint?: string; exitCode?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DitsUserError';
    this.code = code;
    this.hint = options.hint;
    this.exitCode = options.exitCode ?? 1;
  }
}

export function isUserError(err: unknown): err is DitsUserError {
  return err instanceof DitsUserError;
}

/** Node's system errors (ENOENT, ENOSPC, ...) carry a string code. */
export function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof (err as { code: unknown }).code === 'string'
    ? (err as { code: string }).code
    : undefined;
}
