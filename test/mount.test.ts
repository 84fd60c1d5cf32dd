/**
 * `git dits mount` with real FUSE, real git and real remotes: byte-exact reads through
 * `cmp`, ffmpeg decoding through the mount, concurrent readers, a lazy clone read from
 * S3 (s3rver) and kept in the disk cache, a remote that goes away and comes back, a corrupt
 * chunk on the remote, an unmount while a reader waits on a remote that never answers, and
 * a mount process killed with files open, and a mount by a user other than root (nobody,
 * through setpriv: the hint when /dev/fuse is closed to it, then a mount, reads and an
 * unmount through both bindings with the device at Debian's 0666). Skipped (with the
 * reason printed) where /dev/fuse is missing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { DITS_BIN, GitSandbox, SMALL_CHUNKS, cloneInto, randomBytesSeeded, writeFile } from './helpers/git-env.js';
import { startS3rverProcess, type S3Process } from './helpers/s3rver-process.js';
import { readMounts } from '../src/mount/mount-point.js';
import { ChunkStore } from '../src/store/chunk-store.js';
import { storeVariant } from '../src/proxy/store-variant.js';
import { DEFAULT_CHUNKER_PARAMS } from '../src/chunking/params.js';
import { hashHex } from '../src/hashing/blake3.js';
import { openFfmpeg } from '../src/media/ffmpeg.js';
import { makeClip } from '../src/proxy/test-clips.js';

const FUSE = fs.existsSync('/dev/fuse');
if (!FUSE) console.log('test/mount.test.ts: skipped: /dev/fuse does not exist on this machine (FUSE mounts cannot be made)');

let sb: GitSandbox;
let s3: S3Process | undefined;
const live = new Set<ChildProcess>();

beforeAll(() => {
  sb = new GitSandbox('dits-mount-');
});
afterAll(async () => {
  for (const c of live) c.kill('SIGKILL');
  // nothing stays mounted under the sandbox, whatever failed
  for (const m of readMounts()) if (m.mountPoint.startsWith(sb.dir)) spawnSync('umount', ['-l', m.mountPoint]);
  await s3?.close();
  sb?.cleanup();
});

interface Mount {
  child: ChildProcess;
  dir: string;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/**
 * `git dits mount <dir> ...` as a child process, resolved once it says it is mounted.
 * `as`: run through another command (`as.argv` before Dits' own) from another sandbox's env.
 */
async function mount(repo: string, dir: string, args: string[] = [], env: NodeJS.ProcessEnv = {}, as?: { argv: string[]; env: NodeJS.ProcessEnv }): Promise<Mount> {
  const argv = [...(as?.argv ?? []), DITS_BIN, 'mount', dir, ...args];
  const child = spawn(argv[0]!, argv.slice(1), { cwd: repo, env: { ...(as?.env ?? sb.env), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      live.delete(child);
      resolve(code);
    }),
  );
  await new Promise<void>((resolve, reject) => {
    const t = setInterval(() => {
      if (/Mounted /.test(out)) {
        clearInterval(t);
        resolve();
      }
    }, 20);
    void exited.then((code) => {
      clearInterval(t);
      reject(new Error(`git dits mount exited (${code}) before mounting:\n${err}${out}`));
    });
  });
  return { child, dir, stdout: () => out, stderr: () => err, exited };
}

/**
 * Expects the mount's log to say `re`, waiting up to 5 s for it. stdout and stderr are two
 * pipes: a line logged just before or after "Mounted", or as a read fails, may reach this
 * process a little later.
 */
async function expectLog(m: Mount, re: RegExp): Promise<void> {
  for (let i = 0; i < 100 && !re.test(m.stderr()); i++) await new Promise((r) => setTimeout(r, 50));
  expect(m.stderr()).toMatch(re);
}

/** A command run without blocking this process (its event loop goes on: other readers of the mount run meanwhile). */
function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { cwd: opts.cwd ?? sb.dir, env: opts.env ?? sb.env, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(c);
    let stdout = '';
    let stderr = '';
    c.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    c.once('exit', (status) => {
      live.delete(c);
      resolve({ status, stdout, stderr });
    });
  });
}

const isMounted = (dir: string): boolean => readMounts().some((m) => m.mountPoint === dir);
const mountDir = (name: string): string => {
  const d = path.join(sb.dir, 'mnt', name);
  fs.mkdirSync(d, { recursive: true });
  return d;
};

describe.skipIf(!FUSE)('git dits mount (local content)', () => {
  let repo: string;
  let big: Buffer;
  let v1: Buffer;

  beforeAll(() => {
    v1 = randomBytesSeeded(700_000, 7);
    big = randomBytesSeeded(3_000_000, 8);
    repo = sb.repo('local', { track: ['*.mov'], config: SMALL_CHUNKS, files: { 'a.mov': v1, 'docs/readme.txt': 'read me\n' } });
    sb.mustGit(['add', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', 'one'], repo);
    writeFile(path.join(repo, 'a.mov'), big);
    writeFile(path.join(repo, 'deep/er/b.mov'), v1);
    writeFile(path.join(repo, 'run.sh'), '#!/bin/sh\necho hi\n');
    fs.chmodSync(path.join(repo, 'run.sh'), 0o755);
    fs.symlinkSync('docs/readme.txt', path.join(repo, 'link'));
    sb.mustGit(['add', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', 'two'], repo);
  });

  it('shows the revision byte-exact, read-only, and unmounts cleanly on SIGTERM', async () => {
    const dir = mountDir('local');
    const m = await mount(repo, dir);
    try {
      expect(m.stdout()).toMatch(/6 file\(s\), 2 tracked by Dits, read-only/);
      expect(fs.readdirSync(dir).sort()).toEqual(['.gitattributes', 'a.mov', 'deep', 'docs', 'link', 'run.sh']);
      // tracked files at their real sizes, not their pointers'
      expect(fs.statSync(path.join(dir, 'a.mov')).size).toBe(big.length);
      expect(fs.statSync(path.join(dir, 'deep/er/b.mov')).size).toBe(v1.length);
      const c1 = spawnSync('cmp', [path.join(dir, 'a.mov'), path.join(repo, 'a.mov')], { encoding: 'utf8' });
      expect(c1.status, c1.stderr + c1.stdout).toBe(0);
      const c2 = spawnSync('cmp', [path.join(dir, 'deep/er/b.mov'), path.join(repo, 'deep/er/b.mov')], { encoding: 'utf8' });
      expect(c2.status, c2.stderr + c2.stdout).toBe(0);
      expect(fs.readFileSync(path.join(dir, 'docs/readme.txt'), 'utf8')).toBe('read me\n');
      expect(fs.readlinkSync(path.join(dir, 'link'))).toBe('docs/readme.txt');
      expect(fs.readFileSync(path.join(dir, 'link'), 'utf8')).toBe('read me\n');
      expect(fs.statSync(path.join(dir, 'run.sh')).mode & 0o111).not.toBe(0);
      expect(spawnSync(path.join(dir, 'run.sh'), { encoding: 'utf8' }).stdout).toBe('hi\n');

      // a read past the end gives nothing; one across it gives what is there
      const fd = fs.openSync(path.join(dir, 'a.mov'), 'r');
      try {
        const b = Buffer.alloc(100);
        expect(fs.readSync(fd, b, 0, 100, big.length + 10)).toBe(0);
        expect(fs.readSync(fd, b, 0, 100, big.length - 10)).toBe(10);
        expect(b.subarray(0, 10).equals(big.subarray(big.length - 10))).toBe(true);
        // a random read in the middle
        expect(fs.readSync(fd, b, 0, 100, 1_234_567)).toBe(100);
        expect(b.equals(big.subarray(1_234_567, 1_234_667))).toBe(true);
      } finally {
        fs.closeSync(fd);
      }

      // writes are refused: EROFS
      for (const attempt of [
        () => fs.writeFileSync(path.join(dir, 'new.txt'), 'x'),
        () => fs.appendFileSync(path.join(dir, 'a.mov'), 'x'),
        () => fs.unlinkSync(path.join(dir, 'a.mov')),
        () => fs.mkdirSync(path.join(dir, 'newdir')),
        () => fs.renameSync(path.join(dir, 'a.mov'), path.join(dir, 'b.mov')),
      ]) {
        expect(attempt).toThrow(/EROFS/);
      }

      // the same repository at the same point: refused
      const again = sb.dits(['mount', dir], repo);
      expect(again.status).toBe(1);
      expect(again.stderr).toMatch(/already mounted at/);
      expect(again.stderr).toMatch(/hint: .*git dits umount/);
    } finally {
      m.child.kill('SIGTERM');
    }
    expect(await m.exited).toBe(0);
    expect(m.stderr()).toMatch(/SIGTERM: unmounting/);
    expect(isMounted(dir)).toBe(false);
    expect(fs.readdirSync(dir)).toEqual([]);
    expect(fs.readdirSync(path.join(repo, '.git/dits/mounts')).filter((f) => f.endsWith('.json'))).toEqual([]);
  });

  it("lists the tree as the checkout has it, through Dits' FUSE binding and through fuse-native", async () => {
    /** path -> kind, size (files and links), link target: what `ls -lR` shows that must agree */
    const listing = (root: string): string[] => {
      const out: string[] = [];
      const walk = (rel: string): void => {
        for (const name of fs.readdirSync(path.join(root, rel)).sort()) {
          if (rel === '' && name === '.git') continue;
          const p = rel ? `${rel}/${name}` : name;
          const st = fs.lstatSync(path.join(root, p));
          if (st.isDirectory()) {
            out.push(`${p}/`);
            walk(p);
          } else if (st.isSymbolicLink()) out.push(`${p} -> ${fs.readlinkSync(path.join(root, p))} ${st.size}`);
          else out.push(`${p} ${st.size} ${st.mode & 0o100 ? 'x' : '-'}`);
        }
      };
      walk('');
      return out;
    };
    const want = listing(repo);
    const nativeBuilt = fs.existsSync(path.join(DITS_BIN, '../../native/fuse/build/Release/dits_fuse.node'));
    if (!nativeBuilt) console.log("test/mount.test.ts: Dits' FUSE binding is not built here (libfuse3-dev missing?): both mounts use fuse-native");
    for (const [name, env, binding] of [
      ['native', {}, nativeBuilt ? /through Dits' FUSE binding \(libfuse3\)/ : /through fuse-native/],
      ['fuse-native', { DITS_FUSE: 'fuse-native' }, /through fuse-native \(libfuse2\)/],
    ] as const) {
      const dir = mountDir(`list-${name}`);
      const m = await mount(repo, dir, [], env);
      try {
        await expectLog(m, binding);
        expect(listing(dir)).toEqual(want);
        expect(() => fs.statSync(path.join(dir, 'docs/missing.txt'))).toThrow(/ENOENT/);
        expect(() => fs.readdirSync(path.join(dir, 'a.mov'))).toThrow(/ENOTDIR/);
        expect(() => fs.accessSync(path.join(dir, 'a.mov'), fs.constants.W_OK)).toThrow(/EROFS/);
        fs.accessSync(path.join(dir, 'deep/er/b.mov'), fs.constants.R_OK);
        const df = spawnSync('df', ['-i', dir], { encoding: 'utf8' });
        expect(df.status, df.stderr).toBe(0);
        if (name === 'native' && nativeBuilt && process.getuid?.() === 0) {
          // the kernel reads ahead 1 MiB on it (set after FUSE's init, which would lower it back)
          const dev = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')).find((f) => f[4] === dir)![2];
          expect(fs.readFileSync(`/sys/class/bdi/${dev}/read_ahead_kb`, 'utf8').trim()).toBe('1024');
        }
      } finally {
        m.child.kill('SIGTERM');
      }
      expect(await m.exited).toBe(0);
      expect(isMounted(dir)).toBe(false);
    }
  });

  it('--rev shows an older revision; git dits umount stops it', async () => {
    const dir = mountDir('rev');
    const m = await mount(repo, dir, ['--rev', 'HEAD~1']);
    expect(fs.readdirSync(dir).sort()).toEqual(['.gitattributes', 'a.mov', 'docs']);
    expect(fs.readFileSync(path.join(dir, 'a.mov')).equals(v1)).toBe(true);
    const u = sb.dits(['umount', dir], repo);
    expect(u.status, u.stderr).toBe(0);
    expect(u.stdout).toMatch(/Unmounted/);
    expect(await m.exited).toBe(0);
    expect(isMounted(dir)).toBe(false);
    const none = sb.dits(['umount', dir], repo);
    expect(none.status).toBe(1);
    expect(none.stderr).toMatch(/nothing is mounted at/);
  });

  it('git dits gc keeps what a mount shows, even a revision nothing refers to any more, names the mount, and frees it after the umount', async () => {
    const own = sb.repo('gc-mounted', { track: ['*.mov'], config: SMALL_CHUNKS, files: { 'keep.mov': v1 } });
    sb.mustGit(['add', '.'], own);
    sb.mustGit(['commit', '-q', '-m', 'one'], own);
    const gone = randomBytesSeeded(900_000, 77);
    sb.mustGit(['checkout', '-q', '-b', 'gone'], own);
    writeFile(path.join(own, 'gone.mov'), gone);
    sb.mustGit(['add', '.'], own);
    sb.mustGit(['commit', '-q', '-m', 'soon unreachable'], own);
    const commit = sb.mustGit(['rev-parse', 'HEAD'], own).trim();
    sb.mustGit(['checkout', '-q', 'main'], own);
    const dir = mountDir('gc-mounted');
    const m = await mount(own, dir, ['--rev', commit]);
    try {
      // nothing refers to the mounted commit now (no branch, no reflog), and no file of the
      // mount has been opened yet
      sb.mustGit(['branch', '-q', '-D', 'gone'], own);
      sb.mustGit(['reflog', 'expire', '--expire=now', '--all'], own);
      const gc = sb.dits(['gc', '--prune=now'], own);
      expect(gc.status, gc.stderr).toBe(0);
      expect(gc.stderr).toContain(`the mount of ${commit} at ${dir}`);
      expect(gc.stderr).toContain(`git dits umount ${dir}`);
      expect(gc.stdout).toMatch(/Removed 0 chunk\(s\)/);
      // whole through the mount
      expect(fs.readFileSync(path.join(dir, 'gone.mov')).equals(gone)).toBe(true);
    } finally {
      sb.dits(['umount', dir], own);
      await m.exited;
    }
    const after = sb.dits(['gc', '--prune=now'], own);
    expect(after.status, after.stderr).toBe(0);
    expect(after.stdout).toMatch(/Removed [1-9]\d* chunk\(s\) and 1 manifest\(s\)/);
    // what a revision still refers to stays
    sb.mustGit(['checkout', '-q', '--', '.'], own);
    expect(sb.dits(['fsck'], own).status).toBe(0);
    expect(fs.readFileSync(path.join(own, 'keep.mov')).equals(v1)).toBe(true);
  });

  it('from a linked worktree, a sparse checkout, and a stash (--rev stash@{0}): the whole revision, byte-exact', async () => {
    const dir = mountDir('worktree');
    /** mounts from `cwd`, runs `check`, unmounts (SIGTERM) cleanly */
    const shown = async (cwd: string, args: string[], check: () => void): Promise<void> => {
      const m = await mount(cwd, dir, args);
      try {
        check();
      } finally {
        m.child.kill('SIGTERM');
        expect(await m.exited).toBe(0);
      }
    };
    // a linked worktree on its own branch: mounts its HEAD (.git is a file there)
    const wt = path.join(sb.dir, 'wt-mount');
    sb.mustGit(['worktree', 'add', '-q', wt, '-b', 'mount-side'], repo);
    await shown(wt, [], () => {
      expect(fs.readdirSync(dir).sort()).toEqual(['.gitattributes', 'a.mov', 'deep', 'docs', 'link', 'run.sh']);
      expect(fs.readFileSync(path.join(dir, 'deep/er/b.mov')).equals(v1)).toBe(true);
    });
    // a sparse checkout without deep/: the mount still shows it (the revision, not the checkout)
    sb.mustGit(['sparse-checkout', 'set', 'docs'], wt);
    expect(fs.existsSync(path.join(wt, 'deep'))).toBe(false);
    await shown(wt, [], () => {
      expect(fs.readFileSync(path.join(dir, 'deep/er/b.mov')).equals(v1)).toBe(true);
      expect(fs.readFileSync(path.join(dir, 'a.mov')).equals(big)).toBe(true);
    });
    sb.mustGit(['sparse-checkout', 'disable'], wt);
    // a stashed edit of a tracked file: the stash's tree, its content from the local store
    const edited = randomBytesSeeded(900_000, 9);
    writeFile(path.join(wt, 'a.mov'), edited);
    sb.mustGit(['stash', '-q'], wt);
    expect(fs.readFileSync(path.join(wt, 'a.mov')).equals(big)).toBe(true);
    await shown(wt, ['--rev', 'stash@{0}'], () => {
      expect(fs.readFileSync(path.join(dir, 'a.mov')).equals(edited)).toBe(true);
      expect(fs.readFileSync(path.join(dir, 'deep/er/b.mov')).equals(v1)).toBe(true);
    });
    sb.mustGit(['stash', 'drop', '-q'], wt);
    sb.mustGit(['worktree', 'remove', '--force', wt], repo);
  });

  it('refuses a non-empty mount point, a busy one, a bad revision, and a point inside the working tree', async () => {
    const full = mountDir('full');
    fs.writeFileSync(path.join(full, 'x'), 'x');
    const r1 = sb.dits(['mount', full], repo);
    expect(r1.status).toBe(1);
    expect(r1.stderr).toMatch(/is not empty/);
    expect(r1.stderr).toMatch(/hint:/);

    const other = sb.repo('other', { files: { 'o.txt': 'o\n' } });
    sb.mustGit(['add', '.'], other);
    sb.mustGit(['commit', '-q', '-m', 'o'], other);
    const dir = mountDir('busy');
    const m = await mount(other, dir);
    try {
      const r2 = sb.dits(['mount', dir], repo);
      expect(r2.status).toBe(1);
      expect(r2.stderr).toMatch(/is busy: another Dits mount is there/);
    } finally {
      m.child.kill('SIGINT');
    }
    expect(await m.exited).toBe(0);

    const r3 = sb.dits(['mount', mountDir('badrev'), '--rev', 'nosuch'], repo);
    expect(r3.status).toBe(1);
    expect(r3.stderr).toMatch(/'nosuch' is not a commit/);
    const r4 = sb.dits(['mount', path.join(repo, 'inside')], repo);
    expect(r4.status).toBe(1);
    expect(r4.stderr).toMatch(/inside the working tree/);
    const r5 = sb.dits(['mount', mountDir('badcache'), '--cache', 'lots'], repo);
    expect(r5.status).toBe(2);
    expect(r5.stderr).toMatch(/--cache lots/);
  });

  it('--background returns once mounted, logs to .git/dits/mounts/, and git dits umount stops it', async () => {
    const dir = mountDir('background');
    const r = sb.dits(['mount', dir, '--background'], repo);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/in the background \(process (\d+); log: (.*\.log)\)/);
    const [, pid, log] = /process (\d+); log: (.*\.log)/.exec(r.stdout)!;
    try {
      expect(isMounted(dir)).toBe(true);
      expect(fs.readFileSync(path.join(dir, 'a.mov')).equals(big)).toBe(true);
      expect(fs.readFileSync(log!, 'utf8')).toMatch(/mount: mounted /);
      const u = sb.dits(['umount', dir], repo);
      expect(u.status, u.stderr).toBe(0);
      expect(isMounted(dir)).toBe(false);
      expect(fs.readFileSync(log!, 'utf8')).toMatch(/mount: unmounted /);
    } finally {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // already gone
      }
    }
    // a background mount that cannot mount says why, and exits 1
    fs.writeFileSync(path.join(dir, 'x'), 'x');
    const bad = sb.dits(['mount', dir, '--background'], repo);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/is not empty/);
  });

  it('concurrent readers each read the file byte-exact', async () => {
    const dir = mountDir('concurrent');
    const m = await mount(repo, dir);
    try {
      // the expected tail first: a reader started before it exists fails (a race the test lost under load)
      fs.writeFileSync(path.join(sb.dir, 'a.tail'), big.subarray(big.length - 1_000_000));
      const readers = [
        ...Array.from({ length: 4 }, () => run('cmp', [path.join(dir, 'a.mov'), path.join(repo, 'a.mov')])),
        run('cmp', [path.join(dir, 'deep/er/b.mov'), path.join(repo, 'deep/er/b.mov')]),
        // from the middle on, at the same time
        run('sh', ['-c', `tail -c 1000000 '${path.join(dir, 'a.mov')}' | cmp - '${path.join(sb.dir, 'a.tail')}'`]),
      ];
      for (const r of await Promise.all(readers)) expect(r.status, r.stderr + r.stdout).toBe(0);
    } finally {
      m.child.kill('SIGTERM');
    }
    expect(await m.exited).toBe(0);
  });

  it('git dits umount ends the mount at once while another process holds a file of it open', async () => {
    const dir = mountDir('held');
    const m = await mount(repo, dir);
    const holder = spawn('sh', ['-c', `exec 3<'${path.join(dir, 'a.mov')}'; sleep 30`], { stdio: 'ignore' });
    live.add(holder);
    try {
      await new Promise((r) => setTimeout(r, 200));
      const started = Date.now();
      const u = await run(DITS_BIN, ['umount', dir], { cwd: repo });
      expect(u.status, u.stderr).toBe(0);
      expect(await m.exited).toBe(0);
      // not held up until the holder lets go (30 s)
      expect(Date.now() - started).toBeLessThan(15_000);
      expect(isMounted(dir)).toBe(false);
      expect(fs.readdirSync(dir)).toEqual([]);
    } finally {
      holder.kill('SIGKILL');
    }
  });

  it('a mount killed with files open is cleaned by the next umount, and by the next mount', async () => {
    const dir = mountDir('killed');
    let m = await mount(repo, dir);
    // a reader holds a file open while the mount process is killed
    const holder = spawn('sh', ['-c', `exec 3<'${path.join(dir, 'a.mov')}'; sleep 30`], { stdio: 'ignore' });
    live.add(holder);
    await new Promise((r) => setTimeout(r, 200));
    m.child.kill('SIGKILL');
    await m.exited;
    // (a stat may be answered from the attributes the kernel keeps; a listing asks the process)
    expect(() => fs.readdirSync(dir)).toThrow(/ENOTCONN|ECONNABORTED/);
    const u = sb.dits(['umount', dir], repo);
    expect(u.status, u.stderr).toBe(0);
    expect(u.stdout).toMatch(/Cleaned the stale mount/);
    expect(isMounted(dir)).toBe(false);
    expect(fs.readdirSync(dir)).toEqual([]);

    m = await mount(repo, dir);
    m.child.kill('SIGKILL');
    await m.exited;
    m = await mount(repo, dir);
    try {
      await expectLog(m, /cleaned a stale mount at .* left by a process that was killed/);
      expect(fs.readFileSync(path.join(dir, 'a.mov')).equals(big)).toBe(true);
    } finally {
      m.child.kill('SIGTERM');
      holder.kill('SIGKILL');
    }
    expect(await m.exited).toBe(0);
  });
});

describe.skipIf(!FUSE)('git dits mount over remotes', () => {
  // a.mov: large enough that what the kernel and the read-ahead fetch after a first small read never reaches its end
  const v = randomBytesSeeded(6_000_000, 21);
  const w = randomBytesSeeded(1_500_000, 22);

  /** An author pushes a.mov and b.mov to `url`; a lazy clone of it has no content here. */
  function lazyClone(name: string, url: string): { author: string; clone: string } {
    const author = sb.repo(`${name}-author`, { track: ['*.mov'], config: SMALL_CHUNKS, files: { 'a.mov': v, 'b.mov': w, 'notes.txt': 'n\n' } });
    sb.mustGit(['add', '.'], author);
    sb.mustGit(['commit', '-q', '-m', 'one'], author);
    sb.mustGit(['remote', 'add', 'origin', url], author);
    sb.mustGit(['push', '-q', 'origin', 'main'], author);
    const clone = cloneInto(sb, url, `${name}-clone`, { ...SMALL_CHUNKS, 'dits.fetchMode': 'lazy' });
    expect(fs.statSync(path.join(clone, 'a.mov')).size).toBeLessThan(1024); // a pointer: nothing fetched
    return { author, clone };
  }

  it('reads a lazy clone from S3 byte-exact, and a second read comes from the disk cache with S3 gone', async () => {
    s3 = await startS3rverProcess(['media']);
    const s3env = { AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey, AWS_REGION: 'us-east-1' };
    Object.assign(sb.env, s3env);
    sb.mustGit(['config', '--global', 'dits.s3.endpoint', s3.endpoint], sb.dir);
    const { author, clone } = lazyClone('s3', 'dits::s3://media/proj');
    const dir = mountDir('s3');
    let m = await mount(clone, dir);
    try {
      const c = await run('cmp', [path.join(dir, 'a.mov'), path.join(author, 'a.mov')]);
      expect(c.status, c.stderr + c.stdout + m.stderr()).toBe(0);
      expect(fs.readFileSync(path.join(dir, 'notes.txt'), 'utf8')).toBe('n\n');
    } finally {
      m.child.kill('SIGTERM');
    }
    expect(await m.exited).toBe(0);
    expect(fs.readdirSync(path.join(clone, '.git/dits/mount-cache/packs')).length).toBeGreaterThan(0);

    await s3.kill(); // the remote is gone: a.mov is read from the disk cache, b.mov cannot be read
    m = await mount(clone, dir);
    try {
      const again = await run('cmp', [path.join(dir, 'a.mov'), path.join(author, 'a.mov')]);
      expect(again.status, again.stderr + m.stderr()).toBe(0);
      const b = await run('cat', [path.join(dir, 'b.mov')]);
      expect(b.status).not.toBe(0);
      expect(b.stderr).toMatch(/Input\/output error/);
      await expectLog(m, /b\.mov: .*EIO/);
      expect(fs.readdirSync(dir).sort()).toEqual(['.gitattributes', 'a.mov', 'b.mov', 'notes.txt']); // still up
    } finally {
      m.child.kill('SIGTERM');
    }
    expect(await m.exited).toBe(0);
  });

  it('a remote that goes away mid-read gives EIO, the mount stays up, and reads recover when it is back', async () => {
    const remoteDir = path.join(sb.dir, 'remotes', 'away');
    const { author, clone } = lazyClone('away', `dits::file://${remoteDir}`);
    const dir = mountDir('away');
    const m = await mount(clone, dir, ['--memory', '16M']);
    try {
      const fd = fs.openSync(path.join(dir, 'a.mov'), 'r');
      const b = Buffer.alloc(4096);
      expect(fs.readSync(fd, b, 0, 4096, 0)).toBe(4096); // the first piece arrives
      expect(b.equals(v.subarray(0, 4096))).toBe(true);
      fs.renameSync(remoteDir, `${remoteDir}.gone`);
      expect(() => fs.readSync(fd, b, 0, 4096, v.length - 4096)).toThrow(/EIO/);
      expect(fs.readFileSync(path.join(dir, 'notes.txt'), 'utf8')).toBe('n\n'); // the mount is up
      fs.renameSync(`${remoteDir}.gone`, remoteDir);
      expect(fs.readSync(fd, b, 0, 4096, v.length - 4096)).toBe(4096);
      expect(b.equals(v.subarray(v.length - 4096))).toBe(true);
      fs.closeSync(fd);
      const c = await run('cmp', [path.join(dir, 'b.mov'), path.join(author, 'b.mov')]);
      expect(c.status, c.stderr).toBe(0);
      await expectLog(m, /a\.mov: .*(EIO|later reads try again)/);
    } finally {
      m.child.kill('SIGTERM');
    }
    expect(await m.exited).toBe(0);
  });

  it('a corrupt chunk on the remote is never served: EIO and a log line', async () => {
    const remoteDir = path.join(sb.dir, 'remotes', 'corrupt');
    const { clone } = lazyClone('corrupt', `dits::file://${remoteDir}`);
    // flip one byte in the middle of every pack
    const packs = path.join(remoteDir, 'v1', 'packs');
    for (const f of fs.readdirSync(packs).filter((n) => n.endsWith('.pack'))) {
      const p = path.join(packs, f);
      const bytes = fs.readFileSync(p);
      bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
      fs.writeFileSync(p, bytes);
    }
    const dir = mountDir('corrupt');
    const m = await mount(clone, dir);
    try {
      const out = path.join(sb.dir, 'corrupt-read');
      const r = await run('sh', ['-c', `cat '${path.join(dir, 'a.mov')}' > '${out}'`]);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(/Input\/output error/);
      // what was served before the damaged chunk is the file's own bytes, nothing after it
      const got = fs.readFileSync(out);
      expect(got.length).toBeLessThan(v.length);
      expect(got.equals(v.subarray(0, got.length))).toBe(true);
      await expectLog(m, /a\.mov: a chunk from the remote does not match its id, not served \(EIO\)/);
    } finally {
      m.child.kill('SIGTERM');
    }
    expect(await m.exited).toBe(0);
  });

  it('unmounting while readers wait on a remote that never answers ends their reads with an error at once; meanwhile the tree answers', async () => {
    const remoteDir = path.join(sb.dir, 'remotes', 'hang');
    const { clone } = lazyClone('hang', `dits::file://${remoteDir}`);
    // the remote now points at a server that accepts connections and never answers
    const hole = net.createServer(() => {});
    await new Promise<void>((r) => hole.listen(0, '127.0.0.1', () => r()));
    const port = (hole.address() as net.AddressInfo).port;
    sb.mustGit(['remote', 'set-url', 'origin', 'dits::s3://media/hang'], clone);
    sb.mustGit(['config', 'dits.s3.endpoint', `http://127.0.0.1:${port}`], clone);
    const dir = mountDir('hang');
    const m = await mount(clone, dir, [], { AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'y', AWS_REGION: 'us-east-1' });
    try {
      const reader = run('cat', [path.join(dir, 'a.mov')]);
      // more readers waiting than libfuse keeps threads by default (10), each at its own place
      const readers = Array.from({ length: 16 }, (_, k) => run('dd', [`if=${path.join(dir, 'a.mov')}`, 'of=/dev/null', 'bs=4096', 'count=1', `skip=${64 * (k + 1)}`]));
      await new Promise((r) => setTimeout(r, 1000));
      expect(live.size).toBeGreaterThan(16); // cat and the dd's are still waiting
      // the rest of the tree still answers at once
      const ls = await run('timeout', ['10', 'ls', '-l', dir]);
      expect(ls.status, ls.stderr).toBe(0);
      expect(ls.stdout).toMatch(/notes\.txt/);
      const started = Date.now();
      const u = await run(DITS_BIN, ['umount', dir], { cwd: clone });
      expect(u.status, u.stderr).toBe(0);
      const r = await reader;
      expect(r.status).not.toBe(0);
      for (const d of await Promise.all(readers)) expect(d.status).not.toBe(0);
      expect(Date.now() - started).toBeLessThan(20_000);
      expect(await m.exited).toBe(0);
      expect(isMounted(dir)).toBe(false);
    } finally {
      m.child.kill('SIGKILL');
      hole.close();
    }
  });
});

describe.skipIf(!FUSE)('video through the mount', () => {
  let repo: string;
  let clip: Buffer;
  let proxy: Buffer;

  /** ffmpeg's framemd5 of `args` (input options and input), video and audio. */
  const framemd5 = async (args: string[]): Promise<string> => {
    const r = await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', ...args, '-f', 'framemd5', '-']);
    expect(r.status, r.stderr).toBe(0);
    return r.stdout.split('\n').filter((l) => !l.startsWith('#')).join('\n');
  };

  beforeAll(async () => {
    const ff = await openFfmpeg();
    const dir = path.join(sb.dir, 'clips');
    fs.mkdirSync(dir, { recursive: true });
    await makeClip(ff, path.join(dir, 'clip.mov'), { duration: 3, audioTracks: [2] });
    const p = spawnSync('ffmpeg', ['-v', 'error', '-y', '-i', path.join(dir, 'clip.mov'), '-vf', 'scale=160:90', '-c:v', 'prores_ks', '-profile:v', '0', '-c:a', 'copy', path.join(dir, 'proxy.mov')], { encoding: 'utf8' });
    expect(p.status, p.stderr).toBe(0);
    clip = fs.readFileSync(path.join(dir, 'clip.mov'));
    proxy = fs.readFileSync(path.join(dir, 'proxy.mov'));
    repo = sb.repo('video', { track: ['*.mov'], config: SMALL_CHUNKS, files: { 'shots/clip.mov': clip, 'data.mov': randomBytesSeeded(200_000, 5) } });
    sb.mustGit(['add', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', 'video'], repo);
    // the proxy as `git dits proxy make` records it
    const store = ChunkStore.open(path.join(repo, '.git', 'dits'));
    try {
      await storeVariant(store, hashHex(clip), { kind: 'proxy', recipe: 'prores_proxy/h90', status: 'ok', file: path.join(dir, 'proxy.mov'), warnings: [] }, DEFAULT_CHUNKER_PARAMS);
    } finally {
      store.close();
    }
  });

  it('ffmpeg decodes through the mount the same frames as from the file, from the start and after seeks', async () => {
    const dir = mountDir('video');
    const m = await mount(repo, dir);
    try {
      const through = path.join(dir, 'shots/clip.mov');
      const direct = path.join(repo, 'shots/clip.mov');
      expect(await framemd5(['-i', through])).toBe(await framemd5(['-i', direct]));
      for (const ss of ['0.4', '1.2', '2.48']) {
        expect(await framemd5(['-ss', ss, '-i', through, '-frames:v', '5'])).toBe(await framemd5(['-ss', ss, '-i', direct, '-frames:v', '5']));
      }
    } finally {
      m.child.kill('SIGTERM');
    }
    expect(await m.exited).toBe(0);
  });

  it('--mode proxy serves the proxy at the original path, and the original where there is none (logged)', async () => {
    const dir = mountDir('proxy');
    const m = await mount(repo, dir, ['--mode', 'proxy']);
    try {
      expect(m.stdout()).toMatch(/proxies where they exist/);
      expect(fs.statSync(path.join(dir, 'shots/clip.mov')).size).toBe(proxy.length);
      expect(fs.readFileSync(path.join(dir, 'shots/clip.mov')).equals(proxy)).toBe(true);
      const probe = await run('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=width,height,codec_name', '-of', 'csv=p=0', path.join(dir, 'shots/clip.mov')]);
      expect(probe.stdout.trim()).toBe('prores,160,90');
      expect(fs.readFileSync(path.join(dir, 'data.mov')).equals(fs.readFileSync(path.join(repo, 'data.mov')))).toBe(true);
      await expectLog(m, /no proxy for data\.mov: serving the original/);
      expect(m.stderr()).not.toMatch(/no proxy for shots\/clip\.mov/);
    } finally {
      m.child.kill('SIGTERM');
    }
    expect(await m.exited).toBe(0);
  });

  it('--mode proxy in a lazy clone finds the proxy on the remote and reads it from there', async () => {
    const remote = `dits::file://${path.join(sb.dir, 'remotes', 'video')}`;
    sb.mustGit(['remote', 'add', 'origin', remote], repo);
    sb.mustGit(['push', '-q', 'origin', 'main'], repo);
    const clone = cloneInto(sb, remote, 'video-clone', { ...SMALL_CHUNKS, 'dits.fetchMode': 'lazy' });
    const dir = mountDir('proxy-lazy');
    const m = await mount(clone, dir, ['--mode', 'proxy']);
    try {
      expect(fs.statSync(path.join(dir, 'shots/clip.mov')).size).toBe(proxy.length);
      expect(fs.readFileSync(path.join(dir, 'shots/clip.mov')).equals(proxy)).toBe(true);
    } finally {
      m.child.kill('SIGTERM');
    }
    expect(await m.exited).toBe(0);
  });
});

describe.skipIf(!FUSE)('git dits mount on a machine that never ran `git dits install`', () => {
  it('a lazy clone mounts and reads from its remote; a plain git clone asks for `git dits init`, then says the content is not here and how to add the remote, and reads once it is added', async () => {
    const bare = new GitSandbox('dits-mount-noinstall-', { install: false });
    const mounts: Mount[] = [];
    try {
      expect(bare.git(['config', '--global', '--get', 'filter.dits.process'], bare.dir).status).not.toBe(0); // really never installed
      const src = bare.repo('src', { config: SMALL_CHUNKS });
      bare.mustDits(['install', '--local'], src);
      bare.mustDits(['track', '*.mov'], src);
      const v = randomBytesSeeded(500_000, 41);
      writeFile(path.join(src, 'a.mov'), v);
      bare.mustGit(['add', '.'], src);
      bare.mustGit(['commit', '-q', '-m', 'one'], src);
      const url = `dits::file://${path.join(bare.dir, 'remote')}`;
      bare.mustGit(['remote', 'add', 'origin', url], src);
      bare.mustGit(['push', '-q', 'origin', 'main'], src);
      const asBare = { argv: [], env: bare.env };

      // a lazy clone through git-remote-dits: nothing fetched until the mount reads it
      const lazy = cloneInto(bare, url, 'lazy', { ...SMALL_CHUNKS, 'dits.fetchMode': 'lazy' });
      const d1 = mountDir('noinstall-lazy');
      mounts.push(await mount(lazy, d1, [], {}, asBare));
      expect(fs.readFileSync(path.join(d1, 'a.mov')).equals(v)).toBe(true);
      expect(bare.dits(['umount', d1], lazy).status).toBe(0);

      // plain git only: a clone of the commits (pointers, no filter to smudge them), no Dits remote
      const plainGit = path.join(bare.dir, 'plain.git');
      bare.mustGit(['clone', '-q', '--bare', src, plainGit], bare.dir);
      const plain = cloneInto(bare, plainGit, 'plain', {});
      expect(fs.readFileSync(path.join(plain, 'a.mov'), 'utf8')).toMatch(/^version dits\//);
      const d2 = mountDir('noinstall-plain');
      // Dits not set up in this clone: the mount says what to run
      const refused = bare.dits(['mount', d2], plain);
      expect(refused.status).toBe(1);
      expect(refused.stderr).toMatch(/git dits init/);
      bare.mustDits(['init'], plain);
      expect(bare.mustGit(['status', '--porcelain'], plain)).toBe(''); // the pointers stay as they are
      const m2 = await mount(plain, d2, [], {}, asBare);
      mounts.push(m2);
      expect(fs.statSync(path.join(d2, 'a.mov')).size).toBe(v.length); // its real size, from the pointer
      expect(() => fs.readFileSync(path.join(d2, 'a.mov'))).toThrow(/EIO/);
      // the mount's log names the file and says how to reach its content (written as the read fails)
      await expectLog(m2, /a\.mov.*\n?.*git remote add/);
      expect(bare.dits(['umount', d2], plain).status).toBe(0);
      // with the Dits remote added: read from it
      bare.mustGit(['remote', 'add', 'content', url], plain);
      mounts.push(await mount(plain, d2, [], {}, asBare));
      expect(fs.readFileSync(path.join(d2, 'a.mov')).equals(v)).toBe(true);
      expect(bare.dits(['umount', d2], plain).status).toBe(0);
      for (const m of mounts) expect(await m.exited).toBe(0);
    } finally {
      for (const m of mounts) m.child.kill('SIGTERM');
      await Promise.all(mounts.map((m) => m.exited));
      bare.cleanup();
    }
  });
});

const NOBODY = 65534;
const AS_ROOT = process.getuid?.() === 0;
const SETPRIV = fs.existsSync('/usr/bin/setpriv');
if (FUSE && !(AS_ROOT && SETPRIV)) console.log('test/mount.test.ts: the mount as another user is skipped: it needs root (to change /dev/fuse and run as nobody) and setpriv');

describe.skipIf(!FUSE || !AS_ROOT || !SETPRIV)('git dits mount as a user other than root', () => {
  let usb: GitSandbox;
  let repo: string;
  let fuseMode: number;
  const asNobody = ['--reuid', String(NOBODY), '--regid', String(NOBODY), '--clear-groups', '--'];
  /** `cmd args` as nobody, in the user's sandbox (its HOME, its git config). */
  const runAs = (cmd: string, args: string[]): ReturnType<typeof run> => run('setpriv', [...asNobody, cmd, ...args], { cwd: repo, env: usb.env });

  beforeAll(() => {
    fuseMode = fs.statSync('/dev/fuse').mode & 0o777;
    usb = new GitSandbox('dits-mount-user-');
    repo = usb.repo('user', { track: ['*.mov'], config: SMALL_CHUNKS, files: { 'a.mov': randomBytesSeeded(2_000_000, 21), 'notes.txt': 'notes\n' } });
    usb.mustGit(['add', '.'], repo);
    usb.mustGit(['commit', '-q', '-m', 'one'], repo);
    // the whole sandbox (repository, HOME, mount points) is nobody's
    spawnSync('chown', ['-R', `${NOBODY}:${NOBODY}`, usb.dir]);
    fs.chmodSync(usb.dir, 0o755);
  });
  afterAll(() => {
    fs.chmodSync('/dev/fuse', fuseMode);
    for (const m of readMounts()) if (m.mountPoint.startsWith(usb.dir)) spawnSync('umount', ['-l', m.mountPoint]);
    usb.cleanup();
  });

  it('says what to do when /dev/fuse is closed to the user; with it open (0666), mounts, reads byte-exact and unmounts, through both bindings', async () => {
    const probe = await runAs(process.execPath, [DITS_BIN, '--version']);
    if (probe.status !== 0) {
      // the checkout itself is not readable by nobody (a private home): nothing to learn here
      console.log(`test/mount.test.ts: the mount as another user is skipped: nobody cannot run ${DITS_BIN}: ${probe.stderr.trim().slice(0, 200)}`);
      return;
    }
    const dir = path.join(usb.dir, 'mnt');
    fs.mkdirSync(dir);
    fs.chownSync(dir, NOBODY, NOBODY);

    fs.chmodSync('/dev/fuse', 0o600);
    const refused = await runAs(process.execPath, [DITS_BIN, 'mount', dir]);
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toMatch(/\/dev\/fuse \(mode 0600\) is not open to this user: make it 0666/);
    expect(isMounted(dir)).toBe(false);

    fs.chmodSync('/dev/fuse', 0o666);
    for (const binding of ['dits', 'fuse-native']) {
      const env = binding === 'fuse-native' ? { DITS_FUSE: 'fuse-native' } : {};
      const m = await mount(repo, dir, [], env, { argv: ['setpriv', ...asNobody, process.execPath], env: usb.env });
      try {
        await expectLog(m, binding === 'dits' ? /through Dits' FUSE binding/ : /through fuse-native/);
        // FUSE keeps other users out (root too) without allow_other: read as nobody
        const cmp = await runAs('cmp', [path.join(dir, 'a.mov'), path.join(repo, 'a.mov')]);
        expect(cmp.status, cmp.stderr + cmp.stdout).toBe(0);
        const cat = await runAs('cat', [path.join(dir, 'notes.txt')]);
        expect(cat.stdout).toBe('notes\n');
        const u = await runAs(process.execPath, [DITS_BIN, 'umount', dir]);
        expect(u.status, u.stderr).toBe(0);
        expect(await m.exited).toBe(0);
        expect(isMounted(dir)).toBe(false);
      } finally {
        m.child.kill('SIGTERM');
      }
    }
  });
});
