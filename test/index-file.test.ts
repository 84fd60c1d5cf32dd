/**
 * The index codec and updateIndexStat against indexes written by the real git (2.39 here),
 * in temporary repositories with no user or system config.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  compareEntryStat,
  encodeIndex,
  parseIndex,
  readIndexEntries,
  readIndexSnapshot,
  updateIndexStat,
  type HashAlgo,
} from '../src/git/index-file.js';

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

  it('refuses a split index and a sparse index with index-unsupported', async () => {
    const split = makeRepo(tree);
    git(split, ['add', '.']);
    git(split, ['update-index', '--split-index']);
    expect(() => parseIndex(indexBytes(split), 'sha1')).toThrow(expect.objectContaining({ code: 'index-unsupported' }));
    expect(() => readIndexEntries(path.join(split, '.git'), 'sha1')).toThrow(expect.objectContaining({ code: 'index-unsupported' }));
    const st = fs.statSync(path.join(split, 'README.md'), { bigint: true });
    await expect(updateIndexStat(path.join(split, '.git'), [{ path: 'README.md', stat: st }], { hashAlgo: 'sha1' })).rejects.toMatchObject({
      code: 'index-unsupported',
    });
    expect(fs.existsSync(path.join(split, '.git', 'index.lock'))).toBe(false); // lock released

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

/**
 * A repo whose clean filter logs every run and maps any content to the same blob, so a file
 * rewritten with new content is still "clean" for git, but only after running the filter.
 */
function makeFilteredRepo(init: string[] = []): { dir: string; gitDir: string; log: string; blob: string } {
  const dir = makeRepo({ '.gitattributes': '*.bin filter=t\n', 'big.bin': 'placeholder\n', 'other.txt': 'other\n' }, init);
  const log = path.join(dir, '..', `${path.basename(dir)}.filter.log`);
  roots.push(log);
  git(dir, ['config', 'filter.t.clean', `cat >/dev/null; echo run >> '${log}'; echo constant`]);
  git(dir, ['config', 'filter.t.smudge', 'cat']);
  git(dir, ['add', '.']);
  git(dir, ['commit', '-q', '-m', 'one']);
  const blob = git(dir, ['rev-parse', ':big.bin']).trim();
  return { dir, gitDir: path.join(dir, '.git'), log, blob };
}

/** Writes a file the way Dits does: a temporary file renamed over it (new inode, new times). */
function replaceFile(file: string, content: string): void {
  fs.writeFileSync(`${file}.tmp`, content);
  fs.renameSync(`${file}.tmp`, file);
}

function filterRuns(log: string): number {
  return fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').filter(Boolean).length : 0;
}

describe('compareEntryStat', () => {
  it('agrees with git on clean, changed and racy entries', () => {
    const dir = makeRepo({ 'a.txt': 'a\n', 'b.txt': 'b\n', 'c.txt': 'c\n', 'd.txt': 'd\n' });
    const past = new Date('2020-01-01T00:00:00Z');
    for (const f of ['a.txt', 'b.txt', 'c.txt', 'd.txt']) fs.utimesSync(path.join(dir, f), past, past);
    git(dir, ['add', '.']);
    const gitDir = path.join(dir, '.git');
    const classify = () => {
      const snap = readIndexSnapshot(gitDir, 'sha1');
      return Object.fromEntries(
        snap.entries.map((e) => [
          e.path,
          compareEntryStat(e, fs.lstatSync(path.join(dir, e.path), { bigint: true }), { hashAlgo: 'sha1', indexMtimeSeconds: snap.indexMtimeSeconds }),
        ]),
      );
    };
    expect(classify()).toEqual({ 'a.txt': 'clean', 'b.txt': 'clean', 'c.txt': 'clean', 'd.txt': 'clean' });
    expect(git(dir, ['diff-files', '--name-only'])).toBe('');

    fs.appendFileSync(path.join(dir, 'b.txt'), 'more\n');
    fs.chmodSync(path.join(dir, 'c.txt'), 0o755);
    replaceFile(path.join(dir, 'd.txt'), 'D\n'); // same size, new inode and times
    expect(classify()).toEqual({ 'a.txt': 'clean', 'b.txt': 'changed', 'c.txt': 'changed', 'd.txt': 'changed' });
    expect(git(dir, ['diff-files', '--name-only'])).toBe('b.txt\nc.txt\nd.txt\n');

    // An index no newer than the entries: every stat-clean entry is racy.
    fs.utimesSync(path.join(gitDir, 'index'), past, past);
    expect(classify()['a.txt']).toBe('racy');
  });
});

describe('updateIndexStat', () => {
  it('keeps git status clean without running the clean filter (and without it, git runs the filter)', async () => {
    const { dir, gitDir, log, blob } = makeFilteredRepo();
    const file = path.join(dir, 'big.bin');

    // Control 1: new content of the placeholder's size behind git's back: stat data differs but
    // the size does not, so status must run the clean filter to learn the file is unchanged.
    replaceFile(file, 'PLACEHOLDER\n');
    fs.rmSync(log, { force: true });
    expect(git(dir, ['status', '--porcelain'])).toBe('');
    expect(filterRuns(log)).toBeGreaterThan(0);
    // Control 2: a different size: git concludes "modified" from the size alone.
    replaceFile(file, 'real content, much longer than the placeholder\n');
    expect(git(dir, ['status', '--porcelain'])).toBe(' M big.bin\n');

    // With updateIndexStat: same situation, the index is told the new stat data.
    replaceFile(file, 'other real content, of yet another length\n');
    fs.rmSync(log, { force: true });
    expect(git(dir, ['diff-files', '--name-only'])).toBe('big.bin\n'); // stat-dirty (diff-files never cleans)
    const stat = fs.statSync(file, { bigint: true });
    const res = await updateIndexStat(gitDir, [{ path: 'big.bin', stat, expectedOid: blob }], { hashAlgo: 'sha1', worktree: dir });
    expect(res).toMatchObject({ updated: ['big.bin'], skipped: [], racy: [] });
    // Files git wrote in the same second as its index are racily clean: smudged, as git would.
    for (const p of res.smudged) expect(['.gitattributes', 'other.txt']).toContain(p);
    expect(fs.existsSync(path.join(gitDir, 'index.lock'))).toBe(false);

    // Stat-clean now; only the smudged small files are left for git to re-check by content.
    expect(git(dir, ['diff-files', '--name-only']).split('\n').filter(Boolean)).toEqual([...res.smudged].sort());
    expect(git(dir, ['status', '--porcelain'])).toBe('');
    expect(filterRuns(log)).toBe(0);
    expect(git(dir, ['diff-files', '--name-only'])).toBe(''); // status refreshed the smudged ones
    expect(git(dir, ['rev-parse', ':big.bin']).trim()).toBe(blob); // object id kept
    const debug = git(dir, ['ls-files', '--debug', 'big.bin']);
    expect(debug).toContain(`size: ${stat.size}`);
    expect(debug).toContain(`mtime: ${stat.mtimeNs / 1_000_000_000n}:${stat.mtimeNs % 1_000_000_000n}`);
    expect(debug).toContain(`ino: ${stat.ino & 0xffffffffn}`);
    // Racy git: the new index file is strictly newer (whole seconds) than the file.
    const indexMtime = fs.statSync(path.join(gitDir, 'index'), { bigint: true }).mtimeNs / 1_000_000_000n;
    expect(indexMtime > stat.mtimeNs / 1_000_000_000n).toBe(true);
    git(dir, ['fsck', '--no-progress']);
  });

  it('reports an update it could not make non-racy, and git then re-checks the content', async () => {
    const { dir, gitDir, log, blob } = makeFilteredRepo();
    const file = path.join(dir, 'big.bin');
    replaceFile(file, 'new content from the future\n');
    const future = new Date(Date.now() + 60_000);
    fs.utimesSync(file, future, future);
    fs.rmSync(log, { force: true });
    const stat = fs.statSync(file, { bigint: true });
    const res = await updateIndexStat(gitDir, [{ path: 'big.bin', stat, expectedOid: blob }], { hashAlgo: 'sha1', maxRacyWaitMs: 100 });
    expect(res.updated).toEqual(['big.bin']);
    expect(res.racy).toEqual(['big.bin']);
    expect(git(dir, ['status', '--porcelain'])).toBe('');
    expect(filterRuns(log)).toBeGreaterThan(0);
  });

  it('skips paths it must not touch, with a reason', async () => {
    const { dir, gitDir, blob } = makeFilteredRepo();
    fs.mkdirSync(path.join(dir, 'adir'));
    fs.writeFileSync(path.join(dir, 'changed.bin'), 'x');
    git(dir, ['add', 'changed.bin']);
    const changedStat = fs.statSync(path.join(dir, 'changed.bin'), { bigint: true });
    fs.writeFileSync(path.join(dir, 'changed.bin'), 'written again after the stat was taken');
    const before = indexBytes(dir);
    const st = (p: string) => fs.statSync(path.join(dir, p), { bigint: true });
    const res = await updateIndexStat(
      gitDir,
      [
        { path: 'big.bin', stat: st('big.bin'), expectedOid: '0'.repeat(40) },
        { path: 'missing.bin', stat: st('big.bin') },
        { path: 'other.txt', stat: st('adir') },
        { path: 'changed.bin', stat: changedStat },
      ],
      { hashAlgo: 'sha1', worktree: dir },
    );
    expect(res.updated).toEqual([]);
    expect(res.skipped).toEqual([
      { path: 'big.bin', reason: 'oid-mismatch' },
      { path: 'missing.bin', reason: 'not-in-index' },
      { path: 'other.txt', reason: 'type-mismatch' },
      { path: 'changed.bin', reason: 'changed-since-stat' },
    ]);
    expect(indexBytes(dir).equals(before)).toBe(true); // nothing to do: index untouched
    expect(fs.existsSync(path.join(gitDir, 'index.lock'))).toBe(false);
    expect(blob).toMatch(/^[0-9a-f]{40}$/);
  });

  it('skips a conflicted path', async () => {
    const dir = makeRepo({ 'f.txt': 'base\n' });
    git(dir, ['add', '.']);
    git(dir, ['commit', '-q', '-m', 'base']);
    git(dir, ['checkout', '-q', '-b', 'other']);
    fs.writeFileSync(path.join(dir, 'f.txt'), 'other\n');
    git(dir, ['commit', '-q', '-am', 'other']);
    git(dir, ['checkout', '-q', 'main']);
    fs.writeFileSync(path.join(dir, 'f.txt'), 'main\n');
    git(dir, ['commit', '-q', '-am', 'main']);
    expect(() => git(dir, ['merge', '-q', 'other'])).toThrow();
    const stat = fs.statSync(path.join(dir, 'f.txt'), { bigint: true });
    const res = await updateIndexStat(path.join(dir, '.git'), [{ path: 'f.txt', stat }], { hashAlgo: 'sha1' });
    expect(res.skipped).toEqual([{ path: 'f.txt', reason: 'conflicted' }]);
  });

  it('waits for index.lock held by another process, and gives up with index-locked', async () => {
    const { dir, gitDir, blob } = makeFilteredRepo();
    const file = path.join(dir, 'big.bin');
    replaceFile(file, 'new content\n');
    const stat = fs.statSync(file, { bigint: true });
    const lock = path.join(gitDir, 'index.lock');
    fs.writeFileSync(lock, '');
    const started = Date.now();
    await expect(
      updateIndexStat(gitDir, [{ path: 'big.bin', stat, expectedOid: blob }], { hashAlgo: 'sha1', lockTimeoutMs: 300 }),
    ).rejects.toMatchObject({ code: 'index-locked', message: expect.stringContaining('Another git process') });
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect(fs.existsSync(lock)).toBe(true); // not ours: left alone

    setTimeout(() => fs.rmSync(lock), 200);
    const res = await updateIndexStat(gitDir, [{ path: 'big.bin', stat, expectedOid: blob }], { hashAlgo: 'sha1', lockTimeoutMs: 5000 });
    expect(res.updated).toEqual(['big.bin']);
    // Only entries smudged because they were racy against the old index look stat-dirty.
    expect(git(dir, ['diff-files', '--name-only']).split('\n').filter(Boolean)).toEqual([...res.smudged].sort());
    expect(git(dir, ['status', '--porcelain'])).toBe('');
  });

  it('smudges other entries that were racily clean against the old index, as git does', async () => {
    const { dir, gitDir, blob } = makeFilteredRepo();
    replaceFile(path.join(dir, 'big.bin'), 'new content\n');
    const stat = fs.statSync(path.join(dir, 'big.bin'), { bigint: true });
    // Pretend the index was written in the same second as other.txt was last modified.
    const otherMtime = fs.statSync(path.join(dir, 'other.txt')).mtime;
    fs.utimesSync(path.join(gitDir, 'index'), otherMtime, otherMtime);
    const res = await updateIndexStat(gitDir, [{ path: 'big.bin', stat, expectedOid: blob }], { hashAlgo: 'sha1' });
    expect(res.updated).toEqual(['big.bin']);
    expect(res.smudged).toContain('other.txt');
    expect(git(dir, ['ls-files', '--debug', 'other.txt'])).toContain('size: 0\t');
    expect(git(dir, ['status', '--porcelain'])).toBe(''); // git re-checks the content and finds it clean
  });

  it('works on a sha256 repository with a version 4 index', async () => {
    const { dir, gitDir, log, blob } = makeFilteredRepo(['--object-format=sha256']);
    git(dir, ['update-index', '--index-version', '4']);
    replaceFile(path.join(dir, 'big.bin'), 'the real, large content\n');
    fs.rmSync(log, { force: true });
    const stat = fs.statSync(path.join(dir, 'big.bin'), { bigint: true });
    const res = await updateIndexStat(gitDir, [{ path: 'big.bin', stat, expectedOid: blob }], { hashAlgo: 'sha256', worktree: dir });
    expect(res.updated).toEqual(['big.bin']);
    expect(parseIndex(indexBytes(dir), 'sha256').version).toBe(4);
    expect(git(dir, ['status', '--porcelain'])).toBe('');
    expect(filterRuns(log)).toBe(0);
  });
});
