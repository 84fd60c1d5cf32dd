import { describe, expect, it } from 'vitest';
import { ChunkPool, STEP } from './chunk-pool.js';

describe('ChunkPool', () => {
  it('gives a retired buffer out again only once every read that could hold it has ended', async () => {
    const pool = new ChunkPool(1 << 20);
    const reader = pool.enter(); // a read in progress that found the buffer
    const a = pool.take(20_000);
    expect(a.length).toBe(20_000);
    expect(a.buffer.byteLength).toBe(Math.ceil(20_000 / STEP) * STEP);
    pool.retire(a);
    const later = pool.enter(); // started after the retire: cannot have found it
    expect(pool.take(20_000).buffer).not.toBe(a.buffer);
    pool.leave(later);
    expect(pool.take(20_000).buffer).not.toBe(a.buffer);
    pool.leave(reader);
    expect(pool.take(19_000).buffer).toBe(a.buffer); // a class at or below the one asked
    expect(pool.stats.reused).toBe(1);
  });

  it('ignores buffers it did not give out, and a second retire of one', () => {
    const pool = new ChunkPool(1 << 20);
    pool.retire(Buffer.alloc(STEP * 2));
    expect(pool.bytes).toBe(0);
    const a = pool.take(STEP);
    pool.retire(a);
    pool.retire(a);
    expect(pool.bytes).toBe(STEP);
    expect(pool.take(STEP).buffer).toBe(a.buffer);
    expect(pool.take(STEP).buffer).not.toBe(a.buffer); // not given out twice
  });

  it('with a disk cache, frees only after its fence has resolved, in batches; a failed fence drops them', async () => {
    const pool = new ChunkPool(1 << 20, 2 * STEP);
    let open: (() => void) | null = null;
    let fences = 0;
    pool.fence = () => {
      fences++;
      return new Promise<void>((resolve) => (open = resolve));
    };
    const a = pool.take(STEP);
    pool.retire(a);
    expect(fences).toBe(0); // under a batch
    const b = pool.take(STEP);
    pool.retire(b);
    expect(fences).toBe(1);
    expect(pool.take(STEP).buffer).not.toBe(a.buffer); // the fence has not resolved
    open!();
    await new Promise((r) => setImmediate(r));
    const got = new Set([pool.take(STEP).buffer, pool.take(STEP).buffer]);
    expect(got.has(a.buffer) && got.has(b.buffer)).toBe(true);
    pool.fence = () => Promise.reject(new Error('closed'));
    const c = pool.take(STEP);
    const d = pool.take(STEP);
    pool.retire(c);
    pool.retire(d);
    await new Promise((r) => setImmediate(r));
    expect(pool.bytes).toBe(0);
    expect(pool.take(STEP).buffer).not.toBe(c.buffer);
  });

  it('keeps at most its limit; a read that never ends holds no more than that', () => {
    const pool = new ChunkPool(4 * STEP);
    pool.enter(); // never leaves
    for (let i = 0; i < 20; i++) pool.retire(pool.take(STEP));
    expect(pool.bytes).toBeLessThanOrEqual(4 * STEP);
    expect(pool.stats.dropped).toBe(16);
  });
});
