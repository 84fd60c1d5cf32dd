/**
 * `git dits mirror`: a second remote (a folder, or an s3rver bucket) kept as a verified copy
 * of the primary. Real git, real remotes; faults injected explicitly per test: a sync
 * stopped after its n-th write (as if killed), a mirror that cannot be reached, a corrupt
 * pack on the primary, a frozen one, two syncs at once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { blake3 } from '@napi-rs/blake-hash';
import { spawn } from 'node:child_process';
import { DITS_BIN, GitSandbox, SMALL_CHUNKS, cloneInto, randomBytesSeeded, writeFile } from './helpers/git-env.js';
import { startS3rverProcess, type S3Process } from './helpers/s3rver-process.js';
import { FileStorage } from '../src/transfer/file-storage.js';
import { S3Storage } from '../src/transfer/s3-storage.js';
import type { ObjectStorage, PutBody, PutOptions } from '../src/transfer/object-storage.js';
import { syncMirror } from '../src/lifecycle/mirror-sync.js';
import { CountingStorage } from '../src/remote/content/counting-storage.js';
import { FrozenObjectError } from '../src/tier/tier-storage.js';
import { locationTablePackIds } from '../src/remote/content/location-table.js';

let sb: GitSandbox;
let s3: S3Process;
beforeAll(async () => {
  sb = new GitSandbox('dits-mirror-');
  s3 = await startS3rverProcess(['mirror', 'mirror2']);
  Object.assign(sb.env, { AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey, AWS_REGION: 'us-east-1' });
  sb.mustGit(['config', '--global', 'dits.s3.endpoint', s3.endpoint], sb.dir);
});
afterAll(async () => {
  await s3?.close();
  sb?.cleanup();
});

const CFG = SMALL_CHUNKS;
const hash = (b: Buffer): string => blake3(b).toString('hex');
const remoteDir = (name: string): string => path.join(sb.dir, 'remotes', name);
const fileUrl = (name: string): string => `dits::file://${remoteDir(name)}`;
const s3Storage = (prefix: string, bucket = 'mirror'): S3Storage =>
  new S3Storage({ bucket, prefix, endpoint: s3.endpoint, forcePathStyle: true, region: 'us-east-1', credentials: s3.credentials });
const fast = { retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2 } };

/** A repository with two commits of two files, pushed to a file remote `<name>-origin`. */
function primary(name: string, seed: number): { repo: string; files: Record<string, Buffer> } {
  const a = randomBytesSeeded(400_000, seed);
  const b = randomBytesSeeded(300_000, seed + 1);
  const a2 = randomBytesSeeded(400_000, seed + 2);
  const repo = sb.repo(name, { track: ['*.mov'], config: CFG, files: { 'a.mov': a, 'b.mov': b } });
  sb.mustGit(['add', '.'], repo);
  sb.mustGit(['commit', '-q', '-m', 'v1'], repo);
  writeFile(path.join(repo, 'a.mov'), a2);
  sb.mustGit(['add', '.'], repo);
  sb.mustGit(['commit', '-q', '-m', 'v2'], repo);
  sb.mustGit(['remote', 'add', 'origin', fileUrl(`${name}-origin`)], repo);
  sb.mustGit(['push', '-q', 'origin', 'main'], repo);
  return { repo, files: { 'a.mov': a2, 'b.mov': b } };
}

function expectClone(url: string, dir: string, files: Record<string, Buffer>): void {
  const c = cloneInto(sb, url, dir, CFG);
  for (const [f, bytes] of Object.entries(files)) expect(hash(fs.readFileSync(path.join(c, f))), f).toBe(hash(bytes));
}

async function keys(storage: ObjectStorage): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for await (const o of storage.list('v1/')) out.set(o.key, o.size);
  return out;
}

/** Every object of the primary is on the mirror at the same size, and the refs are the same bytes. */
async function expectSame(from: ObjectStorage, to: ObjectStorage): Promise<void> {
  const [a, b] = await Promise.all([keys(from), keys(to)]);
  for (const [k, size] of a) if (k !== 'v1/refs') expect(b.get(k), k).toBe(size);
  expect((await to.getVersioned('v1/refs'))?.body.toString()).toBe((await from.getVersioned('v1/refs'))?.body.toString());
}

/** A storage that stops for good after `n` completed writes: the process was killed there. */
class StopAfter implements ObjectStorage {
  writes = 0;
  constructor(
    private readonly inner: ObjectStorage,
    private readonly n: number,
  ) {}
  get location(): string {
    return this.inner.location;
  }
  private gate<T>(op: () => Promise<T>): Promise<T> {
    if (this.writes >= this.n) return new Promise<T>(() => {});
    return op().then((v) => {
      this.writes++;
      return v;
    });
  }
  checkAccess = (): Promise<void> => this.inner.checkAccess!();
  put = (key: string, body: PutBody, opts?: PutOptions) => this.gate(() => this.inner.put(key, body, opts));
  putIf = (key: string, body: Buffer, expected: { etag: string } | 'absent') => this.gate(() => this.inner.putIf(key, body, expected));
  get = (key: string, range?: { start: number; end: number }) => this.inner.get(key, range);
  getBuffer = (key: string, range?: { start: number; end: number }) => this.inner.getBuffer(key, range);
  head = (key: string) => this.inner.head(key);
  list = (prefix: string) => this.inner.list(prefix);
  delete = (key: string) => this.gate(() => this.inner.delete(key));
  getVersioned = (key: string) => this.inner.getVersioned(key);
}

describe('git dits mirror', () => {
  it('add, ls, sync to a folder and to an s3 bucket; clones of both mirrors have every version; a re-sync copies nothing', async () => {
    const p = primary('basic', 10);
    sb.mustDits(['mirror', 'add', 'nas', fileUrl('basic-nas')], p.repo);
    sb.mustDits(['mirror', 'add', 'cloud', 'dits::s3://mirror/basic'], p.repo);
    expect(sb.mustDits(['mirror', 'ls'], p.repo)).toMatch(/nas\tdits::file:.*\ncloud\tdits::s3:\/\/mirror\/basic/);
    // a dry run changes nothing
    const dry = JSON.parse(sb.mustDits(['mirror', 'sync', 'nas', '--dry-run', '--json'], p.repo));
    expect(dry[0].copied.packs).toBeGreaterThan(1);
    expect(dry[0].refs).toBe('would-update');
    expect(fs.readdirSync(remoteDir('basic-nas'))).toEqual([]);

    const r = sb.dits(['mirror', 'sync', '--json'], p.repo);
    expect(r.status, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout);
    expect(res.map((x: { refs: string }) => x.refs)).toEqual(['updated', 'updated']);
    expect(res[0].copied.packs).toBe(dry[0].copied.packs);
    expect(res[0].copied.manifests).toBeGreaterThanOrEqual(3);
    await expectSame(new FileStorage(remoteDir('basic-origin')), new FileStorage(remoteDir('basic-nas')));
    await expectSame(new FileStorage(remoteDir('basic-origin')), s3Storage('basic'));
    // the push wrote location tables, and the mirrors hold them too (expectSame)
    expect([...(await keys(new FileStorage(remoteDir('basic-origin')))).keys()].filter((k) => k.startsWith('v1/locations/')).length).toBeGreaterThanOrEqual(3);
    expectClone(fileUrl('basic-nas'), 'basic-clone-nas', p.files);
    expectClone('dits::s3://mirror/basic', 'basic-clone-s3', p.files);
    // older versions too
    const c = path.join(sb.dir, 'basic-clone-s3');
    sb.mustGit(['checkout', '-q', 'HEAD~1'], c);
    expect(hash(fs.readFileSync(path.join(c, 'a.mov')))).toBe(hash(randomBytesSeeded(400_000, 10)));

    // nothing new: nothing copied, refs unchanged
    const again = JSON.parse(sb.mustDits(['mirror', 'sync', '--json'], p.repo));
    for (const x of again) {
      expect(x.copied).toEqual({ packs: 0, indexes: 0, manifests: 0, bundles: 0, other: 0, bytes: 0 });
      expect(x.refs).toBe('unchanged');
    }
    // and one listing per side: the primary (counted per call) one LIST, the format and the
    // refs; the s3 mirror (its HTTP requests) HEAD bucket, one LIST of v1/, the refs (the CAS
    // log on s3rver: one LIST and one GET of the record, one GET of the recorded CAS mode)
    const counted = new CountingStorage(new FileStorage(remoteDir('basic-origin')), null);
    const mirrorS3 = s3Storage('basic');
    const quiet = await syncMirror(counted, mirrorS3, fast);
    expect(quiet.refs).toBe('unchanged');
    expect(counted.requests).toBe(3);
    expect(Object.fromEntries(mirrorS3.requestCounts)).toEqual({ HeadBucketCommand: 1, ListObjectsV2Command: 2, GetObjectCommand: 2 });
    // a new push: only the new content goes
    writeFile(path.join(p.repo, 'c.mov'), randomBytesSeeded(100_000, 19));
    sb.mustGit(['add', '.'], p.repo);
    sb.mustGit(['commit', '-q', '-m', 'v3'], p.repo);
    sb.mustGit(['push', '-q', 'origin', 'main'], p.repo);
    const third = JSON.parse(sb.mustDits(['mirror', 'sync', 'cloud', '--json'], p.repo));
    expect(third[0].copied.manifests).toBe(1);
    expect(third[0].copied.bundles).toBe(1);
    expect(third[0].refs).toBe('updated');
    expectClone('dits::s3://mirror/basic', 'basic-clone-s3-2', { ...p.files, 'c.mov': randomBytesSeeded(100_000, 19) });

    sb.mustDits(['mirror', 'remove', 'nas'], p.repo);
    expect(sb.mustDits(['mirror', 'ls'], p.repo)).not.toMatch(/nas/);
    const bad = sb.dits(['mirror', 'sync', 'nas'], p.repo);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/no mirror named 'nas'/);
    expect(bad.stderr).not.toMatch(/\n\s+at /);
  });

  it('a sync stopped after any write leaves a consistent older mirror; the next one completes, copying nothing twice', async () => {
    const p = primary('killed', 30);
    const from = new FileStorage(remoteDir('killed-origin'));
    fs.mkdirSync(remoteDir('killed-count'), { recursive: true });
    const total = await syncMirror(from, new FileStorage(remoteDir('killed-count')), { ...fast, concurrency: 1 });
    const writes = total.copied.indexes + total.copied.packs + total.copied.manifests + total.copied.bundles + total.copied.other + 1;
    for (const n of [1, 2, 3, Math.floor(writes / 2), writes - 2, writes - 1]) {
      const dir = `killed-at-${n}`;
      const stopped = new StopAfter(s3Storage(dir), n);
      void syncMirror(from, stopped, { ...fast, concurrency: 1 });
      while (stopped.writes < n) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, 50));
      // the stopped mirror is a remote: no refs (an empty one) or refs whose content is all there
      const refs = await s3Storage(dir).getVersioned('v1/refs');
      expect(refs, `stopped after ${n}`).toBeNull();
      const rest = await syncMirror(from, s3Storage(dir), fast);
      expect(rest.refs).toBe('updated');
      // nothing twice: what the first run wrote plus what the second wrote is the whole
      const second = rest.copied.packs + rest.copied.indexes + rest.copied.manifests + rest.copied.bundles + rest.copied.other + 1;
      expect(second + n, `stopped after ${n}`).toBe(writes);
      await expectSame(from, s3Storage(dir));
    }
    expectClone(`dits::s3://mirror/killed-at-${writes - 1}`, 'killed-clone', p.files);
  });

  it('a sync process killed (SIGKILL) at several moments, mid-upload included: the next run completes, the mirror verifies in full', { timeout: 180_000 }, async () => {
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 4; i++) files[`f${i}.mov`] = randomBytesSeeded(3_000_000, 170 + i);
    const repo = sb.repo('sigkill', { track: ['*.mov'], config: CFG, files });
    sb.mustGit(['add', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', 'big'], repo);
    sb.mustGit(['remote', 'add', 'origin', fileUrl('sigkill-origin')], repo);
    sb.mustGit(['push', '-q', 'origin', 'main'], repo);
    sb.mustDits(['mirror', 'add', 'cloud', 'dits::s3://mirror2/sigkill'], repo);
    const from = new FileStorage(remoteDir('sigkill-origin'));
    const primaryKeys = await keys(from);
    // each run is killed once the mirror holds more objects than before: the kills land
    // further and further into the sync (mid-upload wherever an upload is running then)
    const kills: string[] = [];
    for (const target of [1, 8, 20, 35, 50, 70, 90]) {
      const child = spawn(DITS_BIN, ['mirror', 'sync', 'cloud'], { cwd: repo, env: sb.env, stdio: 'ignore' });
      let exitedNow = false;
      const exited = new Promise((r) => child.once('exit', () => r((exitedNow = true))));
      while (!exitedNow && (await keys(s3Storage('sigkill', 'mirror2'))).size < target) await new Promise((r) => setTimeout(r, 5));
      child.kill('SIGKILL');
      await exited;
      // whatever the moment: refs absent, or equal to the primary's with all their content
      const refs = await s3Storage('sigkill', 'mirror2').getVersioned('v1/refs');
      if (refs) {
        await expectSame(from, s3Storage('sigkill', 'mirror2'));
        break;
      }
      const now = await keys(s3Storage('sigkill', 'mirror2'));
      kills.push(`${now.size}/${primaryKeys.size}`);
      // an .idx is only ever written after its whole pack
      for (const k of now.keys()) if (k.endsWith('.idx')) expect(now.get(k.replace(/\.idx$/, '.pack')), k).toBe(primaryKeys.get(k.replace(/\.idx$/, '.pack')));
    }
    expect(kills.length).toBeGreaterThan(1); // at least two kills before the refs
    const r = JSON.parse(sb.mustDits(['mirror', 'sync', 'cloud', '--json'], repo))[0];
    expect(['updated', 'unchanged']).toContain(r.refs);
    expect(r.notCopied).toEqual([]);
    await expectSame(from, s3Storage('sigkill', 'mirror2'));
    expect(sb.mustDits(['fsck', '--remote', 'cloud', '--full'], repo)).toMatch(/No problems found/);
    expectClone('dits::s3://mirror2/sigkill', 'sigkill-clone', files);
  });

  it('a mirror pushed to directly (ahead of the primary) keeps its refs, and the sync says so', async () => {
    const p = primary('ahead', 190);
    sb.mustDits(['mirror', 'add', 'm', fileUrl('ahead-m')], p.repo);
    sb.mustDits(['mirror', 'sync', 'm'], p.repo);
    const c = cloneInto(sb, fileUrl('ahead-m'), 'ahead-clone', CFG);
    writeFile(path.join(c, 'new.mov'), randomBytesSeeded(50_000, 199));
    sb.mustGit(['add', '.'], c);
    sb.mustGit(['commit', '-q', '-m', 'on the mirror'], c);
    sb.mustGit(['push', '-q', 'origin', 'main'], c);
    const to = new FileStorage(remoteDir('ahead-m'));
    const before = (await to.getVersioned('v1/refs'))!.body;
    const r = sb.dits(['mirror', 'sync', 'm'], p.repo);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/refs NOT updated: the mirror holds git data the primary does not/);
    expect((await to.getVersioned('v1/refs'))!.body.equals(before)).toBe(true);
  });

  it('an unreachable mirror fails with a clear status and leaves the primary untouched', () => {
    const p = primary('down', 50);
    sb.mustDits(['mirror', 'add', 'gone', 'dits::s3://mirror/down'], p.repo);
    const before = fs.readdirSync(remoteDir('down-origin'), { recursive: true }).sort();
    sb.mustGit(['config', 'dits.s3.endpoint', 'http://127.0.0.1:9'], p.repo);
    const down = sb.dits(['mirror', 'sync', 'gone'], p.repo);
    expect(down.status, down.stderr).toBe(1);
    expect(down.stderr).toMatch(/the mirror at s3:\/\/mirror\/down\/? cannot be reached: .*ECONNREFUSED/);
    expect(down.stderr).toMatch(/nothing was changed on the primary/);
    expect(down.stderr).not.toMatch(/\n\s+at /);
    expect(fs.readdirSync(remoteDir('down-origin'), { recursive: true }).sort()).toEqual(before);
  });

  it('a corrupt pack on the primary is not copied and is named; a frozen one is listed; the rest is copied and the refs stay back', async () => {
    const p = primary('corrupt', 70);
    const from = new FileStorage(remoteDir('corrupt-origin'));
    const packs = [...(await keys(from)).keys()].filter((k) => k.endsWith('.pack'));
    const bad = packs[0]!;
    const file = path.join(remoteDir('corrupt-origin'), bad);
    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 10] ^= 0xff;
    fs.writeFileSync(file, bytes);
    sb.mustDits(['mirror', 'add', 'm', fileUrl('corrupt-m')], p.repo);
    const r = sb.dits(['mirror', 'sync', 'm'], p.repo);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`not copied (corrupt): ${bad}`);
    expect(r.stdout).toMatch(/refs NOT updated/);
    const to = new FileStorage(remoteDir('corrupt-m'));
    const mirrored = await keys(to);
    expect(mirrored.has(bad)).toBe(false);
    expect(mirrored.has(bad.replace(/\.pack$/, '.idx'))).toBe(false);
    for (const k of packs.slice(1)) expect(mirrored.has(k), k).toBe(true);
    expect(await to.getVersioned('v1/refs')).toBeNull();
    // no location table on the mirror names a pack it lacks (those naming the corrupt one wait)
    const tables = [...mirrored.keys()].filter((k) => k.startsWith('v1/locations/'));
    expect(tables.length).toBeGreaterThan(0);
    for (const k of tables) for (const id of locationTablePackIds(await to.getBuffer(k))) expect(mirrored.has(`v1/packs/${id}.pack`), k).toBe(true);

    // frozen: the primary answers storage-frozen for one pack
    primary('frozen', 80);
    const good = new FileStorage(remoteDir('frozen-origin'));
    const frozenKey = [...(await keys(good)).keys()].find((k) => k.endsWith('.pack'))!;
    const frozen = Object.assign(Object.create(good) as FileStorage, {
      get: (key: string, range?: { start: number; end: number }) => (key === frozenKey ? Promise.reject(new FrozenObjectError(key, 'DEEP_ARCHIVE')) : good.get(key, range)),
    });
    fs.mkdirSync(remoteDir('frozen-m'), { recursive: true });
    const res = await syncMirror(frozen, new FileStorage(remoteDir('frozen-m')), fast);
    expect(res.notCopied).toEqual([{ key: frozenKey, reason: 'frozen', message: expect.stringMatching(/frozen \(DEEP_ARCHIVE\)/) }]);
    expect(res.refs).toBe('held-back');
    expect(res.copied.packs).toBeGreaterThan(0);
  });

  it('two syncs at once both finish; the mirror equals the primary', async () => {
    const p = primary('twice', 90);
    const from = new FileStorage(remoteDir('twice-origin'));
    const [a, b] = await Promise.all([syncMirror(from, s3Storage('twice', 'mirror2'), fast), syncMirror(from, s3Storage('twice', 'mirror2'), fast)]);
    expect([a.refs, b.refs].sort()).toContain('updated');
    expect(a.notCopied.concat(b.notCopied)).toEqual([]);
    await expectSame(from, s3Storage('twice', 'mirror2'));
    expectClone('dits::s3://mirror2/twice', 'twice-clone', p.files);
  });
});

describe('git dits mirror sync --delete', () => {
  it('deletes only records and git data neither side needs; never without --delete; never packs or manifests', async () => {
    const p = primary('del', 150);
    const from = new FileStorage(remoteDir('del-origin'));
    await from.put('v1/access/20261206/0123456789abcdef.json', Buffer.from('{"v":1}'));
    sb.mustDits(['mirror', 'add', 'm', fileUrl('del-m')], p.repo);
    sb.mustDits(['mirror', 'sync', 'm'], p.repo);
    const to = new FileStorage(remoteDir('del-m'));
    expect((await keys(to)).has('v1/access/20261206/0123456789abcdef.json')).toBe(true);
    // the primary folds the record away; the mirror holds a stray bundle and a pack of its own
    await from.delete('v1/access/20261206/0123456789abcdef.json');
    const strayBundle = `v1/git/${'a'.repeat(64)}.bundle`;
    await to.put(strayBundle, Buffer.from('x'));
    const ownPack = [...(await keys(to)).keys()].find((k) => k.endsWith('.pack'))!;
    const ownCopy = ownPack.replace(/[0-9a-f]{64}/, 'b'.repeat(64));
    fs.copyFileSync(path.join(remoteDir('del-m'), ownPack), path.join(remoteDir('del-m'), ownCopy));

    const plain = JSON.parse(sb.mustDits(['mirror', 'sync', 'm', '--json'], p.repo))[0];
    expect(plain.deleted).toEqual([]);
    expect((await keys(to)).has('v1/access/20261206/0123456789abcdef.json')).toBe(true);
    const dry = JSON.parse(sb.mustDits(['mirror', 'sync', 'm', '--delete', '--dry-run', '--json'], p.repo))[0];
    expect(dry.deleted.sort()).toEqual(['v1/access/20261206/0123456789abcdef.json', strayBundle].sort());
    expect((await keys(to)).has(strayBundle)).toBe(true);
    const done = JSON.parse(sb.mustDits(['mirror', 'sync', 'm', '--delete', '--json'], p.repo))[0];
    expect(done.deleted.sort()).toEqual(dry.deleted.sort());
    expect(done.keptOnMirror).toBe(1);
    const after = await keys(to);
    expect(after.has(strayBundle)).toBe(false);
    expect(after.has(ownCopy)).toBe(true);
    expectClone(fileUrl('del-m'), 'del-clone', p.files);
  });
});

describe('git dits fsck --remote', () => {
  it('finds a corrupt, a truncated pack and a missing manifest on a mirror, and repairs them from the primary after verifying its copy', async () => {
    const p = primary('fsck', 110);
    sb.mustDits(['mirror', 'add', 'nas', fileUrl('fsck-nas')], p.repo);
    sb.mustDits(['mirror', 'sync', 'nas'], p.repo);
    expect(sb.mustDits(['fsck', '--remote', 'nas', '--full'], p.repo)).toMatch(/No problems found/);
    const to = new FileStorage(remoteDir('fsck-nas'));
    const all = [...(await keys(to)).keys()];
    const packs = all.filter((k) => k.endsWith('.pack'));
    const [flipped, cut, third] = packs;
    const badIdx = third!.replace(/\.pack$/, '.idx');
    fs.writeFileSync(path.join(remoteDir('fsck-nas'), badIdx), 'not an index');
    const flip = path.join(remoteDir('fsck-nas'), flipped!);
    const bytes = fs.readFileSync(flip);
    bytes[Math.floor(bytes.length / 2)] ^= 0x01;
    fs.writeFileSync(flip, bytes);
    fs.truncateSync(path.join(remoteDir('fsck-nas'), cut!), 1000);
    const manifest = all.find((k) => k.startsWith('v1/objects/'))!;
    fs.rmSync(path.join(remoteDir('fsck-nas'), manifest));

    // a sample of every chunk finds the flipped byte too; --full names each problem
    const sampled = sb.dits(['fsck', '--remote', 'nas', '--sample', '100000', '--json'], p.repo);
    expect(sampled.status).toBe(1);
    expect(JSON.parse(sampled.stdout).problems.map((x: { kind: string; key: string }) => `${x.kind} ${x.key}`).sort()).toEqual(
      [`pack-corrupt ${flipped}`, `pack-size ${cut}`, `manifest-missing ${manifest}`, `index-corrupt ${badIdx}`].sort(),
    );
    const full = sb.dits(['fsck', '--remote', 'nas', '--full'], p.repo);
    expect(full.status).toBe(1);
    expect(full.stderr).toContain(`pack-corrupt: ${flipped}`);
    expect(full.stderr).toContain(`pack-size: ${cut}: 1000 bytes`);
    expect(full.stderr).toContain(`manifest-missing: ${manifest}`);
    expect(full.stderr).toMatch(/--repair-from/);

    // a source whose copy is damaged too is refused, and the damaged object stays in place
    fs.mkdirSync(remoteDir('fsck-bad'), { recursive: true });
    fs.cpSync(remoteDir('fsck-nas'), remoteDir('fsck-bad'), { recursive: true });
    sb.mustDits(['mirror', 'add', 'bad', fileUrl('fsck-bad')], p.repo);
    const refused = sb.dits(['fsck', '--remote', 'nas', '--full', '--repair-from', 'bad'], p.repo);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain(`NOT repaired: ${flipped}`);
    expect(fs.readFileSync(flip).equals(bytes)).toBe(true);

    const fixed = sb.dits(['fsck', '--remote', 'nas', '--full', '--repair-from', 'origin'], p.repo);
    expect(fixed.status, fixed.stderr).toBe(0);
    expect(fixed.stdout).toContain(`repaired: ${flipped}`);
    expect(fixed.stdout).toContain(`repaired: ${cut}`);
    expect(fixed.stdout).toContain(`repaired: ${badIdx}`);
    expect(fixed.stdout).toMatch(/All problems repaired/);
    await expectSame(new FileStorage(remoteDir('fsck-origin')), to);
    expect(sb.mustDits(['fsck', '--remote', 'nas', '--full'], p.repo)).toMatch(/No problems found/);
    expectClone(fileUrl('fsck-nas'), 'fsck-clone', p.files);
  });

  it('a corrupt pack on an s3 mirror is found by a sample and replaced from the primary', async () => {
    const p = primary('fsck-s3', 130);
    sb.mustDits(['mirror', 'add', 'cloud', 'dits::s3://mirror2/fsck'], p.repo);
    sb.mustDits(['mirror', 'sync', 'cloud'], p.repo);
    const to = s3Storage('fsck', 'mirror2');
    const pack = [...(await keys(to)).keys()].find((k) => k.endsWith('.pack'))!;
    const good = await to.getBuffer(pack);
    const bad = Buffer.from(good);
    bad[bad.length - 5] ^= 0x80;
    await to.put(pack, bad);
    const r = sb.dits(['fsck', '--remote', 'cloud', '--sample', '100000'], p.repo);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`pack-corrupt: ${pack}`);
    const fixed = sb.dits(['fsck', '--remote', 'cloud', '--full', '--repair-from', 'origin', '--json'], p.repo);
    expect(fixed.status, fixed.stderr).toBe(0);
    expect(JSON.parse(fixed.stdout).repairs).toEqual([{ key: pack, ok: true, detail: expect.stringMatching(/replaced from/) }]);
    expect((await to.getBuffer(pack)).equals(good)).toBe(true);
  });
});

