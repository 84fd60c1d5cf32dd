/**
 * The native FastCDC scanner (native/chunker.c, in the addon: src/native-addon.ts). Absent
 * or broken: null, and the JavaScript scanner is used. The scanner is checked against the
 * JavaScript scanner's known answers once at load (a few hundred KiB), so a miscompiled
 * addon can never change cut points.
 */
import { loadAddon, nativeLoadError } from '../native-addon.js';
import { GEAR } from './gear.js';
import { deriveScanConfig } from './params.js';
import type { ScanFn } from './scan-js.js';

let cached: { scan: ScanFn | null; error?: string } | undefined;

export function loadNativeScan(): ScanFn | null {
  cached ??= tryLoad();
  return cached.scan;
}

/** Why the native scanner is not in use, or undefined when it is. */
export function nativeScanError(): string | undefined {
  loadNativeScan();
  return cached?.error;
}

function tryLoad(): { scan: ScanFn | null; error?: string } {
  const addon = loadAddon();
  if (!addon) return { scan: null, error: nativeLoadError() };
  try {
    addon.init(GEAR);
    if (!agreesWithJs(addon.scan)) return { scan: null, error: 'native chunker disagrees with the JavaScript chunker' };
    return { scan: addon.scan };
  } catch (err) {
    return { scan: null, error: `the native chunker does not start: ${(err as Error).message}` };
  }
}

/**
 * Known answers: the cuts of a fixed input under two parameter sets, as [count, sum,
 * weighted sum] (mod 2^32). The JavaScript scanner gives exactly these (native.test.ts
 * checks), so an addon that gives them too cuts where the JavaScript scanner cuts; the
 * check costs one native scan of 600 KB instead of running the JavaScript scanner as well.
 */
export const SCAN_KNOWN_ANSWERS: readonly (readonly [number, number, number])[] = [
  [782, 466941566, 2650710872],
  [25, 377489508, 822641752],
];

/** The known-answer input and how it is fed (see SCAN_KNOWN_ANSWERS). */
export function scanKnownAnswers(scan: ScanFn): [number, number, number][] {
  // xorshift32 bytes, a mostly-zero run (max-size cuts), split at an odd offset to
  // exercise carrying the state across calls.
  // A Buffer, like everything the Chunker passes: feeding the JS scanner a plain
  // Uint8Array here would make its element loads polymorphic and halve its speed.
  const data = Buffer.alloc(300_000);
  let x = 2463534242;
  for (let i = 0; i < 200_000; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    data[i] = x & 0xff;
  }
  const sums: [number, number, number][] = [];
  for (const params of [
    { minSize: 64, avgSize: 256, maxSize: 1024 },
    { minSize: 2048, avgSize: 8192, maxSize: 32768 },
  ]) {
    const cfg = deriveScanConfig(params);
    const state = new Float64Array(3);
    const out = new Float64Array(7); // small on purpose: exercises stopping when out is full
    const cuts: number[] = [];
    for (const [a, b] of [[0, 12_345], [12_345, data.length]] as const) {
      let start: number = a;
      while (start < b) {
        const n = scan(data, start, b, state, cfg, out);
        for (let k = 0; k < n; k++) cuts.push(out[k]!);
        start = state[2]!;
      }
    }
    cuts.push(state[0]!, state[1]!);
    let sum = 0;
    let weighted = 0;
    for (let i = 0; i < cuts.length; i++) {
      sum = (sum + cuts[i]!) % 4294967296;
      weighted = (weighted + cuts[i]! * (i + 1)) % 4294967296;
    }
    sums.push([cuts.length, sum, weighted]);
  }
  return sums;
}

function agreesWithJs(scan: ScanFn): boolean {
  const got = scanKnownAnswers(scan);
  return SCAN_KNOWN_ANSWERS.every((want, i) => want.every((v, k) => got[i]![k] === v));
}
