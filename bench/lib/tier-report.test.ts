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
});
