/**
 * MemoryTierStorage (test-only): MemoryStorage with storage classes, upload times from the
 * storage's own clock (settable, so a test can make the storage's clock and the client's
 * differ), in-place class changes that stamp a new LastModified as S3's CopyObject does,
 * and archive classes whose GET throws FrozenObjectError until restored. For the
 * planner/reaper tests that need no network; the S3 behaviour itself is tested against
 * the Glacier front (testing/glacier-front.ts) in front of s3rver.
 */
import type { Readable } from 'node:stream';
import { MemoryStorage } from '../../transfer/memory-storage.js';
import type { ByteRange, ListedObject, PutBody, PutOptions } from '../../transfer/object-storage.js';
import { FrozenObjectError, type ObjectTierState, type RestoreRequestResult, type TieredObject, type TierStorage } from '../tier-storage.js';
import { DEFAULT_CLASS, providerProfile, type ProviderName, type ProviderProfile, type RetrievalTier } from '../tiers.js';

export class MemoryTierStorage extends MemoryStorage implements TierStorage {
  readonly tierProfile: ProviderProfile;
  /** the storage's clock (ms); tests move it */
  clock: number;
  readonly meta = new Map<string, { storageClass: string; lastModified: number; restoredUntil?: number }>();
  readonly counts = { puts: 0, copies: 0, deletes: 0, restores: 0, gets: 0 };

  constructor(opts: { provider?: ProviderName; clock?: number } = {}) {
    super();
    this.tierProfile = providerProfile(opts.provider ?? 'aws');
    this.clock = opts.clock ?? Date.now();
  }

  override async put(key: string, body: PutBody, opts?: PutOptions): Promise<{ etag: string }> {
    void opts;
    const r = await super.put(key, body);
    this.counts.puts++;
    this.meta.set(key, { storageClass: DEFAULT_CLASS, lastModified: this.clock });
    return r;
  }

  override async delete(key: string): Promise<void> {
    this.counts.deletes++;
    this.meta.delete(key);
    return super.delete(key);
  }

  private frozenCheck(key: string): void {
    const m = this.meta.get(key);
    if (m && this.tierProfile.archive.has(m.storageClass) && !(m.restoredUntil !== undefined && m.restoredUntil > this.clock)) {
      throw new FrozenObjectError(key, m.storageClass);
    }
  }

  override async getBuffer(key: string, range?: ByteRange): Promise<Buffer> {
    this.counts.gets++;
    this.frozenCheck(key);
    return super.getBuffer(key, range);
  }

  override async get(key: string, range?: ByteRange): Promise<Readable> {
    this.frozenCheck(key);
    return super.get(key, range);
  }

  async *listTiered(prefix: string): AsyncIterable<TieredObject> {
    for await (const o of this.list(prefix)) {
      const m = this.meta.get(o.key);
      yield { key: o.key, size: o.size, lastModified: m?.lastModified ?? this.clock, storageClass: m?.storageClass ?? DEFAULT_CLASS };
    }
  }

  override async *list(prefix: string): AsyncIterable<ListedObject> {
    yield* super.list(prefix);
  }

  async tierState(key: string): Promise<ObjectTierState | null> {
    const h = await this.head(key);
    if (!h) return null;
    const m = this.meta.get(key)!;
    const restore = m.restoredUntil === undefined ? null : { ongoing: false, expiry: m.restoredUntil };
    return { size: h.size, storageClass: m.storageClass, restore };
  }

  async setStorageClass(key: string, storageClass: string): Promise<void> {
    const m = this.meta.get(key);
    if (!m) throw new Error(`no object ${key}`);
    if (!this.tierProfile.known.includes(storageClass)) throw new Error(`unknown class ${storageClass}`);
    this.counts.copies++;
    m.storageClass = storageClass;
    m.lastModified = this.clock; // CopyObject writes a new object version
  }

  async requestRestore(key: string, opts: { days: number; tier: RetrievalTier }): Promise<RestoreRequestResult> {
    const m = this.meta.get(key);
    if (!m) throw new Error(`no object ${key}`);
    if (!this.tierProfile.archive.has(m.storageClass)) return 'not-archived';
    if (m.restoredUntil !== undefined && m.restoredUntil > this.clock) return 'restored';
    this.counts.restores++;
    m.restoredUntil = this.clock + opts.days * 86_400_000;
    return 'started';
  }

  /** Every key with its class (for before/after comparisons). */
  snapshot(): Map<string, string> {
    return new Map([...this.meta].map(([k, m]) => [k, m.storageClass]));
  }
}
