/**
 * S3Storage against a real S3-compatible server (s3rver) on 127.0.0.1: the shared
 * contract, with small multipart parts and small list pages so both paths run; s3rver has
 * no conditional writes, so compare-and-swap goes through the log fallback (cas-log.ts).
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Storage, type S3StorageOptions } from '../../src/transfer/s3-storage.js';
import { startS3rver, type RunningS3rver } from '../../src/transfer/testing/s3rver.js';
import { describeStorageContract, seededBytes } from './storage-contract.js';

let server: RunningS3rver;
const BUCKET = 'dits-contract';

beforeAll(async () => {
  server = await startS3rver({ buckets: [BUCKET] });
});
afterAll(async () => {
  await server?.close();
});

function storageOptions(extra: Partial<S3StorageOptions> = {}): S3StorageOptions {
  return {
    bucket: BUCKET,
    prefix: `t-${randomBytes(6).toString('hex')}/project`,
    endpoint: server.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: server.credentials,
    partSize: 5 * 1024 * 1024,
    multipartThreshold: 5 * 1024 * 1024,
    listPageSize: 7,
    ...extra,
  };
}

describeStorageContract('S3Storage on s3rver', async () => ({ storage: new S3Storage(storageOptions()) }), {
  manyKeys: 40,
  bigBodyBytes: 12 * 1024 * 1024 + 4321,
  casWriters: 5,
  casIncrements: 2,
  nonAtomicPutReason: 's3rver writes objects in place; AWS S3 PUTs are atomic',
});

describe('S3Storage specifics on s3rver', () => {
  it('a streamed body shorter or longer than announced fails with a size mismatch, never hangs, never stores the announced size', async () => {
    const storage = new S3Storage(storageOptions());
    const body = seededBytes(3000, 1);
    const pieces = (...ends: number[]) => () => Readable.from(ends.map((end, i) => body.subarray(i === 0 ? 0 : ends[i - 1], end)));
    // too short: S3 would wait for the missing bytes until a timeout
    await expect(storage.put('short', pieces(1000), { size: 2000 })).rejects.toMatchObject({ code: 'storage-size-mismatch' });
    // too long, in pieces that reach the announced size exactly before the extra bytes come
    await expect(storage.put('long', pieces(1000, 2000, 3000), { size: 2000 })).rejects.toMatchObject({ code: 'storage-size-mismatch' });
    for (const key of ['short', 'long']) {
      const left = await storage.head(key);
      expect(left === null || left.size < 2000).toBe(true); // (s3rver may leave an empty object)
    }
    // a body that fails on its own: its error is what the put reports, not the abort it causes
    const failing = () =>
      new Readable({
        read() {
          this.destroy(new Error('the source disk went away'));
        },
      });
    await expect(storage.put('failing', failing, { size: 2000 })).rejects.toThrow(/the source disk went away/);
    // the announced size exactly, in pieces: stored whole
    await storage.put('exact', pieces(1000, 2000), { size: 2000 });
    expect((await storage.getBuffer('exact')).equals(body.subarray(0, 2000))).toBe(true);
  });

  it('uploads large bodies as multipart with the configured part size', async () => {
    const storage = new S3Storage(storageOptions());
    const data = seededBytes(11 * 1024 * 1024, 5);
    await storage.put('pack', () => Readable.from([data.subarray(0, 3_000_000), data.subarray(3_000_000)]));
    expect(storage.requestCounts.get('CreateMultipartUploadCommand')).toBe(1);
    expect(storage.requestCounts.get('UploadPartCommand')).toBe(3); // 5 + 5 + 1 MiB
    expect(storage.requestCounts.get('CompleteMultipartUploadCommand')).toBe(1);
    expect((await storage.getBuffer('pack')).equals(data)).toBe(true);
    // a Buffer above the threshold also goes multipart; at or below it, one PUT
    await storage.put('pack2', data);
    expect(storage.requestCounts.get('UploadPartCommand')).toBe(6);
    await storage.put('small', () => Readable.from([data.subarray(0, 5 * 1024 * 1024)]), { size: 5 * 1024 * 1024 });
    expect(storage.requestCounts.get('UploadPartCommand')).toBe(6);
    expect((await storage.getBuffer('pack2')).equals(data)).toBe(true);
    expect((await storage.getBuffer('small')).equals(data.subarray(0, 5 * 1024 * 1024))).toBe(true);
  });

  it('detects that s3rver lacks conditional writes and records the log mode', async () => {
    const storage = new S3Storage(storageOptions());
    expect(await storage.probeConditionalWrites()).toBe(false);
    expect(await storage.casMode(false)).toBeNull();
    await storage.putIf('refs/x', Buffer.from('1'), 'absent');
    expect(await storage.casMode(false)).toBe('log');
    // the record wins over a contradicting setting: "on" is refused, not silently mixed
    const forced = new S3Storage({ ...storageOptions(), prefix: storage.prefix, conditionalWrites: 'on' });
    await expect(forced.putIf('refs/x', Buffer.from('2'), 'absent')).rejects.toMatchObject({ code: 's3-cas-mode-conflict' });
    // and the bookkeeping never shows in listings
    await storage.put('refs-visible', Buffer.from('v'));
    const keys: string[] = [];
    for await (const o of storage.list('')) keys.push(o.key);
    expect(keys).toEqual(['refs-visible']);
  });

  it('names a missing bucket', async () => {
    const storage = new S3Storage(storageOptions({ bucket: 'no-such-bucket-here' }));
    await expect(storage.put('k', Buffer.from('x'))).rejects.toMatchObject({ code: 's3-no-such-bucket' });
    await expect(storage.head('k')).rejects.toMatchObject({ code: 's3-no-such-bucket' });
    await expect(storage.checkAccess()).rejects.toMatchObject({ code: 's3-no-such-bucket' });
    await new S3Storage(storageOptions()).checkAccess();
    const err = await storage.getBuffer('k').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 's3-no-such-bucket' });
    expect((err as { hint: string }).hint).toMatch(/bucket name/);
  });

  it('GETs go on the direct path (signed here, s3rver checks the signature), exact bytes for whole objects, ranges and awkward keys', async () => {
    const storage = new S3Storage(storageOptions());
    const body = seededBytes(3 * 1024 * 1024 + 17, 7);
    const keys = ['plain', 'with space/and+plus=eq', "odd!'()*~chars/é ü", 'deep/a/b/c.pack'];
    for (const k of keys) await storage.put(k, body);
    const before = storage.directGets;
    for (const k of keys) {
      expect((await storage.getBuffer(k)).equals(body)).toBe(true);
      expect((await storage.getBuffer(k, { start: 1000, end: 2_000_000 })).equals(body.subarray(1000, 2_000_001))).toBe(true);
      // a range past the end is cut at the end
      expect((await storage.getBuffer(k, { start: body.length - 5, end: body.length + 100 })).equals(body.subarray(body.length - 5))).toBe(true);
      const parts: Buffer[] = [];
      for await (const p of await storage.get(k, { start: 17, end: 1_048_592 })) parts.push(p as Buffer);
      expect(Buffer.concat(parts).equals(body.subarray(17, 1_048_593))).toBe(true);
    }
    expect(storage.directGets - before).toBe(keys.length * 4); // none fell back to the SDK
    expect(storage.requestCounts.get('GetObjectCommand')).toBe(keys.length * 4);
  });

  it('an answer the direct path does not take (a widened range, an error) is asked again through the SDK, with the same results and errors', async () => {
    const storage = new S3Storage(storageOptions());
    const body = seededBytes(5000, 8);
    await storage.put('obj', body);
    const before = storage.directGets;
    // s3rver answers "bytes=0-0" with the whole object: the SDK path cuts the asked byte out
    expect((await storage.getBuffer('obj', { start: 0, end: 0 })).equals(body.subarray(0, 1))).toBe(true);
    await expect(storage.getBuffer('missing')).rejects.toMatchObject({ code: 'storage-not-found' });
    await expect(storage.getBuffer('obj', { start: 6000, end: 7000 })).rejects.toMatchObject({ code: 'storage-bad-range' });
    expect(storage.directGets).toBe(before);
    const wrong = new S3Storage(storageOptions({ credentials: { accessKeyId: 'WRONG', secretAccessKey: 'nope' } }));
    const err = await wrong.getBuffer('obj').catch((e: unknown) => e);
    expect(['s3-bad-credentials', 's3-access-denied']).toContain((err as { code: string }).code);
    // and with the direct path off, the SDK serves everything as before
    const sdkOnly = new S3Storage(storageOptions({ directGet: false, prefix: storage.prefix }));
    expect((await sdkOnly.getBuffer('obj', { start: 10, end: 20 })).equals(body.subarray(10, 21))).toBe(true);
    expect(sdkOnly.directGets).toBe(0);
  });

  it('openPieces: pack ranges read into reused buffers on a plain http endpoint, byte-exact; answers it does not take go through get() with the same bytes and errors', async () => {
    const storage = new S3Storage(storageOptions());
    const body = seededBytes(3 * 1024 * 1024 + 17, 9);
    await storage.put('deep/a b.pack', body);
    await storage.put('small', body.subarray(0, 5000));
    const take = async (key: string, range?: { start: number; end: number }): Promise<Buffer> => {
      const parts: Buffer[] = [];
      await (await storage.openPieces(key, range)).pipe((p) => void parts.push(Buffer.from(p)));
      return Buffer.concat(parts);
    };
    const before = storage.directGets;
    const sdkBefore = storage.requestCounts.get('GetObjectCommand') ?? 0;
    expect((await take('deep/a b.pack')).equals(body)).toBe(true);
    expect((await take('deep/a b.pack', { start: 17, end: 2_000_016 })).equals(body.subarray(17, 2_000_017))).toBe(true);
    expect((await take('deep/a b.pack', { start: body.length - 5, end: body.length + 100 })).equals(body.subarray(body.length - 5))).toBe(true);
    expect(storage.directGets - before).toBe(3);
    expect((storage.requestCounts.get('GetObjectCommand') ?? 0) - sdkBefore).toBe(3);
    // s3rver widens "bytes=0-0" to the whole object: not taken, asked again through get()
    expect((await take('small', { start: 0, end: 0 })).equals(body.subarray(0, 1))).toBe(true);
    await expect(storage.openPieces('missing')).rejects.toMatchObject({ code: 'storage-not-found' });
    await expect(storage.openPieces('small', { start: 6000, end: 7000 })).rejects.toMatchObject({ code: 'storage-bad-range' });
  });

  it('rejects wrong credentials with a hint', async () => {
    const storage = new S3Storage(storageOptions({ credentials: { accessKeyId: 'WRONG', secretAccessKey: 'nope' } }));
    const err = await storage.put('k', Buffer.from('x')).catch((e: unknown) => e);
    expect(['s3-bad-credentials', 's3-access-denied']).toContain((err as { code: string }).code);
    expect((err as { hint: string }).hint).toBeTruthy();
  });
});
