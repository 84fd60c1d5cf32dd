import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { hashHex } from '../hashing/blake3.js';
import { MemoryStorage } from './memory-storage.js';
import { readStreamToBuffer } from './object-storage.js';
import { StorageError } from './storage-error.js';
import { connectionResetError, FlakyStorage, slowDownError } from './testing/flaky-storage.js';
import { TransferQueue, type TransferProgress } from './transfer-queue.js';

/** A clock that only moves when the queue sleeps, so backoff delays are observable. */
function fakeTime() {
  let now = 0;
  const sleeps: number[] = [];
  return {
    now: () => now,
    sleep: async (ms: number) => {
      sleeps.push(ms);
      now += ms;
    },
    advance: (ms: number) => {
      now += ms;
    },
    sleeps,
  };
}

const policy = { maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 1000 };

describe('TransferQueue', () => {
  it('runs at most `concurrency` items at once and completes them all', async () => {
    const storage = new MemoryStorage();
    let running = 0;
    let peak = 0;
    const slow = new FlakyStorage(storage);
    const original = slow.put.bind(slow);
    slow.put = async (...args) => {
      running += 1;
      peak = Math.max(peak, running);
      await new Promise((resolve) => setTimeout(resolve, 5));
      try {
        return await original(...args);
      } finally {
        running -= 1;
      }
    };
    const queue = new TransferQueue(slow, { concurrency: 3 });
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => queue.upload({ key: `k/${i}`, body: Buffer.from(`item ${i}`) })));
    expect(peak).toBe(3);
    expect(results.map((r) => r.key)).toEqual(Array.from({ length: 12 }, (_, i) => `k/${i}`));
    for (let i = 0; i < 12; i++) expect((await storage.getBuffer(`k/${i}`)).toString()).toBe(`item ${i}`);
    await queue.onIdle();
    expect(queue.progress()).toMatchObject({ doneItems: 12, totalItems: 12, failedItems: 0 });
  });

  it('retries 503s with exponential backoff and jitter, then completes', async () => {
    const time = fakeTime();
    // the storage answers 503 SlowDown to the first 7 puts, then recovers
    const flaky = new FlakyStorage(new MemoryStorage(), (call) =>
      call.op === 'put' && call.nOfOp <= 7 ? { kind: 'fail', error: slowDownError(call.key) } : { kind: 'pass' },
    );
    const queue = new TransferQueue(flaky, { concurrency: 2, retry: policy, now: time.now, sleep: time.sleep, random: () => 0.5 });
    const data = [Buffer.alloc(1000, 1), Buffer.alloc(2000, 2), Buffer.alloc(3000, 3)];
    const results = await Promise.all(data.map((body, i) => queue.upload({ key: `p/${i}`, body })));
    expect(results.every((r) => r.bytes > 0)).toBe(true);
    expect(results.reduce((n, r) => n + r.attempts, 0)).toBe(3 + 7);
    expect(queue.retryCount).toBe(7);
    for (const [i, body] of data.entries()) expect((await flaky.inner.getBuffer(`p/${i}`)).equals(body)).toBe(true);
    // equal jitter with random() = 0.5: 3/4 of min(max, base * 2^(n-1))
    expect(new Set(time.sleeps)).toEqual(new Set([75, 150, 300, 600]));
    expect(queue.progress()).toMatchObject({ doneBytes: 6000, totalBytes: 6000, doneItems: 3 });
  });

  it('retries dropped connections in the middle of a download stream', async () => {
    const time = fakeTime();
    const inner = new MemoryStorage();
    const data = Buffer.alloc(300_000, 7);
    await inner.put('big', data);
    const flaky = new FlakyStorage(inner, (call) => (call.op === 'get' && call.nOfOp <= 2 ? { kind: 'break-stream', afterBytes: 100_000 } : { kind: 'pass' }));
    const queue = new TransferQueue(flaky, { retry: policy, sleep: time.sleep, now: time.now });
    const got = await queue.downloadBuffer({ key: 'big', size: data.length });
    expect(got.equals(data)).toBe(true);
    expect(queue.retryCount).toBe(2);
    // bytes of the broken attempts were taken back
    expect(queue.progress().doneBytes).toBe(data.length);
  });

  it('fails clearly, naming the object, when errors persist', async () => {
    const time = fakeTime();
    const flaky = new FlakyStorage(new MemoryStorage(), (call) => (call.op === 'put' ? { kind: 'fail', error: slowDownError(call.key) } : { kind: 'pass' }));
    const queue = new TransferQueue(flaky, { retry: policy, sleep: time.sleep, now: time.now });
    const ok = queue.upload({ key: 'fine', body: Buffer.from('x') }).catch((e: unknown) => e);
    const err = (await ok) as { code: string; message: string; key: string; attempts: number; hint: string };
    expect(err.code).toBe('transfer-failed');
    expect(err.key).toBe('fine');
    expect(err.attempts).toBe(5);
    expect(err.message).toContain('memory:/fine');
    expect(err.message).toContain('after 5 attempts');
    expect(err.message).toContain('SlowDown');
    expect(err.hint).toMatch(/re-run/);
    expect(flaky.calls.filter((c) => c.op === 'put')).toHaveLength(5);
    expect(queue.progress()).toMatchObject({ doneItems: 0, failedItems: 1, doneBytes: 0, totalBytes: 0 });
  });

  it('classifies raw socket errors as retryable and user errors as final', async () => {
    const time = fakeTime();
    let resets = 2;
    const flaky = new FlakyStorage(new MemoryStorage(), (call) => {
      if (call.key === 'reset' && resets-- > 0) return { kind: 'fail', error: connectionResetError() };
      if (call.key === 'denied') {
        return { kind: 'fail', error: new StorageError('s3-access-denied', 'Access denied: your credentials may not write s3://b/denied', { status: 403 }) };
      }
      return { kind: 'pass' };
    });
    const queue = new TransferQueue(flaky, { retry: policy, sleep: time.sleep, now: time.now });
    await expect(queue.upload({ key: 'reset', body: Buffer.from('x') })).resolves.toMatchObject({ attempts: 3 });
    await expect(queue.upload({ key: 'denied', body: Buffer.from('x') })).rejects.toMatchObject({ code: 's3-access-denied' });
    expect(flaky.calls.filter((c) => c.key === 'denied')).toHaveLength(1);
  });

  it('verifies downloads: a corrupt copy is fetched again once, then reported by name', async () => {
    const inner = new MemoryStorage();
    const chunk = Buffer.from('chunk bytes that hash to their id');
    const id = hashHex(chunk);
    await inner.put(`v1/objects/${id}`, chunk);
    const verify = (data: Buffer) => {
      if (hashHex(data) !== id) throw new Error(`BLAKE3 mismatch: expected ${id}, got ${hashHex(data)}`);
    };

    // corrupted once: the second download is good
    const once = new FlakyStorage(inner, (call) => (call.op === 'get' && call.nOfOp === 1 ? { kind: 'corrupt', atByte: 3 } : { kind: 'pass' }));
    const q1 = new TransferQueue(once);
    expect((await q1.downloadBuffer({ key: `v1/objects/${id}`, verify })).equals(chunk)).toBe(true);
    expect(once.calls.filter((c) => c.op === 'get')).toHaveLength(2);

    // corrupted every time: reported after two attempts, naming the object
    const always = new FlakyStorage(inner, (call) => (call.op === 'get' ? { kind: 'corrupt', atByte: 0 } : { kind: 'pass' }));
    const q2 = new TransferQueue(always);
    const other = q2.downloadBuffer({ key: 'missing-is-separate' }).catch((e: unknown) => e);
    const err = (await q2.downloadBuffer({ key: `v1/objects/${id}`, verify }).catch((e: unknown) => e)) as { code: string; message: string; key: string };
    expect(err.code).toBe('transfer-verify-failed');
    expect(err.key).toBe(`v1/objects/${id}`);
    expect(err.message).toContain(id);
    expect(err.message).toContain('BLAKE3 mismatch');
    expect(always.calls.filter((c) => c.op === 'get' && c.key.includes(id))).toHaveLength(2);
    // other items are unaffected by one object's failure
    expect(await other).toMatchObject({ code: 'storage-not-found' });
  });

  it('streams uploads and downloads through, with progress, rate and ETA', async () => {
    const time = fakeTime();
    const storage = new MemoryStorage();
    const updates: TransferProgress[] = [];
    const queue = new TransferQueue(storage, { now: time.now, sleep: time.sleep, onProgress: (p) => updates.push(p), progressIntervalMs: 0 });
    const size = 1024 * 1024;
    // each 64 KiB piece "takes" 10 ms on the fake clock: 6.5 MB/s
    let sent = 0;
    const source = () =>
      new Readable({
        read() {
          if (sent >= size) return void this.push(null);
          time.advance(10);
          sent += 65536;
          this.push(Buffer.alloc(65536, 9));
        },
      });
    await queue.upload({ key: 'stream', body: source, size });
    const mid = updates.find((u) => u.doneBytes === size / 2);
    expect(mid).toBeDefined();
    expect(mid!.totalBytes).toBe(size);
    expect(mid!.rateBytesPerSec).toBeCloseTo(65536 / 0.01, -3);
    expect(mid!.etaSec).toBeCloseTo(size / 2 / (65536 / 0.01), 2);
    const last = updates[updates.length - 1];
    expect(last).toMatchObject({ doneBytes: size, totalBytes: size, doneItems: 1, totalItems: 1 });

    const out = await queue.download({
      key: 'stream',
      consume: async (stream) => (await readStreamToBuffer(stream)).length,
    });
    expect(out).toBe(size);
    expect(queue.progress()).toMatchObject({ doneBytes: 2 * size, totalBytes: 2 * size, doneItems: 2 });
  });
});
