/**
 * The index codec and updateIndexStat against indexes written by the real git (2.39 here),
 * in temporary repositories with no user or system config.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeIndex, parseIndex, readIndexEntries, updateIndexStat, type HashAlgo } from '../src/git/index-file.js';

const roots: string[] = [];
afterAll(() => {
  for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
});

const baseEnv: NodeJS.ProcessEnv = {
  ...process.env,
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_AUTHOR_NAME: 't',
  GIT_AUTHOR_EMAIL: 't@example.com',
  GIT_COMMITTER_NAME: 't',
  GIT_COMMITTER_EMAIL: 't@example.com',
  GIT_TERMINAL_PROMPT: '0',
};
for (const k of Object.keys(baseEnv)) if (k.startsWith('GIT_') && !(k in { GIT_CONFIG_GLOBAL: 1, GIT_CONFIG_NOSYSTEM: 1, GIT_AUTHOR_NAME: 1, GIT_AUTHOR_EMAIL: 1, GIT_COMMITTER_NAME: 1, GIT_COMMITTER_EMAIL: 1, GIT_TERMINAL_PROMPT: 1 })) delete baseEnv[k];

function git(cwd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): string {
  return execFileSync('git', args, { cwd, input: opts.input, env: { ...baseEnv, ...opts.env }, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}

function makeRepo(files: Record<string, string>, init: string[] = []): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dits-index-'));
  roots.push(dir);
  git(dir, ['init', '-q', '-b', 'main', ...init, '.']);
  writeFiles(dir, files);
  return dir;
}

function writeFiles(dir: string, files: Record<string, string>): void {
  for (const [p, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
    fs.writeFileSync(path.join(dir, p), content);
  }
}

function indexBytes(dir: string): Buffer {
  return fs.readFileSync(path.join(dir, '.git', 'index'));
}

/** Parses the repo's index, checks it encodes back to the same bytes, returns it. */
function roundTrip(dir: string, hashAlgo: HashAlgo = 'sha1') {
  const bytes = indexBytes(dir);
  const index = parseIndex(bytes, hashAlgo);
  const again = encodeIndex(index);
  expect(again.length).toBe(bytes.length);
  expect(again.equals(bytes)).toBe(true);
  return index;
}

/** `git ls-files -s` as [mode, oid, stage, path] rows. */
function lsFiles(dir: string): string[] {
  return git(dir, ['ls-files', '-s', '-z']).split('\0').filter(Boolean);
}

function summary(index: ReturnType<typeof parseIndex>): string[] {
  return index.entries.map((e) => `${e.mode.toString(8)} ${e.oid} ${e.stage}\t${e.path}`);
}

const tree = {
  'README.md': 'hello\n',
  'a/b/c.txt': 'c\n',
  'a/b/d.txt': 'd\n',
  'a/e.bin': 'e'.repeat(5000),
  'z/deep/er/path/with/a/rather/long/name/file.txt': 'x\n',
  'sp ace/ünïcødé.txt': 'u\n',
};

describe('round trip of indexes written by git', () => {
  it('version 2 with a TREE extension, all fields as git reports them', () => {
    const dir = makeRepo(tree);
    fs.chmodSync(path.join(dir, 'a/b/c.txt'), 0o755);
    fs.symlinkSync('README.md', path.join(dir, 'link'));
    git(dir, ['add', '.']);
    git(dir, ['commit', '-q', '-m', 'one']);
    git(dir, ['status', '--porcelain']); // git refreshes and may rewrite the index
    const index = roundTrip(dir);
    expect(index.version).toBe(2);
    expect(index.extensions.map((x) => x.signature)).toContain('TREE');
    expect(summary(index)).toEqual(lsFiles(dir).map((l) => l.replace(/^(\d+) /, (m, mode: string) => `${mode} `)));
    const modes = Object.fromEntries(index.entries.map((e) => [e.path, e.mode]));
    expect(modes['a/b/c.txt']).toBe(0o100755);
    expect(modes['link']).toBe(0o120000);
    expect(modes['README.md']).toBe(0o100644);

    // Stat fields match `git ls-files --debug` and the file system.
    const debug = git(dir, ['ls-files', '--debug', '--', 'a/e.bin']);
    const e = index.entries.find((x) => x.path === 'a/e.bin')!;
    expect(debug).toContain(`ctime: ${e.ctimeSeconds}:${e.ctimeNanoseconds}`);
    expect(debug).toContain(`mtime: ${e.mtimeSeconds}:${e.mtimeNanoseconds}`);
    expect(debug).toContain(`dev: ${e.dev}\tino: ${e.ino}`);
    expect(debug).toContain(`uid: ${e.uid}\tgid: ${e.gid}`);
    expect(debug).toContain(`size: ${e.size}\tflags: 0`);
    const st = fs.statSync(path.join(dir, 'a/e.bin'), { bigint: true });
    expect(BigInt(e.mtimeSeconds) * 1_000_000_000n + BigInt(e.mtimeNanoseconds)).toBe(st.mtimeNs);
    expect(e.size).toBe(5000);
  });

  it('version 3 with intent-to-add and skip-worktree entries', () => {
    const dir = makeRepo(tree);
    git(dir, ['add', 'README.md', 'a']);
    git(dir, ['commit', '-q', '-m', 'one']);
    git(dir, ['add', '-N', 'z']);
    git(dir, ['update-index', '--skip-worktree', 'a/b/d.txt']);
    const index = roundTrip(dir);
    expect(index.version).toBe(3);
    const ita = index.entries.find((x) => x.path.startsWith('z/'))!;
    expect(ita.intentToAdd).toBe(true);
    expect(ita.skipWorktree).toBe(false);
    const skip = index.entries.find((x) => x.path === 'a/b/d.txt')!;
    expect(skip.skipWorktree).toBe(true);
    expect(skip.intentToAdd).toBe(false);
    expect(index.entries.filter((x) => x.intentToAdd || x.skipWorktree)).toHaveLength(2);
  });

  it('version 4 (path prefix compression), including a prefix strip over 127 bytes', () => {
    const long = 'L'.repeat(200);
    const dir = makeRepo({ ...tree, [`${long}/one.txt`]: '1\n', [`${long}/two.txt`]: '2\n', 'm.txt': 'm\n' });
    git(dir, ['add', '.']);
    git(dir, ['update-index', '--index-version', '4']);
    const index = roundTrip(dir);
    expect(index.version).toBe(4);
    expect(summary(index)).toEqual(lsFiles(dir));
  });

  it('names of 0xFFF bytes and longer, in versions 2 and 4', () => {
    const dir = makeRepo({});
    const names = [`${'d'.repeat(200)}/${'n'.repeat(3894)}`, `${'d'.repeat(200)}/${'n'.repeat(4000)}`, 'short'];
    expect(Buffer.byteLength(names[0]!)).toBe(0xfff);
    const blob = git(dir, ['hash-object', '-w', '--stdin'], { input: 'x' }).trim();
    git(dir, ['update-index', '--add', '--index-info'], { input: names.map((n) => `100644 ${blob}\t${n}\n`).join('') });
    expect(roundTrip(dir).entries.map((e) => e.path).sort()).toEqual([...names].sort());
    git(dir, ['update-index', '--index-version', '4']);
    expect(roundTrip(dir).entries.map((e) => e.path).sort()).toEqual([...names].sort());
  });

  it('with the untracked cache (UNTR)', () => {
    const dir = makeRepo({ ...tree, 'untracked/u.txt': 'u\n' });
    git(dir, ['add', 'README.md', 'a']);
    git(dir, ['update-index', '--untracked-cache']);
    git(dir, ['status', '--porcelain']);
    const index = roundTrip(dir);
    expect(index.extensions.map((x) => x.signature)).toContain('UNTR');
  });

  it('with a conflicted merge (stages 1-3), then the resolve-undo (REUC) extension', () => {
    const dir = makeRepo({ 'f.txt': 'base\n', 'g.txt': 'g\n' });
    git(dir, ['add', '.']);
    git(dir, ['commit', '-q', '-m', 'base']);
    git(dir, ['checkout', '-q', '-b', 'other']);
    fs.writeFileSync(path.join(dir, 'f.txt'), 'other\n');
    git(dir, ['commit', '-q', '-am', 'other']);
    git(dir, ['checkout', '-q', 'main']);
    fs.writeFileSync(path.join(dir, 'f.txt'), 'main\n');
    git(dir, ['commit', '-q', '-am', 'main']);
    expect(() => git(dir, ['merge', '-q', 'other'])).toThrow();
    const index = roundTrip(dir);
    expect(index.entries.filter((e) => e.path === 'f.txt').map((e) => e.stage)).toEqual([1, 2, 3]);
    expect(summary(index)).toEqual(lsFiles(dir));

    fs.writeFileSync(path.join(dir, 'f.txt'), 'resolved\n');
    git(dir, ['add', 'f.txt']);
    const resolved = roundTrip(dir);
    expect(resolved.extensions.map((x) => x.signature)).toContain('REUC');
    expect(resolved.entries.filter((e) => e.path === 'f.txt').map((e) => e.stage)).toEqual([0]);
  });

  it('a sha256 repository', () => {
    const dir = makeRepo(tree, ['--object-format=sha256']);
    git(dir, ['add', '.']);
    git(dir, ['commit', '-q', '-m', 'one']);
    git(dir, ['status', '--porcelain']);
    const index = roundTrip(dir, 'sha256');
    expect(index.entries[0]!.oid).toMatch(/^[0-9a-f]{64}$/);
    expect(summary(index)).toEqual(lsFiles(dir));
    expect(() => parseIndex(indexBytes(dir), 'sha1')).toThrow(expect.objectContaining({ code: 'index-corrupt' }));
  });

  it('EOIE and IEOT: byte-identical, and rewritten so git still reads the index after the layout changes', () => {
    const dir = makeRepo({});
    const blob = git(dir, ['hash-object', '-w', '--stdin'], { input: 'x' }).trim();
    const lines: string[] = [];
    for (let i = 0; i < 25_000; i++) lines.push(`100644 ${blob}\tdir${i % 50}/file-${String(i).padStart(6, '0')}.dat\n`);
    const cfg = ['-c', 'index.recordEndOfIndexEntries=true', '-c', 'index.recordOffsetTable=true', '-c', 'index.threads=4'];
    git(dir, [...cfg, 'update-index', '--add', '--index-info'], { input: lines.join('') });
    const index = roundTrip(dir);
    const sigs = index.extensions.map((x) => x.signature);
    expect(sigs).toContain('EOIE');
    expect(sigs).toContain('IEOT');
    expect(sigs[sigs.length - 1]).toBe('EOIE');

    // Same entry count, longer path: entries after it move, IEOT offsets are rewritten.
    const moved = index.entries.findIndex((e) => e.path.startsWith('dir0/'));
    index.entries[moved]!.path = index.entries[moved]!.path.replace('file-', 'file-renamed-in-place-');
    index.entries.sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
    fs.writeFileSync(path.join(dir, '.git', 'index'), encodeIndex(index));
    const listed = git(dir, ['-c', 'index.threads=4', 'ls-files']).trim().split('\n');
    expect(listed).toHaveLength(25_000);
    expect(listed).toContain(index.entries.find((e) => e.path.includes('renamed'))!.path);
    expect(roundTrip(dir).extensions.map((x) => x.signature)).toEqual(sigs);

    // One entry fewer: the offset table no longer adds up and is dropped; EOIE is recomputed.
    index.entries.splice(10, 1);
    const dropped = encodeIndex(index);
    const reparsed = parseIndex(dropped, 'sha1');
    expect(reparsed.extensions.map((x) => x.signature)).toEqual(sigs.filter((s) => s !== 'IEOT'));
    fs.writeFileSync(path.join(dir, '.git', 'index'), dropped);
    expect(git(dir, ['-c', 'index.threads=4', 'ls-files']).trim().split('\n')).toHaveLength(24_999);
    git(dir, [...cfg, 'rm', '-q', '--cached', index.entries[20]!.path]); // git rewrites it from ours
    const rewritten = roundTrip(dir);
    expect(rewritten.entries).toHaveLength(24_998);
    expect(rewritten.extensions.map((x) => x.signature)).toEqual(sigs);
  });

  it('refuses a split index and a sparse index with index-unsupported', () => {
    const split = makeRepo(tree);
    git(split, ['add', '.']);
    git(split, ['update-index', '--split-index']);
    expect(() => parseIndex(indexBytes(split), 'sha1')).toThrow(expect.objectContaining({ code: 'index-unsupported' }));
    expect(() => readIndexEntries(path.join(split, '.git'), 'sha1')).toThrow(expect.objectContaining({ code: 'index-unsupported' }));

    const sparse = makeRepo(tree);
    git(sparse, ['add', '.']);
    git(sparse, ['commit', '-q', '-m', 'one']);
    git(sparse, ['sparse-checkout', 'init', '--cone', '--sparse-index']);
    git(sparse, ['sparse-checkout', 'set', 'a']);
    expect(git(sparse, ['ls-files', '--sparse'])).toContain('z/');
    expect(() => parseIndex(indexBytes(sparse), 'sha1')).toThrow(expect.objectContaining({ code: 'index-unsupported' }));
  });
});

describe('readIndexEntries', () => {
  it('lists what git ls-files lists, and nothing for a fresh repository', () => {
    const dir = makeRepo(tree);
    expect(readIndexEntries(path.join(dir, '.git'), 'sha1')).toEqual([]);
    git(dir, ['add', '.']);
    const entries = readIndexEntries(path.join(dir, '.git'), 'sha1');
    expect(entries.map((e) => `${e.mode.toString(8)} ${e.oid} ${e.stage}\t${e.path}`)).toEqual(lsFiles(dir));
    const readme = entries.find((e) => e.path === 'README.md')!;
    const st = fs.statSync(path.join(dir, 'README.md'), { bigint: true });
    expect(readme.size).toBe(6);
    expect(BigInt(readme.mtime.seconds) * 1_000_000_000n + BigInt(readme.mtime.nanoseconds)).toBe(st.mtimeNs);
  });
});
