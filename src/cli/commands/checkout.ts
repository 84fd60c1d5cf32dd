import fs from 'node:fs';
import path from 'node:path';
import { findRepo, requireInitialised, type RepoPaths } from '../../git/repo.js';
import { runGit } from '../../git/exec.js';
import { listIndexDamagedPointers, listIndexPointers, listTreePointers } from '../../git/pointers.js';
import { ChunkStore } from '../../store/chunk-store.js';
import { listDitsRemotes, openRemoteStorage } from '../../remote/open-remote.js';
import { ensureLocal } from '../../remote/content/fetch-content.js';
import { recordingReads } from '../../tier/access-records.js';
import { stderrProgress } from '../../remote/content-adapter.js';
import { contentRemotes, frozenFilesOf } from '../../worktree/remote-fetch.js';
import { formatFrozenReport } from '../../tier/frozen-report.js';
import { DitsUserError } from '../../errors.js';
import { readWorktreePointer } from '../../worktree/materialize-worktree.js';
import { takePending } from '../../worktree/pending.js';
import { finishCheckout, priceFrozen } from '../finish-checkout.js';
import { parseCheckoutMode } from '../../proxy/checkout-state.js';
import { err, formatBytes, out, type CliContext } from '../context.js';
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

/** Damaged pointers have no content to write: say so, naming each (they stay as their text). */
async function warnDamaged(ctx: CliContext, positionals: string[]): Promise<void> {
  const repo = await findRepo(ctx.cwd);
  const specs = positionals.map((p) => path.relative(repo.workTree, path.resolve(ctx.cwd, p)) || '.');
  for (const d of await listIndexDamagedPointers(repo.workTree, specs)) {
    if (d.stage === 0) err(ctx, `warning: ${d.path} is a damaged Dits pointer (${d.damage}); it has no content to write. Restore it from a commit where it is whole (\`git log -- ${d.path}\`), or put the real file back and \`git add\` it.`);
  }
}

const writerOptions = {
  mode: { type: 'string', value: 'proxy|original', description: 'show proxies in place of the originals, or the originals again, and remember it for these paths' },
  json: { type: 'boolean', description: 'with --mode: print the result as JSON' },
  keep: { type: 'boolean', description: 'with --mode original: keep changed files as they are, as new versions of their own (not edits of a proxy), so they can be committed' },
} as const satisfies OptionTable;

function writer(name: 'checkout', explicit: boolean): Command {
  return {
    summary: 'Write the real content of tracked files that are still pointers (fetching from the Dits remote as dits.fetchMode says); with --mode, show their proxies or their originals',
    usage: `git dits ${name} [--] [<path>...]
       git dits ${name} --mode proxy|original [--keep] [--json] [--] [<path>...]`,
    options: writerOptions,
    async run(args, ctx: CliContext) {
      const { values, positionals } = parseOptions(args, writerOptions, { positionals: true });
      if (values.mode !== undefined) {
        const mode = parseCheckoutMode(values.mode, '--mode');
        if (!mode) throw new DitsUserError('bad-checkout-mode', '--mode needs a value', { hint: 'git dits checkout --mode proxy|original [<path>...]', exitCode: 2 });
        if (values.keep && mode !== 'original') throw new DitsUserError('bad-usage', '--keep goes with --mode original', { hint: 'git dits checkout --mode original --keep <path>...', exitCode: 2 });
        return (await import('./proxy-checkout.js')).runModeCheckout(ctx, mode, positionals, { json: Boolean(values.json), keep: Boolean(values.keep) });
      }
      const { todo, tracked } = await pointerFiles(ctx, positionals);
      await warnDamaged(ctx, positionals);
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

const pullOptions = {
  remote: { type: 'string', value: '<name>', description: 'the dits:: remote to fetch from, and only that one' },
  json: { type: 'boolean', description: 'print what was written and what is frozen as JSON (stdout)' },
} as const satisfies OptionTable;

/** `git dits pull` exits with this when files were left as pointers because their content is frozen. */
export const EXIT_FROZEN = 3;

const pull: Command = {
  summary: 'Fetch the content of tracked files from a Dits remote and write them (the way out of a lazy clone)',
  usage: `git dits pull [<remote> [<rev>]] [-- <path>...]
       git dits pull [--remote <name>] [<rev>] [-- <path>...]

  <remote>, --remote <name>  the dits:: remote to fetch from, and only that one. Default: the remote
                             the last git fetch/pull used, then dits.remote (else origin), then the others
  <rev>                      whose content to fetch (default HEAD). At HEAD, tracked files still pointers in
                             the working tree are written; for another revision the content goes into the
                             local store, so checking it out later needs no network
  -- <path>...               only these paths (a file or a directory)
  --json                     the outcome as JSON on stdout: files written, and the frozen files with
                             the thaw command, its cost and time per retrieval tier

Exit status: 0 when every file was written, 3 when some were left as pointers because their content
is frozen (an archive storage class: \`git dits thaw <paths>\` restores it), 1 on other failures.

Without a remote or revision the paths may come first: \`git dits pull clips/\`.`,
  options: pullOptions,
  async run(args, ctx: CliContext) {
    const dash = args.indexOf('--');
    const before = dash < 0 ? args : args.slice(0, dash);
    const after = dash < 0 ? [] : args.slice(dash + 1);
    const { values, positionals } = parseOptions(before, pullOptions, { positionals: true });
    const repo = await findRepo(ctx.cwd);
    requireInitialised(repo);
    const pre = [...positionals];
    let remote = values.remote;
    const remotes = await listDitsRemotes(repo.workTree);
    if (remote === undefined && pre.length && remotes.some((r) => r.name === pre[0])) remote = pre.shift();
    else if (remote === undefined && pre.length && (await isGitRemote(repo.workTree, pre[0]!))) {
      throw new DitsUserError('not-a-dits-remote', `'${pre[0]}' is a git remote without a dits:: URL: it holds no Dits content`, { hint: `list the Dits remotes with \`git remote -v\` (their URLs start with dits::)` });
    }
    if (remote !== undefined && !remotes.some((r) => r.name === remote)) {
      throw new DitsUserError('no-such-remote', `'${remote}' is not a Dits remote of this repository`, { hint: 'list them with `git remote -v` (Dits remotes have dits:: URLs)' });
    }
    let rev: string | undefined;
    // after a remote, the next word is a revision; without one, a word that is a revision and no path
    if (pre.length && (remote !== undefined || ((await commitOf(repo.workTree, pre[0]!)) && !fs.existsSync(path.resolve(ctx.cwd, pre[0]!))))) {
      rev = pre.shift()!;
      if (!(await commitOf(repo.workTree, rev))) throw new DitsUserError('bad-revision', `'${rev}' is not a revision`, { hint: 'git dits pull [<remote> [<rev>]] [-- <path>...]; paths after `--`' });
    }
    const paths = [...pre, ...after];
    const relSpecs = paths.map((p) => path.relative(repo.workTree, path.resolve(ctx.cwd, p)) || '.');
    if (paths.length && (await listIndexPointers(repo.workTree, relSpecs)).length === 0) {
      const first = paths[0]!;
      throw new DitsUserError('bad-usage', `'${first}' is neither a Dits remote nor a tracked path${dash < 0 && !remote && !rev ? ' (nor a revision)' : ''}`, {
        hint: `git dits pull [<remote> [<rev>]] [-- <path>...]; the Dits remotes here: ${remotes.map((r) => r.name).join(', ') || 'none'}`,
      });
    }
    const head = await commitOf(repo.workTree, 'HEAD');
    if (rev !== undefined && (await commitOf(repo.workTree, rev)) !== head) return pullRevision(ctx, repo, rev, relSpecs, remote, Boolean(values.json));
    const { todo } = await pointerFiles(ctx, paths);
    if (todo.length === 0) {
      if (values.json) out(ctx, JSON.stringify({ written: 0, failed: 0, frozenFiles: 0, frozen: null }));
      else out(ctx, paths.length ? 'These files have their content in the working tree.' : 'All tracked files have their content in the working tree.');
      return 0;
    }
    const done = await finishCheckout(ctx, todo, true, remote);
    // the files left as pointers were counted on stderr, with the way to get them
    if (values.json) out(ctx, JSON.stringify({ written: done.written, failed: done.failed, frozenFiles: done.frozenFiles, frozen: done.frozen }, null, 2));
    else if (done.written > 0) out(ctx, `Wrote ${done.written} file(s)${remote ? ` with content from ${remote}` : ''}.`);
    if (done.code !== 0) return done.code;
    return done.frozenFiles > 0 ? EXIT_FROZEN : 0;
  },
};

/** The commit a revision names, or null. */
async function commitOf(cwd: string, rev: string): Promise<string | null> {
  const r = await runGit(['rev-parse', '--verify', '--quiet', '--end-of-options', `${rev}^{commit}`], { cwd, allowFail: true });
  return r.exitCode === 0 ? r.stdout.toString('utf8').trim() : null;
}

async function isGitRemote(cwd: string, name: string): Promise<boolean> {
  const r = await runGit(['remote'], { cwd, allowFail: true });
  return r.stdout.toString('utf8').split('\n').includes(name);
}

/** `git dits pull <remote> <rev>` for a revision other than HEAD: its content into the local store. */
async function pullRevision(ctx: CliContext, repo: RepoPaths, rev: string, specs: string[], remote: string | undefined, json = false): Promise<number> {
  const pointers = await listTreePointers(repo.workTree, rev, specs);
  const manifestIds = pointers.map((p) => p.pointer.manifest);
  const candidates = await contentRemotes(repo, remote);
  if (candidates.length === 0) throw new DitsUserError('no-remote', 'this repository has no Dits remote', { hint: 'git remote add origin dits::s3://bucket/prefix (or dits::file:///path)' });
  const store = ChunkStore.open(repo.ditsDir, { create: true });
  const errors: string[] = [];
  try {
    for (const r of candidates) {
      try {
        const storage = await openRemoteStorage(repo.workTree, r.url);
        const res = await recordingReads(repo, r.url, storage, (access) =>
          ensureLocal(storage, store, { manifestIds }, { remoteName: r.name, onProgress: stderrProgress('Fetching content', ctx.interactive), access, allowFrozen: true }),
        );
        const frozen = res.frozen.length ? frozenFilesOf(store, pointers, res.frozen, r.name, storage) : null;
        if (frozen) {
          // the rest is in the local store; the frozen files are said, with what a thaw costs
          const report = await priceFrozen(repo.workTree, frozen);
          for (const line of formatFrozenReport(report, formatBytes, { rev, then: `Then \`git dits pull ${r.name} ${rev}\` fetches them.` })) err(ctx, line);
          if (json) out(ctx, JSON.stringify({ written: 0, failed: 0, frozenFiles: report.files.length, frozen: report }, null, 2));
          return EXIT_FROZEN;
        }
        if (json) {
          out(ctx, JSON.stringify({ written: 0, failed: 0, frozenFiles: 0, frozen: null, fetched: { chunks: res.chunks, bytes: res.bytes } }));
          return 0;
        }
        out(ctx, `Fetched ${res.chunks} chunk(s), ${formatBytes(res.bytes)} for ${pointers.length} file(s) at ${rev} from ${r.name} into the local store (${res.chunksLocal} chunk(s) were already here); \`git checkout ${rev}\` writes them.`);
        return 0;
      } catch (e) {
        if (!(e instanceof DitsUserError)) throw e;
        errors.push(`${r.name}: ${e.message}`);
      }
    }
  } finally {
    store.close();
  }
  throw new DitsUserError('content-not-on-remotes', `the content of ${rev} was found on none of the remotes asked: ${errors.join('; ')}`, {
    hint: 'push it from a machine that has it, or name the remote that holds it: `git dits pull <remote> <rev>`',
  });
}

export const commands = { checkout: writer('checkout', false), pull };
