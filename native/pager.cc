// N-API binding of the pager core (pager_core.h): class `Pager` on the addon's exports.
//
//   new Pager(backingFd, blockSize, { threads, readahead: 'fixed'|'adaptive', dropCache,
//             hugePages: 'never'|'auto'|'always', hugeThreshold }, onEvent)
//   onEvent('log', level, message) | onEvent('forgotten', inode, name)   (unref'd; never keeps the loop alive)
//   registerFile(name, inode, size, extents) -> { fd, created }
//   attachMapping(fileFd, uffdFd, address, length, offset) -> id
//   detachMapping(id), stats(), ownsFile(fd) -> boolean, stop()
// Errors are thrown as Error with a numeric `status` (a zx status).
//
// Pager threads never touch JS: they post events to a ThreadSafeFunction.
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <memory>
#include <mutex>

#include "exports.h"
#include "napi_args.h"
#include "pager_core.h"
#include "uffd.h"

namespace starnix {
namespace {

using pager::Status;

void ThrowStatus(Napi::Env env, int status, const std::string& message) {
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("status", Napi::Number::New(env, status));
  error.ThrowAsJavaScriptException();
}

// An event from a pager thread to JS.
struct Event {
  bool forgotten;
  int level;
  uint32_t inode;
  std::string text;
};

// The link from native threads to JS. Calls after Close() are dropped.
class EventSink {
 public:
  EventSink(Napi::Env env, Napi::Function callback) {
    tsfn_ = Napi::ThreadSafeFunction::New(env, callback, "starnix-pager-events", 0, 1);
    tsfn_.Unref(env);
    open_ = true;
  }
  void Post(Event* event) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!open_) {
      delete event;
      return;
    }
    napi_status s = tsfn_.NonBlockingCall(event, [](Napi::Env env, Napi::Function fn, Event* e) {
      if (env != nullptr && fn != nullptr) {
        // napi_call_function, not fn.Call: while Node tears the environment down (an event
        // posted as the process exits) the call fails, and fn.Call would turn that failure into
        // a JS exception that cannot be thrown any more, which aborts the process.
        napi_value args[3];
        if (e->forgotten) {
          args[0] = Napi::String::New(env, "forgotten");
          args[1] = Napi::Number::New(env, e->inode);
        } else {
          static const char* kLevels[] = {"error", "warn", "info", "debug"};
          args[0] = Napi::String::New(env, "log");
          args[1] = Napi::String::New(env, kLevels[e->level & 3]);
        }
        args[2] = Napi::String::New(env, e->text);
        napi_value ignored;
        napi_call_function(env, env.Undefined(), fn, 3, args, &ignored);
      }
      delete e;
    });
    if (s != napi_ok) delete event;
  }
  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!open_) return;
    open_ = false;
    tsfn_.Release();
  }

 private:
  std::mutex mu_;
  bool open_ = false;
  Napi::ThreadSafeFunction tsfn_;
};

class PagerObject : public Napi::ObjectWrap<PagerObject> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Pager",
                       {InstanceMethod("registerFile", &PagerObject::RegisterFile),
                        InstanceMethod("attachMapping", &PagerObject::AttachMapping),
                        InstanceMethod("detachMapping", &PagerObject::DetachMapping),
                        InstanceMethod("isAttached", &PagerObject::IsAttached),
                        InstanceMethod("stats", &PagerObject::Stats),
                        InstanceMethod("ownsFile", &PagerObject::OwnsFile),
                        InstanceMethod("drainTrace", &PagerObject::DrainTrace),
                        InstanceMethod("residentBytes", &PagerObject::ResidentBytes),
                        InstanceMethod("stop", &PagerObject::Stop),
                        InstanceMethod("freed", &PagerObject::Freed)});
  }

  explicit PagerObject(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PagerObject>(info) {
    Napi::Env env = info.Env();
    int backing_fd;
    uint64_t block_size;
    if (info.Length() < 4 || !FdArg(info[0], &backing_fd) || !U64Arg(info[1], &block_size) ||
        !info[2].IsObject() || !info[3].IsFunction()) {
      ThrowStatus(env, ZX_ERR_INVALID_ARGS, "Pager(backingFd, blockSize, options, onEvent)");
      return;
    }
    pager::Options options;
    Napi::Object o = info[2].As<Napi::Object>();
    Napi::Value threads = o.Get("threads");
    if (!threads.IsUndefined()) {
      uint64_t n;
      if (!U64Arg(threads, &n) || n < 1 || n > 64) {
        ThrowStatus(env, ZX_ERR_INVALID_ARGS, "threads must be an integer 1..64");
        return;
      }
      options.threads = static_cast<int>(n);
    }
    Napi::Value readahead = o.Get("readahead");
    if (!readahead.IsUndefined()) {
      std::string mode = readahead.IsString() ? readahead.As<Napi::String>().Utf8Value() : "";
      if (mode == "fixed") {
        options.readahead = pager::Readahead::kFixed;
      } else if (mode == "adaptive") {
        options.readahead = pager::Readahead::kAdaptive;
      } else {
        ThrowStatus(env, ZX_ERR_INVALID_ARGS, "readahead must be 'fixed' or 'adaptive'");
        return;
      }
    }
    Napi::Value huge = o.Get("hugePages");
    if (!huge.IsUndefined()) {
      std::string mode = huge.IsString() ? huge.As<Napi::String>().Utf8Value() : "";
      if (mode == "never") {
        options.huge_pages = pager::HugePages::kNever;
      } else if (mode == "auto") {
        options.huge_pages = pager::HugePages::kAuto;
      } else if (mode == "always") {
        options.huge_pages = pager::HugePages::kAlways;
      } else {
        ThrowStatus(env, ZX_ERR_INVALID_ARGS, "hugePages must be 'auto', 'always' or 'never'");
        return;
      }
    }
    Napi::Value threshold = o.Get("hugeThreshold");
    if (!threshold.IsUndefined() && !U64Arg(threshold, &options.huge_threshold)) {
      ThrowStatus(env, ZX_ERR_INVALID_ARGS, "hugeThreshold must be a byte count");
      return;
    }
    Napi::Value drop = o.Get("dropCache");
    if (!drop.IsUndefined()) options.drop_cache = drop.ToBoolean().Value();
    Napi::Value trace = o.Get("trace");
    if (!trace.IsUndefined()) options.trace = trace.ToBoolean().Value();

    sink_ = std::make_shared<EventSink>(env, info[3].As<Napi::Function>());
    std::weak_ptr<EventSink> weak = sink_;
    auto log = [weak](pager::LogLevel level, const std::string& message) {
      if (auto s = weak.lock()) s->Post(new Event{false, static_cast<int>(level), 0, message});
    };
    auto forgotten = [weak](uint32_t inode, const std::string& name) {
      if (auto s = weak.lock()) s->Post(new Event{true, 0, inode, name});
    };
    Status status = pager::Pager::Create(backing_fd, block_size, options, log, forgotten, &pager_);
    if (!status.ok()) {
      sink_->Close();
      ThrowStatus(env, status.status, status.message);
      return;
    }
    env_ = env;
    napi_add_env_cleanup_hook(env, &PagerObject::Cleanup, this);
    hooked_ = true;
  }

  ~PagerObject() override { Shutdown(); }

 private:
  static void Cleanup(void* arg) {
    PagerObject* self = static_cast<PagerObject*>(arg);
    self->hooked_ = false;  // the hook is being run: do not remove it
    self->Shutdown();
  }

  void Shutdown() {
    if (pager_) {
      pager_->Stop();
      stopped_ = pager_;
      pager_.reset();
    }
    if (sink_) sink_->Close();
    if (hooked_) {
      napi_remove_env_cleanup_hook(env_, &PagerObject::Cleanup, this);
      hooked_ = false;
    }
  }

  bool Live(Napi::Env env) {
    if (pager_) return true;
    ThrowStatus(env, ZX_ERR_BAD_STATE, "pager is stopped");
    return false;
  }

  Napi::Value RegisterFile(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Live(env)) return env.Undefined();
    uint64_t inode, size;
    if (info.Length() < 4 || !info[0].IsString() || !U64Arg(info[1], &inode) || inode > UINT32_MAX ||
        !U64Arg(info[2], &size) || !info[3].IsArray()) {
      ThrowStatus(env, ZX_ERR_INVALID_ARGS, "registerFile(name, inode u32, size u64, extents[])");
      return env.Undefined();
    }
    Napi::Array array = info[3].As<Napi::Array>();
    std::vector<pager::Extent> extents;
    extents.reserve(array.Length());
    for (uint32_t i = 0; i < array.Length(); i++) {
      Napi::Value v = array.Get(i);
      uint64_t ls, le, pb;
      if (!v.IsObject() || !U64Arg(v.As<Napi::Object>().Get("logicalStart"), &ls) || ls > UINT32_MAX ||
          !U64Arg(v.As<Napi::Object>().Get("logicalEnd"), &le) || le > UINT32_MAX ||
          !U64Arg(v.As<Napi::Object>().Get("physicalBlock"), &pb)) {
        ThrowStatus(env, ZX_ERR_INVALID_ARGS,
                    "extent " + std::to_string(i) + ": { logicalStart u32, logicalEnd u32, physicalBlock u64 }");
        return env.Undefined();
      }
      extents.push_back(pager::Extent{static_cast<uint32_t>(ls), static_cast<uint32_t>(le), pb});
    }
    int fd = -1;
    bool created = false;
    Status s = pager_->RegisterFile(info[0].As<Napi::String>().Utf8Value(), static_cast<uint32_t>(inode), size,
                                    extents, &fd, &created);
    if (!s.ok()) {
      ThrowStatus(env, s.status, s.message);
      return env.Undefined();
    }
    Napi::Object result = Napi::Object::New(env);
    result.Set("fd", Napi::Number::New(env, fd));
    result.Set("created", Napi::Boolean::New(env, created));
    return result;
  }

  Napi::Value AttachMapping(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int file_fd, uffd_fd;
    uint64_t address, length, offset;
    if (info.Length() < 5 || !FdArg(info[0], &file_fd) || !FdArg(info[1], &uffd_fd) || !U64Arg(info[2], &address) ||
        !U64Arg(info[3], &length) || !U64Arg(info[4], &offset)) {
      // The uffd is ours also when the call is refused (the caller has let go of it).
      if (info.Length() >= 2 && FdArg(info[1], &uffd_fd)) close(uffd_fd);
      ThrowStatus(env, ZX_ERR_INVALID_ARGS, "attachMapping(fileFd, uffdFd, address, length, offset)");
      return env.Undefined();
    }
    if (!pager_) {
      close(uffd_fd);  // ownership was passed to us
      ThrowStatus(env, ZX_ERR_BAD_STATE, "pager is stopped");
      return env.Undefined();
    }
    uint64_t id = 0;
    Status s = pager_->AttachMapping(file_fd, uffd_fd, address, length, offset, &id);
    if (!s.ok()) {
      ThrowStatus(env, s.status, s.message);
      return env.Undefined();
    }
    return Napi::Number::New(env, static_cast<double>(id));
  }

  Napi::Value DetachMapping(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint64_t id;
    if (info.Length() < 1 || !U64Arg(info[0], &id)) {
      ThrowStatus(env, ZX_ERR_INVALID_ARGS, "detachMapping(id)");
      return env.Undefined();
    }
    if (pager_) pager_->DetachMapping(id);
    return env.Undefined();
  }

  Napi::Value IsAttached(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint64_t id;
    if (info.Length() < 1 || !U64Arg(info[0], &id)) {
      ThrowStatus(env, ZX_ERR_INVALID_ARGS, "isAttached(id)");
      return env.Undefined();
    }
    return Napi::Boolean::New(env, pager_ != nullptr && pager_->IsAttached(id));
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    pager::Stats s = pager_ ? pager_->GetStats() : last_stats_;
    Napi::Object o = Napi::Object::New(env);
    o.Set("files", Napi::Number::New(env, static_cast<double>(s.files)));
    o.Set("faults", Napi::Number::New(env, static_cast<double>(s.faults)));
    o.Set("bytesSupplied", Napi::BigInt::New(env, s.bytes_supplied));
    o.Set("bytesZeroed", Napi::BigInt::New(env, s.bytes_zeroed));
    o.Set("failures", Napi::Number::New(env, static_cast<double>(s.failures)));
    o.Set("attachments", Napi::Number::New(env, static_cast<double>(s.attachments)));
    o.Set("hugeFiles", Napi::Number::New(env, static_cast<double>(s.huge_files)));
    o.Set("hugeFallbacks", Napi::Number::New(env, static_cast<double>(s.huge_fallbacks)));
    o.Set("foreignPages", Napi::Number::New(env, static_cast<double>(s.foreign_pages)));
    return o;
  }

  Napi::Value OwnsFile(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int fd;
    if (info.Length() < 1 || !FdArg(info[0], &fd)) {
      ThrowStatus(env, ZX_ERR_INVALID_ARGS, "ownsFile(fd)");
      return env.Undefined();
    }
    // The fd is a client's: cached attributes only, never a GETATTR to a FUSE daemon (see StatNoSync).
    struct statx st;
    if (!pager_ || uffd::StatNoSync(fd, STATX_INO, &st) != 0) return Napi::Boolean::New(env, false);
    return Napi::Boolean::New(env, pager_->OwnsFile(makedev(st.stx_dev_major, st.stx_dev_minor), st.stx_ino));
  }

  // Takes what the pager threads recorded since the last call (tracing only):
  // [{ tid, dropped, records: Buffer of 64-byte trace::VmoRead records }], one per thread.
  // What was recorded up to stop() can still be taken after it.
  Napi::Value DrainTrace(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (pager_) CollectTrace();
    Napi::Array out = Napi::Array::New(env, traced_.size());
    for (size_t i = 0; i < traced_.size(); i++) {
      TracedThread& t = traced_[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("tid", Napi::Number::New(env, t.tid));
      o.Set("dropped", Napi::Number::New(env, static_cast<double>(t.dropped)));
      o.Set("records", Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<const uint8_t*>(t.records.data()),
                                                    t.records.size() * sizeof(trace::VmoRead)));
      t.records.clear();
      out.Set(static_cast<uint32_t>(i), o);
    }
    return out;
  }

  Napi::Value ResidentBytes(const Napi::CallbackInfo& info) {
    return Napi::BigInt::New(info.Env(), pager_ ? pager_->ResidentBytes() : 0);
  }

  // After stop(): true once the native pager is gone, i.e. its last thread has left (a thread may
  // still be inside a read of a backing that does not answer, and holds the pager's fds until then).
  Napi::Value Freed(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), !pager_ && stopped_.expired());
  }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    if (pager_) {
      pager_->Stop();
      last_stats_ = pager_->GetStats();
      CollectTrace();  // what the threads recorded; a window a thread was still filling may be lost
    }
    Shutdown();
    return info.Env().Undefined();
  }

  void CollectTrace() {
    for (size_t i = 0;; i++) {
      trace::Ring* ring = pager_->TraceRing(i);
      if (ring == nullptr) return;
      if (traced_.size() <= i) traced_.emplace_back();
      traced_[i].tid = ring->tid;
      traced_[i].dropped = ring->dropped();
      ring->Drain(&traced_[i].records);
    }
  }

  struct TracedThread {
    int tid = 0;
    uint64_t dropped = 0;
    std::vector<trace::VmoRead> records;
  };

  std::shared_ptr<pager::Pager> pager_;
  std::weak_ptr<pager::Pager> stopped_;  // the pager after stop(), until its last thread leaves
  std::shared_ptr<EventSink> sink_;
  pager::Stats last_stats_;
  std::vector<TracedThread> traced_;  // drained from the rings, not yet taken by JS
  napi_env env_ = nullptr;
  bool hooked_ = false;
};

// A plain memfd of `size` bytes, for tests and benchmarks that need a memfd backing.
Napi::Value CreateMemfdForTests(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t size;
  if (info.Length() < 2 || !info[0].IsString() || !U64Arg(info[1], &size)) {
    ThrowStatus(env, ZX_ERR_INVALID_ARGS, "pagerCreateMemfd(name, size)");
    return env.Undefined();
  }
  int fd = memfd_create(info[0].As<Napi::String>().Utf8Value().c_str(), MFD_CLOEXEC);
  if (fd < 0 || ftruncate(fd, static_cast<off_t>(size)) != 0) {
    int err = errno;
    if (fd >= 0) close(fd);
    ThrowStatus(env, ZX_ERR_NO_RESOURCES, std::string("memfd_create: ") + strerror(err));
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

}  // namespace

// CLOCK_BOOTTIME in ns, the clock the pager threads stamp trace records with (a BigInt).
static Napi::Value TraceClockNs(const Napi::CallbackInfo& info) {
  return Napi::BigInt::New(info.Env(), trace::NowNs());
}

void InitPager(Napi::Env env, Napi::Object exports) {
  exports.Set("Pager", PagerObject::Define(env));
  exports.Set("traceClockNs", Napi::Function::New(env, TraceClockNs, "traceClockNs"));
  exports.Set("pagerCreateMemfd", Napi::Function::New(env, CreateMemfdForTests, "pagerCreateMemfd"));
}

}  // namespace starnix
