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
  if (r.moves) {
    const bad = r.moves.deleted + r.moves.sizeChanged;
    v.push({ issue: 17, figure: 'objects deleted by any tier move', subject: `${r.moves.movedPacks} packs to DEEP_ARCHIVE`, value: bad, unit: 'objects', target: '0 (counted before and after)', pass: bad === 0 && r.moves.movedPacks > 0 && r.moves.deepPacks === r.moves.movedPacks });
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
  if (r.moves) {
    const m = r.moves;
    const vm = verdicts.find((x) => x.figure === 'objects deleted by any tier move');
    out.push(
      `tier moves: ${m.files} files x ${(m.fileBytes / 2 ** 20).toFixed(0)} MiB, two versions on dits::s3 (Glacier front before s3rver); \`git dits tier apply --grace 0\` twice\n${formatTable(
        ['figure', 'measured', 'target', 'verdict'],
        [
          ['objects gone or resized', `${m.deleted} gone, ${m.sizeChanged} resized of ${m.objectsBefore} (after: ${m.objectsAfter})`, vm?.target ?? '', verdictWord(vm?.pass ?? null)],
          ['packs moved', `${m.movedPacks} (${m.deepPacks} in DEEP_ARCHIVE after); ${m.copies} CopyObject, ${m.bytesUploaded} bytes uploaded, ${m.deletesAtFront} DELETE (pending markers)`, '', ''],
        ],
      )}`,
    );
  }
  for (const n of r.notMeasured) out.push(`not measured: ${n.figure}: ${n.why}`);
  return out.join('\n');
}
