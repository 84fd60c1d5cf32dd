/**
 * Every Dits pointer that anything in the repository can still reach: all refs (branches,
 * tags, remote-tracking refs, refs/stash), every reflog entry (so every stash entry, not
 * just the newest), HEAD and the index of each worktree. What gc must keep and what du
 * counts. gc adds the working-tree files that are pointers (listWorktreePointers).
 *
 * Git failing to list any of it (a ref to a missing object, a corrupt index) is an error:
 * a partial answer would let gc delete what the unlisted part needs.
 */
import fs from 'node:fs';
import path from 'node:path';
import { runGit } from './exec.js';
import { resolvePointers, type IndexPointer } from './pointers.js';
import { MAX_POINTER_SIZE, parsePointer } from '../manifest/pointer.js';
import { DitsUserError, errnoCode } from '../errors.js';
import { pendingFile } from '../worktree/pending.js';

function cannotList(what: string, detail: string): DitsUserError {
  return new DitsUserError('reachability-unreadable', `git cannot list ${what}: ${detail.trim() || 'no details'}`, {
    hint: 'run `git fsck` to find the broken ref, object or index and repair it (or remove a ref that points at nothing), then run the command again',
  });
}

async function listPointerBlobs(workTree: string, revs: string[], what: string): Promise<{ oid: string; path: string; mode: string }[]> {
  const r = await runGit(['rev-list', '--objects', ...revs, `--filter=blob:limit=${MAX_POINTER_SIZE + 1}`], { cwd: workTree, allowFail: true });
  if (r.exitCode !== 0) throw cannotList(what, r.stderr);
  const entries: { oid: string; path: string; mode: string }[] = [];
  for (const line of r.stdout.toString('utf8').split('\n')) {
    const sp = line.indexOf(' ');
    if (sp <= 0) continue; // commits have no path
    entries.push({ oid: line.slice(0, sp), path: line.slice(sp + 1), mode: '100644' });
  }
  return entries;
}

export async function listReachablePointers(workTree: string): Promise<IndexPointer[]> {
  // before the refs: a snapshot moves its ref before it removes its index, so one of the two is seen
  const building = await listSnapshotIndexBlobs(workTree);
  const entries = await listPointerBlobs(workTree, ['--all', '--reflog', '--indexed-objects'], 'what the refs, reflogs and indexes reach');
  return resolvePointers(workTree, [...building, ...entries]);
}

/**
 * The blobs of the temporary indexes `git dits snapshot` builds its tree in
 * (`<git dir>/dits-snapshot-index.*`, src/lifecycle/snapshot.ts): content a running snapshot
 * has added that no ref names yet. One left by a killed snapshot counts until the next
 * snapshot removes it.
 */
async function listSnapshotIndexBlobs(workTree: string): Promise<{ oid: string; path: string; mode: string }[]> {
  const common = (await runGit(['rev-parse', '--path-format=absolute', '--git-common-dir'], { cwd: workTree })).stdout.toString('utf8').trim();
  const dirs = [common];
  try {
    for (const name of fs.readdirSync(path.join(common, 'worktrees'))) dirs.push(path.join(common, 'worktrees', name));
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
  const out: { oid: string; path: string; mode: string }[] = [];
  for (const dir of dirs) {
    for (const name of fs.readdirSync(dir)) {
      if (!name.startsWith('dits-snapshot-index.') || name.endsWith('.lock')) continue;
      const r = await runGit(['ls-files', '-s', '-z'], { cwd: workTree, env: { ...process.env, GIT_INDEX_FILE: path.join(dir, name) }, allowFail: true });
      if (r.exitCode !== 0) {
        if (!fs.existsSync(path.join(dir, name))) continue; // the snapshot finished: its ref is listed after this
        throw cannotList(`the index of a running snapshot (${path.join(dir, name)})`, r.stderr);
      }
      for (const rec of r.stdout.toString('utf8').split('\0')) {
        const m = /^(\d+) ([0-9a-f]+) \d\t(.*)$/s.exec(rec);
        if (m && m[1] !== '160000' && m[1] !== '120000') out.push({ oid: m[2]!, path: m[3]!, mode: m[1]! });
      }
    }
  }
  return out;
}

/** Blob ids of the pointers the remote-tracking refs reach: content a remote holds (what a push stored there first). */
export async function listRemoteTrackedPointerBlobs(workTree: string): Promise<Set<string>> {
  const entries = await listPointerBlobs(workTree, ['--remotes'], 'what the remote-tracking refs reach');
  return new Set(entries.map((e) => e.oid));
}

/**
 * Pointer files in the working trees of every worktree (tracked, untracked but not
 * ignored, and whatever the pending list names), whether or not any commit or index
 * holds them: a `git stash apply` that left pointers, a pointer copied by hand.
 */
export async function listWorktreePointers(workTree: string): Promise<{ path: string; worktree: string; pointer: IndexPointer['pointer'] }[]> {
  const list = await runGit(['worktree', 'list', '--porcelain', '-z'], { cwd: workTree, allowFail: true });
  if (list.exitCode !== 0) throw cannotList('the worktrees', list.stderr);
  // records of NUL-terminated lines, each starting with "worktree <path>"; a bare one has no files
  const trees: string[] = [];
  let bare = false;
  for (const line of [...list.stdout.toString('utf8').split('\0'), 'worktree ']) {
    if (line.startsWith('worktree ')) {
      if (trees.length && bare) trees.pop();
      bare = false;
      if (line.length > 'worktree '.length) trees.push(line.slice('worktree '.length));
    } else if (line === 'bare') bare = true;
  }
  const out: { path: string; worktree: string; pointer: IndexPointer['pointer'] }[] = [];
  for (const tree of trees) {
    if (!fs.existsSync(tree)) continue; // a removed worktree: its index is still listed by rev-list
    const files = await runGit(['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: tree, allowFail: true });
    if (files.exitCode !== 0) throw cannotList(`the files of the worktree ${tree}`, files.stderr);
    const gitDir = (await runGit(['rev-parse', '--absolute-git-dir'], { cwd: tree })).stdout.toString('utf8').trim();
    const names = new Set(files.stdout.toString('utf8').split('\0').filter(Boolean));
    for (const p of readPending(gitDir)) names.add(p);
    for (const rel of names) {
      const pointer = readPointerFile(path.join(tree, rel));
      if (pointer) out.push({ path: rel, worktree: tree, pointer });
    }
  }
  return out;
}

/** Paths in a worktree's pending list, including a list a hook has taken and not finished. */
function readPending(gitDir: string): string[] {
  const file = pendingFile(gitDir);
  const dir = path.dirname(file);
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => n === 'pending' || n.startsWith('pending.'));
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const n of names) {
    try {
      out.push(...fs.readFileSync(path.join(dir, n), 'utf8').split('\0').filter(Boolean));
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
    }
  }
  return out;
}

function readPointerFile(file: string): IndexPointer['pointer'] | null {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(file);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return null;
    throw new DitsUserError('worktree-file-unreadable', `cannot read ${file} (${errnoCode(err) ?? (err as Error).message})`, {
      hint: 'make it readable (or move it out of the working tree), then run the command again',
    });
  }
  if (!st.isFile() || st.size > MAX_POINTER_SIZE || st.size < 20) return null;
  try {
    return parsePointer(fs.readFileSync(file));
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return null;
    // it may be a pointer: what it refers to cannot be told
    throw new DitsUserError('worktree-file-unreadable', `cannot read ${file} (${errnoCode(err) ?? (err as Error).message}): it may be a Dits pointer`, {
      hint: 'make it readable (or move it out of the working tree), then run the command again',
    });
  }
}
