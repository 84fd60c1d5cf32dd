/**
 * The queries of gc (gc.ts) on the store's index: which chunks are live (the TEMP table
 * gc_live, this connection's own), what each pack holds, and the deletion of dead chunk rows.
 * gc calls them through ChunkStore, inside the transactions it opens there.
 */
import { ENTRY_HEAD_SIZE, PACK_HEADER_SIZE } from './pack-format.js';
import { GC_LIVE_TABLE, type StoreDb } from './store-db.js';

/** A pack's rows as gc sees them (packUsage). */
export interface PackUsage {
  pack: number;
  /** chunk rows */
  total: number;
  /** rows neither live nor younger than the cutoff, and their bytes with entry heads */
  dead: number;
  deadBytes: number;
  /** end of the last indexed chunk (the header's end when none) */
  indexedEnd: number;
  created: number;
}

/** Empties the live set, then runs `fill` in one read transaction, `mark` adding a chunk id to it. */
export function markLive(db: StoreDb, fill: (mark: (idRaw: Buffer) => void) => void): void {
  db.exec(`${GC_LIVE_TABLE}; DELETE FROM gc_live;`);
  const ins = db.prepare('INSERT OR IGNORE INTO gc_live(id) VALUES (?)');
  db.transaction(() => fill((id) => ins.run(id)))();
}

/** A test of the live set (markLive). */
export function liveTest(db: StoreDb): (idRaw: Buffer) => boolean {
  const isLive = db.prepare('SELECT 1 FROM gc_live WHERE id = ?').pluck();
  return (id) => isLive.get(id) !== undefined;
}

/** Every pack with its rows counted against the live set (chunks added after `cutoff` are not dead). */
export function packUsage(db: StoreDb, cutoff: number): PackUsage[] {
  return db
    .prepare(
      `SELECT p.id AS pack,
              count(c.id) AS total,
              sum(CASE WHEN l.id IS NULL AND c.added_at <= ? THEN 1 ELSE 0 END) AS dead,
              sum(CASE WHEN l.id IS NULL AND c.added_at <= ? THEN c.stored_len + ${ENTRY_HEAD_SIZE} ELSE 0 END) AS deadBytes,
              coalesce(max(c.offset + c.stored_len), ${PACK_HEADER_SIZE}) AS indexedEnd,
              p.created_at AS created
         FROM packs p LEFT JOIN chunks c ON c.pack = p.id LEFT JOIN gc_live l ON l.id = c.id
        GROUP BY p.id`,
    )
    .all(cutoff, cutoff) as PackUsage[];
}

/**
 * Deletes the rows of chunks added by `cutoff` that are not in the live set; returns them.
 * The caller runs it inside its write transaction (gc checks for writers in the same one).
 */
export function deleteDeadChunks(db: StoreDb, cutoff: number): { id: Buffer; pack: number }[] {
  const dead = db.prepare('SELECT id, pack FROM chunks WHERE added_at <= ? AND NOT EXISTS (SELECT 1 FROM gc_live l WHERE l.id = chunks.id)').all(cutoff) as { id: Buffer; pack: number }[];
  const del = db.prepare('DELETE FROM chunks WHERE id = ?');
  for (const r of dead) del.run(r.id);
  return dead;
}
