/**
 * `git dits mount` as its own process for the FUSE tests: started, waited for until it says
 * it is mounted, stopped with SIGTERM (or killed). Every process is remembered so that a
 * failing test leaves no mount behind (cleanupMounts, from afterAll).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { DITS_BIN, type GitSandbox } from './git-env.js';
import { readMounts } from '../../src/mount/mount-point.js';

export interface MountProcess {
  child: ChildProcess;
  exited: Promise<number | null>;
  out: () => string;
}

const live = new Set<ChildProcess>();

export async function startMount(sb: GitSandbox, repo: string, dir: string, args: string[] = []): Promise<MountProcess> {
  const child = spawn(DITS_BIN, ['mount', dir, ...args], { cwd: repo, env: sb.env, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => (live.delete(child), resolve(code))));
  await new Promise<void>((resolve, reject) => {
    const t = setInterval(() => /Mounted /.test(out) && (clearInterval(t), resolve()), 20);
    void exited.then((code) => (clearInterval(t), reject(new Error(`mount exited (${code}):\n${out}`))));
  });
  return { child, exited, out: () => out };
}

export async function stopMount(m: MountProcess): Promise<void> {
  m.child.kill('SIGTERM');
  await m.exited;
}

/** Mounts writable, runs `write` on the mount point, unmounts (the overlay is kept). */
export async function editThroughMount(sb: GitSandbox, repo: string, mnt: string, write: (mnt: string) => void): Promise<void> {
  const m = await startMount(sb, repo, mnt, ['--writable']);
  try {
    write(mnt);
  } finally {
    await stopMount(m);
  }
}

/** Writes `data` at `at` in an existing file (through the mount: no truncation). */
export function writeAt(file: string, at: number, data: Buffer | string): void {
  const b = Buffer.from(data);
  const fd = fs.openSync(file, 'r+');
  try {
    if (fs.writeSync(fd, b, 0, b.length, at) !== b.length) throw new Error(`short write to ${file}`);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Kills what is still running and detaches what is still mounted under the sandbox. */
export function cleanupMounts(sb: GitSandbox | undefined): void {
  for (const c of live) c.kill('SIGKILL');
  if (sb) for (const m of readMounts()) if (m.mountPoint.startsWith(sb.dir)) spawnSync('umount', ['-l', m.mountPoint]);
}
