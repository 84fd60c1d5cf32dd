/**
 * MemoryStorage: an ObjectStorage held in a Map, for tests and for running the whole
 * transfer pipeline without a disk or a network. Every operation is atomic because
 * JavaScript runs it between two awaits; etags are per-write generation numbers, so
 * rewriting identical bytes still changes the etag.
 */
import { Readable } from 'node:stream';
import {
  assertValidKey,
  assertValidPrefix,
  assertValidRange,
  bodyToBuffer,
  type ByteRange,
  type ListedObject,
  type ObjectInfo,
  type ObjectStorage,
  type PutBody,
  type PutIfResult,
  type VersionedObject,
} from './object-storage.js';
import { StorageError } from './storage-error.js';

interface Entry {
  data: Buffer;
  etag: string;
}

export class MemoryStorage implements ObjectStorage {
  readonly location = 'memory:';
  private readonly objects = new Map<string, Entry>();
  private generation = 0;

  async checkAccess(): Promise<void> {
    // always there
  }

  async put(key: string, body: PutBody): Promise<{ etag: string }> {
    assertValidKey(key);
    const data = await bodyToBuffer(body);
    return { etag: this.store(key, data) };
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    return Readable.from([await this.getBuffer(key, range)], { objectMode: false });
  }

  async getBuffer(key: string, range?: ByteRange): Promise<Buffer> {
    assertValidKey(key);
    assertValidRange(range);
    const entry = this.objects.get(key);
    if (!entry) throw new StorageError('storage-not-found', `No object ${key} in ${this.location}`, { key });
    if (!range) return Buffer.from(entry.data);
    if (range.start >= entry.data.length) {
      throw new StorageError('storage-bad-range', `Range ${range.start}-${range.end} starts past the end of ${key} (${entry.data.length} bytes)`, { key });
    }
    return Buffer.from(entry.data.subarray(range.start, Math.min(range.end, entry.data.length - 1) + 1));
  }

  async head(key: string): Promise<ObjectInfo | null> {
    assertValidKey(key);
    const entry = this.objects.get(key);
    return entry ? { size: entry.data.length, etag: entry.etag } : null;
  }

  async *list(prefix: string): AsyncIterable<ListedObject> {
    assertValidPrefix(prefix);
    const keys = [...this.objects.keys()].filter((k) => k.startsWith(prefix)).sort(compareKeys);
    for (const key of keys) {
      const entry = this.objects.get(key);
      if (entry) yield { key, size: entry.data.length };
    }
  }

  async delete(key: string): Promise<void> {
    assertValidKey(key);
    this.objects.delete(key);
  }

  async putIf(key: string, body: Buffer, expected: { etag: string } | 'absent'): Promise<PutIfResult> {
    assertValidKey(key);
    const current = this.objects.get(key);
    const matches = expected === 'absent' ? current === undefined : current !== undefined && current.etag === expected.etag;
    if (!matches) return { ok: false, current: current ? { etag: current.etag } : null };
    return { ok: true, etag: this.store(key, Buffer.from(body)) };
  }

  async getVersioned(key: string): Promise<VersionedObject | null> {
    assertValidKey(key);
    const entry = this.objects.get(key);
    return entry ? { body: Buffer.from(entry.data), etag: entry.etag } : null;
  }

  private store(key: string, data: Buffer): string {
    this.generation += 1;
    const etag = `m${this.generation}`;
    this.objects.set(key, { data, etag });
    return etag;
  }
}

/** Byte order of UTF-8 keys, which is the order S3 lists in. */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
