/**
 * Maps what the AWS SDK throws to StorageErrors with stable codes and hints that say what
 * to do. Shapes handled: service errors (`name` is the S3 error code, `$metadata` has the
 * HTTP status; HEAD answers have no body, so only the status), credential provider errors
 * (`name` CredentialsProviderError), client configuration errors (missing region), and
 * Node socket errors (`code` ECONNREFUSED, ENOTFOUND, ...), possibly nested in `cause`.
 */
import { errnoCode } from '../errors.js';
import { FrozenObjectError } from '../tier/tier-storage.js';
import { isRetryable, isUnreachableErrno, StorageError } from './storage-error.js';

export interface S3ErrorContext {
  bucket: string;
  /** full object key, or undefined for bucket-level calls */
  key?: string;
  /** what we were doing, for the message: "read", "write", "list", "delete" */
  op: string;
  /** endpoint for messages: the configured one or "AWS S3" */
  endpoint: string;
  /** the key as the storage's caller named it (without the storage's prefix), for errors that carry it */
  storageKey?: string;
}

function statusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

function nameOf(err: unknown): string {
  const e = err as { name?: unknown; Code?: unknown };
  return typeof e?.Code === 'string' ? e.Code : typeof e?.name === 'string' ? e.name : '';
}

function findErrno(err: unknown, depth = 0): string | undefined {
  if (depth > 4 || typeof err !== 'object' || err === null) return undefined;
  return errnoCode(err) ?? findErrno((err as { cause?: unknown }).cause, depth + 1);
}

export function mapS3Error(err: unknown, ctx: S3ErrorContext): StorageError {
  if (err instanceof StorageError) return err;
  // the raw HTTP response (sockets, agents) is kept by the SDK error: drop it, it only
  // bloats logs and pins memory
  if (typeof err === 'object' && err !== null && '$response' in err) {
    try {
      Object.defineProperty(err, '$response', { value: undefined, enumerable: false });
    } catch {
      // not configurable: leave it
    }
  }
  const name = nameOf(err);
  const status = statusOf(err);
  const message = (err as Error)?.message ?? String(err);
  const where = ctx.key === undefined ? `s3://${ctx.bucket}` : `s3://${ctx.bucket}/${ctx.key}`;
  const base = { cause: err, key: ctx.key, status };

  if (name === 'NoSuchBucket' || (ctx.key === undefined && status === 404)) {
    return new StorageError('s3-no-such-bucket', `Bucket "${ctx.bucket}" does not exist at ${ctx.endpoint}`, {
      ...base,
      hint: 'Check the bucket name in the remote URL (`git remote -v`; dits::s3://<bucket>/<prefix>) and the endpoint (`git config dits.s3.endpoint`), or create the bucket.',
    });
  }
  if (name === 'NoSuchKey' || (status === 404 && ctx.key !== undefined)) {
    return new StorageError('storage-not-found', `No object ${where}`, base);
  }
  if (name === 'InvalidObjectState') {
    // an archived object (GLACIER, DEEP_ARCHIVE) without a finished restore: a GET, a ranged
    // GET or a copy from it. Never retried: only a restore (hours) makes it readable.
    const storageClass = (err as { StorageClass?: unknown }).StorageClass;
    return new FrozenObjectError(ctx.storageKey ?? ctx.key ?? where, typeof storageClass === 'string' ? storageClass : undefined, { cause: err, status: status ?? 403 });
  }
  if (name === 'GlacierExpeditedRetrievalNotAvailable') {
    return new StorageError('s3-expedited-unavailable', `Expedited retrievals are not available now for ${where}`, {
      ...base,
      hint: 'AWS has no expedited capacity at the moment: ask again later, or use the standard or bulk retrieval tier (`--tier standard`).',
    });
  }
  if (name === 'InvalidRange' || status === 416) {
    return new StorageError('storage-bad-range', `Range not satisfiable for ${where}`, base);
  }
  if (name === 'CredentialsProviderError' || /could not load credentials/i.test(message)) {
    return new StorageError('s3-no-credentials', `No AWS credentials found to ${ctx.op} ${where}`, {
      ...base,
      hint:
        'Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or put a profile in ~/.aws/credentials (or ~/.aws/config) ' +
        'and select it with AWS_PROFILE or `git config dits.s3.profile <name>`.',
    });
  }
  if (/^(ExpiredToken|ExpiredTokenException|TokenRefreshRequired|RequestExpired)$/.test(name) || /token.*expired|expired.*token/i.test(message)) {
    return new StorageError('s3-credentials-expired', `Your AWS credentials have expired (${ctx.op} ${where})`, {
      ...base,
      hint: 'Refresh them (for SSO profiles: `aws sso login --profile <name>`; for temporary keys: fetch a new session token), then re-run; completed transfers are not repeated.',
    });
  }
  if (name === 'InvalidAccessKeyId' || name === 'SignatureDoesNotMatch') {
    return new StorageError('s3-bad-credentials', `${ctx.endpoint} rejected your AWS credentials (${name}) for ${where}`, {
      ...base,
      hint: 'Check the access key id and secret (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the profile in ~/.aws/credentials) and that they belong to this endpoint.',
    });
  }
  if (name === 'AccessDenied' || name === 'Forbidden' || name === 'AllAccessDisabled' || status === 403) {
    return new StorageError('s3-access-denied', `Access denied: your credentials may not ${ctx.op} ${where}`, {
      ...base,
      hint: `Ask for s3:GetObject, s3:PutObject, s3:DeleteObject and s3:ListBucket on bucket "${ctx.bucket}", or use another profile (AWS_PROFILE or \`git config dits.s3.profile\`).`,
    });
  }
  if (/region is missing/i.test(message)) {
    return new StorageError('s3-no-region', `No AWS region configured for s3://${ctx.bucket}`, {
      ...base,
      hint: 'Set AWS_REGION, a region in your ~/.aws/config profile, or `git config dits.s3.region <region>`.',
    });
  }
  if (name === 'PermanentRedirect' || name === 'AuthorizationHeaderMalformed' || status === 301) {
    return new StorageError('s3-wrong-region', `Bucket "${ctx.bucket}" is in another region than the one configured`, {
      ...base,
      hint: 'Set the bucket\'s region: `git config dits.s3.region <region>` (or AWS_REGION).',
    });
  }
  const errno = findErrno(err);
  if (errno === 'ENOTFOUND') {
    return new StorageError('storage-unreachable', `Cannot resolve the S3 endpoint host of ${ctx.endpoint} (DNS: no such host)`, {
      ...base,
      hint: 'Check the spelling of the endpoint (`git config dits.s3.endpoint`) and of the bucket name; for buckets with dots or custom endpoints try `git config dits.s3.pathStyle true`.',
    });
  }
  if (isUnreachableErrno(errno)) { // ENOTFOUND: answered above, with its own hint
    return new StorageError('storage-unreachable', `Cannot connect to the S3 endpoint ${ctx.endpoint} (${errno})`, {
      ...base,
      retryable: true,
      hint: 'Check that the endpoint is up and reachable from here (`git config dits.s3.endpoint`), then re-run; completed transfers are not repeated.',
    });
  }
  if (isRetryable(err)) {
    return new StorageError('storage-unavailable', `S3 endpoint ${ctx.endpoint} failed to ${ctx.op} ${where}: ${name || errno || message}${status ? ` (HTTP ${status})` : ''}`, {
      ...base,
      retryable: true,
      hint: 'The storage is busy or failing; re-run later, completed transfers are not repeated.',
    });
  }
  return new StorageError('s3-error', `S3 error while trying to ${ctx.op} ${where}: ${name ? `${name}: ` : ''}${message}${status ? ` (HTTP ${status})` : ''}`, base);
}
