import fs from 'node:fs';
import { DitsUserError } from '../../errors.js';
import type { RepoPaths } from '../../git/repo.js';
import type { Manifest } from '../../manifest/manifest.js';
import type { ChunkStore } from '../../store/chunk-store.js';
import { diffStructures } from '../../media/format-structure.js';
import type { MediaStructure } from '../../media/media-structure.js';
import { formatBytes, out, type CliContext } from '../context.js';
import type { Command } from '../main.js';
import { describeTagChanges, identifyVersion, openRepoAndStore, type Version } from '../version-summary.js';

type Side = Version | null;

async function readSide(cwd: string, file: string, hex: string | undefined, repo: RepoPaths | null, store: ChunkStore | null): Promise<Side> {
  if (file === '/dev/null') return null;
  return identifyVersion(cwd, file, { repo, store, blobHex: hex });
}

/** Lines summarising what changed between two versions (null: the side does not exist), in media terms. */
export function describeChange(a: Side, b: Side): string[] {
  const lines: string[] = [];
  const rawSize = (s: Side): number | null => (s === null ? null : s.size);
  const size = (s: Side): string => (s === null ? '(none)' : `${formatBytes(s.size)} (${s.size} bytes)`);
  if (rawSize(a) !== rawSize(b)) {
    const delta = (rawSize(b) ?? 0) - (rawSize(a) ?? 0);
    lines.push(`size: ${size(a)} -> ${size(b)} (${delta >= 0 ? '+' : '-'}${formatBytes(Math.abs(delta))})`);
  } else lines.push(`size: ${size(b)} (unchanged)`);
  const id = (s: Side): string =>
    s === null ? '(none)' : s.damage !== undefined ? `damaged pointer (${s.damage})` : s.pointer ? s.pointer.oid.slice(0, 16) : `${s.fileId?.slice(0, 16) ?? 'not computed'} (not yet added)`;
  lines.push(`file id: ${id(a)} -> ${id(b)}`);
  const manifestId = (s: Side): string | undefined => s?.pointer?.manifest.slice(0, 16);
  if (manifestId(a) !== manifestId(b)) lines.push(`manifest id: ${manifestId(a) ?? '(none)'} -> ${manifestId(b) ?? '(none)'}`);
  const am = a?.manifest ?? null;
  const bm = b?.manifest ?? null;
  if (am && bm) {
    const old = am.distinctIds();
    let reusedBytes = 0;
    let reused = 0;
    for (const c of bm.chunks()) {
      if (old.has(c.id)) {
        reused++;
        reusedBytes += c.length;
      }
    }
    const share = bm.header.size ? (100 * reusedBytes) / bm.header.size : 100;
    lines.push(`chunks: ${am.chunkCount} -> ${bm.chunkCount}; ${reused} reused (${share.toFixed(1)}% of the new version's bytes), ${formatBytes(bm.header.size - reusedBytes)} new`);
  } else if (b?.pointer && !bm) lines.push('chunks: content not in the local store');
  const media = (m: Manifest | null): MediaStructure | undefined => (m?.header.media as unknown as MediaStructure | null) ?? undefined;
  if (am || bm) lines.push(...diffStructures(media(am), media(bm)));
  lines.push(...describeTagChanges(a === null ? null : a.tags, b === null ? null : b.tags));
  return lines;
}

/**
 * diff.dits.command: git runs it as `<path> <old-file> <old-hex> <old-mode> <new-file>
 * <new-hex> <new-mode>` (git(1), GIT_EXTERNAL_DIFF) and shows what it prints.
 */
const diffDriver: Command = {
  summary: 'External diff for tracked files (run by git diff)',
  usage: 'git dits diff-driver <path> <old-file> <old-hex> <old-mode> <new-file> <new-hex> <new-mode>',
  async run(args, ctx: CliContext) {
    const [name, oldFile, oldHex, , newFile, newHex] = args;
    if (!name || !oldFile || !newFile || name.startsWith('-')) {
      throw new DitsUserError('bad-usage', 'diff-driver takes the 7 arguments git passes to an external diff', { hint: 'git runs it for diff=dits files; see `git dits install`', exitCode: 2 });
    }
    const missing = [oldFile, newFile].find((f) => f !== '/dev/null' && !fs.existsSync(f));
    if (missing !== undefined) throw new DitsUserError('no-such-file', `diff-driver: ${missing}: no such file`, { hint: 'git runs it with the two versions it wrote', exitCode: 2 });
    const { repo, store } = await openRepoAndStore(ctx.cwd);
    try {
      const a = await readSide(ctx.cwd, oldFile, oldHex, repo, store);
      const b = await readSide(ctx.cwd, newFile, newHex, repo, store);
      out(ctx, `diff --git a/${name} b/${name}`);
      out(ctx, `--- ${oldFile === '/dev/null' ? '/dev/null' : `a/${name}`}`);
      out(ctx, `+++ ${newFile === '/dev/null' ? '/dev/null' : `b/${name}`}`);
      for (const l of describeChange(a, b)) out(ctx, `  ${l}`);
    } finally {
      store?.close();
    }
    return 0;
  },
};

export const commands = { 'diff-driver': diffDriver };
