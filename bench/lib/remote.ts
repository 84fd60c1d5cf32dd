/**
 * Issue 5's figures over S3 (s3rver on loopback behind a counting proxy, see
 * s3-loopback.ts), Dits through `git push` / `git clone` with `dits::s3://` URLs, against
 * `rclone copy` of the same file to and from the same server.
 *
 * Each run uses a fresh prefix on the server, so every first push starts from an empty
 * remote. The lazy-clone repository holds `lazyPaths` paths that all point at the video
 * (one pointer blob staged under many names): its logical size is lazyPaths x the video,
 * while the remote holds one copy of the content. A lazy clone should not read content at
 * all, so its time depends on the number of paths, not on the bytes behind them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { run as runProcess } from './exec.js';
import { warmFile, warmTree, type CoreCorpus } from './corpus.js';
import { megabytesPerSecond } from './units.js';
import type { Sandbox } from './sandbox.js';
import type { TreeMemoryPeak } from './proc-tree-memory.js';
import type { S3Loopback, TrafficCounts } from './s3-loopback.js';

export interface TransferRun {
  bytes: number;
  seconds: number;
  mbps: number;
  traffic: TrafficCounts;
  memory?: TreeMemoryPeak;
}

export interface RemoteResults {
  videoBytes: number;
  lazyPaths: number;
  push: TransferRun[];
  rcloneUp: TransferRun[];
  editPush: TransferRun[];
  clone: TransferRun[];
  rcloneDown: TransferRun[];
  lazyClone: TransferRun[];
  rcloneVersion: string | null;
  skipped: string[];
}

export interface RemoteOptions {
  runs: number;
  memoryIntervalMs: number;
  lazyPaths: number;
}

const FILE = 'clip.mp4';

export function rcloneEnv(base: NodeJS.ProcessEnv, s3: S3Loopback): NodeJS.ProcessEnv {
  // rclone 1.60 refuses to start an S3 remote when AWS_CA_BUNDLE is set (see DESIGN.md).
  const env: NodeJS.ProcessEnv = {
    ...base,
    RCLONE_CONFIG_S3R_TYPE: 's3',
    RCLONE_CONFIG_S3R_PROVIDER: 'Other',
    RCLONE_CONFIG_S3R_ENDPOINT: s3.endpoint,
    RCLONE_CONFIG_S3R_ACCESS_KEY_ID: s3.accessKeyId,
    RCLONE_CONFIG_S3R_SECRET_ACCESS_KEY: s3.secretAccessKey,
    RCLONE_CONFIG_S3R_REGION: 'us-east-1',
    RCLONE_CONFIG_S3R_FORCE_PATH_STYLE: 'true',
  };
  delete env.AWS_CA_BUNDLE;
  return env;
}

async function sync(sb: Sandbox): Promise<void> {
  await runProcess('sync', [], { cwd: sb.dir, env: sb.env });
}

async function sameBytes(sb: Sandbox, a: string, b: string): Promise<boolean> {
  return runProcess('cmp', ['-s', a, b], { cwd: sb.dir, env: sb.env }).then(() => true, () => false);
}

export async function runRemoteBench(corpus: CoreCorpus, s3: S3Loopback, opts: RemoteOptions, deps: { sandbox: Sandbox; log: (l: string) => void }): Promise<RemoteResults> {
  const { sandbox: sb, log } = deps;
  const size = fs.statSync(corpus.video).size;
  const editSize = fs.statSync(corpus.editA).size;
  const awsEnv = { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey, AWS_REGION: 'us-east-1' };
  const rEnv = rcloneEnv(sb.env, s3);
  const res: RemoteResults = { videoBytes: size, lazyPaths: opts.lazyPaths, push: [], rcloneUp: [], editPush: [], clone: [], rcloneDown: [], lazyClone: [], rcloneVersion: null, skipped: [] };
  res.rcloneVersion = await runProcess('rclone', ['version'], { cwd: sb.dir, env: rEnv }).then((r) => r.stdout.split('\n')[0]!.trim(), () => null);
  if (!res.rcloneVersion) res.skipped.push('rclone not installed: no peer for the push and clone ratios');
  await sb.run('git', ['config', '--global', 'dits.s3.endpoint', s3.endpoint], sb.dir);
  const git = (args: string[], cwd: string, memory = false) => sb.run('git', args, cwd, { env: awsEnv, ...(memory ? { memoryIntervalMs: opts.memoryIntervalMs } : {}) });
  const measured = async (bytes: number, fn: () => Promise<{ seconds: number; memory?: TreeMemoryPeak }>): Promise<TransferRun> => {
    await sync(sb);
    s3.reset();
    const out = await fn();
    return { bytes, seconds: out.seconds, mbps: megabytesPerSecond(bytes, out.seconds), traffic: s3.counts(), ...(out.memory ? { memory: out.memory } : {}) };
  };
  const describe = (t: TransferRun) => `${t.seconds.toFixed(2)} s, ${t.mbps.toFixed(0)} MB/s, ${t.traffic.requests} requests, ${t.traffic.bytesUp} B up, ${t.traffic.bytesDown} B down${t.memory ? `, peak ${(t.memory.peakSumRssBytes / 2 ** 20).toFixed(0)} MiB` : ''}`;

  for (let r = 0; r < opts.runs; r++) {
    const url = `dits::s3://${s3.bucket}/run-${Date.now()}-${r}/proj`;
    const repo = sb.freshDir('remote-src');
    await git(['init', '-q', '.'], repo);
    await git(['dits', 'init'], repo);
    await git(['dits', 'track', '*.mp4'], repo);
    fs.linkSync(corpus.video, path.join(repo, FILE));
    await git(['add', '.gitattributes'], repo);
    await git(['dits', 'add', FILE], repo);
    await git(['commit', '-q', '-m', 'video'], repo);
    await git(['remote', 'add', 'origin', url], repo);

    // First push: everything the commit needs, to an empty remote.
    warmTree(path.join(repo, '.git', 'dits'));
    const push = await measured(size, () => git(['push', '-q', 'origin', 'main'], repo, true));
    res.push.push(push);
    log(`  first push run ${r + 1}: ${describe(push)}`);

    if (res.rcloneVersion) {
      warmFile(corpus.video);
      const dest = `s3r:${s3.bucket}/rclone-${Date.now()}-${r}/`;
      const up = await measured(size, () => runProcess('rclone', ['copy', corpus.video, dest], { cwd: sb.dir, env: rEnv }));
      res.rcloneUp.push(up);
      log(`  rclone copy up run ${r + 1}: ${describe(up)}`);
      const down = sb.freshDir('rclone-down');
      const dn = await measured(size, () => runProcess('rclone', ['copy', `${dest}${path.basename(corpus.video)}`, down], { cwd: sb.dir, env: rEnv }));
      if (fs.statSync(path.join(down, path.basename(corpus.video))).size !== size) throw new Error('rclone download has the wrong size');
      res.rcloneDown.push(dn);
      log(`  rclone copy down run ${r + 1}: ${describe(dn)}`);
      sb.remove(down);
    }

    // Push after a 100-byte edit.
    fs.rmSync(path.join(repo, FILE));
    fs.linkSync(corpus.editA, path.join(repo, FILE));
    await git(['dits', 'add', FILE], repo);
    await git(['commit', '-q', '-m', 'edit'], repo);
    const edit = await measured(editSize, () => git(['push', '-q', 'origin', 'main'], repo));
    res.editPush.push(edit);
    log(`  push after 100-byte edit run ${r + 1}: ${describe(edit)}`);

    // Full clone of that repository (HEAD holds the edited file).
    const cloneDir = path.join(sb.dir, 'remote-clone');
    sb.remove(cloneDir);
    // Timed without memory sampling: the sampler reads /proc for the whole process table
    // every interval, synchronously, in this process, which also runs the counting proxy
    // both tools download through (rclone's runs are not sampled either). The memory figure
    // comes from a second clone of the same repository, sampled.
    const clone = await measured(editSize, () => git(['clone', '-q', url, cloneDir], sb.dir));
    const got = path.join(cloneDir, FILE);
    if (!fs.existsSync(got) || fs.statSync(got).size !== editSize) throw new Error(`clone: ${FILE} is not the full file`);
    if (r === 0 && !(await sameBytes(sb, got, corpus.editA))) throw new Error('clone: the cloned file differs from what was pushed');
    const st = (await git(['status', '--porcelain'], cloneDir)).stdout.trim();
    if (st) throw new Error(`clone: git status not clean:\n${st}`);
    sb.remove(cloneDir);
    const sampled = await measured(editSize, () => git(['clone', '-q', url, cloneDir], sb.dir, true));
    if (sampled.memory) clone.memory = sampled.memory;
    res.clone.push(clone);
    log(`  full clone run ${r + 1}: ${describe(clone)} (memory from a second, sampled clone: ${sampled.seconds.toFixed(2)} s)`);
    sb.remove(cloneDir);

    // Lazy clone of a branch with lazyPaths paths pointing at the video.
    const blob = (await git(['rev-parse', `HEAD~1:${FILE}`], repo)).stdout.trim();
    await git(['checkout', '-q', '-b', 'lazy'], repo);
    const lines = Array.from({ length: opts.lazyPaths }, (_, i) => `100644 ${blob}\tmedia/clip-${String(i).padStart(3, '0')}.mp4`).join('\n') + '\n';
    await sb.run('git', ['update-index', '--index-info'], repo, { env: awsEnv, input: lines });
    await git(['commit', '-q', '-m', 'many paths'], repo);
    await git(['push', '-q', 'origin', 'lazy'], repo);
    const lazyDir = path.join(sb.dir, 'remote-lazy');
    sb.remove(lazyDir);
    const lazy = await measured(size * opts.lazyPaths, () => git(['clone', '-q', '-c', 'dits.fetchMode=lazy', '--branch', 'lazy', url, lazyDir], sb.dir, true));
    res.lazyClone.push(lazy);
    log(`  lazy clone (${opts.lazyPaths} paths) run ${r + 1}: ${describe(lazy)}`);
    const sample = path.join(lazyDir, 'media', 'clip-000.mp4');
    if (!fs.existsSync(sample)) throw new Error('lazy clone: the working tree lacks the tracked paths');
    sb.remove(lazyDir);
    sb.remove(repo);
  }
  return res;
}
