/**
 * Tier storages under real git: a dits::s3 remote behind the Glacier front (in its own
 * process) whose packs change class in place and still clone byte for byte, with no
 * object deleted or uploaded again; and a dits::file remote whose packs moved to tier
 * folders (one an archive with a restore step) that a clone with dits.tier.folder.* reads;
 * and `git dits serve --tier-folder` serving a repository whose packs moved to its tier folders.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { blake3 } from '@napi-rs/blake-hash';
import { DITS_BIN, GitSandbox, SMALL_CHUNKS, cloneInto, randomBytesSeeded } from './helpers/git-env.js';
import { createStorageBackend } from '../server/storage-backend.js';
import { startGlacierFrontProcess, type GlacierFrontProcess } from './helpers/glacier-front-process.js';
import { S3Storage } from '../src/transfer/s3-storage.js';
import { TieredFolderStorage } from '../src/tier/tier-folders.js';
import type { ObjectStorage } from '../src/transfer/object-storage.js';

let sb: GitSandbox;
let front: GlacierFrontProcess;
beforeAll(async () => {
  sb = new GitSandbox('dits-tier-e2e-');
  front = await startGlacierFrontProcess(['media']);
  Object.assign(sb.env, {
    AWS_ACCESS_KEY_ID: front.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: front.credentials.secretAccessKey,
    AWS_REGION: 'us-east-1',
  });
  sb.mustGit(['config', '--global', 'dits.s3.endpoint', front.endpoint], sb.dir);
});
afterAll(async () => {
  await front?.close();
  sb?.cleanup();
});

const hash = (f: string): string => blake3(fs.readFileSync(f)).toString('hex');

async function packsOf(storage: ObjectStorage): Promise<{ key: string; size: number; storageClass?: string }[]> {
  const out = [];
  for await (const o of storage.list('v1/packs/')) if (o.key.endsWith('.pack')) out.push(o);
  return out;
}

async function everything(storage: ObjectStorage): Promise<string[]> {
  const out: string[] = [];
  for await (const o of storage.list('')) out.push(o.key);
  return out.sort();
}

function pushRepo(name: string, url: string, config: Record<string, string> = {}): string {
  const repo = sb.repo(name, { track: ['*.mov'], config: { ...SMALL_CHUNKS, ...config }, files: { 'a.mov': randomBytesSeeded(700_000, 3), 'b.mov': randomBytesSeeded(400_000, 4), 'notes.txt': 'n\n' } });
  sb.mustGit(['add', '.'], repo);
  sb.mustGit(['commit', '-q', '-m', 'one'], repo);
  sb.mustGit(['remote', 'add', 'origin', url], repo);
  const push = sb.git(['push', '-q', '-u', 'origin', 'main'], repo);
  expect(push.status, push.stderr).toBe(0);
  return repo;
}

describe('tier storages end to end', () => {
  it('S3 behind the Glacier front: packs change class in place (0 deletes, 0 bytes uploaded) and clone byte for byte from an instant class', async () => {
    const repo = pushRepo('s3-src', 'dits::s3://media/proj');
    const storage = new S3Storage({ bucket: 'media', prefix: 'proj', endpoint: front.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: front.credentials, tier: { provider: 'aws' } });
    const packs = await packsOf(storage);
    expect(packs.length).toBeGreaterThan(2);
    const before = await everything(storage);
    await front.resetCounts();
    for (const p of packs) await storage.setStorageClass(p.key, 'GLACIER_IR', { size: p.size });
    const counts = await front.counts();
    expect(counts).toMatchObject({ copies: packs.length, deletes: 0, puts: 0, uploadParts: 0, bytesUploaded: 0 });
    expect(await everything(storage)).toEqual(before);
    expect((await packsOf(storage)).every((p) => p.storageClass === 'GLACIER_IR')).toBe(true);
    expect(await front.classOf(`proj/${packs[0]!.key}`, 'media')).toBe('GLACIER_IR');
    // manifests, indexes and git data stayed STANDARD
    for await (const o of storage.listTiered('v1/')) if (!o.key.endsWith('.pack')) expect(o.storageClass).toBe('STANDARD');

    // a restore runs until the front's clock passes its delay, and expires Days later
    await storage.setStorageClass(packs[0]!.key, 'DEEP_ARCHIVE', { size: packs[0]!.size });
    await front.setRestoreDelay(3_600_000);
    expect(await storage.requestRestore(packs[0]!.key, { days: 1, tier: 'bulk' })).toBe('started');
    expect((await storage.tierState(packs[0]!.key))?.restore).toEqual({ ongoing: true });
    await front.advanceClock(3_600_000);
    expect((await storage.tierState(packs[0]!.key))?.restore?.ongoing).toBe(false);
    await front.advanceClock(86_400_000);
    expect((await storage.tierState(packs[0]!.key))?.restore).toBeNull();
    await front.setClass(`proj/${packs[0]!.key}`, 'GLACIER_IR', 'media');

    const c = cloneInto(sb, 'dits::s3://media/proj', 's3-clone', SMALL_CHUNKS);
    for (const f of ['a.mov', 'b.mov', 'notes.txt']) expect(hash(path.join(c, f))).toBe(hash(path.join(repo, f)));
    expect(sb.status(c)).toBe('');
  });

  it('a file remote with tier folders: packs moved to warm and to an archive folder clone once restored', async () => {
    const hot = path.join(sb.dir, 'remotes', 'folders');
    const warm = path.join(sb.dir, 'tier-warm');
    const deep = path.join(sb.dir, 'tier-deep');
    fs.mkdirSync(warm, { recursive: true });
    fs.mkdirSync(deep, { recursive: true });
    const tierConfig = { 'dits.tier.folder.warm': warm, 'dits.tier.folder.deep': deep, 'dits.tier.archive': 'deep' };
    const repo = pushRepo('file-src', `dits::file://${hot}`, tierConfig);
    const storage = new TieredFolderStorage(hot, { folders: { warm, deep }, archive: ['deep'] });
    const packs = await packsOf(storage);
    expect(packs.length).toBeGreaterThan(2);
    const before = await everything(storage);
    const [first, ...rest] = packs;
    await storage.setStorageClass(first!.key, 'warm', { size: first!.size });
    for (const p of rest) await storage.setStorageClass(p.key, 'deep', { size: p.size });
    expect(await everything(storage)).toEqual(before);
    expect(fs.existsSync(path.join(hot, 'v1/packs'))).toBe(true);
    expect(fs.readdirSync(path.join(hot, 'v1/packs'), { recursive: true }).filter((f) => String(f).endsWith('.pack'))).toEqual([]);
    for (const p of rest) expect(await storage.requestRestore(p.key, { days: 1, tier: 'standard' })).toBe('started');

    const c = cloneInto(sb, `dits::file://${hot}`, 'file-clone', { ...SMALL_CHUNKS, ...tierConfig });
    for (const f of ['a.mov', 'b.mov', 'notes.txt']) expect(hash(path.join(c, f))).toBe(hash(path.join(repo, f)));
    expect(sb.status(c)).toBe('');
  });

  it('git dits serve --tier-folder: remembered in the data dir, and a clone through the server reads packs moved to its tier folders', async () => {
    const data = path.join(sb.dir, 'server-data');
    const warm = path.join(sb.dir, 'srv-warm');
    const deep = path.join(sb.dir, 'srv-deep');
    fs.mkdirSync(warm);
    const admin = (args: string[]): string => sb.mustDits(['server', ...args, '--data', data], sb.dir);
    admin(['user', 'add', 'ci']);
    admin(['repo', 'create', 'team/film']);
    admin(['grant', 'ci', 'team/film', 'write']);
    const token = (JSON.parse(admin(['token', 'create', 'ci', 'tiers', '--json'])) as { token: string }).token;
    const missing = sb.dits(['serve', '--data', data, '--port', '0', '--tier-folder', `warm=${warm},deep=${deep}`, '--tier-archive', 'deep'], sb.dir);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/the deep tier folder .* does not exist/);
    expect(fs.existsSync(path.join(data, 'tier-folders.json'))).toBe(false);
    fs.mkdirSync(deep);
    const server = spawn(DITS_BIN, ['serve', '--data', data, '--port', '0', '--quiet', '--tier-folder', `warm=${warm},deep=${deep}`, '--tier-archive', 'deep'], { env: sb.env, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = '';
        server.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /listening on (http:\/\/\S+)/.exec(out);
          if (m) resolve(m[1]!);
        });
        server.once('exit', (code) => reject(new Error(`git dits serve exited (${code})`)));
      });
      expect(JSON.parse(fs.readFileSync(path.join(data, 'tier-folders.json'), 'utf8'))).toEqual({ folders: { warm, deep }, archive: ['deep'] });
      const env = { DITS_TOKEN: token };
      Object.assign(sb.env, env);
      const repo = pushRepo('srv-src', `dits::${url}/team/film`);
      // the data dir's own settings, as every process of it reads them
      const storage = (await createStorageBackend({ dataDir: data }).forRepo('team/film')) as TieredFolderStorage;
      expect(storage).toBeInstanceOf(TieredFolderStorage);
      const packs = await packsOf(storage);
      expect(packs.length).toBeGreaterThan(2);
      const [first, ...rest] = packs;
      await storage.setStorageClass(first!.key, 'warm', { size: first!.size });
      for (const p of rest) await storage.setStorageClass(p.key, 'deep', { size: p.size });
      expect(fs.existsSync(path.join(warm, 'team/film', first!.key))).toBe(true);
      for (const p of rest) await storage.requestRestore(p.key, { days: 1, tier: 'standard' });
      const c = cloneInto(sb, `dits::${url}/team/film`, 'srv-clone', SMALL_CHUNKS);
      for (const f of ['a.mov', 'b.mov', 'notes.txt']) expect(hash(path.join(c, f))).toBe(hash(path.join(repo, f)));
      expect(sb.status(c)).toBe('');
    } finally {
      server.kill('SIGTERM');
      await new Promise((r) => server.once('exit', r));
      delete sb.env.DITS_TOKEN;
    }
  });
});
