/**
 * Keep-hot for the server's scheduled reaper, from the git data the server stores.
 *
 * The server has no working clone, but each repository's storage holds its git side (the
 * `v1/refs` object and one bundle per push, src/remote/remote-state.ts). A bare cache per
 * repository, `<dataDir>/tier/git/<owner>/<repo>.git`, gets the bundles not applied yet
 * (a bundle whose tips are all there is skipped, so each night fetches only new pushes) and
 * its refs set from the refs object; then the keep-hot patterns resolve on its branches
 * (computeKeepHot with bareRefs) to the manifests named by the pointers in the trees.
 *
 * Patterns: the server's policy (`tierPolicy.keepHot`; none: the default branch, i.e. the
 * refs object's HEAD, else main, else master) plus those a client published with its list
 * (`v1/tier/keep-hot.json`). A version either list names is kept hot: the computed one
 * covers a list published before a revert or a new default branch, the published one a
 * client's patterns the server could not resolve.
 *
 * Git data that cannot be read (a damaged or missing bundle, a ref naming an object no
 * bundle holds) throws KeepHotUnreadable: the repository's run is skipped and logged, and
 * nothing moves on a partial view of what the team needs. A cache that fails to update is
 * first built again from scratch (the cache, not the storage, may be what is damaged).
 */
import fs from 'node:fs';
import path from 'node:path';
import { runGit } from '../src/git/exec.js';
import { applyMissingBundles, presentObjects } from '../src/remote/git-bundles.js';
import { readRefState, type RefState } from '../src/remote/remote-state.js';
import { bareRefs, computeKeepHot, readPublishedKeepHot } from '../src/tier/keep-hot.js';
import type { ObjectStorage } from '../src/transfer/object-storage.js';

export class KeepHotUnreadable extends Error {
  readonly code = 'tier-keep-hot-unreadable';
}

/** The cache does not hold what the refs object names (damaged, or a bundle lacks it). */
class CacheDamaged extends Error {
  readonly code = 'git-failed';
}

/** The bare cache of a repository's git data: `<dataDir>/tier/git/<owner>/<repo>.git`. */
export function tierGitCacheDir(dataDir: string, repo: string): string {
  return `${path.join(dataDir, 'tier', 'git', ...repo.split('/'))}.git`;
}

const QUIET = ['-c', 'core.hooksPath=/dev/null'];

/**
 * Brings the bare cache at `gitDir` up to the storage's refs object: applies the bundles
 * not applied yet, then sets every ref (and HEAD) as the refs object says, deleting refs it
 * no longer names. Returns the refs object and how many bundles were applied.
 */
export async function syncGitCache(storage: ObjectStorage, gitDir: string): Promise<{ state: RefState; applied: number }> {
  if (!(await isBareRepoAt(gitDir))) {
    // none yet, or not a repository any more (git would otherwise look in the folders above)
    fs.rmSync(gitDir, { recursive: true, force: true });
    fs.mkdirSync(path.dirname(gitDir), { recursive: true });
    await runGit(['init', '-q', '--bare', gitDir], { cwd: path.dirname(gitDir) });
  }
  const { state } = await readRefState(storage);
  const present = await presentObjects(gitDir, [...new Set(state.bundles.flatMap((b) => b.tips))]);
  const applied = await applyMissingBundles(gitDir, storage, state.bundles, present, path.join(gitDir, 'dits-tmp'));
  const have = (await runGit(['for-each-ref', '--format=%(refname)', 'refs/'], { cwd: gitDir })).stdout.toString('utf8').split('\n').filter(Boolean);
  const lines = [...Object.entries(state.refs).map(([name, oid]) => `update ${name} ${oid}\n`), ...have.filter((r) => !(r in state.refs)).map((r) => `delete ${r}\n`)];
  if (lines.length) await runGit([...QUIET, 'update-ref', '--no-deref', '--stdin'], { cwd: gitDir, input: lines.join('') });
  if (state.head && state.refs[state.head]) await runGit(['symbolic-ref', 'HEAD', state.head], { cwd: gitDir });
  // every ref's object readable here, and each branch a commit (a damaged cache would
  // otherwise look like a repository without them: nothing known, or less kept hot)
  const tips = Object.entries(state.refs);
  const readable = await presentObjects(gitDir, [...new Set(tips.map(([, oid]) => oid))]);
  const unreadable = tips.filter(([, oid]) => !readable.has(oid)).map(([name]) => name);
  for (const [name] of tips) if (name.startsWith('refs/heads/') && !unreadable.includes(name) && (await runGit(['rev-parse', '--verify', '--quiet', `${name}^{tree}`], { cwd: gitDir, allowFail: true })).exitCode !== 0) unreadable.push(name);
  if (unreadable.length) throw new CacheDamaged(`the objects of ${unreadable.slice(0, 3).join(', ')}${unreadable.length > 3 ? ', ...' : ''} cannot be read after applying every bundle`);
  return { state, applied };
}

/** Whether `gitDir` is itself a bare repository (not a folder inside another one). */
async function isBareRepoAt(gitDir: string): Promise<boolean> {
  if (!fs.existsSync(path.join(gitDir, 'HEAD'))) return false;
  const r = await runGit(['rev-parse', '--absolute-git-dir'], { cwd: gitDir, allowFail: true });
  return r.exitCode === 0 && r.stdout.toString('utf8').trim() === fs.realpathSync(gitDir);
}

export interface ServerKeepHot {
  /** the manifests to keep hot; null when nothing is known (no default branch, no published list): nothing may move */
  manifests: Set<string> | null;
  /** for the round's log line */
  summary: { defaultBranch: string | null; bundlesApplied: number; computed: number; published: number | null; publishedAt: string | null; patterns: string[]; unresolved: string[] };
}

/**
 * The keep-hot manifests of one repository: computed from its git data, united with the
 * published list. Throws KeepHotUnreadable when the git data cannot be read.
 */
export async function serverKeepHot(storage: ObjectStorage, gitDir: string, serverPatterns: readonly string[], now: number): Promise<ServerKeepHot> {
  const published = await readPublishedKeepHot(storage);
  const patterns = [...new Set([...(serverPatterns.length ? serverPatterns : ['(default branch)']), ...(published?.patterns ?? [])])];
  // '(default branch)' is computeKeepHot's name of the default branch among other patterns
  const once = async () => {
    const synced = await syncGitCache(storage, gitDir);
    const refs = await bareRefs(gitDir, synced.state.head);
    return { synced, refs, computed: await computeKeepHot(gitDir, refs, patterns, now) };
  };
  const hadCache = fs.existsSync(gitDir);
  let done: Awaited<ReturnType<typeof once>>;
  try {
    done = await once();
  } catch (first) {
    // git failed: the cache itself may be what is damaged (a disk error, a restored copy of
    // the data dir): built again from the storage once; damage in the storage fails the
    // same way again (a storage error, a network cut, is not the cache's: no rebuild)
    try {
      if (!hadCache || (first as { code?: string }).code !== 'git-failed') throw first;
      fs.rmSync(gitDir, { recursive: true, force: true });
      done = await once();
    } catch (err) {
      throw new KeepHotUnreadable(`cannot read the git data of ${storage.location} to tell which files must stay hot, so nothing was moved: ${(err as Error).message}`);
    }
  }
  const { synced, refs, computed } = done;
  // as `git dits tier apply` decides: with no pattern set, the default branch must be known;
  // a named pattern that resolves to nothing (a branch deleted) is said in the summary
  const known = Object.keys(synced.state.refs).length > 0 && (serverPatterns.length > 0 || refs.defaultRef !== null);
  const manifests = known || published ? new Set([...(known ? computed.manifests : []), ...(published?.manifests ?? [])]) : null;
  return {
    manifests,
    summary: {
      defaultBranch: refs.defaultRef,
      bundlesApplied: synced.applied,
      computed: known ? computed.manifests.length : 0,
      published: published ? published.manifests.size : null,
      publishedAt: published ? new Date(published.at).toISOString() : null,
      patterns,
      unresolved: computed.resolved.filter((r) => r.ref === null).map((r) => `${r.pattern}: ${r.note ?? 'not found'}`),
    },
  };
}
