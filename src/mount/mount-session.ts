/**
 * One mount, from the checks of its mount point to its unmount: prepareMountPoint (refuses
 * a busy or non-empty point and a second mount of the same repository there, cleans a stale
 * mount left by a killed process), then mountRevision (the tree, the stores, the caches, the
 * FUSE session), and MountSession.unmount (waiting reads answer EIO, the kernel mount goes,
 * the stores close, the record is removed).
 *
 * FUSE is loaded here only (fuse-native, a native addon): no other command pays for it.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { DitsUserError, errnoCode } from '../errors.js';
import type { RepoPaths } from '../git/repo.js';
import { ChunkStore } from '../store/chunk-store.js';
import { BlobReader } from './blob-reader.js';
import { CacheStore } from './cache-store.js';
import { EROFS, ENOENT, MountedRevision } from './mounted-revision.js';
import { loadNativeFuse, mountNative, type NativeMount } from './native-fuse.js';
import { detachMount, fuseDeviceHint, mountPointState, readMounts, readRecord, removeRecord, writeRecord } from './mount-point.js';
import { processAlive } from '../process-alive.js';
import { RamCache } from './ram-cache.js';
import { AHEAD_LIMIT, FETCH_PIECE } from './file-content.js';
import { RemoteSource, type NamedStorage } from './remote-source.js';
import { loadRevisionTree, type RevisionTree } from './revision-tree.js';
import { fetchVariantRecords } from '../proxy/remote-variants.js';
import { Overlay, overlayDir } from './overlay.js';
import { WritableRevision } from './writable-revision.js';
import { startControl, type ControlServer } from './live-control.js';
import { treeCv } from '../hashing/tree-cv.js';

export interface MountOptions {
  repo: RepoPaths;
  /** Absolute and resolved (resolveMountPoint). */
  mountPoint: string;
  rev: string;
  mode: 'original' | 'proxy';
  /** Disk budget of the cache of remote chunks. */
  cacheBytes: number;
  /** RAM budget of verified chunks and small files. */
  memoryBytes: number;
  log: (line: string) => void;
  openStorages: () => Promise<NamedStorage[]>;
  /** Where the log goes, recorded for `git dits umount` and the user (background mounts). */
  logFile?: string;
  /** Writes go to the copy-on-write overlay of the revision (overlay.ts), kept after unmount. */
  writable?: boolean;
}

export interface MountSession {
  mountPoint: string;
  tree: RevisionTree;
  mounted: MountedRevision;
  /** Set for a writable mount. */
  writable: WritableRevision | null;
  cache: CacheStore;
  /** Which FUSE binding serves it, and why not Dits' own where that is not it (for the log). */
  binding: string;
  unmount(): Promise<void>;
}

/**
 * Makes `dir` ready to mount on (created when missing); throws a DitsUserError saying what
 * to do when it cannot be used. A stale Dits mount (its process gone) is detached first.
 */
export function prepareMountPoint(dir: string, ditsDir: string, log: (line: string) => void): void {
  const state = mountPointState(dir);
  if (state.kind === 'dits' && state.stale) {
    if (!detachMount(dir)) {
      throw new DitsUserError('mount-stale', `${dir} holds a stale mount (its process ${state.pid || 'is gone'}) that could not be detached`, { hint: `run \`fusermount -u -z ${dir}\` (or \`umount -l ${dir}\` as root)` });
    }
    removeRecord(ditsDir, dir);
    log(`cleaned a stale mount at ${dir} left by a process that was killed${state.pid ? ` (${state.pid})` : ''}`);
  } else if (state.kind === 'dits') {
    const rec = readRecord(ditsDir, dir);
    if (rec && rec.pid === state.pid) {
      throw new DitsUserError('already-mounted', `this repository is already mounted at ${dir} (process ${state.pid}, revision ${rec.rev})`, { hint: `unmount it first: \`git dits umount ${dir}\`` });
    }
    throw new DitsUserError('mount-point-busy', `${dir} is busy: another Dits mount is there (process ${state.pid})`, { hint: `choose another directory, or \`git dits umount ${dir}\` first` });
  } else if (state.kind === 'other') {
    throw new DitsUserError('mount-point-busy', `${dir} is busy: ${state.source} (${state.fsType}) is mounted there`, { hint: 'choose an empty directory that nothing is mounted on' });
  }
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
    fs.mkdirSync(dir, { recursive: true });
    st = fs.statSync(dir);
  }
  if (!st.isDirectory()) throw new DitsUserError('mount-point-not-dir', `${dir} is not a directory`, { hint: 'give an empty directory (or a path to create)' });
  if (fs.readdirSync(dir).length > 0) {
    throw new DitsUserError('mount-point-not-empty', `${dir} is not empty`, { hint: 'mount on an empty directory (a mount would hide what is there)' });
  }
}

/**
 * Proxy mode in a clone that has not fetched the proxies' records: they are read from the
 * remotes' variants indexes (records only, a few hundred bytes each; the proxies' content
 * comes on read like any other). A remote that fails is logged and skipped.
 */
async function fetchProxyRecords(tree: RevisionTree, store: ChunkStore, openStorages: () => Promise<NamedStorage[]>, log: (line: string) => void): Promise<void> {
  const originals = new Set<string>();
  for (const n of tree.nodes.values()) {
    if (n.kind === 'file' && n.pointer && !store.variantsOf(n.pointer.oid, 'proxy').some((v) => v.status === 'ok')) originals.add(n.pointer.oid);
  }
  if (originals.size === 0) return;
  let remotes: NamedStorage[];
  try {
    remotes = await openStorages();
  } catch (err) {
    log(`could not open the remotes to look for proxies: ${err instanceof Error ? err.message : String(err)}`);
    return;
  }
  for (const r of remotes) {
    const missing = [...originals].filter((o) => !store.variantsOf(o, 'proxy').some((v) => v.status === 'ok'));
    if (missing.length === 0) return;
    try {
      await fetchVariantRecords(r.storage, store, missing);
    } catch (err) {
      log(`${r.name}: could not read its proxy records: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}

interface FuseInstance {
  mount(cb: (err: Error | null) => void): void;
  unmount(cb: (err: Error | null) => void): void;
}
type FuseClass = new (mnt: string, ops: Record<string, unknown>, opts: Record<string, unknown>) => FuseInstance;

/** The native binding in fuse-native's shape (mount, unmount), so the session treats both alike. */
function nativeInstance(binding: NonNullable<ReturnType<typeof loadNativeFuse>['binding']>, mountPoint: string, mounted: MountedRevision, log: (line: string) => void): FuseInstance {
  let m: NativeMount | null = null;
  return {
    mount(cb) {
      try {
        m = mountNative(binding, mountPoint, mounted, { fsname: `dits@${process.pid}`, readTimeout: 120_000, timeout: 30_000, log });
        cb(null);
      } catch (err) {
        cb(err instanceof Error ? err : new Error(String(err)));
      }
    },
    unmount(cb) {
      if (!m) return cb(null);
      m.unmount().then(() => cb(null), cb);
    },
  };
}

function loadFuse(): FuseClass {
  const require = createRequire(import.meta.url);
  try {
    return require('fuse-native') as FuseClass;
  } catch (err) {
    throw new DitsUserError('fuse-unavailable', `FUSE cannot be loaded: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`, {
      hint: 'install Debian\'s libfuse2 and fuse3 (`./scripts/setup.sh` does), and make sure /dev/fuse exists',
    });
  }
}

export async function mountRevision(o: MountOptions): Promise<MountSession> {
  if (!fs.existsSync('/dev/fuse')) {
    throw new DitsUserError('fuse-unavailable', '/dev/fuse does not exist on this machine', { hint: 'load the fuse kernel module (`modprobe fuse`), or in a container pass --device /dev/fuse' });
  }
  // fuse-native is loaded (and checked) before anything is set up, unless Dits' own binding serves
  const Fuse = o.writable || !loadNativeFuse().binding ? loadFuse() : null;
  prepareMountPoint(o.mountPoint, o.repo.ditsDir, o.log);
  const tree = await loadRevisionTree(o.repo.workTree, o.rev);
  const store = ChunkStore.open(o.repo.ditsDir, { create: true });
  // gc deletes nothing while the mount lives: the revision shown may be one nothing else
  // refers to (a dropped stash, a deleted branch), and its files may be opened at any time
  store.holdAgainstGc();
  // BLAKE3's and its leaf tree's checks, once per process (about 30 ms): here, not in the
  // first open of a file (a big manifest is verified through its leaves: FileContent.open)
  treeCv();
  const cache = CacheStore.open(o.repo.ditsDir, o.cacheBytes);
  const blobs = new BlobReader(o.repo.workTree);
  // --memory also covers the remote read-ahead not read yet (AHEAD_LIMIT: twice the
  // window; a GET holds only the chunks it hands over) and chunks evicted but not yet freed (V8 frees
  // buffers at its next full collection: measured about 64 MiB behind after a long remote
  // read), so the cache gets what is left
  const ram = new RamCache(Math.max(8 << 20, o.memoryBytes - AHEAD_LIMIT - (64 << 20)));
  const remote = new RemoteSource(o.openStorages, { indexCacheDir: path.join(cache.dir, 'pack-indexes'), maxRangeBytes: FETCH_PIECE, log: o.log });
  // the remotes' clients (the AWS SDK takes about 90 ms to load) are made now, while the
  // mount is set up, not on the first read that needs them (the first byte waited for the
  // rest of the loading when it started only once mounted); nothing is asked of the network
  if (tree.trackedFiles > 0) void remote.any().catch(() => {});
  const closeAll = (): void => {
    blobs.close();
    try {
      cache.close();
    } finally {
      store.close();
    }
  };
  const roOptions: ConstructorParameters<typeof MountedRevision>[1] = {
    deps: { store, cache, ram, remote },
    blobs,
    log: o.log,
    proxyOf: o.mode === 'proxy' ? (original) => store.variantsOf(original, 'proxy').find((v) => v.status === 'ok') : undefined,
    uid: process.getuid?.() ?? 0,
    gid: process.getgid?.() ?? 0,
  };
  let mounted: MountedRevision;
  try {
    if (o.mode === 'proxy') await fetchProxyRecords(tree, store, o.openStorages, o.log);
    mounted = new MountedRevision(tree, roOptions);
  } catch (err) {
    closeAll();
    throw err;
  }
  let w: WritableRevision | null = null;
  if (o.writable) {
    // one writer per overlay: a second writable mount of the same commit would interleave journals
    for (const m of readMounts()) {
      const rec = m.fsType === 'fuse.dits' && m.mountPoint !== o.mountPoint ? readRecord(o.repo.ditsDir, m.mountPoint) : null;
      if (rec?.writable && rec.commit === tree.commit && processAlive(rec.pid)) {
        await mounted.close();
        closeAll();
        throw new DitsUserError('overlay-busy', `${m.mountPoint} already mounts ${tree.commit.slice(0, 12)} writable (process ${rec.pid}); its overlay has one writer`, { hint: `write there, or unmount it first: \`git dits umount ${m.mountPoint}\`` });
      }
    }
    try {
      const overlay = Overlay.open(overlayDir(o.repo.ditsDir, tree.commit), tree, { create: true });
      if (!overlay.empty) o.log(`picked up the overlay of earlier writes to ${tree.commit.slice(0, 12)} (${overlay.nodes.size} path(s) changed; \`git dits mount --status ${o.mountPoint}\` lists them)`);
      w = new WritableRevision(mounted, overlay, { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 });
      // so that `git dits commit-mount <dir>` and `mount --status <dir>` find it after an unmount
      fs.writeFileSync(path.join(overlay.dir, 'mount-point'), o.mountPoint);
    } catch (err) {
      await mounted.close();
      closeAll();
      throw err;
    }
  }
  const writable = w;
  const refuse = (...args: unknown[]): void => (args[args.length - 1] as (e: number) => void)(EROFS);
  const ops: Record<string, unknown> = {
    init: (cb: (e: number) => void) => cb(0),
    getattr: (p: string, cb: (e: number, st?: unknown) => void) => {
      const r = mounted.getattr(p);
      if (typeof r === 'number') cb(r);
      else cb(0, r);
    },
    readdir: (p: string, cb: (e: number, names?: string[]) => void) => {
      const r = mounted.readdir(p);
      if (typeof r === 'number') cb(r);
      else cb(0, r);
    },
    open: (p: string, flags: number, cb: (e: number, fd?: number) => void) => {
      const r = mounted.open(p, flags);
      if (r < 0) cb(r);
      else cb(0, r);
    },
    read: (_p: string, fd: number, buf: Buffer, len: number, pos: number, cb: (n: number) => void) => {
      mounted.read(fd, buf, len, pos).then(cb, () => cb(-5));
    },
    release: (_p: string, fd: number, cb: (e: number) => void) => {
      mounted.release(fd);
      cb(0);
    },
    readlink: (p: string, cb: (e: number, target?: string) => void) => {
      mounted.readlink(p).then(
        (r) => (typeof r === 'number' ? cb(r) : cb(0, r)),
        () => cb(-5),
      );
    },
    access: (p: string, mode: number, cb: (e: number) => void) => {
      if (typeof mounted.getattr(p) === 'number') cb(ENOENT);
      else cb(mode & 2 ? EROFS : 0);
    },
    statfs: (_p: string, cb: (e: number, s?: unknown) => void) =>
      cb(0, { bsize: 4096, frsize: 4096, blocks: 0, bfree: 0, bavail: 0, files: tree.files, ffree: 0, favail: 0, fsid: 0, flag: 1, namemax: 255 }),
    // no getxattr/listxattr: libfuse answers ENOSYS, and the kernel then stops asking (ls -l
    // asks for two attributes of every file: 20,000 round trips for 10,000 files)
    write: refuse,
    create: refuse,
    unlink: refuse,
    rename: refuse,
    mkdir: refuse,
    rmdir: refuse,
    truncate: refuse,
    ftruncate: refuse,
    chmod: refuse,
    chown: refuse,
    utimens: refuse,
    symlink: refuse,
    link: refuse,
    setxattr: refuse,
    removexattr: refuse,
    mknod: refuse,
  };
  // changing operations wait here while a commit-mount of this live mount runs (live-control.ts)
  const gate: Gate = { held: null };
  if (writable) Object.assign(ops, writableOps(writable, gate));
  // read-only: Dits' own binding answers names and attributes without the event loop
  // (native-fuse.ts); writable mounts change their tree, and go through fuse-native
  const native = writable ? null : loadNativeFuse().binding ?? null;
  const fuse: FuseInstance = native ? nativeInstance(native, o.mountPoint, mounted, o.log) : new (Fuse ?? loadFuse())(o.mountPoint, ops, {
    fsname: `dits@${process.pid}`,
    subtype: 'dits',
    // the tree never changes while mounted: the kernel may keep names, attributes and pages
    // (a writable mount changes under the kernel's caches: sizes, names, pages)
    entryTimeout: writable ? 1 : 3600,
    attrTimeout: writable ? 1 : 3600,
    kernelCache: !writable,
    maxRead: 1 << 20,
    // a read waiting on a slow remote answers ETIMEDOUT after this, rather than hanging the
    // reader; changes held during a commit-mount of a writable mount may wait longer
    timeout: writable ? { default: 30_000, read: 120_000, ...Object.fromEntries(HELD_OPS.map((op) => [op, 600_000])) } : { default: 30_000, read: 120_000 },
  });
  try {
    await new Promise<void>((resolve, reject) => fuse.mount((err) => (err ? reject(err) : resolve())));
  } catch (err) {
    await (writable ?? mounted).close();
    closeAll();
    throw new DitsUserError('mount-failed', `cannot mount at ${o.mountPoint}: ${err instanceof Error ? err.message : String(err)}`, { hint: fuseDeviceHint() });
  }
  let control: ControlServer | null = null;
  const record = (commit: string): void =>
    writeRecord(o.repo.ditsDir, { mountPoint: o.mountPoint, pid: process.pid, rev: o.rev, commit, mode: o.mode, started: Date.now(), ...(o.logFile ? { log: o.logFile } : {}), ...(writable ? { writable: true } : {}), ...(control ? { control: control.path } : {}) });
  if (writable) {
    const w = writable;
    try {
      control = await startControl(
        {
          commit: () => w.commit,
          pause: () => {
            gate.held = [];
            w.overlay.sync();
          },
          resume: () => {
            const held = gate.held ?? [];
            gate.held = null;
            for (const run of held) run();
          },
          rebase: async (commit) => {
            const was = w.commit;
            const next = await loadRevisionTree(o.repo.workTree, commit);
            const ro = new MountedRevision(next, roOptions);
            const overlay = Overlay.open(overlayDir(o.repo.ditsDir, next.commit), next, { create: true });
            fs.writeFileSync(path.join(overlay.dir, 'mount-point'), o.mountPoint);
            w.rebase(ro, overlay);
            record(next.commit);
            o.log(`committed: now showing ${next.commit.slice(0, 12)} (the overlay of ${was.slice(0, 12)} is in it; new writes start a new overlay)`);
          },
        },
        o.log,
      );
    } catch (err) {
      o.log(`commit-mount of this mount will need an unmount first: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  record(tree.commit);
  let unmounting: Promise<void> | null = null;
  return {
    mountPoint: o.mountPoint,
    tree,
    mounted,
    writable,
    cache,
    binding: native ? "Dits' FUSE binding (libfuse3)" : `fuse-native (libfuse2)${writable ? '' : `: ${loadNativeFuse().error ?? ''}`}`,
    unmount() {
      unmounting ??= (async () => {
        // waiting reads answer EIO now, not after the unmount; the overlay is synced and kept
        control?.close();
        if (gate.held) {
          // a commit-mount was running: the changes it held are answered (EIO), not lost silently
          const held = gate.held;
          gate.held = null;
          for (const run of held) run();
        }
        await (writable ?? mounted).close();
        await new Promise<void>((resolve) => fuse.unmount(() => resolve()));
        if (mountPointState(o.mountPoint).kind !== 'free') detachMount(o.mountPoint);
        await cache.settled(); // the chunks fetched so far stay in the disk cache
        closeAll();
        removeRecord(o.repo.ditsDir, o.mountPoint, process.pid);
      })();
      return unmounting;
    },
  };
}

/** Changing operations held while a commit-mount of the live mount runs (null: none held). */
interface Gate {
  held: (() => void)[] | null;
}

/** The FUSE operations that change the overlay: held by the gate during a live commit-mount. */
const HELD_OPS = ['create', 'write', 'truncate', 'ftruncate', 'unlink', 'rename', 'mkdir', 'rmdir', 'chmod', 'symlink'] as const;
const O_TRUNC = 0o1000;

/** The FUSE operations of a writable mount (replacing the read-only ones and their EROFS). */
function writableOps(w: WritableRevision, gate: Gate): Record<string, unknown> {
  type Cb = (e: number, v?: unknown) => void;
  const status = (r: number, cb: Cb): void => cb(r < 0 ? r : 0);
  const ops = writableOpsUngated(w, status);
  // each changing operation runs at once, or once the commit is made (on the new overlay)
  const hold = <F extends (...a: never[]) => void>(f: F): F =>
    ((...a: Parameters<F>) => (gate.held ? gate.held.push(() => f(...a)) : f(...a))) as F;
  for (const op of HELD_OPS) ops[op] = hold(ops[op] as (...a: never[]) => void);
  const open = ops.open as (p: string, flags: number, cb: Cb) => void;
  const heldOpen = hold(open);
  ops.open = (p: string, flags: number, cb: Cb) => (flags & O_TRUNC ? heldOpen(p, flags, cb) : open(p, flags, cb));
  return ops;
}

function writableOpsUngated(w: WritableRevision, status: (r: number, cb: (e: number, v?: unknown) => void) => void): Record<string, unknown> {
  type Cb = (e: number, v?: unknown) => void;
  return {
    getattr: (p: string, cb: Cb) => {
      const r = w.getattr(p);
      if (typeof r === 'number') cb(r);
      else cb(0, r);
    },
    readdir: (p: string, cb: Cb) => {
      const r = w.readdir(p);
      if (typeof r === 'number') cb(r);
      else cb(0, r);
    },
    open: (p: string, flags: number, cb: Cb) => {
      const r = w.open(p, flags);
      if (r < 0) cb(r);
      else cb(0, r);
    },
    create: (p: string, mode: number, cb: Cb) => {
      const r = w.create(p, mode);
      if (r < 0) cb(r);
      else cb(0, r);
    },
    read: (p: string, fd: number, buf: Buffer, len: number, pos: number, cb: (n: number) => void) => {
      w.read(p, fd, buf, len, pos).then(cb, () => cb(-5));
    },
    write: (p: string, fd: number, buf: Buffer, len: number, pos: number, cb: (n: number) => void) => cb(w.write(p, fd, buf, len, pos)),
    release: (_p: string, fd: number, cb: Cb) => {
      w.release(fd);
      cb(0);
    },
    readlink: (p: string, cb: Cb) => {
      w.readlink(p).then(
        (r) => (typeof r === 'number' ? cb(r) : cb(0, r)),
        () => cb(-5),
      );
    },
    access: (p: string, _mode: number, cb: Cb) => cb(typeof w.getattr(p) === 'number' ? ENOENT : 0),
    truncate: (p: string, size: number, cb: Cb) => status(w.truncate(p, size), cb),
    ftruncate: (p: string, _fd: number, size: number, cb: Cb) => status(w.truncate(p, size), cb),
    unlink: (p: string, cb: Cb) => status(w.unlink(p), cb),
    rename: (from: string, to: string, cb: Cb) => status(w.rename(from, to), cb),
    mkdir: (p: string, _mode: number, cb: Cb) => status(w.mkdir(p), cb),
    // libfuse's order: what the link says first, then where it is made
    symlink: (target: string, p: string, cb: Cb) => status(w.symlink(p, target), cb),
    link: (_from: string, _to: string, cb: Cb) => cb(-1), // EPERM: git has no hard links
    rmdir: (p: string, cb: Cb) => status(w.rmdir(p), cb),
    chmod: (p: string, mode: number, cb: Cb) => status(w.chmod(p, mode), cb),
    fsync: (_p: string, _fd: number, _datasync: boolean, cb: Cb) => status(w.fsync(), cb),
    fsyncdir: (_p: string, _fd: number, _datasync: boolean, cb: Cb) => status(w.fsync(), cb),
    flush: (_p: string, _fd: number, cb: Cb) => cb(0),
    // times and owners are not versioned by git: accepted, not kept
    utimens: (_p: string, _a: unknown, _m: unknown, cb: Cb) => cb(0),
    chown: (_p: string, _u: number, _g: number, cb: Cb) => cb(0),
  };
}
