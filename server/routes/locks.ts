/**
 * File locks, in the shape of the git-lfs locking API
 * (https://github.com/git-lfs/git-lfs/blob/main/docs/api/locking.md), under
 * `/:owner/:repo/locks`:
 *
 *   POST /locks                {path, ref?: {name}}            -> 201 {lock} | 409 {lock, message}
 *   GET  /locks?path=&id=&cursor=&limit=&refspec=               -> {locks, next_cursor?}
 *   POST /locks/verify         {ref?: {name}, cursor?, limit?} -> {ours, theirs, next_cursor?}
 *   POST /locks/:id/unlock     {force?, ref?: {name}}          -> {lock}
 *
 * Listing needs read access; creating, verifying and unlocking need write (verify is
 * the pre-push check, as in git-lfs). Unlocking someone else's lock needs `force` and
 * the admin role. Cursors are lock ids, inclusive: `next_cursor` is the first lock of
 * the next page. Every create, unlock, force-unlock and refusal is written to the
 * audit log in the same transaction as the change it describes.
 */
import { Hono } from 'hono';
import { checkLockPath } from '../../src/locking/lock-path.js';
import { recordAudit } from '../admin.js';
import type { ServerDb } from '../db.js';
import { HttpError, readJson, requireRepoAccess, validated, type AppContext, type AppEnv, type RouteDeps } from '../http.js';
import { bool, int, obj, optional, parseIntParam, parseQuery, str, ValidationError } from '../validate.js';

export const LFS_JSON = 'application/vnd.git-lfs+json';
const DEFAULT_PAGE = 100;
const MAX_PAGE = 1000;

/** A lock as it travels on the wire. */
export interface WireLock {
  id: string;
  path: string;
  locked_at: string;
  owner: { name: string };
}

interface LockRow {
  id: number;
  path: string;
  locked_at: string;
  owner_id: number;
  owner_name: string;
}

const LOCK_SELECT = `SELECT l.id, l.path, l.locked_at, l.owner_id, u.name AS owner_name
  FROM locks l JOIN users u ON u.id = l.owner_id`;

function toWire(r: LockRow): WireLock {
  return { id: String(r.id), path: r.path, locked_at: r.locked_at, owner: { name: r.owner_name } };
}

function lfsJson(c: AppContext, body: unknown, status: 200 | 201 | 409 = 200): Response {
  return c.body(JSON.stringify(body), status, { 'Content-Type': LFS_JSON });
}

function lockPath(value: string): string {
  const r = checkLockPath(value);
  if (!r.ok) throw new HttpError(400, `invalid lock path: ${r.reason}`, 'invalid-path');
  return r.path;
}

function parseCursor(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  if (!/^\d{1,15}$/.test(value)) throw new ValidationError('cursor is not one this server gave out');
  return Number(value);
}

const refShape = optional(obj({ name: str({ max: 1024 }) }));
const createShape = obj({ path: str({ max: 8192 }), ref: refShape });
const verifyShape = obj({ ref: refShape, cursor: optional(str({ max: 32 })), limit: optional(int({ min: 1, max: MAX_PAGE })) });
const unlockShape = obj({ force: optional(bool()), ref: refShape });

function isConstraint(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}

type RawLockRow = [id: number, path: string, locked_at: string, owner_id: number, owner_name: string];

/**
 * One page of a repository's locks in id order, starting at `cursor`, as arrays (raw
 * mode: no object per row; a page of 100 is the hot path of verify).
 */
function pageLocks(db: ServerDb, repoId: number, cursor: number, limit: number, filter?: { column: 'path' | 'id'; value: string | number }): RawLockRow[] {
  const extra = filter === undefined ? '' : ` AND l.${filter.column} = ?`;
  const stmt = db.stmt(`${LOCK_SELECT} WHERE l.repo_id = ? AND l.id >= ?${extra} ORDER BY l.id LIMIT ? /* raw */`);
  stmt.raw(true);
  return (filter === undefined ? stmt.all(repoId, cursor, limit) : stmt.all(repoId, cursor, filter.value, limit)) as RawLockRow[];
}

function rawToWire(r: RawLockRow): WireLock {
  return { id: String(r[0]), path: r[1], locked_at: r[2], owner: { name: r[4] } };
}

function findLockByPath(db: ServerDb, repoId: number, path: string): LockRow | undefined {
  return db.stmt(`${LOCK_SELECT} WHERE l.repo_id = ? AND l.path = ?`).get(repoId, path) as LockRow | undefined;
}

export function lockRoutes(deps: RouteDeps): Hono<AppEnv> {
  const { db, clock } = deps;
  const app = new Hono<AppEnv>();

  app.post('/:owner/:repo/locks', async (c) => {
    const { repo, principal } = requireRepoAccess(c, db, 'write');
    const body = await readJson(c, createShape, deps.maxJsonBytes);
    const path = lockPath(body.path);
    const at = clock().toISOString();
    type Outcome = { created: LockRow } | { held: LockRow };
    let outcome: Outcome;
    try {
      outcome = db.tx((): Outcome => {
        const held = findLockByPath(db, repo.id, path);
        if (held !== undefined) {
          recordAudit(db, { at, actor: principal.name, action: 'lock.denied', repo: repo.name, path, lockId: String(held.id), detail: `held by ${held.owner_name}` });
          return { held };
        }
        const info = db
          .stmt('INSERT INTO locks (repo_id, path, owner_id, ref, locked_at) VALUES (?, ?, ?, ?, ?)')
          .run(repo.id, path, principal.userId, body.ref?.name ?? null, at);
        const id = Number(info.lastInsertRowid);
        recordAudit(db, { at, actor: principal.name, action: 'lock.create', repo: repo.name, path, lockId: String(id) });
        return { created: { id, path, locked_at: at, owner_id: principal.userId, owner_name: principal.name } };
      });
    } catch (err) {
      // Another process inserted between our check and insert (the unique index is the
      // final word), or the repository was deleted meanwhile.
      if (isConstraint(err, 'SQLITE_CONSTRAINT_UNIQUE')) {
        const held = findLockByPath(db, repo.id, path);
        if (held === undefined) throw err;
        outcome = { held };
      } else if (isConstraint(err, 'SQLITE_CONSTRAINT_FOREIGNKEY')) {
        throw new HttpError(404, 'repository not found', 'repo-not-found');
      } else throw err;
    }
    if ('held' in outcome) {
      const lock = toWire(outcome.held);
      return lfsJson(c, { lock, message: `${lock.path} is already locked by ${lock.owner.name} since ${lock.locked_at}` }, 409);
    }
    return lfsJson(c, { lock: toWire(outcome.created) }, 201);
  });

  app.get('/:owner/:repo/locks', (c) => {
    const { repo } = requireRepoAccess(c, db, 'read');
    const q = validated(() => parseQuery(c.req.url, ['path', 'id', 'cursor', 'limit', 'refspec'] as const));
    const limit = validated(() => parseIntParam(q.limit, 'limit', { min: 1, max: MAX_PAGE })) ?? DEFAULT_PAGE;
    const cursor = validated(() => parseCursor(q.cursor)) ?? 0;
    let filter: { column: 'path' | 'id'; value: string | number } | undefined;
    if (q.path !== undefined && q.id !== undefined) throw new HttpError(400, 'give path or id, not both', 'invalid-request');
    if (q.path !== undefined) filter = { column: 'path', value: lockPath(q.path) };
    // an id that cannot exist simply matches nothing
    if (q.id !== undefined) filter = { column: 'id', value: /^\d{1,15}$/.test(q.id) ? Number(q.id) : -1 };
    const rows = pageLocks(db, repo.id, cursor, limit + 1, filter);
    const page = rows.slice(0, limit);
    const next = rows.length > limit ? { next_cursor: String(rows[limit]![0]) } : {};
    return lfsJson(c, { locks: page.map(rawToWire), ...next });
  });

  app.post('/:owner/:repo/locks/verify', async (c) => {
    const { repo, principal } = requireRepoAccess(c, db, 'write');
    const body = await readJson(c, verifyShape, deps.maxJsonBytes);
    const cursor = validated(() => parseCursor(body.cursor)) ?? 0;
    const limit = body.limit ?? DEFAULT_PAGE;
    const rows = pageLocks(db, repo.id, cursor, limit + 1);
    const page = rows.slice(0, limit);
    const ours: WireLock[] = [];
    const theirs: WireLock[] = [];
    for (const r of page) (r[3] === principal.userId ? ours : theirs).push(rawToWire(r));
    const next = rows.length > limit ? { next_cursor: String(rows[limit]![0]) } : {};
    return lfsJson(c, { ours, theirs, ...next });
  });

  app.post('/:owner/:repo/locks/:id/unlock', async (c) => {
    const { repo, role, principal } = requireRepoAccess(c, db, 'write');
    const body = await readJson(c, unlockShape, deps.maxJsonBytes);
    const idParam = c.req.param('id');
    const id = /^\d{1,15}$/.test(idParam) ? Number(idParam) : undefined;
    const force = body.force === true;
    const at = clock().toISOString();
    type Outcome = { missing: true } | { denied: string; lock: LockRow } | { unlocked: LockRow };
    const outcome = db.tx((): Outcome => {
      const lock = id === undefined ? undefined : (db.stmt(`${LOCK_SELECT} WHERE l.repo_id = ? AND l.id = ?`).get(repo.id, id) as LockRow | undefined);
      if (lock === undefined) return { missing: true };
      const mine = lock.owner_id === principal.userId;
      let denied: string | undefined;
      if (!mine && !force) denied = `${lock.path} is locked by ${lock.owner_name}; only a repository admin can break it, with force`;
      else if (!mine && role !== 'admin') denied = `only a repository admin can force-unlock ${lock.owner_name}'s lock on ${lock.path}`;
      if (denied !== undefined) {
        recordAudit(db, { at, actor: principal.name, action: 'lock.unlock-denied', repo: repo.name, path: lock.path, lockId: String(lock.id), detail: `held by ${lock.owner_name}${force ? ', force' : ''}` });
        return { denied, lock };
      }
      db.stmt('DELETE FROM locks WHERE id = ?').run(lock.id);
      recordAudit(db, {
        at,
        actor: principal.name,
        action: mine ? 'lock.unlock' : 'lock.force-unlock',
        repo: repo.name,
        path: lock.path,
        lockId: String(lock.id),
        detail: mine ? undefined : `held by ${lock.owner_name} since ${lock.locked_at}`,
      });
      return { unlocked: lock };
    });
    if ('missing' in outcome) throw new HttpError(404, 'lock not found', 'lock-not-found');
    if ('denied' in outcome) throw new HttpError(403, outcome.denied, 'forbidden', { lock: toWire(outcome.lock) });
    return lfsJson(c, { lock: toWire(outcome.unlocked) });
  });

  return app;
}
