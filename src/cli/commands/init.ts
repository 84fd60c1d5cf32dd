import { findRepo } from '../../git/repo.js';
import { gitConfigGet } from '../../git/exec.js';
import { ChunkStore } from '../../store/chunk-store.js';
import { hooksDir, installHooks } from '../../worktree/hooks.js';
import { out, err, type CliContext } from '../context.js';
import type { Command } from '../main.js';
import { parseOptions, type OptionTable } from '../options.js';

/** Creates .git/dits and installs the hooks; idempotent. Used by init and by the filter. */
export async function initRepo(cwd: string, ditsBin: string): Promise<{ hooks: ReturnType<typeof installHooks>; dir: string }> {
  const repo = await findRepo(cwd);
  ChunkStore.open(repo.ditsDir, { create: true }).close();
  const hooks = installHooks(await hooksDir(repo.workTree), ditsBin);
  return { hooks, dir: repo.ditsDir };
}

const initOptions = {} as const satisfies OptionTable;

const init: Command = {
  summary: 'Prepare this repository for Dits: the local store (.git/dits) and the checkout hooks',
  usage: 'git dits init',
  options: initOptions,
  async run(args: string[], ctx: CliContext) {
    parseOptions(args, initOptions);
    const { hooks, dir } = await initRepo(ctx.cwd, ctx.ditsBin);
    out(ctx, `Dits store ready in ${dir}`);
    if (hooks.installed.length) out(ctx, `Hooks installed: ${hooks.installed.join(', ')}`);
    if (hooks.kept.length) out(ctx, `Your existing hooks were kept and still run first: ${hooks.kept.map((h) => h + '.pre-dits').join(', ')}`);
    if (!(await gitConfigGet('filter.dits.process', ctx.cwd))) {
      err(ctx, 'warning: Git is not configured to use Dits yet.\nhint: run `git dits install` (once per machine) or `git dits install --local`');
    }
    out(ctx, 'Next: `git dits track "*.mov" "*.mp4"`, then `git add` and `git commit` as usual.');
    return 0;
  },
};

export const commands = { init };
