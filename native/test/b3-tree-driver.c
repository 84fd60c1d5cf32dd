/*
 * Test driver for the leaf tree (native/b3-tree.c) over Dits' own BLAKE3 (native/b3.c),
 * used by src/hashing/tree-cv.test.ts:
 *   b3-tree-driver <data file> <simd 0|1>
 * then reads lines "<offset> <length> <step>" from stdin and prints, per line, in hex: the
 * tree hasher's digest of data[offset, offset + length) fed `step` bytes at a time (step 0:
 * all at once), the root of its leaves (b3_root_of; "-" when there are fewer than two), and
 * "leaves-ok" or "leaves-bad" (each leaf's b3_leaf_cv against the hasher's leaves).
 */
#include "../b3.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void hex(const uint8_t d[B3_OUT_LEN]) {
  for (int i = 0; i < B3_OUT_LEN; i++) printf("%02x", d[i]);
}

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  FILE *f = fopen(argv[1], "rb");
  if (!f) return 2;
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *data = malloc(size > 0 ? (size_t)size : 1);
  if (!data || fread(data, 1, (size_t)size, f) != (size_t)size) return 2;
  fclose(f);
  b3_use_simd(argv[2][0] == '1');
  long off, len, step;
  while (scanf("%ld %ld %ld", &off, &len, &step) == 3) {
    if (off < 0 || len < 0 || off + len > size) return 2;
    b3_tree *t = b3_tree_new();
    if (!t) return 2;
    for (long at = 0; at < len;) {
      long k = step > 0 && step < len - at ? step : len - at;
      if (!b3_tree_update(t, data + off + at, (size_t)k)) return 2;
      at += k;
    }
    uint8_t d[B3_OUT_LEN];
    b3_tree_finalize(t, d);
    hex(d);
    putchar(' ');
    size_t n = b3_tree_leaf_count(t);
    uint8_t *leaves = malloc(n * B3_OUT_LEN + 1);
    b3_tree_leaves(t, leaves);
    if (n >= 2 && b3_root_of(leaves, n, d)) hex(d);
    else putchar('-');
    int ok = 1;
    for (size_t i = 0; i < n; i++) {
      size_t start = i * B3_LEAF_LEN, l = (size_t)len - start < B3_LEAF_LEN ? (size_t)len - start : B3_LEAF_LEN;
      b3_leaf_cv(data + off + start, l, i, d);
      if (memcmp(d, leaves + i * B3_OUT_LEN, B3_OUT_LEN) != 0) ok = 0;
    }
    printf(" %s %s\n", ok ? "leaves-ok" : "leaves-bad", b3_implementation());
    free(leaves);
    b3_tree_free(t);
  }
  return 0;
}
