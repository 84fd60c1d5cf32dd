/**
 * commit-mount fast-forwards the working tree that has the branch checked out (a git merge
 * --ff-only there). For a big file edited in place that would mean writing the whole new
 * version into the working tree (20 GiB for a 100-byte edit), since git replaces the file
 * and Dits' hook writes the content. When that working-tree file is clean (its index entry
 * is the mounted commit's and its stat data matches), it already holds the old version, so
 * the new one is made from it instead, in place:
 *
 * 1. the file is renamed into `<git dir>/dits/early/<new manifest>.<pid>.part` (the early
 *    writes' folder, early-write.ts), the old bytes of the ranges about to change are kept
 *    in memory, the changed ranges are written from the mount's view, the size is set, and
 *    the file is synced and renamed `.ready`;
 * 2. git merge --ff-only then finds the path missing (git takes a missing file as free to
 *    write), writes the new pointer, and Dits' post-merge hook claims the ready file and
 *    renames it into place, as it does for a file the filter process wrote early;
 * 3. if the merge fails, each file is patched back with the kept bytes and renamed back;
 *    a ready file nobody claimed (no hook in that working tree) is put in place by
 *    settle() when the path holds the new pointer.
 *
 * A commit-mount killed between 1 and 3 leaves the path missing from the working tree (git
 * status: deleted); the old version is the mounted commit's, the new one the commit's, both
 * in the store: `git checkout -- <path>` writes it again. Nothing committed is lost.
 */
import fs from 'node:fs';
import path from 'node:path';
import { runGit } from '../git/exec.js';
import { parsePointer, type Pointer } from '../manifest/pointer.js';
import type { ByteRange } from './partial-rechunk.js';
import { earlyDir } from '../worktree/early-write.js';

/** Below this, writing the whole file costs little: git and the hook do it as usual. */
export const PATCH_MIN_SIZE = 16 << 20;

export interface PatchCandidate {
  /** Path in the repository. */
  rel: string;
  /** The new version's pointer. */
  pointer: Pointer;
  oldSize: number;
  /** Ranges of the new version that differ from the old one (the overlay's writes). */
  written: readonly ByteRange[];
  /** Bytes [offset, offset + length) of the new version. */
  read(offset: number, length: number): Promise<Buffer>;
}

export interface PreparedPatch {
  file: string;
  ready: string;
  pointer: Pointer;
  oldSize: number;
  undo: { offset: number; bytes: Buffer }[];
}

/** The candidates whose working-tree file is the clean old version, patched into ready files. */
export async function preparePatches(worktree: string, mountedCommit: string, candidates: readonly PatchCandidate[]): Promise<PreparedPatch[]> {
  const big = candidates.filter((c) => c.pointer.size >= PATCH_MIN_SIZE && c.oldSize >= PATCH_MIN_SIZE);
  if (big.length === 0) return [];
  const gitDir = (await runGit(['rev-parse', '--absolute-git-dir'], { cwd: worktree, allowFail: true })).stdout.toString('utf8').trim();
  if (!gitDir) return [];
  const rels = big.map((c) => c.rel);
  // clean: the index holds the mounted commit's entries, the files match the index's stat data
  const cached = await runGit(['diff-index', '--cached', '--name-only', '-z', mountedCommit, '--', ...rels], { cwd: worktree, allowFail: true });
  const files = await runGit(['diff-files', '--name-only', '-z', '--', ...rels], { cwd: worktree, allowFail: true });
  if (cached.exitCode !== 0 || files.exitCode !== 0) return [];
  const dirty = new Set([...cached.stdout.toString('utf8').split('\0'), ...files.stdout.toString('utf8').split('\0')].filter(Boolean));
  const dir = earlyDir(gitDir);
  fs.mkdirSync(dir, { recursive: true });
  const done: PreparedPatch[] = [];
  try {
    for (const c of big) {
      if (dirty.has(c.rel)) continue;
      const file = path.join(worktree, c.rel);
      let st: fs.Stats;
      try {
        st = fs.lstatSync(file);
      } catch {
        continue;
      }
      if (!st.isFile() || st.size !== c.oldSize) continue;
      const part = path.join(dir, `${c.pointer.manifest}.${process.pid}.part`);
      const ready = part.replace(/\.part$/, '.ready');
      try {
        fs.renameSync(file, part);
      } catch {
        continue; // another file system (EXDEV), or gone: git and the hook write it whole
      }
      const p: PreparedPatch = { file, ready: part, pointer: c.pointer, oldSize: c.oldSize, undo: [] };
      done.push(p);
      const fd = fs.openSync(part, 'r+');
      try {
        for (const r of c.written) {
          const end = Math.min(r.end, c.pointer.size);
          if (end <= r.start) continue;
          const oldEnd = Math.min(end, c.oldSize);
          if (oldEnd > r.start) {
            const old = Buffer.alloc(oldEnd - r.start);
            fs.readSync(fd, old, 0, old.length, r.start);
            p.undo.push({ offset: r.start, bytes: old });
          }
          for (let at = r.start; at < end; ) {
            const n = Math.min(4 << 20, end - at);
            const b = await c.read(at, n);
            fs.writeSync(fd, b, 0, b.length, at);
            at += n;
          }
        }
        if (c.pointer.size < c.oldSize) {
          // the cut-off tail is kept for an undo (a truncation of a big file: read it back)
          const tail = Buffer.alloc(c.oldSize - c.pointer.size);
          fs.readSync(fd, tail, 0, tail.length, c.pointer.size);
          p.undo.push({ offset: c.pointer.size, bytes: tail });
        }
        fs.ftruncateSync(fd, c.pointer.size);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      const now = new Date();
      fs.utimesSync(part, now, now);
      fs.renameSync(part, ready);
      p.ready = ready;
    }
  } catch (err) {
    undoPatches(done);
    throw err;
  }
  return done;
}

/** Puts every prepared file back as it was (the merge did not happen). */
export function undoPatches(patches: readonly PreparedPatch[]): void {
  for (const p of patches) {
    if (!fs.existsSync(p.ready)) continue;
    const fd = fs.openSync(p.ready, 'r+');
    try {
      if (p.oldSize > fs.fstatSync(fd).size) fs.ftruncateSync(fd, p.oldSize);
      for (const u of p.undo) fs.writeSync(fd, u.bytes, 0, u.bytes.length, u.offset);
      fs.ftruncateSync(fd, p.oldSize);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    if (!fs.existsSync(p.file)) fs.renameSync(p.ready, p.file);
  }
}

/**
 * After the merge: a ready file the hook did not claim (a working tree without Dits' hooks)
 * goes into place when the path holds the new pointer; otherwise it is removed (the content
 * is in the store). Returns the paths put in place this way.
 */
export function settlePatches(patches: readonly PreparedPatch[]): string[] {
  const placed: string[] = [];
  for (const p of patches) {
    if (!fs.existsSync(p.ready)) continue;
    let holds: Pointer | null = null;
    try {
      const st = fs.lstatSync(p.file);
      if (st.isFile() && st.size < 1024) holds = parsePointer(fs.readFileSync(p.file));
    } catch {
      holds = null;
    }
    if (holds && holds.manifest === p.pointer.manifest) {
      fs.renameSync(p.ready, p.file);
      placed.push(p.file);
    } else fs.rmSync(p.ready, { force: true });
  }
  return placed;
}
