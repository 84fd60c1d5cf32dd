/** Verdicts and tables for issue 16's proxy figures. Pure. */
import { spread, noisePercent, type Spread } from './stats.js';
import { formatTable, verdictWord, type Verdict } from './report.js';
import { formatBytes } from './units.js';
import type { CloneMethod, CloneRun, CpuRun, ProxyFigure, ProxyResults } from './proxy.js';

export const PROXY_TARGETS = {
  /** Proxy clone: at most this share of the originals' bytes downloaded. */
  cloneShare: 0.06,
  /** Proxy make: at most this much slower than the ffmpeg command line (Dits / ffmpeg seconds). */
  makeRatio: 1.1,
  /** Switching 10 files each way. */
  switchSeconds: 2,
  /** The worker's tree without ffmpeg. */
  workerBytes: 300 * 2 ** 20,
  /** git status in proxy mode over original mode. */
  statusRatio: 1.2,
} as const;

/** The figures' names as the summary prints them (one place, so verdicts and tables agree). */
export const PROXY_FIGURE_NAMES: Record<ProxyFigure, string> = {
  clone: 'proxy clone of 4K ProRes 422 HQ originals',
  make: 'git dits proxy make of a 4K clip',
  switchFiles: 'switch 10 files proxy <-> original',
  worker: 'worker memory, proxy of a source in S3',
  status: 'git status, proxy mode vs original mode',
};

const sp = (xs: readonly number[]): Spread | null => (xs.length ? spread(xs) : null);
const wall = (runs: readonly CpuRun[]) => sp(runs.map((r) => r.seconds));
const cpu = (runs: readonly CpuRun[]) => sp(runs.map((r) => r.cpuSeconds));
const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;

/** The clone runs by remote and way of checking out proxies, in a fixed order. */
export function cloneGroups(r: ProxyResults): { remote: CloneRun['remote']; method: CloneMethod; runs: CloneRun[] }[] {
  const out: { remote: CloneRun['remote']; method: CloneMethod; runs: CloneRun[] }[] = [];
  for (const x of r.clone?.runs ?? []) {
    const g = out.find((o) => o.remote === x.remote && o.method === x.method);
    if (g) g.runs.push(x);
    else out.push({ remote: x.remote, method: x.method, runs: [x] });
  }
  return out;
}

/** Median of Dits' seconds over the median of ffmpeg's; null without both. */
export function makeRatio(r: ProxyResults): { wall: number | null; cpu: number | null } {
  const m = r.make;
  if (!m) return { wall: null, cpu: null };
  const q = (a: Spread | null, b: Spread | null) => (a && b && b.median > 0 ? a.median / b.median : null);
  return { wall: q(wall(m.dits), wall(m.ffmpeg)), cpu: q(cpu(m.dits), cpu(m.ffmpeg)) };
}

export function proxyVerdicts(r: ProxyResults): Verdict[] {
  const v: Verdict[] = [];
  const T = PROXY_TARGETS;
  const missing = (figure: ProxyFigure, subject: string, unit: string, target: string) => r.asked.includes(figure) && v.push({ issue: 16, figure: PROXY_FIGURE_NAMES[figure], subject, value: null, unit, target, pass: null });

  const cloneTarget = `<= ${T.cloneShare * 100}%`;
  if (r.clone) {
    for (const g of cloneGroups(r)) {
      const share = spread(g.runs.map((x) => x.bytes)).median / r.clone.originalBytes;
      v.push({ issue: 16, figure: PROXY_FIGURE_NAMES.clone, subject: `${g.remote}, ${g.method}`, value: round(share * 100, 2), unit: '%', target: cloneTarget, pass: share <= T.cloneShare });
    }
  } else missing('clone', 'downloaded / originals', '%', cloneTarget);

  const mr = makeRatio(r);
  const makeTarget = `<= ${T.makeRatio}x`;
  if (mr.wall !== null) v.push({ issue: 16, figure: PROXY_FIGURE_NAMES.make, subject: 'dits / ffmpeg CLI, wall seconds', value: mr.wall, unit: 'x', target: makeTarget, pass: mr.wall <= T.makeRatio });
  else missing('make', 'dits / ffmpeg CLI, wall seconds', 'x', makeTarget);

  const switchTarget = `< ${T.switchSeconds} s`;
  if (r.switchFiles) {
    for (const [dir, runs] of [['to proxy', r.switchFiles.toProxy], ['to original', r.switchFiles.toOriginal]] as const) {
      const s = wall(runs);
      v.push({ issue: 16, figure: `${PROXY_FIGURE_NAMES.switchFiles} (10 x ${formatBytes(r.switchFiles.fileBytes)})`, subject: dir, value: s ? round(s.median, 2) : null, unit: 's', target: switchTarget, pass: s ? s.median < T.switchSeconds : null });
    }
  } else missing('switchFiles', 'to proxy and back', 's', switchTarget);

  const workerTarget = `< ${formatBytes(T.workerBytes)}`;
  if (r.worker?.runs.length) {
    const m = spread(r.worker.runs.map((x) => x.memory.peakSumRssBytes)).median;
    v.push({ issue: 16, figure: `${PROXY_FIGURE_NAMES.worker} (${formatBytes(r.worker.sourceBytes)})`, subject: 'worker tree without ffmpeg, peak RSS', value: m, unit: 'B', target: workerTarget, pass: m < T.workerBytes });
  } else missing('worker', 'worker tree without ffmpeg, peak RSS', 'B', workerTarget);

  const statusTarget = `<= ${T.statusRatio}x`;
  const so = sp(r.status?.original ?? []);
  const spx = sp(r.status?.proxy ?? []);
  if (r.status && so && spx && so.median > 0) {
    const x = spx.median / so.median;
    v.push({ issue: 16, figure: `${PROXY_FIGURE_NAMES.status} (${r.status.files} files)`, subject: 'proxy / original', value: x, unit: 'x', target: statusTarget, pass: x <= T.statusRatio });
  } else missing('status', 'proxy / original', 'x', statusTarget);
  return v;
}

const sx = (s: Spread | null) => (s ? `${s.median.toFixed(2)} s (${s.min.toFixed(2)}-${s.max.toFixed(2)}, ${noisePercent(s).toFixed(0)}%)` : '-');
const msx = (s: Spread | null) => (s ? `${(s.median * 1000).toFixed(1)} ms (${(s.min * 1000).toFixed(1)}-${(s.max * 1000).toFixed(1)})` : '-');

export function formatProxyReport(r: ProxyResults, verdicts: readonly Verdict[], runs: number): string {
  const out: string[] = [];
  const find = (prefix: string, subject: string) => verdicts.find((x) => x.figure.startsWith(prefix) && x.subject.startsWith(subject));
  const why = (f: ProxyFigure) => r.notMeasured.find((x) => x.figure === f)?.why;
  const notMeasured = (f: ProxyFigure) => (r.asked.includes(f) ? `${PROXY_FIGURE_NAMES[f]}: not measured: ${why(f) ?? 'no result'}` : `${PROXY_FIGURE_NAMES[f]}: not asked for (--proxy-figures)`);
  out.push(`Issue 16, proxies. Median of ${runs} run(s) with (min-max, spread); CPU = user + sys of the command and its children (/usr/bin/time).`);
  out.push('');

  if (r.clone) {
    const c = r.clone;
    const rows = cloneGroups(r).map((g) => {
      const b = spread(g.runs.map((x) => x.bytes));
      const vd = verdicts.find((x) => x.figure === PROXY_FIGURE_NAMES.clone && x.subject === `${g.remote}, ${g.method}`);
      return [`${g.remote}, ${g.method}`, g.runs[0]!.measure, `${b.median} B (${formatBytes(b.median)})`, `${((b.median / c.originalBytes) * 100).toFixed(2)}%`, sx(sp(g.runs.map((x) => x.seconds))), vd?.target ?? '', verdictWord(vd?.pass ?? null)];
    });
    out.push(`${PROXY_FIGURE_NAMES.clone}: ${c.files} clips, ${formatBytes(c.originalBytes)} of originals, ${formatBytes(c.proxyBytes)} of proxies (${((c.proxyBytes / c.originalBytes) * 100).toFixed(2)}%)`);
    out.push(formatTable(['remote, way', 'bytes are', 'downloaded', 'of originals', 'time', 'target', 'verdict'], rows));
    for (const n of r.notMeasured) if (n.figure === 'clone') out.push(`not measured: ${n.why}`);
  } else out.push(notMeasured('clone'));
  out.push('');

  if (r.make) {
    const m = r.make;
    const mr = makeRatio(r);
    const vd = find(PROXY_FIGURE_NAMES.make, 'dits');
    out.push(`${PROXY_FIGURE_NAMES.make} (${formatBytes(m.clipBytes)}, kinds made: ${m.kinds}) against the ffmpeg command line; A/B alternating; the Dits side also probes, checks fidelity and stores the proxy`);
    out.push(
      formatTable(['command', 'wall', 'CPU', 'ratio (wall)', 'ratio (CPU)', 'target', 'verdict'], [
        ['ffmpeg (same arguments)', sx(wall(m.ffmpeg)), sx(cpu(m.ffmpeg)), '1.00x', '1.00x', '', ''],
        ['git dits proxy make', sx(wall(m.dits)), sx(cpu(m.dits)), mr.wall === null ? '-' : `${mr.wall.toFixed(2)}x`, mr.cpu === null ? '-' : `${mr.cpu.toFixed(2)}x`, vd?.target ?? '', verdictWord(vd?.pass ?? null)],
      ]),
    );
    const wf = wall(m.ffmpeg);
    const wd = wall(m.dits);
    if (wf && wd && Math.max(noisePercent(wf), noisePercent(wd)) > 20) {
      out.push(`the wall times spread by ${noisePercent(wf).toFixed(0)}% (ffmpeg) and ${noisePercent(wd).toFixed(0)}% (Dits) here (a loaded machine): the CPU ratio is the steadier figure`);
    }
    if (m.ditsBreakdown.length) {
      const med = (k: 'encode' | 'otherTools' | 'rest') => spread(m.ditsBreakdown.map((b) => b[k])).median.toFixed(2);
      out.push(`inside git dits proxy make (medians, wall): the encode ${med('encode')} s, other ffmpeg/ffprobe calls ${med('otherTools')} s, the rest (start-up, hashing the source, storing the proxy) ${med('rest')} s`);
    }
    out.push(`reference arguments (${m.reference}${m.builtMatchesDits === null ? '' : m.builtMatchesDits ? '; the same as buildProxyEncodeArgs builds' : '; NOT what buildProxyEncodeArgs builds by default'}): ffmpeg ${m.referenceArgs.join(' ')}`);
  } else out.push(notMeasured('make'));
  out.push('');

  if (r.switchFiles) {
    const s = r.switchFiles;
    const vp = find(PROXY_FIGURE_NAMES.switchFiles, 'to proxy');
    const vo = find(PROXY_FIGURE_NAMES.switchFiles, 'to original');
    out.push(`${PROXY_FIGURE_NAMES.switchFiles}: 10 files of ${formatBytes(s.fileBytes)} (the issue: 1 GiB), proxies ${formatBytes(s.proxyBytes)} in all; git dits checkout --mode proxy|original media, both versions local`);
    out.push(
      formatTable(['direction', 'wall', 'CPU', 'target', 'verdict'], [
        ['to proxy', sx(wall(s.toProxy)), sx(cpu(s.toProxy)), vp?.target ?? '', verdictWord(vp?.pass ?? null)],
        ['to original', sx(wall(s.toOriginal)), sx(cpu(s.toOriginal)), vo?.target ?? '', verdictWord(vo?.pass ?? null)],
      ]),
    );
  } else out.push(notMeasured('switchFiles'));
  out.push('');

  if (r.worker?.runs.length) {
    const w = r.worker;
    const vd = find(PROXY_FIGURE_NAMES.worker, 'worker');
    const rows = w.runs.map((x, i) => [`run ${i + 1}`, formatBytes(x.memory.peakSumRssBytes), `${formatBytes(x.memory.peakSingleRssBytes)} (${x.memory.peakSingleName})`, String(x.memory.maxProcesses), x.memory.excluded ? `${formatBytes(x.memory.excluded.peakSumRssBytes)} (${x.memory.excluded.names.join(',')})` : '-', `${x.seconds.toFixed(1)} s`, i === 0 ? vd?.target ?? '' : '', i === 0 ? verdictWord(vd?.pass ?? null) : '']);
    out.push(`${PROXY_FIGURE_NAMES.worker}: ${formatBytes(w.sourceBytes)} source; VmRSS summed over the worker's process tree, ffmpeg apart; verdict on the median`);
    out.push(formatTable(['run', 'tree without ffmpeg', 'largest process', 'processes', 'ffmpeg (reported)', 'job time (2 s polls)', 'target', 'verdict'], rows));
  } else out.push(notMeasured('worker'));
  out.push('');

  if (r.status) {
    const s = r.status;
    const vd = find(PROXY_FIGURE_NAMES.status, 'proxy');
    out.push(`${PROXY_FIGURE_NAMES.status}: ${s.files} files, git status --porcelain (index refreshed first; 20 calls per mode per run)`);
    out.push(
      formatTable(['mode', 'time', 'ratio', 'target', 'verdict'], [
        ['original', msx(sp(s.original)), '1.00x', '', ''],
        ['proxy', msx(sp(s.proxy)), vd?.value == null ? '-' : `${vd.value.toFixed(2)}x`, vd?.target ?? '', verdictWord(vd?.pass ?? null)],
      ]),
    );
  } else out.push(notMeasured('status'));
  for (const n of r.notes) out.push(`note: ${n}`);
  return out.join('\n');
}
