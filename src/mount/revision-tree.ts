/**
 * The tree of one revision as the mount shows it: every file of `git ls-tree -r`, tracked
 * media at the size their pointer names (not the pointer's 190 bytes), directories implied
 * by the paths, symbolic links as links. Built once at mount time from two git processes
 * (the listing and one `cat-file --batch` for the blobs small enough to be pointers);
 * immutable afterwards, so the kernel may cache every attribute.
 */
import { DitsUserError } from '../errors.js';
import { batchRead } from '../git/cat-file.js';
import { runGit } from '../git/exec.js';
import { MAX_POINTER_SIZE, parsePointer, type Pointer } from '../manifest/pointer.js';

export interface TreeFile {
  kind: 'file' | 'link';
  ino: number;
  /** Git's mode: 100644, 100755 or 120000. */
  mode: string;
  /** The bytes a reader sees: the pointer's size for tracked files. */
  size: number;
  blobOid: string;
  /** Set for files tracked by Dits: their content comes from chunks, not from git. */
  pointer?: Pointer;
}

export interface TreeDir {
  kind: 'dir';
  ino: number;
  /** Names of the entries, sorted. */
  names: string[];
}

export type TreeNode = TreeFile | TreeDir;

export interface RevisionTree {
  commit: string;
  /** Commit time, ms: the mtime of every entry. */
  time: number;
  /** '/' for the root, '/a/b.mov' for files (FUSE's paths). */
  nodes: Map<string, TreeNode>;
  files: number;
  trackedFiles: number;
}

/** Resolves `rev` to a commit and lists its tree. */
export async function loadRevisionTree(cwd: string, rev: string): Promise<RevisionTree> {
  const show = await runGit(['rev-parse', '--verify', '--quiet', `${rev}^{commit}`], { cwd, allowFail: true });
  if (show.exitCode !== 0) {
    throw new DitsUserError('bad-revision', `'${rev}' is not a commit of this repository`, { hint: 'name a commit, branch or tag (`git log --oneline` lists commits)' });
  }
  const commit = show.stdout.toString('utf8').trim();
  const time = Number((await runGit(['show', '-s', '--format=%ct', commit], { cwd })).stdout.toString('utf8').trim()) * 1000;
  const listing = (await runGit(['ls-tree', '-r', '-l', '-z', '--full-tree', commit], { cwd })).stdout.toString('utf8');

  const entries: { path: string; mode: string; oid: string; size: number }[] = [];
  for (const rec of listing.split('\0')) {
    if (!rec) continue;
    const tab = rec.indexOf('\t');
    const [mode, type, oid, size] = rec.slice(0, tab).split(/ +/);
    if (type !== 'blob') continue; // submodules (commits) have no content here
    entries.push({ path: rec.slice(tab + 1), mode: mode!, oid: oid!, size: Number(size) });
  }
  const small = [...new Set(entries.filter((e) => e.mode !== '120000' && e.size <= MAX_POINTER_SIZE).map((e) => e.oid))];
  const contents = await batchRead(cwd, small);

  let ino = 1;
  const root: TreeDir = { kind: 'dir', ino: ino++, names: [] };
  const nodes = new Map<string, TreeNode>([['/', root]]);
  const dirOf = (p: string): TreeDir => {
    const existing = nodes.get(p);
    if (existing) {
      if (existing.kind !== 'dir') throw new Error(`${p} is both a file and a directory in ${commit}`);
      return existing;
    }
    const slash = p.lastIndexOf('/');
    const parent = dirOf(slash === 0 ? '/' : p.slice(0, slash));
    parent.names.push(p.slice(slash + 1));
    const d: TreeDir = { kind: 'dir', ino: ino++, names: [] };
    nodes.set(p, d);
    return d;
  };
  let trackedFiles = 0;
  for (const e of entries) {
    const p = `/${e.path}`;
    const slash = p.lastIndexOf('/');
    dirOf(slash === 0 ? '/' : p.slice(0, slash)).names.push(p.slice(slash + 1));
    const c = contents.get(e.oid);
    const pointer = c ? parsePointer(c) : null;
    if (pointer) trackedFiles++;
    nodes.set(p, {
      kind: e.mode === '120000' ? 'link' : 'file',
      ino: ino++,
      mode: e.mode,
      size: pointer ? pointer.size : e.size,
      blobOid: e.oid,
      ...(pointer ? { pointer } : {}),
    });
  }
  for (const n of nodes.values()) if (n.kind === 'dir') n.names.sort();
  return { commit, time, nodes, files: entries.length, trackedFiles };
}
