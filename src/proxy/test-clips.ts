/**
 * Tiny clips for the proxy tests, made with the real ffmpeg from lavfi sources (a few
 * seconds, a few kilobytes to a megabyte), and the bad inputs a proxy maker must survive.
 * Shared by the tests of making variants, the server's workers and the checkout modes.
 *
 * Every generator writes `file` (overwriting) and returns it. The commands are the whole
 * recipe: nothing is downloaded, nothing depends on the machine but ffmpeg 4.4+.
 */
import fs from 'node:fs';
import { fileArg, type Ffmpeg } from '../media/ffmpeg.js';

export interface ClipOptions {
  /** WxH, default 320x180. */
  size?: string;
  /** A rate ffmpeg accepts: '25', '30000/1001'. Default '25'. */
  rate?: string;
  /** Seconds, default 2. */
  duration?: number;
  /** Start timecode (';' before the frames for drop-frame), written as a tmcd track. */
  timecode?: string;
  /** Reel name of the tmcd track (QuickTime's source reference). */
  reel?: string;
  /** Channels of each audio track, in order (e.g. [4] for one 4.0 track, [2, 1]); default none. */
  audioTracks?: number[];
  /** Global metadata (title, comment...). */
  metadata?: Record<string, string>;
  /** The first seconds are black (for the poster's choice of a frame). */
  blackSeconds?: number;
  /**
   * Variable frame rate: the first second at the full rate, then every third frame only
   * (a phone slowing down in the dark). The container says r_frame_rate = the full rate.
   */
  variableRate?: boolean;
  /** Flat, low-contrast, grey picture as log footage looks before its LUT. */
  log?: boolean;
  /** Video encoder, default mpeg4 (fast, in every ffmpeg build); libx264 for VFR and .mkv, mpeg2video for .mxf. */
  videoCodec?: 'mpeg4' | 'libx264' | 'mpeg2video';
}

/** The QuickTime channel layouts ffmpeg names for 1-6 channels. */
const LAYOUTS: Record<number, string> = { 1: 'mono', 2: 'stereo', 3: '2.1', 4: '4.0', 5: '5.0', 6: '5.1' };

/** A short MOV, MP4, MXF or MKV (by `file`'s extension) of a test pattern, with what `o` asks for. */
export async function makeClip(ff: Ffmpeg, file: string, o: ClipOptions = {}): Promise<string> {
  const size = o.size ?? '320x180';
  const rate = o.rate ?? '25';
  const duration = o.duration ?? 2;
  const args = ['-y', '-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=${rate}:duration=${duration}`];
  const audio = o.audioTracks ?? [];
  const graph: string[] = [];
  audio.forEach((channels, i) => {
    args.push('-f', 'lavfi', '-i', `sine=frequency=${440 + 110 * i}:sample_rate=48000:duration=${duration}`);
    const layout = LAYOUTS[channels];
    if (layout === undefined) throw new RangeError(`no test layout for ${channels} channels`);
    // the same tone on every channel, then the named layout (pan keeps it exact)
    const gains = Array.from({ length: channels }, (_, c) => `c${c}=c0`).join('|');
    graph.push(`[${i + 1}:a]pan=${layout}|${gains}[a${i}]`);
  });
  const video: string[] = [];
  if (o.blackSeconds) video.push(`drawbox=t=fill:c=black:enable='lt(t\\,${o.blackSeconds})'`);
  if (o.log) video.push('eq=contrast=0.4:brightness=0.1:saturation=0.3');
  if (o.variableRate) video.push("select='lt(t\\,1)+not(mod(n\\,3))'");
  graph.unshift(`[0:v]${video.length > 0 ? video.join(',') : 'null'}[v]`);
  args.push('-filter_complex', graph.join(';'), '-map', '[v]');
  audio.forEach((_, i) => args.push('-map', `[a${i}]`));
  if (o.variableRate) args.push('-fps_mode', 'vfr');
  const ext = file.slice(file.lastIndexOf('.') + 1).toLowerCase();
  // MXF (OP1a) wants a broadcast codec; Matroska gets what cameras rarely make: H.264 and FLAC
  const codec = o.videoCodec ?? (ext === 'mxf' ? 'mpeg2video' : o.variableRate || ext === 'mkv' ? 'libx264' : 'mpeg4');
  if (codec === 'libx264') args.push('-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p');
  else if (codec === 'mpeg2video') args.push('-c:v', 'mpeg2video', '-q:v', '5');
  else args.push('-c:v', 'mpeg4', '-q:v', '5');
  if (audio.length > 0) args.push('-c:a', ext === 'mp4' ? 'aac' : ext === 'mkv' ? 'flac' : 'pcm_s16le');
  // QuickTime keeps any key (com.apple.quicktime.*, a camera's own) only as mdta metadata
  if (o.metadata && (ext === 'mov' || ext === 'mp4')) args.push('-movflags', 'use_metadata_tags');
  if (o.timecode !== undefined) args.push('-timecode', o.timecode);
  if (o.reel !== undefined) args.push('-metadata:s:v:0', `reel_name=${o.reel}`);
  for (const [k, v] of Object.entries(o.metadata ?? {})) args.push('-metadata', `${k}=${v}`);
  args.push(fileArg(file));
  await ff.run(args, { timeoutMs: 60_000 });
  return file;
}

/** An audio-only QuickTime file (a .mov with one stereo PCM track). */
export async function makeAudioOnly(ff: Ffmpeg, file: string, duration = 1): Promise<string> {
  await ff.run(['-y', '-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=48000:duration=${duration}`, '-ac', '2', '-c:a', 'pcm_s16le', '-f', 'mov', fileArg(file)], {
    timeoutMs: 60_000,
  });
  return file;
}

/** A PNG still image, whatever `file`'s extension (e.g. `photo.mov`). */
export async function makeStillImage(ff: Ffmpeg, file: string): Promise<string> {
  await ff.run(['-y', '-f', 'lavfi', '-i', 'testsrc2=size=160x90:rate=1', '-frames:v', '1', '-c:v', 'png', '-f', 'image2', '-update', '1', fileArg(file)], {
    timeoutMs: 60_000,
  });
  return file;
}

/** The first `fraction` of `source`'s bytes (a copy interrupted mid-way). */
export function truncateCopy(source: string, file: string, fraction: number): string {
  const bytes = fs.readFileSync(source);
  fs.writeFileSync(file, bytes.subarray(0, Math.floor(bytes.length * fraction)));
  return file;
}

/**
 * A copy of `source` (a MOV/MP4) whose video sample entry names a codec no ffmpeg knows
 * (`fourcc` replaced by 'dxx0'): a container ffmpeg reads, a picture it cannot decode.
 */
export function withUndecodableVideo(source: string, file: string, fourcc: string): string {
  const bytes = Buffer.from(fs.readFileSync(source));
  const stsd = bytes.indexOf('stsd', 0, 'latin1');
  const at = bytes.indexOf(fourcc, stsd, 'latin1');
  if (stsd < 0 || at < 0) throw new Error(`no ${fourcc} sample entry in ${source}`);
  bytes.write('dxx0', at, 'latin1');
  fs.writeFileSync(file, bytes);
  return file;
}

/**
 * A 3D LUT in the .cube format (Adobe/Resolve) of `size`^3 points, red varying fastest:
 * `map(r, g, b)` gives the output for each input in 0..1.
 */
export function writeCubeLut(file: string, size: number, map: (r: number, g: number, b: number) => [number, number, number]): string {
  const lines = ['TITLE "dits test"', `LUT_3D_SIZE ${size}`];
  for (let b = 0; b < size; b++)
    for (let g = 0; g < size; g++)
      for (let r = 0; r < size; r++) {
        const out = map(r / (size - 1), g / (size - 1), b / (size - 1));
        lines.push(out.map((v) => Math.min(1, Math.max(0, v)).toFixed(6)).join(' '));
      }
  fs.writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

/** The mean of each channel (0-255) of the frame at `atSeconds` (0 for a still image), scaled to 8x8 RGB. */
export async function meanColour(ff: Ffmpeg, file: string, atSeconds: number, scratch: string): Promise<[number, number, number]> {
  // (no -ss for 0: seeking a JPEG, even to 0, yields no frame)
  const seek = atSeconds > 0 ? ['-ss', atSeconds.toFixed(3)] : [];
  await ff.run(['-y', ...seek, '-i', fileArg(file), '-frames:v', '1', '-vf', 'scale=8:8,format=rgb24', '-f', 'rawvideo', fileArg(scratch)], {
    timeoutMs: 60_000,
  });
  const px = fs.readFileSync(scratch);
  const sum = [0, 0, 0];
  for (let i = 0; i + 2 < px.length; i += 3) for (let c = 0; c < 3; c++) sum[c]! += px[i + c]!;
  const n = px.length / 3;
  return [sum[0]! / n, sum[1]! / n, sum[2]! / n];
}
