/**
 * Lock API throughput and latency against a real server process on loopback, measured
 * with autocannon's programmatic API.
 *
 *   npm run build && node dist/bench/server-locks.js [--duration 10] [--connections 10] [--json]
 *
 * Scenarios (each on its own repository):
 *   lock-create  POST /locks, a new path every request (201 each; one insert + audit row)
 *   verify       POST /locks/verify on a repository with 200 locks, half the caller's
 *                (one page of 100)
 *   lock-held    POST /locks on a path someone else holds (409 + a 'denied' audit row)
 * Target from issue 6: at least 2,000 requests/s with p99 under 20 ms.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { addUser, createRepo, createToken, grant } from '../server/admin.js';
import { openDataDirDb } from '../server/data-dir.js';
import { LockClient } from '../src/locking/lock-client.js';

interface Histogram {
  average: number;
  p50: number;
  p99: number;
  max: number;
}
interface AutocannonResult {
  requests: Histogram;
  latency: Histogram;
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  statusCodeStats: Record<string, { count: number }>;
}
interface AutocannonRequest {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
  setupRequest?: (req: AutocannonRequest) => AutocannonRequest;
}
type Autocannon = (opts: {
  url: string;
  connections: number;
  duration: number;
  headers?: Record<string, string>;
  requests: AutocannonRequest[];
}) => Promise<AutocannonResult>;

const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

const TARGET_RPS = 2000;
const TARGET_P99_MS = 20;

function parseArgs(argv: string[]): { duration: number; connections: number; json: boolean } {
  const out = { duration: 10, connections: 10, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') out.json = true;
    else if (a === '--duration') out.duration = Number(argv[++i]);
    else if (a === '--connections') out.connections = Number(argv[++i]);
    else throw new Error(`unknown argument ${a}`);
  }
  return out;
}

async function startServerProcess(dataDir: string): Promise<{ url: string; stop(): Promise<number | null> }> {
  const main = join(dirname(fileURLToPath(import.meta.url)), '..', 'server', 'main.js');
  const child = spawn(process.execPath, [main, '--data', dataDir, '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer): void => {
      buf += d.toString();
      const m = /"msg":"listening","url":"([^"]+)"/.exec(buf);
      if (m !== null) {
        // keep draining stdout (one log line per request) so the pipe never fills
        child.stdout.off('data', onData);
        child.stdout.resume();
        resolve(m[1]!);
      }
    };
    child.stdout.on('data', onData);
    void exited.then((code) => reject(new Error(`server exited with ${code} before listening`)));
  });
  return {
    url,
    stop: () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

interface Row {
  scenario: string;
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  total: number;
  statusCodes: Record<string, number>;
  errors: number;
  pass: boolean;
}

function toRow(scenario: string, r: AutocannonResult, expectedStatus: number): Row {
  const statusCodes: Record<string, number> = {};
  for (const [code, s] of Object.entries(r.statusCodeStats ?? {})) statusCodes[code] = s.count;
  const total = Object.values(statusCodes).reduce((a, b) => a + b, 0);
  const onlyExpected = Object.keys(statusCodes).every((c) => Number(c) === expectedStatus);
  return {
    scenario,
    requestsPerSec: Math.round(r.requests.average),
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    maxMs: r.latency.max,
    total,
    statusCodes,
    errors: r.errors + r.timeouts,
    pass: r.requests.average >= TARGET_RPS && r.latency.p99 < TARGET_P99_MS && onlyExpected && r.errors === 0,
  };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const dataDir = mkdtempSync(join(tmpdir(), 'dits-bench-locks-'));
  const server = await startServerProcess(dataDir);
  try {
    const db = openDataDirDb(dataDir);
    addUser(db, 'alice');
    addUser(db, 'bob');
    for (const repo of ['bench/create', 'bench/verify', 'bench/held']) {
      createRepo(db, repo);
      grant(db, 'alice', repo, 'write');
      grant(db, 'bob', repo, 'write');
    }
    const alice = createToken(db, 'alice', 'bench');
    const bob = createToken(db, 'bob', 'bench');
    db.close();

    const setupVerify = [new LockClient({ repoUrl: `${server.url}/bench/verify`, token: () => alice }), new LockClient({ repoUrl: `${server.url}/bench/verify`, token: () => bob })];
    for (let i = 0; i < 200; i++) await setupVerify[i % 2]!.lock(`reel-${i}/edit.prproj`);
    await new LockClient({ repoUrl: `${server.url}/bench/held`, token: () => bob }).lock('held.prproj');

    const headers = { authorization: `Bearer ${alice}`, 'content-type': 'application/vnd.git-lfs+json' };
    const common = { url: server.url, connections: args.connections, duration: args.duration, headers };
    const rows: Row[] = [];

    let n = 0;
    const create = await autocannon({
      ...common,
      requests: [
        {
          method: 'POST',
          path: '/bench/create/locks',
          setupRequest: (req) => ({ ...req, body: JSON.stringify({ path: `shots/${n++}/clip.mov` }) }),
        },
      ],
    });
    rows.push(toRow('lock-create', create, 201));

    const verify = await autocannon({ ...common, requests: [{ method: 'POST', path: '/bench/verify/locks/verify', body: '{}' }] });
    rows.push(toRow('verify (200 locks)', verify, 200));

    const held = await autocannon({ ...common, requests: [{ method: 'POST', path: '/bench/held/locks', body: '{"path":"held.prproj"}' }] });
    rows.push(toRow('lock-held (409)', held, 409));

    // other work on the machine shows up in p99; say how busy it was
    const load = loadavg().map((x) => Math.round(x * 100) / 100);
    if (args.json) {
      process.stdout.write(JSON.stringify({ connections: args.connections, duration: args.duration, cpus: cpus().length, loadavg: load, targetRps: TARGET_RPS, targetP99Ms: TARGET_P99_MS, rows }, null, 2) + '\n');
    } else {
      process.stdout.write(`lock API on ${server.url}, ${args.connections} connections, ${args.duration} s each (target >= ${TARGET_RPS} req/s, p99 < ${TARGET_P99_MS} ms); ${cpus().length} CPUs, load average ${load.join(' ')}\n`);
      for (const r of rows) {
        process.stdout.write(
          `${r.scenario.padEnd(20)} ${String(r.requestsPerSec).padStart(6)} req/s  p50 ${String(r.p50Ms).padStart(3)} ms  p99 ${String(r.p99Ms).padStart(3)} ms  max ${String(r.maxMs).padStart(4)} ms  ${r.total} requests ${JSON.stringify(r.statusCodes)} errors ${r.errors}  ${r.pass ? 'PASS' : 'FAIL'}\n`,
        );
      }
    }
    if (rows.some((r) => !r.pass)) process.exitCode = 1;
  } finally {
    const code = await server.stop();
    if (code !== 0) process.stderr.write(`server exited with ${code}\n`);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
