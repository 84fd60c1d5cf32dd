/**
 * Issue 19's mirror figures: `syncMirror` of a remote holding 1 GiB of content (64 MiB packs
 * of 64 KiB incompressible chunks, their indexes, a manifest per pack, the refs) from one
 * s3rver bucket to another, against `rclone copy` between the same two buckets; then a
 * re-sync with nothing new (requests per side, wall time).
 *
 * Run from the repository root after `npx tsc -p tsconfig.json`:
 *   node dist/bench/mirror-sync.js [--size-mib 1024] [--runs 3] [--concurrency 8] [--no-rclone]
 * s3rver runs in its own process; runs alternate Dits / rclone into fresh prefixes; CPU
 * seconds are this process's (user+sys) for Dits, rclone's from its rusage.
 * rclone runs as `env -u AWS_CA_BUNDLE rclone copy s3r:primary/src s3r:mirror/<prefix>`.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { randomFillSync } from 'node:crypto';
import { S3Storage } from '../src/transfer/s3-storage.js';
import { hashBytes } from '../src/hashing/blake3.js';
import { encodeEntryHead, encodePackHeader, ENTRY_HEAD_SIZE, PACK_HEADER_SIZE } from '../src/store/pack-format.js';
import { encodePackIndex, type PackIndexEntry } from '../src/remote/content/pack-index.js';
import { indexKey, manifestKey, packKey } from '../src/remote/content/layout.js';
import { ManifestBuilder } from '../src/manifest/manifest.js';
import { encodeRefState, writeFormat, REFS_KEY } from '../src/remote/remote-state.js';
import { syncMirror } from '../src/lifecycle/mirror-sync.js';
import { startS3rverChild } from './lib/s3rver-child.js';

const MiB = 1024 * 1024;
const argNum = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const sizeMiB = argNum('size-mib', 1024);
const runs = argNum('runs', 3);
const concurrency = argNum('concurrency', 8);
const withRclone = !process.argv.includes('--no-rclone');

const startServer = (dir: string): Promise<{ port: number; child: ChildProcess }> => startS3rverChild(dir, ['primary', 'mirror']);

function storage(port: number, bucket: string, prefix: string): S3Storage {
  return new S3Storage({ bucket, prefix, endpoint: `http://127.0.0.1:${port}`, forcePathStyle: true, region: 'us-east-1', credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
}

/** A Dits remote of `mib` MiB: 64 MiB packs of 64 KiB random chunks, an index and a manifest per pack, format, refs. */
async function fillPrimary(s: S3Storage, mib: number): Promise<void> {
  await writeFormat(s);
  const chunk = 64 * 1024;
  const perPack = 1023; // a 64 MiB pack with its heads, as push cuts them (one streamed PUT each)
  let left = (mib * MiB) / chunk;
  while (left > 0) {
    const n = Math.min(perPack, left);
    left -= n;
    const entries: PackIndexEntry[] = [];
    const parts: Buffer[] = [encodePackHeader()];
    const builder = new ManifestBuilder();
    let offset = PACK_HEADER_SIZE;
    for (let i = 0; i < n; i++) {
      const data = randomFillSync(Buffer.allocUnsafe(chunk));
      const idRaw = hashBytes(data);
      const head = Buffer.alloc(ENTRY_HEAD_SIZE);
      encodeEntryHead({ idRaw, codec: 0, rawLength: chunk, storedLength: chunk }, head, 0);
      parts.push(head, data);
      offset += ENTRY_HEAD_SIZE;
      entries.push({ idRaw, offset, storedLength: chunk, rawLength: chunk, codec: 0 });
      offset += chunk;
      builder.add(idRaw, chunk, 0);
    }
    const { bytes: idx, packId } = encodePackIndex(entries);
    const body = Buffer.concat(parts);
    await s.put(packKey(packId), body, { size: body.length });
    await s.put(indexKey(packId), idx);
    const manifest = builder.encode({ oid: hashBytes(body).toString('hex'), chunker: { min: chunk, avg: chunk, max: chunk } as never, media: null as never });
    await s.put(manifestKey(manifest.id), manifest.bytes);
  }
  await s.putIf(REFS_KEY, encodeRefState({ version: 1, head: 'refs/heads/main', refs: { 'refs/heads/main': 'a'.repeat(40) }, bundles: [] }), 'absent');
}

function rclone(args: string[], port: number): Promise<{ seconds: number; cpu: number }> {
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
  const t0 = process.hrtime.bigint();
  return new Promise((resolve, reject) =>
    execFile('/usr/bin/time', ['-f', '%U %S', 'rclone', ...args], { env, maxBuffer: 16 * MiB }, (err, _out, stderr) => {
      if (err) return reject(new Error(`rclone ${args.join(' ')}: ${stderr}`));
      const m = /([\d.]+) ([\d.]+)\s*$/.exec(stderr.trim());
      resolve({ seconds: Number(process.hrtime.bigint() - t0) / 1e9, cpu: m ? Number(m[1]) + Number(m[2]) : NaN });
    }),
  );
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const requests = (s: S3Storage): number => [...s.requestCounts.values()].reduce((a, b) => a + b, 0);

async function main(): Promise<void> {
  const work = mkdtempSync(path.join(tmpdir(), 'dits-bench-mirror-'));
  const { port, child } = await startServer(work);
  try {
    const primary = storage(port, 'primary', 'src');
    await fillPrimary(primary, sizeMiB);
    const bytes = sizeMiB * MiB;
    const dits: { s: number; cpu: number }[] = [];
    const peer: { s: number; cpu: number }[] = [];
    const streamed: { s: number; cpu: number }[] = [];
    let peak = process.memoryUsage().rss;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    // dirty pages of the last run are written out before each measured run (s3rver writes
    // every byte to disk), and the order alternates, so no side pays the other's writeback
    const settle = async (): Promise<void> => {
      await new Promise<void>((resolve) => execFile('sync', () => resolve()));
      await new Promise((r) => setTimeout(r, 1000));
    };
    const runDits = async (r: number): Promise<void> => {
      await settle();
      const from = storage(port, 'primary', 'src');
      const to = storage(port, 'mirror', `dits-${r}`);
      const c0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      const res = await syncMirror(from, to, { concurrency });
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      const c = process.cpuUsage(c0);
      if (res.refs !== 'updated' || res.notCopied.length) throw new Error(`sync did not complete: ${JSON.stringify(res)}`);
      dits.push({ s, cpu: (c.user + c.system) / 1e6 });
      console.log(`dits mirror sync run ${r + 1}: ${s.toFixed(2)} s, ${(bytes / MiB / s).toFixed(0)} MiB/s, ${dits.at(-1)!.cpu.toFixed(2)} CPU s, ${requests(from)} requests to the primary, ${requests(to)} to the mirror`);
    };
    const runRclone = async (r: number): Promise<void> => {
      await settle();
      const rs = await rclone(['copy', '--disable', 'copy', 's3r:primary/src', `s3r:mirror/rclone-stream-${r}`], port);
      streamed.push({ s: rs.seconds, cpu: rs.cpu });
      console.log(`rclone copy --disable copy run ${r + 1}: ${rs.seconds.toFixed(2)} s, ${(bytes / MiB / rs.seconds).toFixed(0)} MiB/s, ${rs.cpu.toFixed(2)} CPU s (bytes through rclone)`);
      await settle();
      const rc = await rclone(['copy', 's3r:primary/src', `s3r:mirror/rclone-${r}`], port);
      peer.push({ s: rc.seconds, cpu: rc.cpu });
      console.log(`rclone copy run ${r + 1}: ${rc.seconds.toFixed(2)} s, ${(bytes / MiB / rc.seconds).toFixed(0)} MiB/s, ${rc.cpu.toFixed(2)} CPU s (server-side copy: no bytes through rclone)`);
    };
    for (let r = 0; r < runs; r++) {
      if (r % 2 === 0 || !withRclone) {
        await runDits(r);
        if (withRclone) await runRclone(r);
      } else {
        await runRclone(r);
        await runDits(r);
      }
    }
    clearInterval(sampler);
    const ds = median(dits.map((d) => d.s));
    console.log(`\nmedian dits: ${ds.toFixed(2)} s (${(bytes / MiB / ds).toFixed(0)} MiB/s), peak RSS of this process ${(peak / MiB).toFixed(0)} MiB`);
    if (withRclone) {
      const ps = median(peer.map((d) => d.s));
      console.log(`median rclone copy (server-side): ${ps.toFixed(2)} s (${(bytes / MiB / ps).toFixed(0)} MiB/s); dits speed / rclone speed = ${(ps / ds).toFixed(2)}x`);
      const ss = median(streamed.map((d) => d.s));
      console.log(`median rclone copy --disable copy (streamed): ${ss.toFixed(2)} s (${(bytes / MiB / ss).toFixed(0)} MiB/s); dits speed / rclone speed = ${(ss / ds).toFixed(2)}x`);
      console.log(`CPU s medians: dits ${median(dits.map((d) => d.cpu)).toFixed(2)}, rclone server-side ${median(peer.map((d) => d.cpu)).toFixed(2)}, rclone streamed ${median(streamed.map((d) => d.cpu)).toFixed(2)}`);
    }
    // nothing new: one listing per side (plus the refs read on each side)
    const times: number[] = [];
    for (let r = 0; r < 5; r++) {
      const from = storage(port, 'primary', 'src');
      const to = storage(port, 'mirror', 'dits-0');
      const t0 = process.hrtime.bigint();
      const res = await syncMirror(from, to, { concurrency });
      times.push(Number(process.hrtime.bigint() - t0) / 1e9);
      if (r === 0) console.log(`re-sync, nothing new: copied ${res.copied.bytes} bytes, refs ${res.refs}, requests: primary ${JSON.stringify(Object.fromEntries(from.requestCounts))}, mirror ${JSON.stringify(Object.fromEntries(to.requestCounts))}`);
    }
    console.log(`re-sync, nothing new: median ${median(times).toFixed(3)} s over 5 runs`);
  } finally {
    child.kill();
    rmSync(work, { recursive: true, force: true });
  }
}

void main().catch((err) => {
  console.error(err);
  process.exit(1);
});
