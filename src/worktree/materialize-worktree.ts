/**
 * Turning pointer files in the working tree into the real files, then refreshing the
 * index's cached stat data so `git status` stays clean without re-running the clean filter.
 * A file is only replaced while it still holds exactly the pointer Git wrote (nothing the
 * user changed is overwritten), and only with content that verified.
 */
import fs from 'node:fs';
import path from 'node:path';
import { blobOid } from '../git/cat-file.js';
import { runGit } from '../git/exec.js';
import { updateIndexStat } from '../git/index-file.js';
import type { RepoPaths } from '../git/repo.js';
import { MAX_POINTER_SIZE, parsePointer, type Pointer } from '../manifest/pointer.js';
import type { ChunkStore } from '../store/chunk-store.js';
import { contentErrorFor, materializeFile } from '../store/materialize.js';
import { linkWrittenFile } from './worktree-links.js';

export interface MaterializeReport {
  written: string[];
  /** Paths whose content could not be written, with the reason (user-facing). */
  failed: { path: string; error: unknown }[];
  bytes: number;
}

/** The pointer a working-tree file holds, or null if it holds anything else. */
export function readWorktreePointer(file: string): { pointer: Pointer; bytes: Buffer } | null {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(file);
  } catch {
    return null;
  }
  if (!st.isFile() || st.size > MAX_POINTER_SIZE) return null;
  const bytes = fs.readFileSync(file);
  const pointer = parsePointer(bytes);
  return pointer ? { pointer, bytes } : null;
}

export async function materializePaths(
  repo: RepoPaths,
  store: ChunkStore,
  relPaths: string[],
  opts: {
    onProgress?: (doneBytes: number, totalBytes: number) => void;
    /** Files already written while fetching (remote-fetch.ts); used ones are removed from the map. */
    prepared?: Map<string, { tmp: string; pointer: Pointer }>;
    /**
     * Gives each prepared file a hard link in .git/dits/wt (worktree-links.ts): its chunks
     * are not kept in the store, and the next checkout reuses them from there.
     */
    linkPrepared?: boolean;
    /** Files the filter process wrote early (early-write.ts); used ones are removed from the map. */
    early?: Map<string, { tmp: string; pointer: Pointer }>;
  } = {},
): Promise<MaterializeReport> {
  const report: MaterializeReport = { written: [], failed: [], bytes: 0 };
  const work: { rel: string; file: string; pointer: Pointer; expectedOid: string }[] = [];
  let total = 0;
  for (const rel of relPaths) {
    const file = path.join(repo.workTree, rel);
    const wp = readWorktreePointer(file);
    if (!wp) continue;
    work.push({ rel, file, pointer: wp.pointer, expectedOid: await blobOid(wp.bytes, repo.hashAlgo) });
    total += wp.pointer.size;
  }
  const updates: { path: string; stat: fs.BigIntStats; expectedOid: string }[] = [];
  let before = 0;
  for (const w of work) {
    try {
      const fetched = opts.prepared?.get(w.file);
      const ready = fetched ?? opts.early?.get(w.file);
      const usable = ready && ready.pointer.manifest === w.pointer.manifest && ready.pointer.oid === w.pointer.oid;
      if (usable) {
        if (fetched) {
          opts.prepared!.delete(w.file);
          if (opts.linkPrepared) linkWrittenFile(store, w.pointer.manifest, ready.tmp);
        } else opts.early!.delete(w.file);
      }
      const stat = await materializeFile(store, w.pointer, w.file, {
        onProgress: (b) => opts.onProgress?.(before + b, total),
        ...(usable ? { prepared: ready.tmp } : {}),
      });
      updates.push({ path: w.rel, stat, expectedOid: w.expectedOid });
      report.written.push(w.rel);
      report.bytes += w.pointer.size;
    } catch (err) {
      report.failed.push({ path: w.rel, error: contentErrorFor(w.rel, err) });
    }
    before += w.pointer.size;
  }
  if (updates.length > 0) await refreshIndex(repo, updates);
  return report;
}

/** Records the new files' stat data in the index (falls back to git's own refresh). */
export async function refreshIndex(repo: RepoPaths, updates: { path: string; stat: fs.BigIntStats; expectedOid: string }[]): Promise<void> {
  try {
    await updateIndexStat(repo.gitDir, updates, { hashAlgo: repo.hashAlgo, worktree: repo.workTree });
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code !== 'index-unsupported') throw err;
    // Split or sparse index: Dits does not write those itself; git does the refresh.
    await refreshThroughGit(repo, updates);
  }
}

/**
 * The refresh for an index Dits does not edit. `git update-index --refresh` alone is not
 * enough: git takes an entry whose cached size differs from the file's (the pointer's 184
 * bytes against the real file's) as modified without looking at the content, so the file
 * would show as modified for good. Each entry that still holds the pointer's blob is
 * re-added with no stat data (size 0), which makes git compare the content through the
 * clean filter once (the pointer comes back, equal) and record the file's stat data.
 */
async function refreshThroughGit(repo: RepoPaths, updates: { path: string; expectedOid: string }[]): Promise<void> {
  const opts = { cwd: repo.workTree, allowFail: true };
  const want = new Map(updates.map((u) => [u.path, u.expectedOid]));
  const ls = await runGit(['--literal-pathspecs', 'ls-files', '-s', '-z', '--', ...want.keys()], opts);
  const lines: string[] = [];
  for (const rec of ls.stdout.toString('utf8').split('\0')) {
    // "<mode> <oid> <stage>\t<path>": stage 0 entries whose blob is still the pointer's
    const m = /^(\d+) ([0-9a-f]+) 0\t(.*)$/s.exec(rec);
    if (m && want.get(m[3]!) === m[2]) lines.push(`${m[1]} ${m[2]}\t${m[3]}\0`);
  }
  if (lines.length > 0) await runGit(['update-index', '-z', '--index-info'], { ...opts, input: lines.join('') });
  await runGit(['update-index', '-q', '--refresh'], opts);
}
