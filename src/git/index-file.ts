/**
 * Git's index file (`$GIT_DIR/index`): parse, encode, and refresh the cached stat data of
 * entries whose working-tree file Dits wrote itself.
 *
 * Spec: gitformat-index(5), Documentation/gitformat-index.txt in git 2.39
 * https://github.com/git/git/blob/v2.39.0/Documentation/gitformat-index.txt
 *
 * Grammar (all integers big-endian; H = the repository's hash length, 20 for SHA-1, 32 for SHA-256):
 *
 *   index      = header entry* extension* checksum
 *   header     = "DIRC" version:u32 (2|3|4) entry-count:u32
 *   entry      = ctime-s:u32 ctime-ns:u32 mtime-s:u32 mtime-ns:u32 dev:u32 ino:u32
 *                mode:u32 uid:u32 gid:u32 size:u32 oid:H
 *                flags:u16            ; assume-valid:1 extended:1 stage:2 name-length:12 (0xFFF = "or longer")
 *                [ext-flags:u16]      ; v3+, only when extended=1: reserved:1 skip-worktree:1 intent-to-add:1 zero:13
 *                name                 ; v2/v3: path bytes, then 1-8 NUL so the entry length is a multiple of 8
 *                                     ; v4:    varint(N) S NUL: drop N bytes from the end of the previous path,
 *                                     ;        append S (no padding)
 *   extension  = signature:4 size:u32 data:size   ; "TREE" "REUC" "UNTR" "FSMN" "EOIE" "IEOT" "link" "sdir" ...
 *   EOIE data  = entries-end-offset:u32 hash(for each preceding extension: signature size:u32)
 *   IEOT data  = version:u32 (1) (block-offset:u32 block-entry-count:u32)*
 *   checksum   = hash of everything before it (all zero when written with index.skipHash=true)
 *   varint     = the OFS_DELTA encoding of pack-format: 7 bits a byte, high bit = more,
 *                each continuation adds 1 before shifting
 *
 * Entries keep every field; extensions are kept verbatim, in order, as opaque bytes, except two
 * that describe the byte layout of the file and are recomputed on encode so they stay true:
 * EOIE (offset and header hash) and IEOT (block offsets; dropped when its entry counts no longer
 * add up, it is an optional optimisation). An index Git wrote encodes back byte for byte.
 *
 * Split indexes (`link`) and sparse indexes (`sdir`) are refused with
 * DitsUserError('index-unsupported'): callers fall back to `git update-index --refresh`.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DitsUserError, errnoCode } from '../errors.js';

export type HashAlgo = 'sha1' | 'sha256';

export interface IndexEntry {
  ctimeSeconds: number;
  ctimeNanoseconds: number;
  mtimeSeconds: number;
  mtimeNanoseconds: number;
  dev: number;
  ino: number;
  /** Raw 32-bit mode: 0o100644, 0o100755, 0o120000 (symlink), 0o160000 (gitlink). */
  mode: number;
  uid: number;
  gid: number;
  /** On-disk size from stat(2), truncated to 32 bits. */
  size: number;
  /** Object id, lowercase hex. */
  oid: string;
  assumeValid: boolean;
  stage: 0 | 1 | 2 | 3;
  skipWorktree: boolean;
  intentToAdd: boolean;
  /** Path relative to the top of the work tree, '/'-separated, decoded as UTF-8. */
  path: string;
  /**
   * The path's bytes, present only when they are not valid UTF-8 (the format leaves the encoding
   * undefined); the encoder then writes these bytes instead of `path`.
   */
  rawPath?: Buffer;
}

export interface IndexExtension {
  /** Four ASCII characters, e.g. 'TREE'. Upper-case first letter: optional for readers. */
  signature: string;
  data: Buffer;
}

export interface GitIndex {
  version: 2 | 3 | 4;
  hashAlgo: HashAlgo;
  entries: IndexEntry[];
  extensions: IndexExtension[];
  /** The trailing checksum was all zeros (index.skipHash=true); encode writes zeros again. */
  skipHash: boolean;
}

const SIGNATURE = 0x44495243; // "DIRC"
const HEADER_SIZE = 12;
const STAT_SIZE = 40; // ten u32 fields before the object id
const FLAG_ASSUME_VALID = 0x8000;
const FLAG_EXTENDED = 0x4000;
const FLAG_STAGE_MASK = 0x3000;
const FLAG_STAGE_SHIFT = 12;
const NAME_MASK = 0x0fff;
const EXT_SKIP_WORKTREE = 0x4000;
const EXT_INTENT_TO_ADD = 0x2000;
const EXT_KNOWN = EXT_SKIP_WORKTREE | EXT_INTENT_TO_ADD;
const MODE_TYPE_MASK = 0o170000;
const MODE_REGULAR = 0o100000;
const MODE_SYMLINK = 0o120000;
const MODE_GITLINK = 0o160000;
const MODE_DIRECTORY = 0o040000;

export function hashLength(hashAlgo: HashAlgo): number {
  return hashAlgo === 'sha256' ? 32 : 20;
}

function corrupt(message: string): DitsUserError {
  return new DitsUserError('index-corrupt', `git index: ${message}`, {
    hint: 'run `git status`: if git can read the index, check that the hash algorithm (sha1/sha256) passed matches the repository',
  });
}

function unsupported(message: string): DitsUserError {
  return new DitsUserError('index-unsupported', `git index: ${message}`, {
    hint: 'fall back to `git update-index --refresh`',
  });
}

/**
 * Decodes an index file. Verifies the header, every entry's framing and the trailing checksum
 * (unless it is all zeros: index.skipHash). Throws DitsUserError 'index-corrupt' on malformed
 * input and 'index-unsupported' for versions other than 2-4, split and sparse indexes.
 */
export function parseIndex(buf: Buffer, hashAlgo: HashAlgo): GitIndex {
  const hashLen = hashLength(hashAlgo);
  if (buf.length < HEADER_SIZE + hashLen) throw corrupt(`file too short (${buf.length} bytes)`);
  if (buf.readUInt32BE(0) !== SIGNATURE) throw corrupt('bad signature (not DIRC)');
  const version = buf.readUInt32BE(4);
  if (version !== 2 && version !== 3 && version !== 4) throw unsupported(`index version ${version} is not supported`);
  const count = buf.readUInt32BE(8);
  const end = buf.length - hashLen;

  const checksum = buf.subarray(end);
  const skipHash = isAllZero(checksum);
  if (!skipHash) {
    const actual = createHash(hashAlgo).update(buf.subarray(0, end)).digest();
    if (!actual.equals(checksum)) throw corrupt(`checksum mismatch (read as ${hashAlgo})`);
  }

  const fixedLen = STAT_SIZE + hashLen + 2;
  if (count > (end - HEADER_SIZE) / (fixedLen + 1)) throw corrupt(`${count} entries cannot fit in ${buf.length} bytes`);
  const entries: IndexEntry[] = new Array(count);
  let off = HEADER_SIZE;
  let previousPath: Buffer = Buffer.alloc(0);
  for (let i = 0; i < count; i++) {
    const start = off;
    if (start + fixedLen > end) throw corrupt(`entry ${i} runs past the end of the file`);
    const flags = buf.readUInt16BE(start + STAT_SIZE + hashLen);
    let p = start + fixedLen;
    let extFlags = 0;
    if (flags & FLAG_EXTENDED) {
      if (version < 3) throw corrupt(`entry ${i} has extended flags in a version ${version} index`);
      if (p + 2 > end) throw corrupt(`entry ${i} runs past the end of the file`);
      extFlags = buf.readUInt16BE(p);
      if (extFlags & ~EXT_KNOWN) throw corrupt(`entry ${i} has unknown extended flags 0x${extFlags.toString(16)}`);
      p += 2;
    }
    const nameField = flags & NAME_MASK;
    let pathBytes: Buffer;
    if (version === 4) {
      let c = p < end ? buf[p++]! : -1;
      if (c < 0) throw corrupt(`entry ${i}: truncated path prefix`);
      let strip = c & 0x7f;
      while (c & 0x80) {
        if (p >= end || strip > 0xffffff) throw corrupt(`entry ${i}: bad path prefix`);
        c = buf[p++]!;
        strip = ((strip + 1) << 7) | (c & 0x7f);
      }
      if (strip > previousPath.length) throw corrupt(`entry ${i}: path prefix longer than the previous path`);
      const nul = buf.indexOf(0, p);
      if (nul < 0 || nul >= end) throw corrupt(`entry ${i}: unterminated path`);
      const keep = previousPath.length - strip;
      if (keep === 0) {
        pathBytes = buf.subarray(p, nul);
      } else {
        pathBytes = Buffer.allocUnsafe(keep + (nul - p));
        previousPath.copy(pathBytes, 0, 0, keep);
        buf.copy(pathBytes, keep, p, nul);
      }
      previousPath = pathBytes;
      off = nul + 1;
    } else {
      let nameLen = nameField;
      if (nameLen === NAME_MASK) {
        const nul = buf.indexOf(0, p);
        if (nul < 0 || nul >= end) throw corrupt(`entry ${i}: unterminated path`);
        nameLen = nul - p;
      }
      // Git pads with 1-8 NULs: the entry length is the next multiple of 8 above the unpadded length.
      const entryLen = (p - start + nameLen + 8) & ~7;
      if (start + entryLen > end || buf[p + nameLen] !== 0) throw corrupt(`entry ${i}: bad path length`);
      pathBytes = buf.subarray(p, p + nameLen);
      off = start + entryLen;
    }
    if (nameField !== Math.min(pathBytes.length, NAME_MASK)) {
      throw corrupt(`entry ${i}: name length field does not match its path`);
    }
    const mode = buf.readUInt32BE(start + 24);
    if ((mode & MODE_TYPE_MASK) === MODE_DIRECTORY) throw unsupported('sparse index (directory entries) is not supported');

    const entry: IndexEntry = {
      ctimeSeconds: buf.readUInt32BE(start),
      ctimeNanoseconds: buf.readUInt32BE(start + 4),
      mtimeSeconds: buf.readUInt32BE(start + 8),
      mtimeNanoseconds: buf.readUInt32BE(start + 12),
      dev: buf.readUInt32BE(start + 16),
      ino: buf.readUInt32BE(start + 20),
      mode,
      uid: buf.readUInt32BE(start + 28),
      gid: buf.readUInt32BE(start + 32),
      size: buf.readUInt32BE(start + 36),
      oid: buf.toString('hex', start + STAT_SIZE, start + STAT_SIZE + hashLen),
      assumeValid: (flags & FLAG_ASSUME_VALID) !== 0,
      stage: ((flags & FLAG_STAGE_MASK) >> FLAG_STAGE_SHIFT) as 0 | 1 | 2 | 3,
      skipWorktree: (extFlags & EXT_SKIP_WORKTREE) !== 0,
      intentToAdd: (extFlags & EXT_INTENT_TO_ADD) !== 0,
      path: pathBytes.toString('utf8'),
    };
    // U+FFFD in the decoded string may stand for invalid bytes: keep the original bytes then.
    if (entry.path.includes('\uFFFD') && !Buffer.from(entry.path, 'utf8').equals(pathBytes)) {
      entry.rawPath = Buffer.from(pathBytes);
    }
    entries[i] = entry;
  }

  const extensions: IndexExtension[] = [];
  while (off + 8 <= end) {
    const signature = buf.toString('latin1', off, off + 4);
    const size = buf.readUInt32BE(off + 4);
    if (off + 8 + size > end) throw corrupt(`extension ${JSON.stringify(signature)} runs past the end of the file`);
    if (signature === 'link') throw unsupported('split index (core.splitIndex) is not supported');
    if (signature === 'sdir') throw unsupported('sparse index (index.sparse) is not supported');
    extensions.push({ signature, data: Buffer.from(buf.subarray(off + 8, off + 8 + size)) });
    off += 8 + size;
  }
  if (off !== end) throw corrupt(`${end - off} stray bytes after the extensions`);

  return { version, hashAlgo, entries, extensions, skipHash };
}

function isAllZero(bytes: Buffer): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}

/** Git's OFS_DELTA varint, as used for v4 path prefixes. */
function encodeVarint(value: number): number[] {
  const out = [value & 0x7f];
  let v = value >>> 7;
  while (v > 0) {
    v -= 1;
    out.unshift(0x80 | (v & 0x7f));
    v >>>= 7;
  }
  return out;
}

function commonPrefixLength(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

const U32_MAX = 0xffffffff;

function checkU32(value: number, field: string, entryPath: string): void {
  if (!Number.isInteger(value) || value < 0 || value > U32_MAX) {
    throw new Error(`encodeIndex: ${field} of ${JSON.stringify(entryPath)} is not a 32-bit unsigned integer: ${value}`);
  }
}

/**
 * Encodes an index the way Git 2.39 writes it: entries in the given order (callers keep them
 * sorted), version 2 promoted to 3 when an entry needs extended flags, extensions in the given
 * order with EOIE and IEOT recomputed for the new layout, then the checksum (zeros when
 * `skipHash`). Throws a plain Error (a bug in the caller) for out-of-range fields.
 */
export function encodeIndex(index: GitIndex): Buffer {
  const hashLen = hashLength(index.hashAlgo);
  const entries = index.entries;
  let version: number = index.version;
  const needsExtended = entries.some((e) => e.skipWorktree || e.intentToAdd);
  if (version === 2 && needsExtended) version = 3;
  if (version !== 2 && version !== 3 && version !== 4) throw new Error(`encodeIndex: unsupported version ${version}`);

  // Pass 1: path bytes and sizes.
  const names: Buffer[] = new Array(entries.length);
  const prefixes: number[][] | undefined = version === 4 ? new Array(entries.length) : undefined;
  const commons: Int32Array | undefined = version === 4 ? new Int32Array(entries.length) : undefined;
  let total = HEADER_SIZE;
  let previous: Buffer = Buffer.alloc(0);
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    const name = e.rawPath ?? Buffer.from(e.path, 'utf8');
    names[i] = name;
    const fixed = STAT_SIZE + hashLen + 2 + (e.skipWorktree || e.intentToAdd ? 2 : 0);
    if (version === 4) {
      const common = commonPrefixLength(previous, name);
      const prefix = encodeVarint(previous.length - common);
      prefixes![i] = prefix;
      commons![i] = common;
      total += fixed + prefix.length + (name.length - common) + 1;
      previous = name;
    } else {
      total += (fixed + name.length + 8) & ~7;
    }
  }

  const entryOffsets = new Uint32Array(entries.length);
  const headerAndEntriesLen = total;
  // Upper bound: IEOT keeps its size or is dropped, EOIE is always 4 + hash length.
  const extensionsLen = index.extensions.reduce(
    (n, x) => n + 8 + (x.signature === 'EOIE' ? 4 + hashLen : x.data.length),
    0,
  );
  const out = Buffer.alloc(headerAndEntriesLen + extensionsLen + hashLen);
  out.writeUInt32BE(SIGNATURE, 0);
  out.writeUInt32BE(version, 4);
  out.writeUInt32BE(entries.length, 8);

  let off = HEADER_SIZE;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    const name = names[i]!;
    entryOffsets[i] = off;
    checkU32(e.ctimeSeconds, 'ctimeSeconds', e.path);
    checkU32(e.ctimeNanoseconds, 'ctimeNanoseconds', e.path);
    checkU32(e.mtimeSeconds, 'mtimeSeconds', e.path);
    checkU32(e.mtimeNanoseconds, 'mtimeNanoseconds', e.path);
    checkU32(e.dev, 'dev', e.path);
    checkU32(e.ino, 'ino', e.path);
    checkU32(e.mode, 'mode', e.path);
    checkU32(e.uid, 'uid', e.path);
    checkU32(e.gid, 'gid', e.path);
    checkU32(e.size, 'size', e.path);
    out.writeUInt32BE(e.ctimeSeconds, off);
    out.writeUInt32BE(e.ctimeNanoseconds, off + 4);
    out.writeUInt32BE(e.mtimeSeconds, off + 8);
    out.writeUInt32BE(e.mtimeNanoseconds, off + 12);
    out.writeUInt32BE(e.dev, off + 16);
    out.writeUInt32BE(e.ino, off + 20);
    out.writeUInt32BE(e.mode, off + 24);
    out.writeUInt32BE(e.uid, off + 28);
    out.writeUInt32BE(e.gid, off + 32);
    out.writeUInt32BE(e.size, off + 36);
    if (e.oid.length !== hashLen * 2 || out.write(e.oid, off + STAT_SIZE, hashLen, 'hex') !== hashLen) {
      throw new Error(`encodeIndex: bad ${index.hashAlgo} object id for ${JSON.stringify(e.path)}: ${JSON.stringify(e.oid)}`);
    }
    const extended = e.skipWorktree || e.intentToAdd;
    if (e.stage !== 0 && e.stage !== 1 && e.stage !== 2 && e.stage !== 3) {
      throw new Error(`encodeIndex: bad stage ${String(e.stage)} for ${JSON.stringify(e.path)}`);
    }
    const flags =
      (e.assumeValid ? FLAG_ASSUME_VALID : 0) |
      (extended ? FLAG_EXTENDED : 0) |
      (e.stage << FLAG_STAGE_SHIFT) |
      Math.min(name.length, NAME_MASK);
    let p = off + STAT_SIZE + hashLen;
    out.writeUInt16BE(flags, p);
    p += 2;
    if (extended) {
      out.writeUInt16BE((e.skipWorktree ? EXT_SKIP_WORKTREE : 0) | (e.intentToAdd ? EXT_INTENT_TO_ADD : 0), p);
      p += 2;
    }
    if (version === 4) {
      for (const b of prefixes![i]!) out[p++] = b;
      const common = commons![i]!;
      p += name.copy(out, p, common);
      out[p++] = 0; // NUL terminator; no padding in v4
      off = p;
    } else {
      name.copy(out, p);
      off += (p - off + name.length + 8) & ~7; // the buffer is zero-filled: the padding is there
    }
  }
  if (off !== headerAndEntriesLen) throw new Error(`encodeIndex: internal size mismatch ${off} != ${headerAndEntriesLen}`);

  const written: Array<{ signature: string; size: number }> = [];
  for (const x of index.extensions) {
    let data = x.data;
    if (x.signature.length !== 4 || Buffer.byteLength(x.signature, 'latin1') !== 4) {
      throw new Error(`encodeIndex: bad extension signature ${JSON.stringify(x.signature)}`);
    }
    if (x.signature === 'IEOT') {
      const rebuilt = rebuildIeot(data, entryOffsets);
      if (rebuilt === undefined) continue; // no longer describes these entries: drop it (optional)
      data = rebuilt;
    } else if (x.signature === 'EOIE') {
      data = buildEoie(index.hashAlgo, headerAndEntriesLen, written);
    }
    out.write(x.signature, off, 4, 'latin1');
    out.writeUInt32BE(data.length, off + 4);
    data.copy(out, off + 8);
    off += 8 + data.length;
    written.push({ signature: x.signature, size: data.length });
  }
  const body = out.subarray(0, off);
  const result = out.subarray(0, off + hashLen);
  if (index.skipHash) {
    result.fill(0, off);
  } else {
    createHash(index.hashAlgo).update(body).digest().copy(result, off);
  }
  return result;
}

/** EOIE: offset of the end of the entries, then a hash over the preceding extension headers. */
function buildEoie(hashAlgo: HashAlgo, entriesEnd: number, preceding: Array<{ signature: string; size: number }>): Buffer {
  const h = createHash(hashAlgo);
  const header = Buffer.alloc(8);
  for (const x of preceding) {
    header.write(x.signature, 0, 4, 'latin1');
    header.writeUInt32BE(x.size, 4);
    h.update(header);
  }
  const digest = h.digest();
  const data = Buffer.alloc(4 + digest.length);
  data.writeUInt32BE(entriesEnd, 0);
  digest.copy(data, 4);
  return data;
}

/**
 * IEOT: the same blocks (entry counts) with offsets recomputed from where the entries now sit.
 * Undefined when the table is not version 1 or its counts do not add up to the entry count.
 */
function rebuildIeot(data: Buffer, entryOffsets: Uint32Array): Buffer | undefined {
  if (data.length < 4 || (data.length - 4) % 8 !== 0 || data.readUInt32BE(0) !== 1) return undefined;
  const out = Buffer.from(data);
  let next = 0;
  for (let p = 4; p < data.length; p += 8) {
    const count = data.readUInt32BE(p + 4);
    if (next + count > entryOffsets.length || (count === 0 && next >= entryOffsets.length)) return undefined;
    out.writeUInt32BE(entryOffsets[next] ?? 0, p);
    next += count;
  }
  return next === entryOffsets.length ? out : undefined;
}

// ---------------------------------------------------------------------------------------------
// Reading and refreshing the index of a repository

export function indexPathOf(gitDir: string): string {
  return path.join(gitDir, 'index');
}

export interface IndexEntrySummary {
  path: string;
  oid: string;
  mode: number;
  stage: 0 | 1 | 2 | 3;
  /** Cached on-disk size, truncated to 32 bits (0 also means "racily smudged": re-check). */
  size: number;
  mtime: { seconds: number; nanoseconds: number };
  ctime: { seconds: number; nanoseconds: number };
  dev: number;
  ino: number;
  uid: number;
  gid: number;
  skipWorktree: boolean;
  intentToAdd: boolean;
  assumeValid: boolean;
}

export interface IndexSnapshot {
  entries: IndexEntrySummary[];
  /** The index file's own mtime in whole seconds (0 when there is no index): the racy-git line. */
  indexMtimeSeconds: number;
}

/**
 * The entries of `<gitDir>/index` (or `indexFile`) with no git subprocess, for a fast status,
 * and the index file's mtime for racy-git decisions (see compareEntryStat). A missing index (a
 * fresh repository) has no entries. Throws like parseIndex (split/sparse: 'index-unsupported').
 */
export function readIndexSnapshot(gitDir: string, hashAlgo: HashAlgo, opts: { indexFile?: string } = {}): IndexSnapshot {
  let fd: number;
  try {
    fd = fs.openSync(opts.indexFile ?? indexPathOf(gitDir), 'r');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return { entries: [], indexMtimeSeconds: 0 };
    throw err;
  }
  let buf: Buffer;
  let indexMtimeSeconds: number;
  try {
    // Same open file for both: a concurrent rename by git cannot pair new bytes with an old mtime.
    indexMtimeSeconds = Number(fs.fstatSync(fd, { bigint: true }).mtimeNs / NS_PER_S);
    buf = fs.readFileSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  const entries = parseIndex(buf, hashAlgo).entries.map(
    (e): IndexEntrySummary => ({
      path: e.path,
      oid: e.oid,
      mode: e.mode,
      stage: e.stage,
      size: e.size,
      mtime: { seconds: e.mtimeSeconds, nanoseconds: e.mtimeNanoseconds },
      ctime: { seconds: e.ctimeSeconds, nanoseconds: e.ctimeNanoseconds },
      dev: e.dev,
      ino: e.ino,
      uid: e.uid,
      gid: e.gid,
      skipWorktree: e.skipWorktree,
      intentToAdd: e.intentToAdd,
      assumeValid: e.assumeValid,
    }),
  );
  return { entries, indexMtimeSeconds };
}

/** readIndexSnapshot's entries. */
export function readIndexEntries(gitDir: string, hashAlgo: HashAlgo, opts: { indexFile?: string } = {}): IndexEntrySummary[] {
  return readIndexSnapshot(gitDir, hashAlgo, opts).entries;
}

const EMPTY_BLOB: Record<HashAlgo, string> = {
  sha1: 'e69de29bb2d1d6434b8b29ae775ad8c2e48c5391',
  sha256: '473a0f4c3be8a93681a267e3b1e9a7dcda1185436fe141f7749120a303721813',
};

export interface CompareEntryStatOptions {
  hashAlgo: HashAlgo;
  /** From readIndexSnapshot; 0 turns the racy check off. */
  indexMtimeSeconds: number;
  /** core.trustctime (default true). */
  trustCtime?: boolean;
  /** core.checkStat (default 'default'; 'minimal' ignores ctime, ino, uid, gid). */
  checkStat?: 'default' | 'minimal';
  /** core.fileMode (default true): compare the executable bit. */
  fileMode?: boolean;
}

/**
 * What Git's stat check (ce_match_stat_basic plus the racy test, as built on Linux: whole
 * seconds, no st_dev) would conclude for an entry against a fresh lstat of its file:
 * - 'clean': stat data match and the entry is older than the index: git trusts it.
 * - 'changed': stat data differ: git re-reads the content (or, when the cached size differs and
 *   is not 0, reports the file modified without reading it).
 * - 'racy': stat data match but the entry is not older than the index (or its size was smudged
 *   to 0): git re-reads the content to decide.
 */
export function compareEntryStat(
  entry: IndexEntrySummary,
  stat: fs.BigIntStats | fs.Stats,
  opts: CompareEntryStatOptions,
): 'clean' | 'changed' | 'racy' {
  const type = entry.mode & MODE_TYPE_MASK;
  if (type === MODE_REGULAR) {
    if (!stat.isFile()) return 'changed';
    if ((opts.fileMode ?? true) && ((entry.mode & 0o100) !== 0) !== ((Number(stat.mode) & 0o100) !== 0)) return 'changed';
  } else if (type === MODE_SYMLINK) {
    if (!stat.isSymbolicLink()) return 'changed';
  } else {
    return 'changed'; // gitlinks: git looks at the submodule, not at stat data
  }
  const f = statToIndexFields(stat);
  if (entry.mtime.seconds !== f.mtimeSeconds) return 'changed';
  const minimal = opts.checkStat === 'minimal';
  if (!minimal && (opts.trustCtime ?? true) && entry.ctime.seconds !== f.ctimeSeconds) return 'changed';
  if (!minimal && (entry.ino !== f.ino || entry.uid !== f.uid || entry.gid !== f.gid)) return 'changed';
  if (entry.size !== f.size) return 'changed';
  if (entry.size === 0 && entry.oid !== EMPTY_BLOB[opts.hashAlgo]) return 'racy';
  if (opts.indexMtimeSeconds !== 0 && entry.mtime.seconds >= opts.indexMtimeSeconds) return 'racy';
  return 'clean';
}

export interface IndexStatFields {
  ctimeSeconds: number;
  ctimeNanoseconds: number;
  mtimeSeconds: number;
  mtimeNanoseconds: number;
  dev: number;
  ino: number;
  uid: number;
  gid: number;
  size: number;
}

const NS_PER_S = 1_000_000_000n;
const LOW32 = 0xffffffffn;

function splitNs(ns: bigint): [number, number] {
  let sec = ns / NS_PER_S;
  let rem = ns % NS_PER_S;
  if (rem < 0n) {
    sec -= 1n;
    rem += NS_PER_S;
  }
  return [Number(sec & LOW32), Number(rem)];
}

function splitMs(ms: number): [number, number] {
  const sec = Math.floor(ms / 1000);
  const ns = Math.min(999_999_999, Math.max(0, Math.round((ms - sec * 1000) * 1e6)));
  return [Number(BigInt(sec) & LOW32), ns];
}

function low32(value: number | bigint): number {
  return Number(BigInt(value) & LOW32);
}

/**
 * The index's stat fields for a file, as Git fills them (fill_stat_data): seconds and
 * nanoseconds of ctime and mtime, dev, ino, uid, gid, size, each cut to its low 32 bits as
 * the C assignment to `unsigned int` does.
 *
 * Nanoseconds: from BigIntStats (`fs.statSync(p, { bigint: true })`) they are exact,
 * `mtimeNs % 1e9` (st_mtim.tv_nsec), seconds `mtimeNs / 1e9` rounded down. Plain Stats only
 * carry milliseconds as a float (`mtimeMs`), so the nanoseconds are rounded from it and may
 * differ from the kernel's in the last digits: a git built with USE_NSEC would then see the entry
 * as stat-dirty and re-check it. Pass BigIntStats.
 */
export function statToIndexFields(stat: fs.BigIntStats | fs.Stats): IndexStatFields {
  let ctime: [number, number];
  let mtime: [number, number];
  if (typeof stat.size === 'bigint') {
    const s = stat as fs.BigIntStats;
    ctime = splitNs(s.ctimeNs);
    mtime = splitNs(s.mtimeNs);
  } else {
    const s = stat as fs.Stats;
    ctime = splitMs(s.ctimeMs);
    mtime = splitMs(s.mtimeMs);
  }
  return {
    ctimeSeconds: ctime[0],
    ctimeNanoseconds: ctime[1],
    mtimeSeconds: mtime[0],
    mtimeNanoseconds: mtime[1],
    dev: low32(stat.dev),
    ino: low32(stat.ino),
    uid: low32(stat.uid),
    gid: low32(stat.gid),
    size: low32(stat.size),
  };
}

export interface IndexStatUpdate {
  /** Path relative to the top of the work tree, '/'-separated, as in the index. */
  path: string;
  /** stat of the file as it now is in the work tree, taken after Dits finished writing it. */
  stat: fs.BigIntStats | fs.Stats;
  /** Only update when the stage-0 entry still has this object id (the pointer blob). */
  expectedOid?: string;
}

export type IndexStatSkipReason =
  | 'not-in-index' // no entry for the path at all
  | 'conflicted' // only stages 1-3: a merge is in progress for this path
  | 'oid-mismatch' // the entry's object id is not expectedOid: the index moved on
  | 'type-mismatch' // the stat is not of the kind the entry records (file vs symlink), or a gitlink
  | 'changed-since-stat'; // the work tree file no longer matches the given stat (re-checked)

export interface UpdateIndexStatOptions {
  hashAlgo: HashAlgo;
  /** Defaults to `<gitDir>/index` (set it for GIT_INDEX_FILE). The lock is `<indexFile>.lock`. */
  indexFile?: string;
  /**
   * The work tree root. When given, each file is stat'ed again just before the index is written
   * (after the racy-git wait) and skipped as 'changed-since-stat' if it moved on since `stat`.
   */
  worktree?: string;
  /** How long to keep retrying while another process holds index.lock. Default 2000 ms. */
  lockTimeoutMs?: number;
  /** Longest wait for the clock to pass the newest updated mtime (see racy git). Default 1500 ms. */
  maxRacyWaitMs?: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export interface UpdateIndexStatResult {
  updated: string[];
  skipped: Array<{ path: string; reason: IndexStatSkipReason }>;
  /**
   * Updated paths whose mtime is not older (in whole seconds) than the index we wrote: the clock
   * did not pass it within maxRacyWaitMs (a file dated in the future). Git re-checks their content
   * once, which is correct but slow.
   */
  racy: string[];
  /**
   * Other entries that were racily clean with respect to the old index: their cached size is set
   * to 0, as Git does when it rewrites the index, so Git re-checks their content instead of
   * trusting stat data the newer index file would otherwise vouch for.
   */
  smudged: string[];
}

const RACY_MARGIN_MS = 20;

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Takes `<indexFile>.lock` the way Git does: an exclusive create (O_CREAT|O_EXCL). While it
 * exists, retries every 50 ms up to `timeoutMs`, then throws DitsUserError 'index-locked'.
 * Returns the open descriptor; the caller owns it and the lock file.
 */
async function acquireIndexLock(
  lockPath: string,
  timeoutMs: number,
  now: () => number,
  sleep: (ms: number) => Promise<void>,
): Promise<number> {
  const deadline = now() + timeoutMs;
  for (;;) {
    try {
      return fs.openSync(lockPath, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o666);
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
      if (now() >= deadline) {
        throw new DitsUserError(
          'index-locked',
          `Unable to create '${lockPath}': File exists. Another git process seems to be running in this repository.`,
          {
            hint: 'wait for the other git command (an editor, a GUI, a hook) to finish and try again; if no git process is running, a crashed one left the lock behind: remove the file',
          },
        );
      }
      await sleep(Math.min(50, Math.max(1, deadline - now())));
    }
  }
}

function statKindMatches(mode: number, stat: fs.BigIntStats | fs.Stats): boolean {
  const type = mode & MODE_TYPE_MASK;
  if (type === MODE_REGULAR) return stat.isFile();
  if (type === MODE_SYMLINK) return stat.isSymbolicLink();
  return false; // gitlinks (submodules) and anything else: not ours to refresh
}

/** Same file, same content as far as a nanosecond-exact stat can tell. */
function sameStat(a: fs.BigIntStats | fs.Stats, b: fs.BigIntStats): boolean {
  if (typeof a.size === 'bigint') {
    const x = a as fs.BigIntStats;
    return x.mtimeNs === b.mtimeNs && x.ctimeNs === b.ctimeNs && x.size === b.size && x.ino === b.ino && x.dev === b.dev;
  }
  // Plain Stats carry float milliseconds: compare to within a millisecond.
  const fa = statToIndexFields(a);
  const fb = statToIndexFields(b);
  return (
    fa.mtimeSeconds === fb.mtimeSeconds &&
    fa.ctimeSeconds === fb.ctimeSeconds &&
    Math.abs(fa.mtimeNanoseconds - fb.mtimeNanoseconds) < 1_000_000 &&
    fa.size === fb.size &&
    fa.ino === fb.ino &&
    fa.dev === fb.dev
  );
}

/**
 * Refreshes the cached stat data of stage-0 index entries to describe files Dits wrote into
 * the work tree, keeping each entry's object id, mode and flags, so `git status` sees them clean
 * without running the clean filter. The index is rewritten only if something changed:
 * lock, read, edit, write to the lock file, fsync, rename over the index.
 *
 * Without it, measured with git 2.39: when the cached size differs from the file's (placeholder
 * vs real content) and is not 0, git reports the file modified (" M") from the size alone;
 * when only times or inode differ, git re-reads the whole file through the clean filter.
 *
 * Racy git: Git distrusts an entry whose mtime is not older than the index file's own mtime
 * (in whole seconds when built without USE_NSEC, as Debian's git is) and then re-reads the
 * content through the clean filter. So before writing, this waits (up to maxRacyWaitMs) until
 * the clock has passed the newest updated mtime's second; the new index file is then strictly
 * newer. Entries of *other* paths that were racy against the old index get size 0 (see
 * `smudged`), as Git's own index writer does.
 */
export async function updateIndexStat(
  gitDir: string,
  updates: IndexStatUpdate[],
  opts: UpdateIndexStatOptions,
): Promise<UpdateIndexStatResult> {
  const now = opts.now ?? Date.now;
  const sleep = opts.sleep ?? defaultSleep;
  const indexFile = opts.indexFile ?? indexPathOf(gitDir);
  const lockPath = `${indexFile}.lock`;
  const result: UpdateIndexStatResult = { updated: [], skipped: [], racy: [], smudged: [] };
  if (updates.length === 0) return result;

  const fd = await acquireIndexLock(lockPath, opts.lockTimeoutMs ?? 2000, now, sleep);
  let committed = false;
  try {
    let buf: Buffer;
    let oldIndexMtimeSeconds = 0;
    try {
      buf = fs.readFileSync(indexFile);
      oldIndexMtimeSeconds = Number(fs.statSync(indexFile, { bigint: true }).mtimeNs / NS_PER_S);
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
      for (const u of updates) result.skipped.push({ path: u.path, reason: 'not-in-index' });
      return result;
    }
    const index = parseIndex(buf, opts.hashAlgo);

    // One scan: where each requested path sits (stage 0) and whether it has conflict stages.
    const wanted = new Map<string, { stage0: number; conflicted: boolean }>();
    for (const u of updates) wanted.set(u.path, { stage0: -1, conflicted: false });
    for (let i = 0; i < index.entries.length; i++) {
      const e = index.entries[i]!;
      const w = wanted.get(e.path);
      if (w === undefined) continue;
      if (e.stage === 0) w.stage0 = i;
      else w.conflicted = true;
    }

    const planned = new Map<number, IndexStatUpdate>();
    for (const u of updates) {
      const w = wanted.get(u.path)!;
      if (w.stage0 < 0) {
        result.skipped.push({ path: u.path, reason: w.conflicted ? 'conflicted' : 'not-in-index' });
        continue;
      }
      const e = index.entries[w.stage0]!;
      if (u.expectedOid !== undefined && u.expectedOid.toLowerCase() !== e.oid) {
        result.skipped.push({ path: u.path, reason: 'oid-mismatch' });
        continue;
      }
      if (!statKindMatches(e.mode, u.stat)) {
        result.skipped.push({ path: u.path, reason: 'type-mismatch' });
        continue;
      }
      planned.set(w.stage0, u); // a later update of the same path wins
    }
    if (planned.size === 0) return result;

    // Racy git: let the clock pass the newest mtime (whole seconds) before the index is written.
    let newestMtimeSeconds = 0;
    for (const u of planned.values()) {
      newestMtimeSeconds = Math.max(newestMtimeSeconds, statToIndexFields(u.stat).mtimeSeconds);
    }
    // The kernel stamps files from a coarse clock that can trail Date.now() by a few ms: margin.
    const waitUntil = (newestMtimeSeconds + 1) * 1000 + RACY_MARGIN_MS;
    const racyDeadline = now() + (opts.maxRacyWaitMs ?? 1500);
    const mayWait = waitUntil <= racyDeadline;
    if (mayWait) {
      while (now() < waitUntil) await sleep(waitUntil - now());
    }

    for (const [i, u] of planned) {
      if (opts.worktree !== undefined) {
        let current: fs.BigIntStats | undefined;
        try {
          current = fs.lstatSync(path.join(opts.worktree, u.path), { bigint: true });
        } catch (err) {
          if (errnoCode(err) !== 'ENOENT' && errnoCode(err) !== 'ENOTDIR') throw err;
        }
        if (current === undefined || !sameStat(u.stat, current)) {
          result.skipped.push({ path: u.path, reason: 'changed-since-stat' });
          planned.delete(i);
          continue;
        }
      }
      Object.assign(index.entries[i]!, statToIndexFields(u.stat));
    }
    if (planned.size === 0) return result;

    // Entries racily clean against the old index: smudge (size 0) like Git's index writer.
    if (oldIndexMtimeSeconds !== 0) {
      for (let i = 0; i < index.entries.length; i++) {
        const e = index.entries[i]!;
        if (planned.has(i) || e.size === 0 || (e.mode & MODE_TYPE_MASK) === MODE_GITLINK) continue;
        if (e.mtimeSeconds >= oldIndexMtimeSeconds) {
          e.size = 0;
          result.smudged.push(e.path);
        }
      }
    }

    const out = encodeIndex(index);
    let written = 0;
    while (written < out.length) written += fs.writeSync(fd, out, written, out.length - written);
    fs.fsyncSync(fd);
    let indexMtimeSeconds = Number(fs.fstatSync(fd, { bigint: true }).mtimeNs / NS_PER_S);
    // Still not newer than the files (clock skew between Date.now and file stamps)? Write a byte
    // again a little later, so the file's own mtime moves on, while the wait budget lasts.
    while (mayWait && indexMtimeSeconds <= newestMtimeSeconds && now() < racyDeadline) {
      await sleep(RACY_MARGIN_MS);
      fs.writeSync(fd, out, 0, 1, 0);
      fs.fsyncSync(fd);
      indexMtimeSeconds = Number(fs.fstatSync(fd, { bigint: true }).mtimeNs / NS_PER_S);
    }
    fs.closeSync(fd);
    fs.renameSync(lockPath, indexFile);
    committed = true;

    for (const [i, u] of planned) {
      result.updated.push(u.path);
      if (index.entries[i]!.mtimeSeconds >= indexMtimeSeconds) result.racy.push(u.path);
    }
    return result;
  } finally {
    if (!committed) {
      try {
        fs.closeSync(fd);
      } catch {
        // already closed
      }
      fs.rmSync(lockPath, { force: true });
    }
  }
}
