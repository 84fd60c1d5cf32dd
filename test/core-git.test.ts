/**
 * End to end: real git driving the Dits filter, hooks and commands in temp repositories.
 * Files above dits.smudgeInlineMax (set tiny here) take the big-file path: smudge leaves a
 * pointer and the hooks write the content outside Git's pipe.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { blake3 } from '@napi-rs/blake-hash';
import { GitSandbox, ROOT, pointerOf, randomBytesSeeded, writeFile } from './helpers/git-env.js';

let sb: GitSandbox;
beforeAll(() => {
  sb = new GitSandbox();
});
afterAll(() => sb.cleanup());

const SMALL_CHUNKS = { 'dits.chunkMin': '1024', 'dits.chunkAvg': '4096', 'dits.chunkMax': '16384', 'dits.smudgeInlineMax': '64k' };
const id = (b: Buffer): string => blake3(b).toString('hex');
const read = (repo: string, f: string): Buffer => fs.readFileSync(path.join(repo, f));

describe('install and init', () => {
  it('are idempotent and keep hooks the user already had', () => {
    const repo = path.join(sb.dir, 'hooks');
    sb.mustGit(['init', '-q', repo], sb.dir);
    const mine = path.join(repo, '.git/hooks/post-checkout');
    writeFile(mine, '#!/bin/sh\necho "user hook ran" >> "$(git rev-parse --git-dir)/user-hook.log"\n');
    fs.chmodSync(mine, 0o755);
    sb.mustDits(['init'], repo);
    sb.mustDits(['init'], repo);
    sb.mustDits(['install'], repo);
    expect(fs.existsSync(`${mine}.pre-dits`)).toBe(true);
    expect(fs.readFileSync(mine, 'utf8')).toContain('git-dits hook');
    const cfg = sb.mustGit(['config', '--global', '--get-all', 'filter.dits.process'], repo).trim().split('\n');
    expect(cfg).toHaveLength(1);
    sb.mustGit(['commit', '-q', '--allow-empty', '-m', 'x'], repo);
    sb.mustGit(['checkout', '-q', '-b', 'b'], repo);
    expect(fs.readFileSync(path.join(repo, '.git/user-hook.log'), 'utf8')).toContain('user hook ran');
  });

  it('says what to do outside a repository and before init', () => {
    const outside = sb.dits(['status'], sb.dir);
    expect(outside.status).toBe(1);
    expect(outside.stderr).toMatch(/not inside a Git repository/);
    expect(outside.stderr).toMatch(/hint: .*git init/);
    const repo = path.join(sb.dir, 'noinit');
    sb.mustGit(['init', '-q', repo], sb.dir);
    for (const cmd of [['status'], ['ls-files'], ['du'], ['fsck'], ['gc'], ['add', 'x']]) {
      const r = sb.dits(cmd, repo);
      expect(r.status, cmd.join(' ')).toBe(1);
      expect(r.stderr).toMatch(/git dits init/);
    }
    const unknown = sb.dits(['frobnicate'], repo);
    expect(unknown.stderr).toMatch(/not a git dits command/);
  });

  it('has --help on every command', () => {
    for (const c of ['install', 'init', 'track', 'untrack', 'add', 'status', 'ls-files', 'du', 'fsck', 'gc', 'checkout', 'inspect']) {
      const r = sb.dits([c, '--help'], sb.dir);
      expect(r.status, c).toBe(0);
      expect(r.stdout).toMatch(/^usage: git dits/);
    }
  });

  it('git dits --help (which git turns into `man git-dits`) shows the manual page with every command', () => {
    const gen = sb.run(process.execPath, [path.join(ROOT, 'scripts', 'gen-man.mjs')], ROOT);
    expect(gen.status, gen.stderr).toBe(0);
    const page = fs.readFileSync(path.join(ROOT, 'man', 'man1', 'git-dits.1'), 'utf8');
    const main = sb.mustDits(['--help'], sb.dir);
    const names = [...main.matchAll(/^ {2}(\S+) /gm)].map((m) => m[1]!);
    expect(names.length).toBeGreaterThan(10);
    for (const name of names) expect(page).toContain(`.B git dits ${name}`);
    if (sb.run('man', ['--version'], sb.dir).status !== 0) return; // no man viewer on this machine
    // where `npm link` (setup) or a global install puts it, man finds it; here: MANPATH
    const r = sb.git(['dits', '--help'], sb.dir, undefined, { MANPATH: `${path.join(ROOT, 'man')}:` });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/git dits add/);
    expect(r.stdout).toMatch(/dits\.keepLocalCopy/);
  });
});

describe('track', () => {
  it('writes and removes .gitattributes lines', () => {
    const repo = sb.repo('track');
    sb.mustDits(['track', '*.mov', '*.mp4', 'my clip.mxf'], repo);
    sb.mustDits(['track', '*.mov'], repo);
    const attrs = fs.readFileSync(path.join(repo, '.gitattributes'), 'utf8');
    expect(attrs).toBe('*.mov filter=dits diff=dits merge=dits -text\n*.mp4 filter=dits diff=dits merge=dits -text\nmy[[:space:]]clip.mxf filter=dits diff=dits merge=dits -text\n');
    expect(sb.mustGit(['check-attr', 'filter', '--', 'my clip.mxf'], repo)).toContain('filter: dits');
    sb.mustDits(['untrack', '*.mp4'], repo);
    expect(fs.readFileSync(path.join(repo, '.gitattributes'), 'utf8')).not.toContain('*.mp4');
    expect(JSON.parse(sb.mustDits(['track', '--json'], repo))).toEqual([
      { pattern: '*.mov', lockable: false },
      { pattern: 'my[[:space:]]clip.mxf', lockable: false },
    ]);
  });
});

describe('everyday git with tracked files', () => {
  it('stores pointers, keeps real bytes in the tree, and stays clean across checkout, switch, merge, stash, reset', () => {
    const v1 = randomBytesSeeded(300_000, 1);
    const small = randomBytesSeeded(5_000, 2);
    const repo = sb.repo('everyday', { track: ['*.mov'], config: SMALL_CHUNKS, files: { 'a.mov': v1, 'small.mov': small, 'notes.txt': 'hello\n' } });
    sb.mustGit(['add', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', 'one'], repo);
    const ptr = pointerOf(sb, repo, 'HEAD', 'a.mov');
    expect(ptr).toMatch(/^version dits\/1\noid blake3:[0-9a-f]{64}\nsize 300000\nmanifest blake3:[0-9a-f]{64}\n$/);
    expect(Buffer.byteLength(ptr)).toBeLessThan(1024);
    expect(ptr).toContain(id(v1));
    expect(sb.status(repo)).toBe('');

    // Edit in the middle on a branch.
    sb.mustGit(['switch', '-q', '-c', 'edit'], repo);
    const v2 = Buffer.from(v1);
    v2.fill(7, 150_000, 150_100);
    writeFile(path.join(repo, 'a.mov'), v2);
    expect(sb.status(repo)).toBe(' M a.mov\n');
    sb.mustGit(['commit', '-q', '-am', 'two'], repo);

    sb.mustGit(['checkout', '-q', 'main'], repo);
    expect(read(repo, 'a.mov').equals(v1)).toBe(true);
    expect(sb.status(repo)).toBe('');
    sb.mustGit(['switch', '-q', 'edit'], repo);
    expect(read(repo, 'a.mov').equals(v2)).toBe(true);
    expect(sb.status(repo)).toBe('');
    sb.mustGit(['checkout', '-q', 'HEAD~1'], repo);
    expect(read(repo, 'a.mov').equals(v1)).toBe(true);
    expect(sb.status(repo)).toBe('');

    // Merge (fast-forward and a real merge commit).
    sb.mustGit(['checkout', '-q', 'main'], repo);
    sb.mustGit(['checkout', '-q', '-b', 'side'], repo);
    const v3 = randomBytesSeeded(200_000, 3);
    writeFile(path.join(repo, 'b.mov'), v3);
    sb.mustGit(['add', 'b.mov'], repo);
    sb.mustGit(['commit', '-q', '-m', 'side'], repo);
    sb.mustGit(['checkout', '-q', 'main'], repo);
    sb.mustGit(['merge', '-q', '--no-edit', 'edit'], repo);
    sb.mustGit(['merge', '-q', '--no-edit', 'side'], repo);
    expect(read(repo, 'a.mov').equals(v2)).toBe(true);
    expect(read(repo, 'b.mov').equals(v3)).toBe(true);
    expect(sb.status(repo)).toBe('');

    // Stash and pop a modification; reset --hard.
    const v4 = randomBytesSeeded(250_000, 4);
    writeFile(path.join(repo, 'a.mov'), v4);
    sb.mustGit(['stash', '-q'], repo);
    expect(read(repo, 'a.mov').equals(v2)).toBe(true);
    expect(sb.status(repo)).toBe('');
    sb.mustGit(['stash', 'pop', '-q'], repo);
    expect(read(repo, 'a.mov').equals(v4)).toBe(true);
    sb.mustGit(['reset', '-q', '--hard'], repo);
    expect(read(repo, 'a.mov').equals(v2)).toBe(true);
    expect(sb.status(repo)).toBe('');
    sb.mustGit(['reset', '-q', '--hard', 'HEAD~2'], repo);
    expect(read(repo, 'a.mov').equals(v1)).toBe(true);
    expect(fs.existsSync(path.join(repo, 'b.mov'))).toBe(false);
    expect(sb.status(repo)).toBe('');

    const st = JSON.parse(sb.mustDits(['status', '--json'], repo)) as { path: string; state: string }[];
    expect(st.map((s) => [s.path, s.state])).toEqual([
      ['a.mov', 'present'],
      ['small.mov', 'present'],
    ]);
  });

  it('a small compressible file comes back through the pipe from a fresh filter process (its first zstd load)', () => {
    // loading zstd used to ask for a process report, which waits on the pipe reader's blocked thread: a hang
    const text = Buffer.from(Array.from({ length: 1500 }, (_, i) => `frame ${i} timecode 00:00:${i % 60}:${i % 25}\n`).join(''));
    const repo = sb.repo('zstd-smudge', { track: ['*.mov'], config: SMALL_CHUNKS, files: { 't.mov': text } });
    sb.mustGit(['add', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', 't'], repo);
    fs.rmSync(path.join(repo, 't.mov'));
    sb.mustGit(['checkout', '--', 't.mov'], repo);
    expect(read(repo, 't.mov').equals(text)).toBe(true);
    expect(sb.status(repo)).toBe('');
  });

  it('the filter process writes big files early and the hook renames them in; nothing is left behind', () => {
    const a = randomBytesSeeded(400_000, 21);
    const repo = sb.repo('early', { track: ['*.mov'], config: SMALL_CHUNKS, files: { 'a.mov': a, 'same.mov': a, 'sub/b.mov': randomBytesSeeded(300_000, 22) } });
    sb.mustGit(['add', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', 'one'], repo);
    const early = path.join(repo, '.git', 'dits', 'early');
    const b = read(repo, 'sub/b.mov');
    // files of processes that are gone (a filter or a hook killed midway) are cleaned up
    const gone = spawnSync('true').pid!;
    const m = /manifest blake3:([0-9a-f]{64})/.exec(pointerOf(sb, repo, 'HEAD', 'a.mov'))![1]!;
    fs.mkdirSync(early, { recursive: true });
    for (const suffix of ['part', 'ready', `claimed-${gone}`]) writeFile(path.join(early, `${m}.${gone}.${suffix}`), 'stale');
    for (const f of ['a.mov', 'same.mov', 'sub/b.mov']) fs.rmSync(path.join(repo, f));
    sb.mustGit(['checkout', '--', '.'], repo);
    expect(read(repo, 'a.mov').equals(a)).toBe(true);
    expect(read(repo, 'same.mov').equals(a)).toBe(true);
    expect(read(repo, 'sub/b.mov').equals(b)).toBe(true);
    expect(sb.status(repo)).toBe('');
    expect(fs.readdirSync(early)).toEqual([]);
    // a smudge that is not a checkout: the early write is stopped or removed when git exits
    const out = sb.mustGit(['cat-file', '--filters', 'HEAD:a.mov'], repo);
    expect(out).toMatch(/^version dits\/1\n/);
    expect(fs.readdirSync(early)).toEqual([]);
    // turned off: the hook writes them, as before
    fs.rmSync(path.join(repo, 'a.mov'));
    sb.mustGit(['-c', 'dits.earlyWrite=false', 'checkout', '--', 'a.mov'], repo);
    expect(read(repo, 'a.mov').equals(a)).toBe(true);
    expect(sb.status(repo)).toBe('');
    expect(fs.readdirSync(early)).toEqual([]);
  });

  it('a conflicting merge keeps ours and says how to choose', () => {
    const repo = sb.repo('conflict', { track: ['*.mov'], config: SMALL_CHUNKS, files: { 'c.mov': randomBytesSeeded(100_000, 10) } });
    sb.mustGit(['add', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', 'base'], repo);
    sb.mustGit(['checkout', '-q', '-b', 'theirs'], repo);
    const theirs = randomBytesSeeded(100_000, 11);
    writeFile(path.join(repo, 'c.mov'), theirs);
    sb.mustGit(['commit', '-q', '-am', 'theirs'], repo);
    sb.mustGit(['checkout', '-q', 'main'], repo);
    writeFile(path.join(repo, 'c.mov'), randomBytesSeeded(100_000, 12));
    sb.mustGit(['commit', '-q', '-am', 'ours'], repo);
    const m = sb.git(['merge', 'theirs'], repo);
    expect(m.status).not.toBe(0);
    expect(m.stderr + m.stdout).toMatch(/both sides changed c\.mov/);
    sb.mustGit(['checkout', '--theirs', '--', 'c.mov'], repo);
    sb.mustDits(['checkout'], repo);
    expect(read(repo, 'c.mov').equals(theirs)).toBe(true);
    sb.mustGit(['add', 'c.mov'], repo);
    sb.mustGit(['commit', '-q', '--no-edit'], repo);
    expect(sb.status(repo)).toBe('');
  });

  it('runs one filter process for many files', () => {
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 20; i++) files[`f${i}.mov`] = randomBytesSeeded(20_000, 100 + i);
    const repo = sb.repo('oneproc', { track: ['*.mov'], config: SMALL_CHUNKS, files });
    const trace = path.join(sb.dir, 'trace.txt');
    sb.mustGit(['add', '.'], repo, undefined, { GIT_TRACE: trace });
    const starts = fs.readFileSync(trace, 'utf8').split('\n').filter((l) => /run_command:.*filter-process/.test(l));
    expect(starts).toHaveLength(1);
  });

  it('git dits add stages exactly what git add would', () => {
    const content = randomBytesSeeded(400_000, 20);
    const a = sb.repo('fast-a', { track: ['*.mov'], config: SMALL_CHUNKS, files: { 'x y/clip.mov': content, 'readme.txt': 'r\n' } });
    const b = sb.repo('fast-b', { track: ['*.mov'], config: SMALL_CHUNKS, files: { 'x y/clip.mov': content, 'readme.txt': 'r\n' } });
    sb.mustGit(['add', '.'], a);
    const out = sb.mustDits(['add', '--json', '.'], b);
    expect(JSON.parse(out).added[0].path).toBe('x y/clip.mov');
    const lsA = sb.mustGit(['ls-files', '-s'], a);
    const lsB = sb.mustGit(['ls-files', '-s'], b);
    expect(lsB).toBe(lsA);
    expect(sb.status(b)).toBe('A  .gitattributes\nA  readme.txt\nA  "x y/clip.mov"\n');
    // Nothing re-runs the clean filter: the index already has the file's stat data.
    const trace = path.join(sb.dir, 'trace-b.txt');
    sb.mustGit(['status', '--porcelain'], b, undefined, { GIT_TRACE: trace });
    expect(fs.readFileSync(trace, 'utf8')).not.toMatch(/filter-process/);
  });
});

describe('round trip, byte for byte', () => {
  it('handles edge sizes, fake and damaged media, and awkward names', () => {
    const files: Record<string, Buffer> = {
      'empty.mov': Buffer.alloc(0),
      'one.mov': Buffer.from([0x42]),
      'exact-min.mov': randomBytesSeeded(1024, 30),
      'exact-max.mov': randomBytesSeeded(16384, 31),
      'max-plus-one.mov': randomBytesSeeded(16385, 32),
      'text.mov': Buffer.from('this is not a video\n'.repeat(100)),
      'with space.mov': randomBytesSeeded(70_000, 33),
      'ünïcødé 映像.mov': randomBytesSeeded(90_000, 34),
      '-dash.mov': randomBytesSeeded(80_000, 35),
      'looks-like-pointer.mov': Buffer.from('version dits/1\noid blake3:zz\n'),
    };
    // A truncated MP4-looking file: ftyp, then a moov box that claims more than the file has.
    const ftyp = Buffer.concat([Buffer.from([0, 0, 0, 20]), Buffer.from('ftypisom'), Buffer.from([0, 0, 2, 0]), Buffer.from('isom')]);
    const moov = Buffer.concat([Buffer.from([0, 0x10, 0, 0]), Buffer.from('moov'), randomBytesSeeded(5000, 36)]);
    files['truncated.mp4'] = Buffer.concat([ftyp, moov]);
    const repo = sb.repo('edges', { track: ['*.mov', '*.mp4'], config: SMALL_CHUNKS, files });
    sb.mustGit(['add', '--', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', 'edges'], repo);
    for (const f of Object.keys(files)) fs.rmSync(path.join(repo, f));
    sb.mustGit(['checkout', '-q', '--', '.'], repo);
    sb.mustDits(['checkout'], repo);
    for (const [f, content] of Object.entries(files)) expect(read(repo, f).equals(content), f).toBe(true);
    expect(sb.status(repo)).toBe('');
    // A fresh clone (no hooks yet) ends with real files too: the filter sets the repo up.
    const clone = path.join(sb.dir, 'edges-clone');
    sb.mustGit(['clone', '-q', repo, clone], sb.dir);
    // The content lives in the source's store; a plain git clone does not carry it.
    const st = JSON.parse(sb.mustDits(['status', '--json'], clone)) as { path: string; state: string }[];
    expect(st.find((s) => s.path === 'with space.mov')!.state).toBe('content-missing');
    expect(read(clone, 'empty.mov').length).toBe(0);
  });

  it('round-trips a 5 GiB sparse file', { timeout: 600_000 }, () => {
    const repo = sb.repo('sparse', { track: ['*.raw'] });
    const f = path.join(repo, 'big.raw');
    const fd = fs.openSync(f, 'w');
    fs.writeSync(fd, Buffer.from('start'), 0, 5, 0);
    fs.writeSync(fd, Buffer.from('middle'), 0, 6, 2 ** 31 + 12345);
    fs.ftruncateSync(fd, 5 * 2 ** 30);
    fs.closeSync(fd);
    const sum = sb.run('b3sum', ['--no-names', f], repo).stdout.trim();
    sb.mustDits(['add', 'big.raw', '.gitattributes'], repo);
    sb.mustGit(['commit', '-q', '-m', 'sparse'], repo);
    expect(sb.status(repo)).toBe('');
    fs.rmSync(f);
    sb.mustGit(['checkout', '-q', '--', 'big.raw'], repo);
    sb.mustDits(['checkout'], repo);
    expect(fs.statSync(f).size).toBe(5 * 2 ** 30);
    expect(fs.statSync(f).blocks * 512).toBeLessThan(64 * 2 ** 20);
    expect(sb.run('b3sum', ['--no-names', f], repo).stdout.trim()).toBe(sum);
    expect(sb.status(repo)).toBe('');
    const du = JSON.parse(sb.mustDits(['du', '--json'], repo));
    expect(du.packFileBytes).toBeLessThan(2 * 2 ** 20);
  });
});

describe('bad input loses nothing', () => {
  it('a hand-written pointer with a wrong id never becomes a corrupt file', () => {
    const repo = sb.repo('wrongid', { track: ['*.mov'], config: SMALL_CHUNKS, files: { 'good.mov': randomBytesSeeded(100_000, 40) } });
    sb.mustGit(['add', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', 'good'], repo);
    const good = pointerOf(sb, repo, 'HEAD', 'good.mov');
    const bad = good.replace(/oid blake3:[0-9a-f]{64}/, `oid blake3:${'0'.repeat(64)}`);
    const oid = sb.mustGit(['hash-object', '-w', '--no-filters', '--stdin'], repo, bad).trim();
    sb.mustGit(['update-index', '--add', '--cacheinfo', `100644,${oid},bad.mov`], repo);
    sb.mustGit(['commit', '-q', '-m', 'bad pointer'], repo);
    const r = sb.git(['checkout', '-q', '--', 'bad.mov'], repo);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/bad\.mov/);
    const co = sb.dits(['checkout'], repo);
    expect(co.status).toBe(1);
    expect(co.stderr).toMatch(/bad\.mov: .*(does not match|do not add up)/);
    expect(read(repo, 'bad.mov').toString()).toBe(bad); // still the pointer, never wrong bytes
  });

  it('a file committed before it was tracked checks out whole (git passes its bytes through smudge)', () => {
    // one small enough to be held in memory, one that is spooled to a temp file
    const small = randomBytesSeeded(3_000_000, 43);
    const big = randomBytesSeeded(20 * 1024 * 1024 + 3, 44);
    const repo = sb.repo('untracked-before', { files: { 'small.bin': small, 'big.bin': big } });
    sb.mustGit(['add', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', 'raw'], repo);
    sb.mustDits(['track', '*.bin'], repo);
    sb.mustGit(['add', '.gitattributes'], repo);
    sb.mustGit(['commit', '-q', '-m', 'track'], repo);
    fs.rmSync(path.join(repo, 'small.bin'));
    fs.rmSync(path.join(repo, 'big.bin'));
    sb.mustGit(['checkout', '--', 'small.bin', 'big.bin'], repo);
    expect(read(repo, 'small.bin').equals(small)).toBe(true);
    expect(read(repo, 'big.bin').equals(big)).toBe(true);
    expect(fs.readdirSync(path.join(repo, '.git', 'dits', 'tmp')).filter((f) => f.startsWith('smudge-'))).toEqual([]);
    // adding them again stores them as Dits content; they then check out from the store
    sb.mustGit(['add', '--renormalize', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', 'renormalize'], repo);
    expect(pointerOf(sb, repo, 'HEAD', 'big.bin')).toMatch(/^version dits\/1/);
    expect(sb.mustGit(['status', '--porcelain'], repo).trim()).toBe('');
  });

  it('a missing chunk names the file and what to run', () => {
    const content = randomBytesSeeded(200_000, 41);
    const repo = sb.repo('missing', { track: ['*.mov'], config: SMALL_CHUNKS, files: { 'm.mov': content } });
    sb.mustGit(['add', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', 'm'], repo);
    // Drop one chunk from the index of the store.
    const Database = require('better-sqlite3');
    const db = new Database(path.join(repo, '.git/dits/index.sqlite'));
    db.prepare('DELETE FROM chunks WHERE id = (SELECT id FROM chunks ORDER BY offset LIMIT 1)').run();
    db.close();
    fs.rmSync(path.join(repo, 'm.mov'));
    const r = sb.git(['checkout', '--', 'm.mov'], repo);
    expect(r.status).toBe(0);
    const co = sb.dits(['checkout'], repo);
    expect(co.status).toBe(1);
    expect(co.stderr).toMatch(/m\.mov: content is not in the local store/);
    expect(co.stderr).toMatch(/hint: .*git dits pull/);
    const st = JSON.parse(sb.mustDits(['status', '--json'], repo));
    expect(st[0].state).toBe('content-missing');
    const fsck = sb.dits(['fsck'], repo);
    expect(fsck.status).toBe(1);
    expect(fsck.stderr).toMatch(/chunk-missing.*m\.mov/);
  });
});

import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
