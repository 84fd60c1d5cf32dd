/**
 * The plan of a thaw (pure of side effects on the remote: listings, HEADs and reads of hot
 * objects only): which packs the chosen files need restored, what they are now, and what
 * restoring them costs per retrieval tier.
 *
 * A file needs the chunks its manifest lists (with a time range: only those holding the
 * range and the container's index, time-range.ts). A chunk needs nothing when the local
 * store has it or any remote copy of it is readable now (a pack in a class that needs no
 * restore, or one whose restore finished); a chunk whose every copy is archived is covered
 * by one of its packs, preferring a pack already being restored, then one already chosen,
 * so a restore is never asked for a pack whose chunks are all readable elsewhere.
 *
 * Nothing here trusts the local clock: a pack is restored when the provider says the
 * restore is not ongoing (HEAD's `x-amz-restore`), whatever the expiry date says.
 */
import { DitsUserError } from '../errors.js';
import { Manifest } from '../manifest/manifest.js';
import type { RandomAccessReader } from '../media/random-access-reader.js';
import { isMediaStructure } from '../media/media-structure.js';
import { MediaParseError } from '../media/mp4-boxes.js';
import { ensureLocal, fetchManifests } from '../remote/content/fetch-content.js';
import { packKey, PACKS_PREFIX, parsePackKey } from '../remote/content/layout.js';
import { syncRemoteIndex } from '../remote/content/sync-remote-index.js';
import type { ChunkStore } from '../store/chunk-store.js';
import type { RemoteIndex } from '../store/remote-index.js';
import type { ObjectStorage } from '../transfer/object-storage.js';
import { restoreCost, restoreTiers, type PriceTable, type RestoreEstimate } from './prices.js';
import type { ObjectTierState, TierStorage } from './tier-storage.js';
import { needsRestore, RETRIEVAL_TIERS, type RetrievalTier } from './tiers.js';
import { chunkAt, chunkStarts, chunksForExtents, formatClock, indexWindow, rangeExtents, type TimeRange } from './time-range.js';

export interface ThawTarget {
  path: string;
  manifest: string;
  range?: TimeRange;
}

export type PackThawState = 'frozen' | 'restoring' | 'restored' | 'readable';

export interface ThawPack {
  packId: string;
  key: string;
  size: number;
  storageClass: string;
  state: PackThawState;
  /** restored copies: when the provider removes them (its clock), ms since epoch */
  expiry?: number;
}

export interface ThawFile {
  path: string;
  manifest: string;
  /** the file's size */
  bytes: number;
  /** bytes of the needed chunks that are in archived packs with no restore finished */
  frozenBytes: number;
  /** packs this file waits for (to restore, or restoring) */
  packs: string[];
  range?: TimeRange;
  /**
   * 'index': a time range whose container index is itself frozen: this thaw restores the
   * packs holding the index; the range's own packs are known (and thawed) once it is read.
   */
  stage?: 'index';
  /** chunks of the file needed (all, or those of the range) */
  neededChunks: number;
}

export interface ThawPlan {
  files: ThawFile[];
  /** the packs the files wait for: 'frozen' ones are to restore, the others are under way or done */
  packs: ThawPack[];
  /** paths whose needed content is readable now (nothing to thaw, nothing to pay) */
  notFrozen: string[];
  /** per storage class of the frozen packs, per retrieval tier offered there */
  estimates: RestoreEstimate[];
  days: number;
}

export interface PlanThawOptions {
  remoteName: string;
  prices: PriceTable;
  /** days the restored copies stay (what the estimate charges for) */
  days: number;
  /** HEADs in flight at once (default 16) */
  concurrency?: number;
  /** list the remote's packs first (default true; false trusts the local cache) */
  sync?: boolean;
}

/** Thrown by the chunk reader of a range when a chunk it needs has no readable copy. */
class FrozenChunkError extends Error {
  constructor(readonly index: number) {
    super(`chunk ${index} is frozen`);
  }
}

export async function planThaw(storage: ObjectStorage & TierStorage, store: ChunkStore, targets: readonly ThawTarget[], opts: PlanThawOptions): Promise<ThawPlan> {
  if (opts.sync !== false) await syncRemoteIndex(storage, store, opts.remoteName);
  const index = store.remoteIndex(opts.remoteName, storage.location);
  await fetchManifests(storage, store, new Set(targets.map((t) => t.manifest)), { remoteName: opts.remoteName });

  // the class of every pack, from one listing
  const classes = new Map<string, string>();
  const sizes = new Map<string, number>();
  for await (const o of storage.listTiered(PACKS_PREFIX)) {
    const k = parsePackKey(o.key);
    if (k?.kind !== 'pack') continue;
    classes.set(k.packId, o.storageClass);
    sizes.set(k.packId, o.size);
  }
  const profile = storage.tierProfile;
  const states = new Map<string, ObjectTierState | null>();
  const limit = opts.concurrency ?? 16;
  /** HEADs of the archived packs among `packIds` not asked yet */
  const headAll = async (packIds: Iterable<string>): Promise<void> => {
    const todo = [...new Set(packIds)].filter((p) => !states.has(p) && needsRestore(profile, classes.get(p)));
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(limit, todo.length) }, async () => {
        while (next < todo.length) {
          const p = todo[next++]!;
          states.set(p, await storage.tierState(packKey(p)));
        }
      }),
    );
  };
  const stateOf = (packId: string): PackThawState => {
    if (!needsRestore(profile, classes.get(packId))) return 'readable';
    const s = states.get(packId);
    if (!s) return 'frozen'; // not asked yet (or gone since the listing)
    if (!needsRestore(profile, s.storageClass)) return 'readable';
    if (s.restore === null) return 'frozen';
    return s.restore.ongoing ? 'restoring' : 'restored';
  };

  const chosen = new Map<string, ThawPack>();
  const files: ThawFile[] = [];
  const notFrozen: string[] = [];
  for (const t of targets) {
    const manifest = Manifest.parse(store.getManifestBytes(t.manifest));
    let wanted: Iterable<number>;
    let stage: 'index' | undefined;
    if (t.range) {
      const r = await rangeChunks(storage, store, index, manifest, t, opts, classes, headAll, stateOf);
      wanted = r.chunks;
      stage = r.stage;
    } else wanted = Array.from({ length: manifest.chunkCount }, (_, i) => i);
    const result = await coverChunks(store, index, t.path, manifest, wanted, classes, sizes, headAll, stateOf, chosen);
    const file: ThawFile = { path: t.path, manifest: t.manifest, bytes: manifest.header.size, frozenBytes: result.frozenBytes, packs: [...result.packs], neededChunks: result.needed };
    if (t.range) file.range = t.range;
    if (stage) file.stage = stage;
    if (result.packs.size === 0 && !stage) notFrozen.push(t.path);
    else files.push(file);
  }
  const packs = [...chosen.values()].sort((a, b) => a.packId.localeCompare(b.packId));
  return { files, packs, notFrozen, estimates: estimateRestore(opts.prices, packs, opts.days), days: opts.days };
}

/**
 * Which packs cover the chunks `wanted` of `manifest`: adds them to `chosen`, returns the
 * packs this file waits for and the bytes of its chunks that are frozen.
 */
async function coverChunks(
  store: ChunkStore,
  index: RemoteIndex,
  displayPath: string,
  manifest: Manifest,
  wanted: Iterable<number>,
  classes: Map<string, string>,
  sizes: Map<string, number>,
  headAll: (packIds: Iterable<string>) => Promise<void>,
  stateOf: (packId: string) => PackThawState,
  chosen: Map<string, ThawPack>,
): Promise<{ packs: Set<string>; frozenBytes: number; needed: number }> {
  // (latin1 keys: 32 characters a chunk, not 64 as hex: a 50 GB file has ~800,000 chunks)
  const seen = new Set<string>();
  const todo: { idRaw: Buffer; length: number; packs: string[] }[] = [];
  let needed = 0;
  for (const i of wanted) {
    needed++;
    const idRaw = manifest.idRawAt(i);
    const key = idRaw.toString('latin1');
    if (seen.has(key)) continue;
    seen.add(key);
    if (store.hasChunk(idRaw)) continue;
    const locs = index.locations(idRaw);
    if (locs.length === 0) {
      throw new DitsUserError('remote-content-missing', `${displayPath}: chunk ${idRaw.toString('hex')} is in no pack of the remote`, {
        hint: 'push the file from a machine that has it (`git push` uploads what the remote lacks); nothing to thaw for it here',
      });
    }
    todo.push({ idRaw, length: manifest.lengthAt(i), packs: locs.map((l) => l.packId) });
  }
  // readable-class copies need no HEAD; only chunks with every copy archived ask for states
  const archivedOnly = todo.filter((c) => c.packs.every((p) => stateOf(p) !== 'readable'));
  await headAll(archivedOnly.flatMap((c) => c.packs));
  const packs = new Set<string>();
  let frozenBytes = 0;
  const rank: Record<PackThawState, number> = { readable: 0, restored: 1, restoring: 2, frozen: 3 };
  for (const c of archivedOnly) {
    let best: string | undefined;
    for (const p of c.packs) {
      const better = best === undefined || rank[stateOf(p)] < rank[stateOf(best)] || (rank[stateOf(p)] === rank[stateOf(best)] && chosen.has(p) && !chosen.has(best));
      if (better) best = p;
    }
    const st = stateOf(best!);
    if (st === 'readable' || st === 'restored') continue;
    if (st === 'frozen') frozenBytes += c.length;
    packs.add(best!);
    if (!chosen.has(best!)) chosen.set(best!, { packId: best!, key: packKey(best!), size: sizes.get(best!) ?? 0, storageClass: classes.get(best!) ?? 'STANDARD', state: st });
  }
  return { packs, frozenBytes, needed };
}

/**
 * The chunks of a time range of `t`'s file: its index is read through the file's chunks
 * (local, or fetched from a readable copy); when the index is frozen, the chunks where it
 * probably lies (stage 'index').
 */
async function rangeChunks(
  storage: ObjectStorage & TierStorage,
  store: ChunkStore,
  index: RemoteIndex,
  manifest: Manifest,
  t: ThawTarget,
  opts: PlanThawOptions,
  classes: Map<string, string>,
  headAll: (packIds: Iterable<string>) => Promise<void>,
  stateOf: (packId: string) => PackThawState,
): Promise<{ chunks: Set<number>; stage?: 'index' }> {
  const media = manifest.header.media;
  if (!isMediaStructure(media)) {
    throw new DitsUserError('range-not-media', `${t.path} is not an MP4/QuickTime file Dits understood: --range cannot find its time range`, {
      hint: `thaw the whole file: git dits thaw ${t.path}`,
      exitCode: 2,
    });
  }
  if (t.range!.startSec >= media.durationSeconds) {
    throw new DitsUserError('bad-time-range', `${t.path} lasts ${formatClock(media.durationSeconds)}: the range starts after its end`, {
      hint: `give a range inside 00:00:00-${formatClock(media.durationSeconds)}`,
      exitCode: 2,
    });
  }
  const starts = chunkStarts(manifest);
  const size = manifest.header.size;
  const reader: RandomAccessReader = {
    size,
    async read(offset: number, length: number): Promise<Buffer> {
      const end = Math.min(size, offset + length);
      if (end <= offset) return Buffer.alloc(0);
      const idx: number[] = [];
      for (let i = chunkAt(starts, offset); i < manifest.chunkCount && starts[i]! < end; i++) idx.push(i);
      // what the local store lacks comes from a readable copy, all in one fetch
      const absent = idx.filter((i) => !store.hasChunk(manifest.idRawAt(i)));
      if (absent.length) {
        const locs = absent.map((i) => index.locations(manifest.idRawAt(i)).map((l) => l.packId));
        await headAll(locs.flat());
        const frozen = locs.findIndex((ps) => !ps.some((p) => stateOf(p) === 'readable' || stateOf(p) === 'restored'));
        if (frozen >= 0) throw new FrozenChunkError(absent[frozen]!);
        await ensureLocal(storage, store, { chunkIds: absent.map((i) => manifest.idRawAt(i)) }, { remoteName: opts.remoteName, sync: 'never' });
      }
      const parts: Buffer[] = [];
      for (const i of idx) {
        const c = await store.getChunk(manifest.idRawAt(i));
        parts.push(c.subarray(Math.max(0, offset - starts[i]!), Math.min(c.length, end - starts[i]!)));
      }
      return Buffer.concat(parts);
    },
  };
  try {
    const ex = await rangeExtents(reader, t.range!);
    return { chunks: chunksForExtents(starts, [...ex.index, ...ex.media]) };
  } catch (err) {
    if (err instanceof FrozenChunkError) return { chunks: chunksForExtents(starts, indexWindow(media, size)), stage: 'index' };
    if (err instanceof MediaParseError) {
      throw new DitsUserError('range-not-media', `${t.path}: its container could not be read for --range (${err.message})`, { hint: `thaw the whole file: git dits thaw ${t.path}`, exitCode: 2 });
    }
    throw err;
  }
}

/** The cost of restoring the frozen packs, per class and retrieval tier (prices.ts arithmetic). */
export function estimateRestore(prices: PriceTable, packs: readonly ThawPack[], days: number): RestoreEstimate[] {
  const byClass = new Map<string, { bytes: number; n: number }>();
  for (const p of packs) {
    if (p.state !== 'frozen') continue;
    const c = byClass.get(p.storageClass) ?? { bytes: 0, n: 0 };
    c.bytes += p.size;
    c.n++;
    byClass.set(p.storageClass, c);
  }
  const out: RestoreEstimate[] = [];
  for (const [cls, c] of [...byClass].sort((a, b) => a[0].localeCompare(b[0]))) {
    for (const tier of restoreTiers(prices, cls)) out.push(restoreCost(prices, cls, tier, c.bytes, c.n, days));
  }
  return out;
}

export interface TierTotal {
  tier: RetrievalTier;
  bytes: number;
  requests: number;
  total: number;
  hours: [number, number];
  /** classes of the frozen packs that do not offer this retrieval tier */
  unavailableFor: string[];
}

/** The estimates summed per retrieval tier: what `--tier X` would cost in all, and its slowest typical time. */
export function totalsByTier(plan: Pick<ThawPlan, 'estimates' | 'packs'>): TierTotal[] {
  const classes = new Set(plan.packs.filter((p) => p.state === 'frozen').map((p) => p.storageClass));
  const out: TierTotal[] = [];
  for (const tier of RETRIEVAL_TIERS) {
    const es = plan.estimates.filter((e) => e.tier === tier);
    const have = new Set(es.map((e) => e.storageClass));
    const unavailableFor = [...classes].filter((c) => !have.has(c));
    if (es.length === 0 && classes.size > 0) {
      out.push({ tier, bytes: 0, requests: 0, total: 0, hours: [0, 0], unavailableFor });
      continue;
    }
    out.push({
      tier,
      bytes: es.reduce((s, e) => s + e.bytes, 0),
      requests: es.reduce((s, e) => s + e.requests, 0),
      total: es.reduce((s, e) => s + e.total, 0),
      hours: [Math.max(0, ...es.map((e) => e.hours[0])), Math.max(0, ...es.map((e) => e.hours[1]))],
      unavailableFor,
    });
  }
  return out;
}

/**
 * The plan as JSON, one shape for `git dits thaw --json` and the server's thaw answers
 * (the client reads the server's back as a ThawPlan): files, packs, notFrozen, days,
 * the estimates, and per retrieval tier the totals (`byTier`) with `tier` the one chosen.
 */
export function thawPlanJson(plan: ThawPlan, tier: RetrievalTier) {
  return {
    files: plan.files.map((f) => ({ path: f.path, manifest: f.manifest, bytes: f.bytes, frozenBytes: f.frozenBytes, packs: f.packs, neededChunks: f.neededChunks, ...(f.range ? { range: f.range } : {}), ...(f.stage ? { stage: f.stage } : {}) })),
    packs: plan.packs,
    notFrozen: plan.notFrozen,
    tier,
    days: plan.days,
    estimates: plan.estimates,
    byTier: totalsByTier(plan),
  };
}
