/**
 * Where a stream is cut into the pieces that are stored, and each piece's id: FastCDC's
 * content-defined boundaries (the "spine", src/chunking) split further at a media cut
 * plan's offsets, then every piece hashed (BLAKE3). Pure computation over the bytes it is
 * fed, with no store and no I/O, so the same code runs on the main thread or in a worker
 * (piece-cutter-worker.ts) and gives the same pieces either way.
 *
 * Media-aware cutting never changes the spine: a cut plan only splits spine chunks
 * further. So a version whose container does not parse (a damaged file, or bytes inserted
 * by hand) still shares every spine chunk with a parsed version except the few that held
 * a plan offset, while versions that both parse share the pieces around the structure
 * (metadata kept apart from the payload, each interleaved track's bytes in pieces of their own).
 * - `forced` offsets (box edges, track switches) always split;
 * - `preferred` offsets (keyframes) split only within KEYFRAME_SNAP bytes of a spine
 *   boundary, so the piece boundary lands exactly on the keyframe at almost no cost;
 *   pieces that start on a keyframe are flagged (FLAG_KEYFRAME).
 *
 * Output is a CutBatch of typed arrays (no object per piece; transferable between threads).
 * The cutter keeps no reference to a pushed buffer after push returns.
 */
import { Chunker, type ChunkerParams } from '../chunking/chunker.js';
import { hashBytes, nativeBlake3, type StreamHasher } from '../hashing/blake3.js';
import { copyBytes } from '../native-addon.js';
import { FLAG_KEYFRAME } from '../manifest/manifest.js';

/** How close (bytes) a keyframe must be to a spine boundary to split there. */
export const KEYFRAME_SNAP = 8 * 1024;

export interface CutPlan {
  /** Sorted absolute offsets where a piece must start. */
  forced: ArrayLike<number>;
  /** Sorted absolute offsets where a piece should start (keyframes: flagged in the manifest). */
  preferred: ArrayLike<number>;
}

/** Pieces completed by one push, in stream order. */
export interface CutBatch {
  count: number;
  /** Absolute stream offset of each piece. */
  starts: Float64Array;
  lengths: Uint32Array;
  flags: Uint8Array;
  /** 32 bytes of BLAKE3 per piece, back to back. */
  ids: Uint8Array;
  /**
   * Every byte before this offset belongs to a piece already returned (this batch or an
   * earlier one); bytes from here on are still pending in the cutter.
   */
  doneUpTo: number;
}

export class PieceCutter {
  private readonly chunker: Chunker;
  private readonly forced: ArrayLike<number>;
  private readonly preferred: ArrayLike<number>;
  private fi = 0;
  private pi = 0;
  private flagIndex = 0;
  /** offset of the next spine chunk */
  private spineStart = 0;
  private readonly splits: number[] = [];
  // the batch being filled
  private n = 0;
  private starts = new Float64Array(256);
  private lengths = new Uint32Array(256);
  private flags = new Uint8Array(256);
  private ids = new Uint8Array(256 * 32);

  /**
   * `hash: false` leaves the ids out (all zero): the pieces are hashed elsewhere, from the
   * same bytes (hashPieces).
   */
  constructor(
    params: ChunkerParams,
    plan?: CutPlan,
    private readonly hash = true,
  ) {
    this.chunker = new Chunker(params);
    this.forced = plan?.forced ?? [];
    this.preferred = plan?.preferred ?? [];
  }

  private readonly spineLengths: number[] = [];

  /** The next bytes of the stream; returns the pieces they complete. */
  push(data: Buffer): CutBatch {
    if (this.hash) {
      for (const c of this.chunker.push(data)) this.spine(c.length, c);
    } else {
      // only where the pieces are: the chunker copies nothing
      const lengths = this.spineLengths;
      lengths.length = 0;
      this.chunker.pushLengths(data, lengths);
      for (const n of lengths) this.spine(n, null);
    }
    return this.take();
  }

  /** End of stream: the last pieces. The cutter is spent afterwards. */
  finish(): CutBatch {
    if (this.hash) {
      const last = this.chunker.finish();
      if (last) this.spine(last.length, last);
    } else {
      const n = this.chunker.finishLength();
      if (n) this.spine(n, null);
    }
    return this.take();
  }

  private take(): CutBatch {
    const n = this.n;
    const batch: CutBatch = {
      count: n,
      starts: this.starts.slice(0, n),
      lengths: this.lengths.slice(0, n),
      flags: this.flags.slice(0, n),
      ids: this.ids.slice(0, n * 32),
      doneUpTo: this.spineStart,
    };
    this.n = 0;
    return batch;
  }

  /**
   * A spine chunk [spineStart, spineStart + length): split at plan offsets inside it.
   * `chunk` holds its bytes when the cutter hashes, else null.
   */
  private spine(length: number, chunk: Buffer | null): void {
    if (length === 0) return;
    const s = this.spineStart;
    const e = s + length;
    this.spineStart = e;
    const { forced, preferred, splits } = this;
    splits.length = 0;
    while (this.fi < forced.length && forced[this.fi]! <= s) this.fi++;
    for (let k = this.fi; k < forced.length && forced[k]! < e; k++) splits.push(forced[k]!);
    while (this.pi < preferred.length && preferred[this.pi]! <= s) this.pi++;
    for (let k = this.pi; k < preferred.length && preferred[k]! < e; k++) {
      const at = preferred[k]!;
      if (at - s <= KEYFRAME_SNAP || e - at <= KEYFRAME_SNAP) splits.push(at);
    }
    if (splits.length === 0) return this.piece(s, length, chunk);
    splits.sort((a, b) => a - b);
    let from = s;
    for (const at of splits) {
      if (at <= from) continue;
      this.piece(from, at - from, chunk && chunk.subarray(from - s, at - s));
      from = at;
    }
    this.piece(from, e - from, chunk && chunk.subarray(from - s));
  }

  /** A piece [start, start + length); `bytes` are its bytes when the cutter hashes. */
  private piece(start: number, length: number, bytes: Buffer | null): void {
    const { preferred } = this;
    while (this.flagIndex < preferred.length && preferred[this.flagIndex]! < start) this.flagIndex++;
    const flag = this.flagIndex < preferred.length && preferred[this.flagIndex] === start ? FLAG_KEYFRAME : 0;
    if (this.n === this.starts.length) this.grow();
    const k = this.n++;
    this.starts[k] = start;
    this.lengths[k] = length;
    this.flags[k] = flag;
    if (bytes) this.ids.set(hashBytes(bytes), k * 32);
  }

  private grow(): void {
    const cap = this.starts.length * 2;
    const starts = new Float64Array(cap);
    starts.set(this.starts);
    this.starts = starts;
    const lengths = new Uint32Array(cap);
    lengths.set(this.lengths);
    this.lengths = lengths;
    const flags = new Uint8Array(cap);
    flags.set(this.flags);
    this.flags = flags;
    const ids = new Uint8Array(cap * 32);
    ids.set(this.ids);
    this.ids = ids;
  }
}

/** Bytes of the stream from offset `start` on (one of the buffers it was read into). */
export interface Region {
  start: number;
  bytes: Buffer;
}

/**
 * Fills in `batch.ids` from the bytes, held in `regions` (in stream order, covering every
 * piece of the batch; a piece may span two). With `file`, also feeds it every piece, in
 * order, as each is hashed (so each piece is read from memory once, while it is in the
 * core's cache, for both hashes). With the addon, a run of pieces inside one region is
 * hashed in one call.
 */
export function hashPieces(batch: CutBatch, regions: readonly Region[], file?: StreamHasher): void {
  const n = nativeBlake3();
  const { starts, lengths, ids } = batch;
  let r = 0;
  let k = 0;
  while (k < batch.count) {
    const start = starts[k]!;
    while (regions[r]!.start + regions[r]!.bytes.length <= start) r++;
    const reg = regions[r]!;
    const end = reg.start + reg.bytes.length;
    if (start + lengths[k]! > end) {
      const bytes = gather(regions, r, start, lengths[k]!);
      file?.update(bytes);
      ids.set(hashBytes(bytes), k * 32);
      k++;
      continue;
    }
    let j = k + 1;
    while (j < batch.count && starts[j]! + lengths[j]! <= end) j++;
    if (n && (file === undefined || file.native)) {
      n.pieces(reg.bytes, reg.start, starts, lengths, k, j - k, ids, file?.native ?? undefined);
    } else {
      for (let i = k; i < j; i++) {
        const bytes = reg.bytes.subarray(starts[i]! - reg.start, starts[i]! - reg.start + lengths[i]!);
        file?.update(bytes);
        ids.set(hashBytes(bytes), i * 32);
      }
    }
    k = j;
  }
}

/** The bytes [start, start + length), which begin in regions[r] and go on into the next ones. */
function gather(regions: readonly Region[], r: number, start: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  for (let done = 0, j = r; done < length; j++) {
    const p = regions[j]!;
    const at = start + done - p.start;
    const k = Math.min(length - done, p.bytes.length - at);
    copyBytes(p.bytes.subarray(at, at + k), out, done);
    done += k;
  }
  return out;
}
