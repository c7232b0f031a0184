// A hostile client of the Mapper, in C because it does what the client library never would with
// its own userfaultfd: asks for fork/remap events, clears O_NONBLOCK on the description it shares
// with the server, forks hundreds of times, moves its mapping, or declares an offset it did not map.
//
//   uffd_client MAPPER_SOCKET ADDRESS LENGTH MAP_OFFSET FEATURES REQUEST_HEX ACTION...
// fd 3 is the file's handle (a memfd the Pager gave out). The client maps LENGTH bytes of it from
// MAP_OFFSET at ADDRESS (MAP_PRIVATE, read-only, MAP_FIXED_NOREPLACE), registers the range with a
// new uffd (UFFD_FEATURE_POISON | FEATURES), and sends REQUEST_HEX (an AttachMapping request the
// test encoded for that address, with handles [fd 3, uffd]) on MAPPER_SOCKET. It prints
// "reply HEX" (the reply's bytes; "refused" and exit 4 if AttachMapping failed), then runs the actions in order, one output line each:
//   blocking          clears O_NONBLOCK on the uffd ("blocking")
//   toggle:US         starts a thread that clears O_NONBLOCK, then sets it, every US microseconds,
//                     until exit ("toggling"): the server's reads race with a cleared flag
//   touch:N:GAP_US    reads one byte of N pages spread over the mapping, GAP_US apart
//                     ("touched N sigbus S sum X": S pages failed with SIGBUS, X a sum of the bytes)
//   page:I            prints "page I HEX" with the first 16 bytes of page I (or "page I sigbus")
//   fork:N            forks N times, each child exits at once ("forked N")
//   mremap:ADDRESS    moves the whole mapping to ADDRESS ("moved")
//   dontneed          madvise(MADV_DONTNEED) over the whole mapping ("dropped")
//   munmap            unmaps the whole mapping ("unmapped"; touch nothing after it)
//   detach            closes the Mapper connection, the mapping kept ("detached"): the server
//                     detaches the mapping while it still exists
//   sleep:MS          ("slept")
// then exits 0. Built by the tests (test/support/c_helper.ts), not part of the product.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef UFFD_FEATURE_POISON
#define UFFD_FEATURE_POISON (1 << 14)
#endif

static sigjmp_buf jump;
static volatile sig_atomic_t in_touch;

static void on_sigbus(int sig) {
  (void)sig;
  if (in_touch) siglongjmp(jump, 1);
  _exit(3);
}

static int toggled_uffd = -1;
static unsigned toggle_us;

static void* toggler(void* arg) {
  (void)arg;
  for (;;) {
    int flags = fcntl(toggled_uffd, F_GETFL);
    fcntl(toggled_uffd, F_SETFL, flags & ~O_NONBLOCK);
    usleep(toggle_us);
    fcntl(toggled_uffd, F_SETFL, flags | O_NONBLOCK);
    usleep(toggle_us);
  }
  return NULL;
}

static void die(const char* what) {
  printf("error %s: %s\n", what, strerror(errno));
  fflush(stdout);
  exit(1);
}

static size_t unhex(const char* hex, uint8_t* out, size_t max) {
  size_t n = strlen(hex) / 2;
  if (n > max) n = max;
  for (size_t i = 0; i < n; i++) sscanf(hex + 2 * i, "%2hhx", &out[i]);
  return n;
}

// Reads one byte at p; returns -1 on SIGBUS.
static int touch(const volatile uint8_t* p) {
  in_touch = 1;
  if (sigsetjmp(jump, 1) != 0) {
    in_touch = 0;
    return -1;
  }
  int v = *p;
  in_touch = 0;
  return v;
}

int main(int argc, char** argv) {
  if (argc < 7) {
    fprintf(stderr, "usage: uffd_client MAPPER_SOCKET ADDRESS LENGTH MAP_OFFSET FEATURES REQUEST_HEX ACTION...\n");
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char* socket_path = argv[1];
  uint64_t address = strtoull(argv[2], NULL, 0);
  uint64_t length = strtoull(argv[3], NULL, 0);
  uint64_t map_offset = strtoull(argv[4], NULL, 0);
  uint64_t features = strtoull(argv[5], NULL, 0);
  const long page = sysconf(_SC_PAGESIZE);

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigbus;
  sigaction(SIGBUS, &sa, NULL);

  uint8_t* map = mmap((void*)address, length, PROT_READ, MAP_PRIVATE | MAP_FIXED_NOREPLACE, 3, (off_t)map_offset);
  if (map == MAP_FAILED || (uint64_t)map != address) die("mmap");
  int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
  if (uffd < 0) die("userfaultfd");
  struct uffdio_api api = {.api = UFFD_API, .features = UFFD_FEATURE_POISON | features};
  if (ioctl(uffd, UFFDIO_API, &api) != 0) die("UFFDIO_API");
  struct uffdio_register reg = {.range = {address, length}, .mode = UFFDIO_REGISTER_MODE_MISSING};
  if (ioctl(uffd, UFFDIO_REGISTER, &reg) != 0) die("UFFDIO_REGISTER");

  int sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  snprintf(sun.sun_path, sizeof sun.sun_path, "%s", socket_path);
  if (sock < 0 || connect(sock, (struct sockaddr*)&sun, sizeof sun) != 0) die("connect");
  uint8_t msg[4096];
  size_t len = unhex(argv[6], msg, sizeof msg);
  int fds[2] = {3, uffd};
  char control[CMSG_SPACE(sizeof fds)];
  memset(control, 0, sizeof control);
  struct iovec iov = {msg, len};
  struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
  struct cmsghdr* cm = CMSG_FIRSTHDR(&mh);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof fds);
  memcpy(CMSG_DATA(cm), fds, sizeof fds);
  if (sendmsg(sock, &mh, 0) < 0) die("sendmsg");
  struct pollfd pfd = {sock, POLLIN, 0};
  if (poll(&pfd, 1, 10000) != 1) die("no reply");
  uint8_t reply[4096];
  ssize_t n = recv(sock, reply, sizeof reply, 0);
  if (n < 0) die("recv");
  printf("reply ");
  for (ssize_t i = 0; i < n; i++) printf("%02x", reply[i]);
  printf("\n");
  // The reply's result union: ordinal 1 is success. Refused: nothing would serve the faults.
  uint64_t ordinal = 0;
  if (n >= 24) memcpy(&ordinal, reply + 16, sizeof ordinal);
  if (ordinal != 1) {
    printf("refused\n");
    return 4;
  }

  uint64_t pages = length / (uint64_t)page;
  for (int a = 7; a < argc; a++) {
    unsigned long long x, y;
    if (strcmp(argv[a], "blocking") == 0) {
      int flags = fcntl(uffd, F_GETFL);
      if (fcntl(uffd, F_SETFL, flags & ~O_NONBLOCK) != 0) die("fcntl");
      printf("blocking\n");
    } else if (sscanf(argv[a], "toggle:%llu", &x) == 1) {
      toggled_uffd = uffd;
      toggle_us = (unsigned)x;
      pthread_t t;
      if (pthread_create(&t, NULL, toggler, NULL) != 0) die("pthread_create");
      printf("toggling\n");
    } else if (sscanf(argv[a], "touch:%llu:%llu", &x, &y) == 2) {
      uint64_t sum = 0, sigbus = 0;
      for (uint64_t i = 0; i < x; i++) {
        uint64_t p = (i * 7919) % pages;  // spread out: each touch is a lone fault
        int v = touch(map + p * (uint64_t)page);
        if (v < 0) {
          sigbus++;
        } else {
          sum += (uint64_t)v;
        }
        if (y > 0) usleep((useconds_t)y);
      }
      printf("touched %llu sigbus %llu sum %llu\n", x, (unsigned long long)sigbus, (unsigned long long)sum);
    } else if (sscanf(argv[a], "page:%llu", &x) == 1) {
      const volatile uint8_t* p = map + x * (uint64_t)page;
      if (touch(p) < 0) {
        printf("page %llu sigbus\n", x);
      } else {
        printf("page %llu ", x);
        for (int i = 0; i < 16; i++) printf("%02x", p[i]);
        printf("\n");
      }
    } else if (sscanf(argv[a], "fork:%llu", &x) == 1) {
      for (uint64_t i = 0; i < x; i++) {
        pid_t pid = fork();
        if (pid < 0) die("fork");
        if (pid == 0) _exit(0);
        waitpid(pid, NULL, 0);
      }
      printf("forked %llu\n", x);
    } else if (sscanf(argv[a], "mremap:%llx", &x) == 1) {
      void* to = mremap(map, length, length, MREMAP_MAYMOVE | MREMAP_FIXED, (void*)(uintptr_t)x);
      if (to == MAP_FAILED) die("mremap");
      map = to;
      printf("moved\n");
    } else if (strcmp(argv[a], "dontneed") == 0) {
      if (madvise(map, length, MADV_DONTNEED) != 0) die("madvise");
      printf("dropped\n");
    } else if (strcmp(argv[a], "detach") == 0) {
      if (close(sock) != 0) die("close");
      printf("detached\n");
    } else if (strcmp(argv[a], "munmap") == 0) {
      if (munmap(map, length) != 0) die("munmap");
      printf("unmapped\n");
    } else if (sscanf(argv[a], "sleep:%llu", &x) == 1) {
      usleep((useconds_t)(x * 1000));
      printf("slept\n");
    } else {
      printf("error unknown action %s\n", argv[a]);
      return 1;
    }
  }
  return 0;
}
