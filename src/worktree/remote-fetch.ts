/**
 * Content a checkout needs but the local store lacks comes from the repository's Dits
 * remote (dits.remote, else origin, else the only dits:: remote). With dits.fetchMode=lazy
 * a checkout leaves such files as pointers until `git dits pull`; dits.fetchInclude /
 * dits.fetchExclude limit what a checkout fetches by itself.
 *
 * With `assemble`, files are written as their chunks arrive, and those chunks are not kept a
 * second time in the local store: the working tree holds the bytes, the remote holds the
 * chunks (each was just downloaded from it and verified), and the store records them as
 * remote-held, so adding an edited version stores only what changed. A clone of a terabyte
 * takes a terabyte, not two. `dits.keepLocalCopy=true` keeps the copy (for switching
 * versions offline) at twice the disk.
 */
import fs from 'node:fs';
import path from 'node:path';
import { readDitsConfig } from '../git/dits-config.js';
import type { RepoPaths } from '../git/repo.js';
import type { Pointer } from '../manifest/pointer.js';
import type { ChunkStore } from '../store/chunk-store.js';
import { contentPresent } from '../store/materialize.js';
import { defaultDitsRemote, openRemoteStorage } from '../remote/open-remote.js';
import { ensureLocal, fetchManifests } from '../remote/content/fetch-content.js';
import { FileAssembler } from '../store/assemble.js';
import { CODEC_NONE } from '../store/pack-format.js';
import { fillFromLinks } from './worktree-links.js';
import type { TransferProgress } from '../transfer/transfer-queue.js';
import { createPathFilter, parsePatternList } from './path-patterns.js';

export interface FetchPolicy {
  mode: 'full' | 'lazy';
  include: string[];
  exclude: string[];
}

export async function readFetchPolicy(cwd: string): Promise<FetchPolicy> {
  const config = await readDitsConfig(cwd);
  const mode = config.oneOf('dits.fetchMode', ['full', 'lazy'] as const, 'full');
  return { mode, include: parsePatternList(config.string('dits.fetchInclude')), exclude: parsePatternList(config.string('dits.fetchExclude')) };
}

/** dits.keepLocalCopy: keep fetched content in the local store as well as in the working tree. */
export async function readKeepLocalCopy(cwd: string): Promise<boolean> {
  return (await readDitsConfig(cwd)).bool('dits.keepLocalCopy', false);
}

export interface PreparedFile {
  tmp: string;
  pointer: Pointer;
}

/** Removes the prepared temp files nobody renamed into place. */
export function discardPrepared(prepared: Map<string, PreparedFile>): void {
  for (const p of prepared.values()) fs.rmSync(p.tmp, { force: true });
  prepared.clear();
}

export interface FetchReport {
  /** Paths whose content was fetched. */
  fetched: string[];
  /** Paths left out by the policy (lazy mode or include/exclude). */
  deferred: string[];
  remote: string | null;
  bytes: number;
  /** false when fetched content went only into the prepared files (not kept in the store) */
  keptLocally: boolean;
  /**
   * With `assemble`: files already written (in .git/dits/tmp) while fetching
   * (absolute destination -> temp file), for materializePaths to rename into place. The
   * caller removes what it did not use (discardPrepared).
   */
  prepared: Map<string, PreparedFile>;
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
  opts: { assemble?: boolean } = {},
): Promise<FetchReport> {
  const report: FetchReport = { fetched: [], deferred: [], remote: null, bytes: 0, keptLocally: true, prepared: new Map() };
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
  const manifestIds = [...new Set(wanted.map((w) => w.pointer.manifest))];
  let assembler: FileAssembler | null = null;
  if (opts.assemble) {
    // manifests first, so the files can be written as their chunks arrive
    await fetchManifests(storage, store, manifestIds, { remoteName: remote.name });
    assembler = new FileAssembler(
      store,
      wanted.map((w) => ({ dest: path.join(repo.workTree, w.path), pointer: w.pointer })),
    );
  }
  let r: Awaited<ReturnType<typeof ensureLocal>>;
  try {
    // the assembler of a checkout that keeps no second copy of what it fetches
    const noCopy = assembler && !(await readKeepLocalCopy(repo.workTree)) ? assembler : null;
    report.keptLocally = noCopy === null;
    let fromLinks = new Set<string>();
    if (noCopy) {
      // chunks the previous version of these files shares with the new one (worktree-links.ts)
      fromLinks = await fillFromLinks(store, {
        needs: (id) => noCopy.needs(id),
        put: (id, plain) => {
          // a file written the usual way reads it from the store
          if (!noCopy.covers(id)) store.putStoredChunk(id, CODEC_NONE, plain.length, plain);
          return noCopy.put(id, plain);
        },
      });
      store.commit();
    }
    r = await ensureLocal(storage, store, { manifestIds }, {
      remoteName: remote.name,
      onProgress,
      ...(assembler ? { chunkSink: assembler.put.bind(assembler) } : {}),
      ...(noCopy ? { storeChunk: (id: Buffer) => !noCopy.covers(id) } : {}),
      ...(fromLinks.size ? { have: (id: Buffer) => fromLinks.has(id.toString('hex')) } : {}),
    });
    if (assembler) report.prepared = await assembler.finish();
  } catch (err) {
    assembler?.dispose();
    throw err;
  }
  report.bytes = r.bytes;
  report.fetched = wanted.map((w) => w.path);
  return report;
}
