/**
 * The server's nightly reaper keeps hot what the default branch holds, from the git data
 * pushed to it (server/tier-keep-hot.ts): real pushes with git through `dits::http://` to an
 * in-process server whose warm tier is another folder; a file changed and then reverted to
 * its first content; no list (or a stale list) published by a client; a damaged bundle.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addUser, createRepo, createToken, grant } from './admin.js';
import { startServer, type RunningServer } from './main.js';
import type { LogFields, Logger } from './logger.js';
import { tierGitCacheDir } from './tier-keep-hot.js';
import { GitSandbox, randomBytesSeeded, writeFile, type RunResult } from '../test/helpers/git-env.js';
import { DAY_MS, DEFAULT_POLICY } from '../src/tier/policy.js';
import { parsePointer } from '../src/manifest/pointer.js';
import { publishKeepHot } from '../src/tier/keep-hot.js';
import { FileStorage } from '../src/transfer/file-storage.js';
import { filesUnder } from '../src/tier/testing/folder-files.js';

const CFG = { 'dits.chunkMin': '1024', 'dits.chunkAvg': '4096', 'dits.chunkMax': '16384', 'dits.smudgeInlineMax': '64k', 'dits.packSize': '256k' };
const REPOS = ['team/film', 'team/stale', 'team/broken'] as const;

const dirs: string[] = [];
let server: RunningServer;
let sb: GitSandbox;
let dataDir: string;
let warm: string;
let now = new Date(Date.UTC(2026, 11, 6, 2, 0));
const logs: { level: string; msg: string; fields: LogFields }[] = [];
const logger: Logger = {
  info: (msg, fields = {}) => logs.push({ level: 'info', msg, fields }),
  warn: (msg, fields = {}) => logs.push({ level: 'warn', msg, fields }),
  error: (msg, fields = {}) => logs.push({ level: 'error', msg, fields }),
};

function tempDir(prefix: string): string {
  const d = mkdtempSync(path.join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

const repoRoot = (repo: string): string => path.join(dataDir, 'repos', ...repo.split('/'));
const warmRoot = (repo: string): string => path.join(warm, ...repo.split('/'));
const packsOf = (root: string): string[] => filesUnder(root).filter((f) => f.endsWith('.pack'));

/** git without blocking this process's event loop: the server answering the push runs in it. */
function gitAsync(args: string[], cwd: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, { cwd, env: sb.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString('utf8')));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ status: code ?? -1, stdout, stderr }));
  });
}

async function pushTo(repoDir: string, remotes: readonly string[]): Promise<Record<string, string[]>> {
  const added: Record<string, string[]> = {};
  for (const r of remotes) {
    const before = new Set(packsOf(repoRoot(r)));
    const push = await gitAsync(['push', '-q', r.replace('/', '-'), 'main'], repoDir);
    expect(push.status, push.stderr).toBe(0);
    added[r] = packsOf(repoRoot(r)).filter((p) => !before.has(p));
  }
  return added;
}

/** Every stored file of the repositories `days` old (the folder storage's clock is the mtimes). */
function age(days: number): void {
  const past = (Date.now() - days * DAY_MS) / 1000;
  for (const r of REPOS) for (const f of filesUnder(repoRoot(r))) utimesSync(path.join(repoRoot(r), f), past, past);
}

const roundResult = (repo: string, from: number): Record<string, unknown> | undefined =>
  logs.slice(from).find((l) => l.msg === 'tier round: repository done' && l.fields['repo'] === repo)?.fields['result'] as Record<string, unknown> | undefined;

beforeAll(async () => {
  dataDir = tempDir('dits-srvhot-data-');
  warm = tempDir('dits-srvhot-warm-');
  server = await startServer({ dataDir, clock: () => now, logger, tierFolders: { folders: { warm } }, tierPolicy: { ...DEFAULT_POLICY, graceMs: 0 }, accessFlushIntervalMs: 3_600_000 });
  addUser(server.db, 'ann');
  for (const r of REPOS) {
    createRepo(server.db, r);
    grant(server.db, 'ann', r, 'write');
  }
  const token = createToken(server.db, 'ann', 'laptop');
  sb = new GitSandbox('dits-srvhot-');
  sb.mustGit(['config', '--global', 'credential.helper', 'store'], sb.dir);
  writeFileSync(path.join(sb.env.HOME!, '.git-credentials'), `http://ann:${token}@127.0.0.1:${server.port}\n`, { mode: 0o600 });
});
afterAll(async () => {
  await server?.close();
  sb?.cleanup();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('the server reaper keeps the default branch hot from the git data pushed to it', () => {
  let repo: string;
  const pushed: Record<string, string[]>[] = [];
  let round1 = 0;
  let round2 = 0;

  // one local repository pushed to three server repositories: a.mov = A1, then A2, then
  // back to A1 (a revert: no new pack, only a commit); then two nights of the reaper
  beforeAll(async () => {
    const A1 = randomBytesSeeded(200_000, 11);
    const A2 = randomBytesSeeded(200_000, 12);
    repo = sb.repo('src', { track: ['*.mov'], config: CFG, files: { 'a.mov': A1, 'notes.txt': 'one\n' } });
    for (const r of REPOS) sb.mustGit(['remote', 'add', r.replace('/', '-'), `dits::http://127.0.0.1:${server.port}/${r}`], repo);
    sb.mustGit(['add', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', 'one'], repo);
    pushed.push(await pushTo(repo, REPOS));
    writeFile(path.join(repo, 'a.mov'), A2);
    sb.mustGit(['commit', '-q', '-am', 'two'], repo);
    pushed.push(await pushTo(repo, REPOS));
    // what a client's `git dits tier apply` published at that time: the default branch held A2
    const a2Manifest = parsePointer(Buffer.from(sb.mustGit(['cat-file', '-p', 'HEAD:a.mov'], repo)))!.manifest;
    for (const r of ['team/stale', 'team/broken']) await publishKeepHot(new FileStorage(repoRoot(r)), { at: Date.now(), patterns: [], resolved: [], manifests: [a2Manifest] });
    writeFile(path.join(repo, 'a.mov'), A1);
    sb.mustGit(['commit', '-q', '-am', 'three: back to one'], repo);
    pushed.push(await pushTo(repo, REPOS));
    for (const r of REPOS) {
      expect(pushed[0]![r]!.length, r).toBeGreaterThan(0);
      expect(pushed[1]![r]!.length, r).toBeGreaterThan(0);
      expect(pushed[2]![r], r).toEqual([]);
    }
    // the last push's bundle of team/broken damaged in the middle
    const refs = JSON.parse(readFileSync(path.join(repoRoot('team/broken'), 'v1', 'refs'), 'utf8')) as { bundles: { key: string }[] };
    const bundleFile = path.join(repoRoot('team/broken'), refs.bundles.at(-1)!.key);
    const bytes = readFileSync(bundleFile);
    bytes.fill(0x5a, Math.floor(bytes.length / 2), Math.floor(bytes.length / 2) + 64);
    writeFileSync(bundleFile, bytes);
    age(60);

    // a new server's first round is the next 03:00; then a round marks, the next night's moves (grace 0)
    await server.tierScheduler.tick();
    round1 = logs.length;
    now = new Date(Date.UTC(2026, 11, 6, 3, 0));
    await server.tierScheduler.tick();
    round2 = logs.length;
    now = new Date(Date.UTC(2026, 11, 7, 3, 0));
    await server.tierScheduler.tick();
  }, 120_000);

  it('no list published: the current version (reverted to A1) stays hot, A2 moves', () => {
    const film = 'team/film';
    const warmPacks = packsOf(warmRoot(film));
    for (const p of pushed[1]![film]!) expect(warmPacks).toContain(p);
    for (const p of pushed[0]![film]!) {
      expect(warmPacks).not.toContain(p);
      expect(packsOf(repoRoot(film))).toContain(p);
    }
    const first = roundResult(film, round1)!;
    expect(first['keepHot']).toMatchObject({ defaultBranch: 'refs/heads/main', bundlesApplied: 3, computed: 1, published: null });
    expect(first['marked']).toBe(pushed[1]![film]!.length);
    // the second night applies no bundle again (nothing new was pushed)
    expect(roundResult(film, round2)!['keepHot']).toMatchObject({ bundlesApplied: 0, computed: 1 });
  });

  it('a list published before the revert (naming A2): A1 stays hot all the same (either list keeps a version hot)', () => {
    const warmPacks = packsOf(warmRoot('team/stale'));
    for (const p of [...pushed[0]!['team/stale']!, ...pushed[1]!['team/stale']!]) expect(warmPacks).not.toContain(p);
    expect(roundResult('team/stale', round1)!['keepHot']).toMatchObject({ computed: 1, published: 1 });
  });

  it('a damaged bundle: nothing moves although a list is published, and the log says why', () => {
    expect(filesUnder(warmRoot('team/broken'))).toEqual([]);
    expect(filesUnder(path.join(repoRoot('team/broken'), 'v1', 'tier', 'pending'))).toEqual([]);
    expect(roundResult('team/broken', round1)).toBeUndefined();
    const failed = logs.slice(round1).filter((l) => l.msg === 'tier round: repository failed, tried again next round' && l.fields['repo'] === 'team/broken');
    expect(failed.length).toBe(2);
    expect(String(failed[0]!.fields['error'])).toMatch(/cannot read the git data of .* so nothing was moved: .*bundle/);
  });

  it('a later push: only its bundle is applied the next night, and the cache has its commit', async () => {
    writeFile(path.join(repo, 'b.mov'), randomBytesSeeded(100_000, 13));
    sb.mustGit(['add', 'b.mov'], repo);
    sb.mustGit(['commit', '-q', '-m', 'four'], repo);
    await pushTo(repo, ['team/film']);
    const round3 = logs.length;
    now = new Date(Date.UTC(2026, 11, 8, 3, 0));
    await server.tierScheduler.tick();
    expect(roundResult('team/film', round3)!['keepHot']).toMatchObject({ bundlesApplied: 1, computed: 2 });
    const cached = await gitAsync(['--git-dir', tierGitCacheDir(dataDir, 'team/film'), 'rev-parse', 'refs/heads/main'], sb.dir);
    expect(cached.stdout.trim()).toBe(sb.mustGit(['rev-parse', 'HEAD'], repo).trim());
  });
});
