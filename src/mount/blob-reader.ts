/**
 * Blobs read on demand through one long-lived `git cat-file --batch` (the small files of
 * a mounted revision: everything that is not a Dits pointer). Requests are answered in the
 * order they were written, which is the order git answers them.
 *
 * Output grammar (git-cat-file(1), BATCH OUTPUT):
 *   <oid> SP <type> SP <size> LF <contents> LF      |   <object> SP missing LF
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';

interface Pending {
  oid: string;
  resolve: (b: Buffer) => void;
  reject: (e: Error) => void;
}

export class BlobReader {
  private child: ChildProcessWithoutNullStreams | null = null;
  private readonly queue: Pending[] = [];
  private buf: Buffer = Buffer.alloc(0);
  /** the body being read: its size, once its header line has been seen */
  private bodySize = -1;
  private closed = false;

  constructor(private readonly cwd: string) {}

  /** The whole content of blob `oid`. */
  read(oid: string): Promise<Buffer> {
    if (this.closed) return Promise.reject(new Error('the blob reader is closed'));
    const child = this.start();
    return new Promise((resolve, reject) => {
      this.queue.push({ oid, resolve, reject });
      child.stdin.write(`${oid}\n`);
    });
  }

  private start(): ChildProcessWithoutNullStreams {
    if (this.child) return this.child;
    const child = spawn('git', ['cat-file', '--batch'], { cwd: this.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdout.on('data', (d: Buffer) => this.onData(d));
    child.stderr.resume();
    child.stdin.on('error', () => {});
    const fail = (why: string): void => {
      this.child = null;
      this.buf = Buffer.alloc(0);
      this.bodySize = -1;
      for (const p of this.queue.splice(0)) p.reject(new Error(`git cat-file --batch ${why}`));
    };
    child.on('error', (e) => fail(`failed: ${e.message}`));
    child.on('exit', (code) => fail(`exited (${code})`));
    this.child = child;
    return child;
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    for (;;) {
      const head = this.queue[0];
      if (!head) return;
      if (this.bodySize < 0) {
        const nl = this.buf.indexOf(0x0a);
        if (nl < 0) return;
        const line = this.buf.toString('utf8', 0, nl);
        this.buf = this.buf.subarray(nl + 1);
        const parts = line.split(' ');
        if (parts[1] === 'missing' || parts.length < 3) {
          this.queue.shift();
          head.reject(new Error(`blob ${head.oid} is missing from the repository`));
          continue;
        }
        this.bodySize = Number(parts[2]);
      }
      if (this.buf.length < this.bodySize + 1) return;
      const body = Buffer.from(this.buf.subarray(0, this.bodySize));
      this.buf = this.buf.subarray(this.bodySize + 1);
      this.bodySize = -1;
      this.queue.shift();
      head.resolve(body);
    }
  }

  close(): void {
    this.closed = true;
    const c = this.child;
    this.child = null;
    if (c) {
      c.stdin.end();
      c.kill();
    }
  }
}
