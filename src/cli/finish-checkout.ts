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
import { err, formatBytes, type CliContext } from './context.js';
import { readDitsConfig } from '../git/dits-config.js';
import { formatFrozenReport, frozenReport, type FrozenReport } from '../tier/frozen-report.js';
import { waitForSend } from '../tier/access-records.js';
import { FOLDER_PRICES, loadPriceTable } from '../tier/prices.js';
import type { FrozenFiles } from '../worktree/remote-fetch.js';
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
  /** files left as pointers because their content is frozen (with what a thaw costs), null when none or unpriced */
  frozen: FrozenReport | null;
  /** how many files were left as pointers because their content is frozen */
  frozenFiles: number;
}

/** The facts about frozen files, priced with the table for the remote's provider. */
export async function priceFrozen(workTree: string, frozen: FrozenFiles): Promise<FrozenReport> {
  const config = await readDitsConfig(workTree);
  const table = frozen.provider === 'folder' ? FOLDER_PRICES : loadPriceTable(config.string('dits.tier.priceTable'));
  return frozenReport(frozen, table);
}

/**
 * Writes the files smudge left as pointers: fetches missing content from the Dits remotes
 * (only `remote` when given; all of it when `explicit`, else as dits.fetchMode/fetchInclude/fetchExclude say), then
 * writes what is local. Prints one line per file that failed, and how many were left.
 */
export async function finishCheckout(ctx: CliContext, paths?: string[], explicit = false, remote?: string): Promise<CheckoutOutcome> {
  const repo = await findRepo(ctx.cwd);
  const list = paths ?? takePending(repo.gitDir);
  if (list.length === 0) return { code: 0, written: 0, deferred: 0, failed: 0, frozen: null, frozenFiles: 0 };
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
    let frozenFiles: FrozenFiles | null = null;
    let accessSent: Promise<void> = Promise.resolve();
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
        frozenFiles = f.frozen;
        accessSent = f.accessSent;
        // frozen files stay pointers, like deferred ones: never written, never a failure
        for (const z of f.frozen?.files ?? []) deferred.add(z.path);
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
    const nFrozen = frozenFiles?.files.length ?? 0;
    if (deferred.size > nFrozen) err(ctx, `dits: ${deferred.size - nFrozen} file(s) left as pointers (lazy fetch); \`git dits pull <paths>\` fetches them.`);
    let frozen: FrozenReport | null = null;
    if (frozenFiles) {
      try {
        frozen = await priceFrozen(repo.workTree, frozenFiles);
        for (const line of formatFrozenReport(frozen, formatBytes)) err(ctx, line);
      } catch (e) {
        report(ctx, e); // a bad price table: say so; the files are still listed below
        for (const z of frozenFiles.files) err(ctx, `dits: ${z.path} is frozen on ${frozenFiles.remote}: \`git dits thaw ${z.path}\` restores it`);
      }
    }
    await waitForSend(accessSent); // bounded: a slow send is left for the next flush
    return { code: result.failed.length ? 1 : 0, written: result.written.length + proxied, deferred: deferred.size - nFrozen, failed: result.failed.length, frozen, frozenFiles: nFrozen };
  } finally {
    store.close();
  }
}
