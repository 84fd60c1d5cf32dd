/**
 * Administration of a Dits server's database: users, tokens, repositories, grants, the
 * audit log and a status summary. Used by the HTTP routes and, directly on the data
 * dir's SQLite, by the `git dits server ...` CLI commands (WAL lets the CLI write while
 * the server runs).
 *
 * Every function takes the database first, throws DitsUserError with a stable code for
 * the caller's mistakes (unknown user, duplicate repository, bad name), and records
 * what it changed in the audit log under `opts.actor` (default 'admin').
 */
import { createHash, randomBytes } from 'node:crypto';
import { DitsUserError } from '../src/errors.js';
import { SCHEMA_VERSION, type ServerDb } from './db.js';
import { checkRepoName } from './validate.js';
import { readMirrorState, type MirrorState } from './mirror-state.js';

export type Role = 'read' | 'write' | 'admin';
export const ROLES: readonly Role[] = ['read', 'write', 'admin'];
const ROLE_RANK: Record<Role, number> = { read: 1, write: 2, admin: 3 };

/** True when `have` allows what `need` asks for. */
export function roleAllows(have: Role, need: Role): boolean {
  return ROLE_RANK[have] >= ROLE_RANK[need];
}

export interface AdminOptions {
  clock?: () => Date;
  /** Who is acting, for the audit log. */
  actor?: string;
}

export interface User {
  id: number;
  name: string;
  isAdmin: boolean;
  createdAt: string;
}

export interface TokenInfo {
  id: number;
  user: string;
  name: string;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

export interface Repo {
  id: number;
  name: string;
  createdAt: string;
}

export interface AuditEntry {
  id: number;
  at: string;
  actor: string;
  action: string;
  repo: string | null;
  path: string | null;
  lockId: string | null;
  detail: string | null;
}

const USER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const TOKEN_NAME_MAX = 100;
/** Tokens start with this, so they are recognisable in a leaked log or config file. */
export const TOKEN_PREFIX = 'dits_';

function nowIso(opts: AdminOptions | undefined): string {
  return (opts?.clock ?? (() => new Date()))().toISOString();
}

/** SHA-256 hex. Tokens are 256 random bits, so a fast unsalted hash is enough: there
 *  is nothing to brute-force that is smaller than the token itself. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function recordAudit(
  db: ServerDb,
  entry: { at: string; actor: string; action: string; repo?: string; path?: string; lockId?: string; detail?: string },
): void {
  db.stmt('INSERT INTO audit (at, actor, action, repo, path, lock_id, detail) VALUES (?, ?, ?, ?, ?, ?, ?)').run(
    entry.at,
    entry.actor,
    entry.action,
    entry.repo ?? null,
    entry.path ?? null,
    entry.lockId ?? null,
    entry.detail ?? null,
  );
}

// ---------------------------------------------------------------------------
// users

interface UserRow {
  id: number;
  name: string;
  is_admin: number;
  created_at: string;
}

function toUser(r: UserRow): User {
  return { id: r.id, name: r.name, isAdmin: r.is_admin === 1, createdAt: r.created_at };
}

export function addUser(db: ServerDb, name: string, opts: AdminOptions & { admin?: boolean } = {}): User {
  if (!USER_NAME.test(name)) {
    throw new DitsUserError('invalid-user-name', `invalid user name ${JSON.stringify(name)}`, {
      hint: 'use letters, digits, ".", "_" and "-", starting with a letter or digit, at most 64 characters',
    });
  }
  const at = nowIso(opts);
  return db.tx(() => {
    if (db.stmt('SELECT 1 FROM users WHERE name = ?').get(name) !== undefined) {
      throw new DitsUserError('user-exists', `user '${name}' already exists`);
    }
    const info = db.stmt('INSERT INTO users (name, is_admin, created_at) VALUES (?, ?, ?)').run(name, opts.admin ? 1 : 0, at);
    recordAudit(db, { at, actor: opts.actor ?? 'admin', action: 'user.add', detail: `${name}${opts.admin ? ' (site admin)' : ''}` });
    return { id: Number(info.lastInsertRowid), name, isAdmin: opts.admin === true, createdAt: at };
  });
}

export function getUser(db: ServerDb, name: string): User | undefined {
  const row = db.stmt('SELECT id, name, is_admin, created_at FROM users WHERE name = ?').get(name) as UserRow | undefined;
  return row === undefined ? undefined : toUser(row);
}

function requireUser(db: ServerDb, name: string): User {
  const user = getUser(db, name);
  if (user === undefined) throw new DitsUserError('user-not-found', `no user named '${name}'`);
  return user;
}

export function listUsers(db: ServerDb): User[] {
  return (db.stmt('SELECT id, name, is_admin, created_at FROM users ORDER BY name').all() as UserRow[]).map(toUser);
}

export function setSiteAdmin(db: ServerDb, name: string, admin: boolean, opts: AdminOptions = {}): void {
  const at = nowIso(opts);
  db.tx(() => {
    requireUser(db, name);
    db.stmt('UPDATE users SET is_admin = ? WHERE name = ?').run(admin ? 1 : 0, name);
    recordAudit(db, { at, actor: opts.actor ?? 'admin', action: admin ? 'user.admin-grant' : 'user.admin-revoke', detail: name });
  });
}

/** Removes the user with their tokens, grants and locks. */
export function removeUser(db: ServerDb, name: string, opts: AdminOptions = {}): void {
  const at = nowIso(opts);
  db.tx(() => {
    const user = requireUser(db, name);
    db.stmt('DELETE FROM users WHERE id = ?').run(user.id);
    recordAudit(db, { at, actor: opts.actor ?? 'admin', action: 'user.remove', detail: name });
  });
}

// ---------------------------------------------------------------------------
// tokens

/**
 * Creates a token for `user` and returns its plaintext, the only time it exists: the
 * database keeps only its hash. `name` labels it (unique among the user's live tokens).
 */
export function createToken(db: ServerDb, user: string, name: string, opts: AdminOptions = {}): string {
  if (name.length === 0 || name.length > TOKEN_NAME_MAX) {
    throw new DitsUserError('invalid-token-name', `token names are 1 to ${TOKEN_NAME_MAX} characters`);
  }
  const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
  const at = nowIso(opts);
  db.tx(() => {
    const u = requireUser(db, user);
    const clash = db.stmt('SELECT 1 FROM tokens WHERE user_id = ? AND name = ? AND revoked_at IS NULL').get(u.id, name);
    if (clash !== undefined) {
      throw new DitsUserError('token-exists', `user '${user}' already has a token named '${name}'`, {
        hint: 'revoke it first or choose another name',
      });
    }
    db.stmt('INSERT INTO tokens (user_id, name, hash, created_at) VALUES (?, ?, ?, ?)').run(u.id, name, hashToken(token), at);
    recordAudit(db, { at, actor: opts.actor ?? 'admin', action: 'token.create', detail: `${user}:${name}` });
  });
  return token;
}

/** Revokes the user's live token called `name`. Requests with it answer 401 at once. */
export function revokeToken(db: ServerDb, user: string, name: string, opts: AdminOptions = {}): void {
  const at = nowIso(opts);
  db.tx(() => {
    const u = requireUser(db, user);
    const info = db.stmt('UPDATE tokens SET revoked_at = ? WHERE user_id = ? AND name = ? AND revoked_at IS NULL').run(at, u.id, name);
    if (info.changes === 0) throw new DitsUserError('token-not-found', `user '${user}' has no live token named '${name}'`);
    recordAudit(db, { at, actor: opts.actor ?? 'admin', action: 'token.revoke', detail: `${user}:${name}` });
  });
}

export function listTokens(db: ServerDb, user?: string): TokenInfo[] {
  const sql = `SELECT t.id, u.name AS user, t.name, t.created_at, t.last_used_at, t.revoked_at
    FROM tokens t JOIN users u ON u.id = t.user_id ${user === undefined ? '' : 'WHERE u.name = ?'}
    ORDER BY u.name, t.created_at, t.id`;
  const rows = (user === undefined ? db.stmt(sql).all() : db.stmt(sql).all(user)) as {
    id: number;
    user: string;
    name: string;
    created_at: string;
    last_used_at: string | null;
    revoked_at: string | null;
  }[];
  return rows.map((r) => ({
    id: r.id,
    user: r.user,
    name: r.name,
    createdAt: r.created_at,
    lastUsedAt: r.last_used_at,
    revokedAt: r.revoked_at,
  }));
}

// ---------------------------------------------------------------------------
// repositories and grants

export function parseRepoName(name: string): string {
  const r = checkRepoName(name);
  if (!r.ok) throw new DitsUserError('invalid-repo-name', `invalid repository name ${JSON.stringify(name)}: ${r.reason}`);
  return r.name;
}

export function getRepo(db: ServerDb, name: string): Repo | undefined {
  const row = db.stmt('SELECT id, name, created_at FROM repos WHERE name = ?').get(name) as
    | { id: number; name: string; created_at: string }
    | undefined;
  return row === undefined ? undefined : { id: row.id, name: row.name, createdAt: row.created_at };
}

function requireRepo(db: ServerDb, name: string): Repo {
  const repo = getRepo(db, name);
  if (repo === undefined) throw new DitsUserError('repo-not-found', `no repository named '${name}'`);
  return repo;
}

export function createRepo(db: ServerDb, name: string, opts: AdminOptions = {}): Repo {
  const valid = parseRepoName(name);
  const at = nowIso(opts);
  return db.tx(() => {
    if (getRepo(db, valid) !== undefined) throw new DitsUserError('repo-exists', `repository '${valid}' already exists`);
    const info = db.stmt('INSERT INTO repos (name, created_at) VALUES (?, ?)').run(valid, at);
    recordAudit(db, { at, actor: opts.actor ?? 'admin', action: 'repo.create', repo: valid });
    return { id: Number(info.lastInsertRowid), name: valid, createdAt: at };
  });
}

export interface RepoSummary {
  name: string;
  createdAt: string;
  locks: number;
  /** The caller's role, when listed for a user. */
  role?: Role;
}

/**
 * All repositories, or (with `forUser`) those the user can read, with their role.
 * Site admins see all, as admin.
 */
export function listRepos(db: ServerDb, opts: { forUser?: string } = {}): RepoSummary[] {
  const base = `SELECT r.name, r.created_at, (SELECT COUNT(*) FROM locks l WHERE l.repo_id = r.id) AS locks`;
  if (opts.forUser === undefined) {
    const rows = db.stmt(`${base} FROM repos r ORDER BY r.name`).all() as { name: string; created_at: string; locks: number }[];
    return rows.map((r) => ({ name: r.name, createdAt: r.created_at, locks: r.locks }));
  }
  const user = requireUser(db, opts.forUser);
  if (user.isAdmin) {
    return listRepos(db).map((r) => ({ ...r, role: 'admin' as const }));
  }
  const rows = db
    .stmt(`${base}, g.role FROM repos r JOIN grants g ON g.repo_id = r.id AND g.user_id = ? ORDER BY r.name`)
    .all(user.id) as { name: string; created_at: string; locks: number; role: Role }[];
  return rows.map((r) => ({ name: r.name, createdAt: r.created_at, locks: r.locks, role: r.role }));
}

/** Deletes the repository's records (grants, locks, access rows). Stored content is the
 *  storage layer's to remove. */
export function deleteRepo(db: ServerDb, name: string, opts: AdminOptions = {}): void {
  const valid = parseRepoName(name);
  const at = nowIso(opts);
  db.tx(() => {
    const repo = requireRepo(db, valid);
    db.stmt('DELETE FROM repos WHERE id = ?').run(repo.id);
    recordAudit(db, { at, actor: opts.actor ?? 'admin', action: 'repo.delete', repo: valid });
  });
}

/** Gives `user` exactly `role` on `repo` (replacing any earlier grant). */
export function grant(db: ServerDb, user: string, repo: string, role: Role, opts: AdminOptions = {}): void {
  if (!ROLES.includes(role)) throw new DitsUserError('invalid-role', `role must be one of ${ROLES.join(', ')}`);
  const valid = parseRepoName(repo);
  const at = nowIso(opts);
  db.tx(() => {
    const u = requireUser(db, user);
    const r = requireRepo(db, valid);
    db.stmt(
      'INSERT INTO grants (user_id, repo_id, role) VALUES (?, ?, ?) ON CONFLICT (user_id, repo_id) DO UPDATE SET role = excluded.role',
    ).run(u.id, r.id, role);
    recordAudit(db, { at, actor: opts.actor ?? 'admin', action: 'grant', repo: valid, detail: `${user}:${role}` });
  });
}

export function revokeGrant(db: ServerDb, user: string, repo: string, opts: AdminOptions = {}): void {
  const valid = parseRepoName(repo);
  const at = nowIso(opts);
  db.tx(() => {
    const u = requireUser(db, user);
    const r = requireRepo(db, valid);
    const info = db.stmt('DELETE FROM grants WHERE user_id = ? AND repo_id = ?').run(u.id, r.id);
    if (info.changes === 0) throw new DitsUserError('grant-not-found', `user '${user}' has no role on '${valid}'`);
    recordAudit(db, { at, actor: opts.actor ?? 'admin', action: 'grant.revoke', repo: valid, detail: user });
  });
}

/** The user's effective role on a repository, or undefined when they cannot read it
 *  (or it does not exist: callers answer both the same way). */
export function roleOn(db: ServerDb, user: { id: number; isAdmin: boolean }, repoId: number): Role | undefined {
  if (user.isAdmin) return 'admin';
  const row = db.stmt('SELECT role FROM grants WHERE user_id = ? AND repo_id = ?').get(user.id, repoId) as { role: Role } | undefined;
  return row?.role;
}

// ---------------------------------------------------------------------------
// audit and status

export function listAudit(db: ServerDb, opts: { repo?: string; limit?: number } = {}): AuditEntry[] {
  const limit = Math.min(Math.max(1, Math.floor(opts.limit ?? 100)), 10_000);
  const rows = (
    opts.repo === undefined
      ? db.stmt('SELECT * FROM audit ORDER BY id DESC LIMIT ?').all(limit)
      : db.stmt('SELECT * FROM audit WHERE repo = ? ORDER BY id DESC LIMIT ?').all(opts.repo, limit)
  ) as { id: number; at: string; actor: string; action: string; repo: string | null; path: string | null; lock_id: string | null; detail: string | null }[];
  return rows.map((r) => ({
    id: r.id,
    at: r.at,
    actor: r.actor,
    action: r.action,
    repo: r.repo,
    path: r.path,
    lockId: r.lock_id,
    detail: r.detail,
  }));
}

export interface ServerStatus {
  schemaVersion: number;
  users: number;
  siteAdmins: number;
  tokens: { live: number; revoked: number };
  locks: number;
  repos: {
    name: string;
    createdAt: string;
    locks: number;
    members: number;
    /** Distinct packs and files with a recorded read. */
    trackedObjects: number;
    lastReadAt: string | null;
  }[];
  /** Newest first. */
  recentActivity: AuditEntry[];
  /** The scheduled mirror (`serve --mirror`) as its last start and run left it; null when never set. */
  mirror: MirrorState | null;
}

/**
 * A summary for `git dits server status` from the database alone. Repository sizes and
 * dedup ratios need a listing of the storage: repo-sizes.ts (`measureRepoSizes`).
 */
export function serverStatus(db: ServerDb, opts: { recent?: number } = {}): ServerStatus {
  const count = (sql: string): number => (db.stmt(sql).get() as { n: number }).n;
  const repos = db
    .stmt(
      `SELECT r.name, r.created_at,
        (SELECT COUNT(*) FROM locks l WHERE l.repo_id = r.id) AS locks,
        (SELECT COUNT(*) FROM grants g WHERE g.repo_id = r.id) AS members,
        (SELECT COUNT(*) FROM access a WHERE a.repo_id = r.id) AS tracked,
        (SELECT MAX(last_read_at) FROM access a WHERE a.repo_id = r.id) AS last_read
       FROM repos r ORDER BY r.name`,
    )
    .all() as { name: string; created_at: string; locks: number; members: number; tracked: number; last_read: string | null }[];
  return {
    schemaVersion: SCHEMA_VERSION,
    users: count('SELECT COUNT(*) AS n FROM users'),
    siteAdmins: count('SELECT COUNT(*) AS n FROM users WHERE is_admin = 1'),
    tokens: {
      live: count('SELECT COUNT(*) AS n FROM tokens WHERE revoked_at IS NULL'),
      revoked: count('SELECT COUNT(*) AS n FROM tokens WHERE revoked_at IS NOT NULL'),
    },
    locks: count('SELECT COUNT(*) AS n FROM locks'),
    repos: repos.map((r) => ({
      name: r.name,
      createdAt: r.created_at,
      locks: r.locks,
      members: r.members,
      trackedObjects: r.tracked,
      lastReadAt: r.last_read,
    })),
    recentActivity: listAudit(db, { limit: opts.recent ?? 20 }),
    mirror: readMirrorState(db),
  };
}
