/**
 * S3 going away in the middle of uploads: each put fails with its own error, and the AWS
 * SDK prints nothing (it used to print "An error was encountered in a non-retryable
 * streaming request." once per failed streamed request, dozens of lines before the real error).
 */
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, expect, it, vi } from 'vitest';
import { S3Storage } from '../../src/transfer/s3-storage.js';
import { startS3rverProcess, type S3Process } from '../helpers/s3rver-process.js';

let s3: S3Process | undefined;
afterAll(async () => {
  await s3?.close();
});

it('streamed puts to an S3 that dies fail with their own errors, and the SDK prints nothing', async () => {
  s3 = await startS3rverProcess(['dies']);
  const storage = new S3Storage({ bucket: 'dies', prefix: 'p', endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: s3.credentials, multipartThreshold: 64 * 1024 * 1024 });
  await storage.put('before', Buffer.from('up')); // the server answers
  const warn = vi.spyOn(console, 'warn');
  const error = vi.spyOn(console, 'error');
  const log = vi.spyOn(console, 'log');
  let killing: Promise<void> | null = null;
  const PIECE = 64 * 1024;
  const PIECES = 64;
  const body = () =>
    Readable.from(
      (async function* () {
        for (let i = 0; i < PIECES; i++) {
          if (i === 4) killing ??= s3!.kill(); // mid-body: every upload is in flight
          yield Buffer.alloc(PIECE, i);
          await sleep(5);
        }
      })(),
    );
  const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => storage.put(`k${i}`, body, { size: PIECE * PIECES })));
  await killing;
  expect(results.every((r) => r.status === 'rejected')).toBe(true);
  for (const r of results) expect(String((r as PromiseRejectedResult).reason?.message ?? '')).not.toBe('');
  const printed = [...warn.mock.calls, ...error.mock.calls, ...log.mock.calls].map((c) => c.map(String).join(' '));
  expect(printed.filter((l) => /non-retryable streaming request/.test(l))).toEqual([]);
  expect(printed).toEqual([]);
  warn.mockRestore();
  error.mockRestore();
  log.mockRestore();
});
