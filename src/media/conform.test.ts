import { describe, expect, it } from 'vitest';
import { DitsUserError } from '../errors.js';
import { type ConformSource, planConform } from './conform.js';
import { buildConformArgs } from './ffmpeg.js';
import { rat } from './nle/rational-time.js';
import { parseTimeline, type Timeline } from './nle/timeline.js';

const source = (path: string, o: Partial<ConformSource> = {}): ConformSource => ({
  path,
  file: `/repo/${path}`,
  frameRate: rat(25),
  frames: 100,
  width: 320,
  height: 180,
  pixelFormat: 'yuv422p10le',
  audio: { streams: 1, channels: 2, layout: 'stereo', sampleRate: 48000 },
  ...o,
});

const edl = (events: string): Timeline => parseTimeline('cut.edl', Buffer.from(`FCM: NON-DROP FRAME\n${events}`), { frameRate: rat(25) });
const pathOf = (c: { reference: { name: string } }): string => `Media/${c.reference.name}`;

describe('planConform', () => {
  it('places EDL source timecode against the file\'s own start timecode, fills gaps, keeps audio per clip', () => {
    const t = edl(`001  AX  AA/V  C  10:00:01:00 10:00:02:00 01:00:00:00 01:00:01:00
* FROM CLIP NAME: a.mov
002  AX  V  C  00:00:00:05 00:00:00:15 01:00:02:00 01:00:02:10
* FROM CLIP NAME: b.mov
`);
    const plan = planConform(t, new Map([['Media/a.mov', source('Media/a.mov', { startTimecode: '10:00:00:00' })], ['Media/b.mov', source('Media/b.mov', { width: 640, height: 360 })]]), pathOf);
    expect(plan.segments).toEqual([
      { kind: 'clip', clip: 1, label: 'event 001 (a.mov) at 01:00:00:00', path: 'Media/a.mov', file: '/repo/Media/a.mov', sourceStart: 25, frames: 25, recordStart: 0, audio: true, audioStreams: 1, scale: false },
      { kind: 'gap', recordStart: 25, frames: 25 },
      { kind: 'clip', clip: 2, label: 'event 002 (b.mov) at 01:00:02:00', path: 'Media/b.mov', file: '/repo/Media/b.mov', sourceStart: 5, frames: 10, recordStart: 50, audio: false, audioStreams: 1, scale: true },
    ]);
    expect(plan.frames).toBe(60);
    expect([plan.width, plan.height, plan.startTimecode]).toEqual([320, 180, '01:00:00:00']);
    expect(plan.audio).toEqual({ layout: 'stereo', sampleRate: 48000 });
    expect(plan.warnings).toEqual(['event 002 (b.mov) at 01:00:02:00: Media/b.mov is scaled to 320x180']);
  });

  it('a source with one mono stream per channel keeps every channel (merged, no speaker layout)', () => {
    const t = edl(`001  AX  AA/V  C  00:00:00:00 00:00:01:00 01:00:00:00 01:00:01:00
* FROM CLIP NAME: a.mov
`);
    const plan = planConform(t, new Map([['Media/a.mov', source('Media/a.mov', { audio: { streams: 4, channels: 4, layout: 'mono', sampleRate: 48000 } })]]), pathOf);
    expect(plan.audio).toEqual({ layout: '4c', sampleRate: 48000 });
    const graph = buildConformArgs({ ...plan, codec: 'ffv1', output: '/o', container: 'mov' }).find((a) => a.includes('amerge'));
    expect(graph).toMatch(/^\[0:v:0\].*;\[0:a:0\]\[0:a:1\]\[0:a:2\]\[0:a:3\]amerge=inputs=4,aresample=48000,aformat=channel_layouts=4c,/);
  });

  it('refuses, listing each, a source at another frame rate and a range outside the file', () => {
    const t = edl(`001  AX  V  C  00:00:01:00 00:00:02:00 01:00:00:00 01:00:01:00
* FROM CLIP NAME: a.mov
002  AX  V  C  00:00:03:00 00:00:05:00 01:00:01:00 01:00:03:00
* FROM CLIP NAME: b.mov
`);
    let error: unknown;
    try {
      planConform(t, new Map([['Media/a.mov', source('Media/a.mov', { frameRate: rat(24000, 1001) })], ['Media/b.mov', source('Media/b.mov')]]), pathOf);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(DitsUserError);
    expect((error as DitsUserError).code).toBe('render-source-mismatch');
    expect((error as DitsUserError).message).toMatch(/event 001 \(a\.mov\) at 01:00:00:00: Media\/a\.mov is 23\.976 fps, the timeline 25 fps/);
    expect((error as DitsUserError).message).toMatch(/event 002 \(b\.mov\) at 01:00:01:00: source 00:00:03:00-00:00:05:00 is outside Media\/b\.mov \(no timecode, taken as 00:00:00:00 \+ 100 frames\)/);
  });
});

describe('buildConformArgs', () => {
  it('seeks half a frame before each first frame, counts frames, cuts audio by samples from the record positions', () => {
    const args = buildConformArgs({
      segments: [
        { kind: 'clip', file: '/m/a.mov', sourceStart: 0, frames: 10, audio: true, scale: false },
        { kind: 'gap', frames: 3 },
        { kind: 'clip', file: '-y', sourceStart: 37, frames: 11, audio: false, scale: true },
      ],
      frameRate: rat(30000, 1001),
      width: 320,
      height: 180,
      audio: { layout: 'stereo', sampleRate: 48000 },
      codec: 'prores_hq',
      output: '/out/.m.tmp',
      container: 'mov',
      timecode: '01:00:00;00',
    });
    // frame 37 at 29.97 is at 1.234567 s; half a frame before is 1.217884 s
    expect(args.slice(0, 10)).toEqual(['-y', '-t', '0.367034', '-i', 'file:/m/a.mov', '-ss', '1.217883', '-t', '0.400400', '-i']);
    expect(args[10]).toBe('file:-y'); // a file named like an option stays a file
    const graph = args[args.indexOf('-filter_complex') + 1]!.split(';');
    expect(graph).toEqual([
      '[0:v:0]trim=end_frame=10,setpts=PTS-STARTPTS,setsar=1,format=yuv422p10le[v0]',
      // 10 frames at 29.97 = 16016 samples at 48 kHz
      '[0:a:0]aresample=48000,aformat=channel_layouts=stereo,atrim=start_sample=0:end_sample=16016,asetpts=PTS-STARTPTS,apad=whole_len=16016[a0]',
      'color=c=black:s=320x180:r=30000/1001,trim=end_frame=3,setsar=1,format=yuv422p10le[v1]',
      // record frames 10-13: round(13*1601.6) - round(10*1601.6) = 20821 - 16016
      'anullsrc=r=48000:cl=stereo,atrim=end_sample=4805[a1]',
      '[1:v:0]trim=end_frame=11,setpts=PTS-STARTPTS,scale=320:180:force_original_aspect_ratio=decrease,pad=320:180:(ow-iw)/2:(oh-ih)/2,setsar=1,format=yuv422p10le[v2]',
      'anullsrc=r=48000:cl=stereo,atrim=end_sample=17617[a2]',
      '[v0][a0][v1][a1][v2][a2]concat=n=3:v=1:a=1[vout][aout]',
    ]);
    expect(args.slice(args.indexOf('-map'))).toEqual([
      '-map', '[vout]', '-map', '[aout]',
      '-c:v', 'prores_ks', '-profile:v', '3', '-vendor', 'apl0', '-pix_fmt', 'yuv422p10le',
      '-r', '30000/1001', '-c:a', 'pcm_s24le', '-timecode', '01:00:00;00', '-f', 'mov', 'file:/out/.m.tmp',
    ]);
  });

  it('a pass of a longer render rounds its audio from the absolute record positions', () => {
    const one = (recordOffset: number): string | undefined =>
      buildConformArgs({ segments: [{ kind: 'gap', frames: 1 }], frameRate: rat(30000, 1001), width: 16, height: 16, audio: { layout: 'mono', sampleRate: 48000 }, codec: 'ffv1', output: '/o', container: 'mov', recordOffset })
        .find((a) => a.includes('anullsrc'));
    // 1601.6 samples a frame: frame 0 gets round(1601.6) = 1602, frame 1 gets round(3203.2) - 1602 = 1601
    expect(one(0)).toMatch(/atrim=end_sample=1602\[a0\]/);
    expect(one(1)).toMatch(/atrim=end_sample=1601\[a0\]/);
  });
});
