/**
 * HttpStorage: the ObjectStorage of one repository on a Dits server
 * (`dits::http(s)://host:port/owner/repo`), over the server's storage routes
 * (server/routes/storage.ts):
 *
 *   GET|HEAD|PUT|DELETE <base>/storage/o/<key>     objects; GET takes `Range: bytes=a-b` (206)
 *   GET  <base>/storage/list?prefix=&after=&limit=  {objects: [{key, size}], next: key | null}
 *   GET  <base>/storage/v/<key>                     a versioned object: body + ETag
 *   POST <base>/storage/v/<key>                     compare-and-swap: If-Match / If-None-Match: *
 *                                                   -> 200 {etag} or 412 {current: {etag} | null}
 *   POST <base>/storage/presign {op, key, size?}     -> 200 {url, method, headers, expiresAt}, or
 *                                                   204: no direct transfers (a folder behind the server)
 *   GET  /api/repos/<owner>/<repo>                  checkAccess
 *   POST <base>/thaw {files, tier, days, dryRun?}    requestThaw: restores from the server's archive
 *
 * Direct transfers: when S3 is behind the server, the bytes of large objects go straight
 * to and from S3 with URLs the server presigns after checking the token and role. Bodies
 * put as streams (packs) or Buffers of at least `directMinBytes`, and GETs of packs
 * (`v1/packs/*.pack`, ranged or whole), go direct; small objects (refs, format, manifests,
 * listings, HEADs) stay on the server's routes. A GET URL is reused for the same key until
 * shortly before it expires; a 403 from S3 (expired, clock skew) presigns again. A server
 * that answers 204 (or lacks the route) is asked no more: everything goes through it. An
 * S3 endpoint this client cannot reach (the server's endpoint is internal) also turns
 * direct transfers off for this storage, falling back to the server.
 *
 * Etags travel quoted and percent-encoded (`"<encodeURIComponent(etag)>"`) so any opaque
 * back-end etag fits a header. Key segments are percent-encoded in the path.
 *
 * Errors: 401 `auth-required` (with how to get and store a token), 403 `forbidden`,
 * 404 `repo-not-found` for the repository, StorageError storage-not-found for a missing
 * object, 416 storage-bad-range, connection refused `server-unreachable`; an archived
 * object without a finished restore (423 from the server, or S3's 403 InvalidObjectState
 * through a presigned URL) is FrozenObjectError (`storage-frozen`), never retried. 5xx, 429 and
 * dropped connections are retried (requests whose body can be replayed; a streamed put
 * calls its body factory once, so the transfer queue retries it as a whole).
 */
import { Readable } from 'node:stream';
import { sizeGuard } from './size-guard.js';
import { currentErrorCode, errnoCode } from '../errors.js';
import {
  assertValidKey,
  assertValidPrefix,
  assertValidRange,
  readStreamToBuffer,
  sliceStream,
  type ByteRange,
  type ListedObject,
  type ObjectInfo,
  type ObjectStorage,
  type PutBody,
  type PutIfResult,
  type PutOptions,
  type VersionedObject,
} from './object-storage.js';
import { DEFAULT_RETRY_POLICY, realRetryDeps, RetriesExhaustedError, withRetry, type RetryDeps, type RetryPolicy } from './retry.js';
import { isUnreachableErrno, StorageError } from './storage-error.js';
import { FROZEN_CODE, FrozenObjectError } from '../tier/tier-storage.js';

/** `"<percent-encoded etag>"`: an opaque etag as an HTTP entity tag. */
export function encodeEtagHeader(etag: string): string {
  return `"${encodeURIComponent(etag)}"`;
}

/** The inverse of encodeEtagHeader; undefined for a missing or malformed header. */
export function decodeEtagHeader(header: string | null | undefined): string | undefined {
  if (header == null) return undefined;
  const m = /^(?:W\/)?"([^"]*)"$/.exec(header.trim());
  if (!m) return undefined;
  try {
    return decodeURIComponent(m[1]!);
  } catch {
    return undefined;
  }
}

/**
 * A Node stream as a web stream that reads only when the consumer pulls. Node 20's
 * `Readable.toWeb` reads ahead without limit (a 1 GiB upload took 1 GiB of memory).
 */
export function toPullStream(stream: Readable, onChunk?: (bytes: number) => void): ReadableStream<Uint8Array> {
  const it = stream[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const { done, value } = await it.next();
        if (done) controller.close();
        else {
          onChunk?.((value as Uint8Array).byteLength);
          controller.enqueue(value as Uint8Array);
        }
      },
      cancel() {
        stream.destroy();
      },
    },
    { highWaterMark: 0 },
  );
}

/** Carries the error code of answers without a body (HEAD). */
export const ERROR_CODE_HEADER = 'dits-error-code';

/** A key as a URL path: each segment percent-encoded. */
export function encodeKeyPath(key: string): string {
  return key.split('/').map(encodeURIComponent).join('/');
}

/** Supplies the token for a request; undefined sends none. Called once per storage. */
export type TokenProvider = () => Promise<string | undefined>;

export interface HttpStorageOptions {
  /** `http(s)://host:port/owner/repo` (no trailing slash needed). */
  baseUrl: string;
  token?: TokenProvider;
  /** Retries of single requests (5xx, resets, refused connections). */
  retry?: RetryPolicy;
  retryDeps?: RetryDeps;
  /** Keys per list page asked of the server. */
  listPageSize?: number;
  fetch?: typeof fetch;
  /** Use presigned URLs when the server hands them out (default true). */
  direct?: boolean;
  /** Buffers at least this large are put directly (default 1 MiB); streamed bodies always are. */
  directMinBytes?: number;
  /** Keys whose GETs go direct (default isDirectGetKey: pack bodies). */
  directGetKeys?: (key: string) => boolean;
  /** Clock for the expiry of cached GET URLs (tests). */
  now?: () => number;
}

/** A presigned request as the server hands it out. */
export interface PresignedUrl {
  url: string;
  method: 'GET' | 'PUT';
  headers: Record<string, string>;
  /** milliseconds since the epoch */
  expiresAt: number;
}

/** Keys whose GETs go direct when the server offers it: pack bodies. */
export function isDirectGetKey(key: string): boolean {
  return key.startsWith('v1/packs/') && key.endsWith('.pack');
}

/** What went where, for reports and tests. */
export interface HttpTransferCounts {
  directPuts: number;
  directGets: number;
  directBytesUp: number;
  presignRequests: number;
  /** puts and GETs of pack bodies that went through the server */
  proxiedPuts: number;
  proxiedPackGets: number;
  /** why direct transfers were turned off, if they were */
  directOffReason?: string;
}

/** A cached GET URL is used until this long before it expires. */
const URL_EXPIRY_MARGIN_MS = 60_000;
const MAX_CACHED_URLS = 1024;

/** Fewer, shorter attempts than the queue's policy: the queue retries whole items too. */
export const HTTP_REQUEST_RETRY: RetryPolicy = { ...DEFAULT_RETRY_POLICY, maxAttempts: 4, baseDelayMs: 200 };

interface ErrorBody {
  message?: string;
  code?: string;
  current?: { etag: string } | null;
  /** 423 storage-frozen: the class the object rests in */
  storageClass?: string | null;
}

export class HttpStorage implements ObjectStorage {
  readonly location: string;
  private readonly base: URL;
  private readonly owner: string;
  private readonly repo: string;
  private readonly tokenProvider?: TokenProvider;
  private tokenPromise?: Promise<string | undefined>;
  private readonly retry: RetryPolicy;
  private readonly retryDeps: RetryDeps;
  private readonly pageSize: number;
  private readonly fetchFn: typeof fetch;
  private directState: 'unknown' | 'on' | 'off';
  private readonly directMinBytes: number;
  private readonly directGetKeys: (key: string) => boolean;
  private readonly now: () => number;
  private readonly getUrls = new Map<string, PresignedUrl>();
  private readonly pendingGetUrls = new Map<string, Promise<PresignedUrl | null>>();
  readonly counts: HttpTransferCounts = { directPuts: 0, directGets: 0, directBytesUp: 0, presignRequests: 0, proxiedPuts: 0, proxiedPackGets: 0 };

  constructor(options: HttpStorageOptions) {
    const url = new URL(options.baseUrl);
    const parts = url.pathname.split('/').filter((s) => s !== '');
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || parts.length !== 2) {
      throw new StorageError('bad-storage-url', `A Dits server remote is http(s)://host[:port]/<owner>/<repo>, not ${options.baseUrl}`, {
        hint: 'Write it as dits::http://127.0.0.1:8080/team/film.',
      });
    }
    [this.owner, this.repo] = parts.map((p) => decodeURIComponent(p)) as [string, string];
    url.pathname = `/${parts.join('/')}`;
    url.search = '';
    url.hash = '';
    this.base = url;
    this.location = url.href;
    this.tokenProvider = options.token;
    this.retry = options.retry ?? HTTP_REQUEST_RETRY;
    this.retryDeps = options.retryDeps ?? realRetryDeps;
    this.pageSize = options.listPageSize ?? 1000;
    this.fetchFn = options.fetch ?? fetch;
    this.directState = options.direct === false ? 'off' : 'unknown';
    this.directMinBytes = options.directMinBytes ?? 1024 * 1024;
    this.directGetKeys = options.directGetKeys ?? isDirectGetKey;
    this.now = options.now ?? Date.now;
  }

  async checkAccess(): Promise<void> {
    const res = await this.send('GET', `/api/repos/${encodeURIComponent(this.owner)}/${encodeURIComponent(this.repo)}`, { root: true });
    await res.body?.cancel();
  }

  /**
   * POST <base>/thaw (server/routes/thaw.ts): restores from the server's own archive, or with
   * `dryRun` only their plan and cost. Sent once (the server reserves budget for it); a
   * refusal over the repository's monthly budget is `thaw-over-budget`.
   */
  async requestThaw(body: { files: { manifest: string; path?: string; range?: { startSec: number; endSec: number } }[]; tier: string; days: number; dryRun?: boolean }): Promise<unknown> {
    try {
      const res = await this.send('POST', '/thaw', { headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify(body)), once: true });
      return await res.json();
    } catch (err) {
      if (err instanceof StorageError && err.status === 402) {
        throw new StorageError('thaw-over-budget', err.message.replace(/^The Dits server answered 402: /, ''), {
          status: 402,
          hint: `an admin of the server can raise it: \`git dits server repo budget ${this.owner}/${this.repo} <dollars>\`; or choose a cheaper --tier`,
        });
      }
      throw err;
    }
  }

  /** GET <base>/thaw/<id>: a thaw's record and each pack's progress as the server's archive reports it. */
  async thawProgress(id: string): Promise<{ progress: { packId: string; state: string; expiry?: string }[]; done: boolean }> {
    const res = await this.send('GET', `/thaw/${encodeURIComponent(id)}`, {});
    return (await res.json()) as { progress: { packId: string; state: string; expiry?: string }[]; done: boolean };
  }

  async put(key: string, body: PutBody, opts: PutOptions = {}): Promise<{ etag: string }> {
    assertValidKey(key);
    const size = Buffer.isBuffer(body) ? body.length : opts.size;
    if (Buffer.isBuffer(body) && opts.size !== undefined && opts.size !== body.length) {
      throw new StorageError('storage-size-mismatch', `Body for ${key} has ${body.length} bytes, ${opts.size} were announced`, { key });
    }
    if (this.directState !== 'off' && size !== undefined && size > 0 && (!Buffer.isBuffer(body) || size >= this.directMinBytes)) {
      const direct = await this.putDirect(key, body, size);
      if (direct !== null) return direct;
    }
    if (isDirectGetKey(key)) this.counts.proxiedPuts++;
    const path = `/storage/o/${encodeKeyPath(key)}`;
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
    let res: Response;
    if (Buffer.isBuffer(body)) {
      res = await this.send('PUT', path, { headers, body, key });
    } else {
      // streamed: the factory is called once, so no retry here (the queue retries the item)
      if (opts.size !== undefined) headers['content-length'] = String(opts.size);
      const stream = body();
      try {
        res = await this.putStream(path, stream, headers, key);
      } finally {
        if (!stream.readableEnded) stream.destroy();
      }
      if (!res.ok) throw await this.statusError(res, key);
    }
    const json = (await res.json()) as { etag?: string };
    if (typeof json.etag !== 'string') throw new StorageError('server-error', `The server answered a put of ${key} without an etag`, { key, retryable: true });
    return { etag: json.etag };
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    if (this.directState !== 'off' && this.directGetKeys(key)) {
      const direct = await this.getDirect(key, range, false);
      if (direct !== null) return direct;
    }
    const res = await this.getResponse(key, range);
    if (res.body === null) return Readable.from([]);
    return Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
  }

  async getBuffer(key: string, range?: ByteRange): Promise<Buffer> {
    if (this.directState !== 'off' && this.directGetKeys(key)) {
      // headers and body retried together, with a fresh URL after a 403
      const direct = await this.retrying(async () => {
        const stream = await this.getDirect(key, range, true);
        return stream === null ? null : readStreamToBuffer(stream);
      });
      if (direct !== null) return direct;
    }
    // the whole exchange (headers and body) is retried, unlike a stream handed out
    return this.retrying(async () => Buffer.from(await (await this.getResponse(key, range, true)).arrayBuffer()));
  }

  async head(key: string): Promise<ObjectInfo | null> {
    assertValidKey(key);
    const res = await this.send('HEAD', `/storage/o/${encodeKeyPath(key)}`, { key, allowNotFound: true });
    if (res.status === 404) {
      if (res.headers.get(ERROR_CODE_HEADER) === 'object-not-found') return null;
      throw await this.statusError(res, key);
    }
    const size = Number(res.headers.get('content-length'));
    const etag = decodeEtagHeader(res.headers.get('etag'));
    if (!Number.isSafeInteger(size) || etag === undefined) {
      throw new StorageError('server-error', `The server answered HEAD ${key} without a size or an etag`, { key, retryable: true });
    }
    return { size, etag };
  }

  async *list(prefix: string): AsyncIterable<ListedObject> {
    assertValidPrefix(prefix);
    let after: string | null = null;
    for (;;) {
      const q = new URLSearchParams({ prefix, limit: String(this.pageSize) });
      if (after !== null) q.set('after', after);
      const res = await this.send('GET', `/storage/list?${q.toString()}`, {});
      const page = (await res.json()) as { objects: ListedObject[]; next: string | null };
      for (const o of page.objects) yield { key: o.key, size: o.size };
      if (page.next === null || page.next === undefined) return;
      after = page.next;
    }
  }

  async delete(key: string): Promise<void> {
    assertValidKey(key);
    const res = await this.send('DELETE', `/storage/o/${encodeKeyPath(key)}`, { key });
    await res.body?.cancel();
  }

  async putIf(key: string, body: Buffer, expected: { etag: string } | 'absent'): Promise<PutIfResult> {
    assertValidKey(key);
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
    if (expected === 'absent') headers['if-none-match'] = '*';
    else headers['if-match'] = encodeEtagHeader(expected.etag);
    const res = await this.send('POST', `/storage/v/${encodeKeyPath(key)}`, { headers, body, key, allowPreconditionFailed: true });
    const json = (await res.json()) as ErrorBody & { etag?: string };
    if (res.status === 412) return { ok: false, current: json.current ?? null };
    if (typeof json.etag !== 'string') throw new StorageError('server-error', `The server answered a putIf of ${key} without an etag`, { key, retryable: true });
    return { ok: true, etag: json.etag };
  }

  async getVersioned(key: string): Promise<VersionedObject | null> {
    assertValidKey(key);
    return this.retrying(async () => {
      const res = await this.send('GET', `/storage/v/${encodeKeyPath(key)}`, { key, allowNotFound: true, once: true });
      if (res.status === 404) {
        await res.body?.cancel();
        return null;
      }
      const etag = decodeEtagHeader(res.headers.get('etag'));
      const buf = Buffer.from(await res.arrayBuffer());
      if (etag === undefined) throw new StorageError('server-error', `The server answered ${key} without an etag`, { key, retryable: true });
      return { body: buf, etag };
    });
  }

  private async getResponse(key: string, range: ByteRange | undefined, once = false): Promise<Response> {
    assertValidKey(key);
    const headers: Record<string, string> = {};
    assertValidRange(range, key);
    if (range !== undefined) headers.range = `bytes=${range.start}-${range.end}`;
    if (isDirectGetKey(key)) this.counts.proxiedPackGets++;
    return this.send('GET', `/storage/o/${encodeKeyPath(key)}`, { headers, key, once });
  }

  /**
   * A streamed PUT over node:http(s), not fetch: undici's fetch (Node 20) reads a request
   * body stream ahead without limit, so a 1 GiB upload held 1 GiB; `pipe` into the request
   * waits for the socket. The small answer is returned as a web Response.
   */
  private async putStream(path: string, stream: Readable, headers: Record<string, string>, key: string): Promise<Response> {
    const token = await this.token();
    const all: Record<string, string> = { ...headers };
    if (token !== undefined) all.authorization = `Bearer ${token}`;
    return this.pipeRequest(new URL(this.base.href + path), stream, all, key, { mapError: (err) => this.networkError(err, key) });
  }

  /**
   * PUTs `stream` to `url` over node:http(s) with backpressure; answers as a web Response.
   * With `expectedBytes`, a body longer or shorter than that fails the request (the request
   * is cut, never ended) rather than leave the receiver waiting for bytes that never come.
   */
  private async pipeRequest(
    url: URL,
    stream: Readable,
    headers: Record<string, string>,
    key: string,
    opts: { expectedBytes?: number; mapError: (err: unknown) => StorageError },
  ): Promise<Response> {
    const { request } = url.protocol === 'https:' ? await import('node:https') : await import('node:http');
    return new Promise<Response>((resolve, reject) => {
      const req = request(url, { method: 'PUT', headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => reject(opts.mapError(err)));
        res.on('end', () => {
          const h = new Headers();
          for (const [name, value] of Object.entries(res.headers)) if (typeof value === 'string') h.set(name, value);
          resolve(new Response(chunks.length === 0 ? null : Buffer.concat(chunks), { status: res.statusCode ?? 500, headers: h }));
        });
      });
      req.on('error', (err) => reject(opts.mapError(err)));
      const fail = (err: unknown): void => {
        req.destroy();
        reject(err);
      };
      stream.once('error', fail);
      const expected = opts.expectedBytes;
      if (expected === undefined) {
        stream.pipe(req);
        return;
      }
      const guard = sizeGuard(expected, (seen) => new StorageError('storage-size-mismatch', `The body of ${key} had ${seen} bytes or more, ${expected} were announced`, { key }));
      guard.once('error', fail);
      stream.pipe(guard).pipe(req);
    });
  }

  // ---- direct transfers (presigned URLs) ----

  /** Asks the server for a presigned request; null when it hands none out (then never again). */
  private async presign(op: 'get' | 'put', key: string, size?: number): Promise<PresignedUrl | null> {
    if (this.directState === 'off') return null;
    this.counts.presignRequests++;
    const body = Buffer.from(JSON.stringify(size === undefined ? { op, key } : { op, key, size }));
    const res = await this.send('POST', '/storage/presign', { headers: { 'content-type': 'application/json' }, body, key, allowNotFound: true });
    if (res.status === 404) {
      const copy = res.clone();
      let code: string | undefined;
      try {
        code = ((await res.json()) as ErrorBody).code;
      } catch {
        // not JSON
      }
      // the repository's 404 is an error; any other (a server without the route) means "no"
      if (code === 'repo-not-found') throw await this.statusError(copy, key);
      this.turnDirectOff('the server has no presign route');
      return null;
    }
    if (res.status === 204) {
      await res.body?.cancel();
      this.turnDirectOff('the server proxies the bytes (no S3 behind it, or direct transfers off)');
      return null;
    }
    const json = (await res.json()) as { url?: unknown; method?: unknown; headers?: unknown; expiresAt?: unknown };
    const expiresAt = typeof json.expiresAt === 'string' ? Date.parse(json.expiresAt) : NaN;
    if (typeof json.url !== 'string' || (json.method !== 'GET' && json.method !== 'PUT') || typeof json.headers !== 'object' || json.headers === null || !Number.isFinite(expiresAt)) {
      throw new StorageError('server-error', `The server answered a presign of ${key} without a usable URL`, { key, retryable: true });
    }
    const url = new URL(json.url);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new StorageError('server-error', `The server presigned a ${url.protocol} URL for ${key}`, { key });
    this.directState = 'on';
    return { url: url.href, method: json.method, headers: json.headers as Record<string, string>, expiresAt };
  }

  private turnDirectOff(reason: string): void {
    this.directState = 'off';
    this.counts.directOffReason ??= reason;
    this.getUrls.clear();
  }

  /**
   * A GET URL for `key`: the cached one while it has a minute left, else a new one. Reads
   * of one pack that start together share one presign request.
   */
  private async presignGet(key: string, fresh: boolean): Promise<PresignedUrl | null> {
    const cached = this.getUrls.get(key);
    if (!fresh && cached !== undefined && cached.expiresAt - URL_EXPIRY_MARGIN_MS > this.now()) return cached;
    const pending = this.pendingGetUrls.get(key);
    if (!fresh && pending !== undefined) return pending;
    this.getUrls.delete(key);
    const request = this.presign('get', key).then((p) => {
      if (p !== null) {
        if (this.getUrls.size >= MAX_CACHED_URLS) this.getUrls.delete(this.getUrls.keys().next().value as string);
        this.getUrls.set(key, p);
      }
      return p;
    });
    this.pendingGetUrls.set(key, request);
    try {
      return await request;
    } finally {
      if (this.pendingGetUrls.get(key) === request) this.pendingGetUrls.delete(key);
    }
  }

  /**
   * A pack's bytes straight from S3; null when direct transfers are not (or no longer)
   * available, so the caller goes through the server. A 403 (an expired or refused URL)
   * presigns once more. `once`: no retries here (the caller retries the whole read).
   */
  private async getDirect(key: string, range: ByteRange | undefined, once: boolean): Promise<Readable | null> {
    assertValidKey(key);
    assertValidRange(range, key);
    for (let fresh = false; ; fresh = true) {
      const p = await this.presignGet(key, fresh);
      if (p === null) return null;
      const headers: Record<string, string> = { ...p.headers };
      if (range !== undefined) headers.range = `bytes=${range.start}-${range.end}`;
      const attempt = () => this.directFetch(p.url, { method: 'GET', headers }, key);
      const res = await this.reachDirect(() => (once ? attempt() : this.retrying(attempt)));
      if (res === null) return null;
      if (res.status === 403 && !fresh) {
        // an archived object (S3 403 InvalidObjectState) is frozen, not an expired URL
        const err = await this.directStatusError(res, 'GET', key);
        if (err instanceof FrozenObjectError) throw err;
        continue;
      }
      if (!res.ok) throw await this.directStatusError(res, 'GET', key);
      this.counts.directGets++;
      return rangedBody(res, range, key);
    }
  }

  /** Runs a direct request; null, with direct transfers turned off, when S3 cannot be reached. */
  private async reachDirect(run: () => Promise<Response>): Promise<Response | null> {
    try {
      return await run();
    } catch (err) {
      if (err instanceof StorageError && err.code === 'direct-unreachable') {
        this.turnDirectOff(err.message);
        return null;
      }
      throw err;
    }
  }

  /** A put straight to S3; null when the server hands out no URL (the caller proxies). */
  private async putDirect(key: string, body: PutBody, size: number): Promise<{ etag: string } | null> {
    for (let fresh = false; ; fresh = true) {
      const p = await this.presign('put', key, size);
      if (p === null) return null;
      let res: Response;
      if (Buffer.isBuffer(body)) {
        const r = await this.reachDirect(() => this.retrying(() => this.directFetch(p.url, { method: 'PUT', headers: { ...p.headers }, body: body as unknown as BodyInit }, key)));
        if (r === null) return null;
        res = r;
        if (res.status === 403 && !fresh) {
          await res.body?.cancel();
          continue;
        }
      } else {
        // streamed: the factory is called once, so a failure is thrown (retryable where it
        // makes sense) and the queue's retry of the item presigns again
        const stream = body();
        try {
          res = await this.pipeRequest(new URL(p.url), stream, { ...p.headers, 'content-length': String(size) }, key, {
            expectedBytes: size,
            mapError: (err) => this.directNetworkError(err, p.url, key),
          });
        } catch (err) {
          if (err instanceof StorageError && err.code === 'direct-unreachable') {
            this.turnDirectOff(err.message);
            throw new StorageError('storage-network', `${err.message}; the next attempt goes through the Dits server`, { key, retryable: true, cause: err });
          }
          throw err;
        } finally {
          if (!stream.readableEnded) stream.destroy();
        }
        if (res.status === 403) throw await this.directStatusError(res, 'PUT', key, true);
      }
      if (!res.ok) throw await this.directStatusError(res, 'PUT', key);
      const etag = res.headers.get('etag');
      await res.body?.cancel();
      if (etag === null || etag === '') throw new StorageError('s3-error', `S3 answered the direct put of ${key} without an etag`, { key, retryable: true });
      this.counts.directPuts++;
      this.counts.directBytesUp += size;
      return { etag };
    }
  }

  /**
   * One request to a presigned URL (no Authorization header: the URL carries the
   * signature). Retryable answers (5xx, 429, S3's RequestTimeout) throw; 2xx and other
   * statuses are returned for the caller to judge.
   */
  private async directFetch(url: string, init: RequestInit, key: string): Promise<Response> {
    let res: Response;
    try {
      res = await this.fetchFn(url, init);
    } catch (err) {
      throw this.directNetworkError(err, url, key);
    }
    if (res.status >= 500 || res.status === 429 || res.status === 408) throw await this.directStatusError(res, init.method ?? 'GET', key);
    return res;
  }

  private directNetworkError(err: unknown, url: string, key: string): StorageError {
    if (err instanceof StorageError) return err;
    const cause = (err as { cause?: unknown })?.cause;
    const code = errnoCode(cause) ?? errnoCode(err);
    const origin = new URL(url).origin;
    if (isUnreachableErrno(code)) {
      return new StorageError('direct-unreachable', `Cannot reach the storage at ${origin} that the Dits server presigned for (${code})`, { key, cause: err });
    }
    const message = (cause as Error)?.message ?? (err as Error)?.message ?? String(err);
    return new StorageError('storage-network', `Direct transfer of ${key} to ${origin} failed: ${message}`, { key, cause: err, retryable: true });
  }

  private async directStatusError(res: Response, method: string, key: string, retryable403 = false): Promise<StorageError> {
    let text = '';
    try {
      text = await res.text();
    } catch {
      // no body
    }
    const s3code = /<Code>([^<]{1,100})<\/Code>/.exec(text)?.[1];
    const status = res.status;
    const what = `${status}${s3code ? ` ${s3code}` : ''}`;
    if (status === 404) return new StorageError('storage-not-found', `No object ${key} in ${this.location}`, { key, status });
    if (status === 416) return new StorageError('storage-bad-range', `Range outside ${key} (${what})`, { key, status });
    if (status === 403 && s3code === 'InvalidObjectState') {
      const storageClass = /<StorageClass>([^<]{1,40})<\/StorageClass>/.exec(text)?.[1];
      return new FrozenObjectError(key, storageClass, { status });
    }
    if (status === 403) {
      return new StorageError('direct-transfer-refused', `S3 refused the presigned ${method} of ${key} (${what})`, {
        key,
        status,
        retryable: retryable403,
        hint: "An expired URL is presigned again; if this persists, check this machine's clock and the server's S3 permissions.",
      });
    }
    const retryable = status >= 500 || status === 429 || status === 408 || s3code === 'RequestTimeout';
    return new StorageError(retryable ? 's3-error' : 's3-refused', `S3 answered ${what} to the direct ${method} of ${key}`, { key, status, retryable });
  }

  private token(): Promise<string | undefined> {
    this.tokenPromise ??= this.tokenProvider ? this.tokenProvider() : Promise.resolve(undefined);
    return this.tokenPromise;
  }

  private async retrying<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await withRetry(fn, this.retry, this.retryDeps);
    } catch (err) {
      if (err instanceof RetriesExhaustedError) throw err.lastError;
      throw err;
    }
  }

  /**
   * One request, retried on transient failures unless `once` (a stream body, or a caller
   * that retries a larger exchange itself). Non-2xx answers become StorageErrors, except
   * 404 with `allowNotFound` and 412 with `allowPreconditionFailed`, returned as is.
   */
  private async send(
    method: string,
    path: string,
    opts: {
      headers?: Record<string, string>;
      body?: Buffer | ReadableStream<Uint8Array>;
      key?: string;
      once?: boolean;
      root?: boolean;
      allowNotFound?: boolean;
      allowPreconditionFailed?: boolean;
    },
  ): Promise<Response> {
    const url = opts.root ? new URL(path, this.base.origin).href : this.base.href + path;
    const token = await this.token();
    const attempt = async (): Promise<Response> => {
      const headers: Record<string, string> = { ...opts.headers };
      if (token !== undefined) headers.authorization = `Bearer ${token}`;
      let res: Response;
      try {
        const init: RequestInit & { duplex?: 'half' } = { method, headers, body: opts.body as BodyInit | undefined };
        if (opts.body !== undefined && !Buffer.isBuffer(opts.body)) init.duplex = 'half';
        res = await this.fetchFn(url, init);
      } catch (err) {
        throw this.networkError(err, opts.key);
      }
      if (res.ok || (res.status === 404 && opts.allowNotFound) || (res.status === 412 && opts.allowPreconditionFailed)) return res;
      throw await this.statusError(res, opts.key);
    };
    if (opts.once) return attempt();
    return this.retrying(attempt);
  }

  private networkError(err: unknown, key: string | undefined): StorageError {
    const cause = (err as { cause?: unknown })?.cause;
    const code = errnoCode(cause) ?? errnoCode(err);
    if (isUnreachableErrno(code)) {
      return new StorageError('server-unreachable', `Cannot reach the Dits server at ${this.base.origin} (${code})`, {
        hint: 'Check that the server is running (`git dits serve`) and the remote URL (`git remote -v`).',
        cause: err,
        key,
        retryable: code !== 'ENOTFOUND',
      });
    }
    const message = (cause as Error)?.message ?? (err as Error)?.message ?? String(err);
    return new StorageError('storage-network', `Connection to ${this.base.origin} failed${key ? ` on ${key}` : ''}: ${message}`, {
      cause: err,
      key,
      retryable: true,
    });
  }

  private async statusError(res: Response, key: string | undefined): Promise<StorageError> {
    let body: ErrorBody = {};
    try {
      body = (await res.json()) as ErrorBody;
    } catch {
      // not JSON (a proxy's page) or no body (HEAD): the status says enough
    }
    // a server before codes became kebab-case answers STORAGE_BAD_KEY for storage-bad-key
    body.code = currentErrorCode(body.code ?? res.headers.get(ERROR_CODE_HEADER) ?? undefined);
    const serverMessage = body.message ?? res.statusText;
    const status = res.status;
    if (status === 401) {
      const host = this.base.host;
      const repoPath = `${this.owner}/${this.repo}`;
      return new StorageError('auth-required', `The Dits server at ${this.base.origin} needs a valid token (${serverMessage})`, {
        status,
        hint:
          `On the server machine create one: \`git dits server token create <user> <token-name>\`; then store it here:\n` +
          `  printf 'protocol=${this.base.protocol.slice(0, -1)}\\nhost=${host}\\nusername=<user>\\npassword=<token>\\n\\n' | git credential approve\n` +
          `(git's credential helper must be set, e.g. \`git config --global credential.helper store\`), or set DITS_TOKEN for scripts. Repository: ${repoPath}.`,
      });
    }
    if (status === 423 && body.code === FROZEN_CODE) {
      // the server's archive holds it without a finished restore (server/routes/storage.ts)
      return new FrozenObjectError(key ?? '', typeof body.storageClass === 'string' ? body.storageClass : undefined, { status });
    }
    if (status === 403) {
      return new StorageError('forbidden', `The Dits server refused: ${serverMessage}`, {
        status,
        hint: `Ask an admin of ${this.owner}/${this.repo} for the role you need (\`git dits server grant ...\`).`,
      });
    }
    if (status === 404 && body.code !== 'object-not-found') {
      return new StorageError('repo-not-found', `No repository ${this.owner}/${this.repo} on ${this.base.origin} (or no access to it)`, {
        status,
        hint: 'Check the URL (`git remote -v`); a site admin creates repositories with `git dits server repo create <owner>/<name>`.',
      });
    }
    if (status === 404) return new StorageError('storage-not-found', `No object ${key} in ${this.location}`, { key, status });
    if (status === 416) return new StorageError('storage-bad-range', `${serverMessage} (${key})`, { key, status });
    if (status === 400 && body.code?.startsWith('storage-')) return new StorageError(body.code, serverMessage, { key, status });
    if (status === 409 && body.code === 'storage-key-conflict') return new StorageError(body.code, serverMessage, { key, status });
    if (status === 507) return new StorageError('storage-full', serverMessage, { key, status });
    const retryable = status >= 500 || status === 429 || status === 408;
    return new StorageError(retryable ? 'server-error' : 'server-refused', `The Dits server answered ${status}${key ? ` for ${key}` : ''}: ${serverMessage}`, {
      key,
      status,
      retryable,
    });
  }
}

/**
 * The requested bytes of a direct GET. A server may ignore the Range (200, whole object)
 * or answer a wider one (s3rver answers "bytes=0-0" with the whole object as a 206):
 * the extra bytes are cut here rather than handed out.
 */
function rangedBody(res: Response, range: ByteRange | undefined, key: string): Readable {
  const body = res.body === null ? Readable.from([]) : Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
  if (range === undefined) return body;
  let servedStart = 0;
  let servedEnd: number | undefined;
  if (res.status === 206) {
    const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('content-range')?.trim() ?? '');
    if (m === null) {
      body.destroy();
      throw new StorageError('s3-error', `S3 answered a ranged GET of ${key} without a usable Content-Range`, { key, retryable: true });
    }
    servedStart = Number(m[1]);
    servedEnd = Number(m[2]);
  }
  if (servedStart > range.start) {
    body.destroy();
    throw new StorageError('s3-error', `S3 answered bytes from ${servedStart} for a range starting at ${range.start} of ${key}`, { key, retryable: true });
  }
  if (servedStart === range.start && servedEnd !== undefined && servedEnd <= range.end) return body;
  return sliceStream(body, range.start - servedStart, range.end - servedStart);
}

