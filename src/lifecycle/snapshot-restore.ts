/**
 * Writing files from a snapshot back into the working tree: plan (pure reading), then apply.
 *
 * A file is overwritten only when nothing would be lost: it is missing, or it is tracked
 * and the same as in HEAD and the index (committed). A file with uncommitted changes, an
 * untracked or ignored file in the way, is skipped and listed, unless `force`; one that
 * already holds the snapshot's version is left as it is. Files the snapshot lacks are
 * never deleted. Big files are written as their pointer here, and the caller writes their
 * content through the store as a checkout does (fetching it from a remote if needed).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { DitsUserError, errnoCode } from '../errors.js';
import { batchCheck, batchRead } from '../git/cat-file.js';
import { runGit } from '../git/exec.js';
import type { RepoPaths } from '../git/repo.js';
import { MAX_POINTER_SIZE, parsePointer } from '../manifest/pointer.js';

export interface RestoreItem {
  path: string;
  mode: string;
  oid: string;
  /** Set for big files: what the working tree gets before the store writes the content. */
  pointer?: Buffer;
  /** The file's size in the snapshot (the pointer's size field for big files). */
  size: number;
}

export interface RestorePlan {
  write: RestoreItem[];
  /** Already the snapshot's version. */
  same: string[];
  skipped: { path: string; reason: string }[];
}

interface TreeEntry {
  mode: string;
  oid: string;
  path: string;
}

async function listTree(repo: RepoPaths, cwd: string, commit: string, paths: string[]): Promise<TreeEntry[]> {
  const args = paths.length ? ['ls-tree', '-r', '-z', '--full-name', commit, '--', ...paths] : ['ls-tree', '-r', '-z', '--full-tree', commit];
  const r = await runGit(['--literal-pathspecs', ...args], { cwd: paths.length ? cwd : repo.workTree });
  const out: TreeEntry[] = [];
  for (const rec of r.stdout.toString('utf8').split('\0')) {
    if (!rec) continue;
    const tab = rec.indexOf('\t');
    const [mode, , oid] = rec.slice(0, tab).split(' ');
    out.push({ mode: mode!, oid: oid!, path: rec.slice(tab + 1) });
  }
  return out;
}

/** Paths that differ from HEAD in the index or the working tree, and untracked or ignored files (git status). */
async function changedPaths(cwd: string, paths: string[]): Promise<Set<string>> {
  // porcelain paths are relative to the top, whatever the cwd
  const r = await runGit(['--literal-pathspecs', 'status', '--porcelain=v1', '-z', '--no-renames', '--untracked-files=all', '--ignored=matching', '--', ...paths], {
    cwd,
    env: { ...process.env, GIT_OPTIONAL_LOCKS: '0' },
  });
  const out = new Set<string>();
  for (const rec of r.stdout.toString('utf8').split('\0')) if (rec.length > 3) out.add(rec.slice(3));
  return out;
}

/** Blob ids of the index's stage-0 entries at `paths`, and the paths a sparse checkout keeps out of the working tree. */
async function indexOids(cwd: string, paths: string[]): Promise<{ oids: Map<string, string>; sparse: Set<string> }> {
  const r = await runGit(['--literal-pathspecs', 'ls-files', '-s', '-t', '-z', '--full-name', '--', ...paths], { cwd });
  const oids = new Map<string, string>();
  const sparse = new Set<string>();
  for (const rec of r.stdout.toString('utf8').split('\0')) {
    const m = /^(\S) \d+ ([0-9a-f]+) 0\t(.*)$/s.exec(rec);
    if (!m) continue;
    oids.set(m[3]!, m[2]!);
    if (m[1] === 'S') sparse.add(m[3]!);
  }
  return { oids, sparse };
}

/** The blob id git would give the working-tree file (through the clean filter, as `git add` would). */
async function worktreeOid(repo: RepoPaths, rel: string): Promise<string> {
  const r = await runGit(['hash-object', `--path=${rel}`, '--', rel], { cwd: repo.workTree, allowFail: true });
  return r.exitCode === 0 ? r.stdout.toString('utf8').trim() : '';
}

export async function planRestore(repo: RepoPaths, cwd: string, commit: string, paths: string[], opts: { force: boolean }): Promise<RestorePlan> {
  const entries = await listTree(repo, cwd, commit, paths);
  if (entries.length === 0 && paths.length) {
    throw new DitsUserError('snapshot-path-missing', `the snapshot has no file at ${paths.join(', ')}`, { hint: '`git ls-tree -r --name-only <snapshot commit>` lists its files (paths are relative to the current folder)', exitCode: 2 });
  }
  const info = await batchCheck(repo.workTree, [...new Set(entries.map((e) => e.oid))]);
  const small = [...info.values()].filter((i) => i.type === 'blob' && i.size <= MAX_POINTER_SIZE).map((i) => i.oid);
  const bodies = await batchRead(repo.workTree, small);
  // the user's paths, not every file's: a whole tree's list would not fit on a command line
  const where = paths.length ? cwd : repo.workTree;
  const changed = await changedPaths(where, paths);
  const { oids: indexed, sparse } = await indexOids(where, paths);
  const plan: RestorePlan = { write: [], same: [], skipped: [] };
  for (const e of entries) {
    if (e.mode === '160000') {
      plan.skipped.push({ path: e.path, reason: 'a submodule: restore it inside the submodule' });
      continue;
    }
    const body = bodies.get(e.oid);
    const pointer = body ? parsePointer(body) : null;
    const item: RestoreItem = { path: e.path, mode: e.mode, oid: e.oid, size: pointer ? pointer.size : (info.get(e.oid)?.size ?? 0), ...(pointer ? { pointer: body } : {}) };
    if (sparse.has(e.path)) {
      plan.skipped.push({ path: e.path, reason: 'outside the sparse checkout (`git sparse-checkout add` its folder first)' });
      continue;
    }
    const file = path.join(repo.workTree, e.path);
    let st: fs.Stats | null = null;
    try {
      st = fs.lstatSync(file);
    } catch (err) {
      if (errnoCode(err) === 'ENOTDIR') {
        plan.skipped.push({ path: e.path, reason: 'a file is in the place of its folder' });
        continue;
      }
      if (errnoCode(err) !== 'ENOENT') throw err;
    }
    if (st === null) {
      plan.write.push(item);
      continue;
    }
    if (st.isDirectory()) {
      plan.skipped.push({ path: e.path, reason: 'a folder is in its place' });
      continue;
    }
    if (!changed.has(e.path)) {
      // committed and unchanged: nothing is lost by writing over it (unless it already is the snapshot's)
      if (indexed.get(e.path) === e.oid) plan.same.push(e.path);
      else plan.write.push(item);
      continue;
    }
    // uncommitted changes, or untracked/ignored: the same content is fine, anything else only with force
    const sameSize = e.mode === '120000' ? st.isSymbolicLink() : st.isFile() && st.size === item.size;
    if (sameSize && (await worktreeOid(repo, e.path)) === e.oid) plan.same.push(e.path);
    else if (opts.force) plan.write.push(item);
    else plan.skipped.push({ path: e.path, reason: 'it has uncommitted changes (use --force to overwrite it)' });
  }
  return plan;
}

function catBlobTo(cwd: string, oid: string, dest: string, mode: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const out = fs.createWriteStream(dest, { mode });
    const child = spawn('git', ['cat-file', 'blob', oid], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
    child.stdout.pipe(out);
    child.on('error', reject);
    out.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`git cat-file blob ${oid} failed: ${stderr.trim()}`));
      else if (out.writableFinished) resolve();
      else out.on('finish', resolve);
    });
  });
}

/**
 * Writes each planned item: small files from git, symlinks, and big files as their pointer
 * (returned: the caller writes their content through the store). Each file is written to a
 * temporary name beside it and renamed over, so a crash never leaves half a file.
 */
export async function applyRestore(repo: RepoPaths, plan: RestorePlan): Promise<{ written: string[]; pointers: string[] }> {
  const written: string[] = [];
  const pointers: string[] = [];
  for (const item of plan.write) {
    const file = path.join(repo.workTree, item.path);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const tmp = `${file}.dits-restore-${process.pid}`;
    try {
      if (item.mode === '120000') {
        const target = (await runGit(['cat-file', 'blob', item.oid], { cwd: repo.workTree })).stdout.toString('utf8');
        fs.symlinkSync(target, tmp);
      } else {
        const mode = item.mode === '100755' ? 0o755 : 0o644;
        if (item.pointer) fs.writeFileSync(tmp, item.pointer, { mode });
        else await catBlobTo(repo.workTree, item.oid, tmp, mode);
        fs.chmodSync(tmp, mode);
      }
      fs.renameSync(tmp, file);
    } catch (err) {
      fs.rmSync(tmp, { force: true });
      throw err;
    }
    (item.pointer ? pointers : written).push(item.path);
  }
  return { written, pointers };
}
