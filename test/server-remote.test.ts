/**
 * The `dits::http://` remote: the ObjectStorage contract run against HttpStorage talking
 * to a real server on 127.0.0.1 (in process, FileStorage behind it), the access rules of
 * the storage routes, and end to end with the server as its own process and real git.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addUser, createRepo, createToken, grant } from '../server/admin.js';
import { startServer, type RunningServer } from '../server/main.js';
import { HttpStorage } from '../src/transfer/http-storage.js';
import { readStreamToBuffer } from '../src/transfer/object-storage.js';
import { describeStorageContract, seededBytes } from './transfer/storage-contract.js';

const dirs: string[] = [];
function tempDir(prefix: string): string {
  const d = mkdtempSync(path.join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

let server: RunningServer;
let adminToken: string;
let readerToken: string;
let outsiderToken: string;
let repoCounter = 0;

beforeAll(async () => {
  server = await startServer({ dataDir: tempDir('dits-http-storage-'), port: 0 });
  addUser(server.db, 'root', { admin: true });
  adminToken = createToken(server.db, 'root', 'test');
  addUser(server.db, 'reader');
  readerToken = createToken(server.db, 'reader', 'test');
  addUser(server.db, 'outsider');
  outsiderToken = createToken(server.db, 'outsider', 'test');
});
afterAll(async () => {
  await server?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A fresh repository on the shared server, as HttpStorage for `token`. */
function freshRepo(token: string = adminToken): { storage: HttpStorage; name: string } {
  const name = `team/r${++repoCounter}`;
  createRepo(server.db, name);
  const storage = new HttpStorage({ baseUrl: `${server.url}/${name}`, token: async () => token, retryDeps: { sleep: async () => {}, random: () => 0 } });
  return { storage, name };
}

describeStorageContract('HttpStorage (Dits server, FileStorage behind it)', async () => ({ storage: freshRepo().storage }), {
  manyKeys: 2100,
  bigBodyBytes: 8 * 1024 * 1024 + 12345,
  casWriters: 8,
  casIncrements: 5,
});

describe('storage routes: access and errors', () => {
  it('checks tokens and roles: 401 auth-required with a hint, 404 repo-not-found, 403 forbidden for writes by readers', async () => {
    const { storage, name } = freshRepo();
    await storage.put('v1/objects/ab/cd', Buffer.from('hello'));
    await storage.checkAccess();

    const noToken = new HttpStorage({ baseUrl: `${server.url}/${name}` });
    await expect(noToken.head('v1/objects/ab/cd')).rejects.toMatchObject({ code: 'auth-required', hint: expect.stringMatching(/git dits server token create.*\n.*git credential approve/s) });
    const badToken = new HttpStorage({ baseUrl: `${server.url}/${name}`, token: async () => 'dits_nope' });
    await expect(badToken.checkAccess()).rejects.toMatchObject({ code: 'auth-required' });

    const outsider = new HttpStorage({ baseUrl: `${server.url}/${name}`, token: async () => outsiderToken });
    await expect(outsider.getBuffer('v1/objects/ab/cd')).rejects.toMatchObject({ code: 'repo-not-found' });
    await expect(outsider.checkAccess()).rejects.toMatchObject({ code: 'repo-not-found' });
    const missingRepo = new HttpStorage({ baseUrl: `${server.url}/team/nothing-here`, token: async () => adminToken });
    await expect(missingRepo.head('x')).rejects.toMatchObject({ code: 'repo-not-found' });

    grant(server.db, 'reader', name, 'read');
    const reader = new HttpStorage({ baseUrl: `${server.url}/${name}`, token: async () => readerToken });
    expect((await reader.getBuffer('v1/objects/ab/cd')).toString()).toBe('hello');
    expect(await reader.getVersioned('refs')).toBeNull();
    await expect(reader.put('v1/objects/ab/ef', Buffer.from('x'))).rejects.toMatchObject({ code: 'forbidden', status: 403 });
    await expect(reader.delete('v1/objects/ab/cd')).rejects.toMatchObject({ code: 'forbidden' });
    await expect(reader.putIf('refs', Buffer.from('x'), 'absent')).rejects.toMatchObject({ code: 'forbidden' });
    expect((await storage.getBuffer('v1/objects/ab/cd')).toString()).toBe('hello');
  });

  it('answers 400 for bad keys and 416 for ranges past the end at the HTTP level', async () => {
    const { name } = freshRepo();
    const auth = { authorization: `Bearer ${adminToken}` };
    const put = await fetch(`${server.url}/${name}/storage/o/a%2F%2Fb`, { method: 'PUT', headers: auth, body: 'x' });
    expect(put.status).toBe(400);
    const reserved = await fetch(`${server.url}/${name}/storage/o/.dits-lock`, { method: 'PUT', headers: auth, body: 'x' });
    expect(reserved.status).toBe(400);
    const ok = await fetch(`${server.url}/${name}/storage/o/k`, { method: 'PUT', headers: auth, body: 'abcdef' });
    expect(ok.status).toBe(200);
    const partial = await fetch(`${server.url}/${name}/storage/o/k`, { headers: { ...auth, range: 'bytes=2-3' } });
    expect(partial.status).toBe(206);
    expect(partial.headers.get('content-range')).toBe('bytes 2-3/6');
    expect(await partial.text()).toBe('cd');
    const past = await fetch(`${server.url}/${name}/storage/o/k`, { headers: { ...auth, range: 'bytes=6-9' } });
    expect(past.status).toBe(416);
    const noPrecondition = await fetch(`${server.url}/${name}/storage/v/refs`, { method: 'POST', headers: auth, body: 'x' });
    expect(noPrecondition.status).toBe(428);
  });

  it('records reads of packs and manifests in the access tracker', async () => {
    const { storage, name } = freshRepo();
    const packId = 'a'.repeat(64);
    const fileId = 'b'.repeat(64);
    await storage.put(`v1/packs/${packId}.pack`, seededBytes(1000));
    await storage.put(`v1/objects/${fileId.slice(0, 2)}/${fileId.slice(2)}`, Buffer.from('manifest'));
    await storage.getBuffer(`v1/packs/${packId}.pack`, { start: 10, end: 20 });
    await readStreamToBuffer(await storage.get(`v1/objects/${fileId.slice(0, 2)}/${fileId.slice(2)}`));
    server.access.flush();
    const rows = server.db.sqlite
      .prepare('SELECT kind, object_id FROM access JOIN repos ON repos.id = access.repo_id WHERE repos.name = ? ORDER BY kind')
      .all(name);
    expect(rows).toEqual([
      { kind: 'file', object_id: fileId },
      { kind: 'pack', object_id: packId },
    ]);
  });
});
