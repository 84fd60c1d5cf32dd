import { findRepo, requireInitialised } from '../../git/repo.js';
import { listReachablePointers } from '../../git/reachable.js';
import { listIndexPointers } from '../../git/pointers.js';
import { ChunkStore } from '../../store/chunk-store.js';
import { orphanLinkStats } from '../../worktree/worktree-links.js';
import { formatBytes, out, printJson, type CliContext } from '../context.js';
import type { Command } from '../main.js';
import { parseOptions, type OptionTable } from '../options.js';

const duOptions = { json: { type: 'boolean', description: 'print the result as JSON' } } as const satisfies OptionTable;

const du: Command = {
  summary: 'Disk usage: logical size of tracked content vs what the local store holds, and the dedup ratio',
  usage: 'git dits du [--json]',
  options: duOptions,
  async run(args, ctx: CliContext) {
    const { values } = parseOptions(args, duOptions);
    const repo = await findRepo(ctx.cwd);
    requireInitialised(repo);
    const reachable = await listReachablePointers(repo.workTree);
    const versions = new Map<string, number>();
    for (const p of reachable) versions.set(p.pointer.oid, p.pointer.size);
    const current = (await listIndexPointers(repo.workTree)).filter((p) => p.stage === 0);
    const store = ChunkStore.open(repo.ditsDir);
    let s;
    let held;
    let orphans;
    let heldBy;
    try {
      s = store.stats();
      held = store.remoteHeldStats();
      heldBy = store.remoteHeldByRemote();
      orphans = orphanLinkStats(store);
    } finally {
      store.close();
    }
    const logicalAll = [...versions.values()].reduce((a, b) => a + b, 0);
    const logicalCurrent = current.reduce((a, p) => a + p.pointer.size, 0);
    const report = {
      trackedFiles: current.length,
      logicalCurrentBytes: logicalCurrent,
      fileVersions: versions.size,
      logicalAllVersionsBytes: logicalAll,
      storedChunkBytes: s.storedBytes,
      uniqueChunkBytes: s.rawBytes,
      chunks: s.chunks,
      packs: s.packs,
      packFileBytes: s.packBytes,
      manifests: s.manifests,
      /** chunks not stored here because a remote verifiably holds them (dits.keepLocalCopy, prune) */
      remoteHeldChunks: held.chunks,
      remoteHeldBytes: held.rawBytes,
      /** the same per remote */
      remoteHeld: heldBy.map((h) => ({ remote: h.remote, chunks: h.chunks, bytes: h.rawBytes })),
      /** earlier versions of files replaced in the working tree, kept (hard links) until the next checkout or gc */
      replacedFileLinks: orphans.files,
      replacedFileLinkBytes: orphans.bytes,
      dedupRatio: s.packBytes + held.rawBytes > 0 ? logicalAll / (s.packBytes + held.rawBytes) : null,
    };
    if (values.json) printJson(ctx, report);
    else {
      out(ctx, `tracked files (index)    ${report.trackedFiles}, ${formatBytes(logicalCurrent)}`);
      out(ctx, `all versions (history)   ${report.fileVersions}, ${formatBytes(logicalAll)}`);
      out(ctx, `stored locally           ${formatBytes(s.packBytes)} in ${s.packs} pack(s), ${s.chunks} chunks (${formatBytes(s.rawBytes)} before compression)`);
      if (held.chunks) {
        const where = heldBy.map((h) => (heldBy.length > 1 ? `${h.remote} (${h.chunks} chunks)` : h.remote)).join(', ');
        out(ctx, `held by a remote only     ${formatBytes(held.rawBytes)}, ${held.chunks} chunks, on ${where} (not kept here: pruned, or written only into checked-out files; fetched again when needed)`);
      }
      if (orphans.files) out(ctx, `replaced files kept      ${formatBytes(orphans.bytes)} in ${orphans.files} file(s) (earlier versions for the next checkout to reuse; \`git dits gc\` frees them)`);
      out(ctx, `dedup ratio              ${report.dedupRatio === null ? '-' : report.dedupRatio.toFixed(2) + 'x'} (all versions / ${held.chunks ? 'stored + remote-held' : 'stored'})`);
    }
    return 0;
  },
};

export const commands = { du };
