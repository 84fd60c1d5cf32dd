/**
 * S3Storage: an ObjectStorage over any S3-compatible service (AWS S3, MinIO, Backblaze B2,
 * Wasabi, Cloudflare R2, s3rver in tests) through @aws-sdk/client-s3.
 *
 * Configuration: endpoint, region and credentials come from the SDK's default chain (AWS_*
 * environment variables, ~/.aws/config and ~/.aws/credentials, AWS_PROFILE, SSO, instance
 * roles); every field of S3StorageOptions overrides it (the CLI fills them from git config
 * `dits.s3.endpoint`, `dits.s3.region`, `dits.s3.pathStyle`, `dits.s3.profile`,
 * `dits.s3.conditionalWrites`). Checksums are computed only when an API requires them
 * (`WHEN_REQUIRED`): otherwise the SDK sends streaming bodies with aws-chunked framing,
 * which some S3-compatible servers (s3rver) store framing and all.
 *
 * Uploads: bodies up to `multipartThreshold` go in one PUT (streamed when the size is
 * known, else buffered up to one part); larger ones as a multipart upload in parts of
 * `partSize`, `partConcurrency` parts in flight, each part retried on transient errors.
 * Memory per upload is at most partSize x (partConcurrency + 1).
 *
 * Retries: the SDK's own retries are off by default (maxAttempts 1) because a streaming
 * body cannot be replayed; the TransferQueue retries whole items and this class retries
 * multipart parts, both with the same policy.
 *
 * Tiers (TierStorage, src/tier/tier-storage.ts): `listTiered` lists StorageClass and
 * LastModified; `setStorageClass` changes the class in place by a CopyObject onto itself
 * (MetadataDirective COPY), or past `copyPartThreshold` (5 GiB, CopyObject's limit) by a
 * multipart copy of UploadPartCopy parts onto the same key: the bytes never pass through
 * this machine, and nothing is deleted. `requestRestore` is RestoreObject, `tierState`
 * HEAD's `x-amz-storage-class` and `x-amz-restore`. A GET of an archived object without a
 * finished restore (403 InvalidObjectState) throws FrozenObjectError, never retried. The
 * provider profile comes from `dits.tier.provider` (else the endpoint's host) and
 * `dits.tier.class.<tier>`.
 *
 * Versioned objects (putIf/getVersioned) use S3 conditional writes (If-None-Match: * and
 * If-Match: <etag>) where the service supports them, else the lock-free log of cas-log.ts.
 * Which one a remote uses is recorded once in the object `<prefix>.dits-cas-mode`, so all
 * clients of a remote agree even if their settings differ (a setting that contradicts the
 * record is refused: mixing the two would let two writers both win).
 */
import http from 'node:http';
import https from 'node:https';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { sizeGuard } from './size-guard.js';
import { createRequire } from 'node:module';
import type * as S3Sdk from '@aws-sdk/client-s3';
import type { S3ClientConfig } from '@aws-sdk/client-s3';
import { CasLog, type CasLogBackend } from './cas-log.js';
import {
  assertValidKey,
  assertValidPrefix,
  assertValidRange,
  piecesOfStream,
  sliceStream,
  readStreamToBuffer,
  type ByteRange,
  type ListedObject,
  type ObjectInfo,
  type ObjectStorage,
  type PieceReader,
  type PutBody,
  type PutIfResult,
  type PutOptions,
  type VersionedObject,
} from './object-storage.js';
import { DEFAULT_RETRY_POLICY, realRetryDeps, RetriesExhaustedError, withRetry, type RetryDeps, type RetryPolicy } from './retry.js';
import { mapS3Error } from './s3-errors.js';
import { readAll, S3DirectGet } from './s3-direct-get.js';
import { StorageError } from './storage-error.js';
import { DitsUserError } from '../errors.js';
import { DEFAULT_CLASS, detectProvider, needsRestore, providerProfile, type ProviderName, type ProviderProfile, type RetrievalTier, type Tier } from '../tier/tiers.js';
import { FrozenObjectError, type ObjectTierState, type RestoreRequestResult, type RestoreState, type TieredObject, type TierStorage } from '../tier/tier-storage.js';

// The SDK is loaded with require, not import: an ESM import of a CommonJS package makes
// Node scan its whole source for export names first (cjs-module-lexer, ~270 KB here), some
// 40 ms of CPU in every process that talks to S3 (a push, a clone's helper and its hook).
const {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  PutObjectTaggingCommand,
  RestoreObjectCommand,
  S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
} = createRequire(import.meta.url)('@aws-sdk/client-s3') as typeof S3Sdk;
type S3Client = S3Sdk.S3Client;
type GetObjectCommand = S3Sdk.GetObjectCommand;
type PutObjectCommand = S3Sdk.PutObjectCommand;

export type ConditionalWritesSetting = 'auto' | 'on' | 'off';
export type CasMode = 'native' | 'log';

/** Tier settings of an S3 remote (git config `dits.tier.provider`, `dits.tier.class.<tier>`). */
export interface S3TierOptions {
  /** default: from the endpoint's host (detectProvider) */
  provider?: ProviderName;
  overrides?: Partial<Record<Tier, string>>;
}

export interface S3StorageOptions {
  bucket: string;
  /** Key prefix inside the bucket ('' or 'project', with or without trailing '/'). */
  prefix?: string;
  /** e.g. http://127.0.0.1:9000; default: AWS S3 for the region. */
  endpoint?: string;
  region?: string;
  /** Path-style addressing (http://host/bucket/key), needed by most non-AWS servers. */
  forcePathStyle?: boolean;
  /** Profile of ~/.aws/config and ~/.aws/credentials (like AWS_PROFILE). */
  profile?: string;
  /** Explicit credentials (tests); default: the SDK's provider chain. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** A ready client (tests, or callers that share one); the fields above are then ignored. */
  client?: S3Client;
  /** Multipart part size in bytes (default 32 MiB; S3 needs at least 5 MiB). */
  partSize?: number;
  /**
   * Bodies larger than this go multipart (default: the larger of partSize and 64 MiB). A
   * body of known size up to this is streamed in one PUT without being held in memory, so
   * set it at least to the pack size.
   */
  multipartThreshold?: number;
  /** Parts of one upload in flight at once (default 4). */
  partConcurrency?: number;
  /** Keys per LIST page (default 1000, the S3 maximum). */
  listPageSize?: number;
  /** `dits.s3.conditionalWrites`: auto (probe), on, off (default auto). */
  conditionalWrites?: ConditionalWritesSetting;
  /** Retries of multipart parts (default DEFAULT_RETRY_POLICY). */
  retry?: RetryPolicy;
  /** Retries of small replayable requests: HEAD, LIST, DELETE, GET, PUT of a Buffer (default 3 attempts). */
  requestRetry?: RetryPolicy;
  retryDeps?: RetryDeps;
  /** SDK attempts per request (default 1: retries happen above, see the file comment). */
  maxAttempts?: number;
  /** Socket connect timeout (default 10 s) and idle timeout (default 120 s). */
  connectTimeoutMs?: number;
  socketTimeoutMs?: number;
  /** Max sockets to the endpoint (default 64). */
  maxSockets?: number;
  /** Storage classes of this remote's provider (see tiers.ts). */
  tier?: S3TierOptions;
  /** A class change of an object larger than this is a multipart copy (default 5 GiB, CopyObject's limit). */
  copyPartThreshold?: number;
  /** Part size of a multipart copy (default the larger of 512 MiB and size / 10,000; at least 5 MiB on AWS). */
  copyPartSize?: number;
  /**
   * GETs on plain node:http, signed here (s3-direct-get.ts), with the SDK as the fallback for
   * any answer that is not a clean 200/206 (default: on with an explicit endpoint, unless
   * DITS_S3_DIRECT_GET=0; the SDK only without an endpoint).
   */
  directGet?: boolean;
}

const MiB = 1024 * 1024;

export interface PresignOptions {
  /** Validity of the URL (default 900 s, 15 minutes; S3 allows up to 7 days). */
  expiresInSeconds?: number;
  /** Size of the body a PUT URL is for (required for 'put'). */
  size?: number;
  /** Signing time (default now). */
  now?: Date;
}

export interface PresignedRequest {
  url: string;
  method: 'GET' | 'PUT';
  /** Headers the request must carry as signed (content-length of a PUT). */
  headers: Record<string, string>;
  expiresAt: Date;
}

const CAS_MODE_KEY = '.dits-cas-mode';
const CAS_ROOT = '.dits-cas/';

const GiB = 1024 * MiB;

export class S3Storage implements ObjectStorage, TierStorage {
  readonly location: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly client: S3Client;
  private readonly endpointLabel: string;
  private readonly partSize: number;
  private readonly multipartThreshold: number;
  private readonly partConcurrency: number;
  private readonly listPageSize: number;
  private readonly conditionalWrites: ConditionalWritesSetting;
  private readonly retry: RetryPolicy;
  private readonly requestRetry: RetryPolicy;
  private readonly retryDeps: RetryDeps;
  private listVersion: 1 | 2 = 2;
  private bucketSeen = false;
  /** Requests sent, by SDK command name (PutObjectCommand, UploadPartCommand, ...), retries included. */
  readonly requestCounts = new Map<string, number>();
  /** GETs answered through the direct path (s3-direct-get.ts), also counted as GetObjectCommand above. */
  directGets = 0;
  private casModePromise: Promise<CasMode | null> | undefined;
  private readonly casLog: CasLog;
  private readonly tierOptions: S3TierOptions;
  private profile: ProviderProfile | undefined;
  private readonly endpoint: string | undefined;
  private readonly copyPartThreshold: number;
  private readonly copyPartSize: number | undefined;
  private readonly direct: S3DirectGet | null;

  constructor(options: S3StorageOptions) {
    if (!options.bucket) throw new StorageError('bad-storage-url', 'An S3 remote needs a bucket name', { hint: 'Use dits::s3://<bucket>/<prefix>.' });
    this.bucket = options.bucket;
    const p = (options.prefix ?? '').replace(/^\/+|\/+$/g, '');
    if (p !== '') assertValidKey(p);
    this.prefix = p === '' ? '' : `${p}/`;
    this.location = `s3://${this.bucket}/${this.prefix}`;
    this.endpointLabel = options.endpoint ?? 'AWS S3';
    this.partSize = options.partSize ?? 32 * MiB;
    this.multipartThreshold = options.multipartThreshold ?? Math.max(this.partSize, 64 * MiB);
    this.partConcurrency = Math.max(1, options.partConcurrency ?? 4);
    this.listPageSize = options.listPageSize ?? 1000;
    this.conditionalWrites = options.conditionalWrites ?? 'auto';
    this.retry = options.retry ?? DEFAULT_RETRY_POLICY;
    this.requestRetry = options.requestRetry ?? { maxAttempts: 3, baseDelayMs: 100, maxDelayMs: 2000 };
    this.retryDeps = options.retryDeps ?? realRetryDeps;
    this.tierOptions = options.tier ?? {};
    this.endpoint = options.endpoint;
    this.copyPartThreshold = options.copyPartThreshold ?? 5 * GiB;
    this.copyPartSize = options.copyPartSize;
    this.client = options.client ?? createS3Client(options);
    this.client.middlewareStack.add(
      (next, context) => async (args) => {
        const name = (context as { commandName?: string }).commandName ?? 'unknown';
        this.requestCounts.set(name, (this.requestCounts.get(name) ?? 0) + 1);
        return next(args);
      },
      { step: 'initialize', name: `ditsRequestCounter-${randomBytes(4).toString('hex')}` },
    );
    this.casLog = new CasLog(this.rawBackend(), { root: this.prefix + CAS_ROOT });
    this.direct = null;
    if (options.endpoint !== undefined && (options.directGet ?? process.env.DITS_S3_DIRECT_GET !== '0')) {
      const config = this.client.config as unknown as { credentials?: () => Promise<{ accessKeyId: string; secretAccessKey: string; sessionToken?: string }>; region?: () => Promise<string> };
      const agentOptions = { keepAlive: true, maxSockets: options.maxSockets ?? 64 };
      if (typeof config.credentials === 'function' && typeof config.region === 'function') {
        this.direct = new S3DirectGet({
          endpoint: options.endpoint,
          bucket: this.bucket,
          forcePathStyle: options.forcePathStyle ?? false,
          credentials: config.credentials,
          region: config.region,
          agent: options.endpoint.startsWith('https:') ? new https.Agent(agentOptions) : new http.Agent(agentOptions),
          socketTimeoutMs: options.socketTimeoutMs ?? 120_000,
        });
      }
    }
  }

  /** A clean answer through the direct path (counted as a GetObject), or null: ask the SDK. */
  private async directOpen(key: string, range?: ByteRange): Promise<Readable | null> {
    if (!this.direct) return null;
    const res = await this.direct.open(this.prefix + key, range);
    if (res) {
      this.directGets++;
      this.requestCounts.set('GetObjectCommand', (this.requestCounts.get('GetObjectCommand') ?? 0) + 1);
    }
    if (res && 'frozen' in res) throw new FrozenObjectError(key, res.storageClass, { status: 403 });
    return res;
  }

  /** Checks that the bucket exists and is reachable with these credentials. */
  async checkAccess(): Promise<void> {
    await this.send(
      () => this.client.send(new HeadBucketCommand({ Bucket: this.bucket })),
      (err) => mapS3Error(err, { bucket: this.bucket, op: 'access', endpoint: this.endpointLabel }),
    );
  }

  async put(key: string, body: PutBody, opts: PutOptions = {}): Promise<{ etag: string }> {
    assertValidKey(key);
    const full = this.prefix + key;
    if (Buffer.isBuffer(body)) {
      if (body.length <= this.multipartThreshold) return this.putSingle(full, body, body.length, opts.contentType);
      return this.putMultipart(full, Readable.from([body]), opts, undefined);
    }
    if (opts.size !== undefined && opts.size <= this.multipartThreshold) {
      const stream = body();
      try {
        return await this.putSingle(full, stream, opts.size, opts.contentType);
      } finally {
        stream.destroy();
      }
    }
    // Unknown or large size: read the first part; if the stream ends within it, one PUT.
    const stream = body();
    try {
      const reader = new PartReader(stream, this.partSize);
      const first = await reader.next();
      if (first.length <= this.multipartThreshold && reader.done) {
        checkSize(key, opts.size, first.length);
        return this.putSingle(full, first, first.length, opts.contentType);
      }
      return await this.putMultipart(full, stream, opts, { reader, first });
    } finally {
      stream.destroy();
    }
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    assertValidKey(key);
    assertValidRange(range, key);
    return (await this.directOpen(key, range)) ?? this.sdkGet(key, range);
  }

  /**
   * On a plain http endpoint the body is read into buffers used again (raw-http-get.ts);
   * any answer but a clean one (and https) goes through get() (node:http, then the SDK).
   */
  async openPieces(key: string, range?: ByteRange): Promise<PieceReader> {
    assertValidKey(key);
    assertValidRange(range, key);
    if (this.direct?.hasPieces) {
      const res = await this.direct.openPieces(this.prefix + key, range);
      if (res) {
        this.directGets++;
        this.requestCounts.set('GetObjectCommand', (this.requestCounts.get('GetObjectCommand') ?? 0) + 1);
        if ('frozen' in res) throw new FrozenObjectError(key, res.storageClass, { status: 403 });
        return res;
      }
    }
    return piecesOfStream(await this.get(key, range));
  }

  private async sdkGet(key: string, range?: ByteRange): Promise<Readable> {
    const out = await this.send(
      () =>
        this.client.send(
          new GetObjectCommand({ Bucket: this.bucket, Key: this.prefix + key, Range: range ? `bytes=${range.start}-${range.end}` : undefined }),
        ),
      (err) => this.mapError(err, key, 'read'),
    );
    const body = out.Body as Readable;
    if (!range) return body;
    // A server may ignore the Range or answer a wider one (s3rver sends the whole object
    // for "bytes=0-0"): cut the requested bytes out here rather than return wrong ones.
    const served = parseContentRange(out.ContentRange) ?? { start: 0, total: out.ContentLength };
    const wantEnd = served.total === undefined ? range.end : Math.min(range.end, served.total - 1);
    if (served.total !== undefined && range.start >= served.total) {
      body.destroy();
      throw new StorageError('storage-bad-range', `Range ${range.start}-${range.end} starts past the end of ${this.location}${key}`, { key });
    }
    const servedLength = out.ContentLength;
    if (served.start === range.start && (servedLength === undefined || served.start + servedLength - 1 <= wantEnd)) return body;
    if (served.start > range.start) {
      body.destroy();
      throw new StorageError('s3-error', `Server answered bytes from ${served.start} for a range starting at ${range.start} of ${key}`, { key, retryable: true });
    }
    return sliceStream(body, range.start - served.start, wantEnd - served.start);
  }

  async getBuffer(key: string, range?: ByteRange): Promise<Buffer> {
    assertValidKey(key);
    assertValidRange(range, key);
    const res = await this.directOpen(key, range);
    if (res) {
      try {
        return await readAll(res as Parameters<typeof readAll>[0]);
      } catch {
        // cut off mid-body: asked again through the SDK, which retries and maps the error
      }
    }
    return readStreamToBuffer(await this.sdkGet(key, range));
  }

  async head(key: string): Promise<ObjectInfo | null> {
    assertValidKey(key);
    try {
      const out = await this.send(
        () => this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.prefix + key })),
        (err) => this.mapError(err, key, 'read'),
      );
      return { size: out.ContentLength ?? 0, etag: out.ETag ?? '' };
    } catch (err) {
      const mapped = this.mapError(err, key, 'read');
      if (mapped.code === 'storage-not-found') {
        // HEAD answers carry no error code: a 404 may also mean a missing bucket. Ask once.
        if (!this.bucketSeen) {
          await this.checkAccess();
          this.bucketSeen = true;
        }
        return null;
      }
      throw mapped;
    }
  }

  async *list(prefix: string): AsyncIterable<ListedObject> {
    assertValidPrefix(prefix);
    for await (const obj of this.listFull(this.prefix + prefix)) {
      const key = obj.key.slice(this.prefix.length);
      if (key.split('/').some((segment) => segment.startsWith('.dits-'))) continue;
      yield obj.storageClass === undefined ? { key, size: obj.size } : { key, size: obj.size, storageClass: obj.storageClass };
    }
  }

  async delete(key: string): Promise<void> {
    assertValidKey(key);
    try {
      await this.send(
        () => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.prefix + key })),
        (err) => this.mapError(err, key, 'delete'),
      );
    } catch (err) {
      if ((err as StorageError).code !== 'storage-not-found') throw err;
    }
  }

  // ---- tiers (TierStorage) ----

  /** The provider's classes: `dits.tier.provider` or the endpoint's host, with `dits.tier.class.*` (read on first use, so a bad setting fails only tier work). */
  get tierProfile(): ProviderProfile {
    this.profile ??= providerProfile(this.tierOptions.provider ?? detectProvider(this.endpoint), { overrides: this.tierOptions.overrides });
    return this.profile;
  }

  async *listTiered(prefix: string): AsyncIterable<TieredObject> {
    assertValidPrefix(prefix);
    for await (const obj of this.listFull(this.prefix + prefix)) {
      const key = obj.key.slice(this.prefix.length);
      if (key.split('/').some((segment) => segment.startsWith('.dits-'))) continue;
      yield { key, size: obj.size, lastModified: obj.lastModified ?? 0, storageClass: obj.storageClass || DEFAULT_CLASS };
    }
  }

  async tierState(key: string): Promise<ObjectTierState | null> {
    assertValidKey(key);
    try {
      const out = await this.send(
        () => this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.prefix + key })),
        (err) => this.mapError(err, key, 'read'),
      );
      return { size: out.ContentLength ?? 0, storageClass: out.StorageClass || DEFAULT_CLASS, restore: parseRestoreHeader(out.Restore) };
    } catch (err) {
      if ((err as StorageError).code === 'storage-not-found') return null;
      throw err;
    }
  }

  /**
   * Moves `key` to `storageClass` in place: CopyObject onto itself (MetadataDirective COPY,
   * tags copied too), or past copyPartThreshold a multipart copy onto the same key whose
   * parts are UploadPartCopy ranges of the object itself, guarded by its ETag. Then a HEAD
   * checks the class and the size. An object already in that class is left as it is (also
   * when a retry finds that its first attempt, whose answer was lost, did it). An
   * archived source without a finished restore is FrozenObjectError (S3 copies only
   * readable objects). Never a PUT of the bytes, never a DELETE.
   */
  async setStorageClass(key: string, storageClass: string, opts: { size: number }): Promise<void> {
    assertValidKey(key);
    const profile = this.tierProfile;
    if (profile.classes === null) {
      throw new DitsUserError('tier-unsupported', `${this.location} cannot change storage classes: ${profile.note ?? 'its provider has one class'}`, {
        hint: 'nothing was changed; set `git config dits.tier.provider aws` only if this endpoint really speaks AWS storage classes',
      });
    }
    if (!profile.known.includes(storageClass)) {
      throw new DitsUserError('bad-config', `${storageClass} is not a storage class of ${profile.name}`, { hint: `use one of ${profile.known.join(', ')}` });
    }
    const full = this.prefix + key;
    try {
      if (opts.size > this.copyPartThreshold) {
        await this.copyMultipart(key, storageClass, opts.size);
      } else {
        await this.send(
          () =>
            this.client.send(
              new CopyObjectCommand({
                Bucket: this.bucket,
                Key: full,
                CopySource: copySourceOf(this.bucket, full),
                StorageClass: storageClass as S3Sdk.StorageClass,
                MetadataDirective: 'COPY',
              }),
            ),
          (err) => this.mapError(err, key, 'change the storage class of'),
        );
      }
    } catch (err) {
      // Already in that class: a copy onto itself then changes nothing (400
      // InvalidRequest), or, into an archive class, reads an archived source (403
      // InvalidObjectState), or a completed multipart copy's retried completion finds no
      // upload (404 NoSuchUpload). All happen when an earlier answer was lost (a cut
      // connection, a killed run): the class is what was asked, so this is done.
      const now = await this.tierState(key).catch(() => null);
      if (!(now !== null && now.storageClass === storageClass && now.size === opts.size)) throw err;
    }
    const after = await this.tierState(key);
    if (after === null || after.size !== opts.size || after.storageClass !== storageClass) {
      throw new StorageError(
        'storage-class-unchanged',
        `After the class change of ${this.location}${key} to ${storageClass} the object is ${after === null ? 'missing' : `${after.size} bytes in ${after.storageClass}`} (expected ${opts.size} bytes)`,
        { key, hint: 'run the tier command again; if it persists, compare the object with `git dits fsck`' },
      );
    }
  }

  /**
   * RestoreObject: 202 started, 409 RestoreAlreadyInProgress in-progress, 200 restored (a
   * restored copy exists; its expiry moves), 403 InvalidObjectState not-archived. Safe to
   * repeat: after a lost answer the retry sees 409 or 200, never a second paid restore.
   */
  async requestRestore(key: string, opts: { days: number; tier: RetrievalTier }): Promise<RestoreRequestResult> {
    assertValidKey(key);
    if (!Number.isSafeInteger(opts.days) || opts.days < 1) {
      throw new DitsUserError('bad-argument', `a restore needs a whole number of days, at least 1 (got ${opts.days})`, { hint: 'e.g. --days 7' });
    }
    const Tier = (opts.tier.charAt(0).toUpperCase() + opts.tier.slice(1)) as S3Sdk.Tier;
    return this.send(
      async () => {
        try {
          const out = await this.client.send(
            new RestoreObjectCommand({ Bucket: this.bucket, Key: this.prefix + key, RestoreRequest: { Days: opts.days, GlacierJobParameters: { Tier } } }),
          );
          return out.$metadata.httpStatusCode === 200 ? 'restored' : 'started';
        } catch (err) {
          const name = (err as { name?: string }).name;
          if (name === 'RestoreAlreadyInProgress') return 'in-progress';
          if (name === 'InvalidObjectState') return 'not-archived';
          throw err;
        }
      },
      (err) => this.mapError(err, key, 'restore'),
    );
  }

  /** Replaces the object's tags (lifecycle-rule mode: `dits-tier=<tier>`). */
  async setTags(key: string, tags: Record<string, string>): Promise<void> {
    assertValidKey(key);
    await this.send(
      () =>
        this.client.send(
          new PutObjectTaggingCommand({
            Bucket: this.bucket,
            Key: this.prefix + key,
            Tagging: { TagSet: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) },
          }),
        ),
      (err) => this.mapError(err, key, 'tag'),
    );
  }

  private async copyMultipart(key: string, storageClass: string, size: number): Promise<void> {
    const full = this.prefix + key;
    const mapError = (err: unknown) => this.mapError(err, key, 'change the storage class of');
    // the source's metadata goes onto the new object (a multipart upload does not copy it),
    // and its ETag guards every part against an overwrite during the copy
    const head = await this.send(() => this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: full })), mapError);
    if (head.ContentLength !== size) {
      throw new StorageError('storage-size-mismatch', `${this.location}${key} is ${head.ContentLength} bytes, ${size} were expected`, { key });
    }
    const current = head.StorageClass || DEFAULT_CLASS;
    if (current === storageClass) return;
    if (needsRestore(this.tierProfile, current) && parseRestoreHeader(head.Restore)?.ongoing !== false) {
      throw new FrozenObjectError(key, current); // S3 copies only readable objects: found before any part is copied
    }
    const partSize = this.copyPartSize ?? Math.max(512 * MiB, Math.ceil(size / 10_000));
    const created = await this.send(
      () =>
        this.client.send(
          new CreateMultipartUploadCommand({
            Bucket: this.bucket,
            Key: full,
            StorageClass: storageClass as S3Sdk.StorageClass,
            ContentType: head.ContentType,
            CacheControl: head.CacheControl,
            ContentDisposition: head.ContentDisposition,
            ContentEncoding: head.ContentEncoding,
            Metadata: head.Metadata,
          }),
        ),
      mapError,
    );
    const uploadId = created.UploadId;
    if (!uploadId) throw new StorageError('s3-error', `No upload id returned for ${this.location}${key}`, { key });
    const parts: { PartNumber: number; ETag: string }[] = [];
    try {
      const count = Math.ceil(size / partSize);
      let next = 0;
      const worker = async () => {
        while (next < count) {
          const i = next++;
          const start = i * partSize;
          const end = Math.min(size, start + partSize) - 1;
          const out = await this.send(
            () =>
              this.client.send(
                new UploadPartCopyCommand({
                  Bucket: this.bucket,
                  Key: full,
                  UploadId: uploadId,
                  PartNumber: i + 1,
                  CopySource: copySourceOf(this.bucket, full),
                  CopySourceRange: `bytes=${start}-${end}`,
                  CopySourceIfMatch: head.ETag,
                }),
              ),
            mapError,
          );
          const etag = out.CopyPartResult?.ETag;
          if (!etag) throw new StorageError('s3-error', `No etag returned for copied part ${i + 1} of ${this.location}${key}`, { key, retryable: true });
          parts.push({ PartNumber: i + 1, ETag: etag });
        }
      };
      await Promise.all(Array.from({ length: Math.min(this.partConcurrency, count) }, worker));
      parts.sort((a, b) => a.PartNumber - b.PartNumber);
      await this.send(
        () => this.client.send(new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: full, UploadId: uploadId, MultipartUpload: { Parts: parts } })),
        mapError,
      );
    } catch (err) {
      // until completion the object is untouched: abandon the upload, keep the object
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: full, UploadId: uploadId })).catch(() => undefined);
      throw err;
    }
  }

  /**
   * Every object under this storage's prefix, full bucket keys, the storage's own
   * bookkeeping included (`.dits-*`: on servers without conditional writes the refs live
   * in the CAS log there). For measuring or removing a whole remote, such as a Dits server
   * repository being deleted. Refuses a storage with no prefix: that would be the bucket.
   */
  listAll(): AsyncIterable<{ key: string; size: number }> {
    this.refuseWholeBucket('list');
    return this.listFull(this.prefix);
  }

  /**
   * Deletes every object `listAll` yields and returns how many it deleted. Only keys under
   * `<prefix>/` (with its slash: `team/film/` never reaches `team/film2/`). Idempotent: an
   * interrupted call re-run deletes what is left.
   */
  async removeAll(): Promise<number> {
    this.refuseWholeBucket('delete');
    let removed = 0;
    let batch: string[] = [];
    const flush = async () => {
      await Promise.all(
        batch.map((full) =>
          this.send(
            () => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: full })),
            (err) => this.mapError(err, full.slice(this.prefix.length), 'delete'),
          ),
        ),
      );
      removed += batch.length;
      batch = [];
    };
    for await (const obj of this.listFull(this.prefix)) {
      if (!obj.key.startsWith(this.prefix)) continue; // a server that ignores Prefix must not widen the delete
      batch.push(obj.key);
      if (batch.length >= 16) await flush();
    }
    await flush();
    return removed;
  }

  private refuseWholeBucket(op: string): void {
    if (this.prefix === '') {
      throw new StorageError('storage-bad-key', `Refusing to ${op} all of bucket ${this.bucket} as one storage's content`, {
        hint: 'Give the storage a prefix (s3://bucket/prefix).',
      });
    }
  }

  async putIf(key: string, body: Buffer, expected: { etag: string } | 'absent'): Promise<PutIfResult> {
    assertValidKey(key);
    const mode = await this.casMode(true);
    if (mode === 'log') return this.casLog.putIf(key, body, expected);
    const full = this.prefix + key;
    for (let attempt = 1; ; attempt++) {
      try {
        const out = await this.client.send(
          new PutObjectCommand({
            Bucket: this.bucket,
            Key: full,
            Body: body,
            ContentLength: body.length,
            ...(expected === 'absent' ? { IfNoneMatch: '*' } : { IfMatch: expected.etag }),
          }),
        );
        return { ok: true, etag: out.ETag ?? '' };
      } catch (err) {
        const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
        if (status === 412 || (status === 404 && expected !== 'absent')) {
          const current = await this.head(key);
          return { ok: false, current: current ? { etag: current.etag } : null };
        }
        // 409 ConditionalRequestConflict: another conditional write to this key is in flight
        if (status === 409 && attempt < 10) {
          await this.retryDeps.sleep(20 * attempt * (0.5 + this.retryDeps.random()));
          continue;
        }
        throw this.mapError(err, key, 'write');
      }
    }
  }

  async prepareVersioned(key: string): Promise<void> {
    assertValidKey(key);
    await this.casMode(true);
  }

  async getVersioned(key: string): Promise<VersionedObject | null> {
    assertValidKey(key);
    const mode = await this.casMode(false);
    if (mode === null) return null; // no client ever wrote a versioned object here
    if (mode === 'log') return this.casLog.getVersioned(key);
    try {
      return await this.send(
        async () => {
          const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }));
          return { body: await readStreamToBuffer(out.Body as Readable), etag: out.ETag ?? '' };
        },
        (err) => this.mapError(err, key, 'read'),
      );
    } catch (err) {
      if ((err as StorageError).code === 'storage-not-found') return null;
      throw err;
    }
  }

  /**
   * A presigned URL for one GET or PUT of `key` (under this storage's prefix), signed with
   * this storage's client and credentials, so that someone without credentials (a Dits
   * server's client) can move the bytes directly. A PUT URL signs `Content-Length: size`:
   * the holder must send exactly that many bytes. No checksum is signed (the client is
   * built with `requestChecksumCalculation: 'WHEN_REQUIRED'`), so a plain HTTP client can
   * use the URL. A GET URL accepts a `Range` header (not signed). The presigner loads only
   * on first use.
   */
  async presign(op: 'get' | 'put', key: string, opts: PresignOptions = {}): Promise<PresignedRequest> {
    assertValidKey(key);
    const { getSignedUrl } = await import('@aws-sdk/s3-request-presigner');
    const expiresIn = opts.expiresInSeconds ?? 900;
    const signingDate = opts.now ?? new Date();
    const headers: Record<string, string> = {};
    let command: GetObjectCommand | PutObjectCommand;
    if (op === 'put') {
      if (opts.size === undefined || !Number.isSafeInteger(opts.size) || opts.size < 0) {
        throw new StorageError('storage-size-mismatch', `A presigned PUT of ${key} needs its size in bytes`, { key });
      }
      command = new PutObjectCommand({ Bucket: this.bucket, Key: this.prefix + key, ContentLength: opts.size });
      headers['content-length'] = String(opts.size);
    } else {
      command = new GetObjectCommand({ Bucket: this.bucket, Key: this.prefix + key });
    }
    const url = await getSignedUrl(this.client, command, {
      expiresIn,
      signingDate,
      signableHeaders: op === 'put' ? new Set(['content-length']) : undefined,
    });
    return { url, method: op === 'put' ? 'PUT' : 'GET', headers, expiresAt: new Date(signingDate.getTime() + expiresIn * 1000) };
  }

  /**
   * How this remote does compare-and-swap: read from `<prefix>.dits-cas-mode`, or (for a
   * writer, when absent) decided by the setting or a probe and recorded. null: nothing
   * recorded and `forWrite` false, so no versioned object exists yet.
   */
  private casModeDecision: Promise<CasMode> | undefined;

  async casMode(forWrite: boolean): Promise<CasMode | null> {
    const known = await (this.casModePromise ??= this.readCasMode());
    if (known !== null) {
      if (this.conditionalWrites === 'on' && known === 'log') throw this.modeConflict(known);
      return known;
    }
    if (!forWrite) {
      this.casModePromise = undefined; // look again next time
      return null;
    }
    // Concurrent writers of this instance share one probe and one record (no racing PUTs
    // of the same key, which s3rver, writing objects in place, does not survive).
    this.casModeDecision ??= (async () => {
      const chosen: CasMode =
        this.conditionalWrites === 'on' ? 'native' : this.conditionalWrites === 'off' ? 'log' : (await this.probeConditionalWrites()) ? 'native' : 'log';
      return this.recordCasMode(chosen);
    })();
    let recorded: CasMode;
    try {
      recorded = await this.casModeDecision;
    } catch (err) {
      this.casModeDecision = undefined;
      throw err;
    }
    this.casModePromise = Promise.resolve(recorded);
    if (this.conditionalWrites === 'on' && recorded === 'log') throw this.modeConflict(recorded);
    return recorded;
  }

  /** Whether the service honours If-None-Match: * and If-Match on PUT (AWS S3 does since 2024). */
  async probeConditionalWrites(): Promise<boolean> {
    const probe = `${this.prefix}.dits-probe/${randomBytes(8).toString('hex')}`;
    const put = (extra: { IfNoneMatch?: string; IfMatch?: string }) =>
      this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: probe, Body: Buffer.from('probe'), ContentLength: 5, ...extra }));
    const refused = async (extra: { IfNoneMatch?: string; IfMatch?: string }): Promise<boolean> => {
      try {
        await put(extra);
        return false; // overwrote although the condition failed: not supported
      } catch (err) {
        const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
        if (status === 412) return true;
        if (status === 501 || status === 400) return false; // NotImplemented / rejected header
        throw this.mapError(err, probe.slice(this.prefix.length), 'write');
      }
    };
    try {
      await put({});
      return (await refused({ IfNoneMatch: '*' })) && (await refused({ IfMatch: '"00000000000000000000000000000000"' }));
    } catch (err) {
      throw err instanceof StorageError ? err : this.mapError(err, probe.slice(this.prefix.length), 'write');
    } finally {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: probe })).catch(() => undefined);
    }
  }

  // ---- internals ----

  private modeConflict(recorded: CasMode): StorageError {
    return new StorageError('s3-cas-mode-conflict', `This remote records compare-and-swap mode "${recorded}", but dits.s3.conditionalWrites is "on"`, {
      hint: 'Clients of one remote must use the same mode; unset dits.s3.conditionalWrites (auto follows the record).',
    });
  }

  private async readCasMode(): Promise<CasMode | null> {
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.prefix + CAS_MODE_KEY }));
      const text = (await readStreamToBuffer(out.Body as Readable)).toString('utf8').trim();
      if (text === 'native' || text === 'log') return text;
      throw new StorageError('storage-format', `Unknown compare-and-swap mode "${text}" recorded in ${this.location}${CAS_MODE_KEY}`, {
        hint: 'This remote was written by a newer Dits; upgrade Dits.',
      });
    } catch (err) {
      if (err instanceof StorageError) throw err;
      const mapped = this.mapError(err, CAS_MODE_KEY, 'read');
      if (mapped.code === 'storage-not-found') return null;
      throw mapped;
    }
  }

  private async recordCasMode(mode: CasMode): Promise<CasMode> {
    const body = Buffer.from(`${mode}\n`);
    try {
      await this.send(
        () =>
          this.client.send(
            new PutObjectCommand({
              Bucket: this.bucket,
              Key: this.prefix + CAS_MODE_KEY,
              Body: body,
              ContentLength: body.length,
              // where supported, the first writer's record stands; elsewhere racing writers
              // probed the same service and write the same text
              ...(mode === 'native' ? { IfNoneMatch: '*' } : {}),
            }),
          ),
        (err) => this.mapError(err, CAS_MODE_KEY, 'write'),
      );
      return mode;
    } catch (err) {
      if ((err as StorageError).status === 412) return (await this.readCasMode()) ?? mode;
      throw err;
    }
  }

  private mapError(err: unknown, key: string | undefined, op: string): StorageError {
    return mapS3Error(err, { bucket: this.bucket, key: key === undefined ? undefined : this.prefix + key, op, endpoint: this.endpointLabel, storageKey: key });
  }

  private async putSingle(full: string, body: Buffer | Readable, size: number, contentType: string | undefined): Promise<{ etag: string }> {
    const key = full.slice(this.prefix.length);
    const mapError = (err: unknown) => this.mapError(err, key, 'write');
    if (Buffer.isBuffer(body)) {
      const request = () => this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: full, Body: body, ContentLength: size, ContentType: contentType }));
      return { etag: (await this.send(request, mapError)).ETag ?? '' };
    }
    // a stream that is not the announced size fails with a clear size mismatch: too short, the
    // request would hang waiting for the rest; too long, it would send more than ContentLength
    let mismatch: StorageError | null = null;
    const guarded = body.pipe(
      sizeGuard(size, (seen) => (mismatch = new StorageError('storage-size-mismatch', `Body for ${key} had ${seen} bytes or more, ${size} were announced`, { key }))),
    );
    let bodyError: unknown = null;
    body.once('error', (err) => {
      bodyError = err;
      guarded.destroy(err);
    });
    // the SDK does not end its request when the body fails: cut it
    const abort = new AbortController();
    guarded.once('error', () => abort.abort());
    try {
      const put = new PutObjectCommand({ Bucket: this.bucket, Key: full, Body: guarded, ContentLength: size, ContentType: contentType });
      return { etag: (await this.client.send(put, { abortSignal: abort.signal })).ETag ?? '' }; // a stream cannot be replayed: the caller retries
    } catch (err) {
      // the cause, not the abort it led to
      throw mismatch ?? mapError(bodyError ?? err);
    } finally {
      guarded.destroy();
    }
  }

  private async putMultipart(
    full: string,
    stream: Readable,
    opts: PutOptions,
    started: { reader: PartReader; first: Buffer } | undefined,
  ): Promise<{ etag: string }> {
    const key = full.slice(this.prefix.length);
    let uploadId: string;
    try {
      const created = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: full, ContentType: opts.contentType }));
      if (!created.UploadId) throw new StorageError('s3-error', `No upload id returned for ${this.location}${key}`, { key });
      uploadId = created.UploadId;
    } catch (err) {
      throw this.mapError(err, key, 'write');
    }
    const reader = started?.reader ?? new PartReader(stream, this.partSize);
    const parts: { PartNumber: number; ETag: string }[] = [];
    const inFlight = new Set<Promise<void>>();
    let failure: unknown;
    let total = 0;
    try {
      let partNumber = 0;
      let pending: Buffer | undefined = started?.first;
      for (;;) {
        const data = pending ?? (reader.done ? undefined : await reader.next());
        pending = undefined;
        if (data === undefined || (data.length === 0 && partNumber > 0)) break;
        partNumber += 1;
        total += data.length;
        const number = partNumber;
        const task = this.uploadPart(full, uploadId, number, data).then(
          (etag) => {
            parts.push({ PartNumber: number, ETag: etag });
          },
          (err) => {
            failure ??= err;
          },
        );
        const tracked = task.finally(() => inFlight.delete(tracked));
        inFlight.add(tracked);
        if (inFlight.size >= this.partConcurrency) await Promise.race(inFlight);
        if (failure !== undefined) break;
      }
      await Promise.all(inFlight);
      if (failure !== undefined) throw failure;
      checkSize(key, opts.size, total);
      parts.sort((a, b) => a.PartNumber - b.PartNumber);
      const done = await this.client.send(
        new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: full, UploadId: uploadId, MultipartUpload: { Parts: parts } }),
      );
      return { etag: done.ETag ?? '' };
    } catch (err) {
      await Promise.allSettled(inFlight);
      // s3rver lacks AbortMultipartUpload; on AWS a lifecycle rule should also expire leftovers
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: full, UploadId: uploadId })).catch(() => undefined);
      if (err instanceof RetriesExhaustedError) throw this.mapError(err.lastError, key, 'write');
      throw err instanceof StorageError ? err : this.mapError(err, key, 'write');
    }
  }

  private async uploadPart(full: string, uploadId: string, partNumber: number, data: Buffer): Promise<string> {
    return withRetry(
      async () => {
        try {
          const out = await this.client.send(
            new UploadPartCommand({ Bucket: this.bucket, Key: full, UploadId: uploadId, PartNumber: partNumber, Body: data, ContentLength: data.length }),
          );
          if (!out.ETag) throw new StorageError('s3-error', `No etag returned for part ${partNumber} of ${full}`, { retryable: true });
          return out.ETag;
        } catch (err) {
          throw this.mapError(err, full.slice(this.prefix.length), 'write');
        }
      },
      this.retry,
      this.retryDeps,
    );
  }

  /**
   * Pages by "start after the last key of the previous page" (StartAfter in ListObjectsV2,
   * Marker in V1): equivalent to continuation tokens on AWS, where keys list in byte order.
   * V1 is the fallback for servers whose V2 paging is broken: s3rver builds V2 tokens with
   * a DES cipher that OpenSSL 3 lacks, so every truncated V2 page is a 500 there. After a
   * V2 page fails with a 5xx and the same page works with V1, this storage stays on V1.
   */
  private async *listFull(fullPrefix: string): AsyncIterable<{ key: string; size: number; storageClass?: string; lastModified?: number }> {
    const mapError = (err: unknown) =>
      mapS3Error(err, { bucket: this.bucket, op: 'list', endpoint: this.endpointLabel, key: fullPrefix === '' ? undefined : fullPrefix });
    const pageV1 = (after: string | undefined) =>
      this.send(() => this.client.send(new ListObjectsCommand({ Bucket: this.bucket, Prefix: fullPrefix, MaxKeys: this.listPageSize, Marker: after })), mapError);
    const pageV2 = (after: string | undefined) =>
      this.send(() => this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: fullPrefix, MaxKeys: this.listPageSize, StartAfter: after })), mapError);
    let after: string | undefined;
    for (;;) {
      let page: { Contents?: { Key?: string; Size?: number; StorageClass?: string; LastModified?: Date }[]; IsTruncated?: boolean };
      if (this.listVersion === 1) {
        page = await pageV1(after);
      } else {
        try {
          page = await pageV2(after);
        } catch (err) {
          if (!((err as StorageError).status !== undefined && (err as StorageError).status! >= 500)) throw err;
          page = await pageV1(after).catch(() => {
            throw err;
          });
          this.listVersion = 1;
        }
      }
      const contents = page.Contents ?? [];
      for (const obj of contents) {
        if (obj.Key !== undefined) yield { key: obj.Key, size: obj.Size ?? 0, storageClass: obj.StorageClass, lastModified: obj.LastModified?.getTime() };
      }
      const last = contents[contents.length - 1]?.Key;
      if (!page.IsTruncated || last === undefined) return;
      after = last;
    }
  }

  /**
   * Sends a request whose body can be replayed, retrying transient failures (5xx,
   * throttling, resets) with a short policy; errors come out mapped by `mapError`.
   */
  private async send<O>(request: () => Promise<O>, mapError: (err: unknown) => StorageError): Promise<O> {
    try {
      return await withRetry(
        async () => {
          try {
            return await request();
          } catch (err) {
            throw mapError(err);
          }
        },
        this.requestRetry,
        this.retryDeps,
      );
    } catch (err) {
      if (err instanceof RetriesExhaustedError) throw err.lastError;
      throw err;
    }
  }

  private rawBackend(): CasLogBackend {
    const keyOf = (full: string) => full.slice(this.prefix.length);
    return {
      putRaw: async (full, body) => {
        await this.send(
          () => this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: full, Body: body, ContentLength: body.length })),
          (err) => this.mapError(err, keyOf(full), 'write'),
        );
      },
      getRaw: async (full) => {
        try {
          return await this.send(
            async () => readStreamToBuffer((await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: full }))).Body as Readable),
            (err) => this.mapError(err, keyOf(full), 'read'),
          );
        } catch (err) {
          if ((err as StorageError).code === 'storage-not-found') return null;
          throw err;
        }
      },
      listRaw: (fullPrefix) => {
        const source = this.listFull(fullPrefix);
        return (async function* () {
          for await (const obj of source) yield obj.key;
        })();
      },
      deleteRaw: async (full) => {
        await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: full })).catch(() => undefined);
      },
    };
  }
}

const SILENT_LOGGER = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };

/** Builds the SDK client: the default provider chain, overridden by the options. */
export function createS3Client(options: S3StorageOptions): S3Client {
  const agentOptions = { keepAlive: true, maxSockets: options.maxSockets ?? 64 };
  const config: S3ClientConfig = {
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: options.maxAttempts ?? 1,
    // The SDK's own logging stays silent: errors reach the caller as thrown errors. (Its
    // default NoOpLogger is not enough: for a failed streamed request the retry middleware
    // then warns on console, once per request: dozens of lines before the real error.)
    logger: SILENT_LOGGER,
    forcePathStyle: options.forcePathStyle,
    endpoint: options.endpoint,
    profile: options.profile,
    credentials: options.credentials,
    requestHandler: {
      connectionTimeout: options.connectTimeoutMs ?? 10_000,
      requestTimeout: options.socketTimeoutMs ?? 120_000,
      httpAgent: new http.Agent(agentOptions),
      httpsAgent: new https.Agent(agentOptions),
    },
  };
  if (options.region !== undefined) {
    config.region = options.region;
  } else if (options.endpoint !== undefined) {
    // A custom endpoint often has no meaningful region: use the configured one if any
    // (env, profile), else us-east-1, which MinIO and s3rver expect.
    const chain = new S3Client({ profile: options.profile });
    config.region = async () => {
      try {
        return await chain.config.region();
      } catch {
        return 'us-east-1';
      }
    };
  }
  return new S3Client(config);
}

/** "bytes 0-99/5000" -> { start: 0, total: 5000 } */
function parseContentRange(header: string | undefined): { start: number; total: number | undefined } | undefined {
  const m = header === undefined ? null : /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header.trim());
  if (!m) return undefined;
  return { start: Number(m[1]), total: m[3] === '*' ? undefined : Number(m[3]) };
}

/** Bytes start..end (inclusive) of a stream that holds a whole object. */
function checkSize(key: string, announced: number | undefined, actual: number): void {
  if (announced !== undefined && announced !== actual) {
    throw new StorageError('storage-size-mismatch', `Body for ${key} had ${actual} bytes, ${announced} were announced`, { key });
  }
}

/**
 * Cuts a stream into Buffers of exactly `size` bytes (the last may be shorter or empty).
 * Each part is one allocation that incoming chunks are copied into, so memory is one part
 * plus one stream chunk, not twice a part as with collecting chunks and concatenating.
 */
class PartReader {
  private ended = false;
  private readonly iterator: AsyncIterator<Buffer | string>;
  private leftover: Buffer | undefined;

  constructor(
    stream: Readable,
    private readonly size: number,
  ) {
    this.iterator = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
  }

  /** True once the stream has ended and every byte was handed out. */
  get done(): boolean {
    return this.ended && (this.leftover === undefined || this.leftover.length === 0);
  }

  async next(): Promise<Buffer> {
    let part: Buffer | undefined;
    let filled = 0;
    const take = (chunk: Buffer): void => {
      part ??= Buffer.allocUnsafe(this.size);
      const n = Math.min(chunk.length, this.size - filled);
      chunk.copy(part, filled, 0, n);
      filled += n;
      this.leftover = n < chunk.length ? chunk.subarray(n) : undefined;
    };
    if (this.leftover) take(this.leftover);
    while (filled < this.size && !this.ended) {
      const step = await this.iterator.next();
      if (step.done) {
        this.ended = true;
        break;
      }
      take(typeof step.value === 'string' ? Buffer.from(step.value) : step.value);
    }
    if (!part) return Buffer.alloc(0);
    return filled === this.size ? part : part.subarray(0, filled);
  }
}

/** CopySource of a copy within the bucket: URL-encoded `bucket/key` as S3 expects it. */
function copySourceOf(bucket: string, fullKey: string): string {
  return `${bucket}/${fullKey.split('/').map(encodeURIComponent).join('/')}`;
}

/**
 * HEAD's `x-amz-restore`: `ongoing-request="true"` while a restore runs,
 * `ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"` once done; null
 * when absent (never asked, or the restored copy expired).
 */
export function parseRestoreHeader(header: string | undefined): RestoreState | null {
  if (header === undefined || header.trim() === '') return null;
  const ongoing = /ongoing-request\s*=\s*"?(true|false)"?/i.exec(header);
  if (!ongoing) return null;
  if (ongoing[1]!.toLowerCase() === 'true') return { ongoing: true };
  const expiry = /expiry-date\s*=\s*"([^"]+)"/i.exec(header);
  const at = expiry ? Date.parse(expiry[1]!) : NaN;
  return Number.isNaN(at) ? { ongoing: false } : { ongoing: false, expiry: at };
}
