/**
 * The same push/fetch round trip against every ObjectStorage back end: push from store A,
 * fetch into an empty store B, byte-identical; then dedup of an edited file.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import type { ObjectStorage } from '../../src/transfer/object-storage.js';
import { MemoryStorage } from '../../src/transfer/memory-storage.js';
import { FileStorage } from '../../src/transfer/file-storage.js';
import { S3Storage } from '../../src/transfer/s3-storage.js';
import { startS3rver, type RunningS3rver } from '../../src/transfer/testing/s3rver.js';
import { fetchContent, fetchManifests, pushContent, RemoteContentMissingError, syncRemoteIndex } from '../../src/remote/content/index.js';
import { CountingStorage } from '../../src/remote/content/counting-storage.js';
import { addFile, openStore, readFile, sameBytes, seededBytes, TempDirs } from './fixtures.js';

const dirs = new TempDirs();
afterAll(() => dirs.cleanup());

let s3: RunningS3rver;
beforeAll(async () => {
  s3 = await startS3rver({ buckets: ['content'] });
});
afterAll(async () => {
  await s3?.close();
});

let s3Prefix = 0;
const backends: [string, () => ObjectStorage][] = [
  ['MemoryStorage', () => new MemoryStorage()],
  ['FileStorage', () => new FileStorage(path.join(dirs.make(), 'remote'), { fsync: false })],
  [
    'S3Storage on s3rver',
    () =>
      new S3Storage({
        bucket: 'content',
        prefix: `p${++s3Prefix}`,
        endpoint: s3.endpoint,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: s3.credentials,
        partSize: 5 * 1024 * 1024,
        multipartThreshold: 5 * 1024 * 1024,
      }),
  ],
];

for (const [name, makeStorage] of backends) {
  describe(`content round trip: ${name}`, () => {
    it('push from A, fetch into empty B: byte-identical, verified, deduplicated on re-push', async () => {
      const storage = makeStorage();
      const a = openStore(dirs);
      const f1 = seededBytes(3_000_000, 1, 200_000); // some zstd chunks
      const f2 = seededBytes(700_000, 2);
      const m1 = await addFile(a, f1);
      const m2 = await addFile(a, f2);
      const m3 = await addFile(a, Buffer.alloc(0));

      const plan = await pushContent(storage, a, [m1, m2, m3], { remoteName: 'origin', packSize: 1_000_000, dryRun: true });
      expect(plan.dryRun).toBe(true);
      expect(plan.packs).toBeGreaterThanOrEqual(3);
      expect(plan.manifests).toBe(3);
      const pushed = await pushContent(storage, a, [m1, m2, m3], { remoteName: 'origin', packSize: 1_000_000 });
      expect(pushed.packs).toBe(plan.packs);
      expect(pushed.chunks).toBe(plan.chunks);
      expect(pushed.bytes).toBe(plan.bytes);
      expect(pushed.packBytes).toBeGreaterThan(3_700_000 * 0.9);

      // nothing left to send
      const again = await pushContent(storage, a, [m1, m2, m3], { remoteName: 'origin', packSize: 1_000_000 });
      expect(again).toMatchObject({ chunks: 0, packs: 0, manifests: 0, bytes: 0 });
      expect(again.requests).toBe(2); // the listing, and the tier reaper's pending marks (chunks are reused)

      const b = openStore(dirs);
      const plannedFetch = await fetchContent(storage, b, [m1, m2, m3], { remoteName: 'origin', maxRangeBytes: 300_000, dryRun: true });
      expect(plannedFetch.chunks).toBe(pushed.chunks);
      expect(b.stats().chunks).toBe(0);
      const got = await fetchContent(storage, b, [m1, m2, m3], { remoteName: 'origin', maxRangeBytes: 300_000 });
      expect(got.manifests).toBe(0); // the dry run brought them
      expect(got.chunks).toBe(pushed.chunks);
      expect(got.rangeRequests).toBe(plannedFetch.rangeRequests);
      expect(got.rangeRequests).toBeGreaterThanOrEqual(Math.ceil(pushed.packBytes / 300_000));
      expect(sameBytes(await readFile(b, m1), f1)).toBe(true);
      expect(sameBytes(await readFile(b, m2), f2)).toBe(true);
      expect((await readFile(b, m3)).length).toBe(0);

      // a second fetch moves nothing and makes no request
      const none = await fetchContent(storage, b, [m1, m2], { remoteName: 'origin' });
      expect(none).toMatchObject({ chunks: 0, manifests: 0, requests: 0 });

      // the remote index of a fresh store comes from one listing plus the .idx objects
      const c = openStore(dirs);
      const sync = await syncRemoteIndex(storage, c, 'origin');
      expect(sync.packs).toBe(pushed.packs);
      expect(sync.downloadedIndexes).toBe(pushed.packs);
      expect(sync.requests).toBe(1 + pushed.packs);
      const resync = await syncRemoteIndex(storage, c, 'origin');
      expect(resync).toMatchObject({ downloadedIndexes: 0, requests: 1 });

      // content the remote does not hold is named
      const unpushed = await addFile(a, seededBytes(50_000, 3));
      const miss = await fetchContent(storage, c, [unpushed], { remoteName: 'origin' }).catch((e: unknown) => e);
      expect(miss).toBeInstanceOf(RemoteContentMissingError);
      expect((miss as RemoteContentMissingError).code).toBe('remote-content-missing');
      expect((miss as Error).message).toContain(unpushed);

      // manifests alone (lazy mode)
      await fetchManifests(storage, c, [m1]);
      expect(c.hasManifest(m1)).toBe(true);
      expect(c.stats().chunks).toBe(0);
      for (const s of [a, b, c]) s.close();
    });

    it('a slightly edited file sends only its changed chunks', async () => {
      const inner = makeStorage();
      const storage = new CountingStorage(inner, null);
      const a = openStore(dirs);
      const original = seededBytes(4_000_000, 7);
      const m1 = await addFile(a, original);
      const first = await pushContent(storage, a, [m1], { remoteName: 'origin', packSize: 1_000_000 });
      const edited = Buffer.from(original);
      edited.write('a hundred bytes of new content, right in the middle of the file.......................', 2_000_000);
      const m2 = await addFile(a, edited);
      const before = storage.requests;
      const second = await pushContent(storage, a, [m1, m2], { remoteName: 'origin', packSize: 1_000_000 });
      expect(second.chunks).toBeGreaterThanOrEqual(1);
      expect(second.chunks).toBeLessThanOrEqual(3);
      expect(second.bytes).toBeLessThan(3 * 16384 + 200_000 / 10);
      expect(second.packs).toBe(1);
      expect(second.manifests).toBe(1);
      // list + pending marks (chunks are reused) + manifest HEAD + pack + idx + manifest + its location table
      expect(storage.requests - before).toBe(7);
      expect(second.requests).toBe(7);
      expect(first.bytes).toBeGreaterThan(4_000_000);

      const b = openStore(dirs);
      await fetchContent(inner, b, [m2], { remoteName: 'origin' });
      expect(sameBytes(await readFile(b, m2), edited)).toBe(true);
      a.close();
      b.close();
    });
  });
}
