/**
 * Where a mount finds content the machine lacks: the repository's Dits remotes, opened on
 * first need (a mount of local content never touches the network), asked in order (the
 * default remote first), and for each file version a RemoteFileReader (openRemoteFile:
 * verified ranged reads of pack ranges) kept while the file is in use.
 */
import { hashHex } from '../hashing/blake3.js';
import { DitsUserError } from '../errors.js';
import { manifestKey } from '../remote/content/layout.js';
import { openRemoteFile, RemoteContentNotReadyError, type RemoteFileReader } from '../remote/content/remote-file-reader.js';
import type { ObjectStorage } from '../transfer/object-storage.js';
import { StorageError } from '../transfer/storage-error.js';

export interface NamedStorage {
  name: string;
  storage: ObjectStorage;
}

export interface RemoteSourceOptions {
  /** Verified pack indexes kept here between files and mounts. */
  indexCacheDir?: string;
  /** Largest ranged GET (default: openRemoteFile's 8 MiB). */
  maxRangeBytes?: number;
  /** Where a reader says it did not use a file's location table (a debug line). */
  log?: (line: string) => void;
}

export class RemoteSource {
  private storages: Promise<NamedStorage[]> | null = null;

  constructor(
    private readonly openStorages: () => Promise<NamedStorage[]>,
    private readonly opts: RemoteSourceOptions = {},
  ) {}

  private remotes(): Promise<NamedStorage[]> {
    if (!this.storages) {
      this.storages = this.openStorages();
      this.storages.catch(() => (this.storages = null)); // asked again on the next read
    }
    return this.storages;
  }

  /** True when the repository has at least one Dits remote. */
  async any(): Promise<boolean> {
    return (await this.remotes()).length > 0;
  }

  /** The bytes of manifest `id` from the first remote that has it, verified against the id. */
  async manifest(id: string): Promise<Buffer> {
    const remotes = await this.remotes();
    let lastErr: unknown = null;
    for (const r of remotes) {
      try {
        const bytes = await r.storage.getBuffer(manifestKey(id));
        if (hashHex(bytes) !== id) {
          lastErr = new DitsUserError('remote-manifest-corrupt', `manifest ${id} on ${r.name} is corrupt (its bytes do not match its id)`);
          continue;
        }
        return bytes;
      } catch (err) {
        if (err instanceof StorageError && err.code === 'storage-not-found') continue;
        lastErr = err;
      }
    }
    if (lastErr) throw lastErr;
    throw new DitsUserError('content-not-found', `manifest ${id} is on no Dits remote of this repository${remotes.length ? ` (asked ${remotes.map((r) => r.name).join(', ')})` : ' (it has none)'}`, {
      hint: 'push it from a machine that has the file, or add the remote that holds it (`git remote add <name> dits::<url>`)',
    });
  }

  /** A reader of file version `manifestId` on the first remote that holds all of it (`manifestBytes`: already had, verified). */
  async open(manifestId: string, manifestBytes?: Buffer): Promise<RemoteFileReader> {
    const remotes = await this.remotes();
    let lastErr: unknown = null;
    for (const r of remotes) {
      try {
        // early: a big manifest is used from its first 4 MiB on (its leaves in the location table)
        return await openRemoteFile(r.storage, manifestId, { indexCacheDir: this.opts.indexCacheDir, cacheBytes: 0, maxRangeBytes: this.opts.maxRangeBytes, early: manifestBytes === undefined, manifestBytes, log: this.opts.log });
      } catch (err) {
        lastErr = err;
        if (err instanceof RemoteContentNotReadyError) continue;
        if (err instanceof StorageError && err.code === 'storage-not-found') continue;
        throw err;
      }
    }
    if (lastErr) throw lastErr;
    throw new DitsUserError('content-not-found', `the content of manifest ${manifestId} is not here and this repository has no Dits remote`, {
      hint: 'add the remote that holds it (`git remote add <name> dits::<url>`)',
    });
  }
}
