/** Verdicts and tables for issue 15's many-files figures. Pure. */
import { spread, noisePercent, type Spread } from './stats.js';
import { formatTable, verdictWord, type Verdict } from './report.js';
import type { ManyResults, ManyTool } from './many.js';
import type { TimedRun } from './core.js';

/** Per set name: the least ratio of Dits' throughput to git-lfs's. */
export const MANY_TARGETS = {
  sets: {
    '1000 x 256 KiB': { add: 2, checkout: 1.5 },
    '200 x 4 MiB': { add: 3, checkout: 2 },
  } as Record<string, { add: number; checkout: number }>,
  smallAddSeconds: 0.08,
  gitStatusSeconds: 1,
  ditsStatusSeconds: 2,
} as const;

function secs(runs: readonly TimedRun[] | undefined): Spread | null {
  return runs?.length ? spread(runs.map((r) => r.seconds)) : null;
}

/** Dits' throughput over git-lfs's on the same bytes: lfs seconds / dits seconds (medians). */
function speedup(dits: Spread | null, lfs: Spread | null): number | null {
  return dits && lfs && dits.median > 0 ? lfs.median / dits.median : null;
}

export function manyVerdicts(r: ManyResults): Verdict[] {
  const v: Verdict[] = [];
  for (const s of r.sets) {
    const t = MANY_TARGETS.sets[s.set.name];
    if (!t) continue;
    for (const op of ['add', 'checkout'] as const) {
      const x = speedup(secs(s[op].dits), secs(s[op]['git-lfs']));
      v.push({ issue: 15, figure: `${op === 'add' ? 'git add' : 'checkout'}, ${s.set.name}`, subject: 'dits / git-lfs', value: x, unit: 'x', target: `>= ${t[op]}x`, pass: x === null ? null : x >= t[op] });
    }
  }
  const small = r.smallAdd.dits?.length ? spread(r.smallAdd.dits).median : null;
  v.push({ issue: 15, figure: 'git add, one 1 MiB file', subject: 'dits', value: small === null ? null : Math.round(small * 1000), unit: 'ms', target: `< ${MANY_TARGETS.smallAddSeconds * 1000} ms`, pass: small === null ? null : small < MANY_TARGETS.smallAddSeconds });
  const gs = r.status.git.length ? spread(r.status.git).median : null;
  v.push({ issue: 15, figure: `status, ${r.status.trackedFiles} tracked files`, subject: 'git status', value: gs === null ? null : Math.round(gs * 100) / 100, unit: 's', target: `< ${MANY_TARGETS.gitStatusSeconds} s`, pass: gs === null ? null : gs < MANY_TARGETS.gitStatusSeconds });
  const ds = r.status.dits.length ? spread(r.status.dits).median : null;
  v.push({ issue: 15, figure: `status, ${r.status.trackedFiles} tracked files`, subject: 'git dits status', value: ds === null ? null : Math.round(ds * 100) / 100, unit: 's', target: `< ${MANY_TARGETS.ditsStatusSeconds} s`, pass: ds === null ? null : ds < MANY_TARGETS.ditsStatusSeconds });
  return v;
}

const ms = (s: Spread | null) => (s ? `${(s.median * 1000).toFixed(0)} ms (${(s.min * 1000).toFixed(0)}-${(s.max * 1000).toFixed(0)})` : '-');
const sx = (s: Spread | null) => (s ? `${s.median.toFixed(2)} s (${s.min.toFixed(2)}-${s.max.toFixed(2)}, ${noisePercent(s).toFixed(0)}%)` : '-');

export function formatManyReport(r: ManyResults, verdicts: readonly Verdict[], runs: number): string {
  const out: string[] = [];
  const find = (figure: string, subject: string) => verdicts.find((x) => x.figure === figure && x.subject === subject);
  out.push(`Issue 15, many and smaller files. Pseudo-random files; median of ${runs} run(s) with (min-max, spread); ratio = git-lfs seconds / Dits seconds.`);
  out.push(`floor: git --version ${ms(r.startup.git.length ? spread(r.startup.git) : null)}, git dits --version ${ms(r.startup.dits.length ? spread(r.startup.dits) : null)}`);
  out.push('');
  const rows: string[][] = [];
  for (const s of r.sets) {
    for (const op of ['add', 'checkout'] as const) {
      const figure = `${op === 'add' ? 'git add' : 'checkout'}, ${s.set.name}`;
      const d = secs(s[op].dits);
      const l = secs(s[op]['git-lfs']);
      const vd = find(figure, 'dits / git-lfs');
      rows.push([figure, sx(d), sx(l), vd?.value == null ? '-' : `${vd.value.toFixed(2)}x`, vd?.target ?? '', verdictWord(vd?.pass ?? null)]);
    }
  }
  out.push(`sets of files (git add of the folder in a fresh repository; rm -r folder, git checkout -- folder)\n${formatTable(['figure', 'dits', 'git-lfs', 'ratio', 'target', 'verdict'], rows)}`);
  out.push('');
  const one = (t: ManyTool) => (r.smallAdd[t]?.length ? spread(r.smallAdd[t]!) : null);
  const vs = find('git add, one 1 MiB file', 'dits');
  out.push(`git add of one 1 MiB file (repository with history)\n${formatTable(['tool', 'time', 'target', 'verdict'], [['dits', ms(one('dits')), vs?.target ?? '', verdictWord(vs?.pass ?? null)], ['git-lfs', ms(one('git-lfs')), '', '']])}`);
  out.push('');
  const st = (xs: number[]) => (xs.length ? spread(xs) : null);
  const fig = `status, ${r.status.trackedFiles} tracked files`;
  const vg = find(fig, 'git status');
  const vdd = find(fig, 'git dits status');
  out.push(
    `${fig} (all present, unchanged)\n${formatTable(['command', 'time', 'target', 'verdict'], [
      ['git status (dits repository)', sx(st(r.status.git)), vg?.target ?? '', verdictWord(vg?.pass ?? null)],
      ['git dits status --json', sx(st(r.status.dits)), vdd?.target ?? '', verdictWord(vdd?.pass ?? null)],
      ['git status (git-lfs repository)', sx(st(r.status.lfsGit)), '', ''],
    ])}`,
  );
  for (const s of r.skipped) out.push(`skipped: ${s}`);
  return out.join('\n');
}
