/*
 * BLAKE3-256, hash mode (see b3.h): Dits' own implementation, written from the specification:
 *
 * - the compression function: 7 rounds of the G mixing function over a 16-word state
 *   (chaining value, IV, 64-bit counter, block length, flags), message words permuted
 *   between rounds (MSG_SCHEDULE lists each round's order);
 * - a chunk is 1024 bytes: its 64-byte blocks are compressed in turn, the first flagged
 *   CHUNK_START and the last CHUNK_END, with the chunk's index as the counter;
 * - chunk chaining values are joined pairwise into PARENT nodes in a binary tree whose left
 *   subtrees are complete (2^k chunks); the last compression is flagged ROOT and its first
 *   eight words are the digest.
 *
 * Speed comes from compressing eight independent inputs at once, one per 32-bit lane of
 * the AVX2 registers (hash8_avx2): eight chunks of a subtree, or eight parents of one
 * level of it. Everything else, and CPUs without AVX2, use the portable function.
 */
#include "b3.h"

#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define B3_X86 1
#include <immintrin.h>
#endif

#define B3_BLOCK_LEN 64
#define B3_CHUNK_LEN 1024
/* enough for 2^54 chunks (16 EiB) */
#define B3_MAX_DEPTH 54

typedef struct {
  uint32_t cv[8];
  uint64_t chunk_counter;
  uint8_t buf[B3_BLOCK_LEN];
  uint8_t buf_len;
  uint8_t blocks_compressed;
} b3_chunk_state;

struct b3_hasher {
  b3_chunk_state chunk;
  uint8_t cv_stack[(B3_MAX_DEPTH + 1) * B3_OUT_LEN];
  uint8_t cv_stack_len;
};

enum { CHUNK_START = 1, CHUNK_END = 2, PARENT = 4, ROOT = 8 };

static const uint32_t IV[8] = {0x6A09E667u, 0xBB67AE85u, 0x3C6EF372u, 0xA54FF53Au, 0x510E527Fu, 0x9B05688Cu, 0x1F83D9ABu, 0x5BE0CD19u};

/* Round r reads message word MSG_SCHEDULE[r][i] where round 0 reads word i: each row is
   the previous one put through the permutation (2,6,3,10,7,0,4,13,1,11,12,5,9,14,15,8). */
static const uint8_t MSG_SCHEDULE[7][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8},
    {3, 4, 10, 12, 13, 2, 7, 14, 6, 5, 9, 0, 11, 15, 8, 1},
    {10, 7, 12, 9, 14, 3, 13, 15, 4, 0, 11, 2, 5, 8, 1, 6},
    {12, 13, 9, 11, 15, 10, 14, 8, 7, 2, 5, 3, 0, 1, 6, 4},
    {9, 14, 11, 5, 8, 12, 15, 1, 13, 3, 0, 10, 2, 6, 4, 7},
    {11, 15, 5, 0, 1, 9, 8, 6, 14, 10, 2, 12, 3, 4, 7, 13},
};

/* Subtrees hashed in one go by b3_update (chunks); bounds the scratch space on the stack. */
#define SUBTREE_MAX_CHUNKS 1024
/* b3_hash works level by level on the stack up to this size, through a hasher above it. */
#define ONESHOT_MAX (SUBTREE_MAX_CHUNKS * B3_CHUNK_LEN)

static int simd_on = -1;

static inline uint32_t load32(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline void store32(uint8_t *p, uint32_t w) {
  p[0] = (uint8_t)w;
  p[1] = (uint8_t)(w >> 8);
  p[2] = (uint8_t)(w >> 16);
  p[3] = (uint8_t)(w >> 24);
}

static inline uint32_t rotr32(uint32_t w, unsigned c) { return (w >> c) | (w << (32 - c)); }

static inline void g(uint32_t *s, int a, int b, int c, int d, uint32_t x, uint32_t y) {
  s[a] = s[a] + s[b] + x;
  s[d] = rotr32(s[d] ^ s[a], 16);
  s[c] = s[c] + s[d];
  s[b] = rotr32(s[b] ^ s[c], 12);
  s[a] = s[a] + s[b] + y;
  s[d] = rotr32(s[d] ^ s[a], 8);
  s[c] = s[c] + s[d];
  s[b] = rotr32(s[b] ^ s[c], 7);
}

/* cv := the first eight output words of compressing `block` under cv. */
static void compress_in_place(uint32_t cv[8], const uint8_t block[B3_BLOCK_LEN], uint8_t block_len, uint64_t counter, uint8_t flags) {
  uint32_t m[16];
  for (int i = 0; i < 16; i++) m[i] = load32(block + 4 * i);
  uint32_t s[16] = {cv[0], cv[1], cv[2], cv[3], cv[4], cv[5], cv[6], cv[7], IV[0], IV[1], IV[2], IV[3], (uint32_t)counter, (uint32_t)(counter >> 32), block_len, flags};
  for (int r = 0; r < 7; r++) {
    const uint8_t *o = MSG_SCHEDULE[r];
    g(s, 0, 4, 8, 12, m[o[0]], m[o[1]]);
    g(s, 1, 5, 9, 13, m[o[2]], m[o[3]]);
    g(s, 2, 6, 10, 14, m[o[4]], m[o[5]]);
    g(s, 3, 7, 11, 15, m[o[6]], m[o[7]]);
    g(s, 0, 5, 10, 15, m[o[8]], m[o[9]]);
    g(s, 1, 6, 11, 12, m[o[10]], m[o[11]]);
    g(s, 2, 7, 8, 13, m[o[12]], m[o[13]]);
    g(s, 3, 4, 9, 14, m[o[14]], m[o[15]]);
  }
  for (int i = 0; i < 8; i++) cv[i] = s[i] ^ s[i + 8];
}

static void store_cv(uint8_t out[B3_OUT_LEN], const uint32_t cv[8]) {
  for (int i = 0; i < 8; i++) store32(out + 4 * i, cv[i]);
}

/* One input of `blocks` whole blocks (a chunk, or a parent's one block), portably. */
static void hash_one(const uint8_t *input, size_t blocks, uint64_t counter, uint8_t flags, uint8_t flags_start, uint8_t flags_end, uint8_t out[B3_OUT_LEN]) {
  uint32_t cv[8];
  memcpy(cv, IV, sizeof cv);
  uint8_t f = flags | flags_start;
  for (size_t b = 0; b < blocks; b++) {
    if (b + 1 == blocks) f |= flags_end;
    compress_in_place(cv, input + b * B3_BLOCK_LEN, B3_BLOCK_LEN, counter, f);
    f = flags;
  }
  store_cv(out, cv);
}

#ifdef B3_X86
#define AVX2 __attribute__((target("avx2")))

AVX2 static inline __m256i vadd(__m256i a, __m256i b) { return _mm256_add_epi32(a, b); }
AVX2 static inline __m256i vxor(__m256i a, __m256i b) { return _mm256_xor_si256(a, b); }
AVX2 static inline __m256i rot16(__m256i x) {
  return _mm256_shuffle_epi8(x, _mm256_setr_epi8(2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13));
}
AVX2 static inline __m256i rot8(__m256i x) {
  return _mm256_shuffle_epi8(x, _mm256_setr_epi8(1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12, 1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12));
}
AVX2 static inline __m256i rot12(__m256i x) { return _mm256_or_si256(_mm256_srli_epi32(x, 12), _mm256_slli_epi32(x, 20)); }
AVX2 static inline __m256i rot7(__m256i x) { return _mm256_or_si256(_mm256_srli_epi32(x, 7), _mm256_slli_epi32(x, 25)); }

/* In place: row i, word j becomes row j, word i (8 x 8 words of 32 bits). */
AVX2 static inline void transpose8(__m256i v[8]) {
  __m256i t0 = _mm256_unpacklo_epi32(v[0], v[1]);
  __m256i t1 = _mm256_unpackhi_epi32(v[0], v[1]);
  __m256i t2 = _mm256_unpacklo_epi32(v[2], v[3]);
  __m256i t3 = _mm256_unpackhi_epi32(v[2], v[3]);
  __m256i t4 = _mm256_unpacklo_epi32(v[4], v[5]);
  __m256i t5 = _mm256_unpackhi_epi32(v[4], v[5]);
  __m256i t6 = _mm256_unpacklo_epi32(v[6], v[7]);
  __m256i t7 = _mm256_unpackhi_epi32(v[6], v[7]);
  __m256i u0 = _mm256_unpacklo_epi64(t0, t2);
  __m256i u1 = _mm256_unpackhi_epi64(t0, t2);
  __m256i u2 = _mm256_unpacklo_epi64(t1, t3);
  __m256i u3 = _mm256_unpackhi_epi64(t1, t3);
  __m256i u4 = _mm256_unpacklo_epi64(t4, t6);
  __m256i u5 = _mm256_unpackhi_epi64(t4, t6);
  __m256i u6 = _mm256_unpacklo_epi64(t5, t7);
  __m256i u7 = _mm256_unpackhi_epi64(t5, t7);
  v[0] = _mm256_permute2x128_si256(u0, u4, 0x20);
  v[1] = _mm256_permute2x128_si256(u1, u5, 0x20);
  v[2] = _mm256_permute2x128_si256(u2, u6, 0x20);
  v[3] = _mm256_permute2x128_si256(u3, u7, 0x20);
  v[4] = _mm256_permute2x128_si256(u0, u4, 0x31);
  v[5] = _mm256_permute2x128_si256(u1, u5, 0x31);
  v[6] = _mm256_permute2x128_si256(u2, u6, 0x31);
  v[7] = _mm256_permute2x128_si256(u3, u7, 0x31);
}

/*
 * One round over eight lanes: the four column steps side by side, then the four diagonal
 * steps, so that independent additions, xors and rotations can issue together. Always
 * inlined with a constant round number, so the schedule's word indices are constants.
 */
#define COLS(a0, a1, a2, a3, b0, b1, b2, b3, c0, c1, c2, c3, d0, d1, d2, d3, w)                                                  \
  do {                                                                                                                           \
    v[a0] = vadd(vadd(v[a0], v[b0]), m[o[w + 0]]);                                                                               \
    v[a1] = vadd(vadd(v[a1], v[b1]), m[o[w + 2]]);                                                                               \
    v[a2] = vadd(vadd(v[a2], v[b2]), m[o[w + 4]]);                                                                               \
    v[a3] = vadd(vadd(v[a3], v[b3]), m[o[w + 6]]);                                                                               \
    v[d0] = rot16(vxor(v[d0], v[a0]));                                                                                            \
    v[d1] = rot16(vxor(v[d1], v[a1]));                                                                                            \
    v[d2] = rot16(vxor(v[d2], v[a2]));                                                                                            \
    v[d3] = rot16(vxor(v[d3], v[a3]));                                                                                            \
    v[c0] = vadd(v[c0], v[d0]);                                                                                                   \
    v[c1] = vadd(v[c1], v[d1]);                                                                                                   \
    v[c2] = vadd(v[c2], v[d2]);                                                                                                   \
    v[c3] = vadd(v[c3], v[d3]);                                                                                                   \
    v[b0] = rot12(vxor(v[b0], v[c0]));                                                                                            \
    v[b1] = rot12(vxor(v[b1], v[c1]));                                                                                            \
    v[b2] = rot12(vxor(v[b2], v[c2]));                                                                                            \
    v[b3] = rot12(vxor(v[b3], v[c3]));                                                                                            \
    v[a0] = vadd(vadd(v[a0], v[b0]), m[o[w + 1]]);                                                                               \
    v[a1] = vadd(vadd(v[a1], v[b1]), m[o[w + 3]]);                                                                               \
    v[a2] = vadd(vadd(v[a2], v[b2]), m[o[w + 5]]);                                                                               \
    v[a3] = vadd(vadd(v[a3], v[b3]), m[o[w + 7]]);                                                                               \
    v[d0] = rot8(vxor(v[d0], v[a0]));                                                                                             \
    v[d1] = rot8(vxor(v[d1], v[a1]));                                                                                             \
    v[d2] = rot8(vxor(v[d2], v[a2]));                                                                                             \
    v[d3] = rot8(vxor(v[d3], v[a3]));                                                                                             \
    v[c0] = vadd(v[c0], v[d0]);                                                                                                   \
    v[c1] = vadd(v[c1], v[d1]);                                                                                                   \
    v[c2] = vadd(v[c2], v[d2]);                                                                                                   \
    v[c3] = vadd(v[c3], v[d3]);                                                                                                   \
    v[b0] = rot7(vxor(v[b0], v[c0]));                                                                                             \
    v[b1] = rot7(vxor(v[b1], v[c1]));                                                                                             \
    v[b2] = rot7(vxor(v[b2], v[c2]));                                                                                             \
    v[b3] = rot7(vxor(v[b3], v[c3]));                                                                                             \
  } while (0)

AVX2 __attribute__((always_inline)) static inline void round8(__m256i v[16], const __m256i m[16], const int r) {
  const uint8_t *o = MSG_SCHEDULE[r];
  COLS(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0);
  COLS(0, 1, 2, 3, 5, 6, 7, 4, 10, 11, 8, 9, 15, 12, 13, 14, 8);
}

/*
 * Eight inputs of `blocks` blocks each at once: lane i holds input i, whose counter is
 * counter + i when `increment` (chunks) or counter (parents). Writes eight digests (non-root
 * chaining values) to out, 32 bytes each. Reads every input block before writing out.
 */
AVX2 static void hash8_avx2(const uint8_t *const in[8], size_t blocks, uint64_t counter, int increment, uint8_t flags, uint8_t flags_start, uint8_t flags_end, uint8_t *out) {
  __m256i h[8];
  for (int i = 0; i < 8; i++) h[i] = _mm256_set1_epi32((int)IV[i]);
  uint32_t lo[8], hi[8];
  for (int i = 0; i < 8; i++) {
    uint64_t c = counter + (increment ? (uint64_t)i : 0);
    lo[i] = (uint32_t)c;
    hi[i] = (uint32_t)(c >> 32);
  }
  const __m256i ctr_lo = _mm256_loadu_si256((const __m256i *)lo);
  const __m256i ctr_hi = _mm256_loadu_si256((const __m256i *)hi);
  uint8_t f = flags | flags_start;
  for (size_t b = 0; b < blocks; b++) {
    if (b + 1 == blocks) f |= flags_end;
    const size_t off = b * B3_BLOCK_LEN;
    __m256i m[16];
    for (int i = 0; i < 8; i++) {
      m[i] = _mm256_loadu_si256((const __m256i *)(in[i] + off));
      m[i + 8] = _mm256_loadu_si256((const __m256i *)(in[i] + off + 32));
    }
    transpose8(m);
    transpose8(m + 8);
    __m256i v[16] = {h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7],
                     _mm256_set1_epi32((int)IV[0]), _mm256_set1_epi32((int)IV[1]), _mm256_set1_epi32((int)IV[2]), _mm256_set1_epi32((int)IV[3]),
                     ctr_lo, ctr_hi, _mm256_set1_epi32(B3_BLOCK_LEN), _mm256_set1_epi32(f)};
    round8(v, m, 0);
    round8(v, m, 1);
    round8(v, m, 2);
    round8(v, m, 3);
    round8(v, m, 4);
    round8(v, m, 5);
    round8(v, m, 6);
    for (int i = 0; i < 8; i++) h[i] = vxor(v[i], v[i + 8]);
    f = flags;
  }
  transpose8(h);
  for (int i = 0; i < 8; i++) _mm256_storeu_si256((__m256i *)(out + 32 * i), h[i]);
}
#endif

static int simd(void) {
  if (simd_on < 0) {
#ifdef B3_X86
    __builtin_cpu_init();
    simd_on = __builtin_cpu_supports("avx2") ? 1 : 0;
#else
    simd_on = 0;
#endif
  }
  return simd_on;
}

size_t b3_hasher_size(void) { return sizeof(struct b3_hasher); }

const char *b3_implementation(void) { return simd() ? "dits avx2" : "dits portable"; }

void b3_use_simd(int on) {
  simd_on = -1;
  if (!on || !simd()) simd_on = 0;
}

/* n inputs (pointers) of `blocks` blocks each: eight at a time where AVX2 is on. */
static void hash_many(const uint8_t *const *in, size_t n, size_t blocks, uint64_t counter, int increment, uint8_t flags, uint8_t flags_start, uint8_t flags_end, uint8_t *out) {
#ifdef B3_X86
  if (simd()) {
    while (n >= 8) {
      hash8_avx2(in, blocks, counter, increment, flags, flags_start, flags_end, out);
      in += 8;
      n -= 8;
      if (increment) counter += 8;
      out += 8 * B3_OUT_LEN;
    }
    if (n >= 3) {
      /* a partial group: padded with the last input, the extra lanes thrown away */
      const uint8_t *pad[8];
      uint8_t tmp[8 * B3_OUT_LEN];
      for (size_t i = 0; i < 8; i++) pad[i] = in[i < n ? i : n - 1];
      hash8_avx2(pad, blocks, counter, increment, flags, flags_start, flags_end, tmp);
      memcpy(out, tmp, n * B3_OUT_LEN);
      return;
    }
  }
#endif
  for (size_t i = 0; i < n; i++) hash_one(in[i], blocks, counter + (increment ? i : 0), flags, flags_start, flags_end, out + i * B3_OUT_LEN);
}

/* Chaining values of the n whole chunks at input, the first being chunk `counter`. */
static void chunk_cvs(const uint8_t *input, size_t n, uint64_t counter, uint8_t *out) {
  const uint8_t *ptrs[64];
  while (n > 0) {
    size_t k = n < 64 ? n : 64;
    for (size_t i = 0; i < k; i++) ptrs[i] = input + i * B3_CHUNK_LEN;
    hash_many(ptrs, k, B3_CHUNK_LEN / B3_BLOCK_LEN, counter, 1, 0, CHUNK_START, CHUNK_END, out);
    input += k * B3_CHUNK_LEN;
    counter += k;
    out += k * B3_OUT_LEN;
    n -= k;
  }
}

/* out[i] := parent of the pair cvs[2i], cvs[2i+1], for i < n (non-root). */
static void parent_cvs(const uint8_t *cvs, size_t n, uint8_t *out) {
  const uint8_t *ptrs[64];
  while (n > 0) {
    size_t k = n < 64 ? n : 64;
    for (size_t i = 0; i < k; i++) ptrs[i] = cvs + i * 2 * B3_OUT_LEN;
    hash_many(ptrs, k, 1, 0, 0, PARENT, 0, 0, out);
    cvs += k * 2 * B3_OUT_LEN;
    out += k * B3_OUT_LEN;
    n -= k;
  }
}

/*
 * Joins the n chaining values in a (n >= 1) level by level, pairs left to right, an odd one
 * out carried up unchanged: BLAKE3's tree. Stops at one value, or at two when `stop_at_two`
 * (the caller makes the root of those). b is scratch for n / 2 + 1 values. Returns where
 * the remaining values are (a or b).
 */
static uint8_t *reduce(uint8_t *a, uint8_t *b, size_t n, int stop_at_two, size_t *left) {
  uint8_t *cur = a, *next = b;
  size_t stop = stop_at_two ? 2 : 1;
  while (n > stop) {
    size_t p = n / 2;
    parent_cvs(cur, p, next);
    if (n & 1) memcpy(next + p * B3_OUT_LEN, cur + (n - 1) * B3_OUT_LEN, B3_OUT_LEN);
    n = p + (n & 1);
    uint8_t *t = cur;
    cur = next;
    next = t;
  }
  *left = n;
  return cur;
}

/* ---- chunk state: one chunk being absorbed ---- */

static void chunk_init(b3_chunk_state *c, uint64_t counter) {
  memcpy(c->cv, IV, sizeof c->cv);
  c->chunk_counter = counter;
  memset(c->buf, 0, sizeof c->buf);
  c->buf_len = 0;
  c->blocks_compressed = 0;
}

static size_t chunk_len(const b3_chunk_state *c) { return (size_t)B3_BLOCK_LEN * c->blocks_compressed + c->buf_len; }

static uint8_t chunk_start_flag(const b3_chunk_state *c) { return c->blocks_compressed == 0 ? CHUNK_START : 0; }

/* Absorbs len bytes; the chunk must not grow past B3_CHUNK_LEN. The last block stays buffered. */
static void chunk_update(b3_chunk_state *c, const uint8_t *input, size_t len) {
  while (len > 0) {
    if (c->buf_len == B3_BLOCK_LEN) {
      compress_in_place(c->cv, c->buf, B3_BLOCK_LEN, c->chunk_counter, chunk_start_flag(c));
      c->blocks_compressed++;
      c->buf_len = 0;
      memset(c->buf, 0, sizeof c->buf);
    }
    while (c->buf_len == 0 && len > B3_BLOCK_LEN) {
      compress_in_place(c->cv, input, B3_BLOCK_LEN, c->chunk_counter, chunk_start_flag(c));
      c->blocks_compressed++;
      input += B3_BLOCK_LEN;
      len -= B3_BLOCK_LEN;
    }
    size_t take = B3_BLOCK_LEN - c->buf_len;
    if (take > len) take = len;
    memcpy(c->buf + c->buf_len, input, take);
    c->buf_len = (uint8_t)(c->buf_len + take);
    input += take;
    len -= take;
  }
}

/* A compression not yet made, so that the ROOT flag can still be added. */
typedef struct {
  uint32_t cv[8];
  uint8_t block[B3_BLOCK_LEN];
  uint8_t block_len;
  uint64_t counter;
  uint8_t flags;
} b3_output;

static b3_output chunk_output(const b3_chunk_state *c) {
  b3_output o;
  memcpy(o.cv, c->cv, sizeof o.cv);
  memcpy(o.block, c->buf, sizeof o.block); /* zero past buf_len */
  o.block_len = c->buf_len;
  o.counter = c->chunk_counter;
  o.flags = chunk_start_flag(c) | CHUNK_END;
  return o;
}

static b3_output parent_output(const uint8_t left[B3_OUT_LEN], const uint8_t right[B3_OUT_LEN]) {
  b3_output o;
  memcpy(o.cv, IV, sizeof o.cv);
  memcpy(o.block, left, B3_OUT_LEN);
  memcpy(o.block + B3_OUT_LEN, right, B3_OUT_LEN);
  o.block_len = B3_BLOCK_LEN;
  o.counter = 0;
  o.flags = PARENT;
  return o;
}

static void output_write(const b3_output *o, uint8_t extra_flags, uint8_t out[B3_OUT_LEN]) {
  uint32_t cv[8];
  memcpy(cv, o->cv, sizeof cv);
  compress_in_place(cv, o->block, o->block_len, o->counter, o->flags | extra_flags);
  store_cv(out, cv);
}

/* ---- the incremental hasher ---- */

void b3_hasher_init(b3_hasher *h) {
  chunk_init(&h->chunk, 0);
  h->cv_stack_len = 0;
}

/*
 * Pushes the chaining value of a complete subtree of 2^k chunks that ends at chunk
 * `total` (more input follows), joining it with its left neighbours as binary addition
 * carries: the stack then holds one subtree per set bit of `total`.
 */
static void push_subtree(b3_hasher *h, const uint8_t cv[B3_OUT_LEN], uint64_t total, unsigned k) {
  memcpy(h->cv_stack + (size_t)h->cv_stack_len * B3_OUT_LEN, cv, B3_OUT_LEN);
  h->cv_stack_len++;
  uint64_t t = total >> k;
  while ((t & 1) == 0) {
    uint8_t *pair = h->cv_stack + (size_t)(h->cv_stack_len - 2) * B3_OUT_LEN;
    uint8_t joined[B3_OUT_LEN];
    b3_output o = parent_output(pair, pair + B3_OUT_LEN);
    output_write(&o, 0, joined);
    memcpy(pair, joined, B3_OUT_LEN);
    h->cv_stack_len--;
    t >>= 1;
  }
}

/* Chaining value (non-root) of the complete subtree of n = 2^k whole chunks at input. */
static void subtree_cv(const uint8_t *input, size_t n, uint64_t counter, uint8_t out[B3_OUT_LEN]) {
  uint8_t a[SUBTREE_MAX_CHUNKS * B3_OUT_LEN];
  uint8_t b[(SUBTREE_MAX_CHUNKS / 2 + 1) * B3_OUT_LEN];
  chunk_cvs(input, n, counter, a);
  size_t left;
  const uint8_t *cv = reduce(a, b, n, 0, &left);
  memcpy(out, cv, B3_OUT_LEN);
}

void b3_update(b3_hasher *h, const uint8_t *input, size_t len) {
  if (chunk_len(&h->chunk) > 0) {
    size_t take = B3_CHUNK_LEN - chunk_len(&h->chunk);
    if (take > len) take = len;
    chunk_update(&h->chunk, input, take);
    input += take;
    len -= take;
    if (len == 0) return;
    /* the chunk is full and more input follows: it is not the root */
    uint8_t cv[B3_OUT_LEN];
    b3_output o = chunk_output(&h->chunk);
    output_write(&o, 0, cv);
    uint64_t total = h->chunk.chunk_counter + 1;
    push_subtree(h, cv, total, 0);
    chunk_init(&h->chunk, total);
  }
  /* whole subtrees while more input follows them; the last chunk stays in the chunk state */
  while (len > B3_CHUNK_LEN) {
    const uint64_t counter = h->chunk.chunk_counter;
    const size_t avail = (len - 1) / B3_CHUNK_LEN;
    size_t n = 1;
    unsigned k = 0;
    while (n * 2 <= avail && n * 2 <= SUBTREE_MAX_CHUNKS && counter % (n * 2) == 0) {
      n *= 2;
      k++;
    }
    uint8_t cv[B3_OUT_LEN];
    if (n == 1) chunk_cvs(input, 1, counter, cv);
    else subtree_cv(input, n, counter, cv);
    push_subtree(h, cv, counter + n, k);
    chunk_init(&h->chunk, counter + n);
    input += n * B3_CHUNK_LEN;
    len -= n * B3_CHUNK_LEN;
  }
  if (len > 0) chunk_update(&h->chunk, input, len);
}

void b3_finalize(const b3_hasher *h, uint8_t out[B3_OUT_LEN]) {
  b3_output o = chunk_output(&h->chunk);
  size_t n = h->cv_stack_len;
  while (n > 0) {
    n--;
    uint8_t cv[B3_OUT_LEN];
    output_write(&o, 0, cv);
    o = parent_output(h->cv_stack + n * B3_OUT_LEN, cv);
  }
  output_write(&o, ROOT, out);
}

void b3_hash(const uint8_t *input, size_t len, uint8_t out[B3_OUT_LEN]) {
  if (len <= B3_CHUNK_LEN) {
    b3_chunk_state c;
    chunk_init(&c, 0);
    chunk_update(&c, input, len);
    b3_output o = chunk_output(&c);
    output_write(&o, ROOT, out);
    return;
  }
  if (len > ONESHOT_MAX) {
    b3_hasher h;
    b3_hasher_init(&h);
    b3_update(&h, input, len);
    b3_finalize(&h, out);
    return;
  }
  /* every chunk's chaining value (two or more chunks: none is the root), then the tree */
  uint8_t a[SUBTREE_MAX_CHUNKS * B3_OUT_LEN];
  uint8_t b[(SUBTREE_MAX_CHUNKS / 2 + 1) * B3_OUT_LEN];
  const size_t full = len / B3_CHUNK_LEN, rest = len % B3_CHUNK_LEN;
  chunk_cvs(input, full, 0, a);
  size_t n = full;
  if (rest) {
    b3_chunk_state c;
    chunk_init(&c, full);
    chunk_update(&c, input + full * B3_CHUNK_LEN, rest);
    b3_output o = chunk_output(&c);
    output_write(&o, 0, a + full * B3_OUT_LEN);
    n++;
  }
  size_t left;
  const uint8_t *pair = reduce(a, b, n, 1, &left);
  b3_output o = parent_output(pair, pair + B3_OUT_LEN);
  output_write(&o, ROOT, out);
}

/* ---- the tree's pieces (b3.h; b3-tree.c builds the leaves and roots on them) ---- */

void b3_chunk_cvs(const uint8_t *input, size_t n, uint64_t counter, uint8_t *out) { chunk_cvs(input, n, counter, out); }

void b3_parent_cvs(const uint8_t *cvs, size_t n, uint8_t *out) { parent_cvs(cvs, n, out); }

void b3_chunk_cv(const uint8_t *input, size_t len, uint64_t counter, int root, uint8_t out[B3_OUT_LEN]) {
  b3_chunk_state c;
  chunk_init(&c, counter);
  chunk_update(&c, input, len);
  b3_output o = chunk_output(&c);
  output_write(&o, root ? ROOT : 0, out);
}

void b3_parent_cv(const uint8_t left[B3_OUT_LEN], const uint8_t right[B3_OUT_LEN], int root, uint8_t out[B3_OUT_LEN]) {
  b3_output o = parent_output(left, right);
  output_write(&o, root ? ROOT : 0, out);
}
