/**
 * Clones and first steps on a machine where `git dits install` never ran, and the clone
 * edge cases git-remote-dits must refuse or support: shallow clones, typos in a remote's
 * path, ls-remote outside a repository. Real git, real git-remote-dits, file remotes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { GitSandbox, ROOT, SMALL_CHUNKS, randomBytesSeeded, writeFile } from './helpers/git-env.js';

/** A machine that never ran `git dits install`: no filter config anywhere. */
let sb: GitSandbox;
/**
 * PATH with git-remote-dits but no git-dits (as when only the helper is linked onto PATH):
 * only the tools git, the hooks and bin/ need, since a git-dits may be installed in /usr/bin.
 */
let helperOnlyPath: string;

beforeAll(() => {
  sb = new GitSandbox('dits-clone-setup-', { install: false });
  const bin = path.join(sb.dir, 'helper-bin');
  fs.mkdirSync(bin);
  fs.symlinkSync(path.join(ROOT, 'bin', 'git-remote-dits'), path.join(bin, 'git-remote-dits'));
  fs.symlinkSync(process.execPath, path.join(bin, 'node'));
  for (const tool of ['git', 'tr', 'grep']) {
    const found = sb.run('sh', ['-c', `command -v ${tool}`], sb.dir).stdout.trim();
    fs.symlinkSync(found, path.join(bin, tool));
  }
  helperOnlyPath = bin;
});
afterAll(() => sb?.cleanup());

const remoteUrl = (name: string): string => `dits::file://${path.join(sb.dir, 'remotes', name)}`;

/** A source repository set up with `install --local` (so this HOME stays uninstalled), two versions of a.mov pushed to `remote`. */
function pushedSource(name: string): { repo: string; url: string; v1: Buffer; v2: Buffer } {
  const repo = sb.repo(name, { config: SMALL_CHUNKS });
  sb.mustDits(['install', '--local'], repo);
  sb.mustDits(['track', '*.mov'], repo);
  const v1 = randomBytesSeeded(300_000, 7);
  const v2 = randomBytesSeeded(300_000, 8);
  writeFile(path.join(repo, 'a.mov'), v1);
  sb.mustGit(['add', '.'], repo);
  sb.mustGit(['commit', '-q', '-m', 'v1'], repo);
  writeFile(path.join(repo, 'a.mov'), v2);
  sb.mustGit(['commit', '-q', '-am', 'v2'], repo);
  const url = remoteUrl(name);
  sb.mustGit(['remote', 'add', 'origin', url], repo);
  sb.mustGit(['push', '-q', 'origin', 'main'], repo);
  return { repo, url, v1, v2 };
}

describe('a clone where `git dits install` never ran', () => {
  it('checks out real files, and a later plain `git add` stores a pointer, with only git-remote-dits on PATH', () => {
    const { url, v2 } = pushedSource('src-plain');
    expect(sb.git(['config', '--global', '--get', 'filter.dits.process'], sb.dir).status).not.toBe(0); // really never installed
    const dest = path.join(sb.dir, 'plain-clone');
    const args = ['clone', '-q'];
    for (const [k, v] of Object.entries(SMALL_CHUNKS)) args.push('-c', `${k}=${v}`);
    const r = sb.git([...args, url, dest], sb.dir, undefined, { PATH: helperOnlyPath });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/git dits install/); // says what it did and what to run once
    // the checkout is real, and git sees nothing changed
    expect(fs.readFileSync(path.join(dest, 'a.mov')).equals(v2)).toBe(true);
    expect(sb.git(['status', '--porcelain'], dest, undefined, { PATH: helperOnlyPath }).stdout).toBe('');
    // the filter calls git-dits by a path that works without it on PATH
    const proc = sb.mustGit(['config', '--local', '--get', 'filter.dits.process'], dest).trim();
    expect(proc).toBe(`${path.join(ROOT, 'bin', 'git-dits')} filter-process`);
    expect(sb.run('/bin/sh', ['-c', 'command -v git-dits || echo none'], dest, undefined, { PATH: helperOnlyPath }).stdout.trim()).toBe('none');
    expect(sb.mustGit(['config', '--local', '--get', 'filter.dits.required'], dest).trim()).toBe('true');
    expect(sb.mustGit(['config', '--local', '--get', 'merge.dits.driver'], dest)).toMatch(/merge-driver/);
    expect(fs.existsSync(path.join(dest, '.git', 'dits', 'index.sqlite'))).toBe(true);
    expect(fs.readFileSync(path.join(dest, '.git', 'hooks', 'post-checkout'), 'utf8')).toMatch(/git-dits hook/);
    // an edited clip, added with plain git: Git gets a pointer, not the 300 KB
    const v3 = randomBytesSeeded(300_000, 9);
    writeFile(path.join(dest, 'a.mov'), v3);
    sb.mustGit(['add', 'a.mov'], dest, undefined, { PATH: helperOnlyPath });
    expect(Number(sb.mustGit(['cat-file', '-s', ':a.mov'], dest))).toBeLessThan(1024);
    expect(sb.mustGit(['cat-file', 'blob', ':a.mov'], dest)).toMatch(/^version dits\//);
    sb.mustGit(['commit', '-q', '-m', 'v3'], dest, undefined, { PATH: helperOnlyPath });
    // and switching back to an older version writes its content (hooks work too)
    sb.mustGit(['checkout', '-q', 'HEAD~2'], dest, undefined, { PATH: helperOnlyPath });
    expect(fs.readFileSync(path.join(dest, 'a.mov')).length).toBe(300_000);
  });

  it('a clone of an empty remote is set up too (git asks for no fetch there)', () => {
    const { repo, url } = pushedSource('src-empty');
    sb.mustGit(['push', '-q', 'origin', ':main'], repo); // the remote exists and has no refs
    const dest = path.join(sb.dir, 'empty-clone');
    const r = sb.git(['clone', url, dest], sb.dir);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/cloned an empty repository/);
    expect(sb.mustGit(['config', '--local', '--get', 'filter.dits.process'], dest)).toMatch(/filter-process/);
    expect(fs.existsSync(path.join(dest, '.git', 'hooks', 'pre-commit'))).toBe(true);
    sb.mustDits(['track', '*.mov'], dest);
    writeFile(path.join(dest, 'b.mov'), randomBytesSeeded(200_000, 31));
    sb.mustGit(['add', '.'], dest);
    expect(sb.mustGit(['cat-file', 'blob', ':b.mov'], dest)).toMatch(/^version dits\//);
    // ls-remote of an empty remote inside a repository that has refs leaves that repository alone
    const other = sb.repo('has-refs');
    sb.mustGit(['commit', '-q', '--allow-empty', '-m', 'x'], other);
    expect(sb.git(['ls-remote', url], other).status).toBe(0);
    expect(sb.git(['config', '--local', '--get', 'filter.dits.process'], other).status).not.toBe(0);
  });

  it('a clone with --separate-git-dir is set up too (the helper cannot see its work tree; the filter sets the hooks up)', () => {
    const { url, v2 } = pushedSource('src-separate');
    const dest = path.join(sb.dir, 'separate-clone');
    const gitDir = path.join(sb.dir, 'separate-clone.git');
    sb.mustGit(['clone', '-q', '--separate-git-dir', gitDir, url, dest], sb.dir);
    expect(fs.readFileSync(path.join(dest, 'a.mov')).equals(v2)).toBe(true);
    expect(sb.status(dest)).toBe('');
    expect(fs.existsSync(path.join(gitDir, 'hooks', 'pre-commit'))).toBe(true);
  });

  it('a bare clone gets no filter config and no hooks (nothing is checked out there)', () => {
    const { url } = pushedSource('src-bare');
    const dest = path.join(sb.dir, 'bare-clone.git');
    sb.mustGit(['clone', '-q', '--bare', url, dest], sb.dir);
    expect(sb.git(['config', '--local', '--get', 'filter.dits.process'], dest).status).not.toBe(0);
    expect(fs.existsSync(path.join(dest, 'hooks', 'post-checkout'))).toBe(false);
  });
});

describe('clone edge cases', () => {
  it('`git clone --depth 1` is refused with the reason and the way out, and leaves nothing behind', () => {
    const { url } = pushedSource('src-shallow');
    const dest = path.join(sb.dir, 'shallow');
    const r = sb.git(['clone', '--depth', '1', url, dest], sb.dir);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/shallow clones and fetches .* are not supported by Dits remotes/);
    expect(r.stderr).toMatch(/clone or fetch without --depth/);
    expect(r.stderr).not.toMatch(/internal error/);
    expect(fs.existsSync(dest)).toBe(false);
    // a fetch --depth in a full clone is refused the same way, and changes nothing
    const full = path.join(sb.dir, 'shallow-full');
    sb.mustGit(['clone', '-q', url, full], sb.dir);
    const f = sb.git(['fetch', '--depth', '1', 'origin'], full);
    expect(f.status).not.toBe(0);
    expect(f.stderr).toMatch(/not supported by Dits remotes/);
    expect(fs.existsSync(path.join(full, '.git', 'shallow'))).toBe(false);
  });

  it('`git clone --filter=blob:none` (a partial clone) is refused too; it used to start the helper again without end', () => {
    const { url } = pushedSource('src-partial');
    const dest = path.join(sb.dir, 'partial');
    // timeout(1) kills its whole process group, so the old endless chain of helpers stops too
    const r = sb.run('timeout', ['-s', 'KILL', '60', 'git', 'clone', '--filter=blob:none', url, dest], sb.dir);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/partial clones and fetches \(--filter\) are not supported by Dits remotes/);
    expect(r.stderr).toMatch(/dits\.fetchMode=lazy/);
    expect(fs.existsSync(dest)).toBe(false);
  });

  it('`git ls-remote dits::...` works outside any repository', () => {
    const { repo, url } = pushedSource('src-lsremote');
    const outside = path.join(sb.dir, 'not-a-repo');
    fs.mkdirSync(outside);
    const r = sb.git(['ls-remote', url], outside, undefined, { GIT_CEILING_DIRECTORIES: sb.dir });
    expect(r.stderr).not.toMatch(/internal error|not inside a Git repository/);
    expect(r.status, r.stderr).toBe(0);
    const head = sb.mustGit(['rev-parse', 'HEAD'], repo).trim();
    expect(r.stdout).toContain(`${head}\trefs/heads/main`);
    expect(r.stdout).toContain(`${head}\tHEAD`);
  });

  it('a typo in a dits::file:// path is an error (no empty clone); a push to a new path still creates the remote', () => {
    const { repo, url } = pushedSource('src-typo');
    const typo = url.slice(0, -1); // ".../src-typ"
    const dest = path.join(sb.dir, 'typo-clone');
    const r = sb.git(['clone', typo, dest], sb.dir);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/there is no Dits remote at .*src-typ\b/);
    expect(r.stderr).toMatch(/check the path or URL/);
    expect(fs.existsSync(dest)).toBe(false);
    expect(sb.git(['ls-remote', typo], repo).status).not.toBe(0);
    expect(sb.git(['fetch', typo], repo).status).not.toBe(0);
    // the first push to a new location creates it, and it then clones
    const fresh = remoteUrl('created-by-push');
    sb.mustGit(['push', '-q', fresh, 'main'], repo);
    const c = path.join(sb.dir, 'from-created');
    sb.mustGit(['clone', '-q', fresh, c], sb.dir);
    expect(sb.mustGit(['rev-parse', 'HEAD'], c)).toBe(sb.mustGit(['rev-parse', 'HEAD'], repo));
  });
});

describe('tracked files stored whole in Git (no filter config)', () => {
  it('`git dits track` before `git dits install` warns and names the command; after install it does not', () => {
    const repo = sb.repo('track-first');
    const r = sb.dits(['track', '*.mov'], repo);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/warning: Git is not set up to use Dits on this machine/);
    expect(r.stderr).toMatch(/git dits install/);
    sb.mustDits(['install', '--local'], repo);
    const again = sb.dits(['track', '*.mp4'], repo);
    expect(again.status).toBe(0);
    expect(again.stderr).toBe('');
  });

  it('status and fsck flag raw content at a tracked path, the pre-commit hook refuses it with the way out, and renormalize fixes it', () => {
    const repo = sb.repo('raw', { track: ['*.mov'], config: SMALL_CHUNKS });
    const clip = randomBytesSeeded(300_000, 21);
    writeFile(path.join(repo, 'clip.mov'), clip);
    writeFile(path.join(repo, 'notes.txt'), 'hello\n');
    sb.mustGit(['add', '.'], repo); // no filter config: git stores the clip whole
    expect(Number(sb.mustGit(['cat-file', '-s', ':clip.mov'], repo))).toBe(300_000);

    const st = sb.dits(['status'], repo);
    expect(st.status).toBe(0);
    expect(st.stdout).toMatch(/clip\.mov .*staged whole in Git, not as a Dits pointer/);
    expect(st.stdout).toMatch(/git dits install/);
    expect(st.stdout).toContain('git add --renormalize -- clip.mov');
    const json = JSON.parse(sb.mustDits(['status', '--json'], repo)) as { path: string; state: string }[];
    expect(json).toContainEqual(expect.objectContaining({ path: 'clip.mov', state: 'raw-in-git' }));

    const commit = sb.git(['commit', '-q', '-m', 'raw'], repo);
    expect(commit.status).not.toBe(0);
    expect(commit.stderr).toMatch(/clip\.mov/);
    expect(commit.stderr).toContain('git add --renormalize -- clip.mov');
    expect(commit.stderr).toContain('git commit --no-verify');
    expect(sb.git(['rev-parse', '--verify', '-q', 'HEAD'], repo).status).not.toBe(0); // nothing committed

    sb.mustGit(['commit', '-q', '--no-verify', '-m', 'raw anyway'], repo);
    const f = sb.dits(['fsck'], repo);
    expect(f.status).toBe(1);
    expect(f.stderr).toMatch(/raw-content: 1 file\(s\).*stored whole in Git/);
    expect(f.stderr).toMatch(/clip\.mov/);
    expect(f.stderr).toContain('git add --renormalize -- clip.mov');
    expect(JSON.parse(sb.dits(['fsck', '--json'], repo).stdout).rawContent).toEqual([expect.objectContaining({ path: 'clip.mov', size: 300_000 })]);

    // `git commit -a` stages into a temporary index: refused the same way
    writeFile(path.join(repo, 'clip.mov'), randomBytesSeeded(300_000, 22));
    const all = sb.git(['commit', '-q', '-a', '-m', 'edit'], repo);
    expect(all.status).not.toBe(0);
    expect(all.stderr).toMatch(/clip\.mov \(293 KiB\)/);
    expect(sb.mustGit(['log', '--format=%s'], repo).trim()).toBe('raw anyway');
    writeFile(path.join(repo, 'clip.mov'), clip);

    // the way out: install, renormalize, commit (the hook lets pointers through)
    sb.mustDits(['install', '--local'], repo);
    sb.mustGit(['add', '--renormalize', '--', 'clip.mov'], repo);
    expect(sb.mustGit(['cat-file', 'blob', ':clip.mov'], repo)).toMatch(/^version dits\//);
    sb.mustGit(['commit', '-q', '-m', 'as a pointer'], repo);
    expect(fs.readFileSync(path.join(repo, 'clip.mov')).equals(clip)).toBe(true);
    const ok = sb.dits(['fsck'], repo);
    expect(ok.stderr).not.toMatch(/raw-content/);
    expect(ok.status, ok.stderr).toBe(0);
    expect(sb.mustDits(['status'], repo)).not.toMatch(/staged whole/);
  });

  it('the pre-commit hook starts git-dits only when a staged path is tracked by Dits', () => {
    const repo = sb.repo('hook-fast', { track: ['*.mov'] });
    const hook = path.join(repo, '.git', 'hooks', 'pre-commit');
    expect(fs.readFileSync(hook, 'utf8')).toMatch(/git-dits hook: managed/);
    // a git-dits first on PATH that only leaves a mark
    const fake = path.join(sb.dir, 'fake-bin');
    const mark = path.join(sb.dir, 'fake-dits-ran');
    writeFile(path.join(fake, 'git-dits'), `#!/bin/sh\necho "$@" >> '${mark}'\n`);
    fs.chmodSync(path.join(fake, 'git-dits'), 0o755);
    const env = { PATH: `${fake}:${sb.env.PATH}` };
    writeFile(path.join(repo, 'notes.txt'), 'hello\n');
    sb.mustGit(['add', 'notes.txt'], repo);
    expect(sb.run(hook, [], repo, undefined, env).status).toBe(0);
    expect(fs.existsSync(mark)).toBe(false);
    sb.mustGit(['commit', '-q', '-m', 'text only'], repo, undefined, env);
    expect(fs.existsSync(mark)).toBe(false);
    writeFile(path.join(repo, 'a.mov'), 'not really a movie');
    sb.mustGit(['add', 'a.mov'], repo);
    expect(sb.run(hook, [], repo, undefined, env).status).toBe(0);
    expect(fs.readFileSync(mark, 'utf8').trim()).toBe('hook pre-commit');
  });
});

describe('fsck in a fresh clone', () => {
  it('older versions on the remote are "not fetched" (exit 0); a version the remote lost too is lost (exit 1)', () => {
    const { url } = pushedSource('src-fsck');
    // cloned on a machine set up as usual (`git dits install` run)
    const usual = new GitSandbox('dits-fsck-clone-');
    try {
      fsckFreshClone(usual, url);
    } finally {
      usual.cleanup();
    }
  });
});

/** A full clone on `machine` of `url` (a remote holding two versions of a.mov), then fsck. */
function fsckFreshClone(machine: GitSandbox, url: string): void {
  const dest = path.join(machine.dir, 'fsck-clone');
  machine.mustGit(['clone', '-q', url, dest], machine.dir);
  const f = machine.dits(['fsck'], dest);
  expect(f.stderr).not.toMatch(/manifest-missing|lost/);
  expect(f.status, f.stdout + f.stderr).toBe(0);
  expect(f.stdout).toMatch(/1 file version\(s\) not fetched \(on the remote 'origin'\): not lost/);
  expect(f.stdout).toMatch(/git dits fetch <rev>/);
  const j = JSON.parse(machine.dits(['fsck', '--json'], dest).stdout) as { problems: unknown[]; notFetched: { remote: string; manifests: { id: string; paths: string[] }[] } };
  expect(j.problems).toEqual([]);
  expect(j.notFetched.remote).toBe('origin');
  expect(j.notFetched.manifests).toHaveLength(1);
  expect(j.notFetched.manifests[0]!.paths).toEqual(['a.mov']);
  // without asking the remote, nothing proves it safe
  const offline = machine.dits(['fsck', '--offline'], dest);
  expect(offline.status).toBe(1);
  expect(offline.stderr).toMatch(/--offline: the remote was not asked/);
  // the hint works: a clone that fetches the old revision's content has nothing left to report
  const other = path.join(machine.dir, 'fsck-clone-2');
  machine.mustGit(['clone', '-q', url, other], machine.dir);
  machine.mustDits(['fetch', 'HEAD~1'], other);
  const whole = machine.dits(['fsck'], other);
  expect(whole.status, whole.stderr).toBe(0);
  expect(whole.stdout).not.toMatch(/not fetched/);
  expect(whole.stdout).toMatch(/No problems found/);
  // the remote loses v1's manifest: now it is lost, and fsck says so
  const id = j.notFetched.manifests[0]!.id;
  fs.rmSync(path.join(url.slice('dits::file://'.length), 'v1', 'objects', id.slice(0, 2), id.slice(2)));
  const lost = machine.dits(['fsck'], dest);
  expect(lost.status).toBe(1);
  expect(lost.stderr).toMatch(new RegExp(`manifest-missing: ${id}: .*lost: not here, and not on the remote 'origin'.*needed by a\\.mov`));
}
