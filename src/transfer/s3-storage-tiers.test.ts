/**
 * S3Storage as a TierStorage, through the real AWS SDK against the Glacier front before
 * s3rver: classes change in place (no byte uploaded, nothing deleted, same bytes), by a
 * multipart copy past the threshold; restores answer their states; archived reads are
 * FrozenObjectError on every read path, never retried; a provider that refuses; and
 * single-class providers that do nothing and say so.
 */
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import type * as S3Sdk from '@aws-sdk/client-s3';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openRemoteStorage } from '../remote/open-remote.js';
import { FrozenObjectError, isFrozenError, tierStorageOf } from '../tier/tier-storage.js';
import type { ListedObject } from './object-storage.js';
import { parseRestoreHeader, S3Storage, type S3StorageOptions } from './s3-storage.js';
import { s3OptionsFromGitConfig } from './storage-url.js';
import { startGlacierFront, type GlacierFront } from './testing/glacier-front.js';
import { startS3rver, type RunningS3rver } from './testing/s3rver.js';

const sdk = createRequire(import.meta.url)('@aws-sdk/client-s3') as typeof S3Sdk;
const BUCKET = 'tiers';
const MiB = 1024 * 1024;

let s3rver: RunningS3rver;
let front: GlacierFront;

beforeAll(async () => {
  s3rver = await startS3rver({ buckets: [BUCKET] });
  front = await startGlacierFront(s3rver.endpoint, { restoreDelayMs: 3_600_000 });
});
afterAll(async () => {
  await front?.close();
  await s3rver?.close();
});
beforeEach(() => front.resetCounts());

function storage(extra: Partial<S3StorageOptions> = {}): S3Storage {
  return new S3Storage({
    bucket: BUCKET,
    prefix: `t-${randomBytes(6).toString('hex')}`,
    endpoint: front.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: s3rver.credentials,
    tier: { provider: 'aws' },
    requestRetry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5 },
    ...extra,
  });
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function all<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function rejection(p: Promise<unknown>): Promise<Error & { code?: string; key?: string; storageClass?: string; retryable?: boolean }> {
  try {
    await p;
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected a rejection');
}

describe('S3Storage tiers', () => {
  it('changes a class in place: 0 PUT of bytes, 0 DELETE, the same objects and bytes before and after', async () => {
    const s = storage();
    const bodies = new Map<string, Buffer>();
    for (let i = 0; i < 4; i++) {
      const body = randomBytes(20_000 + i);
      bodies.set(`v1/packs/p${i}.pack`, body);
      await s.put(`v1/packs/p${i}.pack`, body);
    }
    const before = await all(s.list('v1/packs/'));
    front.resetCounts();
    await s.setStorageClass('v1/packs/p1.pack', 'STANDARD_IA', { size: 20_001 });
    await s.setStorageClass('v1/packs/p2.pack', 'GLACIER_IR', { size: 20_002 });
    expect(front.counts).toMatchObject({ puts: 0, uploadParts: 0, bytesUploaded: 0, deletes: 0, copies: 2 });
    const after = await all(s.list('v1/packs/'));
    expect(after.map((o) => o.key).sort()).toEqual(before.map((o) => o.key).sort());
    const classes = Object.fromEntries(after.map((o: ListedObject) => [o.key, o.storageClass]));
    expect(classes).toEqual({
      'v1/packs/p0.pack': 'STANDARD',
      'v1/packs/p1.pack': 'STANDARD_IA',
      'v1/packs/p2.pack': 'GLACIER_IR',
      'v1/packs/p3.pack': 'STANDARD',
    });
    for (const [key, body] of bodies) expect(sha(await s.getBuffer(key))).toBe(sha(body));
    const tiered = await all(s.listTiered('v1/packs/'));
    expect(tiered.find((o) => o.key === 'v1/packs/p2.pack')).toMatchObject({ size: 20_002, storageClass: 'GLACIER_IR' });
    expect(tiered.every((o) => o.lastModified > Date.now() - 600_000)).toBe(true);
    expect(await s.tierState('v1/packs/p1.pack')).toEqual({ size: 20_001, storageClass: 'STANDARD_IA', restore: null });
    expect(await s.tierState('v1/packs/missing.pack')).toBeNull();
    expect(tierStorageOf(s)).toBe(s);
  });

  it('a class change to the class an object already has changes nothing and succeeds', async () => {
    const s = storage();
    await s.put('v1/packs/same.pack', Buffer.from('same'));
    await s.setStorageClass('v1/packs/same.pack', 'STANDARD_IA', { size: 4 });
    await s.setStorageClass('v1/packs/same.pack', 'STANDARD_IA', { size: 4 });
    expect(front.classOf(`${s.prefix}v1/packs/same.pack`)).toBe('STANDARD_IA');
  });

  it('past copyPartThreshold: a multipart copy onto the same key from UploadPartCopy parts, metadata kept', async () => {
    const s = storage({ copyPartThreshold: 6 * MiB, copyPartSize: 5 * MiB, partSize: 64 * MiB });
    const body = randomBytes(12 * MiB + 77);
    await s.put('v1/packs/big.pack', body, { contentType: 'application/x-dits-pack' });
    front.resetCounts();
    await s.setStorageClass('v1/packs/big.pack', 'GLACIER_IR', { size: body.length });
    expect(front.counts).toMatchObject({ partCopies: 3, createMultiparts: 1, completes: 1, copies: 0, puts: 0, uploadParts: 0, bytesUploaded: 0, deletes: 0 });
    expect(front.classOf(`${s.prefix}v1/packs/big.pack`)).toBe('GLACIER_IR');
    expect(sha(await s.getBuffer('v1/packs/big.pack'))).toBe(sha(body));
    const head = await s.client.send(new sdk.HeadObjectCommand({ Bucket: BUCKET, Key: `${s.prefix}v1/packs/big.pack` }));
    expect(head.ContentType).toBe('application/x-dits-pack');
    expect(await all(s.list('v1/packs/'))).toHaveLength(1);
  });

  it('reads of an archived object are FrozenObjectError (get, ranged get, getBuffer), sent once, never retried', async () => {
    const s = storage();
    await s.put('v1/packs/cold.pack', Buffer.from('cold bytes'));
    await s.setStorageClass('v1/packs/cold.pack', 'DEEP_ARCHIVE', { size: 10 });
    front.resetCounts();
    for (const read of [() => s.get('v1/packs/cold.pack'), () => s.get('v1/packs/cold.pack', { start: 2, end: 5 }), () => s.getBuffer('v1/packs/cold.pack')]) {
      const err = await rejection(read());
      expect(err).toBeInstanceOf(FrozenObjectError);
      expect(isFrozenError(err)).toBe(true);
      expect(err).toMatchObject({ code: 'storage-frozen', key: 'v1/packs/cold.pack', storageClass: 'DEEP_ARCHIVE', retryable: false });
      expect(err.message).toMatch(/frozen \(DEEP_ARCHIVE\)/);
    }
    expect(front.counts.gets).toBe(3);
  });

  it('a presigned GET of an archived object is 403 InvalidObjectState (what a Dits server hands a client), and reads once restored', async () => {
    const s = storage();
    await s.put('v1/packs/p.pack', Buffer.from('presigned'));
    await s.setStorageClass('v1/packs/p.pack', 'GLACIER', { size: 9 });
    const url = (await s.presign('get', 'v1/packs/p.pack')).url;
    const frozen = await fetch(url);
    expect(frozen.status).toBe(403);
    expect(await frozen.text()).toMatch(/<Code>InvalidObjectState<\/Code>.*<StorageClass>GLACIER<\/StorageClass>/s);
    await s.requestRestore('v1/packs/p.pack', { days: 1, tier: 'standard' });
    front.finishRestores();
    const thawed = await fetch(url);
    expect(thawed.status).toBe(200);
    expect(await thawed.text()).toBe('presigned');
  });

  it('restores: started, in-progress, restored; tierState follows x-amz-restore; then the object reads', async () => {
    const s = storage();
    await s.put('v1/packs/r.pack', Buffer.from('restore me'));
    await s.setStorageClass('v1/packs/r.pack', 'GLACIER', { size: 10 });
    expect((await s.tierState('v1/packs/r.pack'))?.restore).toBeNull();
    expect(await s.requestRestore('v1/packs/r.pack', { days: 7, tier: 'bulk' })).toBe('started');
    expect(front.restoreOf(`${s.prefix}v1/packs/r.pack`)).toMatchObject({ ongoing: true, days: 7, tier: 'Bulk' });
    expect(await s.tierState('v1/packs/r.pack')).toEqual({ size: 10, storageClass: 'GLACIER', restore: { ongoing: true } });
    expect(await s.requestRestore('v1/packs/r.pack', { days: 7, tier: 'standard' })).toBe('in-progress');
    expect(isFrozenError(await rejection(s.getBuffer('v1/packs/r.pack')))).toBe(true);
    front.finishRestores();
    const state = await s.tierState('v1/packs/r.pack');
    expect(state?.restore?.ongoing).toBe(false);
    // the header carries whole seconds
    expect(Math.abs((state?.restore?.expiry ?? 0) - front.restoreOf(`${s.prefix}v1/packs/r.pack`)!.expiry!)).toBeLessThan(1000);
    expect((await s.getBuffer('v1/packs/r.pack')).toString()).toBe('restore me');
    expect(await s.requestRestore('v1/packs/r.pack', { days: 3, tier: 'standard' })).toBe('restored');
    expect(front.counts.restoresStarted).toBe(1);

    await s.put('v1/packs/ir.pack', Buffer.from('ir'));
    await s.setStorageClass('v1/packs/ir.pack', 'GLACIER_IR', { size: 2 });
    expect(await s.requestRestore('v1/packs/ir.pack', { days: 1, tier: 'standard' })).toBe('not-archived');
    expect(await s.requestRestore('v1/packs/hot.pack', { days: 1, tier: 'standard' }).catch((e: { code: string }) => e.code)).toBe('storage-not-found');
  });

  it('a restored archived object can be made hot again for good, whole or multipart', async () => {
    for (const threshold of [1e9, 5]) {
      const s = storage({ copyPartThreshold: threshold, copyPartSize: 5 * MiB });
      await s.put('v1/packs/back.pack', Buffer.from('coming back'));
      await s.setStorageClass('v1/packs/back.pack', 'DEEP_ARCHIVE', { size: 11 });
      expect(await s.requestRestore('v1/packs/back.pack', { days: 1, tier: 'bulk' })).toBe('started');
      front.finishRestores();
      await s.setStorageClass('v1/packs/back.pack', 'STANDARD', { size: 11 });
      expect(await s.tierState('v1/packs/back.pack')).toEqual({ size: 11, storageClass: 'STANDARD', restore: null });
      expect((await s.getBuffer('v1/packs/back.pack')).toString()).toBe('coming back');
    }
  });

  it('a copy from an archived object without a restore is FrozenObjectError, whole or multipart, and nothing changes', async () => {
    const s = storage({ copyPartThreshold: 100 });
    await s.put('v1/packs/deep.pack', Buffer.alloc(1000, 7));
    await s.setStorageClass('v1/packs/deep.pack', 'DEEP_ARCHIVE', { size: 1000 });
    front.resetCounts();
    expect(isFrozenError(await rejection(s.setStorageClass('v1/packs/deep.pack', 'GLACIER', { size: 1000 })))).toBe(true);
    expect(front.counts).toMatchObject({ createMultiparts: 0, partCopies: 0, deletes: 0 });
    const single = storage({ copyPartThreshold: 1e9 });
    await single.put('v1/packs/deep2.pack', Buffer.alloc(10, 7));
    await single.setStorageClass('v1/packs/deep2.pack', 'DEEP_ARCHIVE', { size: 10 });
    expect(isFrozenError(await rejection(single.setStorageClass('v1/packs/deep2.pack', 'GLACIER', { size: 10 })))).toBe(true);
    expect(front.classOf(`${single.prefix}v1/packs/deep2.pack`)).toBe('DEEP_ARCHIVE');
  });

  it('a provider that refuses: a refused restore and a refused class change throw and change nothing; a cut or a 503 is retried once and restores once', async () => {
    const s = storage();
    await s.put('v1/packs/f.pack', Buffer.from('f'));
    await s.setStorageClass('v1/packs/f.pack', 'GLACIER', { size: 1 });
    front.resetCounts();
    front.failNext('restore', 403, 'AccessDenied');
    expect(await rejection(s.requestRestore('v1/packs/f.pack', { days: 1, tier: 'standard' }))).toMatchObject({ code: 's3-access-denied' });
    front.failNext('restore', 503, 'GlacierExpeditedRetrievalNotAvailable');
    expect(await rejection(s.requestRestore('v1/packs/f.pack', { days: 1, tier: 'expedited' }))).toMatchObject({ code: 's3-expedited-unavailable', retryable: false });
    expect(front.counts.restoresStarted).toBe(0);
    front.failNext('restore', 'cut');
    front.failNext('restore', 503, 'SlowDown');
    expect(await s.requestRestore('v1/packs/f.pack', { days: 1, tier: 'standard' })).toBe('started');
    expect(front.counts).toMatchObject({ faults: 4, restoresStarted: 1 });

    await s.put('v1/packs/g.pack', Buffer.from('g'));
    front.failNext('copy', 403, 'AccessDenied');
    expect(await rejection(s.setStorageClass('v1/packs/g.pack', 'STANDARD_IA', { size: 1 }))).toMatchObject({ code: 's3-access-denied' });
    expect(front.classOf(`${s.prefix}v1/packs/g.pack`)).toBe('STANDARD');
    expect((await s.getBuffer('v1/packs/g.pack')).toString()).toBe('g');
  });

  it('answers lost after the provider acted: a re-sent restore finds it running (one paid), a re-sent class change finds it done', async () => {
    const s = storage();
    await s.put('v1/packs/lost.pack', Buffer.from('lost'));
    front.resetCounts();
    front.failNext('copy', 'cut-after');
    await s.setStorageClass('v1/packs/lost.pack', 'GLACIER', { size: 4 });
    expect(front.counts).toMatchObject({ copies: 2, faults: 1, deletes: 0, puts: 0 });
    expect(front.classOf(`${s.prefix}v1/packs/lost.pack`)).toBe('GLACIER');
    front.failNext('restore', 'cut-after');
    expect(await s.requestRestore('v1/packs/lost.pack', { days: 1, tier: 'standard' })).toBe('in-progress');
    expect(front.counts).toMatchObject({ restores: 2, restoresStarted: 1 });
    expect(front.restoreOf(`${s.prefix}v1/packs/lost.pack`)?.ongoing).toBe(true);

    const big = storage({ copyPartThreshold: 5, copyPartSize: 5 * MiB });
    await big.put('v1/packs/lost-mp.pack', Buffer.from('multipart'));
    front.resetCounts();
    front.failNext('complete', 'cut-after');
    await big.setStorageClass('v1/packs/lost-mp.pack', 'DEEP_ARCHIVE', { size: 9 });
    expect(front.counts).toMatchObject({ completes: 2, deletes: 0, puts: 0 });
    expect(front.classOf(`${big.prefix}v1/packs/lost-mp.pack`)).toBe('DEEP_ARCHIVE');
  });

  it('single-class providers (B2, R2, Wasabi, unknown endpoints) change nothing and say so', async () => {
    for (const provider of ['b2', 'r2', 'wasabi', 'generic'] as const) {
      const s = storage({ tier: { provider } });
      await s.put('v1/packs/x.pack', Buffer.from('x'));
      front.resetCounts();
      expect(s.tierProfile.classes).toBeNull();
      const err = await rejection(s.setStorageClass('v1/packs/x.pack', 'DEEP_ARCHIVE', { size: 1 }));
      expect(err).toMatchObject({ code: 'tier-unsupported' });
      expect(err.message).toContain(s.tierProfile.note!);
      expect(front.counts.copies + front.counts.createMultiparts).toBe(0);
    }
    const b2 = new S3Storage({ bucket: 'b', endpoint: 'https://s3.us-west-004.backblazeb2.com', region: 'us-west-004', credentials: { accessKeyId: 'k', secretAccessKey: 's' } });
    expect(b2.tierProfile.name).toBe('b2');
    expect(b2.tierProfile.note).toMatch(/Backblaze B2 has one storage class/);
    expect(new S3Storage({ bucket: 'b', region: 'us-east-1' }).tierProfile.classes?.deep).toBe('DEEP_ARCHIVE');
    expect(storage({ tier: undefined }).tierProfile.name).toBe('generic'); // 127.0.0.1: not known to have classes
  });

  it('setTags replaces the object tags (lifecycle-rule mode)', async () => {
    const s = storage();
    await s.put('v1/packs/t.pack', Buffer.from('t'));
    await s.setTags('v1/packs/t.pack', { 'dits-tier': 'cold' });
    const tags = await s.client.send(new sdk.GetObjectTaggingCommand({ Bucket: BUCKET, Key: `${s.prefix}v1/packs/t.pack` }));
    expect(tags.TagSet).toEqual([{ Key: 'dits-tier', Value: 'cold' }]);
  });
});

describe('tier settings', () => {
  it('parses x-amz-restore as AWS writes it', () => {
    expect(parseRestoreHeader(undefined)).toBeNull();
    expect(parseRestoreHeader('ongoing-request="true"')).toEqual({ ongoing: true });
    expect(parseRestoreHeader('ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"')).toEqual({
      ongoing: false,
      expiry: Date.UTC(2012, 11, 21),
    });
  });

  it('reads dits.tier.provider and dits.tier.class.<tier> into the S3 options; a bad class fails only tier work', () => {
    expect(s3OptionsFromGitConfig({ 'dits.tier.provider': 'AWS', 'dits.tier.class.cold': 'GLACIER' }).tier).toEqual({ provider: 'aws', overrides: { cold: 'GLACIER' } });
    expect(s3OptionsFromGitConfig({}).tier).toBeUndefined();
    expect(() => s3OptionsFromGitConfig({ 'dits.tier.provider': 'glacier' })).toThrow(/not an S3 provider/);
    const s = new S3Storage({ bucket: 'b', region: 'us-east-1', tier: { overrides: { cold: 'ICE' } } });
    expect(tierStorageOf(s)).toBe(s);
    expect(() => s.tierProfile).toThrow(/dits.tier.class.cold = ICE is not an AWS storage class/);
  });

  it('a dits::s3 remote opened from git config carries the tier settings', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'dits-tier-config-'));
    try {
      execFileSync('git', ['init', '-q', dir]);
      execFileSync('git', ['-C', dir, 'config', 'dits.tier.provider', 'aws']);
      execFileSync('git', ['-C', dir, 'config', 'dits.tier.class.cold', 'GLACIER']);
      execFileSync('git', ['-C', dir, 'config', 'dits.s3.endpoint', 'http://127.0.0.1:9']);
      const s = (await openRemoteStorage(dir, 's3://bucket/prefix')) as S3Storage;
      expect(s.tierProfile.name).toBe('aws');
      expect(s.tierProfile.classes).toMatchObject({ warm: 'STANDARD_IA', cold: 'GLACIER', deep: 'DEEP_ARCHIVE' });
      expect(s.tierProfile.archive.has('GLACIER')).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
