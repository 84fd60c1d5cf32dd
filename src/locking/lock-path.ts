/**
 * Lock paths: repository-relative POSIX paths, normalised so that one file has exactly
 * one spelling (`a//b/./c` and `a/b/c` name the same lock). Shared by the server (which
 * validates every path before touching the database) and the client (which normalises
 * before comparing with changed paths).
 *
 * Refused, never repaired: absolute paths, drive letters, `..` segments, `.git`
 * segments, backslashes, NUL and other control characters, and paths over
 * MAX_LOCK_PATH_BYTES of UTF-8.
 */

export const MAX_LOCK_PATH_BYTES = 4096;

export type LockPathResult = { ok: true; path: string } | { ok: false; reason: string };

export function checkLockPath(input: unknown): LockPathResult {
  if (typeof input !== 'string') return { ok: false, reason: 'path must be a string' };
  if (input.length === 0) return { ok: false, reason: 'path is empty' };
  if (Buffer.byteLength(input, 'utf8') > MAX_LOCK_PATH_BYTES) {
    return { ok: false, reason: `path is longer than ${MAX_LOCK_PATH_BYTES} bytes` };
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(input)) return { ok: false, reason: 'path contains a control character' };
  if (input.includes('\\')) return { ok: false, reason: 'path contains a backslash; use forward slashes' };
  if (input.startsWith('/')) return { ok: false, reason: 'path must be relative to the repository root' };
  if (/^[A-Za-z]:/.test(input)) return { ok: false, reason: 'path must be relative to the repository root' };
  const segments: string[] = [];
  for (const segment of input.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') return { ok: false, reason: "path contains a '..' segment" };
    if (segment.toLowerCase() === '.git') return { ok: false, reason: "path contains a '.git' segment" };
    segments.push(segment);
  }
  if (segments.length === 0) return { ok: false, reason: 'path names the repository root' };
  return { ok: true, path: segments.join('/') };
}

/** The normalised path, or throws a TypeError naming the reason. */
export function normalizeLockPath(input: string): string {
  const result = checkLockPath(input);
  if (!result.ok) throw new TypeError(`invalid lock path ${JSON.stringify(input)}: ${result.reason}`);
  return result.path;
}
