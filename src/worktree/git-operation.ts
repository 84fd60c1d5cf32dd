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
