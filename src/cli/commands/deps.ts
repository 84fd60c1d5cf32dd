import fs from 'node:fs';
import path from 'node:path';
import { findRepo } from '../../git/repo.js';
import { DitsUserError } from '../../errors.js';
import { projectDependencies } from '../../worktree/project-deps.js';
import { readWorktreePointer } from '../../worktree/materialize-worktree.js';
import { out, err, printJson, type CliContext } from '../context.js';
import type { Command } from '../main.js';
import { parseOptions, type OptionTable } from '../options.js';

const depsOptions = { json: { type: 'boolean', description: 'print the result as JSON' } } as const satisfies OptionTable;

const deps: Command = {
  summary: 'List the media an editing project references (FCPXML, Premiere XML, .prproj, EDL), resolved to tracked files',
  usage: 'git dits deps [--json] <project file>',
  options: depsOptions,
  async run(args, ctx: CliContext) {
    const { values, positionals } = parseOptions(args, depsOptions, { positionals: true });
    const project = positionals[0];
    if (!project) throw new DitsUserError('bad-usage', 'name a project file', { hint: 'git dits deps edit/cut.fcpxml' });
    const repo = await findRepo(ctx.cwd);
    const abs = path.resolve(ctx.cwd, project);
    const rel = path.relative(repo.workTree, abs);
    if (rel.startsWith('..')) throw new DitsUserError('outside-repo', `${project} is outside the repository`);
    if (!fs.existsSync(abs)) throw new DitsUserError('no-such-file', `${project}: no such file`, { hint: 'name an editing project file in the working tree (FCPXML, Premiere XML, .prproj, EDL)' });
    if (fs.statSync(abs).isDirectory()) throw new DitsUserError('not-a-file', `${project} is a directory`, { hint: 'name an editing project file in it (FCPXML, Premiere XML, .prproj, EDL)' });
    if (readWorktreePointer(abs)) throw new DitsUserError('not-checked-out', `${project} is a pointer; its content is not here`, { hint: `run \`git dits checkout -- ${project}\` first` });
    const res = await projectDependencies(repo.workTree, rel);
    if (values.json) {
      printJson(ctx, res);
      return 0;
    }
    out(ctx, `${rel} (${res.format}): ${res.references.length} media reference(s), ${res.tracked.length} tracked, ${res.missing.length} missing`);
    for (const r of res.references) {
      const label = r.status === 'tracked' ? `-> ${r.resolvedPath}` : r.candidates?.length ? `MISSING (ambiguous: ${r.candidates.join(', ')})` : 'MISSING';
      out(ctx, `  ${r.reference.path}  ${label}`);
    }
    if (res.missing.length) err(ctx, 'hint: add the missing media to the repository (git add / git dits add), or relink them in the editor');
    return 0;
  },
};

export const commands = { deps };
