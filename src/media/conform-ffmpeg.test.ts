/**
 * buildConformArgs / buildJoinArgs with the real ffmpeg, at 29.97 (where frames are not whole
 * milliseconds and samples not whole per frame): the segments are the source frames named,
 * and a render in passes joined without re-encoding is the one-pass render, timestamps and all.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConformEncodeSegment, type Ffmpeg, buildConcatList, buildConformArgs, buildJoinArgs, openFfmpeg } from './ffmpeg.js';

let dir: string;
let ff: Ffmpeg;
let src: string;
const RATE = { num: 30000, den: 1001 };

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dits-conform-'));
  ff = await openFfmpeg({ env: process.env });
  src = path.join(dir, 'src.mov');
  // every frame differs (luma = frame number), drop-frame timecode, a tone
  execFileSync('ffmpeg', ['-v', 'error', '-nostdin', '-y', '-f', 'lavfi', '-i', "testsrc2=size=96x64:rate=30000/1001,geq=lum='16+N*2':cb=90:cr=128",
    '-f', 'lavfi', '-i', 'sine=frequency=500:sample_rate=48000', '-t', '3', '-c:v', 'prores_ks', '-profile:v', '3', '-c:a', 'pcm_s16le', '-timecode', '01:00:00;00', src]);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const md5s = (file: string, stream: string): string[] =>
  execFileSync('ffmpeg', ['-v', 'error', '-nostdin', '-i', file, '-map', `0:${stream}`, '-f', 'framemd5', '-'], { maxBuffer: 1 << 26 })
    .toString('utf8').split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(',').pop()!.trim());
const md5 = (file: string, stream: string): string => execFileSync('ffmpeg', ['-v', 'error', '-nostdin', '-i', file, '-map', `0:${stream}`, '-f', 'md5', '-']).toString('utf8').trim();
const videoPacketSteps = (file: string): number[] => {
  const pts = execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v', '-show_entries', 'packet=pts', '-of', 'csv=p=0', file]).toString('utf8').trim().split('\n').map(Number);
  return pts.slice(1).map((p, i) => p - pts[i]!);
};

describe('conform with ffmpeg at 29.97', () => {
  const segments: ConformEncodeSegment[] = [
    { kind: 'clip', file: '', sourceStart: 37, frames: 11, audio: true, scale: false },
    { kind: 'gap', frames: 7 },
    { kind: 'clip', file: '', sourceStart: 1, frames: 9, audio: true, scale: false },
    { kind: 'clip', file: '', sourceStart: 50, frames: 13, audio: false, scale: false },
  ];
  const base = { frameRate: RATE, width: 96, height: 64, audio: { layout: 'mono', sampleRate: 48000 }, codec: 'ffv1' as const, pixelFormat: 'yuv422p10le' };
  const segs = (): ConformEncodeSegment[] => segments.map((s) => (s.kind === 'clip' ? { ...s, file: src } : s));

  it('each segment holds exactly the source frames it names, the audio exactly its samples', async () => {
    const one = path.join(dir, 'one.mov');
    await ff.run(buildConformArgs({ ...base, segments: segs(), output: one, container: 'mov', timecode: '01:00:00;00' }));
    const out = md5s(one, 'v');
    const source = md5s(src, 'v');
    expect(out).toHaveLength(40);
    expect(out.slice(0, 11)).toEqual(source.slice(37, 48));
    expect(out.slice(18, 27)).toEqual(source.slice(1, 10));
    expect(out.slice(27, 40)).toEqual(source.slice(50, 63));
    expect(new Set(out.slice(11, 18)).size).toBe(1); // the gap: one black frame, seven times
    // 40 frames at 29.97 = 64064 samples at 48 kHz
    const samples = execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'a', '-show_entries', 'stream=nb_frames', '-of', 'csv=p=0', one]).toString('utf8').trim();
    expect(Number(samples)).toBe(64064);
    expect(new Set(videoPacketSteps(one))).toEqual(new Set([1001]));
  });

  it('in passes joined without re-encoding: the same frames, samples and even timestamps', async () => {
    const one = path.join(dir, 'one.mov');
    const parts: { file: string; frames: number }[] = [];
    let offset = 0;
    for (const [i, s] of segs().entries()) {
      const file = path.join(dir, `part${i}.mov`);
      await ff.run(buildConformArgs({ ...base, segments: [s], output: file, container: 'mov', recordOffset: offset }));
      parts.push({ file, frames: s.frames });
      offset += s.frames;
    }
    const list = path.join(dir, 'list.txt');
    fs.writeFileSync(list, buildConcatList(parts, RATE));
    const joined = path.join(dir, 'joined.mov');
    await ff.run(buildJoinArgs({ listFile: list, output: joined, container: 'mov', audio: true, timecode: '01:00:00;00' }));
    expect(md5s(joined, 'v')).toEqual(md5s(one, 'v'));
    expect(md5(joined, 'a')).toBe(md5(one, 'a'));
    // every frame lasts 1001/30000 s: the parts' durations come from their frame counts, not the .mov's millisecond scale
    expect(new Set(videoPacketSteps(joined))).toEqual(new Set([1001]));
  });

  it('a long-GOP H.264 source with B-frames: segments from the middle of a GOP are still the named frames', async () => {
    const h264 = path.join(dir, 'src.mp4');
    execFileSync('ffmpeg', ['-v', 'error', '-nostdin', '-y', '-f', 'lavfi', '-i', "testsrc2=size=96x64:rate=30000/1001,geq=lum='16+N*2':cb=90:cr=128",
      '-f', 'lavfi', '-i', 'sine=frequency=500:sample_rate=48000', '-t', '4', '-c:v', 'libx264', '-g', '30', '-bf', '3', '-pix_fmt', 'yuv420p', '-c:a', 'aac', h264]);
    const out = path.join(dir, 'h264.mkv');
    const clips: [number, number][] = [[47, 11], [1, 9], [89, 20]];
    await ff.run(buildConformArgs({
      ...base,
      pixelFormat: 'yuv420p',
      segments: clips.map(([sourceStart, frames]) => ({ kind: 'clip', file: h264, sourceStart, frames, audio: true, scale: false })),
      output: out,
      container: 'matroska',
    }));
    const got = md5s(out, 'v');
    const source = md5s(h264, 'v');
    expect(got).toEqual(clips.flatMap(([start, n]) => source.slice(start, start + n)));
  });
});
