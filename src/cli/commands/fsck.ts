import { findRepo, requireInitialised } from '../../git/repo.js';
import { listReachablePointers } from '../../git/reachable.js';
import { listIndexDamagedPointers, listTreeDamagedPointers, type DamagedPointer } from '../../git/pointers.js';
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
    // pointers in the index or HEAD that do not parse (they check out as their own text)
    const damaged = new Map<string, DamagedPointer>();
    for (const d of [...(await listIndexDamagedPointers(repo.workTree)), ...(await listTreeDamagedPointers(repo.workTree, 'HEAD'))]) {
      damaged.set(`${d.blobOid} ${d.path}`, d);
    }
    const damagedPointers = [...damaged.values()];
    const problems = res.problems.length + damagedPointers.length;
    if (values.json) printJson(ctx, { ...res, damagedPointers });
    else {
      out(ctx, `Checked ${res.chunksChecked} chunks (${formatBytes(res.bytesChecked)}) and ${res.manifestsChecked} manifests.`);
      if (res.remoteHeldChunks) out(ctx, `${res.remoteHeldChunks} chunks are held by a remote, not here (fetched into the working tree or pruned; they come back when needed).`);
      for (const p of res.problems) {
        err(ctx, `${p.kind}: ${p.id}: ${p.detail}${p.paths ? ` (needed by ${p.paths.slice(0, 5).join(', ')}${p.paths.length > 5 ? ', ...' : ''})` : ''}`);
      }
      if (res.quarantined.length) err(ctx, `Moved ${res.quarantined.length} corrupt object(s) to .git/dits/quarantine.`);
      if (res.problems.length) err(ctx, 'hint: fetch the missing or corrupt content again from a remote that has it (`git dits pull`), or re-add the files from their originals.');
      for (const d of damagedPointers) err(ctx, `damaged-pointer: ${d.path}: ${d.damage} (blob ${d.blobOid})`);
      if (damagedPointers.length) {
        err(ctx, 'hint: a damaged pointer checks out as its own text; restore it from a commit where it is whole (`git log -- <path>`, then `git checkout <commit> -- <path>`), or put the real file back and `git add` it.');
      }
      if (problems === 0) out(ctx, 'No problems found.');
    }
    return problems ? 1 : 0;
  },
};

export const commands = { fsck };
