// Probe for issue 12 (another holder's zero pages): can a reader that maps a sealed memfd
// MAP_PRIVATE read-only register it MISSING|MINOR with its own uffd, and can ANOTHER process (the
// pager) holding that uffd answer both kinds of fault with UFFDIO_CONTINUE, after filling the
// shared page cache through its own writable shared mapping? Also: a holder's zero page (a third
// mapping without a uffd) and root's fallocate become MINOR faults of the reader, and the pager's
// plain write through its mapping replaces them; CONTINUE on a MISSING-only registration fails.
//   cc -O2 -o /tmp/minor_fault bench/probes/minor_fault.c && /tmp/minor_fault [huge] [umo] [missing-only]
// Result on 6.18 (see docs/hardening.md): every line "ok" for 4 KiB and hugetlb memfds, with
// and without UFFD_USER_MODE_ONLY; CONTINUE on a MISSING-only range: EINVAL.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MFD_HUGE_2MB
#define MFD_HUGE_2MB (21U << 26)
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

static void die(const char* what) { perror(what); exit(1); }

static void send_fd(int sock, int fd, uint64_t addr) {
  char cbuf[CMSG_SPACE(sizeof(int))] = {0};
  struct iovec iov = {&addr, sizeof addr};
  struct msghdr m = {0};
  m.msg_iov = &iov; m.msg_iovlen = 1; m.msg_control = cbuf; m.msg_controllen = sizeof cbuf;
  struct cmsghdr* c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_SOCKET; c->cmsg_type = SCM_RIGHTS; c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof fd);
  if (sendmsg(sock, &m, 0) < 0) die("sendmsg");
}
static int recv_fd(int sock, uint64_t* addr) {
  char cbuf[CMSG_SPACE(sizeof(int))];
  struct iovec iov = {addr, sizeof *addr};
  struct msghdr m = {0};
  m.msg_iov = &iov; m.msg_iovlen = 1; m.msg_control = cbuf; m.msg_controllen = sizeof cbuf;
  if (recvmsg(sock, &m, 0) <= 0) die("recvmsg");
  int fd; memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof fd);
  return fd;
}

int main(int argc, char** argv) {
  int huge = 0, umo = 0, missing_only = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "huge")) huge = 1;
    if (!strcmp(argv[i], "umo")) umo = 1;
    if (!strcmp(argv[i], "missing-only")) missing_only = 1;
  }
  const uint64_t page = huge ? 2 << 20 : 4096, npages = 5, size = page * npages;
  int memfd = memfd_create("probe", MFD_ALLOW_SEALING | (huge ? MFD_HUGETLB | MFD_HUGE_2MB : 0));
  if (memfd < 0) die("memfd_create");
  if (ftruncate(memfd, size)) die("ftruncate");
  fchmod(memfd, 0444);
  uint8_t* fill = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
  if (fill == MAP_FAILED) die("mmap fill");
  if (fcntl(memfd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL)) die("seal");
  int fill_uffd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
  struct uffdio_api api = {.api = UFFD_API};
  if (ioctl(fill_uffd, UFFDIO_API, &api)) die("api fill");
  struct uffdio_register reg = {.range = {(uint64_t)fill, size}, .mode = UFFDIO_REGISTER_MODE_MISSING};
  if (ioctl(fill_uffd, UFFDIO_REGISTER, &reg)) die("register fill");
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", memfd);
  int ro = open(path, O_RDONLY);
  uint8_t* src = aligned_alloc(page, page);
  // Page 2 filled by the pager before the reader exists.
  memset(src, 0x22, page);
  struct uffdio_copy cp = {.dst = (uint64_t)fill + 2 * page, .src = (uint64_t)src, .len = page};
  if (ioctl(fill_uffd, UFFDIO_COPY, &cp)) die("copy page 2");
  // Page 1: a holder maps its handle without a uffd and touches it: a zero page in the cache.
  uint8_t* holder = mmap(NULL, size, PROT_READ, MAP_SHARED, ro, 0);
  if (holder == MAP_FAILED) die("mmap holder");
  printf("holder reads page 1: %d (zero page allocated into the cache)\n", holder[page]);
  // Page 3: fallocate through a read-write reopen (root).
  int rw = open(path, O_RDWR);
  if (rw < 0) printf("reopen O_RDWR: %s\n", strerror(errno));
  else printf("fallocate page 3: %s\n", fallocate(rw, 0, 3 * page, page) ? strerror(errno) : "done");
  int sv[2];
  socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv);
  pid_t child = fork();
  if (child == 0) {
    close(sv[0]);
    int u = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | (umo ? UFFD_USER_MODE_ONLY : 0));
    if (u < 0) die("child userfaultfd");
    struct uffdio_api a = {.api = UFFD_API, .features = missing_only ? 0 : (UFFD_FEATURE_MINOR_SHMEM | UFFD_FEATURE_MINOR_HUGETLBFS)};
    if (ioctl(u, UFFDIO_API, &a)) die("child api");
    uint8_t* m = mmap(NULL, size, PROT_READ, MAP_PRIVATE | (huge ? MAP_NORESERVE : 0), ro, 0);
    if (m == MAP_FAILED) die("child mmap");
    struct uffdio_register r = {.range = {(uint64_t)m, size},
                                .mode = UFFDIO_REGISTER_MODE_MISSING | (missing_only ? 0 : UFFDIO_REGISTER_MODE_MINOR)};
    if (ioctl(u, UFFDIO_REGISTER, &r)) die("child register MISSING|MINOR");
    send_fd(sv[1], u, (uint64_t)m);
    for (int p = 0; p < 4; p++) printf("reader page %d: 0x%02x\n", p, m[p * page]);
    fflush(stdout);
    _exit(0);
  }
  close(sv[1]);
  uint64_t addr;
  int cu = recv_fd(sv[0], &addr);
  for (;;) {
    struct pollfd pf = {cu, POLLIN, 0};
    if (poll(&pf, 1, 2000) <= 0) { printf("no more faults\n"); break; }
    struct uffd_msg msg;
    if (read(cu, &msg, sizeof msg) != sizeof msg) break;
    uint64_t at = msg.arg.pagefault.address & ~(page - 1);
    uint64_t p = (at - addr) / page;
    int minor = (msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_MINOR) != 0;
    printf("fault page %lu: %s\n", (unsigned long)p, minor ? "MINOR" : "MISSING");
    memset(src, 0x10 + (int)p, page);
    if (!minor) {
      struct uffdio_copy c = {.dst = (uint64_t)fill + p * page, .src = (uint64_t)src, .len = page, .mode = UFFDIO_COPY_MODE_DONTWAKE};
      if (ioctl(fill_uffd, UFFDIO_COPY, &c)) printf("  copy: %s\n", strerror(errno));
    } else if (p != 2) {
      // A page the pager did not fill: write the right bytes over it through its own mapping.
      memcpy(fill + p * page, src, page);
      printf("  overwrote through the pager's mapping\n");
    }
    struct uffdio_continue k = {.range = {at, page}};
    if (ioctl(cu, UFFDIO_CONTINUE, &k)) {
      printf("  CONTINUE: %s (mapped %lld)\n", strerror(errno), (long long)k.mapped);
      struct uffdio_range w = {at, page};
      ioctl(cu, UFFDIO_WAKE, &w);
    } else {
      printf("  CONTINUE ok\n");
    }
  }
  int st;
  waitpid(child, &st, 0);
  printf("holder now reads page 1: 0x%02x\n", holder[page]);
  return 0;
}
