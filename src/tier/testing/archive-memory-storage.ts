/**
 * Test-only: an in-memory storage with S3's archive behaviour per key, the way AWS documents
 * it (class per key; GET of GLACIER/DEEP_ARCHIVE without a finished restore throws
 * FrozenObjectError; RestoreObject started / in-progress / restored / not-archived), with
 * counters and faults the tests set. Unit tests of the thaw plan and the server's thaw
 * routes use it; the end-to-end tests use the Glacier front in front of s3rver.
 */
import { MemoryStorage } from '../../transfer/memory-storage.js';
import { StorageError } from '../../transfer/storage-error.js';
import type { ByteRange } from '../../transfer/object-storage.js';
import { parsePackKey } from '../../remote/content/layout.js';
import { FrozenObjectError, type ObjectTierState, type RestoreRequestResult, type TierStorage, type TieredObject } from '../tier-storage.js';
import { providerProfile, type RetrievalTier } from '../tiers.js';

/** MemoryStorage with S3's archive behaviour per key: class, restores (finished by the test). */
export class ArchiveMemoryStorage extends MemoryStorage implements TierStorage {
  readonly tierProfile = providerProfile('aws');
  readonly classes = new Map<string, string>();
  readonly restores = new Map<string, { ongoing: boolean; expiry?: number }>();
  readonly counts = { restores: 0, restoreCalls: 0, heads: 0 };
  /** answers the next restores of these keys with an error */
  readonly refuse = new Set<string>();
  /** after this many more restore calls, every call fails as a cut network */
  cutAfter = Infinity;

  private archived(key: string): boolean {
    const c = this.classes.get(key);
    return c === 'GLACIER' || c === 'DEEP_ARCHIVE';
  }

  override async getBuffer(key: string, range?: ByteRange): Promise<Buffer> {
    if (this.archived(key) && this.restores.get(key)?.ongoing !== false) throw new FrozenObjectError(key, this.classes.get(key));
    return super.getBuffer(key, range);
  }

  async *listTiered(prefix: string): AsyncIterable<TieredObject> {
    for await (const o of this.list(prefix)) yield { key: o.key, size: o.size, lastModified: 0, storageClass: this.classes.get(o.key) ?? 'STANDARD' };
  }

  async tierState(key: string): Promise<ObjectTierState | null> {
    this.counts.heads++;
    const h = await this.head(key);
    if (!h) return null;
    const r = this.restores.get(key);
    return { size: h.size, storageClass: this.classes.get(key) ?? 'STANDARD', restore: r ? { ...r } : null };
  }

  async setStorageClass(key: string, storageClass: string): Promise<void> {
    this.classes.set(key, storageClass);
  }

  async requestRestore(key: string, _opts: { days: number; tier: RetrievalTier }): Promise<RestoreRequestResult> {
    this.counts.restoreCalls++;
    if (this.cutAfter-- <= 0) throw new StorageError('storage-network', `connection reset while asking ${key}`, { retryable: true });
    if (this.refuse.has(key)) throw new StorageError('storage-access-denied', `Access Denied for ${key}`, { status: 403 });
    if (!this.archived(key)) return 'not-archived';
    const r = this.restores.get(key);
    if (r?.ongoing) return 'in-progress';
    if (r) return 'restored';
    this.counts.restores++;
    this.restores.set(key, { ongoing: true });
    return 'started';
  }

  finishRestores(expiry = Date.UTC(2030, 0, 1)): void {
    for (const [k, r] of this.restores) if (r.ongoing) this.restores.set(k, { ongoing: false, expiry });
  }

  freezeAllPacks(cls = 'GLACIER'): void {
    for (const key of this.keys()) if (parsePackKey(key)?.kind === 'pack') this.classes.set(key, cls);
  }

  keys(): string[] {
    return [...(this as unknown as { objects: Map<string, unknown> }).objects.keys()];
  }
}

