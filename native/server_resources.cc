// What the server needs to know about its own resources and about the fds clients send it, beyond
// what an fd's kind is (handle_info.cc):
//
// raiseFdLimit(): { soft, hard }     raises RLIMIT_NOFILE's soft limit to the hard one (the budgets
//                                     in src/server/budget.ts are shares of it) and returns both.
// kcmpFile(a, b): number             kcmp(KCMP_FILE) of two of our fds: 0 the same open file
//                                     description, 1 / 2 a orders before / after b, 3 different but
//                                     unordered, -errno on failure. Tells a uffd attached twice.
// socketInode(fd): number            the inode of a socket fd (statx, never a round trip to a file
//                                     system's daemon), -errno on failure.
// unixPeerInode(inode): number       the inode of the peer of the AF_UNIX socket with that inode, from
//                                     sock_diag (UNIX_DIAG_PEER); 0 when it has no peer (never
//                                     connected, or the peer was closed), -errno on failure
//                                     (-ENOENT: no such socket; -EPROTONOSUPPORT etc.: no unix_diag).
// armStopWatchdog(seconds): undefined
//                                     from now on the first SIGTERM or SIGINT also starts a native
//                                     countdown: if the process has not exited `seconds` later, it
//                                     writes one line to stderr and _exits with status 1. The JS
//                                     handlers still run first (the previous handler is chained);
//                                     the countdown does not depend on the JS thread being free.
#include "exports.h"
#include "transport_common.h"

#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/kcmp.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <string>

namespace starnix {
namespace {

using transport::FdArg;
using transport::ThrowErrno;

Napi::Value RaiseFdLimit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    ThrowErrno(env, "getrlimit", errno, "RLIMIT_NOFILE");
    return env.Undefined();
  }
  if (rl.rlim_cur < rl.rlim_max) {
    struct rlimit raised = rl;
    raised.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) rl = raised;
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("soft", Napi::Number::New(env, rl.rlim_cur == RLIM_INFINITY ? -1.0 : static_cast<double>(rl.rlim_cur)));
  result.Set("hard", Napi::Number::New(env, rl.rlim_max == RLIM_INFINITY ? -1.0 : static_cast<double>(rl.rlim_max)));
  return result;
}

Napi::Value KcmpFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int a = FdArg(info, 0);
  if (a < 0) return env.Undefined();
  int b = FdArg(info, 1);
  if (b < 0) return env.Undefined();
  pid_t self = getpid();
  long rc = syscall(SYS_kcmp, self, self, KCMP_FILE, static_cast<unsigned long>(a), static_cast<unsigned long>(b));
  return Napi::Number::New(env, rc < 0 ? -errno : static_cast<double>(rc));
}

Napi::Value SocketInode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0);
  if (fd < 0) return env.Undefined();
  struct statx stx;
  if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_TYPE | STATX_INO, &stx) != 0) {
    return Napi::Number::New(env, -errno);
  }
  if ((stx.stx_mode & S_IFMT) != S_IFSOCK) return Napi::Number::New(env, -ENOTSOCK);
  return Napi::Number::New(env, static_cast<double>(stx.stx_ino));
}

// One netlink socket for every lookup (the JS thread is the only caller).
int DiagSocket() {
  static int fd = -1;
  if (fd < 0) fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  return fd;
}

// The peer inode of unix socket `ino`: > 0, 0 for none, or -errno.
long LookupUnixPeer(uint32_t ino) {
  int nl = DiagSocket();
  if (nl < 0) return -errno;
  struct {
    struct nlmsghdr nlh;
    struct unix_diag_req req;
  } request = {};
  request.nlh.nlmsg_len = sizeof(request);
  request.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  request.nlh.nlmsg_flags = NLM_F_REQUEST;
  static uint32_t seq = 0;
  request.nlh.nlmsg_seq = ++seq;
  request.req.sdiag_family = AF_UNIX;
  request.req.udiag_states = ~0U;
  request.req.udiag_ino = ino;
  request.req.udiag_show = UDIAG_SHOW_PEER;
  request.req.udiag_cookie[0] = INET_DIAG_NOCOOKIE;
  request.req.udiag_cookie[1] = INET_DIAG_NOCOOKIE;
  struct sockaddr_nl kernel = {};
  kernel.nl_family = AF_NETLINK;
  if (sendto(nl, &request, sizeof(request), 0, reinterpret_cast<struct sockaddr*>(&kernel), sizeof(kernel)) < 0) return -errno;
  alignas(struct nlmsghdr) char buf[8192];
  for (;;) {
    ssize_t n = recv(nl, buf, sizeof(buf), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    int len = static_cast<int>(n);
    for (struct nlmsghdr* h = reinterpret_cast<struct nlmsghdr*>(buf); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_seq != request.nlh.nlmsg_seq) continue;  // a late answer to an earlier lookup
      if (h->nlmsg_type == NLMSG_ERROR) {
        const struct nlmsgerr* err = static_cast<const struct nlmsgerr*>(NLMSG_DATA(h));
        return err->error < 0 ? err->error : -EIO;
      }
      if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY) continue;
      const struct unix_diag_msg* msg = static_cast<const struct unix_diag_msg*>(NLMSG_DATA(h));
      int attr_len = static_cast<int>(h->nlmsg_len - NLMSG_LENGTH(sizeof(*msg)));
      for (const struct rtattr* a = reinterpret_cast<const struct rtattr*>(msg + 1); RTA_OK(a, attr_len);
           a = RTA_NEXT(a, attr_len)) {
        if (a->rta_type == UNIX_DIAG_PEER && RTA_PAYLOAD(a) >= sizeof(uint32_t)) {
          return *static_cast<const uint32_t*>(RTA_DATA(a));
        }
      }
      return 0;  // no peer attribute: not connected, or the peer is gone
    }
  }
}

Napi::Value UnixPeerInode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    transport::ThrowType(env, "unixPeerInode(inode: number)");
    return env.Undefined();
  }
  uint32_t ino = static_cast<uint32_t>(info[0].As<Napi::Number>().Int64Value());
  return Napi::Number::New(env, static_cast<double>(LookupUnixPeer(ino)));
}

// ---- the stop watchdog ----

sem_t g_stop_signalled;
struct sigaction g_previous[2];  // SIGTERM, SIGINT
unsigned g_stop_seconds = 5;
bool g_watchdog_armed = false;

void ChainStopSignal(int sig, siginfo_t* si, void* ctx) {
  sem_post(&g_stop_signalled);  // async-signal-safe: the watchdog thread takes it from here
  const struct sigaction& prev = g_previous[sig == SIGTERM ? 0 : 1];
  if (prev.sa_flags & SA_SIGINFO) {
    if (prev.sa_sigaction != nullptr) prev.sa_sigaction(sig, si, ctx);
  } else if (prev.sa_handler != SIG_IGN && prev.sa_handler != SIG_DFL && prev.sa_handler != nullptr) {
    prev.sa_handler(sig);
  } else if (prev.sa_handler == SIG_DFL) {
    // Nobody else handles it: the default action (terminate) is what the sender asked for.
    _exit(128 + sig);
  }
}

void* WatchdogMain(void*) {
  while (sem_wait(&g_stop_signalled) != 0) {
  }
  struct timespec t = {static_cast<time_t>(g_stop_seconds), 0};
  while (nanosleep(&t, &t) != 0) {
  }
  std::string line = "starnix-pager: still running " + std::to_string(g_stop_seconds) +
                     " s after the stop signal: exiting now (status 1)\n";
  ssize_t ignored = write(2, line.data(), line.size());
  (void)ignored;
  _exit(1);
  return nullptr;
}

Napi::Value ArmStopWatchdog(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber() || info[0].As<Napi::Number>().DoubleValue() < 1) {
    transport::ThrowType(env, "armStopWatchdog(seconds >= 1)");
    return env.Undefined();
  }
  if (g_watchdog_armed) return env.Undefined();
  g_stop_seconds = static_cast<unsigned>(info[0].As<Napi::Number>().DoubleValue());
  sem_init(&g_stop_signalled, 0, 0);
  pthread_t thread;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  // The watchdog must not take the signals itself (the JS thread's handlers run where they land).
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int err = pthread_create(&thread, &attr, WatchdogMain, nullptr);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  pthread_attr_destroy(&attr);
  if (err != 0) {
    ThrowErrno(env, "pthread_create", err, "stop watchdog");
    return env.Undefined();
  }
  const int signals[2] = {SIGTERM, SIGINT};
  for (int i = 0; i < 2; i++) {
    struct sigaction sa = {};
    sa.sa_sigaction = ChainStopSignal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&sa.sa_mask);
    sigaction(signals[i], &sa, &g_previous[i]);
  }
  g_watchdog_armed = true;
  return env.Undefined();
}

}  // namespace

void InitServerResources(Napi::Env env, Napi::Object exports) {
  exports.Set("raiseFdLimit", Napi::Function::New(env, RaiseFdLimit, "raiseFdLimit"));
  exports.Set("kcmpFile", Napi::Function::New(env, KcmpFile, "kcmpFile"));
  exports.Set("socketInode", Napi::Function::New(env, SocketInode, "socketInode"));
  exports.Set("unixPeerInode", Napi::Function::New(env, UnixPeerInode, "unixPeerInode"));
  exports.Set("armStopWatchdog", Napi::Function::New(env, ArmStopWatchdog, "armStopWatchdog"));
}

}  // namespace starnix
