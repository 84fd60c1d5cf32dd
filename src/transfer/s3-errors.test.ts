/**
 * What users see when S3 is misconfigured or failing, through the real SDK and HTTP: a tiny
 * server on 127.0.0.1 answers every request with the error AWS documents for the case.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { S3Storage, type S3StorageOptions } from './s3-storage.js';
import { TransferQueue } from './transfer-queue.js';

let answer: { status: number; code: string; message: string } = { status: 500, code: 'InternalError', message: '' };
/** when set, requests after the first `failures` succeed (an empty 200 with an ETag) */
let recoverAfter: number | undefined;
let hits = 0;
let server: http.Server;
let endpoint: string;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    hits += 1;
    req.resume();
    req.on('end', () => {
      if (recoverAfter !== undefined && hits > recoverAfter) {
        res.writeHead(200, { etag: '"0123456789abcdef0123456789abcdef"', 'content-length': 0 });
        res.end();
        return;
      }
      const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${answer.code}</Code><Message>${answer.message}</Message><RequestId>1</RequestId></Error>`;
      res.writeHead(answer.status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});
afterEach(() => {
  hits = 0;
  recoverAfter = undefined;
});

function storage(extra: Partial<S3StorageOptions> = {}): S3Storage {
  return new S3Storage({
    bucket: 'team-media',
    prefix: 'project',
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'AKIAEXAMPLE', secretAccessKey: 'secret', sessionToken: 'token' },
    requestRetry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2 },
    ...extra,
  });
}

async function failure(p: Promise<unknown>): Promise<{ code: string; message: string; hint?: string; retryable?: boolean }> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeDefined();
  return err as { code: string; message: string; hint?: string; retryable?: boolean };
}

describe('S3 errors say what to do', () => {
  it('expired credentials', async () => {
    answer = { status: 400, code: 'ExpiredToken', message: 'The provided token has expired.' };
    const err = await failure(storage().put('k', Buffer.from('x')));
    expect(err.code).toBe('s3-credentials-expired');
    expect(err.hint).toMatch(/aws sso login/);
    expect(err.retryable).toBe(false);
    expect(hits).toBe(1);
  });

  it('access denied', async () => {
    answer = { status: 403, code: 'AccessDenied', message: 'Access Denied' };
    const err = await failure(storage().getBuffer('v1/objects/ab/cd'));
    expect(err.code).toBe('s3-access-denied');
    expect(err.message).toContain('s3://team-media/project/v1/objects/ab/cd');
    expect(err.hint).toMatch(/s3:GetObject/);
  });

  it('access denied on HEAD (no body, only the status)', async () => {
    answer = { status: 403, code: 'AccessDenied', message: '' };
    expect((await failure(storage().head('k'))).code).toBe('s3-access-denied');
  });

  it('no such bucket', async () => {
    answer = { status: 404, code: 'NoSuchBucket', message: 'The specified bucket does not exist' };
    const err = await failure(storage().put('k', Buffer.from('x')));
    expect(err.code).toBe('s3-no-such-bucket');
    expect(err.message).toContain('"team-media"');
    // HEAD of an object: a bare 404, so the storage asks the bucket
    expect((await failure(storage().head('k'))).code).toBe('s3-no-such-bucket');
  });

  it('throttling is retried, then reported through the queue', async () => {
    answer = { status: 503, code: 'SlowDown', message: 'Please reduce your request rate.' };
    const queue = new TransferQueue(storage(), { retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 2 } });
    const err = await failure(queue.upload({ key: 'pack', body: Buffer.from('x') }));
    expect(err.code).toBe('transfer-failed');
    expect(err.message).toContain('SlowDown');
    expect(err.message).toContain('s3://team-media/project/pack');
    // 3 queue attempts x 2 request attempts inside the storage
    expect(hits).toBe(6);
  });

  it('503 SlowDown for a while, then recovery: the queue completes through retries', async () => {
    answer = { status: 503, code: 'SlowDown', message: 'Please reduce your request rate.' };
    recoverAfter = 5;
    const queue = new TransferQueue(storage({ requestRetry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 } }), {
      concurrency: 1,
      retry: { maxAttempts: 8, baseDelayMs: 1, maxDelayMs: 5 },
    });
    const result = await queue.upload({ key: 'pack', body: Buffer.from('pack bytes') });
    expect(result).toMatchObject({ key: 'pack', etag: '"0123456789abcdef0123456789abcdef"', attempts: 6 });
    expect(queue.retryCount).toBe(5);
    expect(hits).toBe(6);
  });

  it('endpoint down (connection refused) is retried, then named', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const s = storage({ endpoint: `http://127.0.0.1:${port}` });
    const err = await failure(s.put('k', Buffer.from('x')));
    expect(err.code).toBe('storage-unreachable');
    expect(err.message).toContain(`127.0.0.1:${port}`);
    expect(err.hint).toMatch(/dits\.s3\.endpoint/);
    expect(err.retryable).toBe(true);
  });

  it('endpoint host that does not resolve', async () => {
    const s = storage({ endpoint: 'http://no-such-host.invalid:9000', connectTimeoutMs: 2000 });
    const err = await failure(s.put('k', Buffer.from('x')));
    expect(err.code).toBe('storage-unreachable');
    expect(err.hint).toMatch(/spelling/);
  });

  it('no credentials anywhere', async () => {
    const saved = { ...process.env };
    try {
      for (const name of Object.keys(process.env)) if (name.startsWith('AWS_')) delete process.env[name];
      process.env.AWS_SHARED_CREDENTIALS_FILE = '/nonexistent/credentials';
      process.env.AWS_CONFIG_FILE = '/nonexistent/config';
      process.env.AWS_EC2_METADATA_DISABLED = 'true';
      const s = storage({ credentials: undefined });
      const err = await failure(s.put('k', Buffer.from('x')));
      expect(err.code).toBe('s3-no-credentials');
      expect(err.hint).toMatch(/AWS_PROFILE/);
      expect(hits).toBe(0);
    } finally {
      process.env = saved;
    }
  });
});
