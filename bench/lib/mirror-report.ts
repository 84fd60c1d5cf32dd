/** Verdicts and tables for issue 19's mirror and push-of-a-clone figures. Pure. */
import { spread, noisePercent } from './stats.js';
import { formatBytes } from './units.js';
import { formatTable, verdictWord, type Verdict } from './report.js';
import type { CopyRun, MirrorResults } from './mirror.js';
import { MIRROR_BUCKETS } from './mirror.js';

export const MIRROR_TARGETS = {
  syncVsRclone: 0.8,
  resyncSeconds: 1,
  listsPerSide: 1,
  pushVsRclone: 0.8,
} as const;

const medMbps = (list: readonly CopyRun[]): number | null => (list.length ? spread(list.map((t) => t.mbps)).median : null);
const ratioOf = (a: number | null, b: number | null): number | null => (a !== null && b ? Math.round((a / b) * 100) / 100 : null);

/** Speed of `git dits mirror sync` over `rclone copy --disable copy` (median MB/s over median MB/s). */
export function syncRatio(r: MirrorResults): number | null {
  return ratioOf(medMbps(r.sync), medMbps(r.rcloneStream));
}

/** The same over plain `rclone copy` (a server-side copy: no bytes through rclone). */
export function syncRatioServerSide(r: MirrorResults): number | null {
  return ratioOf(medMbps(r.sync), medMbps(r.rcloneServer));
}

/**
 * Listings of `bucket` other than reads of the refs: on a store without conditional writes
 * (s3rver) a versioned object such as the refs is read from its compare-and-swap log, which
 * is itself a listing of `<prefix>/.dits-cas/...`; those are the refs read, counted apart.
 */
export function contentListings(listings: Readonly<Record<string, number>>, bucket: string): number {
  let n = 0;
  for (const [at, count] of Object.entries(listings)) if (at.startsWith(`${bucket}/`) && !at.includes('/.dits-cas/')) n += count;
  return n;
}

export function mirrorVerdicts(r: MirrorResults): Verdict[] {
  const v: Verdict[] = [];
  const sr = syncRatio(r);
  v.push({ issue: 19, figure: 'mirror sync', subject: `${formatBytes(r.contentBytes)}, dits / rclone copy --disable copy MB/s`, value: sr, unit: 'x', target: `>= ${MIRROR_TARGETS.syncVsRclone}x`, pass: sr === null ? null : sr >= MIRROR_TARGETS.syncVsRclone });
  const rs = r.resync.length ? Math.round(spread(r.resync.map((t) => t.seconds)).median * 1000) / 1000 : null;
  v.push({ issue: 19, figure: 'mirror re-sync, nothing new', subject: 'git dits mirror sync', value: rs, unit: 's', target: `< ${MIRROR_TARGETS.resyncSeconds} s`, pass: rs === null ? null : rs < MIRROR_TARGETS.resyncSeconds });
  // every run, each side: exactly one listing of its content (a side not listed at all fails too)
  const sides = [MIRROR_BUCKETS.primary, MIRROR_BUCKETS.mirror];
  const most = r.resync.length ? Math.max(...r.resync.flatMap((t) => sides.map((b) => contentListings(t.listings, b)))) : null;
  const ok = r.resync.length ? r.resync.every((t) => sides.every((b) => contentListings(t.listings, b) === MIRROR_TARGETS.listsPerSide)) : null;
  v.push({ issue: 19, figure: 'mirror re-sync, nothing new', subject: 'listings of the content per side (most in any run)', value: most, unit: '', target: `${MIRROR_TARGETS.listsPerSide} per side`, pass: ok });
  const pr = ratioOf(medMbps(r.clonePush), medMbps(r.rclonePush));
  v.push({ issue: 19, figure: "push of a clone's content to a second remote", subject: `${formatBytes(r.cloneBytes)} clone, git push / rclone copy MB/s`, value: pr, unit: 'x', target: `>= ${MIRROR_TARGETS.pushVsRclone}x`, pass: pr === null ? null : pr >= MIRROR_TARGETS.pushVsRclone });
  return v;
}

export function formatMirrorReport(r: MirrorResults, verdicts: readonly Verdict[], runs: number): string {
  const out: string[] = [`Issue 19, mirror: two s3rver buckets on loopback, ${formatBytes(r.contentBytes)} on the primary (the video, pushed); median of ${runs} run(s), alternating.`];
  const row = (name: string, list: readonly CopyRun[]): string[] => {
    if (!list.length) return [name, '-', '-', '-', '-', '-', '-'];
    const s = spread(list.map((t) => t.mbps));
    const med = (pick: (t: CopyRun) => number) => spread(list.map(pick)).median;
    return [name, `${med((t) => t.seconds).toFixed(2)} s`, s.median.toFixed(0), `${s.min.toFixed(0)}..${s.max.toFixed(0)}`, `${noisePercent(s).toFixed(0)}%`, `${med((t) => t.cpuSeconds).toFixed(2)} s`, `${med((t) => t.serverCpuSeconds).toFixed(2)} s`];
  };
  const header = ['copy', 'time', 'MB/s', 'min..max', 'spread', 'client CPU', 's3rver CPU'];
  out.push(
    formatTable(header, [
      row('git dits mirror sync', r.sync),
      row('rclone copy --disable copy (bytes through rclone)', r.rcloneStream),
      row('rclone copy (server-side copy, no bytes read)', r.rcloneServer),
    ]),
  );
  const ss = syncRatioServerSide(r);
  if (ss !== null) out.push(`mirror sync / plain rclone copy (server-side): ${ss.toFixed(2)}x (not the verdict's peer: a server-side copy cannot verify what it copies, nor cross providers)`);
  if (r.resync.length) {
    const t = spread(r.resync.map((x) => x.seconds));
    const req = spread(r.resync.map((x) => x.requests));
    out.push(`re-sync with nothing new: ${t.median.toFixed(3)} s (${t.min.toFixed(3)}..${t.max.toFixed(3)}), ${req.median} requests, listings ${JSON.stringify(r.resync[0]!.listings)} (.dits-cas/: the refs, read from their compare-and-swap log on a store without conditional writes), copied ${r.resync[0]!.copiedBytes} bytes`);
  }
  out.push(
    formatTable(['push', 'time', 'MB/s', 'min..max', 'spread', 'client CPU', 's3rver CPU'], [
        row('git push of a full clone to a second remote', r.clonePush),
        row("rclone copy of the clone's file (default: multipart, 5 MiB parts)", r.rclonePush),
        row('rclone copy --s3-upload-cutoff 5G (one streamed PUT)', r.rclonePushOnePut),
      ],
    ),
  );
  const one = ratioOf(medMbps(r.clonePush), medMbps(r.rclonePushOnePut));
  if (one !== null) out.push(`push / rclone copy in one PUT: ${one.toFixed(2)}x (not the verdict's peer, which is rclone's default upload)`);
  const rows = verdicts.map((x) => [x.figure, x.subject, x.value === null ? '-' : x.unit === 'x' ? `${x.value.toFixed(2)}x` : `${x.value}${x.unit ? ` ${x.unit}` : ''}`, x.target, verdictWord(x.pass)]);
  out.push(formatTable(['figure', 'subject', 'value', 'target', 'verdict'], rows));
  if (r.contentBytes < 2 ** 30) out.push(`note: the issue's mirror figure is for 1 GiB of content; this run's is ${formatBytes(r.contentBytes)} (--size).`);
  if (r.rcloneVersion) out.push(`peer: ${r.rcloneVersion}`);
  for (const s of r.skipped) out.push(`skipped: ${s}`);
  return out.join('\n');
}
