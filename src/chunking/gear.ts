/**
 * The gear table of Dits' FastCDC: 256 pseudo-random 32-bit words, one per byte value.
 *
 * PART OF THE ON-DISK FORMAT. Cut points depend on every word of this table, and chunk
 * ids depend on cut points: changing the table (or the generator, or the seed) moves every
 * cut and breaks dedup against all existing data. `gear.test.ts` pins a digest of it.
 *
 * Generator: SplitMix64 (Steele, Lea, Flood, "Fast splittable pseudorandom number
 * generators", OOPSLA 2014), seeded with GEAR_SEED; word k is the high 32 bits of the
 * (k+1)-th output:
 *   state += 0x9E3779B97F4A7C15
 *   z = state; z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9; z = (z ^ (z >> 27)) * 0x94D049BB133111EB
 *   out = z ^ (z >> 31)            (all arithmetic mod 2^64)
 * The native addon receives this very table from JavaScript, so there is one source.
 */
export const GEAR_SEED = 0x4449545343444331n; // "DITSCDC1"

const M64 = (1n << 64n) - 1n;

function generateGear(): Uint32Array {
  const table = new Uint32Array(256);
  let state = GEAR_SEED;
  for (let k = 0; k < 256; k++) {
    state = (state + 0x9e3779b97f4a7c15n) & M64;
    let z = state;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M64;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M64;
    z = z ^ (z >> 31n);
    table[k] = Number(z >> 32n);
  }
  return table;
}

/** The gear table (read-only by convention: do not write to it). */
export const GEAR: Uint32Array = generateGear();
