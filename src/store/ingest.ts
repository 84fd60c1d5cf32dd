/**
 * Ingest: a byte stream in, chunks into the store, a manifest and a pointer out.
 * Used by the clean filter (bytes from Git's pipe) and by `git dits add` (bytes read from
 * the file directly). Memory stays bounded: the stream is read into slots of 4 MiB, held
 * only until every piece that overlaps them is stored; the manifest keeps 37 bytes a chunk.
 *
 * Where the pieces are cut, and their ids, come from the cut stage (cut-pipeline.ts,
 * rules in piece-cutter.ts), with the file id: on this thread, or with `worker` on worker
 * threads while this one reads and stores. Both give the same pieces and ids.
 */
import type { ChunkerParams } from '../chunking/chunker.js';
import { copyBytes } from '../native-addon.js';
import { ManifestBuilder, type ManifestHeader } from '../manifest/manifest.js';
import { encodePointer, type Pointer } from '../manifest/pointer.js';
import type { ChunkStore } from './chunk-store.js';
import { LocalCutter, type CutPipeline, type CutWorker } from './cut-pipeline.js';
import { treeCvMinSize, writeTreeCvs } from '../hashing/tree-cv.js';
import type { CutBatch, CutPlan } from './piece-cutter.js';

export { KEYFRAME_SNAP, type CutPlan } from './piece-cutter.js';

/**
 * A stream that fills buffers: resolves with how many bytes it wrote at the start of
 * `buf` (at most its length), 0 only at the end of the stream.
 */
export interface ByteSource {
  read(buf: Buffer): Promise<number>;
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
  /**
   * Cut and hash the pieces on these workers (one ingest at a time). Ignored when a piece
   * may be larger than the worker's slots (chunker maxSize above 4 MiB), or once the
   * workers have failed or been closed.
   */
  worker?: CutWorker;
}

export interface IngestResult {
  pointer: Pointer;
  pointerBytes: Buffer;
  manifestId: string;
  header: ManifestHeader;
  newChunks: number;
  newBytes: number;
}

/** Reads an async iterable of buffers of any sizes into the buffers asked for. */
export function byteSourceOf(source: AsyncIterable<Buffer>): ByteSource {
  const it = source[Symbol.asyncIterator]();
  let rest: Buffer | null = null;
  let ended = false;
  return {
    async read(buf: Buffer): Promise<number> {
      let n = 0;
      while (n < buf.length) {
        if (rest === null || rest.length === 0) {
          if (ended) break;
          const next = await it.next();
          if (next.done) {
            ended = true;
            break;
          }
          rest = next.value;
          continue;
        }
        const k = Math.min(rest.length, buf.length - n);
        copyBytes(rest.subarray(0, k), buf, n);
        n += k;
        rest = rest.subarray(k);
      }
      return n;
    },
  };
}

function isByteSource(s: AsyncIterable<Buffer> | ByteSource): s is ByteSource {
  return typeof (s as ByteSource).read === 'function';
}

/** Slots holding stream bytes that stored pieces may still need, in stream order. */
interface Held {
  slot: number;
  start: number;
  end: number;
  bytes: Buffer;
}

export async function ingest(store: ChunkStore, source: AsyncIterable<Buffer> | ByteSource, opts: IngestOptions): Promise<IngestResult> {
  const src = isByteSource(source) ? source : byteSourceOf(source);
  // a worker that failed earlier (a crash, say) is not used again: this thread cuts instead
  const useWorker = opts.worker !== undefined && opts.worker.usable && opts.params.maxSize <= opts.worker.slotSize;
  const cutter: CutPipeline = useWorker ? opts.worker!.begin(opts.params, opts.cutPlan) : new LocalCutter(opts.params, opts.cutPlan);
  const builder = new ManifestBuilder();
  const commitEvery = opts.commitEvery ?? 256 * 1024 * 1024;
  const held: Held[] = [];
  /** Releases waiting for the store's writes (see storeBatch). */
  const releasing: Promise<void>[] = [];
  let offset = 0;
  let ended = false;
  const inFlight: { read: { slot: number; done: Promise<number> } | null } = { read: null };
  let newChunks = 0;
  let newBytes = 0;
  let sinceCommit = 0;

  /** The bytes [start, start + length) of the stream, from the held slots. */
  const bytesAt = (start: number, length: number): Buffer => {
    let i = 0;
    while (held[i]!.end <= start) i++;
    const h = held[i]!;
    if (start + length <= h.end) return h.bytes.subarray(start - h.start, start - h.start + length);
    // a piece across slots (about one per slot): gathered into one buffer
    const out = Buffer.allocUnsafe(length);
    let done = 0;
    for (let j = i; done < length; j++) {
      const p = held[j]!;
      const from = start + done - p.start;
      const k = Math.min(length - done, p.end - p.start - from);
      copyBytes(p.bytes.subarray(from, from + k), out, done);
      done += k;
    }
    return out;
  };

  const storeBatch = async (b: CutBatch): Promise<void> => {
    const ids = Buffer.from(b.ids.buffer, b.ids.byteOffset, b.ids.length);
    const datas: Buffer[] = [];
    for (let k = 0; k < b.count; k++) {
      const length = b.lengths[k]!;
      builder.add(ids.subarray(k * 32, k * 32 + 32), length, b.flags[k]!);
      datas.push(bytesAt(b.starts[k]!, length));
    }
    // lent, not copied: the slots are released only after a write fence (below)
    const put = store.putChunks(ids, datas, true);
    const r = put instanceof Promise ? await put : put;
    if (r.chunks > 0) {
      newChunks += r.chunks;
      newBytes += r.bytes;
      const wait = store.backpressure();
      if (wait) await wait;
    }
    const done: number[] = [];
    while (held.length && held[0]!.end <= b.doneUpTo) done.push(held.shift()!.slot);
    if (done.length) {
      // the store may still be writing these slots' bytes: hand them back once it is not
      const fence = store.writeFence().then(() => {
        for (const slot of done) cutter.release(slot);
      });
      releasing.push(fence);
      void fence.then(() => releasing.splice(releasing.indexOf(fence), 1));
    }
  };

  try {
    const startRead = (): void => {
      if (ended || inFlight.read !== null) return;
      const slot = cutter.acquire();
      if (slot >= 0) inFlight.read = { slot, done: src.read(cutter.slot(slot)) };
    };
    for (;;) {
      startRead();
      // store what the cutter has finished while the next read is in flight
      for (let b = cutter.poll(); b; b = cutter.poll()) await storeBatch(b);
      startRead(); // storing may have freed a slot
      const reading = inFlight.read;
      if (reading) {
        const n = await reading.done;
        const slot = reading.slot;
        inFlight.read = null;
        if (n === 0) {
          cutter.release(slot);
          ended = true;
          cutter.finish();
          continue;
        }
        const bytes = cutter.slot(slot).subarray(0, n);
        held.push({ slot, start: offset, end: offset + n, bytes });
        offset += n;
        cutter.push(slot, n);
        sinceCommit += n;
        if (sinceCommit >= commitEvery) {
          await store.commitAsync();
          sinceCommit = 0;
        }
        opts.onProgress?.(offset);
        continue;
      }
      if (cutter.pending > 0) {
        await storeBatch(await cutter.next());
        continue;
      }
      if (releasing.length) {
        await releasing[0];
        continue;
      }
      if (!ended) {
        // no slot free and nothing pending: wait for one (or a worker's failure, thrown by poll)
        await cutter.whenFree();
        cutter.poll(); // pending is 0: takes nothing, only throws a failure
        continue;
      }
      break;
    }
    const oid = await cutter.digest();
    const { bytes, id, header } = builder.encode({
      oid,
      chunker: { algorithm: 'fastcdc-2020', min: opts.params.minSize, avg: opts.params.avgSize, max: opts.params.maxSize },
      media: opts.media ?? null,
      mediaFallback: opts.mediaFallback,
    });
    // the chunks' rows and the manifest commit together
    await store.commitAsync({ id, bytes });
    // big files: their 1 MiB leaves, so that an edit in place finds the new id without reading it all
    if (header.size >= treeCvMinSize()) {
      const leaves = cutter.leaves();
      if (leaves) writeTreeCvs(store.dir, oid, header.size, leaves);
    }
    // every slot is back and written: the next file's cutter takes them
    if (cutter instanceof LocalCutter) cutter.recycle();
    const pointer: Pointer = { oid, size: header.size, manifest: id };
    return { pointer, pointerBytes: encodePointer(pointer), manifestId: id, header, newChunks, newBytes };
  } catch (err) {
    // a read still in flight must land before its slot can be used again
    await inFlight.read?.done.catch(() => 0);
    cutter.abort();
    store.abandon();
    throw store.diskError(err);
  }
}
