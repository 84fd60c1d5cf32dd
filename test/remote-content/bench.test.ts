/**
 * Benchmark (skipped unless DITS_BENCH=1; size by DITS_BENCH_MIB, default 1024): push and
 * fetch of one large random file to s3rver on loopback, each in its own node process running
 * the compiled code (dist/, built by the global setup) so peak RSS is the operation's own;
 * rclone copy of the same file to the same server as the peer; then a 100-byte edit pushed.
 *
 *   DITS_BENCH=1 npx vitest run test/remote-content/bench.test.ts
 */
import { expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startS3rver } from '../../src/transfer/testing/s3rver.js';
import { TempDirs } from './fixtures.js';

const MiB = 1024 * 1024;
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dist = pathToFileURL(path.join(root, 'dist')).href;

const CHILD = `
const dist = process.env.DIST;
const cfg = JSON.parse(process.env.BENCH);
const { ChunkStore } = await import(dist + '/src/store/chunk-store.js');
const { ingest } = await import(dist + '/src/store/ingest.js');
const { readFileBuffers } = await import(dist + '/src/store/file-source.js');
const { DEFAULT_CHUNKER_PARAMS } = await import(dist + '/src/chunking/params.js');
const { S3Storage } = await import(dist + '/src/transfer/s3-storage.js');
const { pushContent, fetchContent } = await import(dist + '/src/remote/content/index.js');
const storage = new S3Storage({ ...cfg.s3, ...(cfg.s3opts || {}) });
let http = 0;
const calls = {};
storage.client.middlewareStack.add((next, ctx) => async (args) => { http++; calls[ctx.commandName] = (calls[ctx.commandName] || 0) + 1; return next(args); }, { step: 'finalizeRequest', name: 'benchCount' });
const store = ChunkStore.open(cfg.storeDir, { create: true });
const t0 = performance.now();
let out;
if (cfg.op === 'ingest') {
  const r = await ingest(store, readFileBuffers(cfg.file), { params: DEFAULT_CHUNKER_PARAMS });
  out = { manifestId: r.manifestId, newChunks: r.newChunks };
} else if (cfg.op === 'push') {
  out = await pushContent(storage, store, [cfg.manifestId], { remoteName: 'origin', dryRun: !!cfg.dryRun, ...(cfg.opts || {}) });
} else if (cfg.op === 'fetch') {
  out = await fetchContent(storage, store, [cfg.manifestId], { remoteName: 'origin', ...(cfg.opts || {}) });
}
const ms = performance.now() - t0;
store.close();
console.log(JSON.stringify({ ...out, ms: Math.round(ms), http, calls, maxRssMiB: Math.round(process.resourceUsage().maxRSS / 1024) }));
`;

it.skipIf(!process.env.DITS_BENCH)(
  'push/fetch of a large file to s3rver vs rclone',
  async () => {
    const size = Number(process.env.DITS_BENCH_MIB ?? 1024) * MiB;
    const dirs = new TempDirs();
    const work = dirs.make('dits-bench-');
    const s3 = await startS3rver({ buckets: ['bench'], directory: path.join(work, 's3rver') });
    try {
      const file = path.join(work, 'clip.mov');
      const fd = fs.openSync(file, 'w');
      for (let done = 0; done < size; done += 16 * MiB) fs.writeSync(fd, randomBytes(Math.min(16 * MiB, size - done)));
      fs.closeSync(fd);
      const childFile = path.join(work, 'child.mjs');
      fs.writeFileSync(childFile, CHILD);
      const s3cfg = { bucket: 'bench', prefix: 'dits', endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: s3.credentials };
      // s3rver runs in this process: children must be awaited, never run synchronously
      const exec = promisify(execFile);
      const run = async (cfg: Record<string, unknown>) => {
        const prof = process.env.DITS_BENCH_PROF_DIR && cfg.op !== 'ingest' ? ['--cpu-prof', `--cpu-prof-dir=${process.env.DITS_BENCH_PROF_DIR}/${String(cfg.op)}`] : [];
        const r = await exec(process.execPath, [...prof, childFile], { env: { ...process.env, DIST: dist, BENCH: JSON.stringify({ s3: s3cfg, ...cfg }) }, encoding: 'utf8', maxBuffer: 1 << 24 });
        return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, number> & { manifestId: string };
      };
      const storeA = path.join(work, 'a');
      const ing = await run({ op: 'ingest', storeDir: storeA, file });
      const dry = await run({ op: 'push', storeDir: storeA, manifestId: ing.manifestId, dryRun: true });
      const pushOpts = process.env.DITS_BENCH_PUSH_OPTS ? JSON.parse(process.env.DITS_BENCH_PUSH_OPTS) : {};
      const push = await run({ op: 'push', storeDir: storeA, manifestId: ing.manifestId, opts: pushOpts });

      const rcloneEnv = {
        ...process.env,
        RCLONE_CONFIG_S3R_TYPE: 's3',
        RCLONE_CONFIG_S3R_PROVIDER: 'Other',
        RCLONE_CONFIG_S3R_ENDPOINT: s3.endpoint,
        RCLONE_CONFIG_S3R_ACCESS_KEY_ID: s3.credentials.accessKeyId,
        RCLONE_CONFIG_S3R_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey,
        RCLONE_CONFIG_S3R_FORCE_PATH_STYLE: 'true',
      } as NodeJS.ProcessEnv;
      delete rcloneEnv.AWS_CA_BUNDLE;
      let t = performance.now();
      await exec('rclone', ['copy', file, 's3r:bench/rclone/'], { env: rcloneEnv });
      const rcloneUpMs = performance.now() - t;

      const storeB = path.join(work, 'b');
      const fetch = await run({ op: 'fetch', storeDir: storeB, manifestId: ing.manifestId });
      const variants: Record<string, unknown>[] = process.env.DITS_BENCH_FETCH_VARIANTS ? JSON.parse(process.env.DITS_BENCH_FETCH_VARIANTS) : [];
      const variantResults = [];
      for (const [i, opts] of variants.entries()) {
        const r = await run({ op: 'fetch', storeDir: path.join(work, `v${i}`), manifestId: ing.manifestId, opts });
        variantResults.push({ opts, ms: r.ms, http: r.http, maxRssMiB: r.maxRssMiB });
      }
      t = performance.now();
      await exec('rclone', ['copy', 's3r:bench/rclone/clip.mov', path.join(work, 'down')], { env: rcloneEnv });
      const rcloneDownMs = performance.now() - t;

      // a 100-byte edit in the middle
      const efd = fs.openSync(file, 'r+');
      fs.writeSync(efd, randomBytes(100), 0, 100, Math.floor(size / 2));
      fs.closeSync(efd);
      const ing2 = await run({ op: 'ingest', storeDir: storeA, file });
      const push2 = await run({ op: 'push', storeDir: storeA, manifestId: ing2.manifestId });

      const rate = (ms: number) => `${((size / MiB) / (ms / 1000)).toFixed(0)} MiB/s`;
      const report = {
        sizeMiB: size / MiB,
        ingest: { ms: ing.ms, maxRssMiB: ing.maxRssMiB },
        dryRun: { estimatedRequests: dry.estimatedRequests, bytes: dry.bytes, packs: dry.packs, http: dry.http },
        push: { ms: push.ms, rate: rate(push.ms), httpRequests: push.http, reported: push.requests, packs: push.packs, maxRssMiB: push.maxRssMiB, calls: push.calls },
        rcloneUp: { ms: Math.round(rcloneUpMs), rate: rate(rcloneUpMs) },
        pushVsRclone: (rcloneUpMs / push.ms).toFixed(2),
        fetch: { ms: fetch.ms, rate: rate(fetch.ms), httpRequests: fetch.http, maxRssMiB: fetch.maxRssMiB },
        rcloneDown: { ms: Math.round(rcloneDownMs), rate: rate(rcloneDownMs) },
        fetchVsRclone: (rcloneDownMs / fetch.ms).toFixed(2),
        fetchVariants: variantResults,
        editPush: { ms: push2.ms, bytes: push2.bytes, chunks: push2.chunks, httpRequests: push2.http },
      };
      console.log(JSON.stringify(report, null, 2));
      expect(push.http).toBe(push.requests);
      expect(push2.bytes).toBeLessThan(1_000_000 * Math.max(1, size / (1024 * MiB))); // the new manifest is 37 bytes a chunk
    } finally {
      await s3.close();
      dirs.cleanup();
    }
  },
  1_800_000,
);
