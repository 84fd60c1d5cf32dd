import { describe, expect, it } from 'vitest';
import { coalesce, DEFAULT_MAX_RANGE_BYTES, rangeSizeFor } from './fetch-content.js';
import { ENTRY_HEAD_SIZE } from '../../store/pack-format.js';

const MiB = 1024 * 1024;

describe('rangeSizeFor', () => {
  it('spreads a small fetch over the request slots and caps a large one at a whole pack', () => {
    expect(rangeSizeFor(1 * MiB, 8)).toBe(4 * MiB); // never tiny ranges
    expect(rangeSizeFor(160 * MiB, 8)).toBe(20 * MiB); // every slot gets work
    expect(rangeSizeFor(1024 * MiB, 8)).toBe(DEFAULT_MAX_RANGE_BYTES);
    expect(rangeSizeFor(0, 0)).toBe(4 * MiB);
  });

  it('gives coalesce ranges no larger than asked', () => {
    const entries = Array.from({ length: 100 }, (_, i) => ({ offset: 16 + i * (ENTRY_HEAD_SIZE + MiB) + ENTRY_HEAD_SIZE, storedLength: MiB }));
    const max = rangeSizeFor(100 * MiB, 8);
    const ranges = coalesce(entries, max, 256 * 1024);
    expect(ranges.length).toBeGreaterThanOrEqual(8);
    for (const r of ranges) expect(r[r.length - 1]!.offset + MiB - (r[0]!.offset - ENTRY_HEAD_SIZE)).toBeLessThanOrEqual(max);
    expect(ranges.flat().length).toBe(100);
  });
});
