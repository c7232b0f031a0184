// userfaultfd helpers shared by the pager (server side) and the mapping (client side).
//
// Debian's kernel headers predate UFFDIO_POISON (Linux 6.6), so its constants and struct are
// defined here from the kernel's UAPI. Poison is how a failed read is reported: the faulting
// access gets SIGBUS instead of a page of zeros.
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <string>

#ifndef UFFD_FEATURE_POISON
#define UFFD_FEATURE_POISON (1 << 14)
#endif
#ifndef _UFFDIO_POISON
#define _UFFDIO_POISON (0x08)
struct uffdio_poison {
  struct uffdio_range range;
#define UFFDIO_POISON_MODE_DONTWAKE ((__u64)1 << 0)
  __u64 mode;
  __s64 updated;  // bytes poisoned, or a negated errno
};
#define UFFDIO_POISON _IOWR(UFFDIO, _UFFDIO_POISON, struct uffdio_poison)
#endif
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC 0xAA
#define USERFAULTFD_IOC_NEW _IO(USERFAULTFD_IOC, 0x00)
#endif
#ifndef UFFD_FEATURE_MINOR_SHMEM
#define UFFD_FEATURE_MINOR_SHMEM (1 << 10)
#endif
#ifndef UFFD_PAGEFAULT_FLAG_MINOR
#define UFFD_PAGEFAULT_FLAG_MINOR (1 << 2)
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

namespace starnix {
namespace uffd {

inline uint64_t PageSize() {
  static const uint64_t size = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  return size;
}

// How a uffd was obtained, for logs and for the caller's choice.
struct Created {
  int fd = -1;
  bool user_mode_only = false;  // cannot serve faults taken inside the kernel (e.g. write() from the range)
  const char* how = "";
  int err = 0;  // errno of the last attempt when fd < 0
};

// Creates a uffd with O_CLOEXEC|O_NONBLOCK. Prefers a full uffd from userfaultfd(2); when the
// syscall is refused (seccomp, EPERM from vm.unprivileged_userfaultfd), tries /dev/userfaultfd
// (USERFAULTFD_IOC_NEW, Linux 6.1+), and only then a user-mode-only uffd from the syscall.
inline Created Create() {
  Created c;
  const int flags = O_CLOEXEC | O_NONBLOCK;
  int fd = static_cast<int>(syscall(SYS_userfaultfd, flags));
  if (fd >= 0) {
    c.fd = fd;
    c.how = "userfaultfd(2)";
    return c;
  }
  c.err = errno;
  int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
  if (dev >= 0) {
    fd = ioctl(dev, USERFAULTFD_IOC_NEW, flags);
    int saved = errno;
    close(dev);
    if (fd >= 0) {
      c.fd = fd;
      c.how = "/dev/userfaultfd";
      return c;
    }
    c.err = saved;
  }
  fd = static_cast<int>(syscall(SYS_userfaultfd, flags | UFFD_USER_MODE_ONLY));
  if (fd >= 0) {
    c.fd = fd;
    c.user_mode_only = true;
    c.how = "userfaultfd(2, UFFD_USER_MODE_ONLY)";
    return c;
  }
  c.err = errno;
  return c;
}

// UFFDIO_API; returns 0 or an errno. `features` is updated with what the kernel offers.
inline int Api(int fd, uint64_t want_features, uint64_t* features_out) {
  struct uffdio_api api = {};
  api.api = UFFD_API;
  api.features = want_features;
  if (ioctl(fd, UFFDIO_API, &api) != 0) return errno;
  if (features_out != nullptr) *features_out = api.features;
  return 0;
}

// Registers [start, start+len) for MISSING faults; returns 0 or an errno.
inline int RegisterMissing(int fd, uint64_t start, uint64_t len) {
  struct uffdio_register reg = {};
  reg.range.start = start;
  reg.range.len = len;
  reg.mode = UFFDIO_REGISTER_MODE_MISSING;
  if (ioctl(fd, UFFDIO_REGISTER, &reg) != 0) return errno;
  return 0;
}

// Registers [start, start+len) for MISSING and MINOR faults: a reader's access faults to its uffd
// for every page not in its own page tables, in the page cache or not (the uffd must have asked for
// UFFD_FEATURE_MINOR_SHMEM or UFFD_FEATURE_MINOR_HUGETLBFS). Returns 0 or an errno.
inline int RegisterMissingMinor(int fd, uint64_t start, uint64_t len) {
  struct uffdio_register reg = {};
  reg.range.start = start;
  reg.range.len = len;
  reg.mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_MINOR;
  if (ioctl(fd, UFFDIO_REGISTER, &reg) != 0) return errno;
  return 0;
}

// UFFDIO_CONTINUE over [start, start+len): maps the pages the file's page cache holds there into
// the uffd's (another process's) mapping, and wakes the faults waiting in the range. Pages already
// mapped are stepped over (EEXIST), and the range is then woken with UFFDIO_WAKE (CONTINUE wakes
// only when it succeeds). Works on MINOR and MISSING registrations of shmem and hugetlbfs (measured
// on 6.18, bench/probes/minor_fault.c). page: the mapping's page size. Returns 0 or an errno.
// After 64 such pages it stops (and wakes): the pages it did not reach fault again and come back.
inline int Continue(int fd, uint64_t start, uint64_t len, uint64_t page = PageSize()) {
  uint64_t pos = start, end = start + len;
  int attempts = 0, stepped = 0;
  while (pos < end) {
    struct uffdio_continue c = {};
    c.range.start = pos;
    c.range.len = end - pos;
    c.mode = 0;
    if (ioctl(fd, UFFDIO_CONTINUE, &c) == 0) break;
    int err = errno;
    if (c.mapped > 0) pos += static_cast<uint64_t>(c.mapped);
    if (err == EEXIST) {
      pos += page;  // mapped already (another fault of this reader, or an earlier CONTINUE)
      if (++stepped >= 64) break;
    } else if (err == EAGAIN && ++attempts < 1000) {
      continue;
    } else if (c.mapped <= 0) {
      return err;
    }
  }
  if (stepped > 0) {
    struct uffdio_range range = {start, len};
    if (ioctl(fd, UFFDIO_WAKE, &range) != 0) return errno;
  }
  return 0;
}

// Wakes the threads waiting on faults in [start, start+len); returns 0 or an errno.
inline int Wake(int fd, uint64_t start, uint64_t len) {
  struct uffdio_range range = {start, len};
  if (ioctl(fd, UFFDIO_WAKE, &range) != 0) return errno;
  return 0;
}

// Poisons the missing pages of [start, start+len) (accesses then get SIGBUS) and wakes
// their waiters. Pages already present are skipped one by one (EEXIST). Returns 0 or an errno.
// page: the mapping's page size (2 MiB on a hugetlb mapping, where poison is per huge page).
inline int Poison(int fd, uint64_t start, uint64_t len, uint64_t page = PageSize()) {
  uint64_t pos = start, end = start + len;
  int attempts = 0;
  while (pos < end) {
    struct uffdio_poison p = {};
    p.range.start = pos;
    p.range.len = end - pos;
    p.mode = 0;
    int rc = ioctl(fd, UFFDIO_POISON, &p);
    if (rc == 0) return 0;
    int err = errno;
    if (p.updated > 0) pos += static_cast<uint64_t>(p.updated);
    if (err == EEXIST) {
      pos += page;  // this page is present: leave it alone
    } else if (err == EAGAIN && ++attempts < 1000) {
      continue;  // the address space is changing (fork, mremap): try again
    } else if (p.updated <= 0) {
      return err;
    }
  }
  return 0;
}

// Reads queued messages of a uffd without ever sleeping, whatever its O_NONBLOCK flag says: the
// open file description is shared with the client, which can clear the flag at any time, and a
// pager thread asleep in read() would then wait for that client's next fault (or for ever).
// preadv2(RWF_NOWAIT) asks for a nonblocking read of this one call (userfaultfd honours it since
// it reads through read_iter; measured on 6.18). Where the kernel refuses RWF_NOWAIT, it polls
// first and sets O_NONBLOCK again before reading: a client that clears the flag and takes the
// message in between can still make that read sleep, until its next fault or exit.
// Returns the bytes read, or -1 with errno (EAGAIN: nothing queued).
inline ssize_t ReadNoWait(int fd, void* buf, size_t len) {
  static std::atomic<bool> nowait_refused{false};
  if (!nowait_refused.load(std::memory_order_relaxed)) {
    struct iovec iov = {buf, len};
    ssize_t n;
    do {
      n = preadv2(fd, &iov, 1, -1, RWF_NOWAIT);
    } while (n < 0 && errno == EINTR);
    if (n >= 0 || errno != EOPNOTSUPP) return n;
    nowait_refused.store(true, std::memory_order_relaxed);
  }
  struct pollfd p = {fd, POLLIN, 0};
  int ready = poll(&p, 1, 0);
  if (ready <= 0) {
    if (ready == 0) errno = EAGAIN;
    return -1;
  }
  int flags = fcntl(fd, F_GETFL);
  if (flags >= 0 && (flags & O_NONBLOCK) == 0) fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  return read(fd, buf, len);
}

// fstat without asking a file system that may not answer: AT_STATX_DONT_SYNC makes FUSE (and
// network file systems) answer from the attributes they have cached instead of sending GETATTR,
// which a stalled or hostile FUSE daemon would never answer. Returns 0 or an errno.
inline int StatNoSync(int fd, unsigned int mask, struct statx* out) {
  if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, mask, out) != 0) return errno;
  return 0;
}

// Reads the features of a uffd as /proc/self/fdinfo shows them ("API:\t<api>:<features>:<ioctls>").
// Returns false if fd is not an initialized userfaultfd.
inline bool ReadFeatures(int fd, uint64_t* features) {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
  int info = open(path, O_RDONLY | O_CLOEXEC);
  if (info < 0) return false;
  char buf[1024];
  ssize_t n = read(info, buf, sizeof buf - 1);
  close(info);
  if (n <= 0) return false;
  buf[n] = 0;
  const char* api = strstr(buf, "\nAPI:");
  if (api == nullptr) return false;
  unsigned long long a = 0, f = 0, i = 0;
  if (sscanf(api + 5, " %llx:%llx:%llx", &a, &f, &i) != 3) return false;
  *features = f;
  return true;
}

}  // namespace uffd
}  // namespace starnix
