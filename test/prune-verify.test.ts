/**
 * `git dits prune` drops the last local copy of a chunk only after reading that chunk back
 * from the remote and checking it against its id (DESIGN.md invariant 4). Each test damages
 * the remote pack that holds an old version (one flipped byte, truncated, deleted), prunes,
 * then takes the remote away and checks the old version still checks out from local content.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { blake3 } from '@napi-rs/blake-hash';
import { GitSandbox, SMALL_CHUNKS, randomBytesSeeded, writeFile } from './helpers/git-env.js';
import { decodePackIndex } from '../src/remote/content/pack-index.js';
import { openStorage } from '../src/transfer/storage-url.js';
import { startS3rverProcess, type S3Process } from './helpers/s3rver-process.js';

let sb: GitSandbox;
let s3: S3Process;
beforeAll(async () => {
  sb = new GitSandbox('dits-prune-verify-');
  s3 = await startS3rverProcess(['media']);
  Object.assign(sb.env, { AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey, AWS_REGION: 'us-east-1' });
  sb.mustGit(['config', '--global', 'dits.s3.endpoint', s3.endpoint], sb.dir);
});
afterAll(async () => {
  await s3?.close();
  sb?.cleanup();
});

// one remote pack per push of a version (400 kB in 1 MiB packs)
const CFG = { ...SMALL_CHUNKS, 'dits.packSize': '1m' };
const hash = (b: Buffer): string => blake3(b).toString('hex');

interface Setup {
  repo: string;
  remoteDir: string;
  v1: Buffer;
  /** the remote pack (file name) holding v1's chunks */
  v1Pack: string;
  /** chunks in that pack */
  v1Chunks: number;
}

/** v1 and v2 of a.mov, each pushed on its own (so v1's chunks are in one remote pack of their own). */
function setup(name: string, compressible = false): Setup {
  const remoteDir = path.join(sb.dir, 'remotes', name);
  const v1 = randomBytesSeeded(400_000, 70);
  if (compressible) {
    // text (zstd-compressed chunks in the pack), never repeating (no dedup)
    let text = '';
    for (let i = 0; text.length < 200_000; i++) text += `frame ${i} timecode ${i * 40} ms\n`;
    Buffer.from(text).copy(v1, 50_000, 0, 200_000);
  }
  const repo = sb.repo(name, { track: ['*.mov'], config: CFG, files: { 'a.mov': v1 } });
  sb.mustGit(['add', '.'], repo);
  sb.mustGit(['commit', '-q', '-m', 'v1'], repo);
  sb.mustGit(['remote', 'add', 'origin', `dits::file://${remoteDir}`], repo);
  sb.mustGit(['push', '-q', 'origin', 'main'], repo);
  const packsDir = path.join(remoteDir, 'v1', 'packs');
  const first = fs.readdirSync(packsDir).filter((n) => n.endsWith('.pack'));
  expect(first).toHaveLength(1);
  writeFile(path.join(repo, 'a.mov'), randomBytesSeeded(400_000, 71));
  sb.mustGit(['commit', '-q', '-am', 'v2'], repo);
  sb.mustGit(['push', '-q', 'origin', 'main'], repo);
  const idx = decodePackIndex(fs.readFileSync(path.join(packsDir, first[0]!.replace(/\.pack$/, '.idx'))));
  return { repo, remoteDir, v1, v1Pack: first[0]!, v1Chunks: idx.length };
}

/** Moves the remote away, then checks out v1 from local content only, and puts it back. */
function expectV1Local(s: Setup): void {
  const away = `${s.remoteDir}.away`;
  fs.renameSync(s.remoteDir, away);
  try {
    const fsck = sb.dits(['fsck'], s.repo);
    expect(fsck.status, fsck.stdout + fsck.stderr).toBe(0);
    sb.mustGit(['checkout', '-q', 'HEAD~1'], s.repo);
    expect(hash(fs.readFileSync(path.join(s.repo, 'a.mov')))).toBe(hash(s.v1));
    sb.mustGit(['checkout', '-q', 'main'], s.repo);
  } finally {
    fs.renameSync(away, s.remoteDir);
  }
}

function damage(file: string, f: (b: Buffer) => Buffer): void {
  fs.chmodSync(file, 0o644);
  fs.writeFileSync(file, f(fs.readFileSync(file)));
}

describe('prune verifies every chunk it drops', () => {
  it('one flipped byte in a remote pack: that chunk stays local, prune names the pack and exits 1', () => {
    const s = setup('flip');
    const packFile = path.join(s.remoteDir, 'v1', 'packs', s.v1Pack);
    // in the last chunk's data, well away from the header and the other entry heads
    damage(packFile, (b) => {
      b[b.length - 100] ^= 0x01;
      return b;
    });
    const dry = JSON.parse(sb.mustDits(['prune', '--older-than', '0s', '--dry-run', '--json'], s.repo));
    expect(dry.chunks).toBe(s.v1Chunks); // the plan: v1's chunks, before verification
    expect(dry.verify).toBe('bytes');
    expect(dry.verified).toBe(false);
    expect(dry.verifyRequests).toBe(1); // adjacent chunks read in one range
    expect(dry.verifyBytes).toBe(fs.statSync(packFile).size - 16);
    const dryText = sb.mustDits(['prune', '--older-than', '0s', '--dry-run'], s.repo);
    expect(dryText).toMatch(/verifying them reads [\d.]+ [kKM]i?B in 1 request\(s\) from origin/);

    const r = sb.dits(['prune', '--older-than', '0s'], s.repo);
    expect(r.status, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toMatch(new RegExp(`Dropped ${s.v1Chunks - 1} chunk`));
    expect(r.stderr).toContain(`v1/packs/${s.v1Pack}: 1 chunk(s) kept`);
    expect(r.stderr).toMatch(/its bytes do not match its id/);
    expect(r.stderr).toMatch(/hint: .*git dits prune --repair/); // what to do
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    // the damaged chunk's good copy is still here: v1 checks out (the rest from the remote)
    const fsck = sb.dits(['fsck'], s.repo);
    expect(fsck.status, fsck.stdout + fsck.stderr).toBe(0);
    sb.mustGit(['checkout', '-q', 'HEAD~1'], s.repo);
    expect(hash(fs.readFileSync(path.join(s.repo, 'a.mov')))).toBe(hash(s.v1));
    sb.mustGit(['checkout', '-q', 'main'], s.repo);

    // --repair uploads the good copy; the next prune verifies and drops it
    const rep = sb.dits(['prune', '--older-than', '0s', '--repair'], s.repo);
    expect(rep.status, rep.stdout + rep.stderr).toBe(0);
    const again = sb.dits(['prune', '--older-than', '0s', '--json'], s.repo);
    expect(again.status, again.stdout + again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ chunks: 1, failedRemotePacks: [] });
    // a fresh clone reads v1 whole
    const c = path.join(sb.dir, 'flip-clone');
    sb.mustGit(['clone', '-q', ...Object.entries(CFG).flatMap(([k, v]) => ['-c', `${k}=${v}`]), `dits::file://${s.remoteDir}`, c], sb.dir);
    sb.mustGit(['checkout', '-q', 'HEAD~1'], c);
    expect(hash(fs.readFileSync(path.join(c, 'a.mov')))).toBe(hash(s.v1));
  });

  it('a flipped byte inside a zstd-compressed chunk is found too', () => {
    const s = setup('flip-zstd', true);
    const packFile = path.join(s.remoteDir, 'v1', 'packs', s.v1Pack);
    const idx = decodePackIndex(fs.readFileSync(packFile.replace(/\.pack$/, '.idx')));
    const z = idx.find((e) => e.codec === 1);
    expect(z).toBeDefined();
    damage(packFile, (b) => {
      b[z!.offset + Math.floor(z!.storedLength / 2)] ^= 0x10;
      return b;
    });
    const r = sb.dits(['prune', '--older-than', '0s', '--json'], s.repo);
    expect(r.status, r.stdout + r.stderr).toBe(1);
    const plan = JSON.parse(r.stdout);
    expect(plan.failedRemotePacks).toEqual([expect.objectContaining({ packKey: `v1/packs/${s.v1Pack}`, chunks: 1 })]);
    expect(plan.chunks).toBe(s.v1Chunks - 1); // the others verified and went
    // the damaged chunk is still local: the file reads back, the rest comes from the remote
    sb.mustGit(['checkout', '-q', 'HEAD~1'], s.repo);
    expect(hash(fs.readFileSync(path.join(s.repo, 'a.mov')))).toBe(hash(s.v1));
    sb.mustGit(['checkout', '-q', 'main'], s.repo);
  });

  it('a truncated remote pack: its chunks stay local, prune names it and exits 1', () => {
    const s = setup('truncated');
    damage(path.join(s.remoteDir, 'v1', 'packs', s.v1Pack), (b) => b.subarray(0, b.length - 1000));
    const r = sb.dits(['prune', '--older-than', '0s'], s.repo);
    expect(r.status, r.stdout + r.stderr).toBe(1);
    expect(r.stderr).toContain(`v1/packs/${s.v1Pack}`);
    expect(r.stderr).toMatch(new RegExp(`${s.v1Chunks} chunk`));
    expectV1Local(s);
  });

  it('a remote pack missing: its chunks stay local, prune names it and exits 1', () => {
    const s = setup('missing');
    fs.rmSync(path.join(s.remoteDir, 'v1', 'packs', s.v1Pack));
    const r = sb.dits(['prune', '--older-than', '0s'], s.repo);
    expect(r.status, r.stdout + r.stderr).toBe(1);
    expect(r.stderr).toContain(`v1/packs/${s.v1Pack}`);
    expect(r.stderr).toMatch(new RegExp(`${s.v1Chunks} chunk`));
    expectV1Local(s);
  });

  it('an intact remote: prune drops, reads back exactly what it drops, and the content returns', () => {
    const s = setup('intact');
    const r = JSON.parse(sb.mustDits(['prune', '--older-than', '0s', '--json'], s.repo));
    expect(r.chunks).toBe(s.v1Chunks);
    expect(r.failedRemotePacks).toEqual([]);
    // the pack's data minus its 16-byte header: each dropped chunk's entry read once
    const packSize = fs.statSync(path.join(s.remoteDir, 'v1', 'packs', s.v1Pack)).size;
    expect(r.verifyBytes).toBe(packSize - 16);
    // du says where the pruned chunks are: on the remote, not "in the working tree"
    const du = sb.mustDits(['du'], s.repo);
    expect(du).toMatch(new RegExp(`held by a remote only .*${s.v1Chunks} chunks, on origin`));
    expect(du).not.toMatch(/in the working tree/);
    expect(JSON.parse(sb.mustDits(['du', '--json'], s.repo)).remoteHeld).toEqual([{ remote: 'origin', chunks: s.v1Chunks, bytes: s.v1.length }]);
    sb.mustGit(['checkout', '-q', 'HEAD~1'], s.repo); // fetched back
    expect(hash(fs.readFileSync(path.join(s.repo, 'a.mov')))).toBe(hash(s.v1));
    sb.mustGit(['checkout', '-q', 'main'], s.repo);
  });

  it('--size-only accepts a size check: a flipped byte then goes unnoticed (the user chose that)', () => {
    const s = setup('size-only');
    const help = sb.mustDits(['prune', '--help'], s.repo);
    expect(help).toMatch(/--size-only/);
    const packFile = path.join(s.remoteDir, 'v1', 'packs', s.v1Pack);
    damage(packFile, (b) => {
      b[b.length - 100] ^= 0x01;
      return b;
    });
    const dry = JSON.parse(sb.mustDits(['prune', '--older-than', '0s', '--size-only', '--dry-run', '--json'], s.repo));
    expect(dry.verify).toBe('size');
    expect(dry.verifyBytes).toBe(0);
    const r = JSON.parse(sb.mustDits(['prune', '--older-than', '0s', '--size-only', '--json'], s.repo));
    expect(r.chunks).toBe(s.v1Chunks);
  });

  it('on S3: one flipped byte in a remote pack is found by ranged GETs; that chunk stays local', async () => {
    const v1 = randomBytesSeeded(400_000, 72);
    const repo = sb.repo('s3-flip', { track: ['*.mov'], config: CFG, files: { 'a.mov': v1 } });
    sb.mustGit(['add', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', 'v1'], repo);
    sb.mustGit(['remote', 'add', 'origin', 'dits::s3://media/prune-flip'], repo);
    sb.mustGit(['push', '-q', 'origin', 'main'], repo);
    writeFile(path.join(repo, 'a.mov'), randomBytesSeeded(400_000, 73));
    sb.mustGit(['commit', '-q', '-am', 'v2'], repo);
    const storage = await openStorage('s3://media/prune-flip', { s3: { endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: s3.credentials } });
    const packs: string[] = [];
    for await (const o of storage.list('v1/packs/')) if (o.key.endsWith('.pack')) packs.push(o.key);
    expect(packs).toHaveLength(1); // v1's chunks (v2 is not pushed: its chunks are not on the remote)
    const bytes = await storage.getBuffer(packs[0]!);
    bytes[bytes.length - 100] ^= 0x01;
    await storage.put(packs[0]!, bytes);
    const r = sb.dits(['prune', '--older-than', '0s', '--json'], repo);
    expect(r.status, r.stderr).toBe(1);
    const plan = JSON.parse(r.stdout);
    expect(plan.failedRemotePacks).toEqual([expect.objectContaining({ packKey: packs[0], chunks: 1 })]);
    expect(plan.verifyRequests).toBe(1);
    sb.mustGit(['checkout', '-q', 'HEAD~1'], repo); // the damaged chunk from here, the rest from S3
    expect(hash(fs.readFileSync(path.join(repo, 'a.mov')))).toBe(hash(v1));
  });
});
