import { createHash } from 'node:crypto';
import type * as fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { encodeIndex, parseIndex, statToIndexFields, type GitIndex, type IndexEntry } from './index-file.js';

const OID1 = 'e69de29bb2d1d6434b8b29ae775ad8c2e48c5391';
const OID2 = '0123456789abcdef0123456789abcdef01234567';

function entry(path: string, over: Partial<IndexEntry> = {}): IndexEntry {
  return {
    ctimeSeconds: 1_700_000_000,
    ctimeNanoseconds: 123_456_789,
    mtimeSeconds: 1_700_000_001,
    mtimeNanoseconds: 987_654_321,
    dev: 65024,
    ino: 4242,
    mode: 0o100644,
    uid: 1000,
    gid: 1000,
    size: 12,
    oid: OID1,
    assumeValid: false,
    stage: 0,
    skipWorktree: false,
    intentToAdd: false,
    path,
    ...over,
  };
}

function index(entries: IndexEntry[], over: Partial<GitIndex> = {}): GitIndex {
  return { version: 2, hashAlgo: 'sha1', entries, extensions: [], skipHash: false, ...over };
}

function withChecksum(body: Buffer, algo: 'sha1' | 'sha256' = 'sha1'): Buffer {
  return Buffer.concat([body, createHash(algo).update(body).digest()]);
}

describe('encodeIndex / parseIndex: exact bytes', () => {
  it('writes a version 2 entry as the spec lays it out', () => {
    const buf = encodeIndex(index([entry('ab', { stage: 2, assumeValid: true })]));
    // header 12 + (40 stat + 20 oid + 2 flags + 2 name = 64, padded with 1-8 NULs -> 72) + 20 checksum
    expect(buf.length).toBe(12 + 72 + 20);
    expect(buf.subarray(0, 12).toString('hex')).toBe('44495243' + '00000002' + '00000001');
    const e = buf.subarray(12, 12 + 72);
    expect(e.readUInt32BE(0)).toBe(1_700_000_000);
    expect(e.readUInt32BE(4)).toBe(123_456_789);
    expect(e.readUInt32BE(8)).toBe(1_700_000_001);
    expect(e.readUInt32BE(12)).toBe(987_654_321);
    expect(e.readUInt32BE(16)).toBe(65024);
    expect(e.readUInt32BE(20)).toBe(4242);
    expect(e.readUInt32BE(24)).toBe(0o100644);
    expect(e.readUInt32BE(28)).toBe(1000);
    expect(e.readUInt32BE(32)).toBe(1000);
    expect(e.readUInt32BE(36)).toBe(12);
    expect(e.subarray(40, 60).toString('hex')).toBe(OID1);
    expect(e.readUInt16BE(60)).toBe(0x8000 | (2 << 12) | 2); // assume-valid, stage 2, name length 2
    expect(e.subarray(62).toString('latin1')).toBe('ab' + '\0'.repeat(8));
    expect(buf.subarray(-20).equals(createHash('sha1').update(buf.subarray(0, -20)).digest())).toBe(true);
  });

  it('pads so the name is always NUL-terminated: 1 to 8 NULs', () => {
    for (let n = 1; n <= 16; n++) {
      const buf = encodeIndex(index([entry('x'.repeat(n))]));
      const entryLen = buf.length - 12 - 20;
      expect(entryLen % 8).toBe(0);
      const pad = entryLen - 62 - n;
      expect(pad).toBeGreaterThanOrEqual(1);
      expect(pad).toBeLessThanOrEqual(8);
      expect(parseIndex(buf, 'sha1').entries[0]!.path).toBe('x'.repeat(n));
    }
  });

  it('writes v4 prefixes with the OFS_DELTA varint, no padding', () => {
    const long = 'p'.repeat(300);
    const entries = [entry(`${long}/a`), entry(`${long}/b`), entry('q')];
    const buf = encodeIndex(index(entries, { version: 4 }));
    let off = 12;
    const names: string[] = [];
    const prefixes: string[] = [];
    for (let i = 0; i < 3; i++) {
      off += 62;
      const nul = buf.indexOf(0, off + (i === 2 ? 2 : 1)); // skip the varint (may itself hold 0x00)
      const varintLen = i === 2 ? 2 : 1;
      prefixes.push(buf.subarray(off, off + varintLen).toString('hex'));
      names.push(buf.subarray(off + varintLen, nul).toString('latin1'));
      off = nul + 1;
    }
    // 0 -> 00; 1 -> 01; 302 bytes to strip: 302 = (1+1)<<7 | 46 -> 0x81 0x2e
    expect(prefixes).toEqual(['00', '01', '812e']);
    expect(names).toEqual([`${long}/a`, 'b', 'q']);
    expect(off).toBe(buf.length - 20);
    expect(parseIndex(buf, 'sha1').entries.map((e) => e.path)).toEqual(entries.map((e) => e.path));
  });

  it('encodes boundary varints that decode back (127, 128, 16511, 16512)', () => {
    for (const strip of [127, 128, 16511, 16512]) {
      const entries = [entry('a'.repeat(strip + 1)), entry('b')];
      const buf = encodeIndex(index(entries, { version: 4 }));
      expect(parseIndex(buf, 'sha1').entries.map((e) => e.path)).toEqual(['a'.repeat(strip + 1), 'b']);
    }
  });

  it('sets the extended flag only for entries that need it and promotes version 2 to 3', () => {
    const buf = encodeIndex(index([entry('a'), entry('b', { intentToAdd: true }), entry('c', { skipWorktree: true })]));
    const parsed = parseIndex(buf, 'sha1');
    expect(parsed.version).toBe(3);
    expect(parsed.entries.map((e) => [e.intentToAdd, e.skipWorktree])).toEqual([
      [false, false],
      [true, false],
      [false, true],
    ]);
    // entry a: 62 + 1 name -> 64; entry b: extended, flags word then 0x2000
    expect(buf.readUInt16BE(12 + 64 + 60) & 0x4000).toBe(0x4000);
    expect(buf.readUInt16BE(12 + 64 + 62)).toBe(0x2000);
    expect(buf.readUInt16BE(12 + 60) & 0x4000).toBe(0);
  });

  it('keeps a path that is not valid UTF-8 byte for byte', () => {
    const raw = Buffer.from([0x66, 0xff, 0xfe, 0x2e, 0x62]);
    const e = entry('placeholder');
    const built = encodeIndex(index([{ ...e, rawPath: raw }]));
    const parsed = parseIndex(built, 'sha1');
    expect(parsed.entries[0]!.rawPath?.equals(raw)).toBe(true);
    expect(encodeIndex(parsed).equals(built)).toBe(true);
    // A real U+FFFD in a valid UTF-8 name is not mistaken for one.
    expect(parseIndex(encodeIndex(index([entry('a\uFFFDb')])), 'sha1').entries[0]!.rawPath).toBeUndefined();
  });

  it('keeps extensions verbatim and in order, and recomputes EOIE over the headers before it', () => {
    const tree = Buffer.from('\x001 0\n' + 'x'.repeat(20), 'latin1');
    const unknown = Buffer.from('opaque bytes');
    const idx = index([entry('a')], {
      extensions: [
        { signature: 'TREE', data: tree },
        { signature: 'ZZZZ', data: unknown },
        { signature: 'EOIE', data: Buffer.alloc(24) },
      ],
    });
    const buf = encodeIndex(idx);
    const parsed = parseIndex(buf, 'sha1');
    expect(parsed.extensions.map((x) => x.signature)).toEqual(['TREE', 'ZZZZ', 'EOIE']);
    expect(parsed.extensions[0]!.data.equals(tree)).toBe(true);
    expect(parsed.extensions[1]!.data.equals(unknown)).toBe(true);
    const eoie = parsed.extensions[2]!.data;
    expect(eoie.readUInt32BE(0)).toBe(12 + 64); // end of the entries
    const h = createHash('sha1');
    for (const [sig, size] of [['TREE', tree.length], ['ZZZZ', unknown.length]] as const) {
      const hdr = Buffer.alloc(8);
      hdr.write(sig, 0, 'latin1');
      hdr.writeUInt32BE(size, 4);
      h.update(hdr);
    }
    expect(eoie.subarray(4).equals(h.digest())).toBe(true);
  });

  it('rewrites IEOT offsets, and drops the table when its counts no longer add up', () => {
    const ieot = Buffer.alloc(4 + 16);
    ieot.writeUInt32BE(1, 0);
    ieot.writeUInt32BE(999, 4); // wrong on purpose: recomputed
    ieot.writeUInt32BE(2, 8);
    ieot.writeUInt32BE(999, 12);
    ieot.writeUInt32BE(1, 16);
    const entries = [entry('a'), entry('bbbbbbbbbbbb'), entry('c')];
    const parsed = parseIndex(encodeIndex(index(entries, { extensions: [{ signature: 'IEOT', data: ieot }] })), 'sha1');
    const t = parsed.extensions[0]!.data;
    expect([t.readUInt32BE(4), t.readUInt32BE(8), t.readUInt32BE(12), t.readUInt32BE(16)]).toEqual([12, 2, 12 + 64 + 80, 1]);
    const fewer = parseIndex(encodeIndex(index(entries.slice(1), { extensions: [{ signature: 'IEOT', data: ieot }] })), 'sha1');
    expect(fewer.extensions).toEqual([]);
  });

  it('sha256: 32-byte object ids and checksum', () => {
    const oid = 'ab'.repeat(32);
    const buf = encodeIndex(index([entry('a', { oid })], { hashAlgo: 'sha256' }));
    expect(buf.length).toBe(12 + ((40 + 32 + 2 + 1 + 8) & ~7) + 32);
    expect(parseIndex(buf, 'sha256').entries[0]!.oid).toBe(oid);
    expect(() => encodeIndex(index([entry('a')], { hashAlgo: 'sha256' }))).toThrow(/object id/);
  });
});

describe('parseIndex: refuses what it cannot trust', () => {
  const good = encodeIndex(index([entry('a'), entry('b', { oid: OID2 })]));
  const code = (fn: () => unknown) => {
    try {
      fn();
    } catch (err) {
      return (err as { code?: string }).code;
    }
    return 'no error';
  };

  it('round trips the good one', () => {
    expect(encodeIndex(parseIndex(good, 'sha1')).equals(good)).toBe(true);
  });

  it('a wrong checksum, a wrong hash algorithm, a bad signature, truncation', () => {
    const flipped = Buffer.from(good);
    flipped[20]! ^= 1;
    expect(code(() => parseIndex(flipped, 'sha1'))).toBe('index-corrupt');
    expect(code(() => parseIndex(good, 'sha256'))).toBe('index-corrupt');
    const sig = Buffer.from(good);
    sig.write('DIRX', 0, 'latin1');
    expect(code(() => parseIndex(withChecksum(sig.subarray(0, -20)), 'sha1'))).toBe('index-corrupt');
    expect(code(() => parseIndex(withChecksum(good.subarray(0, 40)), 'sha1'))).toBe('index-corrupt');
    expect(code(() => parseIndex(good.subarray(0, 10), 'sha1'))).toBe('index-corrupt');
  });

  it('index.skipHash: an all-zero checksum is accepted and written back as zeros', () => {
    const zero = Buffer.concat([good.subarray(0, -20), Buffer.alloc(20)]);
    const parsed = parseIndex(zero, 'sha1');
    expect(parsed.skipHash).toBe(true);
    expect(parsed.entries.map((e) => e.path)).toEqual(['a', 'b']);
    expect(encodeIndex(parsed).equals(zero)).toBe(true);
  });

  it('versions other than 2-4, split and sparse indexes: index-unsupported', () => {
    const v5 = Buffer.from(good.subarray(0, -20));
    v5.writeUInt32BE(5, 4);
    expect(code(() => parseIndex(withChecksum(v5), 'sha1'))).toBe('index-unsupported');
    for (const signature of ['link', 'sdir']) {
      const buf = encodeIndex(index([entry('a')], { extensions: [{ signature, data: Buffer.alloc(20) }] }));
      expect(code(() => parseIndex(buf, 'sha1'))).toBe('index-unsupported');
    }
    const dirEntry = encodeIndex(index([entry('dir/', { mode: 0o040000, skipWorktree: true })]));
    expect(code(() => parseIndex(dirEntry, 'sha1'))).toBe('index-unsupported');
  });

  it('unknown extended flags, extended flags in version 2, a wrong name length, stray bytes', () => {
    const ext = Buffer.from(encodeIndex(index([entry('a', { intentToAdd: true })])).subarray(0, -20));
    ext.writeUInt16BE(0x2001, 12 + 62);
    expect(code(() => parseIndex(withChecksum(ext), 'sha1'))).toBe('index-corrupt');
    ext.writeUInt16BE(0x2000, 12 + 62);
    ext.writeUInt32BE(2, 4);
    expect(code(() => parseIndex(withChecksum(ext), 'sha1'))).toBe('index-corrupt');
    const name = Buffer.from(good.subarray(0, -20));
    name.writeUInt16BE(2, 12 + 60);
    expect(code(() => parseIndex(withChecksum(name), 'sha1'))).toBe('index-corrupt');
    expect(code(() => parseIndex(withChecksum(Buffer.concat([good.subarray(0, -20), Buffer.from('abc')])), 'sha1'))).toBe(
      'index-corrupt',
    );
  });

  it('an entry count the file cannot hold', () => {
    const many = Buffer.from(good.subarray(0, -20));
    many.writeUInt32BE(0xffffffff, 8);
    expect(code(() => parseIndex(withChecksum(many), 'sha1'))).toBe('index-corrupt');
    many.writeUInt32BE(3, 8);
    expect(code(() => parseIndex(withChecksum(many), 'sha1'))).toBe('index-corrupt');
  });

  it('encode refuses fields that do not fit', () => {
    expect(() => encodeIndex(index([entry('a', { size: 2 ** 32 })]))).toThrow(/size/);
    expect(() => encodeIndex(index([entry('a', { mtimeNanoseconds: -1 })]))).toThrow(/mtimeNanoseconds/);
    expect(() => encodeIndex(index([entry('a', { oid: 'zz'.repeat(20) })]))).toThrow(/object id/);
  });
});

describe('statToIndexFields', () => {
  it('splits nanosecond times and keeps the low 32 bits, as git stores stat data', () => {
    const fake = {
      size: 5n * 1024n ** 3n + 7n, // 5 GiB + 7
      dev: 0x1_0000_0002n,
      ino: 0x7_0000_0009n,
      uid: 1000n,
      gid: 1001n,
      mtimeNs: 1_700_000_001_987_654_321n,
      ctimeNs: 1_700_000_000_000_000_005n,
      mtimeMs: 0n,
      ctimeMs: 0n,
    } as unknown as fs.BigIntStats;
    expect(statToIndexFields(fake)).toEqual({
      ctimeSeconds: 1_700_000_000,
      ctimeNanoseconds: 5,
      mtimeSeconds: 1_700_000_001,
      mtimeNanoseconds: 987_654_321,
      dev: 2,
      ino: 9,
      uid: 1000,
      gid: 1001,
      size: 7 + 1024 ** 3, // 5 GiB + 7 mod 2^32
    });
  });

  it('times before 1970 round down, like timespec', () => {
    const fake = { size: 0n, dev: 0n, ino: 0n, uid: 0n, gid: 0n, mtimeNs: -1n, ctimeNs: -1_500_000_000n } as unknown as fs.BigIntStats;
    const f = statToIndexFields(fake);
    expect([f.mtimeSeconds, f.mtimeNanoseconds]).toEqual([0xffffffff, 999_999_999]);
    expect([f.ctimeSeconds, f.ctimeNanoseconds]).toEqual([0xfffffffe, 500_000_000]);
  });

  it('plain Stats: milliseconds, rounded to nanoseconds', () => {
    const fake = { size: 10, dev: 1, ino: 2, uid: 3, gid: 4, mtimeMs: 1_700_000_001_987.5, ctimeMs: 1_700_000_000_000 } as unknown as fs.Stats;
    const f = statToIndexFields(fake);
    expect([f.mtimeSeconds, f.mtimeNanoseconds]).toEqual([1_700_000_001, 987_500_000]);
    expect([f.ctimeSeconds, f.ctimeNanoseconds]).toEqual([1_700_000_000, 0]);
  });
});

describe('speed', () => {
  it('parses and encodes a 100k-entry index byte for byte (times printed; speed belongs in benchmarks, not in a test on a shared machine)', () => {
    const entries: IndexEntry[] = [];
    for (let i = 0; i < 100_000; i++) {
      const p = `footage/day-${String(i % 97).padStart(3, '0')}/cam-${i % 7}/clip-${String(i).padStart(6, '0')}.mov`;
      entries.push(entry(p, { ino: i, size: i * 31, oid: createHash('sha1').update(p).digest('hex') }));
    }
    entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    for (const version of [2, 4] as const) {
      const buf = encodeIndex(index(entries, { version, extensions: [{ signature: 'TREE', data: Buffer.alloc(1000) }] }));
      const t0 = performance.now();
      const parsed = parseIndex(buf, 'sha1');
      const t1 = performance.now();
      const again = encodeIndex(parsed);
      const t2 = performance.now();
      expect(again.equals(buf)).toBe(true);
      expect(parsed.entries).toHaveLength(100_000);
      console.log(`v${version}: ${(buf.length / 1e6).toFixed(1)} MB, parse ${(t1 - t0).toFixed(0)} ms, encode ${(t2 - t1).toFixed(0)} ms`);
    }
  });
});
