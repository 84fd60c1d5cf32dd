/**
 * PackWriter: appends entries to one pack of the local store (see chunk-store.ts for the
 * store's layout and its atomicity rule: a pack's bytes are written, and with `durable`
 * fsynced, before any index row points at them).
 */
import fs from 'node:fs';
import { ENTRY_HEAD_SIZE, encodeEntryHead, encodePackHeader, PACK_HEADER_SIZE } from './pack-format.js';
import { PositionalWriter } from './positional-writer.js';
import { DirectAppender } from './direct-appender.js';
import { preallocate } from '../native-addon.js';

const WRITE_BUFFER_SIZE = 2 * 1024 * 1024;
/**
 * A pack's disk blocks are reserved this far ahead of its writes (fallocate, see
 * PackWriter), or as far as the store's pack roll size when that is less, and the unused
 * rest freed when it is closed. After a crash mid-add at most this much stays reserved
 * past that pack's end: disk space only (the file's size and every read are unaffected),
 * given back when gc rewrites or deletes the pack.
 */
export const PREALLOCATE_STEP = 32 * 1024 * 1024;
/** Pack write buffers in flight at once (memory: about (1 + this) x WRITE_BUFFER_SIZE). */
const PACK_WRITES_IN_FLIGHT = 2;

export interface PendingRow {
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
export class PackWriter {
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
    /**
     * How far ahead disk blocks are reserved at a time: the store's pack roll size when less
     * than PREALLOCATE_STEP (a rolled pack keeps its reservation until the next commit
     * closes it: a mount cache of 1 MiB packs otherwise held 32 MiB of disk for each)
     */
    private readonly reserveStep = PREALLOCATE_STEP,
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
      const length = Math.max(this.reserveStep, end - from);
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
