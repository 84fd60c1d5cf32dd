/**
 * Making the variants of one original: its proxy (ProRes 422 Proxy, DNxHR LB or H.264, in a
 * .mov), a poster JPEG, a sprite sheet of thumbnails with its WebVTT index, and a small H.264
 * preview MP4 for the web page. Each is an outcome: `ok` with its finished file in `workDir`,
 * or `failed` with the reason and ffmpeg's last lines.
 *
 * Contract (PLAN16 A):
 * - Bad media never throws: an empty file, one ffprobe cannot read (corrupt, truncated, not
 *   media), audio only, a still image, a codec this ffmpeg cannot decode, an encode that
 *   fails, or an output that does not match the original (fidelity.ts) are `failed` outcomes.
 * - It throws only for the world: ffmpeg missing (openFfmpeg's errors), an abort (the
 *   FfmpegError `ffmpeg-aborted`, or the signal's reason), the disk (DitsUserError
 *   `disk-full` for ENOSPC / EDQUOT, ffmpeg's or ours) and a local source that cannot be
 *   read (`variant-source-unreadable`).
 * - Finished outputs of an earlier run in `workDir`, for the kinds asked, are removed first.
 * - Outputs are written under temporary names in `workDir` (`.tmp-...`) and renamed to
 *   their final names (OUTPUT_NAMES) only once finished and checked; whatever happens, no
 *   temporary file is left behind and no partial output has a final name. When it throws,
 *   the outputs this call finished are removed too (no outcome names them).
 * - Every `ok` proxy and preview has been parsed by Dits' own parser and compared with the
 *   original; the comparison is the outcome's `fidelity`.
 *
 * The poster, sprite and preview are made from the proxy when it was made here (a 1080p
 * ProRes Proxy decodes many times faster than a 4K camera original, and it carries the LUT
 * and the constant frame rate already), else from the source with the same LUT.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { DitsUserError, errnoCode } from '../errors.js';
import {
  FfmpegError,
  buildProxyEncodeArgs,
  buildVideoFilter,
  escapeFilterValue,
  fileArg,
  inputArg,
  type AudioStream,
  type Ffmpeg,
  type ProbeResult,
  type ProxyAudio,
  type Rational,
  type VideoStream,
} from '../media/ffmpeg.js';
import type { MediaStructure } from '../media/media-structure.js';
import { VARIANT_KINDS, type VariantKind } from '../manifest/variant-record.js';
import { checkFidelity, clipTags, type SourceFacts } from './fidelity.js';
import type { Recipe } from './recipe.js';
import { spriteFilter, spriteLayout, spriteVtt } from './sprite.js';

export type { VariantKind };
/** Every kind, in the order they are made (the proxy first: the others are made from it). */
export const MADE_KINDS: readonly VariantKind[] = VARIANT_KINDS;

/** The finished files' names in `workDir`. The VTT's cues name the sheet by this name. */
export const OUTPUT_NAMES: Readonly<Record<VariantKind, string>> = {
  proxy: 'proxy.mov',
  poster: 'poster.jpg',
  sprite: 'sprite.jpg',
  'sprite-vtt': 'sprite.vtt',
  preview: 'preview.mp4',
};

/** The poster is at most this many lines high (a web page's hero image). */
export const POSTER_MAX_HEIGHT = 720;
/** The web preview is at most this many lines high. */
export const PREVIEW_MAX_HEIGHT = 360;

export interface MakeInput {
  /** A file path, or an http://127.0.0.1 URL ffmpeg can read with ranges. */
  source: string;
  /** For messages. */
  displayPath: string;
  /** The original's structure from Dits' parser (its manifest), null when it has none (MXF, MKV...). */
  originalMedia: MediaStructure | null;
}

export type VariantOutcome =
  | { kind: VariantKind; recipe: string; status: 'ok'; file: string; warnings: string[]; fidelity?: Record<string, unknown> }
  | { kind: VariantKind; recipe: string; status: 'failed'; reason: string; ffmpegTail: string[]; warnings: string[] };

export interface MakeVariantsOptions {
  ffmpeg: Ffmpeg;
  /** Default: all. `sprite` and `sprite-vtt` are made together (either asks for both files). */
  kinds?: VariantKind[];
  signal?: AbortSignal;
  /** 0..1 over all the kinds asked for, never decreasing; 1 when done. */
  onProgress?: (fraction: number) => void;
}

/**
 * The recipe a variant of `kind` is recorded under: the proxy's is the whole recipe key;
 * the poster, sprite and preview depend only on the LUT (`lut=<sha8>`, '' without one).
 */
export function variantRecipe(kind: VariantKind, recipe: Recipe): string {
  if (kind === 'proxy') return recipe.key;
  return recipe.lut ? `lut=${recipe.lut.sha256.slice(0, 8)}` : '';
}

/** A property of the source or of an output that makes a variant fail (never thrown out of makeVariants). */
class MediaProblem extends Error {
  constructor(
    readonly reason: string,
    readonly tail: string[] = [],
  ) {
    super(reason);
  }
}

/** ffmpeg's words for a full disk. */
const DISK_FULL = /No space left on device|Disk quota exceeded/i;

function diskFull(where: string, what: string, cause: unknown): DitsUserError {
  return new DitsUserError('disk-full', `no space left in ${where} while making the ${what}`, {
    hint: 'free some space (or point the work directory at a larger disk) and run it again; nothing was recorded for it',
    cause,
  });
}

/** Why an ffmpeg run failed, in a sentence: a missing decoder named, else how it ended. */
export function failureReason(err: Pick<FfmpegError, 'tool' | 'status' | 'signal' | 'lastLines'>, what: string): string {
  const decoder = err.lastLines.map((l) => /Decoder \(codec (\S+)\) not found/.exec(l)).find((m) => m !== null);
  if (decoder) return `this ffmpeg has no decoder for its codec (${decoder[1]}), so no ${what}`;
  return `ffmpeg could not make the ${what} (${err.tool} ${err.signal ? `killed by ${err.signal}` : `exit ${err.status}`})`;
}

/**
 * Turns what an ffmpeg run threw into a MediaProblem (the source or the output is at
 * fault), or rethrows it (abort, timeout, disk, anything else).
 */
function asProblem(err: unknown, what: string, workDir: string): MediaProblem {
  if (err instanceof FfmpegError && err.code === 'ffmpeg-failed') {
    if (err.lastLines.some((l) => DISK_FULL.test(l))) throw diskFull(workDir, what, err);
    return new MediaProblem(failureReason(err, what), err.lastLines);
  }
  const code = errnoCode(err);
  if (code === 'ENOSPC' || code === 'EDQUOT') throw diskFull(workDir, what, err);
  throw err;
}

/** What is known of the source before any variant is made. */
interface SourceInfo {
  facts: SourceFacts;
  /** The rate outputs are made at (the nominal rate when the source's varies). */
  rate: Rational;
  audioMode: ProxyAudio;
  warnings: string[];
}

/** Frame rates outputs are snapped to when a variable-rate source is made constant. */
const STANDARD_RATES: Rational[] = [
  { num: 24000, den: 1001 },
  { num: 24, den: 1 },
  { num: 25, den: 1 },
  { num: 30000, den: 1001 },
  { num: 30, den: 1 },
  { num: 48, den: 1 },
  { num: 50, den: 1 },
  { num: 60000, den: 1001 },
  { num: 60, den: 1 },
  { num: 120, den: 1 },
];
const fps = (r: Rational): number => r.num / r.den;

/**
 * The nominal rate of a variable-rate stream: its r_frame_rate (the rate its timestamps are
 * laid on, what the camera was set to) unless that is implausibly far above the average (a
 * timebase rather than a rate), snapped to the nearest standard rate within 0.5%.
 */
export function nominalRate(real: Rational | undefined, avg: Rational | undefined): Rational | undefined {
  const pick = real && (!avg || fps(real) <= 2 * fps(avg)) ? real : avg;
  if (!pick) return undefined;
  let near: Rational | undefined;
  for (const s of STANDARD_RATES) {
    const off = Math.abs(fps(s) / fps(pick) - 1);
    if (off < 0.005 && (near === undefined || off < Math.abs(fps(near) / fps(pick) - 1))) near = s;
  }
  return near ?? pick;
}

/** Audio codecs a QuickTime file holds as they are; others are made PCM (channel layout kept). */
const MOV_COPYABLE_AUDIO = /^(pcm_.*|aac|alac|mp3|ac3)$/;

async function inspectSource(ff: Ffmpeg, input: MakeInput, signal?: AbortSignal): Promise<SourceInfo> {
  if (inputArg(input.source) !== input.source) {
    // a local file; one that cannot be read is the caller's problem, not the media's
    let size: number;
    try {
      fs.accessSync(input.source, fs.constants.R_OK);
      size = fs.statSync(input.source).size;
    } catch (err) {
      throw new DitsUserError('variant-source-unreadable', `cannot read ${input.displayPath} to make its variants (${errnoCode(err) ?? String(err)})`, {
        hint: 'check that the file is there and readable, then run it again',
        cause: err,
      });
    }
    if (size === 0) throw new MediaProblem('the file is empty (0 bytes)');
  }
  let probe: ProbeResult;
  try {
    probe = await ff.probe(input.source, { signal });
  } catch (err) {
    if (err instanceof FfmpegError && err.code === 'ffmpeg-failed') {
      throw new MediaProblem('ffprobe cannot read it as media: corrupt, truncated or not a media file', err.lastLines);
    }
    throw err;
  }
  const format = probe.formatName ?? '';
  if (/(^|,)(image2|[a-z0-9]+_pipe)(,|$)/.test(format)) throw new MediaProblem(`a still image (${format}), not a video`);
  const video = probe.streams.find((s): s is VideoStream => s.type === 'video');
  const audio = probe.streams.filter((s): s is AudioStream => s.type === 'audio');
  if (!video) throw new MediaProblem(audio.length > 0 ? `audio only: no video track (${audio.length} audio track${audio.length === 1 ? '' : 's'})` : 'no video track');
  const originalVideo = input.originalMedia?.tracks.find((t) => t.type === 'video');
  if (video.codec === undefined) {
    throw new MediaProblem(`this ffmpeg cannot decode its video: the codec${originalVideo ? ` '${originalVideo.codec}'` : ''} is unknown to it`);
  }
  let frames = originalVideo?.sampleCount ?? video.nbFrames;
  let counted = false;
  if (frames === undefined) {
    // containers without a frame count (Matroska): count the packets (reads, does not decode)
    const counts = await ff.probe(input.source, { signal, countPackets: true, timeoutMs: 10 * 60_000 }).catch((err: unknown) => {
      throw err instanceof FfmpegError && err.code === 'ffmpeg-failed' ? new MediaProblem('ffprobe cannot count its frames', err.lastLines) : err;
    });
    frames = counts.streams.find((s): s is VideoStream => s.type === 'video')?.nbReadPackets;
    counted = true;
  }
  if (frames === undefined) throw new MediaProblem('ffprobe cannot tell how many frames it has');
  if (frames <= 1) throw new MediaProblem(`a single frame (a still image in a ${format} container), not a video`);
  const durationSeconds = originalVideo?.durationSeconds ?? video.duration ?? probe.duration;
  if (durationSeconds === undefined || !(durationSeconds > 0)) throw new MediaProblem('it has no duration');
  const real = video.realFrameRate;
  const avg = video.avgFrameRate;
  if (!real && !avg) throw new MediaProblem('ffprobe finds no frame rate');
  const warnings: string[] = [];
  // variable rate: the rate timestamps are laid on differs from the average, or (no average
  // in the container) the frames counted do not fill the duration at that rate
  let variableRate = real !== undefined && avg !== undefined && Math.abs(fps(real) / fps(avg) - 1) > 0.0005;
  if (!variableRate && counted && real) variableRate = Math.abs(frames - durationSeconds * fps(real)) > 1 + 0.005 * frames;
  let rate: Rational;
  if (variableRate) {
    rate = nominalRate(real, avg)!;
    const shown = Math.round(fps(rate) * 1000) / 1000;
    warnings.push(`variable frame rate source (average ${avg ? (Math.round(fps(avg) * 1000) / 1000).toString() : 'unknown'} fps): made constant at ${shown} fps`);
    frames = Math.round(durationSeconds * fps(rate));
  } else {
    rate = (real ?? avg)!;
  }
  // Matroska writes TIMECODE in capitals
  const timecode = input.originalMedia?.startTimecode ?? probe.timecode ?? Object.entries(probe.tags).find(([k]) => k.toLowerCase() === 'timecode')?.[1];
  const reelName = probe.streams.find((s) => s.type !== 'audio' && s.tags.reel_name !== undefined)?.tags.reel_name;
  const facts: SourceFacts = {
    frames,
    frameRate: rate,
    durationSeconds,
    width: video.width,
    height: video.height,
    ...(timecode !== undefined ? { startTimecode: timecode } : {}),
    ...(reelName !== undefined ? { reelName } : {}),
    // (MXF says 'unknown' for a layout it does not carry: then only the channels are compared)
    audio: audio.map((a) => ({ channels: a.channels, ...(a.channelLayout && a.channelLayout !== 'unknown' ? { layout: a.channelLayout } : {}) })),
    tags: clipTags(probe.tags),
    variableRate,
  };
  const audioMode: ProxyAudio = audio.every((a) => MOV_COPYABLE_AUDIO.test(a.codec ?? '')) ? 'copy' : 'pcm_s24le';
  return { facts, rate, audioMode, warnings };
}

/** Splits 0..1 progress over weighted stages, never going back. */
class Progress {
  private done = 0;
  private last = -1;
  private readonly total: number;
  constructor(
    private readonly weights: Map<string, number>,
    private readonly emit?: (fraction: number) => void,
  ) {
    this.total = [...weights.values()].reduce((a, b) => a + b, 0) || 1;
  }
  stage(name: string, fraction: number): void {
    this.report(this.done + (this.weights.get(name) ?? 0) * Math.min(1, Math.max(0, fraction)));
  }
  finish(name: string): void {
    this.done += this.weights.get(name) ?? 0;
    this.report(this.done);
  }
  end(): void {
    this.report(this.total);
  }
  private report(value: number): void {
    const f = Math.min(1, value / this.total);
    if (f <= this.last) return;
    this.last = f;
    this.emit?.(f);
  }
}

/**
 * Makes the variants of `input` asked for in `o.kinds` (default: all), in that order, in
 * `workDir` (created if needed): one directory per original and call, as the finished
 * names are fixed (OUTPUT_NAMES). The caller takes the files (stores them) and removes them.
 */
export async function makeVariants(input: MakeInput, recipe: Recipe, workDir: string, o: MakeVariantsOptions): Promise<VariantOutcome[]> {
  const ff = o.ffmpeg;
  const asked = new Set(o.kinds ?? MADE_KINDS);
  const wanted = MADE_KINDS.filter((k) => asked.has(k));
  const sprite = asked.has('sprite') || asked.has('sprite-vtt');
  fs.mkdirSync(workDir, { recursive: true });
  const outcomes = new Map<VariantKind, VariantOutcome>();
  const warnings: string[] = [];
  const fail = (kind: VariantKind, p: MediaProblem): void => {
    outcomes.set(kind, { kind, recipe: variantRecipe(kind, recipe), status: 'failed', reason: p.reason, ffmpegTail: p.tail, warnings: [...warnings] });
  };
  const weights = new Map<string, number>();
  if (asked.has('proxy')) weights.set('proxy', 6);
  if (asked.has('poster')) weights.set('poster', 0.5);
  if (sprite) weights.set('sprite', 1.5);
  if (asked.has('preview')) weights.set('preview', 2);
  const progress = new Progress(weights, o.onProgress);
  const temps = new Temps(workDir);
  // an output of an earlier run is never taken for this one's
  for (const k of wanted) fs.rmSync(path.join(workDir, OUTPUT_NAMES[k]), { force: true });
  if (sprite) for (const k of ['sprite', 'sprite-vtt'] as const) fs.rmSync(path.join(workDir, OUTPUT_NAMES[k]), { force: true });
  let finished = false;
  try {
    let src: SourceInfo;
    try {
      src = await inspectSource(ff, input, o.signal);
    } catch (err) {
      if (!(err instanceof MediaProblem)) throw err;
      for (const k of wanted) fail(k, err);
      progress.end();
      finished = true;
      return wanted.map((k) => outcomes.get(k)!);
    }
    warnings.push(...src.warnings);
    const ctx: StageContext = { ff, input, recipe, workDir, src, temps, signal: o.signal, progress };
    // the source the later kinds read: the proxy once made (LUT applied, constant rate)
    let base: Base = { source: input.source, lutFile: recipe.lut?.file, rate: src.facts.variableRate ? src.rate : undefined };

    const run = async (kinds: VariantKind[], stage: string, make: () => Promise<Partial<Record<VariantKind, { file: string; fidelity?: Record<string, unknown>; warnings?: string[] }>>>): Promise<void> => {
      o.signal?.throwIfAborted();
      try {
        const made = await make();
        for (const k of kinds) {
          const m = made[k]!;
          outcomes.set(k, { kind: k, recipe: variantRecipe(k, recipe), status: 'ok', file: m.file, warnings: [...warnings, ...(m.warnings ?? [])], ...(m.fidelity ? { fidelity: m.fidelity } : {}) });
        }
      } catch (err) {
        const p = err instanceof MediaProblem ? err : asProblem(err, `${stage} of ${input.displayPath}`, workDir);
        for (const k of kinds) fail(k, p);
      }
      progress.finish(stage);
    };

    if (asked.has('proxy')) {
      await run(['proxy'], 'proxy', async () => ({ proxy: await makeProxy(ctx) }));
      const proxy = outcomes.get('proxy')!;
      if (proxy.status === 'ok') base = { source: proxy.file };
    }
    if (asked.has('poster')) await run(['poster'], 'poster', async () => ({ poster: await makePoster(ctx, base) }));
    if (sprite) await run(['sprite', 'sprite-vtt'], 'sprite', () => makeSprite(ctx, base));
    if (asked.has('preview')) await run(['preview'], 'preview', async () => ({ preview: await makePreview(ctx, base) }));
    progress.end();
    finished = true;
    return wanted.map((k) => outcomes.get(k)!);
  } finally {
    temps.removeAll();
    // thrown (abort, disk): no outcome reaches the caller, so no finished file stays either
    if (!finished) temps.removeFinished();
  }
}

/** Temporary outputs in workDir: each renamed to its final name when finished, the rest removed. */
class Temps {
  private readonly live = new Set<string>();
  private readonly finished: string[] = [];
  private readonly tag = crypto.randomBytes(6).toString('hex');
  private n = 0;
  constructor(private readonly dir: string) {}

  /** A fresh temporary path ending like `name` (ffmpeg picks muxers by extension). */
  make(name: string): string {
    const p = path.join(this.dir, `.tmp-${this.tag}-${this.n++}-${name}`);
    this.live.add(p);
    return p;
  }

  /** Renames `temp` to its final `name` in the directory; returns the final path. */
  finish(temp: string, name: string): string {
    const final = path.join(this.dir, name);
    fs.renameSync(temp, final);
    this.live.delete(temp);
    this.finished.push(final);
    return final;
  }

  removeFinished(): void {
    for (const p of this.finished) fs.rmSync(p, { force: true });
    this.finished.length = 0;
  }

  removeAll(): void {
    for (const p of this.live) fs.rmSync(p, { force: true });
    this.live.clear();
  }
}

interface StageContext {
  ff: Ffmpeg;
  input: MakeInput;
  recipe: Recipe;
  workDir: string;
  src: SourceInfo;
  temps: Temps;
  signal?: AbortSignal;
  progress: Progress;
}

/** What the later kinds read: the proxy (nothing to add), or the source with its LUT and rate. */
interface Base {
  source: string;
  lutFile?: string;
  rate?: Rational;
}

function onTime(ctx: StageContext, stage: string): (p: { outTimeUs?: number }) => void {
  const total = ctx.src.facts.durationSeconds * 1e6;
  return (p) => {
    if (p.outTimeUs !== undefined) ctx.progress.stage(stage, p.outTimeUs / total);
  };
}

async function makeProxy(ctx: StageContext): Promise<{ file: string; fidelity: Record<string, unknown> }> {
  const { src, recipe } = ctx;
  const temp = ctx.temps.make(OUTPUT_NAMES.proxy);
  const args = buildProxyEncodeArgs({
    input: ctx.input.source,
    output: temp,
    codec: recipe.codec,
    maxHeight: recipe.height,
    ...(recipe.lut ? { lutFile: recipe.lut.file } : {}),
    audio: src.audioMode,
    ...(src.facts.variableRate ? { frameRate: src.rate } : {}),
    ...(src.facts.startTimecode !== undefined ? { timecode: src.facts.startTimecode } : {}),
    ...(src.facts.reelName !== undefined ? { reelName: src.facts.reelName } : {}),
    keepAllTags: true,
  });
  await ctx.ff.run(args, { signal: ctx.signal, onProgress: onTime(ctx, 'proxy') });
  const check = await checkFidelity(ctx.ff, temp, src.facts, 'proxy', { signal: ctx.signal });
  if (!check.ok) throw new MediaProblem(`the proxy does not match the original: ${check.problems.join('; ')}`);
  return { file: ctx.temps.finish(temp, OUTPUT_NAMES.proxy), fidelity: check.report };
}

/** Where in the clip the poster is looked for, as fractions of its duration, in order. */
const POSTER_TRIES = [0.1, 0.3, 0.5, 0.7, 0.9];
/** A frame is "not black" when this share of its pixels is brighter than POSTER_DARK (0-255 luma). */
const POSTER_BRIGHT_SHARE = 0.05;
const POSTER_DARK = 40;

/** The share of pixels brighter than POSTER_DARK, and the mean, of an 8-bit grey frame. */
export function lumaStats(gray: Buffer): { mean: number; brightShare: number } {
  if (gray.length === 0) return { mean: 0, brightShare: 0 };
  let sum = 0;
  let bright = 0;
  for (const v of gray) {
    sum += v;
    if (v > POSTER_DARK) bright++;
  }
  return { mean: sum / gray.length, brightShare: bright / gray.length };
}

/**
 * A JPEG of a frame that is not black: tries POSTER_TRIES in order, each one ffmpeg run that
 * writes the JPEG and a 32x18 grey thumbnail of the same frame to measure; the first bright
 * enough wins, else the brightest, with a warning.
 */
async function makePoster(ctx: StageContext, base: Base): Promise<{ file: string; fidelity: Record<string, unknown>; warnings?: string[] }> {
  const d = ctx.src.facts.durationSeconds;
  const height = Math.min(POSTER_MAX_HEIGHT, ctx.recipe.height);
  let best: { temp: string; at: number; mean: number; brightShare: number } | undefined;
  for (let i = 0; i < POSTER_TRIES.length; i++) {
    const at = POSTER_TRIES[i]! * d;
    const jpg = ctx.temps.make(OUTPUT_NAMES.poster);
    const gray = ctx.temps.make('poster.gray');
    const chain = buildVideoFilter({ maxHeight: height, ...(base.lutFile ? { lutFile: base.lutFile } : {}) });
    await ctx.ff.run(
      [
        '-y', '-ss', at.toFixed(3), '-i', inputArg(base.source),
        '-filter_complex', `[0:v:0]${chain},split[p][g];[g]scale=32:18,format=gray[y]`,
        '-map', '[p]', '-frames:v', '1', '-q:v', '2', '-f', 'image2', '-update', '1', fileArg(jpg),
        '-map', '[y]', '-frames:v', '1', '-f', 'rawvideo', fileArg(gray),
      ],
      { signal: ctx.signal },
    );
    ctx.progress.stage('poster', (i + 1) / POSTER_TRIES.length);
    if (!fs.existsSync(jpg) || fs.statSync(jpg).size === 0) continue; // no frame there
    const stats = lumaStats(fs.existsSync(gray) ? fs.readFileSync(gray) : Buffer.alloc(0));
    if (!best || stats.brightShare > best.brightShare || (stats.brightShare === best.brightShare && stats.mean > best.mean)) best = { temp: jpg, at, ...stats };
    if (stats.brightShare >= POSTER_BRIGHT_SHARE) break;
  }
  if (!best) throw new MediaProblem('ffmpeg wrote no frame for the poster at any of the times tried');
  const head = Buffer.alloc(3);
  const fd = fs.openSync(best.temp, 'r');
  try {
    fs.readSync(fd, head, 0, 3, 0);
  } finally {
    fs.closeSync(fd);
  }
  if (!head.equals(Buffer.from([0xff, 0xd8, 0xff]))) throw new MediaProblem('the poster ffmpeg wrote is not a JPEG');
  const warnings = best.brightShare < POSTER_BRIGHT_SHARE ? [`every frame tried for the poster is black or nearly (brightest at ${best.at.toFixed(2)} s)`] : [];
  const fidelity = { atSeconds: Math.round(best.at * 1000) / 1000, meanLuma: Math.round(best.mean * 10) / 10, brightShare: Math.round(best.brightShare * 1000) / 1000 };
  return { file: ctx.temps.finish(best.temp, OUTPUT_NAMES.poster), fidelity, warnings };
}

async function makeSprite(ctx: StageContext, base: Base): Promise<Partial<Record<VariantKind, { file: string; fidelity?: Record<string, unknown> }>>> {
  const f = ctx.src.facts;
  const layout = spriteLayout(f.durationSeconds, f.width, f.height);
  const sheet = ctx.temps.make(OUTPUT_NAMES.sprite);
  const lut = base.lutFile ? `lut3d=file=${escapeFilterValue(base.lutFile)}` : undefined;
  await ctx.ff.run(
    ['-y', '-i', inputArg(base.source), '-map', '0:v:0', '-vf', spriteFilter(layout, lut), '-frames:v', '1', '-q:v', '4', '-f', 'image2', '-update', '1', fileArg(sheet)],
    { signal: ctx.signal, onProgress: onTime(ctx, 'sprite') },
  );
  const probe = await ctx.ff.probe(sheet, { signal: ctx.signal }).catch((err: unknown) => {
    throw err instanceof FfmpegError && err.code === 'ffmpeg-failed' ? new MediaProblem('ffmpeg wrote no sprite sheet', err.lastLines) : err;
  });
  const pic = probe.streams.find((s): s is VideoStream => s.type === 'video');
  if (!pic || pic.width !== layout.width || pic.height !== layout.height) {
    throw new MediaProblem(`the sprite sheet is ${pic ? `${pic.width}x${pic.height}` : 'not a picture'}, ${layout.width}x${layout.height} was expected`);
  }
  const vtt = ctx.temps.make(OUTPUT_NAMES['sprite-vtt']);
  fs.writeFileSync(vtt, spriteVtt(layout, f.durationSeconds, OUTPUT_NAMES.sprite));
  const fidelity = { ...layout };
  return {
    sprite: { file: ctx.temps.finish(sheet, OUTPUT_NAMES.sprite), fidelity },
    'sprite-vtt': { file: ctx.temps.finish(vtt, OUTPUT_NAMES['sprite-vtt']), fidelity },
  };
}

async function makePreview(ctx: StageContext, base: Base): Promise<{ file: string; fidelity: Record<string, unknown> }> {
  const temp = ctx.temps.make(OUTPUT_NAMES.preview);
  const height = Math.min(PREVIEW_MAX_HEIGHT, ctx.recipe.height);
  const vf = buildVideoFilter({ maxHeight: height, ...(base.lutFile ? { lutFile: base.lutFile } : {}), ...(base.rate ? { frameRate: base.rate } : {}) });
  await ctx.ff.run(
    [
      '-y', '-i', inputArg(base.source), '-map', '0:v:0', '-map', '0:a:0?', '-map_metadata', '0',
      '-vf', vf, '-c:v', 'libx264', '-preset', 'veryfast', '-crf', '28', '-pix_fmt', 'yuv420p',
      ...(base.rate ? ['-r', `${base.rate.num}/${base.rate.den}`] : []),
      '-c:a', 'aac', '-b:a', '96k', '-ac', '2', '-movflags', '+faststart', '-f', 'mp4', fileArg(temp),
    ],
    { signal: ctx.signal, onProgress: onTime(ctx, 'preview') },
  );
  const check = await checkFidelity(ctx.ff, temp, ctx.src.facts, 'preview', { signal: ctx.signal });
  if (!check.ok) throw new MediaProblem(`the preview does not match the original: ${check.problems.join('; ')}`);
  return { file: ctx.temps.finish(temp, OUTPUT_NAMES.preview), fidelity: check.report };
}
