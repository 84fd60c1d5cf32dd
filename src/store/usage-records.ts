/**
 * When each local chunk was last used, for local cache tiering (remote/content/prune.ts):
 * the table chunk_last_used(id, at) of the store's index (store-db.ts). A chunk without a
 * row counts as used when it was added (chunks.added_at). Written in batches by
 * remote/content/chunk-usage.ts through ChunkStore.recordChunkUse.
 */
import { ensureTables, type StoreDb } from './store-db.js';

/** A local chunk and when it was last used (ms). */
export interface ChunkUse {
  id: Buffer;
  pack: number;
  storedLength: number;
  lastUsed: number;
}

/** Records uses (chunk id, ms since the epoch), in one write transaction; keeps each chunk's latest time. */
export function recordChunkUse(db: StoreDb, uses: Iterable<readonly [Buffer, number]>): void {
  ensureTables(db, 'usage');
  const upsert = db.prepare('INSERT INTO chunk_last_used(id, at) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET at = max(at, excluded.at)');
  db.transaction(() => {
    for (const [id, at] of uses) upsert.run(id, at);
  }).immediate();
}

/** Forgets the uses of these chunks (they left the store), in one write transaction. */
export function forgetChunkUse(db: StoreDb, ids: readonly Buffer[]): void {
  ensureTables(db, 'usage');
  const forget = db.prepare('DELETE FROM chunk_last_used WHERE id = ?');
  db.transaction(() => {
    for (const id of ids) forget.run(id);
  }).immediate();
}

/**
 * Local chunks, least recently used first, leaving out the chunks that hold pieces of large
 * manifests (manifests stay hot, so those are never pruned).
 */
export function chunksByLastUse(db: StoreDb): IterableIterator<ChunkUse> {
  ensureTables(db, 'usage');
  return db
    .prepare(
      `SELECT c.id AS id, c.pack AS pack, c.stored_len AS storedLength, max(c.added_at, coalesce(u.at, 0)) AS lastUsed
       FROM chunks c LEFT JOIN chunk_last_used u ON u.id = c.id WHERE c.id NOT IN (SELECT chunk FROM manifest_pieces) ORDER BY lastUsed ASC`,
    )
    .iterate() as IterableIterator<ChunkUse>;
}
