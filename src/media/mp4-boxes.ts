/**
 * ISO base media file format (ISO/IEC 14496-12) and QuickTime (QTFF) box headers.
 *
 * Grammar of one box:
 *   size:u32 type:4cc [largesize:u64 if size == 1] [usertype:16 bytes if type == 'uuid'] payload
 *   size == 0 means "to the end of the enclosing space" (only legal for the last box).
 *
 * Only headers are read here; payloads are read by the caller when it needs them.
 * Every malformed header raises `MediaParseError`, which `analyzeContainer` turns into
 * a clean fallback to plain chunking.
 */
import type { RandomAccessReader } from './random-access-reader.js';

export class MediaParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MediaParseError';
  }
}

export interface BoxHeader {
  /** Four-character type, decoded as latin1 (e.g. 'moov', '©swr'). */
  type: string;
  /** Absolute offset of the first header byte. */
  start: number;
  /** Header length in bytes (8, 16, or 24/32 with a uuid). */
  headerSize: number;
  /** Absolute offset one past the last byte of the box. */
  end: number;
  /** True when the header said size 0 ("extends to the end"). */
  toEnd: boolean;
}

/** Absolute offset of the payload. */
export function payloadStart(box: BoxHeader): number {
  return box.start + box.headerSize;
}

export function payloadSize(box: BoxHeader): number {
  return box.end - box.start - box.headerSize;
}

/**
 * Reads the header of the box that starts at `offset`, inside a space that ends at `limit`.
 * Throws `MediaParseError` when the header is truncated, too small, or the box passes `limit`.
 */
export async function readBoxHeader(reader: RandomAccessReader, offset: number, limit: number): Promise<BoxHeader> {
  if (limit - offset < 8) throw new MediaParseError(`truncated box header at offset ${offset}`);
  const head = await reader.read(offset, Math.min(16, limit - offset));
  if (head.length < 8) throw new MediaParseError(`truncated box header at offset ${offset}`);
  const size32 = head.readUInt32BE(0);
  const type = head.toString('latin1', 4, 8);
  let headerSize = 8;
  let end: number;
  let toEnd = false;
  if (size32 === 1) {
    if (head.length < 16) throw new MediaParseError(`truncated 64-bit box header '${printable(type)}' at offset ${offset}`);
    const large = head.readBigUInt64BE(8);
    if (large > BigInt(Number.MAX_SAFE_INTEGER)) throw new MediaParseError(`box '${printable(type)}' at offset ${offset} has an impossible size`);
    headerSize = 16;
    end = offset + Number(large);
  } else if (size32 === 0) {
    end = limit;
    toEnd = true;
  } else {
    end = offset + size32;
  }
  if (type === 'uuid') headerSize += 16;
  if (end - offset < headerSize) throw new MediaParseError(`box '${printable(type)}' at offset ${offset} is smaller than its header`);
  if (end > limit) {
    throw new MediaParseError(`box '${printable(type)}' at offset ${offset} ends at ${end}, beyond its space (${limit})`);
  }
  return { type, start: offset, headerSize, end, toEnd };
}

/**
 * Lists the child boxes in `[start, end)`. Children are few (tens) in every box we open,
 * so an array is fine; `maxChildren` guards against a crafted box with millions.
 */
export async function readChildBoxes(
  reader: RandomAccessReader,
  start: number,
  end: number,
  maxChildren = 10_000,
): Promise<BoxHeader[]> {
  const children: BoxHeader[] = [];
  let offset = start;
  while (offset < end) {
    // QuickTime allows a 32-bit zero terminator at the end of some atom lists.
    if (end - offset < 8) {
      const tail = await reader.read(offset, end - offset);
      if (tail.every((b) => b === 0)) break;
      throw new MediaParseError(`truncated box header at offset ${offset}`);
    }
    const box = await readBoxHeader(reader, offset, end);
    children.push(box);
    if (children.length > maxChildren) throw new MediaParseError(`more than ${maxChildren} boxes at offset ${start}`);
    offset = box.end;
  }
  return children;
}

/** Reads a whole box payload; only for small boxes (headers, sample descriptions). */
export async function readPayload(reader: RandomAccessReader, box: BoxHeader, maxBytes = 1 << 20): Promise<Buffer> {
  const size = payloadSize(box);
  if (size > maxBytes) throw new MediaParseError(`box '${printable(box.type)}' at offset ${box.start} is too large to read (${size} bytes)`);
  const bytes = await reader.read(payloadStart(box), size);
  if (bytes.length < size) throw new MediaParseError(`box '${printable(box.type)}' at offset ${box.start} is truncated`);
  return bytes;
}

export function findChild(children: BoxHeader[], type: string): BoxHeader | undefined {
  return children.find((c) => c.type === type);
}

/** A box type made safe for messages: non-printable bytes become '?'. */
export function printable(type: string): string {
  return type.replace(/[^\x20-\x7e\xa9]/g, '?');
}

/** True when all four characters look like a box type (printable latin1, incl. '©'). */
export function isPlausibleBoxType(type: string): boolean {
  return /^[\x20-\x7e\xa9]{4}$/.test(type);
}
