import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileStorage } from './file-storage.js';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'dits-fs-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function plantLock(key: string, holder: { owner: string; host: string; pid: number }): Promise<string> {
  const file = path.join(root, ...key.split('/'));
  const lock = path.join(path.dirname(file), `.dits-lock.${path.basename(file)}`);
  await mkdir(path.dirname(lock), { recursive: true });
  await writeFile(lock, JSON.stringify({ ...holder, time: 0 }));
  return lock;
}

describe('FileStorage locks', () => {
  it('breaks a lock left by a dead process on this host at once', async () => {
    const storage = new FileStorage(root, { host: 'this-host', staleLockMs: 3_600_000 });
    await plantLock('refs/main', { owner: 'dead', host: 'this-host', pid: 2 ** 22 + 12345 });
    const result = await storage.putIf('refs/main', Buffer.from('c1'), 'absent');
    expect(result.ok).toBe(true);
    expect((await storage.getVersioned('refs/main'))?.body.toString()).toBe('c1');
  });

  it('waits on a live lock from another host until it is stale, by its own clock', async () => {
    let now = 0;
    const sleeps: number[] = [];
    const storage = new FileStorage(root, {
      host: 'this-host',
      staleLockMs: 1000,
      now: () => now,
      sleep: async (ms) => {
        sleeps.push(ms);
        now += ms;
      },
    });
    await plantLock('refs/main', { owner: 'elsewhere', host: 'other-host', pid: process.pid });
    const result = await storage.putIf('refs/main', Buffer.from('c1'), 'absent');
    expect(result.ok).toBe(true);
    const waited = sleeps.reduce((a, b) => a + b, 0);
    expect(waited).toBeGreaterThanOrEqual(1000);
    expect(waited).toBeLessThan(1200);
  });

  it('leaves no lock, temp or draft files behind', async () => {
    const storage = new FileStorage(root);
    await storage.putIf('refs/a', Buffer.from('1'), 'absent');
    await storage.put('objects/x', Buffer.from('2'));
    expect((await readdir(path.join(root, 'refs'))).sort()).toEqual(['a']);
    expect(await readdir(path.join(root, '.dits-tmp'))).toEqual([]);
  });

  it('checkAccess names a missing remote folder', async () => {
    await new FileStorage(root).checkAccess();
    const missing = new FileStorage(path.join(root, 'no-such-dir'));
    await expect(missing.checkAccess()).rejects.toMatchObject({ code: 'storage-root-missing' });
  });

  it('a key cannot also be a folder', async () => {
    const storage = new FileStorage(root);
    await storage.put('a/b/c', Buffer.from('1'));
    await expect(storage.put('a/b', Buffer.from('2'))).rejects.toMatchObject({ code: 'storage-key-conflict' });
  });
});
