/*
 * Dits FastCDC scanner, native build. Must give exactly the cuts of
 * src/chunking/scan-js.ts (the contract and the cut rule are documented there and in
 * src/chunking/params.ts); the JavaScript side checks agreement when it loads this addon.
 *
 * Exports:
 *   init(gear: Uint32Array(256))   the gear table, from src/chunking/gear.ts (one source)
 *   scan(data, start, end, state: Float64Array(3), cfg: Uint32Array(6), out: Float64Array) -> n
 *   pipeSize(fd, bytes) -> the pipe's new capacity, or -1 (not a pipe, not Linux, refused)
 *   pageOffset(view)    -> where a typed array's bytes start within a 4 KiB page (0..4095)
 *   copy(src, dst, at, stream?) -> copies all of src into dst at byte `at` (memmove; with
 *                       `stream`, streaming stores); returns src's length
 *   readable(fd)        -> bytes a pipe holds that a read would return at once, or -1 (FIONREAD)
 *   preallocate(fd, offset, length) -> 0, or an errno (fallocate, KEEP_SIZE: the file's size stays)
 *   b3(data) -> Buffer(32)                  BLAKE3-256 (b3.h)
 *   b3Pieces(buf, base, starts, lengths, from, count, ids, file?)
 *                       hashes pieces [starts[k] - base, + lengths[k]) of buf into ids (32
 *                       bytes each, piece `from` first); with `file`, also feeds each piece,
 *                       in order, to that hasher
 *   b3Hasher() -> hasher; b3Update(hasher, data); b3Digest(hasher) -> Buffer(32)
 *   b3TreeHasher() -> a hasher (fed and read as b3Hasher's) that also keeps the chaining
 *                       value of every 4 MiB leaf; b3Leaves(hasher) -> Buffer(32 per leaf);
 *   b3LeafCv(data, leafIndex) -> Buffer(32); b3RootOf(leaves) -> Buffer(32) (b3-tree.c)
 *   b3Impl(simd?)       -> which BLAKE3 implementation hashes; `simd` = false turns the
 *                       own implementation's AVX2 routine off (tests)
 *   readHash(fd, buf, position, starts, lengths, count, ids) -> Promise<n>
 *                       on a libuv pool thread: reads buf.length bytes of fd at `position`
 *                       into buf (pread, to the end of the file at most), then, when all of
 *                       them came, hashes pieces [starts[k], + lengths[k]) of buf into ids;
 *                       resolves with the bytes read, or -errno
 *
 * One call scans a whole buffer and returns every cut in it, so JS and C cross once per
 * push, not once per chunk. Plain N-API (node_api.h), no dependencies.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* F_SETPIPE_SZ */
#endif
#include <node_api.h>
#include "b3.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#if defined(__x86_64__)
#include <emmintrin.h>
#endif
#ifdef __linux__
#include <fcntl.h>
#include <sys/ioctl.h>
#endif
#ifndef _WIN32
#include <unistd.h> /* pread */
#endif

typedef struct {
  uint32_t gear[256];
  int ready;
} chunker_data;

#define THROW(env, msg)                   \
  do {                                    \
    napi_throw_type_error(env, NULL, msg); \
    return NULL;                          \
  } while (0)

static void free_data(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

static int get_typed(napi_env env, napi_value v, napi_typedarray_type want, void **ptr, size_t *len) {
  bool is_ta = false;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta) return 0;
  napi_typedarray_type type;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, v, &type, len, ptr, &ab, &off) != napi_ok) return 0;
  return type == want;
}

static napi_value js_init(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  void *p;
  size_t n;
  if (argc < 1 || !get_typed(env, argv[0], napi_uint32_array, &p, &n) || n != 256) THROW(env, "init(gear): expected a Uint32Array of 256 words");
  chunker_data *d = NULL;
  napi_get_instance_data(env, (void **)&d);
  if (d == NULL) {
    d = (chunker_data *)calloc(1, sizeof(chunker_data));
    if (d == NULL) THROW(env, "init: out of memory");
    if (napi_set_instance_data(env, d, free_data, NULL) != napi_ok) {
      free(d);
      THROW(env, "init: cannot set instance data");
    }
  }
  memcpy(d->gear, p, sizeof d->gear);
  d->ready = 1;
  return NULL;
}

/*
 * Hashes data[j, lim) and returns the index of the first byte after which
 * (h & mask) == 0, or lim if none. mask == 0 means "hash only". *hp carries the hash.
 * The hash recurrence h = 2h + G[b] is one lea per byte; the loop is unrolled by four
 * with one well-predicted branch per group, then the exact byte is found.
 */
static inline size_t scan_mask(const uint8_t *data, size_t j, size_t lim, uint32_t *hp, uint32_t mask, const uint32_t *G) {
  uint32_t h = *hp;
  if (mask == 0) {
    for (; j < lim; j++) h = (h << 1) + G[data[j]];
    *hp = h;
    return lim;
  }
  while (j + 4 <= lim) {
    uint32_t h0 = (h << 1) + G[data[j]];
    uint32_t h1 = (h0 << 1) + G[data[j + 1]];
    uint32_t h2 = (h1 << 1) + G[data[j + 2]];
    uint32_t h3 = (h2 << 1) + G[data[j + 3]];
    if (__builtin_expect(!(h0 & mask) | !(h1 & mask) | !(h2 & mask) | !(h3 & mask), 0)) {
      if (!(h0 & mask)) { *hp = h0; return j; }
      if (!(h1 & mask)) { *hp = h1; return j + 1; }
      if (!(h2 & mask)) { *hp = h2; return j + 2; }
      *hp = h3;
      return j + 3;
    }
    h = h3;
    j += 4;
  }
  for (; j < lim; j++) {
    h = (h << 1) + G[data[j]];
    if (!(h & mask)) { *hp = h; return j; }
  }
  *hp = h;
  return lim;
}

static napi_value js_scan(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  chunker_data *d = NULL;
  napi_get_instance_data(env, (void **)&d);
  if (d == NULL || !d->ready) THROW(env, "scan: call init(gear) first");
  if (argc < 6) THROW(env, "scan(data, start, end, state, cfg, out): 6 arguments expected");

  void *vdata, *vstate, *vcfg, *vout;
  size_t dlen, slen, clen, olen;
  if (!get_typed(env, argv[0], napi_uint8_array, &vdata, &dlen)) THROW(env, "scan: data must be a Uint8Array or Buffer");
  if (!get_typed(env, argv[3], napi_float64_array, &vstate, &slen) || slen < 3) THROW(env, "scan: state must be a Float64Array(3)");
  if (!get_typed(env, argv[4], napi_uint32_array, &vcfg, &clen) || clen < 6) THROW(env, "scan: cfg must be a Uint32Array(6)");
  if (!get_typed(env, argv[5], napi_float64_array, &vout, &olen)) THROW(env, "scan: out must be a Float64Array");
  double dstart, dend;
  if (napi_get_value_double(env, argv[1], &dstart) != napi_ok || napi_get_value_double(env, argv[2], &dend) != napi_ok) THROW(env, "scan: start and end must be numbers");
  if (!(dstart >= 0 && dstart <= dend && dend <= (double)dlen)) THROW(env, "scan: bad range");

  const uint8_t *data = (const uint8_t *)vdata;
  double *state = (double *)vstate;
  const uint32_t *cfg = (const uint32_t *)vcfg;
  double *out = (double *)vout;
  const uint32_t *G = d->gear;
  const size_t min = cfg[0], avg = cfg[1], max = cfg[2], hash_start = cfg[5];
  const uint32_t mask_s = cfg[3], mask_l = cfg[4];
  if (!(min >= 1 && min <= avg && avg <= max)) THROW(env, "scan: bad cfg");
  if (!(state[0] >= 0 && state[0] < (double)max)) THROW(env, "scan: bad state");

  size_t end = (size_t)dend;
  size_t i = (size_t)dstart;
  size_t pos = (size_t)state[0];
  uint32_t h = (uint32_t)state[1];
  size_t n = 0;
  /* Positions are kept relative to the chunk start (rel = index - chunk start) because
     the chunk may have begun in an earlier buffer; bytes are read as q[rel - pos], and
     rel >= pos always holds where a byte is read. */
  while (i < end) {
    const size_t avail = end - i; /* bytes left, starting at rel = pos */
    size_t rel = pos;
    size_t rel_end = pos + avail; /* relative position of `end` */
    size_t cut_rel = 0;           /* chunk length if cut, 0 if not */
    const uint8_t *q = data + i; /* q[rel - pos] is the byte at relative position rel */
    if (rel < hash_start) rel = hash_start;
    size_t lim = min - 1 < rel_end ? min - 1 : rel_end;
    if (rel < lim) rel = pos + scan_mask(q, rel - pos, lim - pos, &h, 0, G);
    lim = avg - 1 < rel_end ? avg - 1 : rel_end;
    if (rel < lim) {
      size_t r = pos + scan_mask(q, rel - pos, lim - pos, &h, mask_s, G);
      if (r < lim) cut_rel = r + 1;
      rel = r;
    }
    if (cut_rel == 0) {
      lim = max - 1 < rel_end ? max - 1 : rel_end;
      if (rel < lim) {
        size_t r = pos + scan_mask(q, rel - pos, lim - pos, &h, mask_l, G);
        if (r < lim) cut_rel = r + 1;
        rel = r;
      }
      if (cut_rel == 0 && rel == max - 1 && rel < rel_end) cut_rel = max;
    }
    if (cut_rel == 0) {
      pos = rel_end;
      i = end;
      break;
    }
    i = i - pos + cut_rel;
    out[n++] = (double)i;
    pos = 0;
    h = 0;
    if (n == olen) break;
  }
  state[0] = (double)pos;
  state[1] = (double)h;
  state[2] = (double)i;
  napi_value result;
  napi_create_uint32(env, (uint32_t)n, &result);
  return result;
}

/*
 * Grows a pipe's buffer (Linux F_SETPIPE_SZ). Git writes a filter's input in 64 KiB
 * packets into a 64 KiB pipe, so without this git and the filter take turns instead of
 * working at the same time.
 */
static napi_value js_pipe_size(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd = -1, bytes = 0;
  int32_t got = -1;
  if (argc == 2 && napi_get_value_int32(env, argv[0], &fd) == napi_ok && napi_get_value_int32(env, argv[1], &bytes) == napi_ok) {
#if defined(__linux__) && defined(F_SETPIPE_SZ)
    got = fcntl(fd, F_SETPIPE_SZ, bytes);
#endif
  }
  napi_value result;
  napi_create_int32(env, got, &result);
  return result;
}

/*
 * The address of a typed array's first byte modulo 4096. JavaScript cannot see addresses,
 * but the kernel's copies into user memory (read(2) from the page cache or a pipe) run
 * several times slower on some CPUs when the destination is not suitably aligned, so
 * buffers that receive big reads are placed on a page boundary (src/store/aligned-buffer.ts).
 */
static napi_value js_page_offset(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  void *p;
  size_t n;
  if (argc < 1 || !get_typed(env, argv[0], napi_uint8_array, &p, &n)) THROW(env, "pageOffset(view): expected a Uint8Array or Buffer");
  napi_value result;
  napi_create_uint32(env, (uint32_t)((uintptr_t)p & 4095u), &result);
  return result;
}

/*
 * Copies with streaming stores: the destination's cache lines go to memory instead of
 * staying in this core's cache. For bytes another thread reads next (ingest's shared
 * slots, filled from git's pipe by the main thread and read by the cutting workers and by
 * the pack writes): measured here, the kernel's copies of such bytes into the page cache
 * took 1.6 s of system time per GiB when they had to come out of the main thread's cache,
 * 0.3 s after streaming stores.
 */
static void copy_streaming(uint8_t *d, const uint8_t *s, size_t n) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  size_t i = 0;
  while (((uintptr_t)(d + i) & 15) && i < n) {
    d[i] = s[i];
    i++;
  }
  for (; i + 64 <= n; i += 64) {
    __m128i a = _mm_loadu_si128((const __m128i *)(s + i));
    __m128i b = _mm_loadu_si128((const __m128i *)(s + i + 16));
    __m128i c = _mm_loadu_si128((const __m128i *)(s + i + 32));
    __m128i e = _mm_loadu_si128((const __m128i *)(s + i + 48));
    _mm_stream_si128((__m128i *)(d + i), a);
    _mm_stream_si128((__m128i *)(d + i + 16), b);
    _mm_stream_si128((__m128i *)(d + i + 32), c);
    _mm_stream_si128((__m128i *)(d + i + 48), e);
  }
  _mm_sfence(); /* the stores are visible before the caller tells another thread */
  for (; i < n; i++) d[i] = s[i];
#else
  memcpy(d, s, n);
#endif
}

/*
 * memmove between typed arrays. V8 copies out of a SharedArrayBuffer with relaxed atomic
 * word moves (so that racing threads stay defined behaviour), measured at 1.3 GB/s here
 * against 5+ GB/s for memmove; ingest's slots are shared with the cutting worker, and the
 * caller guarantees no thread writes them while they are copied. With `stream` (and
 * non-overlapping ranges) the copy uses streaming stores (copy_streaming).
 */
static napi_value js_copy(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  void *src, *dst;
  size_t slen, dlen;
  double at;
  if (argc < 3 || !get_typed(env, argv[0], napi_uint8_array, &src, &slen) || !get_typed(env, argv[1], napi_uint8_array, &dst, &dlen) ||
      napi_get_value_double(env, argv[2], &at) != napi_ok)
    THROW(env, "copy(src, dst, at, stream?): expected two Uint8Arrays and an offset");
  if (!(at >= 0 && at + (double)slen <= (double)dlen)) THROW(env, "copy: the source does not fit at that offset");
  bool stream = false;
  if (argc >= 4) napi_get_value_bool(env, argv[3], &stream);
  uint8_t *d = (uint8_t *)dst + (size_t)at;
  const uint8_t *sp = (const uint8_t *)src;
  if (slen) {
    if (stream && (d + slen <= sp || sp + slen <= d)) copy_streaming(d, sp, slen);
    else memmove(d, sp, slen);
  }
  napi_value result;
  napi_create_double(env, (double)slen, &result);
  return result;
}

/* Bytes waiting in a pipe (FIONREAD), so a reader can gather them into one buffer. */
static napi_value js_readable(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd = -1;
  int got = -1;
  if (argc == 1 && napi_get_value_int32(env, argv[0], &fd) == napi_ok) {
#if defined(__linux__) && defined(FIONREAD)
    int n = 0;
    if (ioctl(fd, FIONREAD, &n) == 0) got = n;
#endif
  }
  napi_value result;
  napi_create_int32(env, got, &result);
  return result;
}

/*
 * Reserves disk blocks for [offset, offset + length) without changing the file's size
 * (fallocate with FALLOC_FL_KEEP_SIZE). Packs are appended to in 2 MiB writes; with the
 * blocks reserved ahead, ext4 does its per-block allocation work once per reservation
 * instead of on every write (measured: a quarter less system time per GiB written). The
 * caller frees what it did not use by truncating the file to its size when it closes it.
 * Returns 0, or the errno (EOPNOTSUPP where the file system or the OS cannot).
 */
static napi_value js_preallocate(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd = -1;
  double off = -1, len = -1;
  if (argc < 3 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_double(env, argv[1], &off) != napi_ok ||
      napi_get_value_double(env, argv[2], &len) != napi_ok || !(off >= 0 && len > 0))
    THROW(env, "preallocate(fd, offset, length): expected a descriptor, an offset and a length");
  int err = EOPNOTSUPP;
#if defined(__linux__) && defined(FALLOC_FL_KEEP_SIZE)
  err = fallocate(fd, FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) == 0 ? 0 : errno;
#endif
  napi_value result;
  napi_create_int32(env, err, &result);
  return result;
}

/* ---- BLAKE3 (b3.h) ---- */

static napi_value digest_buffer(napi_env env, const uint8_t digest[B3_OUT_LEN]) {
  napi_value buf;
  void *p;
  if (napi_create_buffer(env, B3_OUT_LEN, &p, &buf) != napi_ok) return NULL;
  memcpy(p, digest, B3_OUT_LEN);
  return buf;
}

static napi_value js_b3(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  void *p;
  size_t n;
  if (argc < 1 || !get_typed(env, argv[0], napi_uint8_array, &p, &n)) THROW(env, "b3(data): expected a Uint8Array or Buffer");
  uint8_t digest[B3_OUT_LEN];
  b3_hash((const uint8_t *)p, n, digest);
  return digest_buffer(env, digest);
}

/*
 * A file hasher held by JavaScript: the plain incremental one (b3_hasher, allocated right
 * after this head), or, made with b3TreeHasher, one that also keeps the 4 MiB leaves'
 * chaining values (b3-tree.c). Both are fed and read the same way.
 */
typedef struct {
  b3_tree *tree;
  uint64_t pad; /* keeps the b3_hasher after the head 16-byte aligned */
} file_hasher;

#define PLAIN_HASHER(f) ((b3_hasher *)((uint8_t *)(f) + sizeof(file_hasher)))

static void free_hasher(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  file_hasher *f = (file_hasher *)data;
  b3_tree_free(f->tree);
  free(f);
}

static file_hasher *get_hasher(napi_env env, napi_value v) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external) return NULL;
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok) return NULL;
  return (file_hasher *)p;
}

/* 0 when the tree hasher ran out of memory. */
static int hasher_update(file_hasher *f, const uint8_t *p, size_t n) {
  if (f->tree) return b3_tree_update(f->tree, p, n);
  b3_update(PLAIN_HASHER(f), p, n);
  return 1;
}

static napi_value wrap_hasher(napi_env env, file_hasher *f) {
  napi_value ext;
  if (napi_create_external(env, f, free_hasher, NULL, &ext) != napi_ok) {
    b3_tree_free(f->tree);
    free(f);
    THROW(env, "b3Hasher: cannot create the hasher");
  }
  return ext;
}

static napi_value js_b3_hasher(napi_env env, napi_callback_info info) {
  (void)info;
  file_hasher *f = (file_hasher *)malloc(sizeof(file_hasher) + b3_hasher_size());
  if (f == NULL) THROW(env, "b3Hasher: out of memory");
  f->tree = NULL;
  b3_hasher_init(PLAIN_HASHER(f));
  return wrap_hasher(env, f);
}

static napi_value js_b3_tree_hasher(napi_env env, napi_callback_info info) {
  (void)info;
  file_hasher *f = (file_hasher *)malloc(sizeof(file_hasher));
  if (f == NULL) THROW(env, "b3TreeHasher: out of memory");
  f->tree = b3_tree_new();
  if (f->tree == NULL) {
    free(f);
    THROW(env, "b3TreeHasher: out of memory");
  }
  return wrap_hasher(env, f);
}

static napi_value js_b3_update(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  file_hasher *h = argc >= 1 ? get_hasher(env, argv[0]) : NULL;
  void *p;
  size_t n;
  if (h == NULL || argc < 2 || !get_typed(env, argv[1], napi_uint8_array, &p, &n)) THROW(env, "b3Update(hasher, data): expected a hasher and a Uint8Array");
  if (!hasher_update(h, (const uint8_t *)p, n)) THROW(env, "b3Update: out of memory");
  return NULL;
}

static napi_value js_b3_digest(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  file_hasher *h = argc >= 1 ? get_hasher(env, argv[0]) : NULL;
  if (h == NULL) THROW(env, "b3Digest(hasher): expected a hasher");
  uint8_t digest[B3_OUT_LEN];
  if (h->tree) b3_tree_finalize(h->tree, digest);
  else b3_finalize(PLAIN_HASHER(h), digest);
  return digest_buffer(env, digest);
}

/* b3Leaves(treeHasher) -> Buffer: the 4 MiB leaves' chaining values so far (empty up to 4 MiB) */
static napi_value js_b3_leaves(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  file_hasher *h = argc >= 1 ? get_hasher(env, argv[0]) : NULL;
  if (h == NULL || h->tree == NULL) THROW(env, "b3Leaves(hasher): expected a hasher from b3TreeHasher");
  const size_t n = b3_tree_leaf_count(h->tree);
  napi_value buf;
  void *p;
  if (napi_create_buffer(env, n * B3_OUT_LEN, &p, &buf) != napi_ok) THROW(env, "b3Leaves: out of memory");
  b3_tree_leaves(h->tree, (uint8_t *)p);
  return buf;
}

/* b3LeafCv(data, leafIndex) -> Buffer(32): leaf `leafIndex` (1 byte .. 4 MiB) of an input over 4 MiB */
static napi_value js_b3_leaf_cv(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  void *p;
  size_t n;
  double index;
  if (argc < 2 || !get_typed(env, argv[0], napi_uint8_array, &p, &n) || napi_get_value_double(env, argv[1], &index) != napi_ok) THROW(env, "b3LeafCv(data, leafIndex): expected a Uint8Array and a number");
  if (n == 0 || n > B3_LEAF_LEN || !(index >= 0 && index < 9007199254740992.0) || index != (double)(uint64_t)index) THROW(env, "b3LeafCv: a leaf is 1 byte to 4 MiB, its index a whole number");
  uint8_t cv[B3_OUT_LEN];
  b3_leaf_cv((const uint8_t *)p, n, (uint64_t)index, cv);
  return digest_buffer(env, cv);
}

/* b3RootOf(leaves) -> Buffer(32): the hash of an input over 4 MiB from its leaves (2 or more) */
static napi_value js_b3_root_of(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  void *p;
  size_t n;
  if (argc < 1 || !get_typed(env, argv[0], napi_uint8_array, &p, &n) || n % B3_OUT_LEN != 0 || n < 2 * B3_OUT_LEN) THROW(env, "b3RootOf(leaves): expected 32 bytes per leaf, 2 leaves or more");
  uint8_t digest[B3_OUT_LEN];
  if (!b3_root_of((const uint8_t *)p, n / B3_OUT_LEN, digest)) THROW(env, "b3RootOf: out of memory");
  return digest_buffer(env, digest);
}

static napi_value js_b3_pieces(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 7) THROW(env, "b3Pieces(buf, base, starts, lengths, from, count, ids, file?): 7 or 8 arguments expected");
  void *vbuf, *vstarts, *vlengths, *vids;
  size_t blen, slen, llen, ilen;
  double base, from, count;
  if (!get_typed(env, argv[0], napi_uint8_array, &vbuf, &blen)) THROW(env, "b3Pieces: buf must be a Uint8Array or Buffer");
  if (!get_typed(env, argv[2], napi_float64_array, &vstarts, &slen)) THROW(env, "b3Pieces: starts must be a Float64Array");
  if (!get_typed(env, argv[3], napi_uint32_array, &vlengths, &llen)) THROW(env, "b3Pieces: lengths must be a Uint32Array");
  if (!get_typed(env, argv[6], napi_uint8_array, &vids, &ilen)) THROW(env, "b3Pieces: ids must be a Uint8Array");
  if (napi_get_value_double(env, argv[1], &base) != napi_ok || napi_get_value_double(env, argv[4], &from) != napi_ok || napi_get_value_double(env, argv[5], &count) != napi_ok)
    THROW(env, "b3Pieces: base, from and count must be numbers");
  file_hasher *file = NULL;
  if (argc >= 8) {
    napi_valuetype t;
    napi_typeof(env, argv[7], &t);
    if (t != napi_undefined && t != napi_null) {
      file = get_hasher(env, argv[7]);
      if (file == NULL) THROW(env, "b3Pieces: file must be a hasher");
    }
  }
  if (!(from >= 0 && count >= 0 && from + count <= (double)slen && from + count <= (double)llen && (from + count) * B3_OUT_LEN <= (double)ilen)) THROW(env, "b3Pieces: from and count are out of range");
  const double *starts = (const double *)vstarts;
  const uint32_t *lengths = (const uint32_t *)vlengths;
  const size_t k0 = (size_t)from, k1 = (size_t)(from + count);
  for (size_t k = k0; k < k1; k++) {
    const double at = starts[k] - base;
    if (!(at >= 0 && at + (double)lengths[k] <= (double)blen)) THROW(env, "b3Pieces: a piece lies outside buf");
  }
  const uint8_t *buf = (const uint8_t *)vbuf;
  uint8_t *ids = (uint8_t *)vids;
  for (size_t k = k0; k < k1; k++) {
    const uint8_t *piece = buf + (size_t)(starts[k] - base);
    if (file && !hasher_update(file, piece, lengths[k])) THROW(env, "b3Pieces: out of memory");
    b3_hash(piece, lengths[k], ids + k * B3_OUT_LEN);
  }
  return NULL;
}

static napi_value js_b3_impl(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc >= 1) {
    bool on = true;
    if (napi_get_value_bool(env, argv[0], &on) != napi_ok) THROW(env, "b3Impl(simd?): expected a boolean");
    b3_use_simd(on ? 1 : 0);
  }
  napi_value result;
  napi_create_string_utf8(env, b3_implementation(), NAPI_AUTO_LENGTH, &result);
  return result;
}


/*
 * readHash: a store read and the hashing that verifies it, off the JavaScript thread.
 * Checkout spends most of its main-thread time reading chunks and hashing them against
 * their ids; done here on a libuv pool thread, the main thread only hands the bytes to the
 * writes, and the reads, hashes and writes of neighbouring groups overlap on both cores.
 * The typed arrays are held by references until the work completes, so their memory stays
 * put; the caller must not touch buf or ids before the promise settles.
 */
typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref refs[4];
  int fd;
  uint8_t *buf;
  size_t len;
  double position;
  const double *starts;
  const uint32_t *lengths;
  size_t count;
  uint8_t *ids;
  double result;
} read_hash_work;

static void read_hash_execute(napi_env env, void *data) {
  (void)env;
  read_hash_work *w = (read_hash_work *)data;
  size_t done = 0;
  while (done < w->len) {
    ssize_t n = pread(w->fd, w->buf + done, w->len - done, (off_t)(w->position + (double)done));
    if (n < 0) {
      if (errno == EINTR) continue;
      w->result = -(double)errno;
      return;
    }
    if (n == 0) break;
    done += (size_t)n;
  }
  w->result = (double)done;
  if (done < w->len) return; /* short: the caller reports the pack as damaged */
  for (size_t k = 0; k < w->count; k++) b3_hash(w->buf + (size_t)w->starts[k], w->lengths[k], w->ids + k * B3_OUT_LEN);
}

static void read_hash_complete(napi_env env, napi_status status, void *data) {
  read_hash_work *w = (read_hash_work *)data;
  napi_value result;
  if (status == napi_ok) {
    napi_create_double(env, w->result, &result);
    napi_resolve_deferred(env, w->deferred, result);
  } else {
    napi_value msg;
    napi_create_string_utf8(env, "readHash: the work was cancelled", NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &result);
    napi_reject_deferred(env, w->deferred, result);
  }
  for (int i = 0; i < 4; i++) napi_delete_reference(env, w->refs[i]);
  napi_delete_async_work(env, w->work);
  free(w);
}

static napi_value js_read_hash(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 7) THROW(env, "readHash(fd, buf, position, starts, lengths, count, ids): 7 arguments expected");
  int32_t fd = -1;
  double position = -1, count = -1;
  void *vbuf, *vstarts, *vlengths, *vids;
  size_t blen, slen, llen, ilen;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) THROW(env, "readHash: fd must be a file descriptor");
  if (!get_typed(env, argv[1], napi_uint8_array, &vbuf, &blen)) THROW(env, "readHash: buf must be a Uint8Array or Buffer");
  if (napi_get_value_double(env, argv[2], &position) != napi_ok || !(position >= 0)) THROW(env, "readHash: position must be a number >= 0");
  if (!get_typed(env, argv[3], napi_float64_array, &vstarts, &slen)) THROW(env, "readHash: starts must be a Float64Array");
  if (!get_typed(env, argv[4], napi_uint32_array, &vlengths, &llen)) THROW(env, "readHash: lengths must be a Uint32Array");
  if (napi_get_value_double(env, argv[5], &count) != napi_ok || !(count >= 0 && count <= (double)slen && count <= (double)llen)) THROW(env, "readHash: count is out of range");
  if (!get_typed(env, argv[6], napi_uint8_array, &vids, &ilen) || count * B3_OUT_LEN > (double)ilen) THROW(env, "readHash: ids must be a Uint8Array of 32 bytes per piece");
  const double *starts = (const double *)vstarts;
  const uint32_t *lengths = (const uint32_t *)vlengths;
  for (size_t k = 0; k < (size_t)count; k++)
    if (!(starts[k] >= 0 && starts[k] + (double)lengths[k] <= (double)blen)) THROW(env, "readHash: a piece lies outside buf");
  read_hash_work *w = (read_hash_work *)calloc(1, sizeof *w);
  if (w == NULL) THROW(env, "readHash: out of memory");
  w->fd = fd;
  w->buf = (uint8_t *)vbuf;
  w->len = blen;
  w->position = position;
  w->starts = starts;
  w->lengths = lengths;
  w->count = (size_t)count;
  w->ids = (uint8_t *)vids;
  const int held[4] = {1, 3, 4, 6};
  for (int i = 0; i < 4; i++) napi_create_reference(env, argv[held[i]], 1, &w->refs[i]);
  napi_value promise, name;
  napi_create_promise(env, &w->deferred, &promise);
  napi_create_string_utf8(env, "dits.readHash", NAPI_AUTO_LENGTH, &name);
  if (napi_create_async_work(env, NULL, name, read_hash_execute, read_hash_complete, w, &w->work) != napi_ok || napi_queue_async_work(env, w->work) != napi_ok) {
    for (int i = 0; i < 4; i++) napi_delete_reference(env, w->refs[i]);
    free(w);
    THROW(env, "readHash: could not queue the work");
  }
  return promise;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_property_descriptor props[] = {
      {"init", NULL, js_init, NULL, NULL, NULL, napi_default, NULL},
      {"scan", NULL, js_scan, NULL, NULL, NULL, napi_default, NULL},
      {"pipeSize", NULL, js_pipe_size, NULL, NULL, NULL, napi_default, NULL},
      {"pageOffset", NULL, js_page_offset, NULL, NULL, NULL, napi_default, NULL},
      {"copy", NULL, js_copy, NULL, NULL, NULL, napi_default, NULL},
      {"readable", NULL, js_readable, NULL, NULL, NULL, napi_default, NULL},
      {"preallocate", NULL, js_preallocate, NULL, NULL, NULL, napi_default, NULL},
      {"b3", NULL, js_b3, NULL, NULL, NULL, napi_default, NULL},
      {"b3Pieces", NULL, js_b3_pieces, NULL, NULL, NULL, napi_default, NULL},
      {"b3Hasher", NULL, js_b3_hasher, NULL, NULL, NULL, napi_default, NULL},
      {"b3Update", NULL, js_b3_update, NULL, NULL, NULL, napi_default, NULL},
      {"b3Digest", NULL, js_b3_digest, NULL, NULL, NULL, napi_default, NULL},
      {"b3Impl", NULL, js_b3_impl, NULL, NULL, NULL, napi_default, NULL},
      {"b3TreeHasher", NULL, js_b3_tree_hasher, NULL, NULL, NULL, napi_default, NULL},
      {"b3Leaves", NULL, js_b3_leaves, NULL, NULL, NULL, napi_default, NULL},
      {"b3LeafCv", NULL, js_b3_leaf_cv, NULL, NULL, NULL, napi_default, NULL},
      {"b3RootOf", NULL, js_b3_root_of, NULL, NULL, NULL, napi_default, NULL},
      {"readHash", NULL, js_read_hash, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
