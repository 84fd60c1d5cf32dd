/**
 * A push never relies on a chunk whose only remote copies are in packs the reaper marked
 * for a move (v1/tier/pending/<packId>.json) or that rest in an archive class (the
 * listing's storage class): it uploads a fresh copy, in packs with other ids, so a fetch
 * that finds the old packs frozen still gets everything.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryStorage } from '../../src/transfer/memory-storage.js';
import type { ListedObject } from '../../src/transfer/object-storage.js';
import { FlakyStorage } from '../../src/transfer/testing/flaky-storage.js';
import { FrozenObjectError } from '../../src/tier/tier-storage.js';
import { ensureLocal } from '../../src/remote/content/fetch-content.js';
import { pushContent } from '../../src/remote/content/index.js';
import { addFile, openStore, readFile, sameBytes, seededBytes, TempDirs } from '../remote-content/fixtures.js';
import fs from 'node:fs';
import path from 'node:path';
import { TieredFolderStorage } from '../../src/tier/tier-folders.js';
import { FrozenContentError } from '../../src/remote/content/fetch-content.js';

const dirs = new TempDirs();
afterAll(() => dirs.cleanup());

async function packKeys(remote: MemoryStorage): Promise<Set<string>> {
  const out = new Set<string>();
  for await (const o of remote.list('v1/packs/')) if (o.key.endsWith('.pack')) out.add(o.key);
  return out;
}

const packIdOf = (key: string): string => key.slice('v1/packs/'.length, -'.pack'.length);

async function firstPush(): Promise<{ remote: MemoryStorage; file: Buffer; id: string; old: Set<string> }> {
  const remote = new MemoryStorage();
  const a = openStore(dirs);
  const file = seededBytes(400_000, 21);
  const id = await addFile(a, file);
  await pushContent(remote, a, [id], { remoteName: 'origin', packSize: 100_000 });
  a.close();
  return { remote, file, id, old: await packKeys(remote) };
}

/** A second clone pushes the same file again (its commit points at the same content). */
async function pushAgain(storage: MemoryStorage, file: Buffer): Promise<Awaited<ReturnType<typeof pushContent>>> {
  const b = openStore(dirs);
  const id = await addFile(b, file);
  const r = await pushContent(storage, b, [id], { remoteName: 'origin', packSize: 100_000 });
  b.close();
  return r;
}

/** The old packs answer "frozen" to a read: a fetch must get everything from the fresh copies. */
async function fetchWithOldFrozen(remote: MemoryStorage, old: Set<string>, id: string, file: Buffer): Promise<void> {
  const front = new FlakyStorage(remote, (c) => (c.op === 'get' && old.has(c.key) ? { kind: 'fail', error: new FrozenObjectError(c.key, 'DEEP_ARCHIVE') } : { kind: 'pass' }));
  const c = openStore(dirs);
  const r = await ensureLocal(front, c, { manifestIds: [id] }, { remoteName: 'origin', allowFrozen: true });
  expect(r.frozen).toEqual([]);
  expect(sameBytes(await readFile(c, id), file)).toBe(true);
  c.close();
}

describe('push and the tier reaper', () => {
  it('control: with nothing pending or archived, a second push of the same content uploads nothing', async () => {
    const { remote, file, old } = await firstPush();
    const r = await pushAgain(remote, file);
    expect(r).toMatchObject({ chunks: 0, packs: 0, chunksRecopied: 0 });
    expect(await packKeys(remote)).toEqual(old);
  });

  it('chunks only in packs pending a move are uploaded again, in packs with other ids', async () => {
    const { remote, file, id, old } = await firstPush();
    for (const k of old) await remote.put(`v1/tier/pending/${packIdOf(k)}.json`, Buffer.from(JSON.stringify({ tier: 'deep', markedAt: 1 })));
    const r = await pushAgain(remote, file);
    expect(r.chunksRecopied).toBeGreaterThan(0);
    expect(r.chunks).toBe(r.chunksRecopied);
    const now = await packKeys(remote);
    const fresh = [...now].filter((k) => !old.has(k));
    expect(fresh.length).toBe(r.packs);
    expect(r.packs).toBeGreaterThan(0);
    await fetchWithOldFrozen(remote, old, id, file);
  });

  it('chunks only in packs the listing shows in an archive class are uploaded again', async () => {
    const { remote, file, id, old } = await firstPush();
    // the listing says DEEP_ARCHIVE for the old packs (as S3's ListObjectsV2 StorageClass does)
    const listing = Object.create(remote) as MemoryStorage;
    listing.list = async function* (prefix: string): AsyncIterable<ListedObject> {
      for await (const o of remote.list(prefix)) yield old.has(o.key) ? ({ ...o, storageClass: 'DEEP_ARCHIVE' } as ListedObject) : o;
    };
    const r = await pushAgain(listing, file);
    expect(r.chunksRecopied).toBeGreaterThan(0);
    expect([...(await packKeys(remote))].filter((k) => !old.has(k)).length).toBe(r.packs);
    await fetchWithOldFrozen(remote, old, id, file);
    // a class readable now (GLACIER_IR, STANDARD_IA) is reused as usual
    const readable = Object.create(remote) as MemoryStorage;
    readable.list = async function* (prefix: string): AsyncIterable<ListedObject> {
      for await (const o of remote.list(prefix)) yield { ...o, storageClass: 'GLACIER_IR' } as ListedObject;
    };
    expect((await pushAgain(readable, file)).chunks).toBe(0);
  });

  it('a folder tier map: chunks only in the archive folder (tape-like, needs a restore) are uploaded again', async () => {
    const dir = dirs.make();
    for (const f of ['hot', 'deep']) fs.mkdirSync(path.join(dir, f));
    const remote = new TieredFolderStorage(path.join(dir, 'hot'), { folders: { deep: path.join(dir, 'deep') }, archive: ['deep'] });
    const a = openStore(dirs);
    const file = seededBytes(300_000, 61);
    const id = await addFile(a, file);
    await pushContent(remote, a, [id], { remoteName: 'origin', packSize: 100_000 });
    a.close();
    const old: string[] = [];
    for await (const o of remote.list('v1/packs/')) if (o.key.endsWith('.pack')) old.push(o.key);
    for (const key of old) await remote.setStorageClass(key, 'deep', { size: (await remote.head(key))!.size });
    // frozen now: a fetch says so
    const c = openStore(dirs);
    await expect(ensureLocal(remote, c, { manifestIds: [id] }, { remoteName: 'origin' })).rejects.toBeInstanceOf(FrozenContentError);
    c.close();
    const b = openStore(dirs);
    expect(await addFile(b, file)).toBe(id);
    const r = await pushContent(remote, b, [id], { remoteName: 'origin', packSize: 100_000 });
    b.close();
    expect(r.chunksRecopied).toBeGreaterThan(0);
    const d = openStore(dirs);
    const got = await ensureLocal(remote, d, { manifestIds: [id] }, { remoteName: 'origin', allowFrozen: true });
    expect(got.frozen).toEqual([]);
    expect(sameBytes(await readFile(d, id), file)).toBe(true);
    d.close();
  });
});
