/**
 * A revision as a read-only file system, in the terms FUSE asks for (attributes, directory
 * listings, open, read, release) but without FUSE itself, so every answer can be tested
 * in-process: fuse-ops.ts only translates. Errors are negative errnos; a failed read is
 * logged once with the file's path and what to do, and the mount stays up.
 *
 * Content: small files from Git's objects (blob-reader.ts, cached in RAM), tracked files
 * through FileContent (one per file version in use, shared by the handles open on it).
 * With `proxies`, a tracked file that has a proxy variant is shown and read as its proxy,
 * at the proxy's size; one without is served as the original and the log says so.
 */
import { isFrozenError } from '../tier/tier-storage.js';
import { RemoteChunkCorruptError, RemoteContentNotReadyError } from '../remote/content/remote-file-reader.js';
import { StorageError } from '../transfer/storage-error.js';
import { isUserError } from '../errors.js';
import type { Pointer } from '../manifest/pointer.js';
import type { VariantRecord } from '../manifest/variant-record.js';
import type { BlobReader } from './blob-reader.js';
import { FileContent, newReadAhead, putBytes, type ContentDeps, type ReadAhead, type ReadSink } from './file-content.js';
import type { RevisionTree, TreeFile, TreeNode } from './revision-tree.js';

export const ENOENT = -2;
export const EIO = -5;
export const EBADF = -9;
export const EACCES = -13;
export const ENOTDIR = -20;
export const EISDIR = -21;
export const EINVAL = -22;
export const EROFS = -30;

export interface Stat {
  mode: number;
  size: number;
  ino: number;
  nlink: number;
  uid: number;
  gid: number;
  mtime: Date;
  atime: Date;
  ctime: Date;
  blocks: number;
  blksize: number;
}

export interface MountedRevisionOptions {
  deps: ContentDeps;
  blobs: BlobReader;
  /** One line per event worth telling the user (a failed read, a missing proxy). */
  log: (line: string) => void;
  /** Serve proxies: the ok proxy record of an original file id, if any. */
  proxyOf?: (originalFileId: string) => VariantRecord | undefined;
  uid?: number;
  gid?: number;
}

interface Handle {
  path: string;
  node: TreeFile;
  content?: Promise<FileContent>;
  ra: ReadAhead;
}

/** Versions kept open after their last handle closes (their manifest and remote reader). */
const RECENT_CONTENTS = 32;

/** Set once a read's answer was given otherwise: the read stops writing into its buffer. */
export interface ReadStop {
  readonly stopped: boolean;
}

export class MountedRevision {
  private readonly handles = new Map<number, Handle>();
  private nextFd = 1;
  private readonly contents = new Map<string, { content: Promise<FileContent>; users: number }>();
  private readonly mtime: Date;
  /** path -> the pointer served there (the proxy's in proxy mode) */
  private readonly served = new Map<string, Pointer>();
  /** files a failed read was logged for, and when (one line per file a minute) */
  private readonly logged = new Map<string, number>();
  private closed = false;
  /** Settles when close() starts: reads still waiting (on a remote) answer EIO at once. */
  private readonly closing: Promise<number>;
  private signalClosing!: () => void;

  constructor(
    readonly tree: RevisionTree,
    private readonly opts: MountedRevisionOptions,
  ) {
    this.mtime = new Date(tree.time);
    this.closing = new Promise<number>((resolve) => (this.signalClosing = () => resolve(EIO)));
    let noProxy = 0;
    for (const [p, n] of tree.nodes) {
      if (n.kind !== 'file' || !n.pointer) continue;
      if (!opts.proxyOf) {
        this.served.set(p, n.pointer);
        continue;
      }
      const v = opts.proxyOf(n.pointer.oid);
      if (v && v.fileId && v.manifest && v.size !== undefined) {
        this.served.set(p, { oid: v.fileId, size: v.size, manifest: v.manifest });
      } else {
        this.served.set(p, n.pointer);
        noProxy++;
        if (noProxy <= 20) opts.log(`no proxy for ${p.slice(1)}: serving the original (\`git dits proxy make\` makes one)`);
      }
    }
    if (noProxy > 20) opts.log(`... and ${noProxy - 20} more file(s) without a proxy, served as originals`);
  }

  private node(path: string): TreeNode | undefined {
    return this.tree.nodes.get(path);
  }

  private sizeOf(path: string, n: TreeFile): number {
    return this.served.get(path)?.size ?? n.size;
  }

  getattr(path: string): Stat | number {
    const n = this.node(path);
    if (!n) return ENOENT;
    const base = { ino: n.ino, uid: this.opts.uid ?? 0, gid: this.opts.gid ?? 0, mtime: this.mtime, atime: this.mtime, ctime: this.mtime, blksize: 4096 };
    if (n.kind === 'dir') return { ...base, mode: 0o40555, size: 4096, nlink: 2, blocks: 8 };
    const size = this.sizeOf(path, n);
    const mode = n.kind === 'link' ? 0o120777 : n.mode === '100755' ? 0o100555 : 0o100444;
    return { ...base, mode, size, nlink: 1, blocks: Math.ceil(size / 512) };
  }

  readdir(path: string): string[] | number {
    const n = this.node(path);
    if (!n) return ENOENT;
    if (n.kind !== 'dir') return ENOTDIR;
    return n.names;
  }

  async readlink(path: string): Promise<string | number> {
    const n = this.node(path);
    if (!n) return ENOENT;
    if (n.kind !== 'link') return EINVAL;
    try {
      return (await this.opts.blobs.read(n.blobOid)).toString('utf8');
    } catch (err) {
      this.logFailure(path, err);
      return EIO;
    }
  }

  /** A handle for reading; writes are refused (EROFS). */
  open(path: string, flags: number): number {
    const n = this.node(path);
    if (!n) return ENOENT;
    if (n.kind === 'dir') return EISDIR;
    if ((flags & 3) !== 0 || (flags & 0o1000) !== 0) return EROFS; // O_WRONLY, O_RDWR, O_TRUNC
    const fd = this.nextFd++;
    const h: Handle = { path, node: n, ra: newReadAhead() };
    const pointer = this.served.get(path);
    if (pointer) h.content = this.acquire(pointer);
    this.handles.set(fd, h);
    return fd;
  }

  private acquire(p: Pointer): Promise<FileContent> {
    let e = this.contents.get(p.manifest);
    if (!e) {
      const content = FileContent.open(p, this.opts.deps);
      e = { content, users: 0 };
      this.contents.set(p.manifest, e);
      // a version whose manifest could not be had is asked again by the next open
      content.catch(() => this.contents.get(p.manifest)?.content === content && this.contents.delete(p.manifest));
    }
    e.users++;
    return e.content;
  }

  release(fd: number): number {
    const h = this.handles.get(fd);
    if (!h) return EBADF;
    this.handles.delete(fd);
    const p = this.served.get(h.path);
    if (p) {
      const e = this.contents.get(p.manifest);
      if (e && --e.users <= 0) this.trimContents();
    }
    return 0;
  }

  /** Drops versions nobody has open beyond the most recent few. */
  private trimContents(): void {
    const idle = [...this.contents.entries()].filter(([, e]) => e.users <= 0);
    for (const [k, e] of idle.slice(0, Math.max(0, idle.length - RECENT_CONTENTS))) {
      this.contents.delete(k);
      e.content.then((c) => c.close()).catch(() => {});
    }
  }

  /**
   * Reads into `buf` (or through a sink into memory of its own); the byte count (0 at or
   * past the end), or a negative errno. `stop`: set by the caller once it answered otherwise
   * (timed out): nothing is written to `buf` after that.
   */
  read(fd: number, buf: Buffer | ReadSink, length: number, position: number, stop?: ReadStop): Promise<number> {
    if (this.closed) return Promise.resolve(EIO);
    const h = this.handles.get(fd);
    if (!h) return Promise.resolve(EBADF);
    return Promise.race([this.readHandle(h, buf, length, position, stop), this.closing]);
  }

  private async readHandle(h: Handle, buf: Buffer | ReadSink, length: number, position: number, stop?: ReadStop): Promise<number> {
    try {
      let data: Buffer;
      // writes into FUSE's buffer only while it is still this read's (not once the mount closed)
      const closed = (): boolean => this.closed;
      const live: ReadStop = {
        get stopped() {
          return stop?.stopped === true || closed();
        },
      };
      if (h.content) {
        const c = await h.content;
        const n = await c.readInto(live.stopped ? Buffer.alloc(0) : buf, position, length, h.ra, live);
        return live.stopped ? EIO : n;
      } else {
        const key = `blob:${h.node.blobOid}`;
        let blob = this.opts.deps.ram.get(key);
        if (!blob) {
          blob = await this.opts.blobs.read(h.node.blobOid);
          this.opts.deps.ram.put(key, blob);
        }
        data = position >= blob.length ? Buffer.alloc(0) : blob.subarray(position, Math.min(blob.length, position + length));
      }
      if (live.stopped) return EIO;
      putBytes(buf, data, 0, Math.min(length, data.length), 0);
      return Math.min(length, data.length);
    } catch (err) {
      this.logFailure(h.path, err);
      return EIO;
    }
  }

  /** One line naming the file and what to do, at most once a minute per file and kind of failure. */
  private logFailure(path: string, err: unknown): void {
    const file = path.slice(1);
    const { what, key } = describeReadFailure(file, err);
    const now = Date.now();
    const k = `${path}\0${key}`;
    if ((this.logged.get(k) ?? 0) > now - 60_000) return;
    this.logged.set(k, now);
    this.opts.log(what);
  }

  /** Handles still open (files a reader holds). */
  get openHandles(): number {
    return this.handles.size;
  }

  /** Stops serving: reads from now on (and those waiting) answer EIO. */
  async close(): Promise<void> {
    this.closed = true;
    this.signalClosing();
    this.handles.clear();
    const all = [...this.contents.values()];
    this.contents.clear();
    // not awaited: a version still opening may wait on a remote that never answers
    for (const e of all) e.content.then((c) => c.close()).catch(() => {});
    await Promise.resolve();
  }
}

/** The log line for a read that failed, and a key that groups repeats of it. */
export function describeReadFailure(file: string, err: unknown): { what: string; key: string } {
  if (isFrozenError(err)) {
    return { what: `${file}: content is frozen in an archive tier (${(err as Error).message}); read failed with EIO. Restore it with \`git dits thaw ${file}\``, key: 'frozen' };
  }
  if (err instanceof RemoteChunkCorruptError) {
    return { what: `${file}: a chunk from the remote does not match its id, not served (EIO): ${err.message}. ${err.hint ?? ''}`.trim(), key: 'corrupt' };
  }
  if (err instanceof RemoteContentNotReadyError) {
    return { what: `${file}: ${err.message} (EIO). ${err.hint ?? ''}`.trim(), key: 'not-ready' };
  }
  if (err instanceof StorageError) {
    return { what: `${file}: the remote failed (${err.message}); read failed with EIO, later reads try again`, key: `storage:${err.code}` };
  }
  if (isUserError(err)) return { what: `${file}: ${err.message} (EIO)${err.hint ? `; ${err.hint}` : ''}`, key: `user:${err.code}` };
  return { what: `${file}: read failed (EIO): ${err instanceof Error ? err.message : String(err)}`, key: 'other' };
}
