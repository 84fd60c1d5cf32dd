/**
 * zstd for chunks, only when it saves space. Camera codecs (H.264, ProRes) are already
 * compressed, so trying zstd on every chunk would cost throughput for nothing: a cheap
 * entropy estimate on a sample of the chunk decides whether to try at all, and a try is
 * kept only if it saves at least MIN_SAVING of the chunk.
 */
import { createRequire } from 'node:module';
import { requireNative } from '../require-native.js';

const require = createRequire(import.meta.url);
interface Zstd {
  compress(buf: Buffer, level?: number): Promise<Buffer>;
  decompress(buf: Buffer): Promise<Buffer>;
}
let zstdModule: Zstd | undefined;
/** Loaded on first use: most adds of camera media never call zstd, and loading it costs a few ms. */
function zstd(): Zstd {
  return (zstdModule ??= requireNative<Zstd>(require, '@mongodb-js/zstd'));
}

/** At most this many bytes of a chunk are sampled for the entropy estimate. */
const MAX_SAMPLES = 1024;
/** Bits per byte above which a chunk is taken as incompressible without trying. */
const ENTROPY_LIMIT = 7.2;
const MIN_SAVING = 1 / 32;
const LEVEL = 3;

const counts = new Uint32Array(256);

/** Shannon entropy in bits per byte of an evenly spaced sample of the bytes. */
export function sampledEntropy(data: Uint8Array): number {
  counts.fill(0);
  let n = 0;
  const stride = Math.max(1, Math.floor(data.length / MAX_SAMPLES));
  for (let i = 0; i < data.length; i += stride) {
    counts[data[i]!]!++;
    n++;
  }
  if (n === 0) return 0;
  let h = 0;
  for (let i = 0; i < 256; i++) {
    const c = counts[i]!;
    if (c) {
      const p = c / n;
      h -= p * Math.log2(p);
    }
  }
  // A small sample under-estimates entropy: with n samples at most log2(n) bits show.
  return n < 256 ? h * (8 / Math.log2(Math.max(n, 2))) : h;
}

/** Whether zstd is worth trying on `data` at all (cheap, synchronous). */
export function worthTrying(data: Uint8Array): boolean {
  return data.length >= 512 && sampledEntropy(data) <= ENTROPY_LIMIT;
}

export function decompress(data: Buffer): Promise<Buffer> {
  return zstd().decompress(data);
}

/**
 * Per-ingest policy: after a run of chunks that did not compress (camera media), only
 * every SKIP+1-th chunk is tried, so incompressible files cost almost nothing extra while a
 * compressible stretch is noticed within a few chunks.
 *
 * In two steps so that the common case stays synchronous: `shouldTry(data)` decides (and
 * counts a chunk it rules out), `tryCompress(data)` runs zstd on one it did not.
 */
export class CompressionPolicy {
  private streak = 0;
  private skip = 0;
  static readonly STREAK = 8;
  static readonly SKIP = 15;

  shouldTry(data: Buffer): boolean {
    if (this.skip > 0) {
      this.skip--;
      return false;
    }
    if (worthTrying(data)) return true;
    this.missed();
    return false;
  }

  /** zstd on a chunk shouldTry accepted: the compressed form if it saves enough, else null. */
  async tryCompress(data: Buffer): Promise<Buffer | null> {
    const z = await zstd().compress(data, LEVEL);
    if (z.length <= data.length * (1 - MIN_SAVING)) {
      this.streak = 0;
      return z;
    }
    this.missed();
    return null;
  }

  private missed(): void {
    if (++this.streak >= CompressionPolicy.STREAK) this.skip = CompressionPolicy.SKIP;
  }
}
