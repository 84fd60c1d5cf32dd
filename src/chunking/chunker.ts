import { DitsUserError } from '../errors.js';
import { loadNativeScan, nativeScanError } from './native-scan.js';
import { DEFAULT_CHUNKER_PARAMS, deriveScanConfig, type ChunkerParams } from './params.js';
import { scanJs, type ScanFn } from './scan-js.js';

export { DEFAULT_CHUNKER_PARAMS, validateChunkerParams, type ChunkerParams } from './params.js';

export type ChunkerImplementation = 'native' | 'js';

export interface ChunkerOptions {
  /** Default: native when the addon is built (and DITS_CHUNKER is not "js"), else js. */
  implementation?: ChunkerImplementation;
}

/** Most cut offsets one scanner call may return; bounds memory with tiny params on huge buffers. */
const MAX_CUTS_PER_CALL = 65_536;
/** Larger pushes are scanned in windows of this size, so every index is a small integer. */
const MAX_WINDOW = 1 << 30;

/** True when the native addon is built, loads, and agrees with the JavaScript scanner. */
export function nativeChunkerAvailable(): boolean {
  return loadNativeScan() !== null;
}

/** The implementation a Chunker uses when none is asked for. */
export function defaultChunkerImplementation(): ChunkerImplementation {
  // The one environment switch, asked for by the lead: tests compare both implementations.
  if (process.env.DITS_CHUNKER === 'js') return 'js';
  return nativeChunkerAvailable() ? 'native' : 'js';
}

/**
 * Streaming FastCDC chunker (the cut rule is in params.ts). Feed buffers of any size; cuts
 * are the same whatever the push sizes.
 *
 * Buffer ownership: a returned chunk that lies inside one pushed buffer is a subarray of
 * it (no copy); bytes that span pushes are copied into a fresh buffer. The caller must not
 * mutate a pushed buffer while it still holds chunks returned from it. The chunker itself
 * keeps no reference to a pushed buffer after push returns.
 */
export class Chunker {
  readonly implementation: ChunkerImplementation;
  readonly params: Readonly<ChunkerParams>;
  private readonly scan: ScanFn;
  private readonly cfg: Uint32Array;
  /** [bytes of the current chunk seen, hash, stop index] — see ScanFn. */
  private readonly state = new Float64Array(3);
  private out = new Float64Array(64);
  /** Bytes of the current chunk carried over from earlier pushes: pending[0, pendingLength). */
  private pending: Buffer | null = null;
  private pendingLength = 0;
  /** pushLengths: how many bytes of the current chunk earlier pushes held. */
  private carried = 0;

  constructor(params: ChunkerParams = DEFAULT_CHUNKER_PARAMS, options: ChunkerOptions = {}) {
    this.cfg = deriveScanConfig(params); // validates
    this.params = Object.freeze({ minSize: params.minSize, avgSize: params.avgSize, maxSize: params.maxSize });
    const impl = options.implementation ?? defaultChunkerImplementation();
    if (impl === 'native') {
      const scan = loadNativeScan();
      if (scan === null) {
        throw new DitsUserError('native-chunker-missing', `the native chunker is not available (${nativeScanError()})`, {
          hint: 'build it with `node scripts/build-native.mjs`, or use the JavaScript chunker',
        });
      }
      this.scan = scan;
    } else if (impl === 'js') {
      this.scan = scanJs;
    } else {
      throw new DitsUserError('bad-chunker-implementation', `unknown chunker implementation ${String(impl)}`);
    }
    this.implementation = impl;
  }

  /** Feeds the next bytes of the stream; returns the chunks completed by them, in order. */
  push(data: Buffer): Buffer[] {
    // Only Buffers reach the scanners (see native.ts: mixed array types slow the JS one).
    if (!Buffer.isBuffer(data)) data = Buffer.from((data as Uint8Array).buffer, (data as Uint8Array).byteOffset, (data as Uint8Array).length);
    const len = data.length;
    const chunks: Buffer[] = [];
    if (len === 0) return chunks;
    if (len > MAX_WINDOW) {
      // Same cuts as one push (cuts never depend on push sizes); chunks across a window edge are copied.
      for (let at = 0; at < len; at += MAX_WINDOW) for (const c of this.push(data.subarray(at, Math.min(len, at + MAX_WINDOW)))) chunks.push(c);
      return chunks;
    }
    let prev = 0;
    this.scanCuts(data, (end) => {
      chunks.push(this.pendingLength > 0 ? this.takePending(data, prev, end) : data.subarray(prev, end));
      prev = end;
    });
    if (prev < len) this.appendPending(data, prev, len);
    return chunks;
  }

  /** Scans `data` (at most MAX_WINDOW bytes) from the carried state; `cut(end)` for each cut, in order. */
  private scanCuts(data: Buffer, cut: (end: number) => void): void {
    const len = data.length;
    const state = this.state;
    const wanted = Math.min(MAX_CUTS_PER_CALL, Math.floor((state[0]! + len) / this.params.minSize) + 1);
    if (this.out.length < wanted) this.out = new Float64Array(Math.min(MAX_CUTS_PER_CALL, Math.max(wanted, this.out.length * 2)));
    const out = this.out;
    let start = 0;
    while (start < len) {
      const n = this.scan(data, start, len, state, this.cfg, out);
      for (let k = 0; k < n; k++) cut(out[k]!);
      start = state[2]!;
    }
  }

  /**
   * push() for a caller that keeps the bytes itself: appends to `lengths` the length of each
   * chunk `data` completes (the first may include bytes of earlier pushes), copying and
   * allocating nothing. A stream is fed with push() or with pushLengths(), not both; it
   * ends with finishLength().
   */
  pushLengths(data: Buffer, lengths: number[]): void {
    if (!Buffer.isBuffer(data)) data = Buffer.from((data as Uint8Array).buffer, (data as Uint8Array).byteOffset, (data as Uint8Array).length);
    const len = data.length;
    if (len === 0) return;
    if (len > MAX_WINDOW) {
      for (let at = 0; at < len; at += MAX_WINDOW) this.pushLengths(data.subarray(at, Math.min(len, at + MAX_WINDOW)), lengths);
      return;
    }
    let prev = 0;
    this.scanCuts(data, (end) => {
      lengths.push(end - prev + this.carried);
      this.carried = 0;
      prev = end;
    });
    this.carried += len - prev;
  }

  /** End of a pushLengths stream: the last chunk's length (0 if none). The chunker can then start a new stream. */
  finishLength(): number {
    const n = this.carried;
    this.carried = 0;
    this.state[0] = 0;
    this.state[1] = 0;
    return n;
  }

  /**
   * Forces a boundary at the current stream position (media-aware cutting): returns the
   * pending bytes as a chunk, or null if none are pending. Cutting then restarts as at the
   * start of a stream.
   */
  cut(): Buffer | null {
    this.state[0] = 0;
    this.state[1] = 0;
    if (this.pendingLength === 0) return null;
    return this.takePending(null, 0, 0);
  }

  /** End of stream: the remaining bytes as the last chunk, or null. The chunker can then start a new stream. */
  finish(): Buffer | null {
    return this.cut();
  }

  /** The pending bytes followed by data[from, to), as one chunk; clears pending. */
  private takePending(data: Buffer | null, from: number, to: number): Buffer {
    if (data !== null && to > from) this.appendPending(data, from, to);
    const buf = this.pending!;
    const length = this.pendingLength;
    this.pending = null;
    this.pendingLength = 0;
    // Hand the buffer over when it is mostly used; copy out small chunks so a returned
    // chunk never pins more than twice its size.
    return length * 2 >= buf.length ? buf.subarray(0, length) : Buffer.from(buf.subarray(0, length));
  }

  private appendPending(data: Buffer, from: number, to: number): void {
    const needed = this.pendingLength + (to - from);
    let buf = this.pending;
    if (buf === null || buf.length < needed) {
      // Grow by doubling, capped at maxSize (a chunk never exceeds it).
      const capacity = Math.min(this.params.maxSize, Math.max(needed, buf === null ? 2 * this.params.avgSize : buf.length * 2));
      const grown = Buffer.allocUnsafe(capacity);
      if (buf !== null) buf.copy(grown, 0, 0, this.pendingLength);
      this.pending = buf = grown;
    }
    data.copy(buf, this.pendingLength, from, to);
    this.pendingLength = needed;
  }
}

/** Chunks a whole buffer (every chunk a subarray of `data`). */
export function chunkBuffer(data: Buffer, params: ChunkerParams = DEFAULT_CHUNKER_PARAMS, options: ChunkerOptions = {}): Buffer[] {
  const chunker = new Chunker(params, options);
  const chunks = chunker.push(data);
  const last = chunker.finish();
  if (last !== null) chunks.push(last);
  return chunks;
}
