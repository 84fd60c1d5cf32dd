/**
 * `git dits gc` never loses committed content: it deletes only what it has proved
 * unreachable, stops when it cannot read something that decides liveness, never touches a
 * pack being written, and reclaims what dead writers left at once. Real git, real
 * processes (an add running while gc runs, an add killed mid-write).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { DITS_BIN, GitSandbox, SMALL_CHUNKS, cloneInto, pointerOf, randomBytesSeeded, writeFile } from './helpers/git-env.js';

let sb: GitSandbox;
beforeAll(() => {
  sb = new GitSandbox('dits-gc-safety-');
});
afterAll(() => sb?.cleanup());

const CFG = SMALL_CHUNKS;

function manifestOf(repo: string, rev: string, file: string): string {
  return /manifest blake3:([0-9a-f]{64})/.exec(pointerOf(sb, repo, rev, file))![1]!;
}

const require = createRequire(import.meta.url);

type Db = { prepare(sql: string): { pluck(): { get(...a: unknown[]): unknown }; run(...a: unknown[]): unknown }; close(): void };

/**
 * A manifest's stored bytes where Dits keeps them: a row of the store's index, or, with
 * `asFile`, a file under .git/dits/manifests as earlier versions stored them (moved there).
 */
function storedManifest(repo: string, id: string, asFile = false): { read(): Buffer | undefined; write(b: Buffer): void; remove(): void } {
  const Database = require('better-sqlite3') as new (file: string) => Db;
  const withDb = <T>(f: (db: Db) => T): T => {
    const db = new Database(path.join(repo, '.git/dits/index.sqlite'));
    try {
      return f(db);
    } finally {
      db.close();
    }
  };
  const rowOf = (): Buffer | undefined => withDb((db) => db.prepare('SELECT body FROM manifests WHERE id = ?').pluck().get(id) as Buffer | undefined);
  const file = path.join(repo, '.git/dits/manifests', id.slice(0, 2), id.slice(2));
  if (asFile) {
    const body = rowOf();
    expect(body, 'the manifest is a row of the index').toBeDefined();
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, body!, { mode: 0o444 });
    withDb((db) => db.prepare('DELETE FROM manifests WHERE id = ?').run(id));
    return {
      read: () => (fs.existsSync(file) ? fs.readFileSync(file) : undefined),
      write: (b) => {
        if (fs.existsSync(file)) fs.chmodSync(file, 0o644);
        fs.writeFileSync(file, b);
      },
      remove: () => fs.rmSync(file),
    };
  }
  return {
    read: rowOf,
    write: (b) => withDb((db) => db.prepare('INSERT OR REPLACE INTO manifests(id, body, added_at) VALUES (?, ?, ?)').run(id, b, Date.now())),
    remove: () => withDb((db) => db.prepare('DELETE FROM manifests WHERE id = ?').run(id)),
  };
}

/** Writes `rev`'s version of `file` into the working tree (real content) and returns its bytes. */
function contentAt(repo: string, rev: string, file: string): Buffer {
  sb.mustGit(['checkout', rev, '--', file], repo);
  sb.mustDits(['checkout', '--', file], repo);
  return fs.readFileSync(path.join(repo, file));
}

function packBytes(repo: string): number {
  const dir = path.join(repo, '.git/dits/packs');
  return fs.readdirSync(dir).reduce((a, f) => a + fs.statSync(path.join(dir, f)).size, 0);
}

/** A repository with v1 and v2 of a.mov committed, and a dead version (committed, then dropped from history and reflog). */
function twoVersions(name: string): { repo: string; v1: Buffer; v2: Buffer } {
  const v1 = randomBytesSeeded(400_000, 11);
  const v2 = randomBytesSeeded(400_000, 12);
  const repo = sb.repo(name, { track: ['*.mov'], config: CFG, files: { 'a.mov': v1 } });
  sb.mustGit(['add', '.'], repo);
  sb.mustGit(['commit', '-q', '-m', 'v1'], repo);
  writeFile(path.join(repo, 'a.mov'), v2);
  sb.mustGit(['commit', '-q', '-am', 'v2'], repo);
  // something for gc to remove: a version committed on a branch that is then deleted
  sb.mustGit(['checkout', '-q', '-b', 'scratch'], repo);
  writeFile(path.join(repo, 'a.mov'), randomBytesSeeded(300_000, 13));
  sb.mustGit(['commit', '-q', '-am', 'scratch'], repo);
  sb.mustGit(['checkout', '-q', 'main'], repo);
  sb.mustDits(['checkout'], repo);
  sb.mustGit(['branch', '-q', '-D', 'scratch'], repo);
  sb.mustGit(['reflog', 'expire', '--expire=now', '--all'], repo);
  return { repo, v1, v2 };
}

describe('gc and manifests it cannot read', () => {
  it.each([
    ['a row of the index', false],
    ['a file, as earlier versions stored it', true],
  ])('a reachable manifest (%s) with one flipped byte stops gc with an error naming it; nothing is deleted', (_kind, asFile) => {
    const { repo, v1, v2 } = twoVersions(`corrupt-manifest-${asFile ? 'file' : 'row'}`);
    const id = manifestOf(repo, 'HEAD~1', 'a.mov');
    const stored = storedManifest(repo, id, asFile);
    const good = stored.read()!;
    const bad = Buffer.from(good);
    bad[bad.length >> 1] ^= 0x01;
    stored.write(bad);
    const packsBefore = packBytes(repo);
    const r = sb.dits(['gc', '--prune=now'], repo);
    expect(r.status, r.stderr + r.stdout).toBe(1);
    expect(r.stderr).toContain(id);
    expect(r.stderr).toMatch(/a\.mov/);
    expect(r.stderr).toMatch(/git dits fsck/);
    expect(r.stderr).not.toMatch(/internal error|at .*\.js:\d+/);
    expect(packBytes(repo)).toBe(packsBefore); // not even the dead version was removed
    stored.write(good);
    expect(sb.dits(['fsck'], repo).status).toBe(0);
    expect(contentAt(repo, 'HEAD~1', 'a.mov').equals(v1)).toBe(true);
    // readable again: gc runs, removes the dead version, keeps both committed ones
    sb.mustDits(['gc', '--prune=now'], repo);
    expect(packBytes(repo)).toBeLessThan(packsBefore);
    expect(sb.dits(['fsck'], repo).status).toBe(0);
    expect(contentAt(repo, 'HEAD~1', 'a.mov').equals(v1)).toBe(true);
    expect(contentAt(repo, 'HEAD', 'a.mov').equals(v2)).toBe(true);
  });

  it.each([
    ['a row of the index', false],
    ['a file, as earlier versions stored it', true],
  ])('a reachable manifest (%s) moved away stops gc when no remote holds it', (_kind, asFile) => {
    const { repo, v1 } = twoVersions(`missing-manifest-${asFile ? 'file' : 'row'}`);
    const id = manifestOf(repo, 'HEAD~1', 'a.mov');
    const stored = storedManifest(repo, id, asFile);
    const aside = stored.read()!;
    stored.remove();
    const packsBefore = packBytes(repo);
    const r = sb.dits(['gc', '--prune=now'], repo);
    expect(r.status, r.stderr + r.stdout).toBe(1);
    expect(r.stderr).toContain(id);
    expect(r.stderr).toMatch(/a\.mov/);
    expect(packBytes(repo)).toBe(packsBefore);
    stored.write(aside);
    expect(sb.dits(['fsck'], repo).status).toBe(0);
    expect(contentAt(repo, 'HEAD~1', 'a.mov').equals(v1)).toBe(true);
  });

  it('a reachable manifest that only a remote holds is fetched back so gc can decide; with --no-fetch gc keeps every chunk that looks unused', () => {
    const { repo, v1, v2 } = twoVersions('remote-manifest');
    const remoteDir = path.join(sb.dir, 'remotes', 'remote-manifest');
    sb.mustGit(['remote', 'add', 'origin', `dits::file://${remoteDir}`], repo);
    sb.mustGit(['push', '-q', 'origin', 'main'], repo);
    const id = manifestOf(repo, 'HEAD~1', 'a.mov');
    const stored = storedManifest(repo, id);
    stored.remove();
    const packsBefore = packBytes(repo);
    const kept = sb.dits(['gc', '--prune=now', '--no-fetch'], repo);
    expect(kept.status, kept.stderr + kept.stdout).toBe(0);
    expect(kept.stderr).toMatch(/Kept all chunks that look unused: 1 file version\(s\) still in use have their manifest only on a remote/);
    expect(kept.stderr).toMatch(/a\.mov in commit/);
    expect(packBytes(repo)).toBe(packsBefore);
    const r = sb.dits(['gc', '--prune=now'], repo);
    expect(r.status, r.stderr + r.stdout).toBe(0);
    expect(stored.read()).toBeDefined(); // fetched back and verified
    expect(packBytes(repo)).toBeLessThan(packsBefore); // the dead version went
    // the local copy of v1 is whole: no remote needed
    fs.rmSync(remoteDir, { recursive: true, force: true });
    expect(sb.dits(['fsck'], repo).status).toBe(0);
    expect(contentAt(repo, 'HEAD~1', 'a.mov').equals(v1)).toBe(true);
    expect(contentAt(repo, 'HEAD', 'a.mov').equals(v2)).toBe(true);
  });
});

describe('gc keeps what anything still refers to', () => {
  it('stash entries below the top, other worktrees\' indexes, working-tree pointers, the pending list and reflogs', () => {
    const base = randomBytesSeeded(200_000, 20);
    const repo = sb.repo('live-sources', { track: ['*.mov'], config: CFG, files: { 'a.mov': base, '.gitignore': 'ignored.mov\n' } });
    sb.mustGit(['add', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', 'base'], repo);
    // three stash entries; the content of the oldest is reachable only through the stash reflog
    const stashed = [21, 22, 23].map((seed) => randomBytesSeeded(200_000, seed));
    for (const s of stashed) {
      writeFile(path.join(repo, 'a.mov'), s);
      sb.mustGit(['stash', '-q'], repo);
    }
    // drop a different entry than the one we check
    sb.mustGit(['stash', 'drop', '-q', 'stash@{1}'], repo);
    // a commit reachable only from a reflog
    const reflogOnly = randomBytesSeeded(200_000, 24);
    writeFile(path.join(repo, 'a.mov'), reflogOnly);
    sb.mustGit(['commit', '-q', '-am', 'soon reset'], repo);
    const resetAway = sb.mustGit(['rev-parse', 'HEAD'], repo).trim();
    sb.mustGit(['reset', '-q', '--hard', 'HEAD~1'], repo);
    sb.mustDits(['checkout'], repo);
    // staged only in another worktree's index
    const wt2 = path.join(sb.dir, 'live-sources-wt2');
    sb.mustGit(['worktree', 'add', '-q', wt2], repo);
    const staged = randomBytesSeeded(200_000, 25);
    writeFile(path.join(wt2, 'b.mov'), staged);
    sb.mustGit(['add', 'b.mov'], wt2);
    // a pointer in the working tree that no commit or index holds: content committed on a
    // branch that is then deleted, its pointer left in a file (as a stash apply may leave it)
    const wtOnly = randomBytesSeeded(200_000, 26);
    const pendingOnly = randomBytesSeeded(200_000, 27);
    sb.mustGit(['checkout', '-q', '-b', 'gone'], repo);
    writeFile(path.join(repo, 'c.mov'), wtOnly);
    writeFile(path.join(repo, 'd.mov'), pendingOnly);
    sb.mustGit(['add', 'c.mov', 'd.mov'], repo);
    sb.mustGit(['commit', '-q', '-m', 'gone'], repo);
    const cPointer = pointerOf(sb, repo, 'HEAD', 'c.mov');
    const dPointer = pointerOf(sb, repo, 'HEAD', 'd.mov');
    sb.mustGit(['checkout', '-q', 'main'], repo);
    sb.mustGit(['branch', '-q', '-D', 'gone'], repo);
    // (reflogs other than the stash's and HEAD's expired: the branch's content has no other referrer)
    sb.mustGit(['reflog', 'expire', '--expire=now', 'HEAD'], repo);
    writeFile(path.join(repo, 'c.mov'), cPointer); // untracked, not ignored
    // ignored, so only the pending list names it
    writeFile(path.join(repo, 'ignored.mov'), dPointer);
    fs.appendFileSync(path.join(repo, '.git/dits/pending'), 'ignored.mov\0');
    // the reflog entry of the reset commit was expired with HEAD's: keep one on main's reflog
    expect(sb.mustGit(['reflog', 'show', '--format=%H', 'refs/heads/main'], repo)).toContain(resetAway);

    const r = sb.dits(['gc', '--prune=now'], repo);
    expect(r.status, r.stderr).toBe(0);
    expect(sb.dits(['fsck'], repo).status).toBe(0);

    expect(contentAt(repo, 'stash@{1}', 'a.mov').equals(stashed[0]!)).toBe(true);
    expect(contentAt(repo, 'stash@{0}', 'a.mov').equals(stashed[2]!)).toBe(true);
    expect(contentAt(repo, resetAway, 'a.mov').equals(reflogOnly)).toBe(true);
    fs.rmSync(path.join(wt2, 'b.mov'));
    sb.mustGit(['checkout', '--', 'b.mov'], wt2);
    sb.mustDits(['checkout', '--', 'b.mov'], wt2);
    expect(fs.readFileSync(path.join(wt2, 'b.mov')).equals(staged)).toBe(true);
    for (const [file, want] of [['c.mov', wtOnly], ['ignored.mov', pendingOnly]] as const) {
      sb.mustGit(['add', '-f', file], repo);
      fs.rmSync(path.join(repo, file));
      sb.mustGit(['checkout', '--', file], repo);
      sb.mustDits(['checkout', '--', file], repo);
      expect(fs.readFileSync(path.join(repo, file)).equals(want), file).toBe(true);
    }
  });

  it('stash, apply (leaving a pointer, as it did before), drop, gc: the applied content is not lost', () => {
    const base = randomBytesSeeded(200_000, 50);
    const repo = sb.repo('stash-apply-drop', { track: ['*.mov'], config: CFG, files: { 'a.mov': base } });
    sb.mustGit(['add', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', 'base'], repo);
    const edited = randomBytesSeeded(200_000, 51);
    writeFile(path.join(repo, 'a.mov'), edited);
    sb.mustGit(['stash', '-q'], repo);
    sb.mustGit(['stash', 'apply', '-q'], repo);
    // what `git stash apply` left on the cases issue 15 lists: the stashed pointer, not the bytes
    writeFile(path.join(repo, 'a.mov'), pointerOf(sb, repo, 'stash@{0}', 'a.mov'));
    sb.mustGit(['stash', 'drop', '-q'], repo);
    const r = sb.dits(['gc', '--prune=now'], repo);
    expect(r.status, r.stderr).toBe(0);
    sb.mustGit(['add', 'a.mov'], repo); // the pointer is staged as it is
    expect(sb.dits(['fsck'], repo).status).toBe(0);
    fs.rmSync(path.join(repo, 'a.mov'));
    sb.mustGit(['checkout', '--', 'a.mov'], repo);
    sb.mustDits(['checkout', '--', 'a.mov'], repo);
    expect(fs.readFileSync(path.join(repo, 'a.mov')).equals(edited)).toBe(true);
  });

  it('stops when git cannot list what is reachable (a broken ref, a corrupt index)', () => {
    const { repo } = twoVersions('unreadable-refs');
    const packsBefore = packBytes(repo);
    fs.writeFileSync(path.join(repo, '.git/refs/heads/broken'), '0123456789012345678901234567890123456789\n');
    let r = sb.dits(['gc', '--prune=now'], repo);
    expect(r.status, r.stderr + r.stdout).toBe(1);
    expect(r.stderr).toMatch(/git cannot list/);
    expect(r.stderr).toMatch(/git fsck/);
    expect(r.stderr).not.toMatch(/internal error/);
    expect(packBytes(repo)).toBe(packsBefore);
    fs.rmSync(path.join(repo, '.git/refs/heads/broken'));
    const index = path.join(repo, '.git/index');
    const good = fs.readFileSync(index);
    const bad = Buffer.from(good);
    bad[0] ^= 0xff; // not an index any more: git says it is corrupt
    fs.writeFileSync(index, bad);
    r = sb.dits(['gc', '--prune=now'], repo);
    expect(r.status, r.stderr + r.stdout).toBe(1);
    expect(r.stderr).not.toMatch(/internal error/);
    expect(packBytes(repo)).toBe(packsBefore);
    fs.writeFileSync(index, good);
    // another worktree's index
    const wt2 = path.join(sb.dir, 'unreadable-refs-wt2');
    sb.mustGit(['worktree', 'add', '-q', wt2], repo);
    const index2 = path.join(repo, '.git/worktrees', path.basename(wt2), 'index');
    const good2 = fs.readFileSync(index2);
    fs.writeFileSync(index2, Buffer.concat([Buffer.from('XXXX'), good2.subarray(4)]));
    r = sb.dits(['gc', '--prune=now'], repo);
    expect(r.status, r.stderr + r.stdout).toBe(1);
    expect(r.stderr).toMatch(/git cannot list/);
    expect(packBytes(repo)).toBe(packsBefore);
    fs.writeFileSync(index2, good2);
    sb.mustDits(['gc', '--prune=now'], repo);
    expect(packBytes(repo)).toBeLessThan(packsBefore);
  });
});

/** Starts `git dits add <file>` as its own process; resolves with its result. */
function startAdd(repo: string, file: string, cmd: 'dits' | 'git' = 'dits'): { child: ReturnType<typeof spawn>; done: Promise<{ status: number | null; signal: NodeJS.Signals | null; stderr: string }> } {
  const child = spawn(cmd === 'dits' ? DITS_BIN : 'git', ['add', file], { cwd: repo, env: sb.env });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.resume();
  const done = new Promise<{ status: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => child.on('close', (status, signal) => resolve({ status, signal, stderr })));
  return { child, done };
}

async function waitForNewPack(repo: string, before: Set<string>, minSize: number): Promise<string> {
  const dir = path.join(repo, '.git/dits/packs');
  const t0 = Date.now();
  while (Date.now() - t0 < 60_000) {
    for (const f of fs.readdirSync(dir)) {
      if (before.has(f)) continue;
      try {
        if (fs.statSync(path.join(dir, f)).size >= minSize) return f;
      } catch {
        /* just removed */
      }
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('no pack appeared');
}

describe('gc and packs being written', () => {
  const BIG = { 'dits.smudgeInlineMax': '64k' }; // default chunk and pack sizes

  it('gc --prune=now while an add writes leaves the add whole (fsck clean, content checks out)', async () => {
    const repo = sb.repo('gc-during-add', { track: ['*.mov'], config: BIG });
    const content = randomBytesSeeded(160 * 1024 * 1024, 31);
    writeFile(path.join(repo, 'big.mov'), content);
    const before = new Set(fs.readdirSync(path.join(repo, '.git/dits/packs')));
    const add = startAdd(repo, 'big.mov');
    await waitForNewPack(repo, before, 1);
    const gc = sb.dits(['gc', '--prune=now'], repo);
    const added = await add.done;
    expect(gc.status, gc.stderr).toBe(0);
    expect(added.status, added.stderr).toBe(0);
    const fsck = sb.dits(['fsck'], repo);
    expect(fsck.status, fsck.stderr + fsck.stdout).toBe(0);
    sb.mustGit(['commit', '-q', '-m', 'big'], repo);
    fs.rmSync(path.join(repo, 'big.mov'));
    expect(contentAt(repo, 'HEAD', 'big.mov').equals(content)).toBe(true);
    // and a later gc, with nothing running, keeps it too
    sb.mustDits(['gc', '--prune=now'], repo);
    expect(sb.dits(['fsck'], repo).status).toBe(0);
  });

  it('the same with a plain `git add` (the clean filter is the writer)', async () => {
    const repo = sb.repo('gc-during-git-add', { track: ['*.mov'], config: BIG });
    const content = randomBytesSeeded(96 * 1024 * 1024, 32);
    writeFile(path.join(repo, 'big.mov'), content);
    const before = new Set(fs.readdirSync(path.join(repo, '.git/dits/packs')));
    const add = startAdd(repo, 'big.mov', 'git');
    await waitForNewPack(repo, before, 1);
    const gc = sb.dits(['gc', '--prune=now'], repo);
    const added = await add.done;
    expect(gc.status, gc.stderr).toBe(0);
    expect(added.status, added.stderr).toBe(0);
    expect(sb.dits(['fsck'], repo).status).toBe(0);
    sb.mustGit(['commit', '-q', '-m', 'big'], repo);
    fs.rmSync(path.join(repo, 'big.mov'));
    expect(contentAt(repo, 'HEAD', 'big.mov').equals(content)).toBe(true);
  });

  it('the partial pack of an add killed mid-write is reclaimed by the next gc at once, whatever the grace', async () => {
    const repo = sb.repo('killed-add', { track: ['*.mov'], config: BIG });
    writeFile(path.join(repo, 'keep.mov'), randomBytesSeeded(3_000_000, 40));
    sb.mustGit(['add', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', 'keep'], repo);
    const packsBefore = packBytes(repo);
    writeFile(path.join(repo, 'big.mov'), randomBytesSeeded(160 * 1024 * 1024, 41));
    const before = new Set(fs.readdirSync(path.join(repo, '.git/dits/packs')));
    const add = startAdd(repo, 'big.mov');
    const partial = await waitForNewPack(repo, before, 16 * 1024 * 1024);
    add.child.kill('SIGKILL');
    expect((await add.done).signal).toBe('SIGKILL');
    expect(fs.existsSync(path.join(repo, '.git/dits/packs', partial))).toBe(true);
    const r = sb.dits(['gc'], repo); // default grace: one hour
    expect(r.status, r.stderr).toBe(0);
    expect(fs.existsSync(path.join(repo, '.git/dits/packs', partial))).toBe(false);
    expect(packBytes(repo)).toBe(packsBefore);
    expect(sb.dits(['fsck'], repo).status).toBe(0);
    // the add can be run again
    sb.mustDits(['add', 'big.mov'], repo);
    expect(sb.dits(['fsck'], repo).status).toBe(0);
  });
});

describe('a full disk', () => {
  it('says what frees space, and that gc frees what the failed add left', (ctx) => {
    const mnt = path.join(sb.dir, 'small-disk');
    fs.mkdirSync(mnt);
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mnt]);
    if (m.status !== 0) {
      ctx.skip(); // needs root and permission to mount tmpfs; CI runs as root
      return;
    }
    try {
      const repo = path.join(mnt, 'r');
      sb.mustGit(['init', '-q', repo], sb.dir);
      for (const [k, v] of Object.entries({ ...CFG, 'dits.packSize': '64m' })) sb.mustGit(['config', k, v], repo);
      sb.mustDits(['init'], repo);
      sb.mustDits(['track', '*.mov'], repo);
      writeFile(path.join(repo, 'ok.mov'), randomBytesSeeded(50_000, 80));
      sb.mustGit(['add', '.'], repo);
      sb.mustGit(['commit', '-q', '-m', 'ok'], repo);
      const packsBefore = packBytes(repo);
      const big = path.join(repo, 'big.mov');
      const fd = fs.openSync(big, 'w');
      try {
        for (let i = 0; i < 64; i++) fs.writeSync(fd, randomBytesSeeded(65536, 90 + i));
      } catch {
        /* the file itself may not fit entirely */
      }
      fs.closeSync(fd);
      const r = sb.dits(['add', 'big.mov'], repo);
      expect(r.status, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/disk is full/);
      expect(r.stderr).toMatch(/git dits gc/);
      expect(packBytes(repo)).toBeGreaterThan(packsBefore); // the failed add left bytes behind
      const gc = sb.dits(['gc'], repo); // what the hint says, default grace
      expect(gc.status, gc.stderr).toBe(0);
      expect(packBytes(repo)).toBe(packsBefore);
      expect(sb.dits(['fsck'], repo).status).toBe(0);
    } finally {
      spawnSync('umount', ['-l', mnt]);
    }
  });
});
