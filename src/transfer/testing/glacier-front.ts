/**
 * A test-only S3 front with Glacier behaviour, in front of s3rver (testing/s3rver.ts).
 *
 * s3rver stores bytes well but knows no storage classes, no restores, no copy of an object
 * onto itself and no UploadPartCopy. This front is an HTTP server on 127.0.0.1 that
 * forwards every request to s3rver unchanged (signed requests stay valid: the Host header
 * and the query are passed as they came; a request naming a storage class goes on without
 * that header and unsigned, as s3rver knows only some classes) and keeps per key what AWS
 * keeps, answering the
 * way AWS documents it (https://docs.aws.amazon.com/AmazonS3/latest/API/ for PutObject,
 * CopyObject, UploadPartCopy, RestoreObject, HeadObject, GetObject, ListObjectsV2):
 *
 * - StorageClass per key, from `x-amz-storage-class` on PUT, CopyObject and
 *   CreateMultipartUpload (applied at CompleteMultipartUpload); no header = STANDARD; an
 *   unknown class is 400 InvalidStorageClass.
 * - LIST answers carry each key's `<StorageClass>`; HEAD and GET carry `x-amz-storage-class`
 *   (omitted for STANDARD, as AWS does) and `x-amz-restore` once a restore was asked.
 * - GET of a GLACIER or DEEP_ARCHIVE object without a finished restore (and a copy from
 *   one, whole or part): 403 InvalidObjectState, with `<StorageClass>` in the XML error.
 * - CopyObject onto itself: allowed when the class changes (or with REPLACE metadata);
 *   else 400 InvalidRequest as AWS. The front answers such a copy itself: the bytes in
 *   s3rver are not touched, LastModified becomes now, a finished restore goes away (the
 *   new object is not restored), the ETag stays.
 * - UploadPartCopy (`x-amz-copy-source` + `x-amz-copy-source-range` on an UploadPart):
 *   done by the front as a ranged GET from s3rver piped into an UploadPart to s3rver.
 *   CompleteMultipartUpload refuses parts under `minPartSize` (5 MiB, AWS's minimum) but
 *   the last with 400 EntityTooSmall.
 * - POST `?restore`: 202 when a restore starts, 409 RestoreAlreadyInProgress while it runs,
 *   200 when a restored copy exists (its expiry moves to now + Days), 403
 *   InvalidObjectState for a class that needs no restore, 404 NoSuchKey. A restore
 *   finishes `restoreDelayMs` after the request (by the injected clock), and the restored
 *   copy expires Days x 24 h later (AWS rounds up to the next midnight UTC; not here).
 * - PUT/GET `?lifecycle` on a bucket: stored and answered back (s3rver has none); a PUT
 *   without Content-MD5 or an x-amz-checksum-* header is 400 InvalidRequest, as on AWS.
 *
 * Tests read `counts` (requests by kind, and bytes received in PUT/UploadPart bodies),
 * `classOf(key)`, `restoreOf(key)`, and inject faults with `failNext(op, status, code)` (an
 * XML error answer), `failNext(op, 'cut')` (the connection is destroyed, nothing done) or
 * `failNext(op, 'cut-after')` (done, but the answer is lost).
 * State lives in memory: objects written to s3rver behind the front's back are STANDARD.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** Every class name AWS accepts in `x-amz-storage-class`. */
const AWS_CLASSES = new Set([
  'STANDARD',
  'REDUCED_REDUNDANCY',
  'STANDARD_IA',
  'ONEZONE_IA',
  'INTELLIGENT_TIERING',
  'GLACIER',
  'DEEP_ARCHIVE',
  'OUTPOSTS',
  'GLACIER_IR',
  'SNOW',
  'EXPRESS_ONEZONE',
]);
/** Classes whose objects must be restored before a GET (or a copy from them) works. */
const ARCHIVE_CLASSES = new Set(['GLACIER', 'DEEP_ARCHIVE']);

const DAY_MS = 24 * 60 * 60 * 1000;

export type FrontOp =
  | 'put'
  | 'get'
  | 'head'
  | 'list'
  | 'delete'
  | 'copy'
  | 'createMultipart'
  | 'uploadPart'
  | 'partCopy'
  | 'complete'
  | 'abort'
  | 'restore'
  | 'tagging'
  | 'lifecycle'
  | 'other';

export interface FrontCounts {
  /** PutObject requests (bytes through this machine) */
  puts: number;
  /** UploadPart requests with a body (not UploadPartCopy) */
  uploadParts: number;
  /** bytes received in PutObject and UploadPart bodies */
  bytesUploaded: number;
  /** CopyObject requests (onto itself or to another key) */
  copies: number;
  /** UploadPartCopy requests */
  partCopies: number;
  createMultiparts: number;
  completes: number;
  /** DeleteObject requests plus keys named in DeleteObjects */
  deletes: number;
  /** RestoreObject requests, whatever the answer */
  restores: number;
  /** RestoreObject requests that started a restore (202: the ones AWS bills) */
  restoresStarted: number;
  gets: number;
  heads: number;
  lists: number;
  tagging: number;
  lifecycle: number;
  /** requests answered by an injected fault */
  faults: number;
}

export interface RestoreView {
  ongoing: boolean;
  /** ms since epoch, for a finished restore */
  expiry?: number;
  days: number;
  tier: string;
}

export interface GlacierFrontOptions {
  /** Time from a RestoreObject to its finish (default 0: finished at the next look). */
  restoreDelayMs?: number;
  /** ms since epoch (default Date.now); restores, expiries and LastModified of copies follow it. */
  clock?: () => number;
  /** Smallest part but the last that CompleteMultipartUpload accepts (default 5 MiB, AWS's). */
  minPartSize?: number;
}

export interface GlacierFront {
  endpoint: string;
  readonly counts: FrontCounts;
  resetCounts(): void;
  /** The class of `key` ('STANDARD' for a key the front never saw a class for). */
  classOf(key: string, bucket?: string): string;
  /** Sets a class without any request (test setup: "this pack has been in DEEP_ARCHIVE for a year"). */
  setClass(key: string, storageClass: string, bucket?: string): void;
  restoreOf(key: string, bucket?: string): RestoreView | null;
  /** Delay of restores requested from now on. */
  setRestoreDelay(ms: number): void;
  /** Finishes every running restore now. */
  finishRestores(): void;
  /**
   * The next `times` (default 1) requests of `op` (for `key` if given) fail: an S3 error
   * answer (`status`, `code`), a connection cut before the request is carried out ('cut'),
   * or one cut after it was carried out, its answer lost ('cut-after': a restore started, a
   * class changed, and the client cannot know).
   */
  failNext(op: FrontOp, status: number | 'cut' | 'cut-after', code?: string, opts?: { times?: number; key?: string }): void;
  /** Lifecycle configuration XML stored for a bucket by PutBucketLifecycleConfiguration. */
  lifecycleOf(bucket: string): string | undefined;
  close(): Promise<void>;
}

interface KeyState {
  storageClass: string;
  /** set by a copy onto itself, which s3rver does not see */
  lastModified?: number;
  restore?: { finishAt: number; days: number; tier: string; expiry?: number };
}

interface Upload {
  id: string;
  full: string;
  storageClass: string;
  parts: Map<number, number>;
}

interface Fault {
  op: FrontOp;
  status: number | 'cut' | 'cut-after';
  code: string;
  times: number;
  key?: string;
}

function zeroCounts(): FrontCounts {
  return {
    puts: 0,
    uploadParts: 0,
    bytesUploaded: 0,
    copies: 0,
    partCopies: 0,
    createMultiparts: 0,
    completes: 0,
    deletes: 0,
    restores: 0,
    restoresStarted: 0,
    gets: 0,
    heads: 0,
    lists: 0,
    tagging: 0,
    lifecycle: 0,
    faults: 0,
  };
}

const ERROR_MESSAGES: Record<string, string> = {
  InvalidObjectState: "The operation is not valid for the object's storage class",
  RestoreAlreadyInProgress: 'Object restore is already in progress',
  NoSuchKey: 'The specified key does not exist.',
  InvalidStorageClass: 'The storage class you specified is not valid',
  EntityTooSmall: 'Your proposed upload is smaller than the minimum allowed object size.',
  NoSuchUpload: 'The specified upload does not exist.',
  InvalidRange: 'The requested range is not satisfiable',
  MalformedXML: 'The XML you provided was not well-formed or did not validate against our published schema',
  NoSuchLifecycleConfiguration: 'The lifecycle configuration does not exist',
  SlowDown: 'Please reduce your request rate.',
  InternalError: 'We encountered an internal error. Please try again.',
};

function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

function xmlUnescape(s: string): string {
  return s
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&#(\d+);/g, (_, n: string) => String.fromCodePoint(Number(n)))
    .replace(/&#x([0-9a-f]+);/gi, (_, n: string) => String.fromCodePoint(parseInt(n, 16)))
    .replace(/&amp;/g, '&');
}

function sendError(res: http.ServerResponse, status: number, code: string, extra: Record<string, string> = {}, message?: string): void {
  const fields = Object.entries(extra)
    .map(([k, v]) => `<${k}>${xmlEscape(v)}</${k}>`)
    .join('');
  const body =
    `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${xmlEscape(message ?? ERROR_MESSAGES[code] ?? code)}</Message>` +
    `${fields}<RequestId>glacier-front</RequestId><HostId>glacier-front</HostId></Error>`;
  res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body), 'x-amz-request-id': 'glacier-front' });
  res.end(body);
}

function sendXml(res: http.ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

async function readBody(req: http.IncomingMessage): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of req) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

function tagText(xml: string, tag: string): string | undefined {
  const m = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`).exec(xml);
  return m ? xmlUnescape(m[1]!) : undefined;
}

/** "bucket/a/b%20c?versionId=x" (leading slash optional) -> bucket and decoded key */
function parseCopySource(header: string): { bucket: string; key: string } | null {
  let s = header.startsWith('/') ? header.slice(1) : header;
  const q = s.indexOf('?');
  if (q >= 0) s = s.slice(0, q);
  const slash = s.indexOf('/');
  if (slash <= 0) return null;
  try {
    return { bucket: decodeURIComponent(s.slice(0, slash)), key: decodeURIComponent(s.slice(slash + 1)) };
  } catch {
    return null;
  }
}

export async function startGlacierFront(s3rverEndpoint: string, options: GlacierFrontOptions = {}): Promise<GlacierFront> {
  const upstream = new URL(s3rverEndpoint);
  const clock = options.clock ?? Date.now;
  const minPartSize = options.minPartSize ?? 5 * 1024 * 1024;
  let restoreDelayMs = options.restoreDelayMs ?? 0;
  let counts = zeroCounts();
  const keys = new Map<string, KeyState>(); // `${bucket}/${key}`
  const uploads = new Map<string, Upload>();
  const lifecycles = new Map<string, string>();
  const faults: Fault[] = [];
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

  const fullOf = (bucket: string, key: string) => `${bucket}/${key}`;
  const stateOf = (full: string): KeyState => keys.get(full) ?? { storageClass: 'STANDARD' };

  /** The restore of a key as of now: finishes and expires lazily by the clock. */
  const restoreNow = (st: KeyState): RestoreView | null => {
    const r = st.restore;
    if (!r) return null;
    const now = clock();
    if (now < r.finishAt) return { ongoing: true, days: r.days, tier: r.tier };
    r.expiry ??= r.finishAt + r.days * DAY_MS;
    if (now >= r.expiry) {
      st.restore = undefined;
      return null;
    }
    return { ongoing: false, expiry: r.expiry, days: r.days, tier: r.tier };
  };
  const frozen = (st: KeyState): boolean => ARCHIVE_CLASSES.has(st.storageClass) && restoreNow(st)?.ongoing !== false;

  const findFull = (key: string, bucket: string | undefined): string => {
    if (bucket !== undefined) return fullOf(bucket, key);
    for (const full of keys.keys()) if (full.slice(full.indexOf('/') + 1) === key) return full;
    return `?/${key}`;
  };

  /** Headers AWS adds to HEAD and GET answers about class and restore. */
  const tierHeaders = (st: KeyState): Record<string, string> => {
    const out: Record<string, string> = {};
    if (st.storageClass !== 'STANDARD') out['x-amz-storage-class'] = st.storageClass;
    const r = restoreNow(st);
    if (r) out['x-amz-restore'] = r.ongoing ? 'ongoing-request="true"' : `ongoing-request="false", expiry-date="${new Date(r.expiry!).toUTCString()}"`;
    if (st.lastModified !== undefined) out['last-modified'] = new Date(st.lastModified).toUTCString();
    return out;
  };

  /** A request of the front's own to s3rver (unsigned: s3rver lets anonymous requests through). */
  const upstreamRequest = (method: string, path: string, headers: Record<string, string | number> = {}): http.ClientRequest =>
    http.request({ host: upstream.hostname, port: upstream.port, method, path, headers, agent });
  const upstreamCall = (method: string, path: string, headers: Record<string, string | number> = {}, body?: Buffer) =>
    new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
      const r = upstreamRequest(method, path, body ? { ...headers, 'content-length': body.length } : headers);
      r.on('error', reject);
      r.on('response', (res) => {
        readBody(res).then((b) => resolve({ status: res.statusCode ?? 500, headers: res.headers, body: b }), reject);
      });
      r.end(body);
    });
  const objectPath = (bucket: string, key: string) => `/${encodeURIComponent(bucket)}/${key.split('/').map(encodeURIComponent).join('/')}`;

  /**
   * Forwards the request as it came (body streamed, or `body` when already read) and hands
   * the answer to `onResponse`, or pipes it back with `extraHeaders` when none is given.
   */
  const forward = (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    opts: { body?: Buffer; extraHeaders?: (status: number) => Record<string, string>; onResponse?: (up: http.IncomingMessage) => void } = {},
  ): void => {
    const headers = { ...req.headers };
    if (headers['x-amz-storage-class'] !== undefined) {
      // s3rver refuses the classes it does not know (GLACIER_IR) and would keep the rest
      // itself; the class is the front's business. Without the header the signature no
      // longer matches, so the request goes on unsigned (s3rver lets those through).
      delete headers['x-amz-storage-class'];
      delete headers.authorization;
    }
    if (opts.body !== undefined) {
      headers['content-length'] = String(opts.body.length);
      delete headers['transfer-encoding'];
    }
    const up = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers, agent });
    up.on('error', () => {
      if (!res.headersSent) sendError(res, 500, 'InternalError');
      else res.destroy();
    });
    up.on('response', (upRes) => {
      if (opts.onResponse) return opts.onResponse(upRes);
      const extra = opts.extraHeaders?.(upRes.statusCode ?? 500) ?? {};
      const headers = { ...upRes.headers };
      delete headers['x-amz-storage-class'];
      res.writeHead(upRes.statusCode ?? 500, { ...headers, ...extra });
      upRes.pipe(res);
    });
    if (opts.body !== undefined) up.end(opts.body);
    else req.pipe(up);
  };

  const classify = (method: string, key: string, q: URLSearchParams, headers: http.IncomingHttpHeaders): FrontOp => {
    const copy = headers['x-amz-copy-source'] !== undefined;
    if (key === '') {
      if (q.has('lifecycle')) return 'lifecycle';
      if (method === 'POST' && q.has('delete')) return 'delete';
      if (method === 'GET' && !q.has('location') && !q.has('cors') && !q.has('website')) return 'list';
      return 'other';
    }
    switch (method) {
      case 'GET':
        return q.has('tagging') ? 'tagging' : 'get';
      case 'HEAD':
        return 'head';
      case 'PUT':
        if (q.has('uploadId')) return copy ? 'partCopy' : 'uploadPart';
        if (q.has('tagging')) return 'tagging';
        return copy ? 'copy' : 'put';
      case 'POST':
        if (q.has('uploads')) return 'createMultipart';
        if (q.has('uploadId')) return 'complete';
        if (q.has('restore')) return 'restore';
        return 'other';
      case 'DELETE':
        if (q.has('uploadId')) return 'abort';
        if (q.has('tagging')) return 'tagging';
        return 'delete';
      default:
        return 'other';
    }
  };

  const takeFault = (op: FrontOp, key: string): Fault | undefined => {
    const i = faults.findIndex((f) => f.op === op && (f.key === undefined || f.key === key));
    if (i < 0) return undefined;
    const f = faults[i]!;
    if (--f.times <= 0) faults.splice(i, 1);
    return f;
  };

  const classHeader = (req: http.IncomingMessage): string | null => {
    const h = req.headers['x-amz-storage-class'];
    const cls = (Array.isArray(h) ? h[0] : h) ?? 'STANDARD';
    return AWS_CLASSES.has(cls) ? cls : null;
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://front');
    const segments = url.pathname.split('/').slice(1);
    const bucket = decodeURIComponent(segments[0] ?? '');
    const key = segments.slice(1).map(decodeURIComponent).join('/');
    const full = fullOf(bucket, key);
    const method = req.method ?? 'GET';
    const op = classify(method, key, url.searchParams, req.headers);

    const fault = takeFault(op, key);
    if (fault) {
      counts.faults += 1;
      if (fault.status === 'cut') {
        req.socket.destroy();
        return;
      }
      if (fault.status !== 'cut-after') {
        await readBody(req);
        return sendError(res, fault.status, fault.code);
      }
      // 'cut-after': the request is carried out below, but its answer never arrives
      const socket = req.socket;
      res.writeHead = (() => res) as unknown as typeof res.writeHead;
      res.write = (() => true) as unknown as typeof res.write;
      res.end = (() => {
        socket.destroy();
        return res;
      }) as unknown as typeof res.end;
    }

    switch (op) {
      case 'put': {
        counts.puts += 1;
        const cls = classHeader(req);
        if (cls === null) return void readBody(req).then(() => sendError(res, 400, 'InvalidStorageClass'));
        req.on('data', (chunk: Buffer) => (counts.bytesUploaded += chunk.length));
        return forward(req, res, {
          extraHeaders: (status) => {
            if (status < 300) keys.set(full, { storageClass: cls });
            return {};
          },
        });
      }
      case 'get':
      case 'head': {
        if (op === 'get') counts.gets += 1;
        else counts.heads += 1;
        const st = stateOf(full);
        if (op === 'get' && frozen(st)) {
          await readBody(req);
          return sendError(res, 403, 'InvalidObjectState', { StorageClass: st.storageClass });
        }
        return forward(req, res, { extraHeaders: (status) => (status < 300 ? tierHeaders(st) : {}) });
      }
      case 'list': {
        counts.lists += 1;
        return forward(req, res, {
          onResponse: (upRes) => {
            void readBody(upRes).then((body) => {
              let xml = body.toString('utf8');
              if ((upRes.statusCode ?? 500) < 300) {
                xml = xml.replace(/<Contents>([\s\S]*?)<\/Contents>/g, (block: string, inner: string) => {
                  const k = tagText(inner, 'Key');
                  if (k === undefined) return block;
                  const st = keys.get(fullOf(bucket, k));
                  if (!st) return block;
                  let out = inner.replace(/<StorageClass>[^<]*<\/StorageClass>/, `<StorageClass>${st.storageClass}</StorageClass>`);
                  if (st.lastModified !== undefined) out = out.replace(/<LastModified>[^<]*<\/LastModified>/, `<LastModified>${new Date(st.lastModified).toISOString()}</LastModified>`);
                  return `<Contents>${out}</Contents>`;
                });
              }
              const headers = { ...upRes.headers, 'content-length': String(Buffer.byteLength(xml)) };
              delete headers['transfer-encoding'];
              res.writeHead(upRes.statusCode ?? 500, headers);
              res.end(xml);
            });
          },
        });
      }
      case 'delete': {
        if (key === '') {
          // DeleteObjects: every <Key> named counts
          const body = await readBody(req);
          const named = [...body.toString('utf8').matchAll(/<Key>([\s\S]*?)<\/Key>/g)].map((m) => xmlUnescape(m[1]!));
          counts.deletes += named.length;
          return forward(req, res, {
            body,
            extraHeaders: (status) => {
              if (status < 300) for (const k of named) keys.delete(fullOf(bucket, k));
              return {};
            },
          });
        }
        counts.deletes += 1;
        return forward(req, res, {
          extraHeaders: (status) => {
            if (status < 300) keys.delete(full);
            return {};
          },
        });
      }
      case 'copy':
        return copyObject(req, res, bucket, key);
      case 'createMultipart': {
        counts.createMultiparts += 1;
        const cls = classHeader(req);
        if (cls === null) return void readBody(req).then(() => sendError(res, 400, 'InvalidStorageClass'));
        return forward(req, res, {
          onResponse: (upRes) => {
            void readBody(upRes).then((body) => {
              const id = tagText(body.toString('utf8'), 'UploadId');
              if (id !== undefined && (upRes.statusCode ?? 500) < 300) uploads.set(id, { id, full, storageClass: cls, parts: new Map() });
              res.writeHead(upRes.statusCode ?? 500, upRes.headers);
              res.end(body);
            });
          },
        });
      }
      case 'uploadPart': {
        counts.uploadParts += 1;
        const upload = uploads.get(url.searchParams.get('uploadId') ?? '');
        const partNumber = Number(url.searchParams.get('partNumber'));
        let size = 0;
        req.on('data', (chunk: Buffer) => {
          counts.bytesUploaded += chunk.length;
          size += chunk.length;
        });
        return forward(req, res, {
          extraHeaders: (status) => {
            if (status < 300) upload?.parts.set(partNumber, size);
            return {};
          },
        });
      }
      case 'partCopy':
        return uploadPartCopy(req, res, url.searchParams);
      case 'complete': {
        counts.completes += 1;
        const id = url.searchParams.get('uploadId') ?? '';
        const upload = uploads.get(id);
        const body = await readBody(req);
        if (!upload) return sendError(res, 404, 'NoSuchUpload', { UploadId: id });
        const numbers = [...body.toString('utf8').matchAll(/<PartNumber>(\d+)<\/PartNumber>/g)].map((m) => Number(m[1]));
        for (let i = 0; i < numbers.length - 1; i++) {
          const size = upload.parts.get(numbers[i]!) ?? 0;
          if (size < minPartSize) {
            return sendError(res, 400, 'EntityTooSmall', { ProposedSize: String(size), MinSizeAllowed: String(minPartSize), PartNumber: String(numbers[i]) });
          }
        }
        return forward(req, res, {
          body,
          onResponse: (upRes) => {
            void readBody(upRes).then((answer) => {
              // s3rver, like S3, may answer 200 with an <Error> body
              if ((upRes.statusCode ?? 500) < 300 && !answer.toString('utf8').includes('<Error>')) {
                keys.set(upload.full, { storageClass: upload.storageClass });
                uploads.delete(id);
              }
              res.writeHead(upRes.statusCode ?? 500, upRes.headers);
              res.end(answer);
            });
          },
        });
      }
      case 'abort':
        uploads.delete(url.searchParams.get('uploadId') ?? '');
        return forward(req, res);
      case 'restore':
        return restoreObject(req, res, bucket, key);
      case 'tagging':
        counts.tagging += 1;
        return forward(req, res);
      case 'lifecycle': {
        counts.lifecycle += 1;
        const body = await readBody(req);
        if (method === 'PUT') {
          const hasChecksum = req.headers['content-md5'] !== undefined || Object.keys(req.headers).some((h) => h.startsWith('x-amz-checksum-'));
          if (!hasChecksum) return sendError(res, 400, 'InvalidRequest', {}, 'Missing required header for this request: Content-MD5');
          const xml = body.toString('utf8');
          if (!/<LifecycleConfiguration[\s>]/.test(xml) || !/<Rule>/.test(xml)) return sendError(res, 400, 'MalformedXML');
          lifecycles.set(bucket, xml);
          res.writeHead(200, { 'content-length': 0 });
          return void res.end();
        }
        if (method === 'GET') {
          const xml = lifecycles.get(bucket);
          if (xml === undefined) return sendError(res, 404, 'NoSuchLifecycleConfiguration', { BucketName: bucket });
          return sendXml(res, 200, xml);
        }
        if (method === 'DELETE') {
          lifecycles.delete(bucket);
          res.writeHead(204);
          return void res.end();
        }
        return sendError(res, 405, 'MethodNotAllowed');
      }
      default:
        return forward(req, res);
    }
  };

  /** CopyObject: archived sources must be restored; onto itself only with a change. */
  const copyObject = async (req: http.IncomingMessage, res: http.ServerResponse, bucket: string, key: string): Promise<void> => {
    counts.copies += 1;
    const body = await readBody(req); // empty; read so that no answer leaves a body unread on a kept-alive socket
    const full = fullOf(bucket, key);
    const source = parseCopySource(String(req.headers['x-amz-copy-source']));
    if (!source) return sendError(res, 400, 'InvalidArgument', {}, 'Copy Source must mention the source bucket and key: sourcebucket/sourcekey');
    const cls = classHeader(req);
    if (cls === null) return sendError(res, 400, 'InvalidStorageClass');
    const srcFull = fullOf(source.bucket, source.key);
    const src = stateOf(srcFull);
    const head = await upstreamCall('HEAD', objectPath(source.bucket, source.key));
    if (head.status === 404) return sendError(res, 404, 'NoSuchKey', { Key: source.key });
    if (frozen(src)) return sendError(res, 403, 'InvalidObjectState', { StorageClass: src.storageClass });
    const replace = req.headers['x-amz-metadata-directive'] === 'REPLACE';
    if (srcFull === full && !replace) {
      if (cls === src.storageClass) {
        return sendError(
          res,
          400,
          'InvalidRequest',
          {},
          "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
        );
      }
      // in place: s3rver's bytes stay; the object is new (LastModified now, not restored)
      const now = clock();
      keys.set(full, { storageClass: cls, lastModified: now });
      return sendXml(
        res,
        200,
        `<?xml version="1.0" encoding="UTF-8"?>\n<CopyObjectResult><LastModified>${new Date(now).toISOString()}</LastModified><ETag>${xmlEscape(String(head.headers.etag ?? ''))}</ETag></CopyObjectResult>`,
      );
    }
    forward(req, res, {
      body,
      extraHeaders: (status) => {
        if (status < 300) keys.set(full, { storageClass: cls });
        return {};
      },
    });
  };

  /** UploadPartCopy: a ranged GET of the source from s3rver piped into an UploadPart to s3rver. */
  const uploadPartCopy = async (req: http.IncomingMessage, res: http.ServerResponse, q: URLSearchParams): Promise<void> => {
    counts.partCopies += 1;
    await readBody(req);
    const id = q.get('uploadId') ?? '';
    const partNumber = Number(q.get('partNumber'));
    const upload = uploads.get(id);
    if (!upload) return sendError(res, 404, 'NoSuchUpload', { UploadId: id });
    const source = parseCopySource(String(req.headers['x-amz-copy-source']));
    if (!source) return sendError(res, 400, 'InvalidArgument');
    const src = stateOf(fullOf(source.bucket, source.key));
    const head = await upstreamCall('HEAD', objectPath(source.bucket, source.key));
    if (head.status === 404) return sendError(res, 404, 'NoSuchKey', { Key: source.key });
    if (frozen(src)) return sendError(res, 403, 'InvalidObjectState', { StorageClass: src.storageClass });
    const total = Number(head.headers['content-length'] ?? 0);
    const rangeHeader = req.headers['x-amz-copy-source-range'];
    let start = 0;
    let end = total - 1;
    if (rangeHeader !== undefined) {
      const m = /^bytes=(\d+)-(\d+)$/.exec(String(rangeHeader));
      if (!m) return sendError(res, 400, 'InvalidArgument', {}, 'The x-amz-copy-source-range value must be of the form bytes=first-last');
      start = Number(m[1]);
      end = Number(m[2]);
      if (end < start || end >= total) return sendError(res, 400, 'InvalidRange');
    }
    const length = end - start + 1;
    const got = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const r = upstreamRequest('GET', objectPath(source.bucket, source.key), { range: `bytes=${start}-${end}` });
      r.on('response', resolve);
      r.on('error', reject);
      r.end();
    });
    const served = /^bytes (\d+)-(\d+)\//.exec(String(got.headers['content-range'] ?? ''));
    if (got.statusCode !== 206 || !served || Number(served[1]) !== start || Number(served[2]) !== end) {
      got.resume();
      return sendError(res, 500, 'InternalError', {}, `s3rver answered ${got.statusCode} ${got.headers['content-range'] ?? ''} for bytes=${start}-${end}`);
    }
    const [upBucket, ...rest] = upload.full.split('/');
    const putPath = `${objectPath(upBucket!, rest.join('/'))}?partNumber=${partNumber}&uploadId=${encodeURIComponent(id)}`;
    const put = await new Promise<{ status: number; etag: string }>((resolve, reject) => {
      const r = upstreamRequest('PUT', putPath, { 'content-length': length });
      r.on('response', (upRes) => {
        upRes.resume();
        upRes.on('end', () => resolve({ status: upRes.statusCode ?? 500, etag: String(upRes.headers.etag ?? '') }));
      });
      r.on('error', reject);
      got.pipe(r);
    });
    if (put.status >= 300) return sendError(res, put.status, 'InternalError');
    upload.parts.set(partNumber, length);
    sendXml(
      res,
      200,
      `<?xml version="1.0" encoding="UTF-8"?>\n<CopyPartResult><LastModified>${new Date(clock()).toISOString()}</LastModified><ETag>${xmlEscape(put.etag)}</ETag></CopyPartResult>`,
    );
  };

  /** RestoreObject, as AWS answers it (see the file comment). */
  const restoreObject = async (req: http.IncomingMessage, res: http.ServerResponse, bucket: string, key: string): Promise<void> => {
    counts.restores += 1;
    const xml = (await readBody(req)).toString('utf8');
    const full = fullOf(bucket, key);
    const head = await upstreamCall('HEAD', objectPath(bucket, key));
    if (head.status === 404) return sendError(res, 404, 'NoSuchKey', { Key: key });
    const days = Number(tagText(xml, 'Days'));
    if (!Number.isSafeInteger(days) || days < 1) return sendError(res, 400, 'MalformedXML');
    const tier = tagText(xml, 'Tier') ?? 'Standard';
    if (!['Expedited', 'Standard', 'Bulk'].includes(tier)) return sendError(res, 400, 'MalformedXML');
    const st = keys.get(full) ?? { storageClass: 'STANDARD' };
    if (!ARCHIVE_CLASSES.has(st.storageClass)) {
      return sendError(res, 403, 'InvalidObjectState', { StorageClass: st.storageClass }, "Restore is not allowed for the object's current storage class");
    }
    keys.set(full, st);
    const r = restoreNow(st);
    if (r?.ongoing) return sendError(res, 409, 'RestoreAlreadyInProgress');
    if (r && st.restore) {
      st.restore.expiry = clock() + days * DAY_MS;
      st.restore.days = days;
      res.writeHead(200, { 'content-length': 0 });
      return void res.end();
    }
    counts.restoresStarted += 1;
    st.restore = { finishAt: clock() + restoreDelayMs, days, tier };
    res.writeHead(202, { 'content-length': 0 });
    res.end();
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendError(res, 500, 'InternalError', {}, String((err as Error)?.message ?? err));
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    get counts() {
      return counts;
    },
    resetCounts() {
      counts = zeroCounts();
    },
    classOf(key, bucket) {
      return stateOf(findFull(key, bucket)).storageClass;
    },
    setClass(key, storageClass, bucket) {
      if (!AWS_CLASSES.has(storageClass)) throw new Error(`not an AWS storage class: ${storageClass}`);
      const full = findFull(key, bucket);
      if (full.startsWith('?/')) throw new Error(`setClass: name the bucket of ${key} (the front has not seen it yet)`);
      keys.set(full, { ...stateOf(full), storageClass, restore: undefined });
    },
    restoreOf(key, bucket) {
      const st = keys.get(findFull(key, bucket));
      return st ? restoreNow(st) : null;
    },
    setRestoreDelay(ms) {
      restoreDelayMs = ms;
    },
    finishRestores() {
      const now = clock();
      for (const st of keys.values()) {
        if (st.restore && st.restore.finishAt > now) st.restore.finishAt = now;
      }
    },
    failNext(op, status, code, opts = {}) {
      faults.push({ op, status, code: code ?? (typeof status === 'number' ? 'InternalError' : ''), times: opts.times ?? 1, key: opts.key });
    },
    lifecycleOf(bucket) {
      return lifecycles.get(bucket);
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
