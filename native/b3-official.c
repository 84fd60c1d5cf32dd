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
