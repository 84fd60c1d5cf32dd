/**
 * Sample tables (ISO/IEC 14496-12 §8.6-8.7, QTFF "Sample table atoms"), read lazily.
 *
 * A table is never loaded whole: `TableCursor` keeps one window of entries (16 Ki by
 * default) and moves forward as the walk needs it. One hour of 48 kHz PCM has 172.8 M
 * samples; with a constant `stsz` size that walk is per chunk, never per sample, and no
 * table ever becomes an array of objects.
 *
 *   stsz: version/flags:u32 sample_size:u32 sample_count:u32 [entry_size:u32 x count if sample_size == 0]
 *   stco: version/flags:u32 entry_count:u32 chunk_offset:u32 x count      (co64: u64 offsets)
 *   stsc: version/flags:u32 entry_count:u32 (first_chunk:u32 samples_per_chunk:u32 sdi:u32) x count
 *   stss: version/flags:u32 entry_count:u32 sample_number:u32 x count      (1-based, ascending)
 *   stts: version/flags:u32 entry_count:u32 (sample_count:u32 sample_delta:u32) x count
 */
import type { RandomAccessReader } from './random-access-reader.js';
import { endianness } from 'node:os';
import { MediaParseError } from './mp4-boxes.js';

/** Where a table's entries live: absolute offset of the first entry, entry count and size. */
export interface TableRef {
  offset: number;
  count: number;
  entrySize: number;
}

const LITTLE_ENDIAN_HOST = endianness() === 'LE';

/**
 * A forward-moving window over a table of fixed-size big-endian entries (entry sizes are
 * multiples of 4). The window is held as host-order u32 words, so the hot loops index a
 * Uint32Array instead of decoding bytes one call at a time.
 */
export class TableCursor {
  private words = new Uint32Array(0);
  private first = 0;
  private loaded = 0;
  private readonly wordsPerEntry: number;

  constructor(
    private readonly reader: RandomAccessReader,
    readonly table: TableRef,
    private readonly windowEntries = 16_384,
  ) {
    if (table.entrySize % 4 !== 0) throw new MediaParseError(`unsupported table entry size ${table.entrySize}`);
    this.wordsPerEntry = table.entrySize / 4;
  }

  get count(): number {
    return this.table.count;
  }

  /** One past the last loaded entry. */
  windowEnd(): number {
    return this.first + this.loaded;
  }

  has(index: number): boolean {
    return index >= this.first && index < this.first + this.loaded;
  }

  /** Loads the window that starts at `index`. */
  async load(index: number): Promise<void> {
    if (index < 0 || index >= this.table.count) throw new MediaParseError(`table index ${index} out of range`);
    const n = Math.min(this.windowEntries, this.table.count - index);
    const bytes = n * this.table.entrySize;
    const buf = await this.reader.read(this.table.offset + index * this.table.entrySize, bytes);
    if (buf.length < bytes) throw new MediaParseError(`sample table at offset ${this.table.offset} is truncated`);
    if (this.words.length < n * this.wordsPerEntry) this.words = new Uint32Array(n * this.wordsPerEntry);
    // Copy (the source may be a view of a shared buffer), then swap to host order in place.
    const raw = Buffer.from(this.words.buffer, 0, bytes);
    buf.copy(raw, 0, 0, bytes);
    if (LITTLE_ENDIAN_HOST) raw.swap32();
    this.first = index;
    this.loaded = n;
  }

  /** The u32 field `field` of entry `index`; the entry must be loaded (`has`). */
  u32(index: number, field = 0): number {
    return this.words[(index - this.first) * this.wordsPerEntry + field]!;
  }

  /** The entry as an offset: u32 for stco, u64 for co64. */
  offset(index: number): number {
    const at = (index - this.first) * this.wordsPerEntry;
    if (this.wordsPerEntry === 2) {
      const hi = this.words[at]!;
      if (hi > 0x1fffff) throw new MediaParseError('co64 offset beyond 2^53');
      return hi * 0x1_0000_0000 + this.words[at + 1]!;
    }
    return this.words[at]!;
  }

  async get(index: number, field = 0): Promise<number> {
    if (!this.has(index)) await this.load(index);
    return this.u32(index, field);
  }

  /** Sum of field 0 over entries [from, from + n), loading windows as needed. */
  async sum(from: number, n: number): Promise<number> {
    let total = 0;
    let i = from;
    const end = from + n;
    while (i < end) {
      if (!this.has(i)) await this.load(i);
      const stop = Math.min(end, this.first + this.loaded);
      const words = this.words;
      const w = this.wordsPerEntry;
      for (let k = (i - this.first) * w, last = (stop - this.first) * w; k < last; k += w) total += words[k]!;
      i = stop;
    }
    return total;
  }
}

/** A growable Float64Array; memory is 8 bytes per value, never one object per value. */
export class Float64Builder {
  private data: Float64Array;
  length = 0;

  constructor(initial = 1024) {
    this.data = new Float64Array(Math.max(1, initial));
  }

  push(value: number): void {
    if (this.length === this.data.length) {
      const next = new Float64Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = value;
  }

  last(): number {
    return this.length === 0 ? Number.NaN : this.data[this.length - 1]!;
  }

  /** The values pushed so far (a view, no copy). */
  toArray(): Float64Array {
    return this.data.subarray(0, this.length);
  }
}

export interface TrackTables {
  /** Constant sample size, or 0 when `sizes` lists each sample. */
  constantSize: number;
  sampleCount: number;
  sizes?: TableRef;
  chunkOffsets: TableRef;
  sampleToChunk: TableRef;
  /** Absent: every sample is a sync sample. */
  syncSamples?: TableRef;
  timeToSample: TableRef;
}

export interface TrackLayoutOptions {
  /** Collect the offsets of sync samples (for video tracks). */
  wantSync: boolean;
  /** Bytes per sample when the table's constant size is in frames (QuickTime PCM quirk). */
  bytesPerSample?: number;
  /** Keep a sync offset only if at least this many bytes after the last kept one. */
  minSyncSpacing?: number;
  /** Stop collecting sync offsets past this many (the layout is still checked). */
  maxSyncOffsets?: number;
  /** Chunk extents are appended here (for the cross-track overlap check); sized by the caller. */
  extents: ChunkExtents;
}

/** Byte extents of every chunk of every track, preallocated from the stco/co64 counts. */
export interface ChunkExtents {
  starts: Float64Array;
  ends: Float64Array;
  length: number;
}

export interface TrackLayout {
  sampleCount: number;
  chunkCount: number;
  /** Offset of the first sample, if any. */
  firstSampleOffset?: number;
  /** Absolute offsets where sync samples start, in table order (not necessarily sorted). */
  syncOffsets?: Float64Array;
  /** Number of sync samples in the track (all of them, even those not kept). */
  syncSampleCount: number;
  /** True when `maxSyncOffsets` was reached and later offsets were dropped. */
  syncTruncated: boolean;
}

/**
 * Walks chunks in table order, working out each chunk's byte extent and, when asked,
 * where each sync sample starts. Throws `MediaParseError` on any inconsistency between
 * stsc, stsz, stco/co64 and stss.
 */
export async function walkTrackLayout(reader: RandomAccessReader, t: TrackTables, o: TrackLayoutOptions): Promise<TrackLayout> {
  const chunks = new TableCursor(reader, t.chunkOffsets);
  const stsc = new TableCursor(reader, t.sampleToChunk, 4096);
  const sizes = t.sizes ? new TableCursor(reader, t.sizes) : undefined;
  const stss = t.syncSamples ? new TableCursor(reader, t.syncSamples) : undefined;
  const constant = t.constantSize > 0 ? (o.bytesPerSample ?? t.constantSize) : 0;
  const chunkCount = t.chunkOffsets.count;
  if (chunkCount > o.extents.starts.length - o.extents.length) throw new MediaParseError('chunk extents overflow');
  if (t.sampleToChunk.count === 0 && chunkCount > 0) throw new MediaParseError('stsc is empty but chunks exist');
  if (!sizes && t.constantSize === 0 && t.sampleCount > 0) throw new MediaParseError('stsz has neither a constant size nor a table');

  const minSpacing = o.minSyncSpacing ?? 0;
  const maxSync = Math.min(o.maxSyncOffsets ?? Number.POSITIVE_INFINITY, t.syncSamples ? t.syncSamples.count : t.sampleCount);
  // Exact capacity: a keyframe list never doubles and is never copied.
  const sync = o.wantSync ? new Float64Builder(maxSync) : undefined;
  let syncTruncated = false;
  let syncSampleCount = 0;
  let lastKept = Number.NEGATIVE_INFINITY;
  // 1-based number of the next sync sample, or Infinity when none are left.
  let syncIndex = 0;
  let nextSync = Number.POSITIVE_INFINITY;
  let prevSync = 0;
  const advanceSync = async (): Promise<void> => {
    if (!stss || syncIndex >= stss.count) {
      nextSync = Number.POSITIVE_INFINITY;
      return;
    }
    const n = await stss.get(syncIndex++);
    if (n <= prevSync) throw new MediaParseError('stss is not ascending');
    prevSync = n;
    nextSync = n;
  };
  if (stss) await advanceSync();
  const emitSync = (offset: number): void => {
    syncSampleCount++;
    if (!sync || syncTruncated) return;
    if (offset - lastKept < minSpacing && offset >= lastKept) return;
    if (sync.length >= maxSync) {
      syncTruncated = true;
      return;
    }
    sync.push(offset);
    lastKept = offset;
  };

  let stscIndex = 0;
  let samplesPerChunk = 0;
  let nextRunFirstChunk = 1; // 1-based chunk number where the next stsc entry applies
  let sample = 0; // 0-based index of the next sample
  let firstSampleOffset: number | undefined;

  for (let c = 0; c < chunkCount; c++) {
    while (stscIndex < stsc.count && c + 1 >= nextRunFirstChunk) {
      const first = await stsc.get(stscIndex, 0);
      if (stscIndex === 0 && first !== 1) throw new MediaParseError('stsc does not start at chunk 1');
      samplesPerChunk = stsc.u32(stscIndex, 1);
      stscIndex++;
      nextRunFirstChunk = stscIndex < stsc.count ? await stsc.get(stscIndex, 0) : Number.POSITIVE_INFINITY;
      if (nextRunFirstChunk <= first) throw new MediaParseError('stsc is not ascending');
    }
    if (!chunks.has(c)) await chunks.load(c);
    if (constant > 0 && !stss && !o.wantSync) {
      // Fast path (uncompressed audio, constant-size tracks): a synchronous loop over
      // every chunk of this stsc run that is in the loaded window.
      const batchEnd = Math.min(chunkCount, nextRunFirstChunk - 1, chunks.windowEnd());
      const n = batchEnd - c;
      if (sample + n * samplesPerChunk > t.sampleCount) {
        throw new MediaParseError(`sample tables disagree: chunks hold more than the ${t.sampleCount} samples in stsz`);
      }
      if (samplesPerChunk > 0 && firstSampleOffset === undefined) firstSampleOffset = chunks.offset(c);
      const length = samplesPerChunk * constant;
      const ex = o.extents;
      for (let k = c; k < batchEnd; k++) {
        const start = chunks.offset(k);
        ex.starts[ex.length] = start;
        ex.ends[ex.length] = start + length;
        ex.length++;
      }
      sample += n * samplesPerChunk;
      c = batchEnd - 1;
      continue;
    }
    if (constant === 0 && !stss && o.wantSync && sync && !syncTruncated && minSpacing === 0 && sample < t.sampleCount) {
      // Fast path (all-intra video such as ProRes: no stss, per-sample sizes): a
      // synchronous loop while the chunk and size windows cover the run.
      const batchEnd = Math.min(chunkCount, nextRunFirstChunk - 1, chunks.windowEnd());
      if (!sizes!.has(sample)) await sizes!.load(sample);
      const fit = Math.floor((sizes!.windowEnd() - sample) / Math.max(1, samplesPerChunk));
      const stop = Math.min(batchEnd, c + fit);
      if (stop > c && sample + (stop - c) * samplesPerChunk <= t.sampleCount && sync.length + (stop - c) * samplesPerChunk <= maxSync) {
        if (samplesPerChunk > 0 && firstSampleOffset === undefined) firstSampleOffset = chunks.offset(c);
        const ex = o.extents;
        for (let k = c; k < stop; k++) {
          const start = chunks.offset(k);
          let length = 0;
          for (let s = sample, last = sample + samplesPerChunk; s < last; s++) {
            sync.push(start + length);
            length += sizes!.u32(s);
          }
          syncSampleCount += samplesPerChunk;
          if (samplesPerChunk > 0) lastKept = sync.last();
          ex.starts[ex.length] = start;
          ex.ends[ex.length] = start + length;
          ex.length++;
          sample += samplesPerChunk;
        }
        c = stop - 1;
        continue;
      }
    }
    const start = chunks.offset(c);
    if (sample + samplesPerChunk > t.sampleCount) {
      throw new MediaParseError(`sample tables disagree: chunks hold more than the ${t.sampleCount} samples in stsz`);
    }
    if (samplesPerChunk > 0 && firstSampleOffset === undefined) firstSampleOffset = start;
    let length: number;
    if (constant > 0) {
      length = samplesPerChunk * constant;
      if (o.wantSync || stss) {
        const endSample = sample + samplesPerChunk; // exclusive, 0-based
        if (!stss) {
          // Bounded by what is kept, not by the sample count (a crafted table may claim
          // billions of constant-size samples without occupying any table bytes).
          let s = sample;
          while (s < endSample && !syncTruncated) {
            emitSync(start + (s - sample) * constant);
            s++;
            if (minSpacing > constant && s < endSample) {
              const next = sample + Math.ceil((lastKept + minSpacing - start) / constant);
              if (next > s) {
                syncSampleCount += Math.min(next, endSample) - s;
                s = Math.min(next, endSample);
              }
            }
          }
          syncSampleCount += endSample - s;
        } else {
          while (nextSync - 1 < endSample) {
            emitSync(start + (nextSync - 1 - sample) * constant);
            await advanceSync();
          }
        }
      }
    } else if (!stss && !o.wantSync) {
      length = await sizes!.sum(sample, samplesPerChunk);
    } else {
      length = 0;
      for (let s = sample; s < sample + samplesPerChunk; s++) {
        if (!sizes!.has(s)) await sizes!.load(s);
        if (!stss) {
          emitSync(start + length);
        } else if (s === nextSync - 1) {
          emitSync(start + length);
          await advanceSync();
        }
        length += sizes!.u32(s);
      }
    }
    o.extents.starts[o.extents.length] = start;
    o.extents.ends[o.extents.length] = start + length;
    o.extents.length++;
    sample += samplesPerChunk;
  }
  if (sample !== t.sampleCount) {
    throw new MediaParseError(`sample tables disagree: chunks hold ${sample} samples, stsz lists ${t.sampleCount}`);
  }
  if (stss && nextSync !== Number.POSITIVE_INFINITY) throw new MediaParseError('stss names a sample beyond the last one');
  return {
    sampleCount: sample,
    chunkCount,
    firstSampleOffset,
    syncOffsets: sync?.toArray(),
    syncSampleCount,
    syncTruncated,
  };
}

/** Sum of sample durations in `stts` (in media timescale units) and sample count, read lazily. */
export async function sumTimeToSample(reader: RandomAccessReader, stts: TableRef): Promise<{ samples: number; duration: number; constantDelta?: number }> {
  const cursor = new TableCursor(reader, stts);
  let samples = 0;
  let duration = 0;
  let delta: number | undefined;
  let constant = true;
  for (let i = 0; i < cursor.count; i++) {
    if (!cursor.has(i)) await cursor.load(i);
    const n = cursor.u32(i, 0);
    const d = cursor.u32(i, 1);
    samples += n;
    duration += n * d;
    if (n > 0) {
      if (delta === undefined) delta = d;
      else if (delta !== d) constant = false;
    }
  }
  return { samples, duration, constantDelta: constant ? delta : undefined };
}
