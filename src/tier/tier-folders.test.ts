/**
 * TieredFolderStorage: the ObjectStorage contract, moves between folders that never lose
 * an object (killed between copy and unlink, a full or unwritable or missing target, a
 * corrupt copy, reads during moves), an archive folder that needs a restore step, and the
 * wiring: a dits::file remote with dits.tier.folder.* and a server data dir with tier folders.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { describeStorageContract } from '../../test/transfer/storage-contract.js';
import { createStorageBackend, readTierFoldersFile, tierFoldersFile } from '../../server/storage-backend.js';
import { openRemoteStorage } from '../remote/open-remote.js';
import { FileStorage } from '../transfer/file-storage.js';
import { parseTierFolderArg, TieredFolderStorage, type TieredFolderOptions } from './tier-folders.js';
import { isFrozenError, tierStorageOf } from './tier-storage.js';

describeStorageContract(
  'TieredFolderStorage',
  async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'dits-tier-contract-'));
    for (const t of ['warm', 'deep']) mkdirSync(path.join(dir, t));
    const storage = new TieredFolderStorage(path.join(dir, 'hot'), { folders: { warm: path.join(dir, 'warm'), deep: path.join(dir, 'deep') }, archive: ['deep'] });
    return { storage, cleanup: () => rm(dir, { recursive: true, force: true }) };
  },
  { manyKeys: 300, bigBodyBytes: 4 * 1024 * 1024 + 17, casWriters: 4, casIncrements: 3 },
);

let dir: string;
let now: number;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'dits-tier-folders-'));
  for (const t of ['hot', 'warm', 'cold', 'deep']) mkdirSync(path.join(dir, t));
  now = Date.UTC(2026, 5, 1);
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function tiered(extra: Partial<TieredFolderOptions> = {}): TieredFolderStorage {
  return new TieredFolderStorage(path.join(dir, 'hot'), {
    folders: { warm: path.join(dir, 'warm'), cold: path.join(dir, 'cold'), deep: path.join(dir, 'deep') },
    archive: ['deep'],
    clock: () => now,
    ...extra,
  });
}

/** Every file under the test folder, bookkeeping included (relative paths). */
function files(): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(path.relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

async function rejection(p: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await p;
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected a rejection');
}

async function all<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

const KEY = 'v1/packs/ab/abcdef.pack';

describe('TieredFolderStorage moves', () => {
  it('moves a pack to a colder folder and back: one copy at a time, same bytes, upload time kept', async () => {
    const s = tiered();
    const body = randomBytes(300_000);
    await s.put(KEY, body);
    await s.put('v1/objects/m1', Buffer.from('manifest'));
    const uploaded = (await all(s.listTiered('v1/')))[1]!.lastModified;
    await s.setStorageClass(KEY, 'warm', { size: body.length });
    expect(files()).toEqual(['hot/v1/objects/m1', 'warm/v1/packs/ab/abcdef.pack']);
    await s.setStorageClass(KEY, 'cold', { size: body.length });
    expect(files()).toEqual(['cold/v1/packs/ab/abcdef.pack', 'hot/v1/objects/m1']);
    expect((await s.getBuffer(KEY)).equals(body)).toBe(true);
    expect((await s.getBuffer(KEY, { start: 10, end: 19 })).equals(body.subarray(10, 20))).toBe(true);
    expect(await all(s.list('v1/'))).toEqual([
      { key: 'v1/objects/m1', size: 8, storageClass: 'hot' },
      { key: KEY, size: body.length, storageClass: 'cold' },
    ]);
    const listed = await all(s.listTiered('v1/packs/'));
    expect(listed).toEqual([{ key: KEY, size: body.length, storageClass: 'cold', lastModified: uploaded }]);
    expect(await s.tierState(KEY)).toEqual({ size: body.length, storageClass: 'cold', restore: null });
    await s.setStorageClass(KEY, 'hot', { size: body.length });
    expect(files()).toEqual(['hot/v1/objects/m1', 'hot/v1/packs/ab/abcdef.pack']);
    expect(tierStorageOf(s)).toBe(s);
    expect(s.tierProfile.classes?.deep).toBe('deep');
    expect([...s.tierProfile.archive]).toEqual(['deep']);
  });

  it('an archive folder needs the restore step: frozen reads, restore, expiry, expired copies removed only with the archive copy there', async () => {
    const s = tiered();
    const body = randomBytes(5000);
    await s.put(KEY, body);
    await s.setStorageClass(KEY, 'deep', { size: body.length });
    for (const read of [() => s.get(KEY), () => s.get(KEY, { start: 0, end: 9 }), () => s.getBuffer(KEY)]) {
      const err = await rejection(read());
      expect(isFrozenError(err)).toBe(true);
      expect(err).toMatchObject({ code: 'storage-frozen', key: KEY, storageClass: 'deep' });
    }
    expect(await s.head(KEY)).toMatchObject({ size: body.length });
    expect(await s.tierState(KEY)).toEqual({ size: body.length, storageClass: 'deep', restore: null });
    expect(await s.requestRestore(KEY, { days: 2, tier: 'bulk' })).toBe('started');
    expect((await s.getBuffer(KEY)).equals(body)).toBe(true);
    expect(await s.tierState(KEY)).toEqual({ size: body.length, storageClass: 'deep', restore: { ongoing: false, expiry: now + 2 * 86_400_000 } });
    now += 86_400_000;
    expect(await s.requestRestore(KEY, { days: 3, tier: 'standard' })).toBe('restored');
    expect((await s.tierState(KEY))?.restore?.expiry).toBe(now + 3 * 86_400_000);
    expect(await all(s.list('v1/packs/'))).toEqual([{ key: KEY, size: body.length, storageClass: 'deep' }]);
    expect(await s.removeExpiredRestores()).toBe(0);
    now += 3 * 86_400_000 + 1;
    expect(isFrozenError(await rejection(s.getBuffer(KEY)))).toBe(true);
    expect(await s.removeExpiredRestores()).toBe(1);
    expect(files()).toEqual(['deep/v1/packs/ab/abcdef.pack']);
    // a moved-out archive object: warming needs its restored copy
    expect(isFrozenError(await rejection(s.setStorageClass(KEY, 'hot', { size: body.length })))).toBe(true);
    await s.requestRestore(KEY, { days: 1, tier: 'standard' });
    await s.setStorageClass(KEY, 'hot', { size: body.length });
    expect(files()).toEqual(['hot/v1/packs/ab/abcdef.pack']);
    expect(await s.requestRestore(KEY, { days: 1, tier: 'standard' })).toBe('not-archived');
  });

  it('two restore requests at once: one restore step, the other told it runs; tierState says ongoing meanwhile', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let copies = 0;
    const s = tiered({
      faults: {
        beforeWrite: async (target) => {
          if (target !== 'restored') return;
          copies += 1;
          await gate;
        },
      },
    });
    await s.put(KEY, Buffer.from('archived'));
    await s.setStorageClass(KEY, 'deep', { size: 8 });
    const first = s.requestRestore(KEY, { days: 1, tier: 'standard' });
    await new Promise((r) => setTimeout(r, 20));
    expect(await s.requestRestore(KEY, { days: 1, tier: 'standard' })).toBe('in-progress');
    expect((await s.tierState(KEY))?.restore).toEqual({ ongoing: true });
    release();
    expect(await first).toBe('started');
    expect(copies).toBe(1);
    expect((await s.getBuffer(KEY)).toString()).toBe('archived');
  });

  it('a move killed between copy and unlink leaves both copies; the listing shows one; the next move verifies and unlinks without copying again', async () => {
    let writes = 0;
    const killed = tiered({
      faults: {
        beforeWrite: () => void writes++,
        beforeUnlink: () => {
          throw new Error('killed');
        },
      },
    });
    const body = randomBytes(2_500_000);
    await killed.put(KEY, body);
    await expect(killed.setStorageClass(KEY, 'cold', { size: body.length })).rejects.toThrow('killed');
    expect(files()).toEqual(['cold/v1/packs/ab/abcdef.pack', 'hot/v1/packs/ab/abcdef.pack']);
    expect(await all(killed.list(''))).toEqual([{ key: KEY, size: body.length, storageClass: 'hot' }]);
    expect((await killed.getBuffer(KEY)).equals(body)).toBe(true);
    const copiesBefore = writes;
    expect(copiesBefore).toBe(3); // 1 MiB chunks
    const next = tiered({ faults: { beforeWrite: () => void writes++ } });
    await next.setStorageClass(KEY, 'cold', { size: body.length });
    expect(writes).toBe(copiesBefore); // the copy in place was verified, not made again
    expect(files()).toEqual(['cold/v1/packs/ab/abcdef.pack']);
    expect((await next.getBuffer(KEY)).equals(body)).toBe(true);
  });

  it('a corrupt copy already in the target is replaced, and the source unlinked only after the fresh copy is verified', async () => {
    const s = tiered();
    const body = randomBytes(100_000);
    await s.put(KEY, body);
    const bad = Buffer.from(body);
    bad[500] ^= 0xff;
    mkdirSync(path.join(dir, 'warm/v1/packs/ab'), { recursive: true });
    writeFileSync(path.join(dir, 'warm', KEY), bad);
    await s.setStorageClass(KEY, 'warm', { size: body.length });
    expect(files()).toEqual(['warm/v1/packs/ab/abcdef.pack']);
    expect(readFileSync(path.join(dir, 'warm', KEY)).equals(body)).toBe(true);
  });

  it('a copy that does not read back as written fails the move and never unlinks the source', async () => {
    const s = tiered({
      faults: {
        afterCopy: (tmp) => {
          const b = readFileSync(tmp);
          b[7] ^= 1;
          writeFileSync(tmp, b);
        },
      },
    });
    const body = randomBytes(64_000);
    await s.put(KEY, body);
    expect(await rejection(s.setStorageClass(KEY, 'cold', { size: body.length }))).toMatchObject({ code: 'tier-copy-mismatch' });
    expect(files()).toEqual(['hot/v1/packs/ab/abcdef.pack']);
    expect((await s.getBuffer(KEY)).equals(body)).toBe(true);
  });

  it('a full, unwritable or missing target folder fails the move with what to do; the source stays, no temp file is left', async () => {
    const body = randomBytes(3_000_000);
    await tiered().put(KEY, body);
    for (const [code, want] of [
      ['ENOSPC', 'tier-folder-full'],
      ['EACCES', 'tier-folder-unwritable'],
    ] as const) {
      let n = 0;
      const s = tiered({
        faults: {
          beforeWrite: () => {
            if (++n === 2) throw Object.assign(new Error(`${code}: fault`), { code });
          },
        },
      });
      const err = await rejection(s.setStorageClass(KEY, 'warm', { size: body.length }));
      expect(err).toMatchObject({ code: want });
      expect(err.message).toMatch(/nothing was moved/);
      expect(files()).toEqual(['hot/v1/packs/ab/abcdef.pack']);
    }
    await rm(path.join(dir, 'cold'), { recursive: true });
    await tiered().setStorageClass(KEY, 'warm', { size: body.length });
    await rm(path.join(dir, 'warm'), { recursive: true }); // as if the share were not mounted
    expect(await rejection(tiered().getBuffer(KEY))).toMatchObject({ code: 'tier-folder-missing' });
    mkdirSync(path.join(dir, 'warm'));
    await tiered().put(KEY, body);
    const missing = await rejection(tiered().setStorageClass(KEY, 'cold', { size: body.length }));
    expect(missing).toMatchObject({ code: 'tier-folder-missing' });
    expect(existsSync(path.join(dir, 'cold'))).toBe(false);
    expect((await tiered().getBuffer(KEY)).equals(body)).toBe(true);
    expect(await rejection(tiered().setStorageClass(KEY, 'warm', { size: 5 }))).toMatchObject({ code: 'storage-size-mismatch' });
  });

  it('reads during moves always get the whole object, in every direction', async () => {
    const s = tiered({ archive: [] });
    const bodies = Array.from({ length: 12 }, (_, i) => randomBytes(150_000 + i));
    const key = (i: number) => `v1/packs/k${i}.pack`;
    for (const [i, b] of bodies.entries()) await s.put(key(i), b);
    let moving = true;
    let reads = 0;
    const readers = Array.from({ length: 4 }, async () => {
      while (moving) {
        const i = Math.floor(Math.random() * bodies.length);
        expect((await s.getBuffer(key(i))).equals(bodies[i]!)).toBe(true);
        reads += 1;
      }
    });
    for (const tier of ['warm', 'cold', 'deep', 'hot', 'deep', 'warm'] as const) {
      await Promise.all(bodies.map((b, i) => s.setStorageClass(key(i), tier, { size: b.length })));
    }
    moving = false;
    await Promise.all(readers);
    expect(reads).toBeGreaterThan(0);
    expect((await all(s.list(''))).map((o) => o.storageClass)).toEqual(Array(bodies.length).fill('warm'));
    expect(files().filter((f) => f.startsWith('warm/'))).toHaveLength(bodies.length);
    expect(files()).toHaveLength(bodies.length);
  });

  it('delete removes every copy, restored ones too', async () => {
    const s = tiered();
    await s.put(KEY, Buffer.from('x'));
    await s.setStorageClass(KEY, 'deep', { size: 1 });
    await s.requestRestore(KEY, { days: 1, tier: 'standard' });
    mkdirSync(path.join(dir, 'hot/v1/packs/ab'), { recursive: true });
    writeFileSync(path.join(dir, 'hot', KEY), 'x');
    await s.delete(KEY);
    expect(files()).toEqual([]);
  });

  it('refuses a tier without a folder, a name that is not a tier, and one folder for two tiers', async () => {
    const s = new TieredFolderStorage(path.join(dir, 'hot'), { folders: { warm: path.join(dir, 'warm') } });
    await s.put(KEY, Buffer.from('x'));
    expect(await rejection(s.setStorageClass(KEY, 'cold', { size: 1 }))).toMatchObject({ code: 'tier-unsupported' });
    expect(await rejection(s.setStorageClass(KEY, 'GLACIER', { size: 1 }))).toMatchObject({ code: 'bad-config' });
    expect(() => new TieredFolderStorage(path.join(dir, 'hot'), { folders: { warm: path.join(dir, 'hot') } })).toThrow(/also the folder of another tier/);
    expect(() => new TieredFolderStorage(path.join(dir, 'hot'), { folders: { warm: path.join(dir, 'warm') }, archive: ['deep'] })).toThrow(/has no tier folder/);
  });
});

describe('tier folders wiring', () => {
  it('a dits::file remote with dits.tier.folder.* set opens a TieredFolderStorage; without, a FileStorage', async () => {
    const repo = path.join(dir, 'repo');
    execFileSync('git', ['init', '-q', repo]);
    const url = `file://${path.join(dir, 'hot')}`;
    expect(await openRemoteStorage(repo, url)).toBeInstanceOf(FileStorage);
    execFileSync('git', ['-C', repo, 'config', 'dits.tier.folder.deep', path.join(dir, 'deep')]);
    execFileSync('git', ['-C', repo, 'config', 'dits.tier.folder.warm', '../warm']);
    execFileSync('git', ['-C', repo, 'config', 'dits.tier.archive', 'deep']);
    const s = await openRemoteStorage(repo, url);
    expect(s).toBeInstanceOf(TieredFolderStorage);
    const t = s as TieredFolderStorage;
    expect(t.folderOf('warm')).toBe(path.join(dir, 'warm'));
    expect(t.folderOf('deep')).toBe(path.join(dir, 'deep'));
    expect(t.tierProfile.archive.has('deep')).toBe(true);
    execFileSync('git', ['-C', repo, 'config', 'dits.tier.archive', 'tape']);
    await expect(openRemoteStorage(repo, url)).rejects.toThrow(/tape is not a tier/);
  });

  it('a server data dir maps tiers to folders per repository; counting and deleting a repository reach its tier folders', async () => {
    const dataDir = path.join(dir, 'data');
    const backend = createStorageBackend({ dataDir, tierFolders: { folders: { cold: path.join(dir, 'cold'), deep: path.join(dir, 'deep') }, archive: ['deep'] } });
    const s = (await backend.forRepo('team/film')) as TieredFolderStorage;
    expect(s).toBeInstanceOf(TieredFolderStorage);
    await s.put(KEY, Buffer.from('pack'));
    await s.put('v1/objects/m', Buffer.from('m'));
    await s.setStorageClass(KEY, 'deep', { size: 4 });
    expect(existsSync(path.join(dir, 'deep/team/film', KEY))).toBe(true);
    const other = (await backend.forRepo('team/film2')) as TieredFolderStorage;
    await other.put(KEY, Buffer.from('pack'));
    await other.setStorageClass(KEY, 'cold', { size: 4 });
    expect(await backend.countContent('team/film')).toBe(2);
    expect(await backend.deleteContent('team/film')).toBe(2);
    expect(existsSync(path.join(dir, 'deep/team/film'))).toBe(false);
    expect(existsSync(path.join(dir, 'cold/team/film2', KEY))).toBe(true);

    // remembered in the data dir, as `serve --tier-folder` writes it
    writeFileSync(tierFoldersFile(dataDir), JSON.stringify({ folders: { warm: path.join(dir, 'warm') }, archive: [] }));
    expect(readTierFoldersFile(dataDir)).toEqual({ folders: { warm: path.join(dir, 'warm') }, archive: [] });
    const again = createStorageBackend({ dataDir });
    expect(((await again.forRepo('team/film')) as TieredFolderStorage).folderOf('warm')).toBe(path.join(dir, 'warm/team/film'));
    expect(() => createStorageBackend({ dataDir, tierFolders: { folders: { warm: path.join(dir, 'not-mounted') } } })).toThrow(/does not exist/);
  });

  it('parses --tier-folder', () => {
    expect(parseTierFolderArg('warm=/a, deep=/b')).toEqual({ warm: '/a', deep: '/b' });
    expect(() => parseTierFolderArg('hot=/a')).toThrow(/<tier>=<dir>/);
    expect(() => parseTierFolderArg('warm')).toThrow(/<tier>=<dir>/);
  });
});
