// The client side: a file of the pager mapped into this process, its uffd, and safe reads.
//
//   new Mapping(fileFd, size) -> { address: bigint, length: bigint, userModeOnly: boolean, how: string }
//   uffdForPager() -> fd (a dup; the mapping keeps its own)
//   watchPager(socketFd)      (a dup is watched: hang-up => every missing page is poisoned)
//   read(offset, length) -> Buffer ; readAsync(offset, length) -> Promise<Buffer>
//   readInto(target, offset) -> n ; readIntoAsync(target, offset) -> Promise<n>
//   writeTo(fd, offset, length) -> Promise<bytes written> ; close()
//
// The mapping is MAP_PRIVATE and read-only: UFFDIO_REGISTER refuses a shared mapping of a
// read-only description (no VM_MAYWRITE, EPERM). It is registered MISSING | MINOR: every page not
// in this mapping's own page tables faults to the pager, also one already in the memfd's page
// cache, which may be a page of zeros another holder put there by touching it through a mapping
// without a uffd (issue 12). The pager fills the page cache (or writes the right bytes over such a
// page) and maps the page here with UFFDIO_CONTINUE, which wakes us (see pager_core.h). The kernel
// never maps a page of the file here by itself (MINOR registration also turns off fault-around).
//
// A poisoned page (the pager could not read it, or the pager is gone) raises SIGBUS. Reads copy
// under a per-thread sigsetjmp guard limited to the copied range and report an error instead;
// a SIGBUS at any other address goes to the handler that was there before.
//
// A file on huge pages (its handle is a hugetlb memfd: fstatfs says HUGETLBFS_MAGIC) is mapped
// MAP_PRIVATE | MAP_NORESERVE in whole huge pages: read faults map the pager's shared huge pages,
// and the mapping reserves nothing from the pool (the pager's own mapping holds the reservation).
// A page failed there is failed 2 MiB at a time (UFFDIO_POISON poisons whole huge pages).
//
// Order matters when tearing down: the range is unmapped before the uffd is closed. A missing
// page touched after the last uffd reference is gone would be filled with zeros by the kernel,
// in the page cache every process shares (harmless to MINOR-registered readers, whose pager
// writes the right bytes over it, but not to others).
//
// When the pager is gone (its socket hangs up, or it stopped in this process: MarkPagerGone), a
// thread answers every fault of the mapping with UFFDIO_POISON, one page per fault (Watcher): a
// read gets EPIPE, never a wait or zeros, and the cost is bounded by the faults taken, not by the
// mapping's size (pre-poisoning a sparse 2^46-byte mapping would be terabytes of page tables).
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <linux/kcmp.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "exports.h"
#include "mapping_registry.h"
#include "napi_args.h"
#include "uffd.h"

namespace starnix {
namespace {

// ---- SIGBUS guard -------------------------------------------------------------------------

struct Guard {
  sigjmp_buf jmp;
  uintptr_t lo, hi;
  volatile uintptr_t fault_addr;
};

// initial-exec: the SIGBUS handler reads this on whatever thread faulted, and the first access to
// a dynamic-model TLS variable of a dlopen'ed library may allocate, which a handler must not.
__attribute__((tls_model("initial-exec"))) thread_local Guard* volatile tls_guard = nullptr;
struct sigaction g_previous_sigbus;
std::once_flag g_install_once;
int g_install_error = 0;

void SigbusHandler(int sig, siginfo_t* info, void* context) {
  Guard* guard = tls_guard;
  uintptr_t addr = reinterpret_cast<uintptr_t>(info->si_addr);
  if (guard != nullptr && addr >= guard->lo && addr < guard->hi) {
    guard->fault_addr = addr;
    siglongjmp(guard->jmp, 1);
  }
  // Not one of our copies: behave as if we were not here.
  const struct sigaction& prev = g_previous_sigbus;
  if (prev.sa_flags & SA_SIGINFO) {
    if (prev.sa_sigaction != nullptr) prev.sa_sigaction(sig, info, context);
    return;
  }
  if (prev.sa_handler == SIG_DFL || prev.sa_handler == SIG_IGN) {
    // A synchronous SIGBUS cannot be ignored usefully: die as the default action does.
    signal(SIGBUS, SIG_DFL);
    raise(SIGBUS);
    return;
  }
  prev.sa_handler(sig);
}

bool InstallSigbusHandler() {
  std::call_once(g_install_once, [] {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = SigbusHandler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGBUS, &sa, &g_previous_sigbus) != 0) g_install_error = errno;
  });
  return g_install_error == 0;
}

// Runs body() with the SIGBUS guard armed over [src, src+len): returns false and the faulting
// address if a page there raised SIGBUS (the handler longjmps back into this frame, which stays
// live while body runs), true when body finished. body must hold nothing that needs a destructor.
template <typename Body>
bool Guarded(const uint8_t* src, size_t len, uintptr_t* fault_addr, Body body) {
  Guard guard;
  guard.lo = reinterpret_cast<uintptr_t>(src);
  guard.hi = guard.lo + len;
  guard.fault_addr = 0;
  if (sigsetjmp(guard.jmp, 1) != 0) {
    tls_guard = nullptr;
    *fault_addr = guard.fault_addr;
    return false;
  }
  tls_guard = &guard;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  body();
  std::atomic_signal_fence(std::memory_order_seq_cst);
  tls_guard = nullptr;
  return true;
}

// Copies len bytes; returns false and the faulting address if a page raised SIGBUS.
bool GuardedCopy(uint8_t* dst, const uint8_t* src, size_t len, uintptr_t* fault_addr) {
  return Guarded(src, len, fault_addr, [=] {
    // Page by page, front to back: a large memcpy may touch the end first and walk backwards
    // (measured: glibc's did), and the pager's read-ahead follows forward access.
    const uint64_t page = uffd::PageSize();
    size_t done = 0;
    while (done < len) {
      size_t n = std::min<size_t>(len - done, page - (reinterpret_cast<uintptr_t>(src + done) & (page - 1)));
      memcpy(dst + done, src + done, n);
      done += n;
    }
  });
}

// Reads one byte of every page of [src, src+len), front to back, so that every page is in before
// the kernel copies the range (write(2) from the mapping): the faults are taken here, in user mode,
// where any uffd serves them and a poisoned page raises SIGBUS that the guard turns into an error.
// A kernel-side fault would need a full (not user-mode-only) uffd, and would report a poisoned page
// only as EFAULT with no address. Returns false and the faulting address on SIGBUS.
bool GuardedTouch(const uint8_t* src, size_t len, uintptr_t* fault_addr) {
  return Guarded(src, len, fault_addr, [=] {
    const uint64_t page = uffd::PageSize();
    const uintptr_t lo = reinterpret_cast<uintptr_t>(src), hi = lo + len;
    uint8_t sink = 0;
    for (uintptr_t a = lo; a < hi; a = (a | (page - 1)) + 1) sink ^= *reinterpret_cast<const volatile uint8_t*>(a);
    (void)sink;
  });
}

// ---- the mapping --------------------------------------------------------------------------

struct Watcher;

// Poisons [start, start+len) for a reader whose pager is gone. True when done, or when nobody
// can be waiting there (ENOENT: the range is unmapped; ESRCH: the address space is gone); an
// ENOMEM (page tables) is retried a few times. False otherwise: a reader may still wait.
bool PoisonOrGone(int uffd, uint64_t start, uint64_t len, uint64_t page) {
  int err = uffd::Poison(uffd, start, len, page);
  for (int attempt = 0; err == ENOMEM && attempt < 20; attempt++) {
    usleep(1000);
    err = uffd::Poison(uffd, start, len, page);
  }
  return err == 0 || err == ENOENT || err == ESRCH;
}

// Shared by the JS object and async reads in flight; the range is unmapped when the last of them
// lets go. The watcher lives as long as the range does: a read still in flight after close()
// must fail if the pager dies, not wait forever.
struct MappingState {
  uint8_t* addr = nullptr;
  uint64_t length = 0;
  int uffd = -1;
  int file_fd = -1;  // a dup of the caller's fd
  uint64_t page = 0;  // the file's page size: 4 KiB, or 2 MiB on hugetlbfs
  bool huge = false;
  std::atomic<bool> pager_gone{false};
  std::unique_ptr<Watcher> watcher;  // set once, on the JS thread, by watchPager
  std::unique_ptr<Watcher> failer;   // set once, under RegistryMutex, by MarkPagerGone

  ~MappingState();
};

// Watches the socket to the pager (sock >= 0); on hang-up, or at once when sock is -1 (the pager
// stopped in this process), answers every fault from then on with poison. Owned by its state,
// which stops it (joins the thread) before the range goes away.
struct Watcher {
  MappingState* state = nullptr;
  int sock = -1;
  int wake = -1;  // eventfd: the mapping is closing
  pthread_t thread;
  bool started = false;

  ~Watcher() {
    if (started) {
      uint64_t one = 1;
      ssize_t ignored = write(wake, &one, sizeof one);
      (void)ignored;
      pthread_join(thread, nullptr);
    }
    if (sock >= 0) close(sock);
    if (wake >= 0) close(wake);
  }

  static void* Main(void* arg) {
    Watcher* w = static_cast<Watcher*>(arg);
    pthread_setname_np(pthread_self(), "pager-watch");
    if (w->sock < 0) {
      w->FailFaultsFromNowOn();
      return nullptr;
    }
    struct pollfd fds[2] = {{w->sock, POLLRDHUP, 0}, {w->wake, POLLIN, 0}};
    for (;;) {
      int n = poll(fds, 2, -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        break;  // cannot watch any more; nothing safe to do but stop watching
      }
      if (fds[1].revents) return nullptr;
      if (fds[0].revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) {
        w->state->pager_gone = true;
        w->FailFaultsFromNowOn();
        return nullptr;
      }
    }
    return nullptr;
  }

  // The pager is gone: this thread answers the mapping's faults itself from now on. The mapping is
  // registered MISSING | MINOR, so a fault is raised for every page not mapped here yet, and each
  // is poisoned (the reader gets EPIPE): a page in the page cache may be one the pager never filled
  // (another holder's zeros), and only the pager knew which. Faults the pager had read but not
  // answered are woken first, so that they fault again and come here.
  void FailFaultsFromNowOn() {
    MappingState* s = state;
    uffd::Wake(s->uffd, reinterpret_cast<uint64_t>(s->addr), s->length);
    struct pollfd fds[2] = {{s->uffd, POLLIN, 0}, {wake, POLLIN, 0}};
    for (;;) {
      int n = poll(fds, 2, -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[1].revents) return;
      struct uffd_msg msgs[16];
      ssize_t got = read(s->uffd, msgs, sizeof msgs);
      if (got < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        return;
      }
      for (size_t i = 0; i < static_cast<size_t>(got) / sizeof(struct uffd_msg); i++) {
        if (msgs[i].event != UFFD_EVENT_PAGEFAULT) continue;
        uint64_t at = msgs[i].arg.pagefault.address / s->page * s->page;
        PoisonOrGone(s->uffd, at, s->page, s->page);
      }
    }
  }
};

// The live mappings of this process, for MarkPagerGone. A state is in it from the moment its
// uffd exists until its destructor starts; the set is never destroyed (pager threads may look at
// it while the process exits).
std::mutex& RegistryMutex() {
  static std::mutex* mu = new std::mutex;
  return *mu;
}
std::set<MappingState*>& Registry() {
  static std::set<MappingState*>* states = new std::set<MappingState*>;
  return *states;
}

MappingState::~MappingState() {
  {
    std::lock_guard<std::mutex> lock(RegistryMutex());
    Registry().erase(this);
  }
  watcher.reset();                            // joins the watcher thread, which uses the range
  failer.reset();
  if (addr != nullptr) munmap(addr, length);  // first: see the note at the top
  if (uffd >= 0) close(uffd);
  if (file_fd >= 0) close(file_fd);
}

void ThrowCode(Napi::Env env, const char* code, const std::string& message) {
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  error.ThrowAsJavaScriptException();
}

std::string ErrnoText(const char* what, int err) { return std::string(what) + ": " + strerror(err); }

// The error for a read that hit a poisoned page.
std::pair<const char*, std::string> ReadFailure(const MappingState& s, uintptr_t fault_addr) {
  uint64_t offset = fault_addr - reinterpret_cast<uintptr_t>(s.addr);
  if (s.pager_gone) {
    return {"EPIPE", "the pager is gone: the page at offset " + std::to_string(offset) + " was never paged in"};
  }
  return {"EIO", "I/O error: the pager could not read the page at offset " + std::to_string(offset)};
}

// Copies a range of the mapping into a buffer on a libuv worker. The buffer is made (readAsync) or
// given (readIntoAsync) on the JS thread and held by a reference until the promise settles, so the
// worker copies once, straight into the memory the caller gets: no staging allocation, no second copy.
class ReadWorker : public Napi::AsyncWorker {
 public:
  ReadWorker(Napi::Env env, std::shared_ptr<MappingState> state, uint64_t offset, Napi::Uint8Array target,
             bool resolve_with_count)
      : Napi::AsyncWorker(env), state_(std::move(state)), offset_(offset), length_(target.ElementLength()),
        dst_(target.Data()), target_(Napi::Persistent(target)), count_(resolve_with_count),
        deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    uintptr_t fault = 0;
    if (!GuardedCopy(dst_, state_->addr + offset_, length_, &fault)) {
      auto f = ReadFailure(*state_, fault);
      failed_ = true;
      code_ = f.first;
      message_ = f.second;
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (failed_) {
      Napi::Error error = Napi::Error::New(env, message_);
      error.Set("code", Napi::String::New(env, code_));
      deferred_.Reject(error.Value());
      return;
    }
    if (count_) {
      deferred_.Resolve(Napi::Number::New(env, static_cast<double>(length_)));
    } else {
      deferred_.Resolve(target_.Value());
    }
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  std::shared_ptr<MappingState> state_;
  uint64_t offset_;
  size_t length_;
  uint8_t* dst_;
  Napi::Reference<Napi::Uint8Array> target_;
  bool count_;
  Napi::Promise::Deferred deferred_;
  bool failed_ = false;
  const char* code_ = "";
  std::string message_;
};

// Writes a range of the mapping to an fd with write(2) from the mapped pages, on a libuv worker:
// no buffer, no copy in user space. Each piece is touched first (GuardedTouch): the faults happen
// in user mode (so a user-mode-only uffd serves them too), a page the pager failed is reported
// with its offset, and every page is paged in even for an output that never reads its input
// (/dev/null). A non-blocking fd (a pipe Node set O_NONBLOCK) is waited on with poll.
class WriteWorker : public Napi::AsyncWorker {
 public:
  // Touched, then written, this much at a time: the pager fills the next read-ahead windows
  // while this piece is being written.
  static constexpr size_t kPiece = 4 << 20;

  WriteWorker(Napi::Env env, std::shared_ptr<MappingState> state, int fd, uint64_t offset, size_t length)
      : Napi::AsyncWorker(env), state_(std::move(state)), fd_(fd), offset_(offset), length_(length),
        deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    const uint8_t* base = state_->addr + offset_;
    size_t done = 0;
    while (done < length_) {
      size_t n = std::min(kPiece, length_ - done);
      uintptr_t fault = 0;
      if (!GuardedTouch(base + done, n, &fault)) {
        auto f = ReadFailure(*state_, fault);
        Fail(f.first, f.second, false);
        break;
      }
      size_t put = 0;
      while (put < n) {
        ssize_t w = write(fd_, base + done + put, n - put);
        if (w > 0) {
          put += static_cast<size_t>(w);
          written_ += static_cast<uint64_t>(w);
          continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno == EAGAIN) {
          struct pollfd p = {fd_, POLLOUT, 0};
          if (poll(&p, 1, -1) < 0 && errno != EINTR) {
            Fail("EIO", ErrnoText("poll(output)", errno), true);
            return;
          }
          continue;
        }
        int err = w == 0 ? EIO : errno;
        Fail(ErrnoName(err), ErrnoText("write(output)", err), true);
        return;
      }
      done += n;
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (failed_) {
      Napi::Error error = Napi::Error::New(env, message_);
      error.Set("code", Napi::String::New(env, code_));
      // Set for a failure of the output (EPIPE: the reader went away), absent for a page the
      // pager could not supply (EIO) or a dead pager (EPIPE without syscall).
      if (output_failed_) error.Set("syscall", Napi::String::New(env, "write"));
      error.Set("bytesWritten", Napi::Number::New(env, static_cast<double>(written_)));
      deferred_.Reject(error.Value());
      return;
    }
    deferred_.Resolve(Napi::Number::New(env, static_cast<double>(written_)));
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  void Fail(const char* code, std::string message, bool output) {
    failed_ = true;
    code_ = code;
    message_ = std::move(message);
    output_failed_ = output;
  }
  static const char* ErrnoName(int err) {
    switch (err) {
      case EPIPE: return "EPIPE";
      case ENOSPC: return "ENOSPC";
      case EBADF: return "EBADF";
      case EFAULT: return "EFAULT";
      case EINVAL: return "EINVAL";
      case EDQUOT: return "EDQUOT";
      case EFBIG: return "EFBIG";
      case ECONNRESET: return "ECONNRESET";
      default: return "EIO";
    }
  }

  std::shared_ptr<MappingState> state_;
  int fd_;
  uint64_t offset_;
  size_t length_;
  Napi::Promise::Deferred deferred_;
  uint64_t written_ = 0;
  bool failed_ = false;
  bool output_failed_ = false;
  const char* code_ = "";
  std::string message_;
};

class MappingObject : public Napi::ObjectWrap<MappingObject> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Mapping",
                       {InstanceMethod("uffdForPager", &MappingObject::UffdForPager),
                        InstanceMethod("watchPager", &MappingObject::WatchPager),
                        InstanceMethod("read", &MappingObject::Read),
                        InstanceMethod("readAsync", &MappingObject::ReadAsync),
                        InstanceMethod("readInto", &MappingObject::ReadInto),
                        InstanceMethod("readIntoAsync", &MappingObject::ReadIntoAsync),
                        InstanceMethod("writeTo", &MappingObject::WriteTo),
                        InstanceMethod("close", &MappingObject::Close)});
  }

  explicit MappingObject(const Napi::CallbackInfo& info) : Napi::ObjectWrap<MappingObject>(info) {
    Napi::Env env = info.Env();
    uint64_t size;
    int file_fd;
    // Not Int32Value(): it wraps 2**32 + n to n, another open fd.
    if (info.Length() < 1 || !FdArg(info[0], &file_fd)) {
      Napi::TypeError::New(env, "Mapping(fileFd, size): fileFd must be a file descriptor (an integer from 0 to 2147483647)")
          .ThrowAsJavaScriptException();
      return;
    }
    if (info.Length() < 2 || !U64Arg(info[1], &size)) {
      ThrowCode(env, "EINVAL", "Mapping(fileFd, size)");
      return;
    }
    const uint64_t page = uffd::PageSize();
    if (size == 0 || size > (uint64_t{1} << 47)) {
      ThrowCode(env, "EINVAL", "a mapping needs a size of 1 byte to 128 TiB (an empty file needs no mapping)");
      return;
    }
    if (!InstallSigbusHandler()) {
      ThrowCode(env, "EINVAL", ErrnoText("sigaction(SIGBUS)", g_install_error));
      return;
    }
    auto state = std::make_shared<MappingState>();
    struct statfs fs_info;
    struct stat st;
    if (fstatfs(file_fd, &fs_info) == 0 && static_cast<uint64_t>(fs_info.f_type) == 0x958458f6 /* HUGETLBFS_MAGIC */ &&
        fstat(file_fd, &st) == 0 && st.st_blksize > 0) {
      state->huge = true;
      state->page = static_cast<uint64_t>(st.st_blksize);  // hugetlbfs reports its page size here
    } else {
      state->page = page;
    }
    state->length = (size + state->page - 1) / state->page * state->page;
    state->file_fd = fcntl(file_fd, F_DUPFD_CLOEXEC, 3);
    if (state->file_fd < 0) {
      ThrowCode(env, "EBADF", ErrnoText("dup(fileFd)", errno));
      return;
    }
    uffd::Created created = uffd::Create();
    if (created.fd < 0) {
      ThrowCode(env, "EPERM", ErrnoText("userfaultfd (syscall and /dev/userfaultfd)", created.err));
      return;
    }
    state->uffd = created.fd;
    {
      std::lock_guard<std::mutex> lock(RegistryMutex());
      Registry().insert(state.get());
    }
    uint64_t features = 0;
    // MINOR faults (see the top of this file): shmem (Linux 5.14+) or hugetlbfs (5.13+).
    const uint64_t minor = state->huge ? UFFD_FEATURE_MINOR_HUGETLBFS : UFFD_FEATURE_MINOR_SHMEM;
    int err = uffd::Api(state->uffd, UFFD_FEATURE_POISON | minor, &features);
    if (err != 0) {
      ThrowCode(env, "ENOTSUP", ErrnoText("UFFDIO_API with UFFD_FEATURE_POISON and MINOR faults (Linux 6.6+)", err));
      return;
    }
    void* addr = mmap(nullptr, state->length, PROT_READ, MAP_PRIVATE | (state->huge ? MAP_NORESERVE : 0), file_fd, 0);
    if (addr == MAP_FAILED) {
      ThrowCode(env, "ENOMEM", ErrnoText("mmap(file)", errno));
      return;
    }
    state->addr = static_cast<uint8_t*>(addr);
    // Not inherited by fork(): a child would get the range without its uffd registration, and
    // its first touch of a missing page would put a page of zeros into the file's shared cache.
    if (madvise(addr, state->length, MADV_DONTFORK) != 0) {
      ThrowCode(env, "EINVAL", ErrnoText("madvise(MADV_DONTFORK)", errno));
      return;
    }
    err = uffd::RegisterMissingMinor(state->uffd, reinterpret_cast<uint64_t>(addr), state->length);
    if (err != 0) {
      ThrowCode(env, "EPERM", ErrnoText("UFFDIO_REGISTER (MISSING | MINOR)", err));
      return;
    }
    state_ = state;
    Napi::Object self = info.This().As<Napi::Object>();
    self.Set("address", Napi::BigInt::New(env, static_cast<uint64_t>(reinterpret_cast<uintptr_t>(addr))));
    self.Set("length", Napi::BigInt::New(env, state->length));
    self.Set("userModeOnly", Napi::Boolean::New(env, created.user_mode_only));
    self.Set("how", Napi::String::New(env, created.how));
    self.Set("pageSize", Napi::Number::New(env, static_cast<double>(state->page)));
  }

  ~MappingObject() override { Release(); }

 private:
  void Release() {
    state_.reset();  // unmaps (and stops the watcher) once no async read uses it
  }

  bool Live(Napi::Env env) {
    if (state_) return true;
    ThrowCode(env, "EBADF", "the mapping is closed");
    return false;
  }

  // Validates (offset, length) against the mapping.
  bool Range(const Napi::CallbackInfo& info, uint64_t* offset, size_t* length) {
    uint64_t off, len;
    if (info.Length() < 2 || !U64Arg(info[0], &off) || !U64Arg(info[1], &len) || len > (uint64_t{1} << 31) ||
        off > state_->length || len > state_->length - off) {
      ThrowCode(info.Env(), "ERANGE", "read outside the mapping");
      return false;
    }
    *offset = off;
    *length = static_cast<size_t>(len);
    return true;
  }

  // Reads (target: Uint8Array, offset) for readInto/readIntoAsync: EINVAL for wrong arguments
  // (naming `method`), ERANGE when target.length bytes from offset leave the mapping.
  bool TargetRange(const Napi::CallbackInfo& info, const char* method, Napi::Uint8Array* target, uint64_t* offset) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsTypedArray() ||
        info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array || !U64Arg(info[1], offset)) {
      ThrowCode(env, "EINVAL", std::string(method) + "(target: Uint8Array, offset)");
      return false;
    }
    *target = info[0].As<Napi::Uint8Array>();
    if (*offset > state_->length || target->ElementLength() > state_->length - *offset) {
      ThrowCode(env, "ERANGE", "read outside the mapping");
      return false;
    }
    return true;
  }

  Napi::Value UffdForPager(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Live(env)) return env.Undefined();
    int fd = fcntl(state_->uffd, F_DUPFD_CLOEXEC, 3);
    if (fd < 0) {
      ThrowCode(env, "EMFILE", ErrnoText("dup(uffd)", errno));
      return env.Undefined();
    }
    return Napi::Number::New(env, fd);
  }

  Napi::Value WatchPager(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Live(env)) return env.Undefined();
    int sock_fd;
    if (info.Length() < 1 || !FdArg(info[0], &sock_fd)) {
      Napi::TypeError::New(env, "watchPager(socketFd): socketFd must be a file descriptor (an integer from 0 to 2147483647)")
          .ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (state_->watcher) {
      ThrowCode(env, "EBUSY", "the pager is already watched");
      return env.Undefined();
    }
    auto w = std::make_unique<Watcher>();
    w->state = state_.get();
    w->sock = fcntl(sock_fd, F_DUPFD_CLOEXEC, 3);
    w->wake = eventfd(0, EFD_CLOEXEC);
    if (w->sock < 0 || w->wake < 0) {
      ThrowCode(env, "EBADF", ErrnoText("dup(socket)/eventfd", errno));
      return env.Undefined();
    }
    int rc = pthread_create(&w->thread, nullptr, &Watcher::Main, w.get());
    if (rc != 0) {
      ThrowCode(env, "EAGAIN", ErrnoText("pthread_create", rc));
      return env.Undefined();
    }
    w->started = true;
    state_->watcher = std::move(w);
    return env.Undefined();
  }

  Napi::Value Read(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Live(env)) return env.Undefined();
    uint64_t offset;
    size_t length;
    if (!Range(info, &offset, &length)) return env.Undefined();
    Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, length);
    uintptr_t fault = 0;
    if (!GuardedCopy(out.Data(), state_->addr + offset, length, &fault)) {
      auto f = ReadFailure(*state_, fault);
      ThrowCode(env, f.first, f.second);
      return env.Undefined();
    }
    return out;
  }

  // readInto(target: Uint8Array, offset): copies target.length bytes from offset into target, a
  // buffer the caller keeps and reuses (no allocation, no fresh pages to fault in per call).
  Napi::Value ReadInto(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Live(env)) return env.Undefined();
    uint64_t offset;
    Napi::Uint8Array target;
    if (!TargetRange(info, "readInto", &target, &offset)) return env.Undefined();
    const size_t length = target.ElementLength();
    uintptr_t fault = 0;
    if (!GuardedCopy(target.Data(), state_->addr + offset, length, &fault)) {
      auto f = ReadFailure(*state_, fault);
      ThrowCode(env, f.first, f.second);
      return env.Undefined();
    }
    return Napi::Number::New(env, static_cast<double>(length));
  }

  Napi::Value ReadAsync(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Live(env)) return env.Undefined();
    uint64_t offset;
    size_t length;
    if (!Range(info, &offset, &length)) return env.Undefined();
    // Made here (uninitialized; the worker fills every byte) and resolved as is.
    Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, length);
    ReadWorker* worker = new ReadWorker(env, state_, offset, out, /*resolve_with_count=*/false);
    Napi::Promise promise = worker->Promise();
    worker->Queue();
    return promise;
  }

  // readIntoAsync(target: Uint8Array, offset) -> Promise<target.length>: readInto on a libuv worker.
  // The caller must leave target alone until the promise settles.
  Napi::Value ReadIntoAsync(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Live(env)) return env.Undefined();
    uint64_t offset;
    Napi::Uint8Array target;
    if (!TargetRange(info, "readIntoAsync", &target, &offset)) return env.Undefined();
    ReadWorker* worker = new ReadWorker(env, state_, offset, target, /*resolve_with_count=*/true);
    Napi::Promise promise = worker->Promise();
    worker->Queue();
    return promise;
  }

  // writeTo(fd, offset, length) -> Promise<bytes written>: see WriteWorker. fd stays the caller's.
  Napi::Value WriteTo(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Live(env)) return env.Undefined();
    uint64_t fd, offset, len;
    if (info.Length() < 3 || !U64Arg(info[0], &fd) || fd > INT32_MAX || !U64Arg(info[1], &offset) || !U64Arg(info[2], &len)) {
      ThrowCode(env, "EINVAL", "writeTo(fd, offset, length)");
      return env.Undefined();
    }
    if (offset > state_->length || len > state_->length - offset) {
      ThrowCode(env, "ERANGE", "read outside the mapping");
      return env.Undefined();
    }
    WriteWorker* worker = new WriteWorker(env, state_, static_cast<int>(fd), offset, static_cast<size_t>(len));
    Napi::Promise promise = worker->Promise();
    worker->Queue();
    return promise;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Release();
    return info.Env().Undefined();
  }

  std::shared_ptr<MappingState> state_;
};

}  // namespace

void MarkPagerGone(int uffd_fd) {
  const pid_t self = getpid();
  std::lock_guard<std::mutex> lock(RegistryMutex());
  for (MappingState* state : Registry()) {
    if (state->uffd < 0 || syscall(SYS_kcmp, self, self, KCMP_FILE, state->uffd, uffd_fd) != 0) continue;
    state->pager_gone = true;
    if (state->failer || state->addr == nullptr) continue;
    // Nobody serves this mapping's faults any more: a thread of its own fails each from now on
    // (its ~MappingState, which erases it from the registry under this lock first, joins it).
    auto w = std::make_unique<Watcher>();
    w->state = state;
    w->wake = eventfd(0, EFD_CLOEXEC);
    if (w->wake < 0 || pthread_create(&w->thread, nullptr, &Watcher::Main, w.get()) != 0) continue;
    w->started = true;
    state->failer = std::move(w);
  }
}

// probeUserfaultfd(): null when this process can create a uffd the way the pager and the
// mappings do, else one line saying why not (for the server's start-up message).
static Napi::Value ProbeUserfaultfd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uffd::Created c = uffd::Create();
  if (c.fd < 0) {
    std::string why = std::string("cannot create a userfaultfd: ") + strerror(c.err) +
                      " (grant /dev/userfaultfd, or allow the userfaultfd system call: root, CAP_SYS_PTRACE or"
                      " vm.unprivileged_userfaultfd=1)";
    return Napi::String::New(env, why);
  }
  bool user_mode_only = c.user_mode_only;
  close(c.fd);
  if (user_mode_only) {
    return Napi::String::New(env, std::string("only a user-mode-only userfaultfd is available (") + c.how +
                                      "): faults taken inside the kernel cannot be served");
  }
  return env.Null();
}

void InitMapping(Napi::Env env, Napi::Object exports) {
  exports.Set("Mapping", MappingObject::Define(env));
  exports.Set("probeUserfaultfd", Napi::Function::New(env, ProbeUserfaultfd, "probeUserfaultfd"));
}

}  // namespace starnix
