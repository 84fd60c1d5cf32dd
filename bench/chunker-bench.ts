/**
 * Chunker throughput and dedup figures. Run after `npx tsc -p .`:
 *
 *   node dist/bench/chunker-bench.js [--size-mib 1024] [--runs 3] [--no-h264] [--h264-seconds 20]
 *
 * 1. MB/s of both implementations on pseudo-random (incompressible) data, whole buffer and
 *    streamed in 64 KiB (pkt-line) and 1 MiB pushes; median of --runs.
 * 2. With ffmpeg on PATH: an H.264 file (testsrc2 with noise, ~100 Mbit/s, cached in the OS
 *    temp dir): throughput, chunk sizes and the new bytes an edit costs (100 bytes
 *    overwritten in the middle, 4 KiB inserted near the start) for a few size settings,
 *    the evidence behind DEFAULT_CHUNKER_PARAMS.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Chunker, DEFAULT_CHUNKER_PARAMS, nativeChunkerAvailable, type ChunkerImplementation, type ChunkerParams } from '../src/chunking/chunker.js';
import { nativeScanError } from '../src/chunking/native-scan.js';
import { xorshift32Bytes } from '../src/chunking/pseudo-random.js';
import { hashHex } from '../src/hashing/blake3.js';

function arg(name: string, fallback: number): number {
  const k = process.argv.indexOf(name);
  return k >= 0 ? Number(process.argv[k + 1]) : fallback;
}
const SIZE = arg('--size-mib', 1024) * 1024 * 1024;
const RUNS = arg('--runs', 3);
const H264_SECONDS = arg('--h264-seconds', 20);
const impls: ChunkerImplementation[] = nativeChunkerAvailable() ? ['native', 'js'] : ['js'];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Chunks `data` pushed in `step`-byte pieces (0: whole buffer); returns chunk count. */
function run(data: Buffer, params: ChunkerParams, impl: ChunkerImplementation, step: number, onChunk?: (c: Buffer) => void): number {
  const c = new Chunker(params, { implementation: impl });
  let count = 0;
  const take = (chunks: Buffer[]) => {
    count += chunks.length;
    if (onChunk) for (const ch of chunks) onChunk(ch);
  };
  if (step === 0) take(c.push(data));
  else for (let at = 0; at < data.length; at += step) take(c.push(data.subarray(at, Math.min(at + step, data.length))));
  const last = c.finish();
  if (last !== null) take([last]);
  return count;
}

/**
 * "wall/cpu" MB/s, medians of RUNS. Other work on a shared machine slows the wall-clock
 * figure; the CPU-time figure (this process's user + system time) is the speed per core.
 */
function mbps(data: Buffer, fn: () => void): string {
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const t = process.hrtime.bigint();
    const c = process.cpuUsage();
    fn();
    const used = process.cpuUsage(c);
    wall.push(Number(process.hrtime.bigint() - t) / 1e9);
    cpu.push((used.user + used.system) / 1e6);
  }
  const rate = (s: number) => (data.length / 1e6 / s).toFixed(0);
  return `${rate(median(wall))}/${rate(median(cpu))}`.padStart(10);
}

function throughput(label: string, data: Buffer): void {
  console.log(`\n${label}: ${(data.length / 2 ** 20).toFixed(0)} MiB, params ${JSON.stringify(DEFAULT_CHUNKER_PARAMS)}, median of ${RUNS} runs, MB/s wall/cpu`);
  console.log('impl        whole      64KiB       1MiB  1MiB+blake3');
  for (const impl of impls) {
    const cols = [0, 64 * 1024, 1 << 20].map((step) => mbps(data, () => run(data, DEFAULT_CHUNKER_PARAMS, impl, step)));
    cols.push(mbps(data, () => run(data, DEFAULT_CHUNKER_PARAMS, impl, 1 << 20, (c) => hashHex(c))));
    console.log(`${impl.padEnd(6)} ${cols.join('  ')}`);
  }
  const n = run(data, DEFAULT_CHUNKER_PARAMS, impls[0]!, 0);
  console.log(`chunks: ${n}, mean ${(data.length / n / 1024).toFixed(1)} KiB`);
}

function makeH264(): string | null {
  if (spawnSync('ffmpeg', ['-version'], { stdio: 'ignore' }).status !== 0) return null;
  const dir = join(tmpdir(), 'dits-chunker-bench');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `h264-${H264_SECONDS}s.mp4`);
  if (existsSync(file)) return file;
  const r = spawnSync('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi',
    '-i', 'testsrc2=size=1280x720:rate=30,noise=alls=40:allf=t', '-t', String(H264_SECONDS),
    '-c:v', 'libx264', '-preset', 'ultrafast', '-b:v', '100M', '-maxrate', '100M', '-bufsize', '200M',
    '-pix_fmt', 'yuv420p', file,
  ], { stdio: 'inherit' });
  return r.status === 0 ? file : null;
}

function editCost(data: Buffer, params: ChunkerParams): { chunks: number; meanKiB: number; atMax: number; overwrite: number; insert: number } {
  const ids = new Set<string>();
  const sizes: number[] = [];
  run(data, params, impls[0]!, 1 << 20, (c) => {
    ids.add(hashHex(c));
    sizes.push(c.length);
  });
  const newBytes = (edited: Buffer) => {
    let fresh = 0;
    run(edited, params, impls[0]!, 1 << 20, (c) => {
      if (!ids.has(hashHex(c))) fresh += c.length;
    });
    return fresh;
  };
  const overwritten = Buffer.from(data);
  xorshift32Bytes(100, 99).copy(overwritten, data.length >> 1);
  const at = 1 << 20;
  const inserted = Buffer.concat([data.subarray(0, at), xorshift32Bytes(4096, 77), data.subarray(at)]);
  return {
    chunks: sizes.length,
    meanKiB: data.length / sizes.length / 1024,
    atMax: sizes.filter((s) => s === params.maxSize).length / sizes.length,
    overwrite: newBytes(overwritten),
    insert: newBytes(inserted),
  };
}

console.log(`native chunker: ${nativeChunkerAvailable() ? 'yes' : `no (${nativeScanError()})`}`);
const random = xorshift32Bytes(SIZE);
throughput('pseudo-random (xorshift32)', random);

if (!process.argv.includes('--no-h264')) {
  const file = makeH264();
  if (file === null) console.log('\nffmpeg not available: H.264 figures skipped');
  else {
    const video = readFileSync(file);
    throughput(`H.264 (${file})`, video);
    console.log('\nsize settings on the H.264 file (new bytes stored after each edit):');
    console.log('min/avg/max KiB     chunks  mean KiB  at max    MB/s w/c  100B overwrite  4KiB insert');
    const KiB = 1024;
    for (const [mn, av, mx] of [[4, 16, 64], [8, 32, 128], [16, 64, 256], [32, 128, 512], [64, 256, 1024]] as const) {
      const p = { minSize: mn * KiB, avgSize: av * KiB, maxSize: mx * KiB };
      const e = editCost(video, p);
      const speed = mbps(video, () => run(video, p, impls[0]!, 1 << 20));
      console.log(
        `${`${mn}/${av}/${mx}`.padEnd(18)} ${String(e.chunks).padStart(7)} ${e.meanKiB.toFixed(1).padStart(9)} ${(e.atMax * 100).toFixed(1).padStart(6)}% ${speed} ${String(e.overwrite).padStart(15)} ${String(e.insert).padStart(12)}`,
      );
    }
  }
}
