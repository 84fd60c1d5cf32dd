/**
 * Lockable files in the working tree: paths with the `lockable` git attribute (written by
 * `git dits track --lockable`) are read-only unless you hold their lock, so nobody edits a
 * binary file that someone else is editing and finds out only at push time.
 *
 * - `git dits lock` makes the file writable, `git dits unlock` read-only again;
 * - after a checkout the hook makes the lockable files it wrote read-only unless held.
 *
 * "Held" is answered from a local cache, `<common git dir>/dits/my-locks.json`, that the
 * lock commands keep up to date, so the hook never needs the network. The cache may be
 * stale (a lock broken by an admin): the server stays the authority, and the pre-push
 * check asks it.
 *
 * Changing a mode changes the file's ctime, which would make git re-read the (huge) file
 * through the clean filter on the next `git status`. So entries that were stat-clean
 * before the change get their cached stat data refreshed after it (never entries that were
 * already modified: that would hide a change).
 */
import fs from 'node:fs';
import path from 'node:path';
import { runGit } from '../git/exec.js';
import { compareEntryStat, readIndexSnapshot, updateIndexStat } from '../git/index-file.js';
import type { RepoPaths } from '../git/repo.js';

export const MY_LOCKS_FILE = 'my-locks.json';
const CACHE_VERSION = 1;

export interface CachedLock {
  id: string;
  path: string;
  locked_at: string;
}

/** The cache: per lock-server repository URL, the locks the user holds there. */
export interface MyLocks {
  version: number;
  servers: Record<string, CachedLock[]>;
}

export function myLocksFile(ditsDir: string): string {
  return path.join(ditsDir, MY_LOCKS_FILE);
}

/** The cache, or an empty one when missing or unreadable (it is only a cache). */
export function readMyLocks(ditsDir: string): MyLocks {
  try {
    const parsed = JSON.parse(fs.readFileSync(myLocksFile(ditsDir), 'utf8')) as Partial<MyLocks>;
    if (parsed.version === CACHE_VERSION && parsed.servers && typeof parsed.servers === 'object') return { version: CACHE_VERSION, servers: parsed.servers };
  } catch {
    /* missing or damaged: start over */
  }
  return { version: CACHE_VERSION, servers: {} };
}

/** Replaces what the cache says about one server: written to a temp file, then renamed. */
export function updateMyLocks(ditsDir: string, server: string, edit: (current: CachedLock[]) => CachedLock[]): MyLocks {
  const cache = readMyLocks(ditsDir);
  const next = edit(cache.servers[server] ?? []);
  const byPath = new Map<string, CachedLock>();
  for (const l of next) byPath.set(l.path, { id: l.id, path: l.path, locked_at: l.locked_at });
  if (byPath.size === 0) delete cache.servers[server];
  else cache.servers[server] = [...byPath.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  fs.mkdirSync(ditsDir, { recursive: true });
  const file = myLocksFile(ditsDir);
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(cache, null, 2) + '\n');
  fs.renameSync(tmp, file);
  return cache;
}

/** Every path the cache says the user holds, on any server. */
export function heldPaths(cache: MyLocks): Set<string> {
  const out = new Set<string>();
  for (const locks of Object.values(cache.servers)) for (const l of locks) out.add(l.path);
  return out;
}

/** Which of `paths` (repo-relative, POSIX) have the `lockable` attribute set. */
export async function lockablePaths(workTree: string, paths: readonly string[]): Promise<Set<string>> {
  const out = new Set<string>();
  if (paths.length === 0) return out;
  const r = await runGit(['check-attr', '-z', '--stdin', 'lockable'], { cwd: workTree, input: paths.join('\0') + '\0' });
  // -z output: <path> NUL <attribute> NUL <info> NUL, repeated
  const fields = r.stdout.toString('utf8').split('\0');
  for (let i = 0; i + 2 < fields.length; i += 3) {
    const value = fields[i + 2];
    if (value === 'set' || (value !== 'unset' && value !== 'unspecified' && value !== 'false')) out.add(fields[i]!);
  }
  return out;
}

export interface ModeReport {
  /** Lockable paths that are now read-only. */
  readOnly: string[];
  /** Lockable paths that are now writable (held). */
  writable: string[];
}

/**
 * Sets the mode of each lockable file among `paths`: writable when in `held`, else
 * read-only (no write bit for anyone). Paths that are not lockable, or have no regular
 * file in the working tree, are left alone. Returns what changed or was confirmed.
 */
export async function applyLockableModes(repo: RepoPaths, paths: readonly string[], held: ReadonlySet<string>): Promise<ModeReport> {
  const report: ModeReport = { readOnly: [], writable: [] };
  const lockable = await lockablePaths(repo.workTree, paths);
  if (lockable.size === 0) return report;
  let snapshot: ReturnType<typeof readIndexSnapshot> | null = null;
  try {
    snapshot = readIndexSnapshot(repo.gitDir, repo.hashAlgo);
  } catch {
    snapshot = null; // split or sparse index: git refreshes on its own
  }
  const entries = new Map((snapshot?.entries ?? []).filter((e) => e.stage === 0).map((e) => [e.path, e]));
  const refresh: { path: string; stat: fs.BigIntStats; expectedOid: string }[] = [];
  for (const rel of lockable) {
    const file = path.join(repo.workTree, rel);
    let before: fs.BigIntStats;
    try {
      before = fs.lstatSync(file, { bigint: true });
    } catch {
      continue;
    }
    if (!before.isFile()) continue;
    const writable = held.has(rel);
    const mode = Number(before.mode) & 0o7777;
    const want = writable ? mode | 0o200 : mode & ~0o222;
    (writable ? report.writable : report.readOnly).push(rel);
    if (want === mode) continue;
    fs.chmodSync(file, want);
    const entry = entries.get(rel);
    if (entry && snapshot && compareEntryStat(entry, before, { hashAlgo: repo.hashAlgo, indexMtimeSeconds: snapshot.indexMtimeSeconds }) === 'clean') {
      refresh.push({ path: rel, stat: fs.lstatSync(file, { bigint: true }), expectedOid: entry.oid });
    }
  }
  if (refresh.length > 0) {
    try {
      await updateIndexStat(repo.gitDir, refresh, { hashAlgo: repo.hashAlgo, worktree: repo.workTree });
    } catch {
      // index locked or unsupported: git re-checks these files once; nothing is wrong
    }
  }
  report.readOnly.sort();
  report.writable.sort();
  return report;
}
