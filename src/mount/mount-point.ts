/**
 * The mount point's state, read from the kernel (/proc/self/mountinfo) and from a stat of
 * it: free, a live Dits mount (and which process serves it), or a stale one left by a
 * killed process (the kernel answers ENOTCONN), or something else mounted there.
 *
 * A Dits mount names its process in the mount's source (`dits@<pid>`, fstype `fuse.dits`),
 * so `git dits umount` finds it from anywhere, and a record in `.git/dits/mounts/` names the
 * mount points of a repository (a second mount of it at the same point is refused).
 */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { errnoCode } from '../errors.js';
import { processAlive } from '../process-alive.js';

export interface MountInfo {
  mountPoint: string;
  fsType: string;
  source: string;
}

/** `\040`-style escapes of mountinfo fields. */
function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export function readMounts(): MountInfo[] {
  let text: string;
  try {
    text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const out: MountInfo[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const [pre, post] = line.split(' - ');
    if (!pre || !post) continue;
    const f = pre.split(' ');
    const g = post.split(' ');
    out.push({ mountPoint: unescape(f[4]!), fsType: g[0]!, source: unescape(g[1] ?? '') });
  }
  return out;
}

export type MountPointState =
  | { kind: 'free' }
  | { kind: 'dits'; pid: number; alive: boolean; stale: boolean }
  | { kind: 'other'; fsType: string; source: string };


/**
 * Whether the directory fails the way a FUSE mount without its process does (ECONNREFUSED:
 * a mount whose file system never finished starting). Opened, not only stat'ed: the kernel
 * may answer a stat from attributes it keeps (an hour, for a read-only Dits mount) without
 * asking the dead process.
 */
export function isDisconnected(dir: string): boolean {
  try {
    fs.statSync(dir);
    fs.opendirSync(dir).closeSync();
    return false;
  } catch (err) {
    return DISCONNECTED.has(errnoCode(err) ?? '');
  }
}
const DISCONNECTED = new Set(['ENOTCONN', 'ECONNABORTED', 'ECONNREFUSED']);

/** `dir` must be absolute (and resolved, as the kernel lists it). The last mount on it counts. */
export function mountPointState(dir: string): MountPointState {
  const here = readMounts().filter((m) => m.mountPoint === dir);
  const top = here[here.length - 1];
  if (!top) return { kind: 'free' };
  const m = /^dits@(\d+)$/.exec(top.source);
  if (m && top.fsType.startsWith('fuse')) {
    const pid = Number(m[1]);
    const alive = processAlive(pid);
    // (never probed from the mount's own process: its file system answers on this thread)
    return { kind: 'dits', pid, alive, stale: !alive || (pid !== process.pid && isDisconnected(dir)) };
  }
  if (top.fsType.startsWith('fuse') && isDisconnected(dir)) return { kind: 'dits', pid: 0, alive: false, stale: true };
  return { kind: 'other', fsType: top.fsType, source: top.source };
}

/**
 * Detaches a mount whatever its state (lazily: a process still holding a file keeps it until
 * it closes, but the path is free at once). fusermount first (works unprivileged), then
 * umount (root). True when the point is no longer mounted.
 */
export function detachMount(dir: string): boolean {
  for (const [cmd, args] of [
    ['fusermount', ['-u', '-z', dir]],
    ['fusermount3', ['-u', '-z', dir]],
    ['umount', ['-l', dir]],
  ] as const) {
    const r = spawnSync(cmd, args, { stdio: 'ignore' });
    if (r.error) continue;
    if (mountPointState(dir).kind === 'free') return true;
  }
  return mountPointState(dir).kind === 'free';
}

/** Resolves a path given by the user, the way the kernel lists mount points (symlinks followed). */
export function resolveMountPoint(dir: string): string {
  const abs = path.resolve(dir);
  try {
    return fs.realpathSync(abs);
  } catch (err) {
    // a stale mount cannot be resolved, nor a path not made yet: their parent can
    const code = errnoCode(err);
    if (DISCONNECTED.has(code ?? '') || code === 'ENOENT') {
      const parent = path.dirname(abs);
      return parent === abs ? abs : path.join(resolveMountPoint(parent), path.basename(abs));
    }
    throw err;
  }
}

export interface MountRecord {
  mountPoint: string;
  pid: number;
  rev: string;
  commit: string;
  mode: 'original' | 'proxy';
  started: number;
  log?: string;
  /** A --writable mount (its overlay: .git/dits/overlay/<commit>/). */
  writable?: boolean;
  /** The unix socket through which commit-mount pauses and rebases the live mount (live-control.ts). */
  control?: string;
}

function recordDir(ditsDir: string): string {
  return path.join(ditsDir, 'mounts');
}

export function recordFile(ditsDir: string, mountPoint: string): string {
  return path.join(recordDir(ditsDir), `${crypto.createHash('sha256').update(mountPoint).digest('hex').slice(0, 16)}.json`);
}

export function readRecord(ditsDir: string, mountPoint: string): MountRecord | null {
  try {
    return JSON.parse(fs.readFileSync(recordFile(ditsDir, mountPoint), 'utf8')) as MountRecord;
  } catch {
    return null;
  }
}

/** Every mount record of the repository: its mounts, and any a killed mount left behind. */
export function listRecords(ditsDir: string): MountRecord[] {
  let names: string[];
  try {
    names = fs.readdirSync(recordDir(ditsDir)).filter((n) => n.endsWith('.json'));
  } catch {
    return [];
  }
  const out: MountRecord[] = [];
  for (const n of names) {
    try {
      out.push(JSON.parse(fs.readFileSync(path.join(recordDir(ditsDir), n), 'utf8')) as MountRecord);
    } catch {
      // being replaced, or damaged: not a mount this can name
    }
  }
  return out;
}

export function writeRecord(ditsDir: string, rec: MountRecord): void {
  fs.mkdirSync(recordDir(ditsDir), { recursive: true });
  const file = recordFile(ditsDir, rec.mountPoint);
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(rec, null, 2) + '\n');
  fs.renameSync(`${file}.tmp`, file);
}

export function removeRecord(ditsDir: string, mountPoint: string, pid?: number): void {
  const rec = readRecord(ditsDir, mountPoint);
  if (rec && pid !== undefined && rec.pid !== pid) return; // another process's mount now
  fs.rmSync(recordFile(ditsDir, mountPoint), { force: true });
}

/** Waits (polling) until `dir` is no longer mounted, up to `ms`. */
export async function waitUnmounted(dir: string, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (mountPointState(dir).kind === 'free') return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return mountPointState(dir).kind === 'free';
}

/**
 * What to do when a mount failed, as far as FUSE's device tells: there is none (no module,
 * or a container started without it), or this user may not open it (libfuse opens it
 * before it hands a user's mount to fusermount, so a device of mode 0600 fails every
 * mount but root's). Otherwise the general advice.
 */
export function fuseDeviceHint(device = '/dev/fuse', canOpen = (p: string): void => fs.accessSync(p, fs.constants.R_OK | fs.constants.W_OK)): string {
  try {
    canOpen(device);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENODEV') {
      return `there is no ${device} here: load FUSE's module (\`modprobe fuse\`), or start the container with \`--device /dev/fuse --cap-add SYS_ADMIN\``;
    }
    if (code === 'EACCES' || code === 'EPERM') {
      let mode = '';
      try {
        mode = ` (mode ${(fs.statSync(device).mode & 0o777).toString(8).padStart(4, '0')})`;
      } catch {
        // its mode is only a detail of the message
      }
      return `${device}${mode} is not open to this user: make it 0666 as Debian does (\`sudo chmod 0666 ${device}\`), or mount as root`;
    }
  }
  return 'check that FUSE works here (/dev/fuse, libfuse2, fuse3) and that the directory is free';
}
