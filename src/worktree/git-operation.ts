/**
 * Whether a multi-step Git command (rebase, cherry-pick, revert, am) is under way in this
 * worktree, from the state files Git keeps while one runs or is stopped (git 2.39:
 * wt-status.c and sequencer.c read the same ones).
 */
import fs from 'node:fs';
import path from 'node:path';

const STATE = ['rebase-merge', 'rebase-apply', 'sequencer', 'CHERRY_PICK_HEAD', 'REVERT_HEAD'];

/** The first state file found in `gitDir` (the worktree's own git dir), or null. */
export function operationInProgress(gitDir: string): string | null {
  for (const name of STATE) if (fs.existsSync(path.join(gitDir, name))) return name;
  return null;
}

/**
 * Whether the rebase under way has done a step and runs a command (`exec`) next. Git
 * re-reads the index from disk after an exec step (sequencer.c, do_exec), so files written
 * just before one are safe from its stale in-memory index, and the command sees real files.
 * While a step runs, the todo file no longer lists it (it is the last line of `done`): the
 * todo's first command is the next step. Not before the first step: after checking out
 * `onto`, the rebase refreshes and writes back its in-memory index before running anything
 * (measured with git 2.39: the exec then failed with "left changes to the index").
 */
export function nextStepIsExec(gitDir: string): boolean {
  let todo: string;
  try {
    if (fs.statSync(path.join(gitDir, 'rebase-merge', 'done')).size === 0) return false;
    todo = fs.readFileSync(path.join(gitDir, 'rebase-merge', 'git-rebase-todo'), 'utf8');
  } catch {
    return false;
  }
  for (const line of todo.split('\n')) {
    const step = line.trim();
    if (step === '' || step.startsWith('#')) continue;
    return /^(x|exec)\s/.test(step);
  }
  return false;
}
