/**
 * applyTierPlan: carries out a plan made right before from a freshly synced catalog.
 *
 * - 'mark': writes `v1/tier/pending/<packId>.json` ({ tier, markedAt }) and notes it in
 *   the catalog; nothing moves. A later run moves the pack once the grace period passed
 *   and it is still eligible with the manifests pushed meanwhile counted.
 * - 'move': HEADs the pack (it must exist, with its listed size; a pack already in the
 *   target class, moved by a run killed before it recorded, is only recorded), changes its
 *   class in place (`setStorageClass`, or `setTags` in lifecycle mode), records the move in
 *   the catalog, then deletes the pending marker. Never a re-upload, never a delete of a
 *   pack: a run killed at any point leaves every object readable at its one key, and the
 *   next run (sync, plan, apply) continues where it stopped.
 * - 'unmark': deletes a marker whose pack is no longer eligible (it gained a user).
 * - 'wait': nothing (grace not over).
 */
import { packKey } from '../remote/content/layout.js';
import type { ObjectStorage } from '../transfer/object-storage.js';
import type { TierCatalog } from './catalog.js';
import { pendingKey } from './catalog-sync.js';
import type { TierPlan, PackMove } from './plan.js';
import type { TierStorage } from './tier-storage.js';
import { DitsUserError } from '../errors.js';

export interface ApplyProgress {
  done: number;
  total: number;
  bytes: number;
}

export interface ApplyOptions {
  onProgress?: (p: ApplyProgress) => void;
  signal?: AbortSignal;
  /** time written into markers and the moves log (default: the plan's `now`) */
  now?: number;
  mode?: 'copy' | 'lifecycle';
  /** class changes at once (default 4) */
  concurrency?: number;
  dryRun?: boolean;
}

export interface ApplyResult {
  marked: number;
  moved: number;
  movedBytes: number;
  unmarked: number;
  waiting: number;
  /** moves found already done on the storage (a run killed before it recorded) */
  alreadyDone: number;
  /** packs skipped because the storage no longer has them as listed */
  skipped: { packId: string; reason: string }[];
  dryRun: boolean;
}

export async function applyTierPlan(storage: ObjectStorage & TierStorage, catalog: TierCatalog, plan: TierPlan, opts: ApplyOptions = {}): Promise<ApplyResult> {
  const now = opts.now ?? plan.now;
  const mode = opts.mode ?? 'copy';
  const result: ApplyResult = { marked: 0, moved: 0, movedBytes: 0, unmarked: 0, waiting: 0, alreadyDone: 0, skipped: [], dryRun: !!opts.dryRun };
  if (!plan.tiered) return result;
  if (mode === 'lifecycle' && typeof storage.setTags !== 'function') {
    throw new DitsUserError('tier-lifecycle-unsupported', `${storage.location} cannot tag objects: dits.tier.mode = lifecycle works on S3 only`, {
      hint: 'unset dits.tier.mode (copy is the default) or use an S3 remote',
    });
  }
  const todo: number[] = [];
  for (let i = 0; i < plan.moves.length; i++) {
    const phase = plan.moves.phaseAt(i);
    if (phase === 'wait') result.waiting++;
    else todo.push(i);
  }
  if (opts.dryRun) {
    for (const i of todo) {
      const p = plan.moves.phaseAt(i);
      if (p === 'mark') result.marked++;
      else if (p === 'unmark') result.unmarked++;
      else {
        result.moved++;
        result.movedBytes += plan.moves.at(i).size;
      }
    }
    return result;
  }
  let done = 0;
  let bytes = 0;
  let next = 0;
  // marker deletes one at a time: they are tiny next to a pack's copy, and some S3-compatible
  // servers (s3rver) corrupt their store on concurrent deletes in one folder
  let deletes: Promise<void> = Promise.resolve();
  const deleteMarker = (packId: string): Promise<void> => {
    const d = deletes.then(() => storage.delete(pendingKey(packId)));
    deletes = d.catch(() => undefined);
    return d;
  };
  const total = todo.length;
  const one = async (m: PackMove): Promise<void> => {
    const key = packKey(m.packId);
    if (m.phase === 'mark') {
      await storage.put(pendingKey(m.packId), Buffer.from(JSON.stringify({ v: 1, tier: m.toTier, markedAt: now })), { contentType: 'application/json' });
      catalog.setPending(m.packId, m.toTier, now);
      result.marked++;
      return;
    }
    if (m.phase === 'unmark') {
      await deleteMarker(m.packId);
      catalog.clearPending(m.packId);
      result.unmarked++;
      return;
    }
    // move: the object as it is now
    const state = await storage.tierState(key);
    if (state === null || state.size !== m.size) {
      result.skipped.push({ packId: m.packId, reason: state === null ? 'no longer on the remote' : `has ${state.size} bytes, the catalog says ${m.size}` });
      return;
    }
    if (state.storageClass === m.toClass) {
      result.alreadyDone++;
    } else {
      if (state.storageClass !== m.fromClass) {
        result.skipped.push({ packId: m.packId, reason: `is in ${state.storageClass} now, not ${m.fromClass} (changed since the sync): the next run plans it again` });
        return;
      }
      if (mode === 'lifecycle') await storage.setTags!(key, { 'dits-tier': m.toTier });
      else await storage.setStorageClass(key, m.toClass, { size: m.size });
    }
    catalog.recordMove(m.packId, m.fromClass, m.toClass, now, mode === 'lifecycle' ? 'tags' : 'copy', m.toTier);
    await deleteMarker(m.packId);
    result.moved++;
    result.movedBytes += m.size;
    bytes += m.size;
  };
  // on the first failure no new work starts, and the moves in flight finish (and are
  // recorded) before the error is thrown: nothing runs on after the caller closes the catalog
  let failure: { error: unknown } | null = null;
  const worker = async (): Promise<void> => {
    while (next < todo.length && failure === null) {
      if (opts.signal?.aborted) {
        failure ??= { error: opts.signal.reason };
        return;
      }
      const m = plan.moves.at(todo[next++]!);
      try {
        await one(m);
      } catch (error) {
        failure ??= { error };
        return;
      }
      done++;
      opts.onProgress?.({ done, total, bytes });
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.concurrency ?? 4, todo.length) }, worker));
  if (failure !== null) throw (failure as { error: unknown }).error;
  return result;
}

/**
 * The storage's own clock: writes a tiny object and reads back its LastModified. A client
 * clock years ahead would otherwise make everything look unused; the reaper plans with
 * this time instead, and says when the two differ.
 */
export async function storageClock(storage: ObjectStorage & TierStorage, clientNow: number): Promise<number> {
  const key = 'v1/tier/clock.json';
  await storage.put(key, Buffer.from(JSON.stringify({ v: 1, clientAt: clientNow })), { contentType: 'application/json' });
  for await (const o of storage.listTiered(key)) if (o.key === key) return o.lastModified;
  throw new Error(`${storage.location}: wrote ${key} but the listing does not show it`);
}
