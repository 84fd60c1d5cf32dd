import { GEAR } from './gear.js';

/**
 * The scanner contract, shared by the JavaScript scanner below and the native addon
 * (native/chunker.c), which must give identical results:
 *
 *   scan(data, start, end, state, cfg, out) -> n
 *
 * Scans data[start, end) continuing the chunk described by `state`
 * ([bytes of the current chunk already seen, hash, stop index]), writes the absolute
 * end index (exclusive) of each chunk that completes into out[0..n), and stops at `end`
 * or when `out` is full. On return state[0] and state[1] describe the chunk in progress
 * and state[2] is the index where scanning stopped (== end unless out filled up).
 * `cfg` is deriveScanConfig(params). The cut rule is documented in params.ts.
 */
export type ScanFn = (data: Uint8Array, start: number, end: number, state: Float64Array, cfg: Uint32Array, out: Float64Array) => number;

const G = new Int32Array(GEAR.buffer, GEAR.byteOffset, 256);

export const scanJs: ScanFn = (data, start, end, state, cfg, out) => {
  const min = cfg[0]!;
  const avg = cfg[1]!;
  const max = cfg[2]!;
  const maskS = cfg[3]! | 0;
  const maskL = cfg[4]! | 0;
  const hashStart = cfg[5]!;
  const cap = out.length;
  let pos = state[0]!;
  let h = state[1]! | 0;
  let i = start;
  let n = 0;
  while (i < end) {
    const base = i - pos; // index of the current chunk's first byte (may lie before `start`)
    let j = i;
    if (j < base + hashStart) j = base + hashStart;
    let cut = -1;
    // hash only: no cut can fall before minSize
    let lim = base + min - 1;
    if (lim > end) lim = end;
    for (; j < lim; j++) h = ((h << 1) + G[data[j]!]!) | 0;
    // minSize <= length < avgSize: the strict mask
    lim = base + avg - 1;
    if (lim > end) lim = end;
    for (; j < lim; j++) {
      h = ((h << 1) + G[data[j]!]!) | 0;
      if ((h & maskS) === 0) {
        cut = j + 1;
        break;
      }
    }
    if (cut < 0) {
      // avgSize <= length < maxSize: the loose mask
      lim = base + max - 1;
      if (lim > end) lim = end;
      for (; j < lim; j++) {
        h = ((h << 1) + G[data[j]!]!) | 0;
        if ((h & maskL) === 0) {
          cut = j + 1;
          break;
        }
      }
      if (cut < 0 && j === base + max - 1 && j < end) cut = j + 1; // length == maxSize
    }
    if (cut < 0) {
      pos = end - base;
      i = end;
      break;
    }
    out[n++] = cut;
    pos = 0;
    h = 0;
    i = cut;
    if (n === cap) break;
  }
  state[0] = pos;
  state[1] = h >>> 0;
  state[2] = i;
  return n;
};
