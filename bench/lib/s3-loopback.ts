/**
 * The S3 side of issue 5's figures: s3rver in its own process on 127.0.0.1, behind a
 * counting proxy (also on 127.0.0.1) through which every client goes, Dits and rclone
 * alike, so requests and bytes each way are counted the same for both.
 *
 * The proxy forwards requests unchanged (the Host header too, so signatures still verify)
 * and streams bodies both ways.
 */
import http from 'node:http';
import { spawn, type ChildProcess } from 'node:child_process';
import type { AddressInfo } from 'node:net';

export interface TrafficCounts {
  requests: number;
  /** Request body bytes (uploads) and response body bytes (downloads). */
  bytesUp: number;
  bytesDown: number;
  byMethod: Record<string, number>;
  /** Object listings (GET of a bucket with `list-type` or `prefix`), by `<bucket>/<prefix>`. */
  listings: Record<string, number>;
}

export interface S3Loopback {
  /** The proxy's URL: give this to clients. */
  endpoint: string;
  /** s3rver itself, without the proxy (for figures whose client should not share this process's CPU). */
  upstreamEndpoint: string;
  /** s3rver's process id (its CPU time is in /proc/<pid>/stat). */
  pid: number;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Counts since the last reset. */
  counts(): TrafficCounts;
  reset(): void;
  close(): Promise<void>;
}

function emptyCounts(): TrafficCounts {
  return { requests: 0, bytesUp: 0, bytesDown: 0, byMethod: {}, listings: {} };
}

/** `buckets`: more buckets to create besides `bucket`. */
export async function startS3Loopback(opts: { directory: string; bucket: string; repoRoot: string; buckets?: readonly string[] }): Promise<S3Loopback> {
  const buckets = [opts.bucket, ...(opts.buckets ?? [])].map((name) => ({ name }));
  const code = `
    const S3rver = require('s3rver');
    new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: ${JSON.stringify(opts.directory)}, configureBuckets: ${JSON.stringify(buckets)} })
      .run().then((a) => console.log('PORT ' + a.port));`;
  const child: ChildProcess = spawn(process.execPath, ['-e', code], { cwd: opts.repoRoot, stdio: ['ignore', 'pipe', 'inherit'] });
  const upstreamPort = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      const m = /PORT (\d+)/.exec(d.toString());
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (c) => reject(new Error(`s3rver exited with ${c} before listening`)));
  });
  let counts = emptyCounts();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const proxy = http.createServer((req, res) => {
    counts.requests++;
    counts.byMethod[req.method ?? '?'] = (counts.byMethod[req.method ?? '?'] ?? 0) + 1;
    const url = new URL(req.url ?? '/', 'http://x');
    const bucket = url.pathname.split('/')[1] ?? '';
    if (req.method === 'GET' && url.pathname.split('/').filter(Boolean).length === 1 && (url.searchParams.has('list-type') || url.searchParams.has('prefix'))) {
      const at = `${bucket}/${url.searchParams.get('prefix') ?? ''}`;
      counts.listings[at] = (counts.listings[at] ?? 0) + 1;
    }
    const up = http.request({ host: '127.0.0.1', port: upstreamPort, method: req.method, path: req.url, headers: req.headers, agent }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.on('data', (b: Buffer) => {
        counts.bytesDown += b.length;
      });
      ur.pipe(res);
    });
    up.on('error', (e) => {
      if (!res.headersSent) res.writeHead(502);
      res.end(String(e));
    });
    req.on('data', (b: Buffer) => {
      counts.bytesUp += b.length;
    });
    req.pipe(up);
  });
  proxy.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const port = (proxy.address() as AddressInfo).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    upstreamEndpoint: `http://127.0.0.1:${upstreamPort}`,
    pid: child.pid!,
    bucket: opts.bucket,
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    counts: () => ({ ...counts, byMethod: { ...counts.byMethod }, listings: { ...counts.listings } }),
    reset() {
      counts = emptyCounts();
    },
    async close() {
      proxy.closeAllConnections();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
      agent.destroy();
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
