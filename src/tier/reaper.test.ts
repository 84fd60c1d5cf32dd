import { describe, expect, it } from 'vitest';
import { TierCatalog } from './catalog.js';
import { syncCatalog, pendingKey } from './catalog-sync.js';
import { reapOnce } from './reaper.js';
import { DAY_MS, DEFAULT_POLICY, type TierPolicy } from './policy.js';
import { AWS_US_EAST_1 } from './prices.js';
import { MemoryTierStorage } from './testing/memory-tier-storage.js';
import { putTestManifest, putTestPack, testChunk } from './testing/remote-fixture.js';
import { packKey } from '../remote/content/layout.js';
import { readStreamToBuffer } from '../transfer/object-storage.js';
import { KEEP_HOT_KEY } from './keep-hot.js';
import { applyTierPlan } from './apply.js';
import { planTiers } from './plan.js';

const T0 = Date.UTC(2024, 0, 1);
const policy: TierPolicy = { ...DEFAULT_POLICY, graceMs: DAY_MS };

/** A remote of `n` files, each one pack of 3 chunks, uploaded at the storage clock's T0. */
async function remoteOf(n: number, opts: { provider?: 'aws' | 'b2' } = {}): Promise<{ storage: MemoryTierStorage; files: { manifest: string; packId: string; chunks: Buffer[] }[] }> {
  const storage = new MemoryTierStorage({ clock: T0, provider: opts.provider });
  const files = [];
  for (let i = 0; i < n; i++) {
    const chunks = [0, 1, 2].map((k) => testChunk(`f${i}c${k}`, 500 + k));
    const { packId } = await putTestPack(storage, chunks);
    const manifest = await putTestManifest(storage, chunks, `f${i}`);
    files.push({ manifest, packId, chunks });
  }
  return { storage, files };
}

async function everyObject(storage: MemoryTierStorage): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const saved = new Map(storage.meta);
  // read through the plain MemoryStorage path: frozen objects are still there, byte for byte
  for (const key of saved.keys()) {
    const m = storage.meta.get(key)!;
    const cls = m.storageClass;
    m.storageClass = 'STANDARD';
    out.set(key, await readStreamToBuffer(await storage.get(key)));
    m.storageClass = cls;
  }
  return out;
}

describe('syncCatalog', () => {
  it('reads each pack index and manifest once: a second sync reads only what is new', async () => {
    const { storage, files } = await remoteOf(3);
    const catalog = TierCatalog.open(':memory:');
    const first = await syncCatalog(storage, catalog);
    expect(first).toMatchObject({ packs: 3, manifests: 3, newPacks: 3, newManifests: 3, incompleteManifests: 0 });
    expect(catalog.usersOf(files[1]!.packId)).toEqual([files[1]!.manifest]);
    const gets = storage.counts.gets;
    const again = await syncCatalog(storage, catalog);
    expect(again).toMatchObject({ newPacks: 0, newManifests: 0 });
    expect(storage.counts.gets).toBe(gets);
    // a new version reusing a chunk of file 0 plus a new chunk in a new pack
    const extra = testChunk('new', 700);
    await putTestPack(storage, [extra]);
    const m2 = await putTestManifest(storage, [files[0]!.chunks[0]!, extra], 'v2');
    const third = await syncCatalog(storage, catalog);
    expect(third).toMatchObject({ newPacks: 1, newManifests: 1, packs: 4, manifests: 4 });
    expect(storage.counts.gets - gets).toBe(2);
    expect(catalog.usersOf(files[0]!.packId).sort()).toEqual([files[0]!.manifest, m2].sort());
  });

  it('a new pack holding a copy of a chunk an older pack holds gets the older users (all copies count)', async () => {
    const { storage, files } = await remoteOf(1);
    const catalog = TierCatalog.open(':memory:');
    await syncCatalog(storage, catalog);
    // a push that uploaded a fresh copy of file 0's first chunk (its pack was pending) with a new chunk
    const fresh = await putTestPack(storage, [files[0]!.chunks[0]!, testChunk('other', 900)]);
    const m2 = await putTestManifest(storage, [testChunk('other', 900)], 'only the new chunk');
    await syncCatalog(storage, catalog);
    expect(catalog.usersOf(fresh.packId).sort()).toEqual([files[0]!.manifest, m2].sort());
    expect(catalog.usersOf(files[0]!.packId)).toEqual([files[0]!.manifest]);
  });

  it('a manifest whose chunks are in no listed pack yet is read again by the next sync', async () => {
    const storage = new MemoryTierStorage({ clock: T0 });
    const chunks = [testChunk('late', 800)];
    const m = await putTestManifest(storage, chunks, 'late');
    const catalog = TierCatalog.open(':memory:');
    expect((await syncCatalog(storage, catalog)).incompleteManifests).toBe(1);
    const { packId } = await putTestPack(storage, chunks);
    const r = await syncCatalog(storage, catalog);
    expect(r).toMatchObject({ incompleteManifests: 0, newManifests: 1 });
    expect(catalog.usersOf(packId)).toEqual([m]);
  });

  it('pins the manifests of variants and forgets packs deleted from the remote', async () => {
    const { storage, files } = await remoteOf(2);
    await storage.put(`v1/variants/${'a'.repeat(64)}/proxy.0123456789abcdef.json`, Buffer.from(JSON.stringify({ original: 'a'.repeat(64), kind: 'proxy', recipe: 'x', status: 'ok', fileId: 'b'.repeat(64), manifest: files[0]!.manifest, size: 1, warnings: [], createdAt: 0 })));
    const catalog = TierCatalog.open(':memory:');
    expect((await syncCatalog(storage, catalog)).packs).toBe(2);
    expect(catalog.stats().pins).toBe(1);
    await storage.delete(packKey(files[1]!.packId));
    const r = await syncCatalog(storage, catalog);
    expect(r).toMatchObject({ packs: 1, removedPacks: 1 });
  });
});

describe('reaper runs', () => {
  it('marks on the first run, moves after the grace on a later run, and deletes no object', async () => {
    const { storage, files } = await remoteOf(4);
    const catalog = TierCatalog.open(':memory:');
    storage.clock = T0 + 40 * DAY_MS;
    const before = await everyObject(storage);
    const r1 = await reapOnce(storage, catalog, policy, { now: storage.clock, keepHotManifests: new Set([files[3]!.manifest]) });
    expect(r1.apply).toMatchObject({ marked: 3, moved: 0 });
    expect(storage.counts.copies).toBe(0);
    expect(await storage.head(pendingKey(files[0]!.packId))).not.toBeNull();
    // within the grace: nothing moves
    storage.clock += 3_600_000;
    const r2 = await reapOnce(storage, catalog, policy, { now: storage.clock, keepHotManifests: new Set([files[3]!.manifest]) });
    expect(r2.apply).toMatchObject({ marked: 0, moved: 0, waiting: 3 });
    storage.clock += DAY_MS;
    const r3 = await reapOnce(storage, catalog, policy, { now: storage.clock, keepHotManifests: new Set([files[3]!.manifest]) });
    expect(r3.apply).toMatchObject({ moved: 3 });
    for (const f of files.slice(0, 3)) expect(storage.meta.get(packKey(f.packId))!.storageClass).toBe('STANDARD_IA');
    expect(storage.meta.get(packKey(files[3]!.packId))!.storageClass).toBe('STANDARD');
    expect(await storage.head(pendingKey(files[0]!.packId))).toBeNull();
    const after = await everyObject(storage);
    for (const [k, v] of before) if (!k.startsWith('v1/tier/')) expect(after.get(k)?.equals(v), k).toBe(true);
    expect(catalog.movesLog().length).toBe(3);
  });

  it('a run killed after k moves leaves every object intact, and the next run completes', async () => {
    const { storage, files } = await remoteOf(6);
    const catalog = TierCatalog.open(':memory:');
    storage.clock = T0 + 800 * DAY_MS;
    await reapOnce(storage, catalog, { ...policy, graceMs: 0 }, { now: storage.clock, keepHotManifests: new Set() }); // marks
    const before = await everyObject(storage);
    const keysBefore = [...before.keys()].filter((k) => !k.startsWith('v1/tier/')).sort();
    // the storage fails right after its 3rd class change (the change is made, not yet recorded)
    const real = storage.setStorageClass.bind(storage);
    let calls = 0;
    storage.setStorageClass = async (key, cls) => {
      await real(key, cls);
      if (++calls === 3) throw new Error('killed');
    };
    await expect(reapOnce(storage, catalog, { ...policy, graceMs: 0 }, { now: storage.clock, keepHotManifests: new Set(), apply: { concurrency: 1 } })).rejects.toThrow('killed');
    storage.setStorageClass = real;
    const mid = await everyObject(storage);
    expect([...mid.keys()].filter((k) => !k.startsWith('v1/tier/')).sort()).toEqual(keysBefore);
    const r = await reapOnce(storage, catalog, { ...policy, graceMs: 0 }, { now: storage.clock, keepHotManifests: new Set(), apply: { concurrency: 1 } });
    // the third (changed, not recorded) is seen in its new class by the sync and only unmarked
    expect(r.apply!.moved + calls).toBe(6);
    for (const f of files) expect(storage.meta.get(packKey(f.packId))!.storageClass).toBe('DEEP_ARCHIVE');
    const after = await everyObject(storage);
    for (const k of keysBefore) expect(after.get(k)?.equals(before.get(k)!), k).toBe(true);
    expect([...after.keys()].filter((k) => k.startsWith('v1/tier/pending/'))).toEqual([]);
    const third = await reapOnce(storage, catalog, { ...policy, graceMs: 0 }, { now: storage.clock, keepHotManifests: new Set() });
    expect(third.plan.moves.length).toBe(0);
  });

  it('a failure with moves in flight lets them finish and be recorded before it is thrown', async () => {
    const { storage, files } = await remoteOf(6);
    const catalog = TierCatalog.open(':memory:');
    storage.clock = T0 + 800 * DAY_MS;
    await reapOnce(storage, catalog, { ...policy, graceMs: 0 }, { now: storage.clock, keepHotManifests: new Set() }); // marks
    const real = storage.setStorageClass.bind(storage);
    let calls = 0;
    let finishedAfterFailure = 0;
    let failed = false;
    storage.setStorageClass = async (key, cls) => {
      const call = ++calls;
      await new Promise((r) => setTimeout(r, call === 2 ? 5 : 30));
      if (call === 2) {
        failed = true;
        throw new Error('refused');
      }
      await real(key, cls);
      if (failed) finishedAfterFailure++;
    };
    await expect(reapOnce(storage, catalog, { ...policy, graceMs: 0 }, { now: storage.clock, keepHotManifests: new Set(), apply: { concurrency: 3 } })).rejects.toThrow('refused');
    // the two others in flight finished and were recorded; no new one started after the failure
    expect(finishedAfterFailure).toBe(2);
    expect(calls).toBe(3);
    expect(catalog.movesLog().length).toBe(2);
    const moved = files.filter((f) => storage.meta.get(packKey(f.packId))!.storageClass === 'DEEP_ARCHIVE').length;
    expect(moved).toBe(2);
  });

  it('a push of a new version reusing chunks of a pending pack keeps the pack from moving', async () => {
    const { storage, files } = await remoteOf(2);
    const catalog = TierCatalog.open(':memory:');
    storage.clock = T0 + 800 * DAY_MS;
    const r1 = await reapOnce(storage, catalog, policy, { now: storage.clock, keepHotManifests: new Set() });
    expect(r1.apply!.marked).toBe(2);
    // the push: a new version sharing a chunk with file 0, uploaded now (chunk reused from the pending pack)
    storage.clock += 2 * 3_600_000;
    await putTestManifest(storage, [files[0]!.chunks[1]!], 'new version');
    storage.clock += 2 * DAY_MS;
    const r2 = await reapOnce(storage, catalog, policy, { now: storage.clock, keepHotManifests: new Set() });
    expect(r2.apply).toMatchObject({ moved: 1, unmarked: 1 });
    expect(storage.meta.get(packKey(files[0]!.packId))!.storageClass).toBe('STANDARD');
    expect(storage.meta.get(packKey(files[1]!.packId))!.storageClass).toBe('DEEP_ARCHIVE');
    expect(await storage.head(pendingKey(files[0]!.packId))).toBeNull();
  });

  it("a client clock years ahead freezes nothing: the storage's clock is used, and the skew is said", async () => {
    const { storage } = await remoteOf(3);
    const catalog = TierCatalog.open(':memory:');
    storage.clock = T0 + 2 * DAY_MS;
    const ahead = storage.clock + 5 * 365 * DAY_MS;
    for (let run = 0; run < 3; run++) {
      const r = await reapOnce(storage, catalog, { ...policy, graceMs: 0 }, { now: ahead, keepHotManifests: new Set() });
      expect(r.plan.moves.length).toBe(0);
      expect(r.plan.notes.join('\n')).toMatch(/1825 days ahead of the storage's/);
    }
    expect(storage.counts.copies).toBe(0);
    // a plan (dry run: no probe) says what the last apply here measured
    const dry = await reapOnce(storage, catalog, { ...policy, graceMs: 0 }, { now: ahead, keepHotManifests: new Set(), dryRun: true });
    expect(dry.plan.notes.join('\n')).toMatch(/at the last `tier apply` here .* this machine's clock was 1825 days ahead/);
  });

  it('a dry run with a clock behind the storage refuses', async () => {
    const { storage } = await remoteOf(1);
    const catalog = TierCatalog.open(':memory:');
    await expect(reapOnce(storage, catalog, policy, { now: T0 - 400 * DAY_MS, dryRun: true, keepHotManifests: new Set() })).rejects.toMatchObject({ code: 'clock-skew' });
  });

  it('on a single-class provider says so and does nothing', async () => {
    const { storage } = await remoteOf(2, { provider: 'b2' });
    const catalog = TierCatalog.open(':memory:');
    storage.clock = T0 + 900 * DAY_MS;
    const puts = storage.counts.puts;
    const r = await reapOnce(storage, catalog, { ...policy, graceMs: 0 }, { now: storage.clock, keepHotManifests: new Set() });
    expect(r.plan.tiered).toBe(false);
    expect(r.plan.notes[0]).toMatch(/Backblaze B2 has one storage class/);
    expect(r.apply).toMatchObject({ marked: 0, moved: 0 });
    expect(storage.counts.puts).toBe(puts);
    expect(storage.counts.copies).toBe(0);
  });

  it('a pack deleted or changed between the plan and its move is skipped and said, nothing else touched', async () => {
    const { storage, files } = await remoteOf(3);
    const catalog = TierCatalog.open(':memory:');
    storage.clock = T0 + 900 * DAY_MS;
    await reapOnce(storage, catalog, { ...policy, graceMs: 0 }, { now: storage.clock, keepHotManifests: new Set() }); // marks
    await syncCatalog(storage, catalog);
    const plan = planTiers(catalog, { ...policy, graceMs: 0 }, storage.tierProfile, AWS_US_EAST_1, { now: storage.clock, keepHotManifests: new Set() });
    expect(plan.phases.move.packs).toBe(3);
    await storage.delete(packKey(files[0]!.packId)); // a gc meanwhile
    await storage.setStorageClass(packKey(files[1]!.packId), 'GLACIER'); // someone else moved it
    const r = await applyTierPlan(storage, catalog, plan);
    expect(r.moved).toBe(1);
    expect(r.skipped.map((s) => s.packId).sort()).toEqual([files[0]!.packId, files[1]!.packId].sort());
    expect(r.skipped.find((s) => s.packId === files[0]!.packId)!.reason).toMatch(/no longer on the remote/);
    expect(await storage.head(packKey(files[0]!.packId))).toBeNull();
    expect(storage.meta.get(packKey(files[1]!.packId))!.storageClass).toBe('GLACIER');
    expect(storage.meta.get(packKey(files[2]!.packId))!.storageClass).toBe('DEEP_ARCHIVE');
  });

  it('lifecycle mode on a storage without tags refuses, saying what to do', async () => {
    const { storage } = await remoteOf(1);
    const catalog = TierCatalog.open(':memory:');
    storage.clock = T0 + 900 * DAY_MS;
    await expect(reapOnce(storage, catalog, { ...policy, mode: 'lifecycle' }, { now: storage.clock, keepHotManifests: new Set() })).rejects.toMatchObject({ code: 'tier-lifecycle-unsupported' });
  });

  it('deletes the marker of a pack deleted from the remote since it was marked', async () => {
    const { storage, files } = await remoteOf(2);
    const catalog = TierCatalog.open(':memory:');
    storage.clock = T0 + 900 * DAY_MS;
    await reapOnce(storage, catalog, policy, { now: storage.clock, keepHotManifests: new Set() });
    expect(await storage.head(pendingKey(files[0]!.packId))).not.toBeNull();
    await storage.delete(packKey(files[0]!.packId));
    const r = await reapOnce(storage, catalog, policy, { now: storage.clock, keepHotManifests: new Set() });
    expect(r.sync.orphanMarkers).toEqual([files[0]!.packId]);
    expect(await storage.head(pendingKey(files[0]!.packId))).toBeNull();
    expect(await storage.head(pendingKey(files[1]!.packId))).not.toBeNull();
  });

  it('the server run with no keep-hot list published marks and moves nothing, and says why', async () => {
    const { storage } = await remoteOf(2);
    const catalog = TierCatalog.open(':memory:');
    storage.clock = T0 + 900 * DAY_MS;
    const r = await reapOnce(storage, catalog, { ...policy, graceMs: 0 }, { now: storage.clock });
    expect(r.apply).toBeNull();
    expect(r.plan.phases.mark.packs).toBe(2);
    expect(r.plan.notes.join('\n')).toMatch(/no keep-hot list is published/);
    expect(storage.counts.copies).toBe(0);
    expect([...storage.meta.keys()].filter((k) => k.startsWith('v1/tier/pending/'))).toEqual([]);
  });

  it('the server run keeps hot what the published keep-hot.json names', async () => {
    const { storage, files } = await remoteOf(2);
    await storage.put(KEEP_HOT_KEY, Buffer.from(JSON.stringify({ v: 1, at: T0, patterns: [], manifests: [files[0]!.manifest] })));
    const catalog = TierCatalog.open(':memory:');
    storage.clock = T0 + 900 * DAY_MS;
    const r = await reapOnce(storage, catalog, { ...policy, graceMs: 0 }, { now: storage.clock });
    expect(r.plan.moves.list().map((m) => m.packId)).toEqual([files[1]!.packId]);
  });

  it('reads recorded by the server or clients keep content warm', async () => {
    const { storage, files } = await remoteOf(2);
    const catalog = TierCatalog.open(':memory:');
    storage.clock = T0 + 900 * DAY_MS;
    const r = await reapOnce(storage, catalog, { ...policy, graceMs: 0 }, {
      now: storage.clock,
      keepHotManifests: new Set(),
      access: [{ kind: 'file', id: files[0]!.manifest, at: storage.clock - DAY_MS }],
    });
    expect(r.sync.access).toEqual({ matched: 1, unknown: 0 });
    expect(r.plan.moves.list().map((m) => m.packId)).toEqual([files[1]!.packId]);
  });
});

describe('reapOnce with graduation records (v1/tier/graduated/)', () => {
  const recordOf = (manifests: string[], lastChange: number, at: number): Buffer =>
    Buffer.from(JSON.stringify({ version: 1, tier: 'warm', graduatedAt: new Date(at).toISOString(), lastChange: new Date(lastChange).toISOString(), workTree: '/w/a', manifests }) + '\n');

  it('marks the packs of a graduated repository warm at once, moves them after the grace; a hydrate in between takes the mark back', async () => {
    const { storage, files } = await remoteOf(3);
    const catalog = TierCatalog.open(':memory:');
    storage.clock = T0 + 5 * DAY_MS; // pushed 5 days ago: nothing is warm by age
    const plain = await reapOnce(storage, catalog, policy, { now: storage.clock, keepHotManifests: new Set() });
    expect(plain.plan.moves.length).toBe(0);
    // files 0 and 1 graduated (last changed 40 days ago); file 2 not
    await storage.put('v1/tier/graduated/aaaa0001.json', recordOf([files[0]!.manifest, files[1]!.manifest], T0 - 40 * DAY_MS, storage.clock));
    storage.clock += 60_000;
    const r1 = await reapOnce(storage, catalog, policy, { now: storage.clock, keepHotManifests: new Set() });
    expect(r1.plan.moves.list().map((m) => [m.packId, m.toTier, m.phase, m.reason])).toEqual(
      [files[0]!, files[1]!].map((f) => [f.packId, 'warm', 'mark', 'graduated']).sort((a, b) => (a[0]! < b[0]! ? -1 : 1)),
    );
    expect(r1.graduation).toEqual({ records: 1, unreadable: [] });
    expect(await storage.head(pendingKey(files[0]!.packId))).not.toBeNull();
    // hydrate before the grace ends: the record goes, the next run unmarks and moves nothing
    await storage.delete('v1/tier/graduated/aaaa0001.json');
    storage.clock += 2 * DAY_MS;
    const r2 = await reapOnce(storage, catalog, policy, { now: storage.clock, keepHotManifests: new Set() });
    expect(r2.plan.moves.list().map((m) => m.phase).sort()).toEqual(['unmark', 'unmark']);
    expect(r2.apply).toMatchObject({ moved: 0, unmarked: 2 });
    expect(await storage.head(pendingKey(files[0]!.packId))).toBeNull();
    expect(catalog.pack(files[0]!.packId)).toMatchObject({ storageClass: 'STANDARD', pendingTier: null });
    // graduated again: marked, then moved after the grace (the same two phases as by age)
    await storage.put('v1/tier/graduated/aaaa0001.json', recordOf([files[0]!.manifest, files[1]!.manifest], T0 - 40 * DAY_MS, storage.clock));
    storage.clock += 60_000;
    await reapOnce(storage, catalog, policy, { now: storage.clock, keepHotManifests: new Set() });
    storage.clock += DAY_MS + 60_000;
    const r4 = await reapOnce(storage, catalog, policy, { now: storage.clock, keepHotManifests: new Set() });
    expect(r4.apply).toMatchObject({ moved: 2 });
    expect(catalog.pack(files[0]!.packId)!.storageClass).toBe('STANDARD_IA');
    expect(catalog.pack(files[2]!.packId)!.storageClass).toBe('STANDARD');
  });

  it('a read through the remote after the graduation keeps the pack hot (a real use)', async () => {
    const { storage, files } = await remoteOf(2);
    const catalog = TierCatalog.open(':memory:');
    storage.clock = T0 + 5 * DAY_MS;
    await storage.put('v1/tier/graduated/aaaa0002.json', recordOf([files[0]!.manifest, files[1]!.manifest], T0 - 40 * DAY_MS, storage.clock - 60_000));
    const r = await reapOnce(storage, catalog, policy, { now: storage.clock + 60_000, keepHotManifests: new Set(), access: [{ kind: 'file', id: files[1]!.manifest, at: storage.clock + 1000 }] });
    expect(r.plan.moves.list().map((m) => m.packId)).toEqual([files[0]!.packId]);
  });

  it('a malformed record is reported in the notes and ignored; the run goes on', async () => {
    const { storage, files } = await remoteOf(2);
    const catalog = TierCatalog.open(':memory:');
    storage.clock = T0 + 5 * DAY_MS;
    await storage.put('v1/tier/graduated/bad00001.json', Buffer.from('{"version": 1, "graduatedAt": "yesterday"'));
    await storage.put('v1/tier/graduated/bad00002.json', Buffer.from(JSON.stringify({ version: 1, graduatedAt: '2024-01-01T00:00:00Z', lastChange: 'never', manifests: [] })));
    await storage.put('v1/tier/graduated/good0001.json', recordOf([files[1]!.manifest], T0 - 40 * DAY_MS, storage.clock));
    storage.clock += 60_000;
    const r = await reapOnce(storage, catalog, policy, { now: storage.clock, keepHotManifests: new Set() });
    expect(r.graduation.records).toBe(1);
    expect(r.graduation.unreadable).toEqual(['v1/tier/graduated/bad00001.json: not JSON', 'v1/tier/graduated/bad00002.json: lastChange is not a time']);
    expect(r.plan.notes.filter((n) => n.startsWith('graduation record'))).toHaveLength(2);
    expect(r.plan.moves.list().map((m) => [m.packId, m.reason])).toEqual([[files[1]!.packId, 'graduated']]);
  });

  it('with the published keep-hot list (no pattern: the default branch), graduated versions are not held hot; with a pattern they are', async () => {
    const { storage, files } = await remoteOf(1);
    const catalog = TierCatalog.open(':memory:');
    storage.clock = T0 + 5 * DAY_MS;
    await storage.put('v1/tier/graduated/aaaa0003.json', recordOf([files[0]!.manifest], T0 - 40 * DAY_MS, storage.clock));
    await storage.put(KEEP_HOT_KEY, Buffer.from(JSON.stringify({ v: 1, at: T0, patterns: [], manifests: [files[0]!.manifest] })));
    storage.clock += 60_000;
    const dflt = await reapOnce(storage, catalog, policy, { now: storage.clock, dryRun: true });
    expect(dflt.plan.moves.list().map((m) => m.reason)).toEqual(['graduated']);
    await storage.put(KEEP_HOT_KEY, Buffer.from(JSON.stringify({ v: 1, at: T0, patterns: ['*.mov'], manifests: [files[0]!.manifest] })));
    const named = await reapOnce(storage, catalog, policy, { now: storage.clock, dryRun: true });
    expect(named.plan.moves.length).toBe(0);
    expect(named.plan.keptHot.packs).toBe(1);
  });
});
