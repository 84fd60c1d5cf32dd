/**
 * A fetch that meets frozen packs (FrozenObjectError from the storage, as S3 answers a GET
 * of an archived object) keeps going: everything else is fetched, a chunk with a readable
 * copy elsewhere comes from there, and the frozen packs still needed are listed; reads are
 * recorded. The storage here is a FlakyStorage whose plan answers "frozen" for chosen keys.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryStorage } from '../../src/transfer/memory-storage.js';
import { FlakyStorage } from '../../src/transfer/testing/flaky-storage.js';
import { FrozenObjectError } from '../../src/tier/tier-storage.js';
import { ensureLocal, fetchContent, FrozenContentError } from '../../src/remote/content/fetch-content.js';
import { pushChunks, pushContent, syncRemoteIndex } from '../../src/remote/content/index.js';
import { addFile, chunkIds, openStore, readFile, sameBytes, seededBytes, TempDirs } from '../remote-content/fixtures.js';
import type { ChunkStore } from '../../src/store/chunk-store.js';

const dirs = new TempDirs();
afterAll(() => dirs.cleanup());

/** The pack keys holding the chunks of `manifestId` on the remote (per the store's cache). */
function packsOf(store: ChunkStore, manifestId: string): Set<string> {
  const index = store.remoteIndex('origin', 'memory:');
  const out = new Set<string>();
  for (const id of chunkIds(store, manifestId)) out.add(`v1/packs/${index.lookup(id)!.packId}.pack`);
  return out;
}

function frozenFront(remote: MemoryStorage, frozen: Set<string>): FlakyStorage {
  return new FlakyStorage(remote, (call) => (call.op === 'get' && frozen.has(call.key) ? { kind: 'fail', error: new FrozenObjectError(call.key, 'DEEP_ARCHIVE') } : { kind: 'pass' }));
}

async function setup(): Promise<{ remote: MemoryStorage; files: Buffer[]; ids: string[]; frozen: Set<string> }> {
  const remote = new MemoryStorage();
  const a = openStore(dirs);
  const files = [seededBytes(300_000, 1), seededBytes(300_000, 2), seededBytes(300_000, 3)];
  const ids: string[] = [];
  // one push per file: each file's chunks in packs of their own
  for (const f of files) {
    const id = await addFile(a, f);
    ids.push(id);
    await pushContent(remote, a, [id], { remoteName: 'origin', packSize: 100_000 });
  }
  const frozen = packsOf(a, ids[1]!);
  a.close();
  return { remote, files, ids, frozen };
}

describe('fetch past frozen packs', () => {
  it('fetches every other file, lists the frozen packs with their chunks, asks each frozen pack once', async () => {
    const { remote, files, ids, frozen } = await setup();
    const front = frozenFront(remote, frozen);
    const b = openStore(dirs);
    const reads: string[] = [];
    const r = await ensureLocal(front, b, { manifestIds: ids }, { remoteName: 'origin', allowFrozen: true, access: { record: (k, id) => reads.push(`${k}:${id}`) } });
    expect(sameBytes(await readFile(b, ids[0]!), files[0]!)).toBe(true);
    expect(sameBytes(await readFile(b, ids[2]!), files[2]!)).toBe(true);
    await expect(readFile(b, ids[1]!)).rejects.toThrow();
    expect(new Set(r.frozen.map((f) => f.key))).toEqual(frozen);
    const wantedFrozen = new Set(chunkIds(b, ids[1]!).map((c) => c.toString('hex')));
    const listed = r.frozen.flatMap((f) => f.chunks);
    expect(new Set(listed)).toEqual(wantedFrozen);
    for (const f of r.frozen) {
      expect(f.storageClass).toBe('DEEP_ARCHIVE');
      expect(f.bytes).toBe((await remote.head(f.key))!.size);
    }
    // each frozen pack was asked once, not retried
    const frozenGets = front.calls.filter((c) => c.op === 'get' && frozen.has(c.key));
    expect(frozenGets.length).toBe(frozen.size);
    // reads recorded: every manifest (all fetched here) and every readable pack read, no frozen one
    for (const id of ids) expect(reads).toContain(`file:${id}`);
    const packReads = reads.filter((x) => x.startsWith('pack:')).map((x) => `v1/packs/${x.slice(5)}.pack`);
    expect(packReads.length).toBeGreaterThan(0);
    expect(packReads.some((k) => frozen.has(k))).toBe(false);
    b.close();
  });

  it('without allowFrozen: everything else is fetched, then FrozenContentError (code storage-frozen)', async () => {
    const { remote, files, ids, frozen } = await setup();
    const b = openStore(dirs);
    const err = await fetchContent(frozenFront(remote, frozen), b, ids, { remoteName: 'origin' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FrozenContentError);
    expect((err as FrozenContentError).code).toBe('storage-frozen');
    expect((err as FrozenContentError).hint).toMatch(/git dits thaw/);
    expect(sameBytes(await readFile(b, ids[0]!), files[0]!)).toBe(true);
    expect(sameBytes(await readFile(b, ids[2]!), files[2]!)).toBe(true);
    b.close();
  });

  it('a chunk with a readable copy in another pack is fetched from there', async () => {
    const { remote, files, ids, frozen } = await setup();
    // a second copy of file 1's chunks in new packs (as a push of it after the freeze makes)
    const a = openStore(dirs);
    const again = await addFile(a, files[1]!);
    expect(again).toBe(ids[1]);
    await syncRemoteIndex(remote, a, 'origin');
    const copies = await pushChunks(remote, a, chunkIds(a, again), { remoteName: 'origin', packSize: 60_000 }); // other packs than the first push's
    expect(copies.packs).toBeGreaterThan(0);
    a.close();
    const b = openStore(dirs);
    const front = frozenFront(remote, frozen);
    const r = await ensureLocal(front, b, { manifestIds: ids }, { remoteName: 'origin', allowFrozen: true });
    expect(r.frozen).toEqual([]);
    for (let i = 0; i < 3; i++) expect(sameBytes(await readFile(b, ids[i]!), files[i]!)).toBe(true);
    b.close();
  });
});
