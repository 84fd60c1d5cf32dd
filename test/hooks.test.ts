/**
 * The hooks `git dits init` installs are the files of hooks/ (src/worktree/hooks.ts), with
 * the absolute path of git-dits filled in: installed byte for byte, upgraded over the
 * string-built hooks of earlier versions, and run as real sh scripts by real git.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { DITS_BIN, GitSandbox, ROOT, writeFile } from './helpers/git-env.js';
import { GIT_DITS_PLACEHOLDER, HOOK_MARKER, HOOK_NAMES, hookScript, hookSourceDir, installHooks, uninstallHooks } from '../src/worktree/hooks.js';

let sb: GitSandbox;
beforeAll(() => {
  sb = new GitSandbox('dits-hooks-');
});
afterAll(() => sb.cleanup());

const shQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
/** hooks/<name> (or an old version's fixture) as it is installed for `bin`. */
const expected = (dir: string, name: string, bin = DITS_BIN): string => fs.readFileSync(path.join(dir, name), 'utf8').split(GIT_DITS_PLACEHOLDER).join(shQuote(bin));
const HOOKS = path.join(ROOT, 'hooks');
const OLD_HOOKS = path.join(ROOT, 'test', 'fixtures', 'hooks-0.1');

describe('the hook files', () => {
  it('are found in the package, each a sh script with the marker and the git-dits placeholder', () => {
    expect(hookSourceDir()).toBe(HOOKS);
    for (const name of HOOK_NAMES) {
      const text = fs.readFileSync(path.join(HOOKS, name), 'utf8');
      expect(text.startsWith('#!/bin/sh\n'), name).toBe(true);
      expect(text.split('\n')[1], name).toContain(HOOK_MARKER);
      expect(text, name).toContain(GIT_DITS_PLACEHOLDER);
      expect(text, name).toContain(`hook ${name}`);
      expect(sb.run('sh', ['-n', path.join(HOOKS, name)], sb.dir).status, name).toBe(0);
    }
  });

  it('git dits init installs them byte for byte, with the absolute path of git-dits, executable; again: nothing to do', () => {
    const repo = path.join(sb.dir, 'fresh');
    sb.mustGit(['init', '-q', repo], sb.dir);
    expect(sb.mustDits(['init'], repo)).toContain(`Hooks installed: ${HOOK_NAMES.join(', ')}`);
    for (const name of HOOK_NAMES) {
      const file = path.join(repo, '.git', 'hooks', name);
      expect(fs.readFileSync(file, 'utf8'), name).toBe(expected(HOOKS, name));
      expect(fs.statSync(file).mode & 0o111, name).toBe(0o111);
      expect(fs.existsSync(`${file}.pre-dits`), name).toBe(false);
    }
    expect(sb.mustDits(['init'], repo)).not.toContain('Hooks installed');
  });

  it('an upgrade replaces the hooks an earlier version built from strings, and keeps the user hook that ran before them', () => {
    const repo = path.join(sb.dir, 'upgrade');
    sb.mustGit(['init', '-q', repo], sb.dir);
    const hooks = path.join(repo, '.git', 'hooks');
    for (const name of HOOK_NAMES) {
      writeFile(path.join(hooks, name), expected(OLD_HOOKS, name));
      fs.chmodSync(path.join(hooks, name), 0o755);
    }
    const mine = '#!/bin/sh\necho "user hook ran $*" >> "$(git rev-parse --git-dir)/user-hook.log"\n';
    writeFile(path.join(hooks, 'post-checkout.pre-dits'), mine);
    fs.chmodSync(path.join(hooks, 'post-checkout.pre-dits'), 0o755);
    const out = sb.mustDits(['init'], repo);
    expect(out).toContain(`Hooks installed: ${HOOK_NAMES.join(', ')}`);
    expect(out).not.toContain('kept');
    for (const name of HOOK_NAMES) {
      expect(fs.readFileSync(path.join(hooks, name), 'utf8'), name).toBe(expected(HOOKS, name));
      if (name !== 'post-checkout') expect(fs.existsSync(path.join(hooks, `${name}.pre-dits`)), name).toBe(false);
    }
    expect(fs.readFileSync(path.join(hooks, 'post-checkout.pre-dits'), 'utf8')).toBe(mine);
    sb.mustGit(['commit', '-q', '--allow-empty', '-m', 'x'], repo);
    sb.mustGit(['checkout', '-q', '-b', 'b'], repo);
    expect(fs.readFileSync(path.join(repo, '.git', 'user-hook.log'), 'utf8')).toMatch(/^user hook ran [0-9a-f]{40} [0-9a-f]{40} 1$/m);
  });

  it('run the git-dits whose path they were installed with when none is on PATH (a path with a quote and a space)', () => {
    const repo = sb.repo('quoted-bin');
    const binDir = path.join(sb.dir, "it's a dir");
    const mark = path.join(sb.dir, 'quoted-bin-ran');
    const fake = path.join(binDir, 'git-dits');
    writeFile(fake, `#!/bin/sh\necho "$@" >> '${mark}'\n`);
    fs.chmodSync(fake, 0o755);
    const hooks = path.join(sb.dir, 'quoted-hooks');
    expect(installHooks(hooks, fake).installed).toEqual([...HOOK_NAMES]);
    expect(fs.readFileSync(path.join(hooks, 'post-merge'), 'utf8')).toBe(hookScript('post-merge', fake));
    // PATH with git alone: no git-dits on it
    const onlyGit = path.join(sb.dir, 'only-git');
    fs.mkdirSync(onlyGit);
    fs.symlinkSync(sb.run('sh', ['-c', 'command -v git'], sb.dir).stdout.trim(), path.join(onlyGit, 'git'));
    const env = { PATH: onlyGit };
    // nothing pending: git-dits does not run
    expect(sb.run(path.join(hooks, 'post-merge'), ['0'], repo, undefined, env).status).toBe(0);
    expect(fs.existsSync(mark)).toBe(false);
    fs.writeFileSync(path.join(repo, '.git', 'dits', 'pending'), 'a.mov\0');
    expect(sb.run(path.join(hooks, 'post-merge'), ['0'], repo, undefined, env).status).toBe(0);
    // reference-transaction acts on "committed" only
    expect(sb.run(path.join(hooks, 'reference-transaction'), ['prepared'], repo, '', env).status).toBe(0);
    expect(sb.run(path.join(hooks, 'reference-transaction'), ['committed'], repo, '', env).status).toBe(0);
    expect(fs.readFileSync(mark, 'utf8')).toBe('hook post-merge 0\nhook reference-transaction committed\n');
  });

  it('a copy of the package installed elsewhere installs its own hooks/, naming its own git-dits', () => {
    const pkg = path.join(sb.dir, 'installed', 'dits');
    fs.mkdirSync(pkg, { recursive: true });
    for (const part of ['package.json', 'bin', 'hooks']) fs.cpSync(path.join(ROOT, part), path.join(pkg, part), { recursive: true });
    fs.cpSync(path.join(ROOT, 'dist', 'src'), path.join(pkg, 'dist', 'src'), { recursive: true, filter: (f) => !f.endsWith('.map') });
    fs.symlinkSync(fs.realpathSync(path.join(ROOT, 'node_modules')), path.join(pkg, 'node_modules'));
    fs.appendFileSync(path.join(pkg, 'hooks', 'post-merge'), '# from the installed copy\n');
    const repo = path.join(sb.dir, 'from-copy');
    sb.mustGit(['init', '-q', repo], sb.dir);
    const bin = path.join(pkg, 'bin', 'git-dits');
    const r = sb.run(bin, ['init'], repo);
    expect(r.status, r.stderr).toBe(0);
    for (const name of HOOK_NAMES) {
      expect(fs.readFileSync(path.join(repo, '.git', 'hooks', name), 'utf8'), name).toBe(expected(path.join(pkg, 'hooks'), name, bin));
    }
    expect(fs.readFileSync(path.join(repo, '.git', 'hooks', 'post-merge'), 'utf8')).toMatch(/# from the installed copy\n$/);
  });

  it('uninstall removes only Dits hooks and puts the user hook back', () => {
    const hooks = path.join(sb.dir, 'uninstall-hooks');
    const mine = '#!/bin/sh\nexit 0\n';
    writeFile(path.join(hooks, 'pre-commit'), mine);
    writeFile(path.join(hooks, 'pre-push'), mine);
    expect(installHooks(hooks, DITS_BIN).kept).toEqual(['pre-commit']);
    expect(uninstallHooks(hooks)).toEqual([...HOOK_NAMES]);
    expect(fs.readdirSync(hooks).sort()).toEqual(['pre-commit', 'pre-push']);
    expect(fs.readFileSync(path.join(hooks, 'pre-commit'), 'utf8')).toBe(mine);
  });
});
