import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { GEAR } from './gear.js';
import { deriveScanConfig } from './params.js';
import type { ScanFn } from './scan-js.js';

/**
 * Lazy loader of the native scanner (native/chunker.c, built by scripts/build-native.mjs
 * into native/build/Release/dits_chunker.node). Absent or broken addon: null, and the
 * JavaScript scanner is used. The addon is checked against the JavaScript scanner's known
 * answers once at load (a few hundred KiB), so a miscompiled addon can never change cut points.
 */
interface Addon {
  init(gear: Uint32Array): void;
  scan: ScanFn;
  pipeSize?: (fd: number, bytes: number) => number;
  pageOffset?: (view: Uint8Array) => number;
  copy?: (src: Uint8Array, dst: Uint8Array, at: number, stream?: boolean) => number;
  readable?: (fd: number) => number;
  preallocate?: (fd: number, offset: number, length: number) => number;
  b3?: (data: Uint8Array) => Buffer;
  b3Pieces?: NativeBlake3['pieces'];
  b3Hasher?: () => NativeHasher;
  b3Update?: (h: NativeHasher, data: Uint8Array) => void;
  b3Digest?: (h: NativeHasher) => Buffer;
  b3Impl?: (simd?: boolean) => string;
  readHash?: NativeBlake3['readHash'];
}

/** A hasher held by the addon (an external: no JavaScript properties). */
export type NativeHasher = { readonly __nativeHasher: unique symbol };

/**
 * The addon's BLAKE3 (native/b3.h). Not checked here: src/hashing/blake3.ts checks it
 * against @napi-rs/blake-hash before using it.
 */
export interface NativeBlake3 {
  hash(data: Uint8Array): Buffer;
  /**
   * Hashes pieces k = from .. from + count - 1, each buf[starts[k] - base, + lengths[k]),
   * into ids at 32 * k; with `file`, also feeds each piece to it, in order.
   */
  pieces(buf: Uint8Array, base: number, starts: Float64Array, lengths: Uint32Array, from: number, count: number, ids: Uint8Array, file?: NativeHasher): void;
  hasher(): NativeHasher;
  update(h: NativeHasher, data: Uint8Array): void;
  digest(h: NativeHasher): Buffer;
  /** Which implementation hashes; `simd: false` turns the own implementation's AVX2 routine off (tests). */
  implementation(simd?: boolean): string;
  /**
   * On a libuv pool thread: reads buf.length bytes of `fd` at `position` into buf (to the
   * end of the file at most), then, if all of them came, hashes pieces [starts[k], +
   * lengths[k]) of buf, k < count, into ids (32 bytes each). Resolves with the bytes read,
   * or -errno. buf and ids must be left alone until it settles. Absent in an addon built
   * before it had it.
   */
  readHash?(fd: number, buf: Uint8Array, position: number, starts: Float64Array, lengths: Uint32Array, count: number, ids: Uint8Array): Promise<number>;
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
 * Into shared memory, copies of 4 KiB or more use streaming stores: shared memory is read
 * next by other threads, which then fetch it from memory at full speed instead of out of
 * this core's cache (see js_copy in native/chunker.c).
 */
export function copyBytes(src: Buffer, dst: Buffer, at: number): void {
  const shared = dst.buffer instanceof SharedArrayBuffer;
  if (shared || src.buffer instanceof SharedArrayBuffer) {
    loadNativeScan();
    const f = cached?.addon?.copy;
    if (f) {
      f(src, dst, at, shared && src.length >= 4096);
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

/**
 * Reserves disk blocks for [offset, offset + length) of `fd` without changing its size
 * (Linux fallocate, KEEP_SIZE). True when done; false when it cannot be (no addon, not
 * supported, no space: the writes that follow then report any real problem themselves).
 */
export function preallocate(fd: number, offset: number, length: number): boolean {
  loadNativeScan();
  const f = cached?.addon?.preallocate;
  return f ? f(fd, offset, length) === 0 : false;
}

/** The addon's BLAKE3, or null without the addon (or an addon built before it had one). */
export function loadNativeBlake3(): NativeBlake3 | null {
  loadNativeScan();
  const a = cached?.addon;
  if (!a?.b3 || !a.b3Pieces || !a.b3Hasher || !a.b3Update || !a.b3Digest || !a.b3Impl) return null;
  const impl = a.b3Impl;
  return {
    hash: a.b3,
    pieces: a.b3Pieces,
    hasher: a.b3Hasher,
    update: a.b3Update,
    digest: a.b3Digest,
    implementation: (simd?: boolean) => (simd === undefined ? impl() : impl(simd)),
    readHash: a.readHash,
  };
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
