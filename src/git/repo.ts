/**
 * Where a repository lives: work tree, git dir (per worktree), common dir (shared), object
 * format, and the Dits directory (<common dir>/dits). Found once per command.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { DitsUserError } from '../errors.js';
import { runGit } from './exec.js';

export interface RepoPaths {
  workTree: string;
  gitDir: string;
  commonDir: string;
  ditsDir: string;
  hashAlgo: 'sha1' | 'sha256';
}

export async function findRepo(cwd: string): Promise<RepoPaths> {
  const r = await runGit(['rev-parse', '--path-format=absolute', '--show-toplevel', '--git-dir', '--git-common-dir', '--show-object-format'], {
    cwd,
    allowFail: true,
  });
  if (r.exitCode !== 0) {
    if (/not a git repository/i.test(r.stderr)) {
      throw new DitsUserError('not-a-repo', 'not inside a Git repository', { hint: 'cd into a repository, or create one with `git init` and then run `git dits init`' });
    }
    if (/must be run in a work tree|bare repository/i.test(r.stderr)) {
      throw new DitsUserError('bare-repo', 'this command needs a working tree (this is a bare repository)', { hint: 'run it inside a clone' });
    }
    throw new DitsUserError('git-failed', r.stderr.trim() || 'git rev-parse failed');
  }
  const [workTree, gitDir, commonDir, format] = r.stdout.toString('utf8').trim().split('\n');
  if (!workTree || !gitDir || !commonDir) throw new DitsUserError('bare-repo', 'this command needs a working tree (this is a bare repository)', { hint: 'run it inside a clone' });
  return {
    workTree,
    gitDir,
    commonDir,
    ditsDir: path.join(commonDir, 'dits'),
    hashAlgo: format === 'sha256' ? 'sha256' : 'sha1',
  };
}

export function isDitsInitialised(repo: RepoPaths): boolean {
  return existsSync(path.join(repo.ditsDir, 'index.sqlite'));
}

export function requireInitialised(repo: RepoPaths): void {
  if (!isDitsInitialised(repo)) {
    throw new DitsUserError('not-initialised', 'Dits is not set up in this repository yet', { hint: 'run `git dits init` (and `git dits install` once per machine)' });
  }
}
