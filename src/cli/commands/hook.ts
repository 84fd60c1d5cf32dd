import { findRepo } from '../../git/repo.js';
import { ChunkStore } from '../../store/chunk-store.js';
import { takePending } from '../../worktree/pending.js';
import { materializePaths } from '../../worktree/materialize-worktree.js';
import { createProgressBar } from '../progress.js';
import { err, type CliContext } from '../context.js';
import type { Command } from '../main.js';
import { isUserError } from '../../errors.js';

/** Writes the files smudge left as pointers; prints one line per file that failed. */
export async function finishCheckout(ctx: CliContext, paths?: string[]): Promise<number> {
  const repo = await findRepo(ctx.cwd);
  const list = paths ?? takePending(repo.gitDir);
  if (list.length === 0) return 0;
  const store = ChunkStore.open(repo.ditsDir, { create: true });
  try {
    const bar = createProgressBar(ctx, 'Writing files');
    const report = await materializePaths(repo, store, list, { onProgress: (d, t) => bar.update(d, t) });
    bar.done();
    for (const f of report.failed) {
      const e = f.error;
      err(ctx, `dits: ${isUserError(e) ? e.message : String(e)}`);
      if (isUserError(e) && e.hint) err(ctx, `hint: ${e.hint}`);
    }
    if (report.failed.length) err(ctx, `dits: ${report.failed.length} file(s) left as pointers; \`git dits status\` lists them.`);
    return report.failed.length ? 1 : 0;
  } finally {
    store.close();
  }
}

const hook: Command = {
  summary: 'Run a Dits hook (called by the hooks `git dits init` installs)',
  usage: 'git dits hook <post-checkout|post-merge|post-rewrite|reference-transaction> [args]',
  async run(_args, ctx) {
    // A hook's exit status would become the git command's (a clone would report failure
    // over one missing file): files that could not be written stay pointers, are reported
    // above, and `git dits status` / `git dits checkout` pick them up.
    await finishCheckout(ctx);
    return 0;
  },
};

export const commands = { hook };
