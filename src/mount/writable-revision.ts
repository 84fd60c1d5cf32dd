/**
 * A writable mount in FUSE's terms: the revision (MountedRevision, read-only) under the
 * copy-on-write overlay (overlay.ts). Reads consult the overlay first: a file written in a
 * few ranges reads those ranges from its staging file and the rest from the revision's
 * content (chunks, verified as always); new files read from their staging file only.
 * Tested in-process like MountedRevision; mount-session.ts only translates.
 */
import { EBADF, EIO, EISDIR, ENOENT, type MountedRevision, type Stat } from './mounted-revision.js';
import type { Overlay, OverlayFile } from './overlay.js';

const ELOOP = -40;

interface WHandle {
  /** The revision `base` belongs to (an older one after a rebase, until the next read). */
  ro: MountedRevision | null;
  /** Descriptors of `ro` by base path, opened as the reads need them. */
  base: Map<string, number>;
  /** Descriptors on revisions this handle read before a rebase: released with it. */
  older: { ro: MountedRevision; fd: number }[];
}

/** A revision and overlay replaced by a rebase, kept until the handles opened on them are released. */
interface Retired {
  ro: MountedRevision;
  overlay: Overlay;
  waiting: Set<number>;
}

export class WritableRevision {
  private readonly handles = new Map<number, WHandle>();
  private nextFd = 1;
  private mtime: Date;
  private current: { ro: MountedRevision; overlay: Overlay };
  private readonly retired: Retired[] = [];

  constructor(
    ro: MountedRevision,
    overlay: Overlay,
    private readonly ids: { uid: number; gid: number } = { uid: 0, gid: 0 },
  ) {
    this.current = { ro, overlay };
    this.mtime = new Date(ro.tree.time);
  }

  get ro(): MountedRevision {
    return this.current.ro;
  }

  get overlay(): Overlay {
    return this.current.overlay;
  }

  /** The mounted commit (the overlay's key). */
  get commit(): string {
    return this.current.ro.tree.commit;
  }

  /**
   * After a commit of the overlay (commit-mount of a live mount): the same view, now as the
   * new commit's revision under an empty overlay. Open handles stay valid (their next reads
   * go to the new revision; reads in flight finish on the old one, whose overlay's staging
   * files stay open); the old revision is closed and the old overlay removed once the
   * handles opened before are all released. Call with mutating operations held.
   */
  rebase(ro: MountedRevision, overlay: Overlay): void {
    const old: Retired = { ...this.current, waiting: new Set(this.handles.keys()) };
    old.overlay.retire();
    this.current = { ro, overlay };
    this.mtime = new Date(ro.tree.time);
    if (old.waiting.size === 0) void this.finish(old);
    else this.retired.push(old);
  }

  private async finish(old: Retired): Promise<void> {
    try {
      old.overlay.destroy();
    } finally {
      await old.ro.close();
    }
  }

  getattr(p: string): Stat | number {
    const r = this.overlay.resolve(p);
    if (!r) return ENOENT;
    if (r.from === 'base') {
      const st = this.ro.getattr(p);
      if (typeof st === 'number') return st;
      // the read-only mount shows no write bits; this one can be written
      return { ...st, mode: st.mode & 0o170000 ? (st.mode & 0o170000) === 0o120000 ? st.mode : st.mode | 0o200 : st.mode };
    }
    const t = new Date(r.node.mtime);
    const base = { ino: 0, uid: this.ids.uid, gid: this.ids.gid, mtime: t, atime: t, ctime: t, blksize: 4096 };
    if (r.node.kind === 'dir') return { ...base, mode: 0o40755, size: 4096, nlink: 2, blocks: 8 };
    if (r.node.kind === 'link') return { ...base, mode: 0o120777, size: Buffer.byteLength(r.node.target), nlink: 1, blocks: 0 };
    return { ...base, mode: 0o100000 | r.node.mode, size: r.node.size, nlink: 1, blocks: Math.ceil(r.node.size / 512) };
  }

  readdir(p: string): string[] | number {
    const r = this.overlay.resolve(p);
    if (!r) return ENOENT;
    if (r.node.kind !== 'dir') return -20;
    return this.overlay.list(p);
  }

  readlink(p: string): Promise<string | number> {
    const r = this.overlay.resolve(p);
    if (!r) return Promise.resolve(ENOENT);
    if (r.from === 'overlay') {
      if (r.node.kind === 'link') return Promise.resolve(r.node.target);
      const f = r.node as OverlayFile;
      return f.kind === 'file' && f.base && f.written.length === 0 ? this.ro.readlink(f.base) : Promise.resolve(-22);
    }
    return this.ro.readlink(p);
  }

  open(p: string, flags: number): number {
    const r = this.overlay.resolve(p);
    if (!r) return ENOENT;
    if (r.node.kind === 'dir') return EISDIR;
    if (r.node.kind === 'link' && r.from === 'overlay') return ELOOP; // the kernel follows links before it opens
    if (flags & 0o1000) {
      const t = this.overlay.truncate(p, 0); // O_TRUNC
      if (t < 0) return t;
    }
    const fd = this.nextFd++;
    this.handles.set(fd, { ro: null, base: new Map(), older: [] });
    return fd;
  }

  create(p: string, mode: number): number {
    const c = this.overlay.create(p, mode);
    if (c < 0) return c;
    const fd = this.nextFd++;
    this.handles.set(fd, { ro: null, base: new Map(), older: [] });
    return fd;
  }

  private baseFd(h: WHandle, ro: MountedRevision, basePath: string): number {
    if (h.ro !== ro) {
      if (h.ro) for (const fd of h.base.values()) h.older.push({ ro: h.ro, fd });
      h.ro = ro;
      h.base = new Map();
    }
    let fd = h.base.get(basePath);
    if (fd === undefined) {
      fd = ro.open(basePath, 0);
      if (fd < 0) return fd;
      h.base.set(basePath, fd);
    }
    return fd;
  }

  async read(p: string, fd: number, buf: Buffer, length: number, position: number): Promise<number> {
    const h = this.handles.get(fd);
    if (!h) return EBADF;
    // the revision and overlay of this moment: a rebase during the awaits below does not mix them
    const { ro, overlay } = this.current;
    const r = overlay.resolve(p);
    if (!r) return ENOENT;
    if (r.node.kind === 'dir') return EISDIR;
    if (r.node.kind === 'link' && r.from === 'overlay') return ELOOP;
    if (r.from === 'base') {
      const bfd = this.baseFd(h, ro, p);
      return bfd < 0 ? bfd : ro.read(bfd, buf, length, position);
    }
    const f = r.node as OverlayFile;
    const end = Math.min(f.size, position + length);
    let at = position;
    try {
      while (at < end) {
        const w = f.written.find((x) => x.end > at);
        if (w && w.start <= at) {
          const n = Math.min(end, w.end) - at;
          overlay.readData(f.data!, buf, at - position, n, at);
          at += n;
          continue;
        }
        const stop = Math.min(end, w ? w.start : end);
        const fromBase = f.base ? Math.max(0, Math.min(stop, f.baseLen) - at) : 0;
        if (fromBase > 0) {
          const bfd = this.baseFd(h, ro, f.base!);
          if (bfd < 0) return bfd;
          const n = await ro.read(bfd, buf.subarray(at - position), fromBase, at);
          if (n < 0) return n;
          if (n !== fromBase) return EIO;
          at += n;
        } else {
          buf.fill(0, at - position, stop - position);
          at = stop;
        }
      }
    } catch {
      return EIO;
    }
    return Math.max(0, end - position);
  }

  write(p: string, fd: number, buf: Buffer, length: number, position: number): number {
    if (!this.handles.has(fd)) return EBADF;
    return this.overlay.write(p, buf, length, position);
  }

  release(fd: number): number {
    const h = this.handles.get(fd);
    if (!h) return EBADF;
    this.handles.delete(fd);
    if (h.ro) for (const b of h.base.values()) h.ro.release(b);
    for (const o of h.older) o.ro.release(o.fd);
    for (const old of [...this.retired]) {
      old.waiting.delete(fd);
      if (old.waiting.size === 0) {
        this.retired.splice(this.retired.indexOf(old), 1);
        void this.finish(old);
      }
    }
    return 0;
  }

  /** fsync/flush: the journal and the staging files reach the disk. */
  fsync(): number {
    try {
      this.overlay.sync();
      return 0;
    } catch {
      return EIO;
    }
  }

  truncate(p: string, size: number): number {
    return this.overlay.truncate(p, size);
  }

  unlink(p: string): number {
    return this.overlay.unlink(p);
  }

  rename(from: string, to: string): number {
    return this.overlay.rename(from, to);
  }

  symlink(p: string, target: string): number {
    return this.overlay.symlink(p, target);
  }

  mkdir(p: string): number {
    return this.overlay.mkdir(p);
  }

  rmdir(p: string): number {
    return this.overlay.rmdir(p);
  }

  chmod(p: string, mode: number): number {
    return this.overlay.chmod(p, mode);
  }

  get openHandles(): number {
    return this.handles.size;
  }

  async close(): Promise<void> {
    try {
      this.overlay.sync();
    } catch {
      /* closing anyway: what reached the journal is kept */
    }
    this.overlay.close();
    this.handles.clear();
    for (const old of this.retired.splice(0)) await this.finish(old);
    await this.ro.close();
  }
}
