// Dits' read-only FUSE binding (libfuse3, high-level API), for `git dits mount` without
// --writable. The tree of a revision does not change while it is mounted, so its names and
// attributes are handed over once, at mount time, and every lookup, getattr, readdir,
// access and statfs is answered here, on libfuse's own thread, without waking JavaScript
// (fuse-native sends each of them to the event loop and back: about 90 us a file in
// `ls -lR`, against about 30 us here). Only open, read, release and readlink go to
// JavaScript. Everything that would change the tree answers EROFS. See src/mount/README.md.
#define FUSE_USE_VERSION 312
#define NAPI_VERSION 8
#include <fuse.h>
#include <node_api.h>

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

// the operations sent to JavaScript: the numbers are the dispatcher's first argument
enum { OP_OPEN = 1, OP_READ = 2, OP_RELEASE = 3, OP_READLINK = 4 };

// the attributes of each entry, as JavaScript lays them out (doubles, in this order)
enum { A_INO, A_MODE, A_NLINK, A_UID, A_GID, A_SIZE, A_MTIME_MS, A_BLOCKS, A_FIELDS };

typedef struct entry {
  char *path;        // "/", "/a", "/a/b.mov"
  const char *name;  // inside path: after its last '/'
  // the attributes, kept small (a struct stat is 144 bytes; a tree may have a million paths)
  uint64_t ino;
  int64_t size, blocks, mtime_ms;
  uint32_t mode, nlink, uid, gid;
  int32_t first_child, last_child, next_sibling;
} entry_t;

static void stat_of(const entry_t *e, struct stat *st) {
  memset(st, 0, sizeof *st);
  st->st_ino = (ino_t)e->ino;
  st->st_mode = (mode_t)e->mode;
  st->st_nlink = (nlink_t)e->nlink;
  st->st_uid = (uid_t)e->uid;
  st->st_gid = (gid_t)e->gid;
  st->st_size = (off_t)e->size;
  st->st_blksize = 4096;
  st->st_blocks = (blkcnt_t)e->blocks;
  int64_t sec = e->mtime_ms / 1000, ms = e->mtime_ms % 1000;
  if (ms < 0) {  // before 1970
    ms += 1000;
    sec -= 1;
  }
  struct timespec t = {.tv_sec = (time_t)sec, .tv_nsec = (long)(ms * 1000000)};
  st->st_mtim = st->st_atim = st->st_ctim = t;
}

typedef struct request {
  int op;
  const char *path;
  uint64_t fh;
  size_t size;
  off_t off;
  char *buf;         // read: libfuse's buffer; readlink: where the target goes
  int result;        // >= 0 or -errno, set by reply()
  uint64_t out_fh;   // open: the handle JavaScript gave
  sem_t done;
} request_t;

typedef struct mount {
  struct fuse *fuse;
  pthread_t thread;
  int thread_started;
  int loop_result;
  entry_t *entries;
  size_t count;
  int32_t *slots;    // open addressing over entries, by path hash; -1 empty
  size_t slot_mask;
  uint64_t files;
  napi_threadsafe_function tsfn;
  napi_threadsafe_function done;  // the unmount's answer to JavaScript
  int unmounted;
} mount_t;

// ---- the table of entries ----

static uint64_t hash_path(const char *s) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
  return h;
}

static int32_t find(const mount_t *m, const char *path) {
  size_t i = (size_t)hash_path(path) & m->slot_mask;
  for (;;) {
    int32_t e = m->slots[i];
    if (e < 0) return -1;
    if (strcmp(m->entries[e].path, path) == 0) return e;
    i = (i + 1) & m->slot_mask;
  }
}

static mount_t *mount_of(void) {
  return (mount_t *)fuse_get_context()->private_data;
}

// ---- operations answered here ----

static int op_getattr(const char *path, struct stat *st, struct fuse_file_info *fi) {
  (void)fi;
  mount_t *m = mount_of();
  int32_t e = find(m, path);
  if (e < 0) return -ENOENT;
  stat_of(&m->entries[e], st);
  return 0;
}

static int op_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off, struct fuse_file_info *fi,
                      enum fuse_readdir_flags flags) {
  (void)off;
  (void)fi;
  mount_t *m = mount_of();
  int32_t e = find(m, path);
  if (e < 0) return -ENOENT;
  if (!S_ISDIR(m->entries[e].mode)) return -ENOTDIR;
  // every entry with its attributes: the kernel then needs no lookup per name (readdirplus)
  int plus = (flags & FUSE_READDIR_PLUS) != 0;
  struct stat st;
  stat_of(&m->entries[e], &st);
  fill(buf, ".", &st, 0, plus ? FUSE_FILL_DIR_PLUS : 0);
  fill(buf, "..", NULL, 0, 0);
  for (int32_t c = m->entries[e].first_child; c >= 0; c = m->entries[c].next_sibling) {
    stat_of(&m->entries[c], &st);
    if (fill(buf, m->entries[c].name, &st, 0, plus ? FUSE_FILL_DIR_PLUS : 0)) break;
  }
  return 0;
}

static int op_access(const char *path, int mask) {
  mount_t *m = mount_of();
  if (find(m, path) < 0) return -ENOENT;
  return (mask & W_OK) ? -EROFS : 0;
}

static int op_statfs(const char *path, struct statvfs *s) {
  (void)path;
  memset(s, 0, sizeof *s);
  s->f_bsize = 4096;
  s->f_frsize = 4096;
  s->f_files = mount_of()->files;
  s->f_flag = ST_RDONLY;
  s->f_namemax = 255;
  return 0;
}

static int op_readonly(void) {
  return -EROFS;
}
static int op_rofs_path(const char *p) { (void)p; return op_readonly(); }
static int op_rofs_mode(const char *p, mode_t mode) { (void)p; (void)mode; return op_readonly(); }
static int op_rofs_two(const char *a, const char *b) { (void)a; (void)b; return op_readonly(); }
static int op_rename(const char *a, const char *b, unsigned int flags) { (void)a; (void)b; (void)flags; return op_readonly(); }
static int op_chmod(const char *p, mode_t mode, struct fuse_file_info *fi) { (void)p; (void)mode; (void)fi; return op_readonly(); }
static int op_chown(const char *p, uid_t u, gid_t g, struct fuse_file_info *fi) { (void)p; (void)u; (void)g; (void)fi; return op_readonly(); }
static int op_truncate(const char *p, off_t size, struct fuse_file_info *fi) { (void)p; (void)size; (void)fi; return op_readonly(); }
static int op_utimens(const char *p, const struct timespec tv[2], struct fuse_file_info *fi) { (void)p; (void)tv; (void)fi; return op_readonly(); }
static int op_mknod(const char *p, mode_t mode, dev_t dev) { (void)p; (void)mode; (void)dev; return op_readonly(); }
static int op_create(const char *p, mode_t mode, struct fuse_file_info *fi) { (void)p; (void)mode; (void)fi; return op_readonly(); }
static int op_write(const char *p, const char *b, size_t n, off_t o, struct fuse_file_info *fi) {
  (void)p; (void)b; (void)n; (void)o; (void)fi;
  return op_readonly();
}
static int op_setxattr(const char *p, const char *n, const char *v, size_t s, int f) {
  (void)p; (void)n; (void)v; (void)s; (void)f;
  return op_readonly();
}
static int op_removexattr(const char *p, const char *n) { (void)p; (void)n; return op_readonly(); }

// ---- operations sent to JavaScript ----

// Waits on libfuse's thread until JavaScript has answered (reply()).
static int ask(request_t *r) {
  mount_t *m = mount_of();
  r->result = -EIO;
  if (sem_init(&r->done, 0, 0) != 0) return -EIO;
  if (napi_call_threadsafe_function(m->tsfn, r, napi_tsfn_blocking) != napi_ok) {
    sem_destroy(&r->done);
    return -EIO;  // the mount is going away
  }
  while (sem_wait(&r->done) != 0 && errno == EINTR) {
  }
  sem_destroy(&r->done);
  return r->result;
}

static int op_open(const char *path, struct fuse_file_info *fi) {
  if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) return -EROFS;
  request_t r = {.op = OP_OPEN, .path = path, .size = (size_t)fi->flags};
  int res = ask(&r);
  if (res < 0) return res;
  fi->fh = r.out_fh;
  fi->keep_cache = 1;  // the content of a path never changes while mounted
  return 0;
}

// JavaScript copies the bytes into buf with copyIn() before it answers, and never after
// (src/mount/native-fuse.ts): buf is libfuse's until this returns.
static int op_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
  request_t r = {.op = OP_READ, .path = path, .fh = fi->fh, .size = size, .off = off, .buf = buf};
  return ask(&r);
}

static int op_release(const char *path, struct fuse_file_info *fi) {
  request_t r = {.op = OP_RELEASE, .path = path, .fh = fi->fh};
  ask(&r);
  return 0;
}

static int op_readlink(const char *path, char *buf, size_t size) {
  if (size == 0) return -EINVAL;
  request_t r = {.op = OP_READLINK, .path = path, .buf = buf, .size = size};
  int res = ask(&r);
  return res < 0 ? res : 0;
}

static void *op_init(struct fuse_conn_info *conn, struct fuse_config *cfg) {
  (void)cfg;
  // readdirplus every time (not only for the first listing): the names of a directory come
  // with their attributes, already here, at no cost
  if (conn->capable & FUSE_CAP_READDIRPLUS) conn->want |= FUSE_CAP_READDIRPLUS;
  conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
  return fuse_get_context()->private_data;
}

static const struct fuse_operations OPS = {
    .init = op_init,
    .getattr = op_getattr,
    .readdir = op_readdir,
    .access = op_access,
    .statfs = op_statfs,
    .open = op_open,
    .read = op_read,
    .release = op_release,
    .readlink = op_readlink,
    .mknod = op_mknod,
    .mkdir = op_rofs_mode,
    .unlink = op_rofs_path,
    .rmdir = op_rofs_path,
    .symlink = op_rofs_two,
    .rename = op_rename,
    .link = op_rofs_two,
    .chmod = op_chmod,
    .chown = op_chown,
    .truncate = op_truncate,
    .utimens = op_utimens,
    .create = op_create,
    .write = op_write,
    .setxattr = op_setxattr,
    .removexattr = op_removexattr,
    // no getxattr/listxattr: ENOSYS, and the kernel stops asking
};

// ---- JavaScript's side ----

#define CHECK(call)                                   \
  do {                                                \
    if ((call) != napi_ok) {                          \
      napi_throw_error(env, NULL, "dits-fuse: " #call); \
      return NULL;                                    \
    }                                                 \
  } while (0)

// On the event loop: hands one request to the dispatcher.
static void call_js(napi_env env, napi_value fn, void *context, void *data) {
  (void)context;
  request_t *r = (request_t *)data;
  if (env == NULL || fn == NULL) {
    r->result = -EIO;
    sem_post(&r->done);
    return;
  }
  napi_value argv[6], undefined;
  napi_get_undefined(env, &undefined);
  int ok = napi_create_int32(env, r->op, &argv[0]) == napi_ok &&
           napi_create_external(env, r, NULL, NULL, &argv[1]) == napi_ok &&
           napi_create_string_utf8(env, r->path, NAPI_AUTO_LENGTH, &argv[2]) == napi_ok &&
           napi_create_double(env, (double)r->fh, &argv[3]) == napi_ok &&
           napi_create_double(env, (double)r->size, &argv[4]) == napi_ok &&
           napi_create_double(env, (double)r->off, &argv[5]) == napi_ok;
  if (!ok || napi_call_function(env, undefined, fn, 6, argv, NULL) != napi_ok) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      napi_value e;
      napi_get_and_clear_last_exception(env, &e);
    }
    r->result = -EIO;
    sem_post(&r->done);
  }
}

// reply(request, result, value?): open's value is the handle, readlink's the target.
static napi_value js_reply(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  request_t *r = NULL;
  int32_t result = -EIO;
  CHECK(napi_get_value_external(env, argv[0], (void **)&r));
  CHECK(napi_get_value_int32(env, argv[1], &result));
  if (r == NULL) return NULL;
  if (result >= 0 && r->op == OP_OPEN && argc > 2) {
    double fh = 0;
    if (napi_get_value_double(env, argv[2], &fh) != napi_ok || fh < 0) result = -EIO;
    r->out_fh = (uint64_t)fh;
  } else if (result >= 0 && r->op == OP_READLINK && argc > 2) {
    size_t n = 0;
    if (napi_get_value_string_utf8(env, argv[2], r->buf, r->size, &n) != napi_ok) result = -EIO;
  } else if (result >= 0 && r->op == OP_READ && (size_t)result > r->size) {
    result = -EIO;
  }
  r->result = result;
  sem_post(&r->done);
  return NULL;
}

// copyIn(request, at, source, start, end): bytes [start, end) of the Buffer `source` go to
// byte `at` of the read's buffer (libfuse's), on the event loop, while the read waits for
// its answer. A Buffer over libfuse's memory would do without this call, but a new one a
// read is 1 MiB of new external memory each time, and V8 runs a full collection for every
// 64 MiB of those (measured: 16% of the main thread in a remote read); a buffer of our own
// that JavaScript fills costs a second copy of every byte (about 0.1 s a GiB).
static napi_value js_copy_in(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  request_t *r = NULL;
  double at = 0, start = 0, end = 0;
  void *data = NULL;
  size_t length = 0;
  CHECK(napi_get_value_external(env, argv[0], (void **)&r));
  CHECK(napi_get_value_double(env, argv[1], &at));
  CHECK(napi_get_buffer_info(env, argv[2], &data, &length));
  CHECK(napi_get_value_double(env, argv[3], &start));
  CHECK(napi_get_value_double(env, argv[4], &end));
  if (r == NULL || r->op != OP_READ || !(start >= 0 && start <= end && end <= (double)length && at >= 0 && at + (end - start) <= (double)r->size)) {
    napi_throw_range_error(env, NULL, "dits-fuse: copyIn outside the read or the source");
    return NULL;
  }
  memcpy(r->buf + (size_t)at, (const char *)data + (size_t)start, (size_t)(end - start));
  return NULL;
}

static void *run_loop(void *arg) {
  mount_t *m = (mount_t *)arg;
  struct fuse_loop_config *cfg = fuse_loop_cfg_create();
  if (cfg == NULL) {
    m->loop_result = -ENOMEM;
    return NULL;
  }
  fuse_loop_cfg_set_idle_threads(cfg, 10);
  // a thread per request waiting on JavaScript (a read on a slow remote waits up to 120 s):
  // libfuse's default of 10 would leave an 11th request, even a getattr answered here,
  // waiting behind them
  fuse_loop_cfg_set_max_threads(cfg, 256);
  m->loop_result = fuse_loop_mt(m->fuse, cfg);
  fuse_loop_cfg_destroy(cfg);
  return NULL;
}

static void free_mount(mount_t *m) {
  for (size_t i = 0; i < m->count; i++) free(m->entries[i].path);
  free(m->entries);
  free(m->slots);
  free(m);
}

static void finalize_mount(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  mount_t *m = (mount_t *)data;
  // still mounted when JavaScript let go of it (the process is ending): leave it to the kernel
  if (!m->unmounted) return;
  free_mount(m);
}

// mount(mountPoint, args[], paths[], attrs Float64Array, files, dispatcher) -> handle
static napi_value js_mount(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 6) {
    napi_throw_type_error(env, NULL, "mount(mountPoint, args, paths, attrs, files, dispatcher)");
    return NULL;
  }
  char mnt[4096];
  size_t len = 0;
  CHECK(napi_get_value_string_utf8(env, argv[0], mnt, sizeof mnt, &len));
  uint32_t nargs = 0, count = 0;
  CHECK(napi_get_array_length(env, argv[1], &nargs));
  CHECK(napi_get_array_length(env, argv[2], &count));
  napi_typedarray_type type;
  size_t alen = 0;
  void *adata = NULL;
  CHECK(napi_get_typedarray_info(env, argv[3], &type, &alen, &adata, NULL, NULL));
  if (type != napi_float64_array || alen != (size_t)count * A_FIELDS || count == 0) {
    napi_throw_type_error(env, NULL, "attrs: a Float64Array of 8 numbers a path, the first path \"/\"");
    return NULL;
  }
  const double *a = (const double *)adata;
  double files = 0;
  CHECK(napi_get_value_double(env, argv[4], &files));

  mount_t *m = calloc(1, sizeof *m);
  if (!m) goto oom;
  m->files = (uint64_t)files;
  m->count = count;
  m->entries = calloc(count, sizeof *m->entries);
  size_t slots = 16;
  while (slots < (size_t)count * 2) slots <<= 1;
  m->slots = malloc(slots * sizeof *m->slots);
  if (!m->entries || !m->slots) goto oom;
  m->slot_mask = slots - 1;
  memset(m->slots, 0xff, slots * sizeof *m->slots);
  for (uint32_t i = 0; i < count; i++) {
    napi_value v;
    size_t n = 0;
    CHECK(napi_get_element(env, argv[2], i, &v));
    CHECK(napi_get_value_string_utf8(env, v, NULL, 0, &n));
    entry_t *e = &m->entries[i];
    e->path = malloc(n + 1);
    if (!e->path) goto oom;
    CHECK(napi_get_value_string_utf8(env, v, e->path, n + 1, &n));
    const char *slash = strrchr(e->path, '/');
    e->name = slash ? slash + 1 : e->path;
    e->first_child = e->last_child = e->next_sibling = -1;
    const double *f = a + (size_t)i * A_FIELDS;
    e->ino = (uint64_t)f[A_INO];
    e->mode = (uint32_t)f[A_MODE];
    e->nlink = (uint32_t)f[A_NLINK];
    e->uid = (uint32_t)f[A_UID];
    e->gid = (uint32_t)f[A_GID];
    e->size = (int64_t)f[A_SIZE];
    e->blocks = (int64_t)f[A_BLOCKS];
    e->mtime_ms = (int64_t)f[A_MTIME_MS];
    size_t k = (size_t)hash_path(e->path) & m->slot_mask;
    while (m->slots[k] >= 0) {
      if (strcmp(m->entries[m->slots[k]].path, e->path) == 0) {
        napi_throw_error(env, NULL, "dits-fuse: a path given twice");
        free_mount(m);
        return NULL;
      }
      k = (k + 1) & m->slot_mask;
    }
    m->slots[k] = (int32_t)i;
  }
  if (strcmp(m->entries[0].path, "/") != 0 || !S_ISDIR(m->entries[0].mode)) {
    napi_throw_type_error(env, NULL, "dits-fuse: the first entry must be the directory \"/\"");
    free_mount(m);
    return NULL;
  }
  // each entry under its directory, in the order given
  char parent[4096];
  for (uint32_t i = 1; i < count; i++) {
    entry_t *e = &m->entries[i];
    size_t plen = (size_t)(e->name - e->path) - 1;
    if (plen >= sizeof parent) plen = sizeof parent - 1;
    if (plen == 0) {
      parent[0] = '/';
      parent[1] = 0;
    } else {
      memcpy(parent, e->path, plen);
      parent[plen] = 0;
    }
    int32_t p = find(m, parent);
    if (p < 0 || !S_ISDIR(m->entries[p].mode)) {
      napi_throw_error(env, NULL, "dits-fuse: an entry whose directory is not in the table");
      free_mount(m);
      return NULL;
    }
    if (m->entries[p].last_child < 0) m->entries[p].first_child = (int32_t)i;
    else m->entries[m->entries[p].last_child].next_sibling = (int32_t)i;
    m->entries[p].last_child = (int32_t)i;
  }

  napi_value name;
  CHECK(napi_create_string_utf8(env, "dits-fuse", NAPI_AUTO_LENGTH, &name));
  if (napi_create_threadsafe_function(env, argv[5], NULL, name, 0, 1, NULL, NULL, NULL, call_js, &m->tsfn) != napi_ok) {
    free_mount(m);
    napi_throw_error(env, NULL, "dits-fuse: cannot make the dispatcher");
    return NULL;
  }

  // libfuse's options, as on a command line: argv[0], then "-o", "a=b,c", ...
  char **fargv = calloc(nargs + 2, sizeof *fargv);
  if (!fargv) goto oom;
  fargv[0] = "dits";
  for (uint32_t i = 0; i < nargs; i++) {
    napi_value v;
    size_t n = 0;
    CHECK(napi_get_element(env, argv[1], i, &v));
    CHECK(napi_get_value_string_utf8(env, v, NULL, 0, &n));
    fargv[i + 1] = malloc(n + 1);
    if (!fargv[i + 1]) goto oom;
    CHECK(napi_get_value_string_utf8(env, v, fargv[i + 1], n + 1, &n));
  }
  struct fuse_args args = FUSE_ARGS_INIT((int)nargs + 1, fargv);
  m->fuse = fuse_new(&args, &OPS, sizeof OPS, m);
  fuse_opt_free_args(&args);
  for (uint32_t i = 0; i < nargs; i++) free(fargv[i + 1]);
  free(fargv);
  const char *failed = NULL;
  if (!m->fuse) failed = "libfuse refused the options";
  else if (fuse_mount(m->fuse, mnt) != 0) failed = "fuse_mount failed (is the directory free, and /dev/fuse usable?)";
  else if (pthread_create(&m->thread, NULL, run_loop, m) != 0) failed = "cannot start libfuse's thread";
  if (failed) {
    if (m->fuse) {
      fuse_unmount(m->fuse);
      fuse_destroy(m->fuse);
    }
    napi_release_threadsafe_function(m->tsfn, napi_tsfn_abort);
    free_mount(m);
    napi_throw_error(env, NULL, failed);
    return NULL;
  }
  m->thread_started = 1;
  napi_value handle;
  CHECK(napi_create_external(env, m, finalize_mount, NULL, &handle));
  return handle;
oom:
  napi_throw_error(env, NULL, "dits-fuse: out of memory");
  return NULL;
}

// On a thread of its own (not libuv's pool: a join that waits would hold up the process's
// exit, which waits for the pool): libfuse's threads end once the kernel side is gone (the
// mount point detached and the connection aborted by JavaScript) and every request held in
// JavaScript is answered; then JavaScript hears of it through `done`.
static void *unmount_thread(void *arg) {
  mount_t *m = (mount_t *)arg;
  fuse_exit(m->fuse);
  pthread_join(m->thread, NULL);
  // (no fuse_unmount: the mount point is detached already; destroying closes the device)
  fuse_destroy(m->fuse);
  m->fuse = NULL;
  napi_call_threadsafe_function(m->done, NULL, napi_tsfn_blocking);
  napi_release_threadsafe_function(m->done, napi_tsfn_release);
  return NULL;
}

static void call_done(napi_env env, napi_value fn, void *context, void *data) {
  (void)data;
  mount_t *m = (mount_t *)context;
  if (env == NULL) return;
  m->unmounted = 1;
  napi_release_threadsafe_function(m->tsfn, napi_tsfn_release);
  napi_value undefined;
  napi_get_undefined(env, &undefined);
  if (fn != NULL) napi_call_function(env, undefined, fn, 0, NULL, NULL);
}

// unmount(handle, done): after JavaScript has detached the mount point
static napi_value js_unmount(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  mount_t *m = NULL;
  CHECK(napi_get_value_external(env, argv[0], (void **)&m));
  if (m == NULL || m->fuse == NULL || m->done != NULL) {
    napi_throw_error(env, NULL, "dits-fuse: not mounted");
    return NULL;
  }
  napi_value name;
  CHECK(napi_create_string_utf8(env, "dits-fuse-unmount", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_create_threadsafe_function(env, argv[1], NULL, name, 0, 1, NULL, NULL, m, call_done, &m->done));
  pthread_t t;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  int err = pthread_create(&t, &attr, unmount_thread, m);
  pthread_attr_destroy(&attr);
  if (err != 0) {
    napi_release_threadsafe_function(m->done, napi_tsfn_abort);
    m->done = NULL;
    napi_throw_error(env, NULL, "dits-fuse: cannot start the unmount's thread");
  }
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"mount", NULL, js_mount, NULL, NULL, NULL, napi_default, NULL},
      {"unmount", NULL, js_unmount, NULL, NULL, NULL, napi_default, NULL},
      {"reply", NULL, js_reply, NULL, NULL, NULL, napi_default, NULL},
      {"copyIn", NULL, js_copy_in, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof *props, props) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
