/**
 * `git dits mount --writable` with real FUSE and real git: writes, new files and folders,
 * renames (over a file, of a folder), deletes and truncates through the kernel, read back
 * through the mount; `mount --status`; a mount killed with -9 keeps its overlay; and
 * `git dits commit-mount` makes the commit (the partially re-chunked pointer is the one
 * `git dits add` makes of the same bytes, for plain files and for a clip with its container
 * cut plan) and fast-forwards the working tree that has the branch checked out (refusing,
 * changing nothing, where a local change there is in the way); a full disk under the overlay.
 * Skipped (with the reason printed) where /dev/fuse is missing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { GitSandbox, SMALL_CHUNKS, randomBytesSeeded, writeFile } from './helpers/git-env.js';
import { cleanupMounts, editThroughMount, startMount, writeAt, type MountProcess } from './helpers/mount-process.js';
import { openFfmpeg } from '../src/media/ffmpeg.js';
import { makeClip } from '../src/proxy/test-clips.js';

const FUSE = fs.existsSync('/dev/fuse');
if (!FUSE) console.log('test/mount-writable.test.ts: skipped: /dev/fuse does not exist on this machine (FUSE mounts cannot be made)');

let sb: GitSandbox;
beforeAll(() => {
  sb = new GitSandbox('dits-mount-w-');
});
afterAll(() => {
  cleanupMounts(sb);
  sb?.cleanup();
});

const mount = (repo: string, dir: string, args: string[] = []): Promise<MountProcess> => startMount(sb, repo, dir, args);

describe.skipIf(!FUSE)('git dits mount --writable', () => {
  let repo: string;
  let big: Buffer;
  const dir = (): string => path.join(sb.dir, 'mnt');

  beforeAll(() => {
    big = randomBytesSeeded(3_000_000, 21);
    repo = sb.repo('w', { track: ['*.mov'], config: SMALL_CHUNKS, files: { 'a.mov': big, 'docs/readme.txt': 'read me\n', 'docs/old.txt': 'old\n', 'clips/c.mov': randomBytesSeeded(50_000, 22), 'gone.txt': 'bye\n' } });
    sb.mustGit(['add', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', 'one'], repo);
  });

  it('writes through the kernel, keeps the overlay across a kill -9, lists it, commits it and fast-forwards the working tree that has the branch', async () => {
    const mnt = dir();
    let m = await mount(repo, mnt, ['--writable']);
    const expected = Buffer.from(big);
    try {
      expect(m.out()).toMatch(/writable/);
      const fd = fs.openSync(path.join(mnt, 'a.mov'), 'r+');
      const edit = Buffer.from('E'.repeat(100));
      expect(fs.writeSync(fd, edit, 0, 100, 1_500_000)).toBe(100);
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      edit.copy(expected, 1_500_000);
      fs.writeFileSync(path.join(mnt, 'docs/new.txt'), 'new file\n');
      fs.mkdirSync(path.join(mnt, 'made/inner'), { recursive: true });
      fs.writeFileSync(path.join(mnt, 'made/inner/x.txt'), 'x\n');
      fs.renameSync(path.join(mnt, 'docs/old.txt'), path.join(mnt, 'docs/readme.txt')); // over an existing file
      fs.renameSync(path.join(mnt, 'clips'), path.join(mnt, 'footage')); // a folder with a tracked file
      fs.unlinkSync(path.join(mnt, 'gone.txt'));
      fs.truncateSync(path.join(mnt, 'docs/new.txt'), 3);
      // a read-only mount refuses all this; this one shows it
      expect(fs.readdirSync(mnt).sort()).toEqual(['.gitattributes', 'a.mov', 'docs', 'footage', 'made']);
      expect(fs.readFileSync(path.join(mnt, 'a.mov')).equals(expected)).toBe(true);
      expect(fs.readFileSync(path.join(mnt, 'docs/readme.txt'), 'utf8')).toBe('old\n');
      expect(fs.readFileSync(path.join(mnt, 'docs/new.txt'), 'utf8')).toBe('new');
      expect(fs.readFileSync(path.join(mnt, 'footage/c.mov')).equals(randomBytesSeeded(50_000, 22))).toBe(true);

      const st = sb.dits(['mount', '--status', mnt, '--json'], repo);
      expect(st.status, st.stderr).toBe(0);
      const changes = JSON.parse(st.stdout).overlays[0].changes as { path: string; kind: string; ranges?: number[][]; from?: string }[];
      expect(changes.find((c) => c.path === '/a.mov')).toMatchObject({ kind: 'modified', ranges: [[1_500_000, 1_500_100]] });
      expect(changes.find((c) => c.path === '/footage/c.mov')).toMatchObject({ kind: 'renamed', from: '/clips/c.mov' });
      expect(changes.find((c) => c.path === '/gone.txt')).toMatchObject({ kind: 'deleted' });
      expect(changes.find((c) => c.path === '/docs/new.txt')).toMatchObject({ kind: 'added' });

      // a second writable mount of the same commit is refused (one writer per overlay)
      const second = sb.dits(['mount', path.join(sb.dir, 'mnt-second'), '--writable'], repo);
      expect(second.status).toBe(1);
      expect(second.stderr).toMatch(/already mounts .* writable/);

      // the mount process dies: the overlay is on disk, the next writable mount picks it up
      m.child.kill('SIGKILL');
      await m.exited;
      // a killed mount is not committed from (its writes may be cut short): umount first
      const busy = sb.dits(['commit-mount', mnt, '-m', 'no'], repo);
      expect(busy.status).toBe(1);
      expect(busy.stderr).toMatch(/unmount it first/);
      m = await mount(repo, mnt, ['--writable']);
      expect(m.out()).toMatch(/picked up the overlay/);
      expect(fs.readFileSync(path.join(mnt, 'a.mov')).equals(expected)).toBe(true);
      expect(fs.readFileSync(path.join(mnt, 'made/inner/x.txt'), 'utf8')).toBe('x\n');
    } finally {
      m.child.kill('SIGTERM');
      await m.exited;
    }
    const headBefore = sb.mustGit(['rev-parse', 'HEAD'], repo).trim();
    const c = sb.dits(['commit-mount', mnt, '-m', 'edited through the mount', '--json'], repo);
    expect(c.status, c.stderr + c.stdout).toBe(0);
    const res = JSON.parse(c.stdout) as { commit: string; files: { path: string; how: string; chunksReused: number; chunksCut: number }[] };
    const a = res.files.find((f) => f.path === 'a.mov')!;
    expect(a.how).toBe('partial');
    expect(a.chunksCut).toBeLessThan(10);
    expect(a.chunksReused).toBeGreaterThan(100);
    expect(sb.mustGit(['rev-parse', 'HEAD'], repo).trim()).toBe(res.commit);
    expect(sb.mustGit(['rev-parse', 'HEAD~1'], repo).trim()).toBe(headBefore);
    expect(sb.mustGit(['ls-tree', '-r', '--name-only', 'HEAD'], repo).trim().split('\n').sort()).toEqual(['.gitattributes', 'a.mov', 'docs/new.txt', 'docs/readme.txt', 'footage/c.mov', 'made/inner/x.txt']);
    expect(sb.mustGit(['show', 'HEAD:docs/readme.txt'], repo)).toBe('old\n');
    // the branch is checked out here: the working tree and the index were fast-forwarded
    expect(sb.mustGit(['status', '--porcelain'], repo)).toBe('');
    expect(fs.readFileSync(path.join(repo, 'a.mov')).equals(expected)).toBe(true);
    expect(fs.existsSync(path.join(repo, 'gone.txt'))).toBe(false);
    expect(fs.readFileSync(path.join(repo, 'made/inner/x.txt'), 'utf8')).toBe('x\n');
    // the pointer is the one `git dits add` makes of the same bytes
    writeFile(path.join(repo, 'a.mov'), expected);
    sb.mustDits(['add', 'a.mov'], repo);
    expect(sb.mustGit(['rev-parse', ':a.mov'], repo).trim()).toBe(sb.mustGit(['rev-parse', 'HEAD:a.mov'], repo).trim());
    // the overlay is gone; the new revision mounts with the edit
    expect(JSON.parse(sb.mustDits(['mount', '--status', '--json'], repo)).overlays, sb.mustDits(['mount', '--status'], repo)).toEqual([]);
    const m2 = await mount(repo, mnt);
    try {
      expect(fs.readFileSync(path.join(mnt, 'a.mov')).equals(expected)).toBe(true);
      expect(() => fs.writeFileSync(path.join(mnt, 'docs/new.txt'), 'x')).toThrow(/EROFS/);
    } finally {
      m2.child.kill('SIGTERM');
      await m2.exited;
    }
  });

  it('has nothing to commit when what was written was undone', async () => {
    const mnt = path.join(sb.dir, 'mnt3');
    const m = await mount(repo, mnt, ['--writable']);
    try {
      fs.writeFileSync(path.join(mnt, 'tmp.txt'), 'x');
      fs.unlinkSync(path.join(mnt, 'tmp.txt'));
      fs.renameSync(path.join(mnt, 'a.mov'), path.join(mnt, 'b.mov'));
      fs.renameSync(path.join(mnt, 'b.mov'), path.join(mnt, 'a.mov'));
    } finally {
      m.child.kill('SIGTERM');
      await m.exited;
    }
    const head = sb.mustGit(['rev-parse', 'HEAD'], repo).trim();
    expect(sb.mustDits(['mount', '--status', mnt], repo)).toMatch(/0 change\(s\)/);
    const r = sb.dits(['commit-mount', mnt, '-m', 'nothing'], repo);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/nothing to commit/);
    expect(sb.mustGit(['rev-parse', 'HEAD'], repo).trim()).toBe(head);
  });

  it('refuses a commit whose base moved, and commits it to a named branch instead', async () => {
    const mnt = path.join(sb.dir, 'mnt2');
    const m = await mount(repo, mnt, ['--writable']);
    try {
      fs.writeFileSync(path.join(mnt, 'later.txt'), 'later\n');
    } finally {
      m.child.kill('SIGTERM');
      await m.exited;
    }
    const base = sb.mustGit(['rev-parse', 'HEAD'], repo).trim();
    sb.mustGit(['commit', '-q', '--allow-empty', '-m', 'moved on'], repo);
    const moved = sb.dits(['commit-mount', mnt, '-m', 'x'], repo);
    expect(moved.status).toBe(1);
    expect(moved.stderr).toMatch(/not the tip/);
    expect(moved.stderr).toMatch(/--branch/);
    expect(sb.mustDits(['mount', '--status', mnt], repo)).toMatch(/added\s+later\.txt \(6 B\) bytes 0-6/);
    const ok = sb.dits(['commit-mount', mnt, '-m', 'on a branch', '--branch', 'from-mount'], repo);
    expect(ok.status, ok.stderr).toBe(0);
    expect(sb.mustGit(['rev-parse', 'from-mount~1'], repo).trim()).toBe(base);
    expect(sb.mustGit(['show', 'from-mount:later.txt'], repo)).toBe('later\n');
    // the branch no longer points at the mounted commit: a second commit there is refused
    const m2 = await mount(repo, mnt, ['--writable', '--rev', base]);
    try {
      fs.writeFileSync(path.join(mnt, 'again.txt'), 'again\n');
    } finally {
      m2.child.kill('SIGTERM');
      await m2.exited;
    }
    const again = sb.dits(['commit-mount', mnt, '-m', 'again', '--branch', 'from-mount'], repo);
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/not at the mounted commit/);
    // --discard drops the overlay
    expect(sb.mustDits(['mount', '--status', '--discard', mnt], repo)).toMatch(/discarded/);
    expect(JSON.parse(sb.mustDits(['mount', '--status', '--json'], repo)).overlays).toEqual([]);
  });
});

describe.skipIf(!FUSE)('git dits commit-mount and the working trees that have the branch', () => {
  it('refuses when a local change is in the way (nothing changed, overlay kept), commits after a stash, and fast-forwards a linked worktree', async () => {
    const repo = sb.repo('ff', { track: ['*.mov'], config: SMALL_CHUNKS, files: { 'a.mov': randomBytesSeeded(300_000, 41), 'notes.txt': 'v1\n', 'other.txt': 'o\n' } });
    sb.mustGit(['add', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', 'one'], repo);
    const mnt = path.join(sb.dir, 'mnt-ff');
    let m = await mount(repo, mnt, ['--writable']);
    try {
      fs.writeFileSync(path.join(mnt, 'notes.txt'), 'from the mount\n');
    } finally {
      m.child.kill('SIGTERM');
      await m.exited;
    }
    // the same file changed in the working tree: refused, nothing changed
    fs.writeFileSync(path.join(repo, 'notes.txt'), 'local edit\n');
    fs.writeFileSync(path.join(repo, 'other.txt'), 'local other\n');
    const head = sb.mustGit(['rev-parse', 'HEAD'], repo).trim();
    const busy = sb.dits(['commit-mount', mnt, '-m', 'x'], repo);
    expect(busy.status).toBe(1);
    expect(busy.stderr).toMatch(/checked out at .*cannot take the commit/);
    expect(busy.stderr).toMatch(/stash/);
    expect(sb.mustGit(['rev-parse', 'HEAD'], repo).trim()).toBe(head);
    expect(fs.readFileSync(path.join(repo, 'notes.txt'), 'utf8')).toBe('local edit\n');
    expect(sb.mustDits(['mount', '--status', mnt], repo)).toMatch(/modified\s+notes\.txt/);
    // stash, commit, pop: the unrelated local change comes back, the mount's change is in HEAD
    sb.mustGit(['stash', '-q'], repo);
    const ok = sb.dits(['commit-mount', mnt, '-m', 'from the mount'], repo);
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/fast-forwarded/);
    expect(fs.readFileSync(path.join(repo, 'notes.txt'), 'utf8')).toBe('from the mount\n');
    expect(sb.git(['stash', 'pop'], repo).status).not.toBe(0); // notes.txt conflicts, as with any commit
    sb.mustGit(['checkout', '--theirs', '--', 'notes.txt'], repo);
    expect(fs.readFileSync(path.join(repo, 'other.txt'), 'utf8')).toBe('local other\n');
    sb.mustGit(['reset', '-q', '--hard'], repo);
    // a linked worktree that has its own branch checked out follows a commit of its mount
    const wt = path.join(sb.dir, 'ff-wt');
    sb.mustGit(['worktree', 'add', '-q', wt, '-b', 'side'], repo);
    m = await mount(wt, mnt, ['--writable']);
    try {
      const f = fs.openSync(path.join(mnt, 'a.mov'), 'r+');
      fs.writeSync(f, Buffer.from('EDIT'), 0, 4, 1000);
      fs.closeSync(f);
    } finally {
      m.child.kill('SIGTERM');
      await m.exited;
    }
    const side = sb.dits(['commit-mount', mnt, '-m', 'side edit'], wt);
    expect(side.status, side.stderr).toBe(0);
    expect(side.stdout).toContain(wt);
    expect(sb.mustGit(['status', '--porcelain'], wt)).toBe('');
    expect(fs.readFileSync(path.join(wt, 'a.mov')).subarray(1000, 1004).toString()).toBe('EDIT');
    // the main working tree (on its own branch) was not touched
    expect(fs.readFileSync(path.join(repo, 'a.mov')).subarray(1000, 1004).toString()).not.toBe('EDIT');
    expect(sb.mustGit(['status', '--porcelain'], repo)).toBe('');
  });
});

describe.skipIf(!FUSE)('git dits commit-mount patches a big working-tree file in place', () => {
  it('brings the checked-out copy to the commit by writing only the changed bytes; a merge that fails puts it back as it was', async () => {
    const size = 20 << 20;
    const big = randomBytesSeeded(size, 61);
    const repo = sb.repo('patch', { track: ['*.mov'], config: SMALL_CHUNKS, files: { 'big.mov': big, 'notes.txt': 'v1\n' } });
    sb.mustGit(['add', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', 'one'], repo);
    const file = path.join(repo, 'big.mov');
    const ino = fs.statSync(file).ino;
    const mnt = path.join(sb.dir, 'mnt-patch');
    const edit = (at: number, bytes: string, notes?: string): Promise<void> =>
      editThroughMount(sb, repo, mnt, (d) => {
        writeAt(path.join(d, 'big.mov'), at, bytes);
        if (notes) fs.writeFileSync(path.join(d, 'notes.txt'), notes);
      });
    // a merge that fails (a local change to notes.txt is in the way): the big file as it was
    await edit(5_000_000, 'FIRST', 'from the mount\n');
    fs.writeFileSync(path.join(repo, 'notes.txt'), 'local\n');
    const head = sb.mustGit(['rev-parse', 'HEAD'], repo).trim();
    const refused = sb.dits(['commit-mount', mnt, '-m', 'x'], repo);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/cannot take the commit/);
    expect(sb.mustGit(['rev-parse', 'HEAD'], repo).trim()).toBe(head);
    expect(fs.statSync(file).ino).toBe(ino);
    expect(fs.readFileSync(file).equals(big)).toBe(true);
    expect(sb.mustGit(['status', '--porcelain'], repo)).toBe(' M notes.txt\n');
    expect(fs.readdirSync(path.join(repo, '.git/dits/early')).filter((n) => !n.startsWith('.'))).toEqual([]);
    // with the way clear: the same file (inode), patched, and git status clean
    fs.writeFileSync(path.join(repo, 'notes.txt'), 'v1\n');
    const ok = sb.dits(['commit-mount', mnt, '-m', 'patched'], repo);
    expect(ok.status, ok.stderr).toBe(0);
    const expected = Buffer.from(big);
    Buffer.from('FIRST').copy(expected, 5_000_000);
    expect(fs.statSync(file).ino).toBe(ino);
    expect(fs.readFileSync(file).equals(expected)).toBe(true);
    expect(sb.mustGit(['status', '--porcelain'], repo)).toBe('');
    expect(fs.readFileSync(path.join(repo, 'notes.txt'), 'utf8')).toBe('from the mount\n');
    // a working tree file changed locally is not patched: git refuses, nothing changes
    await edit(9_000_000, 'SECOND');
    const local = Buffer.from(expected);
    local[0] ^= 0xff;
    fs.writeFileSync(file, local);
    const busy = sb.dits(['commit-mount', mnt, '-m', 'y'], repo);
    expect(busy.status).toBe(1);
    expect(fs.readFileSync(file).equals(local)).toBe(true);
    sb.mustGit(['checkout', '--', 'big.mov'], repo);
    expect(sb.dits(['commit-mount', mnt, '-m', 'second'], repo).status).toBe(0);
    Buffer.from('SECOND').copy(expected, 9_000_000);
    expect(fs.readFileSync(file).equals(expected)).toBe(true);
    expect(sb.mustGit(['status', '--porcelain'], repo)).toBe('');
  });
});

describe.skipIf(!FUSE)('git dits commit-mount of a pointer whose attributes are not committed', () => {
  it('keeps a Dits file a pointer (never a git blob of its bytes) when .gitattributes lives only in the working tree', async () => {
    const repo = sb.repo('noattr', { track: ['*.mov'], config: SMALL_CHUNKS, files: { 'a.mov': randomBytesSeeded(200_000, 71) } });
    sb.mustGit(['add', 'a.mov'], repo); // .gitattributes itself stays untracked
    sb.mustGit(['commit', '-q', '-m', 'one'], repo);
    expect(Number(sb.mustGit(['cat-file', '-s', 'HEAD:a.mov'], repo).trim())).toBeLessThan(1024);
    const mnt = path.join(sb.dir, 'mnt-noattr');
    await editThroughMount(sb, repo, mnt, (d) => writeAt(path.join(d, 'a.mov'), 1000, 'EDIT'));
    const c = sb.dits(['commit-mount', mnt, '-m', 'edit', '--json'], repo);
    expect(c.status, c.stderr).toBe(0);
    expect((JSON.parse(c.stdout) as { files: { how: string }[] }).files[0]!.how).toBe('partial');
    expect(Number(sb.mustGit(['cat-file', '-s', 'HEAD:a.mov'], repo).trim())).toBeLessThan(1024);
    expect(fs.readFileSync(path.join(repo, 'a.mov')).subarray(1000, 1004).toString()).toBe('EDIT');
    expect(sb.mustGit(['status', '--porcelain', '--untracked-files=no'], repo)).toBe('');
  });
});

describe.skipIf(!FUSE)('git dits commit-mount of a mount still mounted', () => {
  it('pauses the writers, commits, and goes on showing the new commit with open files still open; a commit-mount that dies lets the writers go on', async () => {
    const big = randomBytesSeeded(600_000, 51);
    const repo = sb.repo('live', { track: ['*.mov'], config: SMALL_CHUNKS, files: { 'a.mov': big, 'notes.txt': 'v1\n' } });
    sb.mustGit(['add', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', 'one'], repo);
    const first = sb.mustGit(['rev-parse', 'HEAD'], repo).trim();
    const mnt = path.join(sb.dir, 'mnt-live');
    const m = await mount(repo, mnt, ['--writable']);
    const expected = Buffer.from(big);
    try {
      const reader = fs.openSync(path.join(mnt, 'a.mov'), 'r');
      const wfd = fs.openSync(path.join(mnt, 'a.mov'), 'r+');
      fs.writeSync(wfd, Buffer.from('LIVE'), 0, 4, 300_000);
      Buffer.from('LIVE').copy(expected, 300_000);
      fs.writeFileSync(path.join(mnt, 'notes.txt'), 'v2\n');
      const c = sb.dits(['commit-mount', mnt, '-m', 'while mounted', '--json'], repo);
      expect(c.status, c.stderr).toBe(0);
      const res = JSON.parse(c.stdout) as { commit: string; mount: { at: string; error: string | null } };
      expect(res.mount).toEqual({ at: mnt, error: null });
      expect(sb.mustGit(['rev-parse', 'HEAD~1'], repo).trim()).toBe(first);
      expect(sb.mustGit(['show', 'HEAD:notes.txt'], repo)).toBe('v2\n');
      // the mount shows the new commit; handles opened before still read and write
      expect(JSON.parse(sb.mustDits(['mount', '--status', '--json'], repo)).overlays).toEqual([]);
      const back = Buffer.alloc(big.length);
      expect(fs.readSync(reader, back, 0, back.length, 0)).toBe(big.length);
      expect(back.equals(expected)).toBe(true);
      fs.writeSync(wfd, Buffer.from('MORE'), 0, 4, 10);
      Buffer.from('MORE').copy(expected, 10);
      fs.closeSync(wfd);
      fs.closeSync(reader);
      expect(fs.readFileSync(path.join(mnt, 'a.mov')).equals(expected)).toBe(true);
      const status = sb.mustDits(['mount', '--status', mnt], repo);
      expect(status).toMatch(/modified\s+a\.mov .*bytes 10-14/);
      expect(status).not.toMatch(/notes\.txt/);

      // a commit-mount that pauses the mount and dies: the held writer goes on, nothing lost
      const rec = JSON.parse(fs.readFileSync(path.join(repo, '.git/dits/mounts', fs.readdirSync(path.join(repo, '.git/dits/mounts')).find((f) => f.endsWith('.json'))!), 'utf8')) as { control: string; commit: string };
      expect(rec.commit).toBe(res.commit);
      const conn = net.connect(rec.control);
      const answer = await new Promise<string>((resolve, reject) => {
        conn.once('data', (d) => resolve(d.toString()));
        conn.once('error', reject);
        conn.write('{"op":"pause"}\n');
      });
      expect(JSON.parse(answer)).toMatchObject({ ok: true, commit: res.commit });
      const writer = spawn('sh', ['-c', `printf held >> ${path.join(mnt, 'notes.txt')}`]);
      const writerExit = new Promise<number | null>((resolve) => writer.once('exit', resolve));
      const early = await Promise.race([writerExit, new Promise((resolve) => setTimeout(() => resolve('waiting'), 400))]);
      expect(early).toBe('waiting');
      conn.destroy();
      expect(await writerExit).toBe(0);
      expect(fs.readFileSync(path.join(mnt, 'notes.txt'), 'utf8')).toBe('v2\nheld');
      const again = sb.dits(['commit-mount', mnt, '-m', 'second'], repo);
      expect(again.status, again.stderr).toBe(0);
      expect(again.stdout).toMatch(/stays mounted and now shows/);
    } finally {
      m.child.kill('SIGTERM');
      await m.exited;
    }
    expect(sb.mustGit(['show', 'HEAD:notes.txt'], repo)).toBe('v2\nheld');
    expect(sb.mustGit(['rev-parse', 'HEAD~2'], repo).trim()).toBe(first);
    expect(fs.readFileSync(path.join(repo, 'a.mov')).equals(expected)).toBe(true);
    expect(sb.mustGit(['status', '--porcelain'], repo)).toBe('');
  });
});

describe.skipIf(!FUSE)('git dits mount --writable: symbolic links', () => {
  it('makes, renames and removes links through the kernel, keeps them across a kill -9, and commits them as links', async () => {
    const repo = sb.repo('links', { track: ['*.mov'], config: SMALL_CHUNKS, files: { 'a.mov': randomBytesSeeded(400_000, 31), 'docs/readme.txt': 'read me\n' } });
    fs.symlinkSync('docs/readme.txt', path.join(repo, 'old-link'));
    sb.mustGit(['add', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', 'one'], repo);
    const mnt = path.join(sb.dir, 'mnt-links');
    let m = await mount(repo, mnt, ['--writable']);
    try {
      fs.symlinkSync('../a.mov', path.join(mnt, 'docs', 'clip'));
      fs.symlinkSync('docs/readme.txt', path.join(mnt, 'tmp-link'));
      expect(fs.readlinkSync(path.join(mnt, 'docs', 'clip'))).toBe('../a.mov');
      expect(fs.lstatSync(path.join(mnt, 'docs', 'clip')).isSymbolicLink()).toBe(true);
      // followed by the kernel: the link reads as the file it names
      expect(fs.readFileSync(path.join(mnt, 'docs', 'clip')).equals(fs.readFileSync(path.join(repo, 'a.mov')))).toBe(true);
      expect(() => fs.symlinkSync('x', path.join(mnt, 'docs', 'clip'))).toThrow(/EEXIST/);
      fs.renameSync(path.join(mnt, 'tmp-link'), path.join(mnt, 'docs', 'moved-link'));
      fs.unlinkSync(path.join(mnt, 'old-link'));
      expect(() => fs.linkSync(path.join(mnt, 'a.mov'), path.join(mnt, 'hard.mov'))).toThrow(/EPERM/);
    } finally {
      m.child.kill('SIGKILL');
      await m.exited;
    }
    spawnSync('umount', ['-l', mnt]);
    // the journal replays the links
    m = await mount(repo, mnt, ['--writable']);
    try {
      expect(fs.readlinkSync(path.join(mnt, 'docs', 'clip'))).toBe('../a.mov');
      expect(fs.readlinkSync(path.join(mnt, 'docs', 'moved-link'))).toBe('docs/readme.txt');
      expect(fs.existsSync(path.join(mnt, 'tmp-link'))).toBe(false);
      expect(fs.existsSync(path.join(mnt, 'old-link'))).toBe(false);
    } finally {
      m.child.kill('SIGTERM');
      await m.exited;
    }
    const status = sb.mustDits(['mount', '--status', mnt], repo);
    expect(status).toMatch(/added\s+docs\/clip/);
    expect(status).toMatch(/deleted\s+old-link/);
    const r = sb.dits(['commit-mount', mnt, '-m', 'links'], repo);
    expect(r.status, r.stderr).toBe(0);
    const ls = sb.mustGit(['ls-tree', '-r', 'HEAD'], repo);
    expect(ls).toMatch(/^120000 blob \w+\tdocs\/clip$/m);
    expect(ls).toMatch(/^120000 blob \w+\tdocs\/moved-link$/m);
    expect(ls).not.toMatch(/old-link|tmp-link/);
    expect(sb.mustGit(['cat-file', '-p', 'HEAD:docs/clip'], repo)).toBe('../a.mov');
    expect(sb.mustGit(['cat-file', '-p', 'HEAD:docs/moved-link'], repo)).toBe('docs/readme.txt');
  });
});

describe.skipIf(!FUSE)('git dits mount --writable on a full disk', () => {
  it('answers ENOSPC to the writer and keeps what was written before', async () => {
    const repo = sb.repo('full', { track: ['*.mov'], config: SMALL_CHUNKS, files: { 'a.mov': randomBytesSeeded(200_000, 31), 'b.txt': 'b\n' } });
    sb.mustGit(['add', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', 'one'], repo);
    // fault injection: the overlay's folder is a 1 MiB file system
    const ov = path.join(repo, '.git/dits/overlay');
    fs.mkdirSync(ov, { recursive: true });
    const t = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', ov], { encoding: 'utf8' });
    if (t.status !== 0) {
      console.log(`mount-writable full-disk test: skipped: cannot mount a tmpfs (${t.stderr.trim()})`);
      return;
    }
    const mnt = path.join(sb.dir, 'mnt-full');
    try {
      const m = await mount(repo, mnt, ['--writable']);
      try {
        fs.writeFileSync(path.join(mnt, 'small.txt'), 'kept\n');
        const fd = fs.openSync(path.join(mnt, 'big.bin'), 'w');
        let failed: string | undefined;
        try {
          for (let i = 0; i < 40; i++) fs.writeSync(fd, randomBytesSeeded(64 * 1024, 100 + i));
        } catch (e) {
          failed = (e as NodeJS.ErrnoException).code;
        } finally {
          try {
            fs.closeSync(fd);
          } catch {
            /* the close may report the same error */
          }
        }
        expect(failed).toBe('ENOSPC');
        expect(fs.readFileSync(path.join(mnt, 'small.txt'), 'utf8')).toBe('kept\n');
        expect(fs.readFileSync(path.join(mnt, 'a.mov')).equals(randomBytesSeeded(200_000, 31))).toBe(true);
      } finally {
        m.child.kill('SIGTERM');
        await m.exited;
      }
      const st = JSON.parse(sb.mustDits(['mount', '--status', mnt, '--json'], repo)) as { overlays: { changes: { path: string; kind: string }[] }[] };
      expect(st.overlays[0]!.changes.find((c) => c.path === '/small.txt')).toMatchObject({ kind: 'added' });
    } finally {
      spawnSync('umount', ['-l', ov]);
    }
  });
});

describe.skipIf(!FUSE)('git dits commit-mount of a media file', () => {
  it('stores an edited clip with its container cut plan, cut again only around a payload edit: the pointer git dits add makes', async () => {
    const repo = sb.repo('media', { track: ['*.mov'], config: SMALL_CHUNKS });
    await makeClip(await openFfmpeg(), path.join(repo, 'clip.mov'), { duration: 2 });
    sb.mustGit(['add', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', 'clip'], repo);
    const clip = fs.readFileSync(path.join(repo, 'clip.mov'));
    const mnt = path.join(sb.dir, 'mnt-media');
    const at = Math.floor(clip.length / 2);
    await editThroughMount(sb, repo, mnt, (d) => writeAt(path.join(d, 'clip.mov'), at, Buffer.alloc(64, 0x55)));
    const c = sb.dits(['commit-mount', mnt, '-m', 'edit clip', '--json'], repo);
    expect(c.status, c.stderr).toBe(0);
    // the container's structure did not move: cut again around the edit, with its plan
    const stored = (JSON.parse(c.stdout) as { files: { path: string; how: string; chunksCut: number; chunksReused: number }[] }).files[0]!;
    expect(stored).toMatchObject({ path: 'clip.mov', how: 'partial' });
    expect(stored.chunksReused).toBeGreaterThan(stored.chunksCut);
    Buffer.alloc(64, 0x55).copy(clip, at);
    writeFile(path.join(repo, 'clip.mov'), clip);
    sb.mustDits(['add', 'clip.mov'], repo);
    expect(sb.mustGit(['rev-parse', ':clip.mov'], repo).trim()).toBe(sb.mustGit(['rev-parse', 'HEAD:clip.mov'], repo).trim());
    // an edit that breaks the structure (the first box's type) changes the plan: stored whole
    await editThroughMount(sb, repo, mnt, (d) => writeAt(path.join(d, 'clip.mov'), 4, 'zzzz'));
    const c2 = sb.dits(['commit-mount', mnt, '-m', 'break the box', '--json'], repo);
    expect(c2.status, c2.stderr).toBe(0);
    expect((JSON.parse(c2.stdout) as { files: { path: string; how: string }[] }).files[0]).toMatchObject({ path: 'clip.mov', how: 'full' });
    Buffer.from('zzzz').copy(clip, 4);
    writeFile(path.join(repo, 'clip.mov'), clip);
    sb.mustDits(['add', 'clip.mov'], repo);
    expect(sb.mustGit(['rev-parse', ':clip.mov'], repo).trim()).toBe(sb.mustGit(['rev-parse', 'HEAD:clip.mov'], repo).trim());
  });
});
