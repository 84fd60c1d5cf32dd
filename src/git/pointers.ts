/**
 * Which index entries are Dits pointers. Pointers are small blobs, so only blobs under
 * MAX_POINTER_SIZE are read; everything else is left alone.
 */
import { GitError, runGit } from './exec.js';
import { DitsUserError } from '../errors.js';
import { batchCheck, batchRead } from './cat-file.js';
import { MAX_POINTER_SIZE, parsePointer, type Pointer } from '../manifest/pointer.js';

export interface IndexPointer {
  path: string;
  mode: string;
  blobOid: string;
  stage: number;
  pointer: Pointer;
}

export async function listIndexPointers(workTree: string, pathspecs: string[] = []): Promise<IndexPointer[]> {
  const r = await runGit(['ls-files', '-s', '-z', '--', ...pathspecs], { cwd: workTree });
  const entries: { path: string; mode: string; oid: string; stage: number }[] = [];
  for (const rec of r.stdout.toString('utf8').split('\0')) {
    if (!rec) continue;
    const tab = rec.indexOf('\t');
    const [mode, oid, stage] = rec.slice(0, tab).split(' ');
    if (mode === '160000' || mode === '120000') continue; // submodules, symlinks
    entries.push({ path: rec.slice(tab + 1), mode: mode!, oid: oid!, stage: Number(stage) });
  }
  return resolvePointers(workTree, entries);
}

/** Pointers among (path, oid) pairs of any tree listing. */
export async function resolvePointers<T extends { oid: string; path: string; mode: string; stage?: number }>(cwd: string, entries: T[]): Promise<IndexPointer[]> {
  const oids = [...new Set(entries.map((e) => e.oid))];
  const info = await batchCheck(cwd, oids);
  const small = oids.filter((o) => {
    const i = info.get(o);
    return i && i.type === 'blob' && i.size <= MAX_POINTER_SIZE;
  });
  const contents = await batchRead(cwd, small);
  const out: IndexPointer[] = [];
  for (const e of entries) {
    const c = contents.get(e.oid);
    const p = c ? parsePointer(c) : null;
    if (p) out.push({ path: e.path, mode: e.mode, blobOid: e.oid, stage: e.stage ?? 0, pointer: p });
  }
  return out;
}

/** Pointers among the files of a commit or tree (`git ls-tree -r`), under the given paths. */
export async function listTreePointers(cwd: string, rev: string, pathspecs: string[] = []): Promise<IndexPointer[]> {
  const r = await runGit(['ls-tree', '-r', '-z', '--full-tree', rev, '--', ...pathspecs], { cwd, allowFail: true });
  if (r.exitCode !== 0) {
    if (/not a valid object name|not a tree object|ambiguous argument/i.test(r.stderr)) {
      throw new DitsUserError('bad-revision', `'${rev}' is not a revision of this repository`, { hint: 'name a commit, branch or tag (`git log --oneline` lists commits); paths go after `--`' });
    }
    throw new GitError(['ls-tree', '-r', '-z', '--full-tree', rev, '--', ...pathspecs], r.exitCode, r.stderr);
  }
  const entries = r.stdout
    .toString('utf8')
    .split('\0')
    .filter(Boolean)
    .map((rec) => {
      const tab = rec.indexOf('\t');
      const [mode, , oid] = rec.slice(0, tab).split(' ');
      return { mode: mode!, oid: oid!, path: rec.slice(tab + 1) };
    })
    .filter((e) => e.mode.startsWith('100'));
  return resolvePointers(cwd, entries);
}
