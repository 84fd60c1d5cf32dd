/**
 * Running a git command that writes the index while another git process may hold
 * `index.lock` (two `git dits add` at once, an editor's git integration, a GUI). Git itself
 * fails at once with "Unable to create '.../index.lock': File exists"; Dits waits for the
 * lock to go away (polling, as updateIndexStat does for its own writes), then reports a
 * held lock as a user error that says what to do.
 */
import { DitsUserError } from '../errors.js';
import { GitError, runGit, type GitResult, type GitRunOptions } from './exec.js';

/** How long a command waits for another process's index.lock by default. */
export const INDEX_LOCK_WAIT_MS = 5000;

const LOCKED = /Unable to create '([^']*index\.lock)': File exists/;

export async function runGitWritingIndex(args: string[], opts: GitRunOptions & { lockWaitMs?: number }): Promise<GitResult> {
  const deadline = Date.now() + (opts.lockWaitMs ?? INDEX_LOCK_WAIT_MS);
  for (let delay = 20; ; delay = Math.min(delay * 2, 200)) {
    const r = await runGit(args, { ...opts, allowFail: true });
    if (r.exitCode === 0) return r;
    const held = LOCKED.exec(r.stderr);
    if (!held) {
      if (opts.allowFail) return r;
      throw new GitError(args, r.exitCode, r.stderr);
    }
    if (Date.now() >= deadline) {
      throw new DitsUserError('index-locked', `another git process is writing the index: ${held[1]} exists`, {
        hint: `wait for the other git command (an editor, a GUI, a hook) to finish and re-run; if no git process is running, a crashed one left the lock behind: remove ${held[1]}`,
      });
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}
