/**
 * Ingest: a byte stream in, chunks into the store, a manifest and a pointer out.
 * Used by the clean filter (bytes from Git's pipe) and by `git dits add` (bytes read from
 * the file directly). Memory stays bounded: chunks are at most maxSize and are stored as
 * they are cut; the manifest keeps 37 bytes a chunk.
 *
 * A cut plan (from the media parser) adds boundaries: `forced` offsets always start a new
 * chunk (container metadata kept as its own piece); `preferred` offsets (keyframes) and
 * `optional` ones (where interleaved tracks switch) start a new chunk when the chunk so far
 * has reached the minimum size.
 */
import { Chunker, type ChunkerParams } from '../chunking/chunker.js';
import { hashBytes, StreamHasher } from '../hashing/blake3.js';
import { FLAG_KEYFRAME, ManifestBuilder, type ManifestHeader } from '../manifest/manifest.js';
import { encodePointer, type Pointer } from '../manifest/pointer.js';
import type { ChunkStore } from './chunk-store.js';

export interface CutPlan {
  /** Sorted absolute offsets where a chunk must start. */
  forced: ArrayLike<number>;
  /** Sorted absolute offsets where a chunk should start (keyframes: flagged in the manifest). */
  preferred: ArrayLike<number>;
  /** Sorted absolute offsets where a chunk may start (track switches), same rule, no flag. */
  optional?: ArrayLike<number>;
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
  const optional = opts.cutPlan?.optional ?? [];
  let oi = 0;
  const commitEvery = opts.commitEvery ?? 256 * 1024 * 1024;
  let fi = 0;
  let pi = 0;
  let pos = 0; // bytes fed to the chunker
  let chunkStart = 0; // offset of the next chunk to be emitted
  let keyframeStart = 0; // next index into preferred for flagging
  let newChunks = 0;
  let newBytes = 0;
  let sinceCommit = 0;

  const emit = async (chunk: Buffer | null): Promise<void> => {
    if (!chunk || chunk.length === 0) return;
    while (keyframeStart < preferred.length && preferred[keyframeStart]! < chunkStart) keyframeStart++;
    const flags = keyframeStart < preferred.length && preferred[keyframeStart] === chunkStart ? FLAG_KEYFRAME : 0;
    const id = hashBytes(chunk);
    builder.add(id, chunk.length, flags);
    const stored = await store.putChunk(id, chunk);
    if (stored > 0) {
      newChunks++;
      newBytes += stored;
    }
    chunkStart += chunk.length;
  };

  const feed = async (buf: Buffer): Promise<void> => {
    for (const c of chunker.push(buf)) await emit(c);
    pos += buf.length;
  };

  try {
    for await (const input of source) {
      fileHash.update(input);
      let buf = input;
      while (buf.length > 0) {
        while (fi < forced.length && forced[fi]! <= pos) fi++;
        while (pi < preferred.length && preferred[pi]! <= pos) pi++;
        while (oi < optional.length && optional[oi]! <= pos) oi++;
        const nextForced = fi < forced.length ? forced[fi]! : Infinity;
        const nextPreferred = pi < preferred.length ? preferred[pi]! : Infinity;
        const nextOptional = oi < optional.length ? optional[oi]! : Infinity;
        const next = Math.min(nextForced, nextPreferred, nextOptional);
        if (next > pos + buf.length) {
          await feed(buf);
          break;
        }
        const take = next - pos;
        await feed(buf.subarray(0, take));
        buf = buf.subarray(take);
        if (next === nextForced || pos - chunkStart >= opts.params.minSize) await emit(chunker.cut());
      }
      sinceCommit += input.length;
      if (sinceCommit >= commitEvery) {
        store.commit();
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
    store.commit();
    store.putManifest(id, bytes);
    const pointer: Pointer = { oid, size: header.size, manifest: id };
    return { pointer, pointerBytes: encodePointer(pointer), manifestId: id, header, newChunks, newBytes };
  } catch (err) {
    store.abandon();
    throw store.diskError(err);
  }
}
