import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { loadNativeBlake3 } from '../native-addon.js';
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

  it.skipIf(!addon?.readHash)('readHash reads a file range on the thread pool and hashes pieces of it', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dits-readhash-'));
    try {
      const data = xorshift32Bytes(300_000, 9);
      const file = path.join(dir, 'f');
      fs.writeFileSync(file, data);
      const fd = fs.openSync(file, 'r');
      try {
        const buf = Buffer.alloc(200_000);
        const starts = new Float64Array([0, 70_000, 150_000]);
        const lengths = new Uint32Array([70_000, 1, 50_000]);
        const ids = new Uint8Array(3 * 32);
        expect(await addon!.readHash!(fd, buf, 1234, starts, lengths, 3, ids)).toBe(200_000);
        expect(buf.equals(data.subarray(1234, 201_234))).toBe(true);
        for (let k = 0; k < 3; k++) expect(Buffer.from(ids.buffer, k * 32, 32).equals(napi.blake3(buf.subarray(starts[k]!, starts[k]! + lengths[k]!)))).toBe(true);
        // past the end: what there was, and nothing hashed
        const zero = new Uint8Array(32);
        expect(await addon!.readHash!(fd, buf, 250_000, starts, lengths, 1, zero)).toBe(50_000);
        expect(Buffer.from(zero).equals(Buffer.alloc(32))).toBe(true);
        // a view: the bytes land where the view starts
        const big = Buffer.alloc(1000);
        expect(await addon!.readHash!(fd, big.subarray(100, 200), 0, starts, lengths, 0, zero)).toBe(100);
        expect(big.subarray(100, 200).equals(data.subarray(0, 100))).toBe(true);
        expect(big.subarray(0, 100).equals(Buffer.alloc(100))).toBe(true);
        expect(() => addon!.readHash!(fd, buf, 0, starts, lengths, 4, ids)).toThrow(/out of range/);
        expect(() => addon!.readHash!(fd, buf.subarray(0, 100_000), 0, starts, lengths, 3, ids)).toThrow(/outside buf/);
      } finally {
        fs.closeSync(fd);
      }
      // no such descriptor: -EBADF, not a throw
      expect(await addon!.readHash!(1 << 29, Buffer.alloc(10), 0, new Float64Array(0), new Uint32Array(0), 0, new Uint8Array(0))).toBe(-9);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
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
