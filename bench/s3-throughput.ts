/**
 * Throughput of S3Storage against s3rver on loopback, next to rclone on the same server
 * and the same file: a 1 GiB streaming put and get, as one multipart object and as 64 MiB
 * packs through the TransferQueue; requests per GiB and peak RSS of this process.
 *
 * Build and run (s3rver runs in its own process, as it would for rclone):
 *   npx tsc --outDir /tmp/ditsbench --ignoreConfig --rootDir . --module NodeNext --moduleResolution NodeNext --target ES2022 \
 *     --strict --esModuleInterop --skipLibCheck --types node bench/s3-throughput.ts
 *   ln -sfn "$PWD/node_modules" /tmp/ditsbench/node_modules; echo '{"type":"module"}' > /tmp/ditsbench/package.json
 *   node /tmp/ditsbench/bench/s3-throughput.js   # from the repository root [--size-mib 1024] [--part-mib 32] [--part-concurrency 4]
 *     [--pack-mib 64] [--queue-concurrency 8] [--no-rclone] [--only single|packs|rclone]
 * Peak RSS is this process's (s3rver excluded); use --only for one group's clean figure.
 * rclone runs as `env -u AWS_CA_BUNDLE rclone copy` configured through RCLONE_CONFIG_S3R_*.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { closeSync, createReadStream, createWriteStream, mkdtempSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { randomFillSync } from 'node:crypto';
import { S3Storage } from '../src/transfer/s3-storage.js';
import { TransferQueue } from '../src/transfer/transfer-queue.js';
import { startS3rverChild } from './lib/s3rver-child.js';

const MiB = 1024 * 1024;

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const sizeMiB = arg('size-mib', 1024);
const partMiB = arg('part-mib', 32);
const partConcurrency = arg('part-concurrency', 4);
const packMiB = arg('pack-mib', 64);
const queueConcurrency = arg('queue-concurrency', 8);
const runRclone = !process.argv.includes('--no-rclone');
/** --only single|packs|rclone: one group per process gives a clean peak RSS for it */
const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined;
const runs = (group: string) => only === undefined || only === group;
const BUCKET = 'bench';

const startServer = (dir: string): Promise<{ port: number; child: ChildProcess }> => startS3rverChild(dir, [BUCKET]);

function makeFile(file: string, bytes: number): void {
  // incompressible content, written in 16 MiB blocks of fresh random bytes
  const fd = openSync(file, 'w');
  const block = Buffer.allocUnsafe(16 * MiB);
  for (let written = 0; written < bytes; written += block.length) {
    randomFillSync(block);
    writeSync(fd, block, 0, Math.min(block.length, bytes - written));
  }
  closeSync(fd);
}

class RssSampler {
  peak = 0;
  private timer?: NodeJS.Timeout;
  start(): void {
    this.peak = process.memoryUsage().rss;
    this.timer = setInterval(() => (this.peak = Math.max(this.peak, process.memoryUsage().rss)), 20);
  }
  stop(): number {
    clearInterval(this.timer);
    return Math.max(this.peak, process.memoryUsage().rss);
  }
}

interface Row {
  what: string;
  seconds: number;
  mbPerSec: number;
  requests?: number;
  peakRssMiB?: number;
}

async function timed(what: string, bytes: number, fn: () => Promise<number | void>): Promise<Row> {
  const rss = new RssSampler();
  rss.start();
  const t0 = process.hrtime.bigint();
  const requests = await fn();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return { what, seconds, mbPerSec: bytes / 1e6 / seconds, requests: requests ?? undefined, peakRssMiB: rss.stop() / MiB };
}

function sumRequests(s: S3Storage): number {
  let n = 0;
  for (const v of s.requestCounts.values()) n += v;
  return n;
}

function rclone(args: string[], port: number): Promise<void> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.AWS_CA_BUNDLE;
  Object.assign(env, {
    RCLONE_CONFIG_S3R_TYPE: 's3',
    RCLONE_CONFIG_S3R_PROVIDER: 'Other',
    RCLONE_CONFIG_S3R_ENDPOINT: `http://127.0.0.1:${port}`,
    RCLONE_CONFIG_S3R_ACCESS_KEY_ID: 'S3RVER',
    RCLONE_CONFIG_S3R_SECRET_ACCESS_KEY: 'S3RVER',
    RCLONE_CONFIG_S3R_FORCE_PATH_STYLE: 'true',
    RCLONE_CONFIG_S3R_REGION: 'us-east-1',
  });
  return new Promise((resolve, reject) =>
    execFile('rclone', args, { env, maxBuffer: 16 * MiB }, (err, _out, stderr) => (err ? reject(new Error(`rclone ${args.join(' ')}: ${stderr}`)) : resolve())),
  );
}

async function main(): Promise<void> {
  const work = mkdtempSync(path.join(tmpdir(), 'dits-bench-s3-'));
  const bytes = sizeMiB * MiB;
  const source = path.join(work, 'video.bin');
  makeFile(source, bytes);
  const { port, child } = await startServer(path.join(work, 's3rver'));
  const rows: Row[] = [];
  try {
    const options = {
      bucket: BUCKET,
      endpoint: `http://127.0.0.1:${port}`,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      partSize: partMiB * MiB,
      multipartThreshold: partMiB * MiB,
      partConcurrency,
    };

    // 1. one object, multipart, streamed from disk
    if (runs('single')) {
      const single = new S3Storage({ ...options, prefix: 'dits-single' });
      rows.push(
        await timed(`dits put: 1 object, multipart ${partMiB} MiB parts x${partConcurrency}`, bytes, async () => {
          await single.put('video.bin', () => createReadStream(source, { highWaterMark: MiB }), { size: bytes });
          return sumRequests(single);
        }),
      );
      const before = sumRequests(single);
      rows.push(
        await timed('dits get: 1 object, one stream to disk', bytes, async () => {
          await pipeline(await single.get('video.bin'), createWriteStream(path.join(work, 'dits-single.out')));
          return sumRequests(single) - before;
        }),
      );
      if (statSync(path.join(work, 'dits-single.out')).size !== bytes) throw new Error('single download has the wrong size');
      rmSync(path.join(work, 'dits-single.out'));
    }

    // 2. packs of packMiB through the queue: single streamed PUTs, no buffering
    if (runs('packs')) {
      const packs = new S3Storage({ ...options, prefix: 'dits-packs', multipartThreshold: packMiB * MiB });
      const packBytes = packMiB * MiB;
      const count = Math.ceil(bytes / packBytes);
      const up = new TransferQueue(packs, { concurrency: queueConcurrency });
      rows.push(
        await timed(`dits put: ${count} packs of ${packMiB} MiB, queue x${queueConcurrency}`, bytes, async () => {
          await Promise.all(
            Array.from({ length: count }, (_, i) => {
              const start = i * packBytes;
              const end = Math.min(bytes, start + packBytes) - 1;
              return up.upload({ key: `v1/objects/pack-${i}`, size: end - start + 1, body: () => createReadStream(source, { start, end, highWaterMark: MiB }) });
            }),
          );
          return sumRequests(packs);
        }),
      );
      const out = path.join(work, 'dits-packs.out');
      const handle = await open(out, 'w');
      const down = new TransferQueue(packs, { concurrency: queueConcurrency });
      const beforePacks = sumRequests(packs);
      rows.push(
        await timed(`dits get: ${count} packs, queue x${queueConcurrency}, written at offsets`, bytes, async () => {
          await Promise.all(
            Array.from({ length: count }, (_, i) =>
              down.download({
                key: `v1/objects/pack-${i}`,
                consume: async (stream) => {
                  let pos = i * packBytes;
                  for await (const chunk of stream) {
                    const b = chunk as Buffer;
                    await handle.write(b, 0, b.length, pos);
                    pos += b.length;
                  }
                },
              }),
            ),
          );
          return sumRequests(packs) - beforePacks;
        }),
      );
      await handle.close();
      if (statSync(out).size !== bytes) throw new Error('pack download has the wrong size');
      rmSync(out);
    }

    // 3. rclone, same file, same server
    if (runRclone && runs('rclone')) {
      rows.push(await timed('rclone copy up (defaults)', bytes, () => rclone(['copy', source, `s3r:${BUCKET}/rclone/`], port)));
      const dest = path.join(work, 'rclone-out');
      rows.push(await timed('rclone copy down (defaults)', bytes, () => rclone(['copy', `s3r:${BUCKET}/rclone/video.bin`, dest], port)));
      if (statSync(path.join(dest, 'video.bin')).size !== bytes) throw new Error('rclone download has the wrong size');
    }
  } finally {
    child.kill();
    rmSync(work, { recursive: true, force: true });
  }

  console.log(`S3 throughput, ${sizeMiB} MiB, s3rver on 127.0.0.1 (own process)`);
  for (const r of rows) {
    console.log(
      `${r.what.padEnd(62)} ${r.seconds.toFixed(2).padStart(7)} s ${r.mbPerSec.toFixed(1).padStart(7)} MB/s` +
        (r.requests !== undefined ? ` ${String(r.requests).padStart(4)} req` : '         ') +
        (r.what.startsWith('dits') && r.peakRssMiB !== undefined ? ` rss ${r.peakRssMiB.toFixed(0)} MiB` : ''),
    );
  }
  console.log(JSON.stringify({ sizeMiB, partMiB, partConcurrency, packMiB, queueConcurrency, rows }));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
