/**
 * The server as a real process on a free loopback port: the compiled
 * `dist/server/main.js` (built by test/global-setup.ts),
 * users and tokens created through the admin library on its data dir while it runs,
 * two real clients contending for locks, and graceful shutdown on SIGTERM.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DitsUserError } from '../src/errors.js';
import { LockClient, LockHeldError } from '../src/locking/lock-client.js';
import { findPushConflicts } from '../src/locking/push-conflicts.js';
import { addUser, createRepo, createToken, grant, listAudit, revokeToken } from './admin.js';
import { openDataDirDb } from './data-dir.js';
import { parseServerArgs, startServer } from './main.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const built = join(root, 'dist', 'server', 'main.js');

beforeAll(() => {
  // test/global-setup.ts compiles the project before any test runs; building here too
  // would rewrite dist/ under other tests' feet.
  expect(existsSync(built), `${built} is missing: run \`npm run build\` (or vitest with the project config)`).toBe(true);
});

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'dits-server-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Proc {
  child: ChildProcessWithoutNullStreams;
  url: string;
  lines: Record<string, unknown>[];
  exited: Promise<number | null>;
  waitForLine(pred: (l: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
}

const running: Proc[] = [];
afterEach(() => {
  for (const p of running.splice(0)) if (p.child.exitCode === null) p.child.kill('SIGKILL');
});

async function spawnServer(dataDir: string): Promise<Proc> {
  const child = spawn(process.execPath, [built, '--data', dataDir, '--port', '0'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const lines: Record<string, unknown>[] = [];
  const waiters: { pred: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }[] = [];
  let buf = '';
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = JSON.parse(buf.slice(0, nl)) as Record<string, unknown>;
      buf = buf.slice(nl + 1);
      lines.push(line);
      for (const w of waiters.splice(0)) (w.pred(line) ? w.resolve(line) : waiters.push(w));
    }
  });
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  const waitForLine = (pred: (l: Record<string, unknown>) => boolean) => {
    const found = lines.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise<Record<string, unknown>>((res, rej) => {
      waiters.push({ pred, resolve: res });
      void exited.then((code) => rej(new Error(`server exited (${code}) first: ${stderr}`)));
    });
  };
  const listening = await waitForLine((l) => l['msg'] === 'listening');
  const proc: Proc = { child, url: listening['url'] as string, lines, exited, waitForLine };
  running.push(proc);
  return proc;
}

describe('server process', () => {
  it('serves locks to two real clients, then shuts down cleanly on SIGTERM', async () => {
    const dataDir = tempDir();
    const server = await spawnServer(dataDir);
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(await (await fetch(`${server.url}/health`)).json()).toEqual({ status: 'ok' });

    // administration on the data dir while the server runs, as the CLI does
    const admin = openDataDirDb(dataDir);
    addUser(admin, 'alice');
    addUser(admin, 'bob');
    addUser(admin, 'lead');
    createRepo(admin, 'team/film');
    grant(admin, 'alice', 'team/film', 'write');
    grant(admin, 'bob', 'team/film', 'write');
    grant(admin, 'lead', 'team/film', 'admin');
    const tokens = { alice: createToken(admin, 'alice', 'e2e'), bob: createToken(admin, 'bob', 'e2e'), lead: createToken(admin, 'lead', 'e2e') };
    const repoUrl = `${server.url}/team/film`;
    const alice = new LockClient({ repoUrl, token: () => tokens.alice });
    const bob = new LockClient({ repoUrl, token: () => tokens.bob });
    const lead = new LockClient({ repoUrl, token: () => tokens.lead });

    // the same path at the same instant, many times: exactly one winner each time
    for (let i = 0; i < 10; i++) {
      const path = `edit/cut-${i}.prproj`;
      const results = await Promise.allSettled([alice.lock(path), bob.lock(path)]);
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      expect(lost[0]!.reason).toBeInstanceOf(LockHeldError);
      expect((lost[0]!.reason as LockHeldError).lock.owner.name).toBe((won[0] as PromiseFulfilledResult<{ owner: { name: string } }>).value.owner.name);
    }
    expect(await alice.list()).toHaveLength(10);

    // pre-push check: bob changes a file alice holds
    const aliceHolds = (await alice.list({ mine: true })).map((l) => l.path);
    const bobView = await bob.verify();
    const conflicts = findPushConflicts([...aliceHolds, 'unlocked.mov'], bobView);
    expect(conflicts.map((c) => c.path).sort()).toEqual([...aliceHolds].sort());
    expect(conflicts.every((c) => c.lock.owner.name === 'alice')).toBe(true);

    if (aliceHolds.length > 0) {
      const target = aliceHolds[0]!;
      await expect(bob.unlock(target)).rejects.toMatchObject({ code: 'forbidden' });
      await expect(bob.unlock(target, { force: true })).rejects.toMatchObject({ code: 'forbidden' });
      expect((await lead.unlock(target, { force: true })).owner.name).toBe('alice');
    }

    // revocation takes effect at once, even written by another process
    revokeToken(admin, 'bob', 'e2e');
    const err = await new LockClient({ repoUrl, token: () => tokens.bob }).list().catch((e: unknown) => e);
    expect((err as DitsUserError).code).toBe('auth-required');
    admin.close();

    const requestLines = server.lines.filter((l) => l['msg'] === 'request');
    expect(requestLines.some((l) => l['method'] === 'POST' && l['path'] === '/team/film/locks' && l['status'] === 409 && typeof l['ms'] === 'number')).toBe(true);
    expect(requestLines.some((l) => l['user'] === 'lead')).toBe(true);

    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    const after = openDataDirDb(dataDir);
    expect(after.sqlite.pragma('integrity_check', { simple: true })).toBe('ok');
    const actions = listAudit(after, { repo: 'team/film', limit: 1000 }).map((e) => e.action);
    expect(actions.filter((a) => a === 'lock.create')).toHaveLength(10);
    expect(actions.filter((a) => a === 'lock.denied')).toHaveLength(10);
    expect(actions.filter((a) => a === 'lock.force-unlock')).toHaveLength(aliceHolds.length > 0 ? 1 : 0);
    after.close();
    expect(existsSync(join(dataDir, 'server.sqlite-wal')) ? statSync(join(dataDir, 'server.sqlite-wal')).size : 0).toBe(0);
  });

  it('keeps one winner per path when two server processes share the data dir', async () => {
    const dataDir = tempDir();
    const admin = openDataDirDb(dataDir);
    for (const u of ['alice', 'bob']) addUser(admin, u);
    createRepo(admin, 'team/film');
    grant(admin, 'alice', 'team/film', 'write');
    grant(admin, 'bob', 'team/film', 'write');
    const ta = createToken(admin, 'alice', 't');
    const tb = createToken(admin, 'bob', 't');
    admin.close();
    const [one, two] = await Promise.all([spawnServer(dataDir), spawnServer(dataDir)]);
    const alice = new LockClient({ repoUrl: `${one.url}/team/film`, token: () => ta });
    const bob = new LockClient({ repoUrl: `${two.url}/team/film`, token: () => tb });
    for (let i = 0; i < 30; i++) {
      const results = await Promise.allSettled([alice.lock(`shared-${i}.mov`), bob.lock(`shared-${i}.mov`)]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const lost = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')!;
      expect(lost.reason).toBeInstanceOf(LockHeldError);
    }
    expect(await alice.list()).toHaveLength(30);
    one.child.kill('SIGTERM');
    two.child.kill('SIGTERM');
    expect(await Promise.all([one.exited, two.exited])).toEqual([0, 0]);
    const after = openDataDirDb(dataDir);
    expect(after.sqlite.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(after.stmt('SELECT COUNT(*) AS n FROM locks').get()).toEqual({ n: 30 });
    after.close();
  });

  it('lets a request in flight finish on SIGTERM, refuses new connections, exits 0', async () => {
    const dataDir = tempDir();
    const admin = openDataDirDb(dataDir);
    addUser(admin, 'alice');
    createRepo(admin, 'team/film');
    grant(admin, 'alice', 'team/film', 'write');
    const token = createToken(admin, 'alice', 'e2e');
    admin.close();
    const server = await spawnServer(dataDir);
    const { port } = new URL(server.url);

    // a lock request whose body arrives in two halves, with SIGTERM in between; the
    // connection is first proven accepted by a complete request on it (keep-alive)
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    await new Promise<void>((res, rej) => {
      request({ host: '127.0.0.1', port, path: '/health', agent }, (r) => {
        r.resume();
        r.on('end', () => res());
      })
        .on('error', rej)
        .end();
    });
    const body = JSON.stringify({ path: 'slow/arrival.mov' });
    const half = Math.floor(body.length / 2);
    let finish: () => void = () => {};
    const response = new Promise<{ status: number; body: string }>((res, rej) => {
      const req = request(
        { host: '127.0.0.1', port, agent, method: 'POST', path: '/team/film/locks', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
        (r) => {
          let text = '';
          r.on('data', (d: Buffer) => (text += d.toString()));
          r.on('end', () => res({ status: r.statusCode ?? 0, body: text }));
        },
      );
      req.on('error', rej);
      req.write(body.slice(0, half));
      finish = () => req.end(body.slice(half));
    });
    response.catch(() => {}); // awaited below; not an unhandled rejection if the test fails first
    await new Promise((r) => setTimeout(r, 300));
    server.child.kill('SIGTERM');
    const shutting = await server.waitForLine((l) => l['msg'] === 'shutting down');
    expect(shutting['inFlight']).toBe(1);

    // no new connections once shutdown has started
    const refused = await fetch(`${server.url}/health`).then(
      () => 'answered',
      (e: { cause?: { code?: string } }) => e.cause?.code,
    );
    expect(refused).toBe('ECONNREFUSED');

    finish();
    const res = await response;
    expect(res.status).toBe(201);
    expect(JSON.parse(res.body).lock.path).toBe('slow/arrival.mov');
    expect(await server.exited).toBe(0);
    agent.destroy();
    expect(server.lines.some((l) => l['msg'] === 'stopped')).toBe(true);

    const after = openDataDirDb(dataDir);
    expect(after.sqlite.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(after.stmt('SELECT path FROM locks').all()).toEqual([{ path: 'slow/arrival.mov' }]);
    after.close();
  });
});

describe('startServer in process', () => {
  it('binds loopback by default, flushes access records and closes idempotently', async () => {
    const dataDir = tempDir();
    const logs: Record<string, unknown>[] = [];
    const log = (level: string) => (msg: string, f?: Record<string, unknown>) => logs.push({ level, msg, ...f });
    const s = await startServer({ dataDir, logger: { info: log('info'), warn: log('warn'), error: log('error') } });
    expect(s.host).toBe('127.0.0.1');
    expect(s.port).toBeGreaterThan(0);
    createRepo(s.db, 'team/film');
    s.access.recordAccess('team/film', 'pack', 'abc');
    const res = await fetch(`${s.url}/team/film/locks`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Basic realm="dits"');

    // bodies over the socket: declared length over the limit, malformed, unknown field
    addUser(s.db, 'alice');
    grant(s.db, 'alice', 'team/film', 'write');
    const auth = { authorization: `Bearer ${createToken(s.db, 'alice', 't')}` };
    const post = (body: string) => fetch(`${s.url}/team/film/locks`, { method: 'POST', headers: auth, body });
    expect((await post(JSON.stringify({ path: 'x'.repeat(1024 * 1024) }))).status).toBe(413);
    expect((await (await post('{"path":')).json()).code).toBe('malformed-json');
    expect((await (await post('{"path":"a","owner":"bob"}')).json()).message).toBe('unknown field "owner" in body');
    expect((await post('{"path":"a"}')).status).toBe(201);
    await Promise.all([s.close(), s.close()]);
    const db = openDataDirDb(dataDir);
    expect(db.stmt('SELECT object_id FROM access').all()).toEqual([{ object_id: 'abc' }]);
    db.close();
    expect(logs.map((l) => l['msg'])).toEqual(['listening', ...Array(5).fill('request'), 'shutting down', 'storage transfer totals', 'stopped']);
  });

  it('cuts requests still in flight when the shutdown timeout passes', async () => {
    const dataDir = tempDir();
    const s = await startServer({ dataDir, shutdownTimeoutMs: 200 });
    addUser(s.db, 'alice');
    createRepo(s.db, 'team/film');
    grant(s.db, 'alice', 'team/film', 'write');
    const token = createToken(s.db, 'alice', 't');
    const outcome = new Promise<string>((res) => {
      const req = request({ host: '127.0.0.1', port: s.port, method: 'POST', path: '/team/film/locks', headers: { authorization: `Bearer ${token}`, 'content-length': 100 } }, () => res('answered'));
      req.on('error', (e: { code?: string }) => res(e.code ?? 'error'));
      req.write('{"path":'); // and never the rest
    });
    await new Promise((r) => setTimeout(r, 100));
    const started = Date.now();
    await s.close();
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(150);
    expect(took).toBeLessThan(2000);
    expect(await outcome).toBe('ECONNRESET');
    expect(s.db.open).toBe(false);
  });

  it('does not wait for the timeout when clients keep reusing connections', async () => {
    const s = await startServer({ dataDir: tempDir(), shutdownTimeoutMs: 10_000 });
    const agent = new Agent({ keepAlive: true, maxSockets: 4 });
    let stop = false;
    let answered = 0;
    const get = () =>
      new Promise<void>((res, rej) => {
        const r = request({ host: '127.0.0.1', port: s.port, path: '/health', agent }, (resp) => {
          resp.resume();
          resp.on('end', () => {
            answered++;
            res();
          });
        });
        r.on('error', rej);
        r.end();
      });
    const loops = [0, 1, 2, 3].map(async () => {
      while (!stop) await get().catch(() => (stop = true));
    });
    while (answered < 50) await new Promise((r) => setTimeout(r, 5));
    const started = Date.now();
    await s.close();
    expect(Date.now() - started).toBeLessThan(2_000);
    stop = true;
    await Promise.all(loops);
    agent.destroy();
  });
});

describe('parseServerArgs', () => {
  it('takes --data, --host and --port and refuses anything else', () => {
    expect(parseServerArgs(['--data', '/d'])).toEqual({ dataDir: '/d', host: undefined, port: undefined });
    expect(parseServerArgs(['--port', '8080', '--data', '/d', '--host', '0.0.0.0'])).toEqual({ dataDir: '/d', host: '0.0.0.0', port: 8080 });
    expect(() => parseServerArgs([])).toThrow('--data DIR is required');
    expect(() => parseServerArgs(['--data'])).toThrow('needs a value');
    expect(() => parseServerArgs(['--data', '/d', '--port', '70000'])).toThrow('invalid port');
    expect(() => parseServerArgs(['--data', '/d', '--verbose'])).toThrow('unknown argument --verbose');
  });

  it('takes --storage and --proxy-bytes (S3 behind, every byte through the server)', () => {
    expect(parseServerArgs(['--data', '/d', '--storage', 's3://b/p', '--proxy-bytes'])).toEqual({ dataDir: '/d', host: undefined, port: undefined, storage: 's3://b/p', direct: false });
    expect(parseServerArgs(['--data', '/d', '--storage', 's3://b/p'])).not.toHaveProperty('direct');
  });
});
