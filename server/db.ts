/**
 * The server's SQLite database (better-sqlite3): accounts, tokens, repositories, grants,
 * locks, the audit log and access tracking.
 *
 * Contract:
 * - WAL journal and `synchronous = NORMAL`: a crash can lose the last transactions but
 *   never corrupts the file; readers (the admin CLI on the same data dir) never block the
 *   server's writer.
 * - Foreign keys on; deleting a repository removes its grants, locks and access rows.
 * - Schema changes are numbered migrations recorded in `migrations`; each runs in its
 *   own transaction, so a half-applied migration never exists.
 * - Every write that touches more than one row goes through `db.tx`.
 * - `':memory:'` works (tests); WAL is then silently not used.
 */
import Database from 'better-sqlite3';

export interface ServerDb {
  readonly sqlite: Database.Database;
  /** A prepared statement, cached by its SQL text. */
  stmt(sql: string): Database.Statement;
  /** Runs `fn` in an IMMEDIATE transaction (takes the write lock up front, so two
   *  processes writing the same rows serialise instead of failing on upgrade); commits
   *  when it returns, rolls back when it throws. A call inside another joins it. */
  tx<T>(fn: () => T): T;
  /** Checkpoints the WAL and closes. Idempotent. */
  close(): void;
  readonly open: boolean;
}

export interface OpenServerDbOptions {
  /** How long a writer waits for another process's write lock, in ms. */
  busyTimeoutMs?: number;
  readonly?: boolean;
}

/** Ordered; never edit a shipped migration, add a new one. */
const MIGRATIONS: readonly { version: number; name: string; sql: string }[] = [
  {
    version: 1,
    name: 'accounts, repositories, locks, audit, access',
    sql: `
      CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        is_admin INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL
      );
      CREATE TABLE tokens (
        id INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        hash TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        last_used_at TEXT,
        revoked_at TEXT
      );
      -- a name is reusable once the token that had it is revoked
      CREATE UNIQUE INDEX tokens_active_name ON tokens(user_id, name) WHERE revoked_at IS NULL;
      CREATE TABLE repos (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL
      );
      CREATE TABLE grants (
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        repo_id INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
        role TEXT NOT NULL CHECK (role IN ('read', 'write', 'admin')),
        PRIMARY KEY (user_id, repo_id)
      );
      CREATE TABLE locks (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        repo_id INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
        path TEXT NOT NULL,
        owner_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        ref TEXT,
        locked_at TEXT NOT NULL
      );
      -- the one rule that makes "two clients, same path, same instant: one wins" hold
      -- even across processes
      CREATE UNIQUE INDEX locks_repo_path ON locks(repo_id, path);
      -- listing and verify page through a repository's locks in id order
      CREATE INDEX locks_repo_order ON locks(repo_id, id);
      -- text columns, not foreign keys: the log outlives users and repositories
      CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        repo TEXT,
        path TEXT,
        lock_id TEXT,
        detail TEXT
      );
      CREATE INDEX audit_repo ON audit(repo, id);
      CREATE TABLE access (
        repo_id INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
        kind TEXT NOT NULL CHECK (kind IN ('pack', 'file')),
        object_id TEXT NOT NULL,
        last_read_at TEXT NOT NULL,
        read_count INTEGER NOT NULL,
        PRIMARY KEY (repo_id, kind, object_id)
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 2,
    name: 'settings; cached logical sizes of manifests for status',
    sql: `
      CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT
      ) WITHOUT ROWID;
      -- the file size each manifest describes, read once per manifest (they are immutable)
      CREATE TABLE manifest_sizes (
        repo_id INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
        manifest_id TEXT NOT NULL,
        file_size INTEGER NOT NULL,
        PRIMARY KEY (repo_id, manifest_id)
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 3,
    name: 'background jobs (proxies made from pushed video) and the workers that run them',
    sql: `
      -- server/jobs/queue.ts owns every statement on these tables
      CREATE TABLE jobs (
        id INTEGER PRIMARY KEY,
        repo_id INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        original TEXT NOT NULL,
        manifest TEXT NOT NULL,
        path_hint TEXT,
        state TEXT NOT NULL CHECK (state IN ('queued', 'leased', 'done', 'failed', 'dead')),
        -- leases taken (a deferral gives its lease back uncounted)
        attempts INTEGER NOT NULL DEFAULT 0,
        deferrals INTEGER NOT NULL DEFAULT 0,
        lease_owner TEXT,
        lease_until INTEGER,
        heartbeat_at INTEGER,
        -- ms since the epoch; a queued or failed job is not leased before it
        not_before INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      );
      -- enqueue is idempotent per repository, original file and kind
      CREATE UNIQUE INDEX jobs_identity ON jobs(repo_id, original, kind);
      CREATE INDEX jobs_ready ON jobs(state, not_before, id);
      CREATE TABLE workers (
        id TEXT PRIMARY KEY,
        pid INTEGER NOT NULL,
        host TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        seen_at INTEGER NOT NULL,
        job_id INTEGER,
        jobs_done INTEGER NOT NULL DEFAULT 0,
        jobs_failed INTEGER NOT NULL DEFAULT 0
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 4,
    name: 'thaw budgets and what thaws spent, per repository',
    sql: `
      -- server/routes/thaw.ts owns every statement on these tables
      CREATE TABLE thaw_budgets (
        repo_id INTEGER PRIMARY KEY REFERENCES repos(id) ON DELETE CASCADE,
        -- dollars a calendar month (UTC) of restores may cost; no row: no limit
        monthly_dollars REAL NOT NULL CHECK (monthly_dollars >= 0)
      );
      CREATE TABLE thaw_spend (
        id INTEGER PRIMARY KEY,
        repo_id INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
        thaw_id TEXT NOT NULL,
        -- 'YYYY-MM' (UTC) the spend counts against
        month TEXT NOT NULL,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        -- reserved before the restores are asked, set to what was started after
        dollars REAL NOT NULL
      );
      CREATE INDEX thaw_spend_month ON thaw_spend(repo_id, month);
    `,
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** Opens (creating if needed) and migrates the database at `file` (or ':memory:'). */
export function openServerDb(file: string, options: OpenServerDbOptions = {}): ServerDb {
  const sqlite = new Database(file, { readonly: options.readonly ?? false });
  try {
    sqlite.pragma(`busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000))}`);
    if (!options.readonly) {
      sqlite.pragma('journal_mode = WAL');
      sqlite.pragma('synchronous = NORMAL');
    }
    sqlite.pragma('foreign_keys = ON');
    if (!options.readonly) migrate(sqlite);
  } catch (err) {
    sqlite.close();
    throw err;
  }

  const cache = new Map<string, Database.Statement>();
  let closed = false;
  // Prepared once; better-sqlite3's own transaction() builds four wrappers per call.
  let control: { begin: Database.Statement; commit: Database.Statement; rollback: Database.Statement } | undefined;
  return {
    sqlite,
    stmt(sql) {
      let s = cache.get(sql);
      if (s === undefined) {
        s = sqlite.prepare(sql);
        cache.set(sql, s);
      }
      return s;
    },
    tx(fn) {
      if (sqlite.inTransaction) return fn();
      control ??= {
        begin: sqlite.prepare('BEGIN IMMEDIATE'),
        commit: sqlite.prepare('COMMIT'),
        rollback: sqlite.prepare('ROLLBACK'),
      };
      control.begin.run();
      try {
        const result = fn();
        control.commit.run();
        return result;
      } catch (err) {
        if (sqlite.inTransaction) control.rollback.run();
        throw err;
      }
    },
    close() {
      if (closed) return;
      closed = true;
      cache.clear();
      control = undefined;
      if (!options.readonly && file !== ':memory:') {
        try {
          sqlite.pragma('wal_checkpoint(TRUNCATE)');
        } catch {
          // another process holds the database; its own close checkpoints
        }
      }
      sqlite.close();
    },
    get open() {
      return !closed && sqlite.open;
    },
  };
}

function migrate(sqlite: Database.Database): void {
  sqlite.exec(`CREATE TABLE IF NOT EXISTS migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TEXT NOT NULL
  )`);
  const applied = new Set(
    (sqlite.prepare('SELECT version FROM migrations').all() as { version: number }[]).map((r) => r.version),
  );
  for (const m of MIGRATIONS) {
    if (applied.has(m.version)) continue;
    sqlite
      .transaction(() => {
        // re-check inside the write lock: another process may have just migrated
        const done = sqlite.prepare('SELECT 1 FROM migrations WHERE version = ?').get(m.version);
        if (done !== undefined) return;
        sqlite.exec(m.sql);
        sqlite
          .prepare('INSERT INTO migrations (version, name, applied_at) VALUES (?, ?, ?)')
          .run(m.version, m.name, new Date().toISOString());
      })
      .immediate();
  }
}
