/**
 * FlakyStorage: fault injection for tests. Wraps a real ObjectStorage and, before each
 * call, asks the test's `plan` what to do with it: pass it through, fail it with the error
 * a real back end would raise (503 SlowDown, a reset connection, ...), break a download
 * stream midway, or flip a byte of a download. The plan sees every call, numbered, so a
 * test states its faults explicitly ("the first 5 puts get a 503").
 */
import { pipeline, Transform, type Readable } from 'node:stream';
import type {
  ByteRange,
  ListedObject,
  ObjectInfo,
  ObjectStorage,
  PutBody,
  PutIfResult,
  PutOptions,
  VersionedObject,
} from '../object-storage.js';
import { StorageError } from '../storage-error.js';

export type StorageOp = 'put' | 'get' | 'head' | 'list' | 'delete' | 'putIf' | 'getVersioned';

export interface StorageCall {
  op: StorageOp;
  key: string;
  /** 1-based count of calls so far, all operations together */
  n: number;
  /** 1-based count of calls of this op */
  nOfOp: number;
}

export type Fault =
  | { kind: 'pass' }
  | { kind: 'fail'; error: Error }
  /** the stream of a get errors with ECONNRESET after this many bytes */
  | { kind: 'break-stream'; afterBytes: number }
  /** one byte of a get's data is flipped */
  | { kind: 'corrupt'; atByte?: number };

export type FaultPlan = (call: StorageCall) => Fault;

/** The error S3 gives when throttling or briefly down (HTTP 503 SlowDown). */
export function slowDownError(key: string): StorageError {
  return new StorageError('storage-unavailable', `S3 endpoint (injected) failed on ${key}: SlowDown (HTTP 503)`, {
    key,
    status: 503,
    retryable: true,
    hint: 'The storage is busy or failing; re-run later, completed transfers are not repeated.',
  });
}

/** A dropped connection as Node reports it (not wrapped: the queue must classify it). */
export function connectionResetError(): Error {
  return Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
}

export class FlakyStorage implements ObjectStorage {
  readonly location: string;
  calls: StorageCall[] = [];
  private readonly perOp = new Map<StorageOp, number>();

  constructor(
    readonly inner: ObjectStorage,
    public plan: FaultPlan = () => ({ kind: 'pass' }),
  ) {
    this.location = inner.location;
  }

  private decide(op: StorageOp, key: string): Fault {
    const nOfOp = (this.perOp.get(op) ?? 0) + 1;
    this.perOp.set(op, nOfOp);
    const call = { op, key, n: this.calls.length + 1, nOfOp };
    this.calls.push(call);
    const fault = this.plan(call);
    if (fault.kind === 'fail') throw fault.error;
    return fault;
  }

  async checkAccess(): Promise<void> {
    await this.inner.checkAccess?.();
  }

  async put(key: string, body: PutBody, opts?: PutOptions): Promise<{ etag: string }> {
    this.decide('put', key);
    return this.inner.put(key, body, opts);
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    const fault = this.decide('get', key);
    const stream = await this.inner.get(key, range);
    if (fault.kind === 'break-stream') return breakAfter(stream, fault.afterBytes);
    if (fault.kind === 'corrupt') return corruptAt(stream, fault.atByte ?? 0);
    return stream;
  }

  async getBuffer(key: string, range?: ByteRange): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const part of await this.get(key, range)) parts.push(part as Buffer);
    return Buffer.concat(parts);
  }

  async head(key: string): Promise<ObjectInfo | null> {
    this.decide('head', key);
    return this.inner.head(key);
  }

  async *list(prefix: string): AsyncIterable<ListedObject> {
    this.decide('list', prefix);
    yield* this.inner.list(prefix);
  }

  async delete(key: string): Promise<void> {
    this.decide('delete', key);
    return this.inner.delete(key);
  }

  async putIf(key: string, body: Buffer, expected: { etag: string } | 'absent'): Promise<PutIfResult> {
    this.decide('putIf', key);
    return this.inner.putIf(key, body, expected);
  }

  async getVersioned(key: string): Promise<VersionedObject | null> {
    this.decide('getVersioned', key);
    return this.inner.getVersioned(key);
  }
}

function breakAfter(source: Readable, afterBytes: number): Readable {
  let seen = 0;
  const out = new Transform({
    transform(chunk: Buffer, _enc, done) {
      if (seen + chunk.length > afterBytes) {
        const keep = chunk.subarray(0, Math.max(0, afterBytes - seen));
        seen = afterBytes;
        if (keep.length > 0) this.push(keep);
        source.destroy();
        done(connectionResetError());
        return;
      }
      seen += chunk.length;
      done(null, chunk);
    },
  });
  return relay(source, out);
}

function corruptAt(source: Readable, atByte: number): Readable {
  let seen = 0;
  const out = new Transform({
    transform(chunk: Buffer, _enc, done) {
      if (atByte >= seen && atByte < seen + chunk.length) {
        const copy = Buffer.from(chunk);
        copy[atByte - seen] ^= 0xff;
        chunk = copy;
      }
      seen += chunk.length;
      done(null, chunk);
    },
  });
  return relay(source, out);
}

/**
 * source piped into `out` with stream.pipeline, which ends each with the other: a reader
 * that gives `out` up (destroys it, as the remote readers do on a corrupt chunk) closes the
 * source too, and with it the file a FileStorage stream holds open (pipe() left it open
 * until a garbage collection). The reader sees every error on `out` itself.
 */
function relay(source: Readable, out: Transform): Readable {
  return pipeline(source, out, () => {});
}
