/*
 * A BLAKE3 file hasher that keeps the chaining value of every 4 MiB leaf (b3.h), built on
 * the implementation's tree pieces (b3_chunk_cvs, b3_parent_cvs, b3_chunk_cv,
 * b3_parent_cv), so it hashes at the same speed as b3_update: the same compressions, the
 * chunks many at a time.
 *
 * BLAKE3's tree over n chunks puts the largest power of two below n on the left; every
 * split of an input over 4 MiB is then at a multiple of 4096 chunks, so each whole 4 MiB
 * stretch at a 4 MiB boundary is one subtree, and the rest at the end (under 4 MiB) is
 * another: the leaves. Above them the tree is BLAKE3's over the leaves, which is also
 * what joining them level by level, pairs left to right, an odd one carried up, gives.
 */
#include "b3.h"

#include <stdlib.h>
#include <string.h>

struct b3_tree {
  /* finished leaves (more input followed them: never the root) */
  uint8_t *leaves;
  size_t leaf_count, leaf_cap;
  /* chunk chaining values of the leaf being filled: chunks leaf_count * B3_LEAF_CHUNKS + i */
  uint8_t cvs[B3_LEAF_CHUNKS * B3_OUT_LEN];
  size_t cv_count;
  /* scratch for joining a leaf */
  uint8_t scratch[(B3_LEAF_CHUNKS / 2 + 1) * B3_OUT_LEN];
  /* the last chunk's bytes, hashed only once more input shows it is not the last */
  uint8_t buf[B3_CHUNK_LEN];
  size_t buf_len;
};

b3_tree *b3_tree_new(void) {
  b3_tree *t = (b3_tree *)malloc(sizeof *t);
  if (t == NULL) return NULL;
  t->leaves = NULL;
  t->leaf_count = t->leaf_cap = t->cv_count = t->buf_len = 0;
  return t;
}

void b3_tree_free(b3_tree *t) {
  if (t == NULL) return;
  free(t->leaves);
  free(t);
}

/*
 * Joins the n chaining values in a (n >= 1) level by level, pairs left to right, an odd
 * one carried up: down to one, or to two with `stop_at_two` (the caller makes the root of
 * those). b is scratch for n / 2 + 1 values. Returns where the result is (a or b).
 */
static uint8_t *reduce(uint8_t *a, uint8_t *b, size_t n, int stop_at_two) {
  uint8_t *cur = a, *next = b;
  const size_t stop = stop_at_two ? 2 : 1;
  while (n > stop) {
    const size_t p = n / 2;
    b3_parent_cvs(cur, p, next);
    if (n & 1) memcpy(next + p * B3_OUT_LEN, cur + (n - 1) * B3_OUT_LEN, B3_OUT_LEN);
    n = p + (n & 1);
    uint8_t *x = cur;
    cur = next;
    next = x;
  }
  return cur;
}

/* The root of n >= 2 chaining values (a is overwritten, b is scratch for n / 2 + 1). */
static void root_of(uint8_t *a, uint8_t *b, size_t n, uint8_t out[B3_OUT_LEN]) {
  const uint8_t *pair = reduce(a, b, n, 1);
  b3_parent_cv(pair, pair + B3_OUT_LEN, 1, out);
}

/*
 * Room for a leaf's chunk values and the scratch to join them (192 KiB: on the heap, not
 * the stack of whichever thread hashes). A few hundred kilobytes: not expected to fail.
 */
static uint8_t *leaf_room(void) {
  uint8_t *a = (uint8_t *)malloc((size_t)(B3_LEAF_CHUNKS + B3_LEAF_CHUNKS / 2 + 1) * B3_OUT_LEN);
  if (a == NULL) abort();
  return a;
}
#define LEAF_SCRATCH(a) ((a) + (size_t)B3_LEAF_CHUNKS * B3_OUT_LEN)

/* The chaining value of the n <= B3_LEAF_CHUNKS chunk values in cvs (copied: cvs stays). */
static void leaf_of(const uint8_t *cvs, size_t n, uint8_t out[B3_OUT_LEN]) {
  uint8_t *a = leaf_room();
  memcpy(a, cvs, n * B3_OUT_LEN);
  memcpy(out, reduce(a, LEAF_SCRATCH(a), n, 0), B3_OUT_LEN);
  free(a);
}

static int push_leaf(b3_tree *t, const uint8_t cv[B3_OUT_LEN]) {
  if (t->leaf_count == t->leaf_cap) {
    size_t cap = t->leaf_cap ? t->leaf_cap * 2 : 256;
    uint8_t *p = (uint8_t *)realloc(t->leaves, cap * B3_OUT_LEN);
    if (p == NULL) return 0;
    t->leaves = p;
    t->leaf_cap = cap;
  }
  memcpy(t->leaves + t->leaf_count * B3_OUT_LEN, cv, B3_OUT_LEN);
  t->leaf_count++;
  return 1;
}

/* A full leaf with more input after it: joined into its chaining value. */
static int close_leaf(b3_tree *t) {
  const uint8_t *cv = reduce(t->cvs, t->scratch, B3_LEAF_CHUNKS, 0);
  uint8_t leaf[B3_OUT_LEN];
  memcpy(leaf, cv, B3_OUT_LEN);
  if (!push_leaf(t, leaf)) return 0;
  t->cv_count = 0;
  return 1;
}

static uint64_t next_chunk(const b3_tree *t) { return (uint64_t)t->leaf_count * B3_LEAF_CHUNKS + t->cv_count; }

int b3_tree_update(b3_tree *t, const uint8_t *input, size_t len) {
  if (len == 0) return 1;
  if (t->buf_len > 0) {
    size_t take = B3_CHUNK_LEN - t->buf_len;
    if (take > len) take = len;
    memcpy(t->buf + t->buf_len, input, take);
    t->buf_len += take;
    input += take;
    len -= take;
    if (len == 0) return 1;
    /* the buffered chunk is full and more input follows */
    if (t->cv_count == B3_LEAF_CHUNKS && !close_leaf(t)) return 0;
    b3_chunk_cv(t->buf, B3_CHUNK_LEN, next_chunk(t), 0, t->cvs + t->cv_count * B3_OUT_LEN);
    t->cv_count++;
    t->buf_len = 0;
  }
  /* whole chunks while more input follows them, up to each leaf's end */
  while (len > B3_CHUNK_LEN) {
    if (t->cv_count == B3_LEAF_CHUNKS && !close_leaf(t)) return 0;
    size_t n = (len - 1) / B3_CHUNK_LEN;
    if (n > B3_LEAF_CHUNKS - t->cv_count) n = B3_LEAF_CHUNKS - t->cv_count;
    b3_chunk_cvs(input, n, next_chunk(t), t->cvs + t->cv_count * B3_OUT_LEN);
    t->cv_count += n;
    input += n * B3_CHUNK_LEN;
    len -= n * B3_CHUNK_LEN;
  }
  memcpy(t->buf, input, len);
  t->buf_len = len;
  return 1;
}

/*
 * The last leaf (the buffered chunk with the leaf being filled, or alone when that one is
 * full) into last, and whether a full leaf comes before it (into full). Only for inputs
 * over one chunk.
 */
static void last_leaves(const b3_tree *t, uint8_t full[B3_OUT_LEN], int *has_full, uint8_t last[B3_OUT_LEN]) {
  uint8_t chunk[B3_OUT_LEN];
  b3_chunk_cv(t->buf, t->buf_len, next_chunk(t), 0, chunk);
  *has_full = t->cv_count == B3_LEAF_CHUNKS;
  if (*has_full) {
    leaf_of(t->cvs, B3_LEAF_CHUNKS, full);
    memcpy(last, chunk, B3_OUT_LEN);
    return;
  }
  uint8_t *a = leaf_room();
  memcpy(a, t->cvs, t->cv_count * B3_OUT_LEN);
  memcpy(a + t->cv_count * B3_OUT_LEN, chunk, B3_OUT_LEN);
  memcpy(last, reduce(a, LEAF_SCRATCH(a), t->cv_count + 1, 0), B3_OUT_LEN);
  free(a);
}

size_t b3_tree_leaf_count(const b3_tree *t) {
  if (t->leaf_count == 0 && t->cv_count < B3_LEAF_CHUNKS) return 0; /* 4 MiB or less */
  return t->leaf_count + (t->cv_count == B3_LEAF_CHUNKS ? 2 : 1);
}

void b3_tree_leaves(const b3_tree *t, uint8_t *out) {
  if (b3_tree_leaf_count(t) == 0) return;
  memcpy(out, t->leaves, t->leaf_count * B3_OUT_LEN);
  out += t->leaf_count * B3_OUT_LEN;
  uint8_t full[B3_OUT_LEN];
  int has_full;
  last_leaves(t, full, &has_full, out + (t->cv_count == B3_LEAF_CHUNKS ? B3_OUT_LEN : 0));
  if (has_full) memcpy(out, full, B3_OUT_LEN);
}

void b3_tree_finalize(const b3_tree *t, uint8_t out[B3_OUT_LEN]) {
  if (t->leaf_count == 0 && t->cv_count == 0) {
    b3_chunk_cv(t->buf, t->buf_len, 0, 1, out); /* one chunk (or none): it is the root */
    return;
  }
  const size_t n = b3_tree_leaf_count(t);
  if (n == 0) {
    /* one leaf or less, over one chunk: the chunks' tree */
    uint8_t *a = leaf_room();
    memcpy(a, t->cvs, t->cv_count * B3_OUT_LEN);
    b3_chunk_cv(t->buf, t->buf_len, t->cv_count, 0, a + t->cv_count * B3_OUT_LEN);
    root_of(a, LEAF_SCRATCH(a), t->cv_count + 1, out);
    free(a);
    return;
  }
  uint8_t *a = (uint8_t *)malloc(n * B3_OUT_LEN + (n / 2 + 1) * B3_OUT_LEN);
  if (a == NULL) abort(); /* 32 bytes per 4 MiB hashed: not expected to fail */
  b3_tree_leaves(t, a);
  root_of(a, a + n * B3_OUT_LEN, n, out);
  free(a);
}

void b3_leaf_cv(const uint8_t *input, size_t len, uint64_t leaf_index, uint8_t out[B3_OUT_LEN]) {
  uint8_t *a = leaf_room();
  const uint64_t counter = leaf_index * B3_LEAF_CHUNKS;
  /* whole chunks but the last; the last (1..1024 bytes) on its own */
  const size_t chunks = (len + B3_CHUNK_LEN - 1) / B3_CHUNK_LEN;
  b3_chunk_cvs(input, chunks - 1, counter, a);
  b3_chunk_cv(input + (chunks - 1) * B3_CHUNK_LEN, len - (chunks - 1) * B3_CHUNK_LEN, counter + chunks - 1, 0, a + (chunks - 1) * B3_OUT_LEN);
  memcpy(out, reduce(a, LEAF_SCRATCH(a), chunks, 0), B3_OUT_LEN);
  free(a);
}

int b3_root_of(const uint8_t *leaves, size_t n, uint8_t out[B3_OUT_LEN]) {
  uint8_t *a = (uint8_t *)malloc(n * B3_OUT_LEN + (n / 2 + 1) * B3_OUT_LEN);
  if (a == NULL) return 0;
  memcpy(a, leaves, n * B3_OUT_LEN);
  root_of(a, a + n * B3_OUT_LEN, n, out);
  free(a);
  return 1;
}
