/**
 * The Glacier front (src/transfer/testing/glacier-front.ts) in its own process, in front of
 * an s3rver process: the end-to-end tests drive git synchronously (spawnSync blocks the
 * test's event loop), so an in-process front would never answer. The test steers it through
 * a small control server in the same child (setClass, finishRestores, counts, failNext...),
 * which also takes webhook POSTs at `/notify` and keeps them for the test to read.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { ROOT } from './git-env.js';
import type { FrontCounts, FrontOp } from '../../src/transfer/testing/glacier-front.js';

export interface GlacierFrontProcess {
  endpoint: string;
  /** `http://127.0.0.1:<port>/notify`: a webhook that records what it is sent */
  notifyUrl: string;
  counts(): Promise<FrontCounts>;
  resetCounts(): Promise<void>;
  classOf(key: string, bucket?: string): Promise<string>;
  setClass(key: string, storageClass: string, bucket?: string): Promise<void>;
  setRestoreDelay(ms: number): Promise<void>;
  finishRestores(): Promise<void>;
  failNext(op: FrontOp, status: number | 'cut', code?: string, opts?: { times?: number; key?: string }): Promise<void>;
  notifications(): Promise<unknown[]>;
  close(): Promise<void>;
}

export async function startGlacierFrontProcess(s3rverEndpoint: string, opts: { restoreDelayMs?: number } = {}): Promise<GlacierFrontProcess> {
  const module = path.join(ROOT, 'dist', 'src', 'transfer', 'testing', 'glacier-front.js');
  const script = `
    const http = require('node:http');
    import(${JSON.stringify(module)}).then(async ({ startGlacierFront }) => {
      const front = await startGlacierFront(${JSON.stringify(s3rverEndpoint)}, { restoreDelayMs: ${Number(opts.restoreDelayMs ?? 0)} });
      const notes = [];
      const ctl = http.createServer((req, res) => {
        const parts = [];
        req.on('data', (d) => parts.push(d));
        req.on('end', () => {
          const body = Buffer.concat(parts).toString('utf8');
          if (req.url === '/notify') {
            notes.push(JSON.parse(body || 'null'));
            res.end('ok');
            return;
          }
          const { op, args } = JSON.parse(body);
          let out = null;
          if (op === 'counts') out = front.counts;
          else if (op === 'notifications') out = notes;
          else out = front[op](...args) ?? null;
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify(out));
        });
      });
      ctl.listen(0, '127.0.0.1', () => process.stdout.write('FRONT ' + front.endpoint + ' CTL ' + ctl.address().port + '\\n'));
      process.on('SIGTERM', () => front.close().then(() => process.exit(0)));
    });
  `;
  const child: ChildProcess = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const { endpoint, ctl } = await new Promise<{ endpoint: string; ctl: number }>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /FRONT (\S+) CTL (\d+)/.exec(buf);
      if (m) resolve({ endpoint: m[1]!, ctl: Number(m[2]) });
    });
    child.on('exit', (c) => reject(new Error(`the Glacier front exited (${c}) before listening`)));
  });
  const call = async (op: string, ...args: unknown[]): Promise<unknown> => {
    const res = await fetch(`http://127.0.0.1:${ctl}/`, { method: 'POST', body: JSON.stringify({ op, args }) });
    return res.json();
  };
  return {
    endpoint,
    notifyUrl: `http://127.0.0.1:${ctl}/notify`,
    counts: () => call('counts') as Promise<FrontCounts>,
    resetCounts: async () => void (await call('resetCounts')),
    classOf: (key, bucket) => call('classOf', key, bucket) as Promise<string>,
    setClass: async (key, cls, bucket) => void (await call('setClass', key, cls, bucket)),
    setRestoreDelay: async (ms) => void (await call('setRestoreDelay', ms)),
    finishRestores: async () => void (await call('finishRestores')),
    failNext: async (op, status, code, o) => void (await call('failNext', op, status, code, o)),
    notifications: () => call('notifications') as Promise<unknown[]>,
    async close() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}
