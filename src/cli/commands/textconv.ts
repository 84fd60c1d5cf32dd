import fs from 'node:fs';
import { DitsUserError } from '../../errors.js';
import { out, type CliContext } from '../context.js';
import type { Command } from '../main.js';
import { describeVersion, identifyVersion, openRepoAndStore } from '../version-summary.js';

/**
 * diff.dits.textconv: git runs it as `textconv <file>` for `git log -p`, `git show` and
 * `git diff --no-ext-diff`, and diffs what it prints. The file is the pointer, the real
 * content (git smudges the blobs it writes to temp files) or an up-to-date working-tree
 * file: version-summary.ts finds which stored version it is.
 */
const textconv: Command = {
  summary: 'Print a readable summary of a tracked file version (the diff=dits text conversion)',
  usage: 'git dits textconv <file>',
  async run(args, ctx: CliContext) {
    const file = args[args.length - 1];
    if (!file || file.startsWith('-')) throw new DitsUserError('bad-usage', file ? `unknown option '${file}'` : 'name the file to convert', { hint: 'git runs `git dits textconv <file>` for diff=dits files', exitCode: 2 });
    if (!fs.existsSync(file)) throw new DitsUserError('no-such-file', `${file}: no such file`);
    const { repo, store } = await openRepoAndStore(ctx.cwd);
    try {
      for (const l of describeVersion(await identifyVersion(ctx.cwd, file, { repo, store }))) out(ctx, l);
    } finally {
      store?.close();
    }
    return 0;
  },
};

export const commands = { textconv };
