/**
 * The `dits::http://` remote: the ObjectStorage contract run against HttpStorage talking
 * to a real server on 127.0.0.1 (in process, FileStorage behind it), the access rules of
 * the storage routes, and end to end with the server as its own process and real git.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addUser, createRepo, createToken, grant } from '../server/admin.js';
import { startServer, type RunningServer } from '../server/main.js';
import { HttpStorage } from '../src/transfer/http-storage.js';
import { RENAMED_ERROR_CODES } from '../src/errors.js';
import { credentialQuery, serverToken, tokenFromCredentialHelper, type CredentialDeps } from '../src/remote/credentials.js';
import { runGit } from '../src/git/exec.js';
import { readStreamToBuffer } from '../src/transfer/object-storage.js';
import { describeStorageContract, seededBytes } from './transfer/storage-contract.js';
import { blake3 } from '@napi-rs/blake-hash';
import { openDataDirDb } from '../server/data-dir.js';
import { GitSandbox, randomBytesSeeded, ROOT, writeFile } from './helpers/git-env.js';
import { startS3rverProcess, type S3Process } from './helpers/s3rver-process.js';

const dirs: string[] = [];
function tempDir(prefix: string): string {
  const d = mkdtempSync(path.join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

let server: RunningServer;
let adminToken: string;
let readerToken: string;
let outsiderToken: string;
let repoCounter = 0;

beforeAll(async () => {
  server = await startServer({ dataDir: tempDir('dits-http-storage-'), port: 0 });
  addUser(server.db, 'root', { admin: true });
  adminToken = createToken(server.db, 'root', 'test');
  addUser(server.db, 'reader');
  readerToken = createToken(server.db, 'reader', 'test');
  addUser(server.db, 'outsider');
  outsiderToken = createToken(server.db, 'outsider', 'test');
});
afterAll(async () => {
  await server?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A fresh repository on the shared server, as HttpStorage for `token`. */
function freshRepo(token: string = adminToken): { storage: HttpStorage; name: string } {
  const name = `team/r${++repoCounter}`;
  createRepo(server.db, name);
  const storage = new HttpStorage({ baseUrl: `${server.url}/${name}`, token: async () => token, retryDeps: { sleep: async () => {}, random: () => 0 } });
  return { storage, name };
}

describeStorageContract('HttpStorage (Dits server, FileStorage behind it)', async () => ({ storage: freshRepo().storage }), {
  manyKeys: 2100,
  bigBodyBytes: 8 * 1024 * 1024 + 12345,
  casWriters: 8,
  casIncrements: 5,
});

describe('with S3 behind the server (s3rver on 127.0.0.1)', () => {
  let s3: S3Process;
  let s3Server: RunningServer;
  let token: string;
  let n = 0;
  beforeAll(async () => {
    s3 = await startS3rverProcess(['media']);
    s3Server = await startServer({
      dataDir: tempDir('dits-http-s3-'),
      port: 0,
      storage: 's3://media/dits-server',
      s3: { endpoint: s3.endpoint, forcePathStyle: true, region: 'us-east-1', credentials: s3.credentials },
    });
    addUser(s3Server.db, 'root', { admin: true });
    token = createToken(s3Server.db, 'root', 'test');
  });
  afterAll(async () => {
    await s3Server?.close();
    await s3?.close();
  });

  describeStorageContract(
    'HttpStorage (Dits server, S3Storage behind it)',
    async () => {
      const name = `team/s${++n}`;
      createRepo(s3Server.db, name);
      return { storage: new HttpStorage({ baseUrl: `${s3Server.url}/${name}`, token: async () => token }) };
    },
    { manyKeys: 1100, bigBodyBytes: 8 * 1024 * 1024 + 12345, casWriters: 4, casIncrements: 3, nonAtomicPutReason: 's3rver writes objects in place (as in test/transfer/s3-storage.test.ts); AWS S3 PUTs are atomic' },
  );

  it('keeps each repository under <prefix>/<owner>/<name> in the bucket', async () => {
    createRepo(s3Server.db, 'team/where');
    const storage = new HttpStorage({ baseUrl: `${s3Server.url}/team/where`, token: async () => token });
    await storage.put('v1/objects/ab/cd', Buffer.from('x'));
    const { S3Storage } = await import('../src/transfer/s3-storage.js');
    const raw = new S3Storage({ bucket: 'media', prefix: 'dits-server/team/where', endpoint: s3.endpoint, forcePathStyle: true, region: 'us-east-1', credentials: s3.credentials });
    expect((await raw.getBuffer('v1/objects/ab/cd')).toString()).toBe('x');
  });
});

describe('tokens from git credential helpers', () => {
  it('reads the store helper, returns undefined without a helper (no prompt), prefers DITS_TOKEN, and asks git once per URL', async () => {
    const home = tempDir('dits-cred-home-');
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: home, XDG_CONFIG_HOME: path.join(home, '.config'), GIT_CONFIG_NOSYSTEM: '1' };
    let calls = 0;
    const deps: CredentialDeps = {
      env,
      interactive: false,
      runGit: (args, opts) => {
        calls++;
        return runGit(args, opts);
      },
    };
    const url = 'http://127.0.0.1:4567/team/film';
    expect(credentialQuery(url)).toEqual({ protocol: 'http', host: '127.0.0.1:4567', path: 'team/film' });
    // no helper, no terminal: undefined at once instead of a prompt
    expect(await tokenFromCredentialHelper(home, url, deps)).toBeUndefined();

    writeFileSync(path.join(home, '.gitconfig'), '[credential]\n\thelper = store\n');
    writeFileSync(path.join(home, '.git-credentials'), 'http://alice:dits_secret@127.0.0.1:4567\nhttp://bob:dits_other@127.0.0.1:9999\n');
    expect(await tokenFromCredentialHelper(home, url, deps)).toBe('dits_secret');
    expect(await tokenFromCredentialHelper(home, 'http://127.0.0.1:9999/x/y', deps)).toBe('dits_other');

    calls = 0;
    const cachedUrl = 'http://127.0.0.1:4567/team/cached';
    expect(await serverToken(home, cachedUrl, deps)).toBe('dits_secret');
    expect(await serverToken(home, cachedUrl, deps)).toBe('dits_secret');
    expect(calls).toBe(1);
    expect(await serverToken(home, cachedUrl, { ...deps, env: { ...env, DITS_TOKEN: 'dits_from_env' } })).toBe('dits_from_env');
  });
});

describe('storage routes: access and errors', () => {
  it('checks tokens and roles: 401 auth-required with a hint, 404 repo-not-found, 403 forbidden for writes by readers', async () => {
    const { storage, name } = freshRepo();
    await storage.put('v1/objects/ab/cd', Buffer.from('hello'));
    await storage.checkAccess();

    const noToken = new HttpStorage({ baseUrl: `${server.url}/${name}` });
    await expect(noToken.head('v1/objects/ab/cd')).rejects.toMatchObject({ code: 'auth-required', hint: expect.stringMatching(/git dits server token create.*\n.*git credential approve/s) });
    const badToken = new HttpStorage({ baseUrl: `${server.url}/${name}`, token: async () => 'dits_nope' });
    await expect(badToken.checkAccess()).rejects.toMatchObject({ code: 'auth-required' });

    const outsider = new HttpStorage({ baseUrl: `${server.url}/${name}`, token: async () => outsiderToken });
    await expect(outsider.getBuffer('v1/objects/ab/cd')).rejects.toMatchObject({ code: 'repo-not-found' });
    await expect(outsider.checkAccess()).rejects.toMatchObject({ code: 'repo-not-found' });
    const missingRepo = new HttpStorage({ baseUrl: `${server.url}/team/nothing-here`, token: async () => adminToken });
    await expect(missingRepo.head('x')).rejects.toMatchObject({ code: 'repo-not-found' });

    grant(server.db, 'reader', name, 'read');
    const reader = new HttpStorage({ baseUrl: `${server.url}/${name}`, token: async () => readerToken });
    expect((await reader.getBuffer('v1/objects/ab/cd')).toString()).toBe('hello');
    expect(await reader.getVersioned('refs')).toBeNull();
    await expect(reader.put('v1/objects/ab/ef', Buffer.from('x'))).rejects.toMatchObject({ code: 'forbidden', status: 403 });
    await expect(reader.delete('v1/objects/ab/cd')).rejects.toMatchObject({ code: 'forbidden' });
    await expect(reader.putIf('refs', Buffer.from('x'), 'absent')).rejects.toMatchObject({ code: 'forbidden' });
    expect((await storage.getBuffer('v1/objects/ab/cd')).toString()).toBe('hello');
  });

  it('retries 5xx answers and dropped connections of replayable requests, not 4xx', async () => {
    const { name } = freshRepo();
    let calls = 0;
    const failures: (number | 'reset')[] = [503, 'reset', 500];
    const flaky: typeof fetch = async (input, init) => {
      calls++;
      const next = failures.shift();
      if (next === 'reset') throw new TypeError('fetch failed', { cause: Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }) });
      if (next !== undefined) return new Response(JSON.stringify({ message: 'try later' }), { status: next });
      return fetch(input, init);
    };
    const storage = new HttpStorage({ baseUrl: `${server.url}/${name}`, token: async () => adminToken, fetch: flaky, retryDeps: { sleep: async () => {}, random: () => 0 } });
    await storage.put('k', Buffer.from('v'));
    expect(calls).toBe(4);
    failures.push(503, 503, 503, 503);
    await expect(storage.getBuffer('k')).rejects.toMatchObject({ code: 'server-error', status: 503 });
    calls = 0;
    failures.push(400);
    await expect(storage.head('k')).rejects.toMatchObject({ code: 'server-refused', status: 400 });
    expect(calls).toBe(1);
    // a port that was just free: nothing listens there
    const probe = createServer();
    const freePort = await new Promise<number>((resolve) => probe.listen(0, '127.0.0.1', () => resolve((probe.address() as AddressInfo).port)));
    await new Promise((resolve) => probe.close(resolve));
    const unreachable = new HttpStorage({ baseUrl: `http://127.0.0.1:${freePort}/team/x`, retryDeps: { sleep: async () => {}, random: () => 0 } });
    await expect(unreachable.head('k')).rejects.toMatchObject({ code: 'server-unreachable' });
  });

  it('storage refusals carry kebab-case codes; an older server\'s STORAGE_* codes are read under their new names', async () => {
    const { storage, name } = freshRepo();
    // the real server: a key that is also a folder of another key (FileStorage behind it), a bad percent-encoding
    await storage.put('kc', Buffer.from('v'));
    await expect(storage.put('kc/x', Buffer.from('v'))).rejects.toMatchObject({ code: 'storage-key-conflict', status: 409 });
    const raw = await fetch(`${server.url}/${name}/storage/o/bad%E0%A4`, { headers: { authorization: `Bearer ${adminToken}` } });
    expect(raw.status).toBe(400);
    expect(await raw.json()).toMatchObject({ code: 'storage-bad-key' });
    // a server from before: the same refusals under their old names, in the body or (HEAD) the header
    const oldName = (now: string): string => Object.keys(RENAMED_ERROR_CODES).find((k) => RENAMED_ERROR_CODES[k] === now)!;
    const answers: Response[] = [];
    const old: typeof fetch = async () => answers.shift()!;
    const client = new HttpStorage({ baseUrl: `${server.url}/${name}`, token: async () => adminToken, fetch: old, retryDeps: { sleep: async () => {}, random: () => 0 } });
    answers.push(new Response(JSON.stringify({ message: 'key conflict', code: oldName('storage-key-conflict') }), { status: 409 }));
    await expect(client.put('kc/x', Buffer.from('v'))).rejects.toMatchObject({ code: 'storage-key-conflict', status: 409, message: 'key conflict' });
    answers.push(new Response(JSON.stringify({ message: 'bad key', code: oldName('storage-bad-key') }), { status: 400 }));
    await expect(client.getBuffer('k')).rejects.toMatchObject({ code: 'storage-bad-key', status: 400 });
    answers.push(new Response(null, { status: 400, headers: { 'dits-error-code': oldName('storage-size-mismatch') } }));
    await expect(client.head('k')).rejects.toMatchObject({ code: 'storage-size-mismatch', status: 400 });
  });

  it('a client that goes away mid-upload leaves the previous object intact', async () => {
    const { storage, name } = freshRepo();
    await storage.put('v1/packs/p.pack', Buffer.from('old'));
    const port = Number(new URL(server.url).port);
    const sock = connect(port, '127.0.0.1');
    sock.on('error', () => {});
    sock.write(`PUT /${name}/storage/o/v1/packs/p.pack HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${adminToken}\r\nContent-Length: 10000000\r\n\r\n`);
    sock.write(Buffer.alloc(3_000_000, 1));
    await new Promise((resolve) => setTimeout(resolve, 300));
    sock.destroy();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await storage.getBuffer('v1/packs/p.pack')).toString()).toBe('old');
    expect((await storage.head('v1/packs/p.pack'))?.size).toBe(3);
  });

  it('pages listings: resumed from the open listing or, when that is gone, rescanned after the cursor key', async () => {
    const { storage, name } = freshRepo();
    const keys = Array.from({ length: 25 }, (_, i) => `v1/objects/${String(i).padStart(2, '0')}/x`);
    for (const k of keys) await storage.put(k, Buffer.from(k));
    await storage.put('other', Buffer.from('o'));
    const small = new HttpStorage({ baseUrl: `${server.url}/${name}`, token: async () => adminToken, listPageSize: 7 });
    const listed: string[] = [];
    for await (const o of small.list('v1/')) listed.push(o.key);
    expect(listed).toEqual(keys);
    const page = async (after?: string) => {
      const q = new URLSearchParams({ prefix: 'v1/', limit: '10', ...(after === undefined ? {} : { after }) });
      const res = await fetch(`${server.url}/${name}/storage/list?${q.toString()}`, { headers: { authorization: `Bearer ${adminToken}` } });
      return (await res.json()) as { objects: { key: string }[]; next: string | null };
    };
    const first = await page();
    expect(first.next).toBe(keys[9]);
    const resumed = await page(first.next!);
    const rescanned = await page(first.next!);
    expect(resumed).toEqual(rescanned);
    expect(resumed.objects.map((o) => o.key)).toEqual(keys.slice(10, 20));
    expect((await page(resumed.next!)).objects.map((o) => o.key)).toEqual(keys.slice(20));
  });

  it('answers 400 for bad keys and 416 for ranges past the end at the HTTP level', async () => {
    const { name } = freshRepo();
    const auth = { authorization: `Bearer ${adminToken}` };
    const put = await fetch(`${server.url}/${name}/storage/o/a%2F%2Fb`, { method: 'PUT', headers: auth, body: 'x' });
    expect(put.status).toBe(400);
    const reserved = await fetch(`${server.url}/${name}/storage/o/.dits-lock`, { method: 'PUT', headers: auth, body: 'x' });
    expect(reserved.status).toBe(400);
    const ok = await fetch(`${server.url}/${name}/storage/o/k`, { method: 'PUT', headers: auth, body: 'abcdef' });
    expect(ok.status).toBe(200);
    const partial = await fetch(`${server.url}/${name}/storage/o/k`, { headers: { ...auth, range: 'bytes=2-3' } });
    expect(partial.status).toBe(206);
    expect(partial.headers.get('content-range')).toBe('bytes 2-3/6');
    expect(await partial.text()).toBe('cd');
    const past = await fetch(`${server.url}/${name}/storage/o/k`, { headers: { ...auth, range: 'bytes=6-9' } });
    expect(past.status).toBe(416);
    const noPrecondition = await fetch(`${server.url}/${name}/storage/v/refs`, { method: 'POST', headers: auth, body: 'x' });
    expect(noPrecondition.status).toBe(428);
  });

  it('records reads of packs and manifests in the access tracker', async () => {
    const { storage, name } = freshRepo();
    const packId = 'a'.repeat(64);
    const fileId = 'b'.repeat(64);
    await storage.put(`v1/packs/${packId}.pack`, seededBytes(1000));
    await storage.put(`v1/objects/${fileId.slice(0, 2)}/${fileId.slice(2)}`, Buffer.from('manifest'));
    await storage.getBuffer(`v1/packs/${packId}.pack`, { start: 10, end: 20 });
    await readStreamToBuffer(await storage.get(`v1/objects/${fileId.slice(0, 2)}/${fileId.slice(2)}`));
    server.access.flush();
    const rows = server.db.sqlite
      .prepare('SELECT kind, object_id FROM access JOIN repos ON repos.id = access.repo_id WHERE repos.name = ? ORDER BY kind')
      .all(name);
    expect(rows).toEqual([
      { kind: 'file', object_id: fileId },
      { kind: 'pack', object_id: packId },
    ]);
  });
});

// ---------------------------------------------------------------------------------------
// End to end: the server as its own process (dist/server/main.js), real git clients.

const BUILT_SERVER = path.join(ROOT, 'dist', 'server', 'main.js');

interface ServerProc {
  child: ChildProcessWithoutNullStreams;
  url: string;
  port: number;
  /** request log lines seen so far */
  requests: { method: string; path: string; status: number }[];
  waitFor(pred: () => boolean, what: string, timeoutMs?: number): Promise<void>;
  exited: Promise<void>;
}

const procs: ServerProc[] = [];

async function spawnServerProcess(dataDir: string, port = 0, extra: { args?: string[]; env?: NodeJS.ProcessEnv } = {}): Promise<ServerProc> {
  const child = spawn(process.execPath, [BUILT_SERVER, '--data', dataDir, '--port', String(port), ...(extra.args ?? [])], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...extra.env },
  });
  const requests: ServerProc['requests'] = [];
  let url: string | undefined;
  let buf = '';
  let stderr = '';
  const listeners = new Set<() => void>();
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = JSON.parse(buf.slice(0, nl)) as Record<string, unknown>;
      buf = buf.slice(nl + 1);
      if (line['msg'] === 'listening') url = line['url'] as string;
      if (line['msg'] === 'request') requests.push({ method: line['method'] as string, path: line['path'] as string, status: line['status'] as number });
      for (const l of listeners) l();
    }
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const waitFor = (pred: () => boolean, what: string, timeoutMs = 60_000) =>
    new Promise<void>((resolve, reject) => {
      if (pred()) return resolve();
      const timer = setTimeout(() => {
        listeners.delete(check);
        reject(new Error(`timed out waiting for ${what}; stderr: ${stderr}`));
      }, timeoutMs);
      const check = () => {
        if (!pred()) return;
        clearTimeout(timer);
        listeners.delete(check);
        resolve();
      };
      listeners.add(check);
      void exited.then(() => {
        if (pred()) return;
        clearTimeout(timer);
        reject(new Error(`server exited before ${what}: ${stderr}`));
      });
    });
  await waitFor(() => url !== undefined, 'the listening line');
  const proc: ServerProc = { child, url: url!, port: Number(new URL(url!).port), requests, waitFor, exited };
  procs.push(proc);
  return proc;
}

/** A data dir with `repo`, a writer alice (token `tokenName`) and a site admin root (token `stats`). */
function seedWriterAndAdmin(dataDir: string, repo: string, tokenName: string): { token: string; adminToken: string } {
  const db = openDataDirDb(dataDir);
  try {
    addUser(db, 'alice');
    createRepo(db, repo);
    grant(db, 'alice', repo, 'write');
    const token = createToken(db, 'alice', tokenName);
    addUser(db, 'root', { admin: true });
    return { token, adminToken: createToken(db, 'root', 'stats') };
  } finally {
    db.close();
  }
}

async function killProc(p: ServerProc, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill(signal);
  await p.exited;
}

const CFG = { 'dits.chunkMin': '1024', 'dits.chunkAvg': '4096', 'dits.chunkMax': '16384', 'dits.smudgeInlineMax': '64k', 'dits.packSize': '256k' };
const fileHash = (f: string): string => blake3(readFileSync(f)).toString('hex');

describe('git through dits::http:// with the server as a process', () => {
  let sb: GitSandbox;
  let dataDir: string;
  let server: ServerProc;
  let tokens: { alice: string; viewer: string };

  beforeAll(async () => {
    expect(existsSync(BUILT_SERVER), `${BUILT_SERVER} is missing: run \`npm run build\``).toBe(true);
    dataDir = tempDir('dits-server-e2e-');
    // accounts and the repository made on the data dir before the server starts
    const db = openDataDirDb(dataDir);
    addUser(db, 'alice');
    addUser(db, 'viewer');
    createRepo(db, 'team/film');
    grant(db, 'alice', 'team/film', 'write');
    grant(db, 'viewer', 'team/film', 'read');
    tokens = { alice: createToken(db, 'alice', 'laptop'), viewer: createToken(db, 'viewer', 'laptop') };
    db.close();
    server = await spawnServerProcess(dataDir);
    sb = new GitSandbox('dits-server-remote-');
    // the token reaches git-remote-dits through git's own credential store
    sb.mustGit(['config', '--global', 'credential.helper', 'store'], sb.dir);
    writeFileSync(path.join(sb.env.HOME!, '.git-credentials'), `http://alice:${tokens.alice}@127.0.0.1:${server.port}\n`, { mode: 0o600 });
  });
  afterAll(async () => {
    for (const p of procs.splice(0)) await killProc(p, 'SIGKILL');
    sb?.cleanup();
  });

  const remoteUrl = () => `dits::http://127.0.0.1:${server.port}/team/film`;
  function clone(dir: string): string {
    const dest = path.join(sb.dir, dir);
    const args = ['clone', '-q'];
    for (const [k, v] of Object.entries(CFG)) args.push('-c', `${k}=${v}`);
    sb.mustGit([...args, remoteUrl(), dest], sb.dir);
    return dest;
  }

  it('push, clone and pull with byte-identical content; no token: the auth hint; read role: 403', async () => {
    const v1 = randomBytesSeeded(1_500_000, 5);
    const repo = sb.repo('src', { track: ['*.mov'], config: CFG, files: { 'clip.mov': v1, 'notes.txt': 'hello\n' } });
    sb.mustGit(['add', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', 'one'], repo);
    sb.mustGit(['remote', 'add', 'origin', remoteUrl()], repo);
    const push = sb.git(['push', '-u', 'origin', 'main'], repo);
    expect(push.status, push.stderr).toBe(0);
    expect(push.stderr).toMatch(/\[new branch\]\s+main -> main/);
    // the log lines arrive once this (spawnSync-blocked) event loop turns again
    await server.waitFor(() => server.requests.some((r) => r.method === 'PUT' && r.path.includes('/storage/o/v1/packs/') && r.status === 200), 'a logged pack upload');
    // and the clip's location table (a hint for readers of one file: the mount, the workers)
    await server.waitFor(() => server.requests.some((r) => r.method === 'PUT' && r.path.includes('/storage/o/v1/locations/') && r.status === 200), 'a logged location table upload');

    const c = clone('clone');
    expect(fileHash(path.join(c, 'clip.mov'))).toBe(fileHash(path.join(repo, 'clip.mov')));
    expect(readFileSync(path.join(c, 'notes.txt'), 'utf8')).toBe('hello\n');
    expect(sb.status(c)).toBe('');

    const v2 = Buffer.from(v1);
    v2.fill(7, 700_000, 700_200);
    writeFile(path.join(repo, 'clip.mov'), v2);
    sb.mustGit(['commit', '-q', '-am', 'two'], repo);
    const p2 = sb.git(['push'], repo);
    expect(p2.status, p2.stderr).toBe(0);
    sb.mustGit(['pull', '-q'], c);
    expect(fileHash(path.join(c, 'clip.mov'))).toBe(fileHash(path.join(repo, 'clip.mov')));
    expect(sb.mustGit(['rev-parse', 'HEAD'], c)).toBe(sb.mustGit(['rev-parse', 'HEAD'], repo));

    // no credential helper answers: the push fails and says how to get a token
    writeFile(path.join(repo, 'notes.txt'), 'three\n');
    sb.mustGit(['commit', '-q', '-am', 'three'], repo);
    const anon = sb.git(['-c', 'credential.helper=', 'push'], repo);
    expect(anon.status).not.toBe(0);
    expect(anon.stderr).toMatch(/needs a valid token/);
    expect(anon.stderr).toMatch(/git dits server token create/);
    expect(anon.stderr).toMatch(/git credential approve/);

    // DITS_TOKEN overrides the helper: a reader can fetch but not push
    const asViewer = sb.git(['push'], repo, undefined, { DITS_TOKEN: tokens.viewer });
    expect(asViewer.status).not.toBe(0);
    expect(asViewer.stderr).toMatch(/needs write access to team\/film; you have read/);
    const viewerFetch = sb.git(['fetch', '-q'], c, undefined, { DITS_TOKEN: tokens.viewer });
    expect(viewerFetch.status, viewerFetch.stderr).toBe(0);
    expect(sb.mustGit(['ls-remote', 'origin', 'refs/heads/main'], repo).split('\t')[0]).toBe(sb.mustGit(['rev-parse', 'HEAD~1'], repo).trim());
    const p3 = sb.git(['push'], repo);
    expect(p3.status, p3.stderr).toBe(0);
  });

  it('concurrent pushes of small commits to separate branches: all succeed, no ref update lost', async () => {
    const n = Number(process.env.DITS_TEST_CONCURRENT_PUSHES ?? 12);
    const base = path.join(sb.dir, 'src');
    const clones: string[] = [];
    for (let i = 0; i < n; i++) {
      const dest = path.join(sb.dir, `racer-${i}`);
      sb.mustGit(['clone', '-q', '--shared', base, dest], sb.dir);
      sb.mustGit(['remote', 'set-url', 'origin', remoteUrl()], dest);
      writeFile(path.join(dest, `racer-${i}.txt`), `racer ${i}\n`);
      sb.mustGit(['add', '.'], dest);
      sb.mustGit(['commit', '-q', '-m', `racer ${i}`], dest);
      clones.push(dest);
    }
    const results = await Promise.all(
      clones.map(
        (dest, i) =>
          new Promise<{ code: number | null; err: string }>((resolve) => {
            const child = spawn('git', ['push', 'origin', `HEAD:refs/heads/racer-${i}`], { cwd: dest, env: sb.env, stdio: ['ignore', 'ignore', 'pipe'] });
            let err = '';
            child.stderr.on('data', (d: Buffer) => (err += d.toString()));
            child.once('close', (code) => resolve({ code, err }));
          }),
      ),
    );
    for (const r of results) expect(r.code, r.err).toBe(0);
    const refs = sb.mustGit(['ls-remote', remoteUrl()], base);
    for (let i = 0; i < n; i++) {
      const head = sb.mustGit(['rev-parse', 'HEAD'], clones[i]!).trim();
      expect(refs).toContain(`${head}\trefs/heads/racer-${i}`);
    }
  });

  it('the server killed (SIGKILL) during a push: no ref to half-stored content; after a restart the re-run completes', async () => {
    const repo = path.join(sb.dir, 'src');
    const before = sb.mustGit(['rev-parse', 'HEAD'], repo).trim();
    const big = randomBytesSeeded(24 * 1024 * 1024, 9);
    writeFile(path.join(repo, 'big.mov'), big);
    sb.mustGit(['add', 'big.mov'], repo);
    sb.mustGit(['commit', '-q', '-m', 'big'], repo);
    const after = sb.mustGit(['rev-parse', 'HEAD'], repo).trim();

    const packPuts = () => server.requests.filter((r) => r.method === 'PUT' && r.path.includes('/v1/packs/') && r.path.endsWith('.pack')).length;
    const startPuts = packPuts();
    const push = spawn('git', ['push'], { cwd: repo, env: sb.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let pushErr = '';
    push.stderr.on('data', (d: Buffer) => (pushErr += d.toString()));
    const pushDone = new Promise<number | null>((resolve) => push.once('close', (code) => resolve(code)));
    await server.waitFor(() => packPuts() >= startPuts + 3, 'three pack uploads');
    await killProc(server, 'SIGKILL');
    const code = await pushDone;
    expect(code, pushErr).not.toBe(0);

    server = await spawnServerProcess(dataDir, server.port);
    const remoteMain = sb.mustGit(['ls-remote', 'origin', 'refs/heads/main'], repo).split('\t')[0];
    expect(remoteMain).toBe(before);

    const again = sb.git(['push'], repo);
    expect(again.status, again.stderr).toBe(0);
    expect(sb.mustGit(['ls-remote', 'origin', 'refs/heads/main'], repo).split('\t')[0]).toBe(after);
    const c = clone('after-crash');
    expect(fileHash(path.join(c, 'big.mov'))).toBe(blake3(big).toString('hex'));
    expect(sb.status(c)).toBe('');
  });
});

describe('server memory while 1 GiB passes through', () => {
  let s3: S3Process | undefined;
  afterAll(async () => {
    await s3?.close();
  });

  for (const behind of ['files', 's3'] as const) {
    it(`streams a 1 GiB PUT and GET (${behind} behind the server) with the server process under 200 MiB resident${behind === 's3' ? ', the bytes direct to S3' : ''}`, async () => {
      const dataDir = tempDir('dits-server-mem-');
      const { token, adminToken } = seedWriterAndAdmin(dataDir, 'team/big', 'mem');
      let extra = {};
      if (behind === 's3') {
        s3 = await startS3rverProcess(['media']);
        extra = {
          args: ['--storage', 's3://media/srv'],
          env: { AWS_ENDPOINT_URL: s3.endpoint, AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey, AWS_REGION: 'us-east-1' },
        };
      }
      const proc = await spawnServerProcess(dataDir, 0, extra);
      const peakMiB = () => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${proc.child.pid}/status`, 'utf8'))![1]) / 1024;
      try {
        const storage = new HttpStorage({ baseUrl: `${proc.url}/team/big`, token: async () => token });
        const total = 1024 * 1024 * 1024;
        const piece = seededBytes(1024 * 1024, 3);
        const body = () => {
          let sent = 0;
          return new Readable({
            read() {
              if (sent >= total) return void this.push(null);
              sent += piece.length;
              this.push(piece);
            },
          });
        };
        // the client streams too: its resident set must not grow by the body's size
        const baseline = process.memoryUsage().rss;
        let clientPeak = baseline;
        const sampler = setInterval(() => (clientPeak = Math.max(clientPeak, process.memoryUsage().rss)), 20);
        try {
          await storage.put('v1/packs/huge.pack', body, { size: total });
        } finally {
          clearInterval(sampler);
        }
        expect((clientPeak - baseline) / 2 ** 20).toBeLessThan(256);
        expect((await storage.head('v1/packs/huge.pack'))?.size).toBe(total);
        let read = 0;
        let mismatch = false;
        for await (const part of await storage.get('v1/packs/huge.pack')) {
          const b = part as Buffer;
          // every MiB of the body is the same seeded piece
          for (let i = 0; i < b.length; i += 4099) if (b[i] !== piece[(read + i) % piece.length]) mismatch = true;
          read += b.length;
        }
        expect(read).toBe(total);
        expect(mismatch).toBe(false);
        expect(peakMiB()).toBeLessThan(200);
        // what passed through the server: with S3 behind, none of the pack's bytes
        const res = await fetch(`${proc.url}/api/storage`, { headers: { authorization: `Bearer ${adminToken}` } });
        const { transfer } = (await res.json()) as { transfer: Record<string, number> };
        if (behind === 's3') {
          expect(storage.counts).toMatchObject({ directPuts: 1, directGets: 1, proxiedPuts: 0, proxiedPackGets: 0 });
          expect(transfer).toMatchObject({ proxiedBytesIn: 0, proxiedBytesOut: 0, presignedPuts: 1, presignedGets: 1, presignedBytesIn: total });
        } else {
          expect(transfer).toMatchObject({ proxiedBytesIn: total, proxiedBytesOut: total, presignedPuts: 0 });
        }
        process.stdout.write(`1 GiB put+get, ${behind} behind: server peak ${Math.round(peakMiB())} MiB, proxied ${transfer['proxiedBytesIn']} B in / ${transfer['proxiedBytesOut']} B out\n`);
      } finally {
        await killProc(proc, 'SIGKILL');
        rmSync(dataDir, { recursive: true, force: true });
      }
    });
  }
});

describe('git push and clone through the server with S3 behind: pack bytes go direct', () => {
  let s3: S3Process | undefined;
  let sb: GitSandbox | undefined;
  afterAll(async () => {
    sb?.cleanup();
    await s3?.close();
  });

  it('pushes two versions of a 64 MiB file (96 MiB of packs) straight to S3 (the server proxies none of their bytes), clones it back byte-identical; server status shows sizes and dedup', async () => {
    // DITS_TEST_DIRECT_PUSH_MIB=1024 measures a bigger push (not in CI: minutes)
    const mib = Number(process.env.DITS_TEST_DIRECT_PUSH_MIB ?? 64);
    const MiB = 1024 * 1024;
    s3 = await startS3rverProcess(['media']);
    const dataDir = tempDir('dits-server-direct-');
    const { token, adminToken } = seedWriterAndAdmin(dataDir, 'team/film', 'laptop');
    const awsEnv = { AWS_ENDPOINT_URL: s3.endpoint, AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey, AWS_REGION: 'us-east-1' };
    const proc = await spawnServerProcess(dataDir, 0, { args: ['--storage', 's3://media/srv'], env: awsEnv });
    const peakMiB = () => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${proc.child.pid}/status`, 'utf8'))![1]) / 1024;
    try {
      sb = new GitSandbox('dits-server-direct-');
      sb.mustGit(['config', '--global', 'credential.helper', 'store'], sb.dir);
      writeFileSync(path.join(sb.env.HOME!, '.git-credentials'), `http://alice:${token}@127.0.0.1:${proc.port}\n`, { mode: 0o600 });
      const cfg = { 'dits.chunkMin': '16384', 'dits.chunkAvg': '65536', 'dits.chunkMax': '262144', 'dits.packSize': '8m' };
      const v1 = randomBytesSeeded(mib * MiB, 21);
      // a second version sharing its first half: dedup on the remote
      const v2 = Buffer.concat([v1.subarray(0, (mib / 2) * MiB), randomBytesSeeded((mib / 2) * MiB, 22)]);
      const repo = sb.repo('src', { track: ['*.mov'], config: cfg, files: { 'a.mov': v1 } });
      sb.mustGit(['add', '.'], repo);
      sb.mustGit(['commit', '-q', '-m', 'one'], repo);
      writeFile(path.join(repo, 'a.mov'), v2);
      sb.mustGit(['commit', '-q', '-am', 'two'], repo);
      const remote = `dits::http://127.0.0.1:${proc.port}/team/film`;
      sb.mustGit(['remote', 'add', 'origin', remote], repo);
      const push = sb.git(['push', '-u', 'origin', 'main'], repo);
      expect(push.status, push.stderr).toBe(0);

      const dest = path.join(sb.dir, 'clone');
      const args = ['clone', '-q'];
      for (const [k, v] of Object.entries(cfg)) args.push('-c', `${k}=${v}`);
      sb.mustGit([...args, remote, dest], sb.dir);
      expect(fileHash(path.join(dest, 'a.mov'))).toBe(blake3(v2).toString('hex'));
      sb.mustGit(['checkout', '-q', 'HEAD~1'], dest);
      expect(fileHash(path.join(dest, 'a.mov'))).toBe(blake3(v1).toString('hex'));

      // the admin command on the data dir finds the S3 back end the server recorded
      const status = sb.run(path.join(ROOT, 'bin', 'git-dits'), ['server', 'status', '--data', dataDir, '--json'], sb.dir, undefined, awsEnv);
      expect(status.status, status.stderr).toBe(0);
      type Size = { storedBytes: number; packBytes: number; logicalBytes: number; dedupRatio: number; manifests: number };
      const parsed = JSON.parse(status.stdout) as { storage: string; repos: { name: string; size: Size }[] };
      expect(parsed.storage).toBe('s3://media/srv');
      const film = parsed.repos.find((r) => r.name === 'team/film')!;
      expect(film.size.manifests).toBe(2);
      expect(film.size.logicalBytes).toBe(2 * mib * MiB);
      // half of v2 is v1's: stored about 1.5 x mib (less if the seeded halves overlap)
      expect(film.size.storedBytes).toBeLessThan(1.56 * mib * MiB);
      expect(film.size.dedupRatio).toBeGreaterThan(1.28);

      const res = await fetch(`${proc.url}/api/storage`, { headers: { authorization: `Bearer ${adminToken}` } });
      const { transfer } = (await res.json()) as { transfer: Record<string, number> };
      // every pack byte went direct; through the server only indexes, manifests, refs, format
      expect(transfer['presignedBytesIn']).toBeGreaterThanOrEqual(film.size.packBytes);
      expect(transfer['presignedGets']).toBeGreaterThan(0);
      expect(transfer['proxiedBytesIn']).toBeLessThan(film.size.storedBytes - film.size.packBytes + 64 * 1024);
      expect(transfer['proxiedBytesOut']).toBeLessThan(2 * (film.size.storedBytes - film.size.packBytes) + 64 * 1024);
      expect(peakMiB()).toBeLessThan(200);
      process.stdout.write(
        `git push+clone, S3 behind: ${film.size.packBytes} B of packs; server peak ${Math.round(peakMiB())} MiB; direct ${transfer['presignedBytesIn']} B up; proxied ${transfer['proxiedBytesIn']} B in / ${transfer['proxiedBytesOut']} B out\n`,
      );
      const human = sb.run(path.join(ROOT, 'bin', 'git-dits'), ['server', 'status', '--data', dataDir], sb.dir, undefined, awsEnv);
      expect(human.stdout).toMatch(/team\/film[\s\S]*stored \d+(\.\d)? [MG]iB in \d+ object\(s\) \(\d+ pack\(s\), .*\); logical \d+(\.\d)? [MG]iB in 2 file version\(s\); dedup ratio \d+\.\d\dx/);
      process.stdout.write(human.stdout);
    } finally {
      await killProc(proc, 'SIGKILL');
    }
  });
});
