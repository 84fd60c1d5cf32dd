/**
 * The remote pack index (`v1/packs/<packId>.idx`), version 1, little-endian:
 *
 *   magic    8 bytes  "DITSPIDX"
 *   version  u32      1
 *   count    u32      number of entries
 *   entries  count x 49 bytes, in pack order:
 *            chunk id (32 raw bytes) | offset u64 (of the entry's data, after its 41-byte head)
 *            | stored length u32 | raw length u32 | codec u8
 *
 * packId = BLAKE3-256 hex of these bytes: the index names its pack, so a downloaded index is
 * verified by its own key, and the same chunk list always gives the same packId (a re-run of
 * an interrupted push finds the pack it had already uploaded).
 */
import { hashHex } from '../../hashing/blake3.js';

export const INDEX_MAGIC = Buffer.from('DITSPIDX', 'latin1');
export const INDEX_VERSION = 1;
export const INDEX_HEADER_SIZE = 16;
export const INDEX_ENTRY_SIZE = 49;

export interface PackIndexEntry {
  idRaw: Buffer;
  /** offset of the entry's stored bytes in the pack */
  offset: number;
  storedLength: number;
  rawLength: number;
  codec: number;
}

export class PackIndexError extends Error {
  readonly code = 'pack-index-corrupt';
}

export function encodePackIndex(entries: readonly PackIndexEntry[]): { bytes: Buffer; packId: string } {
  const bytes = Buffer.alloc(INDEX_HEADER_SIZE + entries.length * INDEX_ENTRY_SIZE);
  INDEX_MAGIC.copy(bytes, 0);
  bytes.writeUInt32LE(INDEX_VERSION, 8);
  bytes.writeUInt32LE(entries.length, 12);
  let at = INDEX_HEADER_SIZE;
  for (const e of entries) {
    if (e.idRaw.length !== 32) throw new PackIndexError('chunk id must be 32 bytes');
    e.idRaw.copy(bytes, at);
    bytes.writeBigUInt64LE(BigInt(e.offset), at + 32);
    bytes.writeUInt32LE(e.storedLength, at + 40);
    bytes.writeUInt32LE(e.rawLength, at + 44);
    bytes[at + 48] = e.codec;
    at += INDEX_ENTRY_SIZE;
  }
  return { bytes, packId: hashHex(bytes) };
}

/** Parses an index; entries' idRaw are views into `bytes`. */
export function decodePackIndex(bytes: Buffer): PackIndexEntry[] {
  if (bytes.length < INDEX_HEADER_SIZE || !bytes.subarray(0, 8).equals(INDEX_MAGIC)) throw new PackIndexError('not a dits pack index');
  const version = bytes.readUInt32LE(8);
  if (version !== INDEX_VERSION) throw new PackIndexError(`pack index version ${version} is newer than this dits understands; upgrade dits`);
  const count = bytes.readUInt32LE(12);
  if (bytes.length !== INDEX_HEADER_SIZE + count * INDEX_ENTRY_SIZE) throw new PackIndexError('pack index has the wrong length for its entry count');
  const out: PackIndexEntry[] = new Array(count);
  let at = INDEX_HEADER_SIZE;
  for (let i = 0; i < count; i++) {
    const offset = bytes.readBigUInt64LE(at + 32);
    if (offset > BigInt(Number.MAX_SAFE_INTEGER)) throw new PackIndexError('pack index offset out of range');
    out[i] = {
      idRaw: bytes.subarray(at, at + 32),
      offset: Number(offset),
      storedLength: bytes.readUInt32LE(at + 40),
      rawLength: bytes.readUInt32LE(at + 44),
      codec: bytes[at + 48]!,
    };
    at += INDEX_ENTRY_SIZE;
  }
  return out;
}
