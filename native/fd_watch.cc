// Readiness of any fd, and the operations on the two small Linux objects that stand for Zircon's
// signalling objects: datagram socket pairs (EVENTPAIR) and eventfds (EVENT, COUNTER); both are
// made by handle_info.cc (unixSocketPair, eventFd). The Manager's suspend and wake handling
// (src/server/suspend/) and the eventpair encoding (src/transport/eventpair.ts) build on these;
// they hold no policy of their own.
//
// new FdWatcher(fd, onEvent(status, events)): a libuv poll on an fd this object does NOT own.
//   start(events): events are libuv's bits: 1 readable, 2 writable, 4 disconnect (EPOLLRDHUP),
//   8 prioritized (EPOLLPRI: a cgroup's cgroup.events changed). stop(). close(): must be called
//   before the fd is closed (libuv keys its epoll set by fd number). ref()/unref() as for timers.
//   status is 0 or a negative libuv error (the poll then stopped).
// sendDatagram(fd, bytes): 0 or -errno (MSG_DONTWAIT | MSG_NOSIGNAL).
// recvDatagrams(fd, max): Buffer[] of what was waiting (each at most 64 bytes; a longer
//   datagram comes back as a 64-byte Buffer, so a reader expecting 8 bytes rejects it), or -errno.
//   Any fds a peer sent along are closed by the kernel (no control buffer is offered).
// pollNow(fd, events): revents of a zero-timeout poll(2) for events (POLLIN 1, POLLPRI 2,
//   POLLOUT 4, POLLERR 8, POLLHUP 16, POLLRDHUP 0x2000), or -errno: is a source raised right now.
// eventfdAdd(fd, n): 0 or -errno. EAGAIN when the counter has no room for n: checked with a
//   zero-timeout poll first, because an eventfd received from a peer is usually blocking and its
//   O_NONBLOCK flag is shared with the peer's fd, so it is not ours to change.
// eventfdRead(fd): the value taken (semaphore mode: 1), or -errno (EAGAIN: it was 0).
#include "exports.h"
#include "transport_common.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "uv_poll.h"

#include <memory>
#include <string>

namespace starnix {
namespace {

using transport::FdArg;
using transport::ThrowErrno;
using transport::ThrowType;

constexpr size_t kMaxDatagramBytes = 64;

class FdWatcher : public Napi::ObjectWrap<FdWatcher> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "FdWatcher",
                       {
                           InstanceMethod("start", &FdWatcher::Start),
                           InstanceMethod("stop", &FdWatcher::Stop),
                           InstanceMethod("close", &FdWatcher::Close),
                           InstanceMethod("ref", &FdWatcher::RefLoop),
                           InstanceMethod("unref", &FdWatcher::UnrefLoop),
                       });
  }

  explicit FdWatcher(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FdWatcher>(info) {
    Napi::Env env = info.Env();
    int fd = FdArg(info, 0);
    if (fd < 0) return;
    if (info.Length() < 2 || !info[1].IsFunction()) {
      ThrowType(env, "FdWatcher(fd, onEvent)");
      return;
    }
    int err = NewPoll(env, fd, this, &poll_);
    if (err != 0) {
      ThrowErrno(env, "uv_poll_init", -err, "fd " + std::to_string(fd));
      return;
    }
    on_event_ = Napi::Weak(info[1].As<Napi::Function>());
    async_context_ = std::make_unique<Napi::AsyncContext>(env, "StarnixFdWatcher", info.This().As<Napi::Object>());
  }

  ~FdWatcher() override { CloseNative(); }

 private:
  Napi::Value Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (poll_ == nullptr) {
      ThrowType(env, "FdWatcher is closed");
      return env.Undefined();
    }
    if (info.Length() < 1 || !info[0].IsNumber()) {
      ThrowType(env, "start(events)");
      return env.Undefined();
    }
    int events = info[0].As<Napi::Number>().Int32Value() & (UV_READABLE | UV_WRITABLE | UV_DISCONNECT | UV_PRIORITIZED);
    if (events == 0) {
      StopNative();
      return env.Undefined();
    }
    int err = uv_poll_start(poll_, events, &FdWatcher::OnPoll);
    if (err != 0) {
      ThrowErrno(env, "uv_poll_start", -err);
      return env.Undefined();
    }
    if (!active_) {
      active_ = true;
      Ref();  // libuv may call back: the wrapper and its callback stay alive while watching
      on_event_.Ref();
    }
    return env.Undefined();
  }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    StopNative();
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

  void StopNative() {
    if (poll_ != nullptr) uv_poll_stop(poll_);
    DropActive();
  }

  void DropActive() {
    if (active_) {
      active_ = false;
      on_event_.Unref();
      Unref();
    }
  }

  void CloseNative() {
    if (poll_ != nullptr) {
      // uv_close unregisters the fd at once; only the free waits for the loop.
      uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
      poll_ = nullptr;
    }
    DropActive();
  }

  static void OnPoll(uv_poll_t* handle, int status, int events) {
    FdWatcher* self = static_cast<FdWatcher*>(handle->data);
    Napi::Env env = self->Env();
    Napi::HandleScope scope(env);
    Napi::Object keep = self->Value();  // alive across the callback even if JS drops it meanwhile
    if (status < 0) self->DropActive();  // libuv stopped the poll
    if (self->on_event_.IsEmpty()) return;
    self->on_event_.MakeCallback(keep, {Napi::Number::New(env, status), Napi::Number::New(env, events)}, *self->async_context_);
  }

  uv_poll_t* poll_ = nullptr;
  bool active_ = false;
  Napi::FunctionReference on_event_;
  std::unique_ptr<Napi::AsyncContext> async_context_;
};

Napi::Value SendDatagram(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0);
  if (fd < 0) return env.Undefined();
  if (info.Length() < 2 || !info[1].IsTypedArray()) {
    ThrowType(env, "sendDatagram(fd, bytes: Uint8Array)");
    return env.Undefined();
  }
  Napi::Uint8Array bytes = info[1].As<Napi::Uint8Array>();
  ssize_t n = send(fd, bytes.Data(), bytes.ByteLength(), MSG_DONTWAIT | MSG_NOSIGNAL);
  return Napi::Number::New(env, n < 0 ? -errno : 0);
}

Napi::Value RecvDatagrams(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0);
  if (fd < 0) return env.Undefined();
  uint32_t max = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Uint32Value() : 64;
  Napi::Array result = Napi::Array::New(env);
  uint8_t buffer[kMaxDatagramBytes];
  for (uint32_t i = 0; i < max; i++) {
    ssize_t n = recv(fd, buffer, sizeof(buffer), MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK || result.Length() > 0) break;
      return Napi::Number::New(env, -errno);
    }
    size_t kept = static_cast<size_t>(n) < sizeof(buffer) ? static_cast<size_t>(n) : sizeof(buffer);
    result.Set(result.Length(), Napi::Buffer<uint8_t>::Copy(env, buffer, kept));
  }
  return result;
}

Napi::Value PollNow(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0);
  if (fd < 0) return env.Undefined();
  short events = static_cast<short>(info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : POLLIN);
  struct pollfd pfd = {fd, events, 0};
  int ready;
  do {
    ready = poll(&pfd, 1, 0);
  } while (ready < 0 && errno == EINTR);
  if (ready < 0) return Napi::Number::New(env, -errno);
  return Napi::Number::New(env, ready == 0 ? 0 : pfd.revents);
}

Napi::Value EventfdAdd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0);
  if (fd < 0) return env.Undefined();
  double n = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : 1;
  if (!(n >= 1 && n < 9007199254740992.0)) {
    ThrowType(env, "eventfdAdd(fd, n): n must be a positive integer");
    return env.Undefined();
  }
  uint64_t value = static_cast<uint64_t>(n);
  // POLLOUT on an eventfd: at least 1 more fits. A peer could still race the counter up between
  // the poll and the write; it would have to bring it within n of 2^64 - 1 to block us.
  struct pollfd pfd = {fd, POLLOUT, 0};
  int ready = poll(&pfd, 1, 0);
  if (ready < 0) return Napi::Number::New(env, -errno);
  if (ready == 0 || !(pfd.revents & POLLOUT)) return Napi::Number::New(env, -EAGAIN);
  ssize_t w = write(fd, &value, sizeof(value));
  if (w < 0) return Napi::Number::New(env, -errno);
  return Napi::Number::New(env, w == sizeof(value) ? 0 : -EIO);
}

Napi::Value EventfdRead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0);
  if (fd < 0) return env.Undefined();
  uint64_t value = 0;
  ssize_t r = read(fd, &value, sizeof(value));
  if (r < 0) return Napi::Number::New(env, -errno);
  if (r != sizeof(value)) return Napi::Number::New(env, -EIO);
  return Napi::Number::New(env, static_cast<double>(value));
}

}  // namespace

void InitFdWatch(Napi::Env env, Napi::Object exports) {
  exports.Set("FdWatcher", FdWatcher::Define(env));
  exports.Set("sendDatagram", Napi::Function::New(env, SendDatagram, "sendDatagram"));
  exports.Set("recvDatagrams", Napi::Function::New(env, RecvDatagrams, "recvDatagrams"));
  exports.Set("pollNow", Napi::Function::New(env, PollNow, "pollNow"));
  exports.Set("eventfdAdd", Napi::Function::New(env, EventfdAdd, "eventfdAdd"));
  exports.Set("eventfdRead", Napi::Function::New(env, EventfdRead, "eventfdRead"));
}

}  // namespace starnix
