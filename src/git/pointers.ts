/**
 * Which index entries are Dits pointers. Pointers are small blobs, so only blobs under
 * MAX_POINTER_SIZE are read; everything else is left alone.
 */
import { GitError, runGit } from './exec.js';
import { DitsUserError } from '../errors.js';
import { batchCheck, batchRead } from './cat-file.js';
import { MAX_POINTER_SIZE, parsePointer, pointerDamage, type Pointer } from '../manifest/pointer.js';

export interface IndexPointer {
  path: string;
  mode: string;
  blobOid: string;
  stage: number;
  pointer: Pointer;
}

export async function listIndexPointers(workTree: string, pathspecs: string[] = []): Promise<IndexPointer[]> {
  return resolvePointers(workTree, await listIndexBlobs(workTree, pathspecs));
}

/** Index entries that are files (not submodules or symlinks): path, mode, blob id, stage. */
export async function listIndexBlobs(workTree: string, pathspecs: string[]): Promise<{ path: string; mode: string; oid: string; stage: number }[]> {
  const r = await runGit(['ls-files', '-s', '-z', '--', ...pathspecs], { cwd: workTree });
  const entries: { path: string; mode: string; oid: string; stage: number }[] = [];
  for (const rec of r.stdout.toString('utf8').split('\0')) {
    if (!rec) continue;
    const tab = rec.indexOf('\t');
    const [mode, oid, stage] = rec.slice(0, tab).split(' ');
    if (mode === '160000' || mode === '120000') continue; // submodules, symlinks
    entries.push({ path: rec.slice(tab + 1), mode: mode!, oid: oid!, stage: Number(stage) });
  }
  return entries;
}

/**
 * Pointers among (path, oid) pairs of any tree listing. `strict`: a blob that cannot be read
 * throws (a damaged repository) instead of being taken for a file that is not a pointer.
 */
export async function resolvePointers<T extends { oid: string; path: string; mode: string; stage?: number }>(cwd: string, entries: T[], opts: { strict?: boolean } = {}): Promise<IndexPointer[]> {
  const oids = [...new Set(entries.map((e) => e.oid))];
  const info = await batchCheck(cwd, oids);
  const unreadable = (oid: string): never => {
    throw new GitError(['cat-file', oid], 1, `blob ${oid} (${entries.find((e) => e.oid === oid)?.path ?? '?'}) cannot be read`);
  };
  if (opts.strict) for (const o of oids) if (!info.has(o)) unreadable(o);
  const small = oids.filter((o) => {
    const i = info.get(o);
    return i && i.type === 'blob' && i.size <= MAX_POINTER_SIZE;
  });
  const contents = await batchRead(cwd, small);
  if (opts.strict) for (const o of small) if (!contents.has(o)) unreadable(o);
  const out: IndexPointer[] = [];
  for (const e of entries) {
    const c = contents.get(e.oid);
    const p = c ? parsePointer(c) : null;
    if (p) out.push({ path: e.path, mode: e.mode, blobOid: e.oid, stage: e.stage ?? 0, pointer: p });
  }
  return out;
}

/** The regular files of a `git ls-tree -r -z` listing: mode, blob id, path. */
function treeFiles(listing: Buffer): { mode: string; oid: string; path: string }[] {
  const out: { mode: string; oid: string; path: string }[] = [];
  for (const rec of listing.toString('utf8').split('\0')) {
    if (!rec) continue;
    const tab = rec.indexOf('\t');
    const [mode, , oid] = rec.slice(0, tab).split(' ');
    if (mode!.startsWith('100')) out.push({ mode: mode!, oid: oid!, path: rec.slice(tab + 1) });
  }
  return out;
}

/** Pointers among the files of a commit or tree (`git ls-tree -r`), under the given paths. */
export async function listTreePointers(cwd: string, rev: string, pathspecs: string[] = [], opts: { strict?: boolean } = {}): Promise<IndexPointer[]> {
  const r = await runGit(['ls-tree', '-r', '-z', '--full-tree', rev, '--', ...pathspecs], { cwd, allowFail: true });
  if (r.exitCode !== 0) {
    if (/not a valid object name|not a tree object|ambiguous argument/i.test(r.stderr)) {
      throw new DitsUserError('bad-revision', `'${rev}' is not a revision of this repository`, { hint: 'name a commit, branch or tag (`git log --oneline` lists commits); paths go after `--`' });
    }
    throw new GitError(['ls-tree', '-r', '-z', '--full-tree', rev, '--', ...pathspecs], r.exitCode, r.stderr);
  }
  const entries = treeFiles(r.stdout);
  return resolvePointers(cwd, entries, opts);
}

/**
 * Blobs up to this size are read to find damaged pointers. A pointer is under 1 KiB; one
 * with more than this appended is not looked for, as that would read whole media files
 * committed at tracked paths. (Smudge sees every size and warns at checkout.)
 */
export const DAMAGED_POINTER_SCAN_MAX = 64 * 1024;

export interface DamagedPointer {
  path: string;
  blobOid: string;
  stage: number;
  /** Size of the blob in Git. */
  size: number;
  /** What is wrong with it, in a few words (pointerDamage). */
  damage: string;
}

/**
 * Entries at paths Dits tracks (filter=dits) whose blob claims to be a pointer (starts
 * with its version line) and does not parse: non-hex ids, cut short, too long, unknown
 * version. Such a file checks out as its own text, so it is reported, not ignored.
 */
export async function findDamagedPointers(
  cwd: string,
  all: { oid: string; path: string; stage?: number }[],
  knownPointers?: ReadonlySet<string>,
  /** which of these paths have filter=dits, when the caller has asked git already */
  trackedPaths?: ReadonlySet<string>,
): Promise<DamagedPointer[]> {
  // blobs the caller already read as valid pointers are not damaged
  const entries = knownPointers ? all.filter((e) => !knownPointers.has(e.oid)) : all;
  if (entries.length === 0) return [];
  const tracked = trackedPaths ?? (await ditsTrackedPaths(cwd, [...new Set(entries.map((e) => e.path))]));
  const candidates = entries.filter((e) => tracked.has(e.path));
  const oids = [...new Set(candidates.map((e) => e.oid))];
  const info = await batchCheck(cwd, oids);
  const contents = await batchRead(
    cwd,
    oids.filter((o) => {
      const i = info.get(o);
      return i !== undefined && i.type === 'blob' && i.size <= DAMAGED_POINTER_SCAN_MAX;
    }),
  );
  const out: DamagedPointer[] = [];
  for (const e of candidates) {
    const c = contents.get(e.oid);
    const damage = c === undefined ? null : pointerDamage(c);
    if (damage !== null) out.push({ path: e.path, blobOid: e.oid, stage: e.stage ?? 0, size: c!.length, damage });
  }
  return out;
}

/** Damaged pointers in the index (see findDamagedPointers). */
export async function listIndexDamagedPointers(workTree: string, pathspecs: string[] = [], knownPointers?: ReadonlySet<string>): Promise<DamagedPointer[]> {
  return findDamagedPointers(workTree, await listIndexBlobs(workTree, pathspecs), knownPointers);
}

/** Damaged pointers in a commit's tree (see findDamagedPointers); none when `rev` does not exist (no commits yet). */
export async function listTreeDamagedPointers(cwd: string, rev: string, knownPointers?: ReadonlySet<string>): Promise<DamagedPointer[]> {
  const r = await runGit(['ls-tree', '-r', '-z', '--full-tree', rev], { cwd, allowFail: true });
  if (r.exitCode !== 0) return [];
  const entries = treeFiles(r.stdout);
  return findDamagedPointers(cwd, entries, knownPointers);
}

/** Which of these paths have filter=dits (by the attributes in the working tree, then the index). */
async function ditsTrackedPaths(cwd: string, paths: string[]): Promise<Set<string>> {
  const set = new Set<string>();
  if (paths.length === 0) return set;
  const r = await runGit(['check-attr', '-z', '--stdin', 'filter'], { cwd, input: paths.join('\0') + '\0' });
  const f = r.stdout.toString('utf8').split('\0');
  for (let i = 0; i + 2 < f.length; i += 3) if (f[i + 2] === 'dits') set.add(f[i]!);
  return set;
}
