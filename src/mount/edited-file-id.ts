/**
 * The file id (BLAKE3 of every byte) of a version commit-mount stores, and the side file
 * of its 4 MiB leaves (hashing/tree-cv.ts) for the next edit.
 *
 * When the old version has a side file and the new one has its size (an edit in place:
 * overlay writes are positional), only the leaves the changed ranges touch are read and
 * hashed again; the id is the root of those and the kept leaves. The side file is checked
 * first: its root must be the old id, else it is not used. In every other case (another
 * size: an insert, an append, a truncation; no side file or a bad one; no addon) every
 * byte is read and hashed, and a side file is written for the new version if it is big.
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

async function fromLeaves(o: EditedFileIdInput): Promise<EditedFileId | null> {
  const t = treeCv();
  if (!t || !o.base || o.base.size !== o.newSize || o.newSize <= LEAF_SIZE) return null;
  const leaves = readTreeCvs(o.ditsDir, o.base.oid, o.base.size);
  if (!leaves || t.rootOf(leaves).toString('hex') !== o.base.oid) return null;
  const dirty = changedLeaves(o.changed, o.newSize);
  const buf = Buffer.allocUnsafe(LEAF_SIZE);
  for (const i of dirty) {
    const start = i * LEAF_SIZE;
    const length = Math.min(LEAF_SIZE, o.newSize - start);
    for (let done = 0; done < length; ) {
      const n = await o.read(buf.subarray(done), start + done, length - done);
      if (n <= 0) throw new Error(`reading the new version failed at byte ${start + done} (${n})`);
      done += n;
    }
    t.leafCv(buf.subarray(0, length), i).copy(leaves, i * 32);
  }
  const oid = t.rootOf(leaves).toString('hex');
  if (leaves.length === leafCount(o.newSize) * 32) writeTreeCvs(o.ditsDir, oid, o.newSize, leaves);
  return { oid, bytesHashed: dirty.reduce((s, i) => s + Math.min(LEAF_SIZE, o.newSize - i * LEAF_SIZE), 0), how: 'leaves' };
}
