import path from 'node:path';
import { findRepo } from '../../git/repo.js';
import { ChunkStore } from '../../store/chunk-store.js';
import { takePending } from '../../worktree/pending.js';
import { operationInProgress } from '../../worktree/git-operation.js';
import { claimEarly } from '../../worktree/early-write.js';
import { materializePaths, readWorktreePointer } from '../../worktree/materialize-worktree.js';
import { discardPrepared, fetchMissingContent, readFetchPolicy, type PreparedFile } from '../../worktree/remote-fetch.js';
import { stderrProgress } from '../../remote/content-adapter.js';
import { dropUnusedLinks } from '../../worktree/worktree-links.js';
import { createProgressBar } from '../progress.js';
import { err, type CliContext } from '../context.js';
import type { Command } from '../main.js';
import { DitsUserError, isUserError } from '../../errors.js';
import { HOOK_NAMES } from '../../worktree/hooks.js';
import { describeFault } from '../faults.js';
import { applyLockableModes, heldPaths, readMyLocks } from '../../worktree/lockable.js';

function report(ctx: CliContext, e: unknown): void {
  const fault = describeFault(e); // the disk, permissions, a busy store: say which and what to do
  if (fault) {
    err(ctx, `dits: ${fault.message}\nhint: ${fault.hint}`);
    return;
  }
  err(ctx, `dits: ${isUserError(e) || e instanceof Error ? e.message : String(e)}`);
  if (isUserError(e) && e.hint) err(ctx, `hint: ${e.hint}`);
}

/** What a finishCheckout did: files written, left for a later pull (lazy fetch), failed. */
export interface CheckoutOutcome {
  /** 1 if any file failed, else 0 */
  code: number;
  written: number;
  deferred: number;
  failed: number;
}

/**
 * Writes the files smudge left as pointers: fetches missing content from the Dits remotes
 * (only `remote` when given; all of it when `explicit`, else as dits.fetchMode/fetchInclude/fetchExclude say), then
 * writes what is local. Prints one line per file that failed, and how many were left.
 */
export async function finishCheckout(ctx: CliContext, paths?: string[], explicit = false, remote?: string): Promise<CheckoutOutcome> {
  const repo = await findRepo(ctx.cwd);
  const list = paths ?? takePending(repo.gitDir);
  if (list.length === 0) return { code: 0, written: 0, deferred: 0, failed: 0 };
  const store = ChunkStore.open(repo.ditsDir, { create: true });
  try {
    const items = list.flatMap((p) => {
      const wp = readWorktreePointer(path.join(repo.workTree, p));
      return wp ? [{ path: p, pointer: wp.pointer }] : [];
    });
    let deferred = new Set<string>();
    let prepared = new Map<string, PreparedFile>();
    let linkPrepared = false;
    let early = new Map<string, PreparedFile>();
    let result: Awaited<ReturnType<typeof materializePaths>>;
    try {
      try {
        const policy = explicit ? null : await readFetchPolicy(repo.workTree);
        // files are written as their content arrives (no second pass over what was fetched)
        const f = await fetchMissingContent(repo, store, items, policy, stderrProgress('Fetching content', ctx.interactive), { assemble: true, remote });
        deferred = new Set(f.deferred);
        prepared = f.prepared;
        linkPrepared = f.keptLocally === false;
      } catch (e) {
        report(ctx, e);
      }
      const bar = createProgressBar(ctx, 'Writing files');
      const todo = items.filter((i) => !deferred.has(i.path));
      // files the filter process began writing while git checked out (early-write.ts)
      const abs = (p: string): string => path.join(repo.workTree, p);
      early = await claimEarly(
        repo.gitDir,
        todo.filter((i) => !prepared.has(abs(i.path))).map((i) => ({ file: abs(i.path), pointer: i.pointer })),
        (d, t) => bar.update(d, t),
      );
      result = await materializePaths(
        repo,
        store,
        todo.map((i) => i.path),
        { onProgress: (d, t) => bar.update(d, t), prepared, linkPrepared, early },
      );
      bar.done();
    } finally {
      discardPrepared(prepared);
      discardPrepared(early);
      // links to earlier versions served this checkout; those no longer in the tree go
      dropUnusedLinks(store);
    }
    // -- lockable files (src/worktree/lockable.ts): read-only unless held, from the local lock cache
    try {
      await applyLockableModes(repo, result.written, heldPaths(readMyLocks(repo.ditsDir)));
    } catch (e) {
      report(ctx, e);
    }
    // -- end lockable
    for (const f of result.failed) report(ctx, f.error);
    if (result.failed.length) err(ctx, `dits: ${result.failed.length} file(s) left as pointers; \`git dits status\` lists them.`);
    if (deferred.size) err(ctx, `dits: ${deferred.size} file(s) left as pointers (lazy fetch); \`git dits pull <paths>\` fetches them.`);
    return { code: result.failed.length ? 1 : 0, written: result.written.length, deferred: deferred.size, failed: result.failed.length };
  } finally {
    store.close();
  }
}

const hook: Command = {
  summary: 'Run a Dits hook (called by the hooks `git dits init` installs)',
  usage: 'git dits hook <post-checkout|post-merge|post-rewrite|reference-transaction|pre-commit> [args]',
  async run(args, ctx) {
    if (!(HOOK_NAMES as readonly string[]).includes(args[0] ?? '')) {
      throw new DitsUserError('bad-usage', args[0] === undefined ? 'name the hook to run' : `'${args[0]}' is not a Dits hook`, { hint: `one of ${HOOK_NAMES.join(', ')}; git runs these from the hooks \`git dits init\` installs`, exitCode: 2 });
    }
    if (args[0] === 'pre-commit') return (await import('../pre-commit-check.js')).refuseRawStaged(ctx);
    // Mid-operation hooks leave the files to be finished later. A rebase, cherry-pick or
    // revert (the sequencer) is one git process that keeps its index in memory from step to
    // step: it runs reference-transaction at every commit and post-checkout when it checks
    // out `onto`, then goes on to the next step with the stat data of the pointers it wrote.
    // Were the hook to write the real files then, that next step would find them changed
    // ("Your local changes ... would be overwritten", and the index it writes back makes
    // them look modified). Left as pointers, they are written by post-rewrite when a rebase
    // ends, or by the filter process that smudged them when git closes its pipe at exit
    // (filter-process.ts), whichever comes first.
    if (args[0] === 'post-checkout' || args[0] === 'post-merge' || args[0] === 'reference-transaction') {
      const repo = await findRepo(ctx.cwd);
      if (operationInProgress(repo.gitDir)) return 0;
    }
    // A hook's exit status would become the git command's (a clone would report failure
    // over one missing file): files that could not be written stay pointers, are reported
    // above, and `git dits status` / `git dits checkout` pick them up.
    await finishCheckout(ctx);
    return 0;
  },
};

export const commands = { hook };
