/**
 * MP4 / QuickTime container reader: from box headers and sample tables to a
 * `MediaStructure` and a `CutPlan`. Reads no media payload, except the 4-byte first
 * sample of a timecode track (the start frame count).
 *
 * Specs: ISO/IEC 14496-12 (ISO BMFF), Apple "QuickTime File Format Specification"
 * (sample descriptions for sound v0/v1/v2, `tmcd`).
 *
 * Everything that does not add up throws `MediaParseError`; `analyzeContainer` turns
 * that into a fallback to plain chunking. Memory: the `moov` box is read whole when it
 * is at most `maxMoovBytes`, otherwise read piecewise; sample tables are walked through
 * fixed windows; per-file arrays are typed (8 bytes per chunk and per keyframe).
 */
import type { RandomAccessReader } from './random-access-reader.js';
import { windowedReader } from './random-access-reader.js';
import {
  MediaParseError,
  type BoxHeader,
  findChild,
  isPlausibleBoxType,
  payloadSize,
  payloadStart,
  printable,
  readBoxHeader,
  readChildBoxes,
  readPayload,
} from './mp4-boxes.js';
import { Float64Builder, type TableRef, type TrackTables, sumTimeToSample, walkTrackLayout } from './mp4-sample-tables.js';
import {
  MEDIA_STRUCTURE_VERSION,
  type CutPlan,
  type CutRegion,
  type MediaStructure,
  type MediaTrack,
  type TrackType,
} from './media-structure.js';
import { formatTimecode } from './timecode.js';

export interface Mp4ParseOptions {
  /** A `moov` up to this size is read with one read; larger ones piecewise. Default 64 MiB. */
  maxMoovBytes?: number;
  /** More chunks than this over all tracks is treated as unparseable. Default 4 Mi (64 MiB of typed arrays). */
  maxChunks?: number;
  /** Keyframe offsets kept in the plan at most; past this, later ones are dropped. Default 2 Mi. */
  maxPreferredCuts?: number;
  /** Drop a keyframe offset closer than this to the previous kept one. Default 0 (keep all). */
  minCutSpacing?: number;
  /** A top-level box other than moov at least this large is payload, chunked on its own. Default 1 MiB. */
  payloadBoxThreshold?: number;
}

/** Top-level box types that may open an MP4/QuickTime file. */
const OPENING_BOXES = new Set(['ftyp', 'moov', 'mdat', 'free', 'skip', 'wide', 'pnot', 'uuid', 'junk', 'pdin', 'styp', 'PICT']);
const PCM_CODECS = new Set(['lpcm', 'sowt', 'twos', 'in24', 'in32', 'fl32', 'fl64', 'raw ', 'NONE', 'ipcm', 'fpcm']);
/** Seconds between 1904-01-01 and 1970-01-01 (QuickTime / ISO BMFF epoch). */
const EPOCH_1904 = 2_082_844_800;

export interface Mp4ParseResult {
  kind: 'mp4' | 'mov';
  structure: MediaStructure;
  cutPlan: CutPlan;
}

interface ParsedTrack {
  track: MediaTrack;
  tables: TrackTables;
  bytesPerSample?: number;
  tmcd?: { flags: number; timescale: number; frameDuration: number; frames: number };
}

/** True when the first 8 bytes look like the start of an MP4/QuickTime file. */
export function looksLikeMp4(head: Buffer): boolean {
  if (head.length < 8) return false;
  const type = head.toString('latin1', 4, 8);
  return OPENING_BOXES.has(type);
}

export async function parseMp4Container(reader: RandomAccessReader, options: Mp4ParseOptions = {}): Promise<Mp4ParseResult> {
  const size = reader.size;
  const maxMoovBytes = options.maxMoovBytes ?? 64 * 1024 * 1024;
  const payloadThreshold = options.payloadBoxThreshold ?? 1024 * 1024;

  // 1. Top-level boxes: headers only.
  const top: BoxHeader[] = [];
  for (let offset = 0; offset < size; ) {
    const box = await readBoxHeader(reader, offset, size);
    if (!isPlausibleBoxType(box.type)) throw new MediaParseError(`unreadable box type at offset ${offset}`);
    if (top.length === 0 && !OPENING_BOXES.has(box.type)) throw new MediaParseError(`file starts with box '${printable(box.type)}', not an MP4/QuickTime box`);
    top.push(box);
    if (top.length > 100_000) throw new MediaParseError('more than 100000 top-level boxes');
    offset = box.end;
  }
  if (top.some((b) => b.type === 'moof')) throw new MediaParseError('fragmented MP4 (moof): plain chunking for now');
  const moovs = top.filter((b) => b.type === 'moov');
  if (moovs.length === 0) throw new MediaParseError('no moov box (an unfinished recording?)');
  if (moovs.length > 1) throw new MediaParseError('more than one moov box');
  const moov = moovs[0]!;
  const mdats = top.filter((b) => b.type === 'mdat');

  // 2. ftyp: brands and flavour.
  const ftyp = findChild(top, 'ftyp');
  const brands: string[] = [];
  if (ftyp) {
    const body = await readPayload(reader, ftyp, 4096);
    if (body.length < 8) throw new MediaParseError('ftyp is too short');
    brands.push(body.toString('latin1', 0, 4));
    for (let at = 8; at + 4 <= body.length; at += 4) {
      const b = body.toString('latin1', at, at + 4);
      if (!brands.includes(b) && b !== '\0\0\0\0') brands.push(b);
    }
  }
  const kind: 'mp4' | 'mov' = !ftyp || brands[0] === 'qt  ' ? 'mov' : 'mp4';

  // 3. moov, read whole when small enough.
  const moovReader =
    payloadSize(moov) <= maxMoovBytes ? windowedReader(reader, moov.start, await readWhole(reader, moov)) : reader;
  const moovChildren = await readChildBoxes(moovReader, payloadStart(moov), moov.end);
  if (moovChildren.some((b) => b.type === 'mvex')) throw new MediaParseError('fragmented MP4 (mvex): plain chunking for now');
  const mvhdBox = findChild(moovChildren, 'mvhd');
  if (!mvhdBox) throw new MediaParseError('moov has no mvhd');
  const mvhd = parseMvhd(await readPayload(moovReader, mvhdBox, 4096));

  const parsed: ParsedTrack[] = [];
  for (const trak of moovChildren.filter((b) => b.type === 'trak')) {
    parsed.push(await parseTrak(moovReader, trak));
  }

  // 4. Sample layout: chunk extents of every track, keyframe offsets of video tracks.
  const maxChunks = options.maxChunks ?? 4 * 1024 * 1024;
  const totalChunks = parsed.reduce((n, p) => n + p.tables.chunkOffsets.count, 0);
  if (totalChunks > maxChunks) throw new MediaParseError(`too many chunks to check (${totalChunks} > ${maxChunks})`);
  const extents = { starts: new Float64Array(totalChunks), ends: new Float64Array(totalChunks), length: 0 };
  const maxPreferred = options.maxPreferredCuts ?? 2 * 1024 * 1024;
  const syncLists: Float64Array[] = [];
  let note: string | undefined;
  let tmcdFirstOffset: number | undefined;
  const trackStarts: number[] = []; // index into extents where each track's chunks begin
  for (const p of parsed) {
    trackStarts.push(extents.length);
    const wantSync = p.track.type === 'video';
    const layout = await walkTrackLayout(moovReader, p.tables, {
      wantSync,
      bytesPerSample: p.bytesPerSample,
      minSyncSpacing: options.minCutSpacing,
      maxSyncOffsets: maxPreferred,
      extents,
    });
    if (wantSync) {
      p.track.syncSampleCount = layout.syncSampleCount;
      syncLists.push(layout.syncOffsets!);
      if (layout.syncTruncated) note = `keyframe list capped at ${maxPreferred} offsets per track`;
    }
    if (p.tmcd && tmcdFirstOffset === undefined && layout.firstSampleOffset !== undefined) tmcdFirstOffset = layout.firstSampleOffset;
  }

  // 5. Every chunk must lie inside an mdat payload, and no two may overlap.
  const payloads = mdats.map((b) => [payloadStart(b), b.end] as const);
  const switches = scanChunkExtents(extents.starts.subarray(0, extents.length), extents.ends.subarray(0, extents.length), trackStarts, payloads);

  // 6. Start timecode from the first timecode track's first sample (a u32 frame count).
  let startTimecode: string | undefined;
  const tc = parsed.find((p) => p.tmcd)?.tmcd;
  if (tc && tmcdFirstOffset !== undefined) {
    const bytes = await reader.read(tmcdFirstOffset, 4);
    if (bytes.length < 4) throw new MediaParseError('timecode sample is truncated');
    const fps = tc.frames > 0 ? tc.frames : Math.round(tc.timescale / Math.max(1, tc.frameDuration));
    if (fps > 0 && fps < 1000) startTimecode = formatTimecode(bytes.readUInt32BE(0), fps, (tc.flags & 1) === 1);
  }

  const firstMdat = mdats.find((b) => payloadSize(b) > 0) ?? mdats[0];
  const structure: MediaStructure = {
    version: MEDIA_STRUCTURE_VERSION,
    container: kind,
    brands,
    durationSeconds: movieDuration(mvhd, parsed),
    fastStart: firstMdat === undefined || moov.start < firstMdat.start,
    tracks: parsed.map((p) => p.track),
  };
  if (mvhd.creation > 0) {
    const ms = (mvhd.creation - EPOCH_1904) * 1000;
    if (Number.isFinite(ms) && Math.abs(ms) < 8.64e15) structure.creationTime = new Date(ms).toISOString();
  }
  if (startTimecode) structure.startTimecode = startTimecode;

  const plan = buildCutPlan(top, size, payloadThreshold, syncLists, switches, options.minCutSpacing ?? 0);
  if (note) plan.note = note;
  return { kind, structure, cutPlan: plan };
}

/** mvhd's duration, or the longest track's when mvhd leaves it unset (0 or all ones). */
function movieDuration(mvhd: { timescale: number; duration: number }, tracks: ParsedTrack[]): number {
  if (mvhd.timescale > 0 && mvhd.duration > 0 && mvhd.duration !== 0xffffffff) return round(mvhd.duration / mvhd.timescale, 6);
  return tracks.reduce((max, p) => Math.max(max, p.track.durationSeconds), 0);
}

async function readWhole(reader: RandomAccessReader, box: BoxHeader): Promise<Buffer> {
  const length = box.end - box.start;
  const bytes = await reader.read(box.start, length);
  if (bytes.length < length) throw new MediaParseError(`box '${box.type}' at offset ${box.start} is truncated`);
  return bytes;
}

function parseMvhd(b: Buffer): { creation: number; timescale: number; duration: number } {
  need(b, 4, 'mvhd');
  const version = b[0];
  if (version === 1) {
    need(b, 32, 'mvhd');
    return { creation: u64(b, 4), timescale: b.readUInt32BE(20), duration: u64(b, 24) };
  }
  need(b, 20, 'mvhd');
  return { creation: b.readUInt32BE(4), timescale: b.readUInt32BE(12), duration: b.readUInt32BE(16) };
}

function parseMdhd(b: Buffer): { timescale: number; duration: number } {
  need(b, 4, 'mdhd');
  if (b[0] === 1) {
    need(b, 32, 'mdhd');
    return { timescale: b.readUInt32BE(20), duration: u64(b, 24) };
  }
  need(b, 20, 'mdhd');
  return { timescale: b.readUInt32BE(12), duration: b.readUInt32BE(16) };
}

function parseTkhdId(b: Buffer): number {
  need(b, 4, 'tkhd');
  const at = b[0] === 1 ? 20 : 12;
  need(b, at + 4, 'tkhd');
  return b.readUInt32BE(at);
}

async function childrenOf(reader: RandomAccessReader, box: BoxHeader | undefined, what: string): Promise<BoxHeader[]> {
  if (!box) throw new MediaParseError(`missing ${what}`);
  return readChildBoxes(reader, payloadStart(box), box.end);
}

async function parseTrak(reader: RandomAccessReader, trak: BoxHeader): Promise<ParsedTrack> {
  const trakChildren = await childrenOf(reader, trak, 'trak');
  const tkhd = findChild(trakChildren, 'tkhd');
  if (!tkhd) throw new MediaParseError(`trak at offset ${trak.start} has no tkhd`);
  const id = parseTkhdId(await readPayload(reader, tkhd, 4096));
  const mdiaChildren = await childrenOf(reader, findChild(trakChildren, 'mdia'), `mdia in track ${id}`);
  const mdhdBox = findChild(mdiaChildren, 'mdhd');
  if (!mdhdBox) throw new MediaParseError(`track ${id} has no mdhd`);
  const mdhd = parseMdhd(await readPayload(reader, mdhdBox, 4096));
  const hdlrBox = findChild(mdiaChildren, 'hdlr');
  if (!hdlrBox) throw new MediaParseError(`track ${id} has no hdlr`);
  const hdlr = await readPayload(reader, hdlrBox, 4096);
  need(hdlr, 12, 'hdlr');
  const handler = hdlr.toString('latin1', 8, 12);
  const minfChildren = await childrenOf(reader, findChild(mdiaChildren, 'minf'), `minf in track ${id}`);
  const stblChildren = await childrenOf(reader, findChild(minfChildren, 'stbl'), `stbl in track ${id}`);

  const type: TrackType = handler === 'vide' ? 'video' : handler === 'soun' ? 'audio' : handler === 'tmcd' ? 'timecode' : 'other';
  const stsdBox = findChild(stblChildren, 'stsd');
  if (!stsdBox) throw new MediaParseError(`track ${id} has no stsd`);
  const stsd = await readPayload(reader, stsdBox, 1 << 20);
  need(stsd, 8, 'stsd');
  const entryCount = stsd.readUInt32BE(4);
  let entry: Buffer = Buffer.alloc(0);
  if (entryCount > 0) {
    need(stsd, 16, 'stsd');
    const entrySize = stsd.readUInt32BE(8);
    if (entrySize < 16 || 8 + entrySize > stsd.length) throw new MediaParseError(`track ${id}: bad sample description size`);
    entry = stsd.subarray(8, 8 + entrySize);
  }
  const codec = entry.length >= 8 ? entry.toString('latin1', 4, 8) : '';

  const tables = await readTables(reader, stblChildren, id);
  const stts = await sumTimeToSample(reader, tables.timeToSample);
  const mediaDuration = mdhd.duration === 0xffffffff || mdhd.duration === 0 ? stts.duration : mdhd.duration;

  const track: MediaTrack = {
    id,
    type,
    codec: codec.replace(/ +$/, ''),
    sampleCount: tables.sampleCount,
    durationSeconds: mdhd.timescale > 0 ? round(mediaDuration / mdhd.timescale, 6) : 0,
  };
  if (type === 'other') track.handler = handler;
  const result: ParsedTrack = { track, tables };

  if (type === 'video' && entry.length >= 36) {
    track.width = entry.readUInt16BE(32);
    track.height = entry.readUInt16BE(34);
    if (mdhd.timescale > 0 && stts.samples > 0) {
      const rate = stts.constantDelta ? mdhd.timescale / stts.constantDelta : (stts.samples * mdhd.timescale) / Math.max(1, stts.duration);
      if (Number.isFinite(rate) && rate > 0) track.frameRate = round(rate, 3);
    }
  } else if (type === 'audio' && entry.length >= 36) {
    const version = entry.readUInt16BE(16);
    let channels = entry.readUInt16BE(24);
    let bits = entry.readUInt16BE(26);
    let rate = entry.readUInt32BE(32) / 65536;
    if (version === 2 && entry.length >= 72) {
      rate = entry.readDoubleBE(40);
      channels = entry.readUInt32BE(48);
      bits = entry.readUInt32BE(56);
    }
    if (!(rate > 0)) rate = mdhd.timescale;
    // ISO files write a template channel count (2) in mp4a; the real one is in esds.
    if (codec === 'mp4a') {
      const childStart = version === 2 ? 72 : version === 1 ? 52 : 36;
      const ascChannels = aacChannelsFromEsds(findEntryChild(entry, childStart, 'esds'));
      if (ascChannels !== undefined) channels = ascChannels;
    }
    track.sampleRate = round(rate, 3);
    track.channels = channels;
    const pcm = PCM_CODECS.has(codec);
    if (pcm) track.bitsPerSample = codec === 'in24' ? 24 : codec === 'in32' || codec === 'fl32' ? 32 : codec === 'fl64' ? 64 : bits;
    // QuickTime sound v0/v1: uncompressed audio may say "1 byte per sample" in stsz
    // while a sample is one frame of all channels.
    if (pcm && version < 2 && tables.constantSize === 1) {
      const perFrame = version === 1 && entry.length >= 52 ? entry.readUInt32BE(44) : (channels * (track.bitsPerSample ?? bits)) / 8;
      if (Number.isInteger(perFrame) && perFrame > 0) result.bytesPerSample = perFrame;
    }
  } else if (type === 'timecode' && codec === 'tmcd' && entry.length >= 34) {
    result.tmcd = {
      flags: entry.readUInt32BE(20),
      timescale: entry.readUInt32BE(24),
      frameDuration: entry.readUInt32BE(28),
      frames: entry[32]!,
    };
  }
  return result;
}

async function readTables(reader: RandomAccessReader, stbl: BoxHeader[], id: number): Promise<TrackTables> {
  const table = async (box: BoxHeader, entrySize: number, headerBytes = 8): Promise<TableRef> => {
    const head = await reader.read(payloadStart(box), headerBytes);
    if (head.length < headerBytes || payloadSize(box) < headerBytes) throw new MediaParseError(`track ${id}: '${box.type}' is truncated`);
    const count = head.readUInt32BE(headerBytes - 4);
    if (headerBytes + count * entrySize > payloadSize(box)) {
      throw new MediaParseError(`track ${id}: '${box.type}' lists ${count} entries, more than its box holds`);
    }
    return { offset: payloadStart(box) + headerBytes, count, entrySize };
  };
  const stszBox = findChild(stbl, 'stsz');
  if (!stszBox) {
    if (findChild(stbl, 'stz2')) throw new MediaParseError(`track ${id}: compact sample sizes (stz2) not supported`);
    throw new MediaParseError(`track ${id} has no stsz`);
  }
  const stszHead = await reader.read(payloadStart(stszBox), 12);
  if (stszHead.length < 12 || payloadSize(stszBox) < 12) throw new MediaParseError(`track ${id}: stsz is truncated`);
  const constantSize = stszHead.readUInt32BE(4);
  const sampleCount = stszHead.readUInt32BE(8);
  let sizes: TableRef | undefined;
  if (constantSize === 0) {
    sizes = await table(stszBox, 4, 12);
    if (sizes.count !== sampleCount) throw new MediaParseError(`track ${id}: stsz count mismatch`);
  }
  const stco = findChild(stbl, 'stco');
  const co64 = findChild(stbl, 'co64');
  if (!stco && !co64) throw new MediaParseError(`track ${id} has neither stco nor co64`);
  if (stco && co64) throw new MediaParseError(`track ${id} has both stco and co64`);
  const stscBox = findChild(stbl, 'stsc');
  if (!stscBox) throw new MediaParseError(`track ${id} has no stsc`);
  const sttsBox = findChild(stbl, 'stts');
  if (!sttsBox) throw new MediaParseError(`track ${id} has no stts`);
  const stssBox = findChild(stbl, 'stss');
  const tables: TrackTables = {
    constantSize,
    sampleCount,
    sizes,
    chunkOffsets: stco ? await table(stco, 4) : await table(co64!, 8),
    sampleToChunk: await table(stscBox, 12),
    timeToSample: await table(sttsBox, 8),
  };
  if (stssBox) tables.syncSamples = await table(stssBox, 4);
  return tables;
}

/**
 * Every chunk must sit inside one mdat payload and no two may overlap. Walking the chunks
 * in file order also yields the interleaving edges: the offsets where the data passes
 * from one track's chunk to another track's. Sorting is by a Uint32Array permutation,
 * so the walk costs at most 4 bytes per chunk beyond the extents.
 */
function scanChunkExtents(
  starts: Float64Array,
  ends: Float64Array,
  trackStarts: number[],
  payloads: ReadonlyArray<readonly [number, number]>,
): Float64Array {
  const n = starts.length;
  const switches = new Float64Builder(64);
  if (n === 0) return switches.toArray();
  let sorted = true;
  for (let i = 1; i < n; i++) {
    if (starts[i]! < starts[i - 1]!) {
      sorted = false;
      break;
    }
  }
  let order: Uint32Array | undefined;
  if (!sorted) {
    order = new Uint32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    order.sort((a, b) => starts[a]! - starts[b]! || ends[a]! - ends[b]!);
  }
  const trackOf = (i: number): number => {
    let t = trackStarts.length - 1;
    while (t > 0 && trackStarts[t]! > i) t--;
    return t;
  };
  let prevEnd = -1;
  let prevTrack = -1;
  let p = 0;
  for (let k = 0; k < n; k++) {
    const i = order ? order[k]! : k;
    const s = starts[i]!;
    const e = ends[i]!;
    if (e === s) continue; // an empty chunk takes no room
    if (s < prevEnd) throw new MediaParseError(`sample chunks overlap at offset ${s}`);
    while (p < payloads.length && payloads[p]![1] <= s) p++;
    const payload = payloads[p];
    if (!payload || s < payload[0] || e > payload[1]) {
      throw new MediaParseError(`sample data at offset ${s}..${e} lies outside every mdat`);
    }
    const track = trackOf(i);
    if (prevTrack !== -1 && track !== prevTrack) {
      if (prevEnd !== s && prevEnd > payload[0]) pushDistinct(switches, prevEnd);
      pushDistinct(switches, s);
    }
    prevEnd = e;
    prevTrack = track;
  }
  return switches.toArray();
}

function pushDistinct(b: Float64Builder, v: number): void {
  if (b.last() !== v) b.push(v);
}

function buildCutPlan(
  top: BoxHeader[],
  size: number,
  payloadThreshold: number,
  syncLists: Float64Array[],
  switches: Float64Array,
  minSpacing: number,
): CutPlan {
  const regions: CutRegion[] = [];
  const addMetadata = (start: number, end: number, box: string): void => {
    if (end <= start) return;
    const last = regions[regions.length - 1];
    if (last && last.kind === 'metadata' && last.end === start) {
      last.end = end;
      if (last.boxes[last.boxes.length - 1] !== box) last.boxes.push(box);
    } else {
      regions.push({ start, end, kind: 'metadata', boxes: [box] });
    }
  };
  for (const box of top) {
    const isPayload = box.type === 'mdat' || (box.type !== 'moov' && box.end - box.start >= payloadThreshold);
    if (isPayload && payloadSize(box) > 0) {
      addMetadata(box.start, payloadStart(box), box.type);
      regions.push({ start: payloadStart(box), end: box.end, kind: 'payload', boxes: [box.type] });
    } else {
      addMetadata(box.start, box.end, box.type);
    }
  }
  const forced: number[] = [];
  for (const r of regions) if (r.start > 0 && r.start < size) forced.push(r.start);

  // Merge keyframe offsets (one sorted list per video track, usually one track).
  let all: Float64Array;
  if (syncLists.length === 1) {
    all = syncLists[0]!; // owned by us: sorted and compacted in place
  } else {
    let total = 0;
    for (const l of syncLists) total += l.length;
    all = new Float64Array(total);
    let at = 0;
    for (const l of syncLists) {
      all.set(l, at);
      at += l.length;
    }
  }
  if (!isSorted(all)) all.sort();
  const payloadRegions = regions.filter((r) => r.kind === 'payload');
  let kept = 0;
  let last = Number.NEGATIVE_INFINITY;
  let r = 0;
  for (let i = 0; i < all.length; i++) {
    const v = all[i]!;
    while (r < payloadRegions.length && payloadRegions[r]!.end <= v) r++;
    const region = payloadRegions[r];
    if (!region || v < region.start) continue; // outside every payload
    if (v === region.start) {
      region.startsAtKeyframe = true; // a forced boundary already
      continue;
    }
    if (v === last || v - last < minSpacing) continue;
    all[kept++] = v;
    last = v;
  }
  // Interleaving edges strictly inside a payload (they are sorted: file order).
  let ks = 0;
  const edges = switches.slice();
  r = 0;
  for (let i = 0; i < edges.length; i++) {
    const v = edges[i]!;
    while (r < payloadRegions.length && payloadRegions[r]!.end <= v) r++;
    const region = payloadRegions[r];
    if (region && v > region.start) edges[ks++] = v;
  }
  return { forced, preferred: kept === all.length ? all : all.slice(0, kept), trackSwitches: edges.subarray(0, ks), regions };
}

function isSorted(a: Float64Array): boolean {
  for (let i = 1; i < a.length; i++) if (a[i]! < a[i - 1]!) return false;
  return true;
}

/** The payload of child box `type` inside a sample entry, scanning from `from`; undefined if absent or malformed. */
function findEntryChild(entry: Buffer, from: number, type: string): Buffer | undefined {
  let at = from;
  while (at + 8 <= entry.length) {
    const size = entry.readUInt32BE(at);
    if (size < 8 || at + size > entry.length) return undefined;
    if (entry.toString('latin1', at + 4, at + 8) === type) return entry.subarray(at + 8, at + size);
    at += size;
  }
  return undefined;
}

/**
 * Channel count from an `esds` box (ISO/IEC 14496-1 descriptors): ES_Descriptor (tag 3)
 * > DecoderConfigDescriptor (tag 4) > DecoderSpecificInfo (tag 5) = AudioSpecificConfig
 * (ISO/IEC 14496-3: objectType:5 [+6], frequencyIndex:4 [+24], channelConfiguration:4).
 * Undefined when absent, malformed, or the layout is in a program config element (0).
 */
export function aacChannelsFromEsds(esds: Buffer | undefined): number | undefined {
  if (!esds || esds.length < 4) return undefined;
  let at = 4; // version/flags
  const descriptor = (): { tag: number; end: number } | undefined => {
    if (at >= esds.length) return undefined;
    const tag = esds[at++]!;
    let len = 0;
    for (let k = 0; k < 4; k++) {
      if (at >= esds.length) return undefined;
      const b = esds[at++]!;
      len = len * 128 + (b & 0x7f);
      if ((b & 0x80) === 0) break;
    }
    return { tag, end: Math.min(esds.length, at + len) };
  };
  const es = descriptor();
  if (!es || es.tag !== 3 || at + 3 > es.end) return undefined;
  const flags = esds[at + 2]!;
  at += 3;
  if (flags & 0x80) at += 2;
  if (flags & 0x40) at += 1 + (esds[at] ?? 0);
  if (flags & 0x20) at += 2;
  const dc = descriptor();
  if (!dc || dc.tag !== 4 || at + 13 > dc.end) return undefined;
  if (esds[at] !== 0x40) return undefined; // not MPEG-4 audio
  at += 13;
  const dsi = descriptor();
  if (!dsi || dsi.tag !== 5 || dsi.end - at < 2) return undefined;
  // Read the AudioSpecificConfig as a bit string.
  let bit = at * 8;
  const bits = (n: number): number => {
    let v = 0;
    for (let k = 0; k < n; k++, bit++) {
      if (bit >= dsi.end * 8) throw new MediaParseError('short AudioSpecificConfig');
      v = v * 2 + ((esds[bit >> 3]! >> (7 - (bit & 7))) & 1);
    }
    return v;
  };
  try {
    if (bits(5) === 31) bits(6);
    if (bits(4) === 15) bits(24);
    const config = bits(4);
    if (config >= 1 && config <= 6) return config;
    if (config === 7) return 8;
    return undefined;
  } catch {
    return undefined;
  }
}

function need(b: Buffer, n: number, what: string): void {
  if (b.length < n) throw new MediaParseError(`${what} is too short`);
}

function u64(b: Buffer, at: number): number {
  const hi = b.readUInt32BE(at);
  const lo = b.readUInt32BE(at + 4);
  if (hi > 0x1fffff) throw new MediaParseError('64-bit value beyond 2^53');
  return hi * 0x1_0000_0000 + lo;
}

function round(v: number, decimals: number): number {
  const f = 10 ** decimals;
  return Math.round(v * f) / f;
}
