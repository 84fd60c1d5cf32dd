/**
 * Read-only mounts through Dits' own FUSE binding (native/fuse/dits-fuse.c, libfuse3).
 *
 * The tree of a read-only mount never changes, so its names and attributes go to the
 * binding once, at mount time: lookups, getattr, readdir (with readdirplus), access and
 * statfs are answered on libfuse's thread without a trip through the event loop. Only
 * open, read, release and readlink come here. Where the binding is not built (no libfuse3
 * headers when Dits was installed) or does not load, mount-session.ts uses fuse-native.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { detachMount } from './mount-point.js';
import type { ReadSink } from './file-content.js';
import type { MountedRevision } from './mounted-revision.js';

interface Binding {
  mount(mountPoint: string, args: string[], paths: string[], attrs: Float64Array, files: number, dispatch: Dispatch): Handle;
  unmount(handle: Handle, done: () => void): void;
  reply(req: Request, result: number, value?: number | string): void;
  /** bytes [start, end) of `src` to byte `at` of the read's buffer (libfuse's), before reply() */
  copyIn(req: Request, at: number, src: Buffer, start: number, end: number): void;
}
type Handle = { readonly __mount: unique symbol };
type Request = { readonly __request: unique symbol };
type Dispatch = (op: number, req: Request, path: string, fh: number, size: number, off: number) => void;

const OP_OPEN = 1;
const OP_READ = 2;
const OP_RELEASE = 3;
const OP_READLINK = 4;
const FIELDS = 8; // ino, mode, nlink, uid, gid, size, mtime (ms), blocks: as dits-fuse.c reads them

const READ_AHEAD_KB = Number(process.env.DITS_FUSE_READ_AHEAD_KB) || 1024;
const EIO = -5;
const ENOSYS = -38;
const ETIMEDOUT = -110;

const ADDON_FILE = 'native/fuse/build/Release/dits_fuse.node';
const CANDIDATES = ['../../', '../../../'].map((up) => new URL(up + ADDON_FILE, import.meta.url));

let cached: { binding?: Binding; error?: string } | undefined;

/** The binding, or undefined with the reason (not built, or does not load). */
export function loadNativeFuse(): { binding?: Binding; error?: string } {
  if (cached) return cached;
  if (process.env.DITS_FUSE === 'fuse-native') return (cached = { error: 'DITS_FUSE=fuse-native' });
  const file = CANDIDATES.find((u) => fs.existsSync(u));
  if (file === undefined) return (cached = { error: `${ADDON_FILE} not built` });
  try {
    const require = createRequire(import.meta.url);
    const binding = require(fileURLToPath(file)) as Binding;
    // built from an older native/fuse/dits-fuse.c than this code's (setup.sh builds it again)
    if (typeof binding.copyIn !== 'function') return (cached = { error: `${ADDON_FILE} is from an older Dits (run scripts/setup.sh)` });
    return (cached = { binding });
  } catch (err) {
    return (cached = { error: `cannot load ${ADDON_FILE}: ${(err as Error).message.split('\n')[0]}` });
  }
}

export interface NativeMountOptions {
  fsname: string;
  /** a read waiting longer answers ETIMEDOUT (ms) */
  readTimeout: number;
  /** open, readlink (ms) */
  timeout: number;
  log: (line: string) => void;
}

export interface NativeMount {
  unmount(): Promise<void>;
}

/** The tree of `mounted` as the binding takes it: "/" first, each directory's names in order. */
export function treeTable(mounted: MountedRevision): { paths: string[]; attrs: Float64Array } {
  const paths: string[] = [];
  const dirs = ['/'];
  paths.push('/');
  for (let d = 0; d < dirs.length; d++) {
    const dir = dirs[d]!;
    const names = mounted.readdir(dir);
    if (typeof names === 'number') continue;
    for (const name of names) {
      const p = dir === '/' ? `/${name}` : `${dir}/${name}`;
      paths.push(p);
      const st = mounted.getattr(p);
      if (typeof st !== 'number' && (st.mode & 0o170000) === 0o040000) dirs.push(p);
    }
  }
  const attrs = new Float64Array(paths.length * FIELDS);
  for (let i = 0; i < paths.length; i++) {
    const st = mounted.getattr(paths[i]!);
    if (typeof st === 'number') throw new Error(`no attributes for ${paths[i]}`);
    attrs.set([st.ino ?? 0, st.mode, st.nlink ?? 1, st.uid ?? 0, st.gid ?? 0, st.size, st.mtime.getTime(), st.blocks ?? Math.ceil(st.size / 512)], i * FIELDS);
  }
  return { paths, attrs };
}

/**
 * The number of the kernel's FUSE connection mounted at `mountPoint` (its device's minor,
 * from /proc/self/mountinfo: a stat would ask the file system, and the kernel would keep the
 * answer), or null.
 */
function connectionOf(mountPoint: string): number | null {
  try {
    const escaped = mountPoint.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
    let found: number | null = null;
    for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      const f = line.split(' ');
      if (f[4] === escaped) found = Number(f[2]!.split(':')[1]);
    }
    return found !== null && Number.isInteger(found) ? found : null;
  } catch {
    return null;
  }
}

/** Mounts `mounted` read-only at `mountPoint`; returns once the kernel serves it. */
export function mountNative(binding: Binding, mountPoint: string, mounted: MountedRevision, o: NativeMountOptions): NativeMount {
  const { paths, attrs } = treeTable(mounted);
  const dispatch: Dispatch = (op, req, path, fh, size, off) => {
    switch (op) {
      case OP_OPEN: {
        const r = mounted.open(path, size);
        if (r < 0) binding.reply(req, r);
        else binding.reply(req, 0, r);
        return;
      }
      case OP_READ: {
        // the read copies into libfuse's buffer (copyIn); once answered with an error (timed
        // out, or the mount closing) that buffer is gone: nothing may be copied after that
        const stop: { stopped: boolean } = { stopped: false };
        const sink: ReadSink = { length: size, put: (src, start, end, at) => binding.copyIn(req, at, src, start, end) };
        let done = false;
        const answer = (n: number): void => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          if (n < 0) stop.stopped = true;
          binding.reply(req, n);
        };
        const timer = setTimeout(() => answer(ETIMEDOUT), o.readTimeout);
        mounted.read(fh, sink, size, off, stop).then(answer, () => answer(EIO));
        return;
      }
      case OP_RELEASE:
        mounted.release(fh);
        binding.reply(req, 0);
        return;
      case OP_READLINK: {
        let done = false;
        const answer = (result: number, target?: string): void => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          if (target === undefined) binding.reply(req, result);
          else binding.reply(req, result, target);
        };
        const timer = setTimeout(() => answer(ETIMEDOUT), o.timeout);
        mounted.readlink(path).then(
          (r) => (typeof r === 'number' ? answer(r) : answer(0, r)),
          () => answer(EIO),
        );
        return;
      }
      default:
        binding.reply(req, ENOSYS);
    }
  };
  const args = ['-o', `fsname=${o.fsname},subtype=dits,ro,kernel_cache,entry_timeout=3600,attr_timeout=3600,negative_timeout=3600`];
  const handle = binding.mount(mountPoint, args, paths, attrs, mounted.tree.files, dispatch);
  // the kernel's connection, to abort at unmount (requests then fail at once, and libfuse's
  // threads end even while a process still holds a file open after the lazy detach)
  const connection = connectionOf(mountPoint);
  // the kernel reads ahead 128 KiB by default: a sequential reader then asks 128-256 KiB at
  // a time. libfuse3 takes requests of up to 1 MiB (FUSE's max_pages): a read-ahead of that
  // much makes a quarter of the round trips (root only; otherwise it stays as it is). Set
  // once the kernel has FUSE's init answer, which would lower it back: a statfs (answered
  // by the binding, not JavaScript) waits for that
  if (connection !== null) {
    try {
      fs.statfsSync(mountPoint);
      fs.writeFileSync(`/sys/class/bdi/0:${connection}/read_ahead_kb`, String(READ_AHEAD_KB));
    } catch {
      // not root: the kernel's default read-ahead
    }
  }
  let unmounting: Promise<void> | null = null;
  return {
    unmount() {
      unmounting ??= new Promise<void>((resolve) => {
        detachMount(mountPoint);
        if (connection !== null) {
          try {
            fs.writeFileSync(`/sys/fs/fuse/connections/${connection}/abort`, '1');
          } catch {
            // not root, or gone already: the detach ends the connection once nothing is open
          }
        }
        // libfuse's threads end once every request held here is answered. Where the
        // connection could not be aborted (fusectl not mounted at /sys/fs/fuse/connections,
        // or not root), a process that still holds a file open keeps it: this process then
        // goes on, and its exit closes the connection (that holder's reads fail from then on)
        const t = setTimeout(() => {
          o.log('a process still holds a file of the mount open: its reads fail once this process has exited');
          resolve();
        }, 2_000);
        t.unref();
        binding.unmount(handle, () => {
          clearTimeout(t);
          resolve();
        });
      });
      return unmounting;
    },
  };
}
