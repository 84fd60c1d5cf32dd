import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DitsUserError } from '../src/errors.js';
import {
  addUser,
  createRepo,
  createToken,
  deleteRepo,
  grant,
  hashToken,
  listAudit,
  listRepos,
  listTokens,
  listUsers,
  removeUser,
  revokeGrant,
  revokeToken,
  serverStatus,
  setSiteAdmin,
} from './admin.js';
import { openDataDirDb, serverDbPath } from './data-dir.js';
import { openServerDb, SCHEMA_VERSION, type ServerDb } from './db.js';

let db: ServerDb;
const clock = () => new Date('2026-02-03T04:05:06.000Z');
beforeEach(() => {
  db = openServerDb(':memory:');
});
afterEach(() => db.close());

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DitsUserError);
    return (err as DitsUserError).code;
  }
  throw new Error('expected a throw');
}

describe('users and tokens', () => {
  it('adds users, refuses duplicates and bad names', () => {
    expect(addUser(db, 'alice', { clock })).toMatchObject({ name: 'alice', isAdmin: false, createdAt: '2026-02-03T04:05:06.000Z' });
    addUser(db, 'root', { admin: true });
    expect(code(() => addUser(db, 'alice'))).toBe('user-exists');
    for (const bad of ['', '-x', '.x', 'a/b', 'a b', 'x'.repeat(65)]) expect(code(() => addUser(db, bad))).toBe('invalid-user-name');
    expect(listUsers(db).map((u) => [u.name, u.isAdmin])).toEqual([
      ['alice', false],
      ['root', true],
    ]);
    setSiteAdmin(db, 'alice', true);
    expect(listUsers(db)[0]!.isAdmin).toBe(true);
  });

  it('stores only the hash of a token, shown once; revokes by name; reuses names after revocation', () => {
    addUser(db, 'alice');
    const token = createToken(db, 'alice', 'laptop', { clock });
    expect(token).toMatch(/^dits_[A-Za-z0-9_-]{43}$/);
    const stored = db.stmt('SELECT hash FROM tokens').all() as { hash: string }[];
    expect(stored).toEqual([{ hash: hashToken(token) }]);
    expect(JSON.stringify(db.stmt('SELECT * FROM tokens').all())).not.toContain(token.slice(5));
    expect(createToken(db, 'alice', 'desktop')).not.toBe(token);
    expect(code(() => createToken(db, 'alice', 'laptop'))).toBe('token-exists');
    expect(code(() => createToken(db, 'nobody', 'x'))).toBe('user-not-found');
    revokeToken(db, 'alice', 'laptop', { clock });
    expect(code(() => revokeToken(db, 'alice', 'laptop'))).toBe('token-not-found');
    createToken(db, 'alice', 'laptop');
    expect(listTokens(db, 'alice').map((t) => [t.name, t.revokedAt])).toEqual([
      ['laptop', '2026-02-03T04:05:06.000Z'],
      ['desktop', null],
      ['laptop', null],
    ]);
  });
});

describe('repositories and grants', () => {
  it('creates, lists per user, grants and deletes', () => {
    addUser(db, 'alice');
    addUser(db, 'root', { admin: true });
    createRepo(db, 'team/film', { clock });
    createRepo(db, 'team/doc');
    expect(code(() => createRepo(db, 'team/film'))).toBe('repo-exists');
    for (const bad of ['film', 'a/b/c', '../x', 'team/..', 'Team/film', 'team/.x', 'team/x.git', 'api/x', `t/${'x'.repeat(65)}`]) {
      expect(code(() => createRepo(db, bad)), bad).toBe('invalid-repo-name');
    }
    expect(listRepos(db, { forUser: 'alice' })).toEqual([]);
    grant(db, 'alice', 'team/film', 'read');
    grant(db, 'alice', 'team/film', 'write'); // replaces
    expect(listRepos(db, { forUser: 'alice' })).toEqual([{ name: 'team/film', createdAt: '2026-02-03T04:05:06.000Z', locks: 0, role: 'write' }]);
    expect(listRepos(db, { forUser: 'root' }).map((r) => r.role)).toEqual(['admin', 'admin']);
    expect(code(() => grant(db, 'alice', 'team/film', 'owner' as 'admin'))).toBe('invalid-role');
    expect(code(() => grant(db, 'alice', 'team/none', 'read'))).toBe('repo-not-found');
    revokeGrant(db, 'alice', 'team/film');
    expect(code(() => revokeGrant(db, 'alice', 'team/film'))).toBe('grant-not-found');
    grant(db, 'alice', 'team/film', 'read');
    deleteRepo(db, 'team/film');
    expect(code(() => deleteRepo(db, 'team/film'))).toBe('repo-not-found');
    expect(db.stmt('SELECT COUNT(*) AS n FROM grants').get()).toEqual({ n: 0 });
    expect(listRepos(db).map((r) => r.name)).toEqual(['team/doc']);
  });

  it('removing a user removes their tokens, grants and locks', () => {
    addUser(db, 'alice');
    createToken(db, 'alice', 't');
    createRepo(db, 'team/film');
    grant(db, 'alice', 'team/film', 'write');
    db.stmt("INSERT INTO locks (repo_id, path, owner_id, locked_at) VALUES (1, 'a', 1, 'now')").run();
    removeUser(db, 'alice');
    for (const table of ['tokens', 'grants', 'locks']) expect(db.stmt(`SELECT COUNT(*) AS n FROM ${table}`).get()).toEqual({ n: 0 });
  });

  it('audits admin actions and summarises status', () => {
    addUser(db, 'alice', { actor: 'ops' });
    createRepo(db, 'team/film', { actor: 'ops' });
    grant(db, 'alice', 'team/film', 'admin', { actor: 'ops' });
    createToken(db, 'alice', 't1');
    revokeToken(db, 'alice', 't1');
    createToken(db, 'alice', 't2');
    expect(listAudit(db).map((e) => e.action)).toEqual(['token.create', 'token.revoke', 'token.create', 'grant', 'repo.create', 'user.add']);
    expect(listAudit(db, { repo: 'team/film' }).map((e) => [e.actor, e.action])).toEqual([
      ['ops', 'grant'],
      ['ops', 'repo.create'],
    ]);
    const status = serverStatus(db, { recent: 2 });
    expect(status).toMatchObject({
      schemaVersion: SCHEMA_VERSION,
      users: 1,
      siteAdmins: 0,
      tokens: { live: 1, revoked: 1 },
      locks: 0,
      repos: [{ name: 'team/film', locks: 0, members: 1, trackedObjects: 0, lastReadAt: null }],
    });
    expect(status.recentActivity).toHaveLength(2);
  });
});

describe('database', () => {
  it('uses WAL on a file, migrates once, and reopens with the data intact', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dits-db-'));
    try {
      const a = openDataDirDb(join(dir, 'data'));
      expect(a.sqlite.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(a.sqlite.pragma('foreign_keys', { simple: true })).toBe(1);
      addUser(a, 'alice');
      // a second connection (the CLI while the server runs) sees the same data
      const b = openServerDb(serverDbPath(join(dir, 'data')));
      expect(listUsers(b).map((u) => u.name)).toEqual(['alice']);
      expect(b.sqlite.prepare('SELECT COUNT(*) AS n FROM migrations').get()).toEqual({ n: SCHEMA_VERSION });
      b.close();
      a.close();
      a.close(); // idempotent
      const c = openDataDirDb(join(dir, 'data'));
      expect(c.sqlite.pragma('integrity_check', { simple: true })).toBe('ok');
      expect(listUsers(c)).toHaveLength(1);
      c.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rolls back a transaction that throws', () => {
    expect(() =>
      db.tx(() => {
        addUser(db, 'alice');
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(listUsers(db)).toEqual([]);
  });
});
