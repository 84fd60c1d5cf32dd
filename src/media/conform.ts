/**
 * Conform: from a timeline's edit list and what ffprobe says of each source, the list of
 * segments a render plays, each exactly on frames (issue 16, "Render on demand").
 *
 * A segment is a run of frames [sourceStart, sourceStart + frames) of one file, or a gap
 * (black and silence) where no clip plays. Source positions are frame indexes from the
 * file's first frame: FCPXML/xmeml give seconds from the media's start (times the source's
 * rate), an EDL gives source timecode (minus the file's own start timecode). A source
 * whose rate differs from the timeline's would need a frame-rate conversion, and a range
 * outside the file means the project was cut against other media: both are refused, each
 * named, as the timeline's unsupported items are.
 *
 * Pure: the CLI probes the files and runs ffmpeg (ffmpeg.ts builds the arguments).
 */
import { DitsUserError } from '../errors.js';
import { type Rat, cmp, framesAt, formatRate, mul, nearestFrame, nominalRate } from './nle/rational-time.js';
import type { Timeline, TimelineClip } from './nle/timeline.js';
import { formatTimecode, parseTimecode } from './timecode.js';

/** What the render needs to know of one source file (from ffprobe). */
export interface ConformSource {
  /** Repo-relative path, for messages. */
  path: string;
  /** The file ffmpeg reads. */
  file: string;
  frameRate: Rat;
  /** Video frames in the file. */
  frames: number;
  width: number;
  height: number;
  pixelFormat?: string;
  /** The file's start timecode ("01:00:00:00"), needed to place an EDL's source timecodes. */
  startTimecode?: string;
  /**
   * Its audio: `streams` audio streams (cameras often record one mono stream per channel),
   * `channels` in all; `layout` of a single stream.
   */
  audio: { streams: number; channels: number; layout?: string; sampleRate: number } | null;
}

export type ConformSegment =
  | {
      kind: 'clip';
      /** The timeline clip's index (1-based). */
      clip: number;
      label: string;
      path: string;
      file: string;
      /** First frame, as an index from the file's first frame. */
      sourceStart: number;
      frames: number;
      recordStart: number;
      /** The clip's audio plays (else silence). */
      audio: boolean;
      /** Audio streams of the source, merged into one in order (amerge). */
      audioStreams: number;
      /** The source's size differs from the output's: scaled to fit, centred on black. */
      scale: boolean;
    }
  | { kind: 'gap'; recordStart: number; frames: number };

export interface ConformPlan {
  frameRate: Rat;
  width: number;
  height: number;
  /** Frames in the output. */
  frames: number;
  startTimecode: string;
  segments: ConformSegment[];
  /** Output audio (null: no source has any). */
  audio: { layout: string; sampleRate: number } | null;
  /** The sources' pixel format when they all share one. */
  pixelFormat?: string;
  warnings: string[];
}

/**
 * Segments in record order, gaps filled. `pathOf(clip)` is the repo path the clip's media
 * resolved to; `sources` holds every such path. Throws DitsUserError 'render-source-mismatch'
 * listing every clip whose source cannot be conformed as it is.
 */
export function planConform(timeline: Timeline, sources: ReadonlyMap<string, ConformSource>, pathOf: (clip: TimelineClip) => string): ConformPlan {
  const rate = timeline.frameRate;
  if (!rate) throw new Error('planConform: the timeline has no frame rate yet');
  const problems: string[] = [];
  const warnings: string[] = [];
  const segments: ConformSegment[] = [];
  const clips = [...timeline.clips].sort((a, b) => a.recordStart - b.recordStart);
  const first = sources.get(pathOf(clips[0] ?? timeline.clips[0]!));
  const width = timeline.width ?? first?.width ?? 1920;
  const height = timeline.height ?? first?.height ?? 1080;
  let pos = 0;
  for (const clip of clips) {
    const path = pathOf(clip);
    const src = sources.get(path);
    if (!src) throw new Error(`planConform: no source for ${path}`);
    if (cmp(src.frameRate, rate) !== 0) {
      problems.push(`${clip.label}: ${path} is ${formatRate(src.frameRate)} fps, the timeline ${formatRate(rate)} fps (a frame-rate conversion, not a cut)`);
      continue;
    }
    let start: number;
    if ('seconds' in clip.source) {
      const f = framesAt(clip.source.seconds, src.frameRate);
      start = f ?? nearestFrame(clip.source.seconds, src.frameRate);
      if (f === null) warnings.push(`${clip.label}: source in falls between frames of ${path}; rounded to frame ${start}`);
    } else {
      const nominal = nominalRate(src.frameRate);
      const fileStart = src.startTimecode ? parseTimecode(src.startTimecode, nominal).frame : 0;
      start = clip.source.timecodeFrames - fileStart;
      if (start < 0 || start + clip.frames > src.frames) {
        problems.push(
          `${clip.label}: source ${clip.source.timecode}-${formatTimecode(clip.source.timecodeFrames + clip.frames, nominal, clip.source.timecode.includes(';'))} is outside ${path} (${src.startTimecode ?? 'no timecode, taken as 00:00:00:00'} + ${src.frames} frames)`,
        );
        continue;
      }
    }
    if (start < 0 || start + clip.frames > src.frames) {
      problems.push(`${clip.label}: frames ${start}-${start + clip.frames - 1} of ${path} asked for, the file has ${src.frames}`);
      continue;
    }
    if (clip.recordStart > pos) segments.push({ kind: 'gap', recordStart: pos, frames: clip.recordStart - pos });
    segments.push({
      kind: 'clip',
      clip: clip.index,
      label: clip.label,
      path,
      file: src.file,
      sourceStart: start,
      frames: clip.frames,
      recordStart: clip.recordStart,
      audio: clip.audio && src.audio !== null,
      audioStreams: src.audio?.streams ?? 0,
      scale: src.width !== width || src.height !== height,
    });
    pos = clip.recordStart + clip.frames;
  }
  if (problems.length) {
    throw new DitsUserError('render-source-mismatch', `${problems.length} clip(s) cannot be conformed from the files in the repository:\n  ${problems.join('\n  ')}`, {
      hint: 'the project was cut against other media (another version or frame rate): relink it in the editor, or check out the version it was cut with',
    });
  }
  if (timeline.durationFrames > pos) segments.push({ kind: 'gap', recordStart: pos, frames: timeline.durationFrames - pos });
  const used = [...new Set(segments.flatMap((s) => (s.kind === 'clip' ? [s.path] : [])))].map((p) => sources.get(p)!);
  const withAudio = used.filter((s) => s.audio);
  let audio: ConformPlan['audio'] = null;
  if (withAudio.length) {
    // several streams are merged into their channel count, without a speaker layout ("4c")
    const layouts = new Set(withAudio.map((s) => (s.audio!.streams === 1 && s.audio!.layout) || `${s.audio!.channels}c`));
    const rates = new Set(withAudio.map((s) => s.audio!.sampleRate));
    const layout = layouts.size === 1 ? [...layouts][0]! : 'stereo';
    if (layouts.size > 1) warnings.push(`the sources' audio layouts differ (${[...layouts].join(', ')}): mixed to stereo`);
    audio = { layout, sampleRate: rates.size === 1 ? [...rates][0]! : 48000 };
  }
  const formats = new Set(used.map((s) => s.pixelFormat));
  for (const s of segments) if (s.kind === 'clip' && s.scale) warnings.push(`${s.label}: ${s.path} is scaled to ${width}x${height}`);
  return {
    frameRate: rate,
    width,
    height,
    frames: segments.reduce((n, s) => n + s.frames, 0),
    startTimecode: timeline.startTimecode,
    segments,
    audio,
    pixelFormat: formats.size === 1 ? [...formats][0] : undefined,
    warnings,
  };
}

/** Seconds of `frames` at `rate`, for messages. */
export function framesToSeconds(frames: number, rate: Rat): number {
  const s = mul({ num: frames, den: 1 }, { num: rate.den, den: rate.num });
  return s.num / s.den;
}
