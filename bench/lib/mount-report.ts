/** Verdicts and tables for issue 18's figures (`git dits mount`). Pure. */
import { spread, noisePercent } from './stats.js';
import { formatBytes } from './units.js';
import { formatTable, verdictWord, type Verdict } from './report.js';
import type { MountResults, MountRun, PlainRun } from './mount.js';

export const MOUNT_TARGETS = {
  firstByteLocalMs: 50,
  firstByteRemoteMs: 150,
  localMbps: 400,
  remoteVsRclone: 0.8,
  lsSeconds: 1,
  /** memory: the RAM budget plus this */
  memoryOverBudget: 100 * 2 ** 20,
  /** the commit of a 100-byte edit in a 20 GiB file from a writable mount */
  editCommitSeconds: 2,
  editCommitNewBytes: 1_000_000,
} as const;

const med = <T>(list: readonly T[], pick: (t: T) => number): number | null => (list.length ? spread(list.map(pick)).median : null);

export function mountVerdicts(r: MountResults): Verdict[] {
  const v: Verdict[] = [];
  const round = (x: number | null, d = 1): number | null => (x === null ? null : Math.round(x * 10 ** d) / 10 ** d);
  // the first byte is judged on the big file when there is one (the issue's figure is for 20 GiB)
  const big = r.bigFirstByte;
  const fbl = round(big ? med(big.local, (t) => t) : med(r.local, (t) => t.firstByteMs));
  const fbSize = formatBytes(big ? big.fileBytes : r.fileBytes);
  v.push({ issue: 18, figure: 'first byte', subject: `local store (${fbSize} file)`, value: fbl, unit: 'ms', target: `< ${MOUNT_TARGETS.firstByteLocalMs} ms`, pass: fbl === null ? null : fbl < MOUNT_TARGETS.firstByteLocalMs });
  const fbr = round(big ? med(big.remote, (t) => t) : med(r.remote, (t) => t.firstByteMs));
  v.push({ issue: 18, figure: 'first byte', subject: `remote (S3, lazy clone, ${fbSize} file)`, value: fbr, unit: 'ms', target: `< ${MOUNT_TARGETS.firstByteRemoteMs} ms`, pass: fbr === null ? null : fbr < MOUNT_TARGETS.firstByteRemoteMs });
  const loc = round(med(r.local, (t) => t.mbps), 0);
  v.push({ issue: 18, figure: 'sequential read', subject: 'local store, MB/s', value: loc, unit: 'MB/s', target: `>= ${MOUNT_TARGETS.localMbps} MB/s`, pass: loc === null ? null : loc >= MOUNT_TARGETS.localMbps });
  const rem = med(r.remote, (t) => t.mbps);
  const rc = med(r.rcloneCat, (t) => t.mbps);
  const ratio = rem !== null && rc ? Math.round((rem / rc) * 100) / 100 : null;
  v.push({ issue: 18, figure: 'sequential read from the remote', subject: 'mount / rclone cat MB/s', value: ratio, unit: 'x', target: `>= ${MOUNT_TARGETS.remoteVsRclone}x`, pass: ratio === null ? null : ratio >= MOUNT_TARGETS.remoteVsRclone });
  const ls = round(med(r.ls, (t) => t.seconds), 3);
  v.push({ issue: 18, figure: 'ls -lR', subject: `${r.treeFiles} files`, value: ls, unit: 's', target: `< ${MOUNT_TARGETS.lsSeconds} s`, pass: ls === null ? null : ls < MOUNT_TARGETS.lsSeconds });
  const limit = r.memoryBudgetBytes + MOUNT_TARGETS.memoryOverBudget;
  for (const [subject, list] of [['local read', r.local], ['remote read', r.remote]] as const) {
    const m = med(list, (t) => t.peakRssBytes);
    v.push({ issue: 18, figure: 'memory of the mount process', subject, value: m, unit: 'B', target: `<= ${formatBytes(limit)} (budget ${formatBytes(r.memoryBudgetBytes)} + 100 MiB)`, pass: m === null ? null : m <= limit });
  }
  const e = r.editCommit;
  if (e) {
    const size = formatBytes(e.fileBytes);
    const sec = round(med(e.commits, (t) => t.seconds), 2);
    v.push({ issue: 18, figure: 'commit of a 100-byte edit from the overlay', subject: `seconds (${size} file)`, value: sec, unit: 's', target: `< ${MOUNT_TARGETS.editCommitSeconds} s`, pass: sec === null ? null : sec < MOUNT_TARGETS.editCommitSeconds });
    const nb = round(med(e.commits, (t) => t.newBytes), 0);
    v.push({ issue: 18, figure: 'commit of a 100-byte edit from the overlay', subject: `bytes new (${size} file)`, value: nb, unit: 'B', target: '< 1 MB (1,000,000 bytes)', pass: nb === null ? null : nb < MOUNT_TARGETS.editCommitNewBytes });
  }
  return v;
}

export function formatMountReport(r: MountResults, verdicts: readonly Verdict[], runs: number): string {
  const out: string[] = [`Issue 18, mount: a ${formatBytes(r.fileBytes)} video read through \`git dits mount\` (a fresh mount each run), RAM budget ${formatBytes(r.memoryBudgetBytes)}; median of ${runs} run(s).`];
  const mrow = (name: string, list: readonly MountRun[]): string[] => {
    if (!list.length) return [name, '-', '-', '-', '-', '-', '-'];
    const s = spread(list.map((t) => t.mbps));
    return [name, `${spread(list.map((t) => t.firstByteMs)).median.toFixed(1)} ms`, s.median.toFixed(0), `${s.min.toFixed(0)}..${s.max.toFixed(0)}`, `${noisePercent(s).toFixed(0)}%`, `${spread(list.map((t) => t.mountCpuSeconds)).median.toFixed(2)} s`, formatBytes(spread(list.map((t) => t.peakRssBytes)).median)];
  };
  const prow = (name: string, list: readonly PlainRun[]): string[] => {
    if (!list.length) return [name, '-', '-', '-', '-', '-', '-'];
    const s = spread(list.map((t) => t.mbps));
    return [name, '', s.median.toFixed(0), `${s.min.toFixed(0)}..${s.max.toFixed(0)}`, `${noisePercent(s).toFixed(0)}%`, '', ''];
  };
  out.push(
    formatTable(
      ['read', 'first byte', 'MB/s', 'min..max', 'spread', 'mount CPU', 'mount peak RSS'],
      [mrow('mount, local store', r.local), prow('cat of the file on disk (page cache)', r.disk), mrow('mount, lazy clone from S3', r.remote), prow('rclone cat from S3', r.rcloneCat)],
    ),
  );
  const server = (list: readonly { serverCpuSeconds?: number }[]): number[] => list.flatMap((t) => (t.serverCpuSeconds === undefined ? [] : [t.serverCpuSeconds]));
  if (server(r.remote).length && server(r.rcloneCat).length) {
    out.push(`s3rver during the remote reads (read directly, on the same cores as the reader): ${spread(server(r.remote)).median.toFixed(2)} CPU s while the mount read, ${spread(server(r.rcloneCat)).median.toFixed(2)} s while rclone did (medians)`);
  }
  if (r.ls.length) {
    const ls = spread(r.ls.map((t) => t.seconds));
    out.push(`ls -lR of ${r.treeFiles} files through a fresh mount: ${ls.median.toFixed(3)} s (${ls.min.toFixed(3)}..${ls.max.toFixed(3)}); the mount itself took ${spread(r.ls.map((t) => t.mountSeconds)).median.toFixed(2)} s to start`);
  }
  if (r.bigFirstByte) {
    const b = r.bigFirstByte;
    const line = (list: number[]): string => (list.length ? `${spread(list).median.toFixed(1)} ms (${spread(list).min.toFixed(1)}..${spread(list).max.toFixed(1)})` : '-');
    out.push(`first byte of a ${formatBytes(b.fileBytes)} random file through a fresh mount: local store ${line(b.local)}, lazy clone from S3 ${line(b.remote)}`);
  }
  if (r.editCommit && r.editCommit.commits.length) {
    const e = r.editCommit;
    const s = spread(e.commits.map((t) => t.seconds));
    const nb = spread(e.commits.map((t) => t.newBytes)).median;
    const reported = e.commits.flatMap((t) => (t.reportedNewBytes === undefined ? [] : [t.reportedNewBytes]));
    const peer = e.readd ? `; re-adding the file (\`git add\`) ${e.readd.seconds.toFixed(2)} s, ${formatBytes(e.readd.newBytes)} new: ${(e.readd.seconds / s.median).toFixed(0)}x the time` : '';
    out.push(`commit of a 100-byte edit in a ${formatBytes(e.fileBytes)} file from a writable mount (git dits commit-mount): ${s.median.toFixed(2)} s (${s.min.toFixed(2)}..${s.max.toFixed(2)}), ${formatBytes(nb)} new in the repository${reported.length ? ` (${formatBytes(spread(reported).median)} of it new chunks)` : ''}${peer}`);
  }
  const rows = verdicts.map((v) => [v.figure, v.subject, v.value === null ? '-' : v.unit === 'x' ? `${v.value.toFixed(2)}x` : v.unit === 'B' ? formatBytes(v.value) : `${v.value} ${v.unit}`, v.target, verdictWord(v.pass)]);
  out.push(formatTable(['figure', 'subject', 'value', 'target', 'verdict'], rows));
  if (Math.max(r.fileBytes, r.bigFirstByte?.fileBytes ?? 0) < 20 * 2 ** 30) out.push(`note: the issue's first-byte figure is for a 20 GiB file; this one is ${formatBytes(r.fileBytes)} (the manifest loaded on open grows with the file: 37 bytes a chunk); --mount-first-byte-size 20G measures it.`);
  if (r.rcloneVersion) out.push(`peer: ${r.rcloneVersion}`);
  for (const s of r.skipped) out.push(`skipped: ${s}`);
  return out.join('\n');
}
