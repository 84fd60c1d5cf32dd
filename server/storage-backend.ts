/**
 * Where the server keeps each repository's objects: one ObjectStorage per repository.
 *
 * - default: `FileStorage(<dataDir>/repos/<owner>/<name>)`, the folder created on first use;
 * - `storage: 's3://bucket/prefix'`: `S3Storage` with prefix `<prefix>/<owner>/<name>`
 *   (S3 settings from the AWS SDK's usual sources, or `s3` options passed in).
 *
 * Storages are opened lazily and kept for the life of the backend (they hold no open
 * files between calls). Repository names are validated by the routes before they get here.
 */
import { mkdir } from 'node:fs/promises';
import * as path from 'node:path';
import type { ObjectStorage } from '../src/transfer/object-storage.js';
import { openStorage, parseStorageUrl, type OpenStorageOptions } from '../src/transfer/storage-url.js';

export interface StorageBackend {
  /** Human-readable description for logs: a folder or an s3:// URL. */
  readonly location: string;
  /** The storage of repository `owner/name`. */
  forRepo(repoName: string): Promise<ObjectStorage>;
}

export interface StorageBackendOptions {
  dataDir: string;
  /** `s3://bucket/prefix`; absent means files under `<dataDir>/repos/`. */
  storage?: string;
  s3?: OpenStorageOptions['s3'];
  file?: OpenStorageOptions['file'];
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
  return {
    location,
    forRepo(repoName) {
      let storage = opened.get(repoName);
      if (storage === undefined) {
        storage = open(repoName);
        opened.set(repoName, storage);
        storage.catch(() => opened.delete(repoName));
      }
      return storage;
    },
  };
}
