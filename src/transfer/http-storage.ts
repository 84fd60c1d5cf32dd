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
 *   GET  /api/repos/<owner>/<repo>                  checkAccess
 *
 * Etags travel quoted and percent-encoded (`"<encodeURIComponent(etag)>"`) so any opaque
 * back-end etag fits a header. Key segments are percent-encoded in the path.
 *
 * Errors: 401 `auth-required` (with how to get and store a token), 403 `forbidden`,
 * 404 `repo-not-found` for the repository, StorageError STORAGE_NOT_FOUND for a missing
 * object, 416 STORAGE_BAD_RANGE, connection refused `server-unreachable`. 5xx, 429 and
 * dropped connections are retried (requests whose body can be replayed; a streamed put
 * calls its body factory once, so the transfer queue retries it as a whole).
 */
import { Readable } from 'node:stream';
import { errnoCode } from '../errors.js';
import {
  assertValidKey,
  assertValidPrefix,
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
import { StorageError } from './storage-error.js';

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
export function toPullStream(stream: Readable): ReadableStream<Uint8Array> {
  const it = stream[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const { done, value } = await it.next();
        if (done) controller.close();
        else controller.enqueue(value as Uint8Array);
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
}

/** Fewer, shorter attempts than the queue's policy: the queue retries whole items too. */
export const HTTP_REQUEST_RETRY: RetryPolicy = { ...DEFAULT_RETRY_POLICY, maxAttempts: 4, baseDelayMs: 200 };

interface ErrorBody {
  message?: string;
  code?: string;
  current?: { etag: string } | null;
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

  constructor(options: HttpStorageOptions) {
    const url = new URL(options.baseUrl);
    const parts = url.pathname.split('/').filter((s) => s !== '');
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || parts.length !== 2) {
      throw new StorageError('BAD_STORAGE_URL', `A Dits server remote is http(s)://host[:port]/<owner>/<repo>, not ${options.baseUrl}`, {
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
  }

  async checkAccess(): Promise<void> {
    const res = await this.send('GET', `/api/repos/${encodeURIComponent(this.owner)}/${encodeURIComponent(this.repo)}`, { root: true });
    await res.body?.cancel();
  }

  async put(key: string, body: PutBody, opts: PutOptions = {}): Promise<{ etag: string }> {
    assertValidKey(key);
    const path = `/storage/o/${encodeKeyPath(key)}`;
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
    let res: Response;
    if (Buffer.isBuffer(body)) {
      if (opts.size !== undefined && opts.size !== body.length) {
        throw new StorageError('STORAGE_SIZE_MISMATCH', `Body for ${key} has ${body.length} bytes, ${opts.size} were announced`, { key });
      }
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
    if (typeof json.etag !== 'string') throw new StorageError('SERVER_ERROR', `The server answered a put of ${key} without an etag`, { key, retryable: true });
    return { etag: json.etag };
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    const res = await this.getResponse(key, range);
    if (res.body === null) return Readable.from([]);
    return Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
  }

  async getBuffer(key: string, range?: ByteRange): Promise<Buffer> {
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
      throw new StorageError('SERVER_ERROR', `The server answered HEAD ${key} without a size or an etag`, { key, retryable: true });
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
    if (typeof json.etag !== 'string') throw new StorageError('SERVER_ERROR', `The server answered a putIf of ${key} without an etag`, { key, retryable: true });
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
      if (etag === undefined) throw new StorageError('SERVER_ERROR', `The server answered ${key} without an etag`, { key, retryable: true });
      return { body: buf, etag };
    });
  }

  private async getResponse(key: string, range: ByteRange | undefined, once = false): Promise<Response> {
    assertValidKey(key);
    const headers: Record<string, string> = {};
    if (range !== undefined) {
      if (!Number.isSafeInteger(range.start) || !Number.isSafeInteger(range.end) || range.start < 0 || range.end < range.start) {
        throw new StorageError('STORAGE_BAD_RANGE', `Invalid range ${range.start}-${range.end} for ${key}`, { key });
      }
      headers.range = `bytes=${range.start}-${range.end}`;
    }
    return this.send('GET', `/storage/o/${encodeKeyPath(key)}`, { headers, key, once });
  }

  /**
   * A streamed PUT over node:http(s), not fetch: undici's fetch (Node 20) reads a request
   * body stream ahead without limit, so a 1 GiB upload held 1 GiB; `pipe` into the request
   * waits for the socket. The small answer is returned as a web Response.
   */
  private async putStream(path: string, stream: Readable, headers: Record<string, string>, key: string): Promise<Response> {
    const token = await this.token();
    const url = new URL(this.base.href + path);
    const { request } = url.protocol === 'https:' ? await import('node:https') : await import('node:http');
    const all: Record<string, string> = { ...headers };
    if (token !== undefined) all.authorization = `Bearer ${token}`;
    return new Promise<Response>((resolve, reject) => {
      const req = request(url, { method: 'PUT', headers: all }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => reject(this.networkError(err, key)));
        res.on('end', () => {
          const h = new Headers();
          for (const [name, value] of Object.entries(res.headers)) if (typeof value === 'string') h.set(name, value);
          resolve(new Response(chunks.length === 0 ? null : Buffer.concat(chunks), { status: res.statusCode ?? 500, headers: h }));
        });
      });
      req.on('error', (err) => reject(this.networkError(err, key)));
      stream.once('error', (err) => {
        req.destroy();
        reject(err);
      });
      stream.pipe(req);
    });
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
    if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EHOSTUNREACH') {
      return new StorageError('server-unreachable', `Cannot reach the Dits server at ${this.base.origin} (${code})`, {
        hint: 'Check that the server is running (`git dits serve`) and the remote URL (`git remote -v`).',
        cause: err,
        key,
        retryable: code !== 'ENOTFOUND',
      });
    }
    const message = (cause as Error)?.message ?? (err as Error)?.message ?? String(err);
    return new StorageError('STORAGE_NETWORK', `Connection to ${this.base.origin} failed${key ? ` on ${key}` : ''}: ${message}`, {
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
    body.code ??= res.headers.get(ERROR_CODE_HEADER) ?? undefined;
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
    if (status === 404) return new StorageError('STORAGE_NOT_FOUND', `No object ${key} in ${this.location}`, { key, status });
    if (status === 416) return new StorageError('STORAGE_BAD_RANGE', `${serverMessage} (${key})`, { key, status });
    if (status === 400 && body.code?.startsWith('STORAGE_')) return new StorageError(body.code, serverMessage, { key, status });
    if (status === 409 && body.code === 'STORAGE_KEY_CONFLICT') return new StorageError(body.code, serverMessage, { key, status });
    if (status === 507) return new StorageError('STORAGE_FULL', serverMessage, { key, status });
    const retryable = status >= 500 || status === 429 || status === 408;
    return new StorageError(retryable ? 'SERVER_ERROR' : 'SERVER_REFUSED', `The Dits server answered ${status}${key ? ` for ${key}` : ''}: ${serverMessage}`, {
      key,
      status,
      retryable,
    });
  }
}
