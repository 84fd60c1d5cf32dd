/**
 * The pack: chunks stored back to back in one file (locally) or object (remotely).
 * Version 1:
 *
 *   header  16 bytes: "DITSPACK" | u32 LE version (1) | u32 LE reserved (0)
 *   entry   41-byte head: chunk id (32 raw bytes) | codec u8 | raw length u32 LE | stored length u32 LE
 *           then `stored length` bytes of data (plain, or zstd when codec = 1)
 *
 * Self-describing, so an index can always be rebuilt by scanning; a pack that ends in the
 * middle of an entry (a crash mid-write) is valid up to its last whole entry. Ids are of
 * the plain bytes, so a stored chunk is verified after decoding.
 */
export const PACK_MAGIC = Buffer.from('DITSPACK', 'latin1');
export const PACK_VERSION = 1;
export const PACK_HEADER_SIZE = 16;
export const ENTRY_HEAD_SIZE = 41;

export const CODEC_NONE = 0;
export const CODEC_ZSTD = 1;
export type Codec = typeof CODEC_NONE | typeof CODEC_ZSTD;

export interface PackEntryHead {
  idRaw: Buffer;
  codec: number;
  rawLength: number;
  storedLength: number;
}

/** Where a chunk's stored bytes lie in a local pack (a row of the store's index). */
export interface ChunkLocation {
  /** the pack's id in the index */
  pack: number;
  /** of the entry's stored bytes, past its head */
  offset: number;
  storedLength: number;
  rawLength: number;
  codec: number;
}

export function encodePackHeader(): Buffer {
  const b = Buffer.alloc(PACK_HEADER_SIZE);
  PACK_MAGIC.copy(b, 0);
  b.writeUInt32LE(PACK_VERSION, 8);
  return b;
}

export function encodeEntryHead(h: PackEntryHead, out: Buffer, at: number): void {
  h.idRaw.copy(out, at, 0, 32);
  out[at + 32] = h.codec;
  out.writeUInt32LE(h.rawLength, at + 33);
  out.writeUInt32LE(h.storedLength, at + 37);
}
