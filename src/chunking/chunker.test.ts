import { afterEach, describe, expect, it, vi } from 'vitest';
import { DitsUserError } from '../errors.js';
import { hashHex } from '../hashing/blake3.js';
import {
  Chunker,
  chunkBuffer,
  defaultChunkerImplementation,
  DEFAULT_CHUNKER_PARAMS,
  nativeChunkerAvailable,
  validateChunkerParams,
  type ChunkerImplementation,
  type ChunkerParams,
} from './chunker.js';
import { GEAR } from './gear.js';
import { nativeScanError } from './native-scan.js';
import { xorshift32Bytes } from './pseudo-random.js';

const TINY: ChunkerParams = { minSize: 64, avgSize: 256, maxSize: 1024 };
const SMALL: ChunkerParams = { minSize: 2048, avgSize: 8192, maxSize: 32768 };

// The native addon is built by scripts/build-native.mjs at install; without it only the
// JavaScript implementation is tested (the skipped tests say so in the report).
const native = nativeChunkerAvailable();
const IMPLS: ChunkerImplementation[] = native ? ['js', 'native'] : ['js'];
if (!native) console.warn(`native chunker not tested: ${nativeScanError()}`);

/** 4 MiB of xorshift32 (seed 2463534242, little-endian words): see pseudo-random.ts. */
const DATA = xorshift32Bytes(4 << 20);

function offsets(chunks: Buffer[]): number[] {
  let o = 0;
  return chunks.map((c) => (o += c.length));
}

function offsetsDigest(offs: number[]): string {
  const b = Buffer.alloc(offs.length * 4);
  offs.forEach((v, k) => b.writeUInt32LE(v, k * 4));
  return hashHex(b);
}

/** Chunks `data` pushing it in pieces of the given sizes (cycled). */
function chunkInPieces(data: Buffer, params: ChunkerParams, impl: ChunkerImplementation, sizes: number[]): Buffer[] {
  const c = new Chunker(params, { implementation: impl });
  const out: Buffer[] = [];
  let k = 0;
  for (let at = 0; at < data.length; k++) {
    const n = Math.min(sizes[k % sizes.length]!, data.length - at);
    out.push(...c.push(data.subarray(at, at + n)));
    at += n;
  }
  const last = c.finish();
  if (last !== null) out.push(last);
  return out;
}

/**
 * A direct, byte-at-a-time transcription of the cut rule documented in params.ts, to check
 * the optimised scanners against the written rule.
 */
function referenceOffsets(data: Uint8Array, p: ChunkerParams): number[] {
  const bits = Math.log2(p.avgSize);
  const top = (b: number) => (b >= 32 ? 0xffffffff : (0xffffffff << (32 - b)) >>> 0);
  const maskS = top(bits + 2);
  const maskL = top(bits - 2);
  const out: number[] = [];
  let start = 0;
  while (start < data.length) {
    let h = 0;
    let cut = data.length;
    for (let r = Math.max(0, p.minSize - 32); start + r < data.length; r++) {
      h = (h * 2 + GEAR[data[start + r]!]!) >>> 0;
      const len = r + 1;
      if (
        len === p.maxSize ||
        (len >= p.minSize && len < p.avgSize && ((h & maskS) >>> 0) === 0) ||
        (len >= p.avgSize && len < p.maxSize && ((h & maskL) >>> 0) === 0)
      ) {
        cut = start + len;
        break;
      }
    }
    out.push(cut);
    start = cut;
  }
  return out;
}

function expectWellFormed(chunks: Buffer[], data: Buffer, p: ChunkerParams): void {
  expect(Buffer.concat(chunks).equals(data)).toBe(true);
  chunks.forEach((c, k) => {
    expect(c.length).toBeGreaterThan(0);
    expect(c.length).toBeLessThanOrEqual(p.maxSize);
    if (k < chunks.length - 1) expect(c.length).toBeGreaterThanOrEqual(p.minSize);
  });
}

// Golden cut points. PART OF THE ON-DISK FORMAT: chunk ids follow from them, so a change
// here breaks dedup with all existing data. They were cross-checked against an independent
// Python transcription of the rule in params.ts. Never update them to make a test pass.
const GOLDEN_DEFAULT = [
  93982, 172060, 285440, 353520, 423868, 491922, 557821, 629641, 709224, 766565, 834732, 912301, 988323, 1059575, 1144469,
  1164524, 1265725, 1340190, 1436012, 1522122, 1595535, 1674063, 1742129, 1847078, 1927974, 1966393, 2067995, 2161144,
  2235214, 2316545, 2432746, 2502197, 2571301, 2651082, 2742991, 2810111, 2892147, 2918645, 2997851, 3068439, 3145119,
  3222695, 3312286, 3379802, 3429708, 3466259, 3547854, 3682922, 3763436, 3847967, 3906028, 3974074, 3997496, 4077373,
  4144438, 4194304,
];
const GOLDEN_TINY_FIRST = [
  227, 544, 871, 1113, 1423, 1694, 2040, 2344, 2634, 2925, 3213, 3459, 3624, 3975, 4364, 4639, 5054, 5208, 5490, 5779, 6037,
  6306, 6720, 6988, 7258, 7588, 7949, 8210, 8496, 8805, 9237, 9545, 9939, 10264, 10561, 10826, 11045, 11326, 11584, 11857,
];
const GOLDEN_TINY_COUNT = 14351;
const GOLDEN_TINY_DIGEST = '7dcf7e2192bfca404129b1f3cad27225d0bd4b221e92af2fe3b95296569b485e';

describe('golden input', () => {
  it('is the documented xorshift32 stream', () => {
    expect(hashHex(DATA)).toBe('e727e9b06246a1fa04c5758cd509dfa5e664d4ef5132f3a4f4f774084b82767a');
  });

  it('the reference transcription of the rule gives the golden cuts', () => {
    expect(referenceOffsets(DATA, DEFAULT_CHUNKER_PARAMS)).toEqual(GOLDEN_DEFAULT);
    const tiny = referenceOffsets(DATA, TINY);
    expect(tiny.length).toBe(GOLDEN_TINY_COUNT);
    expect(offsetsDigest(tiny)).toBe(GOLDEN_TINY_DIGEST);
  });
});

describe.each(IMPLS)('%s chunker', (impl) => {
  it('cuts the golden input at the pinned offsets (default params)', () => {
    const chunks = chunkBuffer(DATA, DEFAULT_CHUNKER_PARAMS, { implementation: impl });
    expect(offsets(chunks)).toEqual(GOLDEN_DEFAULT);
    expectWellFormed(chunks, DATA, DEFAULT_CHUNKER_PARAMS);
  });

  it('cuts the golden input at the pinned offsets (tiny params 64/256/1024)', () => {
    const chunks = chunkBuffer(DATA, TINY, { implementation: impl });
    const offs = offsets(chunks);
    expect(offs.slice(0, GOLDEN_TINY_FIRST.length)).toEqual(GOLDEN_TINY_FIRST);
    expect(offs.length).toBe(GOLDEN_TINY_COUNT);
    expect(offsetsDigest(offs)).toBe(GOLDEN_TINY_DIGEST);
    expectWellFormed(chunks, DATA, TINY);
  });

  it('gives the same cuts whatever the push sizes', () => {
    const data = DATA.subarray(0, 1 << 20);
    for (const p of [TINY, SMALL, DEFAULT_CHUNKER_PARAMS]) {
      const want = offsets(chunkBuffer(data, p, { implementation: impl }));
      expect(want).toEqual(referenceOffsets(data, p));
      for (const sizes of [[65516], [65536], [1000, 1, 7, 33_000, 250_000], [p.minSize - 1, p.maxSize + 1], [p.avgSize]]) {
        const chunks = chunkInPieces(data, p, impl, sizes);
        expect(offsets(chunks)).toEqual(want);
        expectWellFormed(chunks, data, p);
      }
    }
  });

  it('pushLengths gives the lengths push gives, whatever the push sizes, copying nothing', () => {
    const data = DATA.subarray(0, 1 << 20);
    for (const p of [TINY, SMALL, DEFAULT_CHUNKER_PARAMS]) {
      const want = chunkBuffer(data, p, { implementation: impl }).map((c) => c.length);
      for (const sizes of [[data.length], [65516], [1000, 1, 7, 33_000, 250_000], [p.minSize - 1, p.maxSize + 1], [1]]) {
        const c = new Chunker(p, { implementation: impl });
        const lengths: number[] = [];
        for (let at = 0, i = 0; at < data.length; i++) {
          const n = Math.min(sizes[i % sizes.length]!, data.length - at);
          c.pushLengths(data.subarray(at, at + n), lengths);
          at += n;
        }
        const last = c.finishLength();
        if (last) lengths.push(last);
        expect(lengths).toEqual(want);
        // the chunker is ready for a new stream
        const again: number[] = [];
        c.pushLengths(data, again);
        expect([...again, c.finishLength()].filter((n) => n > 0)).toEqual(want);
      }
    }
  });

  it('gives the same cuts when fed one byte at a time', () => {
    for (const [p, n] of [[TINY, 64 << 10], [SMALL, 256 << 10]] as const) {
      const data = DATA.subarray(0, n);
      expect(offsets(chunkInPieces(data, p, impl, [1]))).toEqual(referenceOffsets(data, p));
    }
  });

  it('matches the reference rule for unusual params (min < 32, min = avg, avg = max, min = max)', () => {
    const data = DATA.subarray(0, 300_000);
    const cases: ChunkerParams[] = [
      { minSize: 1, avgSize: 64, maxSize: 64 },
      { minSize: 1, avgSize: 64, maxSize: 100 },
      { minSize: 31, avgSize: 128, maxSize: 1000 },
      { minSize: 33, avgSize: 128, maxSize: 129 },
      { minSize: 256, avgSize: 256, maxSize: 4096 },
      { minSize: 512, avgSize: 512, maxSize: 512 },
      { minSize: 4096, avgSize: 4096, maxSize: 5000 },
    ];
    for (const p of cases) {
      const want = referenceOffsets(data, p);
      expect(offsets(chunkBuffer(data, p, { implementation: impl }))).toEqual(want);
      expect(offsets(chunkInPieces(data, p, impl, [997, 13, 4096]))).toEqual(want);
    }
  });

  it('handles empty input and a single byte', () => {
    expect(chunkBuffer(Buffer.alloc(0), TINY, { implementation: impl })).toEqual([]);
    const c = new Chunker(TINY, { implementation: impl });
    expect(c.push(Buffer.alloc(0))).toEqual([]);
    expect(c.finish()).toBeNull();
    const one = chunkBuffer(Buffer.from([42]), TINY, { implementation: impl });
    expect(one.map((b) => [...b])).toEqual([[42]]);
  });

  it('respects min and max exactly at the limits', () => {
    for (const p of [TINY, DEFAULT_CHUNKER_PARAMS]) {
      for (const n of [p.minSize - 1, p.minSize, p.minSize + 1, p.maxSize - 1, p.maxSize, p.maxSize + 1, 3 * p.maxSize + 7]) {
        const data = DATA.subarray(0, n);
        const chunks = chunkBuffer(data, p, { implementation: impl });
        expectWellFormed(chunks, data, p);
        expect(offsets(chunks)).toEqual(referenceOffsets(data, p));
        if (n <= p.minSize) expect(chunks.length).toBe(1);
      }
      // Exactly max of uncuttable bytes is one chunk; max + 1 is [max, 1].
      expect(chunkBuffer(Buffer.alloc(p.maxSize), p, { implementation: impl }).map((c) => c.length)).toEqual([p.maxSize]);
      expect(chunkBuffer(Buffer.alloc(p.maxSize + 1), p, { implementation: impl }).map((c) => c.length)).toEqual([p.maxSize, 1]);
    }
  });

  it('cuts all-zero input into max-size chunks', () => {
    for (const p of [TINY, SMALL, DEFAULT_CHUNKER_PARAMS]) {
      const zeros = Buffer.alloc(10 * p.maxSize + 5);
      const lengths = chunkInPieces(zeros, p, impl, [65536]).map((c) => c.length);
      expect(lengths).toEqual([...Array(10).fill(p.maxSize), 5]);
    }
  });

  it('resynchronises after an insertion near the start: only a few chunks change', () => {
    const ids = (chunks: Buffer[]) => chunks.map((c) => hashHex(c));
    const before = ids(chunkBuffer(DATA, DEFAULT_CHUNKER_PARAMS, { implementation: impl }));
    const at = 100 * 1024;
    const edited = Buffer.concat([DATA.subarray(0, at), xorshift32Bytes(4096, 7), DATA.subarray(at)]);
    const afterChunks = chunkBuffer(edited, DEFAULT_CHUNKER_PARAMS, { implementation: impl });
    const known = new Set(before);
    const fresh = afterChunks.filter((c) => !known.has(hashHex(c)));
    expect(fresh.length).toBeGreaterThanOrEqual(1);
    expect(fresh.length).toBeLessThanOrEqual(2);
    expect(fresh.reduce((s, c) => s + c.length, 0)).toBeLessThan(300_000);
    // Everything after the changed region is the same chunk sequence.
    expect(ids(afterChunks).slice(-(before.length - 3))).toEqual(before.slice(-(before.length - 3)));

    // 100 bytes overwritten in the middle: one or two chunks change.
    const patched = Buffer.from(DATA);
    xorshift32Bytes(100, 9).copy(patched, 2 << 20);
    const freshPatched = chunkBuffer(patched, DEFAULT_CHUNKER_PARAMS, { implementation: impl }).filter((c) => !known.has(hashHex(c)));
    expect(freshPatched.length).toBeGreaterThanOrEqual(1);
    expect(freshPatched.length).toBeLessThanOrEqual(2);
  });

  it('returns chunks inside one pushed buffer as views of it, and copies chunks that span pushes', () => {
    const data = Buffer.from(DATA.subarray(0, 64 << 10));
    const c = new Chunker(TINY, { implementation: impl });
    const first = c.push(data.subarray(0, 30_000));
    const second = c.push(data.subarray(30_000));
    const last = c.finish();
    expect(first.length).toBeGreaterThan(10);
    for (const chunk of first) expect(chunk.buffer).toBe(data.buffer);
    // The first chunk of the second push began in the first push: a copy.
    expect(second[0]!.buffer).not.toBe(data.buffer);
    for (const chunk of second.slice(1)) expect(chunk.buffer).toBe(data.buffer);
    const all = [...first, ...second, ...(last ? [last] : [])];
    expect(offsets(all)).toEqual(referenceOffsets(data, TINY));
  });

  it('scans a push over 1 GiB in windows, with the same cuts', () => {
    // Zero pages: cheap to allocate; max is not a divisor of 1 GiB, so a chunk spans the window edge.
    const p = { minSize: 4096, avgSize: 65536, maxSize: 1_000_003 };
    const size = 2 ** 30 + 5_000_000;
    const lengths = new Chunker(p, { implementation: impl }).push(Buffer.alloc(size)).map((c) => c.length);
    const full = Math.floor(size / p.maxSize);
    expect(lengths.length).toBe(full);
    expect(lengths.every((l) => l === p.maxSize)).toBe(true);
  });

  it('cut() forces a boundary and restarts cutting as at a stream start', () => {
    const a = DATA.subarray(0, 10_000);
    const b = DATA.subarray(10_000, 50_000);
    const c = new Chunker(TINY, { implementation: impl });
    const out = c.push(Buffer.from(a));
    const forced = c.cut();
    expect(c.cut()).toBeNull(); // nothing pending right after a cut
    out.push(...(forced ? [forced] : []), ...c.push(Buffer.from(b)));
    const last = c.finish();
    if (last) out.push(last);
    const want = [...referenceOffsets(a, TINY), ...referenceOffsets(b, TINY).map((o) => o + a.length)];
    expect(offsets(out)).toEqual(want);
    expect(Buffer.concat(out).equals(DATA.subarray(0, 50_000))).toBe(true);
    // finish() leaves the chunker ready for a new stream.
    expect(offsets(chunkInPieces(b, TINY, impl, [5000]))).toEqual(referenceOffsets(b, TINY));
  });
});

describe('implementations', () => {
  afterEach(() => vi.unstubAllEnvs());

  it.skipIf(!native)('native and js agree on random params and random push sizes', () => {
    let seed = 12345;
    const rnd = (n: number) => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % n;
    };
    for (let t = 0; t < 30; t++) {
      const avgSize = 64 << rnd(8);
      const p = { minSize: 1 + rnd(avgSize), avgSize, maxSize: avgSize + rnd(4 * avgSize) };
      const data = xorshift32Bytes(50_000 + rnd(200_000), 1 + t);
      const sizes = [1 + rnd(70_000), 1 + rnd(100), 1 + rnd(5000)];
      const js = offsets(chunkInPieces(data, p, 'js', sizes));
      expect(offsets(chunkInPieces(data, p, 'native', sizes))).toEqual(js);
      expect(js).toEqual(referenceOffsets(data, p));
    }
  });

  it.skipIf(!native)('uses native by default when built; DITS_CHUNKER=js forces js', () => {
    vi.stubEnv('DITS_CHUNKER', '');
    expect(new Chunker().implementation).toBe('native');
    vi.stubEnv('DITS_CHUNKER', 'js');
    expect(defaultChunkerImplementation()).toBe('js');
    expect(new Chunker().implementation).toBe('js');
    expect(new Chunker(undefined, { implementation: 'native' }).implementation).toBe('native');
  });
});

describe('validateChunkerParams', () => {
  it('accepts the defaults and tiny params', () => {
    expect(() => validateChunkerParams(DEFAULT_CHUNKER_PARAMS)).not.toThrow();
    expect(() => validateChunkerParams(TINY)).not.toThrow();
  });

  it.each([
    [{ minSize: 0, avgSize: 256, maxSize: 1024 }],
    [{ minSize: 64, avgSize: 300, maxSize: 1024 }],
    [{ minSize: 64, avgSize: 32, maxSize: 1024 }],
    [{ minSize: 512, avgSize: 256, maxSize: 1024 }],
    [{ minSize: 64, avgSize: 256, maxSize: 128 }],
    [{ minSize: 64.5, avgSize: 256, maxSize: 1024 }],
    [{ minSize: 64, avgSize: 256, maxSize: 2 ** 31 }],
    [{ minSize: 64, avgSize: 256 } as ChunkerParams],
  ])('rejects %j with bad-chunker-params', (p) => {
    expect(() => validateChunkerParams(p)).toThrow(DitsUserError);
    try {
      validateChunkerParams(p);
    } catch (err) {
      expect((err as DitsUserError).code).toBe('bad-chunker-params');
    }
    expect(() => new Chunker(p)).toThrow(/invalid chunker sizes/);
  });
});
