/**
 * The read path of the local store: where a chunk is (locate, locateMany, from the index)
 * and its bytes, read from its pack and verified against its id (getChunk, readChunks,
 * readChunkGroups: runs of chunks back to back in a pack read with one read, the next read
 * in flight while the caller works). ChunkStore is the facade.
 */
import fs from 'node:fs';
import path from 'node:path';
import util from 'node:util';
import { DitsUserError, errnoCode } from '../errors.js';
import { hashBytes, nativeBlake3 } from '../hashing/blake3.js';
import { CODEC_NONE, CODEC_ZSTD, ENTRY_HEAD_SIZE, type ChunkLocation } from './pack-format.js';
import { decompress } from './compression.js';
import { ALIGN_SLACK, alignedView } from './aligned-buffer.js';
import type { StoreDb } from './store-db.js';

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

/**
 * Reads chunks from the local packs, each verified against its id; keeps one read handle
 * per pack. `flushWriting(pack)`: reads of the pack being written must first see its
 * buffered bytes (the store flushes them).
 */
/** How readChunkGroups reads (see there). */
export interface ReadGroupsOptions {
  maxRead?: number;
  buffer: () => Buffer | Promise<Buffer>;
  ahead?: number;
  located?: readonly (ChunkLocation | undefined)[];
  /** read and hash on this thread: for small reads, the hop to a pool thread and back costs more than it saves */
  sync?: boolean;
}

export class PackReader {
  private readFds = new Map<number, number>();
  private packNames = new Map<number, string>();
  private readonly stmts;
  private locateTxn: ((ids: readonly Buffer[]) => (ChunkLocation | undefined)[]) | null = null;
  /** Called with the id of each chunk read and verified (see ChunkStore.onChunkRead). */
  onChunkRead: ((idRaw: Buffer) => void) | null = null;

  constructor(
    private readonly db: StoreDb,
    private readonly dir: string,
    private readonly flushWriting: (packId: number) => void,
  ) {
    this.stmts = {
      get: db.prepare('SELECT pack, offset, stored_len AS storedLength, raw_len AS rawLength, codec FROM chunks WHERE id = ?'),
      packName: db.prepare('SELECT name FROM packs WHERE id = ?').pluck(),
    };
  }

  locate(idRaw: Buffer): ChunkLocation | undefined {
    return this.stmts.get.get(idRaw) as ChunkLocation | undefined;
  }

  /** The name of a pack this process just made (saves a query when it is read). */
  notePack(packId: number, name: string): void {
    this.packNames.set(packId, name);
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
    this.flushWriting(loc.pack);
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

  /**
   * Bytes of pack `packId` from `offset` on, read straight into `buffers` in order (one
   * preadv: their stored bytes into the caller's buffer, the entry heads between them into
   * scratch), unverified; the byte count (fewer at the end of the pack).
   */
  readStoredv(packId: number, offset: number, buffers: Buffer[]): number {
    this.flushWriting(packId);
    return fs.readvSync(this.readFd(packId), buffers, offset);
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
    opts: ReadGroupsOptions,
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
    this.flushWriting(first.pack);
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

  /** Forget cached read handles (after gc replaced packs). */
  dropHandles(): void {
    for (const fd of this.readFds.values()) fs.closeSync(fd);
    this.readFds.clear();
    this.packNames.clear();
  }

  /** Closes the read handles (the store is closing). */
  close(): void {
    for (const fd of this.readFds.values()) fs.closeSync(fd);
    this.readFds.clear();
  }
}
