/**
 * What a storage must offer for tiers: the class of each object, an in-place class change,
 * restores and their state. S3Storage implements it over the S3 API (CopyObject onto
 * itself with a new StorageClass, UploadPartCopy past 5 GiB, RestoreObject, HEAD's
 * `x-amz-restore`); TieredFolderStorage (tier-folders.ts) over a folder per tier. Other
 * storages (memory, a Dits server seen from a client) have no tiers of their own:
 * `tierStorageOf` answers null for them.
 *
 * Rules every implementation keeps (the tier tests check them):
 * - a class change never re-uploads through this machine and never deletes an object:
 *   the key answers the same bytes before, during and after (object count unchanged);
 * - a GET of an object in an archive class without a finished restore throws
 *   `FrozenObjectError` (code `storage-frozen`), never a timeout or partial bytes;
 * - `requestRestore` of an object whose restore is running or finished does not start
 *   (or pay for) another one.
 */
import type { ObjectStorage } from '../transfer/object-storage.js';
import { StorageError } from '../transfer/storage-error.js';
import type { ProviderProfile, RetrievalTier } from './tiers.js';

export interface TieredObject {
  key: string;
  size: number;
  /** Upload time (S3 LastModified, a file's mtime), ms since epoch. */
  lastModified: number;
  /** The provider's class name ('STANDARD' when the listing omits it). */
  storageClass: string;
}

export interface RestoreState {
  /** true while the restore runs */
  ongoing: boolean;
  /** when the restored copy goes away (finished restores only), ms since epoch */
  expiry?: number;
}

export interface ObjectTierState {
  size: number;
  storageClass: string;
  /** null: no restore requested (or the restored copy expired) */
  restore: RestoreState | null;
}

export type RestoreRequestResult =
  /** a new restore was started (and is paid for) */
  | 'started'
  /** one is already running: nothing new was asked (S3 409 RestoreAlreadyInProgress) */
  | 'in-progress'
  /** a restored copy exists: its expiry was extended at most (S3 200) */
  | 'restored'
  /** the object is not in an archive class: it can be read now */
  | 'not-archived';

export interface TierStorage {
  readonly tierProfile: ProviderProfile;
  /** Like ObjectStorage.list, with class and upload time. */
  listTiered(prefix: string): AsyncIterable<TieredObject>;
  /** HEAD: size, class and restore state; null when the object does not exist. */
  tierState(key: string): Promise<ObjectTierState | null>;
  /**
   * Moves `key` to `storageClass` in place. `size` (known from the listing) chooses
   * UploadPartCopy over CopyObject past 5 GiB on S3. Throws when the provider refuses;
   * afterwards the object has the same size and id as before.
   */
  setStorageClass(key: string, storageClass: string, opts: { size: number }): Promise<void>;
  requestRestore(key: string, opts: { days: number; tier: RetrievalTier }): Promise<RestoreRequestResult>;
  /** Object tags, for lifecycle-rule mode (S3 only; absent elsewhere). */
  setTags?(key: string, tags: Record<string, string>): Promise<void>;
}

export function tierStorageOf(storage: ObjectStorage): (ObjectStorage & TierStorage) | null {
  const s = storage as Partial<TierStorage>;
  // `in`, not a read: S3Storage computes its profile on first read, and a bad
  // dits.tier.class setting must fail tier work, not the question "has it tiers?"
  return typeof s.listTiered === 'function' && typeof s.setStorageClass === 'function' && 'tierProfile' in s
    ? (storage as ObjectStorage & TierStorage)
    : null;
}

export const FROZEN_CODE = 'storage-frozen';

/** A read of an object that rests in an archive class without a finished restore. */
export class FrozenObjectError extends StorageError {
  readonly storageClass: string | undefined;
  constructor(key: string, storageClass?: string, opts: { cause?: unknown; status?: number } = {}) {
    super(FROZEN_CODE, `${key} is frozen${storageClass ? ` (${storageClass})` : ''}: it must be restored before it can be read`, {
      key,
      hint: 'see what a restore costs and start it with `git dits thaw <path>`',
      retryable: false,
      cause: opts.cause,
      status: opts.status ?? 403,
    });
    this.name = 'FrozenObjectError';
    this.storageClass = storageClass;
  }
}

export function isFrozenError(err: unknown): err is StorageError {
  return err instanceof StorageError && err.code === FROZEN_CODE;
}
