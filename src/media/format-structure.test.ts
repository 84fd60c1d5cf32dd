import { describe, expect, it } from 'vitest';
import { describeCodec, diffStructures, formatAnalysis, formatDuration, formatStructure } from './format-structure.js';
import type { MediaStructure } from './media-structure.js';
import { emptyCutPlan, isMediaStructure } from './media-structure.js';

const prores: MediaStructure = {
  version: 1,
  container: 'mov',
  brands: ['qt  '],
  durationSeconds: 62.5,
  creationTime: '2024-01-02T03:04:05.000Z',
  startTimecode: '01:00:00:00',
  fastStart: false,
  tracks: [
    { id: 1, type: 'video', codec: 'apch', width: 1920, height: 1080, frameRate: 25, sampleCount: 1563, syncSampleCount: 1563, durationSeconds: 62.52 },
    { id: 2, type: 'audio', codec: 'sowt', sampleRate: 48000, channels: 2, bitsPerSample: 24, sampleCount: 3000000, durationSeconds: 62.5 },
    { id: 3, type: 'timecode', codec: 'tmcd', sampleCount: 1, durationSeconds: 62.52 },
  ],
};

describe('formatStructure', () => {
  it('renders every field, one per line', () => {
    expect(formatStructure(prores)).toBe(
      [
        'container:  QuickTime MOV (brands: qt)',
        'duration:   00:01:02.500',
        'timecode:   01:00:00:00',
        'created:    2024-01-02T03:04:05.000Z',
        'layout:     moov after mdat',
        'tracks:     3',
        '  #1 video, ProRes 422 HQ (apch), 1920x1080, 25 fps, 1563 frames, all keyframes, 00:01:02.520',
        '  #2 audio, PCM (sowt), 48000 Hz, 2 ch, 24-bit, 3000000 samples, 00:01:02.500',
        '  #3 timecode, timecode (tmcd), 1 samples, 00:01:02.520',
      ].join('\n'),
    );
  });

  it('marks drop-frame timecode and fast start', () => {
    const text = formatStructure({ ...prores, startTimecode: '01:00:00;00', fastStart: true });
    expect(text).toContain('timecode:   01:00:00;00 (drop-frame)');
    expect(text).toContain('layout:     moov before mdat (fast start)');
  });

  it('formatAnalysis says why a file is chunked plainly', () => {
    expect(formatAnalysis({ kind: 'unknown', fallbackReason: 'MXF: plain chunking for now', cutPlan: emptyCutPlan() })).toBe(
      'container:  not parsed, plain chunking (MXF: plain chunking for now)',
    );
  });

  it('helpers', () => {
    expect(formatDuration(3723.0456)).toBe('01:02:03.046');
    expect(describeCodec('xyz1')).toBe('xyz1');
    expect(describeCodec('hvc1')).toBe('H.265/HEVC (hvc1)');
  });
});

describe('diffStructures', () => {
  it('returns nothing for identical structures', () => {
    expect(diffStructures(prores, structuredClone(prores))).toEqual([]);
  });

  it('trim: duration and frame counts', () => {
    const trimmed: MediaStructure = structuredClone(prores);
    trimmed.durationSeconds = 52.5;
    trimmed.tracks[0]!.sampleCount = 1313;
    trimmed.tracks[0]!.syncSampleCount = 1313;
    trimmed.tracks[0]!.durationSeconds = 52.52;
    expect(diffStructures(prores, trimmed)).toEqual([
      'duration: 00:01:02.500 -> 00:00:52.500 (-10.000 s)',
      'track #1 video: frames 1563 -> 1313, keyframes 1563 -> 1313, duration 00:01:02.520 -> 00:00:52.520',
    ]);
  });

  it('re-encode, new timecode, remux and replaced audio', () => {
    const b: MediaStructure = structuredClone(prores);
    b.container = 'mp4';
    b.brands = ['isom', 'mp41'];
    b.fastStart = true;
    b.startTimecode = '02:00:00:00';
    b.tracks[0] = { ...b.tracks[0]!, codec: 'avc1', width: 1280, height: 720, syncSampleCount: 63 };
    b.tracks.splice(1, 1);
    b.tracks.push({ id: 4, type: 'audio', codec: 'mp4a', sampleRate: 48000, channels: 2, sampleCount: 2930, durationSeconds: 62.5 });
    expect(diffStructures(prores, b)).toEqual([
      'container: mov -> mp4',
      'brands: qt -> isom, mp41',
      'start timecode: 01:00:00:00 -> 02:00:00:00',
      'layout: moov after mdat -> fast start',
      'track #1 video: codec ProRes 422 HQ (apch) -> H.264 (avc1), resolution 1920x1080 -> 1280x720, keyframes 1563 -> 63',
      'track #2 removed: audio, PCM (sowt), 48000 Hz, 2 ch, 24-bit, 3000000 samples, 00:01:02.500',
      'track #4 added: audio, AAC (mp4a), 48000 Hz, 2 ch, 2930 samples, 00:01:02.500',
    ]);
  });

  it('a version that was not parsed', () => {
    expect(diffStructures(undefined, prores)).toEqual(['media structure: not parsed -> mov, 00:01:02.500, 3 tracks']);
    expect(diffStructures(prores, undefined)).toEqual(['media structure: mov, 00:01:02.500, 3 tracks -> not parsed']);
    expect(diffStructures(undefined, undefined)).toEqual([]);
  });
});

describe('isMediaStructure', () => {
  it('accepts a structure and its JSON round trip, rejects other shapes', () => {
    expect(isMediaStructure(prores)).toBe(true);
    expect(isMediaStructure(JSON.parse(JSON.stringify({ ...prores, futureField: 1 })))).toBe(true);
    expect(isMediaStructure({ ...prores, version: 2 })).toBe(false);
    expect(isMediaStructure({ ...prores, container: 'mxf' })).toBe(false);
    expect(isMediaStructure({ ...prores, tracks: [{ id: 1, type: 'video' }] })).toBe(false);
    expect(isMediaStructure(null)).toBe(false);
    expect(isMediaStructure('mov')).toBe(false);
  });
});
