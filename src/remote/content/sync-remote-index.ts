/**
 * syncRemoteIndex: brings the local cache of a remote's packs (RemoteIndex) up to date with
 * one listing of `v1/packs/`, downloading only the indexes not cached yet. Each index is
 * verified by its key (packId = BLAKE3 of the index bytes); one that does not verify is
 * left out (its chunks count as absent, so the next push uploads them again) and reported.
 */
import { DitsUserError } from '../../errors.js';
import { hashHex } from '../../hashing/blake3.js';
import type { ChunkStore } from '../../store/chunk-store.js';
import type { ObjectStorage } from '../../transfer/object-storage.js';
import { TransferError, TransferQueue, type TransferQueueOptions } from '../../transfer/transfer-queue.js';
import { CountingStorage } from './counting-storage.js';
import { indexKey, packKey, PACKS_PREFIX, parsePackKey } from './layout.js';
import { decodePackIndex, PackIndexError, type PackIndexEntry } from './pack-index.js';
import { PACK_HEADER_SIZE } from '../../store/pack-format.js';
import type { RemoteIndex } from '../../store/remote-index.js';

export interface SyncOptions {
  /** downloads in flight at once (default 8) */
  concurrency?: number;
  /** injected queue settings (retry policy, clock) */
  queueOptions?: TransferQueueOptions;
}

export interface SyncResult {
  /** packs and distinct chunks the remote holds, as cached now */
  packs: number;
  chunks: number;
  /** indexes downloaded by this sync */
  downloadedIndexes: number;
  /** cached packs no longer on the remote, dropped from the cache */
  removedPacks: number;
  /** .pack objects without an .idx (an interrupted push): packId -> size */
  orphanPacks: Map<string, number>;
  /** index keys that did not verify (left out of the cache) */
  corruptIndexes: string[];
  /** packs whose size is not what their index implies (left out of the cache) */
  badPacks: { packKey: string; reason: string }[];
  /**
   * The storage class of each listed .pack, when the listing says (S3 ListObjectsV2's
   * StorageClass, folder tiers): push uses it to avoid reusing chunks only in archived packs.
   */
  packClasses: Map<string, string>;
  /** storage requests made */
  requests: number;
}

/** Internal context shared by push, fetch and prune: one counted storage, one queue. */
export interface ContentSession {
  storage: CountingStorage;
  queue: TransferQueue;
  index: RemoteIndex;
  store: ChunkStore;
}

export function openSession(
  storage: ObjectStorage,
  store: ChunkStore,
  remoteName: string,
  opts: { concurrency?: number; queueOptions?: TransferQueueOptions; onProgress?: TransferQueueOptions['onProgress'] } = {},
): ContentSession {
  const counted = storage instanceof CountingStorage ? storage : new CountingStorage(storage);
  const queue = new TransferQueue(counted, { ...opts.queueOptions, concurrency: opts.concurrency ?? opts.queueOptions?.concurrency ?? 8, onProgress: opts.onProgress ?? opts.queueOptions?.onProgress });
  return { storage: counted, queue, index: store.remoteIndex(remoteName, storage.location), store };
}

export async function syncRemoteIndex(storage: ObjectStorage, store: ChunkStore, remoteName: string, opts: SyncOptions = {}): Promise<SyncResult> {
  const session = openSession(storage, store, remoteName, opts);
  const before = session.storage.requests;
  const r = await syncSession(session);
  return { ...r, requests: session.storage.requests - before };
}

/**
 * `onDropPack` is called for each cached pack the listing shows gone or changed in size,
 * before it leaves the cache (prune uses it to say which local chunks that pack held).
 */
export async function syncSession(session: ContentSession, onDropPack?: (packId: string, reason: string) => void): Promise<Omit<SyncResult, 'requests'>> {
  const { storage, queue, index } = session;
  const packSizes = new Map<string, number>();
  const packClasses = new Map<string, string>();
  const indexes = new Set<string>();
  for await (const o of storage.list(PACKS_PREFIX)) {
    const k = parsePackKey(o.key);
    if (!k) continue;
    if (k.kind === 'pack') {
      packSizes.set(k.packId, o.size);
      // (an optional field of tiered listings: ListedObject.storageClass)
      const cls = (o as { storageClass?: string }).storageClass;
      if (cls) packClasses.set(k.packId, cls);
    } else indexes.add(k.packId);
  }
  const cached = index.packs();
  let removedPacks = 0;
  for (const [packId, info] of cached) {
    if (!indexes.has(packId) || packSizes.get(packId) !== info.size) {
      const size = packSizes.get(packId);
      onDropPack?.(
        packId,
        size === undefined ? 'is missing on the remote' : !indexes.has(packId) ? 'has lost its index on the remote' : `has ${size} bytes on the remote, its index says ${info.size}`,
      );
      index.removePack(packId);
      removedPacks++;
    }
  }
  const orphanPacks = new Map<string, number>();
  for (const [packId, size] of packSizes) if (!indexes.has(packId)) orphanPacks.set(packId, size);

  const corruptIndexes: string[] = [];
  const badPacks: { packKey: string; reason: string }[] = [];
  let downloadedIndexes = 0;
  const jobs: Promise<void>[] = [];
  for (const packId of indexes) {
    const size = packSizes.get(packId);
    if (size === undefined) continue; // an index without its pack: the pack was deleted; nothing to use
    if (cached.has(packId) && cached.get(packId)!.size === size) continue;
    const key = indexKey(packId);
    jobs.push(
      queue
        .downloadBuffer({
          key,
          verify: (bytes) => {
            if (hashHex(bytes) !== packId) throw new PackIndexError(`${key} does not hash to its name`);
          },
        })
        .then((bytes) => {
          const entries = decodePackIndex(bytes);
          const implied = impliedPackSize(entries);
          if (implied !== size) {
            badPacks.push({ packKey: packKey(packId), reason: `has ${size} bytes, its index says ${implied}` });
            return;
          }
          index.addPack(packId, size, entries);
          downloadedIndexes++;
        })
        .catch((err: unknown) => {
          if ((err instanceof TransferError && err.code === 'transfer-verify-failed') || err instanceof PackIndexError) {
            corruptIndexes.push(key);
            return;
          }
          if (err instanceof DitsUserError && err.code === 'storage-not-found') return; // deleted since the listing
          throw err;
        }),
    );
  }
  const settled = await Promise.allSettled(jobs);
  const failed = settled.find((s) => s.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
  const stats = index.stats();
  return { packs: stats.packs, chunks: stats.chunks, downloadedIndexes, removedPacks, orphanPacks, corruptIndexes, badPacks, packClasses };
}

/** The size of the pack an index describes (entries back to back after the header). */
export function impliedPackSize(entries: readonly PackIndexEntry[]): number {
  let end = PACK_HEADER_SIZE;
  for (const e of entries) end = Math.max(end, e.offset + e.storedLength);
  return end;
}
