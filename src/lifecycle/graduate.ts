/**
 * Graduation of idle work: a repository nobody touched for a while, whose work is all on its
 * Dits remote, gives its disk back. Big files become pointers in the working tree (git status
 * stays clean: the clean filter returns a pointer unchanged), the local chunks are pruned with
 * the remote copy of each read back and verified first, and a record on the remote
 * (`v1/tier/graduated/<repo id>.json`) tells the tier reaper its content went idle.
 * `hydrate` (git dits checkout) brings the files back.
 *
 * Checks, all before anything changes (a refusal lists every reason):
 * - no `.keep-local` at the top of the working tree;
 * - idle: the newest of HEAD's commit time and the mtime of every file in the working tree
 *   (tracked or untracked, not ignored) is older than `idleMs`; a time in the future (clocks
 *   that disagree: a file from a NAS whose clock runs ahead, a commit from another machine)
 *   counts as a change now, never as old;
 * - nothing uncommitted in tracked files;
 * - every local branch at or behind its remote-tracking branch (its upstream, else
 *   `<remote>/<name>`), and every manifest the branches' history names present on the remote;
 * - no local-only content: no local chunk the remote index lacks, and no remote copy that
 *   fails verification (the prune plan's own checks, reading back every chunk it would drop).
 *
 * Order of the changes, so a run killed anywhere loses nothing and the next run completes:
 * 1. `.git/dits/graduate.json` says `started` (a resumed run skips the idle check when nothing
 *    changed since the killed run started: the pointers it wrote kept their files' mtimes);
 * 2. the prune plan is made and verified (no local change yet);
 * 3. each big file is replaced by its pointer (temp file and rename; skipped if its size or
 *    mtime changed since the scan, or if a chunk of it is neither verified, nor local, nor
 *    listed by the remote), its mtime kept; `git update-index --refresh`;
 * 4. the planned chunks are dropped (applyPrune: crash-safe, chunks added since are kept);
 * 5. the record on the remote, then `graduate.json` says `done`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { runGit } from '../git/exec.js';
import { findRepo, isDitsInitialised, type RepoPaths } from '../git/repo.js';
import { listIndexPointers } from '../git/pointers.js';
import { Manifest } from '../manifest/manifest.js';
import { encodePointer } from '../manifest/pointer.js';
import { manifestsBetween } from '../remote/session.js';
import { manifestsOnRemote } from '../remote/content/remote-manifests.js';
import { applyPrune, planPrune, type PrunePlan } from '../remote/content/prune.js';
import { defaultDitsRemote, openRemoteStorage } from '../remote/open-remote.js';
import { ChunkStore } from '../store/chunk-store.js';
import type { ObjectStorage } from '../transfer/object-storage.js';
import { readWorktreePointer, refreshIndex } from '../worktree/materialize-worktree.js';
import { repoId } from './schedule-units.js';
import { GRADUATED_PREFIX } from '../tier/graduated.js';

export { GRADUATED_PREFIX };
/** A change this far in the future is taken for clocks that disagree, not for a change now. */
const FUTURE_TOLERANCE_MS = 5 * 60e3;

export interface GraduateOptions {
  idleMs: number;
  now: number;
  dryRun: boolean;
  concurrency?: number;
}

export interface GraduateResult {
  repo: string;
  status: 'graduated' | 'would-graduate' | 'refused';
  reasons: string[];
  remote?: string;
  /** newest change found (ms since the epoch) */
  lastChange?: number;
  /** big files turned into pointers (or that would be) */
  files: number;
  /** working-tree bytes given back: the files' sizes less their pointers' */
  worktreeBytesFreed: number;
  /** local chunks dropped (verified on the remote first) and the bytes they took */
  chunks: number;
  storeBytesFreed: number;
  /** files left as they were (changed during the run, or content not provably on the remote) */
  skipped: { path: string; reason: string }[];
  /** where the reaper's record went */
  record?: string;
}

interface Marker {
  state: 'started' | 'done';
  at: number;
  remote: string;
}

function markerFile(repo: RepoPaths): string {
  return path.join(repo.ditsDir, 'graduate.json');
}

export function readMarker(repo: RepoPaths): Marker | null {
  try {
    return JSON.parse(fs.readFileSync(markerFile(repo), 'utf8')) as Marker;
  } catch {
    return null;
  }
}

function writeMarker(repo: RepoPaths, m: Marker | null): void {
  const file = markerFile(repo);
  if (!m) return fs.rmSync(file, { force: true });
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(m) + '\n');
  fs.renameSync(`${file}.tmp`, file);
}

async function git(workTree: string, args: string[]): Promise<string> {
  return (await runGit(args, { cwd: workTree })).stdout.toString('utf8');
}

/** Newest change: HEAD's commit time and every working-tree file's mtime; with each file's stat for later. */
async function scanChanges(workTree: string): Promise<{ newest: number; newestWhat: string; stats: Map<string, fs.Stats> }> {
  const head = await runGit(['log', '-1', '--format=%ct'], { cwd: workTree, allowFail: true });
  let newest = head.exitCode === 0 ? Number(head.stdout.toString().trim()) * 1000 : 0;
  let newestWhat = 'the last commit';
  const stats = new Map<string, fs.Stats>();
  const files = (await git(workTree, ['ls-files', '-z', '-co', '--exclude-standard'])).split('\0').filter(Boolean);
  for (const f of new Set(files)) {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(path.join(workTree, f));
    } catch {
      continue; // deleted: git status reports it
    }
    stats.set(f, st);
    if (st.mtimeMs > newest) {
      newest = st.mtimeMs;
      newestWhat = f;
    }
  }
  return { newest, newestWhat, stats };
}

async function branchProblems(workTree: string, remote: string): Promise<{ reasons: string[]; tips: string[] }> {
  const reasons: string[] = [];
  const tips: string[] = [];
  const out = await git(workTree, ['for-each-ref', '--format=%(refname:short)%00%(objectname)%00%(upstream)', 'refs/heads/']);
  for (const line of out.split('\n').filter(Boolean)) {
    const [name, oid, upstream] = line.split('\0') as [string, string, string];
    tips.push(oid);
    const tracking = upstream || `refs/remotes/${remote}/${name}`;
    const has = await runGit(['rev-parse', '--verify', '--quiet', `${tracking}^{commit}`], { cwd: workTree, allowFail: true });
    if (has.exitCode !== 0) {
      reasons.push(`branch ${name} was never pushed (no ${tracking.replace(/^refs\/remotes\//, '')})`);
      continue;
    }
    const ancestor = await runGit(['merge-base', '--is-ancestor', oid, tracking], { cwd: workTree, allowFail: true });
    if (ancestor.exitCode !== 0) {
      const ahead = (await git(workTree, ['rev-list', '--count', `${tracking}..${oid}`])).trim();
      reasons.push(`branch ${name} has ${ahead} unpushed commit(s) (ahead of ${tracking.replace(/^refs\/remotes\//, '')})`);
    }
  }
  return { reasons, tips };
}

const days = (ms: number): string => `${(ms / 86400e3).toFixed(ms < 86400e3 ? 2 : 0)} d`;

/** Graduates one repository (or says why not). Throws only for faults (a remote that cannot be read, the disk). */
export async function graduateRepo(dir: string, opts: GraduateOptions): Promise<GraduateResult> {
  const result: GraduateResult = { repo: dir, status: 'refused', reasons: [], files: 0, worktreeBytesFreed: 0, chunks: 0, storeBytesFreed: 0, skipped: [] };
  let repo: RepoPaths;
  try {
    repo = await findRepo(dir);
  } catch {
    result.reasons.push('not a git repository');
    return result;
  }
  result.repo = repo.workTree;
  if (!isDitsInitialised(repo)) {
    result.reasons.push('not a Dits repository (`git dits init` was never run)');
    return result;
  }
  const reasons = result.reasons;
  if (fs.existsSync(path.join(repo.workTree, '.keep-local'))) reasons.push('it has a .keep-local file');
  const marker = readMarker(repo);
  if (marker?.state === 'started') await refreshWrittenPointers(repo);
  const scan = await scanChanges(repo.workTree);
  result.lastChange = scan.newest;
  // a killed run is resumed without the idle check only if nothing changed since it started
  // (the pointers it wrote kept their files' mtimes); work done since is judged afresh
  const resuming = marker?.state === 'started' && scan.newest <= marker.at;
  if (!resuming) {
    if (scan.newest > opts.now + FUTURE_TOLERANCE_MS) reasons.push(`${scan.newestWhat} was changed at ${new Date(scan.newest).toISOString()}, after this machine's time ${new Date(opts.now).toISOString()} (clocks disagree?): not taken as idle`);
    else if (opts.now - scan.newest < opts.idleMs) reasons.push(`not idle: ${scan.newestWhat} changed ${days(Math.max(0, opts.now - scan.newest))} ago (${days(opts.idleMs)} asked)`);
  }
  const dirty = await git(repo.workTree, ['status', '--porcelain', '--untracked-files=no']);
  const dirtyLines = dirty.split('\n').filter(Boolean); // "XY path": not trimmed, X may be a space
  if (dirtyLines.length) reasons.push(`uncommitted changes: ${dirtyLines.length} file(s) (${dirtyLines.slice(0, 3).map((l) => l.slice(3)).join(', ')}${dirtyLines.length > 3 ? ', ...' : ''})`);
  const remote = await defaultDitsRemote(repo.workTree);
  if (!remote) {
    reasons.push('no Dits remote to hold its content');
    return result;
  }
  result.remote = remote.name;
  const branches = await branchProblems(repo.workTree, remote.name);
  reasons.push(...branches.reasons);
  if (reasons.length) return result;

  const storage = await openRemoteStorage(repo.workTree, remote.url);
  const { ids } = await manifestsBetween(repo.workTree, branches.tips, []);
  const onRemote = await manifestsOnRemote(storage, ids, opts.concurrency ?? 16);
  const missing = ids.filter((id) => !onRemote.has(id));
  if (missing.length) {
    reasons.push(`local-only content: ${missing.length} file version(s) the branches need are not on ${remote.name} (e.g. manifest ${missing[0]!.slice(0, 12)}): push them`);
    return result;
  }

  const store = ChunkStore.open(repo.ditsDir);
  try {
    if (!opts.dryRun) writeMarker(repo, { state: 'started', at: opts.now, remote: remote.name });
    const plan = await planPrune(store, storage, { remoteName: remote.name, olderThanMs: 0, now: opts.now + 1, keepManifestIds: [], verify: 'bytes', dryRun: opts.dryRun, concurrency: opts.concurrency });
    if (plan.notOnRemote) reasons.push(`local-only content: ${plan.notOnRemote} chunk(s) in the local store that ${remote.name} does not hold (push them; \`git dits gc\` drops those nothing needs)`);
    for (const f of plan.failedRemotePacks) reasons.push(`${f.chunks} chunk(s) fail verification on ${remote.name} (${f.packKey}: ${f.reason}): \`git dits prune --repair --older-than 0\` uploads good copies`);
    if (reasons.length) {
      if (!opts.dryRun && !resuming) writeMarker(repo, null);
      return result;
    }
    const files = await dehydrate(repo, store, plan, remote.name, storage.location, scan.stats, opts.dryRun);
    Object.assign(result, files);
    result.chunks = plan.chunks;
    result.storeBytesFreed = plan.freedBytes;
    if (opts.dryRun) {
      result.status = 'would-graduate';
      return result;
    }
    applyPrune(store, plan);
    result.record = await recordGraduation(storage, repo, { at: opts.now, lastChange: scan.newest, manifests: ids });
    writeMarker(repo, { state: 'done', at: opts.now, remote: remote.name });
    result.status = 'graduated';
    return result;
  } finally {
    store.close();
  }
}

async function dehydrate(
  repo: RepoPaths,
  store: ChunkStore,
  plan: PrunePlan,
  remoteName: string,
  location: string,
  stats: Map<string, fs.Stats>,
  dryRun: boolean,
): Promise<Pick<GraduateResult, 'files' | 'worktreeBytesFreed' | 'skipped'>> {
  const verified = new Set<string>();
  for (const p of plan.packs) for (const id of p.drop) verified.add(id.toString('latin1'));
  const index = store.remoteIndex(remoteName, location);
  const out = { files: 0, worktreeBytesFreed: 0, skipped: [] as { path: string; reason: string }[] };
  const written: { path: string; stat: fs.BigIntStats; expectedOid: string }[] = [];
  for (const e of await listIndexPointers(repo.workTree)) {
    if (e.stage !== 0) continue;
    const file = path.join(repo.workTree, e.path);
    const before = stats.get(e.path);
    if (!before || !before.isFile() || readWorktreePointer(file)) continue; // a pointer already (or gone)
    if (!store.hasManifest(e.pointer.manifest)) {
      out.skipped.push({ path: e.path, reason: 'its manifest is not in the local store' });
      continue;
    }
    const m = Manifest.parse(store.getManifestBytes(e.pointer.manifest));
    let unproved = 0;
    for (let i = 0; i < m.chunkCount; i++) {
      const id = m.idRawAt(i);
      // verified by the plan's read-back, or still local after it, or dropped by an earlier verified prune
      if (!verified.has(id.toString('latin1')) && !store.hasChunk(id) && !index.has(id)) unproved++;
    }
    if (unproved) {
      out.skipped.push({ path: e.path, reason: `${unproved} chunk(s) neither local nor on ${remoteName}` });
      continue;
    }
    const now = fs.lstatSync(file);
    if (now.size !== before.size || now.mtimeMs !== before.mtimeMs) {
      out.skipped.push({ path: e.path, reason: 'changed during the run' });
      continue;
    }
    // the blob's exact bytes: a version-1 pointer parses only from its one canonical text (no git process per file)
    const bytes = encodePointer(e.pointer);
    out.files++;
    out.worktreeBytesFreed += before.size - bytes.length;
    if (dryRun) continue;
    const tmp = tempFor(file);
    fs.writeFileSync(tmp, bytes, { mode: before.mode & 0o777 });
    fs.utimesSync(tmp, before.atime, before.mtime); // the file's own time: idle stays idle, and a resumed run sees no change
    fs.renameSync(tmp, file);
    written.push({ path: e.path, stat: fs.statSync(file, { bigint: true }), expectedOid: e.blobOid });
  }
  if (written.length) {
    // git takes a size change for a modification without reading the file: record the pointers' stat data
    await refreshIndex(repo, written);
    const dirty = await git(repo.workTree, ['status', '--porcelain', '--untracked-files=no']);
    if (dirty.trim()) throw new Error(`graduate: git status is not clean after writing pointers:\n${dirty}`);
  }
  return out;
}

function tempFor(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.dits-graduate`);
}

/** A run killed between writing pointers and refreshing the index left them showing as modified: record their stat data. */
async function refreshWrittenPointers(repo: RepoPaths): Promise<void> {
  const updates: { path: string; stat: fs.BigIntStats; expectedOid: string }[] = [];
  for (const e of await listIndexPointers(repo.workTree)) {
    if (e.stage !== 0) continue;
    const file = path.join(repo.workTree, e.path);
    fs.rmSync(tempFor(file), { force: true }); // a pointer being written when the run was killed
    const w = readWorktreePointer(file);
    if (w && w.pointer.oid === e.pointer.oid && w.pointer.manifest === e.pointer.manifest && w.pointer.size === e.pointer.size) {
      updates.push({ path: e.path, stat: fs.statSync(file, { bigint: true }), expectedOid: e.blobOid });
    }
  }
  if (updates.length) await refreshIndex(repo, updates);
}

async function recordGraduation(storage: ObjectStorage, repo: RepoPaths, r: { at: number; lastChange: number; manifests: string[] }): Promise<string> {
  const key = `${GRADUATED_PREFIX}${repoId(repo.workTree)}.json`;
  const body = { version: 1, tier: 'warm', graduatedAt: new Date(r.at).toISOString(), lastChange: new Date(r.lastChange).toISOString(), workTree: repo.workTree, manifests: r.manifests };
  await storage.put(key, Buffer.from(JSON.stringify(body) + '\n'));
  return key;
}

/** The repositories under `dir`: itself if it is one, else its direct subfolders that are. */
export function findRepositories(dir: string): string[] {
  if (fs.existsSync(path.join(dir, '.git'))) return [dir];
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [dir]; // reported as not a repository
  }
  const found = names.filter((n) => fs.existsSync(path.join(dir, n, '.git'))).map((n) => path.join(dir, n));
  return found.length ? found.sort() : [dir];
}

/**
 * After `git dits checkout` wrote the files back: forget the graduation here and take the
 * reaper's record away (the content is in use again). Returns the record removed, if any.
 */
export async function forgetGraduation(repo: RepoPaths): Promise<string | null> {
  const marker = readMarker(repo);
  if (!marker) return null;
  const remote = await defaultDitsRemote(repo.workTree, marker.remote).catch(() => null);
  let removed: string | null = null;
  if (remote) {
    const storage = await openRemoteStorage(repo.workTree, remote.url);
    const key = `${GRADUATED_PREFIX}${repoId(repo.workTree)}.json`;
    if (await storage.head(key)) {
      await storage.delete(key);
      removed = key;
    }
  }
  writeMarker(repo, null);
  return removed;
}
