/**
 * Every Dits pointer that anything in the repository can still reach: all refs (branches,
 * tags, remote-tracking refs, refs/stash), every reflog entry, HEAD of each worktree, and
 * the index. What gc must keep and what du counts.
 */
import { runGit } from './exec.js';
import { resolvePointers, type IndexPointer } from './pointers.js';
import { MAX_POINTER_SIZE } from '../manifest/pointer.js';

export async function listReachablePointers(workTree: string): Promise<IndexPointer[]> {
  const r = await runGit(['rev-list', '--objects', '--all', '--reflog', '--indexed-objects', `--filter=blob:limit=${MAX_POINTER_SIZE + 1}`], {
    cwd: workTree,
    allowFail: true,
  });
  if (r.exitCode !== 0 && !/bad revision|unknown revision|does not have any commits/.test(r.stderr)) {
    throw new Error(`git rev-list failed: ${r.stderr.trim()}`);
  }
  const entries: { oid: string; path: string; mode: string }[] = [];
  for (const line of r.stdout.toString('utf8').split('\n')) {
    const sp = line.indexOf(' ');
    if (sp <= 0) continue; // commits have no path
    entries.push({ oid: line.slice(0, sp), path: line.slice(sp + 1), mode: '100644' });
  }
  return resolvePointers(workTree, entries);
}
