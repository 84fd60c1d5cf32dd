/**
 * Requests on the wire against s3rver: a pack above the multipart threshold goes up in
 * parts, the push's own request count matches the HTTP requests made, and a fetch is a
 * handful of ranged GETs.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { S3Storage } from '../../src/transfer/s3-storage.js';
import { startS3rver, type RunningS3rver } from '../../src/transfer/testing/s3rver.js';
import { fetchContent, pushContent } from '../../src/remote/content/index.js';
import { addFile, openStore, readFile, sameBytes, seededBytes, TempDirs } from './fixtures.js';

const dirs = new TempDirs();
let s3: RunningS3rver;
beforeAll(async () => {
  s3 = await startS3rver({ buckets: ['wire'] });
});
afterAll(async () => {
  await s3?.close();
  dirs.cleanup();
});

const MiB = 1024 * 1024;

/** HTTP requests made: those through the SDK (counted by a middleware) and the GETs made on node:http directly (s3-direct-get.ts). */
function countedS3(): { storage: S3Storage; http: { n: number; log: string[] } } {
  const storage = new S3Storage({
    bucket: 'wire',
    prefix: 'proj',
    endpoint: s3.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: s3.credentials,
    partSize: 5 * MiB,
    multipartThreshold: 5 * MiB,
  });
  let sdk = 0;
  const log: string[] = [];
  const http = {
    get n(): number {
      return sdk + storage.directGets;
    },
    set n(v: number) {
      sdk = v;
      storage.directGets = 0;
    },
    get log(): string[] {
      return log;
    },
    set log(v: string[]) {
      log.length = 0;
      log.push(...v);
    },
  };
  storage.client.middlewareStack.add(
    (next, context) => async (args) => {
      sdk++;
      log.push(String(context.commandName));
      return next(args);
    },
    { step: 'finalizeRequest', name: 'countRequests' },
  );
  return { storage, http };
}

it('a multipart pack push: reported requests equal the HTTP requests made', async () => {
  const { storage, http } = countedS3();
  const a = openStore(dirs);
  const content = seededBytes(12 * MiB, 99);
  const m = await addFile(a, content);
  const multipart = { thresholdBytes: 5 * MiB, partBytes: 5 * MiB };
  const plan = await pushContent(storage, a, [m], { remoteName: 'origin', packSize: 64 * MiB, multipart, dryRun: true });
  const planHttp = http.n;
  expect(plan.packs).toBe(1);
  // create + 3 parts + complete, the .idx, the manifest, its location table
  expect(plan.estimatedRequests).toBe(5 + 1 + 1 + 1);
  http.n = 0;
  http.log = [];
  const pushed = await pushContent(storage, a, [m], { remoteName: 'origin', packSize: 64 * MiB, multipart });
  expect(http.log.filter((c) => c === 'UploadPartCommand')).toHaveLength(3);
  expect(pushed.requests).toBe(http.n);
  expect(pushed.requests).toBe(planHttp + plan.estimatedRequests);

  http.n = 0;
  const b = openStore(dirs);
  const got = await fetchContent(storage, b, [m], { remoteName: 'origin', maxRangeBytes: 4 * MiB });
  expect(sameBytes(await readFile(b, m), content)).toBe(true);
  // list + idx + manifest + 4 ranges of at most 4 MiB
  expect(got.requests).toBe(http.n);
  expect(http.n).toBe(1 + 1 + 1 + 4);
  a.close();
  b.close();
});
