/**
 * The ObjectStorage contract (see src/transfer/object-storage.ts), as vitest tests that
 * any implementation must pass. Call `describeStorageContract` from a test file with a
 * factory that gives a fresh, empty storage per test.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { ObjectStorage } from '../../src/transfer/object-storage.js';
import { readStreamToBuffer } from '../../src/transfer/object-storage.js';

export interface ContractOptions {
  /** Keys to create for the pagination test (beyond the back end's page size). */
  manyKeys: number;
  /** Size of the streaming and multipart bodies. */
  bigBodyBytes: number;
  /** Concurrent writers in the CAS tests. */
  casWriters: number;
  /** Increments per writer in the lost-update test. */
  casIncrements: number;
  /** Why this back end cannot pass the "no half-written object" test, if it cannot. */
  nonAtomicPutReason?: string;
}

export interface StorageUnderTest {
  storage: ObjectStorage;
  cleanup?: () => Promise<void>;
}

/** Deterministic pseudo-random bytes (xorshift), so failures are reproducible. */
export function seededBytes(length: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** A stream of `total` seeded bytes in `chunk`-byte pieces, produced lazily. */
export function seededStream(total: number, seed = 1, chunk = 64 * 1024): Readable {
  const all = seededBytes(Math.min(total, 4 * 1024 * 1024), seed);
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= total) {
        this.push(null);
        return;
      }
      const n = Math.min(chunk, total - sent);
      const offset = sent % all.length;
      const piece = offset + n <= all.length ? all.subarray(offset, offset + n) : Buffer.concat([all.subarray(offset), all.subarray(0, n - (all.length - offset))]);
      sent += n;
      this.push(Buffer.from(piece));
    },
  });
}

function sha(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

async function collect(storage: ObjectStorage, prefix: string): Promise<{ key: string; size: number }[]> {
  const out: { key: string; size: number }[] = [];
  for await (const obj of storage.list(prefix)) out.push({ key: obj.key, size: obj.size }); // a class, where listed, is not part of the contract
  // the contract does not promise an order (s3rver lists folders depth-first)
  return out.sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)));
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  await expect(promise).rejects.toMatchObject({ code });
}

export function describeStorageContract(name: string, make: () => Promise<StorageUnderTest>, options: ContractOptions): void {
  describe(`ObjectStorage contract: ${name}`, () => {
    const withStorage = (fn: (storage: ObjectStorage) => Promise<void>) => async () => {
      const { storage, cleanup } = await make();
      try {
        await fn(storage);
      } finally {
        await cleanup?.();
      }
    };

    it(
      'puts and gets buffers; head reports size and the put etag',
      withStorage(async (s) => {
        const data = seededBytes(1000, 7);
        const { etag } = await s.put('v1/objects/ab/one', data);
        expect(typeof etag).toBe('string');
        expect(etag.length).toBeGreaterThan(0);
        expect((await s.getBuffer('v1/objects/ab/one')).equals(data)).toBe(true);
        expect(await readStreamToBuffer(await s.get('v1/objects/ab/one'))).toEqual(data);
        expect(await s.head('v1/objects/ab/one')).toEqual({ size: 1000, etag });
        const empty = await s.put('empty', Buffer.alloc(0));
        expect(await s.head('empty')).toEqual({ size: 0, etag: empty.etag });
        expect((await s.getBuffer('empty')).length).toBe(0);
      }),
    );

    it(
      'overwrites: new content and a new etag',
      withStorage(async (s) => {
        const first = await s.put('k', Buffer.from('first'));
        const second = await s.put('k', Buffer.from('second version'));
        expect(second.etag).not.toBe(first.etag);
        expect((await s.getBuffer('k')).toString()).toBe('second version');
        expect((await s.head('k'))?.etag).toBe(second.etag);
      }),
    );

    it(
      'reads byte ranges, inclusive, clamped at the end, refused past the end',
      withStorage(async (s) => {
        const data = seededBytes(5000, 3);
        await s.put('r', data);
        expect((await s.getBuffer('r', { start: 0, end: 0 })).equals(data.subarray(0, 1))).toBe(true);
        expect((await s.getBuffer('r', { start: 100, end: 1099 })).equals(data.subarray(100, 1100))).toBe(true);
        expect((await s.getBuffer('r', { start: 4990, end: 999_999 })).equals(data.subarray(4990))).toBe(true);
        expect(await readStreamToBuffer(await s.get('r', { start: 4999, end: 4999 }))).toEqual(data.subarray(4999));
        await expectCode(s.getBuffer('r', { start: 5000, end: 5010 }), 'storage-bad-range');
        await expectCode(s.getBuffer('r', { start: 10, end: 5 }), 'storage-bad-range');
      }),
    );

    it(
      'treats missing objects as the contract says',
      withStorage(async (s) => {
        await expectCode(s.getBuffer('no/such/key'), 'storage-not-found');
        await expectCode(s.get('no/such/key'), 'storage-not-found');
        expect(await s.head('no/such/key')).toBeNull();
        await s.delete('no/such/key');
        expect(await s.getVersioned('no/such/ref')).toBeNull();
        expect(await collect(s, 'no/')).toEqual([]);
      }),
    );

    it(
      'rejects keys that are not clean relative keys or use reserved names',
      withStorage(async (s) => {
        for (const bad of ['', '/abs', 'a//b', 'a/../b', './a', 'trailing/', 'a\\b', '.dits-tmp/x', 'a/.dits-lock.b']) {
          await expectCode(s.put(bad, Buffer.from('x')), 'storage-bad-key');
        }
        await expectCode(s.head('../x'), 'storage-bad-key');
      }),
    );

    it(
      'lists by string prefix, in byte order, with sizes',
      withStorage(async (s) => {
        const keys = ['a/1', 'a/2', 'a/b/3', 'a-c', 'ab/4', 'b/5', 'a/b/c/d/6'];
        for (const [i, key] of keys.entries()) await s.put(key, Buffer.alloc(i + 1, 1));
        const sizeOf = (key: string) => keys.indexOf(key) + 1;
        const expectList = async (prefix: string, expected: string[]) => {
          expect(await collect(s, prefix)).toEqual(expected.map((key) => ({ key, size: sizeOf(key) })));
        };
        await expectList('a/', ['a/1', 'a/2', 'a/b/3', 'a/b/c/d/6']);
        await expectList('a', ['a-c', 'a/1', 'a/2', 'a/b/3', 'a/b/c/d/6', 'ab/4']);
        await expectList('a/b', ['a/b/3', 'a/b/c/d/6']);
        await expectList('a/b/c/', ['a/b/c/d/6']);
        await expectList('', ['a-c', 'a/1', 'a/2', 'a/b/3', 'a/b/c/d/6', 'ab/4', 'b/5']);
        await expectList('c', []);
      }),
    );

    it(
      `lists ${options.manyKeys} keys across pages`,
      withStorage(async (s) => {
        const keys = Array.from({ length: options.manyKeys }, (_, i) => `many/${String(i).padStart(5, '0')}`);
        for (let i = 0; i < keys.length; i += 50) {
          await Promise.all(keys.slice(i, i + 50).map((key) => s.put(key, Buffer.from(key))));
        }
        await s.put('other/x', Buffer.from('x'));
        const listed = await collect(s, 'many/');
        expect(listed.map((o) => o.key)).toEqual(keys);
        expect(listed.every((o) => o.size === 10)).toBe(true);
      }),
    );

    it(
      'deletes',
      withStorage(async (s) => {
        await s.put('d/1', Buffer.from('one'));
        await s.put('d/2', Buffer.from('two'));
        await s.delete('d/1');
        expect(await s.head('d/1')).toBeNull();
        await expectCode(s.getBuffer('d/1'), 'storage-not-found');
        expect((await collect(s, 'd/')).map((o) => o.key)).toEqual(['d/2']);
        await s.put('d/1', Buffer.from('again'));
        expect((await s.getBuffer('d/1')).toString()).toBe('again');
      }),
    );

    it(
      'streams a multi-megabyte body in and out, with the size known and unknown',
      withStorage(async (s) => {
        const total = options.bigBodyBytes;
        const expected = sha(await readStreamToBuffer(seededStream(total, 11)));
        await s.put('big/known', () => seededStream(total, 11), { size: total });
        await s.put('big/unknown', () => seededStream(total, 11));
        for (const key of ['big/known', 'big/unknown']) {
          expect((await s.head(key))?.size).toBe(total);
          const hash = createHash('sha256');
          for await (const part of await s.get(key)) hash.update(part as Buffer);
          expect(hash.digest('hex')).toBe(expected);
        }
        // a range across the middle (a multipart boundary where parts are small)
        const whole = await readStreamToBuffer(seededStream(total, 11));
        const mid = Math.floor(total / 2);
        expect((await s.getBuffer('big/unknown', { start: mid - 1000, end: mid + 1000 })).equals(whole.subarray(mid - 1000, mid + 1001))).toBe(true);
      }),
    );

    it.skipIf(options.nonAtomicPutReason !== undefined)(
      `never shows a half-written object while a put is in progress${options.nonAtomicPutReason ? ` (skipped: ${options.nonAtomicPutReason})` : ''}`,
      withStorage(async (s) => {
        const size = 2 * 1024 * 1024;
        await s.put('atomic', Buffer.alloc(size, 0x61));
        let stop = false;
        const seen = new Set<string>();
        const reader = (async () => {
          while (!stop) {
            const data = await s.getBuffer('atomic');
            const first = data[0];
            expect(data.length).toBe(size);
            expect(data.every((b) => b === first)).toBe(true);
            seen.add(String.fromCharCode(first));
            await new Promise((resolve) => setImmediate(resolve));
          }
        })();
        // a slow writer: 32 pieces, a pause between each
        let sent = 0;
        const slow = () =>
          new Readable({
            read() {
              if (sent >= size) return void this.push(null);
              sent += 65536;
              setTimeout(() => this.push(Buffer.alloc(65536, 0x62)), 2);
            },
          });
        await s.put('atomic', slow, { size });
        await new Promise((resolve) => setTimeout(resolve, 20));
        stop = true;
        await reader;
        expect(seen.has('a')).toBe(true);
        expect((await s.getBuffer('atomic'))[0]).toBe(0x62);
      }),
    );

    it(
      'compare-and-swap: absent, match, mismatch, read back with getVersioned',
      withStorage(async (s) => {
        const first = await s.putIf('refs/heads/main', Buffer.from('commit-1'), 'absent');
        expect(first.ok).toBe(true);
        if (!first.ok) return;
        const again = await s.putIf('refs/heads/main', Buffer.from('commit-x'), 'absent');
        expect(again).toEqual({ ok: false, current: { etag: first.etag } });
        const read1 = await s.getVersioned('refs/heads/main');
        expect(read1?.body.toString()).toBe('commit-1');
        expect(read1?.etag).toBe(first.etag);

        const second = await s.putIf('refs/heads/main', Buffer.from('commit-2'), { etag: first.etag });
        expect(second.ok).toBe(true);
        if (!second.ok) return;
        expect(second.etag).not.toBe(first.etag);
        const stale = await s.putIf('refs/heads/main', Buffer.from('commit-3'), { etag: first.etag });
        expect(stale).toEqual({ ok: false, current: { etag: second.etag } });
        expect((await s.getVersioned('refs/heads/main'))?.body.toString()).toBe('commit-2');

        // keys that are string prefixes of each other stay separate
        expect((await s.putIf('refs/heads/mai', Buffer.from('other'), 'absent')).ok).toBe(true);
        expect((await s.getVersioned('refs/heads/main'))?.body.toString()).toBe('commit-2');
        expect((await s.getVersioned('refs/heads/mai'))?.body.toString()).toBe('other');
        expect(await s.getVersioned('refs/heads/dev')).toBeNull();
        const onMissing = await s.putIf('refs/heads/dev', Buffer.from('x'), { etag: first.etag });
        expect(onMissing).toEqual({ ok: false, current: null });
      }),
    );

    it(
      `compare-and-swap: of ${options.casWriters} concurrent writers with the same expectation exactly one wins`,
      withStorage(async (s) => {
        const writers = Array.from({ length: options.casWriters }, (_, i) => i);
        const created = await Promise.all(writers.map((i) => s.putIf('refs/race', Buffer.from(`create-${i}`), 'absent')));
        const createWinners = created.flatMap((r, i) => (r.ok ? [i] : []));
        expect(createWinners).toHaveLength(1);
        const base = await s.getVersioned('refs/race');
        expect(base?.body.toString()).toBe(`create-${createWinners[0]}`);
        for (const r of created) if (!r.ok) expect(r.current?.etag).toBe(base?.etag);

        const updated = await Promise.all(writers.map((i) => s.putIf('refs/race', Buffer.from(`update-${i}`), { etag: base!.etag })));
        const updateWinners = updated.flatMap((r, i) => (r.ok ? [i] : []));
        expect(updateWinners).toHaveLength(1);
        const final = await s.getVersioned('refs/race');
        expect(final?.body.toString()).toBe(`update-${updateWinners[0]}`);
        const winner = updated[updateWinners[0]];
        expect(winner.ok && winner.etag).toBe(final?.etag);
      }),
    );

    it(
      'compare-and-swap: concurrent read-modify-write loops lose no update',
      withStorage(async (s) => {
        const key = 'refs/counter';
        await s.putIf(key, Buffer.from('0'), 'absent');
        const worker = async () => {
          for (let done = 0; done < options.casIncrements; ) {
            const current = await s.getVersioned(key);
            const next = Buffer.from(String(Number(current!.body.toString()) + 1));
            const result = await s.putIf(key, next, { etag: current!.etag });
            if (result.ok) done += 1;
          }
        };
        await Promise.all(Array.from({ length: options.casWriters }, worker));
        expect((await s.getVersioned(key))?.body.toString()).toBe(String(options.casWriters * options.casIncrements));
      }),
    );
  });
}
