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
