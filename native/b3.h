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

/*
 * The tree's pieces, for the chaining values of whole subtrees (b3-tree.c builds on them):
 * a chunk is 1 KiB, chunk `counter` starts at byte 1024 * counter of the whole input.
 *
 * b3_chunk_cvs: the chaining values (non-root) of the n whole chunks at input, the first
 *   being chunk `counter`, into out (32 bytes each).
 * b3_parent_cvs: out[i] := the parent (non-root) of cvs[2i], cvs[2i + 1], for i < n; out
 *   must not overlap cvs.
 * b3_chunk_cv: one chunk of len <= 1024 bytes (the last chunk of an input may be shorter):
 *   its chaining value, or with `root` (then counter must be 0) the hash of an input that
 *   is this one chunk.
 * b3_parent_cv: the parent of left and right; with `root`, the hash of the whole input.
 */
#define B3_CHUNK_LEN 1024
void b3_chunk_cvs(const uint8_t *input, size_t n, uint64_t counter, uint8_t *out);
void b3_parent_cvs(const uint8_t *cvs, size_t n, uint8_t *out);
void b3_chunk_cv(const uint8_t *input, size_t len, uint64_t counter, int root, uint8_t out[B3_OUT_LEN]);
void b3_parent_cv(const uint8_t left[B3_OUT_LEN], const uint8_t right[B3_OUT_LEN], int root, uint8_t out[B3_OUT_LEN]);

/*
 * b3-tree.c (over the four above, so the same for both implementations): a file hasher
 * that also keeps the chaining value of every 4 MiB leaf (4096 chunks, leaf i = bytes
 * [4i MiB, 4(i + 1) MiB), the last one possibly shorter). Leaves are subtrees of BLAKE3's
 * tree of any input over 4 MiB, so after an edit in place the hash is found again from
 * the leaves that changed and the kept ones (b3_root_of).
 */
#define B3_LEAF_CHUNKS 4096
#define B3_LEAF_LEN ((size_t)B3_LEAF_CHUNKS * B3_CHUNK_LEN)
typedef struct b3_tree b3_tree;
/* NULL when out of memory. */
b3_tree *b3_tree_new(void);
void b3_tree_free(b3_tree *t);
/* Feeds bytes in order; 0 when out of memory (the leaves' list grows). */
int b3_tree_update(b3_tree *t, const uint8_t *input, size_t len);
/* The hash of everything fed so far (the hasher may be fed more afterwards). */
void b3_tree_finalize(const b3_tree *t, uint8_t out[B3_OUT_LEN]);
/*
 * The leaves' chaining values of everything fed so far, 32 bytes each, into out (room
 * for b3_tree_leaf_count); none (0) for an input of 4 MiB or less, which is its own root.
 */
size_t b3_tree_leaf_count(const b3_tree *t);
void b3_tree_leaves(const b3_tree *t, uint8_t *out);
/* The chaining value of one leaf (1 <= len <= B3_LEAF_LEN) of an input over 4 MiB. */
void b3_leaf_cv(const uint8_t *input, size_t len, uint64_t leaf_index, uint8_t out[B3_OUT_LEN]);
/* The hash of an input over 4 MiB from its n >= 2 leaves' chaining values; 0 when out of memory. */
int b3_root_of(const uint8_t *leaves, size_t n, uint8_t out[B3_OUT_LEN]);

#endif
