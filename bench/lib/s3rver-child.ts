/**
 * s3rver in a child process on 127.0.0.1 (a free port), for the stand-alone S3 bench
 * script (s3-throughput.ts): in its own process it does not share the
 * event loop or the CPU accounting of the client being measured. Run from the repository
 * root, where node_modules/s3rver is.
 */
import { spawn, type ChildProcess } from 'node:child_process';

export async function startS3rverChild(dir: string, buckets: readonly string[]): Promise<{ port: number; child: ChildProcess }> {
  const code = `
    const S3rver = require('s3rver');
    new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: ${JSON.stringify(dir)}, configureBuckets: ${JSON.stringify(buckets.map((name) => ({ name })))} })
      .run().then((a) => console.log('PORT ' + a.port));`;
  const child = spawn(process.execPath, ['-e', code], { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      const m = /PORT (\d+)/.exec(d.toString());
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (c) => reject(new Error(`s3rver exited ${c}`)));
  });
  return { port, child };
}
