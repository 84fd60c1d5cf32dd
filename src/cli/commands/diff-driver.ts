import fs from 'node:fs';
import { findRepo, isDitsInitialised } from '../../git/repo.js';
import { runGit } from '../../git/exec.js';
import { MAX_POINTER_SIZE, parsePointer, type Pointer } from '../../manifest/pointer.js';
import { Manifest } from '../../manifest/manifest.js';
import { ChunkStore } from '../../store/chunk-store.js';
import { diffStructures } from '../../media/format-structure.js';
import type { MediaStructure } from '../../media/media-structure.js';
import { formatBytes, out, type CliContext } from '../context.js';
import type { Command } from '../main.js';
import { DitsUserError } from '../../errors.js';

interface Side {
  pointer: Pointer | null;
  rawSize: number | null;
  manifest: Manifest | null;
}

async function readSide(cwd: string, file: string, hex: string | undefined, store: ChunkStore | null): Promise<Side> {
  if (file === '/dev/null') return { pointer: null, rawSize: null, manifest: null };
  const st = fs.statSync(file);
  let pointer = st.size <= MAX_POINTER_SIZE ? parsePointer(fs.readFileSync(file)) : null;
  if (!pointer && hex && /^[0-9a-f]{40,64}$/.test(hex) && !/^0+$/.test(hex)) {
    // A working-tree file with its real content, unchanged since it was staged: git names
    // the staged blob, which is the pointer.
    const r = await runGit(['cat-file', 'blob', hex], { cwd, allowFail: true });
    if (r.exitCode === 0 && r.stdout.length <= MAX_POINTER_SIZE) pointer = parsePointer(r.stdout);
  }
  let manifest: Manifest | null = null;
  if (pointer && store) {
    try {
      manifest = Manifest.parse(store.getManifestBytes(pointer.manifest));
    } catch {
      manifest = null;
    }
  }
  return { pointer, rawSize: pointer ? pointer.size : st.size, manifest };
}

/** Lines summarising what changed between two versions, in media terms. */
export function describeChange(a: Side, b: Side): string[] {
  const lines: string[] = [];
  const size = (s: Side): string => (s.rawSize === null ? '(none)' : `${formatBytes(s.rawSize)} (${s.rawSize} bytes)`);
  if (a.rawSize !== b.rawSize) {
    const delta = (b.rawSize ?? 0) - (a.rawSize ?? 0);
    lines.push(`size: ${size(a)} -> ${size(b)} (${delta >= 0 ? '+' : '-'}${formatBytes(Math.abs(delta))})`);
  } else lines.push(`size: ${size(b)} (unchanged)`);
  const id = (s: Side): string => (s.pointer ? s.pointer.oid.slice(0, 16) : s.rawSize === null ? '(none)' : 'not yet added');
  lines.push(`file id: ${id(a)} -> ${id(b)}`);
  if (a.manifest && b.manifest) {
    const old = a.manifest.distinctIds();
    let reusedBytes = 0;
    let reused = 0;
    for (const c of b.manifest.chunks()) {
      if (old.has(c.id)) {
        reused++;
        reusedBytes += c.length;
      }
    }
    const share = b.manifest.header.size ? (100 * reusedBytes) / b.manifest.header.size : 100;
    lines.push(`chunks: ${a.manifest.chunkCount} -> ${b.manifest.chunkCount}; ${reused} reused (${share.toFixed(1)}% of the new version's bytes), ${formatBytes(b.manifest.header.size - reusedBytes)} new`);
  } else if (b.pointer && !b.manifest) lines.push('chunks: content not in the local store');
  const media = (s: Side): MediaStructure | undefined => (s.manifest?.header.media as unknown as MediaStructure | null) ?? undefined;
  if (a.manifest || b.manifest) lines.push(...diffStructures(media(a), media(b)));
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
    let store: ChunkStore | null = null;
    try {
      const repo = await findRepo(ctx.cwd);
      if (isDitsInitialised(repo)) store = ChunkStore.open(repo.ditsDir);
    } catch {
      store = null;
    }
    try {
      const a = await readSide(ctx.cwd, oldFile, oldHex, store);
      const b = await readSide(ctx.cwd, newFile, newHex, store);
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
