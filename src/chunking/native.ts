import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { GEAR } from './gear.js';
import { deriveScanConfig } from './params.js';
import { scanJs, type ScanFn } from './scan-js.js';

/**
 * Lazy loader of the native scanner (native/chunker.c, built by scripts/build-native.mjs
 * into native/build/Release/dits_chunker.node). Absent or broken addon: null, and the
 * JavaScript scanner is used. The addon is checked against the JavaScript scanner once at
 * load (a few hundred KiB), so a miscompiled addon can never change cut points.
 */
interface Addon {
  init(gear: Uint32Array): void;
  scan: ScanFn;
  pipeSize?: (fd: number, bytes: number) => number;
  pageOffset?: (view: Uint8Array) => number;
  copy?: (src: Uint8Array, dst: Uint8Array, at: number) => number;
  readable?: (fd: number) => number;
}

const ADDON_FILE = 'native/build/Release/dits_chunker.node';
// From src/chunking (tests, tsx) and from dist/src/chunking (compiled).
const CANDIDATES = ['../../', '../../../'].map((up) => new URL(up + ADDON_FILE, import.meta.url));

let cached: { scan: ScanFn | null; error?: string; addon?: Addon } | undefined;

export function loadNativeScan(): ScanFn | null {
  if (cached === undefined) cached = tryLoad();
  return cached.scan;
}

/**
 * Grows the pipe on `fd` to `bytes` (Linux). Returns its new capacity, or null when that
 * is not possible (no addon, not a pipe, over /proc/sys/fs/pipe-max-size): callers go on
 * with the pipe as it is.
 */
export function setPipeSize(fd: number, bytes: number): number | null {
  loadNativeScan();
  const r = cached?.addon?.pipeSize?.(fd, bytes);
  return r === undefined || r < 0 ? null : r;
}

/** Where `view`'s bytes start within a 4 KiB page, or null without the addon. */
export function pageOffset(view: Uint8Array): number | null {
  loadNativeScan();
  const f = cached?.addon?.pageOffset;
  return f ? f(view) : null;
}

/**
 * Copies `src` into `dst` at `at`. Uses the addon's memmove for views of a
 * SharedArrayBuffer (V8's own copy of those is several times slower), Buffer.copy otherwise.
 */
export function copyBytes(src: Buffer, dst: Buffer, at: number): void {
  if (src.buffer instanceof SharedArrayBuffer || dst.buffer instanceof SharedArrayBuffer) {
    loadNativeScan();
    const f = cached?.addon?.copy;
    if (f) {
      f(src, dst, at);
      return;
    }
  }
  src.copy(dst, at);
}

/** Bytes a pipe on `fd` holds right now, or null when that cannot be asked (no addon, not Linux). */
export function pipeReadable(fd: number): number | null {
  loadNativeScan();
  const r = cached?.addon?.readable?.(fd);
  return r === undefined || r < 0 ? null : r;
}

/** Why the addon is not in use (for diagnostics), or undefined when it is. */
export function nativeLoadError(): string | undefined {
  loadNativeScan();
  return cached?.error;
}

function tryLoad(): { scan: ScanFn | null; error?: string; addon?: Addon } {
  const file = CANDIDATES.find((u) => existsSync(u));
  if (file === undefined) return { scan: null, error: `${ADDON_FILE} not built` };
  try {
    const require = createRequire(import.meta.url);
    const addon = require(fileURLToPath(file)) as Addon;
    addon.init(GEAR);
    if (!agreesWithJs(addon.scan)) return { scan: null, error: 'native chunker disagrees with the JavaScript chunker' };
    return { scan: addon.scan, addon };
  } catch (err) {
    return { scan: null, error: `cannot load ${ADDON_FILE}: ${(err as Error).message}` };
  }
}

function agreesWithJs(scan: ScanFn): boolean {
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
  for (const params of [
    { minSize: 64, avgSize: 256, maxSize: 1024 },
    { minSize: 2048, avgSize: 8192, maxSize: 32768 },
  ]) {
    const cfg = deriveScanConfig(params);
    const run = (fn: ScanFn): number[] => {
      const state = new Float64Array(3);
      const out = new Float64Array(7); // small on purpose: exercises stopping when out is full
      const cuts: number[] = [];
      for (const [a, b] of [[0, 12_345], [12_345, data.length]] as const) {
        let start: number = a;
        while (start < b) {
          const n = fn(data, start, b, state, cfg, out);
          for (let k = 0; k < n; k++) cuts.push(out[k]!);
          start = state[2]!;
        }
      }
      cuts.push(state[0]!, state[1]!);
      return cuts;
    };
    const want = run(scanJs);
    const got = run(scan);
    if (want.length !== got.length || want.some((v, k) => v !== got[k])) return false;
  }
  return true;
}
