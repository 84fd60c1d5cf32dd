/**
 * Chunk ids and file ids: BLAKE3-256 of the plain bytes, as 64 lowercase hex digits; ids
 * never depend on compression, packing or where the bytes are stored.
 *
 * Two implementations give the same ids: the Dits addon's (native/b3.h: the BLAKE3 C
 * library with its assembly where Debian's sources were there at build time, about 3.5
 * GB/s on one core here from cache, else Dits' own C), and @napi-rs/blake-hash (about 2
 * GB/s). The addon's is used when it is built and gives the known answer on inputs chosen
 * to cross every shape of the tree (checked once per thread, blake3KnownAnswer);
 * DITS_BLAKE3=napi forces @napi-rs/blake-hash. The addon also hashes a whole batch of
 * pieces in one call (hashPieces in src/store/piece-cutter.ts), which ingest uses.
 */
import { createRequire } from 'node:module';
import { requireNative } from '../require-native.js';
import { loadNativeBlake3, type NativeBlake3, type NativeHasher } from '../native-addon.js';

const require = createRequire(import.meta.url);

interface Napi {
  blake3(input: Uint8Array): Buffer;
  Blake3Hasher: new () => { update(input: Uint8Array): unknown; digestBuffer(): Buffer };
}
let napiModule: Napi | undefined;
/** @napi-rs/blake-hash, loaded only where it hashes (without the addon) or in tests. */
function napi(): Napi {
  return (napiModule ??= requireNative<Napi>(require, '@napi-rs/blake-hash'));
}

export const ID_HEX_LENGTH = 64;
const ID_PATTERN = /^[0-9a-f]{64}$/;

let nativeChecked: NativeBlake3 | null | undefined;

/** The addon's BLAKE3 when it is in use (built, giving the known answers, not turned off), else null. */
export function nativeBlake3(): NativeBlake3 | null {
  if (nativeChecked === undefined) {
    const n = process.env.DITS_BLAKE3 === 'napi' ? null : loadNativeBlake3();
    nativeChecked = n && knownAnswer(n) === BLAKE3_KNOWN_ANSWER ? n : null;
  }
  return nativeChecked;
}

/** What blake3KnownAnswer gives with a correct BLAKE3 (@napi-rs/blake-hash gives it: blake3.test.ts). */
export const BLAKE3_KNOWN_ANSWER = '799c82e4b1e981602c3fc94883c54112916150367bb690f14d5b1d008180d6bd';

/** The operations the known-answer check runs, so that @napi-rs/blake-hash can run it too. */
export interface Blake3Ops {
  hash(data: Uint8Array): Buffer;
  /** hashes each piece into ids and feeds it to the file hash; returns the file hash */
  pieces(data: Uint8Array, starts: Float64Array, lengths: Uint32Array, ids: Uint8Array): Buffer;
  /** feeds the parts to one hasher in order; returns its digest */
  stream(parts: Uint8Array[]): Buffer;
}

/**
 * Hashes inputs chosen to cross every shape of BLAKE3's tree (empty, within one block,
 * chunk edges, parents of partial subtrees, over 1 MiB, fed in uneven parts, as pieces)
 * and returns the hash of all their digests, hex.
 */
export function blake3KnownAnswer(ops: Blake3Ops): string {
  const seed = Buffer.alloc(140_000);
  let x = 88172645;
  for (let i = 0; i < seed.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    seed[i] = x & 0xff;
  }
  const big = Buffer.alloc(1_100_000);
  for (let at = 0; at < big.length; at += seed.length) seed.copy(big, at);
  const digests: Buffer[] = [];
  for (const size of [0, 1, 64, 1023, 1024, 1025, 2048, 3073, 8193, 70_001]) digests.push(ops.hash(seed.subarray(3, 3 + size)));
  digests.push(ops.hash(big));
  const parts: Uint8Array[] = [];
  for (let at = 0, step = 1; at < big.length; at += step, step = step * 3 + 7) parts.push(big.subarray(at, at + step));
  digests.push(ops.stream(parts));
  const ids = new Uint8Array(3 * 32);
  digests.push(ops.pieces(seed, new Float64Array([100, 1100, 5000]), new Uint32Array([1000, 3900, 65_536]), ids), Buffer.from(ids));
  return ops.hash(Buffer.concat(digests)).toString('hex');
}

function knownAnswer(n: NativeBlake3): string | null {
  try {
    return blake3KnownAnswer({
      hash: (d) => n.hash(d),
      pieces: (d, starts, lengths, ids) => {
        const file = n.hasher();
        n.pieces(d, 0, starts, lengths, 0, starts.length, ids, file);
        return n.digest(file);
      },
      stream: (parts) => {
        const h = n.hasher();
        for (const p of parts) n.update(h, p);
        return n.digest(h);
      },
    });
  } catch {
    return null;
  }
}

/** blake3KnownAnswer's operations with @napi-rs/blake-hash (tests). */
export function napiBlake3Ops(): Blake3Ops {
  const m = napi();
  return {
    hash: (d) => m.blake3(d),
    pieces: (d, starts, lengths, ids) => {
      const file = new m.Blake3Hasher();
      for (let k = 0; k < starts.length; k++) {
        const piece = d.subarray(starts[k]!, starts[k]! + lengths[k]!);
        file.update(piece);
        ids.set(m.blake3(piece), k * 32);
      }
      return file.digestBuffer();
    },
    stream: (parts) => {
      const h = new m.Blake3Hasher();
      for (const p of parts) h.update(p);
      return h.digestBuffer();
    },
  };
}

/** BLAKE3-256 of `data` as raw 32 bytes. */
export function hashBytes(data: Uint8Array): Buffer {
  const n = nativeBlake3();
  return n ? n.hash(data) : napi().blake3(data);
}

/** BLAKE3-256 of `data` as a hex id. */
export function hashHex(data: Uint8Array): string {
  return hashBytes(data).toString('hex');
}

export function isId(value: string): boolean {
  return ID_PATTERN.test(value);
}

/** Incremental hasher for whole-file ids; feed it in order, read once. */
export class StreamHasher {
  /** The addon's hasher, when the addon hashes (hashPieces feeds it directly). */
  readonly native: NativeHasher | null;
  private readonly napiHasher: InstanceType<Napi['Blake3Hasher']> | null;

  /**
   * `native`: a hasher of the addon to feed instead of a plain one (tree-cv.ts gives one
   * that also keeps the 4 MiB leaves); only when nativeBlake3() is in use.
   */
  constructor(native?: NativeHasher) {
    const n = nativeBlake3();
    this.native = n ? (native ?? n.hasher()) : null;
    this.napiHasher = n ? null : new (napi().Blake3Hasher)();
  }

  update(data: Uint8Array): void {
    if (this.native) nativeBlake3()!.update(this.native, data);
    else this.napiHasher!.update(data);
  }

  digestHex(): string {
    return (this.native ? nativeBlake3()!.digest(this.native) : this.napiHasher!.digestBuffer()).toString('hex');
  }
}
