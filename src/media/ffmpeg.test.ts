/**
 * ffmpeg.ts: the argument builders and parsers as pure units, then the real ffmpeg and
 * ffprobe (installed by scripts/setup.sh) on tiny clips made with lavfi sources.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DitsUserError } from '../errors.js';
import {
  FfmpegError,
  LastLines,
  ProgressParser,
  buildPosterArgs,
  buildProbeArgs,
  buildProxyEncodeArgs,
  buildVideoFilter,
  escapeFilterValue,
  inputArg,
  openFfmpeg,
  parseFfmpegVersion,
  parseProbeJson,
  parseRational,
  type Ffmpeg,
  type FfmpegProgress,
  type VideoStream,
} from './ffmpeg.js';

describe('argument builders', () => {
  it('ProRes Proxy: first video and all audio, scaled without upscaling, metadata and timecode kept', () => {
    expect(
      buildProxyEncodeArgs({ input: 'in.mov', output: 'out.mov', codec: 'prores_proxy', maxHeight: 1080, timecode: '01:00:00;00' }),
    ).toEqual([
      '-y', '-i', 'file:in.mov', '-map', '0:v:0', '-map', '0:a?', '-map_metadata', '0',
      '-vf', 'scale=-2:trunc(min(ih\\,1080)/2)*2',
      '-c:v', 'prores_ks', '-profile:v', '0', '-vendor', 'apl0', '-pix_fmt', 'yuv422p10le',
      '-c:a', 'copy', '-timecode', '01:00:00;00', 'file:out.mov',
    ]);
  });

  it('DNxHR LB with PCM audio, constant rate and a LUT after scaling', () => {
    const args = buildProxyEncodeArgs({
      input: 'a.mxf',
      output: 'b.mov',
      codec: 'dnxhr_lb',
      maxHeight: 720,
      audio: 'pcm_s24le',
      frameRate: { num: 30000, den: 1001 },
      lutFile: '/luts/slog3.cube',
    });
    expect(args.slice(args.indexOf('-vf'), args.indexOf('-vf') + 2)).toEqual([
      '-vf',
      'fps=30000/1001,scale=-2:trunc(min(ih\\,720)/2)*2,lut3d=file=/luts/slog3.cube',
    ]);
    expect(args.join(' ')).toContain('-c:v dnxhd -profile:v dnxhr_lb -pix_fmt yuv422p');
    expect(args.join(' ')).toContain('-r 30000/1001 -c:a pcm_s24le file:b.mov');
  });

  it('a loopback http:// source goes to ffmpeg as a URL, anything else as a file; reel name and all tags on request', () => {
    const args = buildProxyEncodeArgs({
      input: 'http://127.0.0.1:4711/v1/src', output: 'http://example.com/x.mov', codec: 'prores_proxy', maxHeight: 1080, reelName: 'A001', keepAllTags: true,
    });
    expect(args.slice(0, 3)).toEqual(['-y', '-i', 'http://127.0.0.1:4711/v1/src']);
    expect(args.slice(-5)).toEqual(['-metadata:s:v:0', 'reel_name=A001', '-movflags', 'use_metadata_tags', 'file:http://example.com/x.mov']);
    expect(inputArg('http://localhost/a')).toBe('http://localhost/a');
    expect(inputArg('http://example.com/a')).toBe('file:http://example.com/a');
    expect(inputArg('http://127.0.0.1.evil/a')).toBe('file:http://127.0.0.1.evil/a');
    expect(inputArg('https://127.0.0.1/a')).toBe('file:https://127.0.0.1/a');
    expect(buildProbeArgs('http://[::1]:80/x').at(-1)).toBe('http://[::1]:80/x');
  });

  it('H.264 without audio maps no audio', () => {
    const args = buildProxyEncodeArgs({ input: 'a.mp4', output: 'b.mp4', codec: 'h264', maxHeight: 540, audio: 'none' });
    expect(args).not.toContain('0:a?');
    expect(args).not.toContain('-c:a');
    expect(args.join(' ')).toContain('-c:v libx264');
  });

  it('escapes a LUT path at both filtergraph levels', () => {
    // the example of ffmpeg-filters(1), "Notes on filtergraph escaping"
    expect(escapeFilterValue("this is a 'string': may contain one, or more, special characters")).toBe(
      "this is a \\\\\\'string\\\\\\'\\\\: may contain one\\, or more\\, special characters",
    );
    expect(buildVideoFilter({ maxHeight: 100, lutFile: '/a b/x,y.cube' })).toBe('scale=-2:trunc(min(ih\\,100)/2)*2,lut3d=file=/a b/x\\,y.cube');
    expect(() => buildVideoFilter({ maxHeight: 0 })).toThrow(RangeError);
  });

  it('poster: one JPEG, seeking on the input', () => {
    expect(buildPosterArgs({ input: 'in.mov', output: 'p.jpg', atSeconds: 1.5, maxHeight: 360 })).toEqual([
      '-y', '-ss', '1.500', '-i', 'file:in.mov', '-map', '0:v:0', '-frames:v', '1',
      '-vf', 'scale=-2:trunc(min(ih\\,360)/2)*2', '-q:v', '2', '-f', 'image2', '-update', '1', 'file:p.jpg',
    ]);
    expect(() => buildPosterArgs({ input: 'a', output: 'b', atSeconds: -1 })).toThrow(RangeError);
  });

  it('probe arguments ask for JSON, format and streams', () => {
    expect(buildProbeArgs('x.mov', { countPackets: true })).toEqual([
      '-hide_banner', '-loglevel', 'error', '-print_format', 'json', '-show_format', '-show_streams', '-count_packets', '-i', 'file:x.mov',
    ]);
  });
});

describe('parsers', () => {
  it('reads ffmpeg version lines', () => {
    expect(parseFfmpegVersion('ffmpeg version 5.1.9-0+deb12u1 Copyright (c) 2000-2026\nbuilt with')).toEqual({ major: 5, minor: 1 });
    expect(parseFfmpegVersion('ffmpeg version n6.1 Copyright')).toEqual({ major: 6, minor: 1 });
    expect(parseFfmpegVersion('ffmpeg version 4.4.2-0ubuntu0.22.04.1 Copyright')).toEqual({ major: 4, minor: 4 });
    expect(parseFfmpegVersion('ffmpeg version N-113000-gabcdef Copyright')).toBe('dev');
    expect(parseFfmpegVersion('ffprobe version 5.1 Copyright', 'ffprobe')).toEqual({ major: 5, minor: 1 });
    expect(parseFfmpegVersion('hello')).toBeNull();
  });

  it('reads rationals', () => {
    expect(parseRational('30000/1001')).toEqual({ num: 30000, den: 1001 });
    expect(parseRational('0/0')).toBeUndefined();
    expect(parseRational('25')).toBeUndefined();
  });

  it('parses -progress blocks split anywhere, N/A left out', () => {
    const got: FfmpegProgress[] = [];
    const p = new ProgressParser((e) => got.push(e));
    const text =
      'frame=10\nfps=0.00\nout_time_us=400000\ntotal_size=N/A\nspeed=N/A\nprogress=continue\n' +
      'frame=50\nout_time_us=2000000\ntotal_size=12345\nspeed=1.5x\nprogress=end\n';
    for (let i = 0; i < text.length; i += 7) p.push(text.slice(i, i + 7));
    expect(got).toEqual([
      { frame: 10, outTimeUs: 400000, end: false },
      { frame: 50, outTimeUs: 2000000, totalSize: 12345, speed: 1.5, end: true },
    ]);
  });

  it('keeps only the last lines of stderr, each bounded', () => {
    const l = new LastLines(3);
    for (let i = 0; i < 100; i++) l.push(`line ${i}\n`);
    l.push('x'.repeat(10_000));
    l.push('y\r\npartial');
    const lines = l.get();
    expect(lines).toHaveLength(3);
    expect(lines[0].length).toBeLessThanOrEqual(2001);
    expect(lines).toEqual(['line 99', 'x'.repeat(2000) + '…', 'partial']);
  });

  it('types ffprobe JSON: streams, rates, timecode from a tmcd stream', () => {
    const r = parseProbeJson({
      streams: [
        { index: 0, codec_type: 'video', codec_name: 'prores', width: 1920, height: 1080, avg_frame_rate: '30000/1001', r_frame_rate: '30000/1001', nb_frames: '300', duration: '10.010000' },
        { index: 1, codec_type: 'audio', codec_name: 'pcm_s24le', channels: 4, channel_layout: '4.0', sample_rate: '48000' },
        { index: 2, codec_type: 'data', codec_tag_string: 'tmcd', tags: { timecode: '01:00:00;00' } },
      ],
      format: { format_name: 'mov,mp4,m4a,3gp,3g2,mj2', duration: '10.010000', tags: { major_brand: 'qt  ' } },
    });
    const v = r.streams[0] as VideoStream;
    expect(v).toMatchObject({ type: 'video', width: 1920, height: 1080, nbFrames: 300, avgFrameRate: { num: 30000, den: 1001 } });
    expect(r.streams[1]).toMatchObject({ type: 'audio', channels: 4, channelLayout: '4.0', sampleRate: 48000 });
    expect(r.streams[2]).toMatchObject({ type: 'data', codecTag: 'tmcd' });
    expect(r.timecode).toBe('01:00:00;00');
    expect(r.duration).toBeCloseTo(10.01);
  });
});

describe('real ffmpeg', () => {
  let dir: string;
  let ff: Ffmpeg;
  let clip: string;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dits-ffmpeg-'));
    ff = await openFfmpeg({ env: {} });
    clip = path.join(dir, 'src.mov');
    // 1 s of 320x240 at 25 fps with a 2-channel tone and a start timecode
    await ff.run([
      '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25:duration=1',
      '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000:duration=1',
      '-ac', '2', '-c:v', 'mpeg4', '-q:v', '5', '-c:a', 'pcm_s16le', '-timecode', '01:02:03:04', clip,
    ]);
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('finds Debian ffmpeg 4.4 or newer', () => {
    expect(ff.version!.major * 100 + ff.version!.minor).toBeGreaterThanOrEqual(404);
    expect(ff.versionLine).toMatch(/^ffmpeg version /);
  });

  it('probes a clip: size, rate, frames, audio, timecode', async () => {
    const r = await ff.probe(clip);
    const v = r.streams.find((s) => s.type === 'video') as VideoStream;
    expect(v).toMatchObject({ codec: 'mpeg4', width: 320, height: 240, nbFrames: 25, avgFrameRate: { num: 25, den: 1 } });
    expect(r.streams.find((s) => s.type === 'audio')).toMatchObject({ codec: 'pcm_s16le', channels: 2, channelLayout: 'stereo', sampleRate: 48000 });
    expect(r.timecode).toBe('01:02:03:04');
    expect(r.duration).toBeCloseTo(1, 1);
  });

  it('encodes a ProRes Proxy at 120 lines: even width, same frame count, timecode kept, progress to the end', async () => {
    const out = path.join(dir, 'proxy.mov');
    const events: FfmpegProgress[] = [];
    const args = buildProxyEncodeArgs({
      input: clip,
      output: out,
      codec: 'prores_proxy',
      maxHeight: 120,
      audio: 'pcm_s16le',
      frameRate: { num: 25, den: 1 },
      timecode: '01:02:03:04',
    });
    await ff.run(args, { onProgress: (e) => events.push(e), timeoutMs: 60_000 });
    const r = await ff.probe(out, { countPackets: true });
    const v = r.streams.find((s) => s.type === 'video') as VideoStream;
    expect(v).toMatchObject({ codec: 'prores', height: 120, nbFrames: 25, nbReadPackets: 25 });
    expect(v.width % 2).toBe(0);
    expect(v.width).toBe(160);
    expect(r.streams.find((s) => s.type === 'audio')).toMatchObject({ codec: 'pcm_s16le', channels: 2 });
    expect(r.timecode).toBe('01:02:03:04');
    expect(events.length).toBeGreaterThan(0);
    expect(events.at(-1)!.end).toBe(true);
    expect(events.slice(0, -1).every((e) => !e.end)).toBe(true);
    expect(events.at(-1)!.frame).toBe(25);
  });

  it('a file named like a protocol or an option is read as a file', async () => {
    const odd = path.join(dir, 'concat:-y.mov');
    fs.copyFileSync(clip, odd);
    const out = path.join(dir, 'http:proxy.mov');
    await ff.run(buildProxyEncodeArgs({ input: odd, output: out, codec: 'prores_proxy', maxHeight: 120 }));
    expect((await ff.probe(out)).streams[0]).toMatchObject({ codec: 'prores', height: 120 });
  });

  it('never upscales, and writes a poster JPEG', async () => {
    const out = path.join(dir, 'big.mov');
    await ff.run(buildProxyEncodeArgs({ input: clip, output: out, codec: 'prores_proxy', maxHeight: 1080, audio: 'none' }));
    const big = await ff.probe(out);
    expect(big.streams.filter((s) => s.type === 'audio')).toEqual([]);
    expect(big.streams[0]).toMatchObject({ type: 'video', width: 320, height: 240 });
    expect(big.timecode).toBe('01:02:03:04'); // kept from the source's stream metadata
    const poster = path.join(dir, 'poster.jpg');
    await ff.run(buildPosterArgs({ input: clip, output: poster, atSeconds: 0.5, maxHeight: 60 }));
    expect(fs.readFileSync(poster).subarray(0, 2)).toEqual(Buffer.from([0xff, 0xd8]));
    expect((await ff.probe(poster)).streams[0]).toMatchObject({ codec: 'mjpeg', width: 80, height: 60 });
  });

  it('DNxHR LB with a LUT from a path that needs filtergraph escaping', async () => {
    const lutDir = path.join(dir, "l,u:t's [x];");
    fs.mkdirSync(lutDir);
    const lut = path.join(lutDir, 'invert.cube');
    // a 2-point 3D LUT that inverts every channel (red varies fastest)
    const rows: string[] = [];
    for (let b = 0; b < 2; b++) for (let g = 0; g < 2; g++) for (let r = 0; r < 2; r++) rows.push(`${1 - r} ${1 - g} ${1 - b}`);
    fs.writeFileSync(lut, `LUT_3D_SIZE 2\n${rows.join('\n')}\n`);
    const plain = path.join(dir, 'plain.mov');
    const graded = path.join(dir, 'graded.mov');
    // (dnxhd refuses frames narrower than 256: the source's 320x240 is kept)
    await ff.run(buildProxyEncodeArgs({ input: clip, output: plain, codec: 'dnxhr_lb', maxHeight: 240 }));
    await ff.run(buildProxyEncodeArgs({ input: clip, output: graded, codec: 'dnxhr_lb', maxHeight: 240, lutFile: lut }));
    const v = (await ff.probe(graded)).streams[0] as VideoStream;
    expect(v).toMatchObject({ codec: 'dnxhd', width: 320, height: 240, nbFrames: 25 });
    // the LUT was applied: the graded frames differ from the plain ones
    const first = async (file: string): Promise<Buffer> => {
      const png = path.join(dir, `${path.basename(file)}.png`);
      await ff.run(['-y', '-i', file, '-frames:v', '1', png]);
      return fs.readFileSync(png);
    };
    expect((await first(graded)).equals(await first(plain))).toBe(false);
  });

  it('a failing run throws with the exit status and ffmpeg last lines', async () => {
    const bad = path.join(dir, 'bad.mov');
    fs.writeFileSync(bad, 'not a video at all');
    const err = await ff
      .run(buildProxyEncodeArgs({ input: bad, output: path.join(dir, 'x.mov'), codec: 'prores_proxy', maxHeight: 120 }))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FfmpegError);
    const e = err as FfmpegError;
    expect(e.code).toBe('ffmpeg-failed');
    expect(e.status).not.toBe(0);
    expect(e.lastLines.join('\n')).toContain('bad.mov');
    expect(e.message).toContain(e.lastLines[0]);
    // the line that explains is not the last one: several are kept
    const small = (await ff
      .run(buildProxyEncodeArgs({ input: clip, output: path.join(dir, 'small.mov'), codec: 'dnxhr_lb', maxHeight: 120 }))
      .catch((x: unknown) => x)) as FfmpegError;
    expect(small.code).toBe('ffmpeg-failed');
    expect(small.lastLines.length).toBeGreaterThan(1);
    expect(small.message).toMatch(/exited with status 1:\n.*dimensions too small/);
    const probeErr = (await ff.probe(bad).catch((x: unknown) => x)) as FfmpegError;
    expect(probeErr.code).toBe('ffmpeg-failed');
    expect(probeErr.lastLines.join('\n')).toMatch(/Invalid data/);
  });

  it('an aborted run rejects once the process is gone', async () => {
    const out = path.join(dir, 'endless.mov');
    const ac = new AbortController();
    const run = ff.run(['-re', '-f', 'lavfi', '-i', 'testsrc2=size=64x48:rate=25', '-c:v', 'mpeg4', '-y', out], {
      signal: ac.signal,
      onProgress: () => ac.abort(new Error('stop')),
    });
    const err = (await run.catch((e: unknown) => e)) as FfmpegError;
    expect(err).toBeInstanceOf(FfmpegError);
    expect(err.code).toBe('ffmpeg-aborted');
    expect(err.signal).toBe('SIGKILL');
    expect(processesMentioning(out)).toEqual([]);
  });

  it('an abort kills what ffmpeg started too (its process group)', async () => {
    // a stand-in ffmpeg that starts a child, reports progress and waits
    const fake = path.join(dir, 'spawning-ffmpeg');
    const pidFile = path.join(dir, 'child.pid');
    fs.writeFileSync(
      fake,
      `#!/bin/sh\nif [ "$1" = -version ]; then echo "ffmpeg version 5.1"; exit 0; fi\n` +
        `sleep 300 &\necho $! > '${pidFile}'\necho progress=continue\nwait\n`,
      { mode: 0o755 },
    );
    const fakeFf = await openFfmpeg({ env: { DITS_FFMPEG: fake } });
    const ac = new AbortController();
    const err = (await fakeFf.run([], { signal: ac.signal, onProgress: () => ac.abort() }).catch((e: unknown) => e)) as FfmpegError;
    expect(err.code).toBe('ffmpeg-aborted');
    const child = Number(fs.readFileSync(pidFile, 'utf8'));
    // gone, or a zombie its new parent has not reaped yet
    await new Promise((r) => setTimeout(r, 100));
    let state = 'gone';
    try {
      state = fs.readFileSync(`/proc/${child}/stat`, 'utf8').split(') ')[1][0];
    } catch {
      // gone
    }
    if (state !== 'gone' && state !== 'Z') process.kill(child, 'SIGKILL'); // leave nothing behind when failing
    expect(['gone', 'Z']).toContain(state);
  });

  it('a progress callback that throws stops the run with its error', async () => {
    const boom = new Error('boom');
    const err = await ff
      .run(['-re', '-f', 'lavfi', '-i', 'testsrc2=size=64x48:rate=25', '-f', 'null', '-'], {
        onProgress: () => {
          throw boom;
        },
      })
      .catch((e: unknown) => e);
    expect(err).toBe(boom);
  });

  it('a timeout stops the run', async () => {
    const err = (await ff
      .run(['-re', '-f', 'lavfi', '-i', 'testsrc2=size=64x48:rate=25', '-f', 'null', '-'], { timeoutMs: 300 })
      .catch((e: unknown) => e)) as FfmpegError;
    expect(err.code).toBe('ffmpeg-timeout');
  });

  it('ffmpeg missing: ffmpeg-missing, naming what to install and the override', async () => {
    const err = (await openFfmpeg({ env: { DITS_FFMPEG: '/nonexistent/ffmpeg' } }).catch((e: unknown) => e)) as DitsUserError;
    expect(err).toBeInstanceOf(DitsUserError);
    expect(err.code).toBe('ffmpeg-missing');
    expect(err.message).toContain('/nonexistent/ffmpeg');
    expect(err.hint).toContain('apt-get install ffmpeg');
    expect(err.hint).toContain('DITS_FFMPEG');
  });

  it('ffmpeg too old: ffmpeg-too-old, naming the version needed', async () => {
    const fake = path.join(dir, 'old-ffmpeg');
    fs.writeFileSync(fake, '#!/bin/sh\necho "ffmpeg version 3.4 Copyright (c) 2000-2017 the FFmpeg developers"\n', { mode: 0o755 });
    const err = (await openFfmpeg({ env: { DITS_FFMPEG: fake } }).catch((e: unknown) => e)) as DitsUserError;
    expect(err.code).toBe('ffmpeg-too-old');
    expect(err.message).toContain('3.4');
    expect(err.message).toContain('4.4');
    expect(err.hint).toContain('apt-get install');
  });

  it('an ffprobe that is not one: ffmpeg-version-unknown', async () => {
    const err = (await openFfmpeg({ env: { DITS_FFPROBE: '/bin/true' } }).catch((e: unknown) => e)) as DitsUserError;
    expect(err.code).toBe('ffmpeg-version-unknown');
    expect(err.hint).toContain('DITS_FFPROBE');
  });
});

/** Pids of live processes whose command line mentions `text` (Linux /proc). */
function processesMentioning(text: string): number[] {
  const found: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${name}/cmdline`, 'utf8');
      if (cmd.includes(text)) found.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}
