/**
 * `git dits commit-mount` of a writable mount that is still mounted: the mount process
 * listens on a unix socket (mode 0600 in a 0700 directory of the user's, named in the
 * mount's record), and commit-mount talks to it, one JSON line each way:
 *
 *   {"op":"pause"}                  the mount holds every changing operation (writes,
 *                                   creates, renames, ...: the writers wait) and syncs
 *                                   the overlay; answers {"ok":true,"commit":<mounted>}
 *   {"op":"rebase","commit":<new>}  the commit was made: the mount now shows <new> under an
 *                                   empty overlay (the same view), then lets the held
 *                                   operations go on; answers {"ok":true} or the error
 *   {"op":"resume"}                 the commit was not made: go on as before
 *
 * A commit-mount that dies while the mount is paused closes its connection: the mount goes
 * on as before (the overlay untouched). One pause at a time. Reads never wait.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { DitsUserError } from '../errors.js';

/** What the mount process does for the control socket. */
export interface LiveTarget {
  /** The mounted commit. */
  commit(): string;
  /** Holds changing operations from now on and syncs the overlay. */
  pause(): void;
  /** Lets the held operations go on. */
  resume(): void;
  /** Shows `commit` (whose tree is the current view) under an empty overlay. */
  rebase(commit: string): Promise<void>;
}

export interface ControlServer {
  path: string;
  close(): void;
}

/** The user's private directory for control sockets (short: a socket path has at most 107 bytes). */
function controlDir(): string {
  const dir = path.join(os.tmpdir(), `dits-${process.getuid?.() ?? 'user'}`);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = fs.lstatSync(dir);
  if (!st.isDirectory() || (process.getuid && st.uid !== process.getuid()) || (st.mode & 0o077) !== 0) {
    throw new Error(`${dir} is not a private directory of this user`);
  }
  return dir;
}

export async function startControl(target: LiveTarget, log: (line: string) => void): Promise<ControlServer> {
  const file = path.join(controlDir(), `mount-${process.pid}.sock`);
  fs.rmSync(file, { force: true });
  let owner: net.Socket | null = null;
  const release = (): void => {
    owner = null;
    target.resume();
  };
  const server = net.createServer((conn) => {
    let buf = '';
    const reply = (v: Record<string, unknown>): void => void conn.write(JSON.stringify(v) + '\n');
    const handle = async (msg: { op?: string; commit?: string }): Promise<void> => {
      if (msg.op === 'pause') {
        if (owner) return reply({ ok: false, error: 'another commit-mount of this mount is running' });
        owner = conn;
        try {
          target.pause();
        } catch (err) {
          release();
          return reply({ ok: false, error: err instanceof Error ? err.message : String(err) });
        }
        return reply({ ok: true, commit: target.commit() });
      }
      if (owner !== conn) return reply({ ok: false, error: 'not paused by this connection' });
      if (msg.op === 'resume') {
        release();
        return reply({ ok: true });
      }
      if (msg.op === 'rebase' && typeof msg.commit === 'string') {
        try {
          await target.rebase(msg.commit);
          reply({ ok: true });
        } catch (err) {
          log(`could not show the new commit ${msg.commit.slice(0, 12)} after commit-mount: ${err instanceof Error ? err.message : String(err)}`);
          reply({ ok: false, error: err instanceof Error ? err.message : String(err) });
        } finally {
          release();
        }
        return;
      }
      reply({ ok: false, error: `unknown request ${JSON.stringify(msg.op)}` });
    };
    conn.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        let msg: { op?: string; commit?: string };
        try {
          msg = JSON.parse(line) as typeof msg;
        } catch {
          reply({ ok: false, error: 'not JSON' });
          continue;
        }
        void handle(msg);
      }
    });
    conn.on('close', () => owner === conn && release());
    conn.on('error', () => {});
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(file, () => resolve());
  });
  fs.chmodSync(file, 0o600);
  return {
    path: file,
    close() {
      server.close();
      fs.rmSync(file, { force: true });
    },
  };
}

/** commit-mount's side: a paused live mount, to rebase or resume. */
export class LiveMount {
  private buf = '';
  private waiting: ((line: string) => void) | null = null;
  private closed: Error | null = null;

  private constructor(private readonly conn: net.Socket) {
    conn.on('data', (d: Buffer) => {
      this.buf += d.toString('utf8');
      const i = this.buf.indexOf('\n');
      if (i >= 0 && this.waiting) {
        const line = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 1);
        const w = this.waiting;
        this.waiting = null;
        w(line);
      }
    });
    const gone = (err?: Error): void => {
      this.closed = err ?? new Error('the mount process closed the connection');
      const w = this.waiting;
      this.waiting = null;
      w?.('');
    };
    conn.on('error', gone);
    conn.on('close', () => gone());
  }

  /** Connects and pauses the mount; throws a DitsUserError when it cannot. */
  static async pause(socketPath: string, mountPoint: string): Promise<LiveMount> {
    let conn: net.Socket;
    try {
      conn = await new Promise<net.Socket>((resolve, reject) => {
        const c = net.connect(socketPath, () => resolve(c));
        c.once('error', reject);
      });
    } catch (err) {
      throw new DitsUserError('mount-busy', `${mountPoint} is mounted writable, and its mount process does not answer (${err instanceof Error ? err.message : String(err)})`, { hint: `unmount it first (\`git dits umount ${mountPoint}\`: the overlay is kept), then commit-mount` });
    }
    const live = new LiveMount(conn);
    const r = await live.ask({ op: 'pause' });
    if (!r.ok) {
      live.close();
      throw new DitsUserError('mount-busy', `${mountPoint} cannot be paused for the commit: ${String(r.error)}`, { hint: 'try again in a moment' });
    }
    return live;
  }

  private async ask(msg: Record<string, unknown>): Promise<{ ok: boolean; error?: unknown }> {
    if (this.closed) return { ok: false, error: this.closed.message };
    const line = await new Promise<string>((resolve) => {
      this.waiting = resolve;
      this.conn.write(JSON.stringify(msg) + '\n');
    });
    if (!line) return { ok: false, error: (this.closed as Error | null)?.message ?? 'no answer' };
    try {
      return JSON.parse(line) as { ok: boolean; error?: unknown };
    } catch {
      return { ok: false, error: 'an answer that is not JSON' };
    }
  }

  /** The commit was made: the mount shows it now. Returns the mount's error, if any. */
  async rebase(commit: string): Promise<string | null> {
    const r = await this.ask({ op: 'rebase', commit });
    return r.ok ? null : String(r.error);
  }

  async resume(): Promise<void> {
    await this.ask({ op: 'resume' });
  }

  close(): void {
    this.conn.end();
    this.conn.destroy();
  }
}
