/**
 * Issue 15's figures for many and smaller files, where fixed costs (process start, one
 * filter request per file, one hook per checkout) weigh more than throughput:
 *
 * - sets: 1,000 files x 256 KiB and 200 files x 4 MiB (image sequences, stems, stills),
 *   `git add` of the folder and `git checkout -- folder` after deleting it, Dits against
 *   git-lfs, a fresh repository per add run;
 * - one small file: `git add` of one 1 MiB file into a repository that already has a commit;
 * - status: `git status` and `git dits status` with 10,000 tracked files, all present.
 *
 * Every file is pseudo-random (incompressible, no two alike), generated once and cached.
 * Returns every run's raw numbers; printing and verdicts are the caller's (many-report.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { createCipheriv, createHash } from 'node:crypto';
import { run as runProcess } from './exec.js';
import { warmTree } from './corpus.js';
import { megabytesPerSecond } from './units.js';
import type { Sandbox } from './sandbox.js';
import type { TimedRun } from './core.js';

export interface FileSet {
  /** Label, e.g. "1000 x 256 KiB". */
  name: string;
  count: number;
  fileBytes: number;
}

export const FILE_SETS: readonly FileSet[] = [
  { name: '1000 x 256 KiB', count: 1000, fileBytes: 256 << 10 },
  { name: '200 x 4 MiB', count: 200, fileBytes: 4 << 20 },
];

export type ManyTool = 'dits' | 'git-lfs';

export interface SetResults {
  set: FileSet;
  add: Partial<Record<ManyTool, TimedRun[]>>;
  checkout: Partial<Record<ManyTool, TimedRun[]>>;
}

export interface ManyResults {
  sets: SetResults[];
  /** Seconds of `git add` of one 1 MiB file. */
  smallAdd: Partial<Record<ManyTool, number[]>>;
  /** Seconds of `git --version` and `git dits --version` (the floor of any call). */
  startup: { git: number[]; dits: number[] };
  status: { trackedFiles: number; git: number[]; dits: number[]; lfsGit: number[] };
  skipped: string[];
}

export interface ManyOptions {
  runs: number;
  /** Tracked files in the status repository (10,000 in the issue). */
  statusFiles: number;
}

export interface ManyDeps {
  sandbox: Sandbox;
  log: (line: string) => void;
  corpusDir: string;
}

/**
 * Deterministic incompressible bytes for file `i` of a set: AES-128-CTR keystream keyed by
 * the set's label and the index (GB/s, so a set is made in seconds, then cached on disk).
 */
function fileBytes(label: string, i: number, size: number): Buffer {
  const key = createHash('sha256').update(`${label}/${i}`).digest();
  const cipher = createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32));
  return cipher.update(Buffer.alloc(size));
}

/** The cached folder of a set (made once under a temporary name, then renamed). */
function ensureSet(set: FileSet, corpusDir: string, log: (l: string) => void): string {
  const dir = path.join(corpusDir, `many-${set.count}x${set.fileBytes}`);
  if (fs.existsSync(dir)) return dir;
  const tmp = `${dir}.partial`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  log(`generating ${set.name} in ${dir}`);
  for (let i = 0; i < set.count; i++) fs.writeFileSync(path.join(tmp, `frame_${String(i).padStart(6, '0')}.dpx`), fileBytes(set.name, i, set.fileBytes));
  fs.renameSync(tmp, dir);
  return dir;
}

async function sync(sb: Sandbox): Promise<void> {
  await runProcess('sync', [], { cwd: sb.dir, env: sb.env });
}

async function makeRepo(sb: Sandbox, name: string, tool: ManyTool, pattern: string): Promise<string> {
  const dir = sb.freshDir(name);
  await sb.run('git', ['init', '-q', '.'], dir);
  if (tool === 'dits') {
    await sb.run('git', ['dits', 'init'], dir);
    await sb.run('git', ['dits', 'track', pattern], dir);
  } else {
    await sb.run('git', ['lfs', 'install', '--local'], dir);
    await sb.run('git', ['lfs', 'track', pattern], dir);
  }
  await sb.run('git', ['add', '.gitattributes'], dir);
  await sb.run('git', ['commit', '-q', '-m', 'attributes'], dir);
  return dir;
}

/** Hard links of the set's files into `dst` (every tool here only reads what it adds). */
function linkSet(src: string, dst: string): void {
  fs.mkdirSync(dst, { recursive: true });
  for (const f of fs.readdirSync(src)) fs.linkSync(path.join(src, f), path.join(dst, f));
}

async function checkAllPointers(sb: Sandbox, repo: string, folder: string, count: number, tool: ManyTool): Promise<void> {
  const r = await sb.run('git', ['ls-files', '-s', '--', folder], repo);
  const oids = r.stdout.trim().split('\n').filter(Boolean).map((l) => l.split(/\s+/)[1]!);
  if (oids.length !== count) throw new Error(`${tool}: ${oids.length} files staged under ${folder}, expected ${count}`);
  const sizes = await sb.run('git', ['cat-file', '--batch-check=%(objectsize)'], repo, { input: oids.join('\n') + '\n' });
  const big = sizes.stdout.split('\n').filter((s) => Number(s) > 4096).length;
  if (big) throw new Error(`${tool}: ${big} of ${count} files were staged as content, not pointers (the filter did not run)`);
}

/** Every file of `folder` in `repo` has the bytes of the corpus file of the same name. */
function checkSame(repo: string, folder: string, src: string, tool: ManyTool): void {
  for (const f of fs.readdirSync(src)) {
    const a = fs.readFileSync(path.join(src, f));
    let b: Buffer;
    try {
      b = fs.readFileSync(path.join(repo, folder, f));
    } catch {
      throw new Error(`${tool}: checkout did not write ${folder}/${f}`);
    }
    if (!a.equals(b)) throw new Error(`${tool}: ${folder}/${f} differs from the original after checkout (${b.length} bytes, expected ${a.length})`);
  }
}

export async function runManyBench(opts: ManyOptions, deps: ManyDeps): Promise<ManyResults> {
  const { sandbox: sb, log } = deps;
  const res: ManyResults = { sets: [], smallAdd: {}, startup: { git: [], dits: [] }, status: { trackedFiles: opts.statusFiles, git: [], dits: [], lfsGit: [] }, skipped: [] };
  let lfs = true;
  try {
    await sb.run('git', ['lfs', 'version'], sb.dir);
  } catch {
    lfs = false;
    res.skipped.push('git-lfs not installed: its figures and all ratios are missing');
  }
  const tools: ManyTool[] = lfs ? ['dits', 'git-lfs'] : ['dits'];

  for (let r = 0; r < opts.runs; r++) {
    res.startup.git.push((await sb.run('git', ['--version'], sb.dir)).seconds);
    res.startup.dits.push((await sb.run('git', ['dits', '--version'], sb.dir)).seconds);
  }

  // ---- sets of many files: add into a fresh repository, then checkout of the folder.
  for (const set of FILE_SETS) {
    const total = set.count * set.fileBytes;
    const src = ensureSet(set, deps.corpusDir, log);
    const out: SetResults = { set, add: {}, checkout: {} };
    for (let r = 0; r < opts.runs; r++) {
      for (const tool of tools) {
        const repo = await makeRepo(sb, `many-${tool}`, tool, '*.dpx');
        linkSet(src, path.join(repo, 'seq'));
        await sync(sb);
        warmTree(src);
        const add = await sb.run('git', ['add', 'seq'], repo);
        (out.add[tool] ??= []).push({ bytes: total, seconds: add.seconds, mbps: megabytesPerSecond(total, add.seconds) });
        await checkAllPointers(sb, repo, 'seq', set.count, tool);
        await sb.run('git', ['commit', '-q', '-m', 'sequence'], repo);
        fs.rmSync(path.join(repo, 'seq'), { recursive: true, force: true });
        await sync(sb);
        warmTree(path.join(repo, '.git', tool === 'dits' ? 'dits' : 'lfs'));
        const co = await sb.run('git', ['checkout', '--', 'seq'], repo);
        (out.checkout[tool] ??= []).push({ bytes: total, seconds: co.seconds, mbps: megabytesPerSecond(total, co.seconds) });
        if (r === 0) checkSame(repo, 'seq', src, tool);
        const status = (await sb.run('git', ['status', '--porcelain'], repo)).stdout.trim();
        if (status) throw new Error(`${tool}: git status not clean after checkout of ${set.name}:\n${status.slice(0, 2000)}`);
        log(`  ${set.name} ${tool} run ${r + 1}/${opts.runs}: add ${add.seconds.toFixed(2)} s, checkout ${co.seconds.toFixed(2)} s`);
        sb.remove(repo);
      }
    }
    res.sets.push(out);
  }

  // ---- one 1 MiB file added to a repository with history (the everyday small add).
  const one = fileBytes('one 1 MiB', 0, 1 << 20);
  for (const tool of tools) {
    const repo = await makeRepo(sb, `small-${tool}`, tool, '*.wav');
    for (let r = 0; r < opts.runs; r++) {
      const name = `stem_${r}.wav`;
      fs.writeFileSync(path.join(repo, name), Buffer.concat([Buffer.from(String(r)), one]));
      await sync(sb);
      const add = await sb.run('git', ['add', name], repo);
      (res.smallAdd[tool] ??= []).push(add.seconds);
      await checkAllPointers(sb, repo, name, 1, tool);
      await sb.run('git', ['commit', '-q', '-m', name], repo);
      log(`  one 1 MiB file, ${tool} run ${r + 1}/${opts.runs}: git add ${(add.seconds * 1000).toFixed(0)} ms`);
    }
    sb.remove(repo);
  }

  // ---- status with many tracked files, all present and unchanged.
  for (const tool of tools) {
    const repo = await makeRepo(sb, `status-${tool}`, tool, '*.exr');
    const dir = path.join(repo, 'plates');
    fs.mkdirSync(dir);
    for (let i = 0; i < opts.statusFiles; i++) fs.writeFileSync(path.join(dir, `plate_${String(i).padStart(6, '0')}.exr`), fileBytes('status', i, 1024));
    log(`  status: adding ${opts.statusFiles} files with ${tool}`);
    if (tool === 'dits') await sb.run('git', ['dits', 'add', 'plates'], repo);
    else await sb.run('git', ['add', 'plates'], repo);
    await checkAllPointers(sb, repo, 'plates', opts.statusFiles, tool);
    await sb.run('git', ['commit', '-q', '-m', 'plates'], repo);
    await sb.run('git', ['status', '--porcelain'], repo); // index stat info refreshed once, as any user's first status
    for (let r = 0; r < opts.runs; r++) {
      const st = await sb.run('git', ['status', '--porcelain'], repo);
      if (st.stdout.trim()) throw new Error(`${tool}: git status not clean with ${opts.statusFiles} files:\n${st.stdout.slice(0, 2000)}`);
      if (tool === 'dits') {
        res.status.git.push(st.seconds);
        const ds = await sb.run('git', ['dits', 'status', '--json'], repo);
        res.status.dits.push(ds.seconds);
        log(`  status, ${opts.statusFiles} files, run ${r + 1}/${opts.runs}: git status ${st.seconds.toFixed(2)} s, git dits status ${ds.seconds.toFixed(2)} s`);
      } else {
        res.status.lfsGit.push(st.seconds);
        log(`  status, ${opts.statusFiles} files, git-lfs run ${r + 1}/${opts.runs}: git status ${st.seconds.toFixed(2)} s`);
      }
    }
    sb.remove(repo);
  }
  return res;
}
