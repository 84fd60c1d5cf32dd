/**
 * The `dits::http(s)://host/owner/repo` remote: each repository's ObjectStorage over HTTP,
 * spoken by src/transfer/http-storage.ts (the grammar is at the top of that file).
 *
 *   GET|HEAD /:owner/:repo/storage/o/<key>   read   (GET honours `Range: bytes=a-b` -> 206)
 *   PUT      /:owner/:repo/storage/o/<key>   write  body streamed to the back end, never held whole
 *   DELETE   /:owner/:repo/storage/o/<key>   write
 *   GET      /:owner/:repo/storage/list      read   ?prefix=&after=&limit= -> {objects, next}
 *   GET      /:owner/:repo/storage/v/<key>   read   versioned object: body + ETag
 *   POST     /:owner/:repo/storage/v/<key>   write  compare-and-swap (If-Match / If-None-Match: *)
 *   POST     /:owner/:repo/storage/presign   read for {op: 'get'}, write for {op: 'put', size}
 *                                            -> 200 {url, method, headers, expiresAt}, or 204 when the
 *                                            back end hands out no URLs (a folder): use the routes above
 *   GET      /api/storage[?sizes=1]          site admin: back end, bytes proxied vs. presigned, [repo sizes]
 *
 * Refusals follow requireRepoAccess (404 unreadable, 403 role too low). A missing object is
 * 404 with code `object-not-found`, so the client tells it from a missing repository.
 * Paging of `list` relies on the back end listing in ascending byte order (files and AWS
 * S3 do). Reads of packs and manifests are recorded in the access tracker, also when a GET
 * URL is handed out (the read itself then happens at S3, unseen).
 *
 * With S3 behind, the server is a coordinator: clients ask for presigned URLs and move pack
 * bytes to and from S3 themselves; `stats` counts what still passes through the server.
 */
import { Readable, Transform } from 'node:stream';
import type { ReadableStream as NodeWebStream } from 'node:stream/web';
import { Hono } from 'hono';
import { decodeEtagHeader, encodeEtagHeader, ERROR_CODE_HEADER, toPullStream } from '../../src/transfer/http-storage.js';
import { assertValidKey, assertValidPrefix, type ListedObject, type ObjectStorage } from '../../src/transfer/object-storage.js';
import { StorageError } from '../../src/transfer/storage-error.js';
import { parsePackKey, OBJECTS_PREFIX } from '../../src/remote/content/layout.js';
import { HttpError, readJson, requireRepoAccess, type AppContext, type AppEnv, type RouteDeps, type RouteModule } from '../http.js';
import { roleAllows, type Role } from '../admin.js';
import { int, obj, oneOf, optional, str } from '../validate.js';
import { measureRepoSizes } from '../repo-sizes.js';
import { FROZEN_CODE, FrozenObjectError, isFrozenError } from '../../src/tier/tier-storage.js';
import { AWS_US_EAST_1, restoreCost, restoreTiers, type PriceTable } from '../../src/tier/prices.js';
import type { StorageBackend } from '../storage-backend.js';

const MAX_LIST_PAGE = 1000;

/** What passed through the server and what went direct, since it started. */
export interface StorageTransferStats {
  /** object bytes received in PUTs and sent in GETs by the server itself */
  proxiedBytesIn: number;
  proxiedBytesOut: number;
  proxiedPuts: number;
  proxiedGets: number;
  /** presigned URLs handed out */
  presignedPuts: number;
  presignedGets: number;
  /** bytes the presigned PUT URLs were signed for */
  presignedBytesIn: number;
}

export function createStorageTransferStats(): StorageTransferStats {
  return { proxiedBytesIn: 0, proxiedBytesOut: 0, proxiedPuts: 0, proxiedGets: 0, presignedPuts: 0, presignedGets: 0, presignedBytesIn: 0 };
}

export interface StorageRoutesOptions {
  /** Counters to update (default: a fresh set); main.ts logs them at shutdown. */
  stats?: StorageTransferStats;
  /** Called after an object is stored through these routes (main.ts: new manifests may fill the job queue). */
  onStored?: (repo: string, key: string, storage: ObjectStorage) => void;
  /** Called when a presigned PUT is handed out (the object then arrives unseen). */
  onPresignedPut?: (repo: string, key: string) => void;
  /** Prices for the restore estimates of a 423 answer (default: AWS us-east-1). */
  prices?: PriceTable;
}

/**
 * A GET of an object in an archive class: 423 Locked with the facts a client needs to say
 * what a thaw costs (DESIGN invariant 6), never a timeout: `{ code: 'storage-frozen', key,
 * storageClass, bytes, thaw: { command, estimates } }` (one estimate per retrieval tier the
 * class offers, for this one object kept 7 days).
 */
export function frozenAnswer(err: unknown, key: string, bytes: number, prices: PriceTable): HttpError {
  const storageClass = err instanceof FrozenObjectError ? err.storageClass : undefined;
  const estimates = storageClass === undefined ? [] : restoreTiers(prices, storageClass).map((t) => restoreCost(prices, storageClass, t, bytes, 1, 7));
  return new HttpError(423, `${key} is frozen${storageClass ? ` (${storageClass})` : ''}: it must be restored before it can be read`, 'storage-frozen', {
    key,
    storageClass: storageClass ?? null,
    bytes,
    thaw: { command: 'git dits thaw <path>', estimates },
  });
}

const presignShape = obj({
  op: oneOf(['get', 'put'] as const),
  key: str({ min: 1, max: 900 }),
  size: optional(int({ min: 0, max: Number.MAX_SAFE_INTEGER })),
});

/** Largest versioned object (refs lists are small). */
const MAX_VERSIONED_BYTES = 16 * 1024 * 1024;

function toHttpError(err: unknown): unknown {
  if (!(err instanceof StorageError)) return err;
  if (err.code === FROZEN_CODE) return err; // the GET route answers 423 with the facts
  switch (err.code) {
    case 'storage-not-found':
      return new HttpError(404, 'no such object', 'object-not-found');
    case 'storage-bad-key':
    case 'storage-size-mismatch':
      return new HttpError(400, err.message, err.code);
    case 'storage-bad-range':
      return new HttpError(416 as 400, err.message, err.code);
    case 'storage-key-conflict':
      return new HttpError(409, err.message, err.code);
    case 'storage-full':
      return new HttpError(507 as 500, 'the server is out of space', err.code);
    default:
      // the back end's trouble (S3 down, I/O error): retryable ones invite a retry
      return new HttpError(err.retryable ? 503 : 500, `storage back end error (${err.code})`, 'storage-error');
  }
}

/** The key after `/:owner/:repo/storage/<kind>/`, percent-decoded per segment and validated. */
function keyFrom(c: AppContext): string {
  const segments = new URL(c.req.url).pathname.split('/').slice(5);
  let key: string;
  try {
    key = segments.map((s) => decodeURIComponent(s)).join('/');
  } catch {
    throw new HttpError(400, 'malformed percent-encoding in the key', 'storage-bad-key');
  }
  try {
    assertValidKey(key);
  } catch (err) {
    throw toHttpError(err);
  }
  return key;
}

/** `bytes=a-b` (or `bytes=a-`); anything else is ignored as HTTP allows. */
function parseRange(header: string | undefined): { start: number; end: number | undefined } | undefined {
  if (header === undefined) return undefined;
  const m = /^bytes=(\d{1,15})-(\d{0,15})$/.exec(header.trim());
  if (!m) return undefined;
  return { start: Number(m[1]), end: m[2] === '' ? undefined : Number(m[2]) };
}

function recordRead(deps: RouteDeps, repo: string, key: string): void {
  if (deps.access === undefined) return;
  const pack = parsePackKey(key);
  if (pack !== null) {
    if (pack.kind === 'pack') deps.access.recordAccess(repo, 'pack', pack.packId);
    return;
  }
  if (key.startsWith(OBJECTS_PREFIX)) {
    const id = key.slice(OBJECTS_PREFIX.length).replace('/', '');
    if (/^[0-9a-f]{64}$/.test(id)) deps.access.recordAccess(repo, 'file', id);
  }
}

interface ListCursor {
  it: AsyncIterator<ListedObject>;
  /** the first object of the next page, already read */
  pending: ListedObject;
}

/**
 * Open listings between pages, so paging through N keys reads the back end once
 * (not once per page). Keyed by repository, prefix and the page's last key; at most
 * MAX_OPEN_LISTINGS, each dropped after LISTING_TTL_MS. A page whose cursor is gone
 * starts a fresh listing and skips keys up to `after` (ascending order assumed).
 */
const MAX_OPEN_LISTINGS = 64;
const LISTING_TTL_MS = 60_000;

function createListCursors() {
  const open = new Map<string, { cursor: ListCursor; timer: NodeJS.Timeout }>();
  const id = (repo: string, prefix: string, after: string) => `${repo}\0${prefix}\0${after}`;
  const drop = (key: string, close: boolean): ListCursor | undefined => {
    const entry = open.get(key);
    if (entry === undefined) return undefined;
    open.delete(key);
    clearTimeout(entry.timer);
    if (close) void entry.cursor.it.return?.().catch(() => {});
    return entry.cursor;
  };
  return {
    take: (repo: string, prefix: string, after: string) => drop(id(repo, prefix, after), false),
    put(repo: string, prefix: string, after: string, cursor: ListCursor): void {
      const key = id(repo, prefix, after);
      drop(key, true);
      while (open.size >= MAX_OPEN_LISTINGS) drop(open.keys().next().value as string, true);
      const timer = setTimeout(() => drop(key, true), LISTING_TTL_MS);
      timer.unref();
      open.set(key, { cursor, timer });
    },
  };
}

/** The storage routes over `backend`; add the result to the app's routes. */
export function storageRoutes(backend: StorageBackend, options: StorageRoutesOptions = {}): RouteModule {
  const stats = options.stats ?? createStorageTransferStats();
  return (deps: RouteDeps) => {
    const app = new Hono<AppEnv>();
    const cursors = createListCursors();

    const open = async (c: AppContext, need: Role): Promise<{ storage: ObjectStorage; repo: string }> => {
      const { repo } = requireRepoAccess(c, deps.db, need);
      return { storage: await backend.forRepo(repo.name), repo: repo.name };
    };
    const mapped = async <T>(fn: () => Promise<T>): Promise<T> => {
      try {
        return await fn();
      } catch (err) {
        throw toHttpError(err);
      }
    };

    app.get('/:owner/:repo/storage/o/*', async (c) => {
      const isHead = c.req.method === 'HEAD';
      let opened: { storage: ObjectStorage; repo: string };
      let key: string;
      try {
        opened = await open(c, 'read');
        key = keyFrom(c);
      } catch (err) {
        // a HEAD answer has no body: the error code travels in a header
        if (isHead && err instanceof HttpError) return new Response(null, { status: err.status, headers: { [ERROR_CODE_HEADER]: err.code ?? '' } });
        throw err;
      }
      const { storage, repo } = opened;
      const info = await mapped(() => storage.head(key));
      if (info === null) {
        if (isHead) return new Response(null, { status: 404, headers: { [ERROR_CODE_HEADER]: 'object-not-found' } });
        throw new HttpError(404, 'no such object', 'object-not-found');
      }
      const headers: Record<string, string> = {
        etag: encodeEtagHeader(info.etag),
        'accept-ranges': 'bytes',
        'content-type': 'application/octet-stream',
      };
      // Hono answers HEAD with the GET route; no body is opened for it
      if (isHead) {
        return new Response(null, { status: 200, headers: { ...headers, 'content-length': String(info.size) } });
      }
      const range = parseRange(c.req.header('range'));
      let status = 200;
      let body: Readable;
      // an archived object without a finished restore: 423 with what a thaw costs
      const read = (r?: { start: number; end: number }): Promise<Readable> =>
        mapped(() => storage.get(key, r)).catch((err: unknown) => {
          throw isFrozenError(err) ? frozenAnswer(err, key, info.size, options.prices ?? AWS_US_EAST_1) : err;
        });
      if (range !== undefined) {
        if (range.start >= info.size || (range.end !== undefined && range.end < range.start)) {
          return c.json({ message: `range ${range.start}-${range.end ?? ''} is outside ${info.size} bytes`, code: 'storage-bad-range' }, 416, {
            'content-range': `bytes */${info.size}`,
          });
        }
        const end = Math.min(range.end ?? info.size - 1, info.size - 1);
        body = await read({ start: range.start, end });
        status = 206;
        headers['content-range'] = `bytes ${range.start}-${end}/${info.size}`;
        headers['content-length'] = String(end - range.start + 1);
      } else {
        body = await read();
        headers['content-length'] = String(info.size);
      }
      recordRead(deps, repo, key);
      stats.proxiedGets++;
      return new Response(
        toPullStream(body, (n) => (stats.proxiedBytesOut += n)),
        { status, headers },
      );
    });

    app.put('/:owner/:repo/storage/o/*', async (c) => {
      const opened = await open(c, 'write');
      const { storage } = opened;
      const key = keyFrom(c);
      const declared = c.req.header('content-length');
      const size = declared !== undefined && /^\d{1,15}$/.test(declared) ? Number(declared) : undefined;
      const raw = c.req.raw.body;
      let bodyFailed = false;
      const openBody = (): Readable => {
        const stream = Readable.fromWeb(raw as NodeWebStream<Uint8Array>);
        const counted = new Transform({
          transform(chunk: Buffer, _enc, done) {
            stats.proxiedBytesIn += chunk.length;
            done(null, chunk);
          },
        });
        stream.once('error', (err) => {
          bodyFailed = true;
          counted.destroy(err);
        });
        counted.once('close', () => stream.destroy());
        return stream.pipe(counted);
      };
      stats.proxiedPuts++;
      let etag: string;
      try {
        ({ etag } = await mapped(() => (raw === null || size === 0 ? storage.put(key, Buffer.alloc(0), { size: 0 }) : storage.put(key, openBody, { size }))));
        options.onStored?.(opened.repo, key, storage);
      } catch (err) {
        // the client went away mid-body: nothing was stored (puts are atomic); not our fault
        if (bodyFailed) throw new HttpError(400, 'the request body ended early', 'body-aborted');
        throw err;
      }
      return c.json({ etag }, 200, { etag: encodeEtagHeader(etag) });
    });

    app.post('/:owner/:repo/storage/presign', async (c) => {
      const { repo, role } = requireRepoAccess(c, deps.db, 'read');
      const body = await readJson(c, presignShape, deps.maxJsonBytes);
      if (body.op === 'put' && !roleAllows(role, 'write')) {
        throw new HttpError(403, `this needs write access to ${repo.name}; you have ${role}`, 'forbidden');
      }
      if (body.op === 'put' && body.size === undefined) throw new HttpError(400, 'a presigned put needs the size of the body', 'invalid-request');
      try {
        assertValidKey(body.key);
      } catch (err) {
        throw toHttpError(err);
      }
      const signed = await mapped(() => backend.presign(repo.name, body.op, body.key, { size: body.size }));
      if (signed === null) return c.body(null, 204);
      if (body.op === 'get') {
        recordRead(deps, repo.name, body.key);
        stats.presignedGets++;
      } else {
        options.onPresignedPut?.(repo.name, body.key);
        stats.presignedPuts++;
        stats.presignedBytesIn += body.size ?? 0;
      }
      return c.json({ url: signed.url, method: signed.method, headers: signed.headers, expiresAt: signed.expiresAt.toISOString() });
    });

    app.get('/api/storage', async (c) => {
      if (!c.get('principal').isAdmin) throw new HttpError(403, 'only site admins can see storage statistics', 'forbidden');
      const sizes = c.req.query('sizes') === '1' ? await measureRepoSizes(deps.db, backend) : undefined;
      return c.json({ location: backend.location, direct: backend.direct, transfer: { ...stats }, ...(sizes === undefined ? {} : { repos: sizes }) });
    });

    app.delete('/:owner/:repo/storage/o/*', async (c) => {
      const { storage } = await open(c, 'write');
      const key = keyFrom(c);
      await mapped(() => storage.delete(key));
      return c.json({ deleted: key });
    });

    app.get('/:owner/:repo/storage/list', async (c) => {
      const { storage, repo } = await open(c, 'read');
      const prefix = c.req.query('prefix') ?? '';
      const after = c.req.query('after');
      const limitText = c.req.query('limit');
      const limit = limitText === undefined ? MAX_LIST_PAGE : Number(limitText);
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_PAGE) {
        throw new HttpError(400, `limit must be 1..${MAX_LIST_PAGE}`, 'invalid-request');
      }
      try {
        assertValidPrefix(prefix);
      } catch (err) {
        throw toHttpError(err);
      }
      const objects: { key: string; size: number }[] = [];
      let next: string | null = null;
      await mapped(async () => {
        // resume the listing that produced `after` when it is still open; else start over
        const resumed = after === undefined ? undefined : cursors.take(repo, prefix, after);
        let it: AsyncIterator<ListedObject>;
        let pending: ListedObject | undefined;
        if (resumed !== undefined) {
          ({ it, pending } = resumed);
        } else {
          it = storage.list(prefix)[Symbol.asyncIterator]();
          const afterBytes = after === undefined ? undefined : Buffer.from(after);
          for (;;) {
            const r = await it.next();
            if (r.done) break;
            if (afterBytes !== undefined && Buffer.compare(Buffer.from(r.value.key), afterBytes) <= 0) continue;
            pending = r.value;
            break;
          }
        }
        while (pending !== undefined && objects.length < limit) {
          objects.push({ key: pending.key, size: pending.size });
          const r = await it.next();
          pending = r.done ? undefined : r.value;
        }
        if (pending !== undefined) {
          next = objects[objects.length - 1]!.key;
          cursors.put(repo, prefix, next, { it, pending });
        }
      });
      return c.json({ objects, next });
    });

    app.get('/:owner/:repo/storage/v/*', async (c) => {
      const { storage } = await open(c, 'read');
      const key = keyFrom(c);
      const v = await mapped(() => storage.getVersioned(key));
      if (v === null) throw new HttpError(404, 'no such object', 'object-not-found');
      return new Response(new Uint8Array(v.body), {
        status: 200,
        headers: { etag: encodeEtagHeader(v.etag), 'content-type': 'application/octet-stream', 'content-length': String(v.body.length) },
      });
    });

    app.post('/:owner/:repo/storage/v/*', async (c) => {
      const { storage } = await open(c, 'write');
      const key = keyFrom(c);
      const ifNoneMatch = c.req.header('if-none-match');
      const ifMatch = c.req.header('if-match');
      let expected: { etag: string } | 'absent';
      if (ifNoneMatch?.trim() === '*' && ifMatch === undefined) expected = 'absent';
      else if (ifMatch !== undefined && ifNoneMatch === undefined) {
        const etag = decodeEtagHeader(ifMatch);
        if (etag === undefined) throw new HttpError(400, 'malformed If-Match etag', 'invalid-request');
        expected = { etag };
      } else {
        throw new HttpError(428, 'a compare-and-swap needs exactly one of If-Match: <etag> or If-None-Match: *', 'precondition-required');
      }
      const declared = Number(c.req.header('content-length') ?? NaN);
      if (!Number.isFinite(declared)) throw new HttpError(411 as 400, 'Content-Length required', 'length-required');
      if (declared > MAX_VERSIONED_BYTES) throw new HttpError(413, `versioned objects are at most ${MAX_VERSIONED_BYTES} bytes`, 'body-too-large');
      const body = Buffer.from(await c.req.arrayBuffer());
      const result = await mapped(() => storage.putIf(key, body, expected));
      if (result.ok) return c.json({ etag: result.etag }, 200, { etag: encodeEtagHeader(result.etag) });
      const headers: Record<string, string> = result.current ? { etag: encodeEtagHeader(result.current.etag) } : {};
      return c.json({ message: 'precondition failed', code: 'precondition-failed', current: result.current }, 412, headers);
    });

    return app;
  };
}
