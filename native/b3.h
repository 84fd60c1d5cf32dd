/*
 * BLAKE3-256 (hash mode) for the addon, from one of two implementations chosen at build
 * time (scripts/build-native.mjs):
 *
 * - b3-official.c: the BLAKE3 team's C library with its x86-64 assembly, compiled from the
 *   sources Debian ships in librust-blake3-dev (about 3.5 GB/s on one core here);
 * - b3.c: Dits' own, written from the specification, portable C plus an eight-lane AVX2
 *   routine in intrinsics (about 2 GB/s here), for machines without those sources.
 *
 * Either is checked against @napi-rs/blake-hash when the addon loads (src/hashing/blake3.ts).
 */
#ifndef DITS_B3_H
#define DITS_B3_H

#include <stddef.h>
#include <stdint.h>

#define B3_OUT_LEN 32

/* An incremental hasher: feed bytes in order with b3_update, read with b3_finalize. */
typedef struct b3_hasher b3_hasher;

/* Bytes to allocate for a hasher (any malloc'd block is suitably aligned). */
size_t b3_hasher_size(void);
void b3_hasher_init(b3_hasher *h);
void b3_update(b3_hasher *h, const uint8_t *input, size_t len);
/* The digest of everything fed so far; the hasher may be fed more afterwards. */
void b3_finalize(const b3_hasher *h, uint8_t out[B3_OUT_LEN]);
/* One-shot BLAKE3-256 of input[0, len). */
void b3_hash(const uint8_t *input, size_t len, uint8_t out[B3_OUT_LEN]);
/* Which implementation and instruction set hash: for diagnostics and tests. */
const char *b3_implementation(void);
/* Own implementation only: turns the AVX2 routine off (0) or back on where the CPU has it (1). */
void b3_use_simd(int on);

#endif
