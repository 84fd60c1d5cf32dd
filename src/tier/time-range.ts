/**
 * Which bytes of an MP4/QuickTime file hold a time range: `git dits thaw --range
 * 00:10:00-00:12:00` restores only the packs holding those bytes.
 *
 * From the container's index (the `moov` box, ISO/IEC 14496-12 §8.6-8.7: `mdhd` timescale,
 * `stts` sample durations, `stsc` samples per chunk, `stsz` sizes, `stco`/`co64` chunk
 * offsets, `stss` sync samples), per track: the container chunks (runs of samples stored
 * together) with a sample decoded inside the range; a video track starts at the keyframe
 * at or before the range's start, so the first frames can be decoded. Edit lists are not
 * applied (their shifts are the encoder's priming, a fraction of a second). The bytes that
 * are not media payload (ftyp, moov, the mdat header, free boxes) are always included: a
 * player needs them to open the file.
 *
 * The container's index is read through a RandomAccessReader; a thaw reads it through the
 * file's chunks (thaw-plan.ts), which may themselves be frozen: `indexWindow` is the
 * guess of where the index lies, from the manifest's media structure, used to thaw it
 * first.
 */
import { DitsUserError } from '../errors.js';
import { MediaParseError, readChildBoxes } from '../media/mp4-boxes.js';
import type { MediaStructure } from '../media/media-structure.js';
import type { RandomAccessReader } from '../media/random-access-reader.js';
import type { Manifest } from '../manifest/manifest.js';

export interface TimeRange {
  startSec: number;
  endSec: number;
}

/** A byte extent of the file, `start` inclusive, `end` exclusive. */
export interface Extent {
  start: number;
  end: number;
}

export interface RangeExtents {
  /** the bytes any reader needs: everything outside the mdat payloads */
  index: Extent[];
  /** media payload holding the range, per track merged */
  media: Extent[];
  /** the movie's duration in seconds */
  durationSec: number;
}

/** "01:02:03.5", "02:03", "75", "75.5s" -> seconds. */
export function parseClockTime(s: string): number | null {
  const t = s.trim().replace(/s$/, '');
  if (!/^\d+(:\d{1,2}){0,2}(\.\d+)?$/.test(t)) return null;
  const parts = t.split(':').map(Number);
  let sec = 0;
  for (const p of parts) sec = sec * 60 + p;
  return Number.isFinite(sec) ? sec : null;
}

/** `--range 00:10:00-00:12:00` (also `10:00-12:00`, `600-720`). */
export function parseTimeRange(s: string): TimeRange {
  const m = /^([^-]+)-([^-]+)$/.exec(s.trim());
  const a = m ? parseClockTime(m[1]!) : null;
  const b = m ? parseClockTime(m[2]!) : null;
  if (a === null || b === null || !(b > a)) {
    throw new DitsUserError('bad-time-range', `'${s}' is not a time range`, {
      hint: 'give start-end as HH:MM:SS-HH:MM:SS, e.g. --range 00:10:00-00:12:00 (the end after the start)',
      exitCode: 2,
    });
  }
  return { startSec: a, endSec: b };
}

/** "00:00:00.800-00:00:01.000": both ends in one style (milliseconds when either has them). */
export function formatRange(r: TimeRange): string {
  const ms = !Number.isInteger(r.startSec) || !Number.isInteger(r.endSec);
  return `${formatClock(r.startSec, ms)}-${formatClock(r.endSec, ms)}`;
}

export function formatClock(sec: number, millis = !Number.isInteger(sec)): string {
  const h = Math.floor(sec / 3600);
  const m = Math.floor((sec % 3600) / 60);
  const s = sec - h * 3600 - m * 60;
  const ss = millis ? s.toFixed(3).padStart(6, '0') : String(Math.round(s)).padStart(2, '0');
  return `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}:${ss}`;
}

/** The moov is read whole; past this the file is not handled (a pathological per-sample table). */
const MAX_MOOV_BYTES = 512 * 1024 * 1024;

/**
 * The extents of the file behind `reader` that hold `range` (seconds from the start of the
 * movie), and its index. Throws MediaParseError when the container cannot be read, and
 * passes on whatever the reader throws (a frozen chunk).
 */
export async function rangeExtents(reader: RandomAccessReader, range: TimeRange): Promise<RangeExtents> {
  const top = await readChildBoxes(reader, 0, reader.size);
  const moovBox = top.find((b) => b.type === 'moov');
  if (!moovBox) throw new MediaParseError('no moov box');
  const index: Extent[] = [];
  const payloads: Extent[] = [];
  for (const b of top) {
    if (b.type === 'mdat') {
      index.push({ start: b.start, end: b.start + b.headerSize });
      payloads.push({ start: b.start + b.headerSize, end: b.end });
    } else index.push({ start: b.start, end: b.end });
  }
  const size = moovBox.end - moovBox.start;
  if (size > MAX_MOOV_BYTES) throw new MediaParseError(`the moov box is ${size} bytes: too large to read`);
  const moov = await reader.read(moovBox.start, size);
  if (moov.length < size) throw new MediaParseError('the moov box is truncated');
  const mv = bufferBoxes(moov, moovBox.headerSize, moov.length);
  const mvhd = mv.find((b) => b.type === 'mvhd');
  if (!mvhd) throw new MediaParseError('no mvhd');
  const mvh = fullBoxTimes(moov, mvhd);
  const durationSec = mvh.timescale ? mvh.duration / mvh.timescale : 0;
  if (range.startSec >= durationSec) {
    throw new DitsUserError('bad-time-range', `the range starts at ${formatClock(range.startSec)}, after the end of the clip (${formatClock(durationSec)})`, {
      hint: `give a range inside 00:00:00-${formatClock(durationSec)}`,
      exitCode: 2,
    });
  }
  const media: Extent[] = [];
  for (const trak of mv.filter((b) => b.type === 'trak')) {
    for (const e of trackExtents(moov, trak, range)) media.push(e);
  }
  return { index: mergeExtents(index), media: mergeExtents(media), durationSec };
}

interface BufBox {
  type: string;
  /** payload start and end within the buffer */
  start: number;
  end: number;
}

function bufferBoxes(b: Buffer, from: number, to: number): BufBox[] {
  const out: BufBox[] = [];
  let at = from;
  while (at + 8 <= to) {
    let size = b.readUInt32BE(at);
    const type = b.toString('latin1', at + 4, at + 8);
    let head = 8;
    if (size === 1) {
      size = Number(b.readBigUInt64BE(at + 8));
      head = 16;
    } else if (size === 0) size = to - at;
    if (size < head || at + size > to) throw new MediaParseError(`box '${type}' runs past its parent`);
    out.push({ type, start: at + head, end: at + size });
    at += size;
  }
  return out;
}

function child(b: Buffer, parent: BufBox, path: string[]): BufBox | undefined {
  let cur: BufBox | undefined = parent;
  for (const type of path) {
    if (!cur) return undefined;
    cur = bufferBoxes(b, cur.start, cur.end).find((x) => x.type === type);
  }
  return cur;
}

/** timescale and duration of an mvhd/mdhd (versions 0 and 1). */
function fullBoxTimes(b: Buffer, box: BufBox): { timescale: number; duration: number } {
  const v = b[box.start]!;
  if (v === 1) return { timescale: b.readUInt32BE(box.start + 20), duration: Number(b.readBigUInt64BE(box.start + 24)) };
  return { timescale: b.readUInt32BE(box.start + 12), duration: b.readUInt32BE(box.start + 16) };
}

function* trackExtents(b: Buffer, trak: BufBox, range: TimeRange): Generator<Extent> {
  const mdhd = child(b, trak, ['mdia', 'mdhd']);
  const stbl = child(b, trak, ['mdia', 'minf', 'stbl']);
  if (!mdhd || !stbl) return;
  const { timescale } = fullBoxTimes(b, mdhd);
  if (!timescale) return;
  const kids = bufferBoxes(b, stbl.start, stbl.end);
  const find = (t: string): BufBox | undefined => kids.find((k) => k.type === t);
  const stts = find('stts');
  const stsc = find('stsc');
  const stsz = find('stsz');
  const stco = find('stco') ?? find('co64');
  if (!stts || !stsc || !stsz || !stco) return;
  const wide = stco === find('co64');
  const sttsN = b.readUInt32BE(stts.start + 4);
  const stscN = b.readUInt32BE(stsc.start + 4);
  const constSize = b.readUInt32BE(stsz.start + 4);
  const sampleCount = b.readUInt32BE(stsz.start + 8);
  const chunkCount = b.readUInt32BE(stco.start + 4);
  if (stts.start + 8 + sttsN * 8 > stts.end || stsc.start + 8 + stscN * 12 > stsc.end || stco.start + 8 + chunkCount * (wide ? 8 : 4) > stco.end) {
    throw new MediaParseError('a sample table runs past its box');
  }
  if (constSize === 0 && stsz.start + 12 + sampleCount * 4 > stsz.end) throw new MediaParseError('stsz runs past its box');
  const sizeOf = (i: number): number => (constSize !== 0 ? constSize : b.readUInt32BE(stsz.start + 12 + i * 4));
  const chunkOffset = (c: number): number => (wide ? Number(b.readBigUInt64BE(stco.start + 8 + c * 8)) : b.readUInt32BE(stco.start + 8 + c * 4));

  let startT = Math.floor(range.startSec * timescale);
  const endT = Math.ceil(range.endSec * timescale);
  const stss = find('stss');
  if (stss) {
    // the keyframe at or before the start: decoding begins there
    const s = sampleAt(b, stts, sttsN, startT);
    const n = b.readUInt32BE(stss.start + 4);
    let sync = 0; // 0-based sample index of the last sync sample <= s
    for (let i = 0; i < n; i++) {
      const k = b.readUInt32BE(stss.start + 8 + i * 4) - 1;
      if (k > s) break;
      sync = k;
    }
    startT = Math.min(startT, timeOf(b, stts, sttsN, sync));
  }

  // walk the chunks in order, with cursors over stsc and stts
  let stscI = 0;
  let sample = 0;
  let sttsI = 0;
  let sttsLeft = sttsN > 0 ? b.readUInt32BE(stts.start + 8) : 0;
  let t = 0;
  const advance = (k: number): void => {
    while (k > 0 && sttsI < sttsN) {
      const step = Math.min(k, sttsLeft);
      t += step * b.readUInt32BE(stts.start + 8 + sttsI * 8 + 4);
      sttsLeft -= step;
      k -= step;
      if (sttsLeft === 0 && ++sttsI < sttsN) sttsLeft = b.readUInt32BE(stts.start + 8 + sttsI * 8);
    }
  };
  for (let c = 0; c < chunkCount && sample < sampleCount; c++) {
    while (stscI + 1 < stscN && b.readUInt32BE(stsc.start + 8 + (stscI + 1) * 12) - 1 <= c) stscI++;
    const per = Math.min(b.readUInt32BE(stsc.start + 8 + stscI * 12 + 4), sampleCount - sample);
    const t0 = t;
    advance(per);
    const t1 = t;
    if (t1 > startT && t0 < endT) {
      let bytes = 0;
      if (constSize !== 0) bytes = constSize * per;
      else for (let i = sample; i < sample + per; i++) bytes += sizeOf(i);
      const off = chunkOffset(c);
      yield { start: off, end: off + bytes };
    } else if (t0 >= endT) break;
    sample += per;
  }
}

/** The 0-based sample decoded at media time `t`. */
function sampleAt(b: Buffer, stts: BufBox, n: number, t: number): number {
  let s = 0;
  let at = 0;
  for (let i = 0; i < n; i++) {
    const count = b.readUInt32BE(stts.start + 8 + i * 8);
    const delta = b.readUInt32BE(stts.start + 8 + i * 8 + 4);
    if (delta > 0 && at + count * delta > t) return s + Math.floor((t - at) / delta);
    s += count;
    at += count * delta;
  }
  return Math.max(0, s - 1);
}

function timeOf(b: Buffer, stts: BufBox, n: number, sample: number): number {
  let s = 0;
  let at = 0;
  for (let i = 0; i < n; i++) {
    const count = b.readUInt32BE(stts.start + 8 + i * 8);
    const delta = b.readUInt32BE(stts.start + 8 + i * 8 + 4);
    if (s + count > sample) return at + (sample - s) * delta;
    s += count;
    at += count * delta;
  }
  return at;
}

export function mergeExtents(list: Extent[]): Extent[] {
  const sorted = list.filter((e) => e.end > e.start).sort((a, b) => a.start - b.start);
  const out: Extent[] = [];
  for (const e of sorted) {
    const last = out[out.length - 1];
    if (last && e.start <= last.end) last.end = Math.max(last.end, e.end);
    else out.push({ ...e });
  }
  return out;
}

/** Start offsets of every chunk of a manifest, plus the file size at the end. */
export function chunkStarts(m: Manifest): Float64Array {
  const starts = new Float64Array(m.chunkCount + 1);
  let at = 0;
  for (let i = 0; i < m.chunkCount; i++) {
    starts[i] = at;
    at += m.lengthAt(i);
  }
  starts[m.chunkCount] = at;
  return starts;
}

/** The chunk holding byte `offset` (binary search over chunkStarts). */
export function chunkAt(starts: Float64Array, offset: number): number {
  let lo = 0;
  let hi = starts.length - 2;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (starts[mid]! <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Indexes of the chunks overlapping any of `extents`. */
export function chunksForExtents(starts: Float64Array, extents: readonly Extent[]): Set<number> {
  const out = new Set<number>();
  const size = starts[starts.length - 1]!;
  for (const e of extents) {
    if (e.end <= e.start || e.start >= size) continue;
    const last = chunkAt(starts, Math.min(e.end, size) - 1);
    for (let i = chunkAt(starts, e.start); i <= last; i++) out.add(i);
  }
  return out;
}

/**
 * Where the container's index (ftyp, moov, the mdat header) probably lies when it cannot be
 * read yet (its chunks frozen): the head of the file, and for a moov at the end (not
 * `fastStart`) the tail, each sized from the tracks' sample counts (12 bytes a sample in
 * the tables, uncompressed audio per chunk, plus 64 KiB). Thawing these first makes the exact range computable.
 */
const PCM_CODECS = new Set(['lpcm', 'sowt', 'twos', 'in24', 'in32', 'fl32', 'fl64', 'raw', 'ipcm']);

export function indexWindow(structure: MediaStructure | null, fileSize: number): Extent[] {
  let est = 64 * 1024;
  for (const t of structure?.tracks ?? []) {
    // uncompressed audio has one constant size and a chunk table (a few chunks a second),
    // not a table entry per sample
    if (t.type === 'audio' && PCM_CODECS.has(t.codec)) est += Math.ceil(t.durationSeconds * 4) * 16;
    else est += t.sampleCount * 12;
  }
  if (!structure || structure.fastStart) return [{ start: 0, end: Math.min(fileSize, est) }];
  return mergeExtents([
    { start: 0, end: Math.min(fileSize, 64 * 1024) },
    { start: Math.max(0, fileSize - est), end: fileSize },
  ]);
}
