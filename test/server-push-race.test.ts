/**
 * Issue 6: 50 clients pushing 50 small commits to 50 branches at once through a real
 * `git dits serve` process: every push succeeds and no ref update is lost.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import { DITS_BIN, GitSandbox, randomBytesSeeded, writeFile } from './helpers/git-env.js';

const CLIENTS = 50;
let sb: GitSandbox;
let server: ChildProcessWithoutNullStreams;
let url: string;

beforeAll(async () => {
  sb = new GitSandbox('dits-race-');
  const data = path.join(sb.dir, 'server-data');
  const admin = (args: string[]): string => sb.mustDits(['server', ...args, '--data', data], sb.dir);
  admin(['user', 'add', 'ci']);
  admin(['repo', 'create', 'team/race']);
  admin(['grant', 'ci', 'team/race', 'write']);
  sb.env.DITS_TOKEN = (JSON.parse(admin(['token', 'create', 'ci', 'race', '--json'])) as { token: string }).token;
  server = spawn(DITS_BIN, ['serve', '--data', data, '--port', '0', '--quiet'], { env: sb.env, stdio: ['pipe', 'pipe', 'pipe'] });
  url = await new Promise<string>((resolve, reject) => {
    let out = '';
    server.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    server.once('exit', (code) => reject(new Error(`git dits serve exited (${code})`)));
  });
});

afterAll(async () => {
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
  }
  sb?.cleanup();
});

describe('many concurrent pushes through the server', () => {
  it(`${CLIENTS} clients push ${CLIENTS} branches at once: all succeed, none lost`, { timeout: 300_000 }, async () => {
    const repo = sb.repo('race', { track: ['*.mov'], config: { 'dits.chunkMin': '1024', 'dits.chunkAvg': '4096', 'dits.chunkMax': '16384' }, files: { 'base.mov': randomBytesSeeded(50_000, 1) } });
    sb.mustGit(['add', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', 'base'], repo);
    sb.mustGit(['remote', 'add', 'origin', `dits::${url}/team/race`], repo);
    sb.mustGit(['push', '-q', 'origin', 'main'], repo);
    const expected = new Map<string, string>();
    for (let i = 0; i < CLIENTS; i++) {
      sb.mustGit(['checkout', '-q', '-b', `b${i}`, 'main'], repo);
      writeFile(path.join(repo, `c${i}.mov`), randomBytesSeeded(20_000, 100 + i));
      sb.mustGit(['add', `c${i}.mov`], repo);
      sb.mustGit(['commit', '-q', '-m', `client ${i}`], repo);
      expected.set(`refs/heads/b${i}`, sb.mustGit(['rev-parse', 'HEAD'], repo).trim());
    }
    const push = (i: number): Promise<{ code: number; err: string }> =>
      new Promise((resolve) => {
        const p = spawn('git', ['push', '-q', 'origin', `b${i}:b${i}`], { cwd: repo, env: sb.env });
        let err = '';
        p.stderr.on('data', (d: Buffer) => (err += d.toString()));
        p.on('close', (code) => resolve({ code: code ?? -1, err }));
      });
    const results = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => push(i)));
    const failed = results.filter((r) => r.code !== 0);
    expect(failed.map((f) => f.err)).toEqual([]);
    const remote = new Map(
      sb
        .mustGit(['ls-remote', 'origin'], repo)
        .trim()
        .split('\n')
        .map((l) => l.split('\t').reverse() as [string, string]),
    );
    for (const [ref, oid] of expected) expect(remote.get(ref), ref).toBe(oid);
    // And the content of one of them round-trips through a clone.
    const clone = path.join(sb.dir, 'race-clone');
    sb.mustGit(['clone', '-q', '-b', 'b7', `dits::${url}/team/race`, clone], sb.dir);
    expect(sb.status(clone)).toBe('');
  });
});
