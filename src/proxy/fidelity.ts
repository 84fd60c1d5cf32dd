/**
 * Fidelity of a proxy or preview, checked, not assumed: after encoding, the output is parsed
 * with Dits' own container parser (analyzeFile, the one that cuts chunks and fills
 * manifests) and compared with what the source is (SourceFacts, from the original's
 * MediaStructure and ffprobe). What ffmpeg's own probe of the output adds is only what
 * MediaStructure does not hold: channel layouts, the tmcd reel name, metadata tags.
 *
 * A proxy must have the source's frame count, frame rate, duration (within one frame; the
 * difference is reported), start timecode (drop-frame kept), audio tracks with their
 * channels and layouts, reel name and clip metadata. A preview (small H.264 for the web)
 * keeps the picture's timing but not the audio layout (one stereo track) nor the tmcd track,
 * and must be laid out for progressive download (moov first).
 */
import { analyzeFile } from '../media/analyze-container.js';
import type { Ffmpeg, ProbeResult, Rational } from '../media/ffmpeg.js';

/** What the source is, as far as a proxy must keep it. */
export interface SourceFacts {
  /** Frames the output must have: the source's, or, for a variable-rate source made constant, its duration times the rate. */
  frames: number;
  /** The (nominal) rate the output must have. */
  frameRate: Rational;
  /** Of the video, in seconds. */
  durationSeconds: number;
  width: number;
  height: number;
  startTimecode?: string;
  reelName?: string;
  audio: { channels: number; layout?: string }[];
  /** Global metadata tags that must be kept, key -> value. */
  tags: Record<string, string>;
  /** True when the source's rate varies and the output was made constant. */
  variableRate: boolean;
}

export type FidelityKind = 'proxy' | 'preview';

export interface FidelityResult {
  ok: boolean;
  /** Every mismatch, one sentence each (empty when ok). */
  problems: string[];
  /** What was compared: original and output values, and the measured differences. */
  report: Record<string, unknown>;
}

/** Global tags that describe the file's encoding, not the clip: never compared. */
const ENCODING_TAGS = new Set(['major_brand', 'minor_version', 'compatible_brands', 'encoder', 'timecode', 'handler_name', 'vendor_id', 'creation_time']);

/** The tags of `tags` that are the clip's own metadata (reel, title, camera...), to be kept. */
export function clipTags(tags: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(tags)) if (!ENCODING_TAGS.has(k.toLowerCase())) out[k] = v;
  return out;
}

const rate = (r: Rational): number => r.num / r.den;
const round3 = (x: number): number => Math.round(x * 1000) / 1000;

/**
 * Parses `output` with Dits' parser (and ffprobe, for what MediaStructure does not hold) and
 * compares it with `source`. Never throws for what the output holds; rejects when ffprobe
 * cannot run on it.
 */
export async function checkFidelity(ff: Ffmpeg, output: string, source: SourceFacts, kind: FidelityKind, o: { signal?: AbortSignal } = {}): Promise<FidelityResult> {
  const problems: string[] = [];
  const report: Record<string, unknown> = { parser: 'dits' };
  const analysis = await analyzeFile(output);
  if (analysis.kind === 'unknown' || analysis.structure === undefined) {
    return { ok: false, problems: [`Dits' parser cannot read the ${kind}: ${analysis.fallbackReason ?? 'unknown container'}`], report };
  }
  const s = analysis.structure;
  const video = s.tracks.filter((t) => t.type === 'video');
  if (video.length !== 1) {
    return { ok: false, problems: [`the ${kind} has ${video.length} video tracks, not 1`], report };
  }
  const v = video[0]!;
  const fps = rate(source.frameRate);
  const oneFrame = 1 / fps;

  // frames: exact for a constant-rate source; a variable-rate one made constant has its
  // duration times the rate, which the last frame's length can round either way
  const frameSlack = source.variableRate ? 1 : 0;
  report.frames = { original: source.frames, [kind]: v.sampleCount };
  if (Math.abs(v.sampleCount - source.frames) > frameSlack) {
    problems.push(`frame count ${v.sampleCount}, the original has ${source.frames}`);
  }
  report.frameRate = { original: round3(fps), [kind]: v.frameRate };
  if (v.frameRate === undefined || Math.abs(v.frameRate - round3(fps)) > 0.0015) {
    problems.push(`frame rate ${v.frameRate ?? 'unknown'} fps, the original's is ${round3(fps)}`);
  }
  const difference = v.durationSeconds - source.durationSeconds;
  report.durationSeconds = { original: source.durationSeconds, [kind]: v.durationSeconds, difference: round6(difference), oneFrame: round6(oneFrame) };
  // "within one frame": a hair of slack for the timescales' rounding
  if (Math.abs(difference) > oneFrame + 1e-6) {
    problems.push(`duration ${v.durationSeconds.toFixed(3)} s, the original's is ${source.durationSeconds.toFixed(3)} s (${difference > 0 ? '+' : ''}${difference.toFixed(3)} s, more than one frame)`);
  }
  report.size = { original: `${source.width}x${source.height}`, [kind]: `${v.width}x${v.height}` };
  if (v.width === undefined || v.height === undefined || v.height > source.height || v.width > source.width + 1) {
    problems.push(`picture ${v.width}x${v.height} is larger than the original's ${source.width}x${source.height}`);
  }

  const probe = await ff.probe(output, { signal: o.signal });
  if (kind === 'proxy') {
    checkProxyExtras(source, s.startTimecode, probe, s.tracks.filter((t) => t.type === 'audio').map((t) => t.channels ?? 0), problems, report);
  } else {
    report.fastStart = s.fastStart;
    if (!s.fastStart) problems.push('the preview is not laid out for progressive download (moov after the media data)');
    const audio = s.tracks.filter((t) => t.type === 'audio').length;
    report.audioTracks = { original: source.audio.length, preview: audio };
    if ((source.audio.length > 0) !== (audio > 0)) problems.push(`the preview has ${audio} audio tracks, the original ${source.audio.length}`);
  }
  return { ok: problems.length === 0, problems, report };
}

function checkProxyExtras(source: SourceFacts, startTimecode: string | undefined, probe: ProbeResult, channels: number[], problems: string[], report: Record<string, unknown>): void {
  if (source.startTimecode !== undefined || startTimecode !== undefined) {
    report.startTimecode = { original: source.startTimecode ?? null, proxy: startTimecode ?? null };
    if (source.startTimecode !== startTimecode) problems.push(`start timecode ${startTimecode ?? 'missing'}, the original's is ${source.startTimecode ?? 'none'}`);
  }
  const layouts = probe.streams.flatMap((st) => (st.type === 'audio' ? [st.channelLayout] : []));
  const got = channels.map((c, i) => ({ channels: c, ...(layouts[i] !== undefined ? { layout: layouts[i] } : {}) }));
  report.audio = { original: source.audio, proxy: got };
  if (got.length !== source.audio.length) {
    problems.push(`${got.length} audio tracks, the original has ${source.audio.length}`);
  } else {
    source.audio.forEach((a, i) => {
      const g = got[i]!;
      if (g.channels !== a.channels) problems.push(`audio track ${i + 1} has ${g.channels} channels, the original's ${a.channels}`);
      else if (a.layout !== undefined && g.layout !== a.layout) problems.push(`audio track ${i + 1} has the layout ${g.layout ?? 'unknown'}, the original's is ${a.layout}`);
    });
  }
  const reel = probe.streams.find((st) => st.type !== 'audio' && st.tags.reel_name !== undefined)?.tags.reel_name;
  if (source.reelName !== undefined || reel !== undefined) {
    report.reelName = { original: source.reelName ?? null, proxy: reel ?? null };
    if (reel !== source.reelName) problems.push(`reel name ${reel ?? 'missing'}, the original's is ${source.reelName ?? 'none'}`);
  }
  const kept = clipTags(probe.tags);
  const missing = Object.entries(source.tags)
    .filter(([k, v]) => kept[k] !== v)
    .map(([k]) => k);
  report.metadata = { checked: Object.keys(source.tags), missing };
  if (missing.length > 0) problems.push(`clip metadata not kept: ${missing.join(', ')}`);
}

function round6(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}
