import { describe, expect, it } from 'vitest';
import { TierCatalog } from './catalog.js';
import { planTiers } from './plan.js';
import { DAY_MS, DEFAULT_POLICY, parseTierDuration, readTierPolicy, type TierPolicy } from './policy.js';
import { AWS_US_EAST_1, GIB, earlyDeletionCharge, monthlyStorageCost, transitionCost } from './prices.js';
import { providerProfile } from './tiers.js';
import { DitsConfig } from '../git/dits-config.js';

const NOW = Date.UTC(2026, 5, 1);
const aws = providerProfile('aws');
const id = (i: number): string => i.toString(16).padStart(64, '0');
const policy: TierPolicy = { ...DEFAULT_POLICY };

function catalogOf(build: (c: TierCatalog) => void): TierCatalog {
  const c = TierCatalog.open(':memory:');
  build(c);
  return c;
}

describe('planTiers', () => {
  it('targets each pack by the age of its last use: hot, warm, cold, deep', () => {
    const ages = [1, 40, 200, 800];
    const c = catalogOf((c) => {
      ages.forEach((d, i) => {
        const p = c.addPack({ id: id(i + 1), size: GIB, uploadedAt: NOW - d * DAY_MS });
        c.addManifest({ id: id(100 + i), uploadedAt: NOW - d * DAY_MS, packs: [p] });
      });
    });
    const plan = planTiers(c, policy, aws, AWS_US_EAST_1, { now: NOW, keepHotManifests: new Set() });
    const moves = plan.moves.list();
    expect(moves.map((m) => [m.packId, m.toTier, m.toClass, m.phase])).toEqual([
      [id(2), 'warm', 'STANDARD_IA', 'mark'],
      [id(3), 'cold', 'GLACIER_IR', 'mark'],
      [id(4), 'deep', 'DEEP_ARCHIVE', 'mark'],
    ]);
    expect(plan.before.hot).toEqual({ packs: 4, bytes: 4 * GIB });
    expect(plan.after).toEqual({ hot: { packs: 1, bytes: GIB }, warm: { packs: 1, bytes: GIB }, cold: { packs: 1, bytes: GIB }, deep: { packs: 1, bytes: GIB } });
  });

  it('keeps a pack hot when any file version using it is recent (a hot version sharing chunks with a cold one)', () => {
    const c = catalogOf((c) => {
      const shared = c.addPack({ id: id(1), size: GIB, uploadedAt: NOW - 900 * DAY_MS });
      const old = c.addPack({ id: id(2), size: GIB, uploadedAt: NOW - 900 * DAY_MS });
      c.addManifest({ id: id(10), uploadedAt: NOW - 900 * DAY_MS, packs: [shared, old] });
      c.addManifest({ id: id(11), uploadedAt: NOW - 2 * DAY_MS, packs: [shared] });
    });
    const plan = planTiers(c, policy, aws, AWS_US_EAST_1, { now: NOW, keepHotManifests: new Set() });
    expect(plan.moves.list().map((m) => [m.packId, m.toTier])).toEqual([[id(2), 'deep']]);
  });

  it('counts reads of a file version and of the pack itself as use', () => {
    const c = catalogOf((c) => {
      const a = c.addPack({ id: id(1), size: GIB, uploadedAt: NOW - 900 * DAY_MS });
      const b = c.addPack({ id: id(2), size: GIB, uploadedAt: NOW - 900 * DAY_MS });
      c.addManifest({ id: id(10), uploadedAt: NOW - 900 * DAY_MS, packs: [a] });
      c.addManifest({ id: id(11), uploadedAt: NOW - 900 * DAY_MS, packs: [b] });
    });
    c.recordAccess([
      { kind: 'file', id: id(10), at: NOW - 3 * DAY_MS },
      { kind: 'pack', id: id(2), at: NOW - 45 * DAY_MS },
      { kind: 'pack', id: id(99), at: NOW },
    ]);
    const plan = planTiers(c, policy, aws, AWS_US_EAST_1, { now: NOW, keepHotManifests: new Set() });
    expect(plan.moves.list().map((m) => [m.packId, m.toTier])).toEqual([[id(2), 'warm']]);
  });

  it('keeps hot the packs of keep-hot manifests and of variants (proxies, posters)', () => {
    const c = catalogOf((c) => {
      for (let i = 1; i <= 3; i++) {
        const p = c.addPack({ id: id(i), size: GIB, uploadedAt: NOW - 900 * DAY_MS });
        c.addManifest({ id: id(10 + i), uploadedAt: NOW - 900 * DAY_MS, packs: [p] });
      }
      c.pin(id(12));
    });
    const plan = planTiers(c, policy, aws, AWS_US_EAST_1, { now: NOW, keepHotManifests: new Set([id(11)]) });
    expect(plan.moves.list().map((m) => m.packId)).toEqual([id(3)]);
    expect(plan.keptHot).toEqual({ packs: 2, bytes: 2 * GIB });
  });

  it('never moves a pack warmer, nor to the class it is in', () => {
    const c = catalogOf((c) => {
      const p = c.addPack({ id: id(1), size: GIB, storageClass: 'DEEP_ARCHIVE', uploadedAt: NOW - 2 * DAY_MS });
      c.addManifest({ id: id(10), uploadedAt: NOW - 1 * DAY_MS, packs: [p] });
      const q = c.addPack({ id: id(2), size: GIB, storageClass: 'GLACIER_IR', uploadedAt: NOW - 200 * DAY_MS });
      c.addManifest({ id: id(11), uploadedAt: NOW - 200 * DAY_MS, packs: [q] });
    });
    const plan = planTiers(c, policy, aws, AWS_US_EAST_1, { now: NOW, keepHotManifests: new Set() });
    expect(plan.moves.length).toBe(0);
    expect(plan.before.deep.packs).toBe(1);
    expect(plan.before.cold.packs).toBe(1);
  });

  it('marks first, waits out the grace period, then moves; a mark whose pack became hot is taken back', () => {
    const c = catalogOf((c) => {
      for (let i = 1; i <= 4; i++) {
        const p = c.addPack({ id: id(i), size: GIB, uploadedAt: NOW - 60 * DAY_MS });
        c.addManifest({ id: id(10 + i), uploadedAt: NOW - 60 * DAY_MS, packs: [p] });
      }
      c.setPending(id(2), 'warm', NOW - 2 * 3_600_000); // marked 2 h ago
      c.setPending(id(3), 'warm', NOW - 2 * DAY_MS); // marked 2 days ago
      c.setPending(id(4), 'warm', NOW - 2 * DAY_MS);
      const p4 = c.pack(id(4))!.n;
      c.addManifest({ id: id(20), uploadedAt: NOW - 3_600_000, packs: [p4] }); // a push reused its chunks
    });
    const plan = planTiers(c, policy, aws, AWS_US_EAST_1, { now: NOW, keepHotManifests: new Set() });
    expect(plan.moves.list().map((m) => [m.packId, m.phase, m.toTier])).toEqual([
      [id(1), 'mark', 'warm'],
      [id(2), 'wait', 'warm'],
      [id(3), 'move', 'warm'],
      [id(4), 'unmark', 'warm'],
    ]);
    const zeroGrace = planTiers(c, { ...policy, graceMs: 0 }, aws, AWS_US_EAST_1, { now: NOW, keepHotManifests: new Set() });
    expect(zeroGrace.moves.list().map((m) => m.phase)).toEqual(['mark', 'move', 'move', 'unmark']);
  });

  it('on a single-class provider says so and plans nothing', () => {
    const c = catalogOf((c) => {
      c.addPack({ id: id(1), size: GIB, uploadedAt: NOW - 900 * DAY_MS });
    });
    const plan = planTiers(c, policy, providerProfile('b2'), AWS_US_EAST_1, { now: NOW, keepHotManifests: new Set() });
    expect(plan.tiered).toBe(false);
    expect(plan.moves.length).toBe(0);
    expect(plan.notes.join('\n')).toMatch(/Backblaze B2 has one storage class/);
  });

  it('refuses a clock behind what the storage stamped', () => {
    const c = catalogOf((c) => {
      c.addPack({ id: id(1), size: GIB, uploadedAt: NOW });
    });
    expect(() => planTiers(c, policy, aws, AWS_US_EAST_1, { now: NOW - 3 * 365 * DAY_MS, keepHotManifests: new Set() })).toThrow(
      expect.objectContaining({ code: 'clock-skew' }),
    );
  });

  it("gives costs equal to the price table's arithmetic", () => {
    // 10 GiB hot for 40 days -> warm; 4 GiB in STANDARD_IA for 10 days, unused 200 days -> cold (early deletion from IA)
    const c = catalogOf((c) => {
      const a = c.addPack({ id: id(1), size: 10 * GIB, uploadedAt: NOW - 40 * DAY_MS });
      c.addManifest({ id: id(10), uploadedAt: NOW - 40 * DAY_MS, packs: [a] });
      const b = c.addPack({ id: id(2), size: 4 * GIB, storageClass: 'STANDARD_IA', uploadedAt: NOW - 200 * DAY_MS, classSince: NOW - 10 * DAY_MS });
      c.addManifest({ id: id(11), uploadedAt: NOW - 200 * DAY_MS, packs: [b] });
    });
    const plan = planTiers(c, policy, aws, AWS_US_EAST_1, { now: NOW, keepHotManifests: new Set() });
    expect(plan.monthlyCostBefore).toBeCloseTo(monthlyStorageCost(AWS_US_EAST_1, 'STANDARD', 10 * GIB, 1) + monthlyStorageCost(AWS_US_EAST_1, 'STANDARD_IA', 4 * GIB, 1), 12);
    expect(plan.monthlyCostAfter).toBeCloseTo(monthlyStorageCost(AWS_US_EAST_1, 'STANDARD_IA', 10 * GIB, 1) + monthlyStorageCost(AWS_US_EAST_1, 'GLACIER_IR', 4 * GIB, 1), 12);
    expect(plan.transitionCost).toBeCloseTo(transitionCost(AWS_US_EAST_1, 'STANDARD_IA', 1) + transitionCost(AWS_US_EAST_1, 'GLACIER_IR', 1), 12);
    expect(plan.earlyDeletion).toBeCloseTo(earlyDeletionCharge(AWS_US_EAST_1, 'STANDARD_IA', 4 * GIB, 1, 10), 12);
    // and the same figures by hand from the us-east-1 list prices
    expect(plan.monthlyCostBefore).toBeCloseTo(10 * 0.023 + 4 * 0.0125, 10);
    expect(plan.monthlyCostAfter).toBeCloseTo(10 * 0.0125 + 4 * 0.004, 10);
    expect(plan.transitionCost).toBeCloseTo(0.01 / 1000 + 0.02 / 1000, 12);
    expect(plan.earlyDeletion).toBeCloseTo(4 * 0.0125 * (20 / 30), 10);
  });

  it('holds moves compactly and gives them back intact', () => {
    const c = catalogOf((c) => {
      c.tx(() => {
        for (let i = 1; i <= 5000; i++) c.addPack({ id: id(i), size: i, uploadedAt: NOW - 800 * DAY_MS });
      });
    });
    const plan = planTiers(c, policy, aws, AWS_US_EAST_1, { now: NOW, keepHotManifests: new Set() });
    expect(plan.moves.length).toBe(5000);
    expect(plan.moves.at(4999)).toMatchObject({ packId: id(5000), size: 5000, fromClass: 'STANDARD', toTier: 'deep', phase: 'mark' });
    expect(plan.phases.mark).toEqual({ packs: 5000, bytes: (5000 * 5001) / 2 });
  });
});

describe('planTiers with graduation records', () => {
  // two file versions pushed 5 days ago, each in its own pack; a third pack shared by the
  // graduated version and a version someone else keeps using
  function graduatedCatalog(): TierCatalog {
    return catalogOf((c) => {
      const a = c.addPack({ id: id(1), size: GIB, uploadedAt: NOW - 5 * DAY_MS });
      const b = c.addPack({ id: id(2), size: GIB, uploadedAt: NOW - 5 * DAY_MS });
      const shared = c.addPack({ id: id(3), size: GIB, uploadedAt: NOW - 5 * DAY_MS });
      c.addManifest({ id: id(10), uploadedAt: NOW - 5 * DAY_MS, packs: [a, shared] });
      c.addManifest({ id: id(11), uploadedAt: NOW - 5 * DAY_MS, packs: [b] });
      c.addManifest({ id: id(12), uploadedAt: NOW - 5 * DAY_MS, packs: [shared] });
    });
  }
  const record = { manifests: [id(10), id(11)], lastChange: NOW - 45 * DAY_MS, since: NOW - 2 * DAY_MS };

  it('plans the packs only graduated versions use as last used at lastChange: warm before the warm age of their upload, reason graduated', () => {
    const c = graduatedCatalog();
    const without = planTiers(c, policy, aws, AWS_US_EAST_1, { now: NOW, keepHotManifests: new Set() });
    expect(without.moves.length).toBe(0);
    const plan = planTiers(c, policy, aws, AWS_US_EAST_1, { now: NOW, keepHotManifests: new Set(), graduated: [record] });
    expect(plan.moves.list().map((m) => [m.packId, m.toTier, m.phase, m.reason, m.lastUse])).toEqual([
      [id(1), 'warm', 'mark', 'graduated', NOW - 45 * DAY_MS],
      [id(2), 'warm', 'mark', 'graduated', NOW - 45 * DAY_MS],
    ]);
    // the shared pack: version 12 (not graduated, pushed 5 days ago) keeps it hot
    expect(plan.graduated).toEqual({ records: 1, manifests: 2, packs: 2, bytes: 2 * GIB });
  });

  it('a read after the graduation (someone else) is a real use and wins; reads before it do not count', () => {
    const c = graduatedCatalog();
    c.recordAccess([
      { kind: 'file', id: id(10), at: NOW - 3 * DAY_MS }, // before since: the graduate run reading back
      { kind: 'pack', id: id(2), at: NOW - DAY_MS }, // after: a real read
    ]);
    const plan = planTiers(c, policy, aws, AWS_US_EAST_1, { now: NOW, keepHotManifests: new Set(), graduated: [record] });
    expect(plan.moves.list().map((m) => [m.packId, m.toTier, m.reason])).toEqual([[id(1), 'warm', 'graduated']]);
  });

  it('ages by lastChange: content idle for years goes straight to its tier', () => {
    const c = graduatedCatalog();
    const plan = planTiers(c, policy, aws, AWS_US_EAST_1, { now: NOW, keepHotManifests: new Set(), graduated: [{ ...record, lastChange: NOW - 300 * DAY_MS }] });
    expect(plan.moves.list().map((m) => [m.packId, m.toTier])).toEqual([
      [id(1), 'cold'],
      [id(2), 'cold'],
    ]);
  });

  it('keep-hot patterns still win; the default keep-hot list (no pattern) does not hold graduated versions hot', () => {
    const c = graduatedCatalog();
    const keepHot = new Set([id(10), id(11), id(12)]);
    const named = planTiers(c, policy, aws, AWS_US_EAST_1, { now: NOW, keepHotManifests: keepHot, graduated: [record] });
    expect(named.moves.length).toBe(0);
    const byDefault = planTiers(c, policy, aws, AWS_US_EAST_1, { now: NOW, keepHotManifests: keepHot, graduated: [record], keepHotIsDefault: true });
    expect(byDefault.moves.list().map((m) => m.packId)).toEqual([id(1), id(2)]);
    // variants stay hot whatever the record says
    c.pin(id(11));
    const pinned = planTiers(c, policy, aws, AWS_US_EAST_1, { now: NOW, keepHotManifests: keepHot, graduated: [record], keepHotIsDefault: true });
    expect(pinned.moves.list().map((m) => m.packId)).toEqual([id(1)]);
  });

  it('a pending graduated mark whose record is gone (hydrated) is taken back', () => {
    const c = graduatedCatalog();
    c.setPending(id(1), 'warm', NOW - 3_600_000);
    const plan = planTiers(c, policy, aws, AWS_US_EAST_1, { now: NOW, keepHotManifests: new Set() });
    expect(plan.moves.list().map((m) => [m.packId, m.phase, m.reason])).toEqual([[id(1), 'unmark', 'in-use']]);
  });
});

describe('readTierPolicy', () => {
  it('reads durations, keep-hot patterns (multi-valued) and the mode', () => {
    const p = readTierPolicy(
      new DitsConfig([
        ['dits.tier.warmAfter', '2w'],
        ['dits.tier.coldAfter', '3m'],
        ['dits.tier.deepAfter', '1y'],
        ['dits.tier.keepHot', 'branch:main'],
        ['dits.tier.keepHot', 'logos/**'],
        ['dits.tier.grace', '0'],
        ['dits.tier.mode', 'lifecycle'],
      ]),
    );
    expect(p).toMatchObject({ warmAfterDays: 14, coldAfterDays: 90, deepAfterDays: 365, keepHot: ['branch:main', 'logos/**'], graceMs: 0, mode: 'lifecycle' });
    expect(readTierPolicy(new DitsConfig([]))).toMatchObject({ warmAfterDays: 30, coldAfterDays: 180, deepAfterDays: 730, graceMs: DAY_MS });
    expect(parseTierDuration('never')).toBe(Infinity);
  });

  it('refuses bad values naming the key', () => {
    expect(() => readTierPolicy(new DitsConfig([['dits.tier.coldAfter', 'soon']]))).toThrow(/dits.tier.coldAfter = soon is not a duration/);
    expect(() => readTierPolicy(new DitsConfig([['dits.tier.warmAfter', '1y']]))).toThrow(/must grow/);
  });
});
