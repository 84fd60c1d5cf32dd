import { describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { hashBytes } from '../hashing/blake3.js';
import { encodeEntryHead, encodePackHeader, ENTRY_HEAD_SIZE, PACK_HEADER_SIZE } from '../store/pack-format.js';
import type { PackIndexEntry } from '../remote/content/pack-index.js';
import { PackVerifier } from './pack-verifier.js';

const require = createRequire(import.meta.url);
const zstd = require('@mongodb-js/zstd') as { compress(b: Buffer, level: number): Promise<Buffer> };

/** A pack of plain chunks and one zstd chunk, with its index entries. */
async function makePack(): Promise<{ bytes: Buffer; entries: PackIndexEntry[] }> {
  const parts: Buffer[] = [encodePackHeader()];
  const entries: PackIndexEntry[] = [];
  let offset = PACK_HEADER_SIZE;
  const raws = [randomBytes(5000), randomBytes(17), Buffer.alloc(9000, 7), randomBytes(12000)];
  for (const [i, raw] of raws.entries()) {
    const stored = i === 2 ? await zstd.compress(raw, 3) : raw;
    const codec = i === 2 ? 1 : 0;
    const idRaw = hashBytes(raw);
    const head = Buffer.alloc(ENTRY_HEAD_SIZE);
    encodeEntryHead({ idRaw, codec, rawLength: raw.length, storedLength: stored.length }, head, 0);
    parts.push(head, stored);
    entries.push({ idRaw, offset: offset + ENTRY_HEAD_SIZE, storedLength: stored.length, rawLength: raw.length, codec });
    offset += ENTRY_HEAD_SIZE + stored.length;
  }
  return { bytes: Buffer.concat(parts), entries };
}

/** Streams `bytes` in pieces of `piece` bytes through a verifier; returns what came out and the error. */
async function run(bytes: Buffer, entries: PackIndexEntry[], piece: number): Promise<{ out: Buffer; error: unknown; v: PackVerifier }> {
  const pieces: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += piece) pieces.push(bytes.subarray(i, i + piece));
  const v = new PackVerifier('v1/packs/x.pack', entries);
  const got: Buffer[] = [];
  let error: unknown = null;
  await pipeline(Readable.from(pieces), v, new Writable({ write: (c: Buffer, _e, done) => (got.push(Buffer.from(c)), done()) })).catch((e: unknown) => (error = e));
  return { out: Buffer.concat(got), error, v };
}

describe('PackVerifier', () => {
  it('passes a good pack through byte for byte, whatever the piece sizes, zstd entries included', async () => {
    const { bytes, entries } = await makePack();
    for (const piece of [1, 7, 41, 1000, 65536]) {
      const { out, error, v } = await run(bytes, entries, piece);
      expect(error).toBeNull();
      expect(out.equals(bytes)).toBe(true);
      expect(v.chunks).toBe(4);
    }
  });

  it('never passes on a byte of a bad entry: a flipped byte, a pack cut short, bytes past the end', async () => {
    const { bytes, entries } = await makePack();
    const endOf1 = entries[1]!.offset + entries[1]!.storedLength;
    const flipped = Buffer.from(bytes);
    flipped[entries[3]!.offset + 100] ^= 1;
    for (const piece of [3, 4096]) {
      const bad = await run(flipped, entries, piece);
      expect((bad.error as { code?: string }).code).toBe('pack-corrupt');
      expect(String(bad.error)).toMatch(/do not match its id/);
      // what came out ends before the bad entry
      expect(bad.out.length).toBe(entries[2]!.offset + entries[2]!.storedLength);
      expect(bad.v.failure).not.toBeNull();
    }
    const short = await run(bytes.subarray(0, bytes.length - 1), entries, 500);
    expect(String(short.error)).toMatch(/shorter than its index/);
    expect(short.out.length).toBeLessThan(bytes.length);
    const long = await run(Buffer.concat([bytes, Buffer.from('x')]), entries, 500);
    expect(String(long.error)).toMatch(/longer than its index/);
    const wrongIndex = entries.map((e, i) => (i === 1 ? { ...e, idRaw: hashBytes(Buffer.from('other')) } : e));
    const mismatch = await run(bytes, wrongIndex, 64);
    expect(String(mismatch.error)).toMatch(/entry 1: its head names another chunk/);
    expect(mismatch.out.length).toBe(endOf1 - (ENTRY_HEAD_SIZE + entries[1]!.storedLength));
  });
});
