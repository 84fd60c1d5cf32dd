import { describe, expect, it } from 'vitest';
import { allocAligned, alignedSharedViews } from './aligned-buffer.js';
import { copyBytes, nativeLoadError, pageOffset } from '../native-addon.js';
import { xorshift32Bytes } from '../chunking/pseudo-random.js';

const native = nativeLoadError() === undefined;

describe.skipIf(!native)('aligned buffers and the native copy', () => {
  it('places buffers and shared views on page boundaries', () => {
    for (const size of [1, 4096, 1 << 20, 3 * 1024 * 1024 + 5]) {
      const b = allocAligned(size);
      expect(b.length).toBe(size);
      expect(pageOffset(b)).toBe(0);
    }
    const { views } = alignedSharedViews(1 << 16, 3);
    for (const v of views) expect(pageOffset(v)).toBe(0);
    expect(pageOffset(Buffer.alloc(64).subarray(3))).not.toBe(0);
  });

  it('copies between shared and plain memory exactly, and refuses to overrun', () => {
    const src = xorshift32Bytes(100_000, 2);
    const { views } = alignedSharedViews(1 << 17, 1);
    copyBytes(src, views[0]!, 7);
    expect(views[0]!.subarray(7, 7 + src.length).equals(src)).toBe(true);
    const back = Buffer.alloc(src.length + 1);
    copyBytes(views[0]!.subarray(7, 7 + src.length), back, 1);
    expect(back.subarray(1).equals(src)).toBe(true);
    expect(() => copyBytes(views[0]!, Buffer.alloc(10), 0)).toThrow(/does not fit/);
  });

  it('streams large copies into shared memory exactly, at any alignment, and moves overlapping ones', () => {
    const src = xorshift32Bytes(250_000, 9);
    const { views } = alignedSharedViews(1 << 18, 1);
    const dst = views[0]!;
    for (const [at, len] of [[0, 200_003], [1, 4096], [13, 65_537], [63, 5000], [7, 4095]] as const) {
      dst.fill(0xee);
      copyBytes(src.subarray(3, 3 + len), dst, at);
      expect(dst.subarray(at, at + len).equals(src.subarray(3, 3 + len))).toBe(true);
      expect(dst[at + len]).toBe(0xee);
      if (at > 0) expect(dst[at - 1]).toBe(0xee);
    }
    // source and destination in the same shared memory, overlapping: a memmove
    copyBytes(src, dst, 0);
    copyBytes(dst.subarray(0, 100_000), dst, 50_000);
    expect(dst.subarray(50_000, 150_000).equals(src.subarray(0, 100_000))).toBe(true);
  });
});
