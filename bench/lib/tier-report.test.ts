import { describe, expect, it } from 'vitest';
import { formatTierReport, tierVerdicts } from './tier-report.js';
import type { TierResults } from './tier.js';

const mem = (mib: number) => ({ peakSumRssBytes: mib * 2 ** 20, peakSumAnonBytes: 0, peakSingleRssBytes: mib * 2 ** 20, peakSingleName: 'node', samples: 10, maxProcesses: 2 });

describe('tier verdicts', () => {
  it('passes under 10 s and 300 MiB (median time, highest peak), fails at or over', () => {
    const r: TierResults = {
      plan: { packs: 1_000_000, manifests: 500_000, userRows: 1_150_000, runs: [3, 12, 4].map((s, i) => ({ seconds: s, cpuSeconds: s, memory: mem([120, 130, 310][i]!), moves: 5, planSeconds: s })) },
      notMeasured: [],
    };
    const v = tierVerdicts(r);
    expect(v.map((x) => [x.subject, x.value, x.pass])).toEqual([
      ['time (whole process)', 4, true],
      ['peak RSS (whole process)', 310, false],
    ]);
    expect(formatTierReport(r, v, 3)).toMatch(/peak RSS, whole process +310 MiB +< 300 MiB +FAIL/);
  });

  it('says what was not measured', () => {
    const r: TierResults = { plan: null, notMeasured: [{ figure: 'plan', why: 'not built' }] };
    expect(tierVerdicts(r)).toEqual([]);
    expect(formatTierReport(r, [], 1)).toMatch(/not measured: plan: not built/);
  });

  it('objects deleted by any tier move: 0 passes only with packs moved and seen in DEEP_ARCHIVE', () => {
    const moves = { files: 8, fileBytes: 2 ** 21, objectsBefore: 87, objectsAfter: 87, deleted: 0, sizeChanged: 0, movedPacks: 17, deepPacks: 17, copies: 17, bytesUploaded: 2026, deletesAtFront: 17 };
    const ok = tierVerdicts({ plan: null, moves, notMeasured: [] });
    expect(ok.map((x) => [x.figure, x.value, x.pass])).toEqual([['objects deleted by any tier move', 0, true]]);
    expect(tierVerdicts({ plan: null, moves: { ...moves, deleted: 1 }, notMeasured: [] })[0]!.pass).toBe(false);
    expect(tierVerdicts({ plan: null, moves: { ...moves, sizeChanged: 1 }, notMeasured: [] })[0]!.pass).toBe(false);
    expect(tierVerdicts({ plan: null, moves: { ...moves, movedPacks: 0, deepPacks: 0 }, notMeasured: [] })[0]!.pass).toBe(false);
  });
});

describe('thaw and frozen-checkout verdicts', () => {
  const thawFile = { files: 1000, fileBytes: 32768, packsTotal: 258, path: 'f0500.bin', filePacks: 2, restoreRequests: 2, restoresStarted: 2, restoredPacks: 2, extra: 0, missing: 0 };
  const thawRange = {
    clip: { seconds: 3600, bytes: 45e6, size: '160x90', fps: 25, gopSeconds: 2, videoKbps: 100, moovAtEnd: true },
    settings: { 'dits.packSize': '512k' },
    range: '00:10:00-00:12:00',
    packsTotal: 94,
    clipPacks: 94,
    stages: 2,
    indexPacks: 4,
    moov: { offset: 45008727, bytes: 368516, packs: 2 },
    restoreRequests: 9,
    restoresStarted: 9,
    restoredPacks: 9,
    foreign: 0,
  };
  const cost = [{ what: 'thaw of f0500.bin', storageClass: 'DEEP_ARCHIVE', tier: 'standard', estimate: { bytes: 255890, requests: 2, total: 0.000206 }, expected: { bytes: 255890, requests: 2, total: 0.000206 } }];
  const run = { seconds: 0.6, cpuSeconds: 0.4, exitCode: 3, reported: ['old00.bin', 'old01.bin'], exact: 2, wrong: [] as string[] };
  const frozenCheckout = { files: 4, fileBytes: 524288, frozenFiles: 2, frozenNames: ['old01.bin', 'old00.bin'], runs: [run, { ...run, seconds: 1.5 }, { ...run, seconds: 0.7 }] };
  const verdicts = (thaw: NonNullable<TierResults['thaw']>) => tierVerdicts({ plan: null, thaw, notMeasured: [] });
  const pass = (thaw: NonNullable<TierResults['thaw']>) => verdicts(thaw).map((x) => x.pass);

  it('one file: passes only when the restored packs are exactly the packs its chunks are in', () => {
    expect(verdicts({ thawFile }).map((x) => [x.figure, x.value, x.pass])).toEqual([['thaw of one file out of 1,000', 0, true]]);
    expect(pass({ thawFile: { ...thawFile, extra: 1, restoredPacks: 3, restoresStarted: 3 } })).toEqual([false]);
    expect(pass({ thawFile: { ...thawFile, missing: 1, restoredPacks: 1, restoresStarted: 1 } })).toEqual([false]);
    // one restore asked twice (or one pack restored with no request counted) is not "exactly"
    expect(pass({ thawFile: { ...thawFile, restoresStarted: 3 } })).toEqual([false]);
    expect(pass({ thawFile: { ...thawFile, filePacks: 0, restoredPacks: 0, restoresStarted: 0 } })).toEqual([false]);
  });

  it("a range: under 10% of the clip's packs, none foreign, something restored", () => {
    expect(verdicts({ thawRange }).map((x) => [x.value, x.pass])).toEqual([[9.6, true]]);
    expect(pass({ thawRange: { ...thawRange, restoredPacks: 10, restoresStarted: 10, restoreRequests: 10 } })).toEqual([false]); // 10.6%
    expect(pass({ thawRange: { ...thawRange, clipPacks: 90, restoredPacks: 9 } })).toEqual([false]); // exactly 10%
    expect(pass({ thawRange: { ...thawRange, foreign: 1 } })).toEqual([false]);
    expect(pass({ thawRange: { ...thawRange, restoredPacks: 0, restoresStarted: 0 } })).toEqual([false]);
  });

  it("cost: equal bytes, requests and dollars pass; any difference or no estimate fails", () => {
    expect(pass({ cost })).toEqual([true]);
    expect(pass({ cost: [{ ...cost[0]!, estimate: { ...cost[0]!.estimate, total: 0.000207 } }] })).toEqual([false]);
    expect(pass({ cost: [{ ...cost[0]!, estimate: { ...cost[0]!.estimate, requests: 3 } }] })).toEqual([false]);
    expect(pass({ cost: [{ ...cost[0]!, estimate: { ...cost[0]!.estimate, bytes: 1 } }] })).toEqual([false]);
    expect(pass({ cost: [] })).toEqual([false]);
    expect(formatTierReport({ plan: null, thaw: { cost }, notMeasured: [] }, verdicts({ cost }), 1)).toMatch(/DEEP_ARCHIVE, standard +255890, 2, 0\.000206 +255890, 2, 0\.000206 +PASS/);
  });

  it('frozen checkout: median wall under 1 s; every other file exact, the frozen ones named, exit 3, in every run', () => {
    expect(verdicts({ frozenCheckout }).map((x) => [x.subject, x.value, x.pass])).toEqual([
      ['git dits pull, whole process', 0.7, true],
      ['every other file written, byte-exact; the frozen ones named (exit 3)', 2, true],
    ]);
    expect(pass({ frozenCheckout: { ...frozenCheckout, runs: [run, { ...run, seconds: 1.5 }, { ...run, seconds: 1.0 }] } })).toEqual([false, true]);
    expect(pass({ frozenCheckout: { ...frozenCheckout, runs: [run, { ...run, exact: 1, wrong: ['new02.bin'] }] } })).toEqual([true, false]);
    expect(pass({ frozenCheckout: { ...frozenCheckout, runs: [run, { ...run, exitCode: 0 }] } })).toEqual([true, false]);
    expect(pass({ frozenCheckout: { ...frozenCheckout, runs: [{ ...run, reported: ['old00.bin'] }] } })).toEqual([true, false]);
    const v = verdicts({ frozenCheckout });
    expect(formatTierReport({ plan: null, thaw: { frozenCheckout }, notMeasured: [] }, v, 3)).toMatch(/git dits pull, whole process +0\.70 s \(0\.60-1\.50/);
  });
});
