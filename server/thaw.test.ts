/**
 * Thaws through the server: POST /:owner/:repo/thaw (write role, monthly budget), GET
 * /:owner/:repo/thaw/:id, and a GET of a frozen object: 423 with the facts, which the HTTP
 * client turns into FrozenObjectError. The archive behind is the in-memory storage with S3's
 * archive behaviour (src/tier/testing); app.request drives the routes without a socket.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addUser, createRepo, createToken, getRepo, grant } from './admin.js';
import { createApp } from './app.js';
import { openServerDb, type ServerDb } from './db.js';
import type { StorageBackend } from './storage-backend.js';
import { storageRoutes } from './routes/storage.js';
import { setThawBudget, thawRoutes } from './routes/thaw.js';
import { ArchiveMemoryStorage } from '../src/tier/testing/archive-memory-storage.js';
import { pushContent } from '../src/remote/content/index.js';
import { packKey } from '../src/remote/content/layout.js';
import { ChunkStore } from '../src/store/chunk-store.js';
import { ingest } from '../src/store/ingest.js';
import { AWS_US_EAST_1, restoreCost, type RestoreEstimate } from '../src/tier/prices.js';
import { HttpStorage } from '../src/transfer/http-storage.js';
import { FrozenObjectError } from '../src/tier/tier-storage.js';

let db: ServerDb;
let app: ReturnType<typeof createApp>;
let dir: string;
let remote: ArchiveMemoryStorage;
let manifest: string;
const tokens: Record<string, string> = {};
const now = new Date('2026-12-06T12:00:00.000Z');

function seeded(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

beforeEach(async () => {
  db = openServerDb(':memory:');
  dir = mkdtempSync(join(tmpdir(), 'dits-thaw-srv-'));
  remote = new ArchiveMemoryStorage();
  const store = ChunkStore.open(join(dir, 'client'), { create: true });
  const r = await ingest(store, (async function* () { yield seeded(400_000, 7); })(), { params: { minSize: 1024, avgSize: 4096, maxSize: 16384 } });
  manifest = r.manifestId;
  await pushContent(remote, store, [manifest], { remoteName: 'origin', packSize: 100_000 });
  store.close();
  remote.freezeAllPacks('GLACIER');
  const backend: StorageBackend = {
    location: 'memory:',
    direct: false,
    forRepo: async () => remote,
    presign: async () => null,
    countContent: async () => 0,
    deleteContent: async () => 0,
  };
  app = createApp({
    db,
    clock: () => now,
    storage: backend,
    routes: [storageRoutes(backend), thawRoutes(backend, { cacheDir: join(dir, 'cache') })],
  });
  addUser(db, 'root', { admin: true });
  for (const name of ['alice', 'bob', 'rita']) addUser(db, name);
  for (const name of ['root', 'alice', 'bob', 'rita']) tokens[name] = createToken(db, name, 'laptop');
  createRepo(db, 'team/film');
  grant(db, 'alice', 'team/film', 'write');
  grant(db, 'bob', 'team/film', 'write');
  grant(db, 'rita', 'team/film', 'read');
});

afterEach(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

function req(method: string, path: string, as: string, body?: unknown): Promise<Response> {
  const headers: Record<string, string> = { authorization: `Bearer ${tokens[as]}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  return Promise.resolve(app.request(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) }));
}

describe('POST /:owner/:repo/thaw', () => {
  it('a dry run answers the plan and its estimates; nothing is restored', async () => {
    const res = await req('POST', '/team/film/thaw', 'alice', { files: [{ manifest, path: 'a.mov' }], tier: 'bulk', dryRun: true });
    expect(res.status).toBe(200);
    const j = (await res.json()) as { plan: { packs: { size: number }[]; estimates: RestoreEstimate[] }; started: number };
    const bytes = j.plan.packs.reduce((s, p) => s + p.size, 0);
    expect(j.plan.packs.length).toBeGreaterThan(2);
    expect(j.plan.estimates.find((e) => e.tier === 'bulk')).toEqual(restoreCost(AWS_US_EAST_1, 'GLACIER', 'bulk', bytes, j.plan.packs.length, 7));
    expect(j.started).toBe(0);
    expect(remote.counts.restores).toBe(0);
  });

  it('restores each pack once, records the thaw, and GET …/thaw/:id shows the progress from HEAD', async () => {
    const res = await req('POST', '/team/film/thaw', 'alice', { files: [{ manifest, path: 'a.mov' }], tier: 'standard', days: 3 });
    expect(res.status).toBe(200);
    const j = (await res.json()) as { id: string; started: number; plan: { packs: unknown[] }; budget: { spent: number } };
    expect(j.started).toBe(j.plan.packs.length);
    expect(remote.counts.restores).toBe(j.plan.packs.length);
    // bob asks the same at once: nothing new is asked or paid
    const again = (await (await req('POST', '/team/film/thaw', 'bob', { files: [{ manifest }] })).json()) as { started: number; id?: string };
    expect(again.started).toBe(0);
    expect(remote.counts.restores).toBe(j.plan.packs.length);

    let status = (await (await req('GET', `/team/film/thaw/${j.id}`, 'rita')).json()) as { done: boolean; progress: { state: string }[]; by: string };
    expect(status.by).toBe('alice');
    expect(status.done).toBe(false);
    expect(status.progress.every((p) => p.state === 'restoring')).toBe(true);
    remote.finishRestores();
    status = (await (await req('GET', `/team/film/thaw/${j.id}`, 'rita')).json()) as typeof status;
    expect(status.done).toBe(true);
    expect((await req('GET', '/team/film/thaw/20261206T120000Z-00000000', 'rita')).status).toBe(404);
  });

  it('needs the write role', async () => {
    const res = await req('POST', '/team/film/thaw', 'rita', { files: [{ manifest }] });
    expect(res.status).toBe(403);
    expect(remote.counts.restores).toBe(0);
  });

  it('paths instead of manifest ids: 400 saying the client resolves them', async () => {
    const res = await req('POST', '/team/film/thaw', 'alice', { paths: ['a.mov'], rev: 'HEAD' });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { message: string }).message).toMatch(/send manifest ids/);
  });

  it('the monthly budget refuses (402) what would exceed it, before anything is asked; two at once cannot both pass', async () => {
    const dry = (await (await req('POST', '/team/film/thaw', 'alice', { files: [{ manifest }], tier: 'expedited', dryRun: true })).json()) as { plan: { byTier: { tier: string; total: number }[] } };
    const cost = dry.plan.byTier.find((t) => t.tier === 'expedited')!.total;
    expect(cost).toBeGreaterThan(0);
    const repoId = getRepo(db, 'team/film')!.id;
    setThawBudget(db, repoId, cost * 0.5);
    const refused = await req('POST', '/team/film/thaw', 'alice', { files: [{ manifest }], tier: 'expedited' });
    expect(refused.status).toBe(402);
    const body = (await refused.json()) as { code: string; estimate: { total: number }; budget: { monthly: number; spent: number } };
    expect(body.code).toBe('thaw-over-budget');
    expect(body.estimate.total).toBe(cost);
    expect(remote.counts.restoreCalls).toBe(0);
    // room for one: of two at once, one is refused
    setThawBudget(db, repoId, cost * 1.5);
    const [a, b] = await Promise.all([
      req('POST', '/team/film/thaw', 'alice', { files: [{ manifest }], tier: 'expedited' }),
      req('POST', '/team/film/thaw', 'bob', { files: [{ manifest }], tier: 'expedited' }),
    ]);
    expect([a.status, b.status].sort()).toEqual([200, 402]);
    const spent = db.stmt('SELECT SUM(dollars) AS s FROM thaw_spend').get() as { s: number };
    expect(spent.s).toBeCloseTo(cost, 10);
  });
});

describe('GET of a frozen object', () => {
  it('answers 423 with the facts; the HTTP client throws FrozenObjectError (not retried)', async () => {
    const packs = remote.keys().filter((k) => k.endsWith('.pack'));
    const key = packs[0]!;
    const res = await req('GET', `/team/film/storage/o/${key}`, 'rita');
    expect(res.status).toBe(423);
    const j = (await res.json()) as { code: string; key: string; storageClass: string; bytes: number; thaw: { command: string; estimates: RestoreEstimate[] } };
    const size = (await remote.head(key))!.size;
    expect(j).toMatchObject({ code: 'storage-frozen', key, storageClass: 'GLACIER', bytes: size });
    expect(j.thaw.estimates.map((e) => e.tier)).toEqual(['expedited', 'standard', 'bulk']);
    expect(j.thaw.estimates[1]).toEqual(restoreCost(AWS_US_EAST_1, 'GLACIER', 'standard', size, 1, 7));

    let requests = 0;
    const client = new HttpStorage({
      baseUrl: 'http://dits.test/team/film',
      token: async () => tokens.rita,
      fetch: (async (input: string | URL | Request, init?: RequestInit) => {
        if (String(input).includes('/storage/o/')) requests++;
        return app.request(String(input), init);
      }) as typeof fetch,
    });
    const err = await client.getBuffer(key, { start: 0, end: 99 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FrozenObjectError);
    expect((err as FrozenObjectError).storageClass).toBe('GLACIER');
    expect(requests).toBe(1);
    // restored: readable again
    remote.restores.set(packKey(key.slice('v1/packs/'.length, -'.pack'.length)), { ongoing: false, expiry: Date.UTC(2030, 0, 1) });
    expect((await client.getBuffer(key, { start: 0, end: 9 })).length).toBe(10);
  });
});

describe('a presigned GET of an archived object', () => {
  it("S3's 403 InvalidObjectState becomes FrozenObjectError, without presigning again", async () => {
    const calls: string[] = [];
    const client = new HttpStorage({
      baseUrl: 'http://dits.test/team/film',
      token: async () => tokens.rita,
      fetch: (async (input: string | URL | Request, init?: RequestInit) => {
        const url = String(input);
        calls.push(url);
        if (url.endsWith('/storage/presign')) {
          return new Response(JSON.stringify({ url: 'http://s3.test/media/k?X-Amz-Signature=x', method: 'GET', headers: {}, expiresAt: new Date(Date.now() + 600_000).toISOString() }), {
            status: 200,
            headers: { 'content-type': 'application/json' },
          });
        }
        if (url.startsWith('http://s3.test/')) {
          return new Response('<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidObjectState</Code><Message>The operation is not valid for the object\'s storage class</Message><StorageClass>DEEP_ARCHIVE</StorageClass></Error>', {
            status: 403,
            headers: { 'content-type': 'application/xml' },
          });
        }
        return app.request(url, init);
      }) as typeof fetch,
    });
    const key = `v1/packs/${'a'.repeat(64)}.pack`;
    const err = await client.getBuffer(key, { start: 0, end: 9 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FrozenObjectError);
    expect((err as FrozenObjectError).storageClass).toBe('DEEP_ARCHIVE');
    expect(calls.filter((u) => u.endsWith('/storage/presign')).length).toBe(1);
    expect(calls.filter((u) => u.startsWith('http://s3.test/')).length).toBe(1);
  });
});
