/**
 * The native compare-and-swap path of S3Storage (conditional writes, as AWS S3 has them
 * since 2024), through the real SDK against a small test-only S3 front on 127.0.0.1 that
 * answers PUT/GET/HEAD/DELETE with If-None-Match / If-Match the way AWS documents:
 * 412 PreconditionFailed when the condition fails, 404 NoSuchKey for If-Match on a
 * missing key. s3rver lacks this, so the contract suite covers only the log fallback.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Storage } from './s3-storage.js';

const objects = new Map<string, { body: Buffer; etag: string }>();
let server: http.Server;
let endpoint: string;
let conditionalPuts = 0;

function xmlError(res: http.ServerResponse, status: number, code: string): void {
  const body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${code}</Message></Error>`;
  res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const key = decodeURIComponent(url.pathname);
      const current = objects.get(key);
      if (key === '/b' || key === '/b/') {
        res.writeHead(200); // HeadBucket: the bucket exists
        return res.end();
      }
      if (req.method === 'PUT') {
        const ifNoneMatch = req.headers['if-none-match'];
        const ifMatch = req.headers['if-match'];
        if (ifNoneMatch !== undefined || ifMatch !== undefined) conditionalPuts += 1;
        if (ifNoneMatch === '*' && current) return xmlError(res, 412, 'PreconditionFailed');
        if (ifMatch !== undefined && !current) return xmlError(res, 404, 'NoSuchKey');
        if (ifMatch !== undefined && current && ifMatch !== current.etag) return xmlError(res, 412, 'PreconditionFailed');
        const body = Buffer.concat(chunks);
        const etag = `"${createHash('md5').update(body).digest('hex')}"`;
        objects.set(key, { body, etag });
        res.writeHead(200, { etag, 'content-length': 0 });
        return res.end();
      }
      if (req.method === 'GET' || req.method === 'HEAD') {
        if (!current) return req.method === 'HEAD' ? (res.writeHead(404), res.end()) : xmlError(res, 404, 'NoSuchKey');
        res.writeHead(200, { etag: current.etag, 'content-length': current.body.length });
        return res.end(req.method === 'GET' ? current.body : undefined);
      }
      if (req.method === 'DELETE') {
        objects.delete(key);
        res.writeHead(204);
        return res.end();
      }
      xmlError(res, 501, 'NotImplemented');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

function storage(): S3Storage {
  return new S3Storage({
    bucket: 'b',
    prefix: 'p',
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'k', secretAccessKey: 's' },
  });
}

describe('S3Storage with conditional writes', () => {
  it('detects support, records "native", and swaps with If-None-Match / If-Match', async () => {
    const s = storage();
    expect(await s.probeConditionalWrites()).toBe(true);
    const created = await s.putIf('refs', Buffer.from('a'), 'absent');
    expect(created.ok).toBe(true);
    expect(await s.casMode(false)).toBe('native');
    expect(objects.get('/b/p/.dits-cas-mode')?.body.toString().trim()).toBe('native');
    if (!created.ok) return;
    expect(await s.putIf('refs', Buffer.from('x'), 'absent')).toEqual({ ok: false, current: { etag: created.etag } });
    const read = await s.getVersioned('refs');
    expect(read).toEqual({ body: Buffer.from('a'), etag: created.etag });
    const next = await s.putIf('refs', Buffer.from('b'), { etag: created.etag });
    expect(next.ok).toBe(true);
    expect(await s.putIf('refs', Buffer.from('c'), { etag: created.etag })).toMatchObject({ ok: false });
    expect(await s.putIf('other', Buffer.from('c'), { etag: created.etag })).toEqual({ ok: false, current: null });
    // the object lives at its own key: no log objects
    expect([...objects.keys()].some((k) => k.includes('.dits-cas/'))).toBe(false);
  });

  it('of concurrent writers exactly one wins, each with one conditional PUT', async () => {
    const s = storage();
    const base = await s.getVersioned('refs');
    conditionalPuts = 0;
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => s.putIf('refs', Buffer.from(`w${i}`), { etag: base!.etag })));
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(conditionalPuts).toBe(8);
  });
});
