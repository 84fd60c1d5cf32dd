/**
 * `git dits snapshot`: the working tree recorded on refs/dits/snapshots/* without touching
 * HEAD, the index, the stash or any other ref; restore, prune and gc; the faults (a snapshot
 * killed midway, files being written, no commits yet, detached HEAD, a linked worktree,
 * sparse checkout). Real git, real processes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { DITS_BIN, GitSandbox, SMALL_CHUNKS, randomBytesSeeded, writeFile } from './helpers/git-env.js';

let sb: GitSandbox;
beforeAll(() => {
  sb = new GitSandbox('dits-snapshot-');
});
afterAll(() => sb?.cleanup());

interface Snap {
  id: string;
  ref: string;
  commit: string;
  branch: string | null;
  head: string | null;
  worktree: string;
  seq: number;
  time: number;
}

function snapshot(repo: string, args: string[] = []): { snapshot: Snap; filesRead: number; skipped: { path: string }[]; unchanged: boolean; warnings: string[] } {
  return JSON.parse(sb.mustDits(['snapshot', '--json', ...args], repo));
}

function list(repo: string): Snap[] {
  return JSON.parse(sb.mustDits(['snapshot', 'list', '--json'], repo)) as Snap[];
}

/** Everything a snapshot must leave alone: HEAD, the index bytes, every ref but the snapshots', the stash. */
function state(repo: string): { head: string; index: string; refs: string; stash: string } {
  const indexFile = sb.mustGit(['rev-parse', '--git-path', 'index'], repo).trim();
  const abs = path.resolve(repo, indexFile);
  return {
    head: sb.git(['rev-parse', 'HEAD'], repo).stdout + sb.git(['symbolic-ref', '-q', 'HEAD'], repo).stdout,
    index: fs.existsSync(abs) ? fs.readFileSync(abs).toString('base64') : '',
    refs: sb
      .mustGit(['for-each-ref', '--format=%(refname) %(objectname)'], repo)
      .split('\n')
      .filter((l) => !l.startsWith('refs/dits/snapshots/'))
      .join('\n'),
    stash: sb.git(['stash', 'list'], repo).stdout,
  };
}

const blob = (repo: string, rev: string): string => sb.mustGit(['cat-file', 'blob', rev], repo);

describe('git dits snapshot', () => {
  it('records tracked changes, new files and big files as pointers, leaving HEAD, the index, the stash and the refs alone', () => {
    const repo = sb.repo('basic', { track: ['*.mov'], config: SMALL_CHUNKS, files: { 'a.txt': 'one\n', 'clip.mov': randomBytesSeeded(200_000, 1), '.gitignore': '*.tmp\n' } });
    sb.mustGit(['add', '-A'], repo);
    sb.mustGit(['commit', '-qm', 'c1'], repo);
    writeFile(path.join(repo, 'a.txt'), 'two\n');
    writeFile(path.join(repo, 'staged.txt'), 'staged\n');
    sb.mustGit(['add', 'staged.txt'], repo);
    writeFile(path.join(repo, 'staged.txt'), 'staged then changed\n');
    writeFile(path.join(repo, 'new/untracked.mov'), randomBytesSeeded(150_000, 2));
    writeFile(path.join(repo, 'scratch.tmp'), 'ignored\n');
    fs.rmSync(path.join(repo, 'clip.mov'));
    writeFile(path.join(repo, 'clip.mov'), randomBytesSeeded(200_000, 3));
    writeFile(path.join(repo, 'stashed.txt'), 'x\n');
    sb.mustGit(['stash', 'push', '-q', '-u', '--', 'stashed.txt'], repo);
    const before = state(repo);
    const status = sb.status(repo);

    const r = snapshot(repo, ['-m', 'before lunch']);
    expect(state(repo)).toEqual(before);
    expect(sb.status(repo)).toBe(status);
    const c = r.snapshot.commit;
    expect(r.snapshot.ref).toBe(`refs/dits/snapshots/${r.snapshot.id}`);
    expect(sb.mustGit(['rev-parse', r.snapshot.ref], repo).trim()).toBe(c);
    expect(sb.mustGit(['rev-parse', `${c}^`], repo).trim()).toBe(sb.mustGit(['rev-parse', 'HEAD'], repo).trim());
    expect(sb.mustGit(['log', '-1', '--format=%s', c], repo).trim()).toBe('before lunch');
    expect(r.snapshot.branch).toBe('main');
    expect(blob(repo, `${c}:a.txt`)).toBe('two\n');
    expect(blob(repo, `${c}:staged.txt`)).toBe('staged then changed\n');
    expect(sb.git(['cat-file', '-e', `${c}:scratch.tmp`], repo).status).not.toBe(0);
    expect(sb.git(['cat-file', '-e', `${c}:stashed.txt`], repo).status).not.toBe(0);
    // big files are pointers, their content in the store: a restore elsewhere reads them back
    expect(blob(repo, `${c}:new/untracked.mov`)).toMatch(/^version dits\/1\n/);
    expect(blob(repo, `${c}:clip.mov`)).toMatch(/size 200000/);
    fs.rmSync(path.join(repo, 'new'), { recursive: true });
    sb.mustDits(['snapshot', 'restore', r.snapshot.id, 'new/untracked.mov'], repo);
    expect(fs.readFileSync(path.join(repo, 'new/untracked.mov')).equals(randomBytesSeeded(150_000, 2))).toBe(true);
    expect(fs.readdirSync(path.join(repo, '.git')).filter((n) => n.startsWith('dits-snapshot-index'))).toEqual([]);
  });

  it('an unchanged tree is not read again, nor a file changed since the commit but not since the last snapshot', () => {
    const repo = sb.repo('unchanged', { track: ['*.mov'], config: SMALL_CHUNKS, files: { 'a.mov': randomBytesSeeded(300_000, 4), 'b.txt': 'b\n' } });
    /** A snapshot, and whether git started the clean filter for it (it does only when it reads a file). */
    const traced = (): { filtered: boolean; filesRead: number; unchanged: boolean; commit: string } => {
      const trace = path.join(sb.dir, `trace-${Date.now()}`);
      const r = sb.run(DITS_BIN, ['snapshot', '--json'], repo, undefined, { GIT_TRACE: trace });
      expect(r.status, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout);
      const filtered = fs.existsSync(trace) && fs.readFileSync(trace, 'utf8').includes('filter-process');
      return { filtered, filesRead: out.filesRead, unchanged: out.unchanged, commit: out.snapshot.commit };
    };
    // the next second: git's racy-git rule re-reads a file as new as the index that records it
    const nextSecond = (): void => {
      const stamp = Date.now();
      while (Math.floor(Date.now() / 1000) === Math.floor(stamp / 1000));
    };
    nextSecond();
    sb.mustGit(['add', '-A'], repo);
    sb.mustGit(['commit', '-qm', 'c1'], repo);
    expect(traced()).toMatchObject({ filtered: false, filesRead: 0 });
    // nothing read: the real index says it all, no stat cache is kept (the snapshot costs a commit and a ref)
    expect(fs.readdirSync(path.join(repo, '.git')).filter((n) => n.startsWith('dits-snapshot-'))).toEqual([]);
    const big = randomBytesSeeded(300_000, 4);
    big[1000] ^= 0xff;
    writeFile(path.join(repo, 'a.mov'), big);
    writeFile(path.join(repo, 'new.mov'), randomBytesSeeded(100_000, 5));
    nextSecond();
    const second = traced();
    expect(second).toMatchObject({ filtered: true, filesRead: 2, unchanged: false });
    nextSecond();
    const third = traced();
    expect(third).toMatchObject({ filtered: false, filesRead: 0, unchanged: true });
    expect(sb.mustGit(['rev-parse', `${third.commit}^{tree}`], repo)).toBe(sb.mustGit(['rev-parse', `${second.commit}^{tree}`], repo));
    // what the last snapshot's index says is used only while that snapshot exists
    sb.mustDits(['snapshot', 'prune', '--keep-hourly', '0', '--keep-daily', '0', '--keep-weekly', '0', '--keep-monthly', '0'], repo);
    expect(list(repo).map((s) => s.commit)).toEqual([third.commit]);
    sb.mustGit(['update-ref', '-d', list(repo)[0]!.ref], repo);
    expect(traced()).toMatchObject({ filtered: true, filesRead: 2 });
  });

  it('works with no commits yet, on a detached HEAD, and without a user identity', () => {
    const repo = sb.repo('fresh', { track: ['*.mov'], config: SMALL_CHUNKS, files: { 'a.mov': randomBytesSeeded(100_000, 6), 'n.txt': 'n\n' } });
    const r = sb.run(DITS_BIN, ['snapshot', '--json'], repo, undefined, { GIT_AUTHOR_NAME: '', GIT_COMMITTER_NAME: '', GIT_AUTHOR_EMAIL: '', GIT_COMMITTER_EMAIL: '', EMAIL: '' });
    expect(r.status, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout).snapshot as Snap;
    expect(s.head).toBeNull();
    expect(s.branch).toBe('main');
    expect(sb.git(['rev-parse', `${s.commit}^`], repo).status).not.toBe(0); // no parent
    expect(blob(repo, `${s.commit}:n.txt`)).toBe('n\n');
    expect(sb.git(['rev-parse', 'HEAD'], repo).status).not.toBe(0); // still unborn
    sb.mustGit(['add', '-A'], repo);
    sb.mustGit(['commit', '-qm', 'c1'], repo);
    sb.mustGit(['checkout', '-q', '--detach'], repo);
    const d = snapshot(repo).snapshot;
    expect(d.branch).toBeNull();
    expect(d.head).toBe(sb.mustGit(['rev-parse', 'HEAD'], repo).trim());
    expect(sb.mustDits(['snapshot', 'list'], repo)).toMatch(/\(detached\)/);
  });

  it('restore writes files from a snapshot, never over uncommitted changes unless --force, and says which it skipped', () => {
    const repo = sb.repo('restore', { track: ['*.mov'], config: SMALL_CHUNKS, files: { 'a.txt': 'committed\n', 'b.txt': 'b committed\n', 'v.mov': randomBytesSeeded(120_000, 7), 'keep.txt': 'k\n' } });
    sb.mustGit(['add', '-A'], repo);
    sb.mustGit(['commit', '-qm', 'c1'], repo);
    writeFile(path.join(repo, 'a.txt'), 'work in progress\n');
    writeFile(path.join(repo, 'b.txt'), 'b in progress\n');
    const edited = randomBytesSeeded(120_000, 8);
    writeFile(path.join(repo, 'v.mov'), edited);
    const s = snapshot(repo).snapshot;
    // back to the commit, then more edits to b.txt only
    sb.mustGit(['checkout', '--', '.'], repo);
    expect(fs.readFileSync(path.join(repo, 'v.mov')).equals(randomBytesSeeded(120_000, 7))).toBe(true);
    writeFile(path.join(repo, 'b.txt'), 'newer edit\n');
    writeFile(path.join(repo, 'untracked-new.txt'), 'not in the snapshot\n');
    const r = sb.dits(['snapshot', 'restore', s.id.slice(0, 12), '--json'], repo);
    expect(r.status).toBe(1); // something was skipped
    const out = JSON.parse(r.stdout) as { restored: string[]; skipped: { path: string; reason: string }[]; same: string[] };
    expect(out.restored).toEqual(['a.txt', 'v.mov']);
    expect(out.skipped.map((x) => x.path)).toEqual(['b.txt']);
    expect(r.stderr).toMatch(/skipped b\.txt: it has uncommitted changes/);
    expect(out.same).toContain('keep.txt');
    expect(fs.readFileSync(path.join(repo, 'a.txt'), 'utf8')).toBe('work in progress\n');
    expect(fs.readFileSync(path.join(repo, 'b.txt'), 'utf8')).toBe('newer edit\n');
    expect(fs.readFileSync(path.join(repo, 'v.mov')).equals(edited)).toBe(true);
    expect(fs.readFileSync(path.join(repo, 'untracked-new.txt'), 'utf8')).toBe('not in the snapshot\n'); // never deleted
    // with --force, and only the paths named
    sb.mustDits(['snapshot', 'restore', 'latest', 'b.txt', '--force'], repo);
    expect(fs.readFileSync(path.join(repo, 'b.txt'), 'utf8')).toBe('b in progress\n');
    expect(sb.dits(['snapshot', 'restore', 'nope'], repo).stderr).toMatch(/no snapshot is named 'nope'/);
    expect(sb.dits(['snapshot', 'restore', s.id, 'missing.txt'], repo).stderr).toMatch(/the snapshot has no file at missing\.txt/);
  });

  it('prune removes snapshots as restic forget does; gc keeps what a snapshot holds and frees it after prune', () => {
    const repo = sb.repo('prune', { track: ['*.mov'], config: SMALL_CHUNKS, files: { 'base.txt': 'b\n' } });
    sb.mustGit(['add', '-A'], repo);
    sb.mustGit(['commit', '-qm', 'c1'], repo);
    writeFile(path.join(repo, 'only-in-snapshot.mov'), randomBytesSeeded(200_000, 9));
    const s = snapshot(repo).snapshot;
    fs.rmSync(path.join(repo, 'only-in-snapshot.mov'));
    const kept = JSON.parse(sb.mustDits(['gc', '--prune=now', '--json'], repo));
    expect(kept.result.deletedChunks).toBe(0);
    writeFile(path.join(repo, 'later.txt'), 'l\n');
    const s2 = snapshot(repo).snapshot;
    const dry = JSON.parse(sb.mustDits(['snapshot', 'prune', '--dry-run', '--json'], repo));
    expect(dry.policy).toEqual({ hourly: 24, daily: 7, weekly: 4, monthly: 12 });
    sb.mustGit(['config', 'dits.snapshot.keepHourly', '1'], repo);
    sb.mustGit(['config', 'dits.snapshot.keepDaily', '0'], repo);
    sb.mustGit(['config', 'dits.snapshot.keepWeekly', '0'], repo);
    sb.mustGit(['config', 'dits.snapshot.keepMonthly', '0'], repo);
    const plan = JSON.parse(sb.mustDits(['snapshot', 'prune', '--dry-run', '--json'], repo));
    expect(plan.remove.map((x: Snap) => x.id)).toEqual([s.id]);
    expect(list(repo)).toHaveLength(2); // dry run
    sb.mustDits(['snapshot', 'prune'], repo);
    expect(list(repo).map((x) => x.id)).toEqual([s2.id]);
    const freed = JSON.parse(sb.mustDits(['gc', '--prune=now', '--json'], repo));
    expect(freed.result.deletedChunks).toBeGreaterThan(0);
    expect(sb.dits(['snapshot', 'prune', '--keep-hourly', 'x'], repo).stderr).toMatch(/--keep-hourly needs a whole number/);
  });

  it('gc keeps what a running snapshot has added before its ref exists (its temporary index)', () => {
    const repo = sb.repo('gc-running', { track: ['*.mov'], config: SMALL_CHUNKS, files: { 'base.txt': 'b\n' } });
    sb.mustGit(['add', '-A'], repo);
    sb.mustGit(['commit', '-qm', 'c1'], repo);
    writeFile(path.join(repo, 'wip.mov'), randomBytesSeeded(150_000, 12));
    // what a snapshot has done just before it moves its ref: the file added to its own index
    const building = path.join(repo, '.git', `dits-snapshot-index.${process.pid}.1`);
    sb.mustGit(['add', 'wip.mov'], repo, undefined, { GIT_INDEX_FILE: building });
    fs.rmSync(path.join(repo, 'wip.mov'));
    const kept = JSON.parse(sb.mustDits(['gc', '--prune=now', '--json'], repo));
    expect(kept.result.deletedChunks).toBe(0);
    fs.rmSync(building);
    const freed = JSON.parse(sb.mustDits(['gc', '--prune=now', '--json'], repo));
    expect(freed.result.deletedChunks).toBeGreaterThan(0);
  });

  it('a file being written while the snapshot runs is read again, and skipped with a warning if it will not hold still', async () => {
    const repo = sb.repo('busy', { files: { 'log.txt': 'committed\n', 'quiet.txt': 'q\n' } });
    sb.mustGit(['add', '-A'], repo);
    sb.mustGit(['commit', '-qm', 'c1'], repo);
    // a writer that rewrites log.txt over and over, 64 blocks of 16 KiB each naming its version
    const script = `
      const fs = require('fs');
      const file = process.argv[1];
      let v = 0;
      const block = (n) => Buffer.alloc(16384, String(n % 10));
      function again() {
        v++;
        const fd = fs.openSync(file, 'w');
        let i = 0;
        const step = () => {
          if (i++ < 64) { fs.writeSync(fd, block(v)); setTimeout(step, 2); }
          else { fs.closeSync(fd); setImmediate(again); }
        };
        step();
      }
      again();
      setTimeout(() => process.exit(0), 20000);`;
    const writer = spawn(process.execPath, ['-e', script, path.join(repo, 'log.txt')], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 300));
      const r = sb.dits(['snapshot', '--json'], repo);
      expect(r.status, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout) as { snapshot: Snap; skipped: { path: string }[] };
      expect(out.skipped.map((x) => x.path)).toEqual(['log.txt']);
      expect(r.stderr).toMatch(/skipped log\.txt: it kept changing/);
      // the snapshot holds a whole version: here the committed one
      expect(blob(repo, `${out.snapshot.commit}:log.txt`)).toBe('committed\n');
      expect(blob(repo, `${out.snapshot.commit}:quiet.txt`)).toBe('q\n');
    } finally {
      writer.kill('SIGKILL');
    }
  });

  it('a snapshot killed midway moves no ref and leaves nothing that stops the next one', async () => {
    const repo = sb.repo('killed', { track: ['*.mov'], config: SMALL_CHUNKS, files: { 'a.txt': 'a\n' } });
    sb.mustGit(['add', '-A'], repo);
    sb.mustGit(['commit', '-qm', 'c1'], repo);
    writeFile(path.join(repo, 'big.mov'), randomBytesSeeded(8_000_000, 10));
    const before = state(repo);
    for (const delay of [150, 400, 900]) {
      const child = spawn(DITS_BIN, ['snapshot'], { cwd: repo, env: sb.env, stdio: 'ignore', detached: true });
      const closed = new Promise((r) => child.on('close', r));
      await new Promise((r) => setTimeout(r, delay));
      try {
        process.kill(-child.pid!, 'SIGKILL'); // the command, git add and the filter process
      } catch {
        // it had finished
      }
      await closed;
      // either no snapshot or a whole one, and nothing else moved
      for (const s of list(repo)) expect(blob(repo, `${s.commit}:big.mov`)).toMatch(/size 8000000/);
      expect(state(repo)).toEqual(before);
    }
    const n = list(repo).length;
    const r = snapshot(repo);
    expect(list(repo)).toHaveLength(n + 1);
    expect(blob(repo, `${r.snapshot.commit}:big.mov`)).toMatch(/size 8000000/);
    expect(fs.readdirSync(path.join(repo, '.git')).filter((x) => x.startsWith('dits-snapshot-index'))).toEqual([]);
    fs.rmSync(path.join(repo, 'big.mov'));
    sb.mustDits(['snapshot', 'restore', r.snapshot.id, 'big.mov'], repo);
    expect(fs.readFileSync(path.join(repo, 'big.mov')).equals(randomBytesSeeded(8_000_000, 10))).toBe(true);
  });

  it('in a linked worktree: its own branch and files, its own retention group; sparse checkout keeps what is outside the cone', () => {
    const repo = sb.repo('wt-main', { files: { 'a.txt': 'a\n', 'dir/in.txt': 'in\n', 'out/o.txt': 'o\n' } });
    sb.mustGit(['add', '-A'], repo);
    sb.mustGit(['commit', '-qm', 'c1'], repo);
    const wt = path.join(sb.dir, 'wt-linked');
    sb.mustGit(['worktree', 'add', '-q', '-b', 'feature', wt], repo);
    writeFile(path.join(wt, 'a.txt'), 'in the worktree\n');
    const before = state(repo);
    const ws = snapshot(wt).snapshot;
    expect(state(repo)).toEqual(before);
    expect(ws.branch).toBe('feature');
    expect(ws.worktree).toBe(fs.realpathSync(wt));
    expect(blob(repo, `${ws.commit}:a.txt`)).toBe('in the worktree\n');
    const ms = snapshot(repo).snapshot;
    expect(blob(repo, `${ms.commit}:a.txt`)).toBe('a\n');
    // one per worktree kept: neither pushes the other out
    const plan = JSON.parse(sb.mustDits(['snapshot', 'prune', '--dry-run', '--json', '--keep-hourly', '1', '--keep-daily', '0', '--keep-weekly', '0', '--keep-monthly', '0'], repo));
    expect(plan.remove).toEqual([]);

    sb.mustGit(['sparse-checkout', 'set', '--cone', 'dir'], repo);
    expect(fs.existsSync(path.join(repo, 'out/o.txt'))).toBe(false);
    writeFile(path.join(repo, 'dir/in.txt'), 'in, edited\n');
    const sp = snapshot(repo).snapshot;
    expect(blob(repo, `${sp.commit}:dir/in.txt`)).toBe('in, edited\n');
    expect(blob(repo, `${sp.commit}:out/o.txt`)).toBe('o\n');
    // a restore leaves what the sparse checkout keeps out, out
    const r = sb.dits(['snapshot', 'restore', ms.id, '--json'], repo);
    const res = JSON.parse(r.stdout) as { restored: string[]; skipped: { path: string; reason: string }[] };
    expect(res.skipped).toEqual([
      { path: 'dir/in.txt', reason: 'it has uncommitted changes (use --force to overwrite it)' },
      { path: 'out/o.txt', reason: 'outside the sparse checkout (`git sparse-checkout add` its folder first)' },
    ]);
    expect(fs.existsSync(path.join(repo, 'out'))).toBe(false);
  });

  it('restore skips a path whose folder is now a file, and one whose place a folder took', () => {
    const repo = sb.repo('in-the-way', { files: { 'base.txt': 'b\n' } });
    sb.mustGit(['add', '-A'], repo);
    sb.mustGit(['commit', '-qm', 'c1'], repo);
    writeFile(path.join(repo, 'folder/f.txt'), 'f\n');
    writeFile(path.join(repo, 'plain'), 'p\n');
    const s = snapshot(repo).snapshot;
    fs.rmSync(path.join(repo, 'folder'), { recursive: true });
    fs.rmSync(path.join(repo, 'plain'));
    writeFile(path.join(repo, 'folder'), 'now a file\n');
    writeFile(path.join(repo, 'plain/inside.txt'), 'i\n');
    const r = sb.dits(['snapshot', 'restore', s.id, '--force', '--json'], repo);
    expect(r.status).toBe(1);
    expect(JSON.parse(r.stdout).skipped).toEqual([
      { path: 'folder/f.txt', reason: 'a file is in the place of its folder' },
      { path: 'plain', reason: 'a folder is in its place' },
    ]);
    expect(fs.readFileSync(path.join(repo, 'folder'), 'utf8')).toBe('now a file\n');
  });

  it('--push sends the snapshot ref and its content through git-remote-dits; a clone restores from it', () => {
    const repo = sb.repo('push', { track: ['*.mov'], config: SMALL_CHUNKS, files: { 'a.txt': 'a\n' } });
    sb.mustGit(['add', '-A'], repo);
    sb.mustGit(['commit', '-qm', 'c1'], repo);
    const url = `dits::file://${path.join(sb.dir, 'remotes', 'push')}`;
    sb.mustGit(['remote', 'add', 'origin', url], repo);
    sb.mustGit(['push', '-q', 'origin', 'main'], repo);
    writeFile(path.join(repo, 'wip.mov'), randomBytesSeeded(90_000, 11));
    const r = snapshot(repo, ['--push', 'origin']);
    const remoteRefs = sb.mustGit(['ls-remote', 'origin'], repo);
    expect(remoteRefs).toContain(`${r.snapshot.commit}\t${r.snapshot.ref}`);
    const clone = path.join(sb.dir, 'push-clone');
    sb.mustGit(['clone', '-q', url, clone], sb.dir);
    sb.mustGit(['fetch', '-q', 'origin', `+refs/dits/snapshots/*:refs/dits/snapshots/*`], clone);
    sb.mustDits(['snapshot', 'restore', r.snapshot.id, 'wip.mov'], clone);
    expect(fs.readFileSync(path.join(clone, 'wip.mov')).equals(randomBytesSeeded(90_000, 11))).toBe(true);
  });
});
