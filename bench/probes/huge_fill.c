// The issue-13 prototype, rebuilt to find what bounds a first read on huge pages: two processes,
// a "pager" that fills its own shared mapping of a sealed MFD_HUGETLB memfd with UFFDIO_COPY, one
// 2 MiB page at a time, and wakes the client's uffd; a client that maps the memfd MAP_PRIVATE |
// MAP_NORESERVE (registered MISSING) and copies it out 4 MiB at a time (bench/mmap_read.c's seq).
//
//   huge_fill SOURCE MIB SRCMODE THREADS AHEAD
//     SOURCE   a file (the bench's image sits on tmpfs; use one on /dev/shm)
//     SRCMODE  cold:     the pager maps SOURCE read-only and copies from it (as native/pager_core.cc
//                        does: its PTEs are empty, and the pager drops them again after each copy)
//              populate: the same, with MADV_POPULATE_READ of the 2 MiB source range before the copy
//              premapped: SOURCE mapped with MAP_POPULATE before the timing (PTEs all present)
//              pread:    pread into a 2 MiB bounce buffer, then UFFDIO_COPY from it (two copies)
//     THREADS  pager threads (each takes the next page of the read-ahead)
//     AHEAD    read-ahead, in huge pages past the furthest fault (0: only the faulting page)
//
// HUGE_FILL_TOUCH=1 makes the client read one word per 4 KiB instead of copying (paging alone).
// Prints GB/s of the client's copy loop (from its first access to its last byte), checks bytes.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HUGE (2UL << 20)
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

static void die(const char* what) {
  fprintf(stderr, "huge_fill: %s: %s\n", what, strerror(errno));
  exit(1);
}
static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void send_fd(int sock, int fd) {
  char byte = 0;
  struct iovec iov = {&byte, 1};
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr a;
  } u;
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
  struct cmsghdr* c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof fd);
  if (sendmsg(sock, &m, 0) != 1) die("sendmsg");
}
static int recv_fd(int sock) {
  char byte;
  struct iovec iov = {&byte, 1};
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr a;
  } u;
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
  if (recvmsg(sock, &m, 0) != 1) die("recvmsg");
  int fd;
  memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof fd);
  return fd;
}

// Pager state.
static const char* src_mode;
static int src_fd, fill_uffd, client_uffd;
static const unsigned char* src;
static unsigned char* fill;
static size_t npages, ahead;
static uint64_t client_base;
static _Atomic int* state;  // 0 missing, 1 being filled, 2 in
static _Atomic size_t next_page, limit_page;
static _Atomic int done_flag;

static void wake(size_t i) {
  struct uffdio_range r = {client_base + i * HUGE, HUGE};
  if (ioctl(client_uffd, UFFDIO_WAKE, &r) < 0 && errno != ENOENT) die("UFFDIO_WAKE");
}

static void fill_page(size_t i, unsigned char* bounce) {
  const unsigned char* from = src + i * HUGE;
  if (strcmp(src_mode, "populate") == 0) {
    if (madvise((void*)from, HUGE, MADV_POPULATE_READ) < 0) die("MADV_POPULATE_READ");
  } else if (strcmp(src_mode, "pread") == 0) {
    if (pread(src_fd, bounce, HUGE, (off_t)(i * HUGE)) != (ssize_t)HUGE) die("pread");
    from = bounce;
  }
  struct uffdio_copy c = {.dst = (uint64_t)(uintptr_t)(fill + i * HUGE), .src = (uint64_t)(uintptr_t)from,
                          .len = HUGE, .mode = UFFDIO_COPY_MODE_DONTWAKE};
  if (ioctl(fill_uffd, UFFDIO_COPY, &c) < 0 && errno != EEXIST) die("UFFDIO_COPY");
  if (strcmp(src_mode, "cold") == 0) madvise((void*)from, HUGE, MADV_DONTNEED);  // as DropCache
  state[i] = 2;
  wake(i);
}

// Claims page i (0 -> 1); true when this thread is to fill it.
static int claim(size_t i) {
  int expect = 0;
  return atomic_compare_exchange_strong(&state[i], &expect, 1);
}

static void* pager_thread(void* arg) {
  (void)arg;
  unsigned char* bounce = mmap(NULL, HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  while (!done_flag) {
    struct uffd_msg msg;
    ssize_t n = read(client_uffd, &msg, sizeof msg);
    if (n == sizeof msg && msg.event == UFFD_EVENT_PAGEFAULT) {
      size_t i = (msg.arg.pagefault.address - client_base) / HUGE;
      size_t lim = i + 1 + ahead;
      if (lim > npages) lim = npages;
      size_t cur = limit_page;
      while (cur < lim && !atomic_compare_exchange_weak(&limit_page, &cur, lim)) {
      }
      if (claim(i)) {
        fill_page(i, bounce);
      } else {
        while (state[i] != 2) __builtin_ia32_pause();
        wake(i);
      }
      size_t nx = next_page;
      while (nx <= i && !atomic_compare_exchange_weak(&next_page, &nx, i + 1)) {
      }
      continue;
    }
    // Read-ahead: the next page below the limit.
    size_t nx = next_page;
    if (nx < limit_page) {
      if (atomic_compare_exchange_weak(&next_page, &nx, nx + 1) && claim(nx)) fill_page(nx, bounce);
      continue;
    }
    struct pollfd p = {client_uffd, POLLIN, 0};
    poll(&p, 1, 10);
  }
  return NULL;
}

int main(int argc, char** argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: huge_fill SOURCE MIB cold|populate|premapped|pread THREADS AHEAD\n");
    return 2;
  }
  const char* path = argv[1];
  size_t len = strtoull(argv[2], NULL, 0) << 20;
  src_mode = argv[3];
  int threads = atoi(argv[4]);
  ahead = strtoull(argv[5], NULL, 0);
  npages = len / HUGE;
  src_fd = open(path, O_RDONLY);
  if (src_fd < 0) die(path);
  int mfd = memfd_create("huge_fill", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB | (21U << 26));
  if (mfd < 0) die("memfd_create(MFD_HUGETLB)");
  if (ftruncate(mfd, (off_t)len) < 0) die("ftruncate");
  fill = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);  // reserves the pool pages
  if (fill == MAP_FAILED) die("mmap(fill): is vm.nr_hugepages large enough?");
  if (fcntl(mfd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0) die("F_ADD_SEALS");
  fill_uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
  struct uffdio_api api = {.api = UFFD_API};
  if (fill_uffd < 0 || ioctl(fill_uffd, UFFDIO_API, &api) < 0) die("userfaultfd(fill)");
  struct uffdio_register reg = {.range = {(uint64_t)(uintptr_t)fill, len}, .mode = UFFDIO_REGISTER_MODE_MISSING};
  if (ioctl(fill_uffd, UFFDIO_REGISTER, &reg) < 0) die("UFFDIO_REGISTER(fill)");
  src = mmap(NULL, len, PROT_READ, MAP_SHARED | (strcmp(src_mode, "premapped") == 0 ? MAP_POPULATE : 0), src_fd, 0);
  if (src == MAP_FAILED) die("mmap(source)");
  state = calloc(npages, sizeof *state);

  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) < 0) die("socketpair");
  pid_t pid = fork();
  if (pid == 0) {  // the client
    close(sv[0]);
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", mfd);
    int ro = open(proc, O_RDONLY);
    if (ro < 0) die("reopen");
    unsigned char* p = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_NORESERVE, ro, 0);
    if (p == MAP_FAILED) die("mmap(client)");
    int u = (int)syscall(SYS_userfaultfd, O_CLOEXEC);
    struct uffdio_api a = {.api = UFFD_API};
    if (u < 0 || ioctl(u, UFFDIO_API, &a) < 0) die("userfaultfd(client)");
    struct uffdio_register r = {.range = {(uint64_t)(uintptr_t)p, len}, .mode = UFFDIO_REGISTER_MODE_MISSING};
    if (ioctl(u, UFFDIO_REGISTER, &r) < 0) die("UFFDIO_REGISTER(client)");
    uint64_t base = (uint64_t)(uintptr_t)p;
    if (write(sv[1], &base, sizeof base) != sizeof base) die("write");
    send_fd(sv[1], u);
    char go;
    if (read(sv[1], &go, 1) != 1) die("read(go)");
    const size_t chunk = 4 << 20;
    unsigned char* buf = malloc(chunk);
    memset(buf, 1, chunk);
    uint64_t check = 0;
    struct rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    double t0 = now();
    // HUGE_FILL_TOUCH=1: read only the first word of each 4 KiB page instead of copying it all
    // (what a reader that copies nothing costs: the paging alone).
    const int touch_only = getenv("HUGE_FILL_TOUCH") != NULL;
    for (size_t off = 0; off < len; off += chunk) {
      if (touch_only) {
        for (size_t i = 0; i < chunk; i += 4096) check ^= *(const volatile uint64_t*)(p + off + i);
        continue;
      }
      memcpy(buf, p + off, chunk);
      for (size_t i = 0; i < chunk; i += 4096) check ^= *(uint64_t*)(buf + i);
    }
    double secs = now() - t0;
    getrusage(RUSAGE_SELF, &r1);
    double user = (r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) * 1e3 + (r1.ru_utime.tv_usec - r0.ru_utime.tv_usec) / 1e3;
    double sys = (r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) * 1e3 + (r1.ru_stime.tv_usec - r0.ru_stime.tv_usec) / 1e3;
    printf("client: %.2f GB/s (%.0f ms; user %.0f ms, sys %.0f ms, minor faults %ld)\n", len / secs / 1e9, secs * 1e3,
           user, sys, r1.ru_minflt - r0.ru_minflt);
    fflush(stdout);
    if (write(sv[1], &check, sizeof check) != sizeof check) die("write(check)");
    _exit(0);
  }
  close(sv[1]);
  uint64_t base;
  if (read(sv[0], &base, sizeof base) != sizeof base) die("read(base)");
  client_base = base;
  client_uffd = recv_fd(sv[0]);
  int fl = fcntl(client_uffd, F_GETFL);
  fcntl(client_uffd, F_SETFL, fl | O_NONBLOCK);
  pthread_t tids[64];
  for (int t = 0; t < threads; t++) pthread_create(&tids[t], NULL, pager_thread, NULL);
  struct rusage r0, r1;
  getrusage(RUSAGE_SELF, &r0);
  if (write(sv[0], "g", 1) != 1) die("write(go)");
  uint64_t check;
  if (read(sv[0], &check, sizeof check) != sizeof check) die("read(check)");
  getrusage(RUSAGE_SELF, &r1);
  done_flag = 1;
  for (int t = 0; t < threads; t++) pthread_join(tids[t], NULL);
  waitpid(pid, NULL, 0);
  // The bytes: the same XOR over the source.
  uint64_t want = 0;
  for (size_t off = 0; off < len; off += 4096) {
    uint64_t w;
    if (pread(src_fd, &w, 8, (off_t)off) != 8) die("pread(check)");
    want ^= w;
  }
  double cpu = (r1.ru_utime.tv_sec - r0.ru_utime.tv_sec + r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) * 1e3 +
               (r1.ru_utime.tv_usec - r0.ru_utime.tv_usec + r1.ru_stime.tv_usec - r0.ru_stime.tv_usec) / 1e3;
  printf("pager: %s, %d thread(s), ahead %zu: CPU %.0f ms; bytes %s\n", src_mode, threads, ahead, cpu,
         check == want ? "match" : "DIFFER");
  return check == want ? 0 : 1;
}
