/**
 * s3rver in its own process on 127.0.0.1: the end-to-end tests drive git synchronously
 * (spawnSync blocks the test's event loop), so an in-process server would never answer.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from './git-env.js';

export interface S3Process {
  endpoint: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  close(): Promise<void>;
  /** Kills the server at once (SIGKILL), as a crash or a dropped network would: requests in flight fail. */
  kill(): Promise<void>;
}

export async function startS3rverProcess(buckets: string[]): Promise<S3Process> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dits-s3rver-'));
  const script = `
    const S3rver = require(${JSON.stringify(path.join(ROOT, 'node_modules/s3rver'))});
    const s = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: ${JSON.stringify(dir)},
      configureBuckets: ${JSON.stringify(buckets)}.map((name) => ({ name })) });
    s.run().then((a) => process.stdout.write('PORT ' + a.port + '\\n'));
    process.on('SIGTERM', () => s.close().then(() => process.exit(0)));
  `;
  const child: ChildProcess = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /PORT (\d+)/.exec(buf);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (c) => reject(new Error(`s3rver exited (${c}) before listening`)));
  });
  return {
    endpoint: `http://127.0.0.1:${port}`,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    },
    async close() {
      if (child.exitCode !== null || child.signalCode !== null) {
        fs.rmSync(dir, { recursive: true, force: true });
        return;
      }
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
