/**
 * Content a checkout needs but the local store lacks comes from the repository's Dits
 * remotes: the one the last `git fetch`/`git pull` used (FETCH_HEAD), then dits.remote (else
 * origin), then the other dits:: remotes, each asked for what the ones before lacked. With dits.fetchMode=lazy
 * a checkout leaves such files as pointers until `git dits pull`; dits.fetchInclude /
 * dits.fetchExclude limit what a checkout fetches by itself.
 *
 * With `assemble`, files are written as their chunks arrive, and those chunks are not kept a
 * second time in the local store: the working tree holds the bytes, the remote holds the
 * chunks (each was just downloaded from it and verified), and the store records them as
 * remote-held, so adding an edited version stores only what changed. A clone of a terabyte
 * takes a terabyte, not two. `dits.keepLocalCopy=true` keeps the copy (for switching
 * versions offline) at twice the disk.
 *
 * Frozen content (packs in an archive class without a finished restore) does not stop a
 * checkout: every other file is fetched and written, the frozen ones stay pointers and are
 * listed in `report.frozen` (which files, their bytes, the packs they need) for the caller
 * to say what a thaw costs (tier/frozen-report.ts). Their temp files are removed, never
 * renamed into place: a file is written whole or not at all.
 *
 * Reads of a direct remote (file, S3) are recorded for the tier reaper
 * (tier/access-records.ts); the record goes up in the background (`report.accessSent`).
 */
import fs from 'node:fs';
import path from 'node:path';
import { readDitsConfig, type DitsConfig } from '../git/dits-config.js';
import type { RepoPaths } from '../git/repo.js';
import type { Pointer } from '../manifest/pointer.js';
import type { ChunkStore } from '../store/chunk-store.js';
import { contentPresent } from '../store/materialize.js';
import { defaultDitsRemote, listDitsRemotes, openRemoteStorage, type DitsRemote, type KnownConfig } from '../remote/open-remote.js';
import { DitsUserError, isUserError } from '../errors.js';
import { ensureLocal, fetchManifests } from '../remote/content/fetch-content.js';
import { FileAssembler } from '../store/assemble.js';
import { CODEC_NONE } from '../store/pack-format.js';
import { fillFromLinks } from './worktree-links.js';
import type { TransferProgress } from '../transfer/transfer-queue.js';
import { createPathFilter, parsePatternList } from './path-patterns.js';
import { Manifest } from '../manifest/manifest.js';
import type { FrozenPack } from '../remote/content/fetch-content.js';
import { accessRecorderFor } from '../tier/access-records.js';
import { tierStorageOf } from '../tier/tier-storage.js';
import type { ProviderName } from '../tier/tiers.js';

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
export function keepLocalCopy(config: DitsConfig): boolean {
  return config.bool('dits.keepLocalCopy', false);
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
  /** Files whose content is only in frozen packs (left as pointers), null when none. */
  frozen: FrozenFiles | null;
  /** Settles when the access record of this fetch was sent (or left in the journal); never rejects. */
  accessSent: Promise<void>;
}

/** Files a fetch left as pointers because their content is frozen on `remote`. */
export interface FrozenFiles {
  remote: string;
  location: string;
  /** the storage's tier provider (for the price table), null when it has no tiers of its own */
  provider: ProviderName | null;
  files: { path: string; bytes: number; packs: string[] }[];
  packs: FrozenPack[];
}

/** FETCH_HEAD younger than this names the remote a pull just fetched from (asked first). */
const FETCH_HEAD_FRESH_MS = 15 * 60 * 1000;

/**
 * The remote the last `git fetch` / `git pull` used, from FETCH_HEAD ("<oid> TAB [not-for-merge]
 * TAB <what> of <url>"), when it was written in the last few minutes (the post-merge hook of
 * `git pull server main` runs right after its fetch).
 */
export function lastFetchedRemote(gitDir: string, remotes: readonly DitsRemote[], now = Date.now()): DitsRemote | null {
  const file = path.join(gitDir, 'FETCH_HEAD');
  let text: string;
  try {
    if (now - fs.statSync(file).mtimeMs > FETCH_HEAD_FRESH_MS) return null;
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  for (const line of text.split('\n')) {
    const at = line.lastIndexOf(' of ');
    if (at < 0) continue;
    const url = comparableUrl(line.slice(at + 4).trim());
    const r = remotes.find((x) => comparableUrl(x.url) === url || x.name === url);
    if (r) return r;
  }
  return null;
}

/**
 * A URL as FETCH_HEAD writes it: git drops credentials (user:password@), trailing slashes and
 * a trailing ".git" (builtin/fetch.c), so both sides are compared that way, without `dits::`.
 */
export function comparableUrl(url: string): string {
  let u = url.startsWith('dits::') ? url.slice('dits::'.length) : url;
  u = u.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, '$1');
  u = u.replace(/\/+$/, '');
  if (u.endsWith('.git')) u = u.slice(0, -4);
  return u;
}

/**
 * The remotes to ask for content, in order. `explicit`: only that one. Otherwise the remote
 * the last fetch used (FETCH_HEAD, if fresh), then dits.remote / origin, then every other
 * dits:: remote: content follows the remote a pull named, and what one remote lacks is
 * looked for on the others.
 */
export async function contentRemotes(repo: RepoPaths, explicit?: string, known: KnownConfig = {}): Promise<DitsRemote[]> {
  if (explicit) {
    const r = await defaultDitsRemote(repo.workTree, explicit, known);
    return r ? [r] : [];
  }
  const all = known.remotes ?? (await listDitsRemotes(repo.workTree));
  const order: DitsRemote[] = [];
  const add = (r: DitsRemote | null | undefined): void => {
    if (r && !order.some((o) => o.name === r.name)) order.push(r);
  };
  add(lastFetchedRemote(repo.gitDir, all));
  add(await defaultDitsRemote(repo.workTree, undefined, { ...known, remotes: all }).catch(() => null));
  for (const r of all) add(r);
  return order;
}

/**
 * Makes the content of these pointers local, from the repository's dits:: remotes in the
 * order contentRemotes gives (or only `opts.remote`): each remote is asked for what the
 * ones before it did not provide. `policy` null means an explicit request (`git dits pull`):
 * everything asked for is fetched.
 */
export async function fetchMissingContent(
  repo: RepoPaths,
  store: ChunkStore,
  items: { path: string; pointer: Pointer }[],
  policy: FetchPolicy | null,
  onProgress?: (p: TransferProgress) => void,
  opts: { assemble?: boolean; remote?: string } = {},
): Promise<FetchReport> {
  const report: FetchReport = { fetched: [], deferred: [], remote: null, bytes: 0, keptLocally: true, prepared: new Map(), frozen: null, accessSent: Promise.resolve() };
  const missing = items.filter((i) => !contentPresent(store, i.pointer.manifest));
  if (missing.length === 0) return report;
  const filter = policy ? createPathFilter(policy.include, policy.exclude) : null;
  let wanted = missing.filter((i) => {
    const ok = !policy || (policy.mode === 'full' && filter!.matches(i.path));
    if (!ok) report.deferred.push(i.path);
    return ok;
  });
  if (wanted.length === 0) return report;
  // the remotes and the settings, read once (two git processes at once) for everything below
  const [config, all] = await Promise.all([readDitsConfig(repo.workTree), listDitsRemotes(repo.workTree)]);
  const remotes = await contentRemotes(repo, opts.remote, { config, remotes: all });
  if (remotes.length === 0) return report;
  const failures: { remote: string; error: DitsUserError }[] = [];
  const used: string[] = [];
  const sends: Promise<void>[] = [];
  let frozen: FrozenFiles | null = null;
  for (const remote of remotes) {
    try {
      const r = await fetchFromRemote(repo, store, remote, wanted, onProgress, opts, config, sends);
      for (const [dest, p] of r.prepared) report.prepared.set(dest, p);
      report.bytes += r.bytes;
      report.keptLocally &&= r.keptLocally;
      used.push(remote.name);
      if (r.frozen) {
        // the next remote may hold a readable copy of what is frozen here
        const still = new Set(r.frozen.files.map((f) => f.path));
        wanted = wanted.filter((w) => still.has(w.path));
        frozen ??= r.frozen;
        continue;
      }
      wanted = [];
      break;
    } catch (err) {
      // the next remote may hold it (content missing or damaged here, or this one unreachable)
      if (!isUserError(err)) throw err;
      failures.push({ remote: remote.name, error: err });
      const before = wanted.length;
      wanted = wanted.filter((w) => !contentPresent(store, w.pointer.manifest));
      if (wanted.length < before) used.push(remote.name);
    }
  }
  report.accessSent = Promise.all(sends).then(() => undefined);
  if (frozen) {
    // what is still wanted and frozen somewhere is reported as frozen, not as an error
    const fz = frozen;
    const left = new Set(wanted.map((w) => w.path));
    fz.files = fz.files.filter((f) => left.has(f.path));
    if (fz.files.length) {
      report.frozen = fz;
      const isFrozen = new Set(fz.files.map((f) => f.path));
      wanted = wanted.filter((w) => !isFrozen.has(w.path));
    }
  }
  report.remote = used.join(', ') || null;
  const frozenPaths = new Set(report.frozen?.files.map((f) => f.path) ?? []);
  report.fetched = missing.filter((m) => !report.deferred.includes(m.path) && !wanted.includes(m) && !frozenPaths.has(m.path)).map((m) => m.path);
  if (wanted.length) {
    if (failures.length === 1) {
      const f = failures[0]!;
      throw new DitsUserError(f.error.code, `${f.remote}: ${f.error.message}`, { hint: f.error.hint, exitCode: f.error.exitCode, cause: f.error });
    }
    throw new DitsUserError(
      'content-not-on-remotes',
      `content of ${wanted.length} file(s) (${wanted.slice(0, 3).map((w) => w.path).join(', ')}${wanted.length > 3 ? ', ...' : ''}) was found on none of the remotes asked: ${failures.map((f) => `${f.remote}: ${f.error.message}`).join('; ')}`,
      { hint: 'push it from a machine that has it, or name the remote that holds it: `git dits pull <remote>`' },
    );
  }
  return report;
}

/** Which of `items` need a chunk only `frozenPacks` hold (their manifests are local), and those packs. */
export function frozenFilesOf(
  store: ChunkStore,
  items: readonly { path: string; pointer: Pointer }[],
  frozenPacks: FrozenPack[],
  remoteName: string,
  storage: { location: string },
): FrozenFiles | null {
  const packOf = new Map<string, string>();
  for (const f of frozenPacks) for (const c of f.chunks) if (!packOf.has(c)) packOf.set(c, f.packId);
  const files: FrozenFiles['files'] = [];
  for (const w of items) {
    const m = Manifest.parse(store.getManifestBytes(w.pointer.manifest));
    const packs = new Set<string>();
    for (let i = 0; i < m.chunkCount; i++) {
      const p = packOf.get(m.idRawAt(i).toString('hex'));
      if (p !== undefined) packs.add(p);
    }
    if (packs.size) files.push({ path: w.path, bytes: w.pointer.size, packs: [...packs] });
  }
  if (files.length === 0) return null;
  const provider = tierStorageOf(storage as Parameters<typeof tierStorageOf>[0])?.tierProfile.name ?? null;
  return { remote: remoteName, location: storage.location, provider, files, packs: frozenPacks };
}

/** One remote's part of fetchMissingContent: everything in `wanted`, or an error. */
async function fetchFromRemote(
  repo: RepoPaths,
  store: ChunkStore,
  remote: DitsRemote,
  wanted: { path: string; pointer: Pointer }[],
  onProgress: ((p: TransferProgress) => void) | undefined,
  opts: { assemble?: boolean },
  config: DitsConfig,
  sends: Promise<void>[],
): Promise<{ prepared: Map<string, PreparedFile>; bytes: number; keptLocally: boolean; frozen: FrozenFiles | null }> {
  const storage = await openRemoteStorage(repo.workTree, remote.url, { config });
  const recorder = accessRecorderFor(repo.ditsDir, remote.url, storage.location, config);
  try {
    return await fetchFromStorage(repo, store, remote, storage, wanted, onProgress, opts, config, recorder ?? undefined);
  } finally {
    // sent in the background: the files are written meanwhile; a failed send stays journalled
    if (recorder) sends.push(recorder.flush(storage).then(() => undefined, () => undefined));
  }
}

async function fetchFromStorage(
  repo: RepoPaths,
  store: ChunkStore,
  remote: DitsRemote,
  storage: Awaited<ReturnType<typeof openRemoteStorage>>,
  wanted: { path: string; pointer: Pointer }[],
  onProgress: ((p: TransferProgress) => void) | undefined,
  opts: { assemble?: boolean },
  config: DitsConfig,
  access: import('../tier/access-records.js').AccessSink | undefined,
): Promise<{ prepared: Map<string, PreparedFile>; bytes: number; keptLocally: boolean; frozen: FrozenFiles | null }> {
  const manifestIds = [...new Set(wanted.map((w) => w.pointer.manifest))];
  let assembler: FileAssembler | null = null;
  if (opts.assemble) {
    // manifests first, so the files can be written as their chunks arrive
    await fetchManifests(storage, store, manifestIds, { remoteName: remote.name, access });
    assembler = new FileAssembler(
      store,
      wanted.map((w) => ({ dest: path.join(repo.workTree, w.path), pointer: w.pointer })),
    );
  }
  try {
    // the assembler of a checkout that keeps no second copy of what it fetches
    const noCopy = assembler && !keepLocalCopy(config) ? assembler : null;
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
    const r = await ensureLocal(storage, store, { manifestIds }, {
      remoteName: remote.name,
      onProgress,
      ...(assembler ? { chunkSink: assembler.put.bind(assembler) } : {}),
      ...(noCopy ? { storeChunk: (id: Buffer) => !noCopy.covers(id) } : {}),
      ...(fromLinks.size ? { have: (id: Buffer) => fromLinks.has(id.toString('hex')) } : {}),
      access,
      allowFrozen: true,
    });
    // a frozen file's temp cannot be completed: finish() removes it (never a half-written file)
    const prepared = assembler ? await assembler.finish() : new Map<string, PreparedFile>();
    const frozen = r.frozen.length ? frozenFilesOf(store, wanted, r.frozen, remote.name, storage) : null;
    for (const f of frozen?.files ?? []) {
      const dest = path.join(repo.workTree, f.path);
      const p = prepared.get(dest);
      if (p) {
        fs.rmSync(p.tmp, { force: true }); // (finish() cannot have completed it; never rename it in)
        prepared.delete(dest);
      }
    }
    return { prepared, bytes: r.bytes, keptLocally: noCopy === null, frozen };
  } catch (err) {
    assembler?.dispose();
    throw err;
  }
}
