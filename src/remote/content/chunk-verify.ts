/**
 * Verifying a chunk in stored form: decode (zstd when codec 1), check the raw length and the
 * BLAKE3 id. Returns null when good, else a short reason. Used on both sides of a transfer:
 * push never uploads a chunk that does not verify, fetch never stores one.
 */
import { hashBytes } from '../../hashing/blake3.js';
import { decompress } from '../../store/compression.js';
import { CODEC_NONE, CODEC_ZSTD } from '../../store/pack-format.js';

export async function checkStoredChunk(idRaw: Buffer, codec: number, rawLength: number, stored: Buffer): Promise<string | null> {
  let plain: Buffer;
  if (codec === CODEC_NONE) plain = stored;
  else if (codec === CODEC_ZSTD) {
    try {
      plain = await decompress(stored);
    } catch {
      return 'zstd data does not decode';
    }
  } else return `unknown codec ${codec}`;
  if (plain.length !== rawLength) return `decoded length ${plain.length} is not ${rawLength}`;
  if (!hashBytes(plain).equals(idRaw)) return 'its bytes do not match its id';
  return null;
}
