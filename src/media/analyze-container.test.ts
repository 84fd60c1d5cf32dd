import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClipSet, makeClips } from '../../test/fixtures/media/make-clips.js';
import {
  chunkOffsets,
  findOne,
  listBoxes,
  withBoxSize,
  withChunkOffset,
  withCo64,
  withLargeMdat,
} from '../../test/fixtures/media/box-edit.js';
import { analyzeContainer, analyzeFile } from './analyze-container.js';
import { type ContainerAnalysis, startsAtKeyframe } from './media-structure.js';
import { bufferReader } from './random-access-reader.js';

const run = promisify(execFile);
let clips: ClipSet;

beforeAll(async () => {
  clips = await makeClips();
});
afterAll(async () => {
  await clips?.cleanup();
});


/** Byte positions of video keyframes according to ffprobe (an independent demuxer). */
async function ffprobeKeyframes(path: string): Promise<number[]> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=pos,flags', '-of', 'csv=p=0', path]);
  return stdout
    .trim()
    .split('\n')
    .map((l) => l.split(','))
    .filter(([, flags]) => flags!.startsWith('K'))
    .map(([pos]) => Number(pos))
    .sort((a, b) => a - b);
}

/** Where ffprobe's packets pass from one stream to another, strictly inside the payload. */
async function ffprobeTrackSwitches(path: string): Promise<number[]> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-show_entries', 'packet=stream_index,pos,size', '-of', 'json', path]);
  const packets = (JSON.parse(stdout) as { packets: Array<{ stream_index: number; pos: string; size: string }> }).packets
    .map((p) => ({ stream: p.stream_index, pos: Number(p.pos), end: Number(p.pos) + Number(p.size) }))
    .sort((a, b) => a.pos - b.pos);
  const mdat = listBoxes(await readFile(path)).find((b) => b.type === 'mdat')!;
  const out: number[] = [];
  for (let i = 1; i < packets.length; i++) {
    const [prev, cur] = [packets[i - 1]!, packets[i]!];
    if (prev.stream === cur.stream) continue;
    if (prev.end !== cur.pos) out.push(prev.end);
    out.push(cur.pos);
  }
  return out.filter((v, i) => v > mdat.start + mdat.headerSize && out.indexOf(v) === i);
}

/** ffprobe's keyframes strictly after the mdat payload start (that one is a forced boundary). */
async function keyframesInside(path: string): Promise<number[]> {
  const mdat = listBoxes(await readFile(path)).find((b) => b.type === 'mdat')!;
  return (await ffprobeKeyframes(path)).filter((k) => k > mdat.start + mdat.headerSize);
}

/** The plan must tile the file: regions in order, no gaps, forced = inner region starts. */
function expectWellFormedPlan(a: ContainerAnalysis, size: number): void {
  const { regions, forced, preferred, trackSwitches } = a.cutPlan;
  expect(regions[0]!.start).toBe(0);
  expect(regions[regions.length - 1]!.end).toBe(size);
  for (let i = 1; i < regions.length; i++) expect(regions[i]!.start).toBe(regions[i - 1]!.end);
  expect(forced).toEqual(regions.slice(1).map((r) => r.start));
  const payloads = regions.filter((r) => r.kind === 'payload');
  for (let i = 0; i < preferred.length; i++) {
    if (i > 0) expect(preferred[i]!).toBeGreaterThan(preferred[i - 1]!);
    expect(payloads.some((r) => preferred[i]! > r.start && preferred[i]! < r.end)).toBe(true);
  }
  for (let i = 0; i < trackSwitches.length; i++) {
    if (i > 0) expect(trackSwitches[i]!).toBeGreaterThan(trackSwitches[i - 1]!);
    expect(payloads.some((r) => trackSwitches[i]! > r.start && trackSwitches[i]! < r.end)).toBe(true);
  }
}

describe('analyzeContainer on ffmpeg clips', () => {
  it('ProRes .mov with PCM and timecode: structure golden', async () => {
    const a = await analyzeFile(clips.path('prores.mov'));
    expect(a.kind).toBe('mov');
    expect(a.fallbackReason).toBeUndefined();
    expect(a.structure).toEqual({
      version: 1,
      container: 'mov',
      brands: ['qt  '],
      durationSeconds: 2,
      creationTime: '2024-01-02T03:04:05.000Z',
      startTimecode: '01:00:00:00',
      fastStart: false,
      tracks: [
        { id: 1, type: 'video', codec: 'apch', width: 320, height: 240, frameRate: 25, sampleCount: 50, syncSampleCount: 50, durationSeconds: 2 },
        { id: 2, type: 'audio', codec: 'sowt', sampleRate: 48000, channels: 1, bitsPerSample: 16, sampleCount: 96000, durationSeconds: 2 },
        { id: 3, type: 'timecode', codec: 'tmcd', sampleCount: 1, durationSeconds: 2 },
      ],
    });
    expect(JSON.parse(JSON.stringify(a.structure))).toEqual(a.structure);
  });

  it('ProRes .mov: metadata and payload regions, every frame a preferred cut', async () => {
    const path = clips.path('prores.mov');
    const bytes = await readFile(path);
    const a = await analyzeFile(path);
    expectWellFormedPlan(a, bytes.length);
    const top = listBoxes(bytes);
    const mdat = top.find((b) => b.type === 'mdat')!;
    const moov = top.find((b) => b.type === 'moov')!;
    expect(a.cutPlan.regions.map((r) => [r.kind, r.start, r.end])).toEqual([
      ['metadata', 0, mdat.start + mdat.headerSize],
      ['payload', mdat.start + mdat.headerSize, mdat.end],
      ['metadata', moov.start, moov.end],
    ]);
    // ProRes has no stss: all 50 frames are sync; the first sits at the forced boundary.
    const keyframes = await ffprobeKeyframes(path);
    expect(keyframes).toHaveLength(50);
    expect(Array.from(a.cutPlan.preferred)).toEqual(keyframes.filter((k) => k !== mdat.start + mdat.headerSize));
    // ffmpeg puts the 4-byte timecode sample first, so frame 0 is a preferred cut here;
    // a keyframe exactly at the payload start is flagged on the region instead.
    expect(a.cutPlan.regions[1]!.startsAtKeyframe === true).toBe(keyframes.includes(mdat.start + mdat.headerSize));
    for (const k of keyframes) expect(startsAtKeyframe(a.cutPlan, k)).toBe(true);
    expect(startsAtKeyframe(a.cutPlan, keyframes[1]! + 1)).toBe(false);
    expect(startsAtKeyframe(a.cutPlan, 0)).toBe(false);
    // Interleaving edges: where video, audio and timecode data meet inside the mdat.
    const switches = await ffprobeTrackSwitches(path);
    expect(switches.length).toBeGreaterThan(2);
    expect(Array.from(a.cutPlan.trackSwitches)).toEqual(switches);
  });

  it('faststart ProRes: same structure, moov first', async () => {
    const a = await analyzeFile(clips.path('prores.mov'));
    const b = await analyzeFile(clips.path('prores-faststart.mov'));
    expect(b.structure).toEqual({ ...a.structure, fastStart: true });
    const size = (await readFile(clips.path('prores-faststart.mov'))).length;
    expectWellFormedPlan(b, size);
    expect(b.cutPlan.regions.map((r) => r.kind)).toEqual(['metadata', 'payload']);
    const bytes = await readFile(clips.path('prores-faststart.mov'));
    expect(b.cutPlan.regions[0]!.boxes).toEqual(listBoxes(bytes).map((x) => x.type));
    expect(b.cutPlan.regions[0]!.boxes).toContain('moov');
    expect(Array.from(b.cutPlan.preferred)).toEqual(await keyframesInside(clips.path('prores-faststart.mov')));
  });

  it('H.264 .mp4 at 29.97 with drop-frame timecode', async () => {
    const path = clips.path('h264-df.mp4');
    const a = await analyzeFile(path);
    expect(a.kind).toBe('mp4');
    const s = a.structure!;
    expect(s.container).toBe('mp4');
    expect(s.brands).toEqual(['isom', 'iso2', 'avc1', 'mp41']);
    expect(s.startTimecode).toBe('01:00:00;00');
    expect(s.creationTime).toBeUndefined();
    expect(s.fastStart).toBe(false);
    expect(s.durationSeconds).toBeCloseTo(2.002, 3);
    expect(s.tracks.map((t) => [t.type, t.codec])).toEqual([
      ['video', 'avc1'],
      ['audio', 'mp4a'],
      ['timecode', 'tmcd'],
    ]);
    expect(s.tracks[0]).toMatchObject({ width: 320, height: 240, frameRate: 29.97, sampleCount: 60, syncSampleCount: 5 });
    expect(s.tracks[1]).toMatchObject({ sampleRate: 48000, channels: 1 }); // from esds, not the template 2 in mp4a
    // GOP 12 over 60 frames: keyframes at 0, 12, 24, 36, 48; the first is the payload start.
    const keyframes = await ffprobeKeyframes(path);
    expect(keyframes).toHaveLength(5);
    expect(Array.from(a.cutPlan.preferred)).toEqual(await keyframesInside(path));
    expect(Array.from(a.cutPlan.trackSwitches)).toEqual(await ffprobeTrackSwitches(path));
    expectWellFormedPlan(a, (await readFile(path)).length);
  });

  it('H.264 faststart .mp4 without timecode', async () => {
    const path = clips.path('h264-faststart.mp4');
    const a = await analyzeFile(path);
    expect(a.structure).toMatchObject({ container: 'mp4', fastStart: true, durationSeconds: 2 });
    expect(a.structure!.startTimecode).toBeUndefined();
    expect(a.structure!.tracks[0]).toMatchObject({ codec: 'avc1', frameRate: 25, sampleCount: 50, syncSampleCount: 2 });
    expect(a.structure!.tracks[1]).toMatchObject({ codec: 'mp4a', channels: 2 });
    expect(Array.from(a.cutPlan.preferred)).toEqual(await keyframesInside(path));
  });

  it('24-bit PCM in .mov and a non-zero timecode', async () => {
    const a = await analyzeFile(clips.path('h264-pcm24.mov'));
    expect(a.structure!.startTimecode).toBe('10:00:00:00');
    expect(a.structure!.tracks[1]).toMatchObject({ type: 'audio', codec: 'in24', bitsPerSample: 24, channels: 1, sampleCount: 96000 });
  });
});

describe('analyzeContainer on rewritten and damaged files', () => {
  const analyzeBytes = (b: Buffer): Promise<ContainerAnalysis> => analyzeContainer(bufferReader(b));

  it('64-bit mdat size and co64 give the same structure and plan', async () => {
    const original = await readFile(clips.path('prores.mov'));
    const base = await analyzeBytes(original);
    const large = withLargeMdat(original);
    expect(listBoxes(large).find((b) => b.type === 'mdat')!.headerSize).toBe(16);
    const co64 = withCo64(large);
    expect(() => findOne(co64, 'stco')).toThrow();
    expect(chunkOffsets(co64, 0)).toEqual(chunkOffsets(original, 0));
    const a = await analyzeBytes(co64);
    expect(a.kind).toBe('mov');
    expect(a.structure).toEqual(base.structure);
    expect(a.cutPlan.preferred).toEqual(base.cutPlan.preferred);
    expect(a.cutPlan.forced).toEqual(base.cutPlan.forced);
  });

  it('mdat of size 0 extends to the end of the file', async () => {
    const original = await readFile(clips.path('prores-faststart.mov'));
    const zero = withBoxSize(original, 'mdat', 0);
    const a = await analyzeBytes(zero);
    const base = await analyzeBytes(original);
    expect(a.kind).toBe('mov');
    expect(a.structure).toEqual(base.structure);
    expect(a.cutPlan).toEqual(base.cutPlan);
  });

  const damaged: Array<[string, (b: Buffer) => Buffer, RegExp]> = [
    ['truncated moov', (b) => b.subarray(0, b.length - 600), /beyond its space|truncated/],
    ['moov size beyond the end of the file', (b) => withBoxSize(b, 'moov', listBoxes(b).find((x) => x.type === 'moov')!.end - listBoxes(b).find((x) => x.type === 'moov')!.start + 1000), /beyond/],
    ['zero-size box before the end (swallows the rest)', (b) => withBoxSize(b, 'wide', 0), /no moov/],
    ['zero-size stsd inside stbl', (b) => withBoxSize(b, 'stsd', 0), /./],
    ['mdat header size below 8', (b) => withBoxSize(b, 'mdat', 3), /smaller than its header/],
    ['co64 offset beyond the end of the file', (b) => withChunkOffset(withCo64(b), 0, 3, 2 ** 40), /outside every mdat/],
    ['stco offset beyond the end of the file', (b) => withChunkOffset(b, 1, 0, b.length + 10), /outside every mdat/],
    ['chunks overlapping', (b) => withChunkOffset(b, 0, 1, chunkOffsets(b, 0)[0]!), /overlap/],
    ['chunk offset inside moov', (b) => withChunkOffset(b, 0, 2, listBoxes(b).find((x) => x.type === 'moov')!.start), /outside every mdat/],
    ['garbage after the last box', (b) => Buffer.concat([b, Buffer.from('xyz')]), /truncated box header/],
    ['no moov at all', (b) => b.subarray(0, listBoxes(b).find((x) => x.type === 'moov')!.start), /no moov/],
  ];
  for (const [name, damage, reason] of damaged) {
    it(`falls back cleanly: ${name}`, async () => {
      const a = await analyzeBytes(damage(await readFile(clips.path('prores.mov'))));
      expect(a.kind).toBe('unknown');
      expect(a.fallbackReason).toMatch(reason);
      expect(a.structure).toBeUndefined();
      expect(a.cutPlan.forced).toEqual([]);
      expect(a.cutPlan.regions).toEqual([]);
      expect(a.cutPlan.preferred.length).toBe(0);
      expect(a.cutPlan.trackSwitches.length).toBe(0);
    });
  }

  it('never throws on any prefix of a clip, and every prefix either parses or falls back', async () => {
    const bytes = await readFile(clips.path('h264-df.mp4'));
    const cuts = [0, 1, 7, 8, 9, 31, 32, 47, 48, 1000, bytes.length - 4000, bytes.length - 1, bytes.length];
    for (const n of cuts) {
      const a = await analyzeBytes(bytes.subarray(0, n));
      if (n === bytes.length) expect(a.kind).toBe('mp4');
      else expect(a.kind).toBe('unknown');
      expect(typeof (a.fallbackReason ?? '')).toBe('string');
    }
  });

  it('never throws on random byte corruption inside moov', async () => {
    const bytes = await readFile(clips.path('prores.mov'));
    const moov = listBoxes(bytes).find((b) => b.type === 'moov')!;
    let seed = 12345;
    const rand = (): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    for (let round = 0; round < 200; round++) {
      const copy = Buffer.from(bytes);
      for (let k = 0; k < 4; k++) copy[moov.start + (rand() % (moov.end - moov.start))] = rand() & 0xff;
      const a = await analyzeBytes(copy);
      expect(['mov', 'unknown']).toContain(a.kind);
      if (a.kind === 'unknown') expect(a.cutPlan.regions).toEqual([]);
      else expectWellFormedPlan(a, copy.length);
    }
  });

  it('analyzeFile rejects a missing file (an I/O problem, not a content one)', async () => {
    await expect(analyzeFile(join(clips.dir, 'does-not-exist.mov'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('a reader that fails gives a fallback, not a throw', async () => {
    const bytes = await readFile(clips.path('prores.mov'));
    const reader = { size: bytes.length, read: async (offset: number, length: number) => (offset > 1000 ? Promise.reject(new Error('EIO')) : bytes.subarray(offset, offset + length)) };
    const a = await analyzeContainer(reader);
    expect(a.kind).toBe('unknown');
    expect(a.fallbackReason).toMatch(/EIO/);
  });
});

describe('other containers', () => {
  it('MXF is recognised by its partition pack key and chunked plainly', async () => {
    const path = join(clips.dir, 'clip.mxf');
    await run('ffmpeg', ['-v', 'error', '-nostdin', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25', '-t', '1', '-c:v', 'mpeg2video', path]);
    const a = await analyzeFile(path);
    expect(a).toEqual({ kind: 'unknown', fallbackReason: 'MXF: plain chunking for now', cutPlan: { forced: [], preferred: new Float64Array(0), trackSwitches: new Float64Array(0), regions: [] } });
  });

  it('Matroska, WAV, empty and arbitrary bytes fall back with a reason', async () => {
    const mkv = join(clips.dir, 'clip.mkv');
    const wav = join(clips.dir, 'tone.wav');
    await run('ffmpeg', ['-v', 'error', '-nostdin', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=64x64:rate=5', '-t', '1', mkv]);
    await run('ffmpeg', ['-v', 'error', '-nostdin', '-y', '-f', 'lavfi', '-i', 'sine', '-t', '1', wav]);
    expect((await analyzeFile(mkv)).fallbackReason).toMatch(/Matroska/);
    expect((await analyzeFile(wav)).fallbackReason).toMatch(/WAV/);
    expect((await analyzeContainer(bufferReader(Buffer.alloc(0)))).fallbackReason).toBe('empty file');
    expect((await analyzeContainer(bufferReader(Buffer.from('hello world, not a video')))).kind).toBe('unknown');
    const text = join(clips.dir, 'notes.txt');
    await writeFile(text, 'ftyp is a word in this text file\n'.repeat(100));
    expect((await analyzeFile(text)).kind).toBe('unknown');
  });
});
