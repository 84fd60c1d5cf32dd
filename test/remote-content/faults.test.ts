/**
 * Faults: a push killed midway resumes uploading only what is missing; a corrupted remote
 * pack is detected and named while everything else is fetched.
 */
import { afterAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { MemoryStorage } from '../../src/transfer/memory-storage.js';
import { FileStorage } from '../../src/transfer/file-storage.js';
import { FlakyStorage } from '../../src/transfer/testing/flaky-storage.js';
import { DitsUserError } from '../../src/errors.js';
import { decodePackIndex, fetchContent, pushContent, RemotePackCorruptError, syncRemoteIndex } from '../../src/remote/content/index.js';
import { ChunkStore } from '../../src/store/chunk-store.js';
import { addFile, chunkIds, openStore, readFile, sameBytes, seededBytes, TempDirs } from './fixtures.js';

const dirs = new TempDirs();
afterAll(() => dirs.cleanup());

const killed = () => new DitsUserError('test-killed', 'process killed (simulated)');

describe('interrupted push', () => {
  it('a push that dies after some uploads is re-run uploading only what is missing', async () => {
    const remote = new MemoryStorage();
    const a = openStore(dirs);
    const f1 = seededBytes(2_500_000, 11);
    const f2 = seededBytes(1_500_000, 12, 100_000);
    const m1 = await addFile(a, f1);
    const m2 = await addFile(a, f2);
    const plan = await pushContent(remote, a, [m1, m2], { remoteName: 'origin', packSize: 500_000, dryRun: true });
    expect(plan.packs).toBeGreaterThanOrEqual(8);

    // the 6th put "kills the process": 5 objects made it (packs and indexes, never a manifest)
    const flaky = new FlakyStorage(remote, (call) => (call.op === 'put' && call.nOfOp >= 6 ? { kind: 'fail', error: killed() } : { kind: 'pass' }));
    await expect(pushContent(flaky, a, [m1, m2], { remoteName: 'origin', packSize: 500_000, concurrency: 1 })).rejects.toThrow(/killed/);
    const keys: string[] = [];
    for await (const o of remote.list('v1/')) keys.push(o.key);
    expect(keys).toHaveLength(5);
    expect(keys.every((k) => k.startsWith('v1/packs/'))).toBe(true);
    const completePacks = keys.filter((k) => k.endsWith('.idx')).length;
    expect(completePacks).toBe(2);

    // re-run from a fresh process (new store handle, same local cache)
    a.close();
    const a2 = ChunkStore.open(a.dir);
    const again = await pushContent(remote, a2, [m1, m2], { remoteName: 'origin', packSize: 500_000 });
    expect(again.packs).toBe(plan.packs - completePacks);
    expect(again.reusedPacks).toBe(1); // the .pack whose .idx never went up
    const reusedPack = keys.find((k) => k.endsWith('.pack') && !keys.includes(k.replace(/\.pack$/, '.idx')))!;
    const reusedSize = (await remote.head(reusedPack))!.size;
    const donePackBytes = await sumSizes(remote, keys.filter((k) => k.endsWith('.pack')));
    expect(again.packBytes).toBe(plan.packBytes - donePackBytes);
    expect(again.packBytes + donePackBytes - reusedSize).toBeLessThan(plan.packBytes);
    expect(again.manifests).toBe(2);
    a2.close();

    const b = openStore(dirs);
    await fetchContent(remote, b, [m1, m2], { remoteName: 'origin' });
    expect(sameBytes(await readFile(b, m1), f1)).toBe(true);
    expect(sameBytes(await readFile(b, m2), f2)).toBe(true);
    b.close();
  });

  it('transient 503s during a push are retried by the queue', async () => {
    const remote = new MemoryStorage();
    const a = openStore(dirs);
    const f = seededBytes(1_000_000, 21);
    const m = await addFile(a, f);
    const { slowDownError } = await import('../../src/transfer/testing/flaky-storage.js');
    const flaky = new FlakyStorage(remote, (call) => (call.op === 'put' && call.nOfOp <= 3 ? { kind: 'fail', error: slowDownError(call.key) } : { kind: 'pass' }));
    const r = await pushContent(flaky, a, [m], { remoteName: 'origin', packSize: 300_000, queueOptions: { sleep: async () => undefined } });
    expect(r.packs).toBeGreaterThan(2);
    const b = openStore(dirs);
    await fetchContent(remote, b, [m], { remoteName: 'origin' });
    expect(sameBytes(await readFile(b, m), f)).toBe(true);
    a.close();
    b.close();
  });
});

async function sumSizes(storage: MemoryStorage, keys: string[]): Promise<number> {
  let n = 0;
  for (const k of keys) n += (await storage.head(k))!.size;
  return n;
}

describe('corrupted remote pack', () => {
  it('is detected and named; every other chunk is fetched and kept', async () => {
    const root = path.join(dirs.make(), 'remote');
    const remote = new FileStorage(root, { fsync: false });
    const a = openStore(dirs);
    const f1 = seededBytes(1_200_000, 31);
    const f2 = seededBytes(600_000, 32);
    const m1 = await addFile(a, f1);
    const m2 = await addFile(a, f2);
    await pushContent(remote, a, [m1, m2], { remoteName: 'origin', packSize: 400_000 });

    // flip a byte inside the 3rd chunk of the first pack of f1
    const packs = fs.readdirSync(path.join(root, 'v1/packs')).filter((n) => n.endsWith('.idx'));
    const firstChunk = chunkIds(a, m1)[0]!;
    let target: { pack: string; chunk: string; offset: number } | undefined;
    for (const idx of packs) {
      const entries = decodePackIndex(fs.readFileSync(path.join(root, 'v1/packs', idx)));
      if (entries.some((e) => e.idRaw.equals(firstChunk))) target = { pack: idx.replace(/\.idx$/, '.pack'), chunk: entries[2]!.idRaw.toString('hex'), offset: entries[2]!.offset + 7 };
    }
    const packFile = path.join(root, 'v1/packs', target!.pack);
    fs.chmodSync(packFile, 0o644);
    const fd = fs.openSync(packFile, 'r+');
    const one = Buffer.alloc(1);
    fs.readSync(fd, one, 0, 1, target!.offset);
    one[0] ^= 0x5a;
    fs.writeSync(fd, one, 0, 1, target!.offset);
    fs.closeSync(fd);

    const b = openStore(dirs);
    const err = await fetchContent(remote, b, [m1, m2], { remoteName: 'origin', maxRangeBytes: 100_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RemotePackCorruptError);
    const e = err as RemotePackCorruptError;
    expect(e.code).toBe('remote-pack-corrupt');
    expect(e.message).toContain(`v1/packs/${target!.pack}`);
    expect(e.message).toContain(target!.chunk);
    expect(e.corrupt).toHaveLength(1);
    // everything else arrived and verified
    const all = [...chunkIds(a, m1), ...chunkIds(a, m2)];
    const distinct = new Set(all.map((x) => x.toString('hex')));
    expect(b.stats().chunks).toBe(distinct.size - 1);
    expect(sameBytes(await readFile(b, m2), f2)).toBe(true);
    await expect(readFile(b, m1)).rejects.toThrow(/not in the local store/);
    a.close();
    b.close();
  });

  it('an index that does not match its name is left out of the cache', async () => {
    const root = path.join(dirs.make(), 'remote');
    const remote = new FileStorage(root, { fsync: false });
    const a = openStore(dirs);
    const m = await addFile(a, seededBytes(500_000, 41));
    const pushed = await pushContent(remote, a, [m], { remoteName: 'origin', packSize: 200_000 });
    const idx = fs.readdirSync(path.join(root, 'v1/packs')).find((n) => n.endsWith('.idx'))!;
    const file = path.join(root, 'v1/packs', idx);
    fs.chmodSync(file, 0o644);
    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 1] ^= 1;
    fs.writeFileSync(file, bytes);
    const b = openStore(dirs);
    const sync = await syncRemoteIndex(remote, b, 'origin');
    expect(sync.corruptIndexes).toEqual([`v1/packs/${idx}`]);
    expect(sync.packs).toBe(pushed.packs - 1);
    a.close();
    b.close();
  });
});
