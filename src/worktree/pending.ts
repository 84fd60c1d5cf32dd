/**
 * The pending list: paths whose working-tree file smudge left as a pointer, for the hook
 * to materialize. One file per worktree (`<git dir>/dits/pending`), NUL-separated paths,
 * appended by the filter process. The hook takes the list by renaming it first, so paths
 * added meanwhile go to a new list and are not lost.
 */
import fs from 'node:fs';
import path from 'node:path';

export function pendingFile(gitDir: string): string {
  return path.join(gitDir, 'dits', 'pending');
}

export function addPending(gitDir: string, relPath: string): void {
  fs.mkdirSync(path.join(gitDir, 'dits'), { recursive: true });
  fs.appendFileSync(pendingFile(gitDir), relPath + '\0');
}

/** Takes the current list (atomically) and returns its distinct paths. */
export function takePending(gitDir: string): string[] {
  const file = pendingFile(gitDir);
  const taken = `${file}.${process.pid}.${Date.now()}`;
  try {
    fs.renameSync(file, taken);
  } catch {
    return [];
  }
  const text = fs.readFileSync(taken, 'utf8');
  fs.rmSync(taken, { force: true });
  return [...new Set(text.split('\0').filter(Boolean))];
}

/**
 * Takes from the list only the paths in `mine` (the ones this filter process left as
 * pointers) and puts the others back: they belong to another git command still running,
 * which finishes them itself.
 */
export function takeOwnPending(gitDir: string, mine: ReadonlySet<string>): string[] {
  const all = takePending(gitDir);
  const own: string[] = [];
  for (const p of all) {
    if (mine.has(p)) own.push(p);
    else addPending(gitDir, p);
  }
  return own;
}
