/**
 * Manifests in the local store: rows of the index's table `manifests` (schema: store-db.ts),
 * each committed in its own transaction or with its file's chunk rows (ChunkStore.commitAsync).
 * A large manifest is cut into content-defined pieces stored as ordinary chunks (their ids in
 * manifest_pieces), and its row holds only the list of pieces ("DITSMIDX").
 *
 * Manifests stored by earlier versions, one file each under manifests/ab/<id>, are still read,
 * listed, dated, checked, quarantined and deleted as before; new ones are rows. A legacy file
 * that cannot be read is an error, never taken for absent.
 *
 * ChunkStore is the facade: it takes the writer lease before a lookup or a write, and turns a
 * full disk into a user error; this file holds the rest.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { DitsUserError, errnoCode } from '../errors.js';
import { hashBytes } from '../hashing/blake3.js';
import { LEAF_SIZE, leafHasher, readTreeCvs, treeCv, writeTreeCvs } from '../hashing/tree-cv.js';
import { Chunker } from '../chunking/chunker.js';
import { CODEC_NONE, ENTRY_HEAD_SIZE, type ChunkLocation } from './pack-format.js';
import type { StoreDb } from './store-db.js';

/** Manifests larger than this are stored as content-defined pieces (see put). */
export const MANIFEST_SPLIT_SIZE = 64 * 1024;
const MANIFEST_PIECE_PARAMS = { minSize: 2048, avgSize: 8192, maxSize: 32768 };
const MIDX_MAGIC = Buffer.from('DITSMIDX', 'latin1');
const MIDX_HEADER = 16;
const MIDX_ENTRY = 36;
/** Largest read of a large manifest's pieces (see readPieces). */
const PIECE_SPAN = 1 << 20;
/** Pieces read with one read at most (with their entries' heads: 511 buffers, under IOV_MAX). */
const PIECES_PER_READ = 256;

/** A large manifest's list of pieces (ManifestStore.pieceList). */
interface PieceList {
  ids: Buffer[];
  lengths: number[];
  /** the manifest's length */
  total: number;
}

/** A manifest read from its start (ManifestStore.readFromStart). */
export interface ManifestFromStart {
  /** the whole manifest's room; bytes [0, verified) are read and verified against the id */
  bytes: Buffer;
  verified: number;
  /** reads the rest and verifies the whole (verified is then bytes.length); throws as getBytes does */
  complete(): void;
}

function corruptManifest(id: string): DitsUserError {
  return new DitsUserError('manifest-corrupt', `manifest ${id} is corrupt in the local store`, { hint: 'run `git dits fsck` to quarantine it, then fetch it again from a remote' });
}

export class ManifestMissingError extends DitsUserError {
  constructor(readonly manifestId: string) {
    super('manifest-missing', `manifest ${manifestId} is not in the local store`, { hint: 'fetch the content from a remote (`git dits pull <path>`), or re-add the file if the pointer was written by hand' });
  }
}

/** What the manifests need of the chunk store: the pieces of large ones are chunks. */
export interface PieceChunks {
  putStoredChunk(idRaw: Buffer, codec: number, rawLength: number, stored: Buffer): boolean;
  commit(): void;
  locate(idRaw: Buffer): ChunkLocation | undefined;
  readStored(loc: ChunkLocation): Buffer;
  readStoredv(packId: number, offset: number, buffers: Buffer[]): number;
}

export class ManifestStore {
  private readonly stmts;
  /** Whether manifests/ holds anything (legacyManifests). */
  private anyLegacyManifest: boolean | null = null;

  constructor(
    private readonly db: StoreDb,
    private readonly dir: string,
    /** fsync quarantined copies */
    private readonly durable: boolean,
    private readonly chunks: PieceChunks,
  ) {
    this.stmts = {
      has: db.prepare('SELECT 1 FROM manifests WHERE id = ?').pluck(),
      get: db.prepare('SELECT body FROM manifests WHERE id = ?').pluck(),
      addedAt: db.prepare('SELECT added_at FROM manifests WHERE id = ?').pluck(),
      ids: db.prepare('SELECT id FROM manifests').pluck(),
      put: db.prepare('INSERT OR REPLACE INTO manifests(id, body, added_at) VALUES (?, ?, ?)'),
      piece: db.prepare('INSERT OR IGNORE INTO manifest_pieces(manifest, chunk) VALUES (?, ?)'),
    };
  }

  /** Where an earlier version of Dits kept manifest `id` (a file each); new ones are rows. */
  legacyFile(id: string): string {
    return path.join(this.dir, 'manifests', id.slice(0, 2), id.slice(2));
  }

  /** Whether manifest `id` is here (an empty legacy file is not: see put). */
  has(id: string): boolean {
    return this.stmts.has.get(id) !== undefined || (this.legacyManifests() && fileSize(this.legacyFile(id)) > 0);
  }

  /** Whether manifests/ holds anything (files of earlier versions; looked at once per process). */
  private legacyManifests(): boolean {
    this.anyLegacyManifest ??= safeReaddir(path.join(this.dir, 'manifests')).length > 0;
    return this.anyLegacyManifest;
  }

  /**
   * Stores a manifest, as a row of the index (committed at once). A large one (a 1 GiB
   * file's manifest is about 600 KB) is cut into content-defined pieces stored as ordinary
   * chunks, and the row holds only the list of pieces ("DITSMIDX"): a new version of a file
   * then stores the few pieces that changed, not a whole new manifest. Either way the id is
   * BLAKE3 of the whole manifest, and reads verify it. The caller checked that it is not
   * here yet (has).
   */
  put(id: string, bytes: Buffer): void {
    let body = bytes;
    const pieceIds: Buffer[] = [];
    if (bytes.length > MANIFEST_SPLIT_SIZE) {
      const chunker = new Chunker(MANIFEST_PIECE_PARAMS);
      const pieces = chunker.push(bytes);
      const tail = chunker.finish();
      if (tail) pieces.push(tail);
      body = Buffer.alloc(MIDX_HEADER + pieces.length * MIDX_ENTRY);
      MIDX_MAGIC.copy(body, 0);
      body.writeUInt32LE(1, 8);
      body.writeUInt32LE(pieces.length, 12);
      pieces.forEach((piece, i) => {
        const pid = hashBytes(piece);
        pieceIds.push(pid);
        this.chunks.putStoredChunk(pid, CODEC_NONE, piece.length, piece);
        pid.copy(body, MIDX_HEADER + i * MIDX_ENTRY);
        body.writeUInt32LE(piece.length, MIDX_HEADER + i * MIDX_ENTRY + 32);
      });
      this.chunks.commit();
      if (bytes.length > LEAF_SIZE) this.fileLeaves(id, bytes);
    }
    const record = this.stmts.piece;
    const put = this.stmts.put;
    this.db.transaction(() => {
      for (const pid of pieceIds) record.run(id, pid);
      put.run(id, body, Date.now());
    }).immediate();
  }

  /**
   * Files the 4 MiB leaves of a manifest over one leaf (hashing/tree-cv.ts, under the
   * manifest id), so that readFromStart reads only its first leaf; not when `bytes` are not
   * manifest `id` (the row is stored all the same: every read verifies it).
   */
  private fileLeaves(id: string, bytes: Buffer): void {
    const { hasher, leaves } = leafHasher();
    hasher.update(bytes);
    const got = leaves();
    if (got && hasher.digestHex() === id) writeTreeCvs(this.dir, id, bytes.length, got);
  }

  /** Writes a small manifest's row; run inside the caller's write transaction (ChunkStore.commitAsync). */
  writeRow(id: string, body: Buffer, at: number): void {
    this.stmts.put.run(id, body, at);
  }

  /**
   * A manifest as stored (whole, or its list of pieces), not verified; null when it is not
   * here. A legacy file that cannot be read throws (EACCES, EIO): never taken for absent.
   */
  private body(id: string): Buffer | null {
    const row = this.stmts.get.get(id) as Buffer | undefined;
    if (row !== undefined) return row;
    try {
      return fs.readFileSync(this.legacyFile(id));
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return null;
      throw err;
    }
  }

  /** Chunk ids a stored manifest's pieces occupy (none for a small manifest). */
  pieceIds(id: string): Buffer[] {
    let body: Buffer | null;
    try {
      body = this.body(id);
    } catch {
      return [];
    }
    if (!body || !body.subarray(0, 8).equals(MIDX_MAGIC)) return [];
    const n = body.readUInt32LE(12);
    const out: Buffer[] = [];
    for (let i = 0; i < n; i++) out.push(body.subarray(MIDX_HEADER + i * MIDX_ENTRY, MIDX_HEADER + i * MIDX_ENTRY + 32));
    return out;
  }

  /** Manifest bytes, verified against the id. */
  getBytes(id: string): Buffer {
    let bytes = this.body(id);
    if (bytes === null) throw new ManifestMissingError(id);
    if (bytes.subarray(0, 8).equals(MIDX_MAGIC)) {
      const list = this.pieceList(id, bytes);
      bytes = Buffer.allocUnsafe(list.total);
      this.readPieces(id, list, 0, list.ids.length, bytes, 0);
    }
    if (hashBytes(bytes).toString('hex') !== id) throw corruptManifest(id);
    return bytes;
  }

  /**
   * A manifest whose start can be used before the rest is read (the mount's first byte of
   * a big file). A large one (pieces) over one 4 MiB leaf whose leaves' side file
   * (hashing/tree-cv.ts, filed under the manifest id) has the id as its root: only the
   * pieces of the first leaf are read, and that leaf's chaining value checked against the
   * side file's first; BLAKE3's tree makes that as good as hashing the whole (bytes that
   * differ and give the same root would be a collision). `complete()` reads the rest and
   * verifies the whole against the id. Anything else is read and verified whole, as
   * getBytes does, and a large one then gets its side file, for the next time.
   */
  readFromStart(id: string): ManifestFromStart {
    const stored = this.body(id);
    if (stored === null) throw new ManifestMissingError(id);
    const tree = stored.subarray(0, 8).equals(MIDX_MAGIC) ? treeCv() : null;
    if (!tree) {
      const bytes = this.getBytes(id);
      return { bytes, verified: bytes.length, complete: () => {} };
    }
    const list = this.pieceList(id, stored);
    const bytes = Buffer.allocUnsafe(list.total);
    const leaves = list.total > LEAF_SIZE ? readTreeCvs(this.dir, id, list.total) : null;
    if (!leaves || !tree.rootOf(leaves).equals(Buffer.from(id, 'hex'))) {
      this.readPieces(id, list, 0, list.ids.length, bytes, 0);
      if (!hashBytes(bytes).equals(Buffer.from(id, 'hex'))) throw corruptManifest(id);
      if (list.total > LEAF_SIZE) this.fileLeaves(id, bytes); // hashed twice, this once
      return { bytes, verified: bytes.length, complete: () => {} };
    }
    // the pieces that hold the first leaf
    let k = 0;
    let end = 0;
    while (end < LEAF_SIZE) end += list.lengths[k++]!;
    this.readPieces(id, list, 0, k, bytes, 0);
    if (!tree.leafCv(bytes.subarray(0, LEAF_SIZE), 0).equals(leaves.subarray(0, 32))) throw corruptManifest(id);
    const out: ManifestFromStart = {
      bytes,
      verified: LEAF_SIZE,
      complete: () => {
        if (out.verified === bytes.length) return;
        this.readPieces(id, list, k, list.ids.length, bytes, end);
        if (!hashBytes(bytes).equals(Buffer.from(id, 'hex'))) throw corruptManifest(id);
        out.verified = bytes.length;
      },
    };
    return out;
  }

  /** A large manifest's list of pieces ("DITSMIDX" row): their ids and lengths, and the manifest's. */
  private pieceList(id: string, list: Buffer): PieceList {
    if (list.length < MIDX_HEADER) throw corruptManifest(id);
    const n = list.readUInt32LE(12);
    if (list.length !== MIDX_HEADER + n * MIDX_ENTRY) throw corruptManifest(id);
    const ids: Buffer[] = [];
    const lengths: number[] = [];
    let total = 0;
    for (let i = 0; i < n; i++) {
      const at = MIDX_HEADER + i * MIDX_ENTRY;
      ids.push(list.subarray(at, at + 32));
      lengths.push(list.readUInt32LE(at + 32));
      total += lengths[i]!;
    }
    return { ids, lengths, total };
  }

  /**
   * Reads pieces [from, to) of a large manifest into `out` from `at` on, in order (not
   * verified: the callers hash what they read), straight into `out`, in reads of at most
   * PIECE_SPAN. put stores a manifest's pieces back to back in a pack, so each read starts
   * at a piece the index locates and takes the pieces after it as if they followed it, each
   * entry's head read beside it: those whose head names the piece expected (id, plain,
   * length) are kept, and the read after them starts where they stop. A 20 GiB file's 10 MB
   * manifest is about ten lookups and reads, not a lookup and a read per piece (about
   * 1,000 of each), and no copy. (A head is only where to read: what is read is hashed.)
   */
  private readPieces(id: string, list: PieceList, from: number, to: number, out: Buffer, at: number): void {
    const { ids, lengths } = list;
    const heads = Buffer.allocUnsafe(PIECES_PER_READ * ENTRY_HEAD_SIZE);
    let filled = at;
    for (let i = from; i < to; ) {
      const loc = this.chunks.locate(ids[i]!);
      if (!loc || loc.codec !== CODEC_NONE) throw new ManifestMissingError(id);
      if (loc.storedLength !== lengths[i]) throw corruptManifest(id);
      // piece i, then the head and bytes of each piece expected after it
      const parts: Buffer[] = [out.subarray(filled, filled + lengths[i]!)];
      let span = lengths[i]!;
      let dst = filled + lengths[i]!;
      let j = i + 1;
      for (; j < to && j - i < PIECES_PER_READ && span + ENTRY_HEAD_SIZE + lengths[j]! <= PIECE_SPAN; j++) {
        parts.push(heads.subarray((j - i) * ENTRY_HEAD_SIZE, (j - i + 1) * ENTRY_HEAD_SIZE), out.subarray(dst, dst + lengths[j]!));
        dst += lengths[j]!;
        span += ENTRY_HEAD_SIZE + lengths[j]!;
      }
      const got = this.chunks.readStoredv(loc.pack, loc.offset, parts);
      if (got < lengths[i]!) throw corruptManifest(id); // the pack ends early
      filled += lengths[i]!;
      let read = lengths[i]!;
      let k = i + 1;
      for (; k < j; k++) {
        read += ENTRY_HEAD_SIZE + lengths[k]!;
        const h = heads.subarray((k - i) * ENTRY_HEAD_SIZE, (k - i + 1) * ENTRY_HEAD_SIZE);
        const expected = got >= read && h.subarray(0, 32).equals(ids[k]!) && h[32] === CODEC_NONE && h.readUInt32LE(33) === lengths[k] && h.readUInt32LE(37) === lengths[k];
        if (!expected) break;
        filled += lengths[k]!;
      }
      i = k;
    }
  }

  /** The first `n` bytes of a manifest as stored (its header, for a whole one), or null. */
  head(id: string, n: number): Buffer | null {
    try {
      return this.body(id)?.subarray(0, n) ?? null;
    } catch {
      return null;
    }
  }

  /** Ids of every stored manifest: rows, then legacy files (each once). */
  *listIds(): Generator<string> {
    const rows = new Set(this.stmts.ids.all() as string[]);
    yield* rows;
    const root = path.join(this.dir, 'manifests');
    for (const a of safeReaddir(root)) {
      if (!/^[0-9a-f]{2}$/.test(a)) continue;
      for (const b of safeReaddir(path.join(root, a))) if (/^[0-9a-f]{62}$/.test(b) && !rows.has(a + b)) yield a + b;
    }
  }

  /** When manifest `id` was stored (ms), or null when it is not here. */
  addedAt(id: string): number | null {
    const at = this.stmts.addedAt.get(id) as number | undefined;
    if (at !== undefined) return at;
    try {
      return fs.statSync(this.legacyFile(id)).mtimeMs;
    } catch {
      return null;
    }
  }

  /** Bytes the stored manifests take (rows and legacy files; pieces are chunks, counted there). */
  storedBytes(): number {
    let n = this.db.prepare('SELECT coalesce(sum(length(body)), 0) FROM manifests').pluck().get() as number;
    const root = path.join(this.dir, 'manifests');
    for (const a of safeReaddir(root)) for (const b of safeReaddir(path.join(root, a))) n += Math.max(0, fileSize(path.join(root, a, b)));
    return n;
  }

  /** Removes manifest `id` (its row or file, and the record of its pieces; the pieces' chunks are gc's). */
  delete(id: string): void {
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM manifests WHERE id = ?').run(id);
      this.db.prepare('DELETE FROM manifest_pieces WHERE manifest = ?').run(id);
    }).immediate();
    fs.rmSync(this.legacyFile(id), { force: true });
  }

  /**
   * Moves manifest `id` aside to `dest` (fsck's quarantine), so a good copy can be fetched
   * in its place; `note` runs in the same transaction that removes the row.
   */
  quarantine(id: string, dest: string, note: () => void): void {
    const row = this.stmts.get.get(id) as Buffer | undefined;
    if (row !== undefined) {
      writeFileAtomic(dest, row, path.dirname(dest), this.durable);
      this.db.transaction(() => {
        this.db.prepare('DELETE FROM manifests WHERE id = ?').run(id);
        note();
      }).immediate();
      return;
    }
    fs.renameSync(this.legacyFile(id), dest);
    this.db.transaction(note).immediate();
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return -1;
  }
}

/** Writes `bytes` to `dest` so that readers see the old state or the whole new file. */
function writeFileAtomic(dest: string, bytes: Buffer, tmpDir = path.dirname(dest), sync = true): void {
  // the destination's folder is made when the rename finds it missing (usually it is there)
  if (tmpDir === path.dirname(dest)) fs.mkdirSync(tmpDir, { recursive: true });
  const tmp = path.join(tmpDir, `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  const fd = fs.openSync(tmp, 'wx', 0o444);
  try {
    fs.writeSync(fd, bytes);
    if (sync) fs.fsyncSync(fd);
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  fs.closeSync(fd);
  try {
    try {
      fs.renameSync(tmp, dest);
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT' || !fs.existsSync(tmp)) throw err;
      fs.mkdirSync(path.dirname(dest), { recursive: true });
      fs.renameSync(tmp, dest);
    }
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}
