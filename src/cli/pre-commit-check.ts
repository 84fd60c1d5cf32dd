/**
 * `git dits hook pre-commit`: refuses a commit that would put a proxy (or an edited proxy) in
 * place of its original (src/proxy/proxy-guard.ts), or store media whole in Git (raw
 * content staged at a Dits-tracked path, src/git/raw-content.ts), naming the files, the
 * fix and the override. Also the wording `git dits status` and `fsck` use for the fix.
 */
import { gitConfigGet } from '../git/exec.js';
import { rawStaged, renormalizeCommand, type RawEntry } from '../git/raw-content.js';
import { err, formatBytes, type CliContext } from './context.js';

/** How to stage pointers in place of raw content at `paths` (one line each). */
export async function rawContentFix(cwd: string, paths: string[]): Promise<string[]> {
  const lines: string[] = [];
  if (!(await gitConfigGet('filter.dits.process', cwd))) lines.push('run `git dits install` (once per machine; Git has no Dits filter config here)');
  lines.push(`run \`${renormalizeCommand(paths)}\` to stage pointers in their place (the files stay as they are)`);
  return lines;
}

export function describeRaw(r: RawEntry): string {
  return `${r.path} (${formatBytes(r.size)})`;
}

/**
 * Refuses staged proxies and edited proxies in place of originals (src/proxy/proxy-guard.ts),
 * then raw content. Git runs pre-commit at the top of the work tree, so ctx.cwd is the work tree.
 */
export async function refuseStaged(ctx: CliContext): Promise<number> {
  const { findRepo, isDitsInitialised } = await import('../git/repo.js');
  const repo = await findRepo(ctx.cwd);
  if (isDitsInitialised(repo)) {
    const { ChunkStore } = await import('../store/chunk-store.js');
    const { stagedProxyStandIns, proxyCommitRefusal } = await import('../proxy/proxy-guard.js');
    const store = ChunkStore.open(repo.ditsDir);
    let found;
    try {
      found = await stagedProxyStandIns(ctx.cwd, store);
    } finally {
      store.close();
    }
    if (found.length) {
      for (const line of proxyCommitRefusal(found)) err(ctx, line);
      return 1;
    }
  }
  return refuseRawStaged(ctx);
}

export async function refuseRawStaged(ctx: CliContext): Promise<number> {
  const raw = await rawStaged(ctx.cwd);
  if (raw.length === 0) return 0;
  err(ctx, `error: ${raw.length} file(s) tracked by Dits are staged whole, not as Dits pointers; committing would store them in Git's history:`);
  for (const r of raw.slice(0, 20)) err(ctx, `  ${describeRaw(r)}`);
  if (raw.length > 20) err(ctx, `  ... and ${raw.length - 20} more`);
  for (const line of await rawContentFix(ctx.cwd, raw.map((r) => r.path))) err(ctx, `hint: ${line}`);
  err(ctx, 'hint: then commit again; to commit them whole anyway, use `git commit --no-verify`');
  return 1;
}
