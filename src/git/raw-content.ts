/**
 * Raw content at a tracked path: a file whose path `.gitattributes` gives `filter=dits`
 * but whose blob in Git is the file itself, not a pointer. It happens when `git add`
 * runs where Git has no Dits filter config (`git dits install` never ran: Git skips a
 * filter it does not know unless `filter.dits.required` is set); the whole media file
 * then lives in Git's history. `git add --renormalize <path>` (with the filter set up)
 * stages the pointer instead.
 *
 * A blob that starts like a pointer but does not parse is a damaged pointer, not raw
 * content, and is left to the pointer checks.
 */
import { runGit } from './exec.js';
import { batchCheck, batchRead } from './cat-file.js';
import { parsePointer } from '../manifest/pointer.js';

export interface RawEntry {
  path: string;
  /** The blob holding the file itself. */
  oid: string;
  size: number;
}

const POINTER_PREFIX = 'version dits/';
/** Blobs up to this size are read to tell a damaged pointer (reported as such) from raw content. */
const DAMAGED_POINTER_READ_MAX = 64 * 1024;

/**
 * Which of `paths` have `filter=dits`, by `git check-attr` (the .gitattributes of the work
 * tree, falling back to the index's, as `git add` reads them).
 */
export async function pathsTrackedByDits(cwd: string, paths: string[]): Promise<Set<string>> {
  const out = new Set<string>();
  if (paths.length === 0) return out;
  const r = await runGit(['check-attr', '-z', '--stdin', 'filter'], { cwd, input: paths.join('\0') + '\0' });
  // -z output: <path> NUL <attribute> NUL <value> NUL, per path
  const f = r.stdout.toString('utf8').split('\0');
  for (let i = 0; i + 2 < f.length; i += 3) if (f[i + 2] === 'dits') out.add(f[i]!);
  return out;
}

/** The entries at Dits-tracked paths whose blob is not a pointer. */
export async function rawAtTrackedPaths(
  cwd: string,
  all: { path: string; oid: string }[],
  knownPointers?: ReadonlySet<string>,
  /** which of these paths have filter=dits, when the caller has asked git already */
  trackedPaths?: ReadonlySet<string>,
): Promise<RawEntry[]> {
  // blobs the caller already read as valid pointers are neither raw nor damaged
  const entries = knownPointers ? all.filter((e) => !knownPointers.has(e.oid)) : all;
  if (entries.length === 0) return [];
  const tracked = trackedPaths ?? (await pathsTrackedByDits(cwd, [...new Set(entries.map((e) => e.path))]));
  const candidates = entries.filter((e) => tracked.has(e.path));
  if (candidates.length === 0) return [];
  const info = await batchCheck(cwd, [...new Set(candidates.map((e) => e.oid))]);
  // read up to 64 KiB: a pointer damaged by growing past 1 KiB still starts like one
  const small = [...info.values()].filter((i) => i.type === 'blob' && i.size <= DAMAGED_POINTER_READ_MAX).map((i) => i.oid);
  const contents = await batchRead(cwd, small);
  const out: RawEntry[] = [];
  for (const e of candidates) {
    const i = info.get(e.oid);
    if (!i || i.type !== 'blob') continue;
    const c = contents.get(e.oid);
    if (c && (parsePointer(c) || c.subarray(0, POINTER_PREFIX.length).toString('latin1') === POINTER_PREFIX)) continue;
    out.push({ path: e.path, oid: e.oid, size: i.size });
  }
  return out;
}

function regularFiles(listing: Buffer, parse: (head: string[]) => { mode: string; oid: string }): { path: string; oid: string }[] {
  const out: { path: string; oid: string }[] = [];
  for (const rec of listing.toString('utf8').split('\0')) {
    const tab = rec.indexOf('\t');
    if (tab < 0) continue;
    const { mode, oid } = parse(rec.slice(0, tab).split(' '));
    if (mode.startsWith('100')) out.push({ path: rec.slice(tab + 1), oid });
  }
  return out;
}

/** Raw content staged in the index, optionally only under `pathspecs`; a path once (the first stage of a conflict that has it). */
export async function rawInIndex(cwd: string, pathspecs: string[] = [], knownPointers?: ReadonlySet<string>): Promise<RawEntry[]> {
  const r = await runGit(['ls-files', '-s', '-z', '--', ...pathspecs], { cwd });
  return oncePerPath(await rawAtTrackedPaths(cwd, regularFiles(r.stdout, ([mode, oid]) => ({ mode: mode!, oid: oid! })), knownPointers));
}

/** The first entry of each path (a conflict's stages share one). */
export function oncePerPath<T extends { path: string }>(entries: T[]): T[] {
  const seen = new Set<string>();
  return entries.filter((e) => !seen.has(e.path) && Boolean(seen.add(e.path)));
}

/** Raw content among the changes staged for the next commit (what a pre-commit hook checks). */
export async function rawStaged(cwd: string): Promise<RawEntry[]> {
  // --raw -z: ":<old mode> <new mode> <old oid> <new oid> <status>" NUL <path> NUL, per change
  const d = await runGit(['diff', '--cached', '--raw', '-z', '--no-abbrev', '--no-renames', '--diff-filter=d'], { cwd });
  const f = d.stdout.toString('utf8').split('\0');
  const staged: { path: string; oid: string }[] = [];
  for (let i = 0; i + 1 < f.length; i += 2) {
    const [, mode, , oid] = f[i]!.split(' ');
    if (mode?.startsWith('100') && oid) staged.push({ path: f[i + 1]!, oid });
  }
  return rawAtTrackedPaths(cwd, staged);
}

/** Raw content committed in `rev`'s tree; none when `rev` does not resolve (no commit yet). */
export async function rawInTree(cwd: string, rev: string, knownPointers?: ReadonlySet<string>): Promise<RawEntry[]> {
  const r = await runGit(['ls-tree', '-r', '-z', '--full-tree', rev], { cwd, allowFail: true });
  if (r.exitCode !== 0) return [];
  return rawAtTrackedPaths(cwd, regularFiles(r.stdout, ([mode, , oid]) => ({ mode: mode!, oid: oid! })), knownPointers);
}

/** The command that stages pointers in place of raw content at these paths. */
export function renormalizeCommand(paths: string[]): string {
  const quoted = paths.slice(0, 5).map((p) => (/^[A-Za-z0-9_./-]+$/.test(p) ? p : `'${p.replace(/'/g, `'\\''`)}'`));
  return `git add --renormalize -- ${quoted.join(' ')}${paths.length > 5 ? ' ...' : ''}`;
}
