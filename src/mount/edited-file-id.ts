/**
 * The file id (BLAKE3 of every byte) of a version commit-mount stores, and the side file
 * of its 4 MiB leaves (hashing/tree-cv.ts) for the next edit.
 *
 * When the old version has a side file (both versions over 4 MiB), only the leaves the
 * changed ranges touch are read and hashed again, and, after a change of size, the leaves
 * from the old or new end on (an append or a truncation hashes the last leaf or two; an
 * insert rewrites the bytes after it, which the changed ranges then cover); the id is the
 * root of those and the kept leaves. The side file is checked first: its root must be the
 * old id, else it is not used. Otherwise (no side file or a bad one, a version of 4 MiB or
 * less, no addon) every byte is read and hashed, and a side file is written for the new
 * version if it is big.
 */
import { LEAF_SIZE, leafCount, leafHasher, readTreeCvs, treeCv, treeCvMinSize, writeTreeCvs } from '../hashing/tree-cv.js';
import type { ByteRange } from './partial-rechunk.js';

export interface EditedFileIdInput {
  ditsDir: string;
  /** The old version's id and size (absent for a new file). */
  base?: { oid: string; size: number };
  newSize: number;
  /** Ranges of the new version whose bytes may differ from the old one. */
  changed: readonly ByteRange[];
  /** Reads bytes [offset, offset + length) of the new version into buf; returns how many came. */
  read(buf: Buffer, offset: number, length: number): Promise<number>;
}

export interface EditedFileId {
  oid: string;
  /** Bytes read and hashed for it. */
  bytesHashed: number;
  /** 'leaves': from the old version's side file and the changed leaves; 'full': every byte. */
  how: 'leaves' | 'full';
}

export async function editedFileId(o: EditedFileIdInput): Promise<EditedFileId> {
  const fast = await fromLeaves(o);
  if (fast) return fast;
  const { hasher, leaves } = leafHasher();
  const buf = Buffer.allocUnsafe(4 << 20);
  for (let at = 0; at < o.newSize; ) {
    const n = await o.read(buf, at, Math.min(buf.length, o.newSize - at));
    if (n <= 0) throw new Error(`reading the new version failed at byte ${at} (${n})`);
    hasher.update(buf.subarray(0, n));
    at += n;
  }
  const oid = hasher.digestHex();
  if (o.newSize >= treeCvMinSize()) {
    const l = leaves();
    if (l) writeTreeCvs(o.ditsDir, oid, o.newSize, l);
  }
  return { oid, bytesHashed: o.newSize, how: 'full' };
}

/** The leaves that bytes in `changed` fall in (of a file of `size` bytes), in order. */
export function changedLeaves(changed: readonly ByteRange[], size: number): number[] {
  const out = new Set<number>();
  for (const r of changed) {
    const start = Math.max(0, r.start);
    const end = Math.min(size, r.end);
    if (end <= start) continue;
    for (let i = Math.floor(start / LEAF_SIZE); i <= Math.floor((end - 1) / LEAF_SIZE); i++) out.add(i);
  }
  return [...out].sort((a, b) => a - b);
}

/**
 * Leaves of the new version to hash again: those the changed ranges touch, and after a
 * change of size every leaf from the first one that is not whole in both versions on.
 * Leaf i depends only on its bytes and i, so the others are the old version's.
 */
export function leavesToHash(changed: readonly ByteRange[], oldSize: number, newSize: number): number[] {
  const whole = oldSize === newSize ? leafCount(newSize) : Math.floor(Math.min(oldSize, newSize) / LEAF_SIZE);
  const out = changedLeaves(changed, newSize).filter((i) => i < whole);
  for (let i = whole; i < leafCount(newSize); i++) out.push(i);
  return out;
}

async function fromLeaves(o: EditedFileIdInput): Promise<EditedFileId | null> {
  const t = treeCv();
  // both over one leaf: then each leaf is a subtree of either version's tree
  if (!t || !o.base || o.base.size <= LEAF_SIZE || o.newSize <= LEAF_SIZE) return null;
  const old = readTreeCvs(o.ditsDir, o.base.oid, o.base.size);
  if (!old || t.rootOf(old).toString('hex') !== o.base.oid) return null;
  const leaves = Buffer.alloc(leafCount(o.newSize) * 32);
  old.copy(leaves, 0, 0, Math.min(old.length, leaves.length));
  const dirty = leavesToHash(o.changed, o.base.size, o.newSize);
  const buf = Buffer.allocUnsafe(LEAF_SIZE);
  let hashed = 0;
  for (const i of dirty) {
    const start = i * LEAF_SIZE;
    const length = Math.min(LEAF_SIZE, o.newSize - start);
    for (let done = 0; done < length; ) {
      const n = await o.read(buf.subarray(done), start + done, length - done);
      if (n <= 0) throw new Error(`reading the new version failed at byte ${start + done} (${n})`);
      done += n;
    }
    t.leafCv(buf.subarray(0, length), i).copy(leaves, i * 32);
    hashed += length;
  }
  const oid = t.rootOf(leaves).toString('hex');
  // the old version had leaves filed: so does the new one, so the next edit is quick too
  writeTreeCvs(o.ditsDir, oid, o.newSize, leaves);
  return { oid, bytesHashed: hashed, how: 'leaves' };
}
