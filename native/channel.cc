// The Linux stand-in for a Zircon channel: one AF_UNIX SOCK_SEQPACKET socket, one FIDL message per
// datagram, handles as fds in SCM_RIGHTS ancillary data.
//
// NativeChannel owns the socket fd. Readiness comes from libuv (a uv_poll_t on the loop of the JS
// thread), so JavaScript never blocks on the socket:
//   - readable: drain with recvmsg until EAGAIN (or a batch limit) and hand the whole batch to JS
//     in one call, because the JS-call overhead dominates small messages;
//   - writes: sendmsg directly; on EAGAIN the message is queued here (bytes copied, fds kept open)
//     and sent when the socket becomes writable. The queue is capped, in bytes and in fds, so that
//     a slow reader cannot make us grow without bound (nor hold our fd table: every queued fd is
//     one of ours until sent); past a cap Send() reports overflow and JS closes the channel.
// While the poll is active the object holds a reference to itself and to its callback (it cannot
// be collected while the kernel may still call back into it); an unreachable, idle one (never
// started, nothing queued) closes its fd when collected.
//
// The JS callback is onEvent(kind, a, b):
//   kind 0 (messages): a = flat array [Buffer, fds (number[] | undefined), Buffer, fds, ...]
//   kind 1 (closed):   a = zx status (PEER_CLOSED, or INTERNAL/IO for a protocol/socket error),
//                      b = detail text. The fd is already closed when JS hears of it.
//   kind 2 (warning):  a = detail text for one log line; the channel stays open.
//
// Write queues are also charged to a QueueBudget (new NativeQueueBudget(maxBytes, maxHandles,
// parent?)), when the channel is given one: the budgets of a connection, of its uid and of the
// whole server form a chain, and a message is queued only if every level of the chain has room.
// So the per-channel caps bound one channel, and the chain bounds what all of a client's (or a
// uid's, or everyone's) channels may make the server hold for peers that do not read.
#include "exports.h"
#include "transport_common.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "uv_poll.h"

#include <algorithm>
#include <deque>
#include <memory>
#include <vector>

namespace starnix {
namespace transport {
namespace {

constexpr int kEventMessages = 0;
constexpr int kEventClosed = 1;
constexpr int kEventWarning = 2;

// Send() results besides negative zx statuses.
constexpr int kSendDone = 0;
constexpr int kSendQueued = 1;
constexpr int kSendQueueOverflow = 2;

// One delivery to JS carries at most this much; the rest waits for the next (level-triggered) poll
// so that one busy channel cannot starve the event loop.
// close() with messages still in the write queue (the peer reads slowly): the socket stays open,
// writes only, until they are sent (a Zircon channel delivers what was written before a close:
// an epitaph must not be lost to a slow reader), the peer goes away, or this long has passed.
// It does not keep the process alive, and a close for an overflowed queue does not linger.
constexpr uint64_t kLingerMs = 10000;

constexpr uint32_t kBatchMaxMessages = 256;
constexpr size_t kBatchMaxBytes = 1 << 20;
// Fds received in one delivery: a batch of 256 messages of 64 handles each would be 16,384 fds
// held at once before JS has looked at any of them (most of RLIMIT_NOFILE). Past this many the
// rest waits for the next poll, after JS has closed or kept the ones delivered.
constexpr size_t kBatchMaxHandles = 256;

// A chain of write-queue budgets (connection -> uid -> server). Only the JS thread touches them.
struct QueueAccount {
  size_t max_bytes = 0;
  size_t max_handles = 0;
  size_t bytes = 0;
  size_t handles = 0;
  std::shared_ptr<QueueAccount> parent;

  // Charges every level, or none when one of them lacks room.
  bool TryCharge(size_t b, size_t h) {
    for (QueueAccount* a = this; a != nullptr; a = a->parent.get()) {
      if (a->bytes + b > a->max_bytes || a->handles + h > a->max_handles) return false;
    }
    for (QueueAccount* a = this; a != nullptr; a = a->parent.get()) {
      a->bytes += b;
      a->handles += h;
    }
    return true;
  }

  void Release(size_t b, size_t h) {
    for (QueueAccount* a = this; a != nullptr; a = a->parent.get()) {
      a->bytes -= std::min(a->bytes, b);
      a->handles -= std::min(a->handles, h);
    }
  }
};

class NativeQueueBudget : public Napi::ObjectWrap<NativeQueueBudget> {
 public:
  static Napi::FunctionReference* constructor;

  static Napi::Function Define(Napi::Env env) {
    Napi::Function f = DefineClass(env, "NativeQueueBudget", {InstanceMethod("usage", &NativeQueueBudget::Usage)});
    constructor = new Napi::FunctionReference(Napi::Persistent(f));
    return f;
  }

  // new NativeQueueBudget(maxBytes, maxHandles, parent?: NativeQueueBudget)
  explicit NativeQueueBudget(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeQueueBudget>(info) {
    if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
      ThrowType(info.Env(), "NativeQueueBudget(maxBytes, maxHandles, parent?)");
      return;
    }
    account_ = std::make_shared<QueueAccount>();
    account_->max_bytes = static_cast<size_t>(info[0].As<Napi::Number>().Int64Value());
    account_->max_handles = static_cast<size_t>(info[1].As<Napi::Number>().Int64Value());
    if (info.Length() > 2 && info[2].IsObject()) {
      NativeQueueBudget* parent = Unwrap(info[2].As<Napi::Object>());
      if (parent != nullptr) account_->parent = parent->account_;
    }
  }

  static std::shared_ptr<QueueAccount> From(Napi::Value v) {
    if (!v.IsObject() || constructor == nullptr) return nullptr;
    Napi::Object o = v.As<Napi::Object>();
    if (!o.InstanceOf(constructor->Value())) return nullptr;
    return Unwrap(o)->account_;
  }

 private:
  Napi::Value Usage(const Napi::CallbackInfo& info) {
    Napi::Object r = Napi::Object::New(info.Env());
    r.Set("bytes", Napi::Number::New(info.Env(), static_cast<double>(account_->bytes)));
    r.Set("handles", Napi::Number::New(info.Env(), static_cast<double>(account_->handles)));
    return r;
  }

  std::shared_ptr<QueueAccount> account_;
};

Napi::FunctionReference* NativeQueueBudget::constructor = nullptr;

// The epitaph a channel sends natively before it closes for want of fds (FIDL v2 wire format:
// a 16-byte header with txid 0 and the epitaph ordinal, then the int32 status and padding).
std::vector<uint8_t> EpitaphBytes(int32_t status) {
  std::vector<uint8_t> b(24, 0);
  b[4] = 2;     // at-rest flags: wire format v2
  b[7] = 1;     // magic
  for (int i = 8; i < 16; i++) b[i] = 0xff;  // ordinal 0xffffffffffffffff
  memcpy(&b[16], &status, sizeof(status));
  return b;
}

void CloseAll(const std::vector<int>& fds) {
  for (int fd : fds) close(fd);
}

// Maps a sendmsg errno to the zx status the caller sees.
int SendErrnoToStatus(int err) {
  switch (err) {
    case EPIPE:
    case ECONNRESET:
    case ENOTCONN:
    case ECONNREFUSED:
      return ZX_ERR_PEER_CLOSED;
    case EBADF:  // our socket is known open, so it is one of the fds being sent
      return ZX_ERR_BAD_HANDLE;
    case EMSGSIZE:
      return ZX_ERR_OUT_OF_RANGE;
    case ETOOMANYREFS:  // too many fds in flight for this user (RLIMIT_NOFILE)
      return ZX_ERR_NO_RESOURCES;
    case ENOBUFS:
    case ENOMEM:
      return ZX_ERR_NO_MEMORY;
    default:
      return ZX_ERR_INTERNAL;
  }
}

// Datagrams read per recvmmsg. One call returns what is queued, up to this many, so that the
// common case (one message waiting) costs one syscall and not two (a recvmsg, then one more that
// only says EAGAIN), and a busy channel costs one syscall per kReceiveSlots messages.
constexpr unsigned kReceiveSlots = 8;

// The receive slots: one set per thread (every channel of a loop drains on that loop's thread).
// Each slot's buffer is the largest legal message, so that a larger datagram shows up as
// MSG_TRUNC. The buffers are one allocation big enough to be mmap'ed by malloc: pages no
// message reaches are never touched.
struct ReceiveSlots {
  std::unique_ptr<uint8_t[]> bytes{new uint8_t[kReceiveSlots * kMaxMessageBytes]};
  struct iovec iov[kReceiveSlots];
  alignas(struct cmsghdr) char control[kReceiveSlots][CMSG_SPACE(sizeof(int) * kMaxMessageHandles)];
  struct mmsghdr headers[kReceiveSlots];

  // Makes the first `n` slots ready for a recvmmsg.
  void Prepare(unsigned n) {
    for (unsigned i = 0; i < n; i++) {
      iov[i].iov_base = bytes.get() + static_cast<size_t>(i) * kMaxMessageBytes;
      iov[i].iov_len = kMaxMessageBytes;
      struct msghdr& msg = headers[i].msg_hdr;
      msg = {};
      msg.msg_iov = &iov[i];
      msg.msg_iovlen = 1;
      msg.msg_control = control[i];
      msg.msg_controllen = sizeof(control[i]);
      headers[i].msg_len = 0;
    }
  }
};

ReceiveSlots& ThreadReceiveSlots() {
  static thread_local std::unique_ptr<ReceiveSlots> slots(new ReceiveSlots());
  return *slots;
}

struct QueuedMessage {
  std::vector<uint8_t> bytes;
  std::vector<int> fds;  // owned until sent (then closed: the kernel holds its own references)
};

class NativeChannel : public Napi::ObjectWrap<NativeChannel> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeChannel",
                       {
                           InstanceMethod("start", &NativeChannel::Start),
                           InstanceMethod("send", &NativeChannel::Send),
                           InstanceMethod("close", &NativeChannel::Close),
                           InstanceMethod("release", &NativeChannel::Release),
                           InstanceMethod("ref", &NativeChannel::RefLoop),
                           InstanceMethod("unref", &NativeChannel::UnrefLoop),
                           InstanceMethod("queuedBytes", &NativeChannel::QueuedBytes),
                           InstanceMethod("lastErrno", &NativeChannel::LastErrno),
                           InstanceMethod("setQueueBudget", &NativeChannel::SetQueueBudget),
                       });
  }

  // new NativeChannel(fd, onEvent, maxQueuedBytes, maxQueuedHandles?): takes ownership of fd, which must be a
  // SOCK_SEQPACKET socket (checked here: anything else is a wrong-type error, and fd stays the caller's).
  explicit NativeChannel(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeChannel>(info) {
    Napi::Env env = info.Env();
    int fd = FdArg(info, 0);
    if (fd < 0) return;
    if (info.Length() < 3 || !info[1].IsFunction() || !info[2].IsNumber()) {
      ThrowType(env, "NativeChannel(fd, onEvent, maxQueuedBytes)");
      return;
    }
    int type = 0;
    socklen_t len = sizeof(type);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0) {
      ThrowErrno(env, "getsockopt", errno, "SO_TYPE, fd " + std::to_string(fd));
      return;
    }
    if (type != SOCK_SEQPACKET) {
      Napi::Error e = Napi::Error::New(env, "fd " + std::to_string(fd) + " is a socket of type " +
                                                std::to_string(type) + ", not SOCK_SEQPACKET");
      e.Set("code", Napi::String::New(env, "EWRONGTYPE"));
      e.ThrowAsJavaScriptException();
      return;
    }
    int err = MakeCloexecNonblocking(fd);
    if (err != 0) {
      ThrowErrno(env, "fcntl", err, "fd " + std::to_string(fd));
      return;
    }
    fd_ = fd;
    // Weak while idle, so that an unreachable, idle channel can be collected (and its fd closed);
    // the JS side holds the function too. Strong while the poll is active (see UpdatePoll).
    on_event_ = Napi::Weak(info[1].As<Napi::Function>());
    max_queued_bytes_ = static_cast<size_t>(info[2].As<Napi::Number>().Int64Value());
    if (info.Length() > 3 && info[3].IsNumber()) {
      max_queued_handles_ = static_cast<size_t>(info[3].As<Napi::Number>().Int64Value());
    }
    async_context_ = std::make_unique<Napi::AsyncContext>(env, "StarnixChannel", info.This().As<Napi::Object>());
  }

  ~NativeChannel() override { CloseNative(); }

 private:
  // start(): begins delivering messages (and peer-closed) to onEvent.
  Napi::Value Start(const Napi::CallbackInfo& info) {
    if (fd_ < 0 || started_) return info.Env().Undefined();
    started_ = true;
    int err = UpdatePoll();
    if (err != 0) ThrowErrno(info.Env(), "uv_poll_start", err);
    return info.Env().Undefined();
  }

  // send(bytes: Uint8Array, fds: number[] | undefined): number — kSendDone, kSendQueued,
  // kSendQueueOverflow, or a negative zx status. The fds are always consumed (sent, queued or closed).
  Napi::Value Send(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::vector<int> fds;
    if (info.Length() > 1 && info[1].IsArray()) {
      Napi::Array array = info[1].As<Napi::Array>();
      fds.reserve(array.Length());
      bool all_fds = true;
      for (uint32_t i = 0; i < array.Length(); i++) {
        // Not Int32Value(): it wraps 2**32 + n to n, and the send would then close fd n.
        int fd;
        if (starnix::FdArg(array.Get(i), &fd)) {
          fds.push_back(fd);
        } else {
          all_fds = false;
        }
      }
      if (!all_fds) {
        // The fds are consumed whatever happens: close the valid ones, never a guessed one.
        CloseAll(fds);
        ThrowType(env, "send: every handle must be a file descriptor (an integer from 0 to 2147483647)");
        return env.Undefined();
      }
    }
    if (info.Length() < 1 || !info[0].IsTypedArray()) {
      CloseAll(fds);
      ThrowType(env, "send(bytes: Uint8Array, fds: number[])");
      return env.Undefined();
    }
    Napi::Uint8Array bytes = info[0].As<Napi::Uint8Array>();
    const uint8_t* data = bytes.Data();
    size_t size = bytes.ByteLength();
    if (fd_ < 0) {
      CloseAll(fds);
      // Closed here because the peer went away, with JS still hearing the last batch: the
      // caller must see PEER_CLOSED (as it would a moment later), not a state error.
      return Napi::Number::New(env, closed_by_peer_ ? ZX_ERR_PEER_CLOSED : ZX_ERR_BAD_STATE);
    }
    if (size > kMaxMessageBytes || fds.size() > kMaxMessageHandles) {
      CloseAll(fds);
      return Napi::Number::New(env, ZX_ERR_OUT_OF_RANGE);
    }
    if (queue_.empty()) {
      int err = SendNow(data, size, fds);
      if (err == 0) {
        CloseAll(fds);  // the message holds its own references now
        return Napi::Number::New(env, kSendDone);
      }
      if (err != EAGAIN) {
        last_errno_ = err;
        CloseAll(fds);
        return Napi::Number::New(env, SendErrnoToStatus(err));
      }
    }
    // The socket is full (or earlier messages wait): keep order by queueing behind them.
    if (queued_bytes_ + size > max_queued_bytes_ || queued_handles_ + fds.size() > max_queued_handles_ ||
        (budget_ != nullptr && !budget_->TryCharge(size, fds.size()))) {
      CloseAll(fds);
      return Napi::Number::New(env, kSendQueueOverflow);
    }
    QueuedMessage message;
    message.bytes.assign(data, data + size);
    message.fds = std::move(fds);
    queued_bytes_ += size;
    queued_handles_ += message.fds.size();
    queue_.push_back(std::move(message));
    int err = UpdatePoll();
    if (err != 0) {
      // Without a writable poll the queue would never drain: fail this send loudly.
      QueuedMessage& last = queue_.back();
      CloseAll(last.fds);
      queued_bytes_ -= last.bytes.size();
      queued_handles_ -= last.fds.size();
      if (budget_ != nullptr) budget_->Release(last.bytes.size(), last.fds.size());
      queue_.pop_back();
      ThrowErrno(env, "uv_poll_start", err);
      return env.Undefined();
    }
    return Napi::Number::New(env, kSendQueued);
  }

  // close(): stops polling, closes the socket and every fd still queued. Idempotent; no callback.
  // close(dropQueued = false): with dropQueued, what is still queued is dropped at once (the write
  // queue overflowed: the peer was judged not to read, so nothing is held for it any longer).
  Napi::Value Close(const Napi::CallbackInfo& info) {
    bool drop = info.Length() > 0 && info[0].IsBoolean() && info[0].As<Napi::Boolean>().Value();
    if (!drop && fd_ >= 0 && !queue_.empty() && !lingering_ && StartLinger()) return info.Env().Undefined();
    CloseNative();
    return info.Env().Undefined();
  }

  // Stops reading and keeps only the write side alive until the queue is sent (see kLingerMs).
  // Returns false if that cannot be arranged (the caller then closes at once, dropping the queue).
  bool StartLinger() {
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(Env(), &loop) != napi_ok || loop == nullptr) return false;
    linger_timer_ = new uv_timer_t;
    uv_timer_init(loop, linger_timer_);
    linger_timer_->data = this;
    uv_unref(reinterpret_cast<uv_handle_t*>(linger_timer_));  // the write poll keeps the loop alive
    uv_timer_start(
        linger_timer_,
        [](uv_timer_t* t) {
          NativeChannel* self = static_cast<NativeChannel*>(t->data);
          Napi::HandleScope scope(self->Env());
          Napi::Object keep = self->Value();  // alive across the warning's callback
          (void)keep;
          self->Warn("closed with " + std::to_string(self->queue_.size()) + " message(s) its peer did not read within " +
                     std::to_string(kLingerMs) + " ms: dropped");
          self->CloseNative();
        },
        kLingerMs, 0);
    lingering_ = true;
    started_ = false;  // nothing more is read or delivered: the JS side is closed
    if (UpdatePoll() != 0) {
      CloseNative();
      return true;  // closed all the same
    }
    // A lingering close does not keep the process alive: a process that exits drops what is still
    // queued, as it always would have (a server stopping must not wait on a client that stalls).
    if (poll_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
    shutdown(fd_, SHUT_RD);
    return true;
  }

  // release(): gives up the socket fd (returned) without closing it, for moving the channel
  // into a message. Returns -1 if messages are still queued (they would be lost).
  Napi::Value Release(const Napi::CallbackInfo& info) {
    if (fd_ < 0 || !queue_.empty()) return Napi::Number::New(info.Env(), -1);
    int fd = fd_;
    // Unregister the fd from the loop now: its next owner may poll the same fd number.
    if (poll_ != nullptr) {
      uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
      poll_ = nullptr;
    }
    poll_events_ = 0;
    fd_ = -1;
    DropSelfRef();
    return Napi::Number::New(info.Env(), fd);
  }

  Napi::Value RefLoop(const Napi::CallbackInfo& info) {
    loop_ref_ = true;
    if (poll_ != nullptr) uv_ref(reinterpret_cast<uv_handle_t*>(poll_));
    return info.Env().Undefined();
  }

  Napi::Value UnrefLoop(const Napi::CallbackInfo& info) {
    loop_ref_ = false;
    if (poll_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
    return info.Env().Undefined();
  }

  Napi::Value QueuedBytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(queued_bytes_));
  }

  Napi::Value LastErrno(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), last_errno_);
  }

  // setQueueBudget(budget: NativeQueueBudget): what this channel queues from now on is charged to
  // it. Only while nothing is queued (what was queued before was charged elsewhere). Returns false
  // when refused.
  Napi::Value SetQueueBudget(const Napi::CallbackInfo& info) {
    std::shared_ptr<QueueAccount> budget = info.Length() > 0 ? NativeQueueBudget::From(info[0]) : nullptr;
    if (budget == nullptr || !queue_.empty()) return Napi::Boolean::New(info.Env(), false);
    budget_ = std::move(budget);
    return Napi::Boolean::New(info.Env(), true);
  }

  // Drops every queued message (closing its fds) and gives its bytes back to the budgets.
  void DropQueue() {
    for (QueuedMessage& q : queue_) CloseAll(q.fds);
    queue_.clear();
    if (budget_ != nullptr) budget_->Release(queued_bytes_, queued_handles_);
    queued_bytes_ = 0;
    queued_handles_ = 0;
  }

  // One sendmsg. Returns 0 when sent, else the errno (EAGAIN when the socket is full).
  int SendNow(const uint8_t* data, size_t size, const std::vector<int>& fds) {
    struct iovec iov;
    iov.iov_base = const_cast<uint8_t*>(data);
    iov.iov_len = size;
    struct msghdr msg = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxMessageHandles)];
    if (!fds.empty()) {
      size_t payload = sizeof(int) * fds.size();
      msg.msg_control = control;
      msg.msg_controllen = CMSG_SPACE(payload);
      memset(control, 0, msg.msg_controllen);
      struct cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
      cmsg->cmsg_level = SOL_SOCKET;
      cmsg->cmsg_type = SCM_RIGHTS;
      cmsg->cmsg_len = CMSG_LEN(payload);
      memcpy(CMSG_DATA(cmsg), fds.data(), payload);
    }
    for (;;) {
      ssize_t n = sendmsg(fd_, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n >= 0) return 0;  // SEQPACKET: all or nothing
      if (errno == EINTR) continue;
      return errno == EWOULDBLOCK ? EAGAIN : errno;
    }
  }

  // Creates the poll handle on first use. Returns 0 or a libuv error.
  int EnsurePoll() {
    if (poll_ != nullptr) return 0;
    int err = NewPoll(Env(), fd_, this, &poll_);
    if (err != 0) return err;
    if (!loop_ref_) uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
    return 0;
  }

  // Polls for what is wanted now: readable once started, writable while messages are queued.
  // Returns 0, or a positive errno for ThrowErrno.
  int UpdatePoll() {
    if (fd_ < 0) return 0;
    int events = (started_ ? (UV_READABLE | UV_DISCONNECT) : 0) | (queue_.empty() ? 0 : UV_WRITABLE);
    if (events == poll_events_) return 0;
    if (events == 0) {
      StopPoll();
      return 0;
    }
    int err = EnsurePoll();
    if (err == 0) err = uv_poll_start(poll_, events, &NativeChannel::OnPoll);
    if (err != 0) return -err;
    poll_events_ = events;
    if (!self_ref_) {
      Ref();  // the kernel may call back: stay alive until the poll stops
      on_event_.Ref();
      self_ref_ = true;
    }
    return 0;
  }

  void StopPoll() {
    if (poll_ != nullptr && poll_events_ != 0) uv_poll_stop(poll_);
    poll_events_ = 0;
    DropSelfRef();
  }

  void DropSelfRef() {
    if (self_ref_) {
      self_ref_ = false;
      on_event_.Unref();
      Unref();
    }
  }

  void CloseNative() {
    lingering_ = false;
    if (linger_timer_ != nullptr) {
      uv_close(reinterpret_cast<uv_handle_t*>(linger_timer_), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
      linger_timer_ = nullptr;
    }
    if (poll_ != nullptr) {
      // uv_close stops and unregisters the fd at once; only the free waits for the loop.
      uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
      poll_ = nullptr;
    }
    poll_events_ = 0;
    if (fd_ >= 0) {
      close(fd_);
      fd_ = -1;
    }
    DropQueue();
    DropSelfRef();
  }

  static void OnPoll(uv_poll_t* handle, int status, int events) {
    NativeChannel* self = static_cast<NativeChannel*>(handle->data);
    // Keep the wrapper alive across the callbacks below even if JS closes it meanwhile.
    Napi::HandleScope scope(self->Env());
    Napi::Object keep = self->Value();
    (void)keep;
    if (status < 0) {
      // POLLERR (e.g. ECONNRESET: the peer closed with our messages unread). libuv has stopped the
      // watcher; read what the peer sent before it went away, then close.
      self->poll_events_ = 0;
      if (self->lingering_) {
        self->CloseNative();  // closed by JS already; the peer is gone: what was queued is lost
        return;
      }
      if (!self->started_) {
        // Only writes were watched, and they cannot succeed (the peer is gone): drop what we
        // queued, but leave the socket open. What the peer sent stays readable for start(), and
        // the error stays pending on the socket, so the read poll hears of it again then.
        size_t lost = self->queue_.size();
        self->DropQueue();
        self->DropSelfRef();
        self->Warn("dropped " + std::to_string(lost) + " queued message(s): socket error (peer closed)");
        return;
      }
      // Everything the peer sent before it went away is still readable: drain it all, batch by
      // batch (each pass ends at the batch limit, or closes the channel at EAGAIN or end of stream).
      while (self->fd_ >= 0) self->DrainReadable(/*closing=*/true);
      return;
    }
    if ((events & UV_WRITABLE) && self->fd_ >= 0) self->Flush();
    if ((events & (UV_READABLE | UV_DISCONNECT)) && self->fd_ >= 0 && self->started_) self->DrainReadable(false);
  }

  // Sends queued messages until the socket is full again.
  void Flush() {
    while (!queue_.empty()) {
      QueuedMessage& m = queue_.front();
      int err = SendNow(m.bytes.data(), m.bytes.size(), m.fds);
      if (err == EAGAIN) return;
      size_t lost = queue_.size();
      if (err != 0 && lingering_) {
        CloseNative();  // closed by JS already; the peer is gone: what was queued is lost
        return;
      }
      if (err != 0) {
        // The peer is gone (or the socket broke): queued messages cannot be delivered. The read
        // side reports the close once it has delivered what the peer sent before closing.
        DropQueue();
        int status = SendErrnoToStatus(err);
        Warn("dropped " + std::to_string(lost) + " queued message(s): sendmsg: " + strerror(err));
        if (fd_ < 0) return;  // JS closed it while hearing the warning
        if (status != ZX_ERR_PEER_CLOSED) {
          CloseAndReport(status, std::string("sendmsg failed: ") + strerror(err));
          return;
        }
        break;
      }
      CloseAll(m.fds);
      queued_bytes_ -= m.bytes.size();
      queued_handles_ -= m.fds.size();
      if (budget_ != nullptr) budget_->Release(m.bytes.size(), m.fds.size());
      queue_.pop_front();
    }
    if (lingering_) {
      CloseNative();  // everything written before close() is sent
      return;
    }
    int err = UpdatePoll();
    if (err != 0) CloseAndReport(ZX_ERR_INTERNAL, std::string("uv_poll_start: ") + strerror(err));
  }

  // Reads datagrams until the queue is empty, end of stream or the batch limit; delivers them in
  // one JS call. The queue is known empty when a recvmmsg returns fewer datagrams than it asked
  // for (a socket error met after some datagrams is kept by the kernel for the next read, or
  // raises POLLERR, so nothing is lost by not asking again now).
  void DrainReadable(bool closing) {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    Napi::Array batch = Napi::Array::New(env);
    uint32_t count = 0;
    size_t batch_bytes = 0;
    size_t batch_handles = 0;
    int close_status = 0;
    std::string close_detail;
    ReceiveSlots& slots = ThreadReceiveSlots();
    std::vector<int> fds;

    while (close_status == 0 && count < kBatchMaxMessages && batch_bytes < kBatchMaxBytes &&
           batch_handles < kBatchMaxHandles) {
      // No more than the batch limits allow (as before, the last message may pass the byte limit).
      unsigned want = std::min<unsigned>(kReceiveSlots, kBatchMaxMessages - count);
      want = std::min<unsigned>(want, std::max<size_t>(1, (kBatchMaxBytes - batch_bytes) / kMaxMessageBytes));
      slots.Prepare(want);
      int got = recvmmsg(fd_, slots.headers, want, MSG_CMSG_CLOEXEC | MSG_DONTWAIT, nullptr);
      if (got < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          if (closing) {
            close_status = ZX_ERR_PEER_CLOSED;
            close_detail = "peer closed (socket error)";
          }
          break;
        }
        if (errno == ECONNRESET) continue;  // reported once; queued datagrams may follow
        close_status = ZX_ERR_IO;
        close_detail = std::string("recvmmsg failed: ") + strerror(errno);
        break;
      }
      for (int i = 0; i < got; i++) {
        struct msghdr& msg = slots.headers[i].msg_hdr;
        size_t n = slots.headers[i].msg_len;
        fds.clear();
        for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
          if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            const int* received = reinterpret_cast<const int*>(CMSG_DATA(c));
            for (size_t j = 0; j < k; j++) fds.push_back(received[j]);
          }
        }
        if (close_status != 0) {
          // Read in the same call as a message that closes the channel: dropped, as the datagrams
          // still queued behind it are, and none of its fds may leak.
          CloseAll(fds);
          continue;
        }
        if ((msg.msg_flags & MSG_CTRUNC) && !(msg.msg_flags & MSG_TRUNC) && fds.size() < kMaxMessageHandles) {
          // Fewer fds than the control buffer holds, and still truncated: the kernel could not
          // install the rest (EMFILE / ENFILE: this process is out of file descriptors). The
          // message lost handles, so it cannot be served; say so, and why, to the peer and the log.
          CloseAll(fds);
          close_status = ZX_ERR_NO_RESOURCES;
          close_detail = "out of file descriptors (EMFILE/ENFILE) while receiving a message's handles: " +
                         std::to_string(fds.size()) + " received, the rest dropped by the kernel";
          std::vector<uint8_t> epitaph = EpitaphBytes(ZX_ERR_NO_RESOURCES);
          (void)SendNow(epitaph.data(), epitaph.size(), {});
          continue;
        }
        if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
          // Larger than a channel message, or more than 64 handles: not a peer that speaks our
          // protocol. Nothing of it may leak: close what arrived, and the channel.
          CloseAll(fds);
          close_status = ZX_ERR_IO;
          close_detail = (msg.msg_flags & MSG_TRUNC)
                             ? "protocol error: message over " + std::to_string(kMaxMessageBytes) + " bytes"
                             : "protocol error: message with over " + std::to_string(kMaxMessageHandles) + " handles";
          continue;
        }
        if (n == 0 && fds.empty()) {
          // End of stream and an empty datagram look alike; the hang-up flag tells them apart.
          // (An empty message sent right before the peer closed is indistinguishable and dropped.)
          struct pollfd p = {fd_, POLLIN, 0};
          if (poll(&p, 1, 0) >= 0 && (p.revents & (POLLHUP | POLLRDHUP))) {
            close_status = ZX_ERR_PEER_CLOSED;
            close_detail = "peer closed";
            continue;
          }
        }
        const uint8_t* data = static_cast<const uint8_t*>(slots.iov[i].iov_base);
        batch.Set(count * 2, Napi::Buffer<uint8_t>::Copy(env, data, n));
        if (!fds.empty()) {
          Napi::Array fd_array = Napi::Array::New(env, fds.size());
          for (uint32_t j = 0; j < fds.size(); j++) fd_array.Set(j, Napi::Number::New(env, fds[j]));
          batch.Set(count * 2 + 1, fd_array);
        } else {
          batch.Set(count * 2 + 1, env.Undefined());
        }
        count++;
        batch_bytes += n;
        batch_handles += fds.size();
      }
      if (static_cast<unsigned>(got) < want) break;  // the queue is empty (or an error waits)
    }

    if (close_status != 0) {
      closed_by_peer_ = close_status == ZX_ERR_PEER_CLOSED;
      CloseNative();  // before JS hears of it: state is final
    }
    if (count > 0) {
      Call(kEventMessages, batch, env.Undefined());
    }
    if (close_status != 0) {
      Call(kEventClosed, Napi::Number::New(env, close_status), Napi::String::New(env, close_detail));
    }
  }

  void CloseAndReport(int status, const std::string& detail) {
    closed_by_peer_ = status == ZX_ERR_PEER_CLOSED;
    CloseNative();
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    Call(kEventClosed, Napi::Number::New(env, status), Napi::String::New(env, detail));
  }

  void Warn(const std::string& detail) {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    Call(kEventWarning, Napi::String::New(env, detail), env.Undefined());
  }

  // Calls onEvent as a fresh macrotask (MakeCallback runs microtasks and nextTicks afterwards).
  // A throwing listener is an uncaught exception, as with any EventEmitter fed by the loop.
  void Call(int kind, Napi::Value a, Napi::Value b) {
    if (on_event_.IsEmpty() || on_event_.Value().IsEmpty()) return;
    Napi::Env env = Env();
    on_event_.MakeCallback(Value(), {Napi::Number::New(env, kind), a, b}, *async_context_);
    if (env.IsExceptionPending()) {
      Napi::Error error = env.GetAndClearPendingException();
      napi_fatal_exception(env, error.Value());
    }
  }

  int fd_ = -1;
  uv_poll_t* poll_ = nullptr;
  int poll_events_ = 0;
  bool started_ = false;
  bool loop_ref_ = true;
  bool self_ref_ = false;
  int last_errno_ = 0;
  bool closed_by_peer_ = false;  // the fd was closed natively because the peer closed
  bool lingering_ = false;       // closed by JS with messages queued: sending them, then closing
  uv_timer_t* linger_timer_ = nullptr;
  size_t max_queued_bytes_ = 4 << 20;
  std::deque<QueuedMessage> queue_;
  size_t queued_bytes_ = 0;
  size_t max_queued_handles_ = 4096;
  size_t queued_handles_ = 0;
  std::shared_ptr<QueueAccount> budget_;  // may be null: only the per-channel caps apply
  Napi::FunctionReference on_event_;
  std::unique_ptr<Napi::AsyncContext> async_context_;
};

// socketpair(): [fd, fd], both SOCK_SEQPACKET, close-on-exec and non-blocking.
Napi::Value SocketPair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) < 0) {
    ThrowErrno(env, "socketpair", errno);
    return env.Undefined();
  }
  Napi::Array result = Napi::Array::New(env, 2);
  result.Set(0u, Napi::Number::New(env, fds[0]));
  result.Set(1u, Napi::Number::New(env, fds[1]));
  return result;
}

}  // namespace
}  // namespace transport

void InitChannel(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeChannel", transport::NativeChannel::Define(env));
  exports.Set("NativeQueueBudget", transport::NativeQueueBudget::Define(env));
  exports.Set("socketPair", Napi::Function::New(env, transport::SocketPair, "socketPair"));
  transport::InitServiceSocket(env, exports);
}

}  // namespace starnix
