/**
 * Finishing a checkout: the files smudge left as pointers are written (their content
 * fetched first where it is missing), as the hooks, the filter process at git's exit,
 * `git dits checkout` and `git dits pull` all need. Prints what failed and what was left.
 */
import path from 'node:path';
import { findRepo } from '../git/repo.js';
import { ChunkStore } from '../store/chunk-store.js';
import { takePending } from '../worktree/pending.js';
import { claimEarly } from '../worktree/early-write.js';
import { materializePaths, readWorktreePointer } from '../worktree/materialize-worktree.js';
import { discardPrepared, fetchMissingContent, readFetchPolicy, type PreparedFile } from '../worktree/remote-fetch.js';
import { stderrProgress } from '../remote/content-adapter.js';
import { ensureVariantsLocal } from '../proxy/fetch-proxies.js';
import { dropUnusedLinks } from '../worktree/worktree-links.js';
import { applyLockableModes, heldPaths, readMyLocks } from '../worktree/lockable.js';
import { isUserError } from '../errors.js';
import { createProgressBar } from './progress.js';
import { err, type CliContext } from './context.js';
import { describeFault } from './faults.js';
import { writeProxiesForCheckout } from '../proxy/checkout-mode.js';

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
    let items = list.flatMap((p) => {
      const wp = readWorktreePointer(path.join(repo.workTree, p));
      return wp ? [{ path: p, pointer: wp.pointer }] : [];
    });
    // -- checkout modes (src/proxy/checkout-mode.ts): proxy-mode paths get their proxy
    let proxied = 0;
    try {
      // proxies not here come from the remotes (records, then content): a clone with
      // dits.checkoutMode=proxy downloads only them, and the originals stay lazy
      const px = await writeProxiesForCheckout(repo, store, items, {
        fetchProxies: async (originals) => {
          const r = await ensureVariantsLocal(repo, store, originals, { remote, onProgress: stderrProgress('Fetching proxies', ctx.interactive) });
          for (const f of r.failures) err(ctx, `dits: warning: proxies from ${f.remote}: ${f.message}`);
        },
      });
      proxied = px.written.length;
      const taken = new Set([...px.written, ...px.notLocal]);
      if (taken.size) items = items.filter((i) => !taken.has(i.path));
      if (px.notLocal.length) {
        err(ctx, `dits: ${px.notLocal.length} file(s) in proxy mode left as pointers: their proxy is not in the local store (e.g. ${px.notLocal[0]}); \`git dits fetch-proxy <paths>\` fetches it, or \`git dits checkout --mode original <paths>\` writes the original`);
      }
    } catch (e) {
      report(ctx, e);
    }
    // -- end checkout modes
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
    return { code: result.failed.length ? 1 : 0, written: result.written.length + proxied, deferred: deferred.size, failed: result.failed.length };
  } finally {
    store.close();
  }
}
