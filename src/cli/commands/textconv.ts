import fs from 'node:fs';
import { findRepo, isDitsInitialised } from '../../git/repo.js';
import { parsePointer, MAX_POINTER_SIZE } from '../../manifest/pointer.js';
import { Manifest } from '../../manifest/manifest.js';
import { ChunkStore } from '../../store/chunk-store.js';
import { formatStructure } from '../../media/format-structure.js';
import type { MediaStructure } from '../../media/media-structure.js';
import { formatBytes, out, type CliContext } from '../context.js';
import type { Command } from '../main.js';
import { DitsUserError } from '../../errors.js';

/** The readable summary of one version of a tracked file (what `git diff` compares). */
export async function describeVersion(cwd: string, content: Buffer): Promise<string[]> {
  const pointer = content.length <= MAX_POINTER_SIZE ? parsePointer(content) : null;
  if (!pointer) return [`not a Dits pointer: ${content.length} bytes of file content`];
  const lines = [`Dits file, ${formatBytes(pointer.size)} (${pointer.size} bytes)`, `file id: blake3:${pointer.oid}`];
  let manifest: Manifest | null = null;
  try {
    const repo = await findRepo(cwd);
    if (isDitsInitialised(repo)) {
      const store = ChunkStore.open(repo.ditsDir);
      try {
        manifest = Manifest.parse(store.getManifestBytes(pointer.manifest));
      } finally {
        store.close();
      }
    }
  } catch {
    manifest = null;
  }
  if (!manifest) {
    lines.push(`manifest: ${pointer.manifest} (not in the local store)`);
    return lines;
  }
  const h = manifest.header;
  lines.push(`chunks: ${h.chunkCount} (FastCDC ${formatBytes(h.chunker.min)}/${formatBytes(h.chunker.avg)}/${formatBytes(h.chunker.max)})`);
  if (h.media) lines.push(...formatStructure(h.media as unknown as MediaStructure).split('\n'));
  else if (h.mediaFallback) lines.push(`container: plain chunking (${h.mediaFallback})`);
  return lines;
}

const textconv: Command = {
  summary: 'Print a readable summary of a tracked file version (the diff=dits text conversion)',
  usage: 'git dits textconv <file>',
  async run(args, ctx: CliContext) {
    const file = args[args.length - 1];
    if (!file || file.startsWith('-')) throw new DitsUserError('bad-usage', file ? `unknown option '${file}'` : 'name the file to convert', { hint: 'git runs `git dits textconv <file>` for diff=dits files', exitCode: 2 });
    if (!fs.existsSync(file)) throw new DitsUserError('no-such-file', `${file}: no such file`);
    const st = fs.statSync(file);
    const content = st.size <= MAX_POINTER_SIZE ? fs.readFileSync(file) : Buffer.alloc(0);
    if (st.size > MAX_POINTER_SIZE) out(ctx, `binary content, ${formatBytes(st.size)} (not yet stored by Dits)`);
    else for (const l of await describeVersion(ctx.cwd, content)) out(ctx, l);
    return 0;
  },
};

export const commands = { textconv };
