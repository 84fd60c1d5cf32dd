/**
 * Content follows the remote you name: `git pull server main` takes the content from server
 * (not from origin, which lacks it), and `git dits pull [<remote> [<rev>]] [-- <path>...]`
 * reads its arguments as remote, revision and paths.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { blake3 } from '@napi-rs/blake-hash';
import { lastFetchedRemote } from '../src/worktree/remote-fetch.js';
import { GitSandbox, SMALL_CHUNKS, cloneInto, randomBytesSeeded, writeFile } from './helpers/git-env.js';

let sb: GitSandbox;
beforeAll(() => {
  sb = new GitSandbox('dits-pull-remote-');
});
afterAll(() => sb?.cleanup());

const CFG = SMALL_CHUNKS;
const hash = (b: Buffer): string => blake3(b).toString('hex');
const url = (name: string): string => `dits::file://${path.join(sb.dir, 'remotes', name)}`;

/**
 * An author pushes v1 to origin and server, then v2 (new content) to server only. A clone of
 * origin (with `config`) adds server as a second remote.
 */
function setup(name: string, config: Record<string, string> = {}): { clone: string; v1: Buffer; v2: Buffer } {
  const v1 = randomBytesSeeded(300_000, 90);
  const v2 = randomBytesSeeded(300_000, 91);
  const author = sb.repo(`${name}-author`, { track: ['*.mov'], config: CFG, files: { 'a.mov': v1 } });
  sb.mustGit(['add', '.'], author);
  sb.mustGit(['commit', '-q', '-m', 'v1'], author);
  sb.mustGit(['remote', 'add', 'origin', url(`${name}-origin`)], author);
  sb.mustGit(['remote', 'add', 'server', url(`${name}-server`)], author);
  sb.mustGit(['push', '-q', 'origin', 'main'], author);
  sb.mustGit(['push', '-q', 'server', 'main'], author);
  writeFile(path.join(author, 'a.mov'), v2);
  sb.mustGit(['commit', '-q', '-am', 'v2'], author);
  sb.mustGit(['push', '-q', 'server', 'main'], author);
  const clone = cloneInto(sb, url(`${name}-origin`), `${name}-clone`, { ...CFG, ...config });
  sb.mustGit(['remote', 'add', 'server', url(`${name}-server`)], clone);
  return { clone, v1, v2 };
}

const content = (repo: string): string => hash(fs.readFileSync(path.join(repo, 'a.mov')));

describe('content follows the remote you name', () => {
  it('git pull server main: the checkout takes the content from server', () => {
    const s = setup('gitpull');
    const r = sb.git(['pull', '-q', '--no-rebase', 'server', 'main'], s.clone);
    expect(r.status, r.stderr).toBe(0);
    expect(content(s.clone)).toBe(hash(s.v2));
    expect(sb.status(s.clone)).toBe('');
    expect(r.stderr).not.toMatch(/left as pointers/);
    // the hook asked server first: FETCH_HEAD names it
    const remotes = [
      { name: 'origin', url: url('gitpull-origin').slice('dits::'.length) },
      { name: 'server', url: url('gitpull-server').slice('dits::'.length) },
    ];
    expect(lastFetchedRemote(path.join(s.clone, '.git'), remotes)?.name).toBe('server');
    expect(lastFetchedRemote(path.join(s.clone, '.git'), remotes, Date.now() + 3600_000)).toBeNull(); // an old FETCH_HEAD names nobody
  });

  it('a checkout after it still finds content on any dits remote (origin first, then the others)', () => {
    const s = setup('anyremote', { 'dits.keepLocalCopy': 'false' });
    sb.mustGit(['fetch', '-q', 'server'], s.clone);
    // a plain checkout of server's branch, FETCH_HEAD aside: origin lacks v2, server has it
    fs.rmSync(path.join(s.clone, '.git', 'FETCH_HEAD'), { force: true });
    const r = sb.git(['checkout', '-q', 'server/main'], s.clone);
    expect(r.status, r.stderr).toBe(0);
    expect(content(s.clone)).toBe(hash(s.v2));
  });

  it('git dits pull <remote> [<rev>] [-- <path>...] and --remote', () => {
    const s = setup('ditspull', { 'dits.fetchMode': 'lazy' });
    sb.mustGit(['pull', '-q', '--no-rebase', 'server', 'main'], s.clone);
    expect(fs.readFileSync(path.join(s.clone, 'a.mov')).length).toBeLessThan(1024); // lazy: a pointer
    const help = sb.mustDits(['pull', '--help'], s.clone);
    expect(help).toMatch(/git dits pull \[<remote> \[<rev>\]\] \[-- <path>\.\.\.\]/);
    expect(help).toMatch(/--remote/);

    // origin does not hold v2: said so, exit 1, the file stays a pointer
    const fromOrigin = sb.dits(['pull', 'origin', 'main'], s.clone);
    expect(fromOrigin.status).toBe(1);
    expect(fromOrigin.stderr).toMatch(/origin/);
    expect(fromOrigin.stdout + fromOrigin.stderr).not.toMatch(/All tracked files have their content/);
    expect(fs.readFileSync(path.join(s.clone, 'a.mov')).length).toBeLessThan(1024);

    const r = sb.dits(['pull', 'server', 'main', '--', 'a.mov'], s.clone);
    expect(r.status, r.stderr).toBe(0);
    expect(content(s.clone)).toBe(hash(s.v2));
    expect(r.stdout).toMatch(/server/);
    expect(sb.status(s.clone)).toBe('');

    // --remote: the same; an older revision's content goes into the local store
    sb.mustGit(['config', 'dits.keepLocalCopy', 'true'], s.clone);
    const old = sb.dits(['pull', '--remote', 'server', 'HEAD~1'], s.clone);
    expect(old.status, old.stderr).toBe(0);
    expect(old.stdout).toMatch(/HEAD~1/);
    fs.renameSync(path.join(sb.dir, 'remotes', 'ditspull-server'), path.join(sb.dir, 'remotes', 'ditspull-server.away'));
    fs.renameSync(path.join(sb.dir, 'remotes', 'ditspull-origin'), path.join(sb.dir, 'remotes', 'ditspull-origin.away'));
    sb.mustGit(['checkout', '-q', 'HEAD~1'], s.clone); // offline: from the local store
    expect(content(s.clone)).toBe(hash(s.v1));

    // mistakes say what to do
    const bad = sb.dits(['pull', 'nosuch'], s.clone);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/neither a Dits remote nor a tracked path/);
    expect(bad.stderr).toMatch(/hint:/);
    const badRev = sb.dits(['pull', 'server', 'nosuchrev'], s.clone);
    expect(badRev.status).toBe(1);
    expect(badRev.stderr).toMatch(/nosuchrev/);
  });
});
