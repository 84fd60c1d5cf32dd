import path from 'node:path';
import { findRepo, requireInitialised } from '../../git/repo.js';
import { listIndexPointers } from '../../git/pointers.js';
import { readWorktreePointer } from '../../worktree/materialize-worktree.js';
import { takePending } from '../../worktree/pending.js';
import { finishCheckout } from './hook.js';
import { DitsUserError } from '../../errors.js';
import { out, type CliContext } from '../context.js';
import type { Command } from '../main.js';
import { parseOptions, type OptionTable } from '../options.js';

/** Tracked files (under the given paths) that are still pointers in the working tree. */
async function pointerFiles(ctx: CliContext, positionals: string[]): Promise<{ todo: string[]; tracked: number }> {
  const repo = await findRepo(ctx.cwd);
  requireInitialised(repo);
  const specs = positionals.map((p) => path.relative(repo.workTree, path.resolve(ctx.cwd, p)) || '.');
  const entries = await listIndexPointers(repo.workTree, specs);
  if (specs.length === 0) takePending(repo.gitDir);
  const todo = entries.filter((e) => e.stage === 0 && readWorktreePointer(path.join(repo.workTree, e.path))).map((e) => e.path);
  return { todo, tracked: entries.length };
}

/** No options yet: paths only. */
const writerOptions = {} as const satisfies OptionTable;

function writer(name: 'checkout' | 'pull', explicit: boolean): Command {
  return {
    summary:
      name === 'checkout'
        ? 'Write the real content of tracked files that are still pointers (fetching from the Dits remote as dits.fetchMode says)'
        : 'Fetch the content of tracked files from the Dits remote and write them (the way out of a lazy clone)',
    usage: `git dits ${name} [--] [<path>...]`,
    options: writerOptions,
    async run(args, ctx: CliContext) {
      const { positionals } = parseOptions(args, writerOptions, { positionals: true });
      const { todo, tracked } = await pointerFiles(ctx, positionals);
      if (tracked === 0 && positionals.length > 0) {
        // nothing to do would be a lie here: the paths name no file Dits tracks
        throw new DitsUserError('no-tracked-match', `no file tracked by Dits matches ${positionals.map((p) => `'${p}'`).join(', ')}`, {
          hint: `give paths of tracked files (\`git dits status\` lists them), or run \`git dits ${name}\` alone for all of them`,
        });
      }
      if (todo.length === 0) {
        out(ctx, positionals.length ? 'These files have their content in the working tree.' : 'All tracked files have their content in the working tree.');
        return 0;
      }
      const done = await finishCheckout(ctx, todo, explicit);
      // the files left as pointers were counted on stderr, with the way to get them
      if (done.written > 0) out(ctx, `Wrote ${done.written} file(s).`);
      return done.code;
    },
  };
}

export const commands = { checkout: writer('checkout', false), pull: writer('pull', true) };
