/**
 * Frozen answers end to end, with real git against S3 with Glacier behaviour (s3rver behind
 * the test Glacier front, both in their own processes): a clone that needs content in
 * DEEP_ARCHIVE writes every other file, leaves the frozen one as a pointer, and says which
 * file, its bytes, and `git dits thaw` with the cost and time of each retrieval tier (the
 * price table's arithmetic); `git dits pull --json` exits 3 with those facts; once the
 * restore finished, `git dits pull` writes it. The clone's reads are recorded on the remote
 * (v1/access/...), and a push of the same content again avoids the frozen packs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { blake3 } from '@napi-rs/blake-hash';
import { GitSandbox, randomBytesSeeded, ROOT, SMALL_CHUNKS } from './helpers/git-env.js';
import { startS3rverProcess, type S3Process } from './helpers/s3rver-process.js';
import { S3Storage } from '../src/transfer/s3-storage.js';
import { AWS_US_EAST_1, formatDollars, restoreCost } from '../src/tier/prices.js';
import { readAccessRecords, type AccessEntry } from '../src/tier/access-records.js';
import { FrozenObjectError } from '../src/tier/tier-storage.js';

let sb: GitSandbox;
let s3: S3Process;
let front: { endpoint: string; close(): Promise<void> };

/** The Glacier front in its own process (git runs synchronously here: an in-process server would never answer). */
async function startFrontProcess(s3rverEndpoint: string): Promise<{ endpoint: string; close(): Promise<void> }> {
  const script = `
    import { startGlacierFront } from ${JSON.stringify(path.join(ROOT, 'dist/src/transfer/testing/glacier-front.js'))};
    const f = await startGlacierFront(${JSON.stringify(s3rverEndpoint)}, { restoreDelayMs: 0 });
    process.stdout.write('ENDPOINT ' + f.endpoint + '\\n');
    process.on('SIGTERM', () => f.close().then(() => process.exit(0)));
  `;
  const child: ChildProcess = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const endpoint = await new Promise<string>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /ENDPOINT (\S+)/.exec(buf);
      if (m) resolve(m[1]!);
    });
    child.on('exit', (c) => reject(new Error(`the glacier front exited (${c}) before listening`)));
  });
  return {
    endpoint,
    async close() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

beforeAll(async () => {
  sb = new GitSandbox('dits-frozen-');
  s3 = await startS3rverProcess(['media']);
  front = await startFrontProcess(s3.endpoint);
  Object.assign(sb.env, { AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey, AWS_REGION: 'us-east-1' });
  sb.mustGit(['config', '--global', 'dits.s3.endpoint', front.endpoint], sb.dir);
  sb.mustGit(['config', '--global', 'dits.tier.provider', 'aws'], sb.dir);
});
afterAll(async () => {
  await front?.close();
  await s3?.close();
  sb?.cleanup();
});

const hash = (f: string): string => blake3(fs.readFileSync(f)).toString('hex');

function storageAt(prefix: string): S3Storage {
  return new S3Storage({
    bucket: 'media',
    prefix,
    endpoint: front.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: s3.credentials,
    tier: { provider: 'aws' },
  });
}

async function packs(storage: S3Storage): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for await (const o of storage.list('v1/packs/')) if (o.key.endsWith('.pack')) out.set(o.key, o.size);
  return out;
}

describe('frozen content on an S3 remote (Glacier front)', () => {
  it('a clone writes everything else and names the frozen file with the thaw cost; pull exits 3 with --json facts; after the restore pull writes it', async () => {
    const files = { 'a.mov': randomBytesSeeded(300_000, 31), 'b.mov': randomBytesSeeded(300_000, 32), 'c.mov': randomBytesSeeded(300_000, 33) };
    const repo = sb.repo('src', { track: ['*.mov'], config: SMALL_CHUNKS });
    sb.mustGit(['remote', 'add', 'origin', 'dits::s3://media/proj'], repo);
    const storage = storageAt('proj');
    // one push per file: each file's chunks in packs of their own
    const packsOf: Record<string, Map<string, number>> = {};
    let before = new Map<string, number>();
    for (const [name, bytes] of Object.entries(files)) {
      fs.writeFileSync(path.join(repo, name), bytes);
      sb.mustGit(['add', name, '.gitattributes'], repo);
      sb.mustGit(['commit', '-q', '-m', name], repo);
      sb.mustGit(['push', '-q', 'origin', 'main'], repo);
      const now = await packs(storage);
      packsOf[name] = new Map([...now].filter(([k]) => !before.has(k)));
      before = now;
    }
    expect(packsOf['b.mov']!.size).toBeGreaterThan(0);
    // b.mov's packs go to Deep Archive (CopyObject onto themselves through the front)
    for (const [key, size] of packsOf['b.mov']!) await storage.setStorageClass(key, 'DEEP_ARCHIVE', { size });
    await expect(storage.getBuffer([...packsOf['b.mov']!.keys()][0]!)).rejects.toBeInstanceOf(FrozenObjectError);

    const dest = path.join(sb.dir, 'clone');
    const cloned = sb.git(['clone', '-q', ...Object.entries(SMALL_CHUNKS).flatMap(([k, v]) => ['-c', `${k}=${v}`]), 'dits::s3://media/proj', dest], sb.dir);
    expect(cloned.status, cloned.stderr).toBe(0); // git's checkout hook cannot fail a clone, and must not
    expect(cloned.stderr).toMatch(/frozen: b\.mov/);
    expect(cloned.stderr).toMatch(/git dits thaw b\.mov/);
    expect(hash(path.join(dest, 'a.mov'))).toBe(blake3(files['a.mov']).toString('hex'));
    expect(hash(path.join(dest, 'c.mov'))).toBe(blake3(files['c.mov']).toString('hex'));
    const bText = fs.readFileSync(path.join(dest, 'b.mov'), 'utf8');
    expect(bText.length).toBeLessThan(1024); // still the pointer: never a half-written file
    expect(bText).toMatch(/dits/);
    expect(fs.readdirSync(path.join(dest, '.git', 'dits', 'tmp')).filter((n) => n.startsWith('assemble-'))).toEqual([]);
    expect(sb.status(dest)).toBe('');

    // git dits pull: the same facts, as JSON, exit 3
    const pull = sb.dits(['pull', '--json'], dest);
    expect(pull.status, pull.stderr).toBe(3);
    const facts = JSON.parse(pull.stdout) as { frozenFiles: number; frozen: { code: string; files: { path: string; bytes: number; packs: string[] }[]; packBytes: number; thaw: { command: string; estimates: { tier: string; storageClass: string; total: number; hours: number[] }[] } } };
    expect(facts.frozenFiles).toBe(1);
    expect(facts.frozen.code).toBe('storage-frozen');
    expect(facts.frozen.files).toEqual([{ path: 'b.mov', bytes: 300_000, packs: expect.any(Array) }]);
    const bPackIds = [...packsOf['b.mov']!.keys()].map((k) => k.slice('v1/packs/'.length, -'.pack'.length)).sort();
    expect([...facts.frozen.files[0]!.packs].sort()).toEqual(bPackIds);
    const packBytes = [...packsOf['b.mov']!.values()].reduce((a, b) => a + b, 0);
    expect(facts.frozen.packBytes).toBe(packBytes);
    expect(facts.frozen.thaw.command).toBe('git dits thaw b.mov');
    // the estimates are the price table's arithmetic, for each tier Deep Archive offers
    const expected = ['standard', 'bulk'].map((t) => restoreCost(AWS_US_EAST_1, 'DEEP_ARCHIVE', t as 'standard' | 'bulk', packBytes, bPackIds.length, 7));
    expect(facts.frozen.thaw.estimates).toEqual(expected);
    // and the text says it: the file, the command, each tier's cost and time
    expect(pull.stderr).toMatch(/frozen: b\.mov/);
    expect(pull.stderr).toMatch(/git dits thaw b\.mov/);
    expect(pull.stderr).toContain(formatDollars(expected[0]!.total));
    expect(pull.stderr).toMatch(/standard .* within 12 h/);
    expect(pull.stderr).toMatch(/bulk .* within 48 h/);

    // another revision's content into the local store: the same facts, exit 3
    const older = sb.dits(['pull', '--json', 'origin', 'HEAD~1'], dest);
    expect(older.status, older.stderr).toBe(3);
    expect((JSON.parse(older.stdout) as typeof facts).frozen.files.map((f) => f.path)).toEqual(['b.mov']);
    expect(older.stderr).toMatch(/content of 1 file\(s\) at HEAD~1, .* is frozen on origin/);

    // the clone's reads were recorded on the remote: a.mov's and c.mov's packs, never b.mov's
    const read = new Set<string>();
    for await (const e of readAccessRecords(storage) as AsyncIterable<AccessEntry>) read.add(`${e.kind}:${e.id}`);
    for (const name of ['a.mov', 'c.mov']) for (const k of packsOf[name]!.keys()) expect(read.has(`pack:${k.slice(9, -5)}`)).toBe(true);
    for (const id of bPackIds) expect(read.has(`pack:${id}`)).toBe(false);
    expect([...read].filter((x) => x.startsWith('file:')).length).toBe(3);
    // and the reaper's catalog takes them in (tier plan reads v1/access/)
    const plan = JSON.parse(sb.mustDits(['tier', 'plan', '--json'], dest)) as { sync: { access: { matched: number; unknown: number } } };
    expect(plan.sync.access.matched).toBeGreaterThanOrEqual(read.size);
    expect(plan.sync.access.unknown).toBe(0);

    // a restore finishes (the front's delay is 0): pull writes the file
    for (const key of packsOf['b.mov']!.keys()) expect(await storage.requestRestore(key, { days: 1, tier: 'standard' })).toBe('started');
    const after = sb.dits(['pull'], dest);
    expect(after.status, after.stderr).toBe(0);
    expect(hash(path.join(dest, 'b.mov'))).toBe(blake3(files['b.mov']).toString('hex'));
    expect(sb.status(dest)).toBe('');
  });

  it('content frozen on one remote comes from another that holds it readable: nothing is reported frozen', async () => {
    const clip = randomBytesSeeded(300_000, 51);
    const repo = sb.repo('src3', { track: ['*.mov'], config: SMALL_CHUNKS, files: { 'clip.mov': clip } });
    sb.mustGit(['add', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', 'clip'], repo);
    sb.mustGit(['remote', 'add', 'origin', 'dits::s3://media/proj3'], repo);
    const backup = `dits::file://${path.join(sb.dir, 'backup3')}`;
    sb.mustGit(['remote', 'add', 'backup', backup], repo);
    sb.mustGit(['push', '-q', 'origin', 'main'], repo);
    sb.mustGit(['push', '-q', 'backup', 'main'], repo);
    const storage = storageAt('proj3');
    for (const [key, size] of await packs(storage)) await storage.setStorageClass(key, 'DEEP_ARCHIVE', { size });
    const dest = path.join(sb.dir, 'clone3');
    sb.mustGit(['clone', '-q', '-c', 'dits.fetchMode=lazy', ...Object.entries(SMALL_CHUNKS).flatMap(([k, v]) => ['-c', `${k}=${v}`]), 'dits::s3://media/proj3', dest], sb.dir);
    sb.mustGit(['remote', 'add', 'backup', backup], dest);
    const pull = sb.dits(['pull', '--json'], dest);
    expect(pull.status, pull.stderr).toBe(0);
    expect(JSON.parse(pull.stdout)).toMatchObject({ written: 1, frozenFiles: 0, frozen: null });
    expect(hash(path.join(dest, 'clip.mov'))).toBe(blake3(clip).toString('hex'));
    // only origin, named: frozen there, said so
    fs.rmSync(path.join(dest, 'clip.mov'));
    sb.mustGit(['checkout', '-q', '--', 'clip.mov'], dest, undefined, { GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'dits.fetchMode', GIT_CONFIG_VALUE_0: 'lazy' });
    expect(fs.statSync(path.join(dest, 'clip.mov')).size).toBeLessThan(1024);
    const only = sb.dits(['pull', '--json', '--remote', 'origin'], dest);
    expect(only.status, only.stderr).toBe(3);
  });

  it('a push of chunks whose only copies are archived uploads them afresh: a new clone needs no thaw, the archived packs stay as they were', async () => {
    const clip = randomBytesSeeded(300_000, 41);
    const repo = sb.repo('src2', { track: ['*.mov'], config: SMALL_CHUNKS, files: { 'clip.mov': clip } });
    sb.mustGit(['add', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', 'clip'], repo);
    sb.mustGit(['remote', 'add', 'origin', 'dits::s3://media/proj2'], repo);
    sb.mustGit(['push', '-q', 'origin', 'main'], repo);
    const storage = storageAt('proj2');
    const old = await packs(storage);
    for (const [key, size] of old) await storage.setStorageClass(key, 'DEEP_ARCHIVE', { size });
    // an edit (a tail appended) in place of the clip: most of its chunks are on the remote, but only archived
    const edited = Buffer.concat([clip, randomBytesSeeded(5_000, 42)]);
    fs.writeFileSync(path.join(repo, 'edit.mov'), edited);
    sb.mustGit(['rm', '-q', 'clip.mov'], repo);
    sb.mustGit(['add', 'edit.mov'], repo);
    sb.mustGit(['commit', '-q', '-m', 'edit'], repo);
    sb.mustGit(['push', '-q', 'origin', 'main'], repo);
    const now = await packs(storage);
    const fresh = [...now.keys()].filter((k) => !old.has(k));
    expect(fresh.length).toBeGreaterThan(0);
    for (const key of old.keys()) expect((await storage.tierState(key))?.storageClass).toBe('DEEP_ARCHIVE'); // never overwritten
    const dest = path.join(sb.dir, 'clone2');
    const cloned = sb.git(['clone', '-q', ...Object.entries(SMALL_CHUNKS).flatMap(([k, v]) => ['-c', `${k}=${v}`]), 'dits::s3://media/proj2', dest], sb.dir);
    expect(cloned.status, cloned.stderr).toBe(0);
    expect(cloned.stderr).not.toMatch(/frozen/);
    expect(hash(path.join(dest, 'edit.mov'))).toBe(blake3(edited).toString('hex'));
  });
});
