// fault_order: in which order does memcpy touch the pages of its source?
//
// A pager sees a reader only through its faults. This maps an anonymous range registered with
// a userfaultfd, memcpy's all of it into a buffer, and prints the order of the pages the faults
// came for (a helper thread serves each with one page). On the 2-core x86-64 VMs this project
// is benchmarked on, glibc's memcpy of 1-16 MiB touches page 0, then the last page, then walks
// down: a read-ahead that only grows forward gives such a reader one page per fault.
//
//   cc -O2 -o fault_order bench/probes/fault_order.c -lpthread && ./fault_order [MiB]
// (needs the userfaultfd system call: root, or vm.unprivileged_userfaultfd=1)
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PAGE 4096
#define MAX_RECORDED 65536

static int uffd;
static uint8_t* src;
static long order[MAX_RECORDED];
static volatile int faults;

static void die(const char* what) {
  fprintf(stderr, "fault_order: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void* serve(void* arg) {
  (void)arg;
  static uint8_t page[PAGE];
  struct pollfd p = {.fd = uffd, .events = POLLIN};
  for (;;) {
    if (poll(&p, 1, -1) < 0 && errno != EINTR) die("poll");
    struct uffd_msg m;
    if (read(uffd, &m, sizeof m) != sizeof m || m.event != UFFD_EVENT_PAGEFAULT) continue;
    uint64_t at = m.arg.pagefault.address & ~(uint64_t)(PAGE - 1);
    if (faults < MAX_RECORDED) order[faults] = (long)((at - (uint64_t)(uintptr_t)src) / PAGE);
    faults++;
    struct uffdio_copy c = {.dst = at, .src = (uint64_t)(uintptr_t)page, .len = PAGE};
    if (ioctl(uffd, UFFDIO_COPY, &c) < 0 && errno != EEXIST) die("UFFDIO_COPY");
  }
  return NULL;
}

int main(int argc, char** argv) {
  size_t len = (size_t)(argc > 1 ? atol(argv[1]) : 4) << 20;
  uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);
  if (uffd < 0) die("userfaultfd");
  struct uffdio_api api = {.api = UFFD_API};
  if (ioctl(uffd, UFFDIO_API, &api) < 0) die("UFFDIO_API");
  src = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (src == MAP_FAILED) die("mmap");
  struct uffdio_register reg = {.range = {.start = (uint64_t)(uintptr_t)src, .len = len},
                                .mode = UFFDIO_REGISTER_MODE_MISSING};
  if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0) die("UFFDIO_REGISTER");
  pthread_t t;
  if (pthread_create(&t, NULL, serve, NULL) != 0) die("pthread_create");
  uint8_t* dst = malloc(len);
  if (dst == NULL) die("malloc");
  memset(dst, 1, len);
  memcpy(dst, src, len);
  __asm__ volatile("" ::: "memory");  // the copy must happen: dst is read below
  printf("memcpy of %zu MiB (dst[0]=%d): %d faults for %zu pages; pages in fault order:", len >> 20, dst[0], faults,
         len / PAGE);
  for (int i = 0; i < faults && i < 12; i++) printf(" %ld", order[i]);
  printf(" ...");
  for (int i = faults > 12 ? faults - 4 : 12; i < faults && i < MAX_RECORDED; i++) printf(" %ld", order[i]);
  printf("\n");
  return 0;
}
