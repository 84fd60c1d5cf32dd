/**
 * The local store through the commands that inspect and repair it: fsck, gc, du, ls-files,
 * the diff summary, and a full disk during add.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { GitSandbox, randomBytesSeeded, writeFile } from './helpers/git-env.js';

let sb: GitSandbox;
beforeAll(() => {
  sb = new GitSandbox();
});
afterAll(() => sb.cleanup());

const SMALL_CHUNKS = { 'dits.chunkMin': '1024', 'dits.chunkAvg': '4096', 'dits.chunkMax': '16384', 'dits.smudgeInlineMax': '64k' };

function packFiles(repo: string): string[] {
  const dir = path.join(repo, '.git/dits/packs');
  return fs.readdirSync(dir).map((f) => path.join(dir, f));
}

describe('fsck', () => {
  it('finds a corrupted chunk, quarantines it, exits non-zero, and the next read says what to do', () => {
    const content = randomBytesSeeded(200_000, 50);
    const repo = sb.repo('fsck', { track: ['*.mov'], config: SMALL_CHUNKS, files: { 'a.mov': content } });
    sb.mustGit(['add', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', 'a'], repo);
    expect(sb.dits(['fsck'], repo).status).toBe(0);
    const pack = packFiles(repo)[0]!;
    fs.chmodSync(pack, 0o644);
    const fd = fs.openSync(pack, 'r+');
    fs.writeSync(fd, Buffer.from([0xff, 0x00, 0xff]), 0, 3, 100_000);
    fs.closeSync(fd);
    const r = sb.dits(['fsck', '--json'], repo);
    expect(r.status).toBe(1);
    const res = JSON.parse(r.stdout);
    expect(res.problems.filter((p: { kind: string }) => p.kind === 'chunk-corrupt')).toHaveLength(1);
    expect(res.quarantined).toHaveLength(1);
    expect(fs.readdirSync(path.join(repo, '.git/dits/quarantine')).some((f) => f.endsWith('.chunk'))).toBe(true);
    // After quarantine the chunk reads as missing, never as valid.
    fs.rmSync(path.join(repo, 'a.mov'));
    sb.mustGit(['checkout', '--', 'a.mov'], repo);
    const co = sb.dits(['checkout'], repo);
    expect(co.status).toBe(1);
    expect(co.stderr).toMatch(/a\.mov: content is not in the local store/);
    expect(sb.dits(['fsck'], repo).status).toBe(1); // still reports the missing chunk
  });
});

describe('gc', () => {
  it('keeps what any commit, stash, index entry or reflog needs, and removes the rest', () => {
    const v1 = randomBytesSeeded(120_000, 60);
    const v2 = randomBytesSeeded(120_000, 61);
    const stashed = randomBytesSeeded(120_000, 62);
    const staged = randomBytesSeeded(120_000, 63);
    const repo = sb.repo('gc', { track: ['*.mov'], config: SMALL_CHUNKS, files: { 'a.mov': v1 } });
    sb.mustGit(['add', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', 'v1'], repo);
    writeFile(path.join(repo, 'a.mov'), v2);
    sb.mustGit(['commit', '-q', '-am', 'v2'], repo);
    writeFile(path.join(repo, 'a.mov'), stashed);
    sb.mustGit(['stash', '-q'], repo);
    writeFile(path.join(repo, 'b.mov'), staged);
    sb.mustGit(['add', 'b.mov'], repo);

    // Everything is reachable (v1 through history, stash, index): nothing to remove.
    let plan = JSON.parse(sb.mustDits(['gc', '--prune=now', '--dry-run', '--json'], repo));
    expect(plan.deadChunks).toBe(0);
    expect(plan.liveManifests).toBe(4);

    // Drop v1 from history and reflog, drop the stash: their content goes.
    sb.mustGit(['reset', '-q', 'HEAD'], repo); // unstage b.mov: its content is now unreferenced too
    sb.mustGit(['stash', 'drop', '-q'], repo);
    const v2commit = sb.mustGit(['rev-parse', 'HEAD'], repo).trim();
    const orphan = sb.mustGit(['commit-tree', `${v2commit}^{tree}`, '-m', 'squashed'], repo).trim();
    sb.mustGit(['reset', '-q', '--soft', orphan], repo);
    sb.mustGit(['reflog', 'expire', '--expire=now', '--all'], repo);
    plan = JSON.parse(sb.mustDits(['gc', '--prune=now', '--dry-run', '--json'], repo));
    expect(plan.deadManifests).toHaveLength(3);
    expect(plan.deadChunks).toBeGreaterThan(0);
    const before = sb.mustDits(['du', '--json'], repo);
    expect(JSON.parse(sb.mustDits(['du', '--json'], repo))).toEqual(JSON.parse(before)); // dry run changed nothing

    // The default grace period keeps content younger than an hour.
    expect(JSON.parse(sb.mustDits(['gc', '--dry-run', '--json'], repo)).deadChunks).toBe(0);

    sb.mustDits(['gc', '--prune=now'], repo);
    expect(sb.dits(['fsck'], repo).status).toBe(0);
    const du = JSON.parse(sb.mustDits(['du', '--json'], repo));
    expect(du.manifests).toBe(1);
    expect(du.uniqueChunkBytes).toBe(120_000);
    fs.rmSync(path.join(repo, 'a.mov'));
    sb.mustGit(['checkout', '--', 'a.mov'], repo);
    sb.mustDits(['checkout'], repo);
    expect(fs.readFileSync(path.join(repo, 'a.mov')).equals(v2)).toBe(true);
  });
});

describe('du, ls-files and diff', () => {
  it('report sizes, dedup and a readable diff', () => {
    const v1 = randomBytesSeeded(300_000, 70);
    const repo = sb.repo('du', { track: ['*.mov'], config: SMALL_CHUNKS, files: { 'a.mov': v1 } });
    sb.mustGit(['add', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', 'v1'], repo);
    const v2 = Buffer.concat([v1.subarray(0, 1000), randomBytesSeeded(4096, 71), v1.subarray(1000)]);
    writeFile(path.join(repo, 'a.mov'), v2);
    writeFile(path.join(repo, 'copy.mov'), v1);
    sb.mustGit(['add', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', 'v2'], repo);
    const du = JSON.parse(sb.mustDits(['du', '--json'], repo));
    expect(du.fileVersions).toBe(2);
    expect(du.logicalAllVersionsBytes).toBe(300_000 + 304_096);
    expect(du.uniqueChunkBytes).toBeLessThan(300_000 + 40_000); // the insert cost a few chunks, the copy nothing
    expect(du.dedupRatio).toBeGreaterThan(1.7);
    const ls = JSON.parse(sb.mustDits(['ls-files', '--json'], repo)) as { path: string; size: number; chunks: number; dedupShare: number }[];
    expect(ls.map((l) => l.path)).toEqual(['a.mov', 'copy.mov']);
    expect(ls[1]!.dedupShare).toBeGreaterThan(0.9); // shared with a.mov's new version (the identical old one is the same content)
    expect(ls[0]!.dedupShare).toBeGreaterThan(0.8);
    const diff = sb.mustGit(['diff', 'HEAD~1', 'HEAD', '--', 'a.mov'], repo);
    expect(diff).toMatch(/size: 293 KiB \(300000 bytes\) -> 297 KiB \(304096 bytes\) \(\+4\.0 KiB\)/);
    expect(diff).toMatch(/chunks: \d+ -> \d+; \d+ reused \(9\d\.\d% of the new version's bytes\)/);
    expect(diff).not.toMatch(/Binary files/);
    const log = sb.mustGit(['log', '-p', '-1', '--', 'a.mov'], repo);
    expect(log).toMatch(/-Dits file, 293 KiB \(300000 bytes\)/);
    expect(log).toMatch(/\+Dits file, 297 KiB \(304096 bytes\)/);
  });
});

describe('a full disk during add', () => {
  it('fails clearly and leaves the repository usable', (ctx) => {
    const mnt = path.join(sb.dir, 'small-disk');
    fs.mkdirSync(mnt);
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=6m', 'tmpfs', mnt]);
    if (m.status !== 0) {
      ctx.skip(); // needs root and permission to mount tmpfs; CI runs as root
      return;
    }
    try {
      const repo = path.join(mnt, 'r');
      sb.mustGit(['init', '-q', repo], sb.dir);
      for (const [k, v] of Object.entries(SMALL_CHUNKS)) sb.mustGit(['config', k, v], repo);
      sb.mustDits(['init'], repo);
      sb.mustDits(['track', '*.mov'], repo);
      writeFile(path.join(repo, 'ok.mov'), randomBytesSeeded(50_000, 80));
      sb.mustGit(['add', '.'], repo);
      sb.mustGit(['commit', '-q', '-m', 'ok'], repo);
      // 4 MiB file on a ~6 MiB disk that already holds the repo: the store runs out.
      const big = path.join(repo, 'big.mov');
      const fd = fs.openSync(big, 'w');
      let written = 0;
      try {
        for (let i = 0; i < 64; i++) written += fs.writeSync(fd, randomBytesSeeded(65536, 90 + i));
      } catch {
        /* the file itself may not fit entirely */
      }
      fs.closeSync(fd);
      expect(written).toBeGreaterThan(1 << 20);
      const r = sb.dits(['add', 'big.mov'], repo);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/disk is full/);
      expect(r.stderr).toMatch(/hint: free some space/);
      const viaGit = sb.git(['add', 'big.mov'], repo);
      expect(viaGit.status).not.toBe(0);
      fs.rmSync(big);
      expect(sb.status(repo)).toBe('');
      writeFile(path.join(repo, 'small.mov'), randomBytesSeeded(20_000, 81));
      sb.mustGit(['add', 'small.mov'], repo);
      sb.mustGit(['commit', '-q', '-m', 'small'], repo);
      sb.mustDits(['gc', '--prune=now'], repo);
      expect(sb.dits(['fsck'], repo).status).toBe(0);
    } finally {
      spawnSync('umount', ['-l', mnt]);
    }
  });
});
