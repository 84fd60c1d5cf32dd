import { runGit } from '../../git/exec.js';
import { DitsUserError } from '../../errors.js';
import { out, type CliContext } from '../context.js';
import type { Command } from '../main.js';
import { parseOptions, type OptionTable } from '../options.js';
import { filterConfig } from '../../git/filter-config.js';

async function scopeArgs(local: boolean, ctx: CliContext): Promise<string[]> {
  if (!local) return ['--global'];
  const r = await runGit(['rev-parse', '--git-dir'], { cwd: ctx.cwd, allowFail: true });
  if (r.exitCode !== 0) throw new DitsUserError('not-a-repo', '--local needs to run inside a Git repository', { hint: 'cd into the repository, or drop --local to install for your user' });
  return ['--local'];
}

const installOptions = { local: { type: 'boolean', description: 'this repository only (.git/config), not your user (~/.gitconfig)' } } as const satisfies OptionTable;

const install: Command = {
  summary: 'Set up Git to use Dits (filter, diff and merge drivers) for your user, or one repo with --local',
  usage: 'git dits install [--local]',
  options: installOptions,
  async run(args, ctx) {
    const { values } = parseOptions(args, installOptions);
    const scope = await scopeArgs(Boolean(values.local), ctx);
    for (const [k, v] of filterConfig(ctx.ditsBin)) await runGit(['config', ...scope, '--replace-all', k, v], { cwd: ctx.cwd });
    out(ctx, `Dits is installed in your ${values.local ? 'repository' : 'global'} git config.`);
    out(ctx, 'Next: in a repository, run `git dits init`, then `git dits track "*.mov"`.');
    return 0;
  },
};

const uninstall: Command = {
  summary: 'Remove the Dits filter, diff and merge config (global, or --local)',
  usage: 'git dits uninstall [--local]',
  options: installOptions,
  async run(args, ctx) {
    const { values } = parseOptions(args, installOptions);
    const scope = await scopeArgs(Boolean(values.local), ctx);
    for (const section of ['filter.dits', 'diff.dits', 'merge.dits']) {
      await runGit(['config', ...scope, '--remove-section', section], { cwd: ctx.cwd, allowFail: true });
    }
    out(ctx, 'Dits config removed. Tracked files stay as they are; `git dits init` hooks stay until you delete them.');
    return 0;
  },
};

export const commands = { install, uninstall };
