/**
 * HttpStorage's direct-transfer logic against a scripted server and S3 (an injected
 * fetch): re-presigning after a 403, retries of 5xx from S3, refusal after a second 403,
 * GET URL reuse and expiry, and ranges cut from answers wider than asked.
 * (Against a real server and s3rver: test/server-presign.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import { HttpStorage, isDirectGetKey } from './http-storage.js';
import { readStreamToBuffer } from './object-storage.js';

const PACK = `v1/packs/${'a'.repeat(64)}.pack`;
const noWait = { sleep: async () => {}, random: () => 0 };

interface Script {
  /** answers of S3 to direct requests, in order; then 200 with the object */
  s3: (number | { status: number; body?: string; headers?: Record<string, string> })[];
  object: Buffer;
}

/** A fake: the server presigns `http://s3.test/<n>` URLs; "S3" serves `object`. */
function fakeWorld(script: Script) {
  const log: string[] = [];
  let signed = 0;
  let stored: Buffer | undefined;
  const fetchFn: typeof fetch = async (input, init) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const method = init?.method ?? 'GET';
    if (url.endsWith('/storage/presign')) {
      const body = JSON.parse(Buffer.from(init!.body as Uint8Array).toString()) as { op: string; size?: number };
      signed++;
      log.push(`presign ${body.op}`);
      const headers = body.op === 'put' ? { 'content-length': String(body.size) } : {};
      return Response.json({ url: `http://s3.test/${signed}`, method: body.op.toUpperCase(), headers, expiresAt: new Date(Date.now() + 900_000).toISOString() });
    }
    if (url.startsWith('http://s3.test/')) {
      const headers = init?.headers as Record<string, string>;
      expect(headers.authorization).toBeUndefined(); // the URL carries the signature, never the token
      log.push(`${method} ${url}${headers.range ? ` ${headers.range}` : ''}`);
      const next = script.s3.shift();
      if (next !== undefined) {
        const a = typeof next === 'number' ? { status: next } : next;
        if (a.status !== 200 && a.status !== 206) return new Response(a.body ?? `<Error><Code>X${a.status}</Code></Error>`, { status: a.status });
        return new Response(a.body ?? '', { status: a.status, headers: a.headers });
      }
      if (method === 'PUT') {
        stored = Buffer.from(init!.body as Uint8Array);
        return new Response(null, { status: 200, headers: { etag: '"e1"' } });
      }
      return new Response(new Uint8Array(script.object), { status: 200 });
    }
    log.push(`server ${method} ${new URL(url).pathname}`);
    return new Response(JSON.stringify({ message: 'unexpected' }), { status: 500 });
  };
  return { fetchFn, log, stored: () => stored };
}

function storageWith(world: ReturnType<typeof fakeWorld>, extra: Partial<ConstructorParameters<typeof HttpStorage>[0]> = {}) {
  return new HttpStorage({ baseUrl: 'http://dits.test/team/film', token: async () => 'dits_t', fetch: world.fetchFn, retryDeps: noWait, ...extra });
}

describe('HttpStorage direct transfers (scripted)', () => {
  it('knows which GETs go direct: pack bodies only', () => {
    expect(isDirectGetKey(PACK)).toBe(true);
    expect(isDirectGetKey(`v1/packs/${'a'.repeat(64)}.idx`)).toBe(false);
    expect(isDirectGetKey('v1/objects/ab/cd')).toBe(false);
  });

  it('a put refused with 403 (expired URL) presigns once more and succeeds; 503 from S3 is retried', async () => {
    const world = fakeWorld({ s3: [403, 503], object: Buffer.alloc(0) });
    const storage = storageWith(world);
    const body = Buffer.alloc(2 * 1024 * 1024, 7);
    expect(await storage.put(PACK, body)).toEqual({ etag: '"e1"' });
    expect(world.stored()?.equals(body)).toBe(true);
    expect(world.log).toEqual(['presign put', 'PUT http://s3.test/1', 'presign put', 'PUT http://s3.test/2', 'PUT http://s3.test/2']);
    expect(storage.counts).toMatchObject({ directPuts: 1, presignRequests: 2, directBytesUp: body.length });
  });

  it('a second 403 is a refusal with a hint, not retried further', async () => {
    const world = fakeWorld({ s3: [403, 403], object: Buffer.from('x') });
    const storage = storageWith(world);
    await expect(storage.getBuffer(PACK)).rejects.toMatchObject({ code: 'direct-transfer-refused', status: 403, hint: expect.stringMatching(/clock/) });
    expect(world.log).toEqual(['presign get', 'GET http://s3.test/1', 'presign get', 'GET http://s3.test/2']);
  });

  it('reuses a GET URL until a minute before it expires', async () => {
    const object = Buffer.from('0123456789');
    const world = fakeWorld({ s3: [], object });
    let now = Date.now();
    const storage = storageWith(world, { now: () => now });
    await storage.getBuffer(PACK);
    await storage.getBuffer(PACK);
    // the URL has under a minute left: 30 s, plus however long after the test's clock was
    // read the fake server presigned (by its own clock); +1 ms was a flake on a busy machine
    now += 14 * 60_000 + 30_000;
    await storage.getBuffer(PACK);
    expect(world.log.filter((l) => l.startsWith('presign'))).toHaveLength(2);
    // reads of one pack that start together share one presign
    const fresh = storageWith(world);
    await Promise.all([0, 1, 2, 3].map((i) => fresh.getBuffer(PACK, { start: i, end: i })));
    expect(fresh.counts.presignRequests).toBe(1);
  });

  it('cuts the asked range out of a whole-object 200 or a wider 206; refuses an answer that starts later', async () => {
    const world = fakeWorld({
      s3: [
        { status: 200, body: '0123456789' },
        { status: 206, body: '0123456789', headers: { 'content-range': 'bytes 0-9/10' } },
        { status: 206, body: '56789', headers: { 'content-range': 'bytes 5-9/10' } },
      ],
      object: Buffer.from('0123456789'),
    });
    const storage = storageWith(world);
    expect((await storage.getBuffer(PACK, { start: 3, end: 5 })).toString()).toBe('345');
    expect((await readStreamToBuffer(await storage.get(PACK, { start: 0, end: 0 }))).toString()).toBe('0');
    await expect(storage.get(PACK, { start: 2, end: 3 })).rejects.toMatchObject({ code: 's3-error', retryable: true });
  });

  it('5xx from S3 on a GET is retried with the same URL', async () => {
    const world = fakeWorld({ s3: [500, 503], object: Buffer.from('abc') });
    const storage = storageWith(world);
    expect((await storage.getBuffer(PACK)).toString()).toBe('abc');
    expect(world.log).toEqual(['presign get', 'GET http://s3.test/1', 'GET http://s3.test/1', 'GET http://s3.test/1']);
  });
});
