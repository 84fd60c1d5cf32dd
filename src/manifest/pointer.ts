/**
 * The pointer: what Git stores for a tracked file (the `.ditsm` text). Version 1:
 *
 *   version dits/1\n
 *   oid blake3:<64 hex>\n        file id: BLAKE3-256 of the whole file
 *   size <decimal bytes>\n
 *   manifest blake3:<64 hex>\n   manifest id: BLAKE3-256 of the encoded manifest
 *
 * Exactly these lines, in this order; about 190 bytes, always under 1 KiB. Anything else
 * is not a pointer (clean of a pointer returns it unchanged; smudge of a non-pointer
 * passes it through).
 */
import { DitsUserError } from '../errors.js';

export const POINTER_VERSION_LINE = 'version dits/1';
export const MAX_POINTER_SIZE = 1024;
/** BLAKE3-256 of zero bytes: the file id of every empty file. */
export const EMPTY_FILE_ID = 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262';

export interface Pointer {
  oid: string;
  size: number;
  manifest: string;
}

const POINTER_RE = /^version dits\/1\noid blake3:([0-9a-f]{64})\nsize (0|[1-9][0-9]{0,15})\nmanifest blake3:([0-9a-f]{64})\n$/;

export function encodePointer(p: Pointer): Buffer {
  if (!Number.isSafeInteger(p.size) || p.size < 0) throw new Error(`bad pointer size ${p.size}`);
  return Buffer.from(`${POINTER_VERSION_LINE}\noid blake3:${p.oid}\nsize ${p.size}\nmanifest blake3:${p.manifest}\n`, 'utf8');
}

/** The pointer in `data`, or null if `data` is not exactly a version-1 pointer. */
export function parsePointer(data: Buffer | string): Pointer | null {
  if (data.length > MAX_POINTER_SIZE) return null;
  const text = typeof data === 'string' ? data : data.toString('latin1');
  const m = POINTER_RE.exec(text);
  if (!m) return null;
  const size = Number(m[2]);
  if (!Number.isSafeInteger(size)) return null;
  return { oid: m[1]!, size, manifest: m[3]! };
}

/** True for text that claims to be a dits pointer (first line), valid or not. */
export function looksLikePointer(data: Buffer): boolean {
  return data.length <= MAX_POINTER_SIZE && data.subarray(0, 12).toString('latin1') === 'version dits';
}

export function requirePointer(data: Buffer, path: string): Pointer {
  const p = parsePointer(data);
  if (!p) {
    throw new DitsUserError('bad-pointer', `${path}: the pointer stored in Git is damaged or of an unknown version`, {
      hint: 'restore the file from another commit, or re-add the real file with `git add`',
    });
  }
  return p;
}
