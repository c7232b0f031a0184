// What an fd is: the facts handle_info.ts needs to tell which Zircon object it can stand for.
//
// fdInfo(fd): { mode, size (BigInt), link, accessMode, socketType }
//   mode        st_mode from fstat (file type bits and permissions)
//   size        st_size, or the device size (BLKGETSIZE64) for a block device
//   link        readlink(/proc/self/fd/N): "/memfd:NAME (deleted)", "anon_inode:[userfaultfd]",
//               "anon_inode:[eventfd]", "socket:[INODE]", a path, ...
//   accessMode  O_RDONLY / O_WRONLY / O_RDWR (| O_PATH) from F_GETFL: the open mode, i.e. the fd's rights
//   socketType  SO_TYPE for sockets (SOCK_STREAM 1, SOCK_DGRAM 2, SOCK_SEQPACKET 5), else -1
// fdClass(fd, withAccessMode): the same facts, packed into one number for the codec's per-handle
//   check, which runs on every handle of every message: fstat (+ F_GETFL when withAccessMode, for
//   a check of rights; + SO_TYPE for a socket; + BLKGETSIZE64 for a block device, so that it fails
//   where fdInfo fails), no readlink of /proc (the costliest part, ~3 us here, and not needed to
//   tell whether an fd can be a VMO or a channel), no object.
//   Returns -errno on failure, else
//     bits 0..3  file type: 1 regular, 2 block device, 3 char device, 4 dir, 5 FIFO, 6 socket, 0 other
//     bits 4..7  SO_TYPE for a socket (0 if unknown or not a socket)
//     bits 8..9  O_ACCMODE, bit 10 O_PATH (both 0 without withAccessMode)
// dupFd(fd): a new fd for the same open file description, close-on-exec (F_DUPFD_CLOEXEC).
//
// Neither asks a file system anything: fstat on a FUSE file sends GETATTR to its daemon once the
// cached attributes expire, and a daemon that never answers would block the JS thread (every
// client) for good. StatNoSync is statx(AT_STATX_DONT_SYNC): the attributes the kernel has.
#include "exports.h"
#include "transport_common.h"

#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <string>

namespace starnix {
namespace {

using transport::FdArg;
using transport::ThrowErrno;

// fstat's answer from the kernel's cached attributes only (see the top of the file). 0 or -1/errno.
int StatNoSync(int fd, struct stat* st) {
  struct statx stx;
  if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_TYPE | STATX_MODE | STATX_SIZE | STATX_INO, &stx) != 0) return -1;
  *st = {};
  st->st_mode = stx.stx_mode;
  st->st_size = static_cast<off_t>(stx.stx_size);
  st->st_ino = stx.stx_ino;
  st->st_dev = makedev(stx.stx_dev_major, stx.stx_dev_minor);
  return 0;
}

Napi::Value FdInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0);
  if (fd < 0) return env.Undefined();
  struct stat st;
  if (StatNoSync(fd, &st) < 0) {
    ThrowErrno(env, "statx", errno, "fd " + std::to_string(fd));
    return env.Undefined();
  }
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

// File type codes of fdClass (handle_info.ts mirrors them).
constexpr int kClassRegular = 1;
constexpr int kClassBlock = 2;
constexpr int kClassChar = 3;
constexpr int kClassDir = 4;
constexpr int kClassFifo = 5;
constexpr int kClassSocket = 6;

// fdClass's work, errno-returning: the packed facts (>= 0) or -errno. F_GETFL cannot fail on an
// fd that fstat just accepted, so leaving it out when the open mode is not needed fails nothing
// that fdInfo would not.
int ClassifyFd(int fd, bool with_access_mode) {
  struct stat st;
  if (StatNoSync(fd, &st) < 0) return -errno;
  int flags = 0;
  if (with_access_mode) {
    flags = fcntl(fd, F_GETFL);
    if (flags < 0) return -errno;
  }
  int type = 0;
  int socket_type = 0;
  switch (st.st_mode & S_IFMT) {
    case S_IFREG: type = kClassRegular; break;
    case S_IFBLK: {
      type = kClassBlock;
      uint64_t bytes = 0;
      if (ioctl(fd, BLKGETSIZE64, &bytes) < 0) return -errno;
      break;
    }
    case S_IFCHR: type = kClassChar; break;
    case S_IFDIR: type = kClassDir; break;
    case S_IFIFO: type = kClassFifo; break;
    case S_IFSOCK: {
      type = kClassSocket;
      int value = 0;
      socklen_t len = sizeof(value);
      if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &value, &len) == 0 && value > 0 && value < 16) socket_type = value;
      break;
    }
    default: break;
  }
  int access = flags & O_ACCMODE;
  int path_only = (flags & O_PATH) ? 1 : 0;
  return type | (socket_type << 4) | (access << 8) | (path_only << 10);
}

Napi::Value FdClass(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0);
  if (fd < 0) return env.Undefined();
  bool with_access_mode = info.Length() < 2 || info[1].ToBoolean().Value();
  return Napi::Number::New(env, ClassifyFd(fd, with_access_mode));
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
  exports.Set("fdClass", Napi::Function::New(env, FdClass, "fdClass"));
  exports.Set("dupFd", Napi::Function::New(env, DupFd, "dupFd"));
}

}  // namespace starnix
