/**
 * A sprite sheet for scrubbing: thumbnails of a clip at regular times, tiled left to right
 * and top to bottom in one JPEG, and a WebVTT index whose cues name each thumbnail's
 * rectangle with a media fragment (`sprite.jpg#xywh=x,y,w,h`, W3C Media Fragments URI 1.0
 * §4.2.2, the form web players' thumbnail tracks read). Pure: the layout, the ffmpeg filter
 * that draws it, and the VTT text.
 */
import { formatDuration } from '../media/format-structure.js';

/** At most this many thumbnails, whatever the length: the sheet stays a few hundred KB. */
export const SPRITE_MAX_THUMBS = 100;
/** Thumbnails per row. */
export const SPRITE_COLUMNS = 10;
/** Thumbnail width in pixels (height follows the aspect, even). */
export const SPRITE_THUMB_WIDTH = 160;

export interface SpriteLayout {
  /** Seconds between thumbnails (whole seconds, at least 1). */
  interval: number;
  count: number;
  columns: number;
  rows: number;
  thumbWidth: number;
  thumbHeight: number;
  /** The sheet's size: columns x thumbWidth by rows x thumbHeight. */
  width: number;
  height: number;
}

/** The layout for a clip of `durationSeconds` whose picture is `width`x`height`. */
export function spriteLayout(durationSeconds: number, width: number, height: number): SpriteLayout {
  if (!(durationSeconds > 0) || !(width > 0) || !(height > 0)) throw new RangeError(`no sprite for ${durationSeconds} s of ${width}x${height}`);
  const interval = Math.max(1, Math.ceil(durationSeconds / SPRITE_MAX_THUMBS));
  // a thumbnail for every interval that starts before the end, but for a sliver under a
  // tenth of an interval (2.002 s of 29.97 fps is two thumbnails, not three): the last cue
  // runs to the end instead
  const count = Math.max(1, Math.ceil(durationSeconds / interval - 0.1));
  const thumbWidth = Math.min(SPRITE_THUMB_WIDTH, width - (width % 2));
  const thumbHeight = Math.max(2, 2 * Math.round((thumbWidth * height) / width / 2));
  const columns = Math.min(count, SPRITE_COLUMNS);
  const rows = Math.ceil(count / columns);
  return { interval, count, columns, rows, thumbWidth, thumbHeight, width: columns * thumbWidth, height: rows * thumbHeight };
}

/**
 * The filter that turns a clip into its sheet (one output frame): a frame per interval,
 * scaled, then `afterScale` (a LUT: applied to thumbnails, not to full frames), tiled.
 */
export function spriteFilter(l: SpriteLayout, afterScale?: string): string {
  const parts = [`fps=1/${l.interval}`, `scale=${l.thumbWidth}:${l.thumbHeight}`, 'setsar=1'];
  if (afterScale) parts.push(afterScale);
  parts.push(`tile=${l.columns}x${l.rows}`);
  return parts.join(',');
}

/** WebVTT's HH:MM:SS.mmm: the form `git dits inspect` prints durations in. */
const vttTime = formatDuration;

/** The WebVTT index: one cue per thumbnail, from its time to the next's (the last's to the end). */
export function spriteVtt(l: SpriteLayout, durationSeconds: number, sheetName: string): string {
  const lines = ['WEBVTT', ''];
  for (let i = 0; i < l.count; i++) {
    const start = i * l.interval;
    const end = i === l.count - 1 ? durationSeconds : Math.min((i + 1) * l.interval, durationSeconds);
    const x = (i % l.columns) * l.thumbWidth;
    const y = Math.floor(i / l.columns) * l.thumbHeight;
    lines.push(`${vttTime(start)} --> ${vttTime(Math.max(end, start + 0.001))}`, `${sheetName}#xywh=${x},${y},${l.thumbWidth},${l.thumbHeight}`, '');
  }
  return lines.join('\n');
}

/** A cue of a sprite VTT, parsed back (for checks and the web page). */
export interface SpriteCue {
  start: number;
  end: number;
  image: string;
  x: number;
  y: number;
  w: number;
  h: number;
}

/** Parses a VTT written by spriteVtt (cues of `HH:MM:SS.mmm --> ...` and `name#xywh=`). */
export function parseSpriteVtt(text: string): SpriteCue[] {
  const cues: SpriteCue[] = [];
  const toSeconds = (t: string): number => {
    const [h, m, s] = t.split(':').map(Number) as [number, number, number];
    return h * 3600 + m * 60 + s;
  };
  const re = /(\d{2}:\d{2}:\d{2}\.\d{3}) --> (\d{2}:\d{2}:\d{2}\.\d{3})\r?\n([^\r\n#]+)#xywh=(\d+),(\d+),(\d+),(\d+)/g;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    cues.push({ start: toSeconds(m[1]!), end: toSeconds(m[2]!), image: m[3]!, x: Number(m[4]), y: Number(m[5]), w: Number(m[6]), h: Number(m[7]) });
  }
  return cues;
}
