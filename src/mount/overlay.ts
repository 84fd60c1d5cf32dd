/**
 * The copy-on-write overlay of a writable mount: what changed over the mounted revision,
 * kept in `.git/dits/overlay/<commit>/` so that it outlives the mount process (an unmount,
 * a crash): the next writable mount of the same commit, `git dits mount --status` and
 * `git dits commit-mount` read it again.
 *
 *   journal      one JSON line per change, appended in order (format below)
 *   data/<name>  a sparse staging file per written file: the bytes written, at their offsets
 *
 * Journal lines (version 1; replaying them over the revision's tree gives the state):
 *   {"op":"write","path":"/a","start":0,"end":100,"data":"3"}      bytes [start,end) are in data/3
 *   {"op":"create","path":"/a","mode":420,"data":"4"}               a new empty file
 *   {"op":"mkdir","path":"/d"}  {"op":"unlink","path":"/a"}  {"op":"rmdir","path":"/d"}
 *   {"op":"rename","from":"/a","to":"/b"}  (over an existing file; directories with their content)
 *   {"op":"truncate","path":"/a","size":10,"data":"3"}  {"op":"chmod","path":"/a","mode":493}
 *   {"op":"symlink","path":"/l","target":"../a"}                  a new symbolic link
 *
 * Crash consistency, per write: the bytes go to the staging file first, the journal line
 * after; a write is answered only once its line is appended. A crash between the two leaves
 * bytes no line points at (never read); a torn last line is ignored on replay. A write that
 * fails (ENOSPC) changes nothing the journal records: the writer gets the error, nothing
 * written before is lost.
 *
 * Paths are FUSE's ('/', '/a/b'). A file in the overlay keeps the base path whose content
 * lies under its unwritten bytes (after a rename too), so a 20 GiB file edited in 100 bytes
 * costs 100 bytes here.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ByteRange } from './partial-rechunk.js';
import type { RevisionTree, TreeNode } from './revision-tree.js';

export interface OverlayFile {
  kind: 'file';
  /** The base path whose bytes show where nothing was written, or null for a new file. */
  base: string | null;
  /** Bytes of the base that may still show: [0, baseLen) minus `written`. */
  baseLen: number;
  size: number;
  /** Permission bits (0o644, 0o755). */
  mode: number;
  /** Written ranges, sorted and merged; their bytes are in the staging file. */
  written: ByteRange[];
  /** Staging file name under data/, or null while nothing was written. */
  data: string | null;
  mtime: number;
}

export interface OverlayDir {
  kind: 'dir';
  /** True when the base directory at this path (if any) is hidden: it was removed or replaced. */
  opaque: boolean;
  mtime: number;
}

/** A symbolic link made in the mount (a base link renamed stays an OverlayFile over its base). */
export interface OverlayLink {
  kind: 'link';
  target: string;
  mtime: number;
}

export interface OverlayGone {
  kind: 'gone';
}

export type OverlayNode = OverlayFile | OverlayDir | OverlayLink | OverlayGone;

export type JournalOp =
  | { op: 'write'; path: string; start: number; end: number; data: string }
  | { op: 'create'; path: string; mode: number; data: string }
  | { op: 'mkdir'; path: string }
  | { op: 'unlink'; path: string }
  | { op: 'rmdir'; path: string }
  | { op: 'rename'; from: string; to: string }
  | { op: 'truncate'; path: string; size: number; data: string }
  | { op: 'chmod'; path: string; mode: number }
  | { op: 'symlink'; path: string; target: string };

/** What a path shows: an overlay node, a node of the base tree, or nothing. */
export type Resolved = { from: 'overlay'; node: OverlayFile | OverlayDir | OverlayLink } | { from: 'base'; node: TreeNode } | null;

export function overlayDir(ditsDir: string, commit: string): string {
  return path.join(ditsDir, 'overlay', commit);
}

/** The overlays on disk: commit -> the mount point they were last mounted at (if recorded). */
export function listOverlays(ditsDir: string): { commit: string; dir: string; mountPoint: string | null }[] {
  let names: string[] = [];
  try {
    names = fs.readdirSync(path.join(ditsDir, 'overlay'));
  } catch {
    return [];
  }
  return names.map((commit) => {
    const dir = overlayDir(ditsDir, commit);
    let mountPoint: string | null = null;
    try {
      mountPoint = fs.readFileSync(path.join(dir, 'mount-point'), 'utf8');
    } catch {
      /* not recorded */
    }
    return { commit, dir, mountPoint };
  }).filter((o) => Overlay.exists(o.dir));
}

export function parentOf(p: string): string {
  const i = p.lastIndexOf('/');
  return i <= 0 ? '/' : p.slice(0, i);
}

function addRange(ranges: ByteRange[], r: ByteRange): ByteRange[] {
  if (r.end <= r.start) return ranges;
  const out: ByteRange[] = [];
  let cur = { ...r };
  for (const x of ranges) {
    if (x.end < cur.start || x.start > cur.end) out.push(x);
    else cur = { start: Math.min(cur.start, x.start), end: Math.max(cur.end, x.end) };
  }
  out.push(cur);
  return out.sort((a, b) => a.start - b.start);
}

function clipRanges(ranges: ByteRange[], size: number): ByteRange[] {
  return ranges.filter((r) => r.start < size).map((r) => ({ start: r.start, end: Math.min(r.end, size) }));
}

/**
 * The overlay's state and its journal. Every change method validates against the merged
 * view (base tree + overlay), appends its journal line, and only then changes the state;
 * each returns 0 or a negative errno, as FUSE wants.
 */
export class Overlay {
  readonly nodes = new Map<string, OverlayNode>();
  private nextData = 1;
  private journalFd: number | null = null;
  private readonly dataFds = new Map<string, number>();

  private constructor(
    readonly dir: string,
    readonly tree: RevisionTree,
  ) {}

  /** Opens (creating when missing) the overlay in `dir` over `tree`, replaying its journal. */
  static open(dir: string, tree: RevisionTree, opts: { create?: boolean } = {}): Overlay {
    const o = new Overlay(dir, tree);
    const journal = path.join(dir, 'journal');
    if (opts.create) fs.mkdirSync(path.join(dir, 'data'), { recursive: true });
    let text = '';
    try {
      text = fs.readFileSync(journal, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const lines = text.split('\n');
    // a line not ended by '\n' was torn by a crash: its change was never answered
    for (const line of lines.slice(0, -1)) {
      if (!line) continue;
      const op = JSON.parse(line) as JournalOp;
      o.apply(op);
    }
    if (opts.create) {
      const good = lines.slice(0, -1).join('\n') + (lines.length > 1 ? '\n' : '');
      if (good.length !== text.length) fs.writeFileSync(journal, good);
      o.journalFd = fs.openSync(journal, 'a');
    }
    return o;
  }

  /** True when an overlay with changes exists in `dir`. */
  static exists(dir: string): boolean {
    try {
      return fs.statSync(path.join(dir, 'journal')).size > 0;
    } catch {
      return false;
    }
  }

  get empty(): boolean {
    return this.nodes.size === 0;
  }

  close(): void {
    if (this.journalFd !== null) fs.closeSync(this.journalFd);
    this.journalFd = null;
    for (const fd of this.dataFds.values()) fs.closeSync(fd);
    this.dataFds.clear();
  }

  /** Flushes the journal and the staging files to the disk (fsync). */
  sync(): void {
    if (this.journalFd !== null) fs.fsyncSync(this.journalFd);
    for (const fd of this.dataFds.values()) fs.fsyncSync(fd);
  }

  dataPath(name: string): string {
    return path.join(this.dir, 'data', name);
  }

  private dataFd(name: string): number {
    let fd = this.dataFds.get(name);
    if (fd === undefined) {
      fd = fs.openSync(this.dataPath(name), fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
      this.dataFds.set(name, fd);
    }
    return fd;
  }

  resolve(p: string): Resolved {
    const n = this.nodes.get(p);
    if (n) return n.kind === 'gone' ? null : { from: 'overlay', node: n };
    if (this.ancestorHidden(p)) return null;
    const b = this.tree.nodes.get(p);
    return b ? { from: 'base', node: b } : null;
  }

  isDir(p: string): boolean {
    const r = this.resolve(p);
    return r !== null && r.node.kind === 'dir';
  }

  /** Names in directory `p` (which must resolve to a directory), sorted. */
  list(p: string): string[] {
    const names = new Set<string>();
    const own = this.nodes.get(p);
    const base = this.tree.nodes.get(p);
    if (base?.kind === 'dir' && !this.ancestorHidden(p) && !(own && (own.kind !== 'dir' || own.opaque))) {
      for (const name of base.names) names.add(name);
    }
    const prefix = p === '/' ? '/' : p + '/';
    for (const [q, n] of this.nodes) {
      if (!q.startsWith(prefix) || q.length === prefix.length || q.indexOf('/', prefix.length) >= 0) continue;
      const name = q.slice(prefix.length);
      if (n.kind === 'gone') names.delete(name);
      else names.add(name);
    }
    return [...names].sort();
  }

  /** Is the base hidden under `p`'s ancestors (one removed, replaced by a file, or an opaque directory)? */
  private ancestorHidden(p: string): boolean {
    for (let q = p; q !== '/'; ) {
      q = parentOf(q);
      const n = this.nodes.get(q);
      if (n && (n.kind !== 'dir' || n.opaque)) return true;
    }
    return false;
  }

  private newData(): string {
    return String(this.nextData++);
  }

  /** Appends the line, then applies it. Throws the append's error (ENOSPC) before any change. */
  private record(op: JournalOp): void {
    if (this.journalFd === null) throw Object.assign(new Error('the overlay is open read-only'), { code: 'EROFS' });
    fs.writeSync(this.journalFd, JSON.stringify(op) + '\n');
    this.apply(op);
  }

  /** The overlay file at `p`, copied up from the base when it is a base file. */
  private fileFor(p: string, data: string | null): OverlayFile {
    const r = this.resolve(p)!;
    if (r.from === 'overlay') {
      const f = r.node as OverlayFile;
      f.data ??= data;
      return f;
    }
    const b = r.node as Extract<TreeNode, { kind: 'file' | 'link' }>;
    const f: OverlayFile = { kind: 'file', base: p, baseLen: b.size, size: b.size, mode: b.mode === '100755' ? 0o755 : 0o644, written: [], data, mtime: Date.now() };
    this.nodes.set(p, f);
    return f;
  }

  /** The state change of one journal line (no checks: they were made before it was written). */
  private apply(op: JournalOp): void {
    if ('data' in op && Number(op.data) >= this.nextData) this.nextData = Number(op.data) + 1;
    const now = Date.now();
    switch (op.op) {
      case 'write': {
        const f = this.fileFor(op.path, op.data);
        // a write past the end leaves zeros between (the staging file's hole), not base bytes
        f.written = addRange(f.written, { start: Math.min(f.size, op.start), end: op.end });
        f.size = Math.max(f.size, op.end);
        f.mtime = now;
        break;
      }
      case 'create':
        this.nodes.set(op.path, { kind: 'file', base: null, baseLen: 0, size: 0, mode: op.mode & 0o777, written: [], data: op.data, mtime: now });
        break;
      case 'mkdir':
        this.nodes.set(op.path, { kind: 'dir', opaque: this.tree.nodes.has(op.path), mtime: now });
        break;
      case 'unlink':
      case 'rmdir':
        this.remove(op.path);
        break;
      case 'truncate': {
        const f = this.fileFor(op.path, op.data);
        if (op.size < f.size) {
          f.written = clipRanges(f.written, op.size);
          f.baseLen = Math.min(f.baseLen, op.size);
        } else if (op.size > f.size) {
          f.written = addRange(f.written, { start: f.size, end: op.size });
        }
        f.size = op.size;
        f.mtime = now;
        break;
      }
      case 'chmod': {
        const r = this.resolve(op.path);
        if (r?.node.kind === 'dir') break; // directories have no mode in git
        const f = this.fileFor(op.path, null);
        f.mode = op.mode & 0o777;
        break;
      }
      case 'rename':
        this.move(op.from, op.to);
        break;
      case 'symlink':
        this.nodes.set(op.path, { kind: 'link', target: op.target, mtime: now });
        break;
    }
  }

  /** Hides `p` (and what is under it): gone where the base has it, dropped where only the overlay had it. */
  private remove(p: string): void {
    const prefix = p + '/';
    for (const q of [...this.nodes.keys()]) if (q.startsWith(prefix)) this.nodes.delete(q);
    this.nodes.delete(p);
    if (this.tree.nodes.has(p) && !this.ancestorHidden(p)) this.nodes.set(p, { kind: 'gone' });
  }

  /** Copies what `from` shows to `to` (replacing it), then removes `from`. */
  private move(from: string, to: string): void {
    const copies: [string, OverlayNode][] = [];
    const visit = (src: string, dst: string): void => {
      const r = this.resolve(src)!;
      if (r.node.kind === 'dir') {
        copies.push([dst, { kind: 'dir', opaque: true, mtime: Date.now() }]);
        for (const name of this.list(src)) visit(`${src === '/' ? '' : src}/${name}`, `${dst}/${name}`);
      } else if (r.node.kind === 'link' && r.from === 'overlay') {
        copies.push([dst, { ...r.node }]);
      } else if (r.from === 'overlay') {
        copies.push([dst, { ...(r.node as OverlayFile), written: [...(r.node as OverlayFile).written] }]);
      } else {
        const b = r.node as Extract<TreeNode, { kind: 'file' | 'link' }>;
        copies.push([dst, { kind: 'file', base: src, baseLen: b.size, size: b.size, mode: b.mode === '100755' ? 0o755 : 0o644, written: [], data: null, mtime: Date.now() }]);
      }
    };
    visit(from, to);
    this.remove(to);
    this.remove(from);
    for (const [q, n] of copies) this.nodes.set(q, n);
    // a directory moved over the place of a base one hides the base one's content
    const top = this.nodes.get(to);
    if (top?.kind === 'dir') top.opaque = true;
  }

  // ---- changes, checked then journaled (negative errnos as FUSE wants) ----

  write(p: string, buf: Buffer, length: number, position: number): number {
    const r = this.resolve(p);
    if (!r) return -2;
    if (r.node.kind === 'dir') return -21;
    if (r.node.kind === 'link') return -1;
    const f = r.from === 'overlay' ? (r.node as OverlayFile) : null;
    const data = f?.data ?? this.newData();
    try {
      let done = 0;
      const fd = this.dataFd(data);
      while (done < length) done += fs.writeSync(fd, buf, done, length - done, position + done);
      this.record({ op: 'write', path: p, start: position, end: position + length, data });
    } catch (err) {
      return -errnoOf(err, 5);
    }
    return length;
  }

  create(p: string, mode: number): number {
    const parent = this.resolve(parentOf(p));
    if (!parent) return -2;
    if (parent.node.kind !== 'dir') return -20;
    const r = this.resolve(p);
    if (r && r.node.kind === 'dir') return -21;
    const data = this.newData();
    try {
      fs.closeSync(fs.openSync(this.dataPath(data), 'w', 0o600));
      this.record({ op: 'create', path: p, mode, data });
    } catch (err) {
      return -errnoOf(err, 5);
    }
    return 0;
  }

  mkdir(p: string): number {
    const parent = this.resolve(parentOf(p));
    if (!parent) return -2;
    if (parent.node.kind !== 'dir') return -20;
    if (this.resolve(p)) return -17;
    return this.tryRecord({ op: 'mkdir', path: p });
  }

  unlink(p: string): number {
    const r = this.resolve(p);
    if (!r) return -2;
    if (r.node.kind === 'dir') return -21;
    return this.tryRecord({ op: 'unlink', path: p });
  }

  rmdir(p: string): number {
    const r = this.resolve(p);
    if (!r) return -2;
    if (r.node.kind !== 'dir') return -20;
    if (p === '/') return -16;
    if (this.list(p).length) return -39;
    return this.tryRecord({ op: 'rmdir', path: p });
  }

  rename(from: string, to: string): number {
    if (from === to) return 0;
    const src = this.resolve(from);
    if (!src) return -2;
    const parent = this.resolve(parentOf(to));
    if (!parent) return -2;
    if (parent.node.kind !== 'dir') return -20;
    if (to.startsWith(from + '/')) return -22;
    const dst = this.resolve(to);
    if (dst) {
      if (src.node.kind === 'dir' && dst.node.kind !== 'dir') return -20;
      if (src.node.kind !== 'dir' && dst.node.kind === 'dir') return -21;
      if (dst.node.kind === 'dir' && this.list(to).length) return -39;
    }
    return this.tryRecord({ op: 'rename', from, to });
  }

  truncate(p: string, size: number): number {
    const r = this.resolve(p);
    if (!r) return -2;
    if (r.node.kind === 'dir') return -21;
    if (r.node.kind === 'link') return -1;
    const f = r.from === 'overlay' ? (r.node as OverlayFile) : null;
    const data = f?.data ?? this.newData();
    try {
      // the staging file is cut too: bytes beyond the new size read as zeros if it grows again
      const fd = this.dataFd(data);
      if (fs.fstatSync(fd).size > size) fs.ftruncateSync(fd, size);
      this.record({ op: 'truncate', path: p, size, data });
    } catch (err) {
      return -errnoOf(err, 5);
    }
    return 0;
  }

  chmod(p: string, mode: number): number {
    const r = this.resolve(p);
    if (!r) return -2;
    if (r.node.kind === 'dir') return 0;
    if (r.node.kind === 'link') return 0; // a link has no mode of its own
    return this.tryRecord({ op: 'chmod', path: p, mode });
  }

  /** A new symbolic link at `p` pointing at `target` (kept as text, never resolved here). */
  symlink(p: string, target: string): number {
    const parent = this.resolve(parentOf(p));
    if (!parent) return -2;
    if (parent.node.kind !== 'dir') return -20;
    if (this.resolve(p)) return -17;
    if (target.length === 0) return -2;
    if (Buffer.byteLength(target) > 4095) return -36;
    return this.tryRecord({ op: 'symlink', path: p, target });
  }

  private tryRecord(op: JournalOp): number {
    try {
      this.record(op);
      return 0;
    } catch (err) {
      return -errnoOf(err, 5);
    }
  }

  /** Reads staged bytes [position, position + length) of `name` into buf at `at`. */
  readData(name: string, buf: Buffer, at: number, length: number, position: number): void {
    const fd = this.dataFd(name);
    let done = 0;
    while (done < length) {
      const n = fs.readSync(fd, buf, at + done, length - done, position + done);
      if (n === 0) {
        buf.fill(0, at + done, at + length); // a hole at the end of the staging file
        break;
      }
      done += n;
    }
  }

  /**
   * After its changes were committed while it is still read (a live commit-mount): it stops
   * being an overlay on disk (the journal goes, so no mount or status picks it up again),
   * while its staging files stay open for reads in flight until destroy().
   */
  retire(): void {
    for (const n of this.nodes.values()) if (n.kind === 'file' && n.data) this.dataFd(n.data);
    if (this.journalFd !== null) fs.closeSync(this.journalFd);
    this.journalFd = null;
    fs.rmSync(path.join(this.dir, 'journal'), { force: true });
  }

  /** Removes the overlay from the disk (after a commit of all of it, or on request). */
  destroy(): void {
    this.close();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

const ERRNOS: Record<string, number> = { ENOSPC: 28, EDQUOT: 122, EIO: 5, EROFS: 30, EFBIG: 27, EACCES: 13 };

function errnoOf(err: unknown, fallback: number): number {
  return ERRNOS[(err as NodeJS.ErrnoException).code ?? ''] ?? fallback;
}
