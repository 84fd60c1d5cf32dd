/**
 * makeVariants with the real ffmpeg on tiny generated clips (test-clips.ts): fidelity of
 * proxies (drop-frame timecode, 4-channel audio, reel and clip metadata, variable rate made
 * constant), every codec, never upscaled, a LUT applied, a poster that is not black, a sprite
 * sheet consistent with its VTT, a preview; bad inputs as failed outcomes; a full disk and an
 * abort throw and leave nothing behind.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { DitsUserError } from '../errors.js';
import { analyzeFile } from '../media/analyze-container.js';
import { openFfmpeg, type Ffmpeg, type VideoStream } from '../media/ffmpeg.js';
import type { MediaStructure } from '../media/media-structure.js';
import { failureReason, lumaStats, makeVariants, nominalRate, variantRecipe, type MakeInput, type VariantOutcome } from './make-variants.js';
import { recipeKey, type Recipe } from './recipe.js';
import { parseSpriteVtt, spriteLayout, spriteVtt } from './sprite.js';
import { makeAudioOnly, makeClip, makeStillImage, meanColour, truncateCopy, withUndecodableVideo, writeCubeLut } from './test-clips.js';

const recipeOf = (codec: Recipe['codec'], height = 1080, lut?: Recipe['lut']): Recipe => ({ codec, height, ...(lut ? { lut } : {}), key: recipeKey(codec, height, lut?.sha256) });

describe('pure parts', () => {
  it('nominal rate of a variable-rate stream: r_frame_rate snapped to a standard rate, unless it is a timebase', () => {
    expect(nominalRate({ num: 30, den: 1 }, { num: 600, den: 29 })).toEqual({ num: 30, den: 1 });
    expect(nominalRate({ num: 2997, den: 100 }, { num: 28, den: 1 })).toEqual({ num: 30000, den: 1001 });
    expect(nominalRate({ num: 90000, den: 1 }, { num: 25, den: 1 })).toEqual({ num: 25, den: 1 });
    expect(nominalRate(undefined, { num: 17, den: 1 })).toEqual({ num: 17, den: 1 });
  });

  it('luma statistics tell a black frame from a picture', () => {
    expect(lumaStats(Buffer.alloc(576, 16)).brightShare).toBe(0);
    const pic = Buffer.alloc(576, 16);
    pic.fill(200, 0, 100);
    expect(lumaStats(pic).brightShare).toBeCloseTo(100 / 576);
    expect(lumaStats(Buffer.alloc(0))).toEqual({ mean: 0, brightShare: 0 });
  });

  it('sprite layout and VTT: one cue per interval, rectangles inside the sheet', () => {
    const l = spriteLayout(250, 1920, 1080);
    expect(l).toMatchObject({ interval: 3, count: 84, columns: 10, rows: 9, thumbWidth: 160, thumbHeight: 90, width: 1600, height: 810 });
    const cues = parseSpriteVtt(spriteVtt(l, 250, 'sprite.jpg'));
    expect(cues).toHaveLength(84);
    expect(cues[0]).toEqual({ start: 0, end: 3, image: 'sprite.jpg', x: 0, y: 0, w: 160, h: 90 });
    expect(cues[11]).toMatchObject({ start: 33, x: 160, y: 90 });
    expect(cues.at(-1)).toMatchObject({ start: 249, end: 250, x: 480, y: 720 });
    // a sliver at the end gets no thumbnail of its own: the last cue runs to the end
    expect(parseSpriteVtt(spriteVtt(spriteLayout(3.05, 320, 180), 3.05, 's.jpg')).map((c) => [c.start, c.end])).toEqual([[0, 1], [1, 2], [2, 3.05]]);
    // a narrow picture is never upscaled: thumbnails at most its width
    expect(spriteLayout(2, 100, 50)).toMatchObject({ count: 2, thumbWidth: 100, thumbHeight: 50, width: 200, height: 50 });
  });

  it('a failed run explained: a missing decoder by name, else how ffmpeg ended', () => {
    const base = { tool: 'ffmpeg' as const, status: 1, signal: null };
    expect(failureReason({ ...base, lastLines: ['Decoder (codec vvc) not found for input stream #0:0'] }, 'proxy of a.mov')).toBe(
      'this ffmpeg has no decoder for its codec (vvc), so no proxy of a.mov',
    );
    expect(failureReason({ ...base, lastLines: ['Conversion failed!'] }, 'preview')).toBe('ffmpeg could not make the preview (ffmpeg exit 1)');
    expect(failureReason({ ...base, status: null, signal: 'SIGKILL', lastLines: [] }, 'sprite')).toBe('ffmpeg could not make the sprite (ffmpeg killed by SIGKILL)');
  });

  it('recipes of the kinds: the proxy has the whole key, the others only the LUT', () => {
    const r = recipeOf('dnxhr_lb', 720, { file: '/x.cube', sha256: 'abcdef0123456789'.repeat(4) });
    expect(r.key).toBe('dnxhr_lb/h720/lut=abcdef01');
    expect(variantRecipe('proxy', r)).toBe('dnxhr_lb/h720/lut=abcdef01');
    expect(variantRecipe('poster', r)).toBe('lut=abcdef01');
    expect(variantRecipe('sprite', recipeOf('h264'))).toBe('');
  });
});

describe('makeVariants with ffmpeg', () => {
  let dir: string;
  let ff: Ffmpeg;
  let n = 0;
  const work = (): string => path.join(dir, `work-${n++}`);
  const inputOf = async (file: string): Promise<MakeInput> => {
    const a = await analyzeFile(file);
    return { source: file, displayPath: path.basename(file), originalMedia: (a.structure as MediaStructure | undefined) ?? null };
  };
  const ok = (outs: VariantOutcome[], kind: string): Extract<VariantOutcome, { status: 'ok' }> => {
    const o = outs.find((x) => x.kind === kind)!;
    if (o.status !== 'ok') throw new Error(`${kind} failed: ${o.reason}\n${o.ffmpegTail.join('\n')}`);
    return o;
  };
  const leftovers = (d: string): string[] => (fs.existsSync(d) ? fs.readdirSync(d).filter((f) => f.startsWith('.tmp-')) : []);

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dits-variants-'));
    ff = await openFfmpeg({ env: {} });
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('ProRes Proxy of a drop-frame 29.97 clip: frames, rate, duration, timecode, 4-channel audio, reel and metadata kept; poster, sprite+VTT, preview', async () => {
    const clip = await makeClip(ff, path.join(dir, 'df.mov'), {
      rate: '30000/1001',
      duration: 2,
      timecode: '01:00:00;00',
      reel: 'A001',
      audioTracks: [4],
      blackSeconds: 1,
      metadata: { title: 'Scene 12 take 3', comment: 'clip note', 'com.example.camera.clip': 'A001C003' },
    });
    const w = work();
    const progress: number[] = [];
    const outs = await makeVariants(await inputOf(clip), recipeOf('prores_proxy'), w, { ffmpeg: ff, onProgress: (f) => progress.push(f) });
    expect(outs.map((o) => o.kind)).toEqual(['proxy', 'poster', 'sprite', 'sprite-vtt', 'preview']);

    const proxy = ok(outs, 'proxy');
    expect(proxy.file).toBe(path.join(w, 'proxy.mov'));
    expect(proxy.recipe).toBe('prores_proxy/h1080');
    expect(proxy.warnings).toEqual([]);
    const s = (await analyzeFile(proxy.file)).structure!;
    expect(s.startTimecode).toBe('01:00:00;00');
    const v = s.tracks.find((t) => t.type === 'video')!;
    // never upscaled: a 1080-line recipe leaves 320x180 as it is
    expect(v).toMatchObject({ codec: 'apco', width: 320, height: 180, frameRate: 29.97, sampleCount: 60 });
    expect(s.tracks.filter((t) => t.type === 'audio').map((t) => t.channels)).toEqual([4]);
    const probe = await ff.probe(proxy.file);
    expect(probe.streams.find((x) => x.type === 'audio')).toMatchObject({ channels: 4, channelLayout: '4.0' });
    expect(probe.streams.find((x) => x.type === 'data')?.tags.reel_name).toBe('A001');
    expect(probe.tags).toMatchObject({ title: 'Scene 12 take 3', comment: 'clip note', 'com.example.camera.clip': 'A001C003' });
    expect(proxy.fidelity).toMatchObject({
      parser: 'dits',
      frames: { original: 60, proxy: 60 },
      frameRate: { original: 29.97, proxy: 29.97 },
      startTimecode: { original: '01:00:00;00', proxy: '01:00:00;00' },
      audio: { original: [{ channels: 4, layout: '4.0' }], proxy: [{ channels: 4, layout: '4.0' }] },
      reelName: { original: 'A001', proxy: 'A001' },
      metadata: { missing: [] },
    });
    const dur = proxy.fidelity!.durationSeconds as { difference: number; oneFrame: number };
    expect(Math.abs(dur.difference)).toBeLessThanOrEqual(dur.oneFrame);

    // the poster: the clip's first second is black; the poster is a later, bright frame
    const poster = ok(outs, 'poster');
    expect(fs.readFileSync(poster.file).subarray(0, 2)).toEqual(Buffer.from([0xff, 0xd8]));
    expect((poster.fidelity as { atSeconds: number }).atSeconds).toBeGreaterThanOrEqual(1);
    const [r, g, b] = await meanColour(ff, poster.file, 0, path.join(dir, 'px.raw'));
    expect(r + g + b).toBeGreaterThan(3 * 40);
    const [r0, g0, b0] = await meanColour(ff, clip, 0.2, path.join(dir, 'px.raw'));
    expect(r0 + g0 + b0).toBeLessThan(3 * 20); // (the test can fail: the start is black)

    // the sprite sheet and its VTT agree: one cue per second, every rectangle inside the sheet
    const sheet = ok(outs, 'sprite');
    const vtt = ok(outs, 'sprite-vtt');
    expect(path.basename(sheet.file)).toBe('sprite.jpg');
    const pic = (await ff.probe(sheet.file)).streams[0] as VideoStream;
    const cues = parseSpriteVtt(fs.readFileSync(vtt.file, 'utf8'));
    expect(fs.readFileSync(vtt.file, 'utf8').startsWith('WEBVTT\n')).toBe(true);
    expect(cues).toHaveLength(2);
    expect(cues.map((c) => [c.start, c.end])).toEqual([[0, 1], [1, 2.002]]); // 60 frames of 29.97 fps
    for (const c of cues) {
      expect(c.image).toBe('sprite.jpg');
      expect(c.x + c.w).toBeLessThanOrEqual(pic.width);
      expect(c.y + c.h).toBeLessThanOrEqual(pic.height);
    }
    expect(pic.width).toBe(2 * cues[0]!.w);
    // the second thumbnail is the bright part, the first black
    const tiles = path.join(dir, 'tiles.raw');
    await ff.run(['-y', '-i', `file:${sheet.file}`, '-vf', 'scale=2:1,format=gray', '-f', 'rawvideo', `file:${tiles}`]);
    const [left, right] = fs.readFileSync(tiles);
    expect(left!).toBeLessThan(40);
    expect(right!).toBeGreaterThan(40);

    // the preview: small H.264 MP4, moov first, same timing
    const preview = ok(outs, 'preview');
    const ps = (await analyzeFile(preview.file)).structure!;
    expect(ps.container).toBe('mp4');
    expect(ps.fastStart).toBe(true);
    expect(ps.tracks.find((t) => t.type === 'video')).toMatchObject({ codec: 'avc1', sampleCount: 60, height: 180 });
    expect(ps.tracks.find((t) => t.type === 'audio')).toMatchObject({ codec: 'mp4a', channels: 2 });

    // progress: never backwards, ends at 1; nothing temporary left
    expect(progress.length).toBeGreaterThan(3);
    expect(progress.every((f, i) => i === 0 || f > progress[i - 1]!)).toBe(true);
    expect(progress.at(-1)).toBe(1);
    expect(fs.readdirSync(w).sort()).toEqual(['poster.jpg', 'preview.mp4', 'proxy.mov', 'sprite.jpg', 'sprite.vtt']);
  });

  it('a variable-frame-rate clip becomes constant at its nominal rate, with a warning on every variant', async () => {
    const clip = await makeClip(ff, path.join(dir, 'vfr.mov'), { rate: '30', duration: 2, variableRate: true, audioTracks: [2] });
    const p = await ff.probe(clip);
    const sv = p.streams.find((x) => x.type === 'video') as VideoStream;
    expect(sv.realFrameRate).toEqual({ num: 30, den: 1 });
    expect(sv.nbFrames).toBeLessThan(50); // (the test can fail: the clip is variable)
    const outs = await makeVariants(await inputOf(clip), recipeOf('h264'), work(), { ffmpeg: ff, kinds: ['proxy', 'preview'] });
    const proxy = ok(outs, 'proxy');
    expect(proxy.warnings).toEqual([expect.stringMatching(/variable frame rate source \(average 20\.\d+ fps\): made constant at 30 fps/)]);
    expect(ok(outs, 'preview').warnings).toEqual(proxy.warnings);
    const v = (await analyzeFile(proxy.file)).structure!.tracks.find((t) => t.type === 'video')!;
    expect(v.codec).toBe('avc1');
    expect(v.frameRate).toBe(30);
    expect(Math.abs(v.sampleCount - 2 * 30)).toBeLessThanOrEqual(2);
    const out = (await ff.probe(proxy.file)).streams.find((x) => x.type === 'video') as VideoStream;
    expect(out.avgFrameRate).toEqual({ num: 30, den: 1 });
    // Matroska says 30 fps for both rates: the packets counted against the duration tell
    const mkv = await makeClip(ff, path.join(dir, 'vfr.mkv'), { rate: '30', duration: 2, variableRate: true });
    const mp = (await ff.probe(mkv)).streams[0] as VideoStream;
    expect([mp.realFrameRate, mp.avgFrameRate]).toEqual([{ num: 30, den: 1 }, { num: 30, den: 1 }]);
    const fromMkv = ok(await makeVariants({ source: mkv, displayPath: 'vfr.mkv', originalMedia: null }, recipeOf('h264'), work(), { ffmpeg: ff, kinds: ['proxy'] }), 'proxy');
    expect(fromMkv.warnings).toEqual([expect.stringMatching(/made constant at 30 fps/)]);
    expect(Math.abs((await analyzeFile(fromMkv.file)).structure!.tracks[0]!.sampleCount - 60)).toBeLessThanOrEqual(2); // (the last frame is at 1.9 s)
  });

  it('DNxHR LB and H.264 proxies at a lower height: aspect kept, even sizes; the recipe height is a maximum', async () => {
    const clip = await makeClip(ff, path.join(dir, 'wide.mov'), { size: '320x180', duration: 1, audioTracks: [2] });
    const input = await inputOf(clip);
    const dnx = ok(await makeVariants(input, recipeOf('dnxhr_lb', 1080), work(), { ffmpeg: ff, kinds: ['proxy'] }), 'proxy');
    expect((await analyzeFile(dnx.file)).structure!.tracks.find((t) => t.type === 'video')).toMatchObject({ codec: 'AVdh', width: 320, height: 180, sampleCount: 25 });
    const h264 = ok(await makeVariants(input, recipeOf('h264', 91), work(), { ffmpeg: ff, kinds: ['proxy'] }), 'proxy');
    expect(h264.recipe).toBe('h264/h91');
    const v = (await analyzeFile(h264.file)).structure!.tracks.find((t) => t.type === 'video')!;
    expect(v).toMatchObject({ codec: 'avc1', height: 90, sampleCount: 25 });
    expect(v.width! % 2).toBe(0);
    expect(Math.abs(v.width! / v.height! - 16 / 9)).toBeLessThan(0.03);
  });

  it('a clip black all through still gets a poster (the brightest frame tried), with a warning', async () => {
    const clip = await makeClip(ff, path.join(dir, 'night.mov'), { duration: 1, blackSeconds: 5 });
    const poster = ok(await makeVariants(await inputOf(clip), recipeOf('h264'), work(), { ffmpeg: ff, kinds: ['poster'] }), 'poster');
    expect(poster.warnings).toEqual([expect.stringMatching(/^every frame tried for the poster is black or nearly/)]);
    expect(fs.readFileSync(poster.file).subarray(0, 2)).toEqual(Buffer.from([0xff, 0xd8]));
  });

  it('MXF and Matroska sources (no Dits structure: ffprobe and counted packets), timecode and audio kept, FLAC made PCM', async () => {
    const mxf = await makeClip(ff, path.join(dir, 'cam.mxf'), { duration: 1, timecode: '10:00:00:00', audioTracks: [1, 1] });
    const mkv = await makeClip(ff, path.join(dir, 'web.mkv'), { duration: 1, timecode: '10:00:00:00', audioTracks: [2] });
    for (const [file, audio] of [[mxf, [1, 1]], [mkv, [2]]] as const) {
      const outs = await makeVariants({ source: file, displayPath: file, originalMedia: null }, recipeOf('prores_proxy', 90), work(), { ffmpeg: ff, kinds: ['proxy'] });
      const proxy = ok(outs, 'proxy');
      expect(proxy.warnings).toEqual([]);
      const s = (await analyzeFile(proxy.file)).structure!;
      expect(s.startTimecode).toBe('10:00:00:00');
      expect(s.tracks.find((t) => t.type === 'video')).toMatchObject({ sampleCount: 25, height: 90, frameRate: 25 });
      expect(s.tracks.filter((t) => t.type === 'audio').map((t) => t.channels)).toEqual(audio);
      if (file === mkv) expect(s.tracks.find((t) => t.type === 'audio')!.codec).toMatch(/^(in24|lpcm)$/);
    }
  });

  it('log footage with a .cube LUT: applied to the proxy and the poster (after scaling), the recipe names its hash', async () => {
    const clip = await makeClip(ff, path.join(dir, 'log.mov'), { duration: 1, log: true });
    // 17^3, identity but with red lifted hard: a graded proxy is clearly redder
    const lutFile = writeCubeLut(path.join(dir, 'warm.cube'), 17, (r, g, b) => [Math.min(1, r * 1.8 + 0.2), g, b]);
    const lut = { file: lutFile, sha256: 'f00dfeed'.repeat(8) };
    const outs = await makeVariants(await inputOf(clip), recipeOf('prores_proxy', 90, lut), work(), { ffmpeg: ff, kinds: ['proxy', 'poster'] });
    const proxy = ok(outs, 'proxy');
    expect(proxy.recipe).toBe('prores_proxy/h90/lut=f00dfeed');
    expect(ok(outs, 'poster').recipe).toBe('lut=f00dfeed');
    const px = path.join(dir, 'lut.raw');
    const before = await meanColour(ff, clip, 0.5, px);
    const after = await meanColour(ff, proxy.file, 0.5, px);
    expect(after[0] - before[0]).toBeGreaterThan(40);
    expect(Math.abs(after[1] - before[1])).toBeLessThan(12);
    const poster = await meanColour(ff, ok(outs, 'poster').file, 0, px);
    expect(poster[0] - poster[1]).toBeGreaterThan(after[0] - after[1] - 25);
    expect(poster[0] - poster[1]).toBeGreaterThan(30);
    // without a proxy to start from, the sprite is graded from the source (LUT after scaling)
    const plain = ok(await makeVariants(await inputOf(clip), recipeOf('prores_proxy', 90), work(), { ffmpeg: ff, kinds: ['sprite'] }), 'sprite');
    const graded = ok(await makeVariants(await inputOf(clip), recipeOf('prores_proxy', 90, lut), work(), { ffmpeg: ff, kinds: ['sprite'] }), 'sprite');
    const [pr, pg] = await meanColour(ff, plain.file, 0, px);
    const [gr, gg] = await meanColour(ff, graded.file, 0, px);
    expect(gr - pr).toBeGreaterThan(40);
    expect(Math.abs(gg - pg)).toBeLessThan(12);
  });

  describe('bad inputs are failed outcomes, never a throw, and leave nothing', () => {
    let good: string;
    beforeAll(async () => {
      good = await makeClip(ff, path.join(dir, 'good.mov'), { duration: 1, audioTracks: [2] });
    });

    const expectAllFailed = async (file: string, reason: RegExp, tail?: RegExp, w = work()): Promise<void> => {
      const input: MakeInput = { source: file, displayPath: path.basename(file), originalMedia: null };
      const outs = await makeVariants(input, recipeOf('prores_proxy'), w, { ffmpeg: ff });
      expect(outs.map((o) => [o.kind, o.status])).toEqual([
        ['proxy', 'failed'], ['poster', 'failed'], ['sprite', 'failed'], ['sprite-vtt', 'failed'], ['preview', 'failed'],
      ]);
      for (const o of outs) if (o.status === 'failed') expect(o.reason).toMatch(reason);
      if (tail) expect((outs[0] as { ffmpegTail: string[] }).ffmpegTail.join('\n')).toMatch(tail);
      expect(fs.readdirSync(w)).toEqual([]);
    };

    it('a 0-byte file (and the finished outputs of an earlier run are not taken for this one)', async () => {
      const f = path.join(dir, 'empty.mov');
      fs.writeFileSync(f, '');
      const w = work();
      fs.mkdirSync(w);
      for (const name of ['proxy.mov', 'poster.jpg', 'sprite.jpg', 'sprite.vtt', 'preview.mp4']) fs.writeFileSync(path.join(w, name), 'stale');
      await expectAllFailed(f, /empty \(0 bytes\)/, undefined, w);
    });

    it('a source that is not there throws variant-source-unreadable (not a media problem)', async () => {
      const err = await makeVariants({ source: path.join(dir, 'nope.mov'), displayPath: 'nope.mov', originalMedia: null }, recipeOf('h264'), work(), { ffmpeg: ff }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DitsUserError);
      expect((err as DitsUserError).code).toBe('variant-source-unreadable');
      expect((err as DitsUserError).message).toContain('nope.mov');
    });

    it('a truncated file (its moov at the end is gone)', async () => {
      await expectAllFailed(truncateCopy(good, path.join(dir, 'cut.mov'), 0.6), /ffprobe cannot read it as media/, /moov atom not found/);
    });

    it('a corrupt file (not media at all)', async () => {
      const f = path.join(dir, 'junk.mov');
      fs.writeFileSync(f, Buffer.alloc(4096, 0x5a));
      await expectAllFailed(f, /ffprobe cannot read it as media/, /Invalid data/);
    });

    it('an audio-only .mov', async () => {
      await expectAllFailed(await makeAudioOnly(ff, path.join(dir, 'voice.mov')), /audio only: no video track \(1 audio track\)/);
    });

    it('a still image named .mov', async () => {
      await expectAllFailed(await makeStillImage(ff, path.join(dir, 'photo.mov')), /a still image \(png_pipe\), not a video/);
    });

    it('a codec this ffmpeg cannot decode', async () => {
      const pr = path.join(dir, 'pr.mov');
      await ff.run(['-y', '-f', 'lavfi', '-i', 'testsrc2=size=160x90:rate=25:duration=1', '-c:v', 'prores_ks', '-profile:v', '0', `file:${pr}`]);
      await expectAllFailed(withUndecodableVideo(pr, path.join(dir, 'odd.mov'), 'apco'), /cannot decode its video/);
    });

    it('a file truncated inside its media data (moov first): fidelity rejects the short proxy', async () => {
      const fast = path.join(dir, 'fast.mov');
      await ff.run(['-y', '-i', `file:${good}`, '-c', 'copy', '-movflags', '+faststart', `file:${fast}`]);
      const cut = truncateCopy(fast, path.join(dir, 'fastcut.mov'), 0.5);
      const w = work();
      const outs = await makeVariants(await inputOf(cut), recipeOf('prores_proxy'), w, { ffmpeg: ff, kinds: ['proxy'] });
      expect(outs[0]!.status).toBe('failed');
      expect((outs[0] as { reason: string }).reason).toMatch(/the proxy does not match the original: frame count \d+, the original has 25|ffmpeg could not make the proxy/);
      expect(fs.readdirSync(w)).toEqual([]);
    });
  });

  it('a source read over HTTP with ranges on 127.0.0.1 (as a server worker feeds it)', async () => {
    const clip = await makeClip(ff, path.join(dir, 'served.mov'), { duration: 1, timecode: '00:59:59:00', audioTracks: [2] });
    const bytes = fs.readFileSync(clip);
    let ranged = 0;
    const server = http.createServer((req, res) => {
      const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
      if (!m) {
        res.writeHead(200, { 'content-length': bytes.length, 'accept-ranges': 'bytes' });
        res.end(req.method === 'HEAD' ? undefined : bytes);
        return;
      }
      ranged++;
      const start = Number(m[1]);
      const end = m[2] ? Math.min(Number(m[2]), bytes.length - 1) : bytes.length - 1;
      res.writeHead(206, { 'content-length': end - start + 1, 'content-range': `bytes ${start}-${end}/${bytes.length}`, 'accept-ranges': 'bytes' });
      res.end(req.method === 'HEAD' ? undefined : bytes.subarray(start, end + 1));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/served.mov`;
      const { originalMedia } = await inputOf(clip);
      const outs = await makeVariants({ source: url, displayPath: 'served.mov', originalMedia }, recipeOf('prores_proxy', 90), work(), { ffmpeg: ff, kinds: ['proxy', 'poster'] });
      const proxy = ok(outs, 'proxy');
      ok(outs, 'poster');
      expect((await analyzeFile(proxy.file)).structure!.startTimecode).toBe('00:59:59:00');
      expect(ranged).toBeGreaterThan(0);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('an abort rejects and leaves no file, temporary or finished', async () => {
    const clip = await makeClip(ff, path.join(dir, 'abort.mov'), { duration: 2 });
    const w = work();
    const ac = new AbortController();
    const err = await makeVariants(await inputOf(clip), recipeOf('prores_proxy'), w, { ffmpeg: ff, signal: ac.signal, onProgress: () => ac.abort(new Error('stop')) }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DitsUserError);
    expect((err as DitsUserError).code).toBe('ffmpeg-aborted');
    expect(fs.readdirSync(w)).toEqual([]);
    // aborted after the proxy was finished: it goes too, as no outcome names it
    const late = new AbortController();
    let sawProxyDone = false;
    const w2 = work();
    const err2 = await makeVariants(await inputOf(clip), recipeOf('prores_proxy'), w2, {
      ffmpeg: ff,
      signal: late.signal,
      onProgress: (f) => {
        if (f >= 0.6 && fs.existsSync(path.join(w2, 'proxy.mov'))) {
          sawProxyDone = true;
          late.abort(new Error('stop late'));
        }
      },
    }).catch((e: unknown) => e);
    expect(sawProxyDone).toBe(true);
    expect(err2).toBeInstanceOf(Error);
    expect(fs.readdirSync(w2)).toEqual([]);
  });

  // a small tmpfs is a real full disk; mounting one needs root (CAP_SYS_ADMIN)
  const tiny = path.join(os.tmpdir(), `dits-full-${process.pid}`);
  const canMount = ((): boolean => {
    if (process.platform !== 'linux' || process.getuid?.() !== 0) return false;
    try {
      fs.mkdirSync(tiny, { recursive: true });
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=96k', 'tmpfs', tiny], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();
  afterAll(() => {
    if (canMount) execFileSync('umount', [tiny], { stdio: 'ignore' });
    fs.rmSync(tiny, { recursive: true, force: true });
  });

  it.skipIf(!canMount)('a full disk throws disk-full and leaves no file, temporary or finished', async () => {
    const clip = await makeClip(ff, path.join(dir, 'big.mov'), { duration: 2, size: '320x180', audioTracks: [2] });
    const w = path.join(tiny, 'work');
    const err = await makeVariants(await inputOf(clip), recipeOf('prores_proxy'), w, { ffmpeg: ff, kinds: ['proxy'] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DitsUserError);
    expect((err as DitsUserError).code).toBe('disk-full');
    expect((err as DitsUserError).message).toContain(w);
    expect(fs.readdirSync(w)).toEqual([]);
    expect(leftovers(w)).toEqual([]);
  });
});
