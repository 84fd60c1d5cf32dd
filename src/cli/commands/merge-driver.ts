import fs from 'node:fs';
import { parsePointer } from '../../manifest/pointer.js';
import { err, type CliContext } from '../context.js';
import type { Command } from '../main.js';
import { DitsUserError } from '../../errors.js';

/**
 * merge=dits: binary content cannot be merged line by line. Git calls this only when both
 * sides changed the file; when they agree there is nothing to do, otherwise ours is kept
 * and a conflict reported, with the way out.
 */
const mergeDriver: Command = {
  summary: 'Merge driver for tracked files (run by Git)',
  usage: 'git dits merge-driver <base> <ours> <theirs> <path>',
  async run(args, ctx: CliContext) {
    const [base, ours, theirs, name] = args;
    if (!base || !ours || !theirs || args.some((a) => a.startsWith('-'))) {
      throw new DitsUserError('bad-usage', 'merge-driver takes the four files git passes (%O %A %B %P)', { hint: 'git runs it for merge=dits files; see `git dits install`', exitCode: 2 });
    }
    const missing = [base, ours, theirs].find((f) => !fs.existsSync(f));
    if (missing !== undefined) throw new DitsUserError('no-such-file', `merge-driver: ${missing}: no such file`, { hint: 'git runs it with the three versions it wrote (%O %A %B)', exitCode: 2 });
    const o = fs.readFileSync(ours);
    const t = fs.readFileSync(theirs);
    const b = fs.readFileSync(base);
    if (o.equals(t)) return 0;
    if (b.equals(o)) {
      fs.writeFileSync(ours, t);
      return 0;
    }
    if (b.equals(t)) return 0;
    const po = parsePointer(o);
    const pt = parsePointer(t);
    const what = po && pt ? ` (ours ${po.oid.slice(0, 12)}, theirs ${pt.oid.slice(0, 12)})` : '';
    err(ctx, `dits: both sides changed ${name ?? 'a tracked file'}${what}; binary media cannot be merged.`);
    err(ctx, `hint: keep one version with \`git checkout --ours -- ${name}\` or \`git checkout --theirs -- ${name}\`, then \`git add\` it.`);
    return 1;
  },
};

export const commands = { 'merge-driver': mergeDriver };
