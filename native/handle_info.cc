// What an fd is: the facts handle_info.ts needs to tell which Zircon object it can stand for.
//
// fdInfo(fd): { mode, size (BigInt), link, accessMode, socketType }
//   mode        st_mode from fstat (file type bits and permissions)
//   size        st_size, or the device size (BLKGETSIZE64) for a block device
//   link        readlink(/proc/self/fd/N): "/memfd:NAME (deleted)", "anon_inode:[userfaultfd]",
//               "anon_inode:[eventfd]", "socket:[INODE]", a path, ...
//   accessMode  O_RDONLY / O_WRONLY / O_RDWR (| O_PATH) from F_GETFL: the open mode, i.e. the fd's rights
//   socketType  SO_TYPE for sockets (SOCK_STREAM 1, SOCK_DGRAM 2, SOCK_SEQPACKET 5), else -1
// checkHandle(fd, objType, rights): the codec's per-handle check (see CheckHandle below): a zx status,
//   OK, BAD_HANDLE, WRONG_TYPE (the fd cannot stand for objType) or ACCESS_DENIED (it lacks a right
//   that can be checked on an fd).
// dupFd(fd): a new fd for the same open file description, close-on-exec (F_DUPFD_CLOEXEC).
// unixSocketPair(type): [fd, fd] of an AF_UNIX socketpair of SOCK_STREAM (1) or SOCK_DGRAM (2) or
//   SOCK_SEQPACKET (5), close-on-exec and non-blocking: the stand-ins of zx sockets and eventpairs.
// eventFd(initial): an eventfd, close-on-exec and non-blocking: the stand-in of zx events and counters.
// pidfdOpen(pid): a pidfd of a process (pidfd_open), close-on-exec: the stand-in of a zx process.
#include "exports.h"
#include "transport_common.h"

#include <linux/fs.h>
#include <linux/magic.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <string>

namespace starnix {
namespace {

using transport::FdArg;
using transport::ThrowErrno;
using transport::ThrowType;

Napi::Value FdInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0);
  if (fd < 0) return env.Undefined();
  // statx(AT_STATX_DONT_SYNC), not fstat: fstat of a file on a FUSE file system asks its daemon
  // (GETATTR), and a client's daemon may never answer; this runs on the JS thread (CreatePager's
  // look at the backing).
  struct statx stx;
  if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_TYPE | STATX_MODE | STATX_SIZE, &stx) < 0) {
    ThrowErrno(env, "statx", errno, "fd " + std::to_string(fd));
    return env.Undefined();
  }
  struct stat st = {};
  st.st_mode = stx.stx_mode;
  st.st_size = static_cast<off_t>(stx.stx_size);
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0) {
    ThrowErrno(env, "fcntl", errno, "F_GETFL, fd " + std::to_string(fd));
    return env.Undefined();
  }
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (S_ISBLK(st.st_mode)) {
    uint64_t bytes = 0;
    if (ioctl(fd, BLKGETSIZE64, &bytes) < 0) {
      ThrowErrno(env, "ioctl", errno, "BLKGETSIZE64, fd " + std::to_string(fd));
      return env.Undefined();
    }
    size = bytes;
  }
  int socket_type = -1;
  if (S_ISSOCK(st.st_mode)) {
    socklen_t len = sizeof(socket_type);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &socket_type, &len) < 0) socket_type = -1;
  }
  char link[4096];
  std::string proc = "/proc/self/fd/" + std::to_string(fd);
  ssize_t n = readlink(proc.c_str(), link, sizeof(link) - 1);
  if (n < 0) {
    ThrowErrno(env, "readlink", errno, proc);
    return env.Undefined();
  }
  link[n] = '\0';

  Napi::Object result = Napi::Object::New(env);
  result.Set("mode", Napi::Number::New(env, st.st_mode));
  result.Set("size", Napi::BigInt::New(env, size));
  result.Set("link", Napi::String::New(env, link, static_cast<size_t>(n)));
  result.Set("accessMode", Napi::Number::New(env, flags & (O_ACCMODE | O_PATH)));
  result.Set("socketType", Napi::Number::New(env, socket_type));
  return result;
}

// ---------- the codec's handle check ----------
//
// zx_obj_type_t and zx_rights_t values (zircon/types.h, zircon/rights.h).
constexpr uint32_t kObjNone = 0, kObjProcess = 1, kObjThread = 2, kObjVmo = 3, kObjChannel = 4,
                   kObjEvent = 5, kObjSocket = 14, kObjEventPair = 16, kObjJob = 17, kObjStream = 31,
                   kObjCounter = 34;
constexpr uint32_t kRightDuplicate = 1u << 0, kRightTransfer = 1u << 1, kRightRead = 1u << 2,
                   kRightWrite = 1u << 3, kRightMap = 1u << 5, kRightSignal = 1u << 12,
                   kRightSignalPeer = 1u << 13, kRightWait = 1u << 14, kRightInspect = 1u << 15,
                   kRightResize = 1u << 22, kRightSameRights = 1u << 31;
// Rights this check knows how to decide on an fd. Every other right has no meaning for an fd
// (GET_PROPERTY, ENUMERATE, MANAGE_JOB, ...) and is taken as held (README, "Handles").
constexpr uint32_t kCheckedRights = kRightDuplicate | kRightTransfer | kRightRead | kRightWrite | kRightMap |
                                    kRightSignal | kRightSignalPeer | kRightWait | kRightInspect | kRightResize;

#ifndef PID_FS_MAGIC
#define PID_FS_MAGIC 0x50494446
#endif

// The inode that eventfd, timerfd, signalfd, epoll and inotify fds all share (anon_inode_getfd):
// learned once from an eventfd of our own, so that telling an eventfd needs no /proc lookup.
struct SharedAnonInode {
  dev_t dev = 0;
  ino_t ino = 0;
  bool known = false;
};
const SharedAnonInode& SharedAnon() {
  static const SharedAnonInode shared = [] {
    SharedAnonInode s;
    int fd = eventfd(0, EFD_CLOEXEC);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0) {
      s.dev = st.st_dev;
      s.ino = st.st_ino;
      s.known = true;
    }
    if (fd >= 0) close(fd);
    return s;
  }();
  return shared;
}

// Devices of file systems found to be cgroup2 (a job's stand-in), so that fstatfs runs once per
// file system, not once per handle. There are few cgroup2 super blocks (one per cgroup namespace).
constexpr int kCgroupCacheSize = 8;
std::atomic<uint64_t> cgroup2_devs[kCgroupCacheSize];

bool IsCgroup2Dir(int fd, dev_t dev) {
  uint64_t key = static_cast<uint64_t>(dev) + 1;  // 0 marks an empty slot
  for (auto& slot : cgroup2_devs) {
    if (slot.load(std::memory_order_relaxed) == key) return true;
  }
  // Only directories reach here. fstatfs asks the file system itself: a FUSE directory's daemon
  // is asked once per call (the one place this check can wait on another process).
  struct statfs sf;
  if (fstatfs(fd, &sf) < 0 || static_cast<unsigned long>(sf.f_type) != CGROUP2_SUPER_MAGIC) return false;
  for (auto& slot : cgroup2_devs) {
    uint64_t empty = 0;
    if (slot.compare_exchange_strong(empty, key) || empty == key) break;
  }
  return true;
}

// Whether an fd on the shared anonymous inode is an eventfd: only an eventfd accepts an 8-byte
// write (timerfd, signalfd, epoll refuse with EINVAL, inotify with EBADF). Adding 0 changes no
// count and never blocks; at most it wakes a waiter, which finds nothing new.
bool IsEventFd(int fd, const struct stat& st) {
  const SharedAnonInode& shared = SharedAnon();
  if (!shared.known || st.st_dev != shared.dev || st.st_ino != shared.ino) return false;
  uint64_t zero = 0;
  return write(fd, &zero, sizeof(zero)) == static_cast<ssize_t>(sizeof(zero));
}

// A pidfd: on pidfs (6.9+), or an anonymous inode of its own before it.
bool IsPidFd(int fd, const struct stat& st) {
  if ((st.st_mode & S_IFMT) != 0) return false;
  struct statfs sf;
  if (fstatfs(fd, &sf) < 0) return false;  // anonymous inodes: no file system callback, no wait
  if (static_cast<unsigned long>(sf.f_type) == PID_FS_MAGIC) return true;
  return false;
}

int SocketFacts(int fd, int* domain, int* type) {
  socklen_t len = sizeof(int);
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, type, &len) < 0) return -errno;
  len = sizeof(int);
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, domain, &len) < 0) return -errno;
  return 0;
}

bool IsUnixSocketOf(int fd, const struct stat& st, int want_type) {
  if (!S_ISSOCK(st.st_mode)) return false;
  int domain = -1, type = -1;
  return SocketFacts(fd, &domain, &type) == 0 && domain == AF_UNIX && type == want_type;
}

// Whether the fd can stand for a zx object of obj_type (README, "Handles": the stand-in table).
bool TypeFits(int fd, const struct stat& st, uint32_t obj_type) {
  switch (obj_type) {
    case kObjNone:
      return true;
    case kObjVmo:
      return S_ISREG(st.st_mode) || S_ISBLK(st.st_mode);  // memfd, regular file, block device
    case kObjStream:
      return S_ISREG(st.st_mode) || S_ISBLK(st.st_mode);  // a seekable file with its own offset
    case kObjChannel:
      return IsUnixSocketOf(fd, st, SOCK_SEQPACKET);
    case kObjSocket:
      return IsUnixSocketOf(fd, st, SOCK_STREAM);
    case kObjEventPair:
      return IsUnixSocketOf(fd, st, SOCK_DGRAM);
    case kObjEvent:
    case kObjCounter:
      return (st.st_mode & S_IFMT) == 0 && IsEventFd(fd, st);
    case kObjJob:
      return S_ISDIR(st.st_mode) && IsCgroup2Dir(fd, st.st_dev);
    case kObjProcess:
    case kObjThread:
      return IsPidFd(fd, st);
    default:
      // No Linux stand-in (VMAR, PORT, PAGER, INTERRUPT, RESOURCE...): no fd can be one.
      return false;
  }
}

// The rights of `asked` that this fd lacks, among those an fd can answer for.
uint32_t MissingRights(int fd, const struct stat& st, int flags, uint32_t asked) {
  bool path_only = (flags & O_PATH) != 0;
  int mode = flags & O_ACCMODE;
  bool readable = !path_only && (mode == O_RDONLY || mode == O_RDWR);
  bool writable = !path_only && (mode == O_WRONLY || mode == O_RDWR);
  bool vmo_like = S_ISREG(st.st_mode) || S_ISBLK(st.st_mode);
  int seals = 0;
  if (S_ISREG(st.st_mode) && (asked & (kRightWrite | kRightResize)) != 0) {
    seals = fcntl(fd, F_GET_SEALS);  // EINVAL (no seals) on anything but a memfd
    if (seals < 0) seals = 0;
  }
  uint32_t held = kRightDuplicate | kRightTransfer | kRightInspect;  // every fd: dup, SCM_RIGHTS, fstat
  if (!path_only) held |= kRightWait;                                // poll (O_PATH: POLLNVAL)
  if (readable) held |= kRightRead;
  if (writable && (seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)) == 0) held |= kRightWrite;
  if (readable && vmo_like) held |= kRightMap;
  if (writable) held |= kRightSignal | kRightSignalPeer;
  if (writable && S_ISREG(st.st_mode) && (seals & (F_SEAL_GROW | F_SEAL_SHRINK)) == 0) held |= kRightResize;
  return asked & kCheckedRights & ~held;
}

}  // namespace

int CheckHandle(int fd, uint32_t obj_type, uint32_t rights) {
  // statx with AT_STATX_DONT_SYNC: the cached attributes, so a FUSE or network file is not asked
  // (fstat may ask a FUSE daemon, which may never answer).
  struct statx stx;
  if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_TYPE | STATX_INO, &stx) < 0) {
    return ZX_ERR_BAD_HANDLE;  // EBADF: the fd is gone
  }
  struct stat st = {};
  st.st_mode = stx.stx_mode;
  st.st_ino = stx.stx_ino;
  st.st_dev = makedev(stx.stx_dev_major, stx.stx_dev_minor);
  if (!TypeFits(fd, st, obj_type)) return ZX_ERR_WRONG_TYPE;
  if ((rights & kRightSameRights) != 0 || (rights & kCheckedRights) == 0) return ZX_OK;
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0) return ZX_ERR_BAD_HANDLE;
  return MissingRights(fd, st, flags, rights) == 0 ? ZX_OK : ZX_ERR_ACCESS_DENIED;
}

namespace {

Napi::Value CheckHandleJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0);
  if (fd < 0) return env.Undefined();
  uint32_t obj_type = info[1].As<Napi::Number>().Uint32Value();
  uint32_t rights = info[2].As<Napi::Number>().Uint32Value();
  return Napi::Number::New(env, CheckHandle(fd, obj_type, rights));
}

Napi::Value UnixSocketPair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int type = -1;
  if (info.Length() < 1 || !starnix::NonNegativeIntArg(info[0], &type)) type = -1;
  if (type != SOCK_STREAM && type != SOCK_DGRAM && type != SOCK_SEQPACKET) {
    ThrowType(env, "unixSocketPair: type must be SOCK_STREAM (1), SOCK_DGRAM (2) or SOCK_SEQPACKET (5)");
    return env.Undefined();
  }
  int fds[2];
  if (socketpair(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) < 0) {
    ThrowErrno(env, "socketpair", errno);
    return env.Undefined();
  }
  Napi::Array pair = Napi::Array::New(env, 2);
  pair.Set(0u, Napi::Number::New(env, fds[0]));
  pair.Set(1u, Napi::Number::New(env, fds[1]));
  return pair;
}

Napi::Value EventFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t initial = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Uint32Value() : 0;
  int fd = eventfd(initial, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) {
    ThrowErrno(env, "eventfd", errno);
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

Napi::Value PidfdOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int pid = 0;
  if (info.Length() < 1 || !starnix::NonNegativeIntArg(info[0], &pid) || pid == 0) {
    ThrowType(env, "pidfdOpen: pid must be an integer from 1 to 2147483647");  // 2**32 + p is not pid p
    return env.Undefined();
  }
  int fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));  // pidfds are close-on-exec
  if (fd < 0) {
    ThrowErrno(env, "pidfd_open", errno, std::to_string(pid));
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

Napi::Value DupFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0);
  if (fd < 0) return env.Undefined();
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) {
    ThrowErrno(env, "fcntl", errno, "F_DUPFD_CLOEXEC, fd " + std::to_string(fd));
    return env.Undefined();
  }
  return Napi::Number::New(env, copy);
}

}  // namespace

void InitHandleInfo(Napi::Env env, Napi::Object exports) {
  exports.Set("fdInfo", Napi::Function::New(env, FdInfo, "fdInfo"));
  exports.Set("dupFd", Napi::Function::New(env, DupFd, "dupFd"));
  exports.Set("checkHandle", Napi::Function::New(env, CheckHandleJs, "checkHandle"));
  exports.Set("unixSocketPair", Napi::Function::New(env, UnixSocketPair, "unixSocketPair"));
  exports.Set("eventFd", Napi::Function::New(env, EventFd, "eventFd"));
  exports.Set("pidfdOpen", Napi::Function::New(env, PidfdOpen, "pidfdOpen"));
}

}  // namespace starnix
