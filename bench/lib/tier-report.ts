/** Verdicts and tables for issue 17's figures (storage tiers). Pure. */
import { spread, noisePercent } from './stats.js';
import { formatTable, verdictWord, type Verdict } from './report.js';
import type { TierResults } from './tier.js';
import type { CostCheck } from './tier-thaw.js';

export const TIER_TARGETS = { planSeconds: 10, planPeakBytes: 300 * 2 ** 20, rangePercent: 10, frozenCheckoutSeconds: 1 } as const;

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
  v.push(...thawVerdicts(r));
  return v;
}

export const THAW_FIGURES = {
  file: 'thaw of one file out of 1,000',
  range: 'thaw of a 2-minute range of a 1-hour clip',
  cost: 'cost estimate',
  frozen: 'frozen checkout',
} as const;

/** Cost figures are equal when bytes, requests and dollars are (dollars to a millionth of a cent: float sums). */
export function costEqual(c: CostCheck): boolean {
  return c.estimate.bytes === c.expected.bytes && c.estimate.requests === c.expected.requests && Math.abs(c.estimate.total - c.expected.total) < 1e-8;
}

function thawVerdicts(r: TierResults): Verdict[] {
  const v: Verdict[] = [];
  const t = r.thaw;
  if (!t) return v;
  if (t.thawFile) {
    const f = t.thawFile;
    const wrong = f.extra + f.missing;
    v.push({
      issue: 17,
      figure: THAW_FIGURES.file,
      subject: `${f.path}: packs restored not its own or its own not restored`,
      value: wrong,
      unit: 'packs',
      target: "exactly that file's packs (counted)",
      pass: f.filePacks > 0 && wrong === 0 && f.restoredPacks === f.filePacks && f.restoresStarted === f.filePacks,
    });
  }
  if (t.thawRange) {
    const g = t.thawRange;
    const pct = g.clipPacks ? (100 * g.restoredPacks) / g.clipPacks : 100;
    v.push({
      issue: 17,
      figure: THAW_FIGURES.range,
      subject: `packs restored of the clip's ${g.clipPacks}`,
      value: Math.round(pct * 10) / 10,
      unit: '%',
      target: `< ${TIER_TARGETS.rangePercent}%`,
      pass: g.clipPacks > 0 && g.restoredPacks > 0 && g.foreign === 0 && g.restoresStarted === g.restoredPacks && pct < TIER_TARGETS.rangePercent,
    });
  }
  if (t.cost) {
    const bad = t.cost.filter((c) => !costEqual(c)).length;
    v.push({ issue: 17, figure: THAW_FIGURES.cost, subject: `${t.cost.length} estimates against restoreCost`, value: bad, unit: 'differing', target: "equal to the price table's arithmetic", pass: t.cost.length > 0 && bad === 0 });
  }
  if (t.frozenCheckout && t.frozenCheckout.runs.length) {
    const c = t.frozenCheckout;
    const secs = spread(c.runs.map((x) => x.seconds)).median;
    const others = c.files - c.frozenFiles;
    const allWritten = c.runs.every((x) => x.exact === others && x.wrong.length === 0 && x.exitCode === 3 && x.reported.join(' ') === [...c.frozenNames].sort().join(' '));
    v.push({ issue: 17, figure: THAW_FIGURES.frozen, subject: 'git dits pull, whole process', value: Math.round(secs * 100) / 100, unit: 's', target: `< ${TIER_TARGETS.frozenCheckoutSeconds} s`, pass: secs < TIER_TARGETS.frozenCheckoutSeconds });
    v.push({ issue: 17, figure: THAW_FIGURES.frozen, subject: 'every other file written, byte-exact; the frozen ones named (exit 3)', value: Math.min(...c.runs.map((x) => x.exact)), unit: `of ${others} files`, target: 'every other file written', pass: allWritten });
  }
  return v;
}

function formatThaw(r: TierResults, verdicts: readonly Verdict[]): string[] {
  const out: string[] = [];
  const t = r.thaw;
  if (!t) return out;
  const find = (figure: string, i = 0) => verdicts.filter((x) => x.figure === figure)[i];
  if (t.thawFile) {
    const f = t.thawFile;
    const vf = find(THAW_FIGURES.file);
    out.push(
      `thaw of one file: ${f.files} files x ${f.fileBytes / 1024} KiB on dits::s3 (Glacier front before s3rver), ${f.packsTotal} packs all in DEEP_ARCHIVE; a lazy clone runs \`git dits thaw --json --yes ${f.path}\`
${formatTable(
        ['figure', 'measured', 'target', 'verdict'],
        [
          ["packs restored vs the file's packs", `${f.restoredPacks} restored, ${f.filePacks} hold its chunks (pack indexes): ${f.extra} extra, ${f.missing} missing; ${f.restoreRequests} RestoreObject (${f.restoresStarted} started)`, vf?.target ?? '', verdictWord(vf?.pass ?? null)],
        ],
      )}`,
    );
  }
  if (t.thawRange) {
    const g = t.thawRange;
    const vr = find(THAW_FIGURES.range);
    const c = g.clip;
    out.push(
      `thaw of a range: a ${c.seconds} s H.264 clip made by ffmpeg (${c.size}, ${c.fps} fps, a keyframe every ${c.gopSeconds} s, ${c.videoKbps} kbit/s, no audio, moov at the end; ${(c.bytes / 2 ** 20).toFixed(1)} MiB), pushed with ${Object.entries(g.settings).map(([k, x]) => `${k}=${x}`).join(' ')} so it spans ${g.clipPacks} packs, all in DEEP_ARCHIVE; \`git dits thaw --range ${g.range} --json --yes clip.mp4\` in a lazy clone, run again after the front finished the restores while a stage remained (${g.stages} stage(s): ${g.indexPacks} pack(s) for the container index, then the range; the moov itself, ${g.moov.bytes} bytes at the end, is in ${g.moov.packs} pack(s): the index stage restores the window \`indexWindow\` estimates from the sample count)
${formatTable(
        ['figure', 'measured', 'target', 'verdict'],
        [["packs restored of the clip's", `${g.restoredPacks} of ${g.clipPacks} (${vr?.value ?? '-'}%); ${g.restoreRequests} RestoreObject (${g.restoresStarted} started), ${g.foreign} not the clip's`, vr?.target ?? '', verdictWord(vr?.pass ?? null)]],
      )}`,
    );
  }
  if (t.cost) {
    const vc = find(THAW_FIGURES.cost);
    out.push(
      `cost estimate: each estimate of the thaws' \`--json --dry-run\` plan against prices.ts restoreCost (AWS us-east-1 table, 7 days) on the bytes of the packs the front then held a restore for and the restores it started
${formatTable(
        ['thaw', 'class, tier', 'estimate (bytes, requests, $)', 'price table (bytes, requests, $)', 'verdict'],
        t.cost.map((c) => [c.what, `${c.storageClass}, ${c.tier}`, `${c.estimate.bytes}, ${c.estimate.requests}, ${c.estimate.total.toFixed(6)}`, `${c.expected.bytes}, ${c.expected.requests}, ${c.expected.total.toFixed(6)}`, verdictWord(costEqual(c))]),
      )}
all equal: ${verdictWord(vc?.pass ?? null)} (target: ${vc?.target ?? ''})`,
    );
  }
  if (t.frozenCheckout && t.frozenCheckout.runs.length) {
    const c = t.frozenCheckout;
    const s = spread(c.runs.map((x) => x.seconds));
    const cpu = spread(c.runs.map((x) => x.cpuSeconds));
    const vt = find(THAW_FIGURES.frozen, 0);
    const vw = find(THAW_FIGURES.frozen, 1);
    out.push(
      `frozen checkout: ${c.files} files x ${c.fileBytes / 1024} KiB on dits::s3, the packs of ${c.frozenFiles} (${c.frozenNames.join(' ')}) in DEEP_ARCHIVE; per run a fresh lazy clone, then \`git dits pull --json\` timed
${formatTable(
        ['figure', 'measured', 'target', 'verdict'],
        [
          ['git dits pull, whole process', `${s.median.toFixed(2)} s (${s.min.toFixed(2)}-${s.max.toFixed(2)}, ${noisePercent(s).toFixed(0)}%); CPU ${cpu.median.toFixed(2)} s; exit ${[...new Set(c.runs.map((x) => x.exitCode))].join('/')}`, vt?.target ?? '', verdictWord(vt?.pass ?? null)],
          ['other files byte-exact', `${c.runs.map((x) => x.exact).join('/')} of ${c.files - c.frozenFiles}; frozen named: ${[...new Set(c.runs.map((x) => x.reported.join(' ')))].join(' | ') || 'none'}${c.runs.some((x) => x.wrong.length) ? `; wrong: ${[...new Set(c.runs.flatMap((x) => x.wrong))].join(' ')}` : ''}`, vw?.target ?? '', verdictWord(vw?.pass ?? null)],
        ],
      )}`,
    );
  }
  return out;
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
  out.push(...formatThaw(r, verdicts));
  for (const n of r.notMeasured) out.push(`not measured: ${n.figure}: ${n.why}`);
  return out.join('\n');
}
