import path from 'node:path';
import { findRepo } from '../../git/repo.js';
import { runGit } from '../../git/exec.js';
import { analyzeContainer } from '../../media/analyze-container.js';
import { openFileReader } from '../../media/random-access-reader.js';
import { formatAnalysis, formatStructure } from '../../media/format-structure.js';
import type { MediaStructure } from '../../media/media-structure.js';
import { MAX_POINTER_SIZE, parsePointer } from '../../manifest/pointer.js';
import { Manifest } from '../../manifest/manifest.js';
import { ChunkStore } from '../../store/chunk-store.js';
import { DitsUserError } from '../../errors.js';
import { readWorktreePointer } from '../../worktree/materialize-worktree.js';
import { out, printJson, formatBytes, type CliContext } from '../context.js';
import type { Command } from '../main.js';
import { parseOptions, type OptionTable } from '../options.js';

const inspectOptions = { json: { type: 'boolean', description: 'print the result as JSON' } } as const satisfies OptionTable;

const inspect: Command = {
  summary: 'Show the container structure of a media file: tracks, codecs, duration, timecode (path or <rev>:<path>)',
  usage: 'git dits inspect [--json] <path | rev:path>',
  options: inspectOptions,
  async run(args, ctx: CliContext) {
    const { values, positionals } = parseOptions(args, inspectOptions, { positionals: true });
    const target = positionals[0];
    if (!target) throw new DitsUserError('bad-usage', 'name a file to inspect', { hint: 'git dits inspect clip.mov, or git dits inspect HEAD~1:clip.mov' });
    const revMatch = /^([^:]+):(.+)$/.exec(target);
    if (revMatch && !(await exists(path.resolve(ctx.cwd, target)))) {
      // A committed version: its manifest holds the structure found at add time.
      const repo = await findRepo(ctx.cwd);
      const r = await runGit(['cat-file', 'blob', target], { cwd: ctx.cwd, allowFail: true });
      if (r.exitCode !== 0) throw new DitsUserError('no-such-path', `${target} does not exist`, { hint: 'check the revision and path (`git ls-tree -r <rev>`)' });
      const pointer = r.stdout.length <= MAX_POINTER_SIZE ? parsePointer(r.stdout) : null;
      if (!pointer) throw new DitsUserError('not-tracked', `${target} is not a Dits-tracked file`);
      const store = ChunkStore.open(repo.ditsDir);
      let m: Manifest;
      try {
        m = Manifest.parse(store.getManifestBytes(pointer.manifest));
      } finally {
        store.close();
      }
      const media = m.header.media as unknown as MediaStructure | null;
      if (values.json) printJson(ctx, { path: target, size: pointer.size, oid: pointer.oid, chunks: m.chunkCount, media, fallbackReason: m.header.mediaFallback ?? null });
      else {
        out(ctx, `${target}: ${formatBytes(pointer.size)}, ${m.chunkCount} chunks`);
        out(ctx, media ? formatStructure(media) : `container:  not parsed, plain chunking (${m.header.mediaFallback ?? 'not media'})`);
      }
      return 0;
    }
    const abs = path.resolve(ctx.cwd, target);
    if (readWorktreePointer(abs)) throw new DitsUserError('not-checked-out', `${target} is a pointer in the working tree; its content is not here`, { hint: `run \`git dits checkout -- ${target}\`, or inspect a committed version as HEAD:${target}` });
    let reader;
    try {
      reader = await openFileReader(abs);
    } catch {
      throw new DitsUserError('no-such-path', `${target}: no such file`);
    }
    try {
      const a = await analyzeContainer(reader);
      if (values.json) printJson(ctx, { path: target, size: reader.size, kind: a.kind, media: a.structure ?? null, fallbackReason: a.fallbackReason ?? null, keyframes: a.cutPlan.preferred.length });
      else {
        out(ctx, `${target}: ${formatBytes(reader.size)}`);
        out(ctx, formatAnalysis(a));
      }
    } finally {
      await reader.close();
    }
    return 0;
  },
};

async function exists(p: string): Promise<boolean> {
  const fs = await import('node:fs');
  return fs.existsSync(p);
}

export const commands = { inspect };
