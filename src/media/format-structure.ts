/**
 * Human text for `git dits inspect` and the `diff=dits` driver. Pure: structure in,
 * lines out; the CLI decides where they go and adds what only it knows (sizes, chunk reuse).
 */
import type { ContainerAnalysis, MediaStructure, MediaTrack } from './media-structure.js';

const CODEC_NAMES: Record<string, string> = {
  avc1: 'H.264', avc3: 'H.264', hvc1: 'H.265/HEVC', hev1: 'H.265/HEVC', av01: 'AV1', vp09: 'VP9', mp4v: 'MPEG-4 Visual',
  apch: 'ProRes 422 HQ', apcn: 'ProRes 422', apcs: 'ProRes 422 LT', apco: 'ProRes 422 Proxy', ap4h: 'ProRes 4444', ap4x: 'ProRes 4444 XQ',
  aprh: 'ProRes RAW HQ', aprn: 'ProRes RAW', AVdh: 'DNxHR', AVdn: 'DNxHD', jpeg: 'Motion JPEG', mjpa: 'Motion JPEG A', mjpb: 'Motion JPEG B',
  dvh1: 'Dolby Vision HEVC', 'xdvc': 'XDCAM', mx5p: 'IMX', 'dvc': 'DV', dvcp: 'DV PAL', 'raw': 'uncompressed', v210: 'uncompressed 10-bit 4:2:2',
  mp4a: 'AAC', 'ac-3': 'AC-3', 'ec-3': 'E-AC-3', Opus: 'Opus', alac: 'Apple Lossless', fLaC: 'FLAC', '.mp3': 'MP3',
  lpcm: 'PCM', sowt: 'PCM', twos: 'PCM', in24: 'PCM', in32: 'PCM', fl32: 'PCM float', fl64: 'PCM float', ipcm: 'PCM', fpcm: 'PCM float', NONE: 'PCM',
  tmcd: 'timecode', text: 'text', tx3g: 'timed text', c608: 'CEA-608 captions', c708: 'CEA-708 captions',
};

/** 'ProRes 422 HQ (apch)', or the code alone when it has no known name. */
export function describeCodec(codec: string): string {
  const name = CODEC_NAMES[codec];
  return name && name !== codec ? `${name} (${codec})` : codec || '(none)';
}

/** Seconds as HH:MM:SS.mmm. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return String(seconds);
  const ms = Math.round(seconds * 1000);
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor(ms / 60_000) % 60;
  const s = Math.floor(ms / 1000) % 60;
  const pad = (v: number, n = 2): string => String(v).padStart(n, '0');
  return `${pad(h)}:${pad(m)}:${pad(s)}.${pad(ms % 1000, 3)}`;
}

/** One line describing a track, without its id. */
export function describeTrack(t: MediaTrack): string {
  const parts: string[] = [t.type === 'other' && t.handler ? `other (${t.handler.trim()})` : t.type, describeCodec(t.codec)];
  if (t.width !== undefined && t.height !== undefined) parts.push(`${t.width}x${t.height}`);
  if (t.frameRate !== undefined) parts.push(`${t.frameRate} fps`);
  if (t.sampleRate !== undefined) parts.push(`${t.sampleRate} Hz`);
  if (t.channels !== undefined) parts.push(`${t.channels} ch`);
  if (t.bitsPerSample !== undefined) parts.push(`${t.bitsPerSample}-bit`);
  if (t.type === 'video') {
    const sync = t.syncSampleCount === undefined ? '' : t.syncSampleCount === t.sampleCount ? ', all keyframes' : `, ${t.syncSampleCount} keyframes`;
    parts.push(`${t.sampleCount} frames${sync}`);
  } else {
    parts.push(`${t.sampleCount} samples`);
  }
  parts.push(formatDuration(t.durationSeconds));
  return parts.join(', ');
}

function trimBrand(b: string): string {
  return b.replace(/[ \0]+$/, '');
}

/** Multi-line text for `git dits inspect`, one field per line, no trailing newline. */
export function formatStructure(s: MediaStructure): string {
  const lines: string[] = [];
  const container = s.container === 'mov' ? 'QuickTime MOV' : 'MP4';
  lines.push(`container:  ${container}${s.brands.length ? ` (brands: ${s.brands.map(trimBrand).join(', ')})` : ''}`);
  lines.push(`duration:   ${formatDuration(s.durationSeconds)}`);
  if (s.startTimecode) lines.push(`timecode:   ${s.startTimecode}${s.startTimecode.includes(';') ? ' (drop-frame)' : ''}`);
  if (s.creationTime) lines.push(`created:    ${s.creationTime}`);
  lines.push(`layout:     ${s.fastStart ? 'moov before mdat (fast start)' : 'moov after mdat'}`);
  lines.push(`tracks:     ${s.tracks.length}`);
  for (const t of s.tracks) lines.push(`  #${t.id} ${describeTrack(t)}`);
  return lines.join('\n');
}

/** `formatStructure`, or the reason the file is chunked plainly. */
export function formatAnalysis(a: ContainerAnalysis): string {
  if (a.kind === 'unknown' || !a.structure) return `container:  not parsed, plain chunking (${a.fallbackReason ?? 'unknown format'})`;
  return formatStructure(a.structure);
}

/**
 * Media-level differences between two versions, one line each, for `git diff`.
 * `undefined` stands for a version that was not parsed as media. Returns [] when
 * nothing differs in media terms. Tracks are matched by id.
 */
export function diffStructures(a: MediaStructure | undefined, b: MediaStructure | undefined): string[] {
  if (!a && !b) return [];
  if (!a) return [`media structure: not parsed -> ${b!.container}, ${formatDuration(b!.durationSeconds)}, ${b!.tracks.length} tracks`];
  if (!b) return [`media structure: ${a.container}, ${formatDuration(a.durationSeconds)}, ${a.tracks.length} tracks -> not parsed`];
  const lines: string[] = [];
  const change = (label: string, x: string | undefined, y: string | undefined): void => {
    if (x !== y) lines.push(`${label}: ${x ?? '(none)'} -> ${y ?? '(none)'}`);
  };
  change('container', a.container, b.container);
  change('brands', a.brands.map(trimBrand).join(', '), b.brands.map(trimBrand).join(', '));
  if (a.durationSeconds !== b.durationSeconds) {
    const delta = b.durationSeconds - a.durationSeconds;
    lines.push(`duration: ${formatDuration(a.durationSeconds)} -> ${formatDuration(b.durationSeconds)} (${delta >= 0 ? '+' : '-'}${Math.abs(delta).toFixed(3)} s)`);
  }
  change('start timecode', a.startTimecode, b.startTimecode);
  change('creation time', a.creationTime, b.creationTime);
  if (a.fastStart !== b.fastStart) lines.push(`layout: ${a.fastStart ? 'fast start' : 'moov after mdat'} -> ${b.fastStart ? 'fast start' : 'moov after mdat'}`);

  const byId = new Map(b.tracks.map((t) => [t.id, t]));
  for (const ta of a.tracks) {
    const tb = byId.get(ta.id);
    if (!tb) {
      lines.push(`track #${ta.id} removed: ${describeTrack(ta)}`);
      continue;
    }
    byId.delete(ta.id);
    const diffs: string[] = [];
    const field = (label: string, x: string | number | undefined, y: string | number | undefined): void => {
      if (x !== y) diffs.push(`${label} ${x ?? '(none)'} -> ${y ?? '(none)'}`);
    };
    field('type', ta.type, tb.type);
    if (ta.codec !== tb.codec) diffs.push(`codec ${describeCodec(ta.codec)} -> ${describeCodec(tb.codec)}`);
    const res = (t: MediaTrack): string | undefined => (t.width !== undefined ? `${t.width}x${t.height}` : undefined);
    field('resolution', res(ta), res(tb));
    field('frame rate', ta.frameRate, tb.frameRate);
    field('sample rate', ta.sampleRate, tb.sampleRate);
    field('channels', ta.channels, tb.channels);
    field('bits', ta.bitsPerSample, tb.bitsPerSample);
    field(ta.type === 'video' ? 'frames' : 'samples', ta.sampleCount, tb.sampleCount);
    field('keyframes', ta.syncSampleCount, tb.syncSampleCount);
    if (ta.durationSeconds !== tb.durationSeconds) diffs.push(`duration ${formatDuration(ta.durationSeconds)} -> ${formatDuration(tb.durationSeconds)}`);
    if (diffs.length > 0) lines.push(`track #${ta.id} ${ta.type}: ${diffs.join(', ')}`);
  }
  for (const tb of byId.values()) lines.push(`track #${tb.id} added: ${describeTrack(tb)}`);
  return lines;
}
