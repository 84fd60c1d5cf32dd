/**
 * Materialize: a pointer in, the real file out, written beside its destination and renamed
 * over it only when every chunk verified. A missing or corrupt chunk, or a pointer whose
 * ids do not agree, leaves the destination untouched. Runs of zero bytes become holes
 * (sparse files stay sparse).
 *
 * Why that verifies the whole file without hashing it again: the manifest is read only if
 * it hashes to its id (the id the pointer names), loadManifest checks that the pointer's
 * file id and size are the manifest's, the manifest's chunk lengths must add up to that
 * size, and every chunk read is checked against its id. The bytes written are therefore
 * exactly the file the pointer names. (`readContent`, the small-file path, relies on the
 * same: hashing the whole stream again cost a tenth of the filter's time on many small files.)
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { DitsUserError, errnoCode } from '../errors.js';
import { Manifest } from '../manifest/manifest.js';
import { MAX_POINTER_SIZE, type Pointer } from '../manifest/pointer.js';
import { ChunkMissingError, ChunkCorruptError, ManifestMissingError, type ChunkLocation, type ChunkStore } from './chunk-store.js';
import { PositionalWriter } from './positional-writer.js';
import { ALIGN_SLACK } from './aligned-buffer.js';
import { preallocate } from '../native-addon.js';

const WRITE_BUFFER_SIZE = 2 * 1024 * 1024;
const WRITES_IN_FLIGHT = 4;
/** Reads from the store: this size each, into this many buffers in turn (see writeContent). */
const READ_SIZE = 8 * 1024 * 1024;
const READ_BUFFERS = 4;
/** Groups read (and verified) ahead of the one being written: see readChunkGroups. */
const READ_AHEAD = 2;
/** Disk blocks reserved ahead of the writes at a time (see writeContent). */
const PREALLOCATE_STEP = 32 * 1024 * 1024;

const ZERO = Buffer.alloc(1 << 20);

export function isZero(b: Buffer): boolean {
  if (b[0] !== 0 || b[b.length - 1] !== 0) return false;
  for (let i = 0; i < b.length; i += ZERO.length) {
    const part = b.subarray(i, Math.min(i + ZERO.length, b.length));
    if (!part.equals(ZERO.subarray(0, part.length))) return false;
  }
  return true;
}

function* chunkIds(m: Manifest): Generator<Buffer> {
  for (let i = 0; i < m.chunkCount; i++) yield m.idRawAt(i);
}

export function loadManifest(store: ChunkStore, pointer: Pointer): Manifest {
  const m = Manifest.parse(store.getManifestBytes(pointer.manifest));
  if (m.header.oid !== pointer.oid || m.header.size !== pointer.size) {
    throw new DitsUserError('pointer-mismatch', `the pointer's file id or size does not match its manifest ${pointer.manifest}`, {
      hint: 'the pointer was edited by hand or damaged: restore it from another commit, or re-add the real file',
    });
  }
  return m;
}

/**
 * Read buffers kept from one file to the next (smudge of many small files): two, lent in
 * turn to readChunkGroups (one read ahead), each grown to the largest read asked for.
 */
export interface BufferLender {
  /** A buffer of at least `size` bytes for the next read. */
  lend(size: number): Buffer;
}

export class ReadBuffers implements BufferLender {
  private readonly bufs: (Buffer | undefined)[] = [undefined, undefined];
  private turn = 0;

  lend(size: number): Buffer {
    this.turn ^= 1;
    const b = this.bufs[this.turn];
    if (b && b.length >= size) return b;
    return (this.bufs[this.turn] = Buffer.allocUnsafeSlow(size));
  }
}

/** readContent reads files up to this size on the calling thread (see readChunkGroups' sync). */
const SYNC_READ_MAX = 1024 * 1024;

/** Reads for readContent: at most this much at once (a small file: its size and a little). */
const CONTENT_READ_MAX = 8 * 1024 * 1024;

/**
 * The file's bytes in order, each chunk verified, and their lengths checked to add up to the
 * file's size: that verifies the whole file without hashing it again (see the top of this
 * file). Used by smudge for small files. Every chunk is looked up first, at the call (one
 * read transaction): a missing one throws ChunkMissingError before any byte is given.
 * Each piece yielded is a copy the consumer may keep; with `buffers`, a view of them
 * instead, valid only until the next piece is asked for (no copy, and no buffers allocated
 * per file).
 */
export function readContent(store: ChunkStore, manifest: Manifest, buffers?: BufferLender): AsyncGenerator<Buffer> {
  const ids = [...chunkIds(manifest)];
  const located = store.locateMany(ids);
  const missing = located.findIndex((loc) => loc === undefined);
  if (missing >= 0) throw new ChunkMissingError(ids[missing]!.toString('hex'));
  return readLocated(store, manifest, ids, located, buffers);
}

async function* readLocated(store: ChunkStore, manifest: Manifest, ids: Buffer[], located: (ChunkLocation | undefined)[], buffers?: BufferLender): AsyncGenerator<Buffer> {
  // a read spans the chunks and their entry heads in the pack: room for the whole file in
  // one read when it is small (a larger group is split, so any size is correct)
  const maxRead = Math.min(CONTENT_READ_MAX, manifest.header.size + 64 * 1024);
  const lent = buffers ?? new ReadBuffers();
  const size = manifest.header.size;
  const mismatch = (what: string): DitsUserError =>
    new DitsUserError('content-mismatch', `the stored chunks of this file add up to ${what} bytes, not ${size}`, { hint: 'run `git dits fsck`' });
  let offset = 0;
  // a small file is read and hashed on this thread (no hop to a pool thread and back)
  const sync = size <= SYNC_READ_MAX;
  for await (const group of store.readChunkGroups(ids, { maxRead, buffer: () => lent.lend(maxRead + ALIGN_SLACK), ahead: sync ? 0 : 1, located, sync })) {
    for (const data of group.chunks) {
      offset += data.length;
      if (offset > size) throw mismatch('more than');
      yield buffers ? data : Buffer.from(data);
    }
  }
  if (offset !== size) throw mismatch(String(offset));
}

export interface MaterializeOptions {
  /** File mode for a new file; an existing destination keeps its mode. */
  mode?: number;
  onProgress?: (bytes: number) => void;
  /**
   * A temp file already holding this pointer's content (FileAssembler, while fetching): it
   * is renamed into place instead of writing the file again (copied when the working tree
   * is on another file system; written from the store when it is gone).
   */
  prepared?: string;
}

/** Explains a content failure in terms of the file the user asked for. */
export function contentErrorFor(displayPath: string, err: unknown): unknown {
  if (err instanceof ChunkMissingError || err instanceof ManifestMissingError) {
    return new DitsUserError('content-missing', `${displayPath}: content is not in the local store (${err.message})`, {
      hint: `fetch it with \`git dits pull -- ${displayPath}\` from a remote that has it; \`git dits fsck\` lists what is missing`,
      cause: err,
    });
  }
  if (err instanceof ChunkCorruptError) {
    return new DitsUserError('content-corrupt', `${displayPath}: ${err.message}`, { hint: err.hint, cause: err });
  }
  if (err instanceof DitsUserError) {
    return new DitsUserError(err.code, `${displayPath}: ${err.message}`, { hint: err.hint, cause: err });
  }
  return err;
}

export async function materializeFile(store: ChunkStore, pointer: Pointer, dest: string, opts: MaterializeOptions = {}): Promise<fs.BigIntStats> {
  const started = Date.now();
  const manifest = loadManifest(store, pointer);
  let mode = opts.mode ?? 0o644;
  try {
    mode = fs.statSync(dest).mode & 0o777;
  } catch {
    /* new file */
  }
  const tmp = path.join(path.dirname(dest), `.${path.basename(dest).slice(0, 100)}.dits-${randomBytes(4).toString('hex')}`);
  if (opts.prepared) {
    if (sameFileSystem(opts.prepared, path.dirname(dest))) {
      fs.chmodSync(opts.prepared, mode);
      replaceFile(opts.prepared, dest);
      opts.onProgress?.(pointer.size);
      return fs.statSync(dest, { bigint: true });
    }
    if (fs.existsSync(opts.prepared)) {
      // the working tree is on another file system than .git (no rename): copy the file
      // over (its chunks may be held only by the remote, not by the store)
      try {
        fs.copyFileSync(opts.prepared, tmp, fs.constants.COPYFILE_EXCL);
        const copied = fs.statSync(tmp).size;
        if (copied !== pointer.size) throw new DitsUserError('content-mismatch', `copying ${dest} left ${copied} bytes, not ${pointer.size}`);
        const stamp = new Date(started - 1000); // see writeContent: git must not re-read it
        fs.utimesSync(tmp, stamp, stamp);
        fs.chmodSync(tmp, mode);
        replaceFile(tmp, dest);
      } catch (err) {
        fs.rmSync(tmp, { force: true });
        if (errnoCode(err) === 'ENOSPC') throw store.diskError(err);
        throw err;
      } finally {
        fs.rmSync(opts.prepared, { force: true });
      }
      opts.onProgress?.(pointer.size);
      return fs.statSync(dest, { bigint: true });
    }
    // the prepared file is gone: write the file here instead
  }
  await writeContent(store, pointer, manifest, tmp, { mode, started, onProgress: opts.onProgress });
  fs.chmodSync(tmp, mode);
  replaceFile(tmp, dest);
  return fs.statSync(dest, { bigint: true });
}

export interface WriteContentOptions {
  /** Mode of a new file. */
  mode?: number;
  /** When the write began (ms): the file is dated a second before it (see below). */
  started: number;
  onProgress?: (bytes: number) => void;
  /** Overwrite `file` if it exists (else it must not exist). */
  replace?: boolean;
  /** Stops the write between reads (the file is removed, the signal's reason thrown). */
  signal?: AbortSignal;
}

/**
 * Writes the content a pointer names into `file`, every chunk verified (see the top of
 * this file); `manifest` is the pointer's (loadManifest). A failure removes the file.
 */
export async function writeContent(store: ChunkStore, pointer: Pointer, manifest: Manifest, file: string, opts: WriteContentOptions): Promise<void> {
  // Writes go to the disk asynchronously while the next chunks are read and verified, and
  // straight from the buffers the chunks were read into (no copy): READ_BUFFERS of them
  // are lent in turn to the store's reads, and taken back once the writes from them are done.
  const out = new PositionalWriter(fs.openSync(file, opts.replace ? 'w' : 'wx', opts.mode ?? 0o644), { bufferSize: WRITE_BUFFER_SIZE, maxInflight: WRITES_IN_FLIGHT });
  const mine = new Set<Buffer>();
  const free: Buffer[] = [];
  const written: Buffer[] = [];
  const buffer = async (): Promise<Buffer> => {
    for (;;) {
      const b = free.pop();
      if (b) return b;
      if (mine.size < READ_BUFFERS) {
        const b = Buffer.allocUnsafeSlow(READ_SIZE + ALIGN_SLACK);
        mine.add(b);
        return b;
      }
      if (written.length) {
        // Only the buffers whose writes were sent before this fence come back with it: the
        // caller may hand over more while it waits (reads run ahead), still being written.
        const done = written.splice(0);
        await out.fence(); // (a failed write is thrown by drain)
        free.push(...done);
        continue;
      }
      // all are being read into or held: wait for the caller to hand one back
      await new Promise((r) => setImmediate(r));
    }
  };
  let ok = false;
  try {
    let offset = 0;
    // Disk blocks are reserved ahead of the writes while the content is not zeros (ext4 then
    // allocates once per step, not on every write); a zero run is not written, and blocks
    // are reserved only inside a stretch of data, so a sparse file stays sparse but for at
    // most one step after each stretch.
    let reserved = 0;
    let reserving = true;
    let lastNonZero = false;
    for await (const group of store.readChunkGroups(chunkIds(manifest), { maxRead: READ_SIZE, buffer, ahead: READ_AHEAD })) {
      for (const data of group.chunks) {
        const nonZero = !isZero(data);
        if (nonZero) {
          if (reserving && lastNonZero && offset + data.length > reserved) {
            const from = Math.max(reserved, offset);
            const length = Math.min(PREALLOCATE_STEP, pointer.size - from);
            if (length > 0 && preallocate(out.fd, from, length)) reserved = from + length;
            else reserving = false;
          }
          out.writeBorrowed(data, offset);
        }
        lastNonZero = nonZero;
        offset += data.length;
      }
      if (mine.has(group.buffer)) written.push(group.buffer);
      opts.onProgress?.(offset);
      opts.signal?.throwIfAborted();
      const wait = out.backpressure();
      if (wait) await wait;
    }
    await out.drain();
    if (offset !== pointer.size) {
      throw new DitsUserError('content-mismatch', `the stored chunks of ${pointer.manifest} add up to ${offset} bytes, not ${pointer.size}`, { hint: 'run `git dits fsck`' });
    }
    fs.ftruncateSync(out.fd, offset);
    // Date the file one second before this write began. Git (built without nanosecond
    // timestamps) re-reads any file whose mtime is not older, in whole seconds, than the
    // index, through the clean filter: for a just-written 1 GiB file that would mean reading
    // it all again, or waiting for the clock before writing the index. Later edits still
    // change mtime and ctime, so nothing is missed.
    const stamp = new Date(opts.started - 1000);
    fs.futimesSync(out.fd, stamp, stamp);
    ok = true;
  } catch (err) {
    if (errnoCode(err) === 'ENOSPC') throw store.diskError(err);
    throw err;
  } finally {
    out.close(); // once no write is in flight
    if (!ok) fs.rmSync(file, { force: true });
  }
}

/** Whether a manifest and every chunk it lists are in the local store. */
export function contentPresent(store: ChunkStore, manifestId: string): boolean {
  if (!store.hasManifest(manifestId)) return false;
  let m: Manifest;
  try {
    m = Manifest.parse(store.getManifestBytes(manifestId));
  } catch {
    return false;
  }
  return chunksPresent(store, m);
}

/** Whether every chunk a manifest lists is in the local store (one read transaction: locateMany). */
export function chunksPresent(store: ChunkStore, m: Manifest): boolean {
  return store.locateMany([...chunkIds(m)]).every((loc) => loc !== undefined);
}

function sameFileSystem(a: string, b: string): boolean {
  try {
    return fs.statSync(a).dev === fs.statSync(b).dev;
  } catch {
    return false;
  }
}

/**
 * Renames `tmp` onto `dest`. When `dest` is a pointer (what Git wrote before the hook runs;
 * at most a few hundred bytes) it is removed first: ext4 starts writeback of a file renamed
 * over an existing one (auto_da_alloc), which for a just-written gigabyte held the rename
 * for a third of a second. A crash between the two steps leaves the path absent, and the
 * pointer is still in the index (`git checkout -- <path>` brings it back); a larger file
 * (real content) is replaced atomically as before.
 */
function replaceFile(tmp: string, dest: string): void {
  try {
    if (fs.lstatSync(dest).size <= MAX_POINTER_SIZE) fs.unlinkSync(dest);
  } catch {
    /* absent */
  }
  fs.renameSync(tmp, dest);
}
