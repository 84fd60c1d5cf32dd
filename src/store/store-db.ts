/**
 * The local store's index, `.git/dits/index.sqlite` (better-sqlite3, WAL): opening it, and
 * its whole schema in one place. The store's own tables are created when it opens, the
 * usage records and the remote content cache on first use (ensureTables), so opening costs
 * no more than it did before they existed. The modules named beside each table read and
 * write it, always through the store (chunk-store.ts), never by opening the file themselves.
 *
 * Write transactions begin with BEGIN IMMEDIATE (`.immediate()`): a deferred one that read
 * first and then wrote got SQLITE_BUSY at once, without waiting, when another process had
 * committed meanwhile.
 */
import fs from 'node:fs';
import path from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { DitsUserError } from '../errors.js';
import { sqliteDriver } from './sqlite-driver.js';

export type StoreDb = BetterSqlite3.Database;

/**
 * 2: manifests are rows of the index (table manifests). A format-1 store (manifests as
 * files only) is still read, and marked 2 when opened with a writable index: a Dits that
 * reads manifests only from files must refuse the store ("store-too-new") rather than take
 * the manifests it cannot see for missing (its gc would then drop their chunks).
 */
export const STORE_FORMAT_VERSION = '2';
/**
 * 3: the store has a variants index (variant-index.ts): proxies, posters and sprites whose
 * content no ref names. A Dits without it would take that content for unreachable and its
 * gc would drop it, so the store is marked 3 when the table is made, and only then: a store
 * that never had variants stays readable by the Dits before them.
 */
export const VARIANTS_FORMAT_VERSION = '3';
/** Formats this version reads (and upgrades to at least STORE_FORMAT_VERSION). */
const READABLE_FORMATS = new Set(['1', STORE_FORMAT_VERSION, VARIANTS_FORMAT_VERSION]);

/** The store's own tables (chunk-store.ts, manifest-store.ts, remote-held.ts, writer-lease.ts). */
const STORE_TABLES = `
  CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS packs(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS chunks(
    id BLOB PRIMARY KEY, pack INTEGER NOT NULL, offset INTEGER NOT NULL,
    stored_len INTEGER NOT NULL, raw_len INTEGER NOT NULL, codec INTEGER NOT NULL, added_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS chunks_by_pack ON chunks(pack);
  CREATE TABLE IF NOT EXISTS quarantine(id TEXT NOT NULL, kind TEXT NOT NULL, reason TEXT NOT NULL, at INTEGER NOT NULL);
  -- Chunks that hold pieces of large manifests: manifests stay hot, so these are never pruned.
  CREATE TABLE IF NOT EXISTS manifest_pieces(manifest TEXT NOT NULL, chunk BLOB NOT NULL, PRIMARY KEY(manifest, chunk)) WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS manifest_pieces_by_chunk ON manifest_pieces(chunk);
  -- Manifests: the whole manifest, or for a large one its list of pieces (DITSMIDX).
  -- A row, not a file: a file each cost most of the time of adding many small files.
  CREATE TABLE IF NOT EXISTS manifests(id TEXT PRIMARY KEY, body BLOB NOT NULL, added_at INTEGER NOT NULL);
  -- Chunks whose bytes are not kept here because a remote verifiably holds them: fetched
  -- from it and verified straight into the working tree (no second local copy), or
  -- pruned after the remote copy was checked. Adding content dedups against them.
  CREATE TABLE IF NOT EXISTS remote_held(id BLOB PRIMARY KEY, remote TEXT NOT NULL, raw_len INTEGER NOT NULL, at INTEGER NOT NULL) WITHOUT ROWID;
  -- Who is writing, and which packs are being written (writer-lease.ts):
  -- kind 'write' (a process that stores or dedups) or 'gc'; ended_at is set when a writer
  -- ends while a gc runs. pack_writers: a pack being appended to, until sealed.
  CREATE TABLE IF NOT EXISTS store_writers(
    id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, pid INTEGER NOT NULL, host TEXT NOT NULL,
    proc_start TEXT, since INTEGER NOT NULL, ended_at INTEGER
  );
  CREATE TABLE IF NOT EXISTS pack_writers(pack INTEGER PRIMARY KEY, writer INTEGER NOT NULL);
`;

/** Tables created on first use (ensureTables), not when the store opens. */
const LATER_TABLES = {
  usage: `
  -- When each local chunk was last used (usage-records.ts; local cache tiering, prune.ts).
  -- A chunk without a row counts as used when it was added (chunks.added_at).
  CREATE TABLE IF NOT EXISTS chunk_last_used(id BLOB PRIMARY KEY, at INTEGER NOT NULL) WITHOUT ROWID;
`,
  'remote-content': `
  -- What each remote holds, cached per remote name (remote-index.ts):
  --   remote_content_remotes    remote name -> storage location (a changed location resets the cache)
  --   remote_content_packs      packs the remote holds: packId, .pack size, chunk count
  --   remote_content_chunks     chunk id -> pack, offset, stored/raw length, codec (a chunk may sit in several packs)
  --   remote_content_manifests  manifests known to be on the remote
  --   remote_content_damaged    chunk copies read back damaged (forgetChunks), until a good copy is added
  CREATE TABLE IF NOT EXISTS remote_content_remotes(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, location TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS remote_content_packs(
    id INTEGER PRIMARY KEY, remote INTEGER NOT NULL, pack_id TEXT NOT NULL, pack_size INTEGER NOT NULL,
    chunk_count INTEGER NOT NULL, synced_at INTEGER NOT NULL, UNIQUE(remote, pack_id)
  );
  CREATE TABLE IF NOT EXISTS remote_content_chunks(
    remote INTEGER NOT NULL, id BLOB NOT NULL, pack INTEGER NOT NULL, offset INTEGER NOT NULL,
    stored_len INTEGER NOT NULL, raw_len INTEGER NOT NULL, codec INTEGER NOT NULL, PRIMARY KEY(remote, id, pack)
  ) WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS remote_content_chunks_by_pack ON remote_content_chunks(pack);
  CREATE TABLE IF NOT EXISTS remote_content_manifests(remote INTEGER NOT NULL, id TEXT NOT NULL, PRIMARY KEY(remote, id)) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS remote_content_damaged(remote INTEGER NOT NULL, id BLOB NOT NULL, pack_id TEXT NOT NULL, PRIMARY KEY(remote, id, pack_id)) WITHOUT ROWID;
`,
  variants: `
  -- Proxies, posters, sprites and previews of original file versions (variant-index.ts):
  -- body is the whole record (JSON); the columns are what lookups need.
  CREATE TABLE IF NOT EXISTS variants(
    original TEXT NOT NULL, kind TEXT NOT NULL, recipe TEXT NOT NULL, status TEXT NOT NULL,
    file_id TEXT, manifest TEXT, body TEXT NOT NULL, at INTEGER NOT NULL, PRIMARY KEY(original, kind, recipe)
  ) WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS variants_by_file ON variants(file_id);
  UPDATE meta SET value = '${VARIANTS_FORMAT_VERSION}' WHERE key = 'format' AND value <> '${VARIANTS_FORMAT_VERSION}';
`,
  'proxy-derived': `
  -- Content edited at a path that showed a proxy (proxy-derived.ts): refused by commit and push.
  CREATE TABLE IF NOT EXISTS proxy_derived(
    file_id TEXT PRIMARY KEY, manifest TEXT NOT NULL, proxy TEXT NOT NULL, original TEXT NOT NULL, path TEXT NOT NULL, at INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS proxy_derived_by_manifest ON proxy_derived(manifest);
`,
};

const ensured = { usage: new WeakSet<StoreDb>(), 'remote-content': new WeakSet<StoreDb>(), variants: new WeakSet<StoreDb>(), 'proxy-derived': new WeakSet<StoreDb>() };

/** Creates a group of tables that are made on first use (once per connection). */
export function ensureTables(db: StoreDb, group: keyof typeof LATER_TABLES): void {
  if (ensured[group].has(db)) return;
  db.exec(LATER_TABLES[group]);
  ensured[group].add(db);
}

/** gc's list of live chunk ids (gc-index.ts): a TEMP table, this connection's own. */
export const GC_LIVE_TABLE = 'CREATE TEMP TABLE IF NOT EXISTS gc_live(id BLOB PRIMARY KEY) WITHOUT ROWID';

/**
 * Opens the index of the store in `dir`, making the store's folders; with `create`, makes the
 * index too (idempotent). `durable`: a commit is fsynced too (synchronous=FULL). Throws
 * 'not-initialised' when there is no store and 'store-too-new' for a newer format.
 */
export function openStoreDb(dir: string, opts: { create?: boolean; durable?: boolean }): StoreDb {
  const dbFile = path.join(dir, 'index.sqlite');
  if (!opts.create && !fs.existsSync(dbFile)) {
    throw new DitsUserError('not-initialised', 'Dits is not set up in this repository yet', { hint: 'run `git dits init` (and `git dits install` once per machine)' });
  }
  for (const sub of ['packs', 'manifests', 'quarantine', 'tmp']) fs.mkdirSync(path.join(dir, sub), { recursive: true });
  const { Database, options } = sqliteDriver();
  const db = new Database(dbFile, options);
  db.pragma('journal_mode = WAL');
  // durable: a commit is fsynced too (manifest rows are what a pointer handed to git needs)
  db.pragma(`synchronous = ${opts.durable ? 'FULL' : 'NORMAL'}`);
  db.pragma('busy_timeout = 30000');
  db.exec(STORE_TABLES);
  const v = db.prepare(`SELECT value FROM meta WHERE key='format'`).get() as { value: string } | undefined;
  if (!v) db.prepare(`INSERT OR IGNORE INTO meta(key, value) VALUES('format', ?)`).run(STORE_FORMAT_VERSION);
  else if (!READABLE_FORMATS.has(v.value)) {
    db.close();
    throw new DitsUserError('store-too-new', `this repository's Dits store is format ${v.value}; this dits understands ${VARIANTS_FORMAT_VERSION}`, { hint: 'upgrade dits' });
  } else if (v.value === '1') {
    try {
      db.prepare(`UPDATE meta SET value = ? WHERE key = 'format'`).run(STORE_FORMAT_VERSION);
    } catch (err) {
      // an index this process cannot write: it writes no manifest row either
      if (!/^SQLITE_READONLY/.test((err as { code?: string }).code ?? '')) {
        db.close();
        throw err;
      }
    }
  }
  return db;
}
