/*
 * Test driver for Dits' own BLAKE3 (native/b3.c), used by src/hashing/b3-own.test.ts:
 *   b3-driver <data file> <simd 0|1>
 * then reads lines "<offset> <length> <step>" from stdin and prints, per line, the one-shot
 * digest of data[offset, offset + length) and the digest of the same bytes fed to a
 * hasher `step` bytes at a time (step 0: all at once), in hex, separated by a space.
 */
#include "../b3.h"

#include <stdio.h>
#include <stdlib.h>

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
  b3_hasher *h = malloc(b3_hasher_size());
  long off, len, step;
  while (scanf("%ld %ld %ld", &off, &len, &step) == 3) {
    if (off < 0 || len < 0 || off + len > size) return 2;
    uint8_t d[B3_OUT_LEN];
    b3_hash(data + off, (size_t)len, d);
    hex(d);
    putchar(' ');
    b3_hasher_init(h);
    for (long at = 0; at < len;) {
      long k = step > 0 && step < len - at ? step : len - at;
      b3_update(h, data + off + at, (size_t)k);
      at += k;
    }
    b3_finalize(h, d);
    hex(d);
    printf(" %s\n", b3_implementation());
  }
  return 0;
}
