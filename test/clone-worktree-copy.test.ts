/**
 * A checkout that downloads content writes it into the working tree only: the local store
 * records the chunks as held by the remote (no second copy), an edited version stores only
 * what changed, and the next checkout reuses the previous version's bytes (hard links in
 * .git/dits/wt), verified chunk by chunk. Real git, git-remote-dits, a local-directory remote.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { blake3 } from '@napi-rs/blake-hash';
import { GitSandbox, SMALL_CHUNKS, cloneInto, randomBytesSeeded, writeFile } from './helpers/git-env.js';

let sb: GitSandbox;
beforeAll(() => {
  sb = new GitSandbox('dits-wtcopy-');
});
afterAll(() => sb?.cleanup());

const CFG = SMALL_CHUNKS;
const hash = (f: string): string => blake3(fs.readFileSync(f)).toString('hex');

const clone = (url: string, dir: string, extra: string[] = []): string => cloneInto(sb, url, dir, CFG, extra);

function du(repo: string): { uniqueChunkBytes: number; remoteHeldChunks: number; remoteHeldBytes: number } {
  return JSON.parse(sb.mustDits(['du', '--json'], repo));
}

describe('clone without a second local copy', () => {
  const size = 2_000_000;
  const v1 = randomBytesSeeded(size, 7);
  let remoteDir = '';
  let url = '';
  let src = '';

  beforeAll(() => {
    remoteDir = path.join(sb.dir, 'remotes', 'wt');
    url = `dits::file://${remoteDir}`;
    src = sb.repo('wt-src', { track: ['*.mov'], config: CFG, files: { 'a.mov': v1 } });
    sb.mustGit(['add', '.'], src);
    sb.mustGit(['commit', '-q', '-m', 'v1'], src);
    // the same content under another name (a rename): a checkout needs no new chunk
    fs.renameSync(path.join(src, 'a.mov'), path.join(src, 'b.mov'));
    sb.mustGit(['add', '-A'], src);
    sb.mustGit(['commit', '-q', '-m', 'renamed'], src);
    sb.mustGit(['remote', 'add', 'origin', url], src);
    sb.mustGit(['push', '-q', 'origin', 'main'], src);
  });

  it('a full clone keeps the content in the working tree only; fsck and du say so', () => {
    const c = clone(url, 'wt-clone-1');
    expect(hash(path.join(c, 'b.mov'))).toBe(hash(path.join(src, 'b.mov')));
    expect(sb.status(c)).toBe('');
    const d = du(c);
    expect(d.uniqueChunkBytes).toBeLessThan(size / 10); // manifests' pieces at most, not the file
    expect(d.remoteHeldBytes).toBe(size);
    const fsck = sb.dits(['fsck'], c);
    expect(fsck.status, fsck.stderr).toBe(0);
    expect(fsck.stdout).toMatch(/held by a remote/);
    // the file has a second name in .git/dits/wt (same inode: no extra space)
    expect(fs.statSync(path.join(c, 'b.mov')).nlink).toBe(2);
  });

  it('a file an application replaces (new file, rename) keeps its old bytes until gc, and du says so', () => {
    const c = clone(url, 'wt-clone-replaced');
    const file = path.join(c, 'b.mov');
    const tmp = path.join(c, '.b.mov.saving');
    writeFile(tmp, Buffer.concat([v1, Buffer.from('appended')]));
    fs.renameSync(tmp, file);
    const d = JSON.parse(sb.mustDits(['du', '--json'], c));
    expect(d.replacedFileLinks).toBe(1);
    expect(d.replacedFileLinkBytes).toBeGreaterThanOrEqual(size);
    expect(sb.mustDits(['du'], c)).toMatch(/replaced files kept .*`git dits gc`/);
    sb.mustDits(['gc'], c);
    expect(JSON.parse(sb.mustDits(['du', '--json'], c)).replacedFileLinks).toBe(0);
  });

  it('pushing cloned content to another remote works: the content comes from the working tree (verified) or origin', () => {
    const c = clone(url, 'wt-clone-second-remote');
    const other = `dits::file://${path.join(sb.dir, 'remotes', 'wt-other')}`;
    sb.mustGit(['remote', 'add', 'backup', other], c);
    const pushed = sb.git(['push', 'backup', 'main'], c);
    expect(pushed.status, pushed.stderr).toBe(0);
    const back = clone(other, 'wt-clone-from-backup');
    expect(hash(path.join(back, 'b.mov'))).toBe(blake3(v1).toString('hex'));
  });

  it('with dits.keepLocalCopy the store keeps its copy as before', () => {
    const c = clone(url, 'wt-clone-keep', ['-c', 'dits.keepLocalCopy=true']);
    expect(hash(path.join(c, 'b.mov'))).toBe(hash(path.join(src, 'b.mov')));
    const d = du(c);
    expect(d.uniqueChunkBytes).toBeGreaterThanOrEqual(size);
    expect(d.remoteHeldChunks).toBe(0);
    expect(fs.statSync(path.join(c, 'b.mov')).nlink).toBe(1);
  });

  it('an edit stores and pushes only the changed chunks; another clone gets it byte for byte', () => {
    const c = clone(url, 'wt-clone-edit');
    const before = du(c).uniqueChunkBytes;
    const edited = Buffer.from(v1);
    edited.write('x'.repeat(100), 1_000_000);
    writeFile(path.join(c, 'b.mov'), edited);
    sb.mustGit(['add', 'b.mov'], c);
    sb.mustGit(['commit', '-q', '-m', 'edit'], c);
    expect(du(c).uniqueChunkBytes - before).toBeLessThan(60_000); // a few 4 KiB chunks, not 2 MB
    const push = sb.git(['push', 'origin', 'HEAD:refs/heads/edited'], c);
    expect(push.status, push.stderr).toBe(0);
    const other = clone(url, 'wt-clone-edit-2', ['--branch', 'edited']);
    expect(hash(path.join(other, 'b.mov'))).toBe(blake3(edited).toString('hex'));
    // back to the pushed version without the edit: only its few own chunks are downloaded
    sb.mustGit(['checkout', '-q', 'HEAD~1'], other);
    expect(hash(path.join(other, 'b.mov'))).toBe(blake3(v1).toString('hex'));
    expect(sb.status(other)).toBe('');
    // the edited version's link went with the file; the checked-out one has its own
    expect(fs.readdirSync(path.join(other, '.git', 'dits', 'wt')).length).toBe(1);
  });

  it('switching versions reuses the previous file: works with the remote gone', () => {
    const c = clone(url, 'wt-clone-offline', ['--branch', 'main']);
    sb.mustGit(['checkout', '-q', 'HEAD~1'], c); // a.mov (same content), from the link of b.mov
    expect(hash(path.join(c, 'a.mov'))).toBe(blake3(v1).toString('hex'));
    const away = `${remoteDir}-away`;
    fs.renameSync(remoteDir, away);
    try {
      const co = sb.git(['checkout', '-q', 'main'], c); // b.mov again: every chunk from a.mov's link
      expect(co.status, co.stderr).toBe(0);
      expect(co.stderr).not.toMatch(/left as pointers/);
      expect(hash(path.join(c, 'b.mov'))).toBe(blake3(v1).toString('hex'));
      expect(sb.status(c)).toBe('');
    } finally {
      fs.renameSync(away, remoteDir);
    }
  });

  it('a file edited in place is not trusted: its changed chunks come from the remote', () => {
    const c = clone(url, 'wt-clone-inplace', ['--branch', 'main']);
    sb.mustGit(['checkout', '-q', 'HEAD~1'], c);
    // edit a.mov in place (the link sees the same bytes), then throw the edit away
    const fd = fs.openSync(path.join(c, 'a.mov'), 'r+');
    fs.writeSync(fd, Buffer.alloc(50_000, 0x41), 0, 50_000, 300_000);
    fs.closeSync(fd);
    sb.mustGit(['checkout', '-q', '-f', 'main'], c);
    expect(hash(path.join(c, 'b.mov'))).toBe(blake3(v1).toString('hex'));
    expect(sb.status(c)).toBe('');
    // and offline the same situation leaves a pointer with a clear message, never a wrong file
    sb.mustGit(['checkout', '-q', 'HEAD~1'], c);
    const fd2 = fs.openSync(path.join(c, 'a.mov'), 'r+');
    fs.writeSync(fd2, Buffer.alloc(50_000, 0x42), 0, 50_000, 300_000);
    fs.closeSync(fd2);
    const away = `${remoteDir}-away`;
    fs.renameSync(remoteDir, away);
    try {
      const co = sb.git(['checkout', '-q', '-f', 'main'], c);
      expect(co.stderr).toMatch(/left as pointers/);
      expect(fs.statSync(path.join(c, 'b.mov')).size).toBeLessThan(1024); // still the pointer
    } finally {
      fs.renameSync(away, remoteDir);
    }
    sb.mustDits(['pull', 'b.mov'], c);
    expect(hash(path.join(c, 'b.mov'))).toBe(blake3(v1).toString('hex'));
    expect(sb.status(c)).toBe('');
  });

  const shm = '/dev/shm';
  const otherFs = fs.existsSync(shm) && fs.statSync(shm).dev !== fs.statSync(os.tmpdir()).dev;
  it.runIf(otherFs)('a working tree on another file system than .git gets the files copied over', () => {
    const wt = fs.mkdtempSync(path.join(shm, 'dits-wt-'));
    try {
      const gitDir = path.join(sb.dir, 'wt-separate.git');
      const args = ['clone', '-q', '--separate-git-dir', gitDir];
      for (const [k, v] of Object.entries(CFG)) args.push('-c', `${k}=${v}`);
      sb.mustGit([...args, url, path.join(wt, 'c')], sb.dir);
      const c = path.join(wt, 'c');
      expect(hash(path.join(c, 'b.mov'))).toBe(blake3(v1).toString('hex'));
      expect(sb.status(c)).toBe('');
      expect(fs.readdirSync(path.join(gitDir, 'dits', 'tmp')).filter((n) => n.startsWith('assemble-'))).toEqual([]);
    } finally {
      fs.rmSync(wt, { recursive: true, force: true });
    }
  });
});
