/**
 * The thaw plan and the restores, over an in-memory storage that keeps a class and a
 * restore state per key the way S3 documents them (the end-to-end tests use the Glacier
 * front in front of s3rver): which packs, what they cost, asked once.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { pushContent } from '../remote/content/index.js';
import { packKey, parsePackKey, PACKS_PREFIX } from '../remote/content/layout.js';
import { Manifest } from '../manifest/manifest.js';
import { addFile, openStore, seededBytes, TempDirs } from '../../test/remote-content/fixtures.js';
import { AWS_US_EAST_1, formatDollars, restoreCost } from './prices.js';
import { ArchiveMemoryStorage } from './testing/archive-memory-storage.js';
import { planThaw, totalsByTier } from './thaw-plan.js';
import { listThaws, packProgress, startThaw, thawKey, thawOverview } from './thaw.js';
import type { ChunkStore } from '../store/chunk-store.js';

const dirs = new TempDirs();
afterAll(() => dirs.cleanup());

/** The packs holding any chunk of `manifestId`, read from the remote's pack indexes (independently of the plan). */
async function packsOf(remote: ArchiveMemoryStorage, store: ChunkStore, manifestId: string): Promise<Set<string>> {
  const m = Manifest.parse(store.getManifestBytes(manifestId));
  const want = new Set<string>();
  for (let i = 0; i < m.chunkCount; i++) want.add(m.idAt(i));
  const { decodePackIndex } = await import('../remote/content/pack-index.js');
  const out = new Set<string>();
  for await (const o of remote.list(PACKS_PREFIX)) {
    const k = parsePackKey(o.key);
    if (k?.kind !== 'idx') continue;
    for (const e of decodePackIndex(await remote.getBuffer(o.key))) if (want.has(e.idRaw.toString('hex'))) out.add(k.packId);
  }
  return out;
}

const opts = { remoteName: 'origin', prices: AWS_US_EAST_1, days: 7 };

async function setup(files: number, size: number, packSize: number): Promise<{ remote: ArchiveMemoryStorage; a: ChunkStore; b: ChunkStore; ids: string[] }> {
  const remote = new ArchiveMemoryStorage();
  const a = openStore(dirs);
  const ids: string[] = [];
  for (let i = 0; i < files; i++) ids.push(await addFile(a, seededBytes(size, 1000 + i)));
  await pushContent(remote, a, ids, { remoteName: 'origin', packSize });
  // another machine: nothing local
  return { remote, a, b: openStore(dirs), ids };
}

describe('planThaw', () => {
  it('thaw of one file out of 1,000 restores exactly the packs holding its chunks (counted)', async () => {
    const { remote, a, b, ids } = await setup(1000, 12_000, 60_000);
    remote.freezeAllPacks('DEEP_ARCHIVE');
    const packCount = remote.keys().filter((k) => parsePackKey(k)?.kind === 'pack').length;
    expect(packCount).toBeGreaterThan(100);
    const target = ids[500]!;
    const expected = await packsOf(remote, a, target);
    const plan = await planThaw(remote, b, [{ path: 'clips/f500.bin', manifest: target }], { ...opts });
    expect(new Set(plan.packs.map((p) => p.packId))).toEqual(expected);
    expect(plan.packs.every((p) => p.state === 'frozen')).toBe(true);
    const r = await startThaw(remote, plan, { tier: 'bulk', days: 7, by: 'a@example.com' });
    expect(r.started).toBe(expected.size);
    expect(remote.counts.restores).toBe(expected.size);
    expect([...remote.restores.keys()].sort()).toEqual([...expected].map(packKey).sort());
    // the request is recorded
    const [rec] = await listThaws(remote);
    expect(rec!.id).toBe(r.record.id);
    expect(rec!.paths).toEqual(['clips/f500.bin']);
    expect(rec!.packs.map((p) => p.packId).sort()).toEqual([...expected].sort());
    expect(await remote.head(thawKey(r.record.id))).not.toBeNull();
  }, 120_000);

  it('the estimate is the price table arithmetic, per retrieval tier; Deep Archive offers no expedited', async () => {
    const { remote, b, ids } = await setup(3, 200_000, 150_000);
    remote.freezeAllPacks('DEEP_ARCHIVE');
    const plan = await planThaw(remote, b, [{ path: 'x', manifest: ids[1]! }], { ...opts, days: 10 });
    const bytes = plan.packs.reduce((s, p) => s + p.size, 0);
    expect(plan.files[0]!.frozenBytes).toBe(200_000);
    expect(plan.estimates).toEqual([
      restoreCost(AWS_US_EAST_1, 'DEEP_ARCHIVE', 'standard', bytes, plan.packs.length, 10),
      restoreCost(AWS_US_EAST_1, 'DEEP_ARCHIVE', 'bulk', bytes, plan.packs.length, 10),
    ]);
    const totals = totalsByTier(plan);
    expect(totals.find((t) => t.tier === 'expedited')!.unavailableFor).toEqual(['DEEP_ARCHIVE']);
    expect(totals.find((t) => t.tier === 'standard')!.total).toBe(restoreCost(AWS_US_EAST_1, 'DEEP_ARCHIVE', 'standard', bytes, plan.packs.length, 10).total);
    expect(totals.find((t) => t.tier === 'bulk')!.hours).toEqual([0, 48]);
  });

  it('a file that is not frozen: says so, nothing to restore, nothing to pay', async () => {
    const { remote, b, ids } = await setup(2, 100_000, 60_000);
    const plan = await planThaw(remote, b, [{ path: 'hot.bin', manifest: ids[0]! }], opts);
    expect(plan.notFrozen).toEqual(['hot.bin']);
    expect(plan.files).toEqual([]);
    expect(plan.packs).toEqual([]);
    expect(plan.estimates).toEqual([]);
    expect(remote.counts.heads).toBe(0); // nothing archived: no HEAD asked
  });

  it('a readable copy of a chunk wins: only packs whose chunks have no readable copy are thawed', async () => {
    const { remote, a, b, ids } = await setup(1, 300_000, 100_000);
    remote.freezeAllPacks('GLACIER');
    // the same file in a second set of packs (packed differently), kept hot: as a push that
    // does not reuse frozen packs leaves it
    const other = new ArchiveMemoryStorage();
    await pushContent(other, a, ids, { remoteName: 'other', packSize: 70_000 });
    const before = new Set(remote.keys());
    for (const k of other.keys()) if (k.startsWith(PACKS_PREFIX) && !before.has(k)) await remote.put(k, await other.getBuffer(k));
    expect(remote.keys().filter((k) => !before.has(k)).length).toBeGreaterThan(0);
    const plan = await planThaw(remote, b, [{ path: 'f', manifest: ids[0]! }], opts);
    expect(plan.notFrozen).toEqual(['f']);
    expect(plan.packs).toEqual([]);
  });

  it('a chunk the local store has needs no restore', async () => {
    const { remote, a, ids } = await setup(1, 200_000, 60_000);
    remote.freezeAllPacks('GLACIER');
    const plan = await planThaw(remote, a, [{ path: 'f', manifest: ids[0]! }], opts);
    expect(plan.notFrozen).toEqual(['f']);
  });

  it('two people thawing the same file at once: one restore per pack, the second is told it runs', async () => {
    const { remote, b, ids } = await setup(2, 200_000, 60_000);
    const c = openStore(dirs);
    remote.freezeAllPacks('GLACIER');
    const [p1, p2] = await Promise.all([planThaw(remote, b, [{ path: 'f', manifest: ids[0]! }], opts), planThaw(remote, c, [{ path: 'f', manifest: ids[0]! }], opts)]);
    const [r1, r2] = await Promise.all([startThaw(remote, p1, { tier: 'standard', days: 1, by: 'a' }), startThaw(remote, p2, { tier: 'standard', days: 1, by: 'b' })]);
    expect(remote.counts.restores).toBe(p1.packs.length);
    expect(r1.started + r2.started).toBe(p1.packs.length);
    expect(r1.alreadyRunning + r2.alreadyRunning).toBe(p1.packs.length);
    // a later plan sees them restoring: nothing frozen, nothing to pay
    const p3 = await planThaw(remote, c, [{ path: 'f', manifest: ids[0]! }], opts);
    expect(p3.packs.every((p) => p.state === 'restoring')).toBe(true);
    expect(p3.estimates).toEqual([]);
  });

  it('the network cut while restores are asked: the re-run asks only the packs not asked yet', async () => {
    const { remote, b, ids } = await setup(1, 600_000, 60_000);
    remote.freezeAllPacks('GLACIER');
    const plan = await planThaw(remote, b, [{ path: 'f', manifest: ids[0]! }], opts);
    expect(plan.packs.length).toBeGreaterThan(4);
    remote.cutAfter = 3;
    await expect(startThaw(remote, plan, { tier: 'standard', days: 1, by: 'a', concurrency: 1 })).rejects.toThrow(/connection reset/);
    expect(remote.counts.restores).toBe(3);
    expect(await listThaws(remote)).toEqual([]); // nothing recorded for a run that did not finish
    remote.cutAfter = Infinity;
    const calls = remote.counts.restoreCalls;
    const again = await planThaw(remote, b, [{ path: 'f', manifest: ids[0]! }], opts);
    expect(again.packs.filter((p) => p.state === 'restoring').length).toBe(3);
    const r = await startThaw(remote, again, { tier: 'standard', days: 1, by: 'a' });
    expect(r.started).toBe(plan.packs.length - 3);
    expect(remote.counts.restoreCalls - calls).toBe(plan.packs.length - 3);
    expect(remote.counts.restores).toBe(plan.packs.length);
  });

  it('a restore the provider refuses is reported; the other packs are restored', async () => {
    const { remote, b, ids } = await setup(1, 300_000, 60_000);
    remote.freezeAllPacks('GLACIER');
    const plan = await planThaw(remote, b, [{ path: 'f', manifest: ids[0]! }], opts);
    remote.refuse.add(plan.packs[0]!.key);
    const r = await startThaw(remote, plan, { tier: 'expedited', days: 1, by: 'a' });
    expect(r.failed.map((f) => f.packId)).toEqual([plan.packs[0]!.packId]);
    expect(r.failed[0]!.message).toMatch(/Access Denied/);
    expect(r.started).toBe(plan.packs.length - 1);
    expect(r.record.packs.find((p) => p.packId === plan.packs[0]!.packId)!.result).toBe('failed');
  });

  it('a clock far off: progress is the provider\'s word (restored stays restored), the record keeps the local time', async () => {
    const { remote, b, ids } = await setup(1, 200_000, 60_000);
    remote.freezeAllPacks('GLACIER');
    const plan = await planThaw(remote, b, [{ path: 'f', manifest: ids[0]! }], opts);
    const farFuture = Date.UTC(2099, 0, 1);
    const r = await startThaw(remote, plan, { tier: 'standard', days: 1, by: 'a', now: farFuture });
    expect(r.record.at).toBe(farFuture);
    remote.finishRestores(Date.UTC(2026, 11, 13)); // expiry before the local clock's "now"
    const progress = await packProgress(remote, plan.packs);
    expect(progress.every((p) => p.state === 'restored')).toBe(true);
    // what `tier status` shows: restored, with the provider's expiry
    const [o] = await thawOverview(remote);
    expect(o).toMatchObject({ id: r.record.id, at: farFuture, restored: plan.packs.length, restoring: 0, frozen: 0, expiresAt: Date.UTC(2026, 11, 13), paths: ['f'] });
    const again = await planThaw(remote, b, [{ path: 'f', manifest: ids[0]! }], opts);
    expect(again.notFrozen).toEqual(['f']);
  });
});

describe('planThaw --range', () => {
  it('a frozen clip: first the packs of its container index, then (index restored) only the packs of the range', async () => {
    const { makeClips } = await import('../../test/fixtures/media/make-clips.js');
    const { analyzeForIngest } = await import('../filter/media-analysis.js');
    const { ingest } = await import('../store/ingest.js');
    const clips = await makeClips(['prores.mov']);
    try {
      const file = clips.path('prores.mov');
      const bytes = (await import('node:fs')).readFileSync(file);
      const analysis = (await analyzeForIngest(file))!;
      expect(analysis.media).not.toBeNull();
      const a = openStore(dirs);
      const r = await ingest(a, (async function* () { yield bytes; })(), { params: { minSize: 1024, avgSize: 4096, maxSize: 16384 }, cutPlan: analysis.cutPlan, media: analysis.media });
      const remote = new ArchiveMemoryStorage();
      await pushContent(remote, a, [r.manifestId], { remoteName: 'origin', packSize: 40_000 });
      remote.freezeAllPacks('GLACIER');
      const all = await packsOf(remote, a, r.manifestId);
      expect(all.size).toBeGreaterThan(15);

      const b = openStore(dirs);
      const target = { path: 'clips/prores.mov', manifest: r.manifestId, range: { startSec: 0.8, endSec: 1.0 } };
      const first = await planThaw(remote, b, [target], opts);
      expect(first.files[0]!.stage).toBe('index');
      // the moov is at the end: the index packs are the file's first and last few, not the range's
      expect(first.packs.length).toBeLessThan(all.size / 2);
      await startThaw(remote, first, { tier: 'expedited', days: 1, by: 'a' });
      remote.finishRestores();

      const second = await planThaw(remote, b, [target], opts);
      expect(second.files[0]!.stage).toBeUndefined();
      const ranged = second.packs.filter((p) => p.state === 'frozen');
      expect(ranged.length).toBeGreaterThan(0);
      expect(ranged.length + first.packs.length).toBeLessThan(all.size);
      // and the whole file would need every pack but the restored ones
      const whole = await planThaw(remote, openStore(dirs), [{ path: 'clips/prores.mov', manifest: r.manifestId }], opts);
      expect(whole.packs.length).toBe(all.size - first.packs.length);
    } finally {
      await clips.cleanup();
    }
  }, 60_000);
});

describe('planThaw --range on what is not a video', () => {
  it('says --range needs an MP4/QuickTime file and how to thaw the whole file instead', async () => {
    const { remote, b, ids } = await setup(1, 100_000, 60_000);
    remote.freezeAllPacks('GLACIER');
    const err = await planThaw(remote, b, [{ path: 'notes.bin', manifest: ids[0]!, range: { startSec: 1, endSec: 2 } }], opts).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'range-not-media', hint: 'thaw the whole file: git dits thaw notes.bin' });
    expect(remote.counts.restoreCalls).toBe(0);
  });
});

describe('formatDollars (what thaw prints)', () => {
  it('never prints an exponent: tiny restore costs read as below a hundredth of a cent', () => {
    expect(formatDollars(8.3e-7)).toBe('<$0.0001');
    expect(formatDollars(0.00016)).toBe('$0.00016');
    expect(formatDollars(0.0312)).toBe('$0.03');
    expect(formatDollars(0)).toBe('$0');
  });
});
