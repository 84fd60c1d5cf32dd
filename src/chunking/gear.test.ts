import { describe, expect, it } from 'vitest';
import { hashHex } from '../hashing/blake3.js';
import { GEAR } from './gear.js';

// The gear table is part of the on-disk format (see gear.ts). These values were checked
// against an independent SplitMix64 in Python; if this test fails, dedup with existing
// data is broken: do not update the expectations, restore the table.
describe('gear table', () => {
  it('is the pinned SplitMix64 table', () => {
    expect(GEAR.length).toBe(256);
    expect(Array.from(GEAR.subarray(0, 4))).toEqual([0xe9aa2499, 0x7175ff4e, 0x6a92352e, 0x77941d56]);
    expect(hashHex(new Uint8Array(GEAR.buffer, GEAR.byteOffset, 1024))).toBe('fa7fe40530f039560f50701d3730c2bfa6944afc1aaa7d15b0666abe4b5b83f6');
  });
});
