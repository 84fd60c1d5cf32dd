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

/** What every Dits pointer starts with, whatever its version. */
export const POINTER_PREFIX = 'version dits/';

/**
 * True for content that claims to be a Dits pointer (it starts with `version dits/`),
 * valid or not, whatever its size: only the first bytes are looked at. Such content that
 * does not parse is a damaged pointer, not a file of its own (see `pointerDamage`).
 */
export function looksLikePointer(data: Buffer): boolean {
  return data.subarray(0, POINTER_PREFIX.length).toString('latin1') === POINTER_PREFIX;
}

const LINE_CHECKS: readonly { re: RegExp; what: string }[] = [
  { re: /^oid blake3:[0-9a-f]{64}$/, what: 'file id line (oid blake3:<64 lowercase hex digits>)' },
  { re: /^size (0|[1-9][0-9]{0,15})$/, what: 'size line (size <decimal bytes>)' },
  { re: /^manifest blake3:[0-9a-f]{64}$/, what: 'manifest id line (manifest blake3:<64 lowercase hex digits>)' },
];

/**
 * Why `data` is a damaged pointer, in a few words for a message; null when it is a valid
 * pointer or does not claim to be one. `complete: false` when `data` is only the
 * beginning of longer content.
 */
export function pointerDamage(data: Buffer, complete = true): string | null {
  if (!looksLikePointer(data)) return null;
  if (!complete) return `longer than a pointer can be (${MAX_POINTER_SIZE} bytes)`;
  if (data.length > MAX_POINTER_SIZE) return `${data.length} bytes, longer than a pointer can be (${MAX_POINTER_SIZE})`;
  if (parsePointer(data)) return null;
  const lines = data.toString('latin1').split('\n');
  if (lines[0] !== POINTER_VERSION_LINE) return `unknown version line ${JSON.stringify(lines[0]!.slice(0, 40))}`;
  for (let i = 0; i < LINE_CHECKS.length; i++) {
    const line = lines[i + 1];
    const last = i + 2 >= lines.length; // no newline after it: the text ends here
    if (line === undefined || (last && line === '')) return `truncated: no ${LINE_CHECKS[i]!.what}`;
    if (!LINE_CHECKS[i]!.re.test(line)) return last ? `truncated in the ${LINE_CHECKS[i]!.what}` : `the ${LINE_CHECKS[i]!.what} is wrong: ${JSON.stringify(line.slice(0, 80))}`;
  }
  if (lines.length === LINE_CHECKS.length + 1) return 'truncated: no newline after the manifest id line';
  return 'unexpected text after the manifest id line';
}

