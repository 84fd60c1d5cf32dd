/**
 * Ingest: a byte stream in, chunks into the store, a manifest and a pointer out.
 * Used by the clean filter (bytes from Git's pipe) and by `git dits add` (bytes read from
 * the file directly). Memory stays bounded: chunks are at most maxSize and are stored as
 * they are cut; the manifest keeps 37 bytes a chunk.
 *
 * Media-aware cutting never changes the content-defined boundaries (the "spine" FastCDC
 * finds over the whole stream): a cut plan only splits spine chunks further. So a version
 * whose container does not parse (a damaged file, or bytes inserted by hand) still shares
 * every spine chunk with a parsed version except the few that held a plan offset, while
 * versions that both parse share the pieces around the structure (metadata kept apart
 * from the payload, each interleaved track's bytes in pieces of their own).
 * - `forced` offsets (box edges, track switches) always split;
 * - `preferred` offsets (keyframes) split only within SNAP bytes of a spine boundary, so
 *   the piece boundary lands exactly on the keyframe at almost no cost; pieces that start
 *   on a keyframe are flagged in the manifest.
 */
import { Chunker, type ChunkerParams } from '../chunking/chunker.js';
import { hashBytes, StreamHasher } from '../hashing/blake3.js';
import { FLAG_KEYFRAME, ManifestBuilder, type ManifestHeader } from '../manifest/manifest.js';
import { encodePointer, type Pointer } from '../manifest/pointer.js';
import type { ChunkStore } from './chunk-store.js';

/** How close (bytes) a keyframe must be to a spine boundary to split there. */
export const KEYFRAME_SNAP = 8 * 1024;

export interface CutPlan {
  /** Sorted absolute offsets where a piece must start. */
  forced: ArrayLike<number>;
  /** Sorted absolute offsets where a piece should start (keyframes: flagged in the manifest). */
  preferred: ArrayLike<number>;
}

export interface IngestOptions {
  params: ChunkerParams;
  cutPlan?: CutPlan;
  media?: Record<string, unknown> | null;
  mediaFallback?: string;
  /** Called with the bytes read so far. */
  onProgress?: (bytes: number) => void;
  /** Commit to the index every this many input bytes (bounded pending state). */
  commitEvery?: number;
}

export interface IngestResult {
  pointer: Pointer;
  pointerBytes: Buffer;
  manifestId: string;
  header: ManifestHeader;
  newChunks: number;
  newBytes: number;
}

export async function ingest(store: ChunkStore, source: AsyncIterable<Buffer>, opts: IngestOptions): Promise<IngestResult> {
  const chunker = new Chunker(opts.params);
  const fileHash = new StreamHasher();
  const builder = new ManifestBuilder();
  const forced = opts.cutPlan?.forced ?? [];
  const preferred = opts.cutPlan?.preferred ?? [];
  const commitEvery = opts.commitEvery ?? 256 * 1024 * 1024;
  let fi = 0;
  let pi = 0;
  let flagIndex = 0;
  let spineStart = 0; // offset of the next spine chunk
  let newChunks = 0;
  let newBytes = 0;
  let sinceCommit = 0;

  const storePiece = async (piece: Buffer, start: number): Promise<void> => {
    while (flagIndex < preferred.length && preferred[flagIndex]! < start) flagIndex++;
    const flags = flagIndex < preferred.length && preferred[flagIndex] === start ? FLAG_KEYFRAME : 0;
    const id = hashBytes(piece);
    builder.add(id, piece.length, flags);
    const stored = await store.putChunk(id, piece);
    if (stored > 0) {
      newChunks++;
      newBytes += stored;
      const wait = store.backpressure();
      if (wait) await wait;
    }
  };

  /** A spine chunk [spineStart, spineStart + length): split at plan offsets inside it. */
  const emit = async (chunk: Buffer | null): Promise<void> => {
    if (!chunk || chunk.length === 0) return;
    const s = spineStart;
    const e = s + chunk.length;
    spineStart = e;
    const splits: number[] = [];
    while (fi < forced.length && forced[fi]! <= s) fi++;
    for (let k = fi; k < forced.length && forced[k]! < e; k++) splits.push(forced[k]!);
    while (pi < preferred.length && preferred[pi]! <= s) pi++;
    for (let k = pi; k < preferred.length && preferred[k]! < e; k++) {
      const at = preferred[k]!;
      if (at - s <= KEYFRAME_SNAP || e - at <= KEYFRAME_SNAP) splits.push(at);
    }
    if (splits.length === 0) return storePiece(chunk, s);
    splits.sort((a, b) => a - b);
    let from = s;
    for (const at of splits) {
      if (at <= from) continue;
      await storePiece(chunk.subarray(from - s, at - s), from);
      from = at;
    }
    await storePiece(chunk.subarray(from - s), from);
  };

  try {
    for await (const input of source) {
      fileHash.update(input);
      for (const c of chunker.push(input)) await emit(c);
      sinceCommit += input.length;
      if (sinceCommit >= commitEvery) {
        await store.commitAsync();
        sinceCommit = 0;
      }
      opts.onProgress?.(fileHash.length);
    }
    await emit(chunker.finish());
    const oid = fileHash.digestHex();
    const { bytes, id, header } = builder.encode({
      oid,
      chunker: { algorithm: 'fastcdc-2020', min: opts.params.minSize, avg: opts.params.avgSize, max: opts.params.maxSize },
      media: opts.media ?? null,
      mediaFallback: opts.mediaFallback,
    });
    await store.commitAsync();
    store.putManifest(id, bytes);
    const pointer: Pointer = { oid, size: header.size, manifest: id };
    return { pointer, pointerBytes: encodePointer(pointer), manifestId: id, header, newChunks, newBytes };
  } catch (err) {
    store.abandon();
    throw store.diskError(err);
  }
}
