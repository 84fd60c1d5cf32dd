/**
 * Driving ffmpeg and ffprobe (Debian's, installed by scripts/setup.sh) for proxies and posters.
 *
 * One small typed module instead of `fluent-ffmpeg`: that package was archived upstream in
 * May 2025 and is deprecated on npm, and all it would give us is an argument builder we want
 * to own anyway. Here the arguments are built in one place by pure functions (tested on
 * their output), ffmpeg is spawned without a shell (arguments as an array), progress comes
 * from `-progress pipe:1` (key=value blocks on stdout), and a failure carries ffmpeg's exit
 * code or signal and the last lines it wrote to stderr (only those are kept: memory is
 * bounded however much it writes).
 *
 * Library code: nothing is printed. The environment (for DITS_FFMPEG / DITS_FFPROBE) is
 * passed in; errors are DitsUserErrors with stable codes, as a missing tool or a file ffmpeg
 * cannot read is the user's situation, not a bug of ours.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { DitsUserError, errnoCode } from '../errors.js';

/**
 * The oldest ffmpeg accepted. `out_time_us` in `-progress` output appeared in 4.1 (before it
 * the key was `out_time_ms`, holding microseconds); prores_ks profile 0, dnxhd's dnxhr_lb
 * profile, lut3d, the fps filter, `-timecode` and `-map_metadata` are all older. 4.4 is the
 * oldest release still shipped by maintained distributions (Ubuntu 22.04); Debian 12 has 5.1,
 * the version the tests run with.
 */
export const MIN_FFMPEG_VERSION: FfmpegVersion = { major: 4, minor: 4 };

const INSTALL_HINT = 'install it with `apt-get install ffmpeg` (Debian/Ubuntu; scripts/setup.sh does it)';

export interface FfmpegVersion {
  major: number;
  minor: number;
}

export interface Ffmpeg {
  /** The ffmpeg and ffprobe commands run (a path, or a name looked up on PATH). */
  ffmpegPath: string;
  ffprobePath: string;
  /** Undefined for a development build ("N-..."), which is accepted. */
  version: FfmpegVersion | undefined;
  /** The first line of `ffmpeg -version`. */
  versionLine: string;
  probe(file: string, options?: ProbeOptions): Promise<ProbeResult>;
  run(args: readonly string[], options?: RunOptions): Promise<void>;
}

export interface OpenFfmpegOptions {
  /** Where DITS_FFMPEG and DITS_FFPROBE are read; ffmpeg itself gets process.env. */
  env?: NodeJS.ProcessEnv;
  /** For the `-version` checks. */
  timeoutMs?: number;
}

/**
 * Finds ffmpeg and ffprobe (DITS_FFMPEG / DITS_FFPROBE, else on PATH; when only DITS_FFMPEG is
 * set, an ffprobe beside it is preferred) and checks their versions. Throws DitsUserError
 * `ffmpeg-missing` or `ffmpeg-too-old` (or `ffmpeg-version-unknown`) with a hint naming what
 * to install and the override.
 */
export async function openFfmpeg(options: OpenFfmpegOptions = {}): Promise<Ffmpeg> {
  const env = options.env ?? {};
  const timeoutMs = options.timeoutMs ?? 10_000;
  const ffmpegPath = env.DITS_FFMPEG || 'ffmpeg';
  let ffprobePath = env.DITS_FFPROBE || 'ffprobe';
  if (!env.DITS_FFPROBE && env.DITS_FFMPEG && path.isAbsolute(env.DITS_FFMPEG)) {
    const beside = path.join(path.dirname(env.DITS_FFMPEG), 'ffprobe');
    if (fs.existsSync(beside)) ffprobePath = beside;
  }
  const ffmpegVersion = await checkVersion('ffmpeg', ffmpegPath, env.DITS_FFMPEG ? 'DITS_FFMPEG' : undefined, timeoutMs);
  await checkVersion('ffprobe', ffprobePath, env.DITS_FFPROBE ? 'DITS_FFPROBE' : undefined, timeoutMs);
  return {
    ffmpegPath,
    ffprobePath,
    version: ffmpegVersion.version,
    versionLine: ffmpegVersion.line,
    probe: (file, o) => probeFile(ffprobePath, file, o),
    run: (args, o) => runFfmpeg(ffmpegPath, args, o),
  };
}

/**
 * The version in the first line of `ffmpeg -version` / `ffprobe -version`: "ffmpeg version
 * 5.1.9-0+deb12u1", "ffmpeg version n6.1", "ffmpeg version 4.4.2-0ubuntu0.22.04.1".
 * `dev` for a build from git ("N-113000-g..." or "git-2024-..."), null when unrecognised.
 */
export function parseFfmpegVersion(text: string, tool: 'ffmpeg' | 'ffprobe' = 'ffmpeg'): FfmpegVersion | 'dev' | null {
  const line = text.split('\n', 1)[0].trim();
  const m = new RegExp(`^${tool} version (\\S+)`).exec(line);
  if (!m) return null;
  const v = /^n?(\d+)\.(\d+)/.exec(m[1]);
  if (v) return { major: Number(v[1]), minor: Number(v[2]) };
  return /^(N-|git-)/.test(m[1]) ? 'dev' : null;
}

function versionAtLeast(v: FfmpegVersion, min: FfmpegVersion): boolean {
  return v.major !== min.major ? v.major > min.major : v.minor >= min.minor;
}

async function checkVersion(
  tool: 'ffmpeg' | 'ffprobe',
  command: string,
  envVar: string | undefined,
  timeoutMs: number,
): Promise<{ version: FfmpegVersion | undefined; line: string }> {
  const override = `or point ${tool === 'ffmpeg' ? 'DITS_FFMPEG' : 'DITS_FFPROBE'} at a ${tool} binary`;
  const where = envVar ? `${command} (from ${envVar})` : `${tool} on PATH`;
  let out: CapturedRun;
  try {
    out = await capture(command, ['-version'], { tool, timeoutMs, maxStdout: 64 * 1024 });
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'EACCES') {
      throw new DitsUserError('ffmpeg-missing', `${tool} not found: ${where} ${code === 'EACCES' ? 'is not executable' : 'does not exist'}`, {
        hint: `${INSTALL_HINT}, ${override}`,
        cause: err,
      });
    }
    throw err;
  }
  const text = out.stdout.toString('utf8');
  const line = text.split('\n', 1)[0].trim();
  const version = out.status === 0 ? parseFfmpegVersion(text, tool) : null;
  if (version === null) {
    throw new DitsUserError('ffmpeg-version-unknown', `${where} did not say which version it is (${line || `exit ${out.status}`})`, {
      hint: `${INSTALL_HINT}, ${override}`,
    });
  }
  if (version !== 'dev' && !versionAtLeast(version, MIN_FFMPEG_VERSION)) {
    const min = `${MIN_FFMPEG_VERSION.major}.${MIN_FFMPEG_VERSION.minor}`;
    throw new DitsUserError('ffmpeg-too-old', `${where} is version ${version.major}.${version.minor}; Dits needs ${tool} ${min} or newer`, {
      hint: `${INSTALL_HINT.replace('install it', `install ffmpeg ${min} or newer`)}, ${override}`,
    });
  }
  return { version: version === 'dev' ? undefined : version, line };
}

// ---------------------------------------------------------------------------------------
// Running: bounded output, last lines of stderr, timeouts, abort

/** Lines of stderr kept for an error (ffmpeg's last words are the ones that explain it). */
export const STDERR_LINES_KEPT = 20;
/** Longer stderr lines are cut to this many characters. */
const STDERR_LINE_MAX = 2000;

/** Keeps the last `max` lines written to it; memory bounded whatever is fed. */
export class LastLines {
  private readonly lines: string[] = [];
  private partial = '';
  constructor(private readonly max: number = STDERR_LINES_KEPT) {}

  push(chunk: string): void {
    const parts = (this.partial + chunk).split(/\r?\n|\r/);
    this.partial = parts.pop()!.slice(-STDERR_LINE_MAX);
    for (const p of parts) this.add(p);
  }

  private add(line: string): void {
    if (line.trim() === '') return;
    this.lines.push(line.length > STDERR_LINE_MAX ? line.slice(0, STDERR_LINE_MAX) + '…' : line);
    if (this.lines.length > this.max) this.lines.shift();
  }

  /** The kept lines, the unterminated last one included. */
  get(): string[] {
    const out = [...this.lines];
    if (this.partial.trim() !== '') out.push(this.partial);
    return out.slice(-this.max);
  }
}

/** A run of ffmpeg or ffprobe that failed: how it ended, and what it said last. */
export class FfmpegError extends DitsUserError {
  constructor(
    code: 'ffmpeg-failed' | 'ffmpeg-aborted' | 'ffmpeg-timeout' | 'ffprobe-output-too-large',
    message: string,
    readonly tool: 'ffmpeg' | 'ffprobe',
    /** The process's exit status, or null when it was ended by a signal. */
    readonly status: number | null,
    readonly signal: NodeJS.Signals | null,
    /** The last lines of its stderr (at most STDERR_LINES_KEPT). */
    readonly lastLines: string[],
    cause?: unknown,
  ) {
    super(code, lastLines.length > 0 ? `${message}:\n  ${lastLines.join('\n  ')}` : message, { cause });
    this.name = 'FfmpegError';
  }
}

interface SpawnOptions {
  tool: 'ffmpeg' | 'ffprobe';
  signal?: AbortSignal;
  timeoutMs?: number;
  /** Called with each chunk of stdout instead of keeping it. */
  onStdout?: (chunk: Buffer) => void;
  /** Stdout kept beyond this many bytes ends the run with `ffprobe-output-too-large`. */
  maxStdout?: number;
}

interface CapturedRun {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  lastLines: string[];
}

/**
 * Spawns `command args` (no shell) in its own process group, so that an abort or a timeout
 * kills it and anything it started. Resolves when the process has exited (whatever its
 * status); rejects with Node's error when it cannot be started, with FfmpegError on abort,
 * timeout or too much output, and with the error `onStdout` threw; always once the process
 * is gone.
 */
function capture(command: string, args: readonly string[], o: SpawnOptions): Promise<CapturedRun> {
  return new Promise((resolve, reject) => {
    if (o.signal?.aborted) {
      reject(new FfmpegError('ffmpeg-aborted', `${o.tool} aborted before it started`, o.tool, null, null, [], o.signal.reason));
      return;
    }
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const stdout: Buffer[] = [];
    let stdoutBytes = 0;
    const stderr = new LastLines();
    let ended: { code: 'ffmpeg-aborted' | 'ffmpeg-timeout' | 'ffprobe-output-too-large'; message: string; cause?: unknown } | undefined;
    const kill = (why: NonNullable<typeof ended>): void => {
      if (ended) return;
      ended = why;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL'); // the group is gone already, or was never made
      }
    };
    const onAbort = (): void => kill({ code: 'ffmpeg-aborted', message: `${o.tool} aborted`, cause: o.signal?.reason });
    o.signal?.addEventListener('abort', onAbort, { once: true });
    const timer =
      o.timeoutMs !== undefined
        ? setTimeout(() => kill({ code: 'ffmpeg-timeout', message: `${o.tool} took longer than ${o.timeoutMs} ms and was stopped` }), o.timeoutMs)
        : undefined;
    let callbackError: { error: unknown } | undefined;
    child.stdout.on('data', (b: Buffer) => {
      if (o.onStdout) {
        if (callbackError) return;
        try {
          o.onStdout(b);
        } catch (error) {
          // a progress callback that throws stops the run, and its error is the one rejected
          callbackError = { error };
          kill({ code: 'ffmpeg-aborted', message: `${o.tool} stopped: the progress callback failed`, cause: error });
        }
        return;
      }
      stdoutBytes += b.length;
      if (o.maxStdout !== undefined && stdoutBytes > o.maxStdout) {
        kill({ code: 'ffprobe-output-too-large', message: `${o.tool} wrote more than ${o.maxStdout} bytes` });
        return;
      }
      stdout.push(b);
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (s: string) => stderr.push(s));
    const done = (): void => {
      if (timer) clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
    };
    child.on('error', (err) => {
      done();
      reject(err);
    });
    child.on('close', (status, sig) => {
      done();
      const lastLines = stderr.get();
      if (callbackError) reject(callbackError.error);
      else if (ended) reject(new FfmpegError(ended.code, ended.message, o.tool, status, sig, lastLines, ended.cause));
      else resolve({ status, signal: sig, stdout: Buffer.concat(stdout), lastLines });
    });
  });
}

function failed(tool: 'ffmpeg' | 'ffprobe', what: string, r: CapturedRun): FfmpegError {
  const how = r.signal ? `was killed by ${r.signal}` : `exited with status ${r.status}`;
  return new FfmpegError('ffmpeg-failed', `${tool} ${how}${what ? ` ${what}` : ''}`, tool, r.status, r.signal, r.lastLines);
}

// ---------------------------------------------------------------------------------------
// ffmpeg runs and their progress

/** One `-progress` block: what ffmpeg has done so far. */
export interface FfmpegProgress {
  /** Frames written so far (video outputs). */
  frame?: number;
  /** Output time reached, in microseconds. */
  outTimeUs?: number;
  /** Bytes written so far. */
  totalSize?: number;
  /** Encoding speed as a multiple of real time ("1.5x" -> 1.5). */
  speed?: number;
  /** True on the last block (`progress=end`). */
  end: boolean;
}

export interface RunOptions {
  onProgress?: (p: FfmpegProgress) => void;
  signal?: AbortSignal;
  timeoutMs?: number;
}

/** Arguments every run starts with: quiet but for errors, progress on stdout, never reading stdin. */
export const RUN_PREFIX: readonly string[] = ['-nostdin', '-hide_banner', '-nostats', '-loglevel', 'error', '-progress', 'pipe:1'];

/**
 * Parses ffmpeg's `-progress` output: `key=value` lines, each block ended by
 * `progress=continue` or `progress=end`. Fed arbitrary chunks; calls `emit` once per block.
 * Values ffmpeg does not know yet ("N/A") are left out.
 */
export class ProgressParser {
  private partial = '';
  private block: Record<string, string> = {};
  constructor(private readonly emit: (p: FfmpegProgress) => void) {}

  push(chunk: string): void {
    const lines = (this.partial + chunk).split('\n');
    this.partial = lines.pop()!.slice(-4096);
    for (const raw of lines) {
      const line = raw.trim();
      const eq = line.indexOf('=');
      if (eq <= 0) continue;
      const key = line.slice(0, eq);
      const value = line.slice(eq + 1).trim();
      if (key !== 'progress') {
        this.block[key] = value;
        continue;
      }
      this.emit(toProgress(this.block, value === 'end'));
      this.block = {};
    }
  }
}

function toProgress(b: Record<string, string>, end: boolean): FfmpegProgress {
  const num = (s: string | undefined): number | undefined => {
    if (s === undefined || !/^-?\d+(\.\d+)?$/.test(s)) return undefined;
    return Number(s);
  };
  const p: FfmpegProgress = { end };
  const frame = num(b.frame);
  if (frame !== undefined) p.frame = frame;
  const outTimeUs = num(b.out_time_us);
  if (outTimeUs !== undefined && outTimeUs >= 0) p.outTimeUs = outTimeUs;
  const totalSize = num(b.total_size);
  if (totalSize !== undefined) p.totalSize = totalSize;
  const speed = num(b.speed?.replace(/x$/, ''));
  if (speed !== undefined) p.speed = speed;
  return p;
}

async function runFfmpeg(command: string, args: readonly string[], options: RunOptions = {}): Promise<void> {
  const parser = new ProgressParser((p) => options.onProgress?.(p));
  const r = await capture(command, [...RUN_PREFIX, ...args], {
    tool: 'ffmpeg',
    signal: options.signal,
    timeoutMs: options.timeoutMs,
    onStdout: (b) => parser.push(b.toString('latin1')),
  });
  if (r.status !== 0) throw failed('ffmpeg', '', r);
}

// ---------------------------------------------------------------------------------------
// ffprobe

export interface Rational {
  num: number;
  den: number;
}

/** "30000/1001" -> { num: 30000, den: 1001 }; undefined for "0/0" or anything unparsable. */
export function parseRational(s: string | undefined): Rational | undefined {
  const m = s === undefined ? null : /^(\d+)\/(\d+)$/.exec(s.trim());
  if (!m || Number(m[1]) === 0 || Number(m[2]) === 0) return undefined;
  return { num: Number(m[1]), den: Number(m[2]) };
}

interface StreamBase {
  index: number;
  codec?: string;
  /** Seconds, when the container says. */
  duration?: number;
  tags: Record<string, string>;
}

export interface VideoStream extends StreamBase {
  type: 'video';
  width: number;
  height: number;
  pixelFormat?: string;
  avgFrameRate?: Rational;
  realFrameRate?: Rational;
  /** Frames, when the container records it (MOV/MP4 do, Matroska does not). */
  nbFrames?: number;
  /** Packets counted by reading the file (ProbeOptions.countPackets). */
  nbReadPackets?: number;
  timecode?: string;
}

export interface AudioStream extends StreamBase {
  type: 'audio';
  channels: number;
  channelLayout?: string;
  sampleRate?: number;
}

/** Data (tmcd), subtitle and attachment streams. */
export interface OtherStream extends StreamBase {
  type: 'data' | 'subtitle' | 'attachment' | 'unknown';
  /** The four-character code, e.g. "tmcd". */
  codecTag?: string;
  timecode?: string;
}

export type ProbeStream = VideoStream | AudioStream | OtherStream;

export interface ProbeResult {
  formatName?: string;
  /** Seconds. */
  duration?: number;
  tags: Record<string, string>;
  streams: ProbeStream[];
  /** The start timecode, from the format's, a video stream's or a tmcd stream's tags. */
  timecode?: string;
}

export interface ProbeOptions {
  signal?: AbortSignal;
  /** Default 30 s. */
  timeoutMs?: number;
  /** Count video packets by reading the whole file (`-count_packets`): for containers without a frame count. */
  countPackets?: boolean;
}

/** ffprobe's JSON for a few streams and tags is kilobytes; a file that makes it write more is refused. */
const PROBE_MAX_OUTPUT = 8 * 1024 * 1024;

/**
 * A local path as ffmpeg must be given it: with the `file:` protocol, so that a name such as
 * `concat:a|b`, `http:x` or `-y` (a repository can hold any file name) is never read as
 * another protocol or as an option.
 */
export function fileArg(p: string): string {
  return `file:${p}`;
}

/**
 * An input as ffmpeg must be given it: an `http://` URL on the loopback interface (a source
 * served with ranges from storage by src/proxy/range-source.ts) as it is, anything else as a
 * local path (`fileArg`). Only loopback URLs: a repository's file names never reach here as
 * URLs, and nothing is fetched from elsewhere.
 */
export function inputArg(source: string): string {
  return /^http:\/\/(127\.0\.0\.1|localhost|\[::1\])(:\d+)?\//.test(source) ? source : fileArg(source);
}

/** The arguments `probe` runs ffprobe with. */
export function buildProbeArgs(file: string, options: { countPackets?: boolean } = {}): string[] {
  return [
    '-hide_banner',
    '-loglevel',
    'error',
    '-print_format',
    'json',
    '-show_format',
    '-show_streams',
    ...(options.countPackets ? ['-count_packets'] : []),
    '-i',
    inputArg(file),
  ];
}

async function probeFile(command: string, file: string, options: ProbeOptions = {}): Promise<ProbeResult> {
  const r = await capture(command, buildProbeArgs(file, options), {
    tool: 'ffprobe',
    signal: options.signal,
    timeoutMs: options.timeoutMs ?? 30_000,
    maxStdout: PROBE_MAX_OUTPUT,
  });
  if (r.status !== 0) throw failed('ffprobe', `reading ${file}`, r);
  let json: unknown;
  try {
    json = JSON.parse(r.stdout.toString('utf8'));
  } catch (err) {
    throw new FfmpegError('ffmpeg-failed', `ffprobe wrote output that is not JSON for ${file}`, 'ffprobe', r.status, r.signal, r.lastLines, err);
  }
  return parseProbeJson(json);
}

type Json = Record<string, unknown>;
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined);
const num = (v: unknown): number | undefined => {
  const s = str(v);
  if (s === undefined || s.trim() === '' || s === 'N/A') return undefined;
  const n = Number(s);
  return Number.isFinite(n) ? n : undefined;
};
const tagsOf = (v: unknown): Record<string, string> => {
  const out: Record<string, string> = {};
  if (typeof v === 'object' && v !== null) for (const [k, x] of Object.entries(v)) if (str(x) !== undefined) out[k] = str(x)!;
  return out;
};

/** ffprobe's `-print_format json -show_format -show_streams` output, typed. Pure. */
export function parseProbeJson(json: unknown): ProbeResult {
  const root = (typeof json === 'object' && json !== null ? json : {}) as Json;
  const format = (typeof root.format === 'object' && root.format !== null ? root.format : {}) as Json;
  const streams: ProbeStream[] = [];
  for (const raw of Array.isArray(root.streams) ? (root.streams as Json[]) : []) {
    const tags = tagsOf(raw.tags);
    const base = { index: num(raw.index) ?? streams.length, codec: str(raw.codec_name), duration: num(raw.duration), tags };
    const type = str(raw.codec_type);
    if (type === 'video') {
      streams.push({
        ...base,
        type: 'video',
        width: num(raw.width) ?? 0,
        height: num(raw.height) ?? 0,
        pixelFormat: str(raw.pix_fmt),
        avgFrameRate: parseRational(str(raw.avg_frame_rate)),
        realFrameRate: parseRational(str(raw.r_frame_rate)),
        nbFrames: num(raw.nb_frames),
        nbReadPackets: num(raw.nb_read_packets),
        timecode: tags.timecode,
      });
    } else if (type === 'audio') {
      streams.push({
        ...base,
        type: 'audio',
        channels: num(raw.channels) ?? 0,
        channelLayout: str(raw.channel_layout),
        sampleRate: num(raw.sample_rate),
      });
    } else {
      const t = type === 'data' || type === 'subtitle' || type === 'attachment' ? type : 'unknown';
      streams.push({ ...base, type: t, codecTag: str(raw.codec_tag_string), timecode: tags.timecode });
    }
  }
  const tags = tagsOf(format.tags);
  const timecode = tags.timecode ?? streams.find((s): s is VideoStream | OtherStream => s.type !== 'audio' && s.timecode !== undefined)?.timecode;
  return { formatName: str(format.format_name), duration: num(format.duration), tags, streams, timecode };
}

// ---------------------------------------------------------------------------------------
// Argument builders (pure)

export type ProxyCodec = 'prores_proxy' | 'dnxhr_lb' | 'h264';
export type ProxyAudio = 'copy' | 'pcm_s16le' | 'pcm_s24le' | 'none';

export interface ProxyEncodeOptions {
  input: string;
  /** Overwritten (`-y`): the caller owns it (a temporary path, renamed once verified). */
  output: string;
  codec: ProxyCodec;
  /** At most this many lines high; never upscaled; width follows the aspect, both even. */
  maxHeight: number;
  /** A 3D LUT (.cube, .3dl, ...) applied after scaling. */
  lutFile?: string;
  /** Default 'copy'. PCM suits .mov; MP4 (H.264) wants 'copy' of a codec it can hold. */
  audio?: ProxyAudio;
  /** Constant frame rate at this nominal rate (for variable-rate sources); else the source's timing is kept. */
  frameRate?: Rational;
  /** Start timecode for the output's tmcd track, "HH:MM:SS:FF" (";" before FF for drop-frame). */
  timecode?: string;
  /**
   * Keep every global metadata tag (`-movflags use_metadata_tags`: QuickTime `mdta` keys such
   * as com.apple.quicktime.* and cameras' own), not only those with a classic udta atom.
   */
  keepAllTags?: boolean;
  /** Reel name for the tmcd track (QuickTime source reference): ffmpeg reads it onto the tmcd stream, not the video's, so it is not kept unless given. */
  reelName?: string;
}

/** Video encoder arguments per proxy codec. */
const VIDEO_CODEC_ARGS: Record<ProxyCodec, readonly string[]> = {
  // ProRes 422 Proxy; the 'apl0' vendor tag as Apple's encoder writes it, which some NLEs look for
  prores_proxy: ['-c:v', 'prores_ks', '-profile:v', '0', '-vendor', 'apl0', '-pix_fmt', 'yuv422p10le'],
  dnxhr_lb: ['-c:v', 'dnxhd', '-profile:v', 'dnxhr_lb', '-pix_fmt', 'yuv422p'],
  h264: ['-c:v', 'libx264', '-preset', 'veryfast', '-crf', '23', '-pix_fmt', 'yuv420p'],
};

/**
 * Escapes `value` to stand as a filter option's value inside a filtergraph: first for the
 * option parser (\ ' :), then for the graph parser (\ ' [ ] , ;), as ffmpeg-filters(1)
 * "Notes on filtergraph escaping" describes.
 */
export function escapeFilterValue(value: string): string {
  const optionLevel = value.replace(/[\\':]/g, '\\$&');
  return optionLevel.replace(/[\\'[\],;]/g, '\\$&');
}

/**
 * The video filter chain: constant rate (when asked), scale to at most `maxHeight` lines
 * without upscaling (height made even; width -2 keeps the aspect, even), then the LUT.
 */
export function buildVideoFilter(o: { maxHeight: number; lutFile?: string; frameRate?: Rational }): string {
  if (!Number.isInteger(o.maxHeight) || o.maxHeight < 2) throw new RangeError(`invalid proxy height ${o.maxHeight}`);
  const filters: string[] = [];
  if (o.frameRate) filters.push(`fps=${o.frameRate.num}/${o.frameRate.den}`);
  filters.push(`scale=-2:trunc(min(ih\\,${o.maxHeight})/2)*2`);
  if (o.lutFile !== undefined) filters.push(`lut3d=file=${escapeFilterValue(o.lutFile)}`);
  return filters.join(',');
}

/**
 * Arguments (after RUN_PREFIX) for a proxy of `input`: its first video stream and all its
 * audio streams, global metadata kept (`-map_metadata 0`; stream metadata follows the mapped
 * streams), the start timecode written as a tmcd track when given.
 */
export function buildProxyEncodeArgs(o: ProxyEncodeOptions): string[] {
  const audio = o.audio ?? 'copy';
  const args = ['-y', '-i', inputArg(o.input), '-map', '0:v:0'];
  if (audio !== 'none') args.push('-map', '0:a?');
  args.push('-map_metadata', '0', '-vf', buildVideoFilter(o), ...VIDEO_CODEC_ARGS[o.codec]);
  if (o.frameRate) args.push('-r', `${o.frameRate.num}/${o.frameRate.den}`);
  if (audio === 'copy') args.push('-c:a', 'copy');
  else if (audio !== 'none') args.push('-c:a', audio);
  if (o.timecode !== undefined) args.push('-timecode', o.timecode);
  if (o.reelName !== undefined) args.push('-metadata:s:v:0', `reel_name=${o.reelName}`);
  if (o.keepAllTags) args.push('-movflags', 'use_metadata_tags');
  args.push(fileArg(o.output));
  return args;
}

export interface PosterOptions {
  input: string;
  /** Overwritten (`-y`). */
  output: string;
  /** Seconds from the start. */
  atSeconds: number;
  /** At most this many lines high (never upscaled); default: the source's size. */
  maxHeight?: number;
}

/** Arguments for one JPEG of the frame at `atSeconds` (seeking on the input: fast). */
export function buildPosterArgs(o: PosterOptions): string[] {
  if (!Number.isFinite(o.atSeconds) || o.atSeconds < 0) throw new RangeError(`invalid poster time ${o.atSeconds}`);
  const args = ['-y', '-ss', o.atSeconds.toFixed(3), '-i', inputArg(o.input), '-map', '0:v:0', '-frames:v', '1'];
  if (o.maxHeight !== undefined) args.push('-vf', buildVideoFilter({ maxHeight: o.maxHeight }));
  args.push('-q:v', '2', '-f', 'image2', '-update', '1', fileArg(o.output));
  return args;
}

// ---------------------------------------------------------------------------------------
// Conform (`git dits render`): segments of sources trimmed on frames, concatenated

/** Master codecs a render writes. */
export type MasterCodec = 'prores_hq' | 'prores' | 'dnxhr_hq' | 'h264' | 'ffv1';

export const MASTER_CODECS: Record<MasterCodec, { describe: string; args: readonly string[]; pixelFormat?: string; containers: readonly string[] }> = {
  prores_hq: { describe: 'ProRes 422 HQ', args: ['-c:v', 'prores_ks', '-profile:v', '3', '-vendor', 'apl0'], pixelFormat: 'yuv422p10le', containers: ['mov', 'matroska'] },
  prores: { describe: 'ProRes 422', args: ['-c:v', 'prores_ks', '-profile:v', '2', '-vendor', 'apl0'], pixelFormat: 'yuv422p10le', containers: ['mov', 'matroska'] },
  dnxhr_hq: { describe: 'DNxHR HQ', args: ['-c:v', 'dnxhd', '-profile:v', 'dnxhr_hq'], pixelFormat: 'yuv422p', containers: ['mov', 'matroska'] },
  h264: { describe: 'H.264', args: ['-c:v', 'libx264', '-preset', 'medium', '-crf', '16'], pixelFormat: 'yuv420p', containers: ['mov', 'mp4', 'matroska'] },
  // lossless: the sources' own pixel format, every frame decodes to the source's pixels
  ffv1: { describe: 'FFV1 (lossless)', args: ['-c:v', 'ffv1', '-level', '3'], containers: ['mov', 'matroska'] },
};

export type ConformEncodeSegment =
  | { kind: 'clip'; file: string; sourceStart: number; frames: number; audio: boolean; scale: boolean; /** default 1 */ audioStreams?: number }
  | { kind: 'gap'; frames: number };

export interface ConformEncodeOptions {
  segments: readonly ConformEncodeSegment[];
  frameRate: Rational;
  width: number;
  height: number;
  /** Output audio; null: none. */
  audio: { layout: string; sampleRate: number } | null;
  codec: MasterCodec;
  /** For a codec without its own (ffv1): the sources' pixel format. */
  pixelFormat?: string;
  /** Overwritten (`-y`): the caller's temporary name, renamed when ffmpeg succeeded. */
  output: string;
  container: 'mov' | 'mp4' | 'matroska';
  /** The master's start timecode ("01:00:00:00"). */
  timecode?: string;
  /**
   * Frames of the master before these segments, when a long timeline is rendered in parts:
   * audio sample counts are rounded from the absolute record positions, so the parts add up
   * to exactly what one pass would write.
   */
  recordOffset?: number;
}

/** Microseconds as ffmpeg's time syntax ("12.345678"). */
function secondsArg(us: number): string {
  return `${Math.floor(us / 1e6)}.${String(us % 1e6).padStart(6, '0')}`;
}

/**
 * Arguments (after RUN_PREFIX) for a conform: one input per clip segment, each opened at
 * its first frame and cut to exactly its frame count; gaps are black and silence; all
 * joined by the concat filter and encoded once.
 *
 * Frame accuracy: the input seek (-ss, accurate by default when decoding) goes to half a
 * frame before the first wanted frame, so that frame is the first one kept whatever the
 * rounding of timestamps, and `trim=end_frame` counts the frames from there. Audio starts
 * at the first frame's own time (atrim by samples after that half frame) and every
 * segment's sample count comes from the record positions (round(frame * rate / fps)), so
 * audio never drifts from the picture over many cuts; a short source is padded with silence.
 */
export function buildConformArgs(o: ConformEncodeOptions): string[] {
  const codec = MASTER_CODECS[o.codec];
  const pix = codec.pixelFormat ?? o.pixelFormat;
  const { num, den } = o.frameRate;
  if (o.segments.length === 0) throw new RangeError('a conform needs at least one segment');
  const usAt = (frames: number): number => Math.round((frames * den * 1e6) / num);
  const sr = o.audio?.sampleRate ?? 48000;
  const sampleAt = (frame: number): number => Math.round((frame * den * sr) / num);
  const args = ['-y'];
  const graph: string[] = [];
  const concatInputs: string[] = [];
  let input = 0;
  let record = o.recordOffset ?? 0;
  const fit = `scale=${o.width}:${o.height}:force_original_aspect_ratio=decrease,pad=${o.width}:${o.height}:(ow-iw)/2:(oh-ih)/2`;
  const finish = `setsar=1${pix ? `,format=${pix}` : ''}`;
  o.segments.forEach((s, i) => {
    const samples = sampleAt(record + s.frames) - sampleAt(record);
    record += s.frames;
    const silence = o.audio ? `anullsrc=r=${sr}:cl=${o.audio.layout},atrim=end_sample=${samples}[a${i}]` : undefined;
    if (s.kind === 'gap') {
      graph.push(`color=c=black:s=${o.width}x${o.height}:r=${num}/${den},trim=end_frame=${s.frames},${finish}[v${i}]`);
      if (silence) graph.push(silence);
    } else {
      // half a frame before the first wanted frame (none before frame 0)
      const seekUs = s.sourceStart > 0 ? Math.floor(((2 * s.sourceStart - 1) * den * 1e6) / (2 * num)) : 0;
      const lengthUs = Math.ceil(((s.frames + 1) * den * 1e6) / num);
      if (seekUs > 0) args.push('-ss', secondsArg(seekUs));
      args.push('-t', secondsArg(lengthUs), '-i', fileArg(s.file));
      const k = input++;
      graph.push(`[${k}:v:0]trim=end_frame=${s.frames},setpts=PTS-STARTPTS${s.scale ? `,${fit}` : ''},${finish}[v${i}]`);
      if (o.audio && s.audio) {
        const skip = Math.max(0, Math.round(((usAt(s.sourceStart) - seekUs) * sr) / 1e6));
        const streams = Math.max(1, s.audioStreams ?? 1);
        const merged = streams === 1 ? `[${k}:a:0]` : `${Array.from({ length: streams }, (_, j) => `[${k}:a:${j}]`).join('')}amerge=inputs=${streams},`;
        graph.push(
          `${merged}aresample=${sr},aformat=channel_layouts=${o.audio.layout},atrim=start_sample=${skip}:end_sample=${skip + samples},asetpts=PTS-STARTPTS,apad=whole_len=${samples}[a${i}]`,
        );
      } else if (silence) graph.push(silence);
    }
    concatInputs.push(`[v${i}]${o.audio ? `[a${i}]` : ''}`);
  });
  graph.push(`${concatInputs.join('')}concat=n=${o.segments.length}:v=1:a=${o.audio ? 1 : 0}[vout]${o.audio ? '[aout]' : ''}`);
  args.push('-filter_complex', graph.join(';'), '-map', '[vout]');
  if (o.audio) args.push('-map', '[aout]');
  args.push(...codec.args);
  if (pix) args.push('-pix_fmt', pix);
  args.push('-r', `${num}/${den}`);
  if (o.audio) args.push(...(o.container === 'mp4' ? ['-c:a', 'aac', '-b:a', '320k'] : ['-c:a', 'pcm_s24le']));
  if (o.timecode !== undefined && o.container !== 'matroska') args.push('-timecode', o.timecode);
  args.push('-f', o.container, fileArg(o.output));
  return args;
}

/**
 * Arguments that join parts rendered by buildConformArgs (same codec, size, rate and audio)
 * into one file without re-encoding the picture: the concat demuxer, reading `listFile`
 * (buildConcatList). Audio is copied (PCM), or encoded to AAC for an .mp4. Frame-exact: each
 * part holds exactly its frames and samples, and every codec here starts a part on a key frame.
 */
export function buildJoinArgs(o: { listFile: string; output: string; container: 'mov' | 'mp4' | 'matroska'; audio: boolean; timecode?: string }): string[] {
  const args = ['-y', '-f', 'concat', '-safe', '0', '-i', fileArg(o.listFile), '-map', '0:v:0'];
  if (o.audio) args.push('-map', '0:a:0');
  args.push('-c:v', 'copy');
  if (o.audio) args.push(...(o.container === 'mp4' ? ['-c:a', 'aac', '-b:a', '320k'] : ['-c:a', 'copy']));
  if (o.timecode !== undefined && o.container !== 'matroska') args.push('-timecode', o.timecode);
  args.push('-f', o.container, fileArg(o.output));
  return args;
}

/**
 * The concat demuxer's list of parts (absolute paths), quoted as ffmpeg-formats(1) says. Each
 * part's duration is given from its frame count: read from the file, it is the container's
 * (a .mov's movie time scale is 1/1000 s), and the next part's timestamps would start up to a
 * millisecond late, leaving uneven frame durations at every join.
 */
export function buildConcatList(parts: readonly { file: string; frames: number }[], frameRate: Rational): string {
  const lines = ['ffconcat version 1.0'];
  for (const p of parts) {
    lines.push(`file 'file:${p.file.replace(/'/g, "'\\''")}'`);
    lines.push(`duration ${secondsArg(Math.round((p.frames * frameRate.den * 1e6) / frameRate.num))}`);
  }
  return lines.join('\n') + '\n';
}
