/**
 * pushContent: uploads every chunk of the given manifests that the remote lacks, in packs,
 * then the manifests the remote lacks, each with its location table (location-table.ts:
 * where each of its chunks lies, so a reader of one file needs no pack index). Order, for
 * "nothing lost" (DESIGN.md invariant 4): a pack's .pack before its .idx (an .idx names a
 * complete pack), all packs before any manifest or location table (a table names only
 * complete packs), and the caller uploads git data and moves refs only after this resolves.
 *
 * Read, plan, apply: one listing of v1/packs/ (syncRemoteIndex) says what the remote holds;
 * the plan packs the missing chunks in manifest order (so a later file read is a few large
 * ranged reads) into packs of about `packSize`; `dryRun` stops there and returns the plan.
 *
 * Resume: pack boundaries depend only on the chunk list from the pack's first chunk, and
 * packId is the hash of the index, so a re-run after an interruption plans the same packs
 * for what is still missing; a .pack already uploaded without its .idx (listed as an orphan
 * with the right size) gets only its .idx.
 *
 * Tiers: a chunk whose only copies on the remote are in packs the tier reaper has marked
 * for a move (`v1/tier/pending/<packId>.json`, one listing per push) or in a class that
 * needs a restore before a read (the listing's storage class) counts as absent: it is
 * uploaded again, in a pack with another id (so the fresh copy never lands on a key the
 * reaper is moving). A reaper that freezes a pack during this push thus never freezes
 * the only copy of what this push's commits need (DESIGN invariant 4).
 *
 * Memory: the plan keeps ~100 bytes per missing chunk; pack bodies are streamed from the
 * local packs (pack-body.ts). With a storage that buffers multipart parts (S3Storage:
 * partSize x (partConcurrency + 1), 160 MiB by default), only `packConcurrency` packs upload
 * at once (default 1 when packs go multipart, else `concurrency`).
 */
import { DitsUserError } from '../../errors.js';
import { Manifest } from '../../manifest/manifest.js';
import type { ChunkStore } from '../../store/chunk-store.js';
import { ENTRY_HEAD_SIZE, PACK_HEADER_SIZE } from '../../store/pack-format.js';
import type { ObjectStorage } from '../../transfer/object-storage.js';
import type { TransferProgress, TransferQueueOptions } from '../../transfer/transfer-queue.js';
import { CountingStorage, defaultMultipartShape, putRequests, type MultipartShape } from './counting-storage.js';
import { indexKey, manifestKey, packKey } from './layout.js';
import { layoutPack, MemberTable, packBodyFactory, packedSize, type PackLayout } from './pack-body.js';
import { LocationTableWriter, locationTableKey } from './location-table.js';
import { LEAF_SIZE, leafHasher } from '../../hashing/tree-cv.js';
import { decodePackIndex, type PackIndexEntry } from './pack-index.js';
import { openSession, syncSession } from './sync-remote-index.js';
import type { RemoteIndex } from '../../store/remote-index.js';
import { memberCount, MEMBER_SIZE } from './pack-body.js';
import { tierStorageOf } from '../../tier/tier-storage.js';

export const DEFAULT_PACK_SIZE = 256 * 1024 * 1024;

/**
 * The pack size used when none is given: 256 MiB, but no more than the size above which the
 * storage switches to multipart. A pack at or under the threshold is one streamed PUT (no
 * buffering, one request); measured on s3rver with S3Storage's defaults, 1 GiB in 256 MiB
 * multipart packs peaked at 320 MiB RSS (parts are buffered), in 64 MiB packs far less.
 */
export function defaultPackSize(multipart: MultipartShape | null): number {
  return multipart ? Math.min(DEFAULT_PACK_SIZE, multipart.thresholdBytes) : DEFAULT_PACK_SIZE;
}

export interface PushContentOptions {
  /** the git remote's name; keys the local cache of what it holds */
  remoteName: string;
  /** requests in flight at once (default 8) */
  concurrency?: number;
  /**
   * target pack size in bytes; a pack closes before a chunk would take it past this.
   * Default: 256 MiB, capped at the storage's multipart threshold (defaultPackSize).
   */
  packSize?: number;
  /** packs uploading at once (default: 1 if packs go multipart, else `concurrency`) */
  packConcurrency?: number;
  /** plan only: what would move, nothing uploaded (the remote is still listed) */
  dryRun?: boolean;
  onProgress?: (progress: TransferProgress) => void;
  /** how the storage splits large bodies, for request counts and packConcurrency (default: S3's defaults for s3://) */
  multipart?: MultipartShape | null;
  queueOptions?: TransferQueueOptions;
  /**
   * Called once, before planning, with the chunks of these manifests that are neither in the
   * local store nor on the remote (a checkout wrote them only into the working tree, or prune
   * dropped them): it may store them locally (verified) from wherever it finds them, or throw
   * a DitsUserError saying where they are not. Chunks still absent afterwards fail the push.
   * Not called for a dry run: there such chunks are counted (at their plain size) as to upload.
   */
  obtainMissing?: (missing: MissingChunk[]) => Promise<unknown>;
}

export interface MissingChunk {
  idRaw: Buffer;
  /** a manifest being pushed that holds it (the first one seen) */
  manifestId: string;
  rawLength: number;
}

export interface PushContentResult {
  dryRun: boolean;
  /** manifests uploaded (or to upload) */
  manifests: number;
  /** chunks uploaded (or to upload), and chunks found already on the remote */
  chunks: number;
  /** of `chunks`, those not kept locally that a real run obtains first (obtainMissing; dry run only) */
  chunksToObtain: number;
  chunksOnRemote: number;
  /** bytes uploaded (or to upload): packs, indexes and manifests (not the location tables: tens of bytes a pack a file) */
  bytes: number;
  packBytes: number;
  /** packs uploaded (or to upload); reusedPacks of them had their .pack already there */
  packs: number;
  reusedPacks: number;
  /** storage requests made; for a dry run, the listing made plus `estimatedRequests` */
  requests: number;
  /** chunks uploaded again because their only remote copies are in pending or archived packs */
  chunksRecopied: number;
  /** requests the upload takes (multipart parts counted by `multipart`) */
  estimatedRequests: number;
}

interface PackPlan extends PackLayout {
  reuse: boolean;
}

export async function pushContent(storage: ObjectStorage, store: ChunkStore, manifestIds: Iterable<string>, opts: PushContentOptions): Promise<PushContentResult> {
  const multipart = opts.multipart === undefined ? defaultMultipartShape(storage) : opts.multipart;
  const packTarget = opts.packSize ?? defaultPackSize(multipart);
  if (!(packTarget > 0)) throw new RangeError('packSize must be positive');
  const counted = new CountingStorage(storage, multipart);
  const session = openSession(counted, store, opts.remoteName, opts);
  store.commit();
  const sync = await syncSession(session);
  const { index, queue } = session;
  // archived packs from the listing just made; pending marks only if some chunk would be
  // reused (a push of new content only makes no extra request)
  const avoid = archivedPacks(sync.packClasses, archiveClasses(storage));

  // ---- plan ----
  const ids = [...new Set(manifestIds)];
  // Chunks neither here nor on the remote: `obtainMissing` (the caller's sources: working
  // tree, other remotes) may make them local first. The first pass notes them while it
  // plans (each chunk looked up once); only when there were some does a second pass plan
  // again, after they were obtained.
  const obtainFirst = !!opts.obtainMissing && !opts.dryRun;
  const planOpts = { dryRun: !!opts.dryRun, countObtainable: !!opts.obtainMissing, collectMissing: obtainFirst, location: storage.location, avoid };
  let plan = planPacks(store, index, ids, packTarget, sync.orphanPacks, planOpts);
  if (plan.chunksOnRemote > 0) {
    const before = avoid.size;
    for (const p of await pendingPacks(counted)) avoid.add(p);
    if (avoid.size > before) plan = planPacks(store, index, ids, packTarget, sync.orphanPacks, planOpts);
  }
  if (plan.missing.length) {
    await opts.obtainMissing!(plan.missing);
    store.commit();
    plan = planPacks(store, index, ids, packTarget, sync.orphanPacks, { dryRun: false, countObtainable: true, collectMissing: false, location: storage.location, avoid });
  }
  const { manifests, packs, chunksOnRemote, chunkCount, obtainChunks, obtainBytes, recopied } = plan;

  // Manifests the cache does not know: ask the remote, one request each (files, not chunks).
  // A LIST with the key as prefix, not a HEAD: S3 answers a HEAD of a missing key with a bare
  // 404 that S3Storage must follow with a bucket check, so a LIST costs one request either way.
  const manifestsToUpload: { id: string; bytes: Buffer }[] = [];
  const known: string[] = [];
  await runLimited(manifests, opts.concurrency ?? 8, async (m) => {
    if (await existsOnRemote(counted, manifestKey(m.id))) known.push(m.id);
    else manifestsToUpload.push(m);
  });
  index.addManifests(known);

  let packBytes = 0;
  let estimatedRequests = 0;
  let bytes = 0;
  for (const p of packs) {
    if (!p.reuse) {
      packBytes += p.size;
      estimatedRequests += putRequests(p.size, multipart);
    }
    bytes += p.indexBytes.length;
    estimatedRequests += 1;
  }
  if (obtainChunks) {
    // the chunks a real run would obtain first, in packs of about packTarget (an estimate)
    const n = Math.ceil(obtainBytes / Math.max(1, packTarget - PACK_HEADER_SIZE));
    packBytes += obtainBytes + n * PACK_HEADER_SIZE;
    for (let k = 0; k < n; k++) estimatedRequests += putRequests(Math.min(packTarget, obtainBytes / n + PACK_HEADER_SIZE), multipart) + 1;
    bytes += n * 16 + Math.ceil(obtainChunks * 49);
  }
  bytes += packBytes;
  for (const m of manifestsToUpload) {
    bytes += m.bytes.length;
    estimatedRequests += Manifest.parse(m.bytes).chunkCount > 0 ? 2 : 1; // and its location table
  }
  // manifests the remote has whose chunks go up again (their only copies are being moved or
  // archived): their location tables are written again, naming the fresh copies
  const uploading = new Set(manifestsToUpload.map((m) => m.id));
  const retable = [...plan.retable].filter((id) => !uploading.has(id));
  estimatedRequests += retable.length;
  const result: PushContentResult = {
    dryRun: !!opts.dryRun,
    manifests: manifestsToUpload.length,
    chunks: chunkCount + obtainChunks,
    chunksToObtain: obtainChunks,
    chunksOnRemote,
    bytes,
    packBytes,
    packs: packs.length,
    reusedPacks: packs.filter((p) => p.reuse).length,
    requests: counted.requests,
    estimatedRequests,
    chunksRecopied: recopied,
  };
  if (opts.dryRun) {
    result.requests += estimatedRequests;
    return result;
  }

  // ---- apply ----
  const goesMultipart = multipart !== null && packs.some((p) => p.size > multipart.thresholdBytes);
  const packConcurrency = Math.max(1, opts.packConcurrency ?? (goesMultipart ? 1 : (opts.concurrency ?? 8)));
  await runLimited(packs, packConcurrency, async (p) => {
    try {
      if (!p.reuse) await queue.upload({ key: packKey(p.packId), body: packBodyFactory(store, p.members), size: p.size, contentType: 'application/octet-stream' });
      await queue.upload({ key: indexKey(p.packId), body: p.indexBytes, contentType: 'application/octet-stream' });
      index.addPack(p.packId, p.size, decodePackIndex(p.indexBytes));
    } finally {
      p.members = Buffer.alloc(0); // release the plan of a finished pack
    }
  });
  // each manifest with its location table (location-table.ts: a hint for readers of one file),
  // both after every pack the table names is complete here (the remote index has them now)
  const fresh = new Map(packs.map((p) => [p.packId, p.indexBytes]));
  await runLimited(manifestsToUpload, opts.concurrency ?? 8, async (m) => {
    const table = locationTableOf(m.id, m.bytes, index, fresh, avoid);
    const put = [queue.upload({ key: manifestKey(m.id), body: m.bytes, contentType: 'application/octet-stream' })];
    if (table) put.push(queue.upload({ key: locationTableKey(m.id), body: table, contentType: 'application/octet-stream' }));
    await Promise.all(put);
  });
  index.addManifests(manifestsToUpload.map((m) => m.id));
  await runLimited(retable, opts.concurrency ?? 8, async (id) => {
    const table = locationTableOf(id, store.getManifestBytes(id), index, fresh, avoid);
    if (table) await queue.upload({ key: locationTableKey(id), body: table, contentType: 'application/octet-stream' });
  });
  result.requests = counted.requests;
  return result;
}

/**
 * The location table of manifest `id` on this remote (location-table.ts), from the remote
 * index (every chunk of the manifest is there once its packs are up), taking no copy in an
 * `avoid` pack; null for an empty file, or if some chunk has no usable copy (then readers
 * use the pack indexes). A chunk that lies next in the pack of the one before is found
 * through that pack's index (`fresh`: the packs of this push, decoded one at a time), not
 * looked up: a fresh push costs about one lookup a pack. A chunk in an older pack is looked
 * up (about 7 us each: a 20 GiB file whose chunks the remote had, e.g. an edit, 2.4 s, near
 * what planning's own lookups of them cost; reading a whole old pack's entries from the
 * cache costs as much a row and can be far more rows).
 */
export function locationTableOf(id: string, bytes: Buffer, index: RemoteIndex, fresh: ReadonlyMap<string, Buffer>, avoid: ReadonlySet<string>): Buffer | null {
  const m = Manifest.parse(bytes);
  if (m.chunkCount === 0) return null;
  const w = new LocationTableWriter(Buffer.from(id, 'hex'));
  let pack = '';
  let entries: PackIndexEntry[] | null = null;
  let k = -1;
  for (let i = 0; i < m.chunkCount; i++) {
    const idRaw = m.idRawAt(i);
    const next = entries?.[k + 1];
    if (next !== undefined && next.idRaw.equals(idRaw) && next.rawLength === m.lengthAt(i)) {
      k++;
      w.add(pack, next.offset, next.storedLength, next.codec, next.rawLength);
      continue;
    }
    const copies = index.locations(idRaw).filter((l) => !avoid.has(l.packId) && l.rawLength === m.lengthAt(i));
    const l = copies.find((c) => c.packId === pack) ?? copies[0];
    if (l === undefined) return null;
    if (l.packId !== pack) {
      pack = l.packId;
      const idx = fresh.get(pack);
      entries = idx === undefined ? null : decodePackIndex(idx);
    }
    k = -1;
    if (entries !== null) {
      // its place in the pack (entries are in offset order)
      let lo = 0;
      let hi = entries.length - 1;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (entries[mid]!.offset < l.offset) lo = mid + 1;
        else hi = mid;
      }
      if (entries[lo]?.offset === l.offset) k = lo;
    }
    w.add(l.packId, l.offset, l.storedLength, l.codec, l.rawLength);
  }
  return w.finish(bytes.length > LEAF_SIZE ? manifestLeaves(bytes) : null);
}

/** The chaining values of a manifest's 4 MiB leaves (location-table.ts, version 2), or null without the native tree hasher. */
function manifestLeaves(bytes: Buffer): Buffer | null {
  const { hasher, leaves } = leafHasher();
  hasher.update(bytes);
  return leaves();
}

interface PackPlanResult {
  manifests: { id: string; bytes: Buffer }[];
  packs: PackPlan[];
  chunksOnRemote: number;
  chunkCount: number;
  obtainChunks: number;
  obtainBytes: number;
  /** with collectMissing: chunks neither local nor on the remote (nothing planned then) */
  missing: MissingChunk[];
  /** chunks planned although the remote holds them: every copy is in an `avoid` pack */
  recopied: number;
  /** manifests with such a chunk (their location tables, if any, name copies being moved) */
  retable: Set<string>;
}

export const TIER_PENDING_PREFIX = 'v1/tier/pending/';

/**
 * The classes that need a restore before a read: AWS's archive classes (a listing that names
 * them means it, whatever provider the profile guessed) and the storage profile's own (a
 * folder tier map's archive folders).
 */
function archiveClasses(storage: ObjectStorage): ReadonlySet<string> {
  return new Set(['GLACIER', 'DEEP_ARCHIVE', ...(tierStorageOf(storage)?.tierProfile.archive ?? [])]);
}

/** Packs resting in a class that needs a restore before a read (from the packs' listing). */
export function archivedPacks(packClasses: ReadonlyMap<string, string>, archive: ReadonlySet<string>): Set<string> {
  const out = new Set<string>();
  for (const [packId, cls] of packClasses) if (archive.has(cls)) out.add(packId);
  return out;
}

/** Packs the tier reaper marked for a move (one listing of v1/tier/pending/). */
export async function pendingPacks(storage: ObjectStorage): Promise<string[]> {
  const out: string[] = [];
  for await (const o of storage.list(TIER_PENDING_PREFIX)) {
    const m = /^v1\/tier\/pending\/([0-9a-f]{64})\.json$/.exec(o.key);
    if (m) out.push(m[1]!);
  }
  return out;
}

/** The same members in reverse order: another index, so another pack id (for a pack of two or more). */
function reversedMembers(table: Buffer): Buffer {
  const n = memberCount(table);
  const out = Buffer.allocUnsafe(table.length);
  for (let i = 0; i < n; i++) table.copy(out, (n - 1 - i) * MEMBER_SIZE, i * MEMBER_SIZE, (i + 1) * MEMBER_SIZE);
  return out;
}

/**
 * Packs the chunks of `ids` the remote lacks, in manifest order, into packs of about
 * `packTarget`. A chunk that is neither local nor on the remote is, with `collectMissing`,
 * noted (all of them are, and the packs are then not used); in a dry run with
 * `countObtainable`, counted at its plain size as one a real run obtains first; else an
 * error that says where it is not.
 */
function planPacks(
  store: ChunkStore,
  index: RemoteIndex,
  ids: readonly string[],
  packTarget: number,
  orphanPacks: ReadonlyMap<string, number>,
  o: { dryRun: boolean; countObtainable: boolean; collectMissing: boolean; location: string; avoid: ReadonlySet<string> },
): PackPlanResult {
  const seen = new Set<string>();
  const r: PackPlanResult = { manifests: [], packs: [], chunksOnRemote: 0, chunkCount: 0, obtainChunks: 0, obtainBytes: 0, missing: [], recopied: 0, retable: new Set() };
  let members = new MemberTable();
  let size = PACK_HEADER_SIZE;
  // a copy in a pack that is neither pending a move nor archived
  const readableCopy = (idRaw: Buffer): boolean => {
    if (o.avoid.size === 0) return index.has(idRaw);
    return index.locations(idRaw).some((l) => !o.avoid.has(l.packId));
  };
  const closePack = (): void => {
    if (members.count === 0) return;
    let layout = layoutPack(members.finish());
    // re-uploaded copies laid out exactly as an avoided pack would land on its key: the
    // reaper would move (or has archived) the fresh copy too. Another order, another id.
    if (o.avoid.has(layout.packId) && members.count > 1) layout = layoutPack(reversedMembers(layout.members));
    r.packs.push({ ...layout, reuse: orphanPacks.get(layout.packId) === layout.size });
    members = new MemberTable();
    size = PACK_HEADER_SIZE;
  };
  for (const id of ids) {
    const bytes = store.getManifestBytes(id);
    const m = Manifest.parse(bytes);
    for (let i = 0; i < m.chunkCount; i++) {
      const idRaw = m.idRawAt(i);
      const key = idRaw.toString('base64');
      if (seen.has(key)) continue;
      seen.add(key);
      if (readableCopy(idRaw)) {
        r.chunksOnRemote++;
        continue;
      }
      if (o.avoid.size && index.has(idRaw)) {
        r.recopied++;
        r.retable.add(id);
      }
      const local = store.locate(idRaw);
      if (!local && o.collectMissing) {
        r.missing.push({ idRaw: Buffer.from(idRaw), manifestId: id, rawLength: m.lengthAt(i) });
        continue;
      }
      if (!local && o.dryRun && o.countObtainable) {
        // a real run obtains it first (working tree, another remote): counted at its plain size
        r.obtainChunks++;
        r.obtainBytes += ENTRY_HEAD_SIZE + m.lengthAt(i);
        continue;
      }
      if (!local) {
        if (store.isRemoteHeld(idRaw)) {
          throw new DitsUserError('push-content-remote-only', `cannot push manifest ${id}: chunk ${idRaw.toString('hex')} is held by another remote, not kept locally (a checkout wrote it only into the working tree), and ${o.location} lacks it`, {
            hint: 'copy the content into the local store first with `git dits fetch --remote <that remote> <rev>` (or set `git config dits.keepLocalCopy true` before checking out), then push again',
          });
        }
        throw new DitsUserError('push-content-missing', `cannot push manifest ${id}: chunk ${idRaw.toString('hex')} is neither in the local store nor on ${o.location}`, {
          hint: 'fetch it from a remote that has it (`git dits fetch`), or run `git dits fsck` to see what is missing',
        });
      }
      if (r.missing.length) continue; // only noting what is missing now: no packs planned
      // a pack never grows past the target (unless one chunk alone does), so with the
      // target at the storage's multipart threshold every pack is one streamed PUT
      if (members.count > 0 && size + packedSize(local) > packTarget) closePack();
      members.add(idRaw, local);
      r.chunkCount++;
      size += packedSize(local);
    }
    if (!index.hasManifest(id)) r.manifests.push({ id, bytes });
  }
  closePack();
  return r;
}

async function existsOnRemote(storage: ObjectStorage, key: string): Promise<boolean> {
  for await (const o of storage.list(key)) if (o.key === key) return true;
  return false;
}

/**
 * Runs `fn` over `items` with at most `limit` at once. After a failure no new item starts;
 * those in flight finish (so what completed is recorded), then the first error is thrown.
 */
export async function runLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let firstError: unknown;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (next < items.length && !failed) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (err) {
        if (!failed) {
          failed = true;
          firstError = err;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed) throw firstError;
}

export interface PushChunksResult {
  chunks: number;
  packs: number;
  bytes: number;
  requests: number;
}

/**
 * Uploads local chunks by id in new packs (each chunk verified against its id as it
 * streams, pack-body.ts), then records them in the remote index: a repair for chunks whose
 * copy on the remote read back damaged (prune --repair). Chunks not stored locally are
 * skipped. The same order rule as pushContent: a .pack before its .idx.
 */
export async function pushChunks(
  storage: ObjectStorage,
  store: ChunkStore,
  ids: readonly Buffer[],
  opts: Pick<PushContentOptions, 'remoteName' | 'packSize' | 'concurrency' | 'multipart' | 'queueOptions'>,
): Promise<PushChunksResult> {
  const multipart = opts.multipart === undefined ? defaultMultipartShape(storage) : opts.multipart;
  const packTarget = opts.packSize ?? defaultPackSize(multipart);
  const counted = new CountingStorage(storage, multipart);
  const session = openSession(counted, store, opts.remoteName, opts);
  store.commit();
  const packs: PackLayout[] = [];
  let members = new MemberTable();
  let size = PACK_HEADER_SIZE;
  const seen = new Set<string>();
  for (const idRaw of ids) {
    const key = idRaw.toString('latin1');
    const local = store.locate(idRaw);
    if (!local || seen.has(key)) continue;
    seen.add(key);
    if (members.count > 0 && size + packedSize(local) > packTarget) {
      packs.push(layoutPack(members.finish()));
      members = new MemberTable();
      size = PACK_HEADER_SIZE;
    }
    members.add(idRaw, local);
    size += packedSize(local);
  }
  if (members.count > 0) packs.push(layoutPack(members.finish()));
  let bytes = 0;
  for (const p of packs) {
    await session.queue.upload({ key: packKey(p.packId), body: packBodyFactory(store, p.members), size: p.size, contentType: 'application/octet-stream' });
    await session.queue.upload({ key: indexKey(p.packId), body: p.indexBytes, contentType: 'application/octet-stream' });
    session.index.addPack(p.packId, p.size, decodePackIndex(p.indexBytes));
    bytes += p.size + p.indexBytes.length;
  }
  return { chunks: seen.size, packs: packs.length, bytes, requests: counted.requests };
}
