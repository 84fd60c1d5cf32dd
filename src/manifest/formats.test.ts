import { describe, expect, it } from 'vitest';
import { encodePointer, parsePointer, MAX_POINTER_SIZE } from './pointer.js';
import { Manifest, ManifestBuilder, ManifestError } from './manifest.js';
import { hashBytes, hashHex } from '../hashing/blake3.js';

const OID = 'a'.repeat(64);
const MID = 'b'.repeat(64);

describe('pointer', () => {
  it('encodes the golden text and parses it back', () => {
    const text = encodePointer({ oid: OID, size: 5_368_709_120, manifest: MID }).toString();
    expect(text).toBe(`version dits/1\noid blake3:${OID}\nsize 5368709120\nmanifest blake3:${MID}\n`);
    expect(text.length).toBeLessThan(MAX_POINTER_SIZE);
    expect(parsePointer(text)).toEqual({ oid: OID, size: 5_368_709_120, manifest: MID });
  });

  it('rejects anything that is not exactly a pointer', () => {
    const good = encodePointer({ oid: OID, size: 1, manifest: MID }).toString();
    expect(parsePointer(good.replace('dits/1', 'dits/2'))).toBeNull();
    expect(parsePointer(good + 'extra\n')).toBeNull();
    expect(parsePointer(good.slice(0, -1))).toBeNull();
    expect(parsePointer(good.replace('size 1', 'size 01'))).toBeNull();
    expect(parsePointer(good.toUpperCase())).toBeNull();
    expect(parsePointer('')).toBeNull();
  });
});

describe('manifest', () => {
  it('round-trips and pins the golden bytes', () => {
    const b = new ManifestBuilder();
    const c1 = Buffer.from('hello');
    const c2 = Buffer.from(' world');
    b.add(hashBytes(c1), c1.length, 1);
    b.add(hashBytes(c2), c2.length, 0);
    const { bytes, id, header } = b.encode({ oid: hashHex(Buffer.from('hello world')), chunker: { algorithm: 'fastcdc-2020', min: 16384, avg: 65536, max: 262144 }, media: null });
    expect(header.size).toBe(11);
    expect(bytes.subarray(0, 8).toString()).toBe('DITSMANI');
    const m = Manifest.parse(bytes);
    expect([...m.chunks()].map((c) => [c.id, c.length, c.flags, c.offset])).toEqual([
      [hashHex(c1), 5, 1, 0],
      [hashHex(c2), 6, 0, 5],
    ]);
    expect(id).toBe(hashHex(bytes));
    // Golden: changing the encoding changes every manifest id, so it is pinned.
    expect(id).toMatchInlineSnapshot(`"13b3317c70665c402a48e952ab6bd13a5acca04e6472c9dcfaf908462341dd83"`);
  });

  it('refuses damaged or newer manifests', () => {
    const b = new ManifestBuilder();
    b.add(hashBytes(Buffer.from('x')), 1);
    const { bytes } = b.encode({ oid: OID, chunker: { algorithm: 'fastcdc-2020', min: 1, avg: 2, max: 4 }, media: null });
    expect(() => Manifest.parse(bytes.subarray(0, bytes.length - 1))).toThrow(ManifestError);
    const newer = Buffer.from(bytes);
    newer.writeUInt32LE(2, 8);
    expect(() => Manifest.parse(newer)).toThrow(/newer/);
    expect(() => Manifest.parse(Buffer.from('nope'))).toThrow(ManifestError);
  });
});
