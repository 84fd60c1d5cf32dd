/**
 * The local content store in `.git/dits/`:
 *
 *   index.sqlite        which chunk is in which pack at which offset (WAL, better-sqlite3)
 *   packs/<name>.pack   chunks back to back (see pack-format.ts); a pack is appended to by
 *                       one writer only, then never changed (gc rewrites whole packs)
 *   manifests/ab/<id>   manifests, one file each, written by temp file + rename
 *   quarantine/         corrupt chunks and manifests moved aside by fsck
 *
 * Pack writes are buffered and handed to the disk asynchronously (PositionalWriter), so
 * chunking, hashing and downloads go on meanwhile; commit() and commitAsync() wait for them.
 * Ingest lends its read buffers instead of having them copied (putChunks with `borrowed`:
 * the bytes are written from where they are with writev) and reuses a buffer only after a
 * writeFence().
 *
 * Atomicity: chunk bytes are appended and fsynced *before* their index rows are committed,
 * so a crash mid-add leaves at most unindexed bytes at a pack's end, never a row pointing
 * at a half chunk. Every read is verified against its id.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import util from 'node:util';
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import { DitsUserError, errnoCode } from '../errors.js';
import { hashBytes, nativeBlake3 } from '../hashing/blake3.js';
import { CODEC_NONE, CODEC_ZSTD, ENTRY_HEAD_SIZE, encodeEntryHead, encodePackHeader, PACK_HEADER_SIZE } from './pack-format.js';
import { CompressionPolicy, decompress } from './compression.js';
import { Chunker } from '../chunking/chunker.js';
import { PositionalWriter } from './positional-writer.js';
import { DirectAppender } from './direct-appender.js';
import { ALIGN_SLACK, alignedView } from './aligned-buffer.js';
import { preallocate } from '../native-addon.js';
import { endLease, takeLease, WRITER_TABLES } from './writer-lease.js';

const require = createRequire(import.meta.url);

export const STORE_FORMAT_VERSION = '1';
/** A local pack is closed and a new one started past this size. */
const PACK_ROLL_SIZE = 256 * 1024 * 1024;
const WRITE_BUFFER_SIZE = 2 * 1024 * 1024;
/**
 * A pack's disk blocks are reserved this far ahead of its writes (fallocate, see
 * PackWriter), and the unused rest freed when it is closed. After a crash mid-add at most
 * this much stays reserved past that pack's end: disk space only (the file's size and
 * every read are unaffected), given back when gc rewrites or deletes the pack.
 */
const PREALLOCATE_STEP = 32 * 1024 * 1024;
/** Pack write buffers in flight at once (memory: about (1 + this) x WRITE_BUFFER_SIZE). */
const PACK_WRITES_IN_FLIGHT = 2;
/** Manifests larger than this are stored as content-defined pieces (see putManifest). */
const MANIFEST_SPLIT_SIZE = 64 * 1024;
const MANIFEST_PIECE_PARAMS = { minSize: 2048, avgSize: 8192, maxSize: 32768 };
const MIDX_MAGIC = Buffer.from('DITSMIDX', 'latin1');
const MIDX_HEADER = 16;
const MIDX_ENTRY = 36;
/** Index rows per INSERT statement when committing (insertRows). */
const INSERT_ROWS = 64;
/** Ids looked up per read transaction when reading many chunks (locateMany). */
const LOCATE_BATCH = 256;

/** The items of `it` in arrays of `size` (the last one shorter). */
function* batches<T>(it: Iterable<T>, size: number): Generator<T[]> {
  let batch: T[] = [];
  for (const x of it) {
    batch.push(x);
    if (batch.length === size) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length) yield batch;
}

export interface ChunkLocation {
  pack: number;
  offset: number;
  storedLength: number;
  rawLength: number;
  codec: number;
}

export class ChunkMissingError extends DitsUserError {
  constructor(readonly chunkId: string) {
    super('chunk-missing', `chunk ${chunkId} is not in the local store`, { hint: 'fetch it from a remote (`git dits pull <path>`) or run `git dits fsck`' });
  }
}

export class ChunkCorruptError extends DitsUserError {
  constructor(readonly chunkId: string, detail: string) {
    super('chunk-corrupt', `chunk ${chunkId} is corrupt in the local store (${detail})`, { hint: 'run `git dits fsck` to quarantine it, then fetch it again from a remote' });
  }
}

export class ManifestMissingError extends DitsUserError {
  constructor(readonly manifestId: string) {
    super('manifest-missing', `manifest ${manifestId} is not in the local store`, { hint: 'fetch the content from a remote (`git dits pull <path>`), or re-add the file if the pointer was written by hand' });
  }
}

interface PendingRow {
  idRaw: Buffer;
  offset: number;
  storedLength: number;
  rawLength: number;
  codec: number;
}

/**
 * Appends entries to one pack, with direct I/O (DirectAppender) where the file system takes
 * it and `direct` is on, else through a PositionalWriter: full write buffers go to the disk
 * asynchronously while the caller goes on; commit() / commitAsync() wait for them before
 * any row points at their bytes.
 */
class PackWriter {
  /** Buffered writes (null when direct). */
  private readonly out: PositionalWriter | null;
  /** Direct writes (null when buffered). */
  private readonly direct: DirectAppender | null;
  /** Bytes the pack will hold once every appended entry is written. */
  size = PACK_HEADER_SIZE;
  private readonly head = Buffer.allocUnsafe(ENTRY_HEAD_SIZE);
  rows: PendingRow[] = [];
  /** commitAsync calls waiting on this pack (it must stay open for them) */
  holds = 0;
  /** Disk blocks are reserved up to here (0 and never more once reserving failed). */
  private reserved = 0;
  private reserving = true;

  constructor(
    readonly packId: number,
    readonly file: string,
    /** spare buffers for direct writes, shared by the store's packs; null: buffered writes */
    directPool: Buffer[] | null,
  ) {
    this.direct = directPool ? DirectAppender.create(file, 0o444, directPool) : null;
    if (this.direct) {
      this.out = null;
      this.direct.append(encodePackHeader());
      return;
    }
    const fd = fs.openSync(file, 'wx', 0o444);
    this.out = new PositionalWriter(fd, { bufferSize: WRITE_BUFFER_SIZE, maxInflight: PACK_WRITES_IN_FLIGHT });
    try {
      fs.writeSync(fd, encodePackHeader());
    } catch (err) {
      this.out.close();
      throw err;
    }
  }

  private get fd(): number {
    return this.direct ? this.direct.fd : this.out!.fd;
  }

  /** Whether writes are in flight. */
  get busy(): boolean {
    return this.direct ? this.direct.busy : this.out!.busy;
  }

  /** With `borrowed`, `data` may be written from where it is (see PositionalWriter.writeBorrowed). */
  append(idRaw: Buffer, codec: number, rawLength: number, data: Buffer, borrowed = false): void {
    const end = this.size + ENTRY_HEAD_SIZE + data.length;
    if (end > this.reserved && this.reserving) {
      // ext4 then allocates once per step instead of on every write
      const from = Math.max(this.reserved, this.size);
      const length = Math.max(PREALLOCATE_STEP, end - from);
      if (preallocate(this.fd, from, length)) this.reserved = from + length;
      else this.reserving = false; // not supported, or no room: the writes tell what is wrong
    }
    encodeEntryHead({ idRaw, codec, rawLength, storedLength: data.length }, this.head, 0);
    if (this.direct) {
      this.direct.append(this.head);
      this.direct.append(data);
    } else {
      const out = this.out!;
      out.write(this.head, this.size);
      if (borrowed) out.writeBorrowed(data, this.size + ENTRY_HEAD_SIZE);
      else out.write(data, this.size + ENTRY_HEAD_SIZE);
    }
    this.rows.push({ idRaw: Buffer.from(idRaw), offset: this.size + ENTRY_HEAD_SIZE, storedLength: data.length, rawLength, codec });
    this.size += ENTRY_HEAD_SIZE + data.length;
  }

  /** No more appends (the pack is full): sends what is buffered to the disk without waiting. */
  seal(): void {
    if (this.direct) this.direct.seal();
    else this.out!.submitAll();
  }

  backpressure(): Promise<void> | null {
    return this.direct ? this.direct.backpressure() : this.out!.backpressure();
  }

  /**
   * Resolves when bytes lent to append() may be reused: at once with direct writes (they
   * copy), else when every write sent so far has finished (sending what is buffered first).
   */
  fence(): Promise<void> {
    return this.direct ? Promise.resolve() : this.out!.fence();
  }

  /** Everything appended so far is written (asynchronously). */
  drain(): Promise<void> {
    return this.direct ? this.direct.drain() : this.out!.drain();
  }

  /** Everything appended so far is written (synchronously). */
  flushSync(): void {
    if (this.direct) this.direct.flushSync();
    else this.out!.flushSync();
  }

  /** Everything appended so far is on disk. */
  sync(): void {
    if (this.direct) return this.direct.fsyncSync();
    this.out!.flushSync();
    fs.fsyncSync(this.out!.fd);
  }

  syncAsync(): Promise<void> {
    return this.direct ? this.direct.fsync() : this.out!.fsync();
  }

  /**
   * Closes the file now, or once the writes in flight are done, first freeing the blocks
   * reserved past its end (the direct appender cuts the file to its bytes anyway).
   */
  close(): void {
    if (this.direct) return this.direct.close();
    const reserved = this.reserved > 0;
    this.out!.close(reserved ? (fd) => fs.ftruncateSync(fd, fs.fstatSync(fd).size) : undefined);
  }
}

export interface StoreOpenOptions {
  create?: boolean;
  /** fsync packs before their rows commit */
  durable?: boolean;
  /** bytes after which a new pack starts (default 256 MiB) */
  packRollSize?: number;
  /**
   * Pack bytes go to the disk with direct I/O, past the page cache, where the file system
   * takes it (direct-appender.ts; `dits.directWrite`). Default on, unless DITS_DIRECT_WRITE=0.
   */
  directWrite?: boolean;
}

export interface StoreStats {
  chunks: number;
  storedBytes: number;
  rawBytes: number;
  packs: number;
  packBytes: number;
  manifests: number;
}

export class ChunkStore {
  readonly db: BetterSqlite3.Database;
  private writer: PackWriter | null = null;
  /** Full packs whose rows are not committed yet (or whose last writes are in flight). */
  private retired: PackWriter[] = [];
  /** Packs closed while writes were still in flight (writeFence waits for those). */
  private closing: PackWriter[] = [];
  /** Chunks appended by this process and not yet committed (dedup within an add). */
  private pendingIds = new Set<string>();
  private readFds = new Map<number, number>();
  private packNames = new Map<number, string>();
  private readonly stmts: ReturnType<ChunkStore['prepare']>;
  private readonly compression = new CompressionPolicy();
  /** Spare buffers of the packs' direct writes (null: packs are written buffered). */
  private readonly directPool: Buffer[] | null;
  /**
   * Called with the id of each chunk getChunk returned (verified): usage tracking for local
   * cache tiering (src/remote/content/chunk-usage.ts). Must be cheap; must copy `idRaw` to keep it.
   */
  onChunkRead: ((idRaw: Buffer) => void) | null = null;

  private constructor(
    readonly dir: string,
    db: BetterSqlite3.Database,
    private readonly durable: boolean,
    private readonly packRollSize: number,
    directWrite: boolean,
  ) {
    this.db = db;
    this.directPool = directWrite ? [] : null;
    this.stmts = this.prepare();
  }

  /**
   * Opens the store; with `create`, makes it (idempotent). `durable` fsyncs packs before
   * their index rows commit, and manifest files (survives power loss; costs a disk flush per
   * add). Without it a
   * process crash still loses nothing committed, and a power loss can at worst leave rows
   * whose bytes never reached the disk: every read verifies, so those read as corrupt
   * (fsck quarantines them), never as valid content.
   */
  static open(dir: string, opts: StoreOpenOptions = {}): ChunkStore {
    const dbFile = path.join(dir, 'index.sqlite');
    if (!opts.create && !fs.existsSync(dbFile)) {
      throw new DitsUserError('not-initialised', 'Dits is not set up in this repository yet', { hint: 'run `git dits init` (and `git dits install` once per machine)' });
    }
    for (const sub of ['packs', 'manifests', 'quarantine', 'tmp']) fs.mkdirSync(path.join(dir, sub), { recursive: true });
    const Database = require('better-sqlite3') as typeof BetterSqlite3;
    const db = new Database(dbFile);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('busy_timeout = 30000');
    db.exec(`
      CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS packs(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS chunks(
        id BLOB PRIMARY KEY, pack INTEGER NOT NULL, offset INTEGER NOT NULL,
        stored_len INTEGER NOT NULL, raw_len INTEGER NOT NULL, codec INTEGER NOT NULL, added_at INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS chunks_by_pack ON chunks(pack);
      CREATE TABLE IF NOT EXISTS quarantine(id TEXT NOT NULL, kind TEXT NOT NULL, reason TEXT NOT NULL, at INTEGER NOT NULL);
      -- Chunks that hold pieces of large manifests: manifests stay hot, so these are never pruned.
      CREATE TABLE IF NOT EXISTS manifest_pieces(manifest TEXT NOT NULL, chunk BLOB NOT NULL, PRIMARY KEY(manifest, chunk)) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS manifest_pieces_by_chunk ON manifest_pieces(chunk);
      -- Chunks whose bytes are not kept here because a remote verifiably holds them: fetched
      -- from it and verified straight into the working tree (no second local copy), or
      -- pruned after the remote copy was checked. Adding content dedups against them.
      CREATE TABLE IF NOT EXISTS remote_held(id BLOB PRIMARY KEY, remote TEXT NOT NULL, raw_len INTEGER NOT NULL, at INTEGER NOT NULL) WITHOUT ROWID;
      -- who is writing, and which packs are being written (writer-lease.ts)
      ${WRITER_TABLES}
    `);
    const v = db.prepare(`SELECT value FROM meta WHERE key='format'`).get() as { value: string } | undefined;
    if (!v) db.prepare(`INSERT OR IGNORE INTO meta(key, value) VALUES('format', ?)`).run(STORE_FORMAT_VERSION);
    else if (v.value !== STORE_FORMAT_VERSION) {
      db.close();
      throw new DitsUserError('store-too-new', `this repository's Dits store is format ${v.value}; this dits understands ${STORE_FORMAT_VERSION}`, { hint: 'upgrade dits' });
    }
    return new ChunkStore(dir, db, opts.durable ?? false, opts.packRollSize ?? PACK_ROLL_SIZE, opts.directWrite ?? process.env.DITS_DIRECT_WRITE !== '0');
  }

  private prepare() {
    return {
      has: this.db.prepare('SELECT 1 FROM chunks WHERE id = ?').pluck(),
      get: this.db.prepare('SELECT pack, offset, stored_len AS storedLength, raw_len AS rawLength, codec FROM chunks WHERE id = ?'),
      insert: this.db.prepare('INSERT OR IGNORE INTO chunks(id, pack, offset, stored_len, raw_len, codec, added_at) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      packName: this.db.prepare('SELECT name FROM packs WHERE id = ?').pluck(),
      addPack: this.db.prepare('INSERT INTO packs(id, name, created_at) VALUES (?, ?, ?)'),
      maxPack: this.db.prepare('SELECT coalesce(max(id), 0) FROM packs').pluck(),
      nextPack: this.db.prepare(`SELECT value FROM meta WHERE key = 'next_pack'`).pluck(),
      setNextPack: this.db.prepare(`INSERT OR REPLACE INTO meta(key, value) VALUES ('next_pack', ?)`),
      linkPack: this.db.prepare('INSERT OR REPLACE INTO pack_writers(pack, writer) VALUES (?, ?)'),
      unlinkPack: this.db.prepare('DELETE FROM pack_writers WHERE pack = ?'),
      packExists: this.db.prepare('SELECT 1 FROM packs WHERE id = ?').pluck(),
      held: this.db.prepare('SELECT 1 FROM remote_held WHERE id = ?').pluck(),
      /** stored here or remote-held: one query for putChunk's dedup */
      known: this.db.prepare('SELECT EXISTS(SELECT 1 FROM chunks WHERE id = ?) OR EXISTS(SELECT 1 FROM remote_held WHERE id = ?)').pluck(),
      addHeld: this.db.prepare('INSERT OR REPLACE INTO remote_held(id, remote, raw_len, at) VALUES (?, ?, ?, ?)'),
      anyHeld: this.db.prepare('SELECT EXISTS(SELECT 1 FROM remote_held)').pluck(),
    };
  }

  /** Whether any chunk is remote-held (skips the per-chunk query when none is). */
  private anyHeld: boolean | null = null;

  /**
   * Whether a remote verifiably holds this chunk although its bytes are not kept here (see
   * the remote_held table). Reads of it go to the remote (ensureLocal).
   */
  isRemoteHeld(idRaw: Buffer): boolean {
    this.anyHeld ??= this.stmts.anyHeld.get() === 1;
    return this.anyHeld && this.stmts.held.get(idRaw) !== undefined;
  }

  /** The remote recorded as holding this chunk (see isRemoteHeld), if any. */
  remoteHeldBy(idRaw: Buffer): string | undefined {
    if (!this.isRemoteHeld(idRaw)) return undefined;
    return this.db.prepare('SELECT remote FROM remote_held WHERE id = ?').pluck().get(idRaw) as string | undefined;
  }

  /** Records chunks that `remote` was just seen to hold (downloaded and verified, or checked by prune). */
  markRemoteHeld(chunks: readonly { idRaw: Buffer; rawLength: number }[], remote: string): void {
    if (chunks.length === 0) return;
    this.enlist();
    const now = Date.now();
    this.db.transaction(() => {
      for (const c of chunks) this.stmts.addHeld.run(c.idRaw, remote, c.rawLength, now);
    }).immediate();
    this.anyHeld = true;
  }

  /**
   * Forgets remote-held chunks recorded before `cutoff` (ms) that `keep` rejects (gc: no
   * reachable content needs them). Returns how many.
   */
  dropRemoteHeld(keep: (idRaw: Buffer) => boolean, cutoff: number): number {
    const drop: Buffer[] = [];
    for (const id of this.db.prepare('SELECT id FROM remote_held WHERE at <= ?').pluck().iterate(cutoff) as IterableIterator<Buffer>) if (!keep(id)) drop.push(id);
    if (drop.length) {
      const del = this.db.prepare('DELETE FROM remote_held WHERE id = ?');
      this.db.transaction(() => {
        for (const id of drop) del.run(id);
      }).immediate();
    }
    this.anyHeld = null;
    return drop.length;
  }

  /** Chunks held only by a remote (not stored here): how many, and their plain size. */
  remoteHeldStats(): { chunks: number; rawBytes: number } {
    const r = this.db
      .prepare('SELECT count(*) AS n, coalesce(sum(raw_len), 0) AS b FROM remote_held r WHERE NOT EXISTS (SELECT 1 FROM chunks c WHERE c.id = r.id)')
      .get() as { n: number; b: number };
    return { chunks: r.n, rawBytes: r.b };
  }

  /** remoteHeldStats per remote name. */
  remoteHeldByRemote(): { remote: string; chunks: number; rawBytes: number }[] {
    return this.db
      .prepare('SELECT remote, count(*) AS chunks, coalesce(sum(raw_len), 0) AS rawBytes FROM remote_held r WHERE NOT EXISTS (SELECT 1 FROM chunks c WHERE c.id = r.id) GROUP BY remote ORDER BY remote')
      .all() as { remote: string; chunks: number; rawBytes: number }[];
  }

  hasChunk(idRaw: Buffer): boolean {
    this.enlist(); // a caller that finds it stores nothing and relies on it
    return this.pendingIds.has(idRaw.toString('hex')) || this.stmts.has.get(idRaw) !== undefined;
  }

  locate(idRaw: Buffer): ChunkLocation | undefined {
    return this.stmts.get.get(idRaw) as ChunkLocation | undefined;
  }

  private locateTxn: ((ids: readonly Buffer[]) => (ChunkLocation | undefined)[]) | null = null;

  /** This process's row in store_writers (writer-lease.ts), once it has written or looked up content. */
  private leaseId: number | null = null;

  /**
   * Records this process as a writer before its first write or dedup lookup, so that a gc
   * either sees it or has finished deleting before the lookup (writer-lease.ts, gc.ts).
   */
  private enlist(): void {
    if (this.leaseId !== null || this.readOnly) return;
    try {
      this.leaseId = takeLease(this.db, 'write');
    } catch (err) {
      // a store this process cannot write to: it stores nothing either, so nothing to protect
      if (!/^SQLITE_READONLY/.test(errnoCode(err) ?? '')) throw this.diskError(err);
      this.readOnly = true;
    }
  }

  private readOnly = false;

  /** Takes the gc lease instead (gc does not block itself); its row id. */
  enlistAsGc(): number {
    if (this.leaseId !== null) throw new Error('enlistAsGc: this store already holds a lease');
    this.leaseId = takeLease(this.db, 'gc');
    return this.leaseId;
  }

  /**
   * A new pack row. Ids are never handed out twice, not even after gc deleted the pack with
   * the highest id (rows of a writer that still holds an old id must never point into
   * another pack): the next id is kept in meta. With `writer`, the pack is recorded as
   * being written by it until sealed.
   */
  private allocatePack(name: string, writer: number | null): number {
    return this.db.transaction(() => {
      const next = Math.max(Number(this.stmts.nextPack.get() ?? 0), (this.stmts.maxPack.get() as number) + 1, 1);
      this.stmts.addPack.run(next, name, Date.now());
      this.stmts.setNextPack.run(String(next + 1));
      if (writer !== null) this.stmts.linkPack.run(next, writer);
      return next;
    }).immediate();
  }

  /**
   * The pack is complete and every row of it committed: no longer "being written". Best
   * effort (a full disk): a pack left marked is only checked for a tail by gc once this
   * process is gone.
   */
  private sealed(w: PackWriter): void {
    try {
      this.stmts.unlinkPack.run(w.packId);
    } catch {
      /* see above */
    }
  }

  private openWriter(): PackWriter {
    if (this.writer && this.writer.size < this.packRollSize) return this.writer;
    if (this.writer) {
      // a full pack keeps its uncommitted rows until the next commit; its last buffer goes now
      this.writer.seal();
      this.retired.push(this.writer);
    }
    const name = `pack-${Date.now().toString(36)}-${randomBytes(8).toString('hex')}`;
    this.enlist();
    const packId = this.allocatePack(name, this.leaseId);
    this.packNames.set(packId, name);
    this.writer = new PackWriter(packId, path.join(this.dir, 'packs', `${name}.pack`), this.directPool);
    return this.writer;
  }

  /**
   * Stores a chunk unless present. `data` must hash to `idRaw` (the caller just hashed it).
   * Returns the bytes newly stored (0 when deduplicated). With `borrowed`, the store may
   * write `data` from where it is, without a copy: the caller must leave those bytes
   * unchanged until a writeFence() taken after this call has resolved.
   */
  async putChunk(idRaw: Buffer, data: Buffer, borrowed = false): Promise<number> {
    const r = await this.putChunks(idRaw, [data], borrowed);
    return r.bytes;
  }

  /**
   * putChunk for many chunks at once: `ids` holds their ids back to back (32 bytes each),
   * `datas` their bytes. One index query for the lot. Returns how many were new and the
   * bytes they take. Resolves at once unless a chunk is worth a zstd try.
   */
  putChunks(ids: Buffer, datas: readonly Buffer[], borrowed = false): Promise<{ chunks: number; bytes: number }> | { chunks: number; bytes: number } {
    this.enlist();
    const known = this.knownAmong(ids, datas.length);
    let chunks = 0;
    let bytes = 0;
    for (let k = 0; k < datas.length; k++) {
      const idRaw = ids.subarray(k * 32, k * 32 + 32);
      const hex = idRaw.toString('hex');
      // a chunk a remote verifiably holds is not stored again (the clone wrote it only into
      // the working tree); a push finds it on that remote
      if (this.pendingIds.has(hex) || known?.has(hex)) continue;
      const data = datas[k]!;
      if (this.compression.shouldTry(data)) {
        // rare with camera media: the rest goes on asynchronously
        return this.putRest(ids, datas, k, borrowed, known, chunks, bytes);
      }
      this.openWriter().append(idRaw, CODEC_NONE, data.length, data, borrowed);
      this.pendingIds.add(hex);
      chunks++;
      bytes += data.length + ENTRY_HEAD_SIZE;
    }
    return { chunks, bytes };
  }

  /** putChunks from chunk `from` on, where `from` is worth a zstd try. */
  private async putRest(ids: Buffer, datas: readonly Buffer[], from: number, borrowed: boolean, known: Set<string> | null, chunks: number, bytes: number): Promise<{ chunks: number; bytes: number }> {
    for (let k = from; k < datas.length; k++) {
      const idRaw = ids.subarray(k * 32, k * 32 + 32);
      const hex = idRaw.toString('hex');
      if (this.pendingIds.has(hex) || known?.has(hex)) continue;
      const data = datas[k]!;
      const z = k === from || this.compression.shouldTry(data) ? await this.compression.tryCompress(data) : null;
      if (this.pendingIds.has(hex)) continue; // stored by another put while zstd ran
      const w = this.openWriter();
      if (z) w.append(idRaw, CODEC_ZSTD, data.length, z);
      else w.append(idRaw, CODEC_NONE, data.length, data, borrowed);
      this.pendingIds.add(hex);
      chunks++;
      bytes += (z ?? data).length + ENTRY_HEAD_SIZE;
    }
    return { chunks, bytes };
  }

  private readonly knownQueries = new Map<number, BetterSqlite3.Statement>();

  /** Which of `count` ids (32 bytes each in `ids`) are stored or remote-held, as hex; null when none. */
  private knownAmong(ids: Buffer, count: number): Set<string> | null {
    if (count === 0) return null;
    this.anyHeld ??= this.stmts.anyHeld.get() === 1;
    const key = this.anyHeld ? -count : count;
    let q = this.knownQueries.get(key);
    if (!q) {
      const marks = new Array(count).fill('?').join(',');
      q = this.db
        .prepare(this.anyHeld ? `SELECT id FROM chunks WHERE id IN (${marks}) UNION SELECT id FROM remote_held WHERE id IN (${marks})` : `SELECT id FROM chunks WHERE id IN (${marks})`)
        .pluck();
      if (this.knownQueries.size > 64) this.knownQueries.clear();
      this.knownQueries.set(key, q);
    }
    const params: Buffer[] = [];
    for (let k = 0; k < count; k++) params.push(ids.subarray(k * 32, k * 32 + 32));
    const found = q.all(...(this.anyHeld ? [...params, ...params] : params)) as Buffer[];
    if (found.length === 0) return null;
    return new Set(found.map((b) => b.toString('hex')));
  }

  /**
   * Resolves when the bytes lent to putChunk before the call may be reused: at once for
   * packs written with direct I/O (their bytes are copied on the way in), else when every
   * pack write asked for so far has finished (what is buffered is sent). A failed write is
   * not thrown here but by the next commit.
   */
  writeFence(): Promise<void> {
    this.closing = this.closing.filter((w) => w.busy);
    const ws = [...this.closing, ...this.writers()];
    if (ws.length === 0) return Promise.resolve();
    return Promise.all(ws.map((w) => w.fence())).then(() => undefined);
  }

  /**
   * Stores a chunk received in stored form (from a remote pack): the caller has already
   * decoded and verified it against `idRaw`. Returns false when it was already here.
   * `knownAbsent`: the caller looked the id up in the index already (skips that query; a
   * chunk another process stored meanwhile costs only pack space, the index keeps one row).
   */
  putStoredChunk(idRaw: Buffer, codec: number, rawLength: number, stored: Buffer, knownAbsent = false): boolean {
    this.enlist();
    const hex = idRaw.toString('hex');
    if (this.pendingIds.has(hex) || (!knownAbsent && this.stmts.has.get(idRaw) !== undefined)) return false;
    const w = this.openWriter();
    this.pendingIds.add(hex);
    w.append(idRaw, codec, rawLength, stored);
    return true;
  }

  /**
   * Null, or a promise to wait on before putting more: the pack writes in flight have
   * reached their bound (keeps memory bounded when chunks come faster than the disk takes them).
   */
  backpressure(): Promise<void> | null {
    return this.writer?.backpressure() ?? null;
  }

  private writers(): PackWriter[] {
    return this.writer ? [...this.retired, this.writer] : [...this.retired];
  }

  private insertMany: BetterSqlite3.Statement | null = null;

  /** The rows, in one transaction, INSERT_ROWS to a statement (a third of the time of one each). */
  private insertRows(batches: { packId: number; rows: PendingRow[] }[]): void {
    const now = Date.now();
    this.insertMany ??= this.db.prepare(`INSERT OR IGNORE INTO chunks(id, pack, offset, stored_len, raw_len, codec, added_at) VALUES ${new Array(INSERT_ROWS).fill('(?, ?, ?, ?, ?, ?, ?)').join(', ')}`);
    const many = this.insertMany;
    this.db.transaction(() => {
      for (const b of batches) {
        const { rows } = b;
        // never rows into a pack that is gone (gc leaves packs being written alone; this is the backstop)
        if (rows.length && this.stmts.packExists.get(b.packId) === undefined) throw new Error(`pack ${b.packId} was removed while it was being written`);
        let k = 0;
        for (; k + INSERT_ROWS <= rows.length; k += INSERT_ROWS) {
          const params: unknown[] = [];
          for (let i = k; i < k + INSERT_ROWS; i++) {
            const r = rows[i]!;
            params.push(r.idRaw, b.packId, r.offset, r.storedLength, r.rawLength, r.codec, now);
          }
          many.run(...params);
        }
        for (; k < rows.length; k++) {
          const r = rows[k]!;
          this.stmts.insert.run(r.idRaw, b.packId, r.offset, r.storedLength, r.rawLength, r.codec, now);
        }
      }
    }).immediate();
  }

  private dropIdleRetired(): void {
    this.retired = this.retired.filter((w) => {
      if (w.rows.length || w.holds) return true;
      w.close();
      this.sealed(w);
      if (w.busy) this.closing.push(w); // writeFence still waits for its writes
      return false;
    });
  }

  /** Makes every chunk put so far durable and visible to other processes. */
  commit(): void {
    const ws = this.writers().filter((w) => w.rows.length);
    if (ws.length === 0) return;
    try {
      for (const w of ws) {
        if (this.durable) w.sync();
        else w.flushSync();
      }
    } catch (err) {
      throw this.diskError(err);
    }
    this.insertRows(ws.map((w) => ({ packId: w.packId, rows: w.rows })));
    for (const w of ws) w.rows = [];
    this.pendingIds.clear();
    this.dropIdleRetired();
  }

  /**
   * commit() without blocking the thread on the disk: the chunks put before the call are
   * written (and, with `durable`, fsynced) asynchronously, then their rows commit. Puts made
   * while it waits belong to a later commit. Several may run at once.
   */
  async commitAsync(): Promise<void> {
    const taken = this.writers()
      .filter((w) => w.rows.length)
      .map((w) => {
        const rows = w.rows;
        w.rows = [];
        w.holds++;
        return { w, packId: w.packId, rows };
      });
    if (taken.length === 0) return;
    try {
      for (const t of taken) {
        if (this.durable) await t.w.syncAsync();
        else await t.w.drain();
      }
    } catch (err) {
      for (const t of taken) t.w.holds--;
      for (const t of taken) for (const r of t.rows) this.pendingIds.delete(r.idRaw.toString('hex'));
      throw this.diskError(err);
    }
    for (const t of taken) t.w.holds--;
    this.insertRows(taken);
    for (const t of taken) for (const r of t.rows) this.pendingIds.delete(r.idRaw.toString('hex'));
    this.dropIdleRetired();
  }

  /** Drops chunks put since the last commit (their bytes stay as unindexed pack tail). */
  abandon(): void {
    for (const w of this.writers()) {
      w.rows = [];
      w.close();
    }
    this.writer = null;
    this.retired = [];
    this.pendingIds.clear();
  }

  diskError(err: unknown): Error {
    const code = errnoCode(err);
    if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'SQLITE_FULL') {
      return new DitsUserError('disk-full', 'the disk is full: Dits could not store the content', {
        hint:
          'free some space and run the command again; nothing was lost. `git dits gc` removes at once what interrupted or failed adds left behind; ' +
          '`git dits gc --prune=now` also removes content that nothing refers to, however recent (by default gc keeps what is younger than an hour)',
        cause: err,
      });
    }
    return err instanceof Error ? err : new Error(String(err));
  }

  packPath(packId: number): string {
    let name = this.packNames.get(packId);
    if (!name) {
      name = this.stmts.packName.get(packId) as string | undefined;
      if (!name) throw new Error(`pack ${packId} is not in the index`);
      this.packNames.set(packId, name);
    }
    return path.join(this.dir, 'packs', `${name}.pack`);
  }

  private readFd(packId: number): number {
    let fd = this.readFds.get(packId);
    if (fd === undefined) {
      fd = fs.openSync(this.packPath(packId), 'r');
      this.readFds.set(packId, fd);
    }
    return fd;
  }

  /** The stored (possibly compressed) bytes of a chunk, unverified. */
  readStored(loc: ChunkLocation): Buffer {
    if (this.writer && this.writer.packId === loc.pack) this.writer.flushSync();
    const buf = Buffer.allocUnsafe(loc.storedLength);
    const fd = this.readFd(loc.pack);
    let done = 0;
    while (done < loc.storedLength) {
      const n = fs.readSync(fd, buf, done, loc.storedLength - done, loc.offset + done);
      if (n === 0) throw new ChunkCorruptError('?', 'pack ends early');
      done += n;
    }
    return buf;
  }

  /** A chunk's plain bytes, verified against its id. */
  async getChunk(idRaw: Buffer): Promise<Buffer> {
    const loc = this.locate(idRaw);
    const idHex = idRaw.toString('hex');
    if (!loc) throw new ChunkMissingError(idHex);
    let data: Buffer;
    try {
      data = this.readStored(loc);
    } catch (err) {
      if (err instanceof ChunkCorruptError || errnoCode(err) === 'ENOENT') throw new ChunkCorruptError(idHex, 'its pack is missing or short');
      throw err;
    }
    if (loc.codec === CODEC_ZSTD) {
      try {
        data = await decompress(data);
      } catch {
        throw new ChunkCorruptError(idHex, 'zstd data does not decode');
      }
    } else if (loc.codec !== CODEC_NONE) {
      throw new ChunkCorruptError(idHex, `unknown codec ${loc.codec}`);
    }
    if (data.length !== loc.rawLength || !hashBytes(data).equals(idRaw)) throw new ChunkCorruptError(idHex, 'its bytes do not match its id');
    this.onChunkRead?.(idRaw);
    return data;
  }

  /**
   * The plain bytes of many chunks, in order, each verified. Chunks that lie back to back
   * in a pack (a file ingested in one go) are read with one large read instead of one read
   * each, the next read already in flight while the caller handles a chunk. A yielded
   * buffer is valid only until the next one is requested (buffers are reused): write or
   * copy it before asking for more.
   */
  async *readChunks(idsRaw: Iterable<Buffer>, maxRead = 8 * 1024 * 1024): AsyncGenerator<Buffer> {
    const spares: Buffer[] = [];
    let turn = 0;
    // one group read ahead: it goes into the spare the caller is not reading from (the
    // second allocated only when there is a second group: a small file needs one)
    const buffer = (): Buffer => (spares[(turn ^= 1)] ??= Buffer.allocUnsafe(maxRead + ALIGN_SLACK));
    for await (const g of this.readChunkGroups(idsRaw, { maxRead, buffer, ahead: 1 })) yield* g.chunks;
  }

  /**
   * readChunks a group at a time, into buffers the caller lends, so that it can keep a
   * group's bytes while later groups are read (write them without copying, say). A group
   * is a run of chunks that lie back to back in a pack, read with one read of at most
   * `maxRead` bytes into `buffer()` (which must return at least maxRead + ALIGN_SLACK bytes,
   * and is asked for one per group). Its chunks are views of that buffer (a compressed
   * chunk: a buffer of its own); a single chunk larger than maxRead is read into a buffer
   * allocated for it, which is the group's `buffer` then. The caller decides when a buffer
   * it lent is used again.
   *
   * With `ahead` (default 0), up to that many further groups are read while the caller
   * holds the group yielded last, so buffer() is asked for one while the caller holds it:
   * lend at least `ahead` + 1 buffers in turn (plus any the caller keeps longer). With the
   * addon, each read and the hashing that verifies it run on a libuv pool thread
   * (readHash), so reads, hashes and the caller's work overlap.
   */
  async *readChunkGroups(
    idsRaw: Iterable<Buffer>,
    opts: {
      maxRead?: number;
      buffer: () => Buffer | Promise<Buffer>;
      ahead?: number;
      located?: readonly (ChunkLocation | undefined)[];
      /** read and hash on this thread: for small reads, the hop to a pool thread and back costs more than it saves */
      sync?: boolean;
    },
  ): AsyncGenerator<{ buffer: Buffer; chunks: Buffer[] }> {
    const maxRead = opts.maxRead ?? 8 * 1024 * 1024;
    const ahead = Math.max(0, opts.ahead ?? 0);
    const plan = this.planGroups(idsRaw, maxRead, opts.located);
    const inFlight: Promise<{ buffer: Buffer; chunks: Buffer[] }>[] = [];
    let failure: Error | null = null;
    let planned = false;
    const fill = (): void => {
      while (!planned && inFlight.length <= ahead) {
        const next = plan.next();
        if (next.done) planned = true;
        else if (next.value instanceof Error) {
          failure = next.value; // thrown once the groups before it are yielded
          planned = true;
        } else {
          const p = this.readGroup(next.value, maxRead, opts.buffer, opts.sync === true);
          p.catch(() => undefined); // awaited in order below; not an unhandled rejection meanwhile
          inFlight.push(p);
        }
      }
    };
    try {
      for (;;) {
        fill();
        const p = inFlight.shift();
        if (!p) break;
        yield await p;
      }
      if (failure) throw failure;
    } finally {
      // a read still in flight must land before its buffer is reused or its pack closed
      await Promise.allSettled(inFlight);
    }
  }

  /**
   * Runs of chunks back to back in a pack, at most maxRead bytes each (or one chunk); a
   * missing chunk ends it with its error. `located`: the ids' locations, looked up already
   * (locateMany), one per id.
   */
  private *planGroups(idsRaw: Iterable<Buffer>, maxRead: number, located?: readonly (ChunkLocation | undefined)[]): Generator<{ id: Buffer; loc: ChunkLocation }[] | Error> {
    let group: { id: Buffer; loc: ChunkLocation }[] = [];
    let done = 0;
    for (const batch of batches(idsRaw, LOCATE_BATCH)) {
      const locs = located ? located.slice(done, done + batch.length) : this.locateMany(batch);
      done += batch.length;
      for (let k = 0; k < batch.length; k++) {
        const id = batch[k]!;
        const loc = locs[k];
        if (!loc) {
          if (group.length) yield group;
          yield new ChunkMissingError(id.toString('hex'));
          return;
        }
        const prev = group.length ? group[group.length - 1]!.loc : null;
        const adjacent = prev && prev.pack === loc.pack && loc.offset === prev.offset + prev.storedLength + ENTRY_HEAD_SIZE;
        if (group.length && (!adjacent || loc.offset + loc.storedLength - group[0]!.loc.offset > maxRead)) {
          yield group;
          group = [];
        }
        group.push({ id, loc });
      }
    }
    if (group.length) yield group;
  }

  /**
   * locate() for many ids, in one read transaction: SQLite then takes its file locks once,
   * not once per query (a third of the time of looking up a 1 GiB file's chunks).
   */
  locateMany(idsRaw: readonly Buffer[]): (ChunkLocation | undefined)[] {
    this.locateTxn ??= this.db.transaction((ids: readonly Buffer[]) => ids.map((id) => this.stmts.get.get(id) as ChunkLocation | undefined));
    return this.locateTxn(idsRaw);
  }

  /** One group of planGroups read and verified (see readChunkGroups). */
  private async readGroup(group: { id: Buffer; loc: ChunkLocation }[], maxRead: number, lend: () => Buffer | Promise<Buffer>, sync = false): Promise<{ buffer: Buffer; chunks: Buffer[] }> {
    const first = group[0]!.loc;
    const last = group[group.length - 1]!.loc;
    const span = last.offset + last.storedLength - first.offset;
    const buffer = span > maxRead ? Buffer.allocUnsafe(span + ALIGN_SLACK) : await lend();
    if (buffer.length < span + ALIGN_SLACK) throw new Error(`readChunkGroups: a buffer of ${buffer.length} bytes was lent for a read of ${span}`);
    // placed to match the pack offset (the kernel's copy is up to 4x slower otherwise)
    const readBuf = alignedView(buffer, first.offset, span);
    const fd = this.readFd(first.pack);
    if (this.writer && this.writer.packId === first.pack) this.writer.flushSync();
    const native = sync ? undefined : nativeBlake3()?.readHash;
    /** ids of the plain chunks, hashed with the read (native), by index in the group */
    let hashed: Uint8Array | null = null;
    if (native) {
      const starts = new Float64Array(group.length);
      const lengths = new Uint32Array(group.length);
      let count = 0;
      for (const { loc } of group) {
        if (loc.codec !== CODEC_NONE) continue;
        starts[count] = loc.offset - first.offset;
        lengths[count++] = loc.storedLength;
      }
      hashed = new Uint8Array(count * 32);
      const n = await native(fd, readBuf, first.offset, starts, lengths, count, hashed);
      if (n < 0) {
        const code = util.getSystemErrorName(n);
        throw Object.assign(new Error(`${code}: reading pack ${this.packNames.get(first.pack) ?? first.pack}`), { code, errno: n });
      }
      if (n < span) throw new ChunkCorruptError(group[0]!.id.toString('hex'), 'its pack is missing or short');
    } else {
      let done = 0;
      while (done < span) {
        const n = fs.readSync(fd, readBuf, done, span - done, first.offset + done);
        if (n === 0) throw new ChunkCorruptError(group[0]!.id.toString('hex'), 'its pack is missing or short');
        done += n;
      }
    }
    const chunks: Buffer[] = [];
    let plain = 0;
    for (const { id, loc } of group) {
      let data: Buffer = readBuf.subarray(loc.offset - first.offset, loc.offset - first.offset + loc.storedLength);
      let ok: boolean;
      if (loc.codec === CODEC_NONE) {
        ok = data.length === loc.rawLength && (hashed ? id.equals(hashed.subarray(plain * 32, plain * 32 + 32)) : hashBytes(data).equals(id));
        plain++;
      } else if (loc.codec === CODEC_ZSTD) {
        try {
          data = await decompress(data);
        } catch {
          throw new ChunkCorruptError(id.toString('hex'), 'zstd data does not decode');
        }
        ok = data.length === loc.rawLength && hashBytes(data).equals(id);
      } else throw new ChunkCorruptError(id.toString('hex'), `unknown codec ${loc.codec}`);
      if (!ok) throw new ChunkCorruptError(id.toString('hex'), 'its bytes do not match its id');
      this.onChunkRead?.(id);
      chunks.push(data);
    }
    return { buffer, chunks };
  }

  manifestPath(id: string): string {
    return path.join(this.dir, 'manifests', id.slice(0, 2), id.slice(2));
  }

  hasManifest(id: string): boolean {
    this.enlist();
    return fs.existsSync(this.manifestPath(id));
  }

  /**
   * Stores a manifest. A small one is one file. A large one (a 1 GiB file's manifest is
   * about 600 KB) is cut into content-defined pieces stored as ordinary chunks, and the file
   * holds only the list of pieces ("DITSMIDX"): a new version of a file then stores the few
   * pieces that changed, not a whole new manifest. Either way the id is BLAKE3 of the whole
   * manifest, and reads verify it.
   */
  putManifest(id: string, bytes: Buffer): void {
    this.enlist();
    const dest = this.manifestPath(id);
    // (an empty one is what a power loss can leave of a manifest written without fsync: written again)
    if (fileSize(dest) > 0) return;
    try {
      let file = bytes;
      if (bytes.length > MANIFEST_SPLIT_SIZE) {
        const chunker = new Chunker(MANIFEST_PIECE_PARAMS);
        const pieces = chunker.push(bytes);
        const tail = chunker.finish();
        if (tail) pieces.push(tail);
        file = Buffer.alloc(MIDX_HEADER + pieces.length * MIDX_ENTRY);
        MIDX_MAGIC.copy(file, 0);
        file.writeUInt32LE(1, 8);
        file.writeUInt32LE(pieces.length, 12);
        const record = this.db.prepare('INSERT OR IGNORE INTO manifest_pieces(manifest, chunk) VALUES (?, ?)');
        const ids: Buffer[] = [];
        pieces.forEach((piece, i) => {
          const pid = hashBytes(piece);
          ids.push(pid);
          this.putStoredChunk(pid, CODEC_NONE, piece.length, piece);
          pid.copy(file, MIDX_HEADER + i * MIDX_ENTRY);
          file.writeUInt32LE(piece.length, MIDX_HEADER + i * MIDX_ENTRY + 32);
        });
        this.commit();
        this.db.transaction(() => {
          for (const pid of ids) record.run(id, pid);
        }).immediate();
      }
      // fsynced only with `durable`, as packs are (see open): a flush per file cost most of
      // the time of adding many small files
      writeFileAtomic(dest, file, path.join(this.dir, 'tmp'), this.durable);
    } catch (err) {
      throw this.diskError(err);
    }
  }

  /** Chunk ids a stored manifest's pieces occupy (none for a small manifest). */
  manifestPieceIds(id: string): Buffer[] {
    let file: Buffer;
    try {
      file = fs.readFileSync(this.manifestPath(id));
    } catch {
      return [];
    }
    if (!file.subarray(0, 8).equals(MIDX_MAGIC)) return [];
    const n = file.readUInt32LE(12);
    const out: Buffer[] = [];
    for (let i = 0; i < n; i++) out.push(file.subarray(MIDX_HEADER + i * MIDX_ENTRY, MIDX_HEADER + i * MIDX_ENTRY + 32));
    return out;
  }

  /** Manifest bytes, verified against the id. */
  getManifestBytes(id: string): Buffer {
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(this.manifestPath(id));
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') throw new ManifestMissingError(id);
      throw err;
    }
    const corrupt = (): DitsUserError =>
      new DitsUserError('manifest-corrupt', `manifest ${id} is corrupt in the local store`, { hint: 'run `git dits fsck` to quarantine it, then fetch it again from a remote' });
    if (bytes.subarray(0, 8).equals(MIDX_MAGIC)) {
      if (bytes.length < MIDX_HEADER) throw corrupt();
      const n = bytes.readUInt32LE(12);
      if (bytes.length !== MIDX_HEADER + n * MIDX_ENTRY) throw corrupt();
      const parts: Buffer[] = [];
      for (let i = 0; i < n; i++) {
        const pid = bytes.subarray(MIDX_HEADER + i * MIDX_ENTRY, MIDX_HEADER + i * MIDX_ENTRY + 32);
        const loc = this.locate(pid);
        if (!loc || loc.codec !== CODEC_NONE) throw new ManifestMissingError(id);
        const piece = this.readStored(loc);
        if (!hashBytes(piece).equals(pid)) throw corrupt();
        parts.push(piece);
      }
      bytes = Buffer.concat(parts);
    }
    if (hashBytes(bytes).toString('hex') !== id) throw corrupt();
    return bytes;
  }

  *listManifestIds(): Generator<string> {
    const root = path.join(this.dir, 'manifests');
    for (const a of safeReaddir(root)) {
      if (!/^[0-9a-f]{2}$/.test(a)) continue;
      for (const b of safeReaddir(path.join(root, a))) if (/^[0-9a-f]{62}$/.test(b)) yield a + b;
    }
  }

  stats(): StoreStats {
    const c = this.db.prepare('SELECT count(*) AS n, coalesce(sum(stored_len), 0) AS s, coalesce(sum(raw_len), 0) AS r FROM chunks').get() as { n: number; s: number; r: number };
    const packs = this.db.prepare('SELECT id FROM packs').pluck().all() as number[];
    let packBytes = 0;
    let packCount = 0;
    for (const id of packs) {
      try {
        packBytes += fs.statSync(this.packPath(id)).size;
        packCount++;
      } catch {
        /* removed */
      }
    }
    let manifests = 0;
    for (const _ of this.listManifestIds()) manifests++;
    return { chunks: c.n, storedBytes: c.s, rawBytes: c.r, packs: packCount, packBytes, manifests };
  }

  close(): void {
    let committed = false;
    try {
      this.commit();
      committed = true;
    } finally {
      for (const w of this.writers()) {
        w.close();
        if (committed) this.sealed(w); // else left marked: gc reclaims its unindexed tail
      }
      if (this.leaseId !== null) {
        try {
          endLease(this.db, this.leaseId);
        } catch {
          // a full disk, say: the row ends when this process does (gc checks the pid)
        }
      }
      this.leaseId = null;
      this.writer = null;
      this.retired = [];
      for (const fd of this.readFds.values()) fs.closeSync(fd);
      this.readFds.clear();
      this.db.close();
    }
  }

  /**
   * Rewrites a pack keeping only the chunks `keep` accepts; the others leave the index.
   * Crash-safe: the new pack is durable before the index moves to it, and the old pack is
   * deleted only after (an interrupted run leaves an unreferenced pack for the next gc).
   */
  rewritePack(packId: number, keep: (idRaw: Buffer) => boolean): { kept: number; dropped: number } {
    this.commit();
    if (this.writer && this.writer.packId === packId) {
      // never append to a pack being replaced: later puts start a new pack
      this.writer.close();
      this.writer = null;
    }
    const rows = this.db.prepare('SELECT id, offset, stored_len AS storedLength, raw_len AS rawLength, codec FROM chunks WHERE pack = ? ORDER BY offset').all(packId) as (Omit<ChunkLocation, 'pack'> & { id: Buffer })[];
    const keepRows = rows.filter((r) => keep(r.id));
    const dropRows = rows.filter((r) => !keep(r.id));
    let writer: PackWriter | null = null;
    if (keepRows.length) {
      const name = `pack-${Date.now().toString(36)}-${randomBytes(8).toString('hex')}`;
      const newId = this.allocatePack(name, null);
      writer = new PackWriter(newId, path.join(this.dir, 'packs', `${name}.pack`), this.directPool);
      for (const r of keepRows) writer.append(r.id, r.codec, r.rawLength, this.readStored({ ...r, pack: packId }));
      writer.sync();
      writer.close();
    }
    const oldFile = this.packPath(packId);
    const move = this.db.prepare('UPDATE chunks SET pack = ?, offset = ? WHERE id = ?');
    const del = this.db.prepare('DELETE FROM chunks WHERE id = ?');
    this.db.transaction(() => {
      if (writer) for (const r of writer.rows) move.run(writer.packId, r.offset, r.idRaw);
      for (const r of dropRows) del.run(r.id);
      this.db.prepare('DELETE FROM packs WHERE id = ?').run(packId);
      this.stmts.unlinkPack.run(packId);
    }).immediate();
    this.dropReadHandles();
    fs.rmSync(oldFile, { force: true });
    return { kept: keepRows.length, dropped: dropRows.length };
  }

  /** Forget cached read handles (after gc replaced packs). */
  dropReadHandles(): void {
    for (const fd of this.readFds.values()) fs.closeSync(fd);
    this.readFds.clear();
    this.packNames.clear();
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/** Writes `bytes` to `dest` so that readers see the old state or the whole new file. */
function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return -1;
  }
}

export function writeFileAtomic(dest: string, bytes: Buffer, tmpDir = path.dirname(dest), sync = true): void {
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
