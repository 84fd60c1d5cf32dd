/*
 * b3.h on top of the BLAKE3 team's C library (blake3.h / blake3.c / blake3_dispatch.c and
 * the x86-64 assembly, compiled from Debian's librust-blake3-dev sources; licence CC0-1.0
 * or Apache-2.0). The library picks AVX-512, AVX2, SSE4.1 or SSE2 at run time.
 */
#include "b3.h"

#include "blake3.h"

struct b3_hasher {
  blake3_hasher inner;
};

size_t b3_hasher_size(void) { return sizeof(struct b3_hasher); }

void b3_hasher_init(b3_hasher *h) { blake3_hasher_init(&h->inner); }

void b3_update(b3_hasher *h, const uint8_t *input, size_t len) { blake3_hasher_update(&h->inner, input, len); }

void b3_finalize(const b3_hasher *h, uint8_t out[B3_OUT_LEN]) { blake3_hasher_finalize(&h->inner, out, B3_OUT_LEN); }

void b3_hash(const uint8_t *input, size_t len, uint8_t out[B3_OUT_LEN]) {
  blake3_hasher h;
  blake3_hasher_init(&h);
  blake3_hasher_update(&h, input, len);
  blake3_hasher_finalize(&h, out, B3_OUT_LEN);
}

const char *b3_implementation(void) { return "blake3-c " BLAKE3_VERSION_STRING; }

void b3_use_simd(int on) { (void)on; }

/* ---- the tree's pieces (b3.h), from the library's compression functions (blake3_impl.h) ---- */

#include "blake3_impl.h"

void b3_chunk_cvs(const uint8_t *input, size_t n, uint64_t counter, uint8_t *out) {
  const uint8_t *ptrs[64];
  while (n > 0) {
    size_t k = n < 64 ? n : 64;
    for (size_t i = 0; i < k; i++) ptrs[i] = input + i * BLAKE3_CHUNK_LEN;
    blake3_hash_many(ptrs, k, BLAKE3_CHUNK_LEN / BLAKE3_BLOCK_LEN, IV, counter, true, 0, CHUNK_START, CHUNK_END, out);
    input += k * BLAKE3_CHUNK_LEN;
    counter += k;
    out += k * BLAKE3_OUT_LEN;
    n -= k;
  }
}

void b3_parent_cvs(const uint8_t *cvs, size_t n, uint8_t *out) {
  const uint8_t *ptrs[64];
  while (n > 0) {
    size_t k = n < 64 ? n : 64;
    for (size_t i = 0; i < k; i++) ptrs[i] = cvs + i * 2 * BLAKE3_OUT_LEN;
    blake3_hash_many(ptrs, k, 1, IV, 0, false, PARENT, 0, 0, out);
    cvs += k * 2 * BLAKE3_OUT_LEN;
    out += k * BLAKE3_OUT_LEN;
    n -= k;
  }
}

void b3_chunk_cv(const uint8_t *input, size_t len, uint64_t counter, int root, uint8_t out[B3_OUT_LEN]) {
  uint32_t cv[8];
  memcpy(cv, IV, sizeof cv);
  /* every block but the last as it is; the last (1..64 bytes, or none for an empty chunk) padded with zeros */
  const size_t blocks = len == 0 ? 1 : (len + BLAKE3_BLOCK_LEN - 1) / BLAKE3_BLOCK_LEN;
  for (size_t b = 0; b + 1 < blocks; b++) blake3_compress_in_place(cv, input + b * BLAKE3_BLOCK_LEN, BLAKE3_BLOCK_LEN, counter, b == 0 ? CHUNK_START : 0);
  uint8_t last[BLAKE3_BLOCK_LEN] = {0};
  const size_t at = (blocks - 1) * BLAKE3_BLOCK_LEN;
  if (len > at) memcpy(last, input + at, len - at);
  uint8_t flags = (uint8_t)((blocks == 1 ? CHUNK_START : 0) | CHUNK_END | (root ? ROOT : 0));
  blake3_compress_in_place(cv, last, (uint8_t)(len - at), counter, flags);
  store_cv_words(out, cv);
}

void b3_parent_cv(const uint8_t left[B3_OUT_LEN], const uint8_t right[B3_OUT_LEN], int root, uint8_t out[B3_OUT_LEN]) {
  uint32_t cv[8];
  uint8_t block[BLAKE3_BLOCK_LEN];
  memcpy(cv, IV, sizeof cv);
  memcpy(block, left, BLAKE3_OUT_LEN);
  memcpy(block + BLAKE3_OUT_LEN, right, BLAKE3_OUT_LEN);
  blake3_compress_in_place(cv, block, BLAKE3_BLOCK_LEN, 0, (uint8_t)(PARENT | (root ? ROOT : 0)));
  store_cv_words(out, cv);
}
