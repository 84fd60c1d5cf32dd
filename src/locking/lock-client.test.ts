import { createServer } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addUser, createRepo, createToken, grant } from '../../server/admin.js';
import { createApp } from '../../server/app.js';
import { openServerDb, type ServerDb } from '../../server/db.js';
import { DitsUserError } from '../errors.js';
import { LockClient, LockHeldError, lockRepoUrl } from './lock-client.js';
import { findPushConflicts, pushConflictError } from './push-conflicts.js';

let db: ServerDb;
let tokens: Record<string, string>;
let now: Date;

function client(user: string | undefined, opts: { pageSize?: number } = {}): LockClient {
  const app = createApp({ db, clock: () => now });
  return new LockClient({
    repoUrl: 'http://dits.test/team/film/',
    token: () => (user === undefined ? undefined : tokens[user] ?? 'dits_unknown'),
    fetch: async (url, init) => app.fetch(new Request(url as string, init)),
    pageSize: opts.pageSize,
  });
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(DitsUserError);
    return (err as DitsUserError).code;
  }
  throw new Error('expected a rejection');
}

beforeEach(() => {
  db = openServerDb(':memory:');
  now = new Date('2026-03-04T05:06:07.000Z');
  tokens = {};
  for (const name of ['alice', 'bob', 'rita', 'adam']) {
    addUser(db, name);
    tokens[name] = createToken(db, name, 't');
  }
  createRepo(db, 'team/film');
  grant(db, 'alice', 'team/film', 'write');
  grant(db, 'bob', 'team/film', 'write');
  grant(db, 'rita', 'team/film', 'read');
  grant(db, 'adam', 'team/film', 'admin');
});
afterEach(() => db.close());

describe('LockClient', () => {
  it('locks, lists, verifies and unlocks by path and by id', async () => {
    const alice = client('alice', { pageSize: 2 });
    const bob = client('bob', { pageSize: 2 });
    const a = await alice.lock('./edit/cut.prproj');
    expect(a).toMatchObject({ path: 'edit/cut.prproj', owner: { name: 'alice' }, locked_at: now.toISOString() });
    await alice.lock('b.mov', { ref: 'refs/heads/main' });
    await bob.lock('c.mov');
    await bob.lock('d.mov');
    await alice.lock('e.mov');

    expect((await bob.list()).map((l) => l.path)).toEqual(['edit/cut.prproj', 'b.mov', 'c.mov', 'd.mov', 'e.mov']);
    expect((await bob.list({ mine: true })).map((l) => l.path)).toEqual(['c.mov', 'd.mov']);
    expect((await bob.list({ path: 'edit//cut.prproj' })).map((l) => l.id)).toEqual([a.id]);
    const v = await alice.verify();
    expect(v.ours.map((l) => l.path)).toEqual(['edit/cut.prproj', 'b.mov', 'e.mov']);
    expect(v.theirs.map((l) => l.path)).toEqual(['c.mov', 'd.mov']);

    expect((await alice.unlock('edit/cut.prproj')).id).toBe(a.id);
    const d = (await bob.list({ path: 'd.mov' }))[0]!;
    expect((await bob.unlock({ id: d.id })).path).toBe('d.mov');
    expect((await alice.list()).map((l) => l.path)).toEqual(['b.mov', 'c.mov', 'e.mov']);
  });

  it('throws lock-held naming the holder and since when', async () => {
    await client('alice').lock('cut.prproj');
    const err = await client('bob').lock('cut.prproj').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LockHeldError);
    expect((err as LockHeldError).code).toBe('lock-held');
    expect((err as LockHeldError).message).toBe(`cut.prproj is locked by alice since ${now.toISOString()}`);
    expect((err as LockHeldError).lock.owner.name).toBe('alice');
  });

  it('maps refusals to stable codes', async () => {
    await client('alice').lock('x.mov');
    expect(await codeOf(client(undefined).list())).toBe('auth-required');
    expect(await codeOf(client('nobody').list())).toBe('auth-required');
    expect(await codeOf(client('rita').lock('y.mov'))).toBe('forbidden');
    expect(await codeOf(client('bob').unlock('x.mov'))).toBe('forbidden');
    expect(await codeOf(client('bob').unlock('x.mov', { force: true }))).toBe('forbidden');
    expect(await codeOf(client('bob').unlock('nothing.mov'))).toBe('lock-not-found');
    expect(await codeOf(client('bob').unlock({ id: '99999' }))).toBe('lock-not-found');
    expect(await codeOf(client('bob').lock('../x'))).toBe('invalid-path');
    const elsewhere = new LockClient({
      repoUrl: 'http://dits.test/team/other',
      token: () => tokens['alice'],
      fetch: async (url, init) => createApp({ db }).fetch(new Request(url as string, init)),
    });
    expect(await codeOf(elsewhere.list())).toBe('repo-not-found');
    expect((await client('adam').unlock('x.mov', { force: true })).owner.name).toBe('alice');
  });

  it('reports server-unreachable when nothing listens', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const c = new LockClient({ repoUrl: `http://127.0.0.1:${port}/team/film`, token: () => 'dits_x' });
    const err = await c.list().catch((e: unknown) => e);
    expect((err as DitsUserError).code).toBe('server-unreachable');
    expect((err as DitsUserError).message).toContain('ECONNREFUSED');
  });

  it('asks the token provider once per client', async () => {
    let calls = 0;
    const app = createApp({ db });
    const c = new LockClient({
      repoUrl: 'http://dits.test/team/film',
      token: async () => {
        calls++;
        return tokens['alice'];
      },
      fetch: async (url, init) => app.fetch(new Request(url as string, init)),
    });
    await c.lock('a');
    await c.list();
    await c.verify();
    expect(calls).toBe(1);
  });
});

describe('lockRepoUrl', () => {
  it('derives the repository URL from a dits:: remote', () => {
    expect(lockRepoUrl('dits::http://127.0.0.1:8080/team/film')).toBe('http://127.0.0.1:8080/team/film');
    expect(lockRepoUrl('dits::https://dits.example.com/team/film.git/')).toBe('https://dits.example.com/team/film');
    expect(lockRepoUrl('http://h/team/film/')).toBe('http://h/team/film');
    expect(() => lockRepoUrl('dits::s3://bucket/project')).toThrow(expect.objectContaining({ code: 'locks-unsupported' }));
    expect(() => lockRepoUrl('dits::file:///mnt/nas/p')).toThrow(expect.objectContaining({ code: 'locks-unsupported' }));
    expect(() => lockRepoUrl('not a url')).toThrow(expect.objectContaining({ code: 'locks-unsupported' }));
    expect(() => lockRepoUrl('dits::https://u:secret@h/team/film')).toThrow(expect.objectContaining({ code: 'invalid-remote' }));
  });
});

describe('findPushConflicts', () => {
  const lock = (path: string, owner: string) => ({ id: path, path, locked_at: '2026-01-01T00:00:00.000Z', owner: { name: owner } });

  it('finds changed paths locked by others, normalised, deduplicated and sorted', () => {
    const verify = { ours: [lock('mine.mov', 'me')], theirs: [lock('shots/b.mov', 'bob'), lock('a.prproj', 'ann'), lock('untouched.mov', 'bob')] };
    const conflicts = findPushConflicts(['mine.mov', './shots//b.mov', 'a.prproj', 'shots/b.mov', 'new.mov'], verify);
    expect(conflicts.map((c) => [c.path, c.lock.owner.name])).toEqual([
      ['a.prproj', 'ann'],
      ['shots/b.mov', 'bob'],
    ]);
    expect(findPushConflicts(['mine.mov', 'other.mov'], verify)).toEqual([]);
    expect(findPushConflicts([], verify)).toEqual([]);
  });

  it('builds an error that names holders and times', () => {
    const err = pushConflictError([{ path: 'a.prproj', lock: lock('a.prproj', 'ann') }]);
    expect(err.code).toBe('push-locked');
    expect(err.message).toContain('a.prproj: locked by ann since 2026-01-01T00:00:00.000Z');
  });
});
