/**
 * Issue 19's mirror figures over two s3rver buckets on loopback (`primary` and `mirror`,
 * one s3rver in its own process, see s3-loopback.ts):
 *
 * - mirror sync: a repository holding the video is pushed to `dits::s3://primary/proj`;
 *   each run adds a mirror at a fresh prefix of the other bucket and times
 *   `git dits mirror sync <name>`, against `rclone copy --disable copy` (every byte through
 *   rclone, as Dits' sync which reads every pack to verify it) and plain `rclone copy`
 *   (which, with both buckets on one endpoint, asks the server to copy: no bytes through
 *   rclone) of the same prefix. Runs alternate which tool goes first.
 * - re-sync with nothing new: `git dits mirror sync` of an up-to-date mirror, through the
 *   counting proxy: its time and the listings it made of each bucket.
 * - push of a clone's content to a second remote: a full clone of the primary, then
 *   `git push <second> main` to a fresh `dits::s3://mirror/...` against `rclone copy` of the
 *   clone's file (the same content bytes) to the same bucket.
 *
 * Timed runs go to s3rver directly (not through the proxy, which runs in this process):
 * s3rver is Node too and shares the machine's cores with the client, so its CPU seconds
 * during each run are recorded beside the client's (user + sys from /usr/bin/time).
 * Each run's copy is deleted from s3rver's directory afterwards (disk).
 */
import fs from 'node:fs';
import path from 'node:path';
import { run as runProcess } from './exec.js';
import { warmFile } from './corpus.js';
import { megabytesPerSecond } from './units.js';
import { timed } from './proxy.js';
import { rcloneEnv } from './remote.js';
import { cpuSeconds } from './mount.js';
import type { Sandbox } from './sandbox.js';
import type { S3Loopback } from './s3-loopback.js';

export interface CopyRun {
  bytes: number;
  seconds: number;
  mbps: number;
  /** user + sys of the client (git and its children, or rclone) */
  cpuSeconds: number;
  /** CPU seconds s3rver spent during the run */
  serverCpuSeconds: number;
}

export interface ResyncRun {
  seconds: number;
  requests: number;
  /** listings made, by `<bucket>/<prefix>` (see s3-loopback.ts) */
  listings: Record<string, number>;
  copiedBytes: number;
  refs: string;
}

export interface MirrorResults {
  /** bytes under the primary's prefix that a sync copies (packs, indexes, manifests, git data) */
  contentBytes: number;
  sync: CopyRun[];
  rcloneStream: CopyRun[];
  rcloneServer: CopyRun[];
  resync: ResyncRun[];
  /** bytes of the clone's content (its working-tree file: what rclone uploads in the push figure) */
  cloneBytes: number;
  clonePush: CopyRun[];
  rclonePush: CopyRun[];
  /** `rclone copy --s3-upload-cutoff 5G`: the file in one streamed PUT (not the verdict's peer: printed beside) */
  rclonePushOnePut: CopyRun[];
  rcloneVersion: string | null;
  skipped: string[];
}

export interface MirrorOptions {
  runs: number;
}

export const MIRROR_BUCKETS = { primary: 'primary', mirror: 'mirror' } as const;
const FILE = 'clip.mp4';

/** `[{ mirror, copied: { bytes }, refs, notCopied }]` of `git dits mirror sync --json`: the one result, checked complete. */
export function parseSyncJson(stdout: string): { copiedBytes: number; refs: string } {
  const doc = JSON.parse(stdout) as { copied?: { bytes: number }; refs?: string; notCopied?: unknown[]; error?: { message: string } }[];
  const r = doc[0];
  if (!r || r.error || !r.copied || !r.refs) throw new Error(`mirror sync did not complete: ${stdout.slice(0, 2000)}`);
  if (r.notCopied?.length || r.refs === 'held-back' || r.refs === 'mirror-ahead') throw new Error(`mirror sync left things out: ${stdout.slice(0, 2000)}`);
  return { copiedBytes: r.copied.bytes, refs: r.refs };
}

export async function runMirrorBench(video: string, s3: S3Loopback, opts: MirrorOptions, deps: { sandbox: Sandbox; log: (l: string) => void; s3Dir: string }): Promise<MirrorResults> {
  const { sandbox: sb, log } = deps;
  const { primary: P, mirror: M } = MIRROR_BUCKETS;
  const awsEnv = { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey, AWS_REGION: 'us-east-1' };
  const direct = { ...s3, endpoint: s3.upstreamEndpoint };
  // rclone 1.60 will not start an S3 remote with AWS_CA_BUNDLE set; the sandbox's env has it, so unset it by env -u
  const rEnv = rcloneEnv({}, direct);
  const rclone = (args: string[]) => ['-u', 'AWS_CA_BUNDLE', 'rclone', ...args];
  const res: MirrorResults = { contentBytes: 0, sync: [], rcloneStream: [], rcloneServer: [], resync: [], cloneBytes: 0, clonePush: [], rclonePush: [], rclonePushOnePut: [], rcloneVersion: null, skipped: [] };
  res.rcloneVersion = await sb.run('env', rclone(['version']), sb.dir, { env: rEnv }).then((r) => r.stdout.split('\n')[0]!.trim(), () => null);
  if (!res.rcloneVersion) res.skipped.push('rclone not installed: no peer for the mirror and push ratios');
  await sb.run('git', ['config', '--global', 'dits.s3.endpoint', s3.upstreamEndpoint], sb.dir);
  const git = (args: string[], cwd: string) => sb.run('git', args, cwd, { env: awsEnv });
  const dropPrefix = (bucket: string, prefix: string) => sb.remove(path.join(deps.s3Dir, bucket, prefix));
  // s3rver writes every byte to disk: the last run's dirty pages go out before the next one starts
  const settle = async () => {
    await runProcess('sync', [], { cwd: sb.dir, env: sb.env });
    await new Promise((r) => setTimeout(r, 1000));
  };
  const measure = async (bytes: number, fn: () => Promise<{ seconds: number; cpuSeconds: number; stdout: string }>): Promise<CopyRun & { stdout: string }> => {
    await settle();
    const s0 = cpuSeconds(s3.pid);
    const r = await fn();
    return { bytes, seconds: r.seconds, mbps: megabytesPerSecond(bytes, r.seconds), cpuSeconds: r.cpuSeconds, serverCpuSeconds: cpuSeconds(s3.pid) - s0, stdout: r.stdout };
  };
  const describe = (t: CopyRun) => `${t.seconds.toFixed(2)} s, ${t.mbps.toFixed(0)} MB/s, client CPU ${t.cpuSeconds.toFixed(2)} s, s3rver CPU ${t.serverCpuSeconds.toFixed(2)} s`;
  const strip = ({ stdout: _s, ...run }: CopyRun & { stdout: string }): CopyRun => run;

  // the primary: a repository holding the video, pushed
  const repo = sb.freshDir('mirror-src');
  await git(['init', '-q', '.'], repo);
  await git(['dits', 'init'], repo);
  await git(['dits', 'track', '*.mp4'], repo);
  fs.linkSync(video, path.join(repo, FILE));
  await git(['add', '.gitattributes'], repo);
  await git(['dits', 'add', FILE], repo);
  await git(['commit', '-q', '-m', 'video'], repo);
  await git(['remote', 'add', 'origin', `dits::s3://${P}/proj`], repo);
  await git(['push', '-q', 'origin', 'main'], repo);
  log(`  primary: pushed ${FILE} (${fs.statSync(video).size} bytes) to dits::s3://${P}/proj`);

  // mirror sync against rclone, alternating
  const syncDits = async (r: number) => {
    await git(['dits', 'mirror', 'add', `m${r}`, `dits::s3://${M}/dits-${r}/proj`], repo);
    const t = await measure(res.contentBytes, () => timed(sb, 'git', ['dits', 'mirror', 'sync', `m${r}`, '--json'], repo, awsEnv));
    const out = parseSyncJson(t.stdout);
    if (out.refs !== 'updated') throw new Error(`mirror sync run ${r + 1}: refs ${out.refs}, expected updated`);
    if (r === 0) {
      res.contentBytes = out.copiedBytes;
      t.bytes = out.copiedBytes;
      t.mbps = megabytesPerSecond(out.copiedBytes, t.seconds);
    } else if (out.copiedBytes !== res.contentBytes) throw new Error(`mirror sync run ${r + 1} copied ${out.copiedBytes} bytes, run 1 ${res.contentBytes}`);
    res.sync.push(strip(t));
    log(`  git dits mirror sync run ${r + 1}: ${out.copiedBytes} bytes, ${describe(t)}`);
    if (r > 0) dropPrefix(M, `dits-${r}`);
  };
  const syncRclone = async (r: number) => {
    if (!res.rcloneVersion) return;
    const s = await measure(res.contentBytes, () => timed(sb, 'env', rclone(['copy', '--disable', 'copy', `s3r:${P}/proj`, `s3r:${M}/rclone-stream-${r}`]), sb.dir, rEnv));
    res.rcloneStream.push(strip(s));
    log(`  rclone copy --disable copy run ${r + 1}: ${describe(s)}`);
    dropPrefix(M, `rclone-stream-${r}`);
    const c = await measure(res.contentBytes, () => timed(sb, 'env', rclone(['copy', `s3r:${P}/proj`, `s3r:${M}/rclone-${r}`]), sb.dir, rEnv));
    res.rcloneServer.push(strip(c));
    log(`  rclone copy (server-side copy) run ${r + 1}: ${describe(c)}`);
    dropPrefix(M, `rclone-${r}`);
  };
  // run 1 is Dits first (its byte count sizes every figure), then the order alternates
  for (let r = 0; r < opts.runs; r++) {
    if (r % 2 === 0) {
      await syncDits(r);
      await syncRclone(r);
    } else {
      await syncRclone(r);
      await syncDits(r);
    }
  }

  // re-sync with nothing new, through the counting proxy
  for (let r = 0; r < Math.max(3, opts.runs); r++) {
    s3.reset();
    const t = await timed(sb, 'git', ['-c', `dits.s3.endpoint=${s3.endpoint}`, 'dits', 'mirror', 'sync', 'm0', '--json'], repo, awsEnv);
    const c = s3.counts();
    const out = parseSyncJson(t.stdout);
    res.resync.push({ seconds: t.seconds, requests: c.requests, listings: c.listings, copiedBytes: out.copiedBytes, refs: out.refs });
    log(`  re-sync, nothing new, run ${r + 1}: ${t.seconds.toFixed(3)} s, ${c.requests} requests (${JSON.stringify(c.byMethod)}), listings ${JSON.stringify(c.listings)}, copied ${out.copiedBytes} bytes, refs ${out.refs}`);
  }
  dropPrefix(M, 'dits-0');

  // push of a clone's content to a second remote
  const clone = path.join(sb.dir, 'mirror-clone');
  sb.remove(clone);
  await git(['clone', '-q', `dits::s3://${P}/proj`, clone], sb.dir);
  if (fs.statSync(path.join(clone, FILE)).size !== fs.statSync(video).size) throw new Error('clone: the checked-out file has the wrong size (not a full clone?)');
  // A full clone keeps the content as its working-tree file, not as local packs (the store
  // records the origin as holding it): a push to a second remote cuts the chunks from that
  // file again (each hashed to its id) and sends them in packs. The peer uploads that file.
  const cloned = path.join(clone, FILE);
  res.cloneBytes = fs.statSync(cloned).size;
  for (let r = 0; r < opts.runs; r++) {
    const pushDits = async () => {
      await git(['remote', 'add', `second${r}`, `dits::s3://${M}/push-${r}/proj`], clone);
      warmFile(cloned);
      const t = await measure(res.cloneBytes, () => timed(sb, 'git', ['push', '-q', `second${r}`, 'main'], clone, awsEnv));
      res.clonePush.push(strip(t));
      log(`  push of the clone to a second remote run ${r + 1}: ${describe(t)}`);
      dropPrefix(M, `push-${r}`);
    };
    const pushRclone = async () => {
      if (!res.rcloneVersion) return;
      warmFile(cloned);
      const t = await measure(res.cloneBytes, () => timed(sb, 'env', rclone(['copy', cloned, `s3r:${M}/rclone-push-${r}`]), sb.dir, rEnv));
      res.rclonePush.push(strip(t));
      log(`  rclone copy of the clone's file run ${r + 1}: ${describe(t)}`);
      dropPrefix(M, `rclone-push-${r}`);
      warmFile(cloned);
      const one = await measure(res.cloneBytes, () => timed(sb, 'env', rclone(['copy', '--s3-upload-cutoff', '5G', cloned, `s3r:${M}/rclone-put-${r}`]), sb.dir, rEnv));
      res.rclonePushOnePut.push(strip(one));
      log(`  rclone copy --s3-upload-cutoff 5G of the clone's file run ${r + 1}: ${describe(one)}`);
      dropPrefix(M, `rclone-put-${r}`);
    };
    if (r % 2 === 0) {
      await pushDits();
      await pushRclone();
    } else {
      await pushRclone();
      await pushDits();
    }
  }
  sb.remove(clone);
  sb.remove(repo);
  return res;
}
