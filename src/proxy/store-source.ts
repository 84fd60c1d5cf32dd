/**
 * The content of a file version in the local store, as a random-access reader: offsets map
 * to chunks through the manifest, each chunk read from its pack and verified against its id
 * (ChunkStore.getChunk). With range-source.ts, ffmpeg reads it over http on 127.0.0.1 and
 * seeks where it likes (a `moov` at the end), with no copy of the file on disk.
 */
import type { ChunkStore } from '../store/chunk-store.js';
import { loadManifest } from '../store/materialize.js';
import type { Pointer } from '../manifest/pointer.js';
import type { RandomAccessReader } from '../media/random-access-reader.js';
import { serveRangeSource, type RangeSource } from './range-source.js';

/** A reader of `pointer`'s content from `store` (its manifest must be here). */
export function storeContentReader(store: ChunkStore, pointer: Pointer): RandomAccessReader {
  const m = loadManifest(store, pointer);
  const n = m.chunkCount;
  const starts = new Float64Array(n + 1);
  for (let i = 0; i < n; i++) starts[i + 1] = starts[i]! + m.lengthAt(i);
  /** The chunk holding byte `offset` (binary search). */
  const chunkAt = (offset: number): number => {
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  // the last chunk read, kept: ffmpeg reads a chunk in several small pieces
  let cached: { index: number; bytes: Buffer } | null = null;
  const chunk = async (i: number): Promise<Buffer> => {
    if (cached?.index === i) return cached.bytes;
    const bytes = await store.getChunk(m.idRawAt(i));
    cached = { index: i, bytes };
    return bytes;
  };
  return {
    size: pointer.size,
    async read(offset: number, length: number): Promise<Buffer> {
      const end = Math.min(pointer.size, offset + length);
      if (offset >= end) return Buffer.alloc(0);
      const parts: Buffer[] = [];
      for (let i = chunkAt(offset); i < n && starts[i]! < end; i++) {
        const b = await chunk(i);
        const from = Math.max(0, offset - starts[i]!);
        const to = Math.min(b.length, end - starts[i]!);
        parts.push(b.subarray(from, to));
      }
      return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    },
  };
}

/** Serves `pointer`'s content from `store` on 127.0.0.1 for ffmpeg; `ext` names it (ffmpeg guesses some formats from it). */
export async function serveStoreContent(store: ChunkStore, pointer: Pointer, ext: string): Promise<RangeSource> {
  return serveRangeSource(storeContentReader(store, pointer), { name: `source${ext || '.bin'}` });
}
