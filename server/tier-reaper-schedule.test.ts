/**
 * The server's nightly reaper end to end, in process: a data dir whose warm tier is another
 * folder, a repository with two file versions (one read recently through the server, one
 * not), the scheduler's rounds run by tick(): the unread version's pack moves to the warm
 * folder, the read one stays, nothing is lost, and reads through the server still answer.
 */
import { mkdirSync, mkdtempSync, rmSync, statSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { addUser, createRepo, createToken, grant } from './admin.js';
import { startServer, type RunningServer } from './main.js';
import { TieredFolderStorage } from '../src/tier/tier-folders.js';
import { putTestManifest, putTestPack, testChunk } from '../src/tier/testing/remote-fixture.js';
import { DAY_MS, DEFAULT_POLICY } from '../src/tier/policy.js';
import { packKey } from '../src/remote/content/layout.js';
import { publishKeepHot } from '../src/tier/keep-hot.js';
import { filesUnder } from '../src/tier/testing/folder-files.js';

const dirs: string[] = [];
let server: RunningServer | null = null;
afterEach(async () => {
  await server?.close();
  server = null;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('the server reaper on its schedule', () => {
  it('moves the packs nobody read to the warm folder, keeps the read ones hot, loses nothing', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'dits-reap-data-'));
    const warm = mkdtempSync(path.join(tmpdir(), 'dits-reap-warm-'));
    dirs.push(dataDir, warm);
    let now = new Date(Date.UTC(2026, 11, 6, 2, 0));
    server = await startServer({
      dataDir,
      clock: () => now,
      tierFolders: { folders: { warm } },
      tierPolicy: { ...DEFAULT_POLICY, graceMs: 0 },
      accessFlushIntervalMs: 3_600_000,
    });
    createRepo(server.db, 'team/film');
    addUser(server.db, 'ann');
    grant(server.db, 'ann', 'team/film', 'write');
    const token = createToken(server.db, 'ann', 'laptop');

    // two versions, each in its own pack, written straight to the repository's storage
    const root = path.join(dataDir, 'repos', 'team', 'film');
    mkdirSync(root, { recursive: true });
    const storage = new TieredFolderStorage(root, { folders: { warm: path.join(warm, 'team', 'film') }, createFolders: true });
    const old = [testChunk('old-a', 3000), testChunk('old-b', 3000)];
    const cur = [testChunk('cur-a', 3000)];
    const oldPack = (await putTestPack(storage, old)).packId;
    const curPack = (await putTestPack(storage, cur)).packId;
    const oldManifest = await putTestManifest(storage, old, 'old.mov');
    const curManifest = await putTestManifest(storage, cur, 'cur.mov');
    // uploaded 60 days ago (the folder storage's clock is the files' mtimes)
    const past = (Date.now() - 60 * DAY_MS) / 1000;
    for (const f of filesUnder(root)) utimesSync(path.join(root, f), past, past);
    // what a client's `git dits tier apply` published: the default branch has cur.mov
    await publishKeepHot(storage, { at: Date.now(), patterns: [], resolved: [], manifests: [curManifest] });
    const content = (f: string): boolean => !f.startsWith('v1/tier/') && !f.startsWith('v1/access/');
    const before = filesUnder(root).filter(content).length;

    // the current version is read through the server today
    const get = await fetch(`${server.url}/team/film/storage/o/${packKey(curPack)}`, { headers: { authorization: `Bearer ${token}` } });
    expect(get.status).toBe(200);
    await get.arrayBuffer();
    const getManifest = await fetch(`${server.url}/team/film/storage/o/v1/objects/${curManifest.slice(0, 2)}/${curManifest.slice(2)}`, { headers: { authorization: `Bearer ${token}` } });
    expect(getManifest.status).toBe(200);
    await getManifest.arrayBuffer();

    // a new server's first round is the next 03:00, not now
    await server.tierScheduler.tick();
    expect(filesUnder(path.join(warm, 'team', 'film'))).toEqual([]);
    // 03:00: a round marks, the next night's moves (grace 0 here)
    now = new Date(Date.UTC(2026, 11, 6, 3, 0));
    await server.tierScheduler.tick();
    now = new Date(Date.UTC(2026, 11, 7, 3, 0));
    await server.tierScheduler.tick();

    const warmFiles = filesUnder(path.join(warm, 'team', 'film'));
    expect(warmFiles).toContain(packKey(oldPack));
    expect(warmFiles).not.toContain(packKey(curPack));
    expect(filesUnder(root)).toContain(packKey(curPack));
    // manifests and indexes never leave hot
    expect(warmFiles.filter((f) => !f.endsWith('.pack'))).toEqual([]);
    // nothing lost: every object is somewhere, once (markers under v1/tier/ come and go)
    const after = [...filesUnder(root), ...warmFiles].filter(content);
    expect(after.length).toBe(before);
    // and the moved pack still reads through the server, byte for byte the same size
    const moved = await fetch(`${server.url}/team/film/storage/o/${packKey(oldPack)}`, { headers: { authorization: `Bearer ${token}` } });
    expect(moved.status).toBe(200);
    expect((await moved.arrayBuffer()).byteLength).toBe(statSync(path.join(warm, 'team', 'film', packKey(oldPack))).size);
    void oldManifest;
  });
});

describe('the server reaper and graduation records', () => {
  it('moves the packs of a graduated repository to the warm folder by its last change, not by their recent upload; a shared pack stays', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'dits-reap-data-'));
    const warm = mkdtempSync(path.join(tmpdir(), 'dits-reap-warm-'));
    dirs.push(dataDir, warm);
    let now = new Date(Date.UTC(2026, 11, 6, 2, 0));
    server = await startServer({ dataDir, clock: () => now, tierFolders: { folders: { warm } }, tierPolicy: { ...DEFAULT_POLICY, graceMs: 0 }, accessFlushIntervalMs: 3_600_000 });
    createRepo(server.db, 'team/film');
    const root = path.join(dataDir, 'repos', 'team', 'film');
    mkdirSync(root, { recursive: true });
    const storage = new TieredFolderStorage(root, { folders: { warm: path.join(warm, 'team', 'film') }, createFolders: true });
    // pushed 5 days ago: nothing is warm by age (30 days)
    const a = [testChunk('grad-a', 3000)];
    const shared = [testChunk('grad-shared', 3000)];
    const aPack = (await putTestPack(storage, a)).packId;
    const sharedPack = (await putTestPack(storage, shared)).packId;
    const aManifest = await putTestManifest(storage, a, 'a.mov');
    const bManifest = await putTestManifest(storage, shared, 'b.mov');
    const otherManifest = await putTestManifest(storage, shared, 'other.mov'); // someone else's version, not graduated
    const past = (Date.now() - 5 * DAY_MS) / 1000;
    for (const f of filesUnder(root)) utimesSync(path.join(root, f), past, past);
    // the default keep-hot list (no pattern) names every current version: graduation overrides it
    await publishKeepHot(storage, { at: Date.now(), patterns: [], resolved: [], manifests: [aManifest, bManifest, otherManifest] });
    await storage.put('v1/tier/graduated/0a1b2c3d.json', Buffer.from(JSON.stringify({ version: 1, tier: 'warm', graduatedAt: new Date(Date.now() - 60_000).toISOString(), lastChange: new Date(Date.now() - 45 * DAY_MS).toISOString(), workTree: '/w/film', manifests: [aManifest, bManifest] })));
    await server.tierScheduler.tick(); // a new server: the first round is the next 03:00
    now = new Date(Date.UTC(2026, 11, 6, 3, 0));
    await server.tierScheduler.tick(); // marks
    now = new Date(Date.UTC(2026, 11, 7, 3, 0));
    await server.tierScheduler.tick(); // moves (grace 0)
    const warmFiles = filesUnder(path.join(warm, 'team', 'film'));
    expect(warmFiles).toContain(packKey(aPack));
    expect(warmFiles).not.toContain(packKey(sharedPack));
    expect(filesUnder(root)).toContain(packKey(sharedPack));
  });
});
