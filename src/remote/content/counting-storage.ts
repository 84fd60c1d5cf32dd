/**
 * CountingStorage: passes every call through to another ObjectStorage and counts the
 * requests, so push and fetch can report what they cost. A `list` counts one request per
 * page of `listPageSize` keys (S3 pages at 1000); a `put` counts one request, plus the parts
 * of a multipart upload when `multipart` says how the storage splits large bodies (the
 * storage does the splitting; this is the same arithmetic).
 */
import type { Readable } from 'node:stream';
import type {
  ByteRange,
  ListedObject,
  ObjectInfo,
  ObjectStorage,
  PutBody,
  PutIfResult,
  PutOptions,
  VersionedObject,
} from '../../transfer/object-storage.js';

export interface MultipartShape {
  /** bodies larger than this go multipart */
  thresholdBytes: number;
  partBytes: number;
}

/** S3Storage's defaults (partSize 32 MiB, threshold 64 MiB). */
export const S3_DEFAULT_MULTIPART: MultipartShape = { thresholdBytes: 64 * 1024 * 1024, partBytes: 32 * 1024 * 1024 };

/** The multipart shape to assume for a storage: S3's defaults for s3:// locations, else none. */
export function defaultMultipartShape(storage: ObjectStorage): MultipartShape | null {
  return storage.location.startsWith('s3://') ? S3_DEFAULT_MULTIPART : null;
}

/** Requests one PUT of `size` bytes costs: 1, or create + parts + complete when multipart. */
export function putRequests(size: number, multipart: MultipartShape | null): number {
  if (!multipart || size <= multipart.thresholdBytes) return 1;
  return Math.ceil(size / multipart.partBytes) + 2;
}

export class CountingStorage implements ObjectStorage {
  readonly location: string;
  requests = 0;
  bytesUp = 0;

  constructor(
    readonly inner: ObjectStorage,
    private readonly multipart: MultipartShape | null = defaultMultipartShape(inner),
    private readonly listPageSize = 1000,
  ) {
    this.location = inner.location;
  }

  async put(key: string, body: PutBody, opts?: PutOptions): Promise<{ etag: string }> {
    const size = opts?.size ?? (Buffer.isBuffer(body) ? body.length : 0);
    this.requests += putRequests(size, this.multipart);
    const r = await this.inner.put(key, body, opts);
    this.bytesUp += size;
    return r;
  }

  get(key: string, range?: ByteRange): Promise<Readable> {
    this.requests++;
    return this.inner.get(key, range);
  }

  getBuffer(key: string, range?: ByteRange): Promise<Buffer> {
    this.requests++;
    return this.inner.getBuffer(key, range);
  }

  head(key: string): Promise<ObjectInfo | null> {
    this.requests++;
    return this.inner.head(key);
  }

  async *list(prefix: string): AsyncIterable<ListedObject> {
    this.requests++;
    let n = 0;
    for await (const o of this.inner.list(prefix)) {
      if (++n % this.listPageSize === 0) this.requests++;
      yield o;
    }
  }

  delete(key: string): Promise<void> {
    this.requests++;
    return this.inner.delete(key);
  }

  putIf(key: string, body: Buffer, expected: { etag: string } | 'absent'): Promise<PutIfResult> {
    this.requests++;
    return this.inner.putIf(key, body, expected);
  }

  getVersioned(key: string): Promise<VersionedObject | null> {
    this.requests++;
    return this.inner.getVersioned(key);
  }
}
