// The service directory's sockets: a listening SOCK_SEQPACKET socket bound to a path (the stand-in
// for a discoverable protocol in /svc), connecting to one, and accepting connections through libuv.
//
// listenSocket(path, backlog): fd     socket + bind + chmod 0600 + listen. chmod comes before listen
//                                     so nobody can connect while the file still has umask rights.
// lockFile(path): fd                 opens (creating, 0600) and takes an exclusive flock without
//                                     waiting: EWOULDBLOCK while another process holds it. Held until
//                                     the fd is closed, or the process dies.
// connectSocket(path): fd            non-blocking connect; errors carry their errno code
//                                     (ENOENT, ECONNREFUSED for a stale file, EAGAIN for a full backlog).
// new NativeAcceptor(fd, onEvent)    accept4 on readable; onEvent(0, [fd, uid, gid, pid, ...]) for a batch
//                                     of connections (SO_PEERCRED), onEvent(1, errno) when accept fails
//                                     for want of fds and cannot shed the connection (polling pauses;
//                                     JS resumes it later), onEvent(2, [errno, uid, pid, ...]) for
//                                     connections refused for want of fds: the acceptor keeps one
//                                     reserve fd (/dev/null); when accept4 fails with EMFILE/ENFILE it
//                                     closes the reserve, accepts the waiting connection, closes it at
//                                     once (the client sees PEER_CLOSED, not a hang), and opens the
//                                     reserve again. So running out of fds neither spins the loop on a
//                                     level-triggered readable socket nor leaves clients waiting.
#include "transport_common.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "uv_poll.h"

#include <memory>
#include <string>

namespace starnix {
namespace transport {
namespace {

// Fills a sockaddr_un; false (and a JS error) when the path does not fit in sun_path.
bool MakeAddress(Napi::Env env, const std::string& path, struct sockaddr_un* addr) {
  memset(addr, 0, sizeof(*addr));
  addr->sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr->sun_path)) {
    ThrowErrno(env, "bind", ENAMETOOLONG,
               path + " (a socket path holds at most " + std::to_string(sizeof(addr->sun_path) - 1) + " bytes)");
    return false;
  }
  memcpy(addr->sun_path, path.data(), path.size());
  return true;
}

bool PathArg(const Napi::CallbackInfo& info, std::string* path) {
  if (info.Length() < 1 || !info[0].IsString()) {
    ThrowType(info.Env(), "argument 0 must be a socket path (string)");
    return false;
  }
  *path = info[0].As<Napi::String>().Utf8Value();
  return true;
}

Napi::Value ListenSocket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  if (!PathArg(info, &path)) return env.Undefined();
  int backlog = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 128;
  struct sockaddr_un addr;
  if (!MakeAddress(env, path, &addr)) return env.Undefined();
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    ThrowErrno(env, "socket", errno);
    return env.Undefined();
  }
  if (bind(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr)) < 0) {
    int err = errno;
    close(fd);
    ThrowErrno(env, "bind", err, path);
    return env.Undefined();
  }
  if (chmod(path.c_str(), 0600) < 0 || listen(fd, backlog) < 0) {
    int err = errno;
    close(fd);
    unlink(path.c_str());
    ThrowErrno(env, "listen", err, path);
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

Napi::Value LockFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  if (!PathArg(info, &path)) return env.Undefined();
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    ThrowErrno(env, "open", errno, path);
    return env.Undefined();
  }
  int rc;
  do {
    rc = flock(fd, LOCK_EX | LOCK_NB);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) {
    int err = errno;
    close(fd);
    ThrowErrno(env, "flock", err, path);
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

Napi::Value ConnectSocket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  if (!PathArg(info, &path)) return env.Undefined();
  struct sockaddr_un addr;
  if (!MakeAddress(env, path, &addr)) return env.Undefined();
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    ThrowErrno(env, "socket", errno);
    return env.Undefined();
  }
  int rc;
  do {
    rc = connect(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr));
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) {
    int err = errno == EWOULDBLOCK ? EAGAIN : errno;
    close(fd);
    ThrowErrno(env, "connect", err, path);
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

class NativeAcceptor : public Napi::ObjectWrap<NativeAcceptor> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeAcceptor",
                       {
                           InstanceMethod("start", &NativeAcceptor::Start),
                           InstanceMethod("pause", &NativeAcceptor::Pause),
                           InstanceMethod("close", &NativeAcceptor::Close),
                           InstanceMethod("ref", &NativeAcceptor::RefLoop),
                           InstanceMethod("unref", &NativeAcceptor::UnrefLoop),
                       });
  }

  // new NativeAcceptor(listeningFd, onEvent): takes ownership of the fd.
  explicit NativeAcceptor(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeAcceptor>(info) {
    Napi::Env env = info.Env();
    int fd = FdArg(info, 0);
    if (fd < 0) return;
    if (info.Length() < 2 || !info[1].IsFunction()) {
      ThrowType(env, "NativeAcceptor(fd, onEvent)");
      return;
    }
    int err = NewPoll(env, fd, this, &poll_);
    if (err != 0) {
      ThrowErrno(env, "uv_poll_init", -err);
      return;
    }
    fd_ = fd;
    reserve_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
    on_event_ = Napi::Persistent(info[1].As<Napi::Function>());
    async_context_ = std::make_unique<Napi::AsyncContext>(env, "StarnixServiceListener", info.This().As<Napi::Object>());
  }

  ~NativeAcceptor() override { CloseNative(); }

 private:
  Napi::Value Start(const Napi::CallbackInfo& info) {
    if (fd_ < 0 || active_) return info.Env().Undefined();
    int err = uv_poll_start(poll_, UV_READABLE, &NativeAcceptor::OnPoll);
    if (err != 0) {
      ThrowErrno(info.Env(), "uv_poll_start", -err);
      return info.Env().Undefined();
    }
    active_ = true;
    Ref();  // alive while the kernel may call back
    return info.Env().Undefined();
  }

  Napi::Value Pause(const Napi::CallbackInfo& info) {
    StopPoll();
    return info.Env().Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    CloseNative();
    return info.Env().Undefined();
  }

  Napi::Value RefLoop(const Napi::CallbackInfo& info) {
    if (poll_ != nullptr) uv_ref(reinterpret_cast<uv_handle_t*>(poll_));
    return info.Env().Undefined();
  }

  Napi::Value UnrefLoop(const Napi::CallbackInfo& info) {
    if (poll_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
    return info.Env().Undefined();
  }

  void StopPoll() {
    if (!active_) return;
    active_ = false;
    if (poll_ != nullptr) uv_poll_stop(poll_);
    Unref();
  }

  void CloseNative() {
    StopPoll();
    if (poll_ != nullptr) {
      uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
      poll_ = nullptr;
    }
    if (fd_ >= 0) {
      close(fd_);
      fd_ = -1;
    }
    if (reserve_fd_ >= 0) {
      close(reserve_fd_);
      reserve_fd_ = -1;
    }
  }

  // Out of fds: frees the reserve, accepts one waiting connection and closes it at once. Returns
  // false when that is not possible (no reserve, or accept fails anyway); *cred gets its peer.
  bool ShedOne(struct ucred* cred) {
    if (reserve_fd_ < 0) {
      reserve_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (reserve_fd_ < 0) return false;
    }
    close(reserve_fd_);
    reserve_fd_ = -1;
    int fd = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    bool shed = fd >= 0;
    if (shed) {
      socklen_t len = sizeof(*cred);
      if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, &len) < 0) *cred = {0, static_cast<uid_t>(-1), static_cast<gid_t>(-1)};
      close(fd);
    }
    reserve_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
    return shed;
  }

  static void OnPoll(uv_poll_t* handle, int status, int events) {
    NativeAcceptor* self = static_cast<NativeAcceptor*>(handle->data);
    Napi::Env env = self->Env();
    Napi::HandleScope scope(env);
    Napi::Object keep = self->Value();
    (void)keep;
    Napi::Array batch = Napi::Array::New(env);
    Napi::Array shed = Napi::Array::New(env);
    uint32_t n = 0;
    uint32_t n_shed = 0;
    int failure = 0;
    for (int i = 0; i < 64; i++) {
      int fd = accept4(self->fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        int err = errno;
        struct ucred cred = {};
        if ((err == EMFILE || err == ENFILE) && self->ShedOne(&cred)) {
          shed.Set(n_shed++, Napi::Number::New(env, err));
          shed.Set(n_shed++, Napi::Number::New(env, static_cast<double>(cred.uid)));
          shed.Set(n_shed++, Napi::Number::New(env, cred.pid));
          continue;
        }
        failure = err;  // ENOMEM, or no reserve to shed with: stop, or level-triggered polling would spin
        break;
      }
      struct ucred cred = {};
      socklen_t len = sizeof(cred);
      if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
        cred.pid = 0;
        cred.uid = static_cast<uid_t>(-1);  // unknown: an allow-list will refuse it
        cred.gid = static_cast<gid_t>(-1);
      }
      batch.Set(n++, Napi::Number::New(env, fd));
      batch.Set(n++, Napi::Number::New(env, static_cast<double>(cred.uid)));
      batch.Set(n++, Napi::Number::New(env, static_cast<double>(cred.gid)));
      batch.Set(n++, Napi::Number::New(env, cred.pid));
    }
    if (failure != 0) self->StopPoll();
    if (n > 0) self->Call(0, batch);
    if (n_shed > 0) self->Call(2, shed);
    if (failure != 0) self->Call(1, Napi::Number::New(env, failure));
  }

  void Call(int kind, Napi::Value a) {
    Napi::Env env = Env();
    on_event_.MakeCallback(Value(), {Napi::Number::New(env, kind), a}, *async_context_);
    if (env.IsExceptionPending()) {
      Napi::Error error = env.GetAndClearPendingException();
      napi_fatal_exception(env, error.Value());
    }
  }

  int fd_ = -1;
  int reserve_fd_ = -1;  // closed to make room for accepting (and shedding) a connection when out of fds
  uv_poll_t* poll_ = nullptr;
  bool active_ = false;
  Napi::FunctionReference on_event_;
  std::unique_ptr<Napi::AsyncContext> async_context_;
};

}  // namespace

void InitServiceSocket(Napi::Env env, Napi::Object exports) {
  exports.Set("listenSocket", Napi::Function::New(env, ListenSocket, "listenSocket"));
  exports.Set("connectSocket", Napi::Function::New(env, ConnectSocket, "connectSocket"));
  exports.Set("lockFile", Napi::Function::New(env, LockFile, "lockFile"));
  exports.Set("NativeAcceptor", NativeAcceptor::Define(env));
}

}  // namespace transport
}  // namespace starnix
