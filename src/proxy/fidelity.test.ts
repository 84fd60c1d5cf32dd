/**
 * checkFidelity on its own: each comparison reports its mismatch (a proxy made with plain
 * ffmpeg that keeps nothing but the picture), and a faithful proxy passes with its report.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildProxyEncodeArgs, fileArg, openFfmpeg, type Ffmpeg } from '../media/ffmpeg.js';
import { checkFidelity, clipTags, type SourceFacts } from './fidelity.js';
import { makeClip } from './test-clips.js';

describe('checkFidelity', () => {
  let dir: string;
  let ff: Ffmpeg;
  let clip: string;
  const facts: SourceFacts = {
    frames: 50,
    frameRate: { num: 25, den: 1 },
    durationSeconds: 2,
    width: 320,
    height: 180,
    startTimecode: '01:00:00:00',
    reelName: 'A001',
    audio: [{ channels: 4, layout: '4.0' }],
    tags: { title: 'take 3' },
    variableRate: false,
  };

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dits-fidelity-'));
    ff = await openFfmpeg({ env: {} });
    clip = await makeClip(ff, path.join(dir, 'src.mov'), { duration: 2, timecode: '01:00:00:00', reel: 'A001', audioTracks: [4], metadata: { title: 'take 3' } });
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('a faithful proxy passes, with what was compared', async () => {
    const out = path.join(dir, 'good.mov');
    await ff.run(buildProxyEncodeArgs({ input: clip, output: out, codec: 'prores_proxy', maxHeight: 90, timecode: '01:00:00:00', reelName: 'A001', keepAllTags: true }));
    const r = await checkFidelity(ff, out, facts, 'proxy');
    expect(r.problems).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.report).toMatchObject({
      parser: 'dits',
      frames: { original: 50, proxy: 50 },
      frameRate: { original: 25, proxy: 25 },
      durationSeconds: { original: 2, proxy: 2, difference: 0, oneFrame: 0.04 },
      size: { original: '320x180', proxy: '160x90' },
      startTimecode: { original: '01:00:00:00', proxy: '01:00:00:00' },
      reelName: { original: 'A001', proxy: 'A001' },
      metadata: { checked: ['title'], missing: [] },
    });
  });

  it('every loss is named: frames, duration, timecode, audio tracks and layout, reel, metadata', async () => {
    const out = path.join(dir, 'lossy.mov');
    // the first second only, no audio, no metadata, no tmcd
    await ff.run(['-y', '-i', fileArg(clip), '-t', '1', '-map', '0:v:0', '-map_metadata', '-1', '-write_tmcd', '0', '-c:v', 'prores_ks', '-profile:v', '0', fileArg(out)]);
    const r = await checkFidelity(ff, out, facts, 'proxy');
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual([
      'frame count 25, the original has 50',
      'duration 1.000 s, the original\'s is 2.000 s (-1.000 s, more than one frame)',
      'start timecode missing, the original\'s is 01:00:00:00',
      '0 audio tracks, the original has 1',
      'reel name missing, the original\'s is A001',
      'clip metadata not kept: title',
    ]);
    // same track count, another layout
    const stereo = path.join(dir, 'stereo.mov');
    await ff.run(['-y', '-i', fileArg(clip), '-map', '0:v:0', '-map', '0:a', '-ac', '2', '-c:v', 'copy', '-c:a', 'pcm_s16le', fileArg(stereo)]);
    expect((await checkFidelity(ff, stereo, facts, 'proxy')).problems).toContain('audio track 1 has 2 channels, the original\'s 4');
    const quad = path.join(dir, 'quad.mov');
    await ff.run(['-y', '-i', fileArg(clip), '-map', '0:v:0', '-map', '0:a', '-c:v', 'copy', '-c:a', 'pcm_s16le', '-channel_layout', 'quad', fileArg(quad)]);
    expect((await checkFidelity(ff, quad, facts, 'proxy')).problems).toContain('audio track 1 has the layout quad, the original\'s is 4.0');
  });

  it('a preview must be laid out for progressive download; a file Dits cannot parse fails', async () => {
    const slow = path.join(dir, 'slow.mp4');
    await ff.run(['-y', '-i', fileArg(clip), '-map', '0:v:0', '-map', '0:a', '-c:v', 'libx264', '-preset', 'ultrafast', '-c:a', 'aac', '-ac', '2', fileArg(slow)]);
    const r = await checkFidelity(ff, slow, facts, 'preview');
    expect(r.problems).toEqual(['the preview is not laid out for progressive download (moov after the media data)']);
    const mkv = path.join(dir, 'x.mkv');
    await ff.run(['-y', '-i', fileArg(clip), '-map', '0:v:0', '-c:v', 'copy', fileArg(mkv)]);
    const bad = await checkFidelity(ff, mkv, facts, 'proxy');
    expect(bad.ok).toBe(false);
    expect(bad.problems[0]).toMatch(/^Dits' parser cannot read the proxy: /);
  });

  it('clip tags leave out those that describe the encoding', () => {
    expect(clipTags({ major_brand: 'qt  ', ENCODER: 'Lavf', creation_time: 'x', title: 't', 'com.apple.quicktime.reel': 'R' })).toEqual({ title: 't', 'com.apple.quicktime.reel': 'R' });
  });
});
