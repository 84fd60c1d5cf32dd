/**
 * The manifest of an edited file version from the old version's manifest, cutting again
 * only around the changed bytes (commit-mount's path for a big file written in place).
 *
 * Why this gives exactly the chunks a full `git dits add` of the new bytes gives: FastCDC's
 * hash restarts at every chunk start (src/chunking/params.ts), so the cuts from any
 * boundary on depend only on the bytes from that boundary on. Overlay writes are
 * positional (no insertion shifts the bytes after them), so an offset means the same byte
 * in the old and the new version. Hence:
 * - old chunks that end before the first changed byte are the new version's chunks too;
 * - cutting restarts at the old boundary at or before the first changed byte;
 * - once a new cut lands past the last changed byte seen so far on an offset that is also
 *   an old boundary, the cuts from there on are the old ones again until the next changed
 *   range ("resynchronised"): the old chunks are taken as they are.
 *
 * Media-aware cutting (a cut plan from the container, src/store/piece-cutter.ts) only
 * splits the FastCDC chunks (the "spine") further at the plan's offsets; it never moves a
 * spine cut. So the argument holds for the spine, and with a plan (`plan`, which the caller
 * checked is the same for both versions: an edit that leaves the container's structure
 * where it was, as a patched frame or a same-length metadata edit does) the pieces are the
 * spine chunks split by the same offsets in both. Only restarts and resynchronisations need
 * care: a piece boundary at a plan offset may be a split inside a spine chunk, so they
 * happen only at boundaries that are not plan offsets (those are spine cuts for certain).
 * When the plans differ the caller ingests the whole file.
 *
 * The file id (BLAKE3 of the whole file) cannot come from the chunk ids: BLAKE3 is a tree
 * over 1 KiB blocks whose subtrees are aligned on powers of two from the start of the file,
 * and a chunk id is the finalised root hash of bytes at content-defined offsets, so no
 * combination of chunk ids gives the root. The caller finds it from BLAKE3's own aligned
 * subtrees instead where it can (edited-file-id.ts), else hashes the whole new version (the
 * reused chunks from the store, the new ones from the overlay), and says which.
 */
import type { ChunkerParams } from '../chunking/chunker.js';
import type { Manifest, ManifestBuilder } from '../manifest/manifest.js';
import { PieceCutter, type CutPlan } from '../store/piece-cutter.js';

/** A half-open byte range [start, end). */
export interface ByteRange {
  start: number;
  end: number;
}

export interface PartialRechunkInput {
  old: Manifest;
  newSize: number;
  /** Ranges of the new version whose bytes may differ from the old one (sorted or not, may overlap). */
  changed: readonly ByteRange[];
  params: ChunkerParams;
  /** Bytes [offset, offset + length) of the NEW version (all of them: callers stay inside newSize). */
  read(offset: number, length: number): Promise<Buffer>;
  /** Each chunk cut again, in order (its bytes are the caller's to store). */
  onNewChunk(idRaw: Buffer, data: Buffer): Promise<void> | void;
  /** Bytes asked of read() at once. */
  window?: number;
  /** The media cut plan of both versions (the same offsets in each), as ingest applies it. */
  plan?: CutPlan;
}

export interface PartialRechunkResult {
  /** Bytes read from the new version to cut again. */
  bytesRead: number;
  chunksReused: number;
  chunksCut: number;
}

/**
 * Merges the changed ranges, adding the tail that a size change touches. A file that grew
 * also counts its old last byte as changed: the old last chunk ended with the stream, not
 * at a content-defined cut, so it is cut again.
 */
export function normaliseChanged(changed: readonly ByteRange[], oldSize: number, newSize: number): ByteRange[] {
  const all = changed.filter((r) => r.end > r.start).map((r) => ({ start: r.start, end: r.end }));
  if (newSize < oldSize) all.push({ start: newSize, end: oldSize });
  if (newSize > oldSize) all.push({ start: Math.max(0, oldSize - 1), end: newSize });
  all.sort((a, b) => a.start - b.start);
  const out: ByteRange[] = [];
  for (const r of all) {
    const last = out[out.length - 1];
    if (last && r.start <= last.end) last.end = Math.max(last.end, r.end);
    else out.push(r);
  }
  return out;
}

/**
 * Appends the new version's chunks to `builder` (old chunks where they are unchanged, chunks
 * cut again elsewhere); see the file comment for why these are the chunks a full ingest cuts.
 */
export async function rechunkPartially(input: PartialRechunkInput, builder: ManifestBuilder): Promise<PartialRechunkResult> {
  const { old, newSize, params, plan } = input;
  const n = old.chunkCount;
  const starts = new Float64Array(n + 1);
  for (let i = 0; i < n; i++) starts[i + 1] = starts[i]! + old.lengthAt(i);
  const oldSize = starts[n]!;
  const dirty = normaliseChanged(input.changed, oldSize, newSize);
  const window = input.window ?? 4 << 20;
  /** Index of the old chunk starting at `pos`, or -1 if `pos` is not an old boundary. */
  const boundaryAt = (pos: number): number => {
    const i = firstAtOrAfter(starts, n, pos);
    return i < n && starts[i] === pos ? i : -1;
  };
  /** A piece boundary here is a spine cut for certain: it is not an offset the plan splits at. */
  const spineCut = (pos: number): boolean => !plan || (!has(plan.forced, pos) && !has(plan.preferred, pos));
  const res: PartialRechunkResult = { bytesRead: 0, chunksReused: 0, chunksCut: 0 };
  let pos = 0; // a spine cut of both versions: everything before it is in the builder
  let oi = 0; // the old chunk starting at pos (when pos < oldSize)
  let ri = 0; // the first changed range not yet passed
  while (pos < newSize) {
    while (ri < dirty.length && dirty[ri]!.end <= pos) ri++;
    const nextChange = ri < dirty.length ? dirty[ri]!.start : Infinity;
    // old chunks wholly before the next change (and within the new size) are kept, up to
    // the last spine cut among their ends (cutting must restart on one)
    let k = oi;
    while (k < n && starts[k + 1]! <= nextChange && starts[k + 1]! <= newSize) k++;
    while (k > oi && !spineCut(starts[k]!)) k--;
    for (; oi < k; oi++) {
      builder.add(old.idRawAt(oi), old.lengthAt(oi), old.flagsAt(oi));
      res.chunksReused++;
    }
    pos = starts[oi]!;
    if (pos >= newSize) break;
    // cut again from pos until the cuts line up with the old ones past the change
    const cutter = new PieceCutter(params, plan && shiftPlan(plan, pos));
    let dirtyEnd = pos;
    let at = pos; // next byte to read
    let cutPos = pos;
    let held: Buffer = Buffer.alloc(0); // bytes [cutPos, at): read, not yet in a piece
    let synced = false;
    const emit = async (batch: ReturnType<PieceCutter['push']>): Promise<boolean> => {
      for (let i = 0; i < batch.count; i++) {
        const len = batch.lengths[i]!;
        const id = Buffer.from(batch.ids.subarray(i * 32, i * 32 + 32));
        await input.onNewChunk(id, held.subarray(0, len));
        held = held.subarray(len);
        builder.add(id, len, batch.flags[i]!);
        res.chunksCut++;
        cutPos += len;
        while (ri < dirty.length && dirty[ri]!.start < cutPos) dirtyEnd = Math.max(dirtyEnd, dirty[ri++]!.end);
        if (cutPos >= dirtyEnd && cutPos < newSize && spineCut(cutPos)) {
          const j = boundaryAt(cutPos);
          if (j >= 0) {
            oi = j;
            return true;
          }
        }
      }
      return false;
    };
    while (!synced && at < newSize) {
      const len = Math.min(window, newSize - at);
      const buf = await input.read(at, len);
      if (buf.length !== len) throw new Error(`short read of the new version at ${at}: ${buf.length} of ${len} bytes`);
      res.bytesRead += len;
      at += len;
      held = held.length ? Buffer.concat([held, buf]) : buf;
      synced = await emit(cutter.push(buf));
    }
    if (!synced) {
      await emit(cutter.finish());
      pos = newSize;
      break;
    }
    pos = cutPos;
  }
  return res;
}

/** Index of the first of `a[0..n)` (sorted) that is >= `x`. */
function firstAtOrAfter(a: ArrayLike<number>, n: number, x: number): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function has(a: ArrayLike<number>, x: number): boolean {
  const i = firstAtOrAfter(a, a.length, x);
  return i < a.length && a[i] === x;
}

/** The plan as a cutter starting at `from` sees it (offsets relative to `from`, only those past it). */
function shiftPlan(plan: CutPlan, from: number): CutPlan {
  const shift = (a: ArrayLike<number>): Float64Array => {
    const i = firstAtOrAfter(a, a.length, from + 1);
    const out = new Float64Array(a.length - i);
    for (let k = i; k < a.length; k++) out[k - i] = a[k]! - from;
    return out;
  };
  return { forced: shift(plan.forced), preferred: shift(plan.preferred) };
}
