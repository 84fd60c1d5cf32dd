/**
 * RemoteIndex: what a remote holds, cached in the local store's SQLite (index.sqlite), per
 * remote name; opened with ChunkStore.remoteIndex. Filled from the remote's pack indexes
 * (remote/content/sync-remote-index.ts) and by our own pushes, so "which chunks does the
 * remote have" is a local lookup after one listing.
 *
 * Tables (schema: store-db.ts; created on first use):
 *   remote_content_remotes    remote name -> storage location (a changed location resets the cache)
 *   remote_content_packs      packs the remote holds: packId, .pack size, chunk count
 *   remote_content_chunks     chunk id -> pack, offset, stored/raw length, codec (a chunk may sit in several packs)
 *   remote_content_manifests  manifests known to be on the remote
 *   remote_content_damaged    chunk copies read back damaged (forgetChunks), until a good copy is added
 *
 * The cache only ever claims what was seen on the remote (an index downloaded and verified
 * by its id, or an upload that completed); a sync drops packs that left the listing.
 */
import { ensureTables, type StoreDb } from './store-db.js';

export interface RemoteChunkLocation {
  packId: string;
  packSize: number;
  offset: number;
  storedLength: number;
  rawLength: number;
  codec: number;
}

/** A chunk entry of a remote pack's index (remote/content/pack-index.ts: PackIndexEntry). */
export interface RemotePackEntry {
  idRaw: Buffer;
  offset: number;
  storedLength: number;
  rawLength: number;
  codec: number;
}

export interface RemotePackInfo {
  packId: string;
  size: number;
  chunkCount: number;
}

export class RemoteIndex {
  private readonly stmts;

  private constructor(
    private readonly db: StoreDb,
    readonly remote: number,
  ) {
    this.stmts = {
      lookup: db.prepare(`
        SELECT p.pack_id AS packId, p.pack_size AS packSize, c.offset AS offset, c.stored_len AS storedLength, c.raw_len AS rawLength, c.codec AS codec
        FROM remote_content_chunks c JOIN remote_content_packs p ON p.id = c.pack
        WHERE c.remote = ? AND c.id = ? LIMIT 1`),
      lookupAll: db.prepare(`
        SELECT p.pack_id AS packId, p.pack_size AS packSize, c.offset AS offset, c.stored_len AS storedLength, c.raw_len AS rawLength, c.codec AS codec
        FROM remote_content_chunks c JOIN remote_content_packs p ON p.id = c.pack
        WHERE c.remote = ? AND c.id = ?`),
      has: db.prepare('SELECT 1 FROM remote_content_chunks WHERE remote = ? AND id = ? LIMIT 1').pluck(),
      packs: db.prepare('SELECT pack_id AS packId, pack_size AS size, chunk_count AS chunkCount FROM remote_content_packs WHERE remote = ?'),
      addPack: db.prepare('INSERT OR IGNORE INTO remote_content_packs(remote, pack_id, pack_size, chunk_count, synced_at) VALUES (?, ?, ?, ?, ?)'),
      packRow: db.prepare('SELECT id FROM remote_content_packs WHERE remote = ? AND pack_id = ?').pluck(),
      addChunk: db.prepare('INSERT OR IGNORE INTO remote_content_chunks(remote, id, pack, offset, stored_len, raw_len, codec) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      delChunks: db.prepare('DELETE FROM remote_content_chunks WHERE pack = ?'),
      delChunk: db.prepare('DELETE FROM remote_content_chunks WHERE pack = ? AND id = ?'),
      addDamaged: db.prepare('INSERT OR IGNORE INTO remote_content_damaged(remote, id, pack_id) VALUES (?, ?, ?)'),
      delDamaged: db.prepare('DELETE FROM remote_content_damaged WHERE remote = ? AND id = ?'),
      damaged: db.prepare('SELECT pack_id FROM remote_content_damaged WHERE remote = ? AND id = ? LIMIT 1').pluck(),
      packChunks: db.prepare('SELECT id FROM remote_content_chunks WHERE pack = ?').pluck(),
      delPack: db.prepare('DELETE FROM remote_content_packs WHERE id = ?'),
      hasManifest: db.prepare('SELECT 1 FROM remote_content_manifests WHERE remote = ? AND id = ?').pluck(),
      addManifest: db.prepare('INSERT OR IGNORE INTO remote_content_manifests(remote, id) VALUES (?, ?)'),
    };
  }

  /**
   * The cache for `remoteName`. `location` is the storage's location: if the remote now
   * points somewhere else, what was cached for it is forgotten.
   */
  static open(db: StoreDb, remoteName: string, location: string): RemoteIndex {
    ensureTables(db, 'remote-content');
    const row = db.prepare('SELECT id, location FROM remote_content_remotes WHERE name = ?').get(remoteName) as { id: number; location: string } | undefined;
    let id: number;
    if (!row) {
      id = Number(db.prepare('INSERT INTO remote_content_remotes(name, location) VALUES (?, ?)').run(remoteName, location).lastInsertRowid);
    } else {
      id = row.id;
      if (row.location !== location) {
        db.transaction(() => {
          db.prepare('DELETE FROM remote_content_chunks WHERE remote = ?').run(id);
          db.prepare('DELETE FROM remote_content_packs WHERE remote = ?').run(id);
          db.prepare('DELETE FROM remote_content_manifests WHERE remote = ?').run(id);
          db.prepare('DELETE FROM remote_content_damaged WHERE remote = ?').run(id);
          db.prepare('UPDATE remote_content_remotes SET location = ? WHERE id = ?').run(location, id);
        }).immediate();
      }
    }
    return new RemoteIndex(db, id);
  }

  has(idRaw: Buffer): boolean {
    return this.stmts.has.get(this.remote, idRaw) !== undefined;
  }

  lookup(idRaw: Buffer): RemoteChunkLocation | undefined {
    return this.stmts.lookup.get(this.remote, idRaw) as RemoteChunkLocation | undefined;
  }

  /** Every copy of a chunk the remote holds (a chunk may sit in several packs). */
  locations(idRaw: Buffer): RemoteChunkLocation[] {
    return this.stmts.lookupAll.all(this.remote, idRaw) as RemoteChunkLocation[];
  }

  packs(): Map<string, RemotePackInfo> {
    const out = new Map<string, RemotePackInfo>();
    for (const p of this.stmts.packs.all(this.remote) as RemotePackInfo[]) out.set(p.packId, p);
    return out;
  }

  /** Records a complete pack and its chunks (idempotent). */
  addPack(packId: string, packSize: number, entries: readonly RemotePackEntry[], now = Date.now()): void {
    this.db.transaction(() => {
      this.stmts.addPack.run(this.remote, packId, packSize, entries.length, now);
      const row = this.stmts.packRow.get(this.remote, packId) as number;
      for (const e of entries) {
        this.stmts.addChunk.run(this.remote, e.idRaw, row, e.offset, e.storedLength, e.rawLength, e.codec);
        this.stmts.delDamaged.run(this.remote, e.idRaw);
      }
    }).immediate();
  }

  removePack(packId: string): void {
    const row = this.stmts.packRow.get(this.remote, packId) as number | undefined;
    if (row === undefined) return;
    this.db.transaction(() => {
      this.stmts.delChunks.run(row);
      this.stmts.delPack.run(row);
    }).immediate();
  }

  /** The chunk ids the cache lists in a pack. */
  packChunkIds(packId: string): Buffer[] {
    const row = this.stmts.packRow.get(this.remote, packId) as number | undefined;
    return row === undefined ? [] : (this.stmts.packChunks.all(row) as Buffer[]);
  }

  /**
   * Forgets that a pack holds these chunks (their copy there was read back damaged): lookups
   * no longer find them there, so a push uploads them again and fetch and prune use another
   * copy. The pack's other chunks stay; a sync keeps the exclusion while the pack is unchanged.
   * The damaged copies are remembered (damagedPack) until a pack with the chunk is added.
   */
  forgetChunks(packId: string, ids: readonly Buffer[]): void {
    const row = this.stmts.packRow.get(this.remote, packId) as number | undefined;
    this.db.transaction(() => {
      for (const id of ids) {
        if (row !== undefined) this.stmts.delChunk.run(row, id);
        this.stmts.addDamaged.run(this.remote, id, packId);
      }
    }).immediate();
  }

  /** The pack where this chunk's copy read back damaged, if no good copy is known since. */
  damagedPack(idRaw: Buffer): string | undefined {
    return this.stmts.damaged.get(this.remote, idRaw) as string | undefined;
  }

  hasManifest(id: string): boolean {
    return this.stmts.hasManifest.get(this.remote, id) !== undefined;
  }

  addManifests(ids: Iterable<string>): void {
    this.db.transaction(() => {
      for (const id of ids) this.stmts.addManifest.run(this.remote, id);
    }).immediate();
  }

  stats(): { packs: number; chunks: number; storedBytes: number } {
    const p = this.db.prepare('SELECT count(*) AS n FROM remote_content_packs WHERE remote = ?').get(this.remote) as { n: number };
    const c = this.db
      .prepare('SELECT count(DISTINCT id) AS n, coalesce(sum(stored_len), 0) AS s FROM remote_content_chunks WHERE remote = ?')
      .get(this.remote) as { n: number; s: number };
    return { packs: p.n, chunks: c.n, storedBytes: c.s };
  }
}

/** Which of `ids` some remote is known to hold (recorded by a push or fetch, any remote). */
export function manifestsOnAnyRemote(db: StoreDb, ids: readonly string[]): Set<string> {
  // (asked without creating the tables: none means nothing recorded)
  const table = db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'remote_content_manifests'`).pluck().get();
  if (!table || ids.length === 0) return new Set();
  const q = db.prepare('SELECT 1 FROM remote_content_manifests WHERE id = ? LIMIT 1').pluck();
  return new Set(ids.filter((id) => q.get(id) !== undefined));
}
