/**
 * Issue 19's snapshot figures: `git dits snapshot` of an unchanged working tree, and after
 * a 100-byte edit to one big file against `restic backup` of the same tree.
 *
 * The tree: `files` .mov files of `fileBytes` random bytes each (10 x 1 GiB in a full run),
 * committed, plus 200 small text files. To keep the disk footprint at two files' worth,
 * clip0.mov (the one edited) is a copy of the random file and clip1.mov another, which
 * clip2..N are hard links to: every path is a regular file of full size that git, Dits and
 * restic stat and would read as such; the store and restic's repository hold the content
 * once, as they would for ten distinct files whose content they had already stored.
 *
 * New bytes: growth of `.git` (Dits: objects, refs, the store) or of the restic repository
 * (its cache, under the sandbox's HOME, not counted), summed apparent file sizes.
 * Timings: wall and user + sys (/usr/bin/time); before each timed command `sync`, and the
 * edited file is read once so it sits in the page cache for either tool.
 */
import fs from 'node:fs';
import path from 'node:path';
import { run as runProcess } from './exec.js';
import { seededBytes, treeBytes, warmFile } from './corpus.js';
import { timed } from './proxy.js';
import type { Sandbox } from './sandbox.js';

export interface SnapshotRun {
  seconds: number;
  cpuSeconds: number;
  newBytes: number;
}

export interface SnapshotResults {
  files: number;
  fileBytes: number;
  unchanged: SnapshotRun[];
  editDits: SnapshotRun[];
  editRestic: SnapshotRun[];
  resticVersion: string | null;
  skipped: string[];
}

export interface SnapshotOptions {
  runs: number;
  files: number;
}

/** Where run `r`'s 100-byte edit lands in a file of `size` bytes (apart from the other runs', inside the file). */
export function editOffset(r: number, size: number): number {
  return ((r + 1) * 7_654_321) % Math.max(1, size - 100);
}

export async function runSnapshotBench(randomFile: string, opts: SnapshotOptions, deps: { sandbox: Sandbox; log: (l: string) => void }): Promise<SnapshotResults> {
  const { sandbox: sb, log } = deps;
  const fileBytes = fs.statSync(randomFile).size;
  const res: SnapshotResults = { files: opts.files, fileBytes, unchanged: [], editDits: [], editRestic: [], resticVersion: null, skipped: [] };
  const tree = sb.freshDir('snapshot-tree');
  const resticRepo = path.join(sb.dir, 'snapshot-restic');
  sb.remove(resticRepo);
  const resticEnv = { RESTIC_PASSWORD: 'bench', RESTIC_REPOSITORY: resticRepo };
  res.resticVersion = await sb.run('restic', ['version'], sb.dir).then((r) => r.stdout.trim().split('\n')[0]!, () => null);
  if (!res.resticVersion) res.skipped.push('restic not installed: no peer for the 100-byte edit');

  const names = Array.from({ length: opts.files }, (_, i) => `clip${i}.mov`);
  fs.copyFileSync(randomFile, path.join(tree, names[0]!));
  if (names.length > 1) fs.copyFileSync(randomFile, path.join(tree, names[1]!));
  for (const n of names.slice(2)) fs.linkSync(path.join(tree, names[1]!), path.join(tree, n));
  fs.mkdirSync(path.join(tree, 'docs'));
  for (let i = 1; i <= 200; i++) fs.writeFileSync(path.join(tree, 'docs', `n${i}.txt`), `note ${i}\n`);
  const git = (args: string[]) => sb.run('git', args, tree);
  await git(['init', '-q', '.']);
  await git(['dits', 'init']);
  await git(['dits', 'track', '*.mov']);
  await git(['dits', 'add', ...names]);
  await git(['add', '-A']);
  await git(['commit', '-q', '-m', 'footage']);
  if (res.resticVersion) {
    await sb.run('restic', ['init', '-q'], sb.dir, { env: resticEnv });
    await sb.run('restic', ['backup', '-q', '--exclude', '.git', '.'], tree, { env: resticEnv });
  }
  log(`  tree: ${opts.files} x ${fileBytes} bytes and 200 small files, committed${res.resticVersion ? ', backed up once by restic' : ''}`);
  const gitDir = path.join(tree, '.git');
  const sync = () => runProcess('sync', [], { cwd: sb.dir, env: sb.env });
  const measure = async (dir: string, cmd: string, args: string[], env?: NodeJS.ProcessEnv): Promise<SnapshotRun> => {
    await sync();
    const before = treeBytes(dir);
    const t = await timed(sb, cmd, args, tree, env);
    return { seconds: t.seconds, cpuSeconds: t.cpuSeconds, newBytes: treeBytes(dir) - before };
  };
  const describe = (t: SnapshotRun) => `${t.seconds.toFixed(2)} s (CPU ${t.cpuSeconds.toFixed(2)} s), ${t.newBytes} new bytes`;

  for (let r = 0; r < opts.runs; r++) {
    const t = await measure(gitDir, 'git', ['dits', 'snapshot']);
    res.unchanged.push(t);
    log(`  git dits snapshot, unchanged tree, run ${r + 1}: ${describe(t)}`);
  }
  const edited = path.join(tree, names[0]!);
  for (let r = 0; r < opts.runs; r++) {
    const fd = fs.openSync(edited, 'r+');
    try {
      fs.writeSync(fd, seededBytes(100, 0x5a0 + r), 0, 100, editOffset(r, fileBytes));
    } finally {
      fs.closeSync(fd);
    }
    await sync();
    warmFile(edited);
    const dits = async () => {
      const t = await measure(gitDir, 'git', ['dits', 'snapshot']);
      res.editDits.push(t);
      log(`  git dits snapshot after a 100-byte edit, run ${r + 1}: ${describe(t)}`);
    };
    const restic = async () => {
      if (!res.resticVersion) return;
      const t = await measure(resticRepo, 'restic', ['backup', '-q', '--exclude', '.git', '.'], resticEnv);
      res.editRestic.push(t);
      log(`  restic backup after a 100-byte edit, run ${r + 1}: ${describe(t)}`);
    };
    if (r % 2 === 0) {
      await dits();
      await restic();
    } else {
      await restic();
      await dits();
    }
  }
  sb.remove(tree);
  sb.remove(resticRepo);
  return res;
}
