import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addUser, createRepo, createToken, grant, listAudit, listTokens, revokeToken } from './admin.js';
import { createApp } from './app.js';
import { openServerDb, type ServerDb } from './db.js';
import { createStorageBackend } from './storage-backend.js';

let db: ServerDb;
let app: ReturnType<typeof createApp>;
let now: Date;
let logs: Record<string, unknown>[];
let dataDir: string;
const tokens: Record<string, string> = {};

beforeEach(() => {
  db = openServerDb(':memory:');
  now = new Date('2026-01-02T03:04:05.000Z');
  logs = [];
  const logger = {
    info: (msg: string, f?: Record<string, unknown>) => logs.push({ msg, ...f }),
    warn: (msg: string, f?: Record<string, unknown>) => logs.push({ msg, ...f }),
    error: (msg: string, f?: Record<string, unknown>) => logs.push({ msg, ...f }),
  };
  dataDir = mkdtempSync(join(tmpdir(), 'dits-app-'));
  app = createApp({ db, clock: () => now, logger, maxJsonBytes: 16 * 1024, storage: createStorageBackend({ dataDir }) });
  addUser(db, 'root', { admin: true });
  for (const name of ['alice', 'bob', 'rita', 'eve', 'adam']) addUser(db, name);
  for (const name of ['root', 'alice', 'bob', 'rita', 'eve', 'adam']) tokens[name] = createToken(db, name, 'laptop');
  createRepo(db, 'team/film');
  createRepo(db, 'other/secret');
  grant(db, 'alice', 'team/film', 'write');
  grant(db, 'bob', 'team/film', 'write');
  grant(db, 'rita', 'team/film', 'read');
  grant(db, 'adam', 'team/film', 'admin');
  grant(db, 'eve', 'other/secret', 'admin');
});

afterEach(() => {
  db.close();
  rmSync(dataDir, { recursive: true, force: true });
});

function req(method: string, path: string, opts: { as?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.as !== undefined) headers['authorization'] = `Bearer ${tokens[opts.as]}`;
  let body: string | undefined;
  if (opts.raw !== undefined) body = opts.raw;
  else if (opts.body !== undefined) body = JSON.stringify(opts.body);
  if (body !== undefined) headers['content-type'] = 'application/vnd.git-lfs+json';
  return app.request(path, { method, headers, body });
}

async function json(res: Response): Promise<any> {
  return JSON.parse(await res.text());
}

describe('health and authentication', () => {
  it('answers /health without a token', async () => {
    const res = await req('GET', '/health');
    expect(res.status).toBe(200);
    expect(await json(res)).toEqual({ status: 'ok' });
  });

  it('answers 401 with a Basic challenge without a token, with a bad token and with a revoked token', async () => {
    for (const headers of [{}, { authorization: 'Bearer dits_nope' }, { authorization: 'Token abc' }] as Record<string, string>[]) {
      const res = await req('GET', '/team/film/locks', { headers });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Basic realm="dits"');
      expect((await json(res)).code).toBe('auth-required');
    }
    expect((await req('GET', '/team/film/locks', { as: 'alice' })).status).toBe(200);
    revokeToken(db, 'alice', 'laptop');
    const res = await req('GET', '/team/film/locks', { as: 'alice' });
    expect(res.status).toBe(401);
    expect((await json(res)).message).toMatch(/revoked/);
  });

  it('accepts the token as the password of HTTP Basic, whatever the username', async () => {
    const basic = Buffer.from(`anything:${tokens['alice']}`).toString('base64');
    const res = await req('GET', '/team/film/locks', { headers: { authorization: `Basic ${basic}` } });
    expect(res.status).toBe(200);
    const wrong = Buffer.from(`alice:dits_wrong`).toString('base64');
    expect((await req('GET', '/team/film/locks', { headers: { authorization: `Basic ${wrong}` } })).status).toBe(401);
  });

  it('records when a token was last used', async () => {
    expect(listTokens(db, 'alice')[0]!.lastUsedAt).toBeNull();
    await req('GET', '/api/user', { as: 'alice' });
    expect(listTokens(db, 'alice')[0]!.lastUsedAt).toBe(now.toISOString());
  });

  it('logs one structured line per request', async () => {
    await req('GET', '/team/film/locks?limit=5', { as: 'alice' });
    await req('GET', '/health');
    const lines = logs.filter((l) => l['msg'] === 'request');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ method: 'GET', path: '/team/film/locks', status: 200, user: 'alice' });
    expect(typeof lines[0]!['ms']).toBe('number');
    expect(lines[1]).toMatchObject({ method: 'GET', path: '/health', status: 200, user: null });
  });
});

describe('repository access', () => {
  it('answers 404 alike for a missing repository and one the caller cannot read', async () => {
    const secret = await req('GET', '/other/secret/locks', { as: 'alice' });
    const missing = await req('GET', '/other/nothing/locks', { as: 'alice' });
    expect(secret.status).toBe(404);
    expect(missing.status).toBe(404);
    expect(await secret.text()).toBe(await missing.text());
    const secretPost = await req('POST', '/other/secret/locks', { as: 'alice', body: { path: 'a.mov' } });
    const missingPost = await req('POST', '/other/nothing/locks', { as: 'alice', body: { path: 'a.mov' } });
    expect(secretPost.status).toBe(404);
    expect(await secretPost.text()).toBe(await missingPost.text());
    expect((await req('GET', '/api/repos/other/secret', { as: 'alice' })).status).toBe(404);
  });

  it('answers 403 when the caller can read but not write', async () => {
    const res = await req('POST', '/team/film/locks', { as: 'rita', body: { path: 'a.mov' } });
    expect(res.status).toBe(403);
    expect((await json(res)).code).toBe('forbidden');
    expect((await req('GET', '/team/film/locks', { as: 'rita' })).status).toBe(200);
    expect((await req('POST', '/team/film/locks/verify', { as: 'rita', body: {} })).status).toBe(403);
  });

  it('refuses invalid repository names before looking anything up', async () => {
    for (const path of ['/Team/film/locks', '/team/.hidden/locks', '/-x/film/locks', '/team/fi..lm/locks', '/team/film.git/locks', '/api/film/locks']) {
      const res = await req('GET', path, { as: 'root' });
      expect(res.status, path).toBe(400);
      expect((await json(res)).code).toBe('invalid-repo-name');
    }
    // encoded separators and dots are decoded into the parameter, then refused
    for (const path of ['/team%2F..%2Fother/secret/locks', '/team/%2e%2e%2Fsecret/locks', '/team/film%00/locks']) {
      const res = await req('GET', path, { as: 'root' });
      expect(res.status, path).toBe(400);
    }
    // the URL parser itself resolves a bare %2e%2e segment: /team/%2e%2e/locks is /locks
    expect((await req('GET', '/team/%2e%2e/locks', { as: 'root' })).status).toBe(404);
    const long = await req('GET', `/team/${'a'.repeat(65)}/locks`, { as: 'root' });
    expect(long.status).toBe(400);
  });

  it('lists, creates and deletes repositories with the right roles', async () => {
    const list = await json(await req('GET', '/api/repos', { as: 'alice' }));
    expect(list.repos).toEqual([{ name: 'team/film', created_at: expect.any(String), locks: 0, role: 'write' }]);
    const all = await json(await req('GET', '/api/repos', { as: 'root' }));
    expect(all.repos.map((r: { name: string }) => r.name)).toEqual(['other/secret', 'team/film']);

    expect((await req('POST', '/api/repos', { as: 'adam', body: { name: 'team/new' } })).status).toBe(403);
    const created = await req('POST', '/api/repos', { as: 'root', body: { name: 'team/new' } });
    expect(created.status).toBe(201);
    expect((await json(created)).repo.name).toBe('team/new');
    expect((await req('POST', '/api/repos', { as: 'root', body: { name: 'team/new' } })).status).toBe(409);
    const bad = await req('POST', '/api/repos', { as: 'root', body: { name: '../etc' } });
    expect(bad.status).toBe(400);
    expect((await json(bad)).code).toBe('invalid-repo-name');

    expect((await req('DELETE', '/api/repos/team/film', { as: 'alice' })).status).toBe(403);
    expect((await req('DELETE', '/api/repos/team/film', { as: 'eve' })).status).toBe(404);
    const del = await req('DELETE', '/api/repos/team/film', { as: 'adam' });
    expect(del.status).toBe(200);
    expect((await req('GET', '/team/film/locks', { as: 'adam' })).status).toBe(404);
    expect((await req('DELETE', '/api/repos/team/new', { as: 'root' })).status).toBe(200);
  });

  it('shows server status to site admins only', async () => {
    expect((await req('GET', '/api/status', { as: 'adam' })).status).toBe(403);
    const status = await json(await req('GET', '/api/status', { as: 'root' }));
    expect(status).toMatchObject({ users: 6, siteAdmins: 1, tokens: { live: 6, revoked: 0 }, locks: 0 });
    expect(status.repos.map((r: { name: string }) => r.name)).toEqual(['other/secret', 'team/film']);
    const me = await json(await req('GET', '/api/user', { as: 'alice' }));
    expect(me).toEqual({ user: { name: 'alice', is_admin: false } });
  });

  it('answers JSON 404 for unknown routes after authentication', async () => {
    const res = await req('GET', '/nope', { as: 'root' });
    expect(res.status).toBe(404);
    expect((await json(res)).code).toBe('not-found');
  });
});

describe('request bodies', () => {
  it('refuses malformed JSON with a clear message', async () => {
    const res = await req('POST', '/team/film/locks', { as: 'alice', raw: '{"path": "a.mov"' });
    expect(res.status).toBe(400);
    const body = await json(res);
    expect(body.code).toBe('malformed-json');
    expect(body.message).toMatch(/malformed JSON/);
  });

  it('refuses unknown fields and wrong types', async () => {
    let res = await req('POST', '/team/film/locks', { as: 'alice', body: { path: 'a.mov', pth: 'x' } });
    expect(res.status).toBe(400);
    expect((await json(res)).message).toBe('unknown field "pth" in body');
    res = await req('POST', '/team/film/locks', { as: 'alice', body: { path: 42 } });
    expect(res.status).toBe(400);
    expect((await json(res)).message).toBe('body.path must be a string');
    res = await req('POST', '/team/film/locks', { as: 'alice', body: { path: 'a', ref: { name: 'main', x: 1 } } });
    expect((await json(res)).message).toBe('unknown field "x" in body.ref');
    res = await req('POST', '/team/film/locks', { as: 'alice', body: [1] });
    expect(res.status).toBe(400);
    res = await req('POST', '/team/film/locks/verify', { as: 'alice', body: { limit: 0 } });
    expect(res.status).toBe(400);
    res = await req('GET', '/team/film/locks?colour=red', { as: 'alice' });
    expect(res.status).toBe(400);
    expect((await json(res)).message).toBe('unknown query parameter "colour"');
  });

  it('refuses oversized bodies with 413, declared or streamed', async () => {
    const big = JSON.stringify({ path: 'a'.repeat(20_000) });
    let res = await req('POST', '/team/film/locks', { as: 'alice', raw: big });
    expect(res.status).toBe(413);
    // no content-length: the limit is enforced while reading
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 20; i++) controller.enqueue(new TextEncoder().encode(' '.repeat(1000)));
        controller.close();
      },
    });
    res = await app.request('/team/film/locks', {
      method: 'POST',
      headers: { authorization: `Bearer ${tokens['alice']}` },
      body: stream,
      // @ts-expect-error Node's fetch needs duplex for stream bodies
      duplex: 'half',
    });
    expect(res.status).toBe(413);
    expect(db.stmt('SELECT COUNT(*) AS n FROM locks').get()).toEqual({ n: 0 });
  });
});

describe('locks', () => {
  it('creates a lock and refuses a second one on the same path with who holds it', async () => {
    const res = await req('POST', '/team/film/locks', { as: 'alice', body: { path: './shots//a.mov', ref: { name: 'refs/heads/main' } } });
    expect(res.status).toBe(201);
    expect(res.headers.get('content-type')).toBe('application/vnd.git-lfs+json');
    const { lock } = await json(res);
    expect(lock).toEqual({ id: expect.any(String), path: 'shots/a.mov', locked_at: now.toISOString(), owner: { name: 'alice' } });

    const again = await req('POST', '/team/film/locks', { as: 'bob', body: { path: 'shots/a.mov' } });
    expect(again.status).toBe(409);
    const body = await json(again);
    expect(body.lock).toEqual(lock);
    expect(body.message).toBe(`shots/a.mov is already locked by alice since ${now.toISOString()}`);
  });

  it('refuses traversal and malformed lock paths', async () => {
    const bad = ['../etc/passwd', 'a/../../b', '/abs/path', 'C:/x', 'a\\b', 'a\0b', '.git/config', 'x/.GIT/y', '', '.', 'a'.repeat(4097)];
    for (const path of bad) {
      const res = await req('POST', '/team/film/locks', { as: 'alice', body: { path } });
      expect(res.status, JSON.stringify(path)).toBe(400);
      expect((await json(res)).code).toBe('invalid-path');
    }
    const res = await req('GET', `/team/film/locks?path=${encodeURIComponent('../x')}`, { as: 'alice' });
    expect(res.status).toBe(400);
    expect(db.stmt('SELECT COUNT(*) AS n FROM locks').get()).toEqual({ n: 0 });
  });

  it('lets exactly one of two simultaneous lock requests win', async () => {
    for (let round = 0; round < 20; round++) {
      const path = `contended-${round}.prproj`;
      const [a, b] = await Promise.all([
        req('POST', '/team/film/locks', { as: 'alice', body: { path } }),
        req('POST', '/team/film/locks', { as: 'bob', body: { path } }),
      ]);
      expect([a.status, b.status].sort()).toEqual([201, 409]);
      const winner = a.status === 201 ? 'alice' : 'bob';
      const loser = await json(a.status === 409 ? a : b);
      expect(loser.lock.owner.name).toBe(winner);
    }
    expect(db.stmt('SELECT COUNT(*) AS n FROM locks').get()).toEqual({ n: 20 });
  });

  it('lists with filters and pages with cursors', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await req('POST', '/team/film/locks', { as: i % 2 === 0 ? 'alice' : 'bob', body: { path: `f${i}.mov` } });
      ids.push((await json(res)).lock.id);
    }
    let res = await json(await req('GET', '/team/film/locks?path=f3.mov', { as: 'rita' }));
    expect(res.locks.map((l: { path: string }) => l.path)).toEqual(['f3.mov']);
    res = await json(await req('GET', `/team/film/locks?id=${ids[1]}`, { as: 'rita' }));
    expect(res.locks.map((l: { id: string }) => l.id)).toEqual([ids[1]]);
    res = await json(await req('GET', '/team/film/locks?id=zzz', { as: 'rita' }));
    expect(res.locks).toEqual([]);
    expect((await req('GET', `/team/film/locks?id=${ids[1]}&path=f1.mov`, { as: 'rita' })).status).toBe(400);
    expect((await req('GET', '/team/film/locks?limit=1&limit=2', { as: 'rita' })).status).toBe(400);

    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await json(await req('GET', `/team/film/locks?limit=2${cursor ? `&cursor=${cursor}` : ''}`, { as: 'rita' }));
      seen.push(...page.locks.map((l: { path: string }) => l.path));
      cursor = page.next_cursor;
      pages++;
    } while (cursor !== undefined);
    expect(pages).toBe(3);
    expect(seen).toEqual(['f0.mov', 'f1.mov', 'f2.mov', 'f3.mov', 'f4.mov']);
    expect((await req('GET', '/team/film/locks?cursor=abc', { as: 'rita' })).status).toBe(400);
  });

  it('verifies: ours and theirs, paged', async () => {
    for (let i = 0; i < 5; i++) await req('POST', '/team/film/locks', { as: i < 3 ? 'alice' : 'bob', body: { path: `v${i}.mov` } });
    let res = await json(await req('POST', '/team/film/locks/verify', { as: 'alice', body: { ref: { name: 'refs/heads/main' } } }));
    expect(res.ours.map((l: { path: string }) => l.path)).toEqual(['v0.mov', 'v1.mov', 'v2.mov']);
    expect(res.theirs.map((l: { path: string }) => l.path)).toEqual(['v3.mov', 'v4.mov']);
    expect(res.next_cursor).toBeUndefined();
    res = await json(await req('POST', '/team/film/locks/verify', { as: 'bob', body: { limit: 4 } }));
    expect(res.ours).toHaveLength(1);
    expect(res.theirs).toHaveLength(3);
    const next = await json(await req('POST', '/team/film/locks/verify', { as: 'bob', body: { limit: 4, cursor: res.next_cursor } }));
    expect(next.ours.map((l: { path: string }) => l.path)).toEqual(['v4.mov']);
    expect(next.theirs).toEqual([]);
  });

  it('unlocks your own lock; someone else only with force and the admin role', async () => {
    const { lock } = await json(await req('POST', '/team/film/locks', { as: 'alice', body: { path: 'edit.prproj' } }));
    const url = `/team/film/locks/${lock.id}/unlock`;

    let res = await req('POST', url, { as: 'bob', body: {} });
    expect(res.status).toBe(403);
    expect((await json(res)).message).toMatch(/locked by alice/);
    res = await req('POST', url, { as: 'bob', body: { force: true } });
    expect(res.status).toBe(403);
    expect((await json(res)).message).toMatch(/only a repository admin/);
    res = await req('POST', url, { as: 'rita', body: { force: true } });
    expect(res.status).toBe(403); // read-only: cannot unlock at all

    res = await req('POST', url, { as: 'adam', body: { force: true } });
    expect(res.status).toBe(200);
    expect((await json(res)).lock).toEqual(lock);
    expect((await req('POST', url, { as: 'adam', body: { force: true } })).status).toBe(404);

    const own = await json(await req('POST', '/team/film/locks', { as: 'bob', body: { path: 'edit.prproj' } }));
    res = await req('POST', `/team/film/locks/${own.lock.id}/unlock`, { as: 'bob' });
    expect(res.status).toBe(200);
    expect((await req('POST', '/team/film/locks/nope/unlock', { as: 'bob' })).status).toBe(404);
  });

  it('records every lock action in the audit log', async () => {
    const { lock } = await json(await req('POST', '/team/film/locks', { as: 'alice', body: { path: 'a.mov' } }));
    await req('POST', '/team/film/locks', { as: 'bob', body: { path: 'a.mov' } });
    await req('POST', `/team/film/locks/${lock.id}/unlock`, { as: 'bob', body: {} });
    await req('POST', `/team/film/locks/${lock.id}/unlock`, { as: 'bob', body: { force: true } });
    now = new Date('2026-01-02T04:00:00.000Z');
    await req('POST', `/team/film/locks/${lock.id}/unlock`, { as: 'adam', body: { force: true } });
    const b = await json(await req('POST', '/team/film/locks', { as: 'bob', body: { path: 'b.mov' } }));
    await req('POST', `/team/film/locks/${b.lock.id}/unlock`, { as: 'bob', body: {} });

    const rows = listAudit(db, { repo: 'team/film' })
      .filter((e) => e.action.startsWith('lock.'))
      .reverse()
      .map((e) => [e.actor, e.action, e.path]);
    expect(rows).toEqual([
      ['alice', 'lock.create', 'a.mov'],
      ['bob', 'lock.denied', 'a.mov'],
      ['bob', 'lock.unlock-denied', 'a.mov'],
      ['bob', 'lock.unlock-denied', 'a.mov'],
      ['adam', 'lock.force-unlock', 'a.mov'],
      ['bob', 'lock.create', 'b.mov'],
      ['bob', 'lock.unlock', 'b.mov'],
    ]);
    const force = listAudit(db, { repo: 'team/film' }).find((e) => e.action === 'lock.force-unlock')!;
    expect(force.at).toBe('2026-01-02T04:00:00.000Z');
    expect(force.detail).toBe('held by alice since 2026-01-02T03:04:05.000Z');

    const http = await json(await req('GET', '/api/repos/team/film/audit?limit=3', { as: 'adam' }));
    expect(http.entries.map((e: { action: string }) => e.action)).toEqual(['lock.unlock', 'lock.create', 'lock.force-unlock']);
    expect((await req('GET', '/api/repos/team/film/audit', { as: 'alice' })).status).toBe(403);
  });
});
