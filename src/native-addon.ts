/**
 * The native addon (native/*.c, built by scripts/build-native.mjs into
 * native/build/Release/dits_chunker.node), loaded once on first use: the FastCDC scanner
 * (checked and set up by chunking/native-scan.ts), BLAKE3 (checked by hashing/blake3.ts),
 * and small system calls Node lacks (pipe sizes, fallocate, page offsets, copies into
 * shared memory). Absent or broken addon: every helper here has a fallback or says it
 * cannot, so Dits runs without it (slower).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { ScanFn } from './chunking/scan-js.js';

export interface Addon {
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
  b3TreeHasher?: () => NativeHasher;
  b3Leaves?: (h: NativeHasher) => Buffer;
  b3LeafCv?: (data: Uint8Array, leafIndex: number) => Buffer;
  b3RootOf?: (leaves: Uint8Array) => Buffer;
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
// From src/ (tests) and from dist/src/ (compiled).
const CANDIDATES = ['../', '../../'].map((up) => new URL(up + ADDON_FILE, import.meta.url));

let cached: { addon?: Addon; error?: string } | undefined;

/** The addon, or undefined when it is not built or does not load (nativeLoadError says why). */
export function loadAddon(): Addon | undefined {
  cached ??= tryLoad();
  return cached.addon;
}

/** Why the addon is not in use (for diagnostics), or undefined when it is. */
export function nativeLoadError(): string | undefined {
  loadAddon();
  return cached?.error;
}

function tryLoad(): { addon?: Addon; error?: string } {
  const file = CANDIDATES.find((u) => existsSync(u));
  if (file === undefined) return { error: `${ADDON_FILE} not built` };
  try {
    const require = createRequire(import.meta.url);
    return { addon: require(fileURLToPath(file)) as Addon };
  } catch (err) {
    return { error: `cannot load ${ADDON_FILE}: ${(err as Error).message}` };
  }
}

/**
 * Grows the pipe on `fd` to `bytes` (Linux). Returns its new capacity, or null when that
 * is not possible (no addon, not a pipe, over /proc/sys/fs/pipe-max-size): callers go on
 * with the pipe as it is.
 */
export function setPipeSize(fd: number, bytes: number): number | null {
  const r = loadAddon()?.pipeSize?.(fd, bytes);
  return r === undefined || r < 0 ? null : r;
}

/** Where `view`'s bytes start within a 4 KiB page, or null without the addon. */
export function pageOffset(view: Uint8Array): number | null {
  const f = loadAddon()?.pageOffset;
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
      const f = loadAddon()?.copy;
    if (f) {
      f(src, dst, at, shared && src.length >= 4096);
      return;
    }
  }
  src.copy(dst, at);
}

/** Bytes a pipe on `fd` holds right now, or null when that cannot be asked (no addon, not Linux). */
export function pipeReadable(fd: number): number | null {
  const r = loadAddon()?.readable?.(fd);
  return r === undefined || r < 0 ? null : r;
}

/**
 * Reserves disk blocks for [offset, offset + length) of `fd` without changing its size
 * (Linux fallocate, KEEP_SIZE). True when done; false when it cannot be (no addon, not
 * supported, no space: the writes that follow then report any real problem themselves).
 */
export function preallocate(fd: number, offset: number, length: number): boolean {
  const f = loadAddon()?.preallocate;
  return f ? f(fd, offset, length) === 0 : false;
}

/**
 * The addon's BLAKE3 tree over 4 MiB leaves (native/b3-tree.c), or null without it. Not
 * checked here: src/hashing/tree-cv.ts checks it against the whole-input hash.
 */
export interface NativeTreeCv {
  /** A file hasher (fed and read as NativeBlake3's) that keeps every 4 MiB leaf's chaining value. */
  hasher(): NativeHasher;
  /** The leaves' chaining values of what a tree hasher was fed, 32 bytes each; empty up to 4 MiB. */
  leaves(h: NativeHasher): Buffer;
  /** The chaining value of leaf `leafIndex` (1 byte to 4 MiB) of an input over 4 MiB. */
  leafCv(data: Uint8Array, leafIndex: number): Buffer;
  /** The hash of an input over 4 MiB from its leaves' chaining values (2 or more). */
  rootOf(leaves: Uint8Array): Buffer;
}

export function loadNativeTreeCv(): NativeTreeCv | null {
  const a = loadAddon();
  if (!a?.b3TreeHasher || !a.b3Leaves || !a.b3LeafCv || !a.b3RootOf) return null;
  return { hasher: a.b3TreeHasher, leaves: a.b3Leaves, leafCv: a.b3LeafCv, rootOf: a.b3RootOf };
}

/** The addon's BLAKE3, or null without the addon (or an addon built before it had one). */
export function loadNativeBlake3(): NativeBlake3 | null {
  const a = loadAddon();
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
