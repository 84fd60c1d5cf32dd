/**
 * GET of an S3 object (or a byte range of one) on plain node:http(s), signed here with
 * AWS Signature Version 4 (https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html),
 * for the reads that move bytes: pack ranges of a mount or a lazy read, packs of a fetch.
 *
 * Why not the SDK's GetObject: for each request it runs a middleware stack (endpoint rules,
 * schema, checksums, signing through its own layers) and hands the body through wrapping
 * streams; on s3rver over loopback that cost the reader about as much CPU per byte as the
 * server, and on a 2-core machine the server and the reader share the cores.
 *
 * The contract: `open()` answers the response stream of a clean answer (200 for a whole
 * object, 206 whose Content-Range starts at the asked start and ends at the asked end, or at
 * the object's end), or null for anything else (an error status, a server that ignored or
 * widened the range, a socket that failed before the headers): the caller then asks again
 * through the SDK, which maps errors and retries as it always did. So this path decides
 * what one error means only: 403 InvalidObjectState (archived content), answered as a
 * FrozenAnswer, because a read of frozen content must be one request, never retried. `readAll()` reads a body of announced length into one buffer
 * of that length (no list of pieces, no concatenation).
 *
 * Credentials and region come from the SDK client's own resolved providers (environment,
 * profiles, SSO, instance roles: whatever it resolved), so both paths sign as the same user.
 */
import { createHash, createHmac } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import { RawHttpGet, type RawAnswer } from './raw-http-get.js';

export interface DirectGetCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface DirectGetOptions {
  /** The service's endpoint, e.g. http://127.0.0.1:9000 (path-style or virtual-host style). */
  endpoint: string;
  bucket: string;
  forcePathStyle: boolean;
  credentials: () => Promise<DirectGetCredentials>;
  region: () => Promise<string>;
  agent: http.Agent | https.Agent;
  /** Idle socket timeout, ms. */
  socketTimeoutMs: number;
  /** The clock, for the signature's date (tests). */
  now?: () => Date;
}

const UNSIGNED = 'UNSIGNED-PAYLOAD';

/** RFC 3986 encoding of one path segment, as SigV4 wants it (S3: the path is not encoded twice). */
function encodeSegment(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

export class S3DirectGet {
  private readonly url: URL;
  private readonly lib: typeof http | typeof https;
  /** date (YYYYMMDD) + region + secret -> signing key: one HMAC chain a day, not one a request */
  private signingKey: { scope: string; secret: string; key: Buffer } | null = null;
  /** plain http: GETs whose body is read into reused buffers (openPieces) */
  private readonly raw: RawHttpGet | null = null;

  constructor(private readonly opts: DirectGetOptions) {
    this.url = new URL(opts.endpoint);
    this.lib = this.url.protocol === 'https:' ? https : http;
    if (this.url.protocol === 'http:') {
      const hostname = this.url.hostname.replace(/^\[|\]$/g, '');
      this.raw = new RawHttpGet({ host: opts.forcePathStyle ? hostname : `${opts.bucket}.${hostname}`, port: Number(this.url.port || 80), socketTimeoutMs: opts.socketTimeoutMs });
    }
  }

  /** Whether openPieces can answer (a plain http endpoint). */
  get hasPieces(): boolean {
    return this.raw !== null;
  }

  /**
   * As open(), the body in pieces read into buffers used again (raw-http-get.ts): a clean
   * answer, a FrozenAnswer, or null for anything else (and always null on https).
   */
  async openPieces(fullKey: string, range?: { start: number; end: number }): Promise<RawAnswer | FrozenAnswer | null> {
    if (this.raw === null) return null;
    let signed: Awaited<ReturnType<S3DirectGet['sign']>>;
    try {
      signed = await this.sign(fullKey, range ? `bytes=${range.start}-${range.end}` : undefined);
    } catch {
      return null;
    }
    let a: RawAnswer;
    try {
      a = await this.raw.get(signed.path, signed.headers);
    } catch {
      return null; // no answer: the caller asks through node:http, then the SDK
    }
    const header = (name: string): string | undefined => a.headers.get(name);
    if (cleanAnswer(a.status, header, range)) return a;
    if (a.status === 403 && a.length <= 64 * 1024) {
      // archived content: one request, never asked again (see open)
      const parts: Buffer[] = [];
      try {
        await a.pipe((piece) => void parts.push(Buffer.from(piece)));
      } catch {
        return null;
      }
      const xml = Buffer.concat(parts).toString('utf8');
      if (/<Code>InvalidObjectState<\/Code>/.test(xml)) return { frozen: true, storageClass: /<StorageClass>([^<]+)<\/StorageClass>/.exec(xml)?.[1] };
      return null;
    }
    a.cancel();
    return null;
  }

  /** Host header and path of a full key (path-style: /bucket/key; else bucket.host/key). */
  private target(fullKey: string): { host: string; path: string } {
    const base = this.url.pathname.replace(/\/+$/, '');
    const keyPath = fullKey.split('/').map(encodeSegment).join('/');
    if (this.opts.forcePathStyle) return { host: this.url.host, path: `${base}/${encodeSegment(this.opts.bucket)}/${keyPath}` };
    return { host: `${this.opts.bucket}.${this.url.host}`, path: `${base}/${keyPath}` };
  }

  /** The headers of a signed GET (SigV4, unsigned payload). Exposed for tests. */
  async sign(fullKey: string, range: string | undefined): Promise<{ host: string; path: string; headers: Record<string, string> }> {
    const [creds, region] = await Promise.all([this.opts.credentials(), this.opts.region()]);
    const { host, path } = this.target(fullKey);
    const iso = (this.opts.now?.() ?? new Date()).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
    const day = iso.slice(0, 8);
    const headers: Record<string, string> = { host, 'x-amz-content-sha256': UNSIGNED, 'x-amz-date': iso };
    if (range !== undefined) headers.range = range;
    if (creds.sessionToken) headers['x-amz-security-token'] = creds.sessionToken;
    const names = Object.keys(headers).sort();
    const canonical = ['GET', path, '', ...names.map((n) => `${n}:${headers[n]!.trim()}`), '', names.join(';'), UNSIGNED].join('\n');
    const scope = `${day}/${region}/s3/aws4_request`;
    const toSign = `AWS4-HMAC-SHA256\n${iso}\n${scope}\n${createHash('sha256').update(canonical, 'utf8').digest('hex')}`;
    if (this.signingKey?.scope !== scope || this.signingKey.secret !== creds.secretAccessKey) {
      const k = hmac(hmac(hmac(hmac(`AWS4${creds.secretAccessKey}`, day), region), 's3'), 'aws4_request');
      this.signingKey = { scope, secret: creds.secretAccessKey, key: k };
    }
    const signature = createHmac('sha256', this.signingKey.key).update(toSign, 'utf8').digest('hex');
    headers.authorization = `AWS4-HMAC-SHA256 Credential=${creds.accessKeyId}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}`;
    return { host, path, headers };
  }

  /**
   * The body of `fullKey` (bytes start..end inclusive when a range is given) as the response
   * stream, or null when the answer is not a clean one (see the file comment): the caller
   * then uses the SDK. The caller owns the stream (read it to the end or destroy it).
   */
  async open(fullKey: string, range?: { start: number; end: number }): Promise<IncomingMessage | FrozenAnswer | null> {
    let signed: Awaited<ReturnType<S3DirectGet['sign']>>;
    try {
      signed = await this.sign(fullKey, range ? `bytes=${range.start}-${range.end}` : undefined);
    } catch {
      return null; // no credentials here: the SDK says why
    }
    const { host, path, headers } = signed;
    const hostname = this.opts.forcePathStyle ? this.url.hostname : `${this.opts.bucket}.${this.url.hostname}`;
    return new Promise<IncomingMessage | FrozenAnswer | null>((resolve) => {
      const req = this.lib.request({ method: 'GET', hostname, port: this.url.port || undefined, path, headers: { ...headers, host }, agent: this.opts.agent }, (res) => {
        if (clean(res, range)) {
          res.setTimeout(this.opts.socketTimeoutMs, () => res.destroy(new Error(`no data from ${host} for ${this.opts.socketTimeoutMs} ms`)));
          resolve(res);
        } else if (res.statusCode === 403) {
          // archived content is asked once, never again through the SDK (a read of frozen
          // content must cost one request: the tiers' contract); any other 403 goes there
          const parts: Buffer[] = [];
          let size = 0;
          res.on('data', (d: Buffer) => {
            size += d.length;
            if (size <= 64 * 1024) parts.push(d);
          });
          res.on('error', () => resolve(null));
          res.on('end', () => {
            const xml = Buffer.concat(parts).toString('utf8');
            if (!/<Code>InvalidObjectState<\/Code>/.test(xml)) return resolve(null);
            resolve({ frozen: true, storageClass: /<StorageClass>([^<]+)<\/StorageClass>/.exec(xml)?.[1] });
          });
        } else {
          res.resume(); // drained: the socket goes back to the pool
          resolve(null);
        }
      });
      req.setTimeout(this.opts.socketTimeoutMs, () => req.destroy());
      req.on('error', () => resolve(null));
      req.end();
    });
  }
}

/** A 403 InvalidObjectState: the object is in an archive tier without a finished restore. */
export interface FrozenAnswer {
  frozen: true;
  storageClass: string | undefined;
}

/** 200 for a whole object, or 206 of exactly the asked range (cut short only at the object's end). */
function clean(res: IncomingMessage, range: { start: number; end: number } | undefined): boolean {
  return cleanAnswer(res.statusCode ?? 0, (name) => {
    const v = res.headers[name];
    return Array.isArray(v) ? v.join(', ') : v;
  }, range);
}

/** clean() of a status and headers (lower-case names). */
function cleanAnswer(status: number, header: (name: string) => string | undefined, range: { start: number; end: number } | undefined): boolean {
  const length = Number(header('content-length'));
  if (!Number.isSafeInteger(length) || length < 0) return false;
  if (range === undefined) return status === 200;
  if (status !== 206) return false;
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(String(header('content-range') ?? '').trim());
  if (!m) return false;
  const start = Number(m[1]);
  const end = Number(m[2]);
  const total = m[3] === '*' ? undefined : Number(m[3]);
  if (start !== range.start || end - start + 1 !== length) return false;
  return end === range.end || (end < range.end && total !== undefined && end === total - 1);
}

/** The whole body of a clean answer, in one buffer of its announced length. */
export function readAll(res: IncomingMessage): Promise<Buffer> {
  const length = Number(res.headers['content-length']);
  const out = Buffer.allocUnsafeSlow(length);
  let at = 0;
  return new Promise<Buffer>((resolve, reject) => {
    res.on('data', (b: Buffer) => {
      if (at + b.length > length) {
        res.destroy(new Error(`the answer is longer than its Content-Length (${length})`));
        return;
      }
      b.copy(out, at);
      at += b.length;
    });
    res.once('end', () => (at === length ? resolve(out) : reject(new Error(`the answer ended after ${at} of ${length} bytes`))));
    res.once('error', reject);
    res.once('close', () => {
      if (at !== length) reject(new Error(`the connection closed after ${at} of ${length} bytes`));
    });
  });
}
