/**
 * A file id again after an edit in place, without reading the whole file: BLAKE3 is a tree
 * over 1 KiB chunks, and for any input over 4 MiB each 4 MiB stretch at a 4 MiB boundary
 * (a leaf; the last one may be shorter) is one subtree of it. Ingest keeps the leaves'
 * chaining values of big files in a side file (.git/dits/treecv/<file id>); after an edit
 * that keeps the size, only the leaves the edit touched are hashed again, and the id is
 * the root of the kept and the new leaves (a few thousand parent compressions for 20 GiB).
 * Manifests over one leaf get the same side file, under the manifest id (ManifestStore:
 * the mount verifies a big file's manifest through its first leaf on open).
 *
 * The side file is a cache: local, never pushed, rebuilt by the next full read of the
 * file. One that is missing, damaged, or for another size or id is not used; and before a
 * side file is trusted, the root of its leaves must be the id it is filed under.
 *
 * Only with the addon's BLAKE3 (native/b3-tree.c), checked here against the whole-input
 * hash on inputs that cross every shape of the leaves (treeCvKnownAnswer); without it
 * (or with @napi-rs/blake-hash) treeCv() is null and callers read the whole file.
 */
import fs from 'node:fs';
import path from 'node:path';
import { loadNativeTreeCv, type NativeTreeCv } from '../native-addon.js';
import { hashBytes, nativeBlake3, StreamHasher } from './blake3.js';

/**
 * Bytes per leaf (native/b3.h, B3_LEAF_LEN): 4 MiB, so the side file is 8 KiB per GiB
 * (160 KiB for 20 GiB) and an edit hashes 4 MiB again per leaf it touches (a few ms).
 */
export const LEAF_SIZE = 4 * 1024 * 1024;
/** Files at least this large get a side file at ingest (32 bytes per 4 MiB: 512 bytes at this size). */
export const TREE_CV_MIN_SIZE = 64 * 1024 * 1024;

/**
 * TREE_CV_MIN_SIZE, or DITS_TREE_CV_MIN_SIZE (bytes, over 4 MiB) where set: tests use small
 * files.
 */
export function treeCvMinSize(): number {
  const v = Number(process.env.DITS_TREE_CV_MIN_SIZE);
  return Number.isSafeInteger(v) && v > LEAF_SIZE ? v : TREE_CV_MIN_SIZE;
}

let checked: NativeTreeCv | null | undefined;

/** The addon's leaf tree when it is in use and gives the known answers, else null. */
export function treeCv(): NativeTreeCv | null {
  if (checked === undefined) {
    const t = nativeBlake3() ? loadNativeTreeCv() : null;
    checked = t && treeCvKnownAnswer(t) ? t : null;
  }
  return checked;
}

/**
 * True when the tree hasher's digest, its leaves, leafCv of each leaf and rootOf all agree
 * with the plain hash, fed in uneven parts, on two sizes that cross every shape: a leaf and
 * a short one of five chunks (an odd one carried up), two whole leaves (the last one full).
 * About 12 MiB hashed three times: once per process, on first use.
 */
export function treeCvKnownAnswer(t: NativeTreeCv): boolean {
  try {
    const seed = Buffer.alloc(70_001);
    let x = 2463534242;
    for (let i = 0; i < seed.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      seed[i] = x & 0xff;
    }
    const data = Buffer.allocUnsafe(2 * LEAF_SIZE);
    for (let at = 0; at < data.length; at += seed.length) seed.copy(data, at);
    for (const size of [LEAF_SIZE + 4100, 2 * LEAF_SIZE]) {
      const d = data.subarray(0, size);
      const h = t.hasher();
      const s = new StreamHasher(h);
      for (let at = 0, step = 1000; at < size; at += step, step = step * 3 + 17) s.update(d.subarray(at, at + step));
      const want = hashBytes(d).toString('hex');
      if (s.digestHex() !== want) return false;
      const leaves = t.leaves(h);
      const n = Math.ceil(size / LEAF_SIZE);
      if (leaves.length !== n * 32) return false;
      for (let i = 0; i < n; i++) {
        if (!t.leafCv(d.subarray(i * LEAF_SIZE, Math.min(size, (i + 1) * LEAF_SIZE)), i).equals(leaves.subarray(i * 32, i * 32 + 32))) return false;
      }
      if (t.rootOf(leaves).toString('hex') !== want) return false;
    }
    return true;
  } catch {
    return false;
  }
}

/** A file hasher that also keeps the leaves (leavesOf), or a plain one without treeCv(). */
export function leafHasher(): { hasher: StreamHasher; leaves: () => Buffer | null } {
  const t = treeCv();
  if (!t) return { hasher: new StreamHasher(), leaves: () => null };
  const h = t.hasher();
  return { hasher: new StreamHasher(h), leaves: () => t.leaves(h) };
}

/** Leaves of a file of `size` bytes (over 4 MiB). */
export function leafCount(size: number): number {
  return Math.ceil(size / LEAF_SIZE);
}

// The side file: MAGIC, version (u32), leaf size (u32), file size (u64), file id (32),
// leaf count (u32), the leaves (32 each), then BLAKE3 of all that (32): little-endian.
const MAGIC = Buffer.from('DITSTCV\n', 'latin1');
const VERSION = 1;
const HEADER = MAGIC.length + 4 + 4 + 8 + 32 + 4;

export function treeCvPath(ditsDir: string, id: string): string {
  return path.join(ditsDir, 'treecv', id);
}

/**
 * Writes the side file of file `id` (`size` bytes) atomically (a temporary file renamed
 * into place). A cache: failing to write it is not an error (false).
 */
export function writeTreeCvs(ditsDir: string, id: string, size: number, leaves: Buffer): boolean {
  if (leaves.length !== leafCount(size) * 32 || !/^[0-9a-f]{64}$/.test(id)) return false;
  const head = Buffer.alloc(HEADER);
  MAGIC.copy(head, 0);
  let at = MAGIC.length;
  at = head.writeUInt32LE(VERSION, at);
  at = head.writeUInt32LE(LEAF_SIZE, at);
  at = head.writeBigUInt64LE(BigInt(size), at);
  at += Buffer.from(id, 'hex').copy(head, at);
  head.writeUInt32LE(leaves.length / 32, at);
  const body = Buffer.concat([head, leaves]);
  const file = treeCvPath(ditsDir, id);
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(tmp, Buffer.concat([body, hashBytes(body)]));
    fs.renameSync(tmp, file);
    return true;
  } catch {
    fs.rmSync(tmp, { force: true });
    return false;
  }
}

/**
 * The leaves of file `id` of `size` bytes from its side file, or null when there is none,
 * or it is damaged, for another id or size, or in another format. The caller still checks
 * that their root is the id (rootOf) before it trusts them.
 */
export function readTreeCvs(ditsDir: string, id: string, size: number): Buffer | null {
  let b: Buffer;
  try {
    b = fs.readFileSync(treeCvPath(ditsDir, id));
  } catch {
    return null;
  }
  const n = leafCount(size);
  if (b.length !== HEADER + n * 32 + 32) return null;
  if (!b.subarray(0, MAGIC.length).equals(MAGIC)) return null;
  let at = MAGIC.length;
  if (b.readUInt32LE(at) !== VERSION || b.readUInt32LE(at + 4) !== LEAF_SIZE) return null;
  at += 8;
  if (b.readBigUInt64LE(at) !== BigInt(size)) return null;
  at += 8;
  if (b.subarray(at, at + 32).toString('hex') !== id) return null;
  at += 32;
  if (b.readUInt32LE(at) !== n) return null;
  const body = b.subarray(0, HEADER + n * 32);
  if (!hashBytes(body).equals(b.subarray(HEADER + n * 32))) return null;
  return Buffer.from(b.subarray(HEADER, HEADER + n * 32));
}

/**
 * gc: removes the side files of file ids not in `live` (and temporary files left by a
 * crash) last changed before `cutoff` (ms): the grace period covers a version just added
 * whose commit gc cannot see yet. Returns how many went.
 */
export function pruneTreeCvs(ditsDir: string, live: ReadonlySet<string>, cutoff: number): number {
  const dir = path.join(ditsDir, 'treecv');
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return 0;
  }
  let n = 0;
  for (const name of names) {
    if (live.has(name)) continue;
    const file = path.join(dir, name);
    try {
      if (fs.statSync(file).mtimeMs >= cutoff) continue;
      fs.rmSync(file, { force: true });
      n++;
    } catch {
      /* gone already */
    }
  }
  return n;
}
