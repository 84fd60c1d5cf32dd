/**
 * Where the server keeps each repository's objects: one ObjectStorage per repository.
 *
 * - default: `FileStorage(<dataDir>/repos/<owner>/<name>)`, the folder created on first use;
 * - `storage: 's3://bucket/prefix'`: `S3Storage` with prefix `<prefix>/<owner>/<name>`
 *   (S3 settings from the AWS SDK's usual sources, or `s3` options passed in).
 *
 * Storages are opened lazily and kept for the life of the backend (they hold no open
 * files between calls). Repository names are validated by the routes before they get here.
 *
 * Direct transfers: over S3 the backend presigns GETs and PUTs of single objects, so
 * clients move pack bytes to and from S3 themselves and the server only coordinates.
 * `presign` answers null where it cannot (a folder back end, `direct: false`, a PUT over
 * S3's single-PUT limit); the client then goes through the server's own routes.
 */
import { mkdir } from 'node:fs/promises';
import * as path from 'node:path';
import type { ObjectStorage } from '../src/transfer/object-storage.js';
import type { PresignedRequest, PresignOptions } from '../src/transfer/s3-storage.js';
import { openStorage, parseStorageUrl, type OpenStorageOptions } from '../src/transfer/storage-url.js';

export interface StorageBackend {
  /** Human-readable description for logs: a folder or an s3:// URL. */
  readonly location: string;
  /** The storage of repository `owner/name`. */
  forRepo(repoName: string): Promise<ObjectStorage>;
  /** True when `presign` can answer (S3 behind, direct transfers on). */
  readonly direct: boolean;
  /**
   * A presigned request for one GET or PUT of `key` in repository `repoName`, or null when
   * this backend cannot hand one out (the caller then proxies the bytes). `size` is
   * required for 'put'. The caller has checked the token and role.
   */
  presign(repoName: string, op: 'get' | 'put', key: string, opts?: { size?: number }): Promise<PresignedRequest | null>;
}

/** S3's largest single PUT (5 GiB); bigger bodies go through the server (multipart). */
export const MAX_PRESIGNED_PUT_BYTES = 5 * 1024 ** 3;

/** Default validity of presigned URLs: long enough for a 256 MiB pack on a slow line. */
export const DEFAULT_PRESIGN_EXPIRES_SECONDS = 15 * 60;

interface Presigning {
  presign(op: 'get' | 'put', key: string, opts?: PresignOptions): Promise<PresignedRequest>;
}

function canPresign(storage: ObjectStorage): storage is ObjectStorage & Presigning {
  return typeof (storage as Partial<Presigning>).presign === 'function';
}

export interface StorageBackendOptions {
  dataDir: string;
  /** `s3://bucket/prefix`; absent means files under `<dataDir>/repos/`. */
  storage?: string;
  s3?: OpenStorageOptions['s3'];
  file?: OpenStorageOptions['file'];
  /** Hand out presigned URLs when S3 is behind (default true); false: every byte through the server. */
  direct?: boolean;
  presignExpiresInSeconds?: number;
  /** Clock for presigned URLs' signing time (tests). */
  clock?: () => Date;
}

/**
 * S3 settings for the server's back end from an environment (main.ts passes process.env):
 * `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` for S3-compatible servers (then path-style
 * addressing); region, credentials and profile come from the SDK's usual chain.
 */
export function s3OptionsFromEnv(env: NodeJS.ProcessEnv): NonNullable<OpenStorageOptions['s3']> {
  const endpoint = env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL;
  return endpoint === undefined || endpoint === '' ? {} : { endpoint, forcePathStyle: true };
}

export function createStorageBackend(options: StorageBackendOptions): StorageBackend {
  const opened = new Map<string, Promise<ObjectStorage>>();
  let open: (repoName: string) => Promise<ObjectStorage>;
  let location: string;
  if (options.storage === undefined) {
    const reposDir = path.resolve(options.dataDir, 'repos');
    location = reposDir;
    open = async (repoName) => {
      const root = path.join(reposDir, ...repoName.split('/'));
      await mkdir(root, { recursive: true });
      return openStorage(root, { file: options.file });
    };
  } else {
    const parsed = parseStorageUrl(options.storage);
    if (parsed.kind !== 's3') throw new Error(`server storage must be an s3:// URL, not ${options.storage}`);
    location = options.storage;
    // Bytes pass through the server: smaller, fewer multipart parts in flight than a
    // client would use (2 x 8 MiB), so uploads of unknown or large size stay bounded.
    const s3 = { partSize: 8 * 1024 * 1024, partConcurrency: 2, ...options.s3 };
    open = (repoName) => {
      const prefix = parsed.prefix === '' ? repoName : `${parsed.prefix}/${repoName}`;
      return openStorage(`s3://${parsed.bucket}/${prefix}`, { s3 });
    };
  }
  const forRepo = (repoName: string): Promise<ObjectStorage> => {
    let storage = opened.get(repoName);
    if (storage === undefined) {
      storage = open(repoName);
      opened.set(repoName, storage);
      storage.catch(() => opened.delete(repoName));
    }
    return storage;
  };
  const direct = options.storage !== undefined && options.direct !== false;
  const expiresInSeconds = options.presignExpiresInSeconds ?? DEFAULT_PRESIGN_EXPIRES_SECONDS;
  const clock = options.clock ?? (() => new Date());
  return {
    location,
    direct,
    forRepo,
    async presign(repoName, op, key, opts = {}) {
      if (!direct) return null;
      if (op === 'put' && (opts.size === undefined || opts.size > MAX_PRESIGNED_PUT_BYTES)) return null;
      const storage = await forRepo(repoName);
      if (!canPresign(storage)) return null;
      return storage.presign(op, key, { size: opts.size, expiresInSeconds, now: clock() });
    },
  };
}
