/**
 * The server's job queue end to end: `git dits serve --workers 2` as its own process, a
 * small video pushed through a dits::http remote queues one 'variants' job, a worker is
 * killed (SIGKILL) mid-job, the job is leased again and finishes (its source streamed from
 * the server's storage into ffmpeg); `git dits server status` and GET /api/jobs show it.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { addUser, createRepo, createToken, grant } from '../server/admin.js';
import { openDataDirDb } from '../server/data-dir.js';
import { JobQueue } from '../server/jobs/queue.js';
import { DITS_BIN, GitSandbox } from './helpers/git-env.js';

const dirs: string[] = [];
let sb: GitSandbox | undefined;
let serve: ChildProcessWithoutNullStreams | undefined;
afterAll(async () => {
  if (serve && serve.exitCode === null && serve.signalCode === null) {
    serve.kill('SIGTERM'); // its workers stop with it
    await new Promise((r) => serve!.once('exit', r));
  }
  sb?.cleanup();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  dirs.push(d);
  return d;
}

async function until<T>(what: string, probe: () => T | undefined | false, timeoutMs = 60_000, log?: () => string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${log?.() ?? ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

it('two workers, one killed mid-job: the job is leased again and finishes; status and the API show it', async () => {
  const dataDir = tempDir('dits-jobs-data-');
  const db = openDataDirDb(dataDir);
  addUser(db, 'alice');
  createRepo(db, 'team/film');
  grant(db, 'alice', 'team/film', 'write');
  const token = createToken(db, 'alice', 'laptop');
  addUser(db, 'root', { admin: true });
  const adminToken = createToken(db, 'root', 'ops');
  db.close();

  // the lease is 3 s (heartbeats every second); each job is held 3 s before its handler
  // starts, so a worker can be killed while it holds one
  serve = spawn(process.execPath, [DITS_BIN, 'serve', '--data', dataDir, '--port', '0', '--workers', '2', '--lease', '3'], {
    env: { ...process.env, DITS_WORKER_HOLD_MS: '3000' },
  });
  let stdout = '';
  let stderr = '';
  serve.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  serve.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const logs = () => `stdout: ${stdout}\nstderr: ${stderr.slice(-4000)}`;
  const url = await until('the server to listen', () => /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout)?.[1], 30_000, logs);

  const queueDb = openDataDirDb(dataDir);
  const queue = new JobQueue(queueDb);
  try {
    await until('two workers', () => queue.listWorkers().length === 2, 30_000, logs);

    sb = new GitSandbox('dits-jobs-');
    sb.mustGit(['config', '--global', 'credential.helper', 'store'], sb.dir);
    fs.writeFileSync(path.join(sb.env.HOME!, '.git-credentials'), `http://alice:${token}@${new URL(url).host}\n`, { mode: 0o600 });
    const repo = sb.repo('src', { track: ['*.mov', '*.bin'], config: { 'dits.packSize': '256k' } });
    const clip = path.join(repo, 'shot.mov');
    const ff = spawnSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=160x90:rate=25:duration=2', '-c:v', 'mpeg4', clip], { encoding: 'utf8' });
    expect(ff.status, ff.stderr).toBe(0);
    fs.writeFileSync(path.join(repo, 'notes.bin'), Buffer.alloc(100_000, 3)); // not video: no job
    sb.mustGit(['add', '.'], repo);
    sb.mustGit(['commit', '-q', '-m', 'shot'], repo);
    sb.mustGit(['remote', 'add', 'origin', `dits::${url}/team/film`], repo);
    const push = sb.git(['push', '-u', 'origin', 'main'], repo);
    expect(push.status, push.stderr).toBe(0);

    // one job, for the video only; find the worker that leased it and kill it mid-job
    const leased = await until('the job to be leased', () => queue.list({ state: 'leased' })[0], 30_000, logs);
    expect(queue.list()).toHaveLength(1);
    const file = sb.mustGit(['cat-file', '-p', 'HEAD:shot.mov'], repo);
    expect(leased).toMatchObject({ repo: 'team/film', kind: 'variants', original: /oid blake3:([0-9a-f]{64})/.exec(file)![1], manifest: /manifest blake3:([0-9a-f]{64})/.exec(file)![1], attempts: 1 });
    const victim = queue.listWorkers().find((w) => w.id === leased.leaseOwner)!;
    expect(victim, `no worker named ${leased.leaseOwner}`).toBeDefined();
    process.kill(victim.pid, 'SIGKILL');

    const done = await until('the job to finish', () => {
      const j = queue.get(leased.id)!;
      return j.state === 'done' ? j : undefined;
    }, 60_000, logs);
    expect(done.attempts).toBe(2); // the killed lease counted, the second one finished
    expect(stderr).toMatch(new RegExp(`"msg":"job leased".*"job":${leased.id}.*"attempt":2`));
    expect(stderr).toMatch(new RegExp(`"msg":"variants made".*"job":${leased.id}`));
    // the worker's variants are on the server: a clone finds the proxy by the original's file id
    const clone = path.join(sb.dir, 'clone');
    sb.mustGit(['clone', '-q', '-c', 'dits.fetchMode=lazy', `dits::${url}/team/film`, clone], sb.dir);
    expect(sb.mustDits(['fetch-proxy', 'shot.mov'], clone)).toMatch(/1 file\(s\) have their proxy here/);
    const variants = (JSON.parse(sb.mustDits(['proxy', 'ls', '--json'], clone)) as { path: string; variants: { kind: string; status: string; local: boolean }[] }[]).find((r) => r.path === 'shot.mov')!.variants;
    expect(variants.filter((v) => v.status === 'ok').map((v) => v.kind).sort()).toEqual(['poster', 'preview', 'proxy', 'sprite', 'sprite-vtt']);
    expect(variants.find((v) => v.kind === 'proxy')!.local).toBe(true);
    expect(stderr).toMatch(/worker 1|worker 2/); // serve said it started the killed one again

    // the same file version pushed on another branch: no second job
    sb.mustGit(['push', '-q', 'origin', 'main:refs/heads/copy'], repo);
    expect(queue.list()).toHaveLength(1);

    const status = spawnSync(process.execPath, [DITS_BIN, 'server', 'status', '--data', dataDir, '--quick'], { encoding: 'utf8' });
    expect(status.status, status.stderr).toBe(0);
    expect(status.stdout).toContain('Jobs: 0 queued, 0 leased, 1 done, 0 failed (to retry), 0 dead');
    expect(status.stdout).toMatch(/Workers: 2\n/);
    const statusJson = JSON.parse(spawnSync(process.execPath, [DITS_BIN, 'server', 'status', '--data', dataDir, '--quick', '--json'], { encoding: 'utf8' }).stdout) as { jobs: { counts: Record<string, number> } };
    expect(statusJson.jobs.counts).toEqual({ queued: 0, leased: 0, done: 1, failed: 0, dead: 0 });

    const api = await fetch(`${url}/api/jobs`, { headers: { authorization: `Bearer ${adminToken}` } });
    expect(api.status).toBe(200);
    const body = (await api.json()) as { counts: Record<string, number>; jobs: { id: number; state: string; attempts: number; last_error: string | null }[]; workers: unknown[] };
    expect(body.counts.done).toBe(1);
    expect(body.jobs).toMatchObject([{ id: leased.id, state: 'done', attempts: 2, last_error: null }]);
    expect(body.workers).toHaveLength(2);
    // writers are not site admins
    expect((await fetch(`${url}/api/jobs`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(403);
    // only dead or failed jobs are retried
    expect((await fetch(`${url}/api/jobs/${leased.id}/retry`, { method: 'POST', headers: { authorization: `Bearer ${adminToken}` } })).status).toBe(409);
  } finally {
    queueDb.close();
  }
});

/** VmHWM (peak resident) of a process in MiB, or 0 once it is gone. */
function peakMiB(pid: number): number {
  try {
    return Number(/VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
  } catch {
    return 0;
  }
}

function childPids(pid: number): number[] {
  try {
    return fs
      .readdirSync(`/proc/${pid}/task`)
      .flatMap((t) => fs.readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(/\s+/))
      .filter((x) => x !== '')
      .map(Number);
  } catch {
    return [];
  }
}

// DITS_BENCH=1 [DITS_BENCH_SECONDS=20]: a 1280x720 raw-video (2vuy) MOV (~44 MiB a second) in S3
// (s3rver), one `git dits worker` decoding it from there; the worker's peak memory is
// reported (ffmpeg's apart) and must stay under 300 MiB. The frames carry noise so that, as
// camera media, they do not compress; DITS_BENCH_CLEAN=1 leaves them clean (chunks stored
// zstd-compressed, decoding to many times their size).
it.runIf(process.env.DITS_BENCH === '1')('worker memory while it streams a large source from S3 into ffmpeg', async () => {
  const { startS3rverProcess } = await import('./helpers/s3rver-process.js');
  const { ChunkStore } = await import('../src/store/chunk-store.js');
  const { ingest } = await import('../src/store/ingest.js');
  const { DEFAULT_CHUNKER_PARAMS } = await import('../src/chunking/params.js');
  const { pushContent } = await import('../src/remote/content/index.js');
  const { S3Storage } = await import('../src/transfer/s3-storage.js');
  const { recordStorageLocation } = await import('../server/repo-sizes.js');
  const s3 = await startS3rverProcess(['media']);
  try {
    const work = tempDir('dits-jobs-bench-');
    const clip = path.join(work, 'big.mov');
    const seconds = process.env.DITS_BENCH_SECONDS ?? '20';
    const ff = spawnSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', `testsrc2=size=1280x720:rate=25:duration=${seconds}`, ...(process.env.DITS_BENCH_CLEAN === '1' ? [] : ['-vf', 'noise=alls=100:allf=t+u']), '-c:v', 'rawvideo', '-pix_fmt', 'uyvy422', clip], { encoding: 'utf8' });
    expect(ff.status, ff.stderr).toBe(0);
    const size = fs.statSync(clip).size;
    const step = (what: string) => process.stdout.write(`[bench ${((Date.now() - t0) / 1000).toFixed(1)} s] ${what}\n`);
    const t0 = Date.now();
    step(`clip of ${size} bytes made`);
    const store = ChunkStore.open(path.join(work, 'store'), { create: true });
    // (a generator: a ReadStream has a read() of its own and would be taken for a ByteSource)
    const r = await ingest(store, (async function* () { yield* fs.createReadStream(clip, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>; })(), { params: DEFAULT_CHUNKER_PARAMS });
    const creds = { AWS_ENDPOINT_URL: s3.endpoint, AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey, AWS_REGION: 'us-east-1' };
    const storage = new S3Storage({ bucket: 'media', prefix: 'srv/team/film', endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: s3.credentials });
    step('ingested');
    await pushContent(storage, store, [r.manifestId], { remoteName: 'origin' });
    step('pushed to S3');
    store.close();
    fs.rmSync(path.join(work, 'store'), { recursive: true, force: true });

    const dataDir = tempDir('dits-jobs-bench-data-');
    const db = openDataDirDb(dataDir);
    createRepo(db, 'team/film');
    recordStorageLocation(db, 's3://media/srv');
    const queue = new JobQueue(db);
    const { id } = queue.enqueue({ repo: 'team/film', kind: 'variants', original: r.pointer.oid, manifest: r.manifestId })!;
    const started = Date.now();
    const worker = spawn(process.execPath, [DITS_BIN, 'worker', '--data', dataDir, '--id', 'bench'], { env: { ...process.env, ...creds }, stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    worker.stderr.on('data', (d: Buffer) => (log += d.toString()));
    let workerPeak = 0;
    let ffmpegPeak = 0;
    const done = await until(
      'the job',
      () => {
        workerPeak = Math.max(workerPeak, peakMiB(worker.pid!));
        for (const c of childPids(worker.pid!)) ffmpegPeak = Math.max(ffmpegPeak, peakMiB(c));
        const j = queue.get(id)!;
        return j.state === 'done' || j.state === 'failed' || j.state === 'dead' ? j : undefined;
      },
      600_000,
      () => log,
    );
    const wall = (Date.now() - started) / 1000;
    worker.kill('SIGTERM');
    await new Promise((res) => worker.once('exit', res));
    db.close();
    expect(done.state, `${done.lastError}\n${log}`).toBe('done');
    process.stdout.write(`worker streamed ${(size / 2 ** 20).toFixed(0)} MiB from S3 into ffmpeg in ${wall.toFixed(1)} s: worker peak RSS ${workerPeak.toFixed(0)} MiB, ffmpeg peak ${ffmpegPeak.toFixed(0)} MiB\n`);
    expect(workerPeak).toBeLessThan(300);
  } finally {
    await s3.close();
  }
});

it('with S3 behind, the presign of a manifest put (the bytes then go straight to S3, unseen) queues an inspection; PUTs through the server read the header at once', async () => {
  const { startS3rver } = await import('../src/transfer/testing/s3rver.js');
  const { startServer } = await import('../server/main.js');
  const { ManifestBuilder } = await import('../src/manifest/manifest.js');
  const { manifestKey } = await import('../src/remote/content/layout.js');
  const s3 = await startS3rver({ buckets: ['media'] });
  const server = await startServer({
    dataDir: tempDir('dits-jobs-s3-'),
    storage: 's3://media/srv',
    s3: { endpoint: s3.endpoint, forcePathStyle: true, region: 'us-east-1', credentials: s3.credentials },
  });
  try {
    createRepo(server.db, 'team/film');
    addUser(server.db, 'root', { admin: true });
    const token = createToken(server.db, 'root', 't');
    const auth = { authorization: `Bearer ${token}` };
    const manifest = (oid: string) => {
      const b = new ManifestBuilder();
      b.add(Buffer.alloc(32, 1), 10);
      const media = { version: 1, container: 'mov', brands: [], durationSeconds: 2, fastStart: false, tracks: [{ id: 1, type: 'video', codec: 'mp4v', sampleCount: 50, durationSeconds: 2 }] };
      return b.encode({ oid, chunker: { algorithm: 'fastcdc-2020', min: 1, avg: 2, max: 4 }, media });
    };
    const queue = new JobQueue(server.db);
    const big = manifest('a'.repeat(64));
    const presign = await fetch(`${server.url}/team/film/storage/presign`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ op: 'put', key: manifestKey(big.id), size: big.bytes.length }) });
    expect(presign.status).toBe(200);
    expect(queue.list()).toMatchObject([{ kind: 'inspect', manifest: big.id, state: 'queued' }]);
    // a pack presigned: nothing queued
    await fetch(`${server.url}/team/film/storage/presign`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ op: 'put', key: `v1/packs/${'b'.repeat(64)}.pack`, size: 10 }) });
    expect(queue.list()).toHaveLength(1);

    const small = manifest('c'.repeat(64));
    const put = await fetch(`${server.url}/team/film/storage/o/${manifestKey(small.id)}`, { method: 'PUT', headers: { ...auth, 'content-length': String(small.bytes.length) }, body: small.bytes });
    expect(put.status).toBe(200);
    await until('the variants job', () => queue.list().find((j) => j.kind === 'variants'));
    expect(queue.list().find((j) => j.kind === 'variants')).toMatchObject({ original: 'c'.repeat(64), manifest: small.id, repo: 'team/film' });
  } finally {
    await server.close();
    await s3.close();
  }
});
