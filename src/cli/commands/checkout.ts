import { parseArgs } from 'node:util';
import path from 'node:path';
import { findRepo, requireInitialised } from '../../git/repo.js';
import { listIndexPointers } from '../../git/pointers.js';
import { readWorktreePointer } from '../../worktree/materialize-worktree.js';
import { takePending } from '../../worktree/pending.js';
import { finishCheckout } from './hook.js';
import { out, type CliContext } from '../context.js';
import type { Command } from '../main.js';

const checkout: Command = {
  summary: 'Write the real content of tracked files that are still pointers in the working tree',
  usage: 'git dits checkout [--] [<path>...]',
  async run(args, ctx: CliContext) {
    const { positionals } = parseArgs({ args, allowPositionals: true, options: {} });
    const repo = await findRepo(ctx.cwd);
    requireInitialised(repo);
    const specs = positionals.map((p) => path.relative(repo.workTree, path.resolve(ctx.cwd, p)) || '.');
    const entries = await listIndexPointers(repo.workTree, specs);
    const todo = entries.filter((e) => e.stage === 0 && readWorktreePointer(path.join(repo.workTree, e.path)));
    if (specs.length === 0) takePending(repo.gitDir);
    if (todo.length === 0) {
      out(ctx, 'All tracked files have their content in the working tree.');
      return 0;
    }
    const code = await finishCheckout(ctx, todo.map((e) => e.path));
    if (code === 0) out(ctx, `Wrote ${todo.length} file(s).`);
    return code;
  },
};

export const commands = { checkout };
