/** Verdicts and tables for issue 19's snapshot figures. Pure. */
import { spread, noisePercent } from './stats.js';
import { formatBytes } from './units.js';
import { formatTable, verdictWord, type Verdict } from './report.js';
import type { SnapshotResults, SnapshotRun } from './snapshot.js';

/** "10 KB" read as 10,000 bytes, the stricter reading (as issue 3's 300 KB). */
export const SNAPSHOT_TARGETS = {
  unchangedSeconds: 2,
  unchangedNewBytes: 10_000,
} as const;

const med = (list: readonly SnapshotRun[], pick: (t: SnapshotRun) => number): number | null => (list.length ? spread(list.map(pick)).median : null);
const whole = (x: number | null): number | null => (x === null ? null : Math.round(x));

export function snapshotVerdicts(r: SnapshotResults): Verdict[] {
  const v: Verdict[] = [];
  const tree = `${r.files} x ${formatBytes(r.fileBytes)} tree`;
  const us = med(r.unchanged, (t) => t.seconds);
  const usr = us === null ? null : Math.round(us * 1000) / 1000;
  v.push({ issue: 19, figure: 'snapshot of an unchanged tree', subject: `${tree}, time`, value: usr, unit: 's', target: `< ${SNAPSHOT_TARGETS.unchangedSeconds} s`, pass: usr === null ? null : usr < SNAPSHOT_TARGETS.unchangedSeconds });
  const ub = whole(med(r.unchanged, (t) => t.newBytes));
  v.push({ issue: 19, figure: 'snapshot of an unchanged tree', subject: `${tree}, new bytes`, value: ub, unit: 'B', target: `< ${SNAPSHOT_TARGETS.unchangedNewBytes} B`, pass: ub === null ? null : ub < SNAPSHOT_TARGETS.unchangedNewBytes });
  const ds = med(r.editDits, (t) => t.seconds);
  const rs = med(r.editRestic, (t) => t.seconds);
  const round = (x: number | null) => (x === null ? null : Math.round(x * 100) / 100);
  v.push({ issue: 19, figure: 'snapshot after a 100-byte edit', subject: `one ${formatBytes(r.fileBytes)} file, time`, value: round(ds), unit: 's', target: rs === null ? 'faster than restic backup' : `< restic backup ${rs.toFixed(2)} s`, pass: ds === null || rs === null ? null : ds < rs });
  const db = whole(med(r.editDits, (t) => t.newBytes));
  const rb = med(r.editRestic, (t) => t.newBytes);
  v.push({ issue: 19, figure: 'snapshot after a 100-byte edit', subject: `one ${formatBytes(r.fileBytes)} file, new bytes`, value: db, unit: 'B', target: rb === null ? 'fewer than restic backup' : `< restic backup ${formatBytes(rb)}`, pass: db === null || rb === null ? null : db < rb });
  return v;
}

export function formatSnapshotReport(r: SnapshotResults, verdicts: readonly Verdict[], runs: number): string {
  const out: string[] = [`Issue 19, snapshot: a committed tree of ${r.files} x ${formatBytes(r.fileBytes)} random .mov files (clip2.. hard links to clip1: see bench/README.md) and 200 small files; median of ${runs} run(s), alternating.`];
  const row = (name: string, list: readonly SnapshotRun[]): string[] => {
    if (!list.length) return [name, '-', '-', '-', '-', '-'];
    const s = spread(list.map((t) => t.seconds));
    return [name, `${s.median.toFixed(3)} s`, `${s.min.toFixed(3)}..${s.max.toFixed(3)}`, `${noisePercent(s).toFixed(0)}%`, `${med(list, (t) => t.cpuSeconds)!.toFixed(2)} s`, formatBytes(med(list, (t) => t.newBytes)!)];
  };
  out.push(
    formatTable(
      ['command', 'time', 'min..max', 'spread', 'CPU', 'new bytes'],
      [row('git dits snapshot, unchanged tree', r.unchanged), row('git dits snapshot after a 100-byte edit', r.editDits), row('restic backup after the same edit', r.editRestic)],
    ),
  );
  const rows = verdicts.map((x) => [x.figure, x.subject, x.value === null ? '-' : x.unit === 'B' ? formatBytes(x.value) : `${x.value} ${x.unit}`, x.target, verdictWord(x.pass)]);
  out.push(formatTable(['figure', 'subject', 'value', 'target', 'verdict'], rows));
  if (r.files * r.fileBytes < 10 * 2 ** 30) out.push(`note: the issue's unchanged tree is 10 GiB and its edited file 1 GiB; this run's are ${formatBytes(r.files * r.fileBytes)} and ${formatBytes(r.fileBytes)} (--size).`);
  if (r.resticVersion) out.push(`peer: ${r.resticVersion}`);
  for (const s of r.skipped) out.push(`skipped: ${s}`);
  return out.join('\n');
}
