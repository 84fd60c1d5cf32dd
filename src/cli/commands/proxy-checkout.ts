/**
 * `git dits checkout --mode proxy|original [<path>...]`: shows proxies in place of the
 * originals, or the originals again (src/proxy/checkout-mode.ts), and remembers the mode
 * per path. Originals whose content is not here are written by the normal checkout
 * (fetched as `git dits checkout` does).
 */
import path from 'node:path';
import { findRepo, requireInitialised } from '../../git/repo.js';
import { listIndexPointers } from '../../git/pointers.js';
import { ChunkStore } from '../../store/chunk-store.js';
import { DitsUserError } from '../../errors.js';
import { switchCheckoutMode, type CheckoutMode, type SwitchReport } from '../../proxy/checkout-mode.js';
import { finishCheckout } from '../finish-checkout.js';
import { ensureVariantsLocal } from '../../proxy/fetch-proxies.js';
import { stderrProgress } from '../../remote/content-adapter.js';
import { err, out, printJson, type CliContext } from '../context.js';

function some(paths: string[]): string {
  return paths.slice(0, 5).join(', ') + (paths.length > 5 ? ` and ${paths.length - 5} more` : '');
}

export async function runModeCheckout(ctx: CliContext, mode: CheckoutMode, positionals: string[], o: { json: boolean; keep: boolean }): Promise<number> {
  const repo = await findRepo(ctx.cwd);
  requireInitialised(repo);
  const specs = positionals.map((p) => path.relative(repo.workTree, path.resolve(ctx.cwd, p)) || '.');
  const entries = (await listIndexPointers(repo.workTree, specs)).filter((e) => e.stage === 0);
  if (entries.length === 0 && positionals.length > 0) {
    throw new DitsUserError('no-tracked-match', `no file tracked by Dits matches ${positionals.map((p) => `'${p}'`).join(', ')}`, {
      hint: '`git dits status --all` lists the tracked files',
    });
  }
  if (entries.length === 0 && !o.json) {
    out(ctx, 'No file tracked by Dits here yet (`git dits track "*.mov"`, then `git add` and commit).');
    return 0;
  }
  const store = ChunkStore.open(repo.ditsDir, { create: true });
  let report: SwitchReport;
  try {
    if (mode === 'proxy') {
      // proxies a remote has and this store lacks are fetched first (nothing asked when all are here)
      const r = await ensureVariantsLocal(repo, store, entries.map((e) => e.pointer.oid), { onProgress: stderrProgress('Fetching proxies', ctx.interactive) });
      for (const f of r.failures) err(ctx, `dits: warning: proxies from ${f.remote}: ${f.message}`);
    }
    report = await switchCheckoutMode(repo, store, entries, mode, { keepChanged: o.keep });
  } finally {
    store.close();
  }
  // originals whose content is not here: their pointers went in; fetched and written now
  const toFetch = report.switched.filter((s) => s.how === 'pointer').map((s) => s.path);
  const fetched = toFetch.length ? await finishCheckout(ctx, toFetch, true) : null;
  const code = report.changed.length || report.proxyNotLocal.length || fetched?.code ? 1 : 0;
  if (o.json) {
    printJson(ctx, { ...report, fetched: fetched ? { written: fetched.written, failed: fetched.failed } : null });
    return code;
  }
  const byRename = report.switched.filter((s) => s.how === 'parked').length;
  if (report.switched.length) out(ctx, `Switched ${report.switched.length} file(s) to ${mode}${byRename ? ` (${byRename} by a rename, no copy)` : ''}.`);
  if (report.already.length) out(ctx, `${report.already.length} file(s) already show the ${mode}.`);
  if (report.noProxy.length) out(ctx, `No proxy recorded for ${report.noProxy.length} file(s), which stay original: ${some(report.noProxy)} (\`git dits proxy make <path>\` makes one).`);
  if (report.proxyNotLocal.length) err(ctx, `dits: the proxy of ${report.proxyNotLocal.length} file(s) is not in the local store: ${some(report.proxyNotLocal)}\nhint: \`git dits fetch-proxy ${report.proxyNotLocal.slice(0, 5).join(' ')}\` fetches it, then run this again`);
  if (report.changed.length) err(ctx, `dits: ${report.changed.length} file(s) changed in the working tree were left as they are: ${some(report.changed)}\nhint: commit or stash the changes, then run this again; an edited proxy cannot be committed: move it away to keep it, or \`git dits checkout --mode original --keep <path>\` if it is a new version of its own`);
  if (report.kept.length) out(ctx, `Kept ${report.kept.length} changed file(s) as they are, as new versions of their own: ${some(report.kept)} (\`git add\` and commit them as usual).`);
  if (report.missing.length) err(ctx, `dits: ${report.missing.length} file(s) deleted from the working tree were left alone: ${some(report.missing)} (\`git restore <path>\` brings them back)`);
  return code;
}
