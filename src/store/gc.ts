/**
 * Garbage collection of the local store: begun (beginGc), planned (pure over the index),
 * then applied. gc deletes only what it has proved unreachable (DESIGN.md, invariant 4):
 *
 * - Live = every chunk of every manifest the caller says is reachable (refs, reflogs,
 *   stash entries, every worktree's index and working-tree pointers, pending writes), plus
 *   anything younger than the grace period. A live manifest that cannot be read (corrupt,
 *   unreadable, missing pieces) decides nothing, so the plan lists it and applyGc refuses
 *   to run: the caller stops with an error naming it.
 * - A reachable manifest that is not here at all, and that a remote holds, is the remote's
 *   to keep; but which local chunks it uses cannot be told without it, so with any such
 *   manifest (`keepChunks`) no chunk is deleted at all (packs of dead writers and orphan
 *   files are still reclaimed).
 * - Writers (writer-lease.ts): a process that writes to the store, or looks up what it
 *   holds to skip storing it, may be about to refer to any chunk, however old. So chunks
 *   and manifests are deleted only in a write transaction that finds no writer alive and
 *   none that ended since gc began listing what is reachable (a writer that ended after
 *   that may have staged pointers gc did not see). SQLite serialises that transaction with
 *   a writer's lease, so the writer either shows up or looks up only after the deletion.
 * - A pack being written is never touched. A pack whose writer died or gave up (a partial
 *   pack) is reclaimed at once, whatever the grace: the bytes past its last indexed chunk
 *   belong to nobody.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Manifest } from '../manifest/manifest.js';
import { DitsUserError, errnoCode } from '../errors.js';
import type { ChunkStore } from './chunk-store.js';
import { leaseProcessAlive, type WriterLease } from './writer-lease.js';
import { pruneTreeCvs } from '../hashing/tree-cv.js';

export interface GcSession {
  /** When gc began (before the caller lists what is reachable). */
  since: number;
  /** gc's own row in store_writers. */
  lease: number;
  /** Writer rows whose process was already gone when gc began. */
  deadAtStart: Set<number>;
}

/**
 * Starts a gc: one at a time per store. Call before listing what is reachable, and end
 * with endGc (store.close() ends the lease too).
 */
export function beginGc(store: ChunkStore): GcSession {
  try {
    return beginGcIn(store);
  } catch (err) {
    if (errnoCode(err) !== 'SQLITE_FULL') throw err;
    throw new DitsUserError('disk-full', 'the disk is so full that gc cannot even record that it is running in the store index', {
      hint: 'free a few megabytes anywhere on that disk, then run `git dits gc` again (it then frees what failed adds left behind)',
      cause: err,
    });
  }
}

function beginGcIn(store: ChunkStore): GcSession {
  return store.writeTransaction(() => {
    const leases = store.leases();
    const other = leases.find((l) => l.kind === 'gc' && l.endedAt === null && leaseProcessAlive(l));
    if (other) {
      throw new DitsUserError('gc-running', `another \`git dits gc\` is running (process ${other.pid} on ${other.host}, since ${new Date(other.since).toISOString()})`, {
        hint: 'wait for it to finish, then run gc again',
      });
    }
    const deadAtStart = new Set(leases.filter((l) => l.kind === 'write' && l.endedAt === null && !leaseProcessAlive(l)).map((l) => l.id));
    const lease = store.enlistAsGc();
    return { since: Date.now(), lease, deadAtStart };
  });
}

export interface GcPlan {
  liveManifests: number;
  deadManifests: string[];
  /** Packs whose chunks are all dead, or that hold none: deleted. */
  deletePacks: { pack: number; chunks: number; bytes: number }[];
  /** Packs with some dead chunks: rewritten with the live ones. */
  rewritePacks: { pack: number; deadChunks: number; deadBytes: number; liveChunks: number }[];
  /** Partial packs of writers that died or gave up: cut back to their last indexed chunk. */
  partialPacks: { pack: number; tailBytes: number }[];
  /** Packs being written by a live process: left alone whatever the grace. */
  busyPacks: number[];
  /** Pack files on disk that the index does not know (left by a crash). */
  orphanPackFiles: string[];
  freedBytes: number;
  deadChunks: number;
  /** Chunks added after this time (ms) are kept whatever their liveness. */
  cutoff: number;
  /** Live manifests that are here but cannot be read or do not verify: gc must not run. */
  unreadableManifests: { id: string; reason: string }[];
  /** Live manifests that are not in the local store (the caller decides whether a remote holds them). */
  missingManifests: string[];
  /** Processes writing to the store when planned (gc then keeps every chunk and manifest). */
  writers: { pid: number; host: string; since: number }[];
  /**
   * File ids of the live manifests read, and those manifests' ids: their leaves' side files
   * (hashing/tree-cv.ts, a cache) stay; the others, older than the cutoff, go with the dead
   * manifests.
   */
  liveFileIds: Set<string>;
}

export function planGc(store: ChunkStore, liveManifestIds: Iterable<string>, opts: { graceMs: number; now?: number; session?: GcSession }): GcPlan {
  const now = opts.now ?? Date.now();
  const cutoff = now - opts.graceMs;
  const reachable = new Set(liveManifestIds);
  const live = new Set(reachable);
  let deadManifests: string[] = [];
  for (const id of [...store.listManifestIds()]) {
    const at = store.manifestAddedAt(id);
    if (at === null) continue; // just removed by someone else (if reachable, it is checked below)
    const young = at > cutoff;
    if (!live.has(id) && !young) {
      deadManifests.push(id);
      continue;
    }
    live.add(id);
  }
  const unreadableManifests: { id: string; reason: string }[] = [];
  const missingManifests: string[] = [];
  // the variants (proxies, posters, sprites) of every reachable original live with it: added
  // to `live` as the loop below reads the original's manifest (a Set visits what is added
  // while it is iterated), so no manifest is parsed twice
  const variants = store.hasVariants();
  const liveFileIds = new Set<string>();
  store.markLive((mark) => {
    for (const id of live) {
      // (only reachable ones decide: an unreachable young one that cannot be read could only
      // matter to a writer still running, and gc deletes nothing while one is)
      if (!store.hasManifest(id)) {
        if (reachable.has(id)) missingManifests.push(id);
        continue;
      }
      let m: Manifest;
      try {
        m = Manifest.parse(store.getManifestBytes(id));
      } catch (err) {
        if (reachable.has(id)) unreadableManifests.push({ id, reason: (err as Error).message });
        continue;
      }
      liveFileIds.add(m.header.oid);
      liveFileIds.add(id); // a big manifest's own leaves (ManifestStore.readFromStart)
      for (let i = 0; i < m.chunkCount; i++) mark(m.idRawAt(i));
      for (const piece of store.manifestPieceIds(id)) mark(piece);
      if (variants && reachable.has(id)) for (const v of store.variantsOf(m.header.oid)) if (v.status === 'ok' && v.manifest) live.add(v.manifest);
    }
  });
  if (variants) deadManifests = deadManifests.filter((id) => !live.has(id));

  const leases = store.leases();
  const liveWriters = leases.filter((l) => l.kind === 'write' && l.id !== opts.session?.lease && l.endedAt === null && leaseProcessAlive(l));
  // (gc's own store writes packs too: the pieces of large manifests it fetches)
  const liveWriterIds = new Set([...liveWriters.map((l) => l.id), ...(opts.session ? [opts.session.lease] : [])]);
  const packWriters = store.packWriters();
  const perPack = store.packUsage(cutoff);
  const plan: GcPlan = {
    liveManifests: live.size,
    deadManifests,
    deletePacks: [],
    rewritePacks: [],
    partialPacks: [],
    busyPacks: [],
    orphanPackFiles: [],
    freedBytes: 0,
    deadChunks: 0,
    cutoff,
    unreadableManifests,
    missingManifests,
    writers: liveWriters.map((l) => ({ pid: l.pid, host: l.host, since: l.since })),
    liveFileIds,
  };
  const known = new Set<string>();
  for (const p of perPack) {
    const file = store.packPath(p.pack);
    known.add(path.basename(file));
    const writer = packWriters.get(p.pack);
    if (writer !== undefined && liveWriterIds.has(writer)) {
      plan.busyPacks.push(p.pack);
      continue;
    }
    const partial = writer !== undefined; // its writer is gone: nothing more comes
    if (p.total === 0) {
      if (partial || p.created <= cutoff) plan.deletePacks.push({ pack: p.pack, chunks: 0, bytes: fileSize(file) });
      continue;
    }
    if (p.dead) {
      plan.deadChunks += p.dead;
      if (p.dead === p.total) plan.deletePacks.push({ pack: p.pack, chunks: p.total, bytes: fileSize(file) });
      else plan.rewritePacks.push({ pack: p.pack, deadChunks: p.dead, deadBytes: p.deadBytes + (partial ? Math.max(0, fileSize(file) - p.indexedEnd) : 0), liveChunks: p.total - p.dead });
      continue;
    }
    if (partial) plan.partialPacks.push({ pack: p.pack, tailBytes: Math.max(0, fileSize(file) - p.indexedEnd) });
  }
  const packDir = path.join(store.dir, 'packs');
  for (const f of fs.readdirSync(packDir)) {
    if (f.endsWith('.pack') && !known.has(f)) {
      const full = path.join(packDir, f);
      if (fs.statSync(full).mtimeMs <= cutoff) plan.orphanPackFiles.push(f);
    }
  }
  plan.freedBytes =
    plan.deletePacks.reduce((a, p) => a + p.bytes, 0) +
    plan.rewritePacks.reduce((a, p) => a + p.deadBytes, 0) +
    plan.partialPacks.reduce((a, p) => a + p.tailBytes, 0) +
    plan.orphanPackFiles.reduce((a, f) => a + fileSize(path.join(packDir, f)), 0);
  return plan;
}

function fileSize(f: string): number {
  try {
    return fs.statSync(f).size;
  } catch {
    return 0;
  }
}

export interface GcResult {
  /** Chunk rows deleted. */
  deletedChunks: number;
  deletedManifests: number;
  /** Bytes the store's packs and manifests shrank by. */
  freedBytes: number;
  /** Why chunks and manifests that look unused were kept, if they were. */
  kept: null | { reason: 'writers'; writers: { pid: number; host: string; since: number }[] } | { reason: 'manifests-not-here' };
}

/**
 * Applies a plan. `keepChunks`: delete no chunk or manifest (a live manifest is not here,
 * so what it uses cannot be told); packs of dead writers and orphan files still go.
 */
export function applyGc(store: ChunkStore, plan: GcPlan, session: GcSession, opts: { keepChunks?: boolean } = {}): GcResult {
  if (plan.unreadableManifests.length) throw new Error('applyGc: the plan has live manifests that cannot be read; gc must stop');
  const sizeBefore = storeBytes(store);
  const isLive = store.liveTest();
  const result: GcResult = { deletedChunks: 0, deletedManifests: 0, freedBytes: 0, kept: null };
  /** rows deleted per pack */
  const lost = new Map<number, number>();
  const touched = new Set<number>([...plan.deletePacks.map((p) => p.pack), ...plan.rewritePacks.map((p) => p.pack), ...plan.partialPacks.map((p) => p.pack)]);

  // Phase 1, one write transaction: no writer can take a lease (and so look anything up)
  // while it runs; chunk rows and manifests go only if none is running or ended meanwhile.
  store.writeTransaction(() => {
    const all = store.leases();
    // gc rows of gcs that are gone
    for (const l of all) if (l.kind === 'gc' && l.id !== session.lease && (l.endedAt !== null || !leaseProcessAlive(l))) store.dropLease(l.id);
    const leases = all.filter((l) => l.kind === 'write' && l.id !== session.lease);
    const blockers: WriterLease[] = [];
    const stale: number[] = [];
    for (const l of leases) {
      if (l.endedAt !== null) {
        if (l.endedAt >= session.since) blockers.push(l);
        else stale.push(l.id);
      } else if (leaseProcessAlive(l)) blockers.push(l);
      else if (!session.deadAtStart.has(l.id)) blockers.push(l); // died while gc listed: it may have staged pointers gc did not see
      else stale.push(l.id);
    }
    for (const id of stale) store.dropLease(id);
    if (blockers.length) {
      result.kept = { reason: 'writers', writers: blockers.map((l) => ({ pid: l.pid, host: l.host, since: l.since })) };
      return;
    }
    if (opts.keepChunks) {
      result.kept = { reason: 'manifests-not-here' };
      return;
    }
    for (const id of plan.deadManifests) {
      store.deleteManifest(id);
      result.deletedManifests++;
    }
    const dead = store.deleteDeadChunks(plan.cutoff);
    for (const r of dead) {
      touched.add(r.pack);
      lost.set(r.pack, (lost.get(r.pack) ?? 0) + 1);
    }
    result.deletedChunks = dead.length;
    store.dropRemoteHeld(isLive, plan.cutoff);
  });

  // Phase 2: packs. Nothing here deletes an index row: live chunks move to new packs.
  const packWriters = store.packWriters();
  const liveWriterIds = new Set([session.lease, ...store.leases().filter((l) => l.kind === 'write' && l.endedAt === null && leaseProcessAlive(l)).map((l) => l.id)]);
  for (const pack of touched) {
    const writer = packWriters.get(pack);
    if (writer !== undefined && liveWriterIds.has(writer)) continue; // being written
    let file: string;
    try {
      file = store.packPath(pack);
    } catch {
      continue; // gone already
    }
    const { n, end } = store.packRows(pack);
    const lostRows = (lost.get(pack) ?? 0) > 0;
    if (n === 0 || lostRows) store.rewritePack(pack, () => true); // what is left is live: nothing dropped here
    else if (writer !== undefined && fileSize(file) > end) cutTail(file, end); // a dead writer's tail
    if (writer !== undefined) store.unlinkPackWriter(pack);
  }
  for (const f of plan.orphanPackFiles) fs.rmSync(path.join(store.dir, 'packs', f), { force: true });
  if (result.kept === null) pruneTreeCvs(store.dir, plan.liveFileIds, plan.cutoff);
  store.dropReadHandles();
  result.freedBytes = Math.max(0, sizeBefore - storeBytes(store));
  return result;
}

/** Cuts a pack file back to `end` (the end of its last indexed chunk); packs are read-only files. */
function cutTail(file: string, end: number): void {
  const mode = fs.statSync(file).mode & 0o777;
  fs.chmodSync(file, mode | 0o200);
  try {
    fs.truncateSync(file, end);
  } finally {
    fs.chmodSync(file, mode);
  }
}

/** Bytes of the store's packs and manifests. */
function storeBytes(store: ChunkStore): number {
  let n = 0;
  const packDir = path.join(store.dir, 'packs');
  for (const f of fs.readdirSync(packDir)) n += fileSize(path.join(packDir, f));
  n += store.manifestBytes();
  return n;
}
