import { findRepo, requireInitialised } from '../../git/repo.js';
import { listReachablePointers } from '../../git/reachable.js';
import { ChunkStore } from '../../store/chunk-store.js';
import { fsckStore } from '../../store/fsck.js';
import { createProgressBar } from '../progress.js';
import { formatBytes, out, err, printJson, type CliContext } from '../context.js';
import type { Command } from '../main.js';
import { parseOptions, type OptionTable } from '../options.js';

const fsckOptions = {
  json: { type: 'boolean', description: 'print the result as JSON' },
  'no-quarantine': { type: 'boolean', description: 'leave corrupt chunks and manifests where they are (only report them)' },
} as const satisfies OptionTable;

const fsck: Command = {
  summary: 'Re-hash every stored chunk and manifest; quarantine corrupt ones; report missing content (exit 1 on problems)',
  usage: 'git dits fsck [--json] [--no-quarantine]',
  options: fsckOptions,
  async run(args, ctx: CliContext) {
    const { values } = parseOptions(args, fsckOptions);
    const repo = await findRepo(ctx.cwd);
    requireInitialised(repo);
    const pointers = await listReachablePointers(repo.workTree);
    const store = ChunkStore.open(repo.ditsDir);
    const bar = createProgressBar(ctx, 'Checking');
    let res;
    try {
      res = await fsckStore(store, pointers, { onProgress: (d, t) => bar.update(d, t), quarantine: !values['no-quarantine'] });
    } finally {
      bar.done();
      store.close();
    }
    if (values.json) printJson(ctx, res);
    else {
      out(ctx, `Checked ${res.chunksChecked} chunks (${formatBytes(res.bytesChecked)}) and ${res.manifestsChecked} manifests.`);
      if (res.remoteHeldChunks) out(ctx, `${res.remoteHeldChunks} chunks are held by a remote, not here (fetched into the working tree or pruned; they come back when needed).`);
      for (const p of res.problems) {
        err(ctx, `${p.kind}: ${p.id}: ${p.detail}${p.paths ? ` (needed by ${p.paths.slice(0, 5).join(', ')}${p.paths.length > 5 ? ', ...' : ''})` : ''}`);
      }
      if (res.quarantined.length) err(ctx, `Moved ${res.quarantined.length} corrupt object(s) to .git/dits/quarantine.`);
      if (res.problems.length) err(ctx, 'hint: fetch the missing or corrupt content again from a remote that has it (`git dits pull`), or re-add the files from their originals.');
      else out(ctx, 'No problems found.');
    }
    return res.problems.length ? 1 : 0;
  },
};

export const commands = { fsck };
