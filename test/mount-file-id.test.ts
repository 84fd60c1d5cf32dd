/**
 * commit-mount of an edit in place finds the new file id from the 4 MiB leaves kept at
 * `git add` (.git/dits/treecv/<id>) and the leaves the edit touched, with real FUSE and
 * real git: the pointer's id is the whole-file BLAKE3 of the new bytes, the commit checks
 * out byte-exact, and a damaged side file means a full read with the right id. The side
 * files' threshold is lowered (DITS_TREE_CV_MIN_SIZE) so the file stays small.
 * Skipped (with the reason printed) where /dev/fuse is missing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { GitSandbox, SMALL_CHUNKS, randomBytesSeeded } from './helpers/git-env.js';
import { cleanupMounts, editThroughMount, writeAt } from './helpers/mount-process.js';
import { parsePointer } from '../src/manifest/pointer.js';
import { hashHex } from '../src/hashing/blake3.js';
import { LEAF_SIZE, treeCvPath } from '../src/hashing/tree-cv.js';

const require = createRequire(import.meta.url);
const napi = require('@napi-rs/blake-hash') as { blake3(d: Uint8Array): Buffer };
const FUSE = fs.existsSync('/dev/fuse');
if (!FUSE) console.log('test/mount-file-id.test.ts: skipped: /dev/fuse does not exist on this machine (FUSE mounts cannot be made)');

const LEAF = LEAF_SIZE;
let sb: GitSandbox;
beforeAll(() => {
  sb = new GitSandbox('dits-mount-id-');
  sb.env.DITS_TREE_CV_MIN_SIZE = String(LEAF + 1);
});
afterAll(() => {
  cleanupMounts(sb);
  sb?.cleanup();
});

type Result = { commit: string; files: { path: string; how: string; bytesHashed: number }[] };

describe.skipIf(!FUSE)('commit-mount: the file id from the kept leaves', () => {
  const size = 2 * LEAF + 123; // three leaves, the last one short
  let repo: string;
  let content: Buffer;

  beforeAll(() => {
    content = randomBytesSeeded(size, 41);
    repo = sb.repo('r', { track: ['*.mov'], config: SMALL_CHUNKS, files: { 'big.mov': content } });
    sb.mustGit(['add', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', 'one'], repo);
  });

  const pointerOid = (rev: string): string => parsePointer(Buffer.from(sb.mustGit(['show', `${rev}:big.mov`], repo)))!.oid;

  it('git add keeps the leaves; an edit in place hashes one leaf, gives the whole-file id, and checks out byte-exact', async () => {
    const baseOid = pointerOid('HEAD');
    expect(baseOid).toBe(napi.blake3(content).toString('hex'));
    expect(fs.existsSync(treeCvPath(path.join(repo, '.git/dits'), baseOid))).toBe(true);

    const at = Math.floor(size / 2);
    const edit = Buffer.from('M'.repeat(100));
    await editThroughMount(sb, repo, path.join(sb.dir, 'mnt'), (mnt) => writeAt(path.join(mnt, 'big.mov'), at, edit));
    edit.copy(content, at);

    const c = sb.dits(['commit-mount', path.join(sb.dir, 'mnt'), '-m', 'edit', '--json'], repo);
    expect(c.status, c.stderr + c.stdout).toBe(0);
    const res = JSON.parse(c.stdout) as Result;
    expect(res.files).toEqual([expect.objectContaining({ path: 'big.mov', how: 'partial', bytesHashed: LEAF })]);
    const oid = pointerOid('HEAD');
    expect(oid).toBe(hashHex(content));
    expect(oid).toBe(napi.blake3(content).toString('hex'));
    // the new version's leaves are kept for the next edit
    expect(fs.existsSync(treeCvPath(path.join(repo, '.git/dits'), oid))).toBe(true);

    sb.mustGit(['checkout', '-q', 'HEAD~1'], repo);
    sb.mustGit(['checkout', '-q', '-'], repo);
    expect(fs.readFileSync(path.join(repo, 'big.mov')).equals(content)).toBe(true);
    expect(sb.mustGit(['status', '--porcelain'], repo)).toBe('');
  });

  it('reads the whole file when the side file is damaged, and still gives the right id', async () => {
    const baseOid = pointerOid('HEAD');
    const side = treeCvPath(path.join(repo, '.git/dits'), baseOid);
    const b = fs.readFileSync(side);
    b[b.length - 40]! ^= 0xff; // in the last leaf
    fs.writeFileSync(side, b);

    const at = LEAF - 30; // across the first two leaves
    const edit = Buffer.from('X'.repeat(60));
    await editThroughMount(sb, repo, path.join(sb.dir, 'mnt'), (mnt) => writeAt(path.join(mnt, 'big.mov'), at, edit));
    edit.copy(content, at);
    const c = sb.dits(['commit-mount', path.join(sb.dir, 'mnt'), '-m', 'edit 2', '--json'], repo);
    expect(c.status, c.stderr + c.stdout).toBe(0);
    expect((JSON.parse(c.stdout) as Result).files).toEqual([expect.objectContaining({ path: 'big.mov', how: 'partial', bytesHashed: size })]);
    const oid = pointerOid('HEAD');
    expect(oid).toBe(napi.blake3(content).toString('hex'));

    // the full read filed sound leaves again: the next edit hashes two leaves (across a boundary)
    const at3 = 2 * LEAF - 10;
    const edit3 = Buffer.from('Y'.repeat(20));
    await editThroughMount(sb, repo, path.join(sb.dir, 'mnt'), (mnt) => writeAt(path.join(mnt, 'big.mov'), at3, edit3));
    edit3.copy(content, at3);
    const c3 = sb.dits(['commit-mount', path.join(sb.dir, 'mnt'), '-m', 'edit 3', '--json'], repo);
    expect(c3.status, c3.stderr + c3.stdout).toBe(0);
    expect((JSON.parse(c3.stdout) as Result).files).toEqual([expect.objectContaining({ path: 'big.mov', how: 'partial', bytesHashed: LEAF + 123 })]);
    expect(pointerOid('HEAD')).toBe(napi.blake3(content).toString('hex'));
    sb.mustGit(['checkout', '-q', '-f', 'HEAD~1'], repo); // the index still has the first test's version
    sb.mustGit(['checkout', '-q', '-'], repo);
    expect(fs.readFileSync(path.join(repo, 'big.mov')).equals(content)).toBe(true);
  });
  it('an append or a truncation through the mount hashes only the leaves at the end', async () => {
    const tail = Buffer.from('T'.repeat(100));
    await editThroughMount(sb, repo, path.join(sb.dir, 'mnt'), (mnt) => fs.appendFileSync(path.join(mnt, 'big.mov'), tail));
    content = Buffer.concat([content, tail]);
    const c = sb.dits(['commit-mount', path.join(sb.dir, 'mnt'), '-m', 'append', '--json'], repo);
    expect(c.status, c.stderr + c.stdout).toBe(0);
    expect((JSON.parse(c.stdout) as Result).files).toEqual([expect.objectContaining({ path: 'big.mov', how: 'partial', bytesHashed: 223 })]);
    expect(pointerOid('HEAD')).toBe(napi.blake3(content).toString('hex'));

    await editThroughMount(sb, repo, path.join(sb.dir, 'mnt'), (mnt) => fs.truncateSync(path.join(mnt, 'big.mov'), LEAF + 50));
    content = content.subarray(0, LEAF + 50);
    const t = sb.dits(['commit-mount', path.join(sb.dir, 'mnt'), '-m', 'truncate', '--json'], repo);
    expect(t.status, t.stderr + t.stdout).toBe(0);
    expect((JSON.parse(t.stdout) as Result).files).toEqual([expect.objectContaining({ path: 'big.mov', bytesHashed: 50 })]);
    expect(pointerOid('HEAD')).toBe(napi.blake3(content).toString('hex'));
    sb.mustGit(['checkout', '-q', '-f', 'HEAD~1'], repo);
    sb.mustGit(['checkout', '-q', '-'], repo);
    expect(fs.readFileSync(path.join(repo, 'big.mov')).equals(content)).toBe(true);
  });

  it('reads the whole file without the addon\'s BLAKE3 (DITS_BLAKE3=napi), with the right id', async () => {
    const at = 1000;
    const edit = Buffer.from('N'.repeat(100));
    await editThroughMount(sb, repo, path.join(sb.dir, 'mnt'), (mnt) => writeAt(path.join(mnt, 'big.mov'), at, edit));
    edit.copy(content, at);
    sb.env.DITS_BLAKE3 = 'napi';
    try {
      const c = sb.dits(['commit-mount', path.join(sb.dir, 'mnt'), '-m', 'edit 4', '--json'], repo);
      expect(c.status, c.stderr + c.stdout).toBe(0);
      expect((JSON.parse(c.stdout) as Result).files).toEqual([expect.objectContaining({ path: 'big.mov', how: 'partial', bytesHashed: content.length })]);
    } finally {
      delete sb.env.DITS_BLAKE3;
    }
    expect(pointerOid('HEAD')).toBe(napi.blake3(content).toString('hex'));
  });
});
