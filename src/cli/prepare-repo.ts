/**
 * Setting a repository up for Dits from git-remote-dits, during a clone or fetch: on a
 * machine where `git dits install` never ran, nothing else would, and the clone would
 * check out every tracked file as its pointer (exit 0, `git status` clean), and a later
 * plain `git add` would store whole media files in Git.
 *
 * When it runs: git starts the helper for `git clone` with GIT_DIR set to the new
 * repository (its cwd is where clone was started, not the work tree) and checks out only
 * after the helper's fetch has returned. Config the helper writes before it answers the
 * fetch is what the checkout reads (tested with git 2.39 in test/clone-setup.test.ts; clone
 * writes config of its own after the fetch, and git drops its config cache when it writes
 * config); the hooks are looked up when they run.
 */
import fs from 'node:fs';
import path from 'node:path';
import { runGit } from '../git/exec.js';
import { findRepo, isDitsInitialised } from '../git/repo.js';
import { filterConfig } from '../git/filter-config.js';
import { initRepo } from '../worktree/init-repo.js';

/**
 * The work tree of the (non-bare) repository at `gitDir`, or null when the helper cannot
 * tell: `git clone --separate-git-dir` knows it but neither sets core.worktree nor passes
 * it to the helper.
 */
async function workTreeOf(gitDir: string, env: NodeJS.ProcessEnv): Promise<string | null> {
  const configured = await runGit(['config', '--get', 'core.worktree'], { cwd: gitDir, env, allowFail: true });
  if (configured.exitCode === 0) return path.resolve(gitDir, configured.stdout.toString('utf8').trim());
  return path.basename(gitDir) === '.git' ? path.dirname(gitDir) : null;
}

/**
 * Makes sure the repository at `gitDir` uses Dits: the filter, diff and merge config in
 * its .git/config when no config (any scope) names the Dits filter, calling `ditsBin` by
 * its absolute path (git-dits need not be on PATH); and the store and hooks of
 * `git dits init` when they are missing. Says on stderr (`log`) what it wrote. Never
 * throws for a repository it cannot set up: it says what to run instead.
 */
export async function prepareRepoForDits(gitDir: string, ditsBin: string, log: (line: string) => void): Promise<void> {
  const env: NodeJS.ProcessEnv = { ...process.env, GIT_DIR: gitDir };
  delete env.GIT_WORK_TREE;
  try {
    const bare = await runGit(['rev-parse', '--is-bare-repository'], { cwd: gitDir, env, allowFail: true });
    if (bare.stdout.toString('utf8').trim() === 'true') return; // nothing is checked out
    const filter = await runGit(['config', '--get', 'filter.dits.process'], { cwd: gitDir, env, allowFail: true });
    if (filter.exitCode !== 0) {
      for (const [k, v] of filterConfig(ditsBin)) await runGit(['config', '--local', '--replace-all', k, v], { cwd: gitDir, env });
      log('dits: `git dits install` was not run on this machine: set up this repository for Dits (filter config in .git/config).');
      log('hint: run `git dits install` once to set up every repository on this machine.');
    }
    // Without a work tree known here, the filter process sets the store and hooks up when
    // the checkout first hands it a big file (filter-process.ts, ensureInit).
    const workTree = await workTreeOf(gitDir, env);
    if (workTree === null) return;
    // findRepo and initRepo run git in the work tree with the helper's environment (GIT_DIR, if set, is this repository)
    if (fs.existsSync(workTree) && !isDitsInitialised(await findRepo(workTree))) await initRepo(workTree, ditsBin);
  } catch (e) {
    log(`dits: could not set this repository up for Dits (${e instanceof Error ? e.message : String(e)})`);
    log('hint: in the clone, run `git dits install --local` (or `git dits install`), `git dits init`, then `git dits checkout`');
  }
}
