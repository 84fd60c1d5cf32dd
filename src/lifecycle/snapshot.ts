/**
 * Snapshots of work in progress: the working tree's state as a commit on its own ref,
 * without touching HEAD, the index or the stash.
 *
 * One ref per snapshot, `refs/dits/snapshots/<UTC time>-<short commit id>`, rather than one
 * ref per branch with each snapshot's parent the previous one: retention then deletes
 * refs and nothing else (with a chain, dropping a middle snapshot would rewrite every
 * later one and change their ids, or keep everything reachable), and listing is one
 * `git for-each-ref`. A snapshot's parent is the HEAD it was taken on (none on an unborn
 * branch), so `git diff <snapshot>^ <snapshot>` shows the work in progress, and pushing it
 * carries what it builds on.
 *
 * How the tree is built: a temporary index (GIT_INDEX_FILE) starts as a copy of the real
 * index with the real one's mtime (so git's racy-entry rule decides as it would for the
 * real one), then `git add -A` through the normal clean filter. Git re-reads only the
 * files whose stat data differ from the index's, so an unchanged tree of any size costs
 * one stat per file; big files become pointers with their content chunked into the store
 * first (unchanged chunks deduplicate). Files git did read are stat'ed again after: one
 * that changed meanwhile (being written) is added again, and skipped with a warning (its
 * staged version kept) if it will not hold still, so every file in a snapshot is one
 * consistent version. The ref moves last, create-only: a snapshot killed midway leaves at
 * most a temporary index (removed by the next run) and unreferenced objects.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DitsUserError, errnoCode } from '../errors.js';
import { runGit } from '../git/exec.js';
import { encodeIndex, parseIndex, readIndexSnapshot, type GitIndex, type IndexEntry, type IndexEntrySummary } from '../git/index-file.js';
import type { RepoPaths } from '../git/repo.js';
import { processAlive } from '../process-alive.js';

export const SNAPSHOT_REF_PREFIX = 'refs/dits/snapshots/';
const TMP_INDEX_PREFIX = 'dits-snapshot-index.';
/** `<gitDir>/dits-snapshot-stat.<commit>`: the index the last snapshot of this worktree was written from. */
const STAT_INDEX_PREFIX = 'dits-snapshot-stat.';

export interface SnapshotInfo {
  /** The ref's last part: `20261206T125037Z-1a2b3c4`. */
  id: string;
  ref: string;
  commit: string;
  /** Recorded time (the commit's date), milliseconds since the epoch. */
  time: number;
  /** The branch HEAD named, or null when detached. */
  branch: string | null;
  /** The commit HEAD was on, or null on an unborn branch. */
  head: string | null;
  /** The working tree it was taken in (retention groups by it). */
  worktree: string;
  /** Order of taking within the repository (1, 2, ...). */
  seq: number;
  message: string;
}

export interface SnapshotDeps {
  now: () => number;
  /** Between two reads of a file that was changing (ms). */
  settleMs: number;
  /** Reads of a changing file before it is skipped. */
  attempts: number;
}

export const DEFAULT_SNAPSHOT_DEPS: SnapshotDeps = { now: () => Date.now(), settleMs: 300, attempts: 3 };

export interface SnapshotResult {
  snapshot: SnapshotInfo;
  /** Files git read (their stat data differed from the index's): changed, new, or racily clean. */
  filesRead: number;
  /** Files that kept changing while read: the snapshot holds their staged version (or leaves them out). */
  skipped: { path: string; reason: string }[];
  /** Git's per-file complaints (unreadable files: left out). */
  warnings: string[];
  /** The tree is the same as the previous snapshot's from this working tree, on the same HEAD. */
  unchanged: boolean;
}

const TRAILER = {
  branch: 'Dits-Snapshot-Branch',
  head: 'Dits-Snapshot-Head',
  worktree: 'Dits-Snapshot-Worktree',
  seq: 'Dits-Snapshot-Seq',
} as const;

function trailer(message: string, key: string): string | undefined {
  const m = new RegExp(`^${key}: (.*)$`, 'm').exec(message);
  return m?.[1];
}

/** Every snapshot of the repository, oldest first (by sequence, then time). */
export async function listSnapshots(repo: RepoPaths): Promise<SnapshotInfo[]> {
  const r = await runGit(['for-each-ref', '--format=%(refname)%00%(objectname)%00%(committerdate:unix)%00%(contents)%00%00', SNAPSHOT_REF_PREFIX], { cwd: repo.workTree });
  const out: SnapshotInfo[] = [];
  for (const rec of r.stdout.toString('utf8').split('\0\0\n')) {
    if (!rec) continue;
    const [ref, commit, date, message = ''] = rec.split('\0');
    if (!ref || !commit) continue;
    const head = trailer(message, TRAILER.head);
    const branch = trailer(message, TRAILER.branch);
    out.push({
      id: ref.slice(SNAPSHOT_REF_PREFIX.length),
      ref,
      commit,
      time: Number(date) * 1000,
      branch: branch && branch !== '(detached)' ? branch : null,
      head: head && head !== '(none)' ? head : null,
      worktree: trailer(message, TRAILER.worktree) ?? '',
      seq: Number(trailer(message, TRAILER.seq) ?? 0) || 0,
      message: message.split('\n')[0] ?? '',
    });
  }
  return out.sort((a, b) => a.seq - b.seq || a.time - b.time || (a.id < b.id ? -1 : 1));
}

/**
 * The snapshot `spec` names: its id, its ref, a unique prefix of either or of its commit id
 * (4 hex digits at least), or `latest` (the last one taken in this working tree, else anywhere).
 */
export function resolveSnapshot(all: SnapshotInfo[], spec: string, worktree: string): SnapshotInfo {
  if (all.length === 0) throw new DitsUserError('no-snapshots', 'this repository has no snapshots yet', { hint: 'take one with `git dits snapshot`' });
  if (spec === 'latest') return all.filter((s) => s.worktree === worktree).pop() ?? all[all.length - 1]!;
  const exact = all.find((s) => s.id === spec || s.ref === spec || s.commit === spec);
  if (exact) return exact;
  const hits = all.filter((s) => s.id.startsWith(spec) || (spec.startsWith(SNAPSHOT_REF_PREFIX) && s.ref.startsWith(spec)) || (/^[0-9a-f]{4,}$/.test(spec) && s.commit.startsWith(spec)));
  if (hits.length === 1) return hits[0]!;
  if (hits.length > 1) {
    throw new DitsUserError('snapshot-ambiguous', `'${spec}' names ${hits.length} snapshots (${hits.slice(0, 3).map((s) => s.id).join(', ')}${hits.length > 3 ? ', ...' : ''})`, { hint: 'give more of the id (`git dits snapshot list` shows them)', exitCode: 2 });
  }
  throw new DitsUserError('no-such-snapshot', `no snapshot is named '${spec}'`, { hint: '`git dits snapshot list` shows the ids (or use `latest`)', exitCode: 2 });
}

/** The last snapshot's index of this worktree, if that snapshot still exists (else it is removed). */
function statIndexOf(repo: RepoPaths, all: SnapshotInfo[]): string | null {
  const live = new Set(all.map((s) => s.commit));
  let found: string | null = null;
  for (const name of fs.readdirSync(repo.gitDir)) {
    if (!name.startsWith(STAT_INDEX_PREFIX)) continue;
    const file = path.join(repo.gitDir, name);
    if (live.has(name.slice(STAT_INDEX_PREFIX.length)) && found === null) found = file;
    else fs.rmSync(file, { force: true });
  }
  return found;
}

/** `20261206T125037Z` */
function stamp(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

/** Temporary indexes left by snapshots that were killed (their process is gone). */
function removeStaleIndexes(gitDir: string): void {
  for (const name of fs.readdirSync(gitDir)) {
    if (!name.startsWith(TMP_INDEX_PREFIX)) continue;
    const pid = Number(name.slice(TMP_INDEX_PREFIX.length).split('.')[0]);
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && !processAlive(pid)) fs.rmSync(path.join(gitDir, name), { force: true });
  }
}

function sameStat(a: IndexEntrySummary, b: IndexEntrySummary): boolean {
  return (
    a.size === b.size &&
    a.mtime.seconds === b.mtime.seconds &&
    a.mtime.nanoseconds === b.mtime.nanoseconds &&
    a.ctime.seconds === b.ctime.seconds &&
    a.ctime.nanoseconds === b.ctime.nanoseconds &&
    a.ino === b.ino
  );
}

/** Does the file still have the stat data git recorded when it read it? */
function unchangedSince(workTree: string, e: IndexEntrySummary): boolean {
  let st: fs.BigIntStats;
  try {
    st = fs.lstatSync(path.join(workTree, e.path), { bigint: true });
  } catch {
    return false; // gone since: git read something that is no longer there
  }
  const ns = (v: bigint): { seconds: number; nanoseconds: number } => ({ seconds: Number(v / 1_000_000_000n), nanoseconds: Number(v % 1_000_000_000n) });
  const m = ns(st.mtimeNs);
  const c = ns(st.ctimeNs);
  return (
    Number(st.size & 0xffffffffn) === e.size &&
    m.seconds === e.mtime.seconds &&
    m.nanoseconds === e.mtime.nanoseconds &&
    c.seconds === e.ctime.seconds &&
    c.nanoseconds === e.ctime.nanoseconds &&
    Number(st.ino & 0xffffffffn) === e.ino
  );
}

/** Entries (stage 0, files and symlinks) of an index file, or null when Dits cannot parse it (split or sparse index). */
function readEntries(repo: RepoPaths, indexFile: string): Map<string, IndexEntrySummary> | null {
  try {
    const snap = readIndexSnapshot(repo.gitDir, repo.hashAlgo, { indexFile });
    return new Map(snap.entries.filter((e) => e.stage === 0 && (e.mode & 0o170000) !== 0o160000).map((e) => [e.path, e]));
  } catch (err) {
    if ((err as { code?: string }).code === 'index-unsupported') return null;
    throw err;
  }
}

function readIndexFile(file: string, hashAlgo: RepoPaths['hashAlgo']): { index: GitIndex; mtime: Date } | null {
  let buf: Buffer;
  let mtime: Date;
  try {
    buf = fs.readFileSync(file);
    mtime = fs.statSync(file).mtime;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return null;
    throw err;
  }
  return { index: parseIndex(buf, hashAlgo), mtime };
}

function comparePaths(a: IndexEntry, b: IndexEntry): number {
  return Buffer.compare(a.rawPath ?? Buffer.from(a.path), b.rawPath ?? Buffer.from(b.path)) || a.stage - b.stage;
}

/**
 * Writes the temporary index the snapshot starts from: the real index, with the stat data
 * (and blob ids) of the last snapshot's index where it has the same path, and that index's
 * other files (untracked ones it read) where nothing in the real index is in their way. Git
 * trusts an entry only while the file's stat data match it, so this is what the real index
 * would say had it been refreshed then: a file changed since the last commit but not since
 * the last snapshot is not read again. Entries the real index keeps out of the working tree
 * (skip-worktree: sparse checkout) and intent-to-add ones stay as they are. The cache-tree
 * is dropped (it no longer matches). Entries not older than the index they come from are
 * smudged, so the file can carry the later mtime of the two (see the racy-git note below).
 *
 * The last snapshot's index is used only while its snapshot exists: its blobs (and the
 * content their pointers name) are kept by that ref, so nothing in it can have been gc'd.
 * A real index Dits cannot parse (split or sparse) is copied as it is.
 */
function seedIndex(repo: RepoPaths, realIndex: string, tmpIndex: string, lastStat: string | null): void {
  let real: { index: GitIndex; mtime: Date } | null;
  try {
    real = readIndexFile(realIndex, repo.hashAlgo);
  } catch (err) {
    if ((err as { code?: string }).code !== 'index-unsupported') throw err;
    fs.copyFileSync(realIndex, tmpIndex);
    const st = fs.statSync(realIndex);
    fs.utimesSync(tmpIndex, st.atime, st.mtime);
    return;
  }
  let last: { index: GitIndex; mtime: Date } | null = null;
  try {
    last = lastStat ? readIndexFile(lastStat, repo.hashAlgo) : null;
  } catch {
    last = null; // damaged: start from the real index alone
  }
  if (!real && !last) return; // a fresh repository: git add starts from nothing
  const base: GitIndex = real?.index ?? { version: 2, hashAlgo: repo.hashAlgo, entries: [], extensions: [], skipHash: false };
  // Git trusts an entry only when it is older than its index (the racy-git rule): each entry
  // is judged against the index it comes from, and one that is not older is smudged (size 0:
  // git reads the file again), so the new index can carry the later of the two mtimes.
  const seconds = (d: Date): number => Math.floor(d.getTime() / 1000);
  const smudgeRacy = (e: IndexEntry, indexMtime: Date): IndexEntry => (e.mtimeSeconds >= seconds(indexMtime) ? { ...e, size: 0 } : { ...e });
  let entries = base.entries.map((e) => (real ? smudgeRacy(e, real.mtime) : { ...e }));
  let mtime = real?.mtime ?? last!.mtime;
  if (last) {
    if (last.mtime > mtime) mtime = last.mtime;
    const byPath = new Map(last.index.entries.filter((e) => e.stage === 0 && !e.skipWorktree && !e.intentToAdd).map((e) => [e.path, smudgeRacy(e, last!.mtime)]));
    const realPaths = new Set(entries.map((e) => e.path));
    const realDirs = new Set<string>();
    for (const e of entries) for (let i = e.path.indexOf('/'); i >= 0; i = e.path.indexOf('/', i + 1)) realDirs.add(e.path.slice(0, i));
    const typeOf = (m: number): number => m & 0o170000;
    entries = entries.map((e) => {
      const l = byPath.get(e.path);
      if (!l || e.stage !== 0 || e.skipWorktree || e.intentToAdd || typeOf(l.mode) !== typeOf(e.mode) || typeOf(e.mode) === 0o160000) return e;
      return { ...l, assumeValid: e.assumeValid, skipWorktree: false, intentToAdd: false };
    });
    for (const [p, l] of byPath) {
      if (realPaths.has(p) || realDirs.has(p) || typeOf(l.mode) === 0o160000) continue;
      let blocked = false;
      for (let i = p.indexOf('/'); i >= 0 && !blocked; i = p.indexOf('/', i + 1)) blocked = realPaths.has(p.slice(0, i));
      if (!blocked) entries.push(l);
    }
    entries.sort(comparePaths);
  }
  fs.writeFileSync(tmpIndex, encodeIndex({ ...base, entries, extensions: [] }));
  fs.utimesSync(tmpIndex, mtime, mtime);
}

/** `git add` per-file errors (with --ignore-errors): kept as warnings; anything else fails the snapshot. */
async function addAll(workTree: string, env: NodeJS.ProcessEnv, tmpIndex: string, opts: { paths?: string[]; exclude?: string[] } = {}): Promise<{ warnings: string[]; crashed: boolean }> {
  const specs = [...(opts.paths ?? []).map((p) => `:(literal)${p}`), ...(opts.exclude ?? []).map((p) => `:(exclude,literal)${p}`)];
  const r = await runGit(['add', '-A', '--ignore-errors', ...(specs.length ? ['--', ...specs] : [])], { cwd: workTree, env, allowFail: true });
  if (r.exitCode === 0) return { warnings: [], crashed: false };
  if (r.exitCode === -1) {
    // killed by a signal: SIGBUS when a file git had mapped was truncated under it. Git
    // wrote nothing (the index is replaced by rename), but its lock file is left behind.
    fs.rmSync(`${tmpIndex}.lock`, { force: true });
    return { warnings: [], crashed: true };
  }
  const lines = r.stderr.split('\n').filter(Boolean);
  if (r.exitCode === 1 && lines.length > 0 && lines.every((l) => /^(error|warning): /.test(l) || l.startsWith('fatal: adding files failed'))) {
    return { warnings: lines.filter((l) => !l.startsWith('fatal:')), crashed: false };
  }
  throw new DitsUserError('snapshot-add-failed', `git could not read the working tree for the snapshot: ${r.stderr.trim() || `exit ${r.exitCode}`}`, {
    hint: 'nothing was recorded; fix what git names (or run `git add -A --dry-run` to see it), then run `git dits snapshot` again',
  });
}

function statKey(file: string): string {
  try {
    const st = fs.lstatSync(file, { bigint: true });
    return `${st.size}:${st.mtimeNs}:${st.ctimeNs}:${st.ino}`;
  } catch {
    return 'gone';
  }
}

/** Files git would read (changed against the temporary index, or new) whose stat data change within `settleMs`. */
async function findMoving(workTree: string, env: NodeJS.ProcessEnv, settleMs: number): Promise<string[]> {
  const r = await runGit(['ls-files', '-z', '-m', '-o', '--exclude-standard'], { cwd: workTree, env });
  const paths = [...new Set(r.stdout.toString('utf8').split('\0').filter(Boolean))];
  const first = paths.map((p) => statKey(path.join(workTree, p)));
  await new Promise((res) => setTimeout(res, settleMs));
  return paths.filter((p, i) => statKey(path.join(workTree, p)) !== first[i]);
}

/**
 * Takes a snapshot of the working tree of `repo`. HEAD, the index, the stash and every
 * other ref stay as they were; only `refs/dits/snapshots/<id>` is created.
 */
export async function takeSnapshot(repo: RepoPaths, opts: { message?: string } = {}, deps: SnapshotDeps = DEFAULT_SNAPSHOT_DEPS): Promise<SnapshotResult> {
  const cwd = repo.workTree;
  removeStaleIndexes(repo.gitDir);
  const realIndex = path.join(repo.gitDir, 'index');
  const tmpIndex = path.join(repo.gitDir, `${TMP_INDEX_PREFIX}${process.pid}.${deps.now()}`);
  const env: NodeJS.ProcessEnv = { ...process.env, GIT_INDEX_FILE: tmpIndex };
  delete env.GIT_DIR;
  delete env.GIT_WORK_TREE;
  try {
    const all = await listSnapshots(repo);
    const lastStat = statIndexOf(repo, all);
    seedIndex(repo, realIndex, tmpIndex, lastStat);
    const before = readEntries(repo, tmpIndex);
    let added = await addAll(cwd, env, tmpIndex);
    // git died reading a file being rewritten: find the files that are moving and leave them out
    const excluded = new Set<string>();
    for (let attempt = 1; added.crashed; attempt++) {
      if (attempt >= deps.attempts) {
        throw new DitsUserError('snapshot-add-failed', 'git kept failing while it read the working tree (files were being rewritten under it); nothing was recorded', {
          hint: 'run `git dits snapshot` again when the writing has finished',
        });
      }
      for (const p of await findMoving(cwd, env, deps.settleMs)) excluded.add(p);
      added = await addAll(cwd, env, tmpIndex, { exclude: [...excluded] });
    }
    const warnings = added.warnings;

    // files git read: stat data differ from the real index's (or the path is new there)
    const skipped: { path: string; reason: string }[] = [];
    let filesRead = 0;
    let after = readEntries(repo, tmpIndex);
    if (after) {
      const read = [...after.values()].filter((e) => {
        const b = before?.get(e.path);
        return !b || !sameStat(b, e) || b.oid !== e.oid;
      });
      filesRead = read.length;
      let moving = [...new Set([...excluded, ...read.filter((e) => !unchangedSince(cwd, e)).map((e) => e.path)])];
      for (let attempt = 1; moving.length > 0 && attempt < deps.attempts; attempt++) {
        await new Promise((r) => setTimeout(r, deps.settleMs));
        const again = await addAll(cwd, env, tmpIndex, { paths: moving });
        if (again.crashed) continue; // nothing written: all of them are still moving
        warnings.push(...again.warnings);
        after = readEntries(repo, tmpIndex)!;
        moving = moving.filter((p) => {
          const e = after!.get(p);
          return e ? !unchangedSince(cwd, e) : fs.existsSync(path.join(cwd, p));
        });
      }
      if (moving.length > 0) {
        // keep what the real index has for them (their staged version), or leave them out
        const restore: string[] = [];
        const drop: string[] = [];
        for (const p of moving) {
          const b = before?.get(p);
          if (b) restore.push(`${b.mode.toString(8)} ${b.oid}\t${p}\0`);
          else drop.push(p);
          skipped.push({ path: p, reason: b ? 'it kept changing while it was read: the snapshot holds its earlier version (as staged, or as the previous snapshot had it)' : 'it kept changing while it was read: left out' });
        }
        if (restore.length) await runGit(['update-index', '-z', '--index-info'], { cwd, env, input: restore.join('') });
        if (drop.length) await runGit(['--literal-pathspecs', 'rm', '-q', '--cached', '--ignore-unmatch', '--', ...drop], { cwd, env });
      }
    } else {
      warnings.push('the index is split or sparse: files being written while the snapshot ran were not checked again');
    }

    const tree = (await runGit(['write-tree'], { cwd, env })).stdout.toString('utf8').trim();
    const headR = await runGit(['rev-parse', '-q', '--verify', 'HEAD^{commit}'], { cwd, allowFail: true });
    const head = headR.exitCode === 0 ? headR.stdout.toString('utf8').trim() : null;
    const branchR = await runGit(['symbolic-ref', '-q', '--short', 'HEAD'], { cwd, allowFail: true });
    const branch = branchR.exitCode === 0 ? branchR.stdout.toString('utf8').trim() : null;

    const seq = all.reduce((m, s) => Math.max(m, s.seq), 0) + 1;
    const previous = all.filter((s) => s.worktree === cwd).pop();
    const previousTree = previous ? (await runGit(['rev-parse', `${previous.commit}^{tree}`], { cwd, allowFail: true })).stdout.toString('utf8').trim() : '';
    const now = deps.now();
    const title = opts.message?.trim() || `work in progress on ${branch ?? 'a detached HEAD'}`;
    const message =
      `${title}\n\n` +
      `${TRAILER.branch}: ${branch ?? '(detached)'}\n` +
      `${TRAILER.head}: ${head ?? '(none)'}\n` +
      `${TRAILER.worktree}: ${cwd}\n` +
      `${TRAILER.seq}: ${seq}\n`;
    const date = `@${Math.floor(now / 1000)} +0000`;
    const ident = await runGit(['var', 'GIT_COMMITTER_IDENT'], { cwd, allowFail: true });
    const commitEnv: NodeJS.ProcessEnv = { ...env, GIT_AUTHOR_DATE: date, GIT_COMMITTER_DATE: date };
    if (ident.exitCode !== 0) {
      // no user.name/email configured: a snapshot is not authored work, it must not fail for that
      Object.assign(commitEnv, { GIT_AUTHOR_NAME: 'git dits snapshot', GIT_AUTHOR_EMAIL: 'dits@localhost', GIT_COMMITTER_NAME: 'git dits snapshot', GIT_COMMITTER_EMAIL: 'dits@localhost' });
    }
    const commit = (await runGit(['commit-tree', tree, ...(head ? ['-p', head] : []), '-F', '-'], { cwd, env: commitEnv, input: message })).stdout.toString('utf8').trim();
    const id = `${stamp(now)}-${commit.slice(0, 7)}`;
    const ref = SNAPSHOT_REF_PREFIX + id;
    const zero = '0'.repeat(commit.length);
    // create-only: the one step that makes the snapshot exist
    await runGit(['update-ref', '-m', 'dits snapshot', ref, commit, zero], { cwd });
    // the next snapshot starts from this index's stat data (seedIndex); when git read nothing
    // and there was none, it would say what the real index says: not kept
    const keep = filesRead > 0 || lastStat !== null;
    if (keep && fs.existsSync(tmpIndex)) fs.renameSync(tmpIndex, path.join(repo.gitDir, STAT_INDEX_PREFIX + commit));
    for (const name of fs.readdirSync(repo.gitDir)) {
      if (name.startsWith(STAT_INDEX_PREFIX) && name !== STAT_INDEX_PREFIX + commit) fs.rmSync(path.join(repo.gitDir, name), { force: true });
    }
    return {
      snapshot: { id, ref, commit, time: Math.floor(now / 1000) * 1000, branch, head, worktree: cwd, seq, message: title },
      filesRead,
      skipped,
      warnings,
      unchanged: previousTree === tree && (previous?.head ?? null) === head,
    };
  } finally {
    fs.rmSync(tmpIndex, { force: true });
    fs.rmSync(`${tmpIndex}.lock`, { force: true });
  }
}

/** Deletes the refs of `remove` in one transaction (each only if it still points where it did). */
export async function deleteSnapshots(repo: RepoPaths, remove: SnapshotInfo[]): Promise<void> {
  if (remove.length === 0) return;
  const input = ['start', ...remove.map((s) => `delete ${s.ref} ${s.commit}`), 'commit', ''].join('\n');
  await runGit(['update-ref', '--stdin'], { cwd: repo.workTree, input });
}
