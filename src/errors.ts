/**
 * Errors with a stable `code`, in two families:
 * - `DitsUserError`: the user's situation (bad input, missing content, not a repo).
 *   The CLI prints the message and the hint, and exits 1 (or the error's exitCode).
 * - anything else is ours (a bug): the CLI prints the stack and exits 70.
 * Library code throws these; only src/cli maps them to output and exit codes.
 */
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
