/**
 * ObjectStorage: the one interface every remote back end implements (local directory,
 * S3, in-memory; later the Dits server). Keys are '/'-separated strings relative to the
 * storage's root or prefix, such as `v1/objects/ab/cdef...`.
 *
 * Contract (checked by test/transfer/storage-contract.ts on every implementation):
 * - `put` is atomic: a reader sees the old object, no object, or the whole new one,
 *   never a half-written one. A streaming body is a factory so a retry can re-open it;
 *   the storage calls it at most once per `put` and consumes the stream fully or destroys it.
 * - `get` returns a stream the caller owns (read it to the end or destroy it). A range is
 *   inclusive at both ends like HTTP; an end past the object is clamped; a start at or past
 *   the end of the object is an error (`storage-bad-range`).
 * - a missing object: `get`/`getBuffer` throw StorageError `storage-not-found`; `head` and
 *   `getVersioned` return null; `delete` succeeds (idempotent).
 * - `list(prefix)` yields every key that starts with `prefix` (a plain string prefix, not a
 *   folder), paging internally. Memory, file and AWS S3 yield ascending byte order, but
 *   some S3-compatible servers do not (s3rver lists folders depth-first): sort if it matters.
 * - Versioned objects (refs): written only with `putIf` and read only with `getVersioned`.
 *   `putIf` is a compare-and-swap: it writes only if the current etag equals the expected
 *   one (or the object is absent when 'absent' is expected); of N concurrent `putIf` calls
 *   with the same expectation exactly one returns ok. Back ends without conditional writes
 *   keep versioned objects in another form (see cas-log.ts), so never read them with
 *   `get`/`head`/`list`, nor write them with `put`.
 * - etags are opaque strings; compare them only for equality, and only etags of one key.
 * - A key may not also be a folder of other keys (`a/b` and `a/b/c` cannot both exist, as
 *   with git refs): file systems cannot hold both. Back ends that can may allow it; others
 *   refuse with storage-key-conflict. Callers keep their layouts free of such pairs.
 * - Segments starting with `.dits-` are reserved for the storage's own bookkeeping
 *   (temp files, locks, CAS logs) and rejected in keys.
 */
import { Transform, type Readable } from 'node:stream';
import { StorageError } from './storage-error.js';

export interface ByteRange {
  start: number;
  /** inclusive */
  end: number;
}

export type PutBody = Buffer | (() => Readable);

export interface PutOptions {
  /** Size in bytes when known; lets S3 stream a single PUT without buffering. */
  size?: number;
  contentType?: string;
}

export interface ObjectInfo {
  size: number;
  etag: string;
}

export interface ListedObject {
  key: string;
  size: number;
  /**
   * The provider's storage class when the listing tells it (S3: STANDARD, GLACIER, ...;
   * a tier folder storage: the tier). Absent where a storage has no classes.
   */
  storageClass?: string;
}

export type PutIfResult = { ok: true; etag: string } | { ok: false; current: { etag: string } | null };

export interface VersionedObject {
  body: Buffer;
  etag: string;
}

export interface ObjectStorage {
  /** Human-readable location for messages, e.g. `s3://bucket/prefix` or a directory. */
  readonly location: string;
  /**
   * Checks that the storage exists and is reachable with these credentials (a bucket that
   * exists, a root folder that exists); throws a StorageError saying what to do. Call it
   * before treating an empty listing as "empty remote", so a typo is not a new remote.
   * Optional so wrappers written before it existed still type-check; every back end here
   * implements it.
   */
  checkAccess?(): Promise<void>;
  put(key: string, body: PutBody, opts?: PutOptions): Promise<{ etag: string }>;
  get(key: string, range?: ByteRange): Promise<Readable>;
  getBuffer(key: string, range?: ByteRange): Promise<Buffer>;
  head(key: string): Promise<ObjectInfo | null>;
  list(prefix: string): AsyncIterable<ListedObject>;
  delete(key: string): Promise<void>;
  /** Compare-and-swap for small versioned objects (refs). */
  putIf(key: string, body: Buffer, expected: { etag: string } | 'absent'): Promise<PutIfResult>;
  /** The read side of putIf: body and etag of one version, read atomically; null if absent. */
  getVersioned(key: string): Promise<VersionedObject | null>;
  /**
   * Optional: does now what a first `putIf` of `key` would do before writing (S3 without a
   * recorded compare-and-swap mode probes the service and records the mode), so a caller
   * can overlap it with other work, such as a push with its content upload.
   */
  prepareVersioned?(key: string): Promise<void>;
  /**
   * Optional: `get` for a reader that copies what it keeps (the mount's remote reads): the
   * body in pieces the storage may use again once each is taken (see PieceSink), so a
   * gigabyte read is not a gigabyte of new buffers. Errors as `get`'s (a StorageError
   * from the open; a body cut off rejects pipe()). Callers use openPieces(), which falls
   * back to `get`.
   */
  openPieces?(key: string, range?: ByteRange): Promise<PieceReader>;
}

/**
 * Takes one piece of a body: valid only until the sink returns, or, when it returns a
 * promise, until that settles (no more pieces come meanwhile). `false` (returned or
 * resolved): no more is wanted.
 */
export type PieceSink = (piece: Buffer) => void | boolean | Promise<void | boolean>;

/** An object's body to be taken in pieces (ObjectStorage.openPieces). */
export interface PieceReader {
  /**
   * The body to `sink`, piece by piece; resolves once all of it went (or the sink said
   * stop), rejects when the answer breaks off or the sink throws. Call once.
   */
  pipe(sink: PieceSink): Promise<void>;
  /** Gives the body up (nothing once pipe() has finished). */
  cancel(): void;
}

/** The body of `key` in pieces: the storage's openPieces when it has one, else its get() stream. */
export async function openPieces(storage: ObjectStorage, key: string, range?: ByteRange): Promise<PieceReader> {
  if (storage.openPieces) return storage.openPieces(key, range);
  return piecesOfStream(await storage.get(key, range));
}

/** A body stream as a PieceReader (each piece is the stream's own buffer; the stream is destroyed at the end). */
export function piecesOfStream(body: Readable): PieceReader {
  return {
    pipe(sink) {
      return new Promise<void>((resolve, reject) => {
        let settled = false;
        let ended = false;
        let waiting = false;
        let closed = false;
        const finish = (err?: unknown): void => {
          if (settled) return;
          settled = true;
          body.destroy();
          if (err === undefined) resolve();
          else reject(err);
        };
        // events, not async iteration: a promise per piece costs more than the piece's work
        body.on('data', (piece: Buffer) => {
          if (settled) return;
          let r: ReturnType<PieceSink>;
          try {
            r = sink(piece);
          } catch (err) {
            finish(err);
            return;
          }
          if (r instanceof Promise) {
            waiting = true;
            body.pause();
            r.then((v) => {
              waiting = false;
              if (v === false || ended) finish();
              else if (closed) finish(new Error('the answer ended early'));
              else body.resume();
            }, finish);
          } else if (r === false) finish();
        });
        body.once('end', () => {
          ended = true;
          if (!waiting) finish();
        });
        body.once('error', (err: unknown) => finish(err));
        body.once('close', () => {
          closed = true;
          if (!ended && !waiting) finish(new Error('the answer ended early'));
        });
      });
    },
    cancel() {
      body.destroy();
    },
  };
}

const RESERVED_SEGMENT = /^\.dits-/;

/** Throws storage-bad-key unless `key` is a clean relative '/'-separated key. */
export function assertValidKey(key: string): void {
  const bad = (why: string): never => {
    throw new StorageError('storage-bad-key', `Invalid object key ${JSON.stringify(key)}: ${why}`, { key });
  };
  if (typeof key !== 'string' || key.length === 0) bad('empty');
  if (key.length > 900) bad('longer than 900 characters');
  if (key.includes('\\') || key.includes('\0')) bad('contains a backslash or NUL');
  for (const segment of key.split('/')) {
    if (segment === '') bad('empty segment (leading, trailing or double slash)');
    if (segment === '.' || segment === '..') bad('"." or ".." segment');
    if (RESERVED_SEGMENT.test(segment)) bad('segments starting with ".dits-" are reserved');
  }
}

/** Validates a list prefix: like a key, but may be empty and may end with '/'. */
export function assertValidPrefix(prefix: string): void {
  if (prefix === '') return;
  const trimmed = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  // a prefix may end inside a segment ("v1/objects/a"), so validate what is complete
  if (trimmed !== '') assertValidKey(trimmed);
}

/** The one check of a requested byte range (inclusive ends), for every back end. */
export function assertValidRange(range: ByteRange | undefined, key?: string): void {
  if (range === undefined) return;
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
    throw new StorageError('storage-bad-range', `Invalid byte range ${start}-${end}${key === undefined ? '' : ` for ${key}`}`, key === undefined ? {} : { key });
  }
}

/**
 * Bytes start..end (inclusive, counted from the stream's first byte) of `source`: what a
 * back end hands out when its server answered more than the range asked for (a Range
 * ignored, or s3rver answering "bytes=0-0" with the whole object). Stops reading, and
 * destroys `source`, once past `end`; an error of `source` is the result's error.
 */
export function sliceStream(source: Readable, start: number, end: number): Readable {
  let offset = 0;
  const out = new Transform({
    transform(chunk: Buffer, _enc, done) {
      const from = Math.max(start - offset, 0);
      const to = Math.min(end + 1 - offset, chunk.length);
      offset += chunk.length;
      if (to > from) this.push(chunk.subarray(from, to));
      if (offset > end) {
        source.unpipe(out);
        source.destroy();
        this.push(null);
      }
      done();
    },
  });
  source.on('error', (err) => out.destroy(err));
  return source.pipe(out);
}

/** Reads a whole stream into one Buffer (for small objects and tests). */
export async function readStreamToBuffer(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(typeof part === 'string' ? Buffer.from(part) : (part as Buffer));
  return Buffer.concat(parts);
}

/** Materialises a PutBody as a Buffer (back ends that must hold the bytes anyway). */
export async function bodyToBuffer(body: PutBody): Promise<Buffer> {
  return Buffer.isBuffer(body) ? body : readStreamToBuffer(body());
}
