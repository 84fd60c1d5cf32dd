/**
 * Remotes end to end: real git push/fetch/clone through git-remote-dits to a local
 * directory and to s3rver on 127.0.0.1.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { blake3 } from '@napi-rs/blake-hash';
import { GitSandbox, SMALL_CHUNKS, cloneInto, randomBytesSeeded, writeFile } from './helpers/git-env.js';
import { startS3rverProcess, type S3Process } from './helpers/s3rver-process.js';

let sb: GitSandbox;
let s3: S3Process;
beforeAll(async () => {
  sb = new GitSandbox('dits-remote-');
  s3 = await startS3rverProcess(['media']);
  Object.assign(sb.env, {
    AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey,
    AWS_REGION: 'us-east-1',
  });
  sb.mustGit(['config', '--global', 'dits.s3.endpoint', s3.endpoint], sb.dir);
});
afterAll(async () => {
  await s3?.close();
  sb?.cleanup();
});

const CFG = SMALL_CHUNKS;
const hash = (f: string): string => blake3(fs.readFileSync(f)).toString('hex');

const clone = (url: string, dir: string, extra: string[] = []): string => cloneInto(sb, url, dir, CFG, extra);

for (const kind of ['file', 's3'] as const) {
  describe(`${kind} remote`, () => {
    const url = (name: string): string => (kind === 'file' ? `dits::file://${path.join(sb.dir, 'remotes', name)}` : `dits::s3://media/${name}`);

    it('push, clone, fetch, pull, tags, delete and force-push behave like git', () => {
      const v1 = randomBytesSeeded(900_000, 1);
      const repo = sb.repo(`${kind}-src`, { track: ['*.mov'], config: CFG, files: { 'clip.mov': v1, 'notes.txt': 'n\n' } });
      sb.mustGit(['add', '.'], repo);
      sb.mustGit(['commit', '-q', '-m', 'one'], repo);
      sb.mustGit(['remote', 'add', 'origin', url('proj')], repo);
      const push = sb.git(['push', '-u', 'origin', 'main'], repo);
      expect(push.status, push.stderr).toBe(0);
      expect(push.stderr).toMatch(/\[new branch\]\s+main -> main/);

      const c = clone(url('proj'), `${kind}-clone`);
      expect(hash(path.join(c, 'clip.mov'))).toBe(hash(path.join(repo, 'clip.mov')));
      expect(sb.status(c)).toBe('');
      expect(sb.mustGit(['ls-remote', 'origin'], c)).toMatch(/refs\/heads\/main/);
      // outside any repository too (the S3 settings come from the global config)
      const outside = sb.git(['ls-remote', url('proj')], sb.dir, undefined, { GIT_CEILING_DIRECTORIES: path.dirname(sb.dir) });
      expect(outside.status, outside.stderr).toBe(0);
      expect(outside.stdout).toMatch(/refs\/heads\/main/);

      // A small edit: only the changed chunks travel.
      const v2 = Buffer.from(v1);
      v2.fill(9, 450_000, 450_100);
      writeFile(path.join(repo, 'clip.mov'), v2);
      sb.mustGit(['commit', '-q', '-am', 'two'], repo);
      const p2 = sb.git(['push'], repo);
      expect(p2.status, p2.stderr).toBe(0);
      const sent = /uploaded 1 file version\(s\), (\d+) new chunk\(s\), (\d+) bytes/.exec(p2.stderr);
      expect(sent, p2.stderr).not.toBeNull();
      expect(Number(sent![2])).toBeLessThan(60_000);

      sb.mustGit(['pull', '-q'], c);
      expect(hash(path.join(c, 'clip.mov'))).toBe(hash(path.join(repo, 'clip.mov')));
      expect(sb.status(c)).toBe('');

      // Tags, delete a branch, force-push.
      sb.mustGit(['tag', '-a', 'v1', '-m', 'v1'], repo);
      sb.mustGit(['push', 'origin', 'v1', 'main:side'], repo);
      expect(sb.mustGit(['ls-remote', '--tags', 'origin'], c)).toMatch(/refs\/tags\/v1/);
      sb.mustGit(['push', 'origin', ':side'], repo);
      expect(sb.mustGit(['ls-remote', 'origin'], c)).not.toMatch(/refs\/heads\/side/);
      sb.mustGit(['commit', '-q', '--amend', '-m', 'two, amended'], repo);
      const nff = sb.git(['push'], repo);
      expect(nff.status).not.toBe(0);
      expect(nff.stderr).toMatch(/rejected|non-fast-forward|fetch first/);
      sb.mustGit(['push', '--force'], repo);
      sb.mustGit(['fetch', '-q'], c);
      expect(sb.mustGit(['log', '-1', '--format=%s', 'origin/main'], c).trim()).toBe('two, amended');
    });

    it('a lazy clone has pointers only, and pull fetches what is asked', () => {
      const files: Record<string, Buffer> = {};
      for (let i = 0; i < 4; i++) files[`f${i}.mov`] = randomBytesSeeded(200_000, 10 + i);
      const repo = sb.repo(`${kind}-lazy-src`, { track: ['*.mov'], config: CFG, files });
      sb.mustGit(['add', '.'], repo);
      sb.mustGit(['commit', '-q', '-m', 'x'], repo);
      sb.mustGit(['remote', 'add', 'origin', url('lazy')], repo);
      sb.mustGit(['push', '-q', 'origin', 'main'], repo);
      const c = clone(url('lazy'), `${kind}-lazy`, ['-c', 'dits.fetchMode=lazy']);
      expect(fs.statSync(path.join(c, 'f0.mov')).size).toBeLessThan(1024);
      expect(sb.status(c)).toBe('');
      sb.mustDits(['pull', 'f1.mov'], c);
      expect(hash(path.join(c, 'f1.mov'))).toBe(hash(path.join(repo, 'f1.mov')));
      expect(fs.statSync(path.join(c, 'f2.mov')).size).toBeLessThan(1024);
      const st = JSON.parse(sb.mustDits(['status', '--json'], c)) as { path: string; state: string }[];
      expect(st.find((s) => s.path === 'f1.mov')!.state).toBe('present');
      expect(st.find((s) => s.path === 'f2.mov')!.state).toBe('content-missing');
      // Include/exclude in full mode.
      const d = clone(url('lazy'), `${kind}-include`, ['-c', 'dits.fetchInclude=f0.mov,f3.mov', '-c', 'dits.fetchExclude=f3.mov']);
      expect(hash(path.join(d, 'f0.mov'))).toBe(hash(path.join(repo, 'f0.mov')));
      expect(fs.statSync(path.join(d, 'f3.mov')).size).toBeLessThan(1024);
    });
  });
}

describe('races and interruptions', () => {
  it('two concurrent pushes to one branch: one wins, the other is told to fetch first, nothing lost', async () => {
    const remote = `dits::file://${path.join(sb.dir, 'remotes', 'race')}`;
    const base = sb.repo('race-a', { track: ['*.mov'], config: CFG, files: { 'a.mov': randomBytesSeeded(50_000, 20) } });
    sb.mustGit(['add', '.'], base);
    sb.mustGit(['commit', '-q', '-m', 'base'], base);
    sb.mustGit(['remote', 'add', 'origin', remote], base);
    sb.mustGit(['push', '-q', 'origin', 'main'], base);
    const b = clone(remote, 'race-b');
    writeFile(path.join(base, 'a.mov'), randomBytesSeeded(300_000, 21));
    sb.mustGit(['commit', '-q', '-am', 'from a'], base);
    writeFile(path.join(b, 'b.mov'), randomBytesSeeded(300_000, 22));
    sb.mustGit(['add', 'b.mov'], b);
    sb.mustGit(['commit', '-q', '-m', 'from b'], b);
    const run = (cwd: string): Promise<number> =>
      new Promise((resolve) => {
        const p = spawn('git', ['push', 'origin', 'main'], { cwd, env: sb.env, stdio: 'ignore' });
        p.on('close', (code) => resolve(code ?? -1));
      });
    const codes = await Promise.all([run(base), run(b)]);
    expect(codes.filter((c) => c === 0)).toHaveLength(1);
    const winner = codes[0] === 0 ? base : b;
    const loser = codes[0] === 0 ? b : base;
    expect(sb.mustGit(['ls-remote', 'origin', 'refs/heads/main'], loser).split('\t')[0]).toBe(sb.mustGit(['rev-parse', 'HEAD'], winner).trim());
    // The loser integrates and pushes: both commits end up on the remote.
    sb.mustGit(['pull', '-q', '--no-rebase', '--no-edit', 'origin', 'main'], loser);
    sb.mustGit(['push', '-q', 'origin', 'main'], loser);
    const check = clone(remote, 'race-check');
    const log = sb.mustGit(['log', '--format=%s'], check);
    expect(log).toContain('from a');
    expect(log).toContain('from b');
    expect(sb.status(check)).toBe('');
  });

  it('a push killed midway leaves the remote ref untouched, and the re-run completes', async () => {
    const dir = path.join(sb.dir, 'remotes', 'killed');
    const remote = `dits::file://${dir}`;
    const repo = sb.repo('killed', { track: ['*.mov'], config: { ...CFG, 'dits.concurrency': '1' }, files: { 'big.mov': randomBytesSeeded(12_000_000, 30) } });
    sb.mustGit(['add', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', 'big'], repo);
    sb.mustGit(['remote', 'add', 'origin', remote], repo);
    const child = spawn('git', ['push', 'origin', 'main'], { cwd: repo, env: sb.env, stdio: 'ignore', detached: true });
    const packs = path.join(dir, 'v1', 'packs');
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      const n = fs.existsSync(packs) ? fs.readdirSync(packs).filter((f) => f.endsWith('.idx')).length : 0;
      if (n >= 3) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    process.kill(-child.pid!, 'SIGKILL');
    await new Promise((r) => child.on('close', r));
    const uploaded = fs.readdirSync(packs).filter((f) => f.endsWith('.idx')).length;
    expect(uploaded).toBeGreaterThanOrEqual(3);
    expect(sb.mustGit(['ls-remote', 'origin'], repo)).toBe(''); // no ref to half-stored content
    const again = sb.git(['push', 'origin', 'main'], repo);
    expect(again.status, again.stderr).toBe(0);
    const m = /uploaded 1 file version\(s\), (\d+) new chunk\(s\), (\d+) bytes/.exec(again.stderr);
    expect(Number(m![2])).toBeLessThan(12_000_000); // what was uploaded before is not sent again
    const c = clone(remote, 'killed-clone');
    expect(hash(path.join(c, 'big.mov'))).toBe(hash(path.join(repo, 'big.mov')));
  });

  it('prune drops local content the remote holds, and a checkout fetches it back', () => {
    const remote = `dits::file://${path.join(sb.dir, 'remotes', 'prune')}`;
    const v1 = randomBytesSeeded(400_000, 40);
    const repo = sb.repo('prune', { track: ['*.mov'], config: CFG, files: { 'a.mov': v1 } });
    sb.mustGit(['add', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', 'v1'], repo);
    writeFile(path.join(repo, 'a.mov'), randomBytesSeeded(400_000, 41));
    sb.mustGit(['commit', '-q', '-am', 'v2'], repo);
    writeFile(path.join(repo, 'local-only.mov'), randomBytesSeeded(100_000, 42));
    sb.mustGit(['add', 'local-only.mov'], repo);
    sb.mustGit(['commit', '-q', '-m', 'v3'], repo);
    sb.mustGit(['remote', 'add', 'origin', remote], repo);
    sb.mustGit(['push', '-q', 'origin', 'HEAD~1:refs/heads/main'], repo); // v3's new file stays local only
    const dry = JSON.parse(sb.mustDits(['prune', '--older-than', '0s', '--dry-run', '--json'], repo));
    expect(dry.chunks).toBeGreaterThan(0);
    const before = JSON.parse(sb.mustDits(['du', '--json'], repo));
    expect(before.uniqueChunkBytes).toBeGreaterThan(850_000);
    sb.mustDits(['prune', '--older-than', '0s'], repo);
    const after = JSON.parse(sb.mustDits(['du', '--json'], repo));
    expect(after.uniqueChunkBytes).toBeLessThan(before.uniqueChunkBytes - 350_000); // v1 went, checked-out files stayed
    // v1's content is no longer local but the remote verifiably holds it: not a problem
    const fsck = sb.dits(['fsck'], repo);
    expect(fsck.status, fsck.stderr).toBe(0);
    expect(fsck.stdout).toMatch(/chunks are held by a remote, not here/);
    expect(after.remoteHeldChunks).toBeGreaterThan(0);
    sb.mustGit(['checkout', '-q', 'HEAD~2'], repo); // fetched back from the remote
    expect(hash(path.join(repo, 'a.mov'))).toBe(blake3(v1).toString('hex'));
    expect(sb.status(repo)).toBe('');
  });

  it('bad URLs and missing buckets say what to do', () => {
    const repo = sb.repo('bad-urls');
    const typo = sb.git(['ls-remote', 'dits::s4://media/x'], repo);
    expect(typo.status).not.toBe(0);
    expect(typo.stderr).toMatch(/unknown scheme "s4:" \(did you mean "s3:"\?\)/);
    const nobucket = sb.git(['ls-remote', 'dits::s3://no-such-bucket/x'], repo);
    expect(nobucket.status).not.toBe(0);
    expect(nobucket.stderr).toMatch(/bucket/i);
    // nothing there is no remote (a typo), not an empty one; the first push creates it
    const empty = sb.git(['ls-remote', `dits::file://${path.join(sb.dir, 'nothing-here')}`], repo);
    expect(empty.status).not.toBe(0);
    expect(empty.stderr).toMatch(/there is no Dits remote at .*nothing-here/);
    expect(empty.stdout).toBe('');
    const emptyS3 = sb.git(['ls-remote', 'dits::s3://media/nothing-here'], repo);
    expect(emptyS3.status).not.toBe(0);
    expect(emptyS3.stderr).toMatch(/there is no Dits remote at s3:\/\/media\/nothing-here/);
  });
});
