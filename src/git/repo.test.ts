import { afterEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findRepo, findRepoAtTop } from './repo.js';

const dirs: string[] = [];
function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'dits-repo-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const env = { ...process.env, GIT_DIR: undefined, GIT_WORK_TREE: undefined, GIT_COMMON_DIR: undefined };
function git(cwd: string, ...args: string[]): void {
  execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', ...args], { cwd, stdio: 'ignore', env: env as NodeJS.ProcessEnv });
}

describe('findRepoAtTop', () => {
  it("finds what git finds at the top of a repository and of a linked worktree, and leaves every other layout to git", async () => {
    const top = tmpDir();
    const main = path.join(top, 'main');
    fs.mkdirSync(main);
    git(main, 'init', '-q');
    git(main, 'commit', '-q', '--allow-empty', '-m', 'x');
    git(main, 'worktree', 'add', '-q', path.join(top, 'wt'));
    fs.symlinkSync(main, path.join(top, 'link'));
    for (const dir of [main, path.join(top, 'wt'), path.join(top, 'link')]) {
      const fast = findRepoAtTop(dir, env);
      expect(fast).toBeDefined();
      expect(fast).toEqual(await findRepo(dir));
    }
    // not the top: git decides
    fs.mkdirSync(path.join(main, 'sub'));
    expect(findRepoAtTop(path.join(main, 'sub'), env)).toBeUndefined();
    // GIT_DIR set: git decides
    expect(findRepoAtTop(main, { ...env, GIT_DIR: path.join(main, '.git') })).toBeUndefined();
    // a config that moves the working tree, makes it bare or includes another file: git decides
    for (const [key, value] of [['core.worktree', top], ['core.bare', 'true'], ['include.path', '/dev/null']] as const) {
      git(main, 'config', key, value);
      expect(findRepoAtTop(main, env)).toBeUndefined();
      git(main, 'config', '--unset', key);
    }
    git(main, 'config', 'core.bare', 'false');
    expect(findRepoAtTop(main, env)).toEqual(await findRepo(main));
    // another object format
    const sha256 = path.join(top, 'sha256');
    fs.mkdirSync(sha256);
    git(sha256, 'init', '-q', '--object-format=sha256');
    expect(findRepoAtTop(sha256, env)).toBeUndefined();
    expect((await findRepo(sha256)).hashAlgo).toBe('sha256');
  });
});
