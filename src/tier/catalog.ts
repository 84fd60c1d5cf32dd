/**
 * The tier catalog: what a remote holds, as far as tiering needs it, in one SQLite file per
 * remote (client: `.git/dits/tier/<remote>.sqlite`; server: `<dataDir>/tier/<owner>/<repo>.sqlite`).
 *
 *   packs(n, id, size, class, uploaded_at, class_since, last_read_at, pending_tier, pending_at, moved_at)
 *   manifests(n, id, uploaded_at, last_read_at, complete)
 *   manifest_packs(pack, manifest)      users of each pack (integer keys, ordered by pack)
 *   chunk_packs(chunk, pack)            where each chunk sits: chunk = first 8 bytes of its id
 *   pins(manifest_id)                   manifests of variants (proxies, posters, sprites): hot
 *   moves(...)                          every class change made, after it succeeded
 *
 * Times are ms since the epoch. `uploaded_at` is the storage's LastModified when the pack
 * was first seen; `class_since` its LastModified as last listed (S3 sets it anew on the
 * CopyObject of a class change, so it says when the pack entered its class). A chunk key
 * of 8 bytes may, very rarely, stand for two chunks: that only adds users to a pack
 * (keeps it warmer), never removes one. Rebuilt from the remote by a sync at any time:
 * deleting the file loses nothing but access times not recorded on the remote.
 *
 * The planner reads it through `iterate()` in raw rows (no object per row), so a plan over
 * a million packs holds typed arrays, not rows.
 */
import fs from 'node:fs';
import path from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { sqliteDriver } from '../store/sqlite-driver.js';
import { TIERS, type Tier } from './tiers.js';

/** One read of content: a pack (`kind: 'pack'`) or a file version (a manifest id, `'file'`). */
export interface AccessEntry {
  kind: 'pack' | 'file';
  id: string;
  /** ms since the epoch */
  at: number;
}

const SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS packs (
  n INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  size INTEGER NOT NULL,
  class TEXT NOT NULL,
  uploaded_at INTEGER NOT NULL,
  class_since INTEGER NOT NULL,
  last_read_at INTEGER NOT NULL DEFAULT 0,
  pending_tier INTEGER,
  pending_at INTEGER,
  moved_at INTEGER,
  tagged_tier INTEGER,
  indexed INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS manifests (
  n INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  uploaded_at INTEGER NOT NULL,
  last_read_at INTEGER NOT NULL DEFAULT 0,
  complete INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS manifest_packs (pack INTEGER NOT NULL, manifest INTEGER NOT NULL, PRIMARY KEY (pack, manifest)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS manifest_packs_by_manifest ON manifest_packs (manifest);
CREATE TABLE IF NOT EXISTS chunk_packs (chunk INTEGER NOT NULL, pack INTEGER NOT NULL, PRIMARY KEY (chunk, pack)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS chunk_packs_by_pack ON chunk_packs (pack);
CREATE TABLE IF NOT EXISTS pins (manifest_id TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS variant_keys (key TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS moves (at INTEGER NOT NULL, pack TEXT NOT NULL, from_class TEXT NOT NULL, to_class TEXT NOT NULL, how TEXT NOT NULL);
`;

export interface CatalogPack {
  n: number;
  id: string;
  size: number;
  storageClass: string;
  uploadedAt: number;
  classSince: number;
  lastReadAt: number;
  pendingTier: Tier | null;
  pendingAt: number | null;
  movedAt: number | null;
  taggedTier: Tier | null;
}

export interface CatalogStats {
  packs: number;
  bytes: number;
  manifests: number;
  incompleteManifests: number;
  pins: number;
}

/** The first 8 bytes of a chunk id as a signed 64-bit key. */
export function chunkKey(idRaw: Buffer): bigint {
  return idRaw.readBigInt64LE(0);
}

export class TierCatalog {
  private constructor(readonly db: BetterSqlite3.Database, readonly file: string) {}

  /** Opens (creating) the catalog at `file`; ':memory:' for tests. */
  static open(file: string): TierCatalog {
    if (file !== ':memory:') fs.mkdirSync(path.dirname(file), { recursive: true });
    const { Database, options } = sqliteDriver();
    const db = new Database(file, options);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec(SCHEMA);
    // catalogs made before lifecycle mode was tracked lack tagged_tier
    const cols = (db.prepare('PRAGMA table_info(packs)').all() as { name: string }[]).map((c) => c.name);
    if (!cols.includes('tagged_tier')) db.exec('ALTER TABLE packs ADD COLUMN tagged_tier INTEGER');
    const v = db.prepare("SELECT value FROM meta WHERE key = 'schema'").get() as { value: string } | undefined;
    if (v === undefined) db.prepare("INSERT INTO meta (key, value) VALUES ('schema', ?)").run(String(SCHEMA_VERSION));
    else if (Number(v.value) > SCHEMA_VERSION) {
      db.close();
      throw new Error(`${file}: tier catalog version ${v.value} is newer than this dits understands; upgrade dits or delete the file (it is rebuilt from the remote)`);
    }
    return new TierCatalog(db, file);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  tx<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  meta(key: string): string | undefined {
    return (this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined)?.value;
  }

  setMeta(key: string, value: string): void {
    this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, value);
  }

  /**
   * Records reads: each pack's or manifest's last read becomes the latest of what it was
   * and `at`. Ids the catalog does not hold (deleted, or not synced yet) are skipped and
   * counted. Returns how many entries matched.
   */
  recordAccess(entries: Iterable<AccessEntry>): { matched: number; unknown: number } {
    const pack = this.db.prepare('UPDATE packs SET last_read_at = MAX(last_read_at, ?) WHERE id = ?');
    const file = this.db.prepare('UPDATE manifests SET last_read_at = MAX(last_read_at, ?) WHERE id = ?');
    let matched = 0;
    let unknown = 0;
    let batch = 0;
    this.db.exec('BEGIN');
    try {
      for (const e of entries) {
        if (!Number.isFinite(e.at)) continue;
        const r = (e.kind === 'pack' ? pack : file).run(Math.round(e.at), e.id);
        if (r.changes > 0) matched++;
        else unknown++;
        if (++batch >= 50_000) {
          this.db.exec('COMMIT');
          this.db.exec('BEGIN');
          batch = 0;
        }
      }
      this.db.exec('COMMIT');
    } catch (err) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      throw err;
    }
    return { matched, unknown };
  }

  pack(id: string): CatalogPack | null {
    const r = this.db.prepare('SELECT * FROM packs WHERE id = ?').get(id) as Record<string, number | string | null> | undefined;
    return r === undefined ? null : rowToPack(r);
  }

  packs(): CatalogPack[] {
    return (this.db.prepare('SELECT * FROM packs ORDER BY n').all() as Record<string, number | string | null>[]).map(rowToPack);
  }

  /** The manifest ids using a pack (its users). */
  usersOf(packId: string): string[] {
    return (
      this.db
        .prepare('SELECT m.id FROM packs p JOIN manifest_packs mp ON mp.pack = p.n JOIN manifests m ON m.n = mp.manifest WHERE p.id = ? ORDER BY m.id')
        .all(packId) as { id: string }[]
    ).map((r) => r.id);
  }

  stats(): CatalogStats {
    const p = this.db.prepare('SELECT COUNT(*) AS n, COALESCE(SUM(size), 0) AS b FROM packs').get() as { n: number; b: number };
    const m = this.db.prepare('SELECT COUNT(*) AS n, COALESCE(SUM(complete = 0), 0) AS inc FROM manifests').get() as { n: number; inc: number };
    const pins = (this.db.prepare('SELECT COUNT(*) AS n FROM pins').get() as { n: number }).n;
    return { packs: p.n, bytes: p.b, manifests: m.n, incompleteManifests: m.inc, pins };
  }

  /** Largest row numbers (sizes of the planner's typed arrays). */
  maxNumbers(): { pack: number; manifest: number } {
    const p = this.db.prepare('SELECT COALESCE(MAX(n), 0) AS n FROM packs').get() as { n: number };
    const m = this.db.prepare('SELECT COALESCE(MAX(n), 0) AS n FROM manifests').get() as { n: number };
    return { pack: p.n, manifest: m.n };
  }

  /** Raw rows [n, uploaded_at, last_read_at, pinned] of every manifest. */
  iterateManifestUse(): IterableIterator<[number, number, number, number]> {
    return this.db
      .prepare('SELECT m.n, m.uploaded_at, m.last_read_at, (p.manifest_id IS NOT NULL) FROM manifests m LEFT JOIN pins p ON p.manifest_id = m.id')
      .raw(true)
      .iterate() as IterableIterator<[number, number, number, number]>;
  }

  /** Raw rows [pack n, manifest n], ordered by pack. */
  iterateUsers(): IterableIterator<[number, number]> {
    return this.db.prepare('SELECT pack, manifest FROM manifest_packs').raw(true).iterate() as IterableIterator<[number, number]>;
  }

  /** Raw rows [n, id, size, class, uploaded_at, class_since, last_read_at, pending_tier, pending_at, tagged_tier]. */
  iteratePacks(): IterableIterator<[number, string, number, string, number, number, number, number | null, number | null, number | null]> {
    return this.db
      .prepare('SELECT n, id, size, class, uploaded_at, class_since, last_read_at, pending_tier, pending_at, tagged_tier FROM packs')
      .raw(true)
      .iterate() as IterableIterator<[number, string, number, string, number, number, number, number | null, number | null, number | null]>;
  }

  /** Row numbers of the given manifest ids that the catalog holds. */
  manifestNumbers(ids: Iterable<string>): number[] {
    const q = this.db.prepare('SELECT n FROM manifests WHERE id = ?').pluck();
    const out: number[] = [];
    for (const id of ids) {
      const n = q.get(id) as number | undefined;
      if (n !== undefined) out.push(n);
    }
    return out;
  }

  /**
   * Direct rows, for tests and the bench's synthetic catalogs (a sync writes the same rows
   * from a remote). Returns the row number.
   */
  addPack(p: { id: string; size: number; storageClass?: string; uploadedAt: number; classSince?: number; lastReadAt?: number }): number {
    return Number(
      this.db
        .prepare('INSERT INTO packs (id, size, class, uploaded_at, class_since, last_read_at, indexed) VALUES (?, ?, ?, ?, ?, ?, 1)')
        .run(p.id, p.size, p.storageClass ?? 'STANDARD', p.uploadedAt, p.classSince ?? p.uploadedAt, p.lastReadAt ?? 0).lastInsertRowid,
    );
  }

  addManifest(m: { id: string; uploadedAt: number; lastReadAt?: number; packs: number[] }): number {
    return this.tx(() => {
      const n = Number(this.db.prepare('INSERT INTO manifests (id, uploaded_at, last_read_at, complete) VALUES (?, ?, ?, 1)').run(m.id, m.uploadedAt, m.lastReadAt ?? 0).lastInsertRowid);
      const link = this.db.prepare('INSERT OR IGNORE INTO manifest_packs (pack, manifest) VALUES (?, ?)');
      for (const p of m.packs) link.run(p, n);
      return n;
    });
  }

  pin(manifestId: string): void {
    this.db.prepare('INSERT OR IGNORE INTO pins (manifest_id) VALUES (?)').run(manifestId);
  }

  setPending(packId: string, tier: Tier, at: number): void {
    this.db.prepare('UPDATE packs SET pending_tier = ?, pending_at = ? WHERE id = ?').run(TIERS.indexOf(tier), at, packId);
  }

  clearPending(packId: string): void {
    this.db.prepare('UPDATE packs SET pending_tier = NULL, pending_at = NULL WHERE id = ?').run(packId);
  }

  /**
   * A move that succeeded: the pack's new class (copy) or the tier it is tagged for
   * (lifecycle rules change the class later), the log row, its pending mark gone.
   */
  recordMove(packId: string, fromClass: string, toClass: string, at: number, how: 'copy' | 'tags', toTier?: Tier): void {
    this.tx(() => {
      if (how === 'tags') {
        this.db.prepare('UPDATE packs SET tagged_tier = ?, moved_at = ?, pending_tier = NULL, pending_at = NULL WHERE id = ?').run(toTier === undefined ? null : TIERS.indexOf(toTier), at, packId);
      } else {
        this.db.prepare('UPDATE packs SET class = ?, class_since = ?, moved_at = ?, pending_tier = NULL, pending_at = NULL WHERE id = ?').run(toClass, at, at, packId);
      }
      this.db.prepare('INSERT INTO moves (at, pack, from_class, to_class, how) VALUES (?, ?, ?, ?, ?)').run(at, packId, fromClass, toClass, how);
    });
  }

  movesLog(): { at: number; pack: string; from: string; to: string; how: string }[] {
    return this.db.prepare('SELECT at, pack, from_class AS "from", to_class AS "to", how FROM moves ORDER BY rowid').all() as {
      at: number;
      pack: string;
      from: string;
      to: string;
      how: string;
    }[];
  }
}

function rowToPack(r: Record<string, number | string | null>): CatalogPack {
  return {
    n: r.n as number,
    id: r.id as string,
    size: r.size as number,
    storageClass: r.class as string,
    uploadedAt: r.uploaded_at as number,
    classSince: r.class_since as number,
    lastReadAt: r.last_read_at as number,
    pendingTier: r.pending_tier === null ? null : TIERS[r.pending_tier as number]!,
    pendingAt: r.pending_at as number | null,
    movedAt: r.moved_at as number | null,
    taggedTier: r.tagged_tier === null || r.tagged_tier === undefined ? null : TIERS[r.tagged_tier as number]!,
  };
}
