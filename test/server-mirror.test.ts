/**
 * `git dits serve --mirror <folder>` end to end: a real server process, pushes through a
 * dits::http remote, the mirror run asked for through POST /api/mirror/run (the run the
 * schedule makes), then the mirror compared file by file with the server's storage and
 * cloned from directly; the mirror folder gone (a failed run, the primary untouched, the
 * next run completes); the server killed (SIGKILL) during a run, and the run completed when
 * it starts again. `git dits server status` shows the last run.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { addUser, createRepo, createToken, grant } from '../server/admin.js';
import { openDataDirDb } from '../server/data-dir.js';
import { readMirrorState } from '../server/mirror-state.js';
import { DITS_BIN, GitSandbox, SMALL_CHUNKS, cloneInto, randomBytesSeeded, writeFile } from './helpers/git-env.js';

const dirs: string[] = [];
let sb: GitSandbox;
let serve: ChildProcessWithoutNullStreams | undefined;
let stderr = '';
let url = '';
let dataDir = '';
let mirror = '';
let adminToken = '';
let token = '';

function tempDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  dirs.push(d);
  return d;
}

async function until<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\nstderr: ${stderr.slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function startServe(env: NodeJS.ProcessEnv = {}): Promise<void> {
  stderr = '';
  let stdout = '';
  // --mirror-schedule off: runs only when asked (the schedule's own timing is server/mirror-scheduler.test.ts)
  serve = spawn(process.execPath, [DITS_BIN, 'serve', '--data', dataDir, '--port', '0', '--mirror', mirror, '--mirror-schedule', 'off'], { env: { ...process.env, ...env } });
  serve.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  serve.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  url = await until('the server to listen', () => /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout)?.[1], 30_000);
  expect(stdout).toContain(`Mirror: ${mirror} (only when asked`);
}

async function stopServe(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!serve || serve.exitCode !== null || serve.signalCode !== null) return;
  const exited = new Promise((r) => serve!.once('exit', r));
  serve.kill(signal);
  await exited;
}

interface MirrorRunJson {
  result: string;
  error?: string;
  trigger: string;
  repos: { repo: string; result: string; refs?: string; copied?: { packs: number; manifests: number } }[];
}

async function api(method: string, p: string, auth = adminToken): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`${url}${p}`, { method, headers: { authorization: `Bearer ${auth}` } });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

async function runMirror(): Promise<MirrorRunJson> {
  const r = await api('POST', '/api/mirror/run');
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.run as MirrorRunJson;
}

/** Every object of a folder storage with its bytes (its `.dits-*` bookkeeping, such as writes a kill cut short in `.dits-tmp/`, left out: no key). */
function filesOf(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.name.startsWith('.dits-')) continue;
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.set(path.relative(dir, p), fs.readFileSync(p).toString('base64'));
    }
  };
  walk(dir);
  return out;
}

/** Clones of the mirror record no reads on it (they would be objects the primary lacks). */
const NO_RECORD = { ...SMALL_CHUNKS, 'dits.tier.recordAccess': 'false' };

const primaryDir = (): string => path.join(dataDir, 'repos', 'team', 'film');
const mirrorDir = (): string => path.join(mirror, 'team', 'film');

function expectIdentical(): void {
  const a = filesOf(primaryDir());
  const b = filesOf(mirrorDir());
  expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
  for (const [k, v] of a) expect(b.get(k) === v, `${k} differs`).toBe(true);
  const keys = [...a.keys()];
  expect(keys.some((k) => k.startsWith('v1/packs/') && k.endsWith('.pack'))).toBe(true);
  expect(keys.some((k) => k.startsWith('v1/objects/'))).toBe(true);
  expect(keys.some((k) => k.startsWith('v1/refs'))).toBe(true);
}

let repo = '';
beforeAll(async () => {
  dataDir = tempDir('dits-smirror-data-');
  mirror = tempDir('dits-smirror-dest-');
  const db = openDataDirDb(dataDir);
  addUser(db, 'alice');
  createRepo(db, 'team/film');
  grant(db, 'alice', 'team/film', 'write');
  token = createToken(db, 'alice', 'laptop');
  addUser(db, 'root', { admin: true });
  adminToken = createToken(db, 'root', 'ops');
  db.close();
  await startServe();
  sb = new GitSandbox('dits-smirror-');
  sb.mustGit(['config', '--global', 'credential.helper', 'store'], sb.dir);
  fs.writeFileSync(path.join(sb.env.HOME!, '.git-credentials'), `http://alice:${token}@${new URL(url).host}\n`, { mode: 0o600 });
  repo = sb.repo('src', { track: ['*.mov'], config: SMALL_CHUNKS, files: { 'a.mov': randomBytesSeeded(400_000, 1), 'b.mov': randomBytesSeeded(300_000, 2) } });
  sb.mustGit(['add', '-A'], repo);
  sb.mustGit(['commit', '-qm', 'c1'], repo);
  sb.mustGit(['remote', 'add', 'origin', `dits::${url}/team/film`], repo);
  sb.mustGit(['push', '-q', '-u', 'origin', 'main'], repo);
}, 120_000);

afterAll(async () => {
  await stopServe();
  sb?.cleanup();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

it('a run copies the storage byte for byte into <mirror>/<owner>/<name>, a clone from it is exact; only site admins see or run it', async () => {
  expect((await api('GET', '/api/mirror')).body).toMatchObject({ configured: true, mirror, schedule: 'off', lastRun: null, running: null });
  expect((await api('POST', '/api/mirror/run', token)).status).toBe(403);
  const run = await runMirror();
  expect(run).toMatchObject({ trigger: 'admin', result: 'ok', repos: [{ repo: 'team/film', result: 'ok', refs: 'updated' }] });
  expectIdentical();
  expect(stderr).toMatch(/"msg":"mirror run finished".*"result":"ok"/);
  const clone = cloneInto(sb, `dits::file://${mirrorDir()}`, 'from-mirror', NO_RECORD);
  expect(fs.readFileSync(path.join(clone, 'a.mov')).equals(randomBytesSeeded(400_000, 1))).toBe(true);
  expect(fs.readFileSync(path.join(clone, 'b.mov')).equals(randomBytesSeeded(300_000, 2))).toBe(true);
  // nothing new: a run copies nothing
  const again = await runMirror();
  expect(again.repos[0]).toMatchObject({ result: 'ok', refs: 'unchanged', copied: { packs: 0, manifests: 0 } });
});

it('the mirror folder gone: the run fails with a clear status, the primary is untouched; back, the next run completes', async () => {
  writeFile(path.join(repo, 'c.mov'), randomBytesSeeded(200_000, 3));
  sb.mustGit(['add', '-A'], repo);
  sb.mustGit(['commit', '-qm', 'c2'], repo);
  sb.mustGit(['push', '-q'], repo);
  const primary = filesOf(primaryDir());
  fs.renameSync(mirror, `${mirror}.unmounted`);
  dirs.push(`${mirror}.unmounted`);
  try {
    const down = await runMirror();
    expect(down.result).toBe('failed');
    expect(down.error).toMatch(/cannot be reached: the mirror folder .* does not exist/);
    expect(fs.existsSync(mirror)).toBe(false);
    expect(filesOf(primaryDir())).toEqual(primary);
    expect((await api('GET', '/api/mirror')).body).toMatchObject({ lastRun: { result: 'failed' } });
    const status = spawnSync(process.execPath, [DITS_BIN, 'server', 'status', '--data', dataDir, '--quick'], { encoding: 'utf8' });
    expect(status.stdout).toMatch(new RegExp(`Mirror: ${mirror.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(off UTC\\); last run: failed at .*cannot be reached`));
  } finally {
    fs.renameSync(`${mirror}.unmounted`, mirror);
  }
  const back = await runMirror();
  expect(back).toMatchObject({ result: 'ok', repos: [{ result: 'ok', refs: 'updated' }] });
  expectIdentical();
});

it('the server killed (SIGKILL) during a run: the next start says it was interrupted and completes it, byte for byte', async () => {
  for (let i = 0; i < 4; i++) writeFile(path.join(repo, `k${i}.mov`), randomBytesSeeded(500_000, 10 + i));
  sb.mustGit(['add', '-A'], repo);
  sb.mustGit(['commit', '-qm', 'c3'], repo);
  sb.mustGit(['push', '-q'], repo);
  // a server whose writes to the mirror each wait 300 ms: killed once some of the new content is there
  await stopServe();
  await startServe({ DITS_MIRROR_HOLD_MS: '300' });
  const before = filesOf(mirrorDir()).size;
  expect((await api('POST', '/api/mirror/run?wait=0')).status).toBe(202);
  await until('the run to copy something', () => filesOf(mirrorDir()).size > before);
  await stopServe('SIGKILL');
  const db = openDataDirDb(dataDir);
  try {
    expect(readMirrorState(db)).toMatchObject({ running: { trigger: 'admin' } }); // killed mid-run
  } finally {
    db.close();
  }
  expect(filesOf(mirrorDir()).size).toBeLessThan(filesOf(primaryDir()).size);
  // the next start shows it interrupted and completes it
  await startServe();
  await until('the run to be completed after the restart', async () => {
    const s = (await api('GET', '/api/mirror')).body as { running: unknown; lastRun: { result?: string; startedAt: string } | null };
    return s.running === null && s.lastRun?.result === 'ok' ? s : undefined;
  });
  expect(stderr).toMatch(/"msg":"mirror run interrupted \(the server stopped during it\): running it again now"/);
  expect(stderr).toMatch(/"msg":"mirror run started".*"trigger":"schedule"/);
  expectIdentical();
  const clone = cloneInto(sb, `dits::file://${mirrorDir()}`, 'after-kill', NO_RECORD);
  for (let i = 0; i < 4; i++) expect(fs.readFileSync(path.join(clone, `k${i}.mov`)).equals(randomBytesSeeded(500_000, 10 + i))).toBe(true);
});
