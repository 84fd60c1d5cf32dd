/**
 * A damaged pointer at a tracked path (non-hex id, over 1 KiB, cut short) used to check
 * out as its own text with exit 0, while `git dits status` ignored it and `git dits fsck`
 * said "No problems found" (issue 15). Now smudge warns naming the path (and still passes
 * the bytes through unchanged), status lists it as damaged, fsck reports it and exits 1.
 * Content that does not claim to be a pointer still passes through without a word.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodePointer, pointerDamage } from '../src/manifest/pointer.js';
import { GitSandbox, randomBytesSeeded } from './helpers/git-env.js';

describe('pointerDamage', () => {
  const good = encodePointer({ oid: 'a'.repeat(64), size: 5, manifest: 'b'.repeat(64) });
  it('names what is wrong with text that claims to be a pointer, and nothing else', () => {
    expect(pointerDamage(good)).toBeNull();
    expect(pointerDamage(Buffer.from('hello\n'))).toBeNull();
    expect(pointerDamage(Buffer.from('version dit'))).toBeNull(); // does not claim to be one
    expect(pointerDamage(Buffer.from(good.toString().replace('a'.repeat(64), 'z'.repeat(64))))).toMatch(/file id line .* is wrong: "oid blake3:zzzz/);
    expect(pointerDamage(Buffer.from(good.toString().replace('a'.repeat(64), 'A'.repeat(64))))).toMatch(/file id line/);
    expect(pointerDamage(Buffer.concat([good, Buffer.alloc(2000, 0x41)]))).toBe('2179 bytes, longer than a pointer can be (1024)');
    expect(pointerDamage(good.subarray(0, 1000), false)).toMatch(/longer than a pointer can be/);
    expect(pointerDamage(good.subarray(0, 40))).toMatch(/^truncated in the file id line/);
    expect(pointerDamage(good.subarray(0, good.length - 1))).toBe('truncated: no newline after the manifest id line');
    expect(pointerDamage(Buffer.from('version dits/1\n'))).toMatch(/^truncated: no file id line/);
    expect(pointerDamage(Buffer.from('version dits/2\nwhatever\n'))).toBe('unknown version line "version dits/2"');
    expect(pointerDamage(Buffer.concat([good, Buffer.from('extra\n')]))).toBe('unexpected text after the manifest id line');
  });
});

describe('a damaged pointer at a tracked path', () => {
  let sb: GitSandbox;
  let repo: string;
  const blobs: Record<string, Buffer> = {};

  /** Stores `content` in git exactly as given (no clean filter) at `file`, in the index. */
  function stageRaw(file: string, content: Buffer): void {
    const oid = sb.mustGit(['hash-object', '-w', '--no-filters', '--stdin'], repo, content).trim();
    sb.mustGit(['update-index', '--add', '--cacheinfo', `100644,${oid},${file}`], repo);
    blobs[file] = content;
  }

  beforeAll(() => {
    sb = new GitSandbox('dits-damaged-');
    repo = sb.repo('r', { track: ['*.mov'], config: { 'dits.smudgeInlineMax': '64k' }, files: { 'good.mov': randomBytesSeeded(100_000, 3) } });
    sb.mustGit(['add', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', 'good'], repo);
    const pointer = Buffer.from(sb.mustGit(['cat-file', 'blob', 'HEAD:good.mov'], repo), 'latin1');
    const text = pointer.toString('latin1');
    const oid = /oid blake3:([0-9a-f]{64})/.exec(text)![1]!;
    stageRaw('bad-hex.mov', Buffer.from(text.replace(oid, `${'g'.repeat(8)}${oid.slice(8)}`)));
    stageRaw('too-long.mov', Buffer.concat([pointer, Buffer.from('padding line\n'.repeat(200))]));
    stageRaw('cut-short.mov', pointer.subarray(0, 70));
    stageRaw('foreign.mov', Buffer.from('not a pointer at all\n')); // committed before it was tracked
    fs.writeFileSync(path.join(repo, 'pointer-doc.txt'), text.replace(oid, 'x'.repeat(64))); // untracked by Dits: not a pointer
    sb.mustGit(['add', 'pointer-doc.txt'], repo);
    // foreign.mov is raw content at a tracked path, which the pre-commit hook refuses: committed on purpose
    sb.mustGit(['commit', '-q', '--no-verify', '-m', 'damaged pointers'], repo);
  });
  afterAll(() => sb?.cleanup());

  const damaged = ['bad-hex.mov', 'too-long.mov', 'cut-short.mov'];

  it('checks out byte for byte as stored, with a warning naming each damaged path and none for foreign content', () => {
    for (const f of [...damaged, 'foreign.mov']) fs.rmSync(path.join(repo, f), { force: true });
    const r = sb.git(['checkout', '--', '.'], repo);
    expect(r.status, r.stderr).toBe(0);
    for (const f of [...damaged, 'foreign.mov']) expect(fs.readFileSync(path.join(repo, f)).equals(blobs[f]!), f).toBe(true);
    expect(r.stderr).toMatch(/bad-hex\.mov is a damaged Dits pointer \(the file id line .* is wrong/);
    expect(r.stderr).toMatch(/too-long\.mov is a damaged Dits pointer \(longer than a pointer can be/);
    expect(r.stderr).toMatch(/cut-short\.mov is a damaged Dits pointer \(truncated/);
    expect(r.stderr).toContain('git checkout <commit> -- bad-hex.mov');
    expect(r.stderr).not.toContain('foreign.mov');
    expect(r.stderr).not.toContain('good.mov');
    expect(fs.readFileSync(path.join(repo, 'good.mov')).equals(randomBytesSeeded(100_000, 3))).toBe(true);
  });

  it('a fresh clone warns the same way', () => {
    const dest = path.join(sb.dir, 'clone');
    const r = sb.git(['clone', '-q', repo, dest], sb.dir);
    expect(r.status, r.stderr).toBe(0);
    for (const f of damaged) expect(r.stderr).toContain(`${f} is a damaged Dits pointer`);
    for (const f of damaged) expect(fs.readFileSync(path.join(dest, f)).equals(blobs[f]!), f).toBe(true);
  });

  it('git dits checkout names each damaged pointer', () => {
    const r = sb.dits(['checkout'], repo);
    expect(r.status, r.stderr).toBe(0);
    for (const f of damaged) expect(r.stderr).toContain(`warning: ${f} is a damaged Dits pointer (`);
    expect(r.stderr).not.toContain('foreign.mov');
  });

  it('git dits status lists each as damaged, with what is wrong', () => {
    const text = sb.mustDits(['status'], repo);
    for (const f of damaged) expect(text).toMatch(new RegExp(`${f.replace('.', '\\.')}  damaged pointer in Git \\(`));
    // foreign content is not a damaged pointer: it is raw content at a tracked path (clone-setup.test.ts)
    expect(text).toMatch(/foreign\.mov .*staged whole in Git/);
    expect(text).not.toMatch(/foreign\.mov .*damaged/);
    expect(text).not.toContain('pointer-doc.txt');
    const rows = JSON.parse(sb.mustDits(['status', '--json'], repo)) as { path: string; state: string; damage?: string }[];
    expect(rows.filter((r) => r.state === 'damaged').map((r) => r.path).sort()).toEqual([...damaged].sort());
    expect(rows.find((r) => r.path === 'good.mov')?.state).toBe('present');
  });

  it('git dits fsck reports each and exits 1', () => {
    const r = sb.dits(['fsck'], repo);
    expect(r.status).toBe(1);
    expect(r.stdout).not.toContain('No problems found');
    for (const f of damaged) expect(r.stderr).toMatch(new RegExp(`damaged-pointer: ${f.replace('.', '\\.')}: `));
    expect(r.stderr).not.toMatch(/damaged-pointer: foreign\.mov/);
    expect(r.stderr).toMatch(/raw-content: 1 file/);
    expect(r.stderr).not.toContain('pointer-doc.txt');
    const json = JSON.parse(sb.dits(['fsck', '--json'], repo).stdout) as { damagedPointers: { path: string }[] };
    expect(json.damagedPointers.map((d) => d.path).sort()).toEqual([...damaged].sort());
  });

  it('git show says which pointers are damaged', () => {
    const show = sb.mustGit(['show', 'HEAD', '--', 'bad-hex.mov', 'cut-short.mov'], repo);
    expect(show).toMatch(/^\+damaged Dits pointer \(the file id line/m);
    expect(show).toMatch(/^\+damaged Dits pointer \(truncated/m);
  });

  it('once each is restored, fsck finds no problems again', () => {
    sb.mustGit(['rm', '-q', '--cached', ...damaged, 'foreign.mov'], repo);
    sb.mustGit(['commit', '-q', '-m', 'drop them'], repo);
    const r = sb.dits(['fsck'], repo);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('No problems found');
  });
});
