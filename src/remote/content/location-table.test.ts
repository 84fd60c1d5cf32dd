import { describe, expect, it } from 'vitest';
import { hashBytes } from '../../hashing/blake3.js';
import { decodeLocationTable, LocationTableError, LocationTableWriter, locationTableKey, locationTableLeaves } from './location-table.js';

const manifestId = Buffer.alloc(32, 0xab);
const packA = 'aa'.repeat(32);
const packB = 'bb'.repeat(32);
/** chunk lengths in the manifest */
const lengths = [100, 200, 300, 50, 4096, 70];

/** Chunks 0-2 plain and back to back in A, chunk 3 in B, chunks 4-5 back to back elsewhere in B (4 zstd). */
function table(): Buffer {
  const w = new LocationTableWriter(manifestId);
  w.add(packA, 57, 100, 0, 100);
  w.add(packA, 57 + 100 + 41, 200, 0, 200);
  w.add(packA, 57 + 100 + 41 + 200 + 41, 300, 0, 300);
  w.add(packB, 1000, 50, 0, 50);
  w.add(packB, 5000, 40, 1, 4096); // not where chunk 3 ended: a new run
  w.add(packB, 5000 + 40 + 41, 70, 0, 70);
  return w.finish();
}

describe('location table v2 (the manifest\'s leaves)', () => {
  it('carries the leaves after the pack ids, is read back, and decodes the runs as v1 does; a part of them on demand', async () => {
    const leaves = Buffer.concat([Buffer.alloc(32, 1), Buffer.alloc(32, 2)]);
    const w = new LocationTableWriter(manifestId);
    w.add(packA, 57, 100, 0, 100);
    w.add(packA, 57 + 100 + 41, 200, 0, 200);
    w.add(packA, 57 + 100 + 41 + 200 + 41, 300, 0, 300);
    w.add(packB, 1000, 50, 0, 50);
    w.add(packB, 5000, 40, 1, 4096);
    w.add(packB, 5000 + 40 + 41, 70, 0, 70);
    const bytes = w.finish(leaves);
    expect(bytes.readUInt32LE(8)).toBe(2);
    expect(bytes.readUInt32LE(120)).toBe(2); // after the two pack ids
    expect(bytes.subarray(124, 188).equals(leaves)).toBe(true);
    expect(bytes.subarray(188, bytes.length - 32).equals(table().subarray(120, table().length - 32))).toBe(true); // the same runs
    expect(locationTableLeaves(bytes, manifestId)!.equals(leaves)).toBe(true);
    expect(locationTableLeaves(table(), manifestId)).toBeNull();
    const t = decodeLocationTable(bytes, manifestId, lengths.length, (i) => lengths[i]!);
    expect([...t.offsetOf]).toEqual([57, 198, 439, 1000, 5000, 5081]);
    // the first two chunks only (a reader that has verified only the start of the manifest)
    const part = decodeLocationTable(bytes, manifestId, lengths.length, (i) => (i < 2 ? lengths[i]! : Number.NaN), 2);
    expect([...part.offsetOf.subarray(0, 2)]).toEqual([57, 198]);
    // one leaf, or leaves cut short: refused
    const bad = Buffer.from(bytes.subarray(0, bytes.length - 32));
    bad.writeUInt32LE(1, 120);
    expect(() => locationTableLeaves(Buffer.concat([bad, hashBytes(bad)]), manifestId)).toThrow(/impossible manifest leaves/);
    bad.writeUInt32LE(1000, 120);
    expect(() => decodeLocationTable(Buffer.concat([bad, hashBytes(bad)]), manifestId, lengths.length, (i) => lengths[i]!)).toThrow(/impossible manifest leaves/);
    expect(() => locationTableLeaves(bytes, Buffer.alloc(32, 1))).toThrow(/another manifest/);
  });
});

describe('location table v1', () => {
  it('encodes to the documented bytes (golden): runs, lengths listed only for a run with a stored chunk', () => {
    const bytes = table();
    // header: magic, version 1, 6 chunks, the manifest id, 2 packs, 3 runs
    expect(bytes.subarray(0, 16).toString('hex')).toBe('444954534c4f4354' + '01000000' + '06000000');
    expect(bytes.subarray(16, 48).equals(manifestId)).toBe(true);
    expect(bytes.subarray(48, 56).toString('hex')).toBe('02000000' + '03000000');
    expect(bytes.subarray(56, 88).toString('hex')).toBe(packA);
    expect(bytes.subarray(88, 120).toString('hex')).toBe(packB);
    const runs = bytes.subarray(120, bytes.length - 32);
    // run 1: 3 chunks in pack 0 from 57, plain; run 2: 1 chunk in pack 1 from 1000, plain;
    // run 3: 2 chunks in pack 1 from 5000, lengths listed (40 zstd, 70 plain)
    expect(runs.toString('hex')).toBe(
      '03000000' + '00000000' + '3900000000000000' + '00' +
        '01000000' + '01000000' + 'e803000000000000' + '00' +
        '02000000' + '01000000' + '8813000000000000' + '01' + '28000000' + '01' + '46000000' + '00',
    );
    expect(bytes.subarray(bytes.length - 32).equals(hashBytes(bytes.subarray(0, bytes.length - 32)))).toBe(true);
    expect(locationTableKey('ab'.repeat(32))).toBe(`v1/locations/ab/${'ab'.repeat(31)}`);
  });

  it('decodes every chunk\'s pack, offset, stored length and codec', () => {
    const t = decodeLocationTable(table(), manifestId, lengths.length, (i) => lengths[i]!);
    expect(t.packIds).toEqual([packA, packB]);
    expect([...t.packOf]).toEqual([0, 0, 0, 1, 1, 1]);
    expect([...t.offsetOf]).toEqual([57, 198, 439, 1000, 5000, 5081]);
    expect([...t.storedOf]).toEqual([100, 200, 300, 50, 40, 70]);
    expect([...t.codecOf]).toEqual([0, 0, 0, 0, 1, 0]);
  });

  it('refuses a table that is damaged, cut short, of another version or for another manifest', () => {
    const good = table();
    const decode = (b: Buffer, id = manifestId, n = lengths.length) => () => decodeLocationTable(b, id, n, (i) => lengths[i] ?? 1);
    const flipped = Buffer.from(good);
    flipped[130]! ^= 1;
    expect(decode(flipped)).toThrow(/checksum/);
    expect(decode(good.subarray(0, good.length - 1))).toThrow(LocationTableError);
    expect(decode(good.subarray(0, 40))).toThrow(LocationTableError);
    expect(decode(good, Buffer.alloc(32, 1))).toThrow(/another manifest/);
    expect(decode(good, manifestId, 7)).toThrow(/another manifest/);
    const v3 = Buffer.from(good);
    v3.writeUInt32LE(3, 8);
    expect(decode(v3)).toThrow(/version 3/);
    // sound checksum, impossible run (a pack number past the pack list)
    const bad = Buffer.from(good.subarray(0, good.length - 32));
    bad.writeUInt32LE(9, 120 + 4);
    expect(decode(Buffer.concat([bad, hashBytes(bad)]))).toThrow(/impossible run/);
  });
});
