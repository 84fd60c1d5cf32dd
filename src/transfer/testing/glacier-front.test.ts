/**
 * The Glacier front answers the real AWS SDK as AWS documents: classes per key through
 * PUT, CopyObject (onto itself too) and multipart with UploadPartCopy; LIST and HEAD carry
 * them; archived GETs are 403 InvalidObjectState; RestoreObject 202 / 409 / 200 with
 * `x-amz-restore` on HEAD; restores finish and expire by the test's clock; faults on demand.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import type * as S3Sdk from '@aws-sdk/client-s3';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startGlacierFront, type GlacierFront } from './glacier-front.js';
import { startS3rver, type RunningS3rver } from './s3rver.js';

const sdk = createRequire(import.meta.url)('@aws-sdk/client-s3') as typeof S3Sdk;
const BUCKET = 'glacier';
const MiB = 1024 * 1024;

let s3rver: RunningS3rver;
let front: GlacierFront;
let client: S3Sdk.S3Client;
let now = Date.UTC(2026, 0, 1);

beforeAll(async () => {
  s3rver = await startS3rver({ buckets: [BUCKET] });
  front = await startGlacierFront(s3rver.endpoint, { restoreDelayMs: 60_000, clock: () => now });
  client = new sdk.S3Client({
    endpoint: front.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: s3rver.credentials,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 1,
  });
});
afterAll(async () => {
  client?.destroy();
  await front?.close();
  await s3rver?.close();
});
beforeEach(() => {
  front.resetCounts();
  front.setRestoreDelay(60_000);
});

const put = (Key: string, Body: Buffer, StorageClass?: S3Sdk.StorageClass) =>
  client.send(new sdk.PutObjectCommand({ Bucket: BUCKET, Key, Body, ContentLength: Body.length, StorageClass }));
const get = async (Key: string) => Buffer.from(await (await client.send(new sdk.GetObjectCommand({ Bucket: BUCKET, Key }))).Body!.transformToByteArray());
const head = (Key: string) => client.send(new sdk.HeadObjectCommand({ Bucket: BUCKET, Key }));
const restore = (Key: string, Days = 2) =>
  client.send(new sdk.RestoreObjectCommand({ Bucket: BUCKET, Key, RestoreRequest: { Days, GlacierJobParameters: { Tier: 'Standard' } } }));
const setClass = (Key: string, StorageClass: S3Sdk.StorageClass) =>
  client.send(new sdk.CopyObjectCommand({ Bucket: BUCKET, Key, CopySource: `${BUCKET}/${Key}`, StorageClass, MetadataDirective: 'COPY' }));
const failure = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (err) {
    return err as { name: string; $metadata: { httpStatusCode?: number }; StorageClass?: string };
  }
  throw new Error('expected the request to fail');
};
const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

describe('glacier front', () => {
  it('keeps the class of a PUT and shows it in HEAD (not for STANDARD) and LIST', async () => {
    await put('a/standard', Buffer.from('s'));
    await put('a/deep', Buffer.from('d'), 'DEEP_ARCHIVE');
    await put('a/ia', Buffer.from('i'), 'STANDARD_IA');
    expect((await head('a/standard')).StorageClass).toBeUndefined();
    expect((await head('a/deep')).StorageClass).toBe('DEEP_ARCHIVE');
    expect((await head('a/deep')).Restore).toBeUndefined();
    const listed = await client.send(new sdk.ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'a/' }));
    expect(Object.fromEntries((listed.Contents ?? []).map((o) => [o.Key, o.StorageClass]))).toEqual({
      'a/standard': 'STANDARD',
      'a/deep': 'DEEP_ARCHIVE',
      'a/ia': 'STANDARD_IA',
    });
    const v1 = await client.send(new sdk.ListObjectsCommand({ Bucket: BUCKET, Prefix: 'a/d' }));
    expect(v1.Contents?.map((o) => o.StorageClass)).toEqual(['DEEP_ARCHIVE']);
    expect(front.classOf('a/ia')).toBe('STANDARD_IA');
    expect(front.counts.puts).toBe(3);
    expect(front.counts.bytesUploaded).toBe(3);
  });

  it('refuses an unknown storage class as AWS does', async () => {
    const err = await failure(put('bad/class', Buffer.from('x'), 'COLD_STORAGE' as S3Sdk.StorageClass));
    expect(err.name).toBe('InvalidStorageClass');
    expect(err.$metadata.httpStatusCode).toBe(400);
  });

  it('changes the class in place by CopyObject onto itself: no bytes uploaded, same bytes and ETag, LastModified now', async () => {
    const body = randomBytes(50_000);
    await put('copy/self', body);
    const before = await head('copy/self');
    front.resetCounts();
    now += 1000;
    const out = await setClass('copy/self', 'GLACIER_IR');
    expect(out.CopyObjectResult?.ETag).toBe(before.ETag);
    expect(out.CopyObjectResult?.LastModified?.getTime()).toBe(Math.floor(now / 1000) * 1000);
    expect(front.classOf('copy/self')).toBe('GLACIER_IR');
    expect(front.counts).toMatchObject({ puts: 0, uploadParts: 0, bytesUploaded: 0, deletes: 0, copies: 1 });
    expect(md5(await get('copy/self'))).toBe(md5(body));
    const listed = await client.send(new sdk.ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'copy/self' }));
    expect(listed.Contents?.[0]?.LastModified?.getTime()).toBe(Math.floor(now / 1000) * 1000);
    expect((await head('copy/self')).LastModified?.getTime()).toBe(Math.floor(now / 1000) * 1000);
  });

  it('refuses a copy onto itself that changes nothing (400 InvalidRequest) and a copy from an archived object (403)', async () => {
    await put('copy/same', Buffer.from('x'), 'STANDARD_IA');
    const same = await failure(setClass('copy/same', 'STANDARD_IA'));
    expect(same.name).toBe('InvalidRequest');
    expect(same.$metadata.httpStatusCode).toBe(400);
    await setClass('copy/same', 'DEEP_ARCHIVE');
    const frozen = await failure(setClass('copy/same', 'GLACIER'));
    expect(frozen.name).toBe('InvalidObjectState');
    expect(frozen.$metadata.httpStatusCode).toBe(403);
    expect(front.classOf('copy/same')).toBe('DEEP_ARCHIVE');
  });

  it('copies to another key through s3rver with the class asked for', async () => {
    await put('copy/src', Buffer.from('source bytes'));
    await client.send(new sdk.CopyObjectCommand({ Bucket: BUCKET, Key: 'copy/dst', CopySource: `${BUCKET}/copy/src`, StorageClass: 'STANDARD_IA' }));
    expect(front.classOf('copy/dst')).toBe('STANDARD_IA');
    expect(front.classOf('copy/src')).toBe('STANDARD');
    expect((await get('copy/dst')).toString()).toBe('source bytes');
  });

  it('answers an archived GET with 403 InvalidObjectState until the restore finishes, then until it expires', async () => {
    await put('frozen/a', Buffer.from('cold bytes'), 'GLACIER');
    const err = await failure(get('frozen/a'));
    expect(err.name).toBe('InvalidObjectState');
    expect(err.$metadata.httpStatusCode).toBe(403);
    expect(err.StorageClass).toBe('GLACIER');
    // ranged too
    const ranged = await failure(client.send(new sdk.GetObjectCommand({ Bucket: BUCKET, Key: 'frozen/a', Range: 'bytes=0-3' })));
    expect(ranged.name).toBe('InvalidObjectState');

    expect((await restore('frozen/a', 3)).$metadata.httpStatusCode).toBe(202);
    expect((await head('frozen/a')).Restore).toBe('ongoing-request="true"');
    const again = await failure(restore('frozen/a', 3));
    expect(again.name).toBe('RestoreAlreadyInProgress');
    expect(again.$metadata.httpStatusCode).toBe(409);
    expect((await failure(get('frozen/a'))).name).toBe('InvalidObjectState');

    now += 60_000;
    const finishedAt = now;
    const h = await head('frozen/a');
    expect(h.StorageClass).toBe('GLACIER');
    expect(h.Restore).toBe(`ongoing-request="false", expiry-date="${new Date(finishedAt + 3 * 86_400_000).toUTCString()}"`);
    expect((await get('frozen/a')).toString()).toBe('cold bytes');

    // a request on a restored copy: 200, expiry moves to now + Days, nothing new started
    now += 1000;
    expect((await restore('frozen/a', 5)).$metadata.httpStatusCode).toBe(200);
    expect(front.restoreOf('frozen/a')?.expiry).toBe(now + 5 * 86_400_000);
    expect(front.counts).toMatchObject({ restores: 3, restoresStarted: 1 });

    now += 5 * 86_400_000;
    expect(front.restoreOf('frozen/a')).toBeNull();
    expect((await head('frozen/a')).Restore).toBeUndefined();
    expect((await failure(get('frozen/a'))).name).toBe('InvalidObjectState');
  });

  it('finishRestores ends running restores; a restore of a non-archived object is 403, of a missing one 404', async () => {
    await put('frozen/b', Buffer.from('b'), 'DEEP_ARCHIVE');
    expect((await restore('frozen/b')).$metadata.httpStatusCode).toBe(202);
    front.finishRestores();
    expect(front.restoreOf('frozen/b')?.ongoing).toBe(false);
    expect((await get('frozen/b')).toString()).toBe('b');

    await put('frozen/ir', Buffer.from('ir'), 'GLACIER_IR');
    const notArchived = await failure(restore('frozen/ir'));
    expect(notArchived.name).toBe('InvalidObjectState');
    expect(notArchived.$metadata.httpStatusCode).toBe(403);
    expect((await get('frozen/ir')).toString()).toBe('ir');
    expect((await failure(restore('frozen/missing'))).$metadata.httpStatusCode).toBe(404);
  });

  it('a class change of a restored object makes a new object that is not restored', async () => {
    await put('frozen/c', Buffer.from('c'), 'GLACIER');
    front.setRestoreDelay(0);
    await restore('frozen/c');
    await setClass('frozen/c', 'DEEP_ARCHIVE');
    expect(front.restoreOf('frozen/c')).toBeNull();
    expect((await failure(get('frozen/c'))).name).toBe('InvalidObjectState');
  });

  it('multipart: the class of CreateMultipartUpload, UploadPartCopy parts, EntityTooSmall for small parts', async () => {
    const body = randomBytes(11 * MiB + 123);
    await put('mp/src', body);
    front.resetCounts();
    const created = await client.send(new sdk.CreateMultipartUploadCommand({ Bucket: BUCKET, Key: 'mp/src', StorageClass: 'DEEP_ARCHIVE' }));
    const parts: { PartNumber: number; ETag: string }[] = [];
    const ranges = [
      [0, 5 * MiB - 1],
      [5 * MiB, 10 * MiB - 1],
      [10 * MiB, body.length - 1],
    ];
    for (const [i, [start, end]] of ranges.entries()) {
      const out = await client.send(
        new sdk.UploadPartCopyCommand({
          Bucket: BUCKET,
          Key: 'mp/src',
          UploadId: created.UploadId,
          PartNumber: i + 1,
          CopySource: `${BUCKET}/mp/src`,
          CopySourceRange: `bytes=${start}-${end}`,
        }),
      );
      parts.push({ PartNumber: i + 1, ETag: out.CopyPartResult!.ETag! });
    }
    expect(front.classOf('mp/src')).toBe('STANDARD'); // not before completion
    await client.send(new sdk.CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: 'mp/src', UploadId: created.UploadId, MultipartUpload: { Parts: parts } }));
    expect(front.classOf('mp/src')).toBe('DEEP_ARCHIVE');
    expect(front.counts).toMatchObject({ partCopies: 3, uploadParts: 0, puts: 0, bytesUploaded: 0, deletes: 0 });
    expect((await head('mp/src')).ContentLength).toBe(body.length);
    front.setRestoreDelay(0);
    await restore('mp/src');
    expect(md5(await get('mp/src'))).toBe(md5(body));

    // parts under 5 MiB but the last: refused at completion
    const small = await client.send(new sdk.CreateMultipartUploadCommand({ Bucket: BUCKET, Key: 'mp/small' }));
    const p1 = await client.send(new sdk.UploadPartCommand({ Bucket: BUCKET, Key: 'mp/small', UploadId: small.UploadId, PartNumber: 1, Body: Buffer.alloc(1000), ContentLength: 1000 }));
    const p2 = await client.send(new sdk.UploadPartCommand({ Bucket: BUCKET, Key: 'mp/small', UploadId: small.UploadId, PartNumber: 2, Body: Buffer.alloc(10), ContentLength: 10 }));
    const tooSmall = await failure(
      client.send(
        new sdk.CompleteMultipartUploadCommand({
          Bucket: BUCKET,
          Key: 'mp/small',
          UploadId: small.UploadId,
          MultipartUpload: { Parts: [{ PartNumber: 1, ETag: p1.ETag }, { PartNumber: 2, ETag: p2.ETag }] },
        }),
      ),
    );
    expect(tooSmall.name).toBe('EntityTooSmall');
    expect(front.counts.bytesUploaded).toBe(1010);
  });

  it('an UploadPartCopy from an archived source is 403 InvalidObjectState', async () => {
    await put('mp/cold', Buffer.alloc(100), 'GLACIER');
    const created = await client.send(new sdk.CreateMultipartUploadCommand({ Bucket: BUCKET, Key: 'mp/cold', StorageClass: 'DEEP_ARCHIVE' }));
    const err = await failure(
      client.send(new sdk.UploadPartCopyCommand({ Bucket: BUCKET, Key: 'mp/cold', UploadId: created.UploadId, PartNumber: 1, CopySource: `${BUCKET}/mp/cold` })),
    );
    expect(err.name).toBe('InvalidObjectState');
  });

  it('counts deletes and forgets the class of a deleted key', async () => {
    await put('del/a', Buffer.from('a'), 'STANDARD_IA');
    await client.send(new sdk.DeleteObjectCommand({ Bucket: BUCKET, Key: 'del/a' }));
    expect(front.counts.deletes).toBe(1);
    expect(front.classOf('del/a', BUCKET)).toBe('STANDARD');
  });

  it('failNext: a refused restore (an S3 error answer) and a cut connection, once each', async () => {
    await put('fault/a', Buffer.from('a'), 'GLACIER');
    front.failNext('restore', 503, 'SlowDown');
    const refused = await failure(restore('fault/a'));
    expect(refused.name).toBe('SlowDown');
    expect(refused.$metadata.httpStatusCode).toBe(503);
    front.failNext('restore', 'cut');
    const cut = (await failure(restore('fault/a'))) as unknown as { code?: string; message: string };
    expect(`${cut.code ?? ''} ${cut.message}`).toMatch(/ECONNRESET|socket hang up|aborted/i);
    expect(front.counts.faults).toBe(2);
    expect(front.counts.restoresStarted).toBe(0);
    expect((await restore('fault/a')).$metadata.httpStatusCode).toBe(202);
  });

  it('stores a bucket lifecycle configuration sent by the SDK and answers it back', async () => {
    await client.send(
      new sdk.PutBucketLifecycleConfigurationCommand({
        Bucket: BUCKET,
        LifecycleConfiguration: {
          Rules: [{ ID: 'r', Status: 'Enabled', Filter: { Tag: { Key: 'dits-tier', Value: 'deep' } }, Transitions: [{ Days: 0, StorageClass: 'DEEP_ARCHIVE' }] }],
        },
      }),
    );
    expect(front.lifecycleOf(BUCKET)).toContain('<Value>deep</Value>');
    const back = await client.send(new sdk.GetBucketLifecycleConfigurationCommand({ Bucket: BUCKET }));
    expect(back.Rules?.[0]).toMatchObject({ ID: 'r', Status: 'Enabled', Filter: { Tag: { Key: 'dits-tier', Value: 'deep' } }, Transitions: [{ Days: 0, StorageClass: 'DEEP_ARCHIVE' }] });
  });
});
