// Helpers shared by the transport's native files (channel, service socket, handle info, memfd).
// Header-only and small: error reporting with errno, and fd flag helpers.
#pragma once
#include <napi.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include <string>

#include "napi_args.h"
#include "zx_status.h"

namespace starnix {
namespace transport {

// Channel limits, the same as Zircon's.
constexpr size_t kMaxMessageBytes = 65536;
constexpr size_t kMaxMessageHandles = 64;

// Builds a JS Error carrying errno facts the way Node's own errors do:
// message "syscall(what): strerror", properties code ("ENOENT"), errno (number), syscall.
inline Napi::Error ErrnoError(Napi::Env env, const char* syscall, int err, const std::string& what = "") {
  const char* name = strerrorname_np(err);
  std::string message = std::string(syscall);
  if (!what.empty()) message += "(" + what + ")";
  message += ": ";
  message += strerror(err);
  if (name != nullptr) message += std::string(" (") + name + ")";
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, name != nullptr ? name : "UNKNOWN"));
  error.Set("errno", Napi::Number::New(env, err));
  error.Set("syscall", Napi::String::New(env, syscall));
  return error;
}

// Throws into JS (exceptions are disabled: the caller must return right after).
inline void ThrowErrno(Napi::Env env, const char* syscall, int err, const std::string& what = "") {
  ErrnoError(env, syscall, err, what).ThrowAsJavaScriptException();
}

inline void ThrowType(Napi::Env env, const std::string& message) {
  Napi::TypeError::New(env, message).ThrowAsJavaScriptException();
}

// Reads an fd argument: a whole Number in [0, INT_MAX] (starnix::FdArg). Anything else throws a
// TypeError and returns -1: Int32Value() would wrap 2**32 + n to n, an unrelated open fd.
inline int FdArg(const Napi::CallbackInfo& info, size_t index) {
  int fd = -1;
  if (info.Length() <= index || !starnix::FdArg(info[index], &fd)) {
    ThrowType(info.Env(), "argument " + std::to_string(index) + " must be a file descriptor (an integer from 0 to 2147483647)");
    return -1;
  }
  return fd;
}

// Makes an fd close-on-exec and non-blocking (fds received from elsewhere may be neither).
// Returns 0 or an errno value.
inline int MakeCloexecNonblocking(int fd) {
  int fdflags = fcntl(fd, F_GETFD);
  if (fdflags < 0) return errno;
  if (!(fdflags & FD_CLOEXEC) && fcntl(fd, F_SETFD, fdflags | FD_CLOEXEC) < 0) return errno;
  int flflags = fcntl(fd, F_GETFL);
  if (flflags < 0) return errno;
  if (!(flflags & O_NONBLOCK) && fcntl(fd, F_SETFL, flflags | O_NONBLOCK) < 0) return errno;
  return 0;
}

// The service-socket functions live in their own file; channel.cc registers them.
void InitServiceSocket(Napi::Env env, Napi::Object exports);

}  // namespace transport
}  // namespace starnix
