import { DitsUserError } from '../errors.js';

/**
 * Dits' FastCDC (Xia et al., "The Design of Fast Content-Defined Chunking for Data
 * Deduplication Based Storage Systems", IEEE TPDS 2020): gear rolling hash, normalised
 * chunking with two masks, and no hashing of the bytes a cut cannot fall in.
 *
 * The exact rule (part of the on-disk format, shared by the JS and native scanners):
 * - The hash is 32-bit: h = (h * 2 + GEAR[byte]) mod 2^32, reset to 0 at each chunk start.
 *   Bit k of h depends on the last k+1 bytes only, so the cut test below looks at a
 *   32-byte window.
 * - Within a chunk, byte r (0-based) is hashed when r >= max(0, minSize - 32): hashing
 *   starts 32 bytes before the first possible cut, so the first tests already see a full
 *   window (this is what makes cuts resynchronise after an insertion).
 * - After hashing byte r the chunk is cut after that byte (length r + 1) when:
 *     r + 1 == maxSize, or
 *     minSize <= r + 1 < avgSize  and (h & maskS) == 0, or
 *     avgSize <= r + 1 < maxSize  and (h & maskL) == 0.
 * - With bits = log2(avgSize): maskS has the top bits+2 bits set, maskL the top bits-2
 *   (normalisation level 2: cuts before the average are 4x rarer, after it 4x likelier,
 *   which pulls chunk sizes towards the average).
 * - The last chunk of a stream is whatever remains (it may be shorter than minSize).
 */
export interface ChunkerParams {
  minSize: number;
  avgSize: number;
  maxSize: number;
}

/**
 * 16 KiB / 64 KiB / 256 KiB, the master architecture's figures. On incompressible data
 * (camera codecs, H.264) this gives a mean chunk near 70 KiB; a small edit then costs one
 * or two chunks (well under the 300 KB per edit asked), while a 1 GiB file is ~15k chunks,
 * few enough that per-chunk costs (index rows, manifest entries: 37 bytes each) stay small.
 */
export const DEFAULT_CHUNKER_PARAMS: Readonly<ChunkerParams> = Object.freeze({
  minSize: 16 * 1024,
  avgSize: 64 * 1024,
  maxSize: 256 * 1024,
});

/** Smallest and largest allowed avgSize (masks need bits-2 >= 1 and bits+2 <= 32). */
export const MIN_AVG_SIZE = 64;
export const MAX_CHUNK_SIZE = 1 << 30;

function isPowerOfTwo(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

/** Throws DitsUserError('bad-chunker-params') unless 1 <= min <= avg <= max <= 1 GiB, all integers, avg a power of two >= 64. */
export function validateChunkerParams(p: ChunkerParams): void {
  const bad = (why: string): never => {
    throw new DitsUserError('bad-chunker-params', `invalid chunker sizes (min ${p?.minSize}, avg ${p?.avgSize}, max ${p?.maxSize}): ${why}`, {
      hint: `use sizes with 1 <= min <= avg <= max <= ${MAX_CHUNK_SIZE} and avg a power of two (the default is 16384/65536/262144)`,
    });
  };
  if (typeof p !== 'object' || p === null) bad('not an object');
  const { minSize, avgSize, maxSize } = p;
  for (const [name, v] of [['minSize', minSize], ['avgSize', avgSize], ['maxSize', maxSize]] as const) {
    if (typeof v !== 'number' || !Number.isInteger(v)) bad(`${name} is not an integer`);
  }
  if (minSize < 1) bad('minSize must be at least 1');
  if (!isPowerOfTwo(avgSize) || avgSize < MIN_AVG_SIZE) bad(`avgSize must be a power of two, at least ${MIN_AVG_SIZE}`);
  if (minSize > avgSize) bad('minSize must not exceed avgSize');
  if (avgSize > maxSize) bad('avgSize must not exceed maxSize');
  if (maxSize > MAX_CHUNK_SIZE) bad(`maxSize must not exceed ${MAX_CHUNK_SIZE}`);
}

/** The top `bits` bits of a 32-bit word, as an unsigned number. */
function topBits(bits: number): number {
  return bits >= 32 ? 0xffffffff : (0xffffffff << (32 - bits)) >>> 0;
}

/**
 * The scanner configuration derived from validated params, laid out for both scanners:
 * [minSize, avgSize, maxSize, maskS, maskL, hashStart].
 */
export function deriveScanConfig(p: ChunkerParams): Uint32Array {
  validateChunkerParams(p);
  const bits = Math.round(Math.log2(p.avgSize));
  return Uint32Array.of(p.minSize, p.avgSize, p.maxSize, topBits(bits + 2), topBits(bits - 2), Math.max(0, p.minSize - 32));
}
