import { findRepo } from '../../git/repo.js';
import { nextStepIsExec, operationInProgress } from '../../worktree/git-operation.js';
import type { Command } from '../main.js';
import { DitsUserError } from '../../errors.js';
import { HOOK_NAMES } from '../../worktree/hooks.js';
import { finishCheckout } from '../finish-checkout.js';

const hook: Command = {
  summary: 'Run a Dits hook (called by the hooks `git dits init` installs)',
  usage: 'git dits hook <post-checkout|post-merge|post-rewrite|reference-transaction|pre-commit> [args]',
  async run(args, ctx) {
    if (!(HOOK_NAMES as readonly string[]).includes(args[0] ?? '')) {
      throw new DitsUserError('bad-usage', args[0] === undefined ? 'name the hook to run' : `'${args[0]}' is not a Dits hook`, { hint: `one of ${HOOK_NAMES.join(', ')}; git runs these from the hooks \`git dits init\` installs`, exitCode: 2 });
    }
    if (args[0] === 'pre-commit') return (await import('../pre-commit-check.js')).refuseStaged(ctx);
    // Mid-operation hooks leave the files to be finished later. A rebase, cherry-pick or
    // revert (the sequencer) is one git process that keeps its index in memory from step to
    // step: it runs reference-transaction at every commit and post-checkout when it checks
    // out `onto`, then goes on to the next step with the stat data of the pointers it wrote.
    // Were the hook to write the real files then, that next step would find them changed
    // ("Your local changes ... would be overwritten", and the index it writes back makes
    // them look modified). Left as pointers, they are written by post-rewrite when a rebase
    // ends, or by the filter process that smudged them when git closes its pipe at exit
    // (filter-process.ts), whichever comes first. The exception: a rebase whose next step
    // is an `exec` re-reads the index before going on, and the command wants real files.
    if (args[0] === 'post-checkout' || args[0] === 'post-merge' || args[0] === 'reference-transaction') {
      const repo = await findRepo(ctx.cwd);
      if (operationInProgress(repo.gitDir) && !nextStepIsExec(repo.gitDir)) return 0;
    }
    // A hook's exit status would become the git command's (a clone would report failure
    // over one missing file): files that could not be written stay pointers, are reported
    // above, and `git dits status` / `git dits checkout` pick them up.
    await finishCheckout(ctx);
    return 0;
  },
};

export const commands = { hook };
