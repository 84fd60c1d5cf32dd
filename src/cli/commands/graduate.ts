import path from 'node:path';
import { findRepo, requireInitialised } from '../../git/repo.js';
import { readDitsConfig } from '../../git/dits-config.js';
import { DitsUserError } from '../../errors.js';
import { findRepositories, forgetGraduation, graduateRepo, type GraduateResult } from '../../lifecycle/graduate.js';
import { listIndexPointers } from '../../git/pointers.js';
import { readWorktreePointer } from '../../worktree/materialize-worktree.js';
import { formatBytes, out, printJson, type CliContext } from '../context.js';
import { loadCommand, type Command } from '../main.js';
import { parseAge, parseOptions, type OptionTable } from '../options.js';

const graduateOptions = {
  idle: { type: 'string', value: '<age>', description: 'untouched for at least this long (default: git config dits.graduate.idle, else 30d)' },
  'dry-run': { type: 'boolean', description: 'only check and say what would be freed (reads nothing back from the remote)' },
  json: { type: 'boolean', description: 'print the results as JSON' },
} as const satisfies OptionTable;

const graduate: Command = {
  summary: 'Give back the disk of idle repositories whose work is all on their Dits remote: big files become pointers, local chunks are pruned (verified first)',
  usage: `git dits graduate [<repo or folder of repos>...] [--idle 30d] [--dry-run] [--json]

A repository graduates when nothing changed for --idle (no commit, no file modified), it has
no .keep-local file, nothing is uncommitted, every branch is pushed, and the remote holds (and
verifies) all its content; otherwise it is listed with why. \`git dits hydrate\` brings it back.`,
  options: graduateOptions,
  async run(args, ctx) {
    const { values, positionals } = parseOptions(args, graduateOptions, { positionals: true });
    const config = await readDitsConfig(ctx.cwd);
    const idleText = values.idle ?? config.string('dits.graduate.idle')?.trim() ?? '30d';
    const idleMs = parseAge(idleText);
    const dirs: string[] = [];
    if (!positionals.length) dirs.push((await findRepo(ctx.cwd)).workTree); // outside a repository: the usual error
    for (const p of positionals) {
      const found = findRepositories(path.resolve(ctx.cwd, p));
      if (found.length === 1 && !(await findRepo(found[0]!).then(() => true, () => false)))
        throw new DitsUserError('not-a-repo', `${p} is neither a Git repository nor a folder of them`, { hint: 'name a repository, or a folder whose subfolders are repositories', exitCode: 2 });
      dirs.push(...found);
    }
    const results: (GraduateResult | { repo: string; status: 'failed'; error: string; hint?: string })[] = [];
    for (const dir of dirs) {
      try {
        results.push(await graduateRepo(dir, { idleMs, now: Date.now(), dryRun: Boolean(values['dry-run']) }));
      } catch (e) {
        if (!(e instanceof DitsUserError) && !(e instanceof Error && 'code' in e)) throw e;
        results.push({ repo: dir, status: 'failed', error: (e as Error).message, hint: (e as DitsUserError).hint });
      }
    }
    if (values.json) printJson(ctx, results);
    else {
      for (const r of results) {
        if (r.status === 'failed') out(ctx, `${r.repo}: failed: ${r.error}${r.hint ? ` (${r.hint})` : ''}`);
        else if (r.status === 'refused') out(ctx, `${r.repo}: refused:\n${r.reasons.map((x) => `  - ${x}`).join('\n')}`);
        else {
          const verb = r.status === 'graduated' ? 'freed' : 'would free';
          out(ctx, `${r.repo}: ${r.status === 'graduated' ? 'graduated' : 'would graduate'}: ${verb} ${formatBytes(r.worktreeBytesFreed + r.storeBytesFreed)} (${r.files} file(s) to pointers: ${formatBytes(r.worktreeBytesFreed)}; ${r.chunks} local chunk(s): ${formatBytes(r.storeBytesFreed)}); content on ${r.remote}${r.record ? `, marked for the tier reaper at ${r.record}` : ''}`);
          for (const s of r.skipped) out(ctx, `  kept ${s.path}: ${s.reason}`);
        }
      }
    }
    return results.some((r) => r.status === 'failed') ? 1 : 0;
  },
};

const hydrateOptions = { json: { type: 'boolean', description: 'print the result as JSON' } } as const satisfies OptionTable;

const hydrate: Command = {
  summary: 'Bring a graduated repository back: write the content of every file that is a pointer (fetched from the Dits remote)',
  usage: 'git dits hydrate [<repo>] [--json]',
  options: hydrateOptions,
  async run(args, ctx) {
    const { values, positionals } = parseOptions(args, hydrateOptions, { positionals: true });
    if (positionals.length > 1) throw new DitsUserError('bad-usage', 'one repository at a time', { hint: 'git dits hydrate [<repo>]', exitCode: 2 });
    const repo = await findRepo(path.resolve(ctx.cwd, positionals[0] ?? '.'));
    requireInitialised(repo);
    const pointers = (await listIndexPointers(repo.workTree)).filter((e) => e.stage === 0 && readWorktreePointer(path.join(repo.workTree, e.path)));
    const bytes = pointers.reduce((n, e) => n + e.pointer.size, 0);
    const checkout = await loadCommand('checkout');
    const quiet = { ...ctx, cwd: repo.workTree, stdout: values.json ? ctx.stderr : ctx.stdout };
    const code = await checkout.run([], quiet);
    const left = (await listIndexPointers(repo.workTree)).filter((e) => e.stage === 0 && readWorktreePointer(path.join(repo.workTree, e.path))).length;
    const record = code === 0 && left === 0 ? await forgetGraduation(repo) : null;
    if (values.json) printJson(ctx, { repo: repo.workTree, files: pointers.length - left, bytes, left, recordRemoved: record });
    else out(ctx, `${repo.workTree}: hydrated ${pointers.length - left} file(s), ${formatBytes(bytes)}${left ? `; ${left} still pointers (see above)` : ''}.`);
    return code;
  },
};

export const commands = { graduate, hydrate };
