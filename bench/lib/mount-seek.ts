/**
 * Issue 18's seek figure: ffmpeg seeking (`-ss T -i FILE -frames:v 1 -f framemd5 -`) at N
 * random times in a clip through a mount of the local store, against the same command on
 * the original file. Each seek runs twice on each, mount / file / file / mount, and the
 * faster of each pair counts, so the machine's noise falls on both alike; the frames must
 * be identical (framemd5, the same on both runs), and what the mount adds to each seek is
 * the difference of the two.
 *
 * Why a difference: a seek is a new ffmpeg process that opens the container, reads its
 * index and decodes one frame (about 0.2-0.4 s for a 1080p ProRes frame on the 2-core
 * machines measured, on the original file from the page cache); the mount can only add
 * to that. The clip is intra-only (ProRes) so that a seek decodes one frame, not a GOP.
 */
import fs from 'node:fs';
import path from 'node:path';
import { run as runProcess } from './exec.js';
import { warmFile, warmTree } from './corpus.js';
import { mountAt } from './mount.js';
import type { Sandbox } from './sandbox.js';
import type { Verdict } from './report.js';
import { spread } from './stats.js';

export interface SeekRun {
  /** seconds into the clip */
  at: number;
  mountMs: number;
  diskMs: number;
  /** the decoded frame's md5, through the mount and from the file */
  mountMd5: string;
  diskMd5: string;
}

export interface SeekResults {
  clipBytes: number;
  durationSeconds: number;
  seeks: SeekRun[];
  skipped: string[];
}

export const SEEK_TARGETS = { addedMs: 100 };

/** A reproducible pseudo-random sequence in [0, 1). */
function seeded(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}

async function seekOnce(sb: Sandbox, file: string, at: number): Promise<{ ms: number; md5: string }> {
  const r = await runProcess('ffmpeg', ['-hide_banner', '-v', 'error', '-ss', at.toFixed(3), '-i', file, '-map', '0:v:0', '-frames:v', '1', '-f', 'framemd5', '-'], { cwd: sb.dir, env: sb.env });
  const line = r.stdout.trim().split('\n').filter((l) => !l.startsWith('#')).pop() ?? '';
  const md5 = line.split(',').pop()?.trim() ?? '';
  if (!/^[0-9a-f]{32}$/.test(md5)) throw new Error(`ffmpeg -ss ${at} on ${file} gave no frame: ${r.stdout.slice(-300)} ${r.stderr.slice(-300)}`);
  return { ms: r.seconds * 1000, md5 };
}

export async function runSeekBench(clip: string, opts: { seeks: number }, deps: { sandbox: Sandbox; log: (line: string) => void }): Promise<SeekResults> {
  const { sandbox: sb, log } = deps;
  const res: SeekResults = { clipBytes: fs.statSync(clip).size, durationSeconds: 0, seeks: [], skipped: [] };
  if (!fs.existsSync('/dev/fuse')) {
    res.skipped.push('/dev/fuse does not exist: no seek figure');
    return res;
  }
  const probe = await runProcess('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', clip], { cwd: sb.dir, env: sb.env });
  res.durationSeconds = Number(probe.stdout.trim());
  const name = path.basename(clip);
  const repo = sb.freshDir('mount-seek');
  await sb.run('git', ['init', '-q'], repo);
  await sb.run('git-dits', ['init'], repo);
  await sb.run('git-dits', ['track', `*${path.extname(name)}`], repo);
  fs.linkSync(clip, path.join(repo, name));
  await sb.run('git-dits', ['add', name], repo);
  await sb.run('git', ['commit', '-q', '-m', 'clip'], repo);
  warmTree(path.join(repo, '.git', 'dits'));
  warmFile(clip);
  const mnt = path.join(sb.dir, 'mnt-seek');
  const m = await mountAt(sb, repo, mnt, []);
  try {
    const rnd = seeded(18);
    const last = Math.max(0, res.durationSeconds - 0.2);
    for (let i = 0; i < opts.seeks; i++) {
      const at = Math.round(rnd() * last * 1000) / 1000;
      // twice each, A B B A, the faster of each kept: one process start caught by the
      // machine's noise does not count against the mount (or the file)
      const a1 = await seekOnce(sb, path.join(mnt, name), at);
      const d1 = await seekOnce(sb, clip, at);
      const d2 = await seekOnce(sb, clip, at);
      const a2 = await seekOnce(sb, path.join(mnt, name), at);
      const b = a1.ms <= a2.ms ? a1 : a2;
      const d = d1.ms <= d2.ms ? d1 : d2;
      const md5s = new Set([a1.md5, a2.md5]);
      res.seeks.push({ at, mountMs: b.ms, diskMs: d.ms, mountMd5: md5s.size === 1 ? b.md5 : 'unstable', diskMd5: d1.md5 === d2.md5 ? d.md5 : 'unstable' });
      if ((i + 1) % 10 === 0) log(`  ffmpeg seeks: ${i + 1}/${opts.seeks} (last: mount ${b.ms.toFixed(0)} ms, file ${d.ms.toFixed(0)} ms, ${b.md5 === d.md5 ? 'same frame' : 'DIFFERENT FRAME'})`);
    }
  } finally {
    await m.stop();
  }
  return res;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

export function seekVerdicts(r: SeekResults): Verdict[] {
  if (r.seeks.length === 0) return [];
  const same = r.seeks.filter((s) => s.mountMd5 === s.diskMd5).length;
  const added = r.seeks.map((s) => s.mountMs - s.diskMs).sort((a, b) => a - b);
  const p95 = percentile(added, 0.95);
  return [
    { issue: 18, figure: 'ffmpeg seeks through the mount', subject: `${r.seeks.length} seeks: same frames as the file (framemd5)`, value: same, unit: 'seeks', target: `= ${r.seeks.length}`, pass: same === r.seeks.length },
    { issue: 18, figure: 'ffmpeg seeks through the mount', subject: 'time added to each seek by the mount, 95th percentile', value: Math.round(p95), unit: 'ms', target: `< ${SEEK_TARGETS.addedMs} ms`, pass: p95 < SEEK_TARGETS.addedMs },
  ];
}

export function formatSeekReport(r: SeekResults): string {
  if (r.seeks.length === 0) return `ffmpeg seeks: not measured (${r.skipped.join('; ') || 'no seeks'})`;
  const sorted = (xs: number[]): number[] => [...xs].sort((a, b) => a - b);
  const row = (label: string, xs: number[]): string => {
    const s = sorted(xs);
    return `  ${label.padEnd(34)} median ${spread(s).median.toFixed(0).padStart(5)} ms   p95 ${percentile(s, 0.95).toFixed(0).padStart(5)} ms   max ${s[s.length - 1]!.toFixed(0).padStart(5)} ms`;
  };
  const same = r.seeks.filter((s) => s.mountMd5 === s.diskMd5).length;
  return [
    `ffmpeg -ss T -i FILE -frames:v 1 -f framemd5 at ${r.seeks.length} random times in a ${(r.clipBytes / 2 ** 30).toFixed(2)} GiB clip of ${r.durationSeconds.toFixed(1)} s (each a new ffmpeg process):`,
    row('through the mount (local store)', r.seeks.map((s) => s.mountMs)),
    row('the original file (page cache)', r.seeks.map((s) => s.diskMs)),
    row('added by the mount (difference)', r.seeks.map((s) => s.mountMs - s.diskMs)),
    `  same frame as the file: ${same} of ${r.seeks.length}`,
  ].join('\n');
}
