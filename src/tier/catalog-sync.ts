/**
 * syncCatalog: brings a tier catalog up to date with its remote, reading only what is new.
 *
 * One listing each of `v1/objects/` (manifests), `v1/packs/` (with class and upload time),
 * `v1/variants/` and `v1/tier/pending/`; then the indexes of packs not seen before, the
 * manifests not seen before (or whose chunks were not all found last time), and the
 * variant records not seen before. Manifests are listed BEFORE packs: a push uploads a
 * manifest after every pack holding its chunks, so each manifest listed has its packs in
 * the pack listing that follows.
 *
 * Users of a pack: every manifest with a chunk in it, every copy of a chunk counted. A new
 * pack holding a copy of a chunk an older pack held gets all the older pack's users (a
 * superset: conservative, it can only keep the new pack warmer).
 *
 * Listed keys are looked up in the catalog one by one (a byte per catalog row marks what
 * was seen); only new or changed packs and manifests are kept aside, so a sync of a million
 * known packs holds a few MiB.
 */
import { Manifest } from '../manifest/manifest.js';
import { parseVariantRecord } from '../manifest/variant-record.js';
import { hashHex } from '../hashing/blake3.js';
import { OBJECTS_PREFIX, PACKS_PREFIX, indexKey, manifestKey, parsePackKey } from '../remote/content/layout.js';
import { decodePackIndex } from '../remote/content/pack-index.js';
import type { ObjectStorage } from '../transfer/object-storage.js';
import { isId } from '../hashing/blake3.js';
import type { TierStorage } from './tier-storage.js';
import { chunkKey, type AccessEntry, type TierCatalog } from './catalog.js';
import { isTier, tierRank } from './tiers.js';

export const VARIANTS_PREFIX = 'v1/variants/';
export const PENDING_PREFIX = 'v1/tier/pending/';

export function pendingKey(packId: string): string {
  return `${PENDING_PREFIX}${packId}.json`;
}

export interface SyncSummary {
  packs: number;
  bytes: number;
  manifests: number;
  newPacks: number;
  newManifests: number;
  removedPacks: number;
  removedManifests: number;
  /** indexes or manifests that did not verify or parse (left out; reported) */
  unreadable: string[];
  /** manifests with a chunk in no listed pack (read again next sync) */
  incompleteManifests: number;
  pending: number;
  /** markers whose pack is gone from the remote (a run that writes deletes them) */
  orphanMarkers: string[];
  access: { matched: number; unknown: number };
  /** newest LastModified seen in the listings (a lower bound of the storage's clock) */
  newestStorageTime: number;
  requests: number;
}

export interface SyncOptions {
  access?: AsyncIterable<AccessEntry> | Iterable<AccessEntry>;
  now?: number;
  concurrency?: number;
  onProgress?: (done: number, total: number) => void;
}

/** `fn` over `items`, `concurrency` at once; on a failure no new item starts, and it is thrown once those running are done. */
async function runPool<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | null = null;
  const worker = async (): Promise<void> => {
    while (next < items.length && failure === null) {
      try {
        await fn(items[next++]!);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  if (failure !== null) throw (failure as { error: unknown }).error;
}

export async function syncCatalog(storage: ObjectStorage & TierStorage, catalog: TierCatalog, opts: SyncOptions = {}): Promise<SyncSummary> {
  const db = catalog.db;
  // chunk keys are random: inserts touch pages all over chunk_packs; a larger page cache for
  // the sync only (SQLite's default 2 MiB made the first sync of 5,000 packs 4x slower)
  const cacheBefore = db.pragma('cache_size', { simple: true }) as number;
  db.pragma('cache_size = -65536');
  try {
    return await syncCatalogWith(storage, catalog, opts);
  } finally {
    if (db.open) db.pragma(`cache_size = ${cacheBefore}`);
  }
}

async function syncCatalogWith(storage: ObjectStorage & TierStorage, catalog: TierCatalog, opts: SyncOptions): Promise<SyncSummary> {
  const db = catalog.db;
  const concurrency = opts.concurrency ?? 8;
  let requests = 0;
  let newest = 0;
  const unreadable: string[] = [];
  db.exec(`
    CREATE TEMP TABLE IF NOT EXISTS listed_pending (id TEXT PRIMARY KEY, tier INTEGER NOT NULL, at INTEGER NOT NULL) WITHOUT ROWID;
    DELETE FROM listed_pending;
  `);
  // What the listings show of what the catalog holds: one byte per row number (a bitmap),
  // found by point lookups of each listed key; only what is new or changed is kept aside.
  // (Temporary tables of every listed key took 106 s for 1,000,000 packs: random inserts.)
  const max = catalog.maxNumbers();
  const MANIFEST_SEEN = 1;
  const PACK_SEEN = 1;
  const IDX_SEEN = 2;

  // 1. manifests listed (before packs: see the top of this file)
  const manifestSeen = new Uint8Array(max.manifest + 1);
  const lookupManifest = db.prepare('SELECT n, complete FROM manifests WHERE id = ?').raw(true);
  const toRead: [string, number][] = [];
  for await (const o of storage.listTiered(OBJECTS_PREFIX)) {
    const rest = o.key.slice(OBJECTS_PREFIX.length);
    const id = rest.slice(0, 2) + rest.slice(3);
    if (rest[2] !== '/' || !isId(id)) continue;
    newest = Math.max(newest, o.lastModified);
    const row = lookupManifest.get(id) as [number, number] | undefined;
    if (row === undefined) toRead.push([id, o.lastModified]);
    else {
      manifestSeen[row[0]] = MANIFEST_SEEN;
      if (row[1] === 0) toRead.push([id, o.lastModified]); // chunks not all found last time
    }
  }
  requests++;

  // 2. packs listed: a pack is complete with both its .pack and its .idx
  const packSeen = new Uint8Array(max.pack + 1);
  const lookupPack = db.prepare('SELECT n, size, class, class_since FROM packs WHERE id = ?').raw(true);
  const changed: [number, number, string, number][] = [];
  const unknownPacks = new Map<string, [number, string, number]>();
  const unknownIdx = new Set<string>();
  for await (const o of storage.listTiered(PACKS_PREFIX)) {
    const k = parsePackKey(o.key);
    if (!k) continue;
    newest = Math.max(newest, o.lastModified);
    const row = lookupPack.get(k.packId) as [number, number, string, number] | undefined;
    const cls = o.storageClass || 'STANDARD';
    if (row === undefined) {
      if (k.kind === 'pack') unknownPacks.set(k.packId, [o.size, cls, o.lastModified]);
      else unknownIdx.add(k.packId);
    } else if (k.kind === 'idx') packSeen[row[0]] |= IDX_SEEN;
    else {
      packSeen[row[0]] |= PACK_SEEN;
      if (row[1] !== o.size || row[2] !== cls || row[3] !== o.lastModified) changed.push([row[0], o.size, cls, o.lastModified]);
    }
  }
  requests++;

  // packs gone (or without their index now) out, known ones refreshed, new complete ones to index
  const removedPacks = catalog.tx(() => {
    const delUsers = db.prepare('DELETE FROM manifest_packs WHERE pack = ?');
    const delChunks = db.prepare('DELETE FROM chunk_packs WHERE pack = ?');
    const delPack = db.prepare('DELETE FROM packs WHERE n = ?');
    const gone = (db.prepare('SELECT n FROM packs').pluck().all() as number[]).filter((n) => packSeen[n] !== (PACK_SEEN | IDX_SEEN));
    for (const n of gone) {
      delUsers.run(n);
      delChunks.run(n);
      delPack.run(n);
    }
    const update = db.prepare('UPDATE packs SET size = ?, class = ?, class_since = ? WHERE n = ?');
    for (const [n, size, cls, at] of changed) update.run(size, cls, at, n);
    return gone.length;
  });
  const fresh: [string, number, string, number][] = [];
  for (const [id, [size, cls, at]] of unknownPacks) if (unknownIdx.has(id)) fresh.push([id, size, cls, at]);
  unknownPacks.clear();
  unknownIdx.clear();
  fresh.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const addPack = db.prepare('INSERT INTO packs (id, size, class, uploaded_at, class_since, indexed) VALUES (?, ?, ?, ?, ?, 1)');
  const addChunk = db.prepare('INSERT OR IGNORE INTO chunk_packs (chunk, pack) VALUES (?, ?)');
  const inheritUsers = db.prepare(
    `INSERT OR IGNORE INTO manifest_packs (pack, manifest)
     SELECT DISTINCT @p, mp.manifest FROM chunk_packs mine JOIN chunk_packs other ON other.chunk = mine.chunk AND other.pack != @p
     JOIN manifest_packs mp ON mp.pack = other.pack WHERE mine.pack = @p`,
  );
  let done = 0;
  let read = 0;
  const total = fresh.length;
  const writes = new WriteBatch(catalog);
  await runPool(fresh, concurrency, async ([id, size, cls, at]) => {
    let entries;
    try {
      const bytes = await storage.getBuffer(indexKey(id));
      requests++;
      if (hashHex(bytes) !== id) throw new Error('does not hash to its name');
      entries = decodePackIndex(bytes);
    } catch (err) {
      if ((err as { code?: string }).code === 'storage-not-found') return; // deleted since the listing
      if ((err as { code?: string }).code && (err as { code?: string }).code !== 'pack-index-corrupt') throw err;
      unreadable.push(`${indexKey(id)}: ${(err as Error).message}`);
      return;
    }
    writes.add(entries.length, () => {
      const n = Number(addPack.run(id, size, cls, at, at).lastInsertRowid);
      for (const e of entries) addChunk.run(chunkKey(e.idRaw), n);
      inheritUsers.run({ p: n });
      done++;
    });
    opts.onProgress?.(++read, total);
  });
  writes.flush();

  // 3. manifests: gone ones out, new ones (and incomplete ones) read
  const removedManifests = catalog.tx(() => {
    const gone = (db.prepare('SELECT n FROM manifests').pluck().all() as number[]).filter((n) => manifestSeen[n] !== MANIFEST_SEEN);
    const delUsers = db.prepare('DELETE FROM manifest_packs WHERE manifest = ?');
    const del = db.prepare('DELETE FROM manifests WHERE n = ?');
    for (const n of gone) {
      delUsers.run(n);
      del.run(n);
    }
    return gone.length;
  });
  toRead.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const upsertManifest = db.prepare(
    'INSERT INTO manifests (id, uploaded_at, complete) VALUES (?, ?, 0) ON CONFLICT (id) DO UPDATE SET uploaded_at = MIN(uploaded_at, excluded.uploaded_at) RETURNING n',
  );
  const packsOfChunk = db.prepare('SELECT pack FROM chunk_packs WHERE chunk = ?').pluck();
  const addUser = db.prepare('INSERT OR IGNORE INTO manifest_packs (pack, manifest) VALUES (?, ?)');
  const setComplete = db.prepare('UPDATE manifests SET complete = ? WHERE n = ?');
  let newManifests = 0;
  await runPool(toRead, Math.min(concurrency, 4), async ([id, at]) => {
    let m: Manifest;
    try {
      const bytes = await storage.getBuffer(manifestKey(id));
      requests++;
      if (hashHex(bytes) !== id) throw new Error('does not hash to its name');
      m = Manifest.parse(bytes);
    } catch (err) {
      if ((err as { code?: string }).code === 'storage-not-found') return;
      if ((err as { code?: string }).code && (err as { code?: string }).code !== 'manifest-corrupt') throw err;
      unreadable.push(`${manifestKey(id)}: ${(err as Error).message}`);
      return;
    }
    writes.add(m.chunkCount, () => {
      const n = (upsertManifest.get(id, at) as { n: number }).n;
      const seen = new Set<bigint>();
      let complete = 1;
      for (let i = 0; i < m.chunkCount; i++) {
        const k = chunkKey(m.idRawAt(i));
        if (seen.has(k)) continue;
        seen.add(k);
        const packs = packsOfChunk.all(k) as number[];
        if (packs.length === 0) complete = 0;
        for (const p of packs) addUser.run(p, n);
      }
      setComplete.run(complete, n);
      newManifests++;
    });
  });
  writes.flush();

  // 4. variants: their manifests are pinned hot
  const knownVariant = db.prepare('SELECT 1 FROM variant_keys WHERE key = ?').pluck();
  const newVariants: string[] = [];
  for await (const o of storage.list(VARIANTS_PREFIX)) if (o.key.endsWith('.json') && knownVariant.get(o.key) === undefined) newVariants.push(o.key);
  requests++;
  const addPin = db.prepare('INSERT OR IGNORE INTO pins (manifest_id) VALUES (?)');
  const addVariant = db.prepare('INSERT OR IGNORE INTO variant_keys (key) VALUES (?)');
  await runPool(newVariants, concurrency, async (key) => {
    let record;
    try {
      record = parseVariantRecord(JSON.parse((await storage.getBuffer(key)).toString('utf8')));
      requests++;
    } catch (err) {
      if ((err as { code?: string }).code === 'storage-not-found') return;
      if (err instanceof SyntaxError) {
        unreadable.push(`${key}: not JSON`);
        return;
      }
      throw err;
    }
    catalog.tx(() => {
      if (record?.status === 'ok' && record.manifest) addPin.run(record.manifest);
      addVariant.run(key);
    });
  });

  // 5. pending marks: the remote's markers are the truth (several reapers may run); their time is the storage's
  const insertPending = db.prepare('INSERT OR REPLACE INTO listed_pending (id, tier, at) VALUES (?, ?, ?)');
  const markers: { key: string }[] = [];
  for await (const o of storage.listTiered(PENDING_PREFIX)) {
    const name = o.key.slice(PENDING_PREFIX.length);
    const m = /^([0-9a-f]{64})\.json$/.exec(name);
    if (!m) continue;
    markers.push({ key: o.key });
    newest = Math.max(newest, o.lastModified);
    insertPending.run(m[1]!, -1, o.lastModified);
  }
  requests++;
  // the marked tier is in the body; read only markers the catalog does not already agree with
  const stale = db
    .prepare('SELECT l.id FROM listed_pending l LEFT JOIN packs p ON p.id = l.id WHERE p.pending_at IS NULL OR p.pending_at != l.at')
    .pluck()
    .all() as string[];
  const setTier = db.prepare('UPDATE listed_pending SET tier = ? WHERE id = ?');
  await runPool(stale, concurrency, async (id) => {
    try {
      const body = JSON.parse((await storage.getBuffer(pendingKey(id))).toString('utf8')) as { tier?: string };
      requests++;
      if (typeof body.tier === 'string' && isTier(body.tier)) setTier.run(tierRank(body.tier), id);
    } catch (err) {
      if ((err as { code?: string }).code === 'storage-not-found' || err instanceof SyntaxError) return;
      throw err;
    }
  });
  const orphanMarkers = db.prepare('SELECT l.id FROM listed_pending l LEFT JOIN packs p ON p.id = l.id WHERE p.n IS NULL ORDER BY l.id').pluck().all() as string[];
  catalog.tx(() => {
    db.exec(`UPDATE packs SET pending_tier = NULL, pending_at = NULL WHERE pending_at IS NOT NULL AND id NOT IN (SELECT id FROM listed_pending)`);
    db.exec(`UPDATE packs SET pending_tier = l.tier, pending_at = l.at FROM listed_pending l WHERE l.id = packs.id AND l.tier >= 0`);
  });

  // 6. reads
  let access = { matched: 0, unknown: 0 };
  if (opts.access) {
    const batch: AccessEntry[] = [];
    const flush = (): void => {
      const r = catalog.recordAccess(batch);
      access = { matched: access.matched + r.matched, unknown: access.unknown + r.unknown };
      batch.length = 0;
    };
    for await (const e of opts.access as AsyncIterable<AccessEntry>) {
      batch.push(e);
      if (batch.length >= 10_000) flush();
    }
    flush();
  }
  const stats = catalog.stats();
  catalog.setMeta('synced_at', String(opts.now ?? Date.now()));
  return {
    packs: stats.packs,
    bytes: stats.bytes,
    manifests: stats.manifests,
    newPacks: done,
    newManifests,
    removedPacks,
    removedManifests,
    unreadable,
    incompleteManifests: stats.incompleteManifests,
    pending: markers.length,
    orphanMarkers,
    access,
    newestStorageTime: newest,
    requests,
  };
}

/**
 * Catalog writes grouped into one transaction per ~50,000 rows: a commit per pack made the
 * first sync of 5,000 packs spend most of its time committing (WAL appends and checkpoints).
 * A sync killed between two flushes loses only uncommitted rows: those packs and manifests
 * are "new" again at the next sync.
 */
class WriteBatch {
  private work: (() => void)[] = [];
  private rows = 0;
  constructor(private readonly catalog: TierCatalog, private readonly maxRows = 50_000) {}

  add(rows: number, fn: () => void): void {
    this.work.push(fn);
    this.rows += rows + 1;
    if (this.rows >= this.maxRows) this.flush();
  }

  flush(): void {
    const work = this.work;
    this.work = [];
    this.rows = 0;
    if (work.length) this.catalog.tx(() => {
      for (const fn of work) fn();
    });
  }
}

export { PACKS_PREFIX };
