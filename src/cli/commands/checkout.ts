import path from 'node:path';
import { findRepo, requireInitialised } from '../../git/repo.js';
import { listIndexPointers } from '../../git/pointers.js';
import { readWorktreePointer } from '../../worktree/materialize-worktree.js';
import { takePending } from '../../worktree/pending.js';
import { finishCheckout } from './hook.js';
import { out, type CliContext } from '../context.js';
import type { Command } from '../main.js';
import { parseOptions, type OptionTable } from '../options.js';

/** Tracked files (under the given paths) that are still pointers in the working tree. */
async function pointerFiles(ctx: CliContext, positionals: string[]): Promise<string[]> {
  const repo = await findRepo(ctx.cwd);
  requireInitialised(repo);
  const specs = positionals.map((p) => path.relative(repo.workTree, path.resolve(ctx.cwd, p)) || '.');
  const entries = await listIndexPointers(repo.workTree, specs);
  if (specs.length === 0) takePending(repo.gitDir);
  return entries.filter((e) => e.stage === 0 && readWorktreePointer(path.join(repo.workTree, e.path))).map((e) => e.path);
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
      const todo = await pointerFiles(ctx, positionals);
      if (todo.length === 0) {
        out(ctx, 'All tracked files have their content in the working tree.');
        return 0;
      }
      const code = await finishCheckout(ctx, todo, explicit);
      if (code === 0) out(ctx, `Wrote ${todo.length} file(s).`);
      return code;
    },
  };
}

export const commands = { checkout: writer('checkout', false), pull: writer('pull', true) };
