/**
 * Scale: hour-long layouts must parse in bounded memory and in milliseconds, because
 * only box headers and sample tables are read (DESIGN.md: mp4box builds one object per
 * sample; we must not).
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeLongPcmMov } from '../../test/fixtures/media/make-clips.js';
import { writeSyntheticMov } from '../../test/fixtures/media/synthetic-mov.js';
import { analyzeContainer } from './analyze-container.js';
import { type ContainerAnalysis, startsAtKeyframe } from './media-structure.js';
import { openFileReader } from './random-access-reader.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dits-media-scale-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const MiB = 1024 * 1024;

/** Analyses `path`, sampling heap + array buffers every millisecond; returns the peak growth. */
async function measure(path: string): Promise<{ analysis: ContainerAnalysis; ms: number; peakGrowth: number }> {
  const used = (): number => {
    const m = process.memoryUsage();
    return m.heapUsed + m.arrayBuffers;
  };
  const before = used();
  let peak = before;
  const timer = setInterval(() => {
    peak = Math.max(peak, used());
  }, 1);
  const reader = await openFileReader(path);
  const t0 = performance.now();
  try {
    const analysis = await analyzeContainer(reader);
    const ms = performance.now() - t0;
    peak = Math.max(peak, used());
    return { analysis, ms, peakGrowth: peak - before };
  } finally {
    clearInterval(timer);
    await reader.close();
  }
}

describe('analyzeContainer at scale', () => {
  it('one hour of 48 kHz PCM from ffmpeg (172.8 M samples): milliseconds, no per-sample memory', async () => {
    const path = await makeLongPcmMov(dir, 3600);
    const { analysis, ms, peakGrowth } = await measure(path);
    expect(analysis.kind).toBe('mov');
    expect(analysis.structure!.tracks).toEqual([
      { id: 1, type: 'audio', codec: 'sowt', sampleRate: 48000, channels: 1, bitsPerSample: 16, sampleCount: 172_800_000, durationSeconds: 3600 },
    ]);
    expect(analysis.structure!.durationSeconds).toBe(3600);
    console.log(`1 h PCM .mov (${((await stat(path)).size / MiB).toFixed(0)} MiB): ${ms.toFixed(1)} ms, peak growth ${(peakGrowth / MiB).toFixed(1)} MiB`);
    expect(ms).toBeLessThan(1000);
    expect(peakGrowth).toBeLessThan(32 * MiB);
    await rm(path);
  });

  it('a 1 h 25 fps all-intra layout of ~500 MB: parsed in well under a second, 90 000 keyframes', async () => {
    const path = join(dir, 'hour.mov');
    const file = await writeSyntheticMov(path, { seconds: 3600, fps: 25, frameSizes: [5000, 5008, 4992], audioPerChunk: 2000, perSampleAudioSizes: false });
    expect(file.size).toBeGreaterThan(500_000_000);
    const { analysis, ms, peakGrowth } = await measure(path);
    expect(analysis.fallbackReason).toBeUndefined();
    const video = analysis.structure!.tracks[0]!;
    expect(video).toMatchObject({ codec: 'apch', width: 1920, height: 1080, frameRate: 25, sampleCount: 90_000, syncSampleCount: 90_000 });
    const preferred = analysis.cutPlan.preferred;
    expect(preferred.length).toBe(89_999); // frame 0 sits on the forced payload boundary...
    expect(analysis.cutPlan.regions[1]).toMatchObject({ kind: 'payload', start: file.frameOffset(0), startsAtKeyframe: true }); // ...and is flagged there
    expect(startsAtKeyframe(analysis.cutPlan, file.frameOffset(0))).toBe(true);
    for (const i of [1, 2, 3, 4, 1000, 89_999]) expect(preferred[i - 1]).toBe(file.frameOffset(i));
    console.log(`synthetic 1 h 25 fps .mov (${(file.size / MiB).toFixed(0)} MiB): ${ms.toFixed(1)} ms, peak growth ${(peakGrowth / MiB).toFixed(1)} MiB`);
    expect(ms).toBeLessThan(1000);
    expect(peakGrowth).toBeLessThan(64 * MiB);
    await rm(path);
  });

  it('a file over 4 GiB with co64 offsets (a sparse 5 GiB hole before the frames)', async () => {
    const path = join(dir, 'over-4g.mov');
    const file = await writeSyntheticMov(path, { seconds: 60, fps: 25, frameSizes: [100_000], audioPerChunk: 48_000, perSampleAudioSizes: false, gapBytes: 5 * 1024 * MiB, co64: true });
    expect(file.size).toBeGreaterThan(2 ** 32);
    const { analysis } = await measure(path);
    expect(analysis.fallbackReason).toBeUndefined();
    expect(analysis.structure!.tracks.map((t) => t.sampleCount)).toEqual([1500, 60 * 48_000]);
    expect(analysis.cutPlan.preferred[0]).toBe(file.frameOffset(0));
    expect(analysis.cutPlan.preferred[1499]).toBe(file.frameOffset(1499));
    expect(file.frameOffset(1499)).toBeGreaterThan(2 ** 32);
    expect(analysis.cutPlan.regions.map((r) => r.kind)).toEqual(['metadata', 'payload', 'metadata']);
    expect(analysis.cutPlan.regions[2]!.end).toBe(file.size);
    await rm(path);
  });

  it('old QuickTime PCM whose stsz says 1 byte per sample: chunk sizes come from the sound description', async () => {
    const path = join(dir, 'qt-pcm.mov');
    const spec = { seconds: 10, fps: 25, frameSizes: [1000], audioPerChunk: 24_000, perSampleAudioSizes: false, audioFirst: true };
    const file = await writeSyntheticMov(path, { ...spec, pcmSampleSizeOne: true });
    const { analysis } = await measure(path);
    expect(analysis.fallbackReason).toBeUndefined();
    expect(analysis.structure!.tracks[1]).toMatchObject({ codec: 'sowt', bitsPerSample: 16, sampleCount: 480_000 });
    // Read as 1 byte per frame, the last audio chunk would end halfway and leave a gap
    // before the video (a second edge); read right, audio ends where the video starts.
    expect(Array.from(analysis.cutPlan.trackSwitches)).toEqual([file.frameOffset(0)]);
    expect(file.frameOffset(0)).toBe(analysis.cutPlan.regions[1]!.start + 480_000 * 2);
    await rm(path);
  });

  it('pathological: 1 h of PCM with a per-sample stsz (691 MB of table) stays in bounded memory', async () => {
    const path = join(dir, 'per-sample.mov');
    const file = await writeSyntheticMov(path, { seconds: 3600, fps: 25, frameSizes: [5000], audioPerChunk: 4800, perSampleAudioSizes: true });
    const { analysis, ms, peakGrowth } = await measure(path);
    expect(analysis.fallbackReason).toBeUndefined();
    expect(analysis.structure!.tracks[1]).toMatchObject({ type: 'audio', sampleCount: file.audioSamples });
    console.log(`per-sample stsz (${(file.size / MiB).toFixed(0)} MiB file): ${ms.toFixed(0)} ms, peak growth ${(peakGrowth / MiB).toFixed(1)} MiB`);
    expect(peakGrowth).toBeLessThan(64 * MiB);
    await rm(path);
  });
});
