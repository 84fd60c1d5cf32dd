/**
 * Content a checkout needs but the local store lacks comes from the repository's Dits
 * remote (dits.remote, else origin, else the only dits:: remote). With dits.fetchMode=lazy
 * a checkout leaves such files as pointers until `git dits pull`; dits.fetchInclude /
 * dits.fetchExclude limit what a checkout fetches by itself.
 */
import { gitConfigMap } from '../git/exec.js';
import type { RepoPaths } from '../git/repo.js';
import type { Pointer } from '../manifest/pointer.js';
import type { ChunkStore } from '../store/chunk-store.js';
import { contentPresent } from '../store/materialize.js';
import { defaultDitsRemote, openRemoteStorage } from '../remote/open-remote.js';
import { ensureLocal } from '../remote/content/fetch-content.js';
import type { TransferProgress } from '../transfer/transfer-queue.js';
import { createPathFilter, parsePatternList } from './path-patterns.js';

export interface FetchPolicy {
  mode: 'full' | 'lazy';
  include: string[];
  exclude: string[];
}

export async function readFetchPolicy(cwd: string): Promise<FetchPolicy> {
  const kv = await gitConfigMap(cwd, '^dits\\.fetch');
  const mode = kv.get('dits.fetchmode') === 'lazy' ? 'lazy' : 'full';
  return { mode, include: parsePatternList(kv.get('dits.fetchinclude')), exclude: parsePatternList(kv.get('dits.fetchexclude')) };
}

export interface FetchReport {
  /** Paths whose content was fetched. */
  fetched: string[];
  /** Paths left out by the policy (lazy mode or include/exclude). */
  deferred: string[];
  remote: string | null;
  bytes: number;
}

/**
 * Makes the content of these pointers local, from the default remote. `policy` null means
 * an explicit request (`git dits pull`): everything asked for is fetched.
 */
export async function fetchMissingContent(
  repo: RepoPaths,
  store: ChunkStore,
  items: { path: string; pointer: Pointer }[],
  policy: FetchPolicy | null,
  onProgress?: (p: TransferProgress) => void,
): Promise<FetchReport> {
  const report: FetchReport = { fetched: [], deferred: [], remote: null, bytes: 0 };
  const missing = items.filter((i) => !contentPresent(store, i.pointer.manifest));
  if (missing.length === 0) return report;
  const filter = policy ? createPathFilter(policy.include, policy.exclude) : null;
  const wanted = missing.filter((i) => {
    const ok = !policy || (policy.mode === 'full' && filter!.matches(i.path));
    if (!ok) report.deferred.push(i.path);
    return ok;
  });
  if (wanted.length === 0) return report;
  const remote = await defaultDitsRemote(repo.workTree);
  if (!remote) return report;
  report.remote = remote.name;
  const storage = await openRemoteStorage(repo.workTree, remote.url);
  const r = await ensureLocal(storage, store, { manifestIds: [...new Set(wanted.map((w) => w.pointer.manifest))] }, { remoteName: remote.name, onProgress });
  report.bytes = r.bytes;
  report.fetched = wanted.map((w) => w.path);
  return report;
}
