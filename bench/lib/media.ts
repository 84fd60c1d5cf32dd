/**
 * Issue 4's figures: new bytes stored per media edit by Dits (media-aware, and plain
 * FastCDC with `dits.mediaAware=false`), git-lfs and restic; ingest throughput of each clip
 * with and without media awareness; peak memory of `git dits inspect` on a long PCM clip.
 *
 * Every edit is measured against a store holding only the original: the repository (or
 * restic repository) with the original committed is copied, and the edit is added to the
 * copy. git-lfs stores whole files, so one repository takes the edits in turn.
 */
import fs from 'node:fs';
import path from 'node:path';
import { run as runProcess } from './exec.js';
import { treeBytes, warmFile } from './corpus.js';
import { EDITS, type MediaClip, type MediaEdit, type MediaFormat } from './media-corpus.js';
import { megabytesPerSecond } from './units.js';
import type { Sandbox } from './sandbox.js';
import type { TimedRun, MemoryRun } from './core.js';

export type MediaTool = 'dits' | 'dits (plain FastCDC)' | 'git-lfs' | 'restic';

export interface MediaClipResults {
  format: MediaFormat;
  bytes: number;
  durationSeconds: number;
  editSeconds: number;
  appendedBytes: number;
  editBytes: Record<string, number>;
  /** newBytes[edit][tool] = one number per run. */
  newBytes: Partial<Record<MediaEdit, Partial<Record<MediaTool, number[]>>>>;
  /** `git dits add` of the original into an empty store. */
  ingest: Partial<Record<'dits' | 'dits (plain FastCDC)', TimedRun[]>>;
}

export interface MediaResults {
  clips: MediaClipResults[];
  inspect?: { seconds: number; bytes: number; runs: MemoryRun[] };
  skipped: string[];
}

export interface MediaOptions {
  runs: number;
  memoryIntervalMs: number;
  longClip?: { file: string; seconds: number };
}

const POINTER_LIMIT = 4096;

async function sync(sb: Sandbox): Promise<void> {
  await runProcess('sync', [], { cwd: sb.dir, env: sb.env });
}

function place(src: string, dir: string, name: string): void {
  const dst = path.join(dir, name);
  fs.rmSync(dst, { force: true });
  fs.linkSync(src, dst);
}

async function copyTree(sb: Sandbox, from: string, to: string): Promise<void> {
  sb.remove(to);
  await runProcess('cp', ['-a', from, to], { cwd: sb.dir, env: sb.env });
}

async function ditsRepo(sb: Sandbox, name: string, pattern: string, mediaAware: boolean): Promise<string> {
  const dir = sb.freshDir(name);
  await sb.run('git', ['init', '-q', '.'], dir);
  if (!mediaAware) await sb.run('git', ['config', 'dits.mediaAware', 'false'], dir);
  await sb.run('git', ['dits', 'init'], dir);
  await sb.run('git', ['dits', 'track', pattern], dir);
  await sb.run('git', ['add', '.gitattributes'], dir);
  await sb.run('git', ['commit', '-q', '-m', 'attributes'], dir);
  return dir;
}

async function commitFile(sb: Sandbox, repo: string, name: string, viaDitsAdd: boolean): Promise<number> {
  const out = await sb.run('git', viaDitsAdd ? ['dits', 'add', name] : ['add', name], repo);
  const staged = Number((await sb.run('git', ['cat-file', '-s', `:${name}`], repo)).stdout.trim());
  if (staged > POINTER_LIMIT) throw new Error(`git staged ${staged} bytes for ${name} in ${repo}; the filter did not run`);
  await sb.run('git', ['commit', '-q', '-m', name], repo);
  return out.seconds;
}

export async function runMediaBench(clips: readonly MediaClip[], opts: MediaOptions, deps: { sandbox: Sandbox; log: (l: string) => void }): Promise<MediaResults> {
  const { sandbox: sb, log } = deps;
  const results: MediaResults = { clips: [], skipped: [] };
  const haveLfs = await sb.run('git', ['lfs', 'version'], sb.dir).then(() => true, () => false);
  const haveRestic = await sb.run('restic', ['version'], sb.dir).then(() => true, () => false);
  if (!haveLfs) results.skipped.push('git-lfs not installed');
  if (!haveRestic) results.skipped.push('restic not installed');
  for (const clip of clips) {
    const ext = path.extname(clip.original);
    const name = `clip${ext}`;
    const bytes = fs.statSync(clip.original).size;
    const r: MediaClipResults = {
      format: clip.format,
      bytes,
      durationSeconds: clip.durationSeconds,
      editSeconds: clip.editSeconds,
      appendedBytes: clip.appendedBytes,
      editBytes: Object.fromEntries(EDITS.map((e) => [e, fs.statSync(clip.edits[e]).size])),
      newBytes: {},
      ingest: {},
    };
    results.clips.push(r);
    const push = (edit: MediaEdit, tool: MediaTool, n: number) => {
      ((r.newBytes[edit] ??= {})[tool] ??= []).push(n);
    };
    for (let run = 0; run < opts.runs; run++) {
      for (const [tool, aware] of [['dits', true], ['dits (plain FastCDC)', false]] as const) {
        const base = await ditsRepo(sb, 'media-base', `*${ext}`, aware);
        place(clip.original, base, name);
        await sync(sb);
        warmFile(clip.original);
        const seconds = await commitFile(sb, base, name, true);
        const ingest: TimedRun = { bytes, seconds, mbps: megabytesPerSecond(bytes, seconds) };
        (r.ingest[tool] ??= []).push(ingest);
        log(`  ${clip.format} ${tool} ingest run ${run + 1}: ${ingest.mbps.toFixed(0)} MB/s`);
        // The working file is not needed in the copies (it is replaced by each edit).
        fs.rmSync(path.join(base, name));
        const stored = treeBytes(path.join(base, '.git', 'dits'));
        const work = path.join(sb.dir, 'media-edit');
        for (const edit of EDITS) {
          await copyTree(sb, base, work);
          place(clip.edits[edit], work, name);
          await commitFile(sb, work, name, false);
          const n = treeBytes(path.join(work, '.git', 'dits')) - stored;
          push(edit, tool, n);
          log(`  ${clip.format} ${tool} ${edit}: ${n} new bytes`);
        }
        sb.remove(work);
        sb.remove(base);
      }
      if (haveLfs) {
        const repo = sb.freshDir('media-lfs');
        await sb.run('git', ['init', '-q', '.'], repo);
        await sb.run('git', ['lfs', 'install', '--local'], repo);
        await sb.run('git', ['lfs', 'track', `*${ext}`], repo);
        place(clip.original, repo, name);
        await commitFile(sb, repo, name, false);
        const objects = path.join(repo, '.git', 'lfs', 'objects');
        for (const edit of EDITS) {
          const before = treeBytes(objects);
          place(clip.edits[edit], repo, name);
          await commitFile(sb, repo, name, false);
          push(edit, 'git-lfs', treeBytes(objects) - before);
        }
        sb.remove(repo);
        log(`  ${clip.format} git-lfs run ${run + 1} done`);
      }
      if (haveRestic) {
        const root = sb.freshDir('media-restic');
        const env = { RESTIC_REPOSITORY: path.join(root, 'repo'), RESTIC_PASSWORD: 'bench-not-secret' };
        const src = path.join(root, 'src');
        fs.mkdirSync(src);
        await sb.run('restic', ['init', '--quiet'], root, { env });
        place(clip.original, src, name);
        await sb.run('restic', ['backup', '--quiet', src], root, { env });
        const stored = treeBytes(path.join(root, 'repo'));
        for (const edit of EDITS) {
          const copy = path.join(root, 'repo-edit');
          await copyTree(sb, path.join(root, 'repo'), copy);
          place(clip.edits[edit], src, name);
          await sb.run('restic', ['backup', '--quiet', src], root, { env: { ...env, RESTIC_REPOSITORY: copy } });
          push(edit, 'restic', treeBytes(copy) - stored);
          sb.remove(copy);
        }
        sb.remove(root);
        log(`  ${clip.format} restic run ${run + 1} done`);
      }
    }
  }
  if (opts.longClip) {
    const repo = await ditsRepo(sb, 'inspect', '*.mov', true);
    place(opts.longClip.file, repo, 'long.mov');
    const runs: MemoryRun[] = [];
    const bytes = fs.statSync(opts.longClip.file).size;
    for (let i = 0; i < opts.runs; i++) {
      warmFile(opts.longClip.file);
      const out = await sb.run('git', ['dits', 'inspect', '--json', 'long.mov'], repo, { memoryIntervalMs: opts.memoryIntervalMs });
      runs.push({ bytes, seconds: out.seconds, mbps: megabytesPerSecond(bytes, out.seconds), memory: out.memory! });
      log(`  inspect ${opts.longClip.seconds} s PCM clip run ${i + 1}: peak ${(out.memory!.peakSumRssBytes / 2 ** 20).toFixed(0)} MiB, ${out.seconds.toFixed(2)} s`);
    }
    results.inspect = { seconds: opts.longClip.seconds, bytes, runs };
    sb.remove(repo);
  }
  return results;
}
