/**
 * Where a repository lives: work tree, git dir (per worktree), common dir (shared), object
 * format, and the Dits directory (<common dir>/dits). Found once per command.
 */
import fs, { existsSync } from 'node:fs';
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

/**
 * findRepo without running git, for a process git started at the top of a working tree (the
 * filter process: git runs it there): `<cwd>/.git` is the repository's folder, or a linked
 * worktree's `gitdir:` file. Anything less plain (GIT_DIR and friends in the environment, a
 * config that moves the working tree, makes the repository bare, names another object
 * format or includes other files) gives undefined: ask git then (findRepo). Saves starting
 * git once per filter process.
 */
export function findRepoAtTop(cwd: string, env: NodeJS.ProcessEnv = process.env): RepoPaths | undefined {
  if (env.GIT_DIR !== undefined || env.GIT_WORK_TREE !== undefined || env.GIT_COMMON_DIR !== undefined) return undefined;
  try {
    const workTree = fs.realpathSync(cwd);
    const dotGit = path.join(workTree, '.git');
    const st = fs.lstatSync(dotGit);
    let gitDir: string;
    if (st.isDirectory()) gitDir = dotGit;
    else if (st.isFile()) {
      const m = /^gitdir: (.+?)\r?\n?$/.exec(fs.readFileSync(dotGit, 'utf8'));
      if (!m) return undefined;
      gitDir = fs.realpathSync(path.resolve(workTree, m[1]!));
    } else return undefined;
    if (!fs.statSync(path.join(gitDir, 'HEAD')).isFile()) return undefined;
    let commonDir = gitDir;
    const commonFile = path.join(gitDir, 'commondir');
    if (existsSync(commonFile)) commonDir = fs.realpathSync(path.resolve(gitDir, fs.readFileSync(commonFile, 'utf8').trim()));
    if (existsSync(path.join(gitDir, 'config.worktree'))) return undefined;
    const config = fs.readFileSync(path.join(commonDir, 'config'), 'utf8');
    // core.worktree, core.bare (but for "bare = false"), extensions.objectFormat, [include]/[includeIf]
    if (/^\s*(worktree|objectformat)\b/im.test(config) || /^\s*\[\s*include/im.test(config)) return undefined;
    for (const m of config.matchAll(/^\s*bare\b(.*)$/gim)) if (!/^\s*=\s*false\s*(?:[#;].*)?$/i.test(m[1]!)) return undefined;
    return { workTree, gitDir, commonDir, ditsDir: path.join(commonDir, 'dits'), hashAlgo: 'sha1' };
  } catch {
    return undefined;
  }
}

export function isDitsInitialised(repo: RepoPaths): boolean {
  return existsSync(path.join(repo.ditsDir, 'index.sqlite'));
}

export function requireInitialised(repo: RepoPaths): void {
  if (!isDitsInitialised(repo)) {
    throw new DitsUserError('not-initialised', 'Dits is not set up in this repository yet', { hint: 'run `git dits init` (and `git dits install` once per machine)' });
  }
}
