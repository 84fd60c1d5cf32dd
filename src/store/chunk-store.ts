/**
 * The local content store in `.git/dits/`:
 *
 *   index.sqlite        which chunk is in which pack at which offset (WAL, better-sqlite3;
 *                       its schema: store-db.ts)
 *   packs/<name>.pack   chunks back to back (see pack-format.ts); a pack is appended to by
 *                       one writer only, then never changed (gc rewrites whole packs)
 *   index.sqlite        also the manifests (table manifests), committed in their own row
 *   manifests/ab/<id>   manifests stored by earlier versions, one file each (still read,
 *                       listed, checked and deleted as before; new ones go to the table)
 *   quarantine/         corrupt chunks and manifests moved aside by fsck
 *
 * Pack writes are buffered and handed to the disk asynchronously (pack-writer.ts), so
 * chunking, hashing and downloads go on meanwhile; commit() and commitAsync() wait for them.
 * Ingest lends its read buffers instead of having them copied (putChunks with `borrowed`:
 * the bytes are written from where they are with writev) and reuses a buffer only after a
 * writeFence().
 *
 * Atomicity: chunk bytes are appended and fsynced *before* their index rows are committed,
 * so a crash mid-add leaves at most unindexed bytes at a pack's end, never a row pointing
 * at a half chunk. Every read is verified against its id.
 *
 * ChunkStore is the facade every caller uses; it holds the write path (pack allocation,
 * puts, commits, pack rewrites) and the writer lease, and hands the rest to one file per
 * concern: store-db.ts (opening the index, the schema), pack-writer.ts, pack-reader.ts (the
 * read path), manifest-store.ts, remote-held.ts, and the queries that gc, fsck and
 * remote/content need (gc-index.ts, usage-records.ts, remote-index.ts, writer-lease.ts).
 * Its index connection is private: no SQL runs outside src/store/.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type BetterSqlite3 from 'better-sqlite3';
import { DitsUserError, errnoCode } from '../errors.js';
import { CODEC_NONE, CODEC_ZSTD, ENTRY_HEAD_SIZE, type ChunkLocation } from './pack-format.js';
import { CompressionPolicy } from './compression.js';
import { PackWriter, PREALLOCATE_STEP, type PendingRow } from './pack-writer.js';
import { dropLease, endLease, listLeases, listPackWriters, takeLease, type WriterLease } from './writer-lease.js';
import { openStoreDb, type StoreDb } from './store-db.js';
import { MANIFEST_SPLIT_SIZE, ManifestStore, type ManifestFromStart } from './manifest-store.js';
import { RemoteHeld } from './remote-held.js';
import { PackReader, type ReadGroupsOptions } from './pack-reader.js';
import { deleteDeadChunks, liveTest, markLive, packUsage, type PackUsage } from './gc-index.js';
import { chunksByLastUse, forgetChunkUse, recordChunkUse, type ChunkUse } from './usage-records.js';
import { manifestsOnAnyRemote, RemoteIndex } from './remote-index.js';
import { VariantIndex } from './variant-index.js';
import { ProxyDerived } from './proxy-derived.js';
import type { VariantKind, VariantRecord } from '../manifest/variant-record.js';

export type { ChunkLocation } from './pack-format.js';
export { ManifestMissingError } from './manifest-store.js';
export { ChunkMissingError, ChunkCorruptError } from './pack-reader.js';

/** A local pack is closed and a new one started past this size. */
const PACK_ROLL_SIZE = 256 * 1024 * 1024;
/** Index rows per INSERT statement when committing (insertRows). */
const INSERT_ROWS = 64;
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

/** Ids looked up by one statement at most (twice as many parameters with remote-held ids: under SQLite's 32,766). */
const KNOWN_BATCH = 8192;

export class ChunkStore {
  private readonly db: StoreDb;
  private writer: PackWriter | null = null;
  /** Full packs whose rows are not committed yet (or whose last writes are in flight). */
  private retired: PackWriter[] = [];
  /** Packs closed while writes were still in flight (writeFence waits for those). */
  private closing: PackWriter[] = [];
  /** Chunks appended by this process and not yet committed (dedup within an add). */
  private pendingIds = new Set<string>();
  private readonly stmts: ReturnType<ChunkStore['prepare']>;
  /** Manifest rows and legacy files (manifest-store.ts). */
  private readonly manifests: ManifestStore;
  /** Chunks a remote holds instead of this store (remote-held.ts). */
  private readonly remoteHeld: RemoteHeld;
  private readonly compression = new CompressionPolicy();
  /** Spare buffers of the packs' direct writes (null: packs are written buffered). */
  private readonly directPool: Buffer[] | null;
  /** The read path (pack-reader.ts). */
  private readonly reader: PackReader;
  /** Proxies, posters, sprites and previews of original files (variant-index.ts). */
  private readonly variants: VariantIndex;

  private constructor(
    readonly dir: string,
    db: StoreDb,
    private readonly durable: boolean,
    private readonly packRollSize: number,
    directWrite: boolean,
  ) {
    this.db = db;
    this.directPool = directWrite ? [] : null;
    this.stmts = this.prepare();
    this.manifests = new ManifestStore(db, dir, durable, this);
    this.remoteHeld = new RemoteHeld(db);
    this.variants = new VariantIndex(db);
    // reads of the pack being written see its buffered bytes
    this.reader = new PackReader(db, dir, (packId) => {
      if (this.writer && this.writer.packId === packId) this.writer.flushSync();
    });
  }

  /**
   * Opens the store; with `create`, makes it (idempotent). `durable` fsyncs packs before
   * their index rows commit, and every commit of the index, manifests included (survives
   * power loss; costs a disk flush per add). Without it a
   * process crash still loses nothing committed, and a power loss can at worst leave rows
   * whose bytes never reached the disk: every read verifies, so those read as corrupt
   * (fsck quarantines them), never as valid content.
   */
  static open(dir: string, opts: StoreOpenOptions = {}): ChunkStore {
    const db = openStoreDb(dir, opts);
    return new ChunkStore(dir, db, opts.durable ?? false, opts.packRollSize ?? PACK_ROLL_SIZE, opts.directWrite ?? process.env.DITS_DIRECT_WRITE !== '0');
  }

  private prepare() {
    return {
      has: this.db.prepare('SELECT 1 FROM chunks WHERE id = ?').pluck(),
      insert: this.db.prepare('INSERT OR IGNORE INTO chunks(id, pack, offset, stored_len, raw_len, codec, added_at) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      addPack: this.db.prepare('INSERT INTO packs(id, name, created_at) VALUES (?, ?, ?)'),
      maxPack: this.db.prepare('SELECT coalesce(max(id), 0) FROM packs').pluck(),
      nextPack: this.db.prepare(`SELECT value FROM meta WHERE key = 'next_pack'`).pluck(),
      setNextPack: this.db.prepare(`INSERT OR REPLACE INTO meta(key, value) VALUES ('next_pack', ?)`),
      linkPack: this.db.prepare('INSERT OR REPLACE INTO pack_writers(pack, writer) VALUES (?, ?)'),
      unlinkPack: this.db.prepare('DELETE FROM pack_writers WHERE pack = ?'),
      packExists: this.db.prepare('SELECT 1 FROM packs WHERE id = ?').pluck(),
    };
  }

  hasChunk(idRaw: Buffer): boolean {
    this.enlist(); // a caller that finds it stores nothing and relies on it
    return this.pendingIds.has(idRaw.toString('hex')) || this.stmts.has.get(idRaw) !== undefined;
  }

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

  /**
   * Records this process as a writer now, before any write or lookup: gc then deletes
   * nothing while it lives. A mount takes it as it starts, since it may show a revision
   * nothing else refers to (gc names the mount, and how to end it).
   */
  holdAgainstGc(): void {
    this.enlist();
  }

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
    this.reader.notePack(packId, name);
    this.writer = new PackWriter(packId, path.join(this.dir, 'packs', `${name}.pack`), this.directPool, Math.min(PREALLOCATE_STEP, this.packRollSize));
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
    if (count > KNOWN_BATCH) {
      // SQLite takes at most 32,766 parameters a statement (a batch of 64-byte chunks has more)
      let all: Set<string> | null = null;
      for (let k = 0; k < count; k += KNOWN_BATCH) {
        const part = this.knownAmong(ids.subarray(k * 32), Math.min(KNOWN_BATCH, count - k));
        if (part) for (const h of part) (all ??= new Set()).add(h);
      }
      return all;
    }
    const anyHeld = this.remoteHeld.anyHeld();
    const key = anyHeld ? -count : count;
    let q = this.knownQueries.get(key);
    if (!q) {
      const marks = new Array(count).fill('?').join(',');
      q = this.db
        .prepare(anyHeld ? `SELECT id FROM chunks WHERE id IN (${marks}) UNION SELECT id FROM remote_held WHERE id IN (${marks})` : `SELECT id FROM chunks WHERE id IN (${marks})`)
        .pluck();
      if (this.knownQueries.size > 64) this.knownQueries.clear();
      this.knownQueries.set(key, q);
    }
    const params: Buffer[] = [];
    for (let k = 0; k < count; k++) params.push(ids.subarray(k * 32, k * 32 + 32));
    const found = q.all(...(anyHeld ? [...params, ...params] : params)) as Buffer[];
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
   * `borrowed`: `stored` is written from where it is, not copied; the caller never changes it.
   */
  putStoredChunk(idRaw: Buffer, codec: number, rawLength: number, stored: Buffer, knownAbsent = false, borrowed = false): boolean {
    this.enlist();
    const hex = idRaw.toString('hex');
    if (this.pendingIds.has(hex) || (!knownAbsent && this.stmts.has.get(idRaw) !== undefined)) return false;
    const w = this.openWriter();
    this.pendingIds.add(hex);
    w.append(idRaw, codec, rawLength, stored, borrowed);
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
  private insertRows(batches: { packId: number; rows: PendingRow[] }[], manifest?: { id: string; bytes: Buffer }): void {
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
      if (manifest) this.manifests.writeRow(manifest.id, manifest.bytes, now);
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
   * while it waits belong to a later commit. Several may run at once. `manifest`: stored
   * too, in the same transaction as the rows when it is small (see putManifest).
   */
  async commitAsync(manifest?: { id: string; bytes: Buffer }): Promise<void> {
    const inline = manifest && manifest.bytes.length <= MANIFEST_SPLIT_SIZE && !this.hasManifest(manifest.id) ? manifest : undefined;
    const taken = this.writers()
      .filter((w) => w.rows.length)
      .map((w) => {
        const rows = w.rows;
        w.rows = [];
        w.holds++;
        return { w, packId: w.packId, rows };
      });
    if (taken.length === 0) {
      if (manifest) this.putManifest(manifest.id, manifest.bytes);
      return;
    }
    try {
      for (const t of taken) {
        if (this.durable) await t.w.syncAsync();
        // nothing in flight: what is left is at most one buffer, written here and now (a
        // round trip through the thread pool cost more than the write itself, once per
        // file when adding many small ones: 1-2 ms against about 0.5 ms here)
        else if (!t.w.busy) t.w.flushSync();
        else await t.w.drain();
      }
    } catch (err) {
      for (const t of taken) t.w.holds--;
      for (const t of taken) for (const r of t.rows) this.pendingIds.delete(r.idRaw.toString('hex'));
      throw this.diskError(err);
    }
    for (const t of taken) t.w.holds--;
    try {
      this.insertRows(taken, inline);
    } catch (err) {
      throw this.diskError(err);
    }
    for (const t of taken) for (const r of t.rows) this.pendingIds.delete(r.idRaw.toString('hex'));
    this.dropIdleRetired();
    if (manifest && !inline) this.putManifest(manifest.id, manifest.bytes);
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

  // The read path (pack-reader.ts).

  /**
   * Called with the id of each chunk getChunk or readChunkGroups returned (verified): usage
   * tracking for local cache tiering (src/remote/content/chunk-usage.ts). Must be cheap;
   * must copy `idRaw` to keep it.
   */
  get onChunkRead(): ((idRaw: Buffer) => void) | null {
    return this.reader.onChunkRead;
  }

  set onChunkRead(hook: ((idRaw: Buffer) => void) | null) {
    this.reader.onChunkRead = hook;
  }

  locate(idRaw: Buffer): ChunkLocation | undefined {
    return this.reader.locate(idRaw);
  }

  /** locate() for many ids, in one read transaction. */
  locateMany(idsRaw: readonly Buffer[]): (ChunkLocation | undefined)[] {
    return this.reader.locateMany(idsRaw);
  }

  packPath(packId: number): string {
    return this.reader.packPath(packId);
  }

  /** The stored (possibly compressed) bytes of a chunk, unverified. */
  readStored(loc: ChunkLocation): Buffer {
    return this.reader.readStored(loc);
  }

  /** Bytes of a pack read straight into `buffers` (see PackReader.readStoredv), unverified. */
  readStoredv(packId: number, offset: number, buffers: Buffer[]): number {
    return this.reader.readStoredv(packId, offset, buffers);
  }

  /** A chunk's plain bytes, verified against its id. */
  getChunk(idRaw: Buffer): Promise<Buffer> {
    return this.reader.getChunk(idRaw);
  }

  /** The plain bytes of many chunks, in order, each verified (see PackReader.readChunks). */
  readChunks(idsRaw: Iterable<Buffer>, maxRead?: number): AsyncGenerator<Buffer> {
    return this.reader.readChunks(idsRaw, maxRead);
  }

  /** readChunks a group at a time, into buffers the caller lends (see PackReader.readChunkGroups). */
  readChunkGroups(
    idsRaw: Iterable<Buffer>,
    opts: ReadGroupsOptions,
  ): AsyncGenerator<{ buffer: Buffer; chunks: Buffer[] }> {
    return this.reader.readChunkGroups(idsRaw, opts);
  }

  /** Forget cached read handles (after gc replaced packs). */
  dropReadHandles(): void {
    this.reader.dropHandles();
  }

  // Manifests (manifest-store.ts).

  /** Where an earlier version of Dits kept manifest `id` (a file each); new ones are rows. */
  manifestPath(id: string): string {
    return this.manifests.legacyFile(id);
  }

  hasManifest(id: string): boolean {
    this.enlist();
    return this.manifests.has(id);
  }

  /**
   * Stores a manifest, as a row of the index (committed at once); a large one as pieces
   * (manifest-store.ts).
   */
  putManifest(id: string, bytes: Buffer): void {
    this.enlist();
    // (an empty file is what a power loss could leave of one an earlier version wrote without fsync: stored again)
    if (this.hasManifest(id)) return;
    try {
      this.manifests.put(id, bytes);
    } catch (err) {
      throw this.diskError(err);
    }
  }

  /** Chunk ids a stored manifest's pieces occupy (none for a small manifest). */
  manifestPieceIds(id: string): Buffer[] {
    return this.manifests.pieceIds(id);
  }

  /** Manifest bytes, verified against the id. */
  getManifestBytes(id: string): Buffer {
    return this.manifests.getBytes(id);
  }

  /**
   * A manifest whose start can be read before the rest (the mount: ManifestStore.readFromStart):
   * bytes [0, verified) verified against the id, complete() for the rest.
   */
  readManifestFromStart(id: string): ManifestFromStart {
    return this.manifests.readFromStart(id);
  }

  /** The first `n` bytes of a manifest as stored (its header, for a whole one), or null. */
  manifestHead(id: string, n: number): Buffer | null {
    return this.manifests.head(id, n);
  }

  /** Ids of every stored manifest: rows, then legacy files (each once). */
  listManifestIds(): Generator<string> {
    return this.manifests.listIds();
  }

  /** When manifest `id` was stored (ms), or null when it is not here. */
  manifestAddedAt(id: string): number | null {
    return this.manifests.addedAt(id);
  }

  /** Bytes the stored manifests take (rows and legacy files; pieces are chunks, counted there). */
  manifestBytes(): number {
    return this.manifests.storedBytes();
  }

  /** Removes manifest `id` (its row or file, and the record of its pieces; the pieces' chunks are gc's). */
  deleteManifest(id: string): void {
    this.manifests.delete(id);
  }

  /**
   * Moves manifest `id` aside to `dest` (fsck's quarantine), so a good copy can be fetched
   * in its place; `note` runs in the same transaction that removes the row.
   */
  quarantineManifest(id: string, dest: string, note: () => void): void {
    this.manifests.quarantine(id, dest, note);
  }

  // Remote-held chunks (remote-held.ts).

  /**
   * Whether a remote verifiably holds this chunk although its bytes are not kept here
   * (remote-held.ts). Reads of it go to the remote (ensureLocal).
   */
  isRemoteHeld(idRaw: Buffer): boolean {
    return this.remoteHeld.has(idRaw);
  }

  /** The remote recorded as holding this chunk (see isRemoteHeld), if any. */
  remoteHeldBy(idRaw: Buffer): string | undefined {
    return this.remoteHeld.heldBy(idRaw);
  }

  /** Records chunks that `remote` was just seen to hold (downloaded and verified, or checked by prune). */
  markRemoteHeld(chunks: readonly { idRaw: Buffer; rawLength: number }[], remote: string): void {
    if (chunks.length === 0) return;
    this.enlist();
    this.remoteHeld.mark(chunks, remote);
  }

  /**
   * Forgets remote-held chunks recorded before `cutoff` (ms) that `keep` rejects (gc: no
   * reachable content needs them). Returns how many.
   */
  dropRemoteHeld(keep: (idRaw: Buffer) => boolean, cutoff: number): number {
    return this.remoteHeld.drop(keep, cutoff);
  }

  /** Chunks held only by a remote (not stored here): how many, and their plain size. */
  remoteHeldStats(): { chunks: number; rawBytes: number } {
    return this.remoteHeld.stats();
  }

  /** remoteHeldStats per remote name. */
  remoteHeldByRemote(): { remote: string; chunks: number; rawBytes: number }[] {
    return this.remoteHeld.byRemote();
  }

  // The store as a whole.

  /** Chunk rows: how many, their stored bytes (without entry heads) and their plain bytes. */
  chunkTotals(): { chunks: number; storedBytes: number; rawBytes: number } {
    const c = this.db.prepare('SELECT count(*) AS n, coalesce(sum(stored_len), 0) AS s, coalesce(sum(raw_len), 0) AS r FROM chunks').get() as { n: number; s: number; r: number };
    return { chunks: c.n, storedBytes: c.s, rawBytes: c.r };
  }

  stats(): StoreStats {
    const c = this.chunkTotals();
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
    return { ...c, packs: packCount, packBytes, manifests };
  }

  // What gc, fsck and remote/content ask of the index: named queries, so that no SQL runs
  // outside src/store/ (the SQL of each concern is in gc-index.ts, usage-records.ts,
  // remote-index.ts and writer-lease.ts).

  /**
   * Runs `fn` in one write transaction, begun with BEGIN IMMEDIATE: gc checks for writers
   * and deletes in the same one (gc.ts), and the store's own writes inside `fn` join it.
   */
  writeTransaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  /** The rows of store_writers (writer-lease.ts). */
  leases(): WriterLease[] {
    return listLeases(this.db);
  }

  /** Packs being written (or left partial), with their writer's row. */
  packWriters(): Map<number, number> {
    return listPackWriters(this.db);
  }

  /** Removes a row of store_writers (gc: of writers and gcs that are gone). */
  dropLease(id: number): void {
    dropLease(this.db, id);
  }

  /** A pack is no longer being written (gc, once it has dealt with a dead writer's pack). */
  unlinkPackWriter(packId: number): void {
    this.stmts.unlinkPack.run(packId);
  }

  /** gc's live set: emptied, then filled by `fill` in one read transaction (gc-index.ts). */
  markLive(fill: (mark: (idRaw: Buffer) => void) => void): void {
    markLive(this.db, fill);
  }

  /** A test of the live set that markLive filled. */
  liveTest(): (idRaw: Buffer) => boolean {
    return liveTest(this.db);
  }

  /** Every pack with its rows counted against the live set (gc-index.ts). */
  packUsage(cutoff: number): PackUsage[] {
    return packUsage(this.db, cutoff);
  }

  /** Deletes the rows of chunks added by `cutoff` that are not live; run inside writeTransaction. */
  deleteDeadChunks(cutoff: number): { id: Buffer; pack: number }[] {
    return deleteDeadChunks(this.db, cutoff);
  }

  /** How many chunk rows a pack has, and where its last indexed chunk ends (0 when none). */
  packRows(packId: number): { n: number; end: number } {
    return this.db.prepare('SELECT count(*) AS n, coalesce(max(offset + stored_len), 0) AS end FROM chunks WHERE pack = ?').get(packId) as { n: number; end: number };
  }

  /** Whether the index still has this pack (gc may have replaced it). */
  hasPack(packId: number): boolean {
    return this.stmts.packExists.get(packId) !== undefined;
  }

  /** Every chunk row, in pack order (fsck's walk). */
  chunkRows(): IterableIterator<ChunkLocation & { id: Buffer }> {
    return this.db.prepare('SELECT id, pack, offset, stored_len AS storedLength, raw_len AS rawLength, codec FROM chunks ORDER BY pack, offset').iterate() as IterableIterator<ChunkLocation & { id: Buffer }>;
  }

  /** Records that something was moved to quarantine/ (fsck); run inside the transaction that removes it. */
  noteQuarantined(id: string, kind: 'chunk' | 'manifest', reason: string): void {
    this.db.prepare('INSERT INTO quarantine(id, kind, reason, at) VALUES (?, ?, ?, ?)').run(id, kind, reason, Date.now());
  }

  /**
   * Forgets the row of chunk `idRaw` if it still points at `loc` (a cache's damaged or lost
   * entry: the next put of the chunk is indexed again). A row moved meanwhile is kept.
   */
  forgetChunkAt(idRaw: Buffer, loc: ChunkLocation): void {
    this.db.prepare('DELETE FROM chunks WHERE id = ? AND pack = ? AND offset = ?').run(idRaw, loc.pack, loc.offset);
  }

  /** Removes a corrupt chunk's row and records why, in one write transaction (fsck). */
  quarantineChunk(idRaw: Buffer, reason: string): void {
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM chunks WHERE id = ?').run(idRaw);
      this.noteQuarantined(idRaw.toString('hex'), 'chunk', reason);
    }).immediate();
  }

  /** Records uses of chunks (id, ms), keeping each one's latest (usage-records.ts). */
  recordChunkUse(uses: Iterable<readonly [Buffer, number]>): void {
    recordChunkUse(this.db, uses);
  }

  /** Forgets the uses of chunks that left the store. */
  forgetChunkUse(ids: readonly Buffer[]): void {
    forgetChunkUse(this.db, ids);
  }

  /** Local chunks, least recently used first, without the pieces of large manifests. */
  chunksByLastUse(): IterableIterator<ChunkUse> {
    return chunksByLastUse(this.db);
  }

  /** The local cache of what remote `remoteName` holds (remote-index.ts). */
  remoteIndex(remoteName: string, location: string): RemoteIndex {
    return RemoteIndex.open(this.db, remoteName, location);
  }

  /** Which of these manifests some remote is known to hold (recorded by a push or fetch). */
  manifestsKnownOnRemotes(ids: readonly string[]): Set<string> {
    return manifestsOnAnyRemote(this.db, ids);
  }

  /**
   * Records a variant of an original file (replacing the record of the same original, kind
   * and recipe). An ok record's content must already be committed in this store; the
   * caller holds the store open (its writer lease) from the ingest to here, so a gc
   * meanwhile keeps that content.
   */
  putVariant(rec: VariantRecord): void {
    this.variants.put(rec);
  }

  /** The variants recorded for an original file id (newest first), of one kind or all. */
  variantsOf(original: string, kind?: VariantKind): VariantRecord[] {
    return this.variants.of(original, kind);
  }

  /** The ok variant whose own file id is `fileId`, if it is one. */
  variantOwner(fileId: string): VariantRecord | undefined {
    return this.variants.byFileId(fileId);
  }

  /** Whether any variant is recorded. */
  hasVariants(): boolean {
    return this.variants.any();
  }

  listVariants(): Generator<VariantRecord> {
    return this.variants.all();
  }

  deleteVariant(original: string, kind: VariantKind, recipe: string): void {
    this.variants.delete(original, kind, recipe);
  }

  private derived?: ProxyDerived;
  /** Content edited where a proxy was shown (proxy-derived.ts): commit and push refuse it. */
  get proxyDerived(): Pick<ProxyDerived, 'put' | 'byFileId' | 'byManifest' | 'any' | 'delete'> {
    return (this.derived ??= new ProxyDerived(this.db));
  }

  /** Tests only: the index's connection, to look at or damage rows. */
  get dbForTests(): StoreDb {
    return this.db;
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
      this.reader.close();
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
}
