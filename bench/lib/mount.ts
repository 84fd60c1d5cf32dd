/**
 * Issue 18's figures (`git dits mount`), driven as a user would: `git dits mount <dir>` in
 * its own process (waited for until it says it is mounted), then plain tools reading
 * through the mount, then `git dits umount`. Each run mounts afresh, so nothing comes from
 * the kernel's page cache of an earlier run.
 *
 * 1. local: the video committed with `git dits add` (its packs warmed); first byte = open
 *    and a 4 KiB read at offset 0 (the manifest is loaded on open), sequential = `cat` of the
 *    file through the mount to /dev/null; against `cat` of the file on disk (warmed).
 * 2. remote: the same repository pushed to dits::s3 (s3rver behind the counting proxy), a
 *    lazy clone mounted with its disk cache emptied before each run, so every byte comes
 *    from S3; against `rclone cat` of the video uploaded with rclone.
 * 3. `ls -lR` of a tree of N files (one small blob staged under N paths in 100 folders).
 * 4. memory: the mount process's peak RSS (VmHWM) after each sequential read, against the
 *    RAM budget it was given (`--memory`).
 * 5. with `firstByteBytes` (the issue's 20 GiB): the first byte of a random file that big,
 *    committed with `git dits add` (then its working copy deleted), from the local store
 *    (one untimed mount first, so what a mount touches is in the page cache, as for 1.)
 *    and from a lazy clone of it on S3 (disk cache emptied before each run). Random bytes, not a
 *    repeated block: the remote side's cost may depend on how many packs hold the file.
 * 6. with the same file: the commit of a 100-byte edit from a writable mount. Each run mounts
 *    `--writable`, writes 100 bytes through the mount, and times `git dits commit-mount`
 *    (to a branch of its own, so every run edits the same commit); new = what the
 *    repository keeps grew by meanwhile (repoBytes: .git without the overlay, which the
 *    commit clears, the index as the pages it uses). Against re-adding the file, once: the
 *    working copy edited the same way and `git add` timed. Each edit is at an offset of its
 *    own, so none finds another's chunks stored.
 * Returns every run's raw numbers; verdicts and tables are mount-report.ts's.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { run as runProcess } from './exec.js';
import { warmFile, warmTree } from './corpus.js';
import { megabytesPerSecond } from './units.js';
import { rcloneEnv } from './remote.js';
import { sqliteDriver } from '../../src/store/sqlite-driver.js';
import type { Sandbox } from './sandbox.js';
import type { S3Loopback } from './s3-loopback.js';

export interface MountRun {
  /** open + 4 KiB read at offset 0, ms */
  firstByteMs: number;
  seconds: number;
  mbps: number;
  /** CPU seconds (user + sys) of the mount process during the sequential read */
  mountCpuSeconds: number;
  /** VmHWM of the mount process after the read */
  peakRssBytes: number;
  /** remote reads: CPU seconds of s3rver meanwhile */
  serverCpuSeconds?: number;
}

export interface PlainRun {
  seconds: number;
  mbps: number;
  /** as MountRun's */
  serverCpuSeconds?: number;
}

export interface MountResults {
  fileBytes: number;
  memoryBudgetBytes: number;
  local: MountRun[];
  disk: PlainRun[];
  remote: MountRun[];
  rcloneCat: PlainRun[];
  rcloneVersion: string | null;
  treeFiles: number;
  /** seconds of `ls -lR` through a fresh mount, and of the mount's start (tree listing) */
  ls: { seconds: number; mountSeconds: number }[];
  /** 5.: the first byte of a file of `fileBytes` (random), ms per run */
  bigFirstByte: { fileBytes: number; local: number[]; remote: number[] } | null;
  /** 6.: the commit of a 100-byte edit in that file from a writable mount, and re-adding it */
  editCommit: { fileBytes: number; commits: EditCommitRun[]; readd: EditCommitRun | null } | null;
  skipped: string[];
}

export interface EditCommitRun {
  seconds: number;
  /** what the repository keeps grew by (repoBytes) */
  newBytes: number;
  /** what the command says it stored (commit-mount --json: the file's newBytes) */
  reportedNewBytes?: number;
}

export interface MountOptions {
  runs: number;
  treeFiles: number;
  /** --memory given to the mount */
  memoryBudgetBytes: number;
  /** size of the random file of 5. (0: not measured) */
  firstByteBytes?: number;
}

export interface MountDeps {
  sandbox: Sandbox;
  log: (line: string) => void;
  s3?: S3Loopback;
}

export interface Mounted {
  pid: number;
  seconds: number;
  stop(): Promise<void>;
}

/** `git dits mount <dir>` in the background, resolved once it says it is mounted. */
export async function mountAt(sb: Sandbox, repo: string, dir: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Mounted> {
  fs.mkdirSync(dir, { recursive: true });
  const started = process.hrtime.bigint();
  const child = spawn('git-dits', ['mount', dir, ...args], { cwd: repo, env: { ...sb.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const t = setInterval(() => {
      if (/Mounted /.test(out)) {
        clearInterval(t);
        resolve();
      }
    }, 5);
    void exited.then(() => {
      clearInterval(t);
      reject(new Error(`git dits mount exited before mounting: ${err.slice(-2000)}`));
    });
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return {
    pid: child.pid!,
    seconds,
    async stop() {
      await runProcess('git-dits', ['umount', dir], { cwd: repo, env: sb.env });
      await exited;
    },
  };
}

/** CPU seconds (user + sys) a process has used so far. */
export function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (100 a second here)
}

function peakRss(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/**
 * open + a 4 KiB read at offset 0, ms, timed inside a child process: a read here would
 * block this process, which also runs the counting proxy the mount's S3 requests go through.
 */
async function firstByteMs(sb: Sandbox, file: string): Promise<number> {
  const code = `const fs=require('fs');const b=Buffer.alloc(4096);const t=process.hrtime.bigint();const fd=fs.openSync(process.argv[1],'r');fs.readSync(fd,b,0,4096,0);const ms=Number(process.hrtime.bigint()-t)/1e6;fs.closeSync(fd);process.stdout.write(String(ms));`;
  const r = await runProcess(process.execPath, ['-e', code, file], { cwd: sb.dir, env: sb.env });
  return Number(r.stdout);
}

async function catTimed(sb: Sandbox, file: string, bytes: number, env?: NodeJS.ProcessEnv): Promise<PlainRun> {
  const r = await runProcess('sh', ['-c', `cat '${file}' > /dev/null`], { cwd: sb.dir, env: env ?? sb.env });
  return { seconds: r.seconds, mbps: megabytesPerSecond(bytes, r.seconds) };
}

async function readThrough(sb: Sandbox, m: Mounted, file: string, bytes: number): Promise<MountRun> {
  const fb = await firstByteMs(sb, file);
  const c0 = cpuSeconds(m.pid);
  const r = await catTimed(sb, file, bytes);
  return { firstByteMs: fb, seconds: r.seconds, mbps: r.mbps, mountCpuSeconds: cpuSeconds(m.pid) - c0, peakRssBytes: peakRss(m.pid) };
}

function describe(r: MountRun): string {
  return `first byte ${r.firstByteMs.toFixed(1)} ms, ${r.mbps.toFixed(0)} MB/s (${r.seconds.toFixed(2)} s, mount CPU ${r.mountCpuSeconds.toFixed(2)} s), peak RSS ${(r.peakRssBytes / 2 ** 20).toFixed(0)} MiB`;
}

export async function runMountBench(video: string, opts: MountOptions, deps: MountDeps): Promise<MountResults> {
  const { sandbox: sb, log } = deps;
  const size = fs.statSync(video).size;
  const res: MountResults = { fileBytes: size, memoryBudgetBytes: opts.memoryBudgetBytes, local: [], disk: [], remote: [], rcloneCat: [], rcloneVersion: null, treeFiles: opts.treeFiles, ls: [], bigFirstByte: null, editCommit: null, skipped: [] };
  if (!fs.existsSync('/dev/fuse')) {
    res.skipped.push('/dev/fuse does not exist: no mount figures');
    return res;
  }
  const memArgs = ['--memory', `${Math.round(opts.memoryBudgetBytes / 2 ** 20)}M`];
  const name = path.basename(video);

  // 1. local
  const repo = sb.freshDir('mount-local');
  await sb.run('git', ['init', '-q'], repo);
  await sb.run('git-dits', ['init'], repo);
  await sb.run('git-dits', ['track', '*.mp4'], repo);
  fs.linkSync(video, path.join(repo, name));
  await sb.run('git-dits', ['add', name], repo);
  await sb.run('git', ['commit', '-q', '-m', 'video'], repo);
  const mnt = path.join(sb.dir, 'mnt-local');
  for (let r = 0; r < opts.runs; r++) {
    warmTree(path.join(repo, '.git', 'dits'));
    const m = await mountAt(sb, repo, mnt, memArgs);
    try {
      const run = await readThrough(sb, m, path.join(mnt, name), size);
      res.local.push(run);
      log(`  mount, local store, run ${r + 1}: ${describe(run)}`);
    } finally {
      await m.stop();
    }
    warmFile(video);
    const d = await catTimed(sb, video, size);
    res.disk.push(d);
    log(`  cat of the file on disk, run ${r + 1}: ${d.mbps.toFixed(0)} MB/s`);
  }

  // 2. remote
  if (!deps.s3) res.skipped.push('no S3 server: no remote figures');
  else {
    const s3 = deps.s3;
    const awsEnv = { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey, AWS_REGION: 'us-east-1' };
    // s3rver itself, for the mount and for rclone alike: the counting proxy runs in this
    // process, which has the AWS SDK loaded once the tier section has run (it runs before
    // this one: loadS3Storage), and with it there the proxy spends most of its time in V8's
    // full collections: 2.5-3.3 CPU s to pass 1 GiB, against 0.9-1.4 s in a process without
    // the SDK (src/mount/README.md). Nothing here needs its counts
    await sb.run('git', ['config', '--global', 'dits.s3.endpoint', s3.upstreamEndpoint], sb.dir);
    const url = `dits::s3://${s3.bucket}/mount-${Date.now()}/proj`;
    await sb.run('git', ['remote', 'add', 'origin', url], repo, { env: awsEnv });
    await sb.run('git', ['push', '-q', 'origin', 'HEAD:refs/heads/main'], repo, { env: awsEnv });
    const clone = path.join(sb.dir, 'mount-clone');
    sb.remove(clone);
    await sb.run('git', ['clone', '-q', '-c', 'dits.fetchMode=lazy', url, clone], sb.dir, { env: awsEnv });
    if (fs.statSync(path.join(clone, name)).size >= 1024) throw new Error('the lazy clone fetched the video (expected a pointer)');
    const rEnv = rcloneEnv(sb.env, { ...s3, endpoint: s3.upstreamEndpoint });
    res.rcloneVersion = await runProcess('rclone', ['version'], { cwd: sb.dir, env: rEnv }).then((r) => r.stdout.split('\n')[0]!.trim(), () => null);
    const dest = `s3r:${s3.bucket}/mount-rclone-${Date.now()}/`;
    if (res.rcloneVersion) await runProcess('rclone', ['copy', video, dest], { cwd: sb.dir, env: rEnv });
    else res.skipped.push('rclone not installed: no peer for the remote read');
    const rmnt = path.join(sb.dir, 'mnt-remote');
    // the server shares the machine's cores with the reader: its CPU, for both readers
    // (it spends more a byte on a reader that takes the bytes more slowly)
    const serverCpu = (): number => cpuSeconds(s3.pid);
    for (let r = 0; r < opts.runs; r++) {
      sb.remove(path.join(clone, '.git', 'dits', 'mount-cache')); // every byte from S3
      const m = await mountAt(sb, clone, rmnt, memArgs, awsEnv);
      try {
        const s0 = serverCpu();
        const run = await readThrough(sb, m, path.join(rmnt, name), size);
        run.serverCpuSeconds = serverCpu() - s0;
        res.remote.push(run);
        log(`  mount, lazy clone from S3, run ${r + 1}: ${describe(run)}; s3rver ${run.serverCpuSeconds.toFixed(2)} CPU s`);
      } finally {
        await m.stop();
      }
      if (res.rcloneVersion) {
        const s0 = serverCpu();
        const c = await runProcess('sh', ['-c', `rclone cat '${dest}${name}' > /dev/null`], { cwd: sb.dir, env: rEnv });
        const server = serverCpu() - s0;
        res.rcloneCat.push({ seconds: c.seconds, mbps: megabytesPerSecond(size, c.seconds), serverCpuSeconds: server });
        log(`  rclone cat, run ${r + 1}: ${megabytesPerSecond(size, c.seconds).toFixed(0)} MB/s; s3rver ${server.toFixed(2)} CPU s`);
      }
    }
    sb.remove(clone);
  }
  sb.remove(repo); // room for 5.

  // 3. ls -lR of a tree of N files
  const tree = sb.freshDir('mount-tree');
  await sb.run('git', ['init', '-q'], tree);
  await sb.run('git-dits', ['init'], tree);
  const blob = (await runProcess('git', ['hash-object', '-w', '--stdin'], { cwd: tree, env: sb.env, input: 'a small file\n' })).stdout.trim();
  const lines: string[] = [];
  for (let i = 0; i < opts.treeFiles; i++) lines.push(`100644 ${blob}\tdir${String(i % 100).padStart(3, '0')}/file${i}.txt`);
  await runProcess('git', ['update-index', '--add', '--index-info'], { cwd: tree, env: sb.env, input: lines.join('\n') + '\n' });
  await sb.run('git', ['commit', '-q', '-m', 'tree'], tree);
  const tmnt = path.join(sb.dir, 'mnt-tree');
  for (let r = 0; r < opts.runs; r++) {
    const m = await mountAt(sb, tree, tmnt, []);
    try {
      const ls = await runProcess('sh', ['-c', `ls -lR '${tmnt}' | grep -c 'file.*\\.txt$'`], { cwd: sb.dir, env: sb.env });
      if (Number(ls.stdout.trim()) !== opts.treeFiles) throw new Error(`ls -lR listed ${ls.stdout.trim()} files, not ${opts.treeFiles}`);
      res.ls.push({ seconds: ls.seconds, mountSeconds: m.seconds });
      // each file is a round trip between the kernel and the mount's process: a busy machine shows here first
      log(`  ls -lR of ${opts.treeFiles} files, run ${r + 1}: ${ls.seconds.toFixed(3)} s (mount took ${m.seconds.toFixed(2)} s; load average ${fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0]})`);
    } finally {
      await m.stop();
    }
  }
  sb.remove(tree);

  // 5. and 6.: the first byte of a big file, the commit of an edit in it
  if (opts.firstByteBytes) {
    const big = await bigFile(opts.firstByteBytes, opts.runs, memArgs, deps);
    res.bigFirstByte = big.firstByte;
    res.editCommit = big.editCommit;
  }
  return res;
}

/** Writes `bytes` random bytes to `file` (OpenSSL's generator), 16 MiB at a time. */
function writeRandomFile(file: string, bytes: number): void {
  const fd = fs.openSync(file, 'w');
  try {
    const buf = Buffer.allocUnsafe(16 << 20);
    for (let done = 0; done < bytes; ) {
      const n = Math.min(buf.length, bytes - done);
      randomFillSync(buf, 0, n);
      fs.writeSync(fd, buf, 0, n);
      done += n;
    }
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * What the repository keeps, in bytes: the files under .git without a writable mount's
 * overlay and the mount's disk cache; a SQLite database counted as the pages it uses (its
 * write-ahead log applied, read through a connection of its own), not as its files. The
 * log (`-wal`) is a journal whose pages go back into the database and are written over,
 * and the database file keeps pages freed; `walBytes` says what the logs hold meanwhile.
 */
function repoBytes(repo: string): { bytes: number; walBytes: number } {
  const git = path.join(repo, '.git');
  const skip = ['dits/overlay', 'dits/mount-cache'].map((d) => path.join(git, d));
  let bytes = 0;
  let walBytes = 0;
  const { Database, options } = sqliteDriver();
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        if (!skip.includes(p)) walk(p);
      } else if (!e.isFile() || p.endsWith('.sqlite-shm')) continue;
      else if (p.endsWith('.sqlite-wal')) walBytes += fs.statSync(p).size;
      else if (p.endsWith('.sqlite')) {
        const db = new Database(p, { ...options, readonly: true });
        try {
          const n = (pragma: string): number => db.pragma(pragma, { simple: true }) as number;
          bytes += (n('page_count') - n('freelist_count')) * n('page_size');
        } finally {
          db.close();
        }
      } else bytes += fs.statSync(p).size;
    }
  };
  walk(git);
  return { bytes, walBytes };
}

/** Writes 100 random bytes at `offset` of `file` (in place, in a child process: the file may be on a mount this process must not block). */
async function write100(sb: Sandbox, file: string, offset: number): Promise<void> {
  const code = `const fs=require('fs');const fd=fs.openSync(process.argv[1],'r+');const n=fs.writeSync(fd,require('crypto').randomBytes(100),0,100,Number(process.argv[2]));fs.closeSync(fd);if(n!==100)process.exit(1);`;
  await runProcess(process.execPath, ['-e', code, file, String(offset)], { cwd: sb.dir, env: sb.env });
}

async function bigFile(bytes: number, runs: number, memArgs: string[], deps: MountDeps): Promise<{ firstByte: NonNullable<MountResults['bigFirstByte']>; editCommit: NonNullable<MountResults['editCommit']> }> {
  const { sandbox: sb, log } = deps;
  const out = { fileBytes: bytes, local: [] as number[], remote: [] as number[] };
  const edits = { fileBytes: bytes, commits: [] as EditCommitRun[], readd: null as EditCommitRun | null };
  const repo = sb.freshDir('mount-big');
  const name = 'big.bin';
  await sb.run('git', ['init', '-q'], repo);
  await sb.run('git-dits', ['init'], repo);
  await sb.run('git-dits', ['track', '*.bin'], repo);
  log(`  first byte of a big file: writing ${(bytes / 2 ** 30).toFixed(1)} GiB of random bytes`);
  writeRandomFile(path.join(repo, name), bytes);
  await sb.run('git-dits', ['add', name], repo);
  await sb.run('git', ['commit', '-q', '-m', 'big'], repo);
  // the edits' offsets, one per commit run and the last for re-adding, each in chunks of its own
  const editAt = (k: number): number => Math.floor((bytes * (k + 1)) / (runs + 2));
  {
    // 6., the peer: the working copy edited, then `git add` (the clean filter reads it all)
    await write100(sb, path.join(repo, name), editAt(runs));
    const b0 = repoBytes(repo).bytes;
    const r = await runProcess('git', ['add', name], { cwd: repo, env: sb.env });
    edits.readd = { seconds: r.seconds, newBytes: repoBytes(repo).bytes - b0 };
    log(`  re-adding the big file after a 100-byte edit (git add): ${r.seconds.toFixed(2)} s, ${edits.readd.newBytes} bytes new`);
    await sb.run('git', ['reset', '-q'], repo);
  }
  fs.rmSync(path.join(repo, name)); // the store has it; the mount shows the commit
  const mnt = path.join(sb.dir, 'mnt-big');
  for (let r = 0; r <= runs; r++) {
    const m = await mountAt(sb, repo, mnt, memArgs);
    try {
      const ms = await firstByteMs(sb, path.join(mnt, name));
      if (r === 0) log(`  first byte of the big file, local store, untimed first mount: ${ms.toFixed(1)} ms`);
      else {
        out.local.push(ms);
        log(`  first byte of the big file, local store, run ${r}: ${ms.toFixed(1)} ms`);
      }
    } finally {
      await m.stop();
    }
  }
  // 6.: each run's commit goes to a branch of its own; HEAD stays the file as added (pushed below)
  const wmnt = path.join(sb.dir, 'mnt-big-writable');
  for (let r = 0; r < runs; r++) {
    const m = await mountAt(sb, repo, wmnt, ['--writable', ...memArgs]);
    try {
      await write100(sb, path.join(wmnt, name), editAt(r));
      const b0 = repoBytes(repo);
      const c = await runProcess('git-dits', ['commit-mount', wmnt, '-m', `edit ${r + 1}`, '--branch', `bench-edit-${r + 1}`, '--json'], { cwd: repo, env: sb.env });
      const b1 = repoBytes(repo);
      const newBytes = b1.bytes - b0.bytes;
      const file = (JSON.parse(c.stdout) as { files: { path: string; how: string; newBytes: number }[] }).files.find((f) => f.path === name);
      if (file?.how !== 'partial') throw new Error(`commit-mount did not re-chunk ${name} in part: ${c.stdout.slice(0, 500)}`);
      edits.commits.push({ seconds: c.seconds, newBytes, reportedNewBytes: file.newBytes });
      log(`  commit of a 100-byte edit from a writable mount, run ${r + 1}: ${c.seconds.toFixed(2)} s, ${newBytes} bytes new (${file.newBytes} in new chunks; the index's write-ahead log grew by ${b1.walBytes - b0.walBytes} bytes meanwhile)`);
    } finally {
      await m.stop();
    }
  }
  if (deps.s3) {
    const s3 = deps.s3;
    const awsEnv = { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey, AWS_REGION: 'us-east-1' };
    const url = `dits::s3://${s3.bucket}/mount-big-${Date.now()}/proj`;
    await sb.run('git', ['remote', 'add', 'origin', url], repo, { env: awsEnv });
    await sb.run('git', ['push', '-q', 'origin', 'HEAD:refs/heads/main'], repo, { env: awsEnv });
    const clone = path.join(sb.dir, 'mount-big-clone');
    sb.remove(clone);
    await sb.run('git', ['clone', '-q', '-c', 'dits.fetchMode=lazy', url, clone], sb.dir, { env: awsEnv });
    sb.remove(repo); // the pushed copy is enough now
    for (let r = 0; r < runs; r++) {
      sb.remove(path.join(clone, '.git', 'dits', 'mount-cache')); // every byte from S3
      const m = await mountAt(sb, clone, mnt, memArgs, awsEnv);
      try {
        const ms = await firstByteMs(sb, path.join(mnt, name));
        out.remote.push(ms);
        log(`  first byte of the big file, lazy clone from S3, run ${r + 1}: ${ms.toFixed(1)} ms`);
      } finally {
        await m.stop();
      }
    }
    sb.remove(clone);
  }
  sb.remove(repo);
  return { firstByte: out, editCommit: edits };
}
