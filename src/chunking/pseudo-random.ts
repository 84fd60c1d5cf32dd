/**
 * Deterministic pseudo-random bytes for golden tests and benchmarks (not for anything
 * secret). Marsaglia's xorshift32 (shifts 13, 17, 5) from `seed` (non-zero), each state
 * written as 4 little-endian bytes; the golden chunk-boundary vectors depend on it.
 */
export function xorshift32Bytes(length: number, seed = 2463534242): Buffer {
  if (seed === 0) throw new RangeError('xorshift32 seed must be non-zero');
  const out = Buffer.allocUnsafe(length);
  const words = new Uint32Array(Math.ceil(length / 4));
  let x = seed >>> 0;
  for (let k = 0; k < words.length; k++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[k] = x >>> 0;
  }
  const bytes = new Uint8Array(words.buffer, 0, length);
  // Uint32Array uses the platform's byte order; fix it to little-endian.
  if (new Uint8Array(Uint32Array.of(1).buffer)[0] === 1) out.set(bytes);
  else for (let k = 0; k < length; k++) out[k] = (words[k >>> 2]! >>> ((k & 3) * 8)) & 0xff;
  return out;
}
