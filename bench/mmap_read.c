// mmap_read: the benchmark's reader for contenders that are plain files (the kernel's ext4 over
// a loop device, fuse2fs), and the memfd fill ceiling. Node has no mmap, and a fair comparison
// with the pager's FileMapping reads through a mapping too. Compiled by bench/run.ts with
// `cc -O2` into a temporary directory. Prints one JSON object on stdout.
//
//   mmap_read seq FILE CHUNK            map FILE, copy it out CHUNK bytes at a time (first touch
//                                       of every page), time the whole pass; also says how many
//                                       pages were already resident (mincore) before it
//   mmap_read rand FILE N SPACING SEED  map FILE with MADV_RANDOM (no read-ahead), copy out one
//                                       4 KiB page at N distinct random SPACING-aligned offsets,
//                                       time each; also says how many were already resident
//   mmap_read fill FILE OFFSET LEN CHUNK  pwrite LEN bytes of FILE (from OFFSET, mapped with
//                                       MAP_POPULATE so the source is in memory) into a fresh
//                                       memfd, CHUNK bytes per call: the kernel's fill rate
//   mmap_read fill-huge FILE OFFSET LEN CHUNK [prefault]  the same into a hugetlb memfd
//                                       (MFD_HUGETLB, 2 MiB pages; no write(2) on hugetlbfs, so
//                                       memcpy CHUNK at a time into a shared mapping): fresh pages
//                                       (each faulted in and zeroed by the kernel on first write),
//                                       or with prefault pages allocated before the timing (the copy
//                                       alone): the huge-page ceilings
//   mmap_read rtt-memfd N               a bare round trip between two processes over a
//                                       SOCK_SEQPACKET socketpair: a 64-byte request, a reply that
//                                       carries a new memfd (SCM_RIGHTS), N times; the floor under
//                                       RegisterFile's latency (prints p50 and p99 in us)
//   mmap_read touch MIB                 touches MIB MiB of fresh anonymous memory, page by page, and
//                                       frees it: run just before a timed first read, so that the
//                                       guest pages the contender is about to allocate are backed by
//                                       the host (on a VM, the first touch of a guest page the host
//                                       has not backed yet costs several times a normal fault)
//   mmap_read seq-pager SIZE CHUNK      as seq and rand, on a file of this project's pager: fd 3 is
//   mmap_read rand-pager SIZE N SPACING SEED   the file's handle (its VMO, SIZE bytes), fd 4 a
//                                       socket to the benchmark. The reader maps fd 3 MAP_PRIVATE
//                                       read-only and registers it with its own userfaultfd, as the
//                                       client library does; sends the benchmark the mapping's
//                                       address and length (two little-endian u64) with the uffd
//                                       (SCM_RIGHTS), and waits for one byte back: the benchmark
//                                       has handed it to the pager (Mapper.AttachMapping). So the
//                                       pager is read by the same code, timed the same way, as
//                                       every other contender.
//
// Every mode prints `check`: the XOR of the first 8 bytes of every page it touched, so the
// caller can compare the bytes each contender returned with the source file's.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096

static void die(const char* what) {
  fprintf(stderr, "mmap_read: %s: %s\n", what, strerror(errno));
  exit(1);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t word(const unsigned char* p) {
  uint64_t w;
  memcpy(&w, p, sizeof w);
  return w;
}

static void* map_file(const char* path, size_t* size, int flags) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) die(path);
  struct stat st;
  if (fstat(fd, &st) < 0) die("fstat");
  *size = (size_t)st.st_size;
  void* p = mmap(NULL, *size, PROT_READ, MAP_SHARED | flags, fd, 0);
  if (p == MAP_FAILED) die("mmap");
  close(fd);
  return p;
}

// The reader's own CPU time and page faults, for the time split of a first read.
struct usage {
  double user_ms, sys_ms;
  long minflt;
};
static struct usage usage_now(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  struct usage u = {ru.ru_utime.tv_sec * 1e3 + ru.ru_utime.tv_usec / 1e3,
                    ru.ru_stime.tv_sec * 1e3 + ru.ru_stime.tv_usec / 1e3, ru.ru_minflt};
  return u;
}

static int seq_mapped(const unsigned char* p, size_t size, size_t chunk) {
  unsigned char* buf = malloc(chunk);
  if (buf == NULL) die("malloc");
  memset(buf, 0, chunk);  // fault the destination in before timing
  // A first read must find nothing of the file in memory: count the pages already resident.
  size_t pages = (size + PAGE - 1) / PAGE, resident = 0;
  unsigned char* vec = malloc(pages ? pages : 1);
  if (vec == NULL) die("malloc");
  if (size > 0 && mincore((void*)p, size, vec) < 0) die("mincore");
  for (size_t i = 0; i < pages; i++) resident += vec[i] & 1;
  free(vec);
  uint64_t check = 0;
  struct usage u0 = usage_now();
  double t0 = now();
  for (size_t off = 0; off < size; off += chunk) {
    size_t n = size - off < chunk ? size - off : chunk;
    memcpy(buf, p + off, n);
    for (size_t i = 0; i + 8 <= n; i += PAGE) check ^= word(buf + i);
  }
  double secs = now() - t0;
  struct usage u1 = usage_now();
  printf("{\"mode\":\"seq\",\"bytes\":%zu,\"seconds\":%.6f,\"alreadyResident\":%zu,\"check\":\"%016llx\","
         "\"userMs\":%.1f,\"sysMs\":%.1f,\"minorFaults\":%ld}\n",
         size, secs, resident, (unsigned long long)check, u1.user_ms - u0.user_ms, u1.sys_ms - u0.sys_ms,
         u1.minflt - u0.minflt);
  return 0;
}

static int seq(const char* path, size_t chunk) {
  size_t size;
  const unsigned char* p = map_file(path, &size, 0);
  return seq_mapped(p, size, chunk);
}

static uint64_t rng_state;
static uint64_t rng(void) {  // xorshift64*: reproducible from the seed
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 2685821657736338717ULL;
}

static int rnd_mapped(const unsigned char* p, size_t size, size_t n, size_t spacing, uint64_t seed) {
  size_t slots = size / spacing;
  if (n > slots) n = slots;
  // n distinct slots: a partial Fisher-Yates shuffle of the slot numbers.
  uint32_t* order = malloc(slots * sizeof *order);
  double* lat = malloc(n * sizeof *lat);
  if (order == NULL || lat == NULL) die("malloc");
  for (size_t i = 0; i < slots; i++) order[i] = (uint32_t)i;
  rng_state = seed ? seed : 1;
  for (size_t i = 0; i < n; i++) {
    size_t j = i + rng() % (slots - i);
    uint32_t t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  unsigned char buf[PAGE];
  unsigned char vec;
  size_t resident = 0;
  uint64_t check = 0;
  for (size_t i = 0; i < n; i++) {
    const unsigned char* page = p + (size_t)order[i] * spacing;
    if (mincore((void*)page, PAGE, &vec) == 0 && (vec & 1)) resident++;
    double t0 = now();
    memcpy(buf, page, PAGE);
    lat[i] = (now() - t0) * 1e6;
    check ^= word(buf);
  }
  printf("{\"mode\":\"rand\",\"samples\":%zu,\"alreadyResident\":%zu,\"check\":\"%016llx\",\"latencyUs\":[", n, resident,
         (unsigned long long)check);
  for (size_t i = 0; i < n; i++) printf("%s%.2f", i ? "," : "", lat[i]);
  printf("],\"offsets\":[");
  for (size_t i = 0; i < n; i++) printf("%s%zu", i ? "," : "", (size_t)order[i] * spacing);
  printf("]}\n");
  return 0;
}

static int rnd(const char* path, size_t n, size_t spacing, uint64_t seed) {
  size_t size;
  unsigned char* p = map_file(path, &size, 0);
  if (madvise(p, size, MADV_RANDOM) < 0) die("madvise(MADV_RANDOM)");
  return rnd_mapped(p, size, n, spacing, seed);
}

// Maps the pager's file (fd 3, `size` bytes) as the client library does: MAP_PRIVATE, read-only,
// registered for missing faults with a new userfaultfd that the pager will serve; hands the uffd
// to the benchmark over fd 4 and waits until the pager has it. (No SIGBUS guard: a page the pager
// cannot supply kills this reader, and the benchmark reports that.)
static const unsigned char* map_pager_file(size_t size) {
  const int file_fd = 3, sock_fd = 4;
  // A file on huge pages (a hugetlb memfd) is mapped in whole 2 MiB pages, reserving nothing, as
  // the client library does.
  size_t page = PAGE;
  int extra = 0;
  struct statfs sf;
  struct stat st;
  if (fstatfs(file_fd, &sf) == 0 && (unsigned long)sf.f_type == 0x958458f6UL && fstat(file_fd, &st) == 0) {
    page = (size_t)st.st_blksize;
    extra = MAP_NORESERVE;
  }
  size_t len = (size + page - 1) / page * page;
  void* p = mmap(NULL, len, PROT_READ, MAP_PRIVATE | extra, file_fd, 0);
  if (p == MAP_FAILED) die("mmap(pager file)");
  close(file_fd);
  int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
  if (uffd < 0) die("userfaultfd");
#ifndef UFFD_FEATURE_POISON
#define UFFD_FEATURE_POISON (1 << 14)
#endif
  // POISON: how the pager fails a page it cannot read (the client library asks for it too).
  struct uffdio_api api = {.api = UFFD_API, .features = UFFD_FEATURE_POISON};
  if (ioctl(uffd, UFFDIO_API, &api) < 0) die("UFFDIO_API");
  struct uffdio_register reg = {.range = {.start = (uint64_t)(uintptr_t)p, .len = len},
                                .mode = UFFDIO_REGISTER_MODE_MISSING};
  if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0) die("UFFDIO_REGISTER");
  uint64_t where[2] = {(uint64_t)(uintptr_t)p, len};
  struct iovec iov = {.iov_base = where, .iov_len = sizeof where};
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } control;
  memset(&control, 0, sizeof control);
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                       .msg_controllen = sizeof control.buf};
  struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &uffd, sizeof uffd);
  if (sendmsg(sock_fd, &msg, MSG_NOSIGNAL) != (ssize_t)sizeof where) die("sendmsg(uffd)");
  close(uffd);  // the registration lives on in the pager's copy of the uffd
  // The socket may come non-blocking (the benchmark's channels are); wait for the answer.
  int fl = fcntl(sock_fd, F_GETFL);
  if (fl < 0 || fcntl(sock_fd, F_SETFL, fl & ~O_NONBLOCK) < 0) die("fcntl(socket)");
  char ack;
  ssize_t r;
  do r = recv(sock_fd, &ack, 1, 0);
  while (r < 0 && errno == EINTR);
  if (r != 1) {
    if (r == 0) errno = EPIPE;
    die("waiting for the pager to take the uffd");
  }
  return p;
}

static int fill(const char* path, size_t offset, size_t len, size_t chunk) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) die(path);
  size_t map_off = offset & ~(size_t)(PAGE - 1);
  size_t delta = offset - map_off;
  const unsigned char* src = mmap(NULL, len + delta, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, (off_t)map_off);
  if (src == MAP_FAILED) die("mmap(source)");
  src += delta;
  close(fd);
  int mfd = memfd_create("bench-ceiling", MFD_CLOEXEC);
  if (mfd < 0) die("memfd_create");
  uint64_t check = 0;
  double t0 = now();
  for (size_t off = 0; off < len; off += chunk) {
    size_t n = len - off < chunk ? len - off : chunk;
    size_t done = 0;
    while (done < n) {
      ssize_t w = pwrite(mfd, src + off + done, n - done, (off_t)(off + done));
      if (w < 0) {
        if (errno == EINTR) continue;
        die("pwrite(memfd)");
      }
      done += (size_t)w;
    }
  }
  double secs = now() - t0;
  // The check reads the memfd back (outside the timing): the bytes really landed.
  unsigned char b[8];
  for (size_t off = 0; off + 8 <= len; off += PAGE) {
    if (pread(mfd, b, 8, (off_t)off) != 8) die("pread(memfd)");
    check ^= word(b);
  }
  close(mfd);
  printf("{\"mode\":\"fill\",\"bytes\":%zu,\"seconds\":%.6f,\"check\":\"%016llx\"}\n", len, secs,
         (unsigned long long)check);
  return 0;
}

#ifndef MFD_HUGETLB
#define MFD_HUGETLB 4U
#endif
static int fill_huge(const char* path, size_t offset, size_t len, size_t chunk, int prefault) {
  const size_t huge = 2 << 20;
  int fd = open(path, O_RDONLY);
  if (fd < 0) die(path);
  size_t map_off = offset & ~(size_t)(PAGE - 1);
  size_t delta = offset - map_off;
  const unsigned char* src = mmap(NULL, len + delta, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, (off_t)map_off);
  if (src == MAP_FAILED) die("mmap(source)");
  src += delta;
  close(fd);
  int mfd = memfd_create("bench-huge-ceiling", MFD_CLOEXEC | MFD_HUGETLB | (21U << 26));
  if (mfd < 0) die("memfd_create(MFD_HUGETLB)");
  size_t mapped = (len + huge - 1) / huge * huge;
  if (ftruncate(mfd, (off_t)mapped) < 0) die("ftruncate(hugetlb memfd)");
  unsigned char* dst = mmap(NULL, mapped, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
  if (dst == MAP_FAILED) die("mmap(hugetlb memfd): is the pool (vm.nr_hugepages) large enough?");
  // prefault: the huge pages are allocated (and zeroed by the kernel) before the timing, so only
  // the copy is timed; otherwise each first write faults in (and zeroes) a fresh huge page.
  if (prefault)
    for (size_t off = 0; off < mapped; off += huge) dst[off] = 0;
  double t0 = now();
  for (size_t off = 0; off < len; off += chunk) {
    size_t n = len - off < chunk ? len - off : chunk;
    memcpy(dst + off, src + off, n);
  }
  double secs = now() - t0;
  uint64_t check = 0;
  for (size_t off = 0; off + 8 <= len; off += PAGE) check ^= word(dst + off);
  munmap(dst, mapped);
  close(mfd);
  printf("{\"mode\":\"fill-huge\",\"bytes\":%zu,\"seconds\":%.6f,\"check\":\"%016llx\"}\n", len, secs,
         (unsigned long long)check);
  return 0;
}

static int cmp_double(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

static int rtt_memfd(size_t n) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) die("socketpair");
  pid_t child = fork();
  if (child < 0) die("fork");
  if (child == 0) {
    close(sv[0]);
    char req[64];
    for (;;) {
      ssize_t r = recv(sv[1], req, sizeof req, 0);
      if (r <= 0) _exit(0);
      int mfd = memfd_create("rtt", MFD_CLOEXEC | MFD_ALLOW_SEALING);
      if (mfd < 0) _exit(1);
      char reply[32] = {0};
      struct iovec iov = {.iov_base = reply, .iov_len = sizeof reply};
      union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
      } control;
      memset(&control, 0, sizeof control);
      struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf};
      struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      memcpy(CMSG_DATA(c), &mfd, sizeof mfd);
      if (sendmsg(sv[1], &msg, MSG_NOSIGNAL) < 0) _exit(1);
      close(mfd);
    }
  }
  close(sv[1]);
  double* us = malloc(n * sizeof(double));
  if (us == NULL) die("malloc");
  char req[64] = {1};
  for (size_t i = 0; i < n; i++) {
    double t0 = now();
    if (send(sv[0], req, sizeof req, MSG_NOSIGNAL) != (ssize_t)sizeof req) die("send");
    char reply[32];
    struct iovec iov = {.iov_base = reply, .iov_len = sizeof reply};
    union {
      char buf[CMSG_SPACE(sizeof(int))];
      struct cmsghdr align;
    } control;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf};
    if (recvmsg(sv[0], &msg, MSG_CMSG_CLOEXEC) <= 0) die("recvmsg");
    struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
    if (c == NULL || c->cmsg_type != SCM_RIGHTS) {
      errno = EPROTO;
      die("reply without an fd");
    }
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof fd);
    us[i] = (now() - t0) * 1e6;
    close(fd);
  }
  close(sv[0]);
  waitpid(child, NULL, 0);
  qsort(us, n, sizeof(double), cmp_double);
  printf("{\"mode\":\"rtt-memfd\",\"calls\":%zu,\"p50Us\":%.2f,\"p99Us\":%.2f}\n", n, us[n / 2], us[(n * 99) / 100]);
  free(us);
  return 0;
}

static int touch(size_t mib) {
  size_t len = mib << 20;
  unsigned char* p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) die("mmap(touch)");
  double t0 = now();
  for (size_t off = 0; off < len; off += PAGE) p[off] = 1;
  double secs = now() - t0;
  munmap(p, len);
  printf("{\"mode\":\"touch\",\"bytes\":%zu,\"seconds\":%.6f}\n", len, secs);
  return 0;
}

int main(int argc, char** argv) {
  if (argc >= 3 && strcmp(argv[1], "touch") == 0) return touch(strtoull(argv[2], NULL, 0));
  if (argc >= 4 && strcmp(argv[1], "seq") == 0) return seq(argv[2], strtoull(argv[3], NULL, 0));
  if (argc >= 6 && strcmp(argv[1], "rand") == 0)
    return rnd(argv[2], strtoull(argv[3], NULL, 0), strtoull(argv[4], NULL, 0), strtoull(argv[5], NULL, 0));
  if (argc >= 6 && strcmp(argv[1], "fill") == 0)
    return fill(argv[2], strtoull(argv[3], NULL, 0), strtoull(argv[4], NULL, 0), strtoull(argv[5], NULL, 0));
  if (argc >= 6 && strcmp(argv[1], "fill-huge") == 0)
    return fill_huge(argv[2], strtoull(argv[3], NULL, 0), strtoull(argv[4], NULL, 0), strtoull(argv[5], NULL, 0),
                     argc >= 7 && strcmp(argv[6], "prefault") == 0);
  if (argc >= 3 && strcmp(argv[1], "rtt-memfd") == 0) return rtt_memfd(strtoull(argv[2], NULL, 0));
  if (argc >= 4 && strcmp(argv[1], "seq-pager") == 0) {
    size_t size = strtoull(argv[2], NULL, 0);
    return seq_mapped(map_pager_file(size), size, strtoull(argv[3], NULL, 0));
  }
  if (argc >= 6 && strcmp(argv[1], "rand-pager") == 0) {
    size_t size = strtoull(argv[2], NULL, 0);
    return rnd_mapped(map_pager_file(size), size, strtoull(argv[3], NULL, 0), strtoull(argv[4], NULL, 0),
                      strtoull(argv[5], NULL, 0));
  }
  fprintf(stderr,
          "usage: mmap_read seq FILE CHUNK | rand FILE N SPACING SEED | fill FILE OFFSET LEN CHUNK\n"
          "       | touch MIB | seq-pager SIZE CHUNK | rand-pager SIZE N SPACING SEED (fd 3: the file, fd 4: socket)\n");
  return 2;
}
