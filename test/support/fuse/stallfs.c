// stallfs: a FUSE file system for tests that serves one file from a backing file and misbehaves
// on request, as a hung or failing network/disk file system would:
//   - fail reads that touch a byte range with EIO (--fail START:END, end exclusive);
//   - stall GETATTR of the file (--stall-getattr): fstat/stat of it never returns until released;
//   - stall READ of the file (--stall-read): read/pread/page faults on it never return until released.
// Every mode can be switched at run time by writing a line to the control file `.control` at the
// root of the mount (it is never stalled): "stall-read 1", "stall-read 0", "stall-getattr 1",
// "stall-getattr 0", "fail START END", "fail-clear", "release" (clears both stalls and wakes every
// stalled request). SIGUSR1 does what "release" does, for a test whose own process is stuck.
// Reading `.control` gives counters: "reads N stalled_reads N getattrs N stalled_getattrs N
// stalling N failed_reads N" (stalling: requests waiting right now), so a test can wait until
// the server really is stuck before asserting that nothing else is.
//
// The file's size is the backing's size at every GETATTR (a test may truncate the backing).
// Attributes and entries are never cached (attr_timeout 0), so every fstat of an open file
// reaches the daemon; the page cache is kept between opens only if the backing did not change.
//
// Usage: stallfs BACKING MOUNTPOINT [--name NAME] [--fail START:END]... [--stall-read]
//                [--stall-getattr] [--direct-io]
// Runs in the foreground, multi-threaded (a stalled request holds one thread, the others go on),
// until unmounted or sent SIGTERM/SIGINT. Built from this file with Debian's libfuse3-dev by
// test/support/fuse.ts; not part of the product.
#define FUSE_USE_VERSION 312
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <fuse3/fuse.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_FAIL_RANGES 16
#define CONTROL_NAME ".control"

struct fail_range {
  uint64_t start, end;
};

static struct {
  int backing_fd;
  char name[256];
  char path[258];  // "/" + name
  int direct_io;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int stall_read, stall_getattr;
  uint64_t release_generation;  // bumped by "release": every stalled request returns
  struct fail_range fail[MAX_FAIL_RANGES];
  int nfail;
  uint64_t reads, stalled_reads, getattrs, stalled_getattrs, failed_reads;
  int stalling;
} g = {.backing_fd = -1, .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

// Set from the SIGUSR1 handler; a helper thread turns it into a release (a signal handler may
// not take a mutex).
static volatile sig_atomic_t release_requested;

static void release_all_locked(void) {
  g.stall_read = 0;
  g.stall_getattr = 0;
  g.release_generation++;
  pthread_cond_broadcast(&g.cv);
}

static void stall_cancelled(void* arg) {
  (void)arg;
  g.stalling--;
  pthread_mutex_unlock(&g.mu);
}

// Blocks the calling FUSE thread while *flag is set, until a release. mu held. On exit libfuse
// cancels its worker threads; a stalled one lets go of mu as it goes.
static void stall_locked(const int* flag) {
  uint64_t gen = g.release_generation;
  g.stalling++;
  pthread_cleanup_push(stall_cancelled, NULL);
  while (*flag && gen == g.release_generation) pthread_cond_wait(&g.cv, &g.mu);
  pthread_cleanup_pop(0);
  g.stalling--;
}

static void on_sigusr1(int sig) {
  (void)sig;
  release_requested = 1;
}

static void* signal_watcher(void* arg) {
  (void)arg;
  for (;;) {
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
    if (release_requested) {
      release_requested = 0;
      pthread_mutex_lock(&g.mu);
      release_all_locked();
      pthread_mutex_unlock(&g.mu);
    }
  }
  return NULL;
}

static int is_file(const char* path) { return strcmp(path, g.path) == 0; }
static int is_control(const char* path) { return strcmp(path, "/" CONTROL_NAME) == 0; }

static int format_counters(char* buf, size_t size) {
  pthread_mutex_lock(&g.mu);
  int n = snprintf(buf, size,
                   "reads %" PRIu64 " stalled_reads %" PRIu64 " getattrs %" PRIu64 " stalled_getattrs %" PRIu64
                   " stalling %d failed_reads %" PRIu64 "\n",
                   g.reads, g.stalled_reads, g.getattrs, g.stalled_getattrs, g.stalling, g.failed_reads);
  pthread_mutex_unlock(&g.mu);
  return n;
}

static void* fs_init(struct fuse_conn_info* conn, struct fuse_config* cfg) {
  (void)conn;
  cfg->attr_timeout = 0;
  cfg->entry_timeout = 0;
  cfg->negative_timeout = 0;
  cfg->use_ino = 1;
  cfg->direct_io = g.direct_io;
  cfg->kernel_cache = 0;
  cfg->auto_cache = 1;  // keep cached pages only while the backing's mtime and size are unchanged
  return NULL;
}

static int fs_getattr(const char* path, struct stat* st, struct fuse_file_info* fi) {
  (void)fi;
  memset(st, 0, sizeof *st);
  if (strcmp(path, "/") == 0) {
    st->st_mode = S_IFDIR | 0755;
    st->st_nlink = 2;
    st->st_ino = 1;
    return 0;
  }
  if (is_control(path)) {
    st->st_mode = S_IFREG | 0600;
    st->st_nlink = 1;
    st->st_ino = 3;
    st->st_size = 4096;
    return 0;
  }
  if (!is_file(path)) return -ENOENT;
  pthread_mutex_lock(&g.mu);
  g.getattrs++;
  if (g.stall_getattr) {
    g.stalled_getattrs++;
    stall_locked(&g.stall_getattr);
  }
  pthread_mutex_unlock(&g.mu);
  struct stat b;
  if (fstat(g.backing_fd, &b) != 0) return -errno;
  st->st_mode = S_IFREG | 0444;
  st->st_nlink = 1;
  st->st_ino = 2;
  st->st_size = b.st_size;
  st->st_blocks = b.st_blocks;
  st->st_mtim = b.st_mtim;
  st->st_ctim = b.st_ctim;
  st->st_atim = b.st_atim;
  return 0;
}

static int fs_readdir(const char* path, void* buf, fuse_fill_dir_t fill, off_t off, struct fuse_file_info* fi,
                      enum fuse_readdir_flags flags) {
  (void)off;
  (void)fi;
  (void)flags;
  if (strcmp(path, "/") != 0) return -ENOENT;
  fill(buf, ".", NULL, 0, 0);
  fill(buf, "..", NULL, 0, 0);
  fill(buf, g.name, NULL, 0, 0);
  fill(buf, CONTROL_NAME, NULL, 0, 0);
  return 0;
}

static int fs_open(const char* path, struct fuse_file_info* fi) {
  if (is_control(path)) {
    fi->direct_io = 1;  // counters are read fresh each time
    return 0;
  }
  if (!is_file(path)) return -ENOENT;
  if ((fi->flags & O_ACCMODE) != O_RDONLY) return -EACCES;
  return 0;
}

static int fs_read(const char* path, char* buf, size_t size, off_t off, struct fuse_file_info* fi) {
  (void)fi;
  if (is_control(path)) {
    char text[512];
    int n = format_counters(text, sizeof text);
    if (off >= n) return 0;
    if ((size_t)(n - off) < size) size = (size_t)(n - off);
    memcpy(buf, text + off, size);
    return (int)size;
  }
  if (!is_file(path)) return -ENOENT;
  pthread_mutex_lock(&g.mu);
  g.reads++;
  if (g.stall_read) {
    g.stalled_reads++;
    stall_locked(&g.stall_read);
  }
  uint64_t start = (uint64_t)off, end = (uint64_t)off + size;
  for (int i = 0; i < g.nfail; i++) {
    if (start < g.fail[i].end && g.fail[i].start < end) {
      g.failed_reads++;
      pthread_mutex_unlock(&g.mu);
      return -EIO;
    }
  }
  pthread_mutex_unlock(&g.mu);
  size_t got = 0;
  while (got < size) {
    ssize_t n = pread(g.backing_fd, buf + got, size - got, off + (off_t)got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return got > 0 ? (int)got : -errno;
    }
    if (n == 0) break;
    got += (size_t)n;
  }
  return (int)got;
}

static int add_fail_locked(uint64_t start, uint64_t end) {
  if (g.nfail >= MAX_FAIL_RANGES || end <= start) return -EINVAL;
  g.fail[g.nfail].start = start;
  g.fail[g.nfail].end = end;
  g.nfail++;
  return 0;
}

// One command per line; returns 0 or a negated errno.
static int run_command(const char* line) {
  unsigned long long a, b;
  int on, rc = 0;
  pthread_mutex_lock(&g.mu);
  if (sscanf(line, "stall-read %d", &on) == 1) {
    g.stall_read = on != 0;
    if (!on) pthread_cond_broadcast(&g.cv);
  } else if (sscanf(line, "stall-getattr %d", &on) == 1) {
    g.stall_getattr = on != 0;
    if (!on) pthread_cond_broadcast(&g.cv);
  } else if (sscanf(line, "fail %llu %llu", &a, &b) == 2) {
    rc = add_fail_locked(a, b);
  } else if (strncmp(line, "fail-clear", 10) == 0) {
    g.nfail = 0;
  } else if (strncmp(line, "release", 7) == 0) {
    release_all_locked();
  } else if (line[0] != '\0' && line[0] != '\n') {
    rc = -EINVAL;
  }
  pthread_mutex_unlock(&g.mu);
  return rc;
}

static int fs_write(const char* path, const char* buf, size_t size, off_t off, struct fuse_file_info* fi) {
  (void)off;
  (void)fi;
  if (!is_control(path)) return -EACCES;
  char text[512];
  if (size >= sizeof text) return -EINVAL;
  memcpy(text, buf, size);
  text[size] = 0;
  char* save = NULL;
  for (char* line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
    int rc = run_command(line);
    if (rc != 0) return rc;
  }
  return (int)size;
}

static int fs_truncate(const char* path, off_t size, struct fuse_file_info* fi) {
  (void)size;
  (void)fi;
  return is_control(path) ? 0 : -EACCES;  // "> .control" truncates first
}

static const struct fuse_operations ops = {
    .init = fs_init,
    .getattr = fs_getattr,
    .readdir = fs_readdir,
    .open = fs_open,
    .read = fs_read,
    .write = fs_write,
    .truncate = fs_truncate,
};

static void usage(void) {
  fprintf(stderr,
          "usage: stallfs BACKING MOUNTPOINT [--name NAME] [--fail START:END]... [--stall-read] "
          "[--stall-getattr] [--direct-io]\n");
  exit(2);
}

int main(int argc, char** argv) {
  if (argc < 3) usage();
  const char* backing = argv[1];
  const char* mountpoint = argv[2];
  snprintf(g.name, sizeof g.name, "%s", "backing");
  for (int i = 3; i < argc; i++) {
    unsigned long long a, b;
    if (strcmp(argv[i], "--name") == 0 && i + 1 < argc) {
      const char* n = argv[++i];
      if (n[0] == 0 || strchr(n, '/') != NULL || strcmp(n, CONTROL_NAME) == 0 || strlen(n) >= sizeof g.name) usage();
      snprintf(g.name, sizeof g.name, "%s", n);
    } else if (strcmp(argv[i], "--fail") == 0 && i + 1 < argc && sscanf(argv[i + 1], "%llu:%llu", &a, &b) == 2) {
      i++;
      if (add_fail_locked(a, b) != 0) usage();
    } else if (strcmp(argv[i], "--stall-read") == 0) {
      g.stall_read = 1;
    } else if (strcmp(argv[i], "--stall-getattr") == 0) {
      g.stall_getattr = 1;
    } else if (strcmp(argv[i], "--direct-io") == 0) {
      g.direct_io = 1;
    } else {
      usage();
    }
  }
  snprintf(g.path, sizeof g.path, "/%s", g.name);
  g.backing_fd = open(backing, O_RDONLY | O_CLOEXEC);
  if (g.backing_fd < 0) {
    fprintf(stderr, "stallfs: %s: %s\n", backing, strerror(errno));
    return 1;
  }

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigusr1;
  sigaction(SIGUSR1, &sa, NULL);
  pthread_t watcher;
  if (pthread_create(&watcher, NULL, signal_watcher, NULL) != 0) {
    fprintf(stderr, "stallfs: pthread_create failed\n");
    return 1;
  }
  pthread_detach(watcher);

  // Foreground (the test owns the process) and multi-threaded, so a stalled request holds one
  // thread and .control still answers. fsname shows in /proc/mounts.
  char fsname[300];
  snprintf(fsname, sizeof fsname, "fsname=stallfs:%s,subtype=stallfs", g.name);
  char* fargv[] = {argv[0], "-o", fsname, NULL};
  struct fuse_args args = FUSE_ARGS_INIT(3, fargv);
  struct fuse* fuse = fuse_new(&args, &ops, sizeof ops, NULL);
  if (fuse == NULL) return 1;
  if (fuse_mount(fuse, mountpoint) != 0) {
    fuse_destroy(fuse);
    return 1;
  }
  if (fuse_set_signal_handlers(fuse_get_session(fuse)) != 0) {
    fuse_unmount(fuse);
    fuse_destroy(fuse);
    return 1;
  }
  // Tell the starter the mount is up (it waits for this line before using the mount).
  printf("mounted %s\n", mountpoint);
  fflush(stdout);
  struct fuse_loop_config* cfg = fuse_loop_cfg_create();
  fuse_loop_cfg_set_max_threads(cfg, 64);
  fuse_loop_cfg_set_idle_threads(cfg, 4);
  int rc = fuse_loop_mt(fuse, cfg);
  fuse_loop_cfg_destroy(cfg);
  fuse_remove_signal_handlers(fuse_get_session(fuse));
  fuse_unmount(fuse);
  fuse_destroy(fuse);
  return rc == 0 ? 0 : 1;
}
