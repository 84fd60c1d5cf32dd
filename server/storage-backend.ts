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
 *
 * Tier folders (`git dits serve --tier-folder warm=<dir>,deep=<dir> [--tier-archive deep]`,
 * remembered in `<dataDir>/tier-folders.json`): with the folder back end, each repository
 * is a TieredFolderStorage (src/tier/tier-folders.ts) whose warm/cold/deep folders are
 * `<tier dir>/<owner>/<name>`; the tier dirs themselves must exist (a share that is not
 * mounted is an error at start, not an empty folder).
 *
 * Deleting a repository's content (`countContent`, `deleteContent`) reaches exactly one
 * repository: the folder `<dataDir>/repos/<owner>/<name>` or the keys under
 * `<prefix>/<owner>/<name>/` (with the slash, so `team/film` never touches `team/film2`).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import * as path from 'node:path';
import type { ObjectStorage } from '../src/transfer/object-storage.js';
import type { PresignedRequest, PresignOptions } from '../src/transfer/s3-storage.js';
import { openStorage, parseStorageUrl, tierOptionsFromGitConfig, type OpenStorageOptions } from '../src/transfer/storage-url.js';
import { checkRepoName } from './validate.js';
import { DitsUserError } from '../src/errors.js';
import { parseTierList, type TierFolderMap } from '../src/tier/tier-folders.js';
import { isTier } from '../src/tier/tiers.js';

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
  /**
   * How many objects are stored for `repoName`, the storage's own bookkeeping included
   * (refs may live there); 0 when none. What a repository deleted without its content
   * leaves behind shows here.
   */
  countContent(repoName: string): Promise<number>;
  /**
   * Deletes everything stored for `repoName` (git data, packs, manifests, refs) and
   * nothing of any other repository; returns how many objects it deleted. Idempotent: a
   * call interrupted midway can be re-run and deletes what is left.
   */
  deleteContent(repoName: string): Promise<number>;
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

/** What S3Storage offers for a whole prefix (its bookkeeping keys included). */
interface WholePrefix {
  listAll(): AsyncIterable<{ key: string; size: number }>;
  removeAll(): Promise<number>;
}

function isWholePrefix(storage: ObjectStorage): storage is ObjectStorage & WholePrefix {
  const s = storage as Partial<WholePrefix>;
  return typeof s.listAll === 'function' && typeof s.removeAll === 'function';
}

/** The repository's `[owner, name]`, checked again here: these paths are deleted. */
function repoSegments(repoName: string): [string, string] {
  const r = checkRepoName(repoName);
  if (!r.ok) throw new Error(`not a repository name: ${JSON.stringify(repoName)} (${r.reason})`);
  return [r.owner, r.repo];
}

/** Files under `dir`, recursively (folders do not count); 0 when it does not exist. */
async function countFiles(dir: string): Promise<number> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return 0;
    throw err;
  }
  let n = 0;
  for (const e of entries) n += e.isDirectory() ? await countFiles(path.join(dir, e.name)) : 1;
  return n;
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
  /** A folder per tier for the folder back end; default: `<dataDir>/tier-folders.json` if present. */
  tierFolders?: TierFolderMap;
}

/** Where `git dits serve --tier-folder` remembers the data dir's tier folders. */
export function tierFoldersFile(dataDir: string): string {
  return path.join(path.resolve(dataDir), 'tier-folders.json');
}

/** The data dir's tier folders: `{ "folders": { "warm": "/mnt/warm" }, "archive": ["deep"] }`, or undefined. */
export function readTierFoldersFile(dataDir: string): TierFolderMap | undefined {
  const file = tierFoldersFile(dataDir);
  if (!existsSync(file)) return undefined;
  let parsed: { folders?: Record<string, unknown>; archive?: unknown };
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8')) as typeof parsed;
  } catch (err) {
    throw new DitsUserError('bad-config', `${file} is not valid JSON: ${(err as Error).message}`, { hint: 'fix it, or set the folders again with `git dits serve --tier-folder warm=<dir>,...`' });
  }
  const folders: TierFolderMap['folders'] = {};
  for (const [tier, dir] of Object.entries(parsed.folders ?? {})) {
    if (!isTier(tier) || tier === 'hot' || typeof dir !== 'string' || dir === '') {
      throw new DitsUserError('bad-config', `${file}: "${tier}": ${JSON.stringify(dir)} is not a tier folder`, { hint: 'folders maps warm, cold or deep to an absolute path' });
    }
    folders[tier] = dir;
  }
  const archive = Array.isArray(parsed.archive) ? parseTierList(`${file} archive`, parsed.archive.join(',')) : [];
  return Object.keys(folders).length === 0 ? undefined : { folders, archive };
}

/**
 * S3 settings for the server's back end from an environment (main.ts passes process.env):
 * `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` for S3-compatible servers (then path-style
 * addressing); region, credentials and profile come from the SDK's usual chain.
 */
export function s3OptionsFromEnv(env: NodeJS.ProcessEnv): NonNullable<OpenStorageOptions['s3']> {
  const endpoint = env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL;
  const base = endpoint === undefined || endpoint === '' ? {} : { endpoint, forcePathStyle: true };
  // `DITS_TIER_PROVIDER=aws` for an S3-compatible endpoint that speaks AWS storage classes
  // (as `git config dits.tier.provider` does for a client); default from the endpoint's host
  const tier = tierOptionsFromGitConfig((k) => (k === 'dits.tier.provider' ? env.DITS_TIER_PROVIDER : undefined));
  return tier === undefined ? base : { ...base, tier };
}

export function createStorageBackend(options: StorageBackendOptions): StorageBackend {
  const opened = new Map<string, Promise<ObjectStorage>>();
  let open: (repoName: string) => Promise<ObjectStorage>;
  let location: string;
  let countContent: (repoName: string) => Promise<number>;
  let deleteContent: (repoName: string) => Promise<number>;
  const tiers = options.tierFolders ?? readTierFoldersFile(options.dataDir);
  if (options.storage === undefined) {
    const reposDir = path.resolve(options.dataDir, 'repos');
    location = reposDir;
    const tierDirs = Object.entries(tiers?.folders ?? {}) as [keyof TierFolderMap['folders'], string][];
    for (const [tier, dir] of tierDirs) {
      let ok = false;
      try {
        ok = statSync(dir).isDirectory();
      } catch {
        ok = false;
      }
      if (!ok) throw new DitsUserError('tier-folder-missing', `the ${tier} tier folder ${dir} does not exist (or is not a folder)`, { hint: 'create it or mount the share, then start the server again' });
    }
    if (tiers !== undefined) location = `${reposDir} (tiers: ${tierDirs.map(([t, d]) => `${t} ${d}`).join(', ')})`;
    const rootOf = (repoName: string): string => path.join(reposDir, ...repoSegments(repoName));
    // the repository's folders: its hot root, then its folder in each tier dir
    const rootsOf = (repoName: string): string[] => [rootOf(repoName), ...tierDirs.map(([, dir]) => path.join(dir, ...repoSegments(repoName)))];
    open = async (repoName) => {
      const root = path.join(reposDir, ...repoName.split('/'));
      await mkdir(root, { recursive: true });
      if (tiers === undefined) return openStorage(root, { file: options.file });
      const folders: TierFolderMap['folders'] = {};
      for (const [tier, dir] of tierDirs) {
        folders[tier] = path.join(dir, ...repoName.split('/'));
        // the repository's folder in a tier dir that is there (mounted): made now, so a key
        // missing from a repository nothing was moved from yet reads as missing, not as
        // "the tier folder is missing: it may be there"
        if (statSync(dir, { throwIfNoEntry: false })?.isDirectory()) await mkdir(folders[tier]!, { recursive: true });
      }
      const { TieredFolderStorage } = await import('../src/tier/tier-folders.js');
      return new TieredFolderStorage(root, { folders, archive: tiers.archive, file: options.file, createFolders: true });
    };
    countContent = async (repoName) => {
      let n = 0;
      for (const root of rootsOf(repoName)) n += await countFiles(root);
      return n;
    };
    deleteContent = async (repoName) => {
      let files = 0;
      for (const root of rootsOf(repoName)) {
        files += await countFiles(root);
        // rm of a tree is idempotent: interrupted, the next call removes the rest
        await rm(root, { recursive: true, force: true });
      }
      return files;
    };
  } else {
    if (options.tierFolders !== undefined) throw new Error('tier folders are for the folder back end, not with storage ' + options.storage);
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
    const wholePrefix = async (repoName: string): Promise<WholePrefix> => {
      repoSegments(repoName);
      const storage = await open(repoName);
      if (!isWholePrefix(storage)) throw new Error(`storage ${storage.location} cannot list or delete its whole prefix`);
      return storage;
    };
    countContent = async (repoName) => {
      let n = 0;
      for await (const obj of (await wholePrefix(repoName)).listAll()) if (obj.key !== '') n++;
      return n;
    };
    deleteContent = async (repoName) => (await wholePrefix(repoName)).removeAll();
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
    countContent,
    async deleteContent(repoName) {
      const n = await deleteContent(repoName);
      opened.delete(repoName); // a folder storage is re-created (empty) on next use
      return n;
    },
    async presign(repoName, op, key, opts = {}) {
      if (!direct) return null;
      if (op === 'put' && (opts.size === undefined || opts.size > MAX_PRESIGNED_PUT_BYTES)) return null;
      const storage = await forRepo(repoName);
      if (!canPresign(storage)) return null;
      return storage.presign(op, key, { size: opts.size, expiresInSeconds, now: clock() });
    },
  };
}
