/**
 * Local cache tiering: plan (only what the remote verifiably holds), apply, then reads come
 * back through ensureLocal.
 */
import { afterAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { MemoryStorage } from '../../src/transfer/memory-storage.js';
import { FileStorage } from '../../src/transfer/file-storage.js';
import { ChunkMissingError } from '../../src/store/chunk-store.js';
import { applyPrune, ensureLocal, markChunksUsed, planPrune, pushContent, trackChunkUsage } from '../../src/remote/content/index.js';
import { addFile, chunkIds, openStore, readFile, sameBytes, seededBytes, TempDirs } from './fixtures.js';

const dirs = new TempDirs();
afterAll(() => dirs.cleanup());

const DAY = 24 * 3600 * 1000;

describe('prune', () => {
  it('drops old chunks the remote holds, keeps recent and unpushed ones; ensureLocal restores', async () => {
    const remote = new MemoryStorage();
    const a = openStore(dirs);
    const oldFile = seededBytes(1_000_000, 51, 150_000);
    const recentFile = seededBytes(500_000, 52);
    const unpushed = seededBytes(300_000, 53);
    const mOld = await addFile(a, oldFile);
    const mRecent = await addFile(a, recentFile);
    const mUnpushed = await addFile(a, unpushed);
    await pushContent(remote, a, [mOld, mRecent], { remoteName: 'origin', packSize: 400_000 });

    const now = Date.now() + 60 * DAY;
    // the recent file was read yesterday (through the store's read path)
    const tracker = trackChunkUsage(a, { now: () => now - DAY });
    for (const id of chunkIds(a, mRecent)) await a.getChunk(id);
    tracker.detach();

    const statsBefore = a.stats();
    const plan = await planPrune(a, remote, { remoteName: 'origin', olderThanMs: 30 * DAY, now });
    const oldIds = new Set(chunkIds(a, mOld).map((x) => x.toString('hex')));
    const recentIds = new Set(chunkIds(a, mRecent).map((x) => x.toString('hex')));
    const dropped = plan.packs.flatMap((p) => p.drop.map((x) => x.toString('hex')));
    expect(new Set(dropped)).toEqual(new Set([...oldIds].filter((id) => !recentIds.has(id))));
    expect(plan.notOnRemote).toBe(new Set(chunkIds(a, mUnpushed).map((x) => x.toString('hex'))).size);
    expect(plan.failedRemotePacks).toEqual([]);
    expect(plan.verifiedRemotePacks).toBeGreaterThan(0);
    expect(plan.verified).toBe(true);
    expect(plan.verifyBytes).toBeGreaterThanOrEqual(plan.freedBytes); // every dropped chunk read back
    expect(plan.freedBytes).toBeGreaterThan(900_000 * 0.5);

    const applied = applyPrune(a, plan);
    expect(applied.chunks).toBe(plan.chunks);
    expect(applied.freedBytes).toBeGreaterThan(0);
    const statsAfter = a.stats();
    expect(statsAfter.chunks).toBe(statsBefore.chunks - plan.chunks);
    expect(statsBefore.packBytes - statsAfter.packBytes).toBe(applied.freedBytes);
    await expect(readFile(a, mOld)).rejects.toBeInstanceOf(ChunkMissingError);
    expect(sameBytes(await readFile(a, mRecent), recentFile)).toBe(true);
    expect(sameBytes(await readFile(a, mUnpushed), unpushed)).toBe(true);

    const back = await ensureLocal(remote, a, { manifestIds: [mOld] }, { remoteName: 'origin' });
    expect(back.chunks).toBe(plan.chunks);
    expect(sameBytes(await readFile(a, mOld), oldFile)).toBe(true);
    // nothing to do now: no request
    const again = await ensureLocal(remote, a, { manifestIds: [mOld, mRecent], chunkIds: [dropped[0]!] }, { remoteName: 'origin' });
    expect(again).toMatchObject({ chunks: 0, requests: 0 });
    a.close();
  });

  it('maxLocalBytes drops least recently used first; keepManifestIds are never dropped', async () => {
    const remote = new MemoryStorage();
    const a = openStore(dirs);
    const ms: string[] = [];
    for (let i = 0; i < 4; i++) ms.push(await addFile(a, seededBytes(400_000, 60 + i)));
    await pushContent(remote, a, ms, { remoteName: 'origin', packSize: 1_000_000 });
    const now = Date.now() + 20 * DAY; // uses marked below come after the chunks were added
    // use order: file 2 oldest, then 0, then 3, then 1
    for (const [i, t] of [[2, 1], [0, 2], [3, 3], [1, 4]] as const) markChunksUsed(a, chunkIds(a, ms[i]!), now - 10 * DAY + t * 1000);
    const total = a.dbForTests.prepare('SELECT sum(stored_len) + count(*) * 41 AS b FROM chunks').get() as { b: number };
    const cap = Math.floor(total.b / 2) + 5000; // files 0 and 3 (about half) must go
    const plan = await planPrune(a, remote, { remoteName: 'origin', maxLocalBytes: cap, now, keepManifestIds: [ms[2]!] });
    const dropped = new Set(plan.packs.flatMap((p) => p.drop.map((x) => x.toString('hex'))));
    const ids = (i: number) => chunkIds(a, ms[i]!).map((x) => x.toString('hex'));
    expect(ids(2).some((id) => dropped.has(id))).toBe(false); // protected
    expect(ids(0).every((id) => dropped.has(id))).toBe(true); // next oldest
    expect(ids(1).some((id) => dropped.has(id))).toBe(false); // most recent
    // file 3 goes too, but for the few bytes the cap's margin lets stay
    const kept3 = chunkIds(a, ms[3]!).filter((id) => !dropped.has(id.toString('hex')));
    expect(kept3.reduce((n, id) => n + a.locate(id)!.storedLength + 41, 0)).toBeLessThanOrEqual(5000 + Math.abs(total.b - 2 * Math.floor(total.b / 2)) + 200);
    expect(plan.localBytesAfter).toBeLessThanOrEqual(cap);
    a.close();
  });

  it('never drops a chunk whose remote copy fails verification', async () => {
    const root = path.join(dirs.make(), 'remote');
    const remote = new FileStorage(root, { fsync: false });
    const a = openStore(dirs);
    const m1 = await addFile(a, seededBytes(300_000, 71));
    const m2 = await addFile(a, seededBytes(300_000, 72));
    await pushContent(remote, a, [m1], { remoteName: 'origin' });
    await pushContent(remote, a, [m2], { remoteName: 'origin' });
    // damage the last chunk of m2's pack
    const packs = fs.readdirSync(path.join(root, 'v1/packs')).filter((n) => n.endsWith('.pack'));
    expect(packs).toHaveLength(2);
    const plan0 = await planPrune(a, remote, { remoteName: 'origin', olderThanMs: 0, now: Date.now() + DAY, dryRun: true });
    expect(plan0.failedRemotePacks).toEqual([]);
    const m2First = chunkIds(a, m2)[0]!;
    let bad = '';
    for (const p of packs) {
      const bytes = fs.readFileSync(path.join(root, 'v1/packs', p));
      if (bytes.subarray(16, 48).equals(m2First)) {
        bad = p;
        const f = path.join(root, 'v1/packs', p);
        fs.chmodSync(f, 0o644);
        bytes[bytes.length - 5] ^= 0xff;
        fs.writeFileSync(f, bytes);
      }
    }
    expect(bad).not.toBe('');
    expect(() => applyPrune(a, plan0)).toThrow(/not verified/); // a dry run's plan drops nothing
    const plan = await planPrune(a, remote, { remoteName: 'origin', olderThanMs: 0, now: Date.now() + DAY });
    expect(plan.failedRemotePacks).toHaveLength(1);
    expect(plan.failedRemotePacks[0]).toMatchObject({ packKey: `v1/packs/${bad}`, chunks: 1 });
    const lastOfM2 = chunkIds(a, m2).at(-1)!;
    expect(plan.failedRemotePacks[0]!.ids).toEqual([lastOfM2]);
    const dropped = new Set(plan.packs.flatMap((p) => p.drop.map((x) => x.toString('hex'))));
    expect(dropped.has(lastOfM2.toString('hex'))).toBe(false);
    expect(chunkIds(a, m2).filter((id) => !dropped.has(id.toString('hex')))).toEqual([lastOfM2]);
    expect(chunkIds(a, m1).every((id) => dropped.has(id.toString('hex')))).toBe(true);
    applyPrune(a, plan);
    expect(a.hasChunk(lastOfM2)).toBe(true);

    // a pack whose size changed on the remote: its chunks are not dropped either (the sync sees it)
    const m3 = await addFile(a, seededBytes(200_000, 73));
    await pushContent(remote, a, [m3], { remoteName: 'origin' });
    const m3Pack = fs.readdirSync(path.join(root, 'v1/packs')).find((n) => n.endsWith('.pack') && !packs.includes(n))!;
    fs.chmodSync(path.join(root, 'v1/packs', m3Pack), 0o644);
    fs.appendFileSync(path.join(root, 'v1/packs', m3Pack), Buffer.from('x'));
    const plan2 = await planPrune(a, remote, { remoteName: 'origin', olderThanMs: 0, now: Date.now() + DAY });
    expect(plan2.chunks).toBe(0);
    expect(plan2.failedRemotePacks.map((f) => f.packKey).sort()).toEqual([`v1/packs/${bad}`, `v1/packs/${m3Pack}`].sort());
    expect(plan2.failedRemotePacks.find((f) => f.packKey === `v1/packs/${m3Pack}`)!.reason).toMatch(/bytes on the remote/);
    a.close();
  });
});
