/**
 * The lock API speaks the git-lfs locking protocol: the real `git lfs` client locks,
 * lists, verifies and unlocks against the server, taking its token from a git
 * credential helper as HTTP Basic. Skipped where git-lfs is not installed.
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addUser, createRepo, createToken, grant, listAudit } from './admin.js';
import { startServer, type RunningServer } from './main.js';

const hasGitLfs = spawnSync('git', ['lfs', 'version']).status === 0;

describe.skipIf(!hasGitLfs)('git lfs against the lock API', () => {
  let server: RunningServer;
  let dir: string;
  const tokens: Record<string, string> = {};

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dits-lfs-'));
    server = await startServer({ dataDir: join(dir, 'data') });
    createRepo(server.db, 'team/film');
    for (const name of ['alice', 'bob']) {
      addUser(server.db, name);
      grant(server.db, name, 'team/film', 'write');
      tokens[name] = createToken(server.db, name, 'lfs');
    }
  });
  afterAll(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  // git lfs talks to this process's server: run it asynchronously, never with spawnSync
  function clone(user: string): (...args: string[]) => Promise<{ status: number | null; out: string }> {
    const repo = join(dir, user);
    mkdirSync(repo);
    const env = { ...process.env, HOME: dir, GIT_CONFIG_NOSYSTEM: '1', GIT_TERMINAL_PROMPT: '0' };
    const git = (...args: string[]) => execFileSync('git', args, { cwd: repo, env, encoding: 'utf8' });
    git('init', '-q');
    git('config', 'user.email', `${user}@example.com`);
    git('config', 'user.name', user);
    git('remote', 'add', 'origin', `${server.url}/team/film`);
    git('config', 'lfs.url', `${server.url}/team/film`);
    git('config', 'credential.helper', `!f() { echo username=${user}; echo password=${tokens[user]}; }; f`);
    writeFileSync(join(repo, 'cut.prproj'), 'project');
    git('add', 'cut.prproj');
    git('commit', '-qm', 'project');
    return (...args: string[]) =>
      new Promise((resolve) => {
        execFile('git', args, { cwd: repo, env, encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => {
          resolve({ status: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, out: stdout + stderr });
        });
      });
  }

  it('locks, refuses a second locker, lists, verifies and unlocks', async () => {
    const alice = clone('alice');
    const bob = clone('bob');
    expect(await alice('lfs', 'lock', 'cut.prproj')).toMatchObject({ status: 0, out: expect.stringContaining('Locked cut.prproj') });
    const refused = await bob('lfs', 'lock', 'cut.prproj');
    expect(refused.status).not.toBe(0);
    expect(refused.out).toContain('already locked by alice');
    expect((await bob('lfs', 'locks')).out).toMatch(/cut\.prproj\s+alice\s+ID:\d+/);
    expect((await alice('lfs', 'locks', '--verify')).out).toMatch(/O cut\.prproj\s+alice/);
    const json = JSON.parse((await bob('lfs', 'locks', '--json')).out) as { path: string; owner: { name: string } }[];
    expect(json.map((l) => [l.path, l.owner.name])).toEqual([['cut.prproj', 'alice']]);
    expect((await bob('lfs', 'unlock', 'cut.prproj')).status).not.toBe(0);
    expect(await alice('lfs', 'unlock', 'cut.prproj')).toMatchObject({ status: 0, out: expect.stringContaining('Unlocked cut.prproj') });
    expect(JSON.parse((await bob('lfs', 'locks', '--json')).out)).toEqual([]);
    expect(listAudit(server.db, { repo: 'team/film' }).filter((e) => e.action.startsWith('lock.')).map((e) => `${e.actor} ${e.action}`).reverse()).toEqual([
      'alice lock.create',
      'bob lock.denied',
      'bob lock.unlock-denied',
      'alice lock.unlock',
    ]);
  });
});
