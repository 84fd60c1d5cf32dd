import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bufferReader } from '../media/random-access-reader.js';
import { analyzeContainer } from '../media/analyze-container.js';
import { parseRangeHeader, serveRangeSource } from './range-source.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** A 2 s 160x90 QuickTime clip with its moov at the end (ffmpeg's default for .mov). */
function moovAtEndClip(): Buffer {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dits-range-src-'));
  dirs.push(dir);
  const file = path.join(dir, 'clip.mov');
  const r = spawnSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=160x90:rate=25:duration=2', '-f', 'lavfi', '-i', 'sine=frequency=440:duration=2', '-c:v', 'mpeg4', '-c:a', 'pcm_s16le', '-shortest', file], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return fs.readFileSync(file);
}

type Probe = { status: number | null; json: { format?: { duration?: string }; streams?: { codec_type: string; nb_frames?: string }[] }; stderr: string };
/** ffprobe as a child process, awaited (spawnSync would block the server in this process). */
function ffprobe(url: string): Promise<Probe> {
  return new Promise((resolve, reject) => {
    const child = spawn('ffprobe', ['-v', 'error', '-print_format', 'json', '-show_format', '-show_streams', '-i', url], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (status) => resolve({ status, json: status === 0 ? JSON.parse(stdout) : {}, stderr }));
  });
}

describe('parseRangeHeader', () => {
  it('reads the single-range forms and refuses what lies outside', () => {
    expect(parseRangeHeader(undefined, 100)).toBeUndefined();
    expect(parseRangeHeader('bytes=0-9', 100)).toEqual({ start: 0, end: 10 });
    expect(parseRangeHeader('bytes=90-', 100)).toEqual({ start: 90, end: 100 });
    expect(parseRangeHeader('bytes=90-1000', 100)).toEqual({ start: 90, end: 100 });
    expect(parseRangeHeader('bytes=-10', 100)).toEqual({ start: 90, end: 100 });
    expect(parseRangeHeader('bytes=-1000', 100)).toEqual({ start: 0, end: 100 });
    expect(parseRangeHeader('bytes=100-', 100)).toBeNull();
    expect(parseRangeHeader('bytes=5-4', 100)).toBeNull();
    expect(parseRangeHeader('bytes=0-1,5-6', 100)).toBeUndefined(); // multiple ranges: the whole body
  });
});

describe('serveRangeSource', () => {
  let clip: Buffer;
  beforeAll(() => {
    clip = moovAtEndClip();
  });

  it('the clip really has its moov after its mdat', async () => {
    const a = await analyzeContainer(bufferReader(clip));
    expect(a.kind).toBe('mov');
    expect(a.structure!.fastStart).toBe(false);
  });

  it('ffprobe reads a moov-at-end MOV over http (it seeks to the end first) and finds its streams and duration', async () => {
    let reads = 0;
    const src = bufferReader(clip);
    const served = await serveRangeSource({ size: src.size, read: (o, l) => (reads++, src.read(o, l)) }, { name: 'clip.mov' });
    try {
      expect(served.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/clip\.mov$/);
      const p = await ffprobe(served.url);
      expect(p.status, p.stderr).toBe(0);
      expect(p.json.streams!.map((s) => s.codec_type).sort()).toEqual(['audio', 'video']);
      expect(Number(p.json.format!.duration)).toBeCloseTo(2, 1);
      expect(p.json.streams!.find((s) => s.codec_type === 'video')!.nb_frames).toBe('50');
      expect(reads).toBeGreaterThan(0);
    } finally {
      await served.close();
    }
  });

  it('answers HEAD, 206 with Content-Range, 200 without a range, 416 outside, 404 for other paths', async () => {
    const src = bufferReader(clip);
    const served = await serveRangeSource(src, { name: 'a b.mov' });
    try {
      const head = await fetch(served.url, { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(head.headers.get('content-length')).toBe(String(clip.length));
      expect(head.headers.get('accept-ranges')).toBe('bytes');
      const part = await fetch(served.url, { headers: { range: 'bytes=100-199' } });
      expect(part.status).toBe(206);
      expect(part.headers.get('content-range')).toBe(`bytes 100-199/${clip.length}`);
      expect(Buffer.from(await part.arrayBuffer()).equals(clip.subarray(100, 200))).toBe(true);
      const tail = await fetch(served.url, { headers: { range: 'bytes=-16' } });
      expect(Buffer.from(await tail.arrayBuffer()).equals(clip.subarray(clip.length - 16))).toBe(true);
      const whole = await fetch(served.url);
      expect(whole.status).toBe(200);
      expect(Buffer.from(await whole.arrayBuffer()).equals(clip)).toBe(true);
      const outside = await fetch(served.url, { headers: { range: `bytes=${clip.length}-` } });
      expect(outside.status).toBe(416);
      expect(outside.headers.get('content-range')).toBe(`bytes */${clip.length}`);
      expect((await fetch(served.url.replace(/[^/]+$/, 'other'))).status).toBe(404);
    } finally {
      await served.close();
    }
  });

  it('a source that fails midway cuts the connection: the client gets an error, never a short body as if complete', async () => {
    const size = 4 * 1024 * 1024;
    const served = await serveRangeSource({
      size,
      async *stream(start, end) {
        yield Buffer.alloc(Math.min(1024 * 1024, end - start), 7);
        throw new Error('chunk abc does not match its id');
      },
      read: async () => Buffer.alloc(0),
    });
    try {
      const res = await fetch(served.url);
      expect(res.status).toBe(200);
      await expect(res.arrayBuffer()).rejects.toThrow();
    } finally {
      await served.close();
    }
  });
});
