/**
 * The benchmark's own corpus, generated once and cached (nothing is downloaded):
 *
 * - video: H.264 1080p25 from ffmpeg's `testsrc2` with temporal noise, about 100 Mbit/s,
 *   preset ultrafast, one continuous encode cut at the requested size by `-fs` (so the
 *   MP4 is complete and no stretch of it repeats another);
 * - edit A: the video with 100 bytes overwritten in the middle;
 * - edit B: the video with 4 KiB inserted at 1 MiB (or at 1/64 of a file under 64 MiB);
 * - big: pseudo-random bytes (incompressible, no internal repeats), for the memory figures.
 *
 * Each file is written under a temporary name and renamed when complete, so an
 * interrupted run never leaves a truncated file that a later run would take as cached.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomFillSync } from 'node:crypto';
import { run } from './exec.js';

export interface CoreCorpus {
  video: string;
  /** From ffprobe: the video's duration and overall bit rate. */
  durationSeconds: number;
  bitsPerSecond: number;
  editA: string;
  editB: string;
  /** Where edit A overwrote and edit B inserted, for the report. */
  editAOffset: number;
  editBOffset: number;
}

export interface CorpusDeps {
  dir: string;
  env: NodeJS.ProcessEnv;
  log: (line: string) => void;
}

const BLOCK = 8 << 20;

async function cached(file: string, deps: CorpusDeps, what: string, make: (tmp: string) => Promise<void>): Promise<string> {
  if (fs.existsSync(file)) return file;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.partial`;
  fs.rmSync(tmp, { force: true });
  deps.log(`generating ${what}: ${path.relative(process.cwd(), file)}`);
  const t = Date.now();
  await make(tmp);
  fs.renameSync(tmp, file);
  deps.log(`  done in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  return file;
}

export function videoFfmpegArgs(sizeBytes: number, out: string): string[] {
  return [
    '-hide_banner', '-loglevel', 'error', '-y',
    '-f', 'lavfi', '-i', 'testsrc2=size=1920x1080:rate=25,noise=alls=20:allf=t',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p',
    '-b:v', '100M', '-maxrate', '100M', '-bufsize', '200M',
    '-fs', String(sizeBytes), '-f', 'mp4', out,
  ];
}

/** Copies `src` to `dst` with `insert` placed at `at` (or `patch` written over at `at`). */
function copyEdited(src: string, dst: string, at: number, bytes: Buffer, mode: 'insert' | 'overwrite'): void {
  const fin = fs.openSync(src, 'r');
  const fout = fs.openSync(dst, 'w');
  try {
    const buf = Buffer.allocUnsafe(BLOCK);
    let pos = 0;
    let outPos = 0;
    const size = fs.fstatSync(fin).size;
    while (pos < size) {
      const want = pos < at ? Math.min(BLOCK, at - pos) : BLOCK;
      const n = fs.readSync(fin, buf, 0, want, pos);
      if (n === 0) break;
      fs.writeSync(fout, buf, 0, n, outPos);
      pos += n;
      outPos += n;
      if (pos === at && mode === 'insert') {
        fs.writeSync(fout, bytes, 0, bytes.length, outPos);
        outPos += bytes.length;
      }
    }
    if (mode === 'overwrite') fs.writeSync(fout, bytes, 0, bytes.length, at);
  } finally {
    fs.closeSync(fin);
    fs.closeSync(fout);
  }
}

/** Bytes that depend only on `seed`, so edits are the same on every machine. */
export function seededBytes(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

export async function ensureCoreCorpus(sizeBytes: number, deps: CorpusDeps): Promise<CoreCorpus> {
  const base = path.join(deps.dir, `video-${sizeBytes}`);
  const video = await cached(`${base}.mp4`, deps, `H.264 video of ${sizeBytes} bytes with ffmpeg`, async (tmp) => {
    await run('ffmpeg', videoFfmpegArgs(sizeBytes, tmp), { cwd: deps.dir, env: deps.env });
  });
  const size = fs.statSync(video).size;
  const editAOffset = Math.floor(size / 2);
  const editBOffset = size >= 64 << 20 ? 1 << 20 : Math.floor(size / 64);
  const editA = await cached(`${base}-edit-a.mp4`, deps, 'edit A (100 bytes overwritten in the middle)', async (tmp) => {
    copyEdited(video, tmp, editAOffset, seededBytes(100, 0xa11ce), 'overwrite');
  });
  const editB = await cached(`${base}-edit-b.mp4`, deps, 'edit B (4 KiB inserted near the start)', async (tmp) => {
    copyEdited(video, tmp, editBOffset, seededBytes(4096, 0xb0b), 'insert');
  });
  const durationSeconds = await probeDuration(video, deps);
  return { video, durationSeconds, bitsPerSecond: (size * 8) / durationSeconds, editA, editB, editAOffset, editBOffset };
}

export async function probeDuration(file: string, deps: CorpusDeps): Promise<number> {
  const r = await run('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', file], { cwd: deps.dir, env: deps.env });
  const d = Number(r.stdout.trim());
  if (!(d > 0)) throw new Error(`ffprobe found no duration in ${file}`);
  return d;
}

/** Incompressible pseudo-random bytes (OpenSSL's generator via node:crypto). */
export async function ensureRandomFile(sizeBytes: number, deps: CorpusDeps): Promise<string> {
  return cached(path.join(deps.dir, `random-${sizeBytes}.bin`), deps, `${sizeBytes} random bytes`, async (tmp) => {
    const fd = fs.openSync(tmp, 'w');
    try {
      const buf = Buffer.allocUnsafe(BLOCK);
      for (let done = 0; done < sizeBytes; ) {
        const n = Math.min(BLOCK, sizeBytes - done);
        randomFillSync(buf, 0, n);
        fs.writeSync(fd, buf, 0, n);
        done += n;
        // Let the event loop breathe (progress logs, signals) every 1 GiB.
        if (done % (1 << 30) === 0) await new Promise((r) => setImmediate(r));
      }
    } finally {
      fs.closeSync(fd);
    }
  });
}

/** Reads a file to the end so it sits in the page cache, the same for every tool. */
export function warmFile(file: string): void {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(BLOCK);
    let pos = 0;
    for (;;) {
      const n = fs.readSync(fd, buf, 0, BLOCK, pos);
      if (n === 0) break;
      pos += n;
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** Warms every regular file under `dir` (a tool's object store before a checkout). */
export function warmTree(dir: string): number {
  let bytes = 0;
  if (!fs.existsSync(dir)) return 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) bytes += warmTree(p);
    else if (e.isFile()) {
      warmFile(p);
      bytes += fs.statSync(p).size;
    }
  }
  return bytes;
}

/** Sum of apparent sizes of the regular files under `dir` (0 when it does not exist). */
export function treeBytes(dir: string, skip: (name: string) => boolean = () => false): number {
  let bytes = 0;
  if (!fs.existsSync(dir)) return 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (skip(e.name)) continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) bytes += treeBytes(p, skip);
    else if (e.isFile()) bytes += fs.lstatSync(p).size;
  }
  return bytes;
}
