import { gitConfigGet } from '../../git/exec.js';
import { initRepo } from '../../worktree/init-repo.js';
import { out, err, type CliContext } from '../context.js';
import type { Command } from '../main.js';
import { parseOptions, type OptionTable } from '../options.js';

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
