/**
 * Time range -> bytes -> chunks -> packs, on an hour-long QuickTime layout (a sparse file:
 * real boxes and sample tables, the frames a hole).
 */
import { afterAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { writeSyntheticMov } from '../../test/fixtures/media/synthetic-mov.js';
import { openFileReader } from '../media/random-access-reader.js';
import { Manifest, ManifestBuilder } from '../manifest/manifest.js';
import { chunkStarts, chunksForExtents, indexWindow, parseTimeRange, rangeExtents } from './time-range.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dits-range-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('parseTimeRange', () => {
  it('reads HH:MM:SS, MM:SS and seconds, and refuses what is not a range', () => {
    expect(parseTimeRange('00:10:00-00:12:00')).toEqual({ startSec: 600, endSec: 720 });
    expect(parseTimeRange('10:00-12:30.5')).toEqual({ startSec: 600, endSec: 750.5 });
    expect(parseTimeRange('5-7.5')).toEqual({ startSec: 5, endSec: 7.5 });
    for (const bad of ['00:12:00-00:10:00', '10', 'a-b', '1-1', '']) expect(() => parseTimeRange(bad)).toThrow(/not a time range/);
  });
});

/** A manifest of 1 MiB chunks cut at the region boundaries `cuts` (ids random, as content would be). */
function manifestOf(size: number, cuts: number[]): Manifest {
  const b = new ManifestBuilder();
  const ends = [...new Set([...cuts.filter((c) => c > 0 && c < size), size])].sort((x, y) => x - y);
  let at = 0;
  for (const end of ends) {
    while (at < end) {
      const len = Math.min(1 << 20, end - at);
      b.add(randomBytes(32), len);
      at += len;
    }
  }
  const { bytes } = b.encode({ oid: 'x'.repeat(64), chunker: { algorithm: 'fastcdc-2020', min: 1, avg: 2, max: 3 }, media: null });
  return Manifest.parse(bytes);
}

/** Packs filled in file order up to `packSize`, as a push of the file fills them: chunk index -> pack. */
function packsInOrder(m: Manifest, packSize: number): number[] {
  const out: number[] = [];
  let pack = 0;
  let fill = 0;
  for (let i = 0; i < m.chunkCount; i++) {
    if (fill + m.lengthAt(i) > packSize && fill > 0) {
      pack++;
      fill = 0;
    }
    fill += m.lengthAt(i);
    out.push(pack);
  }
  return out;
}

describe('rangeExtents', () => {
  it('a 2-minute range of a 1-hour clip needs under 10% of its packs (ProRes-like 200 Mbit/s, 256 MiB packs)', async () => {
    const file = path.join(dir, 'hour.mov');
    const f = await writeSyntheticMov(file, { seconds: 3600, fps: 25, frameSizes: [1_000_000, 1_100_000, 900_000], audioPerChunk: 24_000, perSampleAudioSizes: false, co64: true });
    const reader = await openFileReader(file);
    try {
      const ex = await rangeExtents(reader, parseTimeRange('00:10:00-00:12:00'));
      expect(ex.durationSec).toBe(3600);
      // the frames of 10:00-12:00 (15000-17999 at 25 fps) are in, those a second away are not
      const covers = (o: number): boolean => ex.media.some((e) => e.start <= o && o < e.end);
      expect(covers(f.frameOffset(15000))).toBe(true);
      expect(covers(f.frameOffset(17999))).toBe(true);
      expect(covers(f.frameOffset(14975))).toBe(false);
      expect(covers(f.frameOffset(18025))).toBe(false);
      // the index: ftyp, the mdat header and the moov at the end
      expect(ex.index[0]!.start).toBe(0);
      expect(ex.index[ex.index.length - 1]!.end).toBe(f.size);

      const m = manifestOf(f.size, [...ex.index.flatMap((e) => [e.start, e.end])]);
      const starts = chunkStarts(m);
      const chunks = chunksForExtents(starts, [...ex.index, ...ex.media]);
      const packOf = packsInOrder(m, 256 * 1024 * 1024);
      const all = new Set(packOf);
      const needed = new Set([...chunks].map((i) => packOf[i]!));
      expect(all.size).toBeGreaterThan(300);
      expect(needed.size / all.size).toBeLessThan(0.1);
      // and it is the range: 2 minutes of 200 Mbit/s is about 3 GB, 12 packs, plus audio and index
      expect(needed.size).toBeGreaterThanOrEqual(12);
      expect(needed.size).toBeLessThanOrEqual(16);
    } finally {
      await reader.close();
    }
  }, 60_000);

  it('a range past the end of the clip is refused with its duration', async () => {
    const file = path.join(dir, 'short.mov');
    await writeSyntheticMov(file, { seconds: 10, fps: 25, frameSizes: [1000], audioPerChunk: 4800, perSampleAudioSizes: false });
    const reader = await openFileReader(file);
    try {
      await expect(rangeExtents(reader, parseTimeRange('00:00:20-00:00:30'))).rejects.toThrow(/after the end of the clip \(00:00:10\)/);
    } finally {
      await reader.close();
    }
  });

  it('indexWindow: where a frozen index lies (tail for a moov at the end, head for fast start)', () => {
    const tracks = [{ id: 1, type: 'video' as const, codec: 'apch', sampleCount: 90_000, durationSeconds: 3600 }];
    const base = { version: 1 as const, container: 'mov' as const, brands: ['qt  '], durationSeconds: 3600, tracks };
    const size = 90e9;
    const tail = indexWindow({ ...base, fastStart: false }, size);
    expect(tail[tail.length - 1]).toEqual({ start: size - (64 * 1024 + 90_000 * 12), end: size });
    expect(indexWindow({ ...base, fastStart: true }, size)).toEqual([{ start: 0, end: 64 * 1024 + 90_000 * 12 }]);
  });
});

describe('rangeExtents on a real H.264 clip (ffmpeg, GOP 12 at 29.97 fps)', () => {
  it('covers every packet decoded in the range and the keyframe before it, and not the whole payload', async () => {
    const { makeClips } = await import('../../test/fixtures/media/make-clips.js');
    const { execFileSync } = await import('node:child_process');
    const clips = await makeClips(['h264-df.mp4']);
    try {
      const file = clips.path('h264-df.mp4');
      const probe = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-show_packets', '-of', 'json', file]).toString('utf8')) as {
        packets: { codec_type: string; pts_time: string; pos: string; size: string; flags: string }[];
      };
      const reader = await openFileReader(file);
      try {
        const ex = await rangeExtents(reader, { startSec: 1.0, endSec: 1.3 });
        const covered = (pos: number, size: number): boolean => ex.media.some((e) => e.start <= pos && pos + size <= e.end);
        const video = probe.packets.filter((p) => p.codec_type === 'video').map((p) => ({ t: Number(p.pts_time), pos: Number(p.pos), size: Number(p.size), key: p.flags.startsWith('K') }));
        const dts = [...video].sort((a, b) => a.pos - b.pos);
        const inRange = dts.filter((p) => p.t >= 1.0 && p.t < 1.3);
        expect(inRange.length).toBeGreaterThan(5);
        for (const p of inRange) expect(covered(p.pos, p.size)).toBe(true);
        const keyBefore = dts.filter((p) => p.key && p.pos <= inRange[0]!.pos).pop()!;
        expect(keyBefore.t).toBeLessThan(1.0);
        expect(covered(keyBefore.pos, keyBefore.size)).toBe(true);
        const total = dts.reduce((s, p) => s + p.size, 0);
        const media = ex.media.reduce((s, e) => s + e.end - e.start, 0);
        expect(media).toBeLessThan(total);
      } finally {
        await reader.close();
      }
    } finally {
      await clips.cleanup();
    }
  }, 60_000);
});
