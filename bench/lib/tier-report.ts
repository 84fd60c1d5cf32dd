/** Verdicts and tables for issue 17's figures (storage tiers). Pure. */
import { spread, noisePercent } from './stats.js';
import { formatTable, verdictWord, type Verdict } from './report.js';
import type { TierResults } from './tier.js';

export const TIER_TARGETS = { planSeconds: 10, planPeakBytes: 300 * 2 ** 20 } as const;

export function tierVerdicts(r: TierResults): Verdict[] {
  const v: Verdict[] = [];
  if (r.plan && r.plan.runs.length) {
    const figure = `tier plan over ${r.plan.packs.toLocaleString('en-US')} packs (synthetic index)`;
    const secs = spread(r.plan.runs.map((x) => x.seconds)).median;
    const peak = Math.max(...r.plan.runs.map((x) => x.memory.peakSumRssBytes));
    v.push({ issue: 17, figure, subject: 'time (whole process)', value: Math.round(secs * 100) / 100, unit: 's', target: `< ${TIER_TARGETS.planSeconds} s`, pass: secs < TIER_TARGETS.planSeconds });
    v.push({ issue: 17, figure, subject: 'peak RSS (whole process)', value: Math.round(peak / 2 ** 20), unit: 'MiB', target: '< 300 MiB', pass: peak < TIER_TARGETS.planPeakBytes });
  }
  return v;
}

export function formatTierReport(r: TierResults, verdicts: readonly Verdict[], runs: number): string {
  const out: string[] = [`Issue 17, storage tiers. Median of ${runs} run(s) with (min-max, spread).`];
  if (r.plan && r.plan.runs.length) {
    const s = spread(r.plan.runs.map((x) => x.seconds));
    const c = spread(r.plan.runs.map((x) => x.cpuSeconds));
    const t = verdicts.find((x) => x.subject.startsWith('time'));
    const m = verdicts.find((x) => x.subject.startsWith('peak'));
    out.push(
      `tier plan: ${r.plan.packs} packs, ${r.plan.manifests} file versions, ${r.plan.userRows} pack users; ${r.plan.runs[0]!.moves} moves planned\n${formatTable(
        ['figure', 'measured', 'target', 'verdict'],
        [
          ['time, whole process', `${s.median.toFixed(2)} s (${s.min.toFixed(2)}-${s.max.toFixed(2)}, ${noisePercent(s).toFixed(0)}%); CPU ${c.median.toFixed(2)} s`, t?.target ?? '', verdictWord(t?.pass ?? null)],
          ['peak RSS, whole process', `${m?.value ?? '-'} MiB`, m?.target ?? '', verdictWord(m?.pass ?? null)],
        ],
      )}`,
    );
  }
  for (const n of r.notMeasured) out.push(`not measured: ${n.figure}: ${n.why}`);
  return out.join('\n');
}
