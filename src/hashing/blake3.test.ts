import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { loadNativeBlake3 } from '../chunking/native.js';
import { xorshift32Bytes } from '../chunking/pseudo-random.js';
import { BLAKE3_KNOWN_ANSWER, blake3KnownAnswer, hashBytes, napiBlake3Ops, nativeBlake3, StreamHasher } from './blake3.js';

const require = createRequire(import.meta.url);
const napi = require('@napi-rs/blake-hash') as { blake3(d: Uint8Array): Buffer };
const addon = loadNativeBlake3();
const repoRoot = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');

/** Sizes across block, chunk and subtree edges, and a few large ones. */
const SIZES = [0, 1, 63, 64, 65, 1023, 1024, 1025, 2047, 2048, 2049, 3072, 4095, 4096, 8191, 8192, 8193, 16_385, 65_536, 65_537, 100_000, 262_145, 1_048_575, 1_048_576, 1_048_577, 3 * 1048576 + 17];

describe('BLAKE3', () => {
  it('the known answer is what @napi-rs/blake-hash gives', () => {
    expect(blake3KnownAnswer(napiBlake3Ops())).toBe(BLAKE3_KNOWN_ANSWER);
  });

  it.skipIf(!addon)('the addon is in use and gives the ids @napi-rs/blake-hash gives', () => {
    expect(nativeBlake3()).not.toBeNull();
    expect(nativeBlake3()!.implementation()).toMatch(/^(blake3-c |dits )/);
    const data = xorshift32Bytes(4 * 1048576, 11);
    for (const size of SIZES) {
      const d = data.subarray(5, 5 + size);
      expect(hashBytes(d).toString('hex'), `size ${size}`).toBe(napi.blake3(d).toString('hex'));
    }
    for (const step of [1, 1000, 1024, 65_536, 4 * 1048576]) {
      const h = new StreamHasher();
      for (let at = 0; at < data.length; at += step) h.update(data.subarray(at, at + step));
      expect(h.digestHex(), `step ${step}`).toBe(napi.blake3(data).toString('hex'));
    }
  });

  it.skipIf(!addon)('hashes a batch of pieces of a shared buffer, feeding the file hash in order', () => {
    const shared = new SharedArrayBuffer(1 << 20);
    const buf = Buffer.from(shared);
    xorshift32Bytes(1 << 20, 3).copy(buf);
    const starts = new Float64Array([1000, 1000 + 70_000, 1000 + 70_001, 500_000]);
    const lengths = new Uint32Array([70_000, 1, 428_999, 560_000]);
    const ids = new Uint8Array(4 * 32);
    const file = addon!.hasher();
    // base: the buffer holds the stream from offset 1000 on; pieces 1..3 in one call
    addon!.pieces(buf.subarray(1000), 1000, starts, lengths, 0, 1, ids, file);
    addon!.pieces(buf.subarray(1000), 1000, starts, lengths, 1, 2, ids, file);
    for (let k = 0; k < 3; k++) expect(Buffer.from(ids.buffer, k * 32, 32).equals(napi.blake3(buf.subarray(starts[k]!, starts[k]! + lengths[k]!)))).toBe(true);
    expect(Buffer.from(ids.buffer, 96, 32).equals(Buffer.alloc(32))).toBe(true); // not asked for
    expect(addon!.digest(file).equals(napi.blake3(buf.subarray(1000, 500_000)))).toBe(true);
    expect(() => addon!.pieces(buf.subarray(1000), 1000, starts, lengths, 3, 1, ids)).toThrow(/outside buf/);
    expect(() => addon!.pieces(buf, 0, starts, lengths, 2, 3, ids)).toThrow(/out of range/);
  });
});

// Dits' own BLAKE3 (native/b3.c) is what the addon uses where the BLAKE3 C library's
// sources are missing; machines that have them (CI) would never run it, so it is compiled
// here on its own with a small driver and checked against @napi-rs/blake-hash.
const cc = spawnSync('cc', ['--version']).status === 0;
describe.skipIf(!cc)("Dits' own BLAKE3 (native/b3.c)", () => {
  it('gives the ids @napi-rs/blake-hash gives, with and without AVX2, one-shot and fed in parts', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dits-b3-'));
    try {
      const exe = path.join(dir, 'b3-driver');
      execFileSync('cc', ['-O2', '-std=c11', '-o', exe, path.join(repoRoot, 'native/test/b3-driver.c'), path.join(repoRoot, 'native/b3.c')]);
      const data = xorshift32Bytes(3 * 1048576 + 100, 7);
      fs.writeFileSync(path.join(dir, 'data'), data);
      const cases: [number, number, number][] = [];
      for (const size of SIZES) if (size + 9 <= data.length) cases.push([9, size, 0], [0, size, 1000], [3, size, 65_536]);
      for (const [off, len, step] of [[0, 3 * 1048576, 4 * 1048576], [1, 3 * 1048576, 5000], [0, 2 * 1048576, 1024]] as const) cases.push([off, len, step]);
      const input = cases.map((c) => c.join(' ')).join('\n') + '\n';
      const impls = new Set<string>();
      for (const simd of ['1', '0']) {
        const out = execFileSync(exe, [path.join(dir, 'data'), simd], { input, encoding: 'utf8' }).trim().split('\n');
        expect(out.length).toBe(cases.length);
        out.forEach((line, i) => {
          const [oneShot, streamed, ...impl] = line.split(' ');
          impls.add(impl.join(' '));
          const [off, len, step] = cases[i]!;
          const want = napi.blake3(data.subarray(off, off + len)).toString('hex');
          expect(oneShot, `one-shot ${len} at ${off}`).toBe(want);
          expect(streamed, `${len} at ${off} in steps of ${step}`).toBe(want);
        });
      }
      expect(impls.has('dits portable')).toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
