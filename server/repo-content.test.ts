/**
 * Deleting a repository deletes its stored content, and only its own; creating one
 * refuses a name with content left under it. Reproduces issue 15: `repo delete` then
 * `repo create` of the same name gave a newly granted reader the old repository's content.
 * In-process here (app.request, the admin functions, a folder and a real S3 server);
 * through the CLI in test/server-repo-delete.test.ts.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createS3Client, S3Storage } from '../src/transfer/s3-storage.js';
import { startS3rver, type RunningS3rver } from '../src/transfer/testing/s3rver.js';
import { DitsUserError } from '../src/errors.js';
import { addUser, createToken, getRepo, grant, listAudit } from './admin.js';
import { createApp } from './app.js';
import { openServerDb, type ServerDb } from './db.js';
import { createRepoChecked, deleteRepoAndContent } from './repo-content.js';
import { storageRoutes } from './routes/storage.js';
import { createStorageBackend, type StorageBackend } from './storage-backend.js';

const dirs: string[] = [];
function tempDir(prefix: string): string {
  const d = mkdtempSync(path.join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const PACK = `v1/packs/${'ab'.repeat(32)}.pack`;
const MANIFEST = `v1/objects/cd/${'ef'.repeat(31)}`;

/** Every file under `dir` with the SHA-256 of its bytes, relative paths sorted. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = path.join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out[path.relative(dir, p)] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(dir);
  return out;
}

async function fill(backend: StorageBackend, repo: string, tag: string): Promise<void> {
  const storage = await backend.forRepo(repo);
  await storage.put(PACK, Buffer.from(`pack of ${tag}`));
  await storage.put(MANIFEST, Buffer.from(`manifest of ${tag}`));
  const put = await storage.putIf('v1/refs', Buffer.from(`refs of ${tag}`), 'absent');
  expect(put.ok).toBe(true);
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(DitsUserError);
    return (err as DitsUserError).code;
  }
  throw new Error('expected a rejection');
}

describe('over HTTP (app.request), folder storage', () => {
  let db: ServerDb;
  let backend: StorageBackend;
  let app: ReturnType<typeof createApp>;
  let dataDir: string;
  const tokens: Record<string, string> = {};

  beforeEach(() => {
    db = openServerDb(':memory:');
    dataDir = tempDir('dits-repo-content-');
    backend = createStorageBackend({ dataDir });
    app = createApp({ db, storage: backend, routes: [storageRoutes(backend)] });
    addUser(db, 'root', { admin: true });
    for (const name of ['root', 'alice', 'newbie']) {
      if (name !== 'root') addUser(db, name);
      tokens[name] = createToken(db, name, 't');
    }
  });
  afterEach(() => db.close());

  const req = (method: string, url: string, as: string, body?: unknown) =>
    app.request(url, {
      method,
      headers: { authorization: `Bearer ${tokens[as]}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body),
    });

  it('a reader granted on a re-created repository never sees the deleted one\'s content', async () => {
    expect((await req('POST', '/api/repos', 'root', { name: 'team/film' })).status).toBe(201);
    expect((await req('POST', '/api/repos', 'root', { name: 'team/film2' })).status).toBe(201);
    grant(db, 'alice', 'team/film', 'write');
    grant(db, 'alice', 'team/film2', 'write');
    for (const repo of ['team/film', 'team/film2']) {
      expect((await req('PUT', `/${repo}/storage/o/${PACK}`, 'alice', Buffer.from(`secret of ${repo}`))).status).toBe(200);
    }
    const film2Before = snapshot(path.join(dataDir, 'repos', 'team', 'film2'));

    const del = await req('DELETE', '/api/repos/team/film', 'root');
    expect(del.status).toBe(200);

    expect((await req('POST', '/api/repos', 'root', { name: 'team/film' })).status).toBe(201);
    grant(db, 'newbie', 'team/film', 'read');
    const read = await req('GET', `/team/film/storage/o/${PACK}`, 'newbie');
    expect(read.status).toBe(404);
    const list = await req('GET', '/team/film/storage/list?prefix=', 'newbie');
    expect((await list.json()).objects).toEqual([]);
    // the neighbour whose name the deleted one is a prefix of is untouched
    expect(snapshot(path.join(dataDir, 'repos', 'team', 'film2'))).toEqual(film2Before);
    expect(await (await req('GET', `/team/film2/storage/o/${PACK}`, 'alice')).text()).toBe('secret of team/film2');
    expect(await del.json()).toEqual({ deleted: 'team/film', deleted_objects: 1 });
  });

  it('keep_content keeps it and says so; create then refuses the name until adopt_existing', async () => {
    await req('POST', '/api/repos', 'root', { name: 'team/film' });
    grant(db, 'alice', 'team/film', 'write');
    await req('PUT', `/team/film/storage/o/${PACK}`, 'alice', Buffer.from('old content'));
    const kept = await req('DELETE', '/api/repos/team/film?keep_content=1', 'root');
    expect(await kept.json()).toEqual({ deleted: 'team/film', deleted_objects: null });

    const refused = await req('POST', '/api/repos', 'root', { name: 'team/film' });
    expect(refused.status).toBe(409);
    const body = await refused.json();
    expect(body.code).toBe('repo-content-exists');
    expect(body.message).toMatch(/1 stored object/);
    expect(getRepo(db, 'team/film')).toBeUndefined();

    expect((await req('POST', '/api/repos', 'root', { name: 'team/film', adopt_existing: true })).status).toBe(201);
    grant(db, 'newbie', 'team/film', 'read');
    expect(await (await req('GET', `/team/film/storage/o/${PACK}`, 'newbie')).text()).toBe('old content');
    expect(listAudit(db, { repo: 'team/film' }).map((e) => e.action)).toContain('repo.adopt-content');
  });

  it('a site admin deletes content left under a name with no repository; others get 404', async () => {
    await req('POST', '/api/repos', 'root', { name: 'team/film' });
    grant(db, 'alice', 'team/film', 'admin');
    await req('PUT', `/team/film/storage/o/${PACK}`, 'alice', Buffer.from('x'));
    await req('DELETE', '/api/repos/team/film?keep_content=1', 'alice');
    expect((await req('DELETE', '/api/repos/team/film', 'alice')).status).toBe(404);
    expect((await req('DELETE', '/api/repos/team/film?keep_content=maybe', 'root')).status).toBe(400);
    const purge = await req('DELETE', '/api/repos/team/film', 'root');
    expect(await purge.json()).toEqual({ deleted: 'team/film', deleted_objects: 1 });
    expect((await req('DELETE', '/api/repos/team/film', 'root')).status).toBe(404);
    expect((await req('POST', '/api/repos', 'root', { name: 'team/film' })).status).toBe(201);
  });

  it('an app without its storage refuses to delete a repository unless told to keep the content', async () => {
    const bare = createApp({ db });
    await req('POST', '/api/repos', 'root', { name: 'team/film' });
    const headers = { authorization: `Bearer ${tokens['root']}` };
    const refused = await bare.request('/api/repos/team/film', { method: 'DELETE', headers });
    expect(refused.status).toBe(409);
    expect((await refused.json()).message).toMatch(/keep_content=1/);
    expect(getRepo(db, 'team/film')).toBeDefined();
    expect((await bare.request('/api/repos/team/film?keep_content=1', { method: 'DELETE', headers })).status).toBe(200);
  });
});

describe('admin functions, folder storage', () => {
  let db: ServerDb;
  beforeEach(() => {
    db = openServerDb(':memory:');
  });
  afterEach(() => db.close());

  it('deletes only that repository: names that are prefixes of others, other owners', async () => {
    const dataDir = tempDir('dits-repo-content-');
    const backend = createStorageBackend({ dataDir });
    const names = ['team/film', 'team/film2', 'team/fil', 'team/film.old', 'teamx/film', 'tea/film'];
    for (const n of names) {
      await createRepoChecked(db, backend, n);
      await fill(backend, n, n);
    }
    const repos = path.join(dataDir, 'repos');
    const others = names.filter((n) => n !== 'team/film');
    const before = Object.fromEntries(others.map((n) => [n, snapshot(path.join(repos, n))]));
    expect(await backend.countContent('team/film')).toBeGreaterThanOrEqual(3);

    const done = await deleteRepoAndContent(db, backend, 'team/film');
    expect(done).toMatchObject({ name: 'team/film', hadRecord: true });
    expect(done.deletedObjects).toBeGreaterThanOrEqual(3);
    expect(await backend.countContent('team/film')).toBe(0);
    for (const n of others) expect(snapshot(path.join(repos, n)), n).toEqual(before[n]);
    expect(getRepo(db, 'team/film')).toBeUndefined();
    // and the name is free again, empty
    await createRepoChecked(db, backend, 'team/film');
    expect(await (await backend.forRepo('team/film')).getVersioned('v1/refs')).toBeNull();
  });

  it('an interrupted delete (records gone, part of the content left) is finished by re-running it', async () => {
    const dataDir = tempDir('dits-repo-content-');
    const backend = createStorageBackend({ dataDir });
    await createRepoChecked(db, backend, 'team/film');
    await createRepoChecked(db, backend, 'team/film2');
    await fill(backend, 'team/film', 'a');
    await fill(backend, 'team/film2', 'b');
    const film2 = snapshot(path.join(dataDir, 'repos', 'team', 'film2'));
    // the state a crash after the records and one file were deleted leaves
    const { deleteRepo } = await import('./admin.js');
    deleteRepo(db, 'team/film');
    unlinkSync(path.join(dataDir, 'repos', 'team', 'film', ...PACK.split('/')));
    expect(await code(createRepoChecked(db, backend, 'team/film'))).toBe('repo-content-exists');
    const again = await deleteRepoAndContent(db, backend, 'team/film');
    expect(again).toMatchObject({ hadRecord: false });
    expect(again.deletedObjects).toBeGreaterThanOrEqual(2);
    expect(await backend.countContent('team/film')).toBe(0);
    expect(snapshot(path.join(dataDir, 'repos', 'team', 'film2'))).toEqual(film2);
    expect(await code(deleteRepoAndContent(db, backend, 'team/film'))).toBe('repo-not-found');
  });
});

describe('admin functions, S3 storage (s3rver)', () => {
  let s3: RunningS3rver;
  let db: ServerDb;
  beforeAll(async () => {
    s3 = await startS3rver({ buckets: ['media'] });
  });
  afterAll(async () => {
    await s3?.close();
  });
  beforeEach(() => {
    db = openServerDb(':memory:');
  });
  afterEach(() => db.close());

  const s3Options = () => ({
    endpoint: s3.endpoint,
    forcePathStyle: true,
    region: 'us-east-1',
    credentials: s3.credentials,
    retryDeps: { sleep: async () => {}, random: () => 0 },
  });

  /** Every key in the bucket under `prefix` with its bytes' hash, read straight from S3. */
  async function bucketSnapshot(prefix: string): Promise<Record<string, string>> {
    const raw = new S3Storage({ bucket: 'media', prefix, ...s3Options() });
    const out: Record<string, string> = {};
    for await (const obj of raw.listAll()) {
      const body = await raw.getBuffer(obj.key.slice(raw.prefix.length)).catch(() => Buffer.from(`(bookkeeping ${obj.size})`));
      out[obj.key] = createHash('sha256').update(body).digest('hex');
    }
    return out;
  }

  it('a storage it cannot list deletes nothing, records included', async () => {
    const good = createStorageBackend({ dataDir: tempDir('dits-repo-s3-'), storage: 's3://media/srv', s3: s3Options() });
    await createRepoChecked(db, good, 'team/doc');
    await fill(good, 'team/doc', 'doc');
    const wrong = createStorageBackend({ dataDir: tempDir('dits-repo-s3-'), storage: 's3://no-such-bucket/srv', s3: s3Options() });
    expect(await code(deleteRepoAndContent(db, wrong, 'team/doc'))).toBe('repo-storage-unreachable');
    expect(getRepo(db, 'team/doc')).toBeDefined();
    expect(await good.countContent('team/doc')).toBeGreaterThanOrEqual(3);
  });

  it('deletes every key of that repository (refs included) and none under a longer name; an interrupted delete re-runs', async () => {
    let deletes = 0;
    let outage = false;
    const client = createS3Client({ bucket: 'media', ...s3Options() });
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if ((context as { commandName?: string }).commandName === 'DeleteObjectCommand' && outage && ++deletes > 5) {
          throw Object.assign(new Error('connection reset by the test'), { name: 'ECONNRESET', code: 'ECONNRESET' });
        }
        return next(args);
      },
      { step: 'initialize', name: 'testOutage' },
    );
    const backend = createStorageBackend({ dataDir: tempDir('dits-repo-s3-'), storage: 's3://media/srv', s3: { ...s3Options(), client } });
    for (const n of ['team/film', 'team/film2', 'team/fil']) {
      await createRepoChecked(db, backend, n);
      await fill(backend, n, n);
    }
    const film = await backend.forRepo('team/film');
    for (let i = 0; i < 40; i++) await film.put(`v1/objects/aa/${String(i).padStart(62, '0')}`, Buffer.from(`object ${i}`));
    const neighbours = { ...(await bucketSnapshot('srv/team/film2')), ...(await bucketSnapshot('srv/team/fil')) };
    expect(Object.keys(neighbours).length).toBeGreaterThanOrEqual(6);
    const total = await backend.countContent('team/film');
    expect(total).toBeGreaterThanOrEqual(43);

    outage = true;
    expect(await code(deleteRepoAndContent(db, backend, 'team/film'))).toBe('repo-content-delete-failed');
    expect(getRepo(db, 'team/film')).toBeUndefined();
    const left = await backend.countContent('team/film');
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThan(total);
    expect(await code(createRepoChecked(db, backend, 'team/film'))).toBe('repo-content-exists');

    outage = false;
    const again = await deleteRepoAndContent(db, backend, 'team/film');
    expect(again.deletedObjects).toBe(left);
    expect(await bucketSnapshot('srv/team/film/')).toEqual({});
    const after = { ...(await bucketSnapshot('srv/team/film2')), ...(await bucketSnapshot('srv/team/fil')) };
    expect(after).toEqual(neighbours);
    await createRepoChecked(db, backend, 'team/film');
    expect(await (await backend.forRepo('team/film')).getVersioned('v1/refs')).toBeNull();
  });
});
