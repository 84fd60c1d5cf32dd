/**
 * Verdicts against the issues' "Figures to reach" tables, and the text tables the
 * benchmark prints. Pure: results in, strings and verdict objects out.
 */
import { spread, noisePercent, type Spread } from './stats.js';
import { formatBytes } from './units.js';
import type { CoreResults, TimedRun, EditRun, MemoryRun } from './core.js';

export interface Verdict {
  issue: number;
  figure: string;
  subject: string;
  value: number | null;
  unit: string;
  target: string;
  pass: boolean | null;
}

/** Issue 3's targets. 300 KB is read as 300,000 bytes, the stricter reading. */
export const CORE_TARGETS = {
  gitAddVsLfs: 3,
  ditsAddVsLfs: 4,
  checkoutVsLfs: 2.5,
  editBytes: 300_000,
  peakMemoryBytes: 300 * 2 ** 20,
  pointerBytes: 1024,
} as const;

function mbpsSpread(runs: readonly TimedRun[] | undefined): Spread | null {
  return runs?.length ? spread(runs.map((r) => r.mbps)) : null;
}

function ratio(a: Spread | null, b: Spread | null): number | null {
  return a && b && b.median > 0 ? a.median / b.median : null;
}

export function coreVerdicts(r: CoreResults): Verdict[] {
  const v: Verdict[] = [];
  const lfsAdd = mbpsSpread(r.add['git-lfs (git add)']);
  const gitAdd = ratio(mbpsSpread(r.add['dits (git add)']), lfsAdd);
  const ditsAdd = ratio(mbpsSpread(r.add['dits (git dits add)']), lfsAdd);
  v.push({ issue: 3, figure: 'git add throughput', subject: 'dits (git add) / git-lfs', value: gitAdd, unit: 'x', target: `>= ${CORE_TARGETS.gitAddVsLfs}x`, pass: gitAdd === null ? null : gitAdd >= CORE_TARGETS.gitAddVsLfs });
  v.push({ issue: 3, figure: 'git add throughput', subject: 'git dits add / git-lfs', value: ditsAdd, unit: 'x', target: `>= ${CORE_TARGETS.ditsAddVsLfs}x`, pass: ditsAdd === null ? null : ditsAdd >= CORE_TARGETS.ditsAddVsLfs });
  const co = ratio(mbpsSpread(r.checkout.dits), mbpsSpread(r.checkout['git-lfs']));
  v.push({ issue: 3, figure: 'checkout throughput', subject: 'dits / git-lfs', value: co, unit: 'x', target: `>= ${CORE_TARGETS.checkoutVsLfs}x`, pass: co === null ? null : co >= CORE_TARGETS.checkoutVsLfs });
  for (const edit of ['a', 'b'] as const) {
    const runs = r.edits[edit].dits;
    const m = runs?.length ? spread(runs.map((x) => x.newBytes)).median : null;
    v.push({ issue: 3, figure: 'new bytes stored per small edit', subject: `dits, edit ${edit.toUpperCase()}`, value: m, unit: 'B', target: `< ${CORE_TARGETS.editBytes} B`, pass: m === null ? null : m < CORE_TARGETS.editBytes });
  }
  for (const c of ['dits: git dits add', 'dits: git checkout', 'dits: git add'] as const) {
    const runs = r.bigMemory[c];
    if (!runs?.length) continue;
    const m = spread(runs.map((x) => x.memory.peakSumRssBytes)).median;
    v.push({ issue: 3, figure: 'peak memory, big file', subject: c, value: m, unit: 'B', target: `< ${formatBytes(CORE_TARGETS.peakMemoryBytes)}`, pass: m < CORE_TARGETS.peakMemoryBytes });
  }
  const p = r.pointerBytes.dits ?? null;
  v.push({ issue: 3, figure: 'pointer size', subject: 'dits', value: p, unit: 'B', target: `< ${CORE_TARGETS.pointerBytes} B`, pass: p === null ? null : p < CORE_TARGETS.pointerBytes });
  return v;
}

export function verdictWord(pass: boolean | null): string {
  return pass === null ? 'n/a' : pass ? 'PASS' : 'FAIL';
}

/** Left-aligned first column, right-aligned others, two spaces between. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const line = (r: readonly string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

const f0 = (x: number) => x.toFixed(0);
const fx = (x: number | null) => (x === null ? '-' : `${x.toFixed(2)}x`);

function throughputTable(title: string, runs: Partial<Record<string, TimedRun[]>>, lfsKey: string, targets: Record<string, { ratio: number; verdict: Verdict | undefined }>): string {
  const lfs = mbpsSpread(runs[lfsKey]);
  const rows: string[][] = [];
  for (const [tool, list] of Object.entries(runs)) {
    const s = mbpsSpread(list);
    if (!s) continue;
    const t = targets[tool];
    rows.push([tool, f0(s.median), f0(s.min), f0(s.max), `${noisePercent(s).toFixed(0)}%`, tool === lfsKey ? '1.00x' : fx(ratio(s, lfs)), t ? `>= ${t.ratio}x` : '', t ? verdictWord(t.verdict?.pass ?? null) : '']);
  }
  return `${title}\n${formatTable(['tool', 'MB/s median', 'min', 'max', 'spread', 'vs git-lfs', 'target', 'verdict'], rows)}`;
}

function bytesMedian(list: readonly EditRun[] | undefined): string {
  return list?.length ? String(spread(list.map((x) => x.newBytes)).median) : '-';
}

export function formatCoreReport(r: CoreResults, verdicts: readonly Verdict[], runs: number): string {
  const out: string[] = [];
  const find = (figure: string, subject: string) => verdicts.find((v) => v.figure === figure && v.subject === subject);
  out.push(`Issue 3, core. Video ${formatBytes(r.files.video)} (${r.files.video} B, H.264 1080p25, ${r.files.videoSeconds.toFixed(1)} s, ${(r.files.videoBitsPerSecond / 1e6).toFixed(0)} Mbit/s); median of ${runs} run(s); MB = 10^6 B; spread = (max - min) / median.`);
  out.push('');
  out.push(
    throughputTable('git add throughput (fresh repository per run, input file in the page cache)', r.add, 'git-lfs (git add)', {
      'dits (git add)': { ratio: CORE_TARGETS.gitAddVsLfs, verdict: find('git add throughput', 'dits (git add) / git-lfs') },
      'dits (git dits add)': { ratio: CORE_TARGETS.ditsAddVsLfs, verdict: find('git add throughput', 'git dits add / git-lfs') },
    }),
  );
  if (r.ditsAddSameAsGitAdd !== undefined) out.push(`git dits add staged the same blob as git add: ${r.ditsAddSameAsGitAdd ? 'yes' : 'NO'}`);
  out.push('');
  out.push(
    throughputTable('checkout throughput (rm file; git checkout -- file; store in the page cache)', r.checkout, 'git-lfs', {
      dits: { ratio: CORE_TARGETS.checkoutVsLfs, verdict: find('checkout throughput', 'dits / git-lfs') },
    }),
  );
  out.push('');
  const editRows: string[][] = [];
  for (const edit of ['a', 'b'] as const) {
    const e = r.edits[edit];
    const v = find('new bytes stored per small edit', `dits, edit ${edit.toUpperCase()}`);
    const label = edit === 'a' ? `A: 100 B overwritten at ${r.files.editAOffset}` : `B: 4 KiB inserted at ${r.files.editBOffset}`;
    editRows.push([label, bytesMedian(e.dits), bytesMedian(e['git-lfs']), bytesMedian(e.restic), v?.target ?? '', verdictWord(v?.pass ?? null)]);
  }
  out.push(`new bytes stored per small edit (bytes, median; dits = growth of .git/dits, git-lfs = .git/lfs/objects, restic = repository)\n${formatTable(['edit', 'dits', 'git-lfs', 'restic', 'target', 'verdict'], editRows)}`);
  for (const edit of ['a', 'b'] as const) {
    const d = r.edits[edit].dits;
    if (!d?.some((x) => x.parts)) continue;
    const parts = d.flatMap((x) => (x.parts ? [x.parts] : [])).map((p) => `packs ${p.packs}, manifests ${p.manifests}, other (SQLite index) ${p.other}, du packFileBytes ${p.duPackFileBytes}`);
    out.push(`  dits edit ${edit.toUpperCase()} per run: ${parts.join(' | ')}`);
  }
  out.push('');
  const memEntries = Object.entries(r.bigMemory) as [string, MemoryRun[]][];
  if (memEntries.length) {
    const rows = memEntries.map(([c, list]) => {
      const sum = spread(list.map((x) => x.memory.peakSumRssBytes));
      const single = spread(list.map((x) => x.memory.peakSingleRssBytes));
      const anon = spread(list.map((x) => x.memory.peakSumAnonBytes));
      const names = [...new Set(list.map((x) => x.memory.peakSingleName))].join(',');
      const secs = spread(list.map((x) => x.seconds));
      const v = verdicts.find((x) => x.figure === 'peak memory, big file' && x.subject === c);
      return [c, formatBytes(sum.median), `${formatBytes(sum.min)}..${formatBytes(sum.max)}`, `${formatBytes(single.median)} (${names})`, formatBytes(anon.median), `${secs.median.toFixed(1)} s`, v?.target ?? '', verdictWord(v?.pass ?? null)];
    });
    out.push(`peak memory, add and checkout of a ${formatBytes(r.files.big ?? 0)} random file (VmRSS summed over the process tree, sampled every 50 ms)\n${formatTable(['case', 'tree peak', 'min..max', 'largest process', 'tree anon', 'time', 'target', 'verdict'], rows)}`);
    out.push('');
  }
  const pv = find('pointer size', 'dits');
  const prow = (Object.entries(r.pointerBytes) as [string, number][]).map(([k, n]) => [k, String(n), k === 'dits' ? pv?.target ?? '' : '', k === 'dits' ? verdictWord(pv?.pass ?? null) : '']);
  out.push(`pointer size (bytes of the blob git stores for the file)\n${formatTable(['tool', 'bytes', 'target', 'verdict'], prow)}`);
  for (const s of r.skipped) out.push(`skipped: ${s}`);
  return out.join('\n');
}

export function formatVerdicts(verdicts: readonly Verdict[]): string {
  const rows = verdicts.map((v) => [`#${v.issue} ${v.figure}`, v.subject, v.value === null ? '-' : v.unit === 'x' ? fx(v.value) : v.unit === 'B' && v.value > 10_000_000 ? formatBytes(v.value) : `${v.value} ${v.unit}`, v.target, verdictWord(v.pass)]);
  return formatTable(['figure', 'subject', 'value', 'target', 'verdict'], rows);
}
