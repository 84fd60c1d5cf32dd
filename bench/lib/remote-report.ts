/** Verdicts and tables for issue 5's figures. Pure. */
import { spread, noisePercent } from './stats.js';
import { formatBytes } from './units.js';
import { formatTable, verdictWord, type Verdict } from './report.js';
import type { RemoteResults, TransferRun } from './remote.js';

export const REMOTE_TARGETS = {
  vsRclone: 0.8,
  editPushBytes: 1_000_000,
  editPushSeconds: 3,
  requestsPerGiB: 64,
  lazyCloneSeconds: 5,
  peakMemoryBytes: 300 * 2 ** 20,
} as const;

function med(list: readonly TransferRun[], pick: (t: TransferRun) => number): number | null {
  return list.length ? spread(list.map(pick)).median : null;
}

export function remoteVerdicts(r: RemoteResults): Verdict[] {
  const v: Verdict[] = [];
  const ratio = (a: number | null, b: number | null) => (a !== null && b ? a / b : null);
  const up = ratio(med(r.push, (t) => t.mbps), med(r.rcloneUp, (t) => t.mbps));
  v.push({ issue: 5, figure: 'first push to S3', subject: 'dits / rclone copy MB/s', value: up, unit: 'x', target: `>= ${REMOTE_TARGETS.vsRclone}x`, pass: up === null ? null : up >= REMOTE_TARGETS.vsRclone });
  const eb = med(r.editPush, (t) => t.traffic.bytesUp);
  v.push({ issue: 5, figure: 'push after a 100-byte edit', subject: 'bytes sent', value: eb, unit: 'B', target: `< ${REMOTE_TARGETS.editPushBytes} B`, pass: eb === null ? null : eb < REMOTE_TARGETS.editPushBytes });
  const es = med(r.editPush, (t) => t.seconds);
  v.push({ issue: 5, figure: 'push after a 100-byte edit', subject: 'seconds', value: es === null ? null : Math.round(es * 100) / 100, unit: 's', target: `< ${REMOTE_TARGETS.editPushSeconds} s`, pass: es === null ? null : es < REMOTE_TARGETS.editPushSeconds });
  const rq = med(r.push, (t) => t.traffic.requests / (t.bytes / 2 ** 30));
  v.push({ issue: 5, figure: 'requests per GiB, first push', subject: 'dits', value: rq === null ? null : Math.round(rq), unit: 'req', target: `<= ${REMOTE_TARGETS.requestsPerGiB}`, pass: rq === null ? null : rq <= REMOTE_TARGETS.requestsPerGiB });
  const down = ratio(med(r.clone, (t) => t.mbps), med(r.rcloneDown, (t) => t.mbps));
  v.push({ issue: 5, figure: 'full clone from S3', subject: 'dits / rclone copy MB/s', value: down, unit: 'x', target: `>= ${REMOTE_TARGETS.vsRclone}x`, pass: down === null ? null : down >= REMOTE_TARGETS.vsRclone });
  const lz = med(r.lazyClone, (t) => t.seconds);
  v.push({ issue: 5, figure: 'lazy clone', subject: `${r.lazyPaths} paths x ${formatBytes(r.videoBytes)}`, value: lz === null ? null : Math.round(lz * 100) / 100, unit: 's', target: `< ${REMOTE_TARGETS.lazyCloneSeconds} s`, pass: lz === null ? null : lz < REMOTE_TARGETS.lazyCloneSeconds });
  for (const [subject, list] of [['git push', r.push], ['git clone', r.clone]] as const) {
    const m = med(list.filter((t) => t.memory), (t) => t.memory!.peakSumRssBytes);
    v.push({ issue: 5, figure: 'peak memory, push and clone', subject, value: m, unit: 'B', target: `< ${formatBytes(REMOTE_TARGETS.peakMemoryBytes)}`, pass: m === null ? null : m < REMOTE_TARGETS.peakMemoryBytes });
  }
  return v;
}

export function formatRemoteReport(r: RemoteResults, verdicts: readonly Verdict[], runs: number): string {
  const out: string[] = [`Issue 5, remote: s3rver on 127.0.0.1 behind a counting proxy (both Dits and rclone go through it). Video ${formatBytes(r.videoBytes)}; median of ${runs} run(s).`];
  const row = (name: string, list: readonly TransferRun[], throughput = true): string[] => {
    if (!list.length) return [name, '-', '-', '-', '-', '-', '-', '-', '-'];
    const s = spread(list.map((t) => t.mbps));
    const secs = spread(list.map((t) => t.seconds));
    const mem = list.some((t) => t.memory) ? formatBytes(spread(list.filter((t) => t.memory).map((t) => t.memory!.peakSumRssBytes)).median) : '';
    const noise = throughput ? s : secs;
    return [name, `${secs.median.toFixed(2)} s`, throughput ? s.median.toFixed(0) : '-', throughput ? `${s.min.toFixed(0)}..${s.max.toFixed(0)}` : `${secs.min.toFixed(2)}..${secs.max.toFixed(2)} s`, `${noisePercent(noise).toFixed(0)}%`, String(spread(list.map((t) => t.traffic.requests)).median), formatBytes(spread(list.map((t) => t.traffic.bytesUp)).median), formatBytes(spread(list.map((t) => t.traffic.bytesDown)).median), mem];
  };
  out.push(
    formatTable(
      ['operation', 'time', 'MB/s', 'min..max', 'spread', 'requests', 'sent', 'received', 'tree peak'],
      [row('dits: first git push', r.push), row('rclone copy up', r.rcloneUp), row('dits: git push after 100-byte edit', r.editPush), row('dits: git clone (full)', r.clone), row('rclone copy down', r.rcloneDown), row(`dits: git clone, lazy (${r.lazyPaths} paths)`, r.lazyClone, false)],
    ),
  );
  const rows = verdicts.map((v) => [v.figure, v.subject, v.value === null ? '-' : v.unit === 'x' ? `${v.value.toFixed(2)}x` : v.unit === 'B' && v.value > 10_000_000 ? formatBytes(v.value) : `${v.value} ${v.unit}`, v.target, verdictWord(v.pass)]);
  out.push(formatTable(['figure', 'subject', 'value', 'target', 'verdict'], rows));
  if (r.videoBytes < 2 ** 30) out.push(`note: requests per GiB are scaled from a ${formatBytes(r.videoBytes)} push; fixed per-push requests weigh more on a small file.`);
  if (r.rcloneVersion) out.push(`peer: ${r.rcloneVersion}, defaults (rclone copy)`);
  for (const s of r.skipped) out.push(`skipped: ${s}`);
  return out.join('\n');
}
