// The process-wide inotify instance of the pagers (see close_watch.h).
#include "close_watch.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <unordered_map>
#include <vector>

namespace starnix {
namespace closewatch {

Mailbox::Mailbox() { fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }

Mailbox::~Mailbox() {
  if (fd_ >= 0) close(fd_);
}

void Mailbox::Take(std::set<int>* wds, bool* overflow) {
  uint64_t count;
  while (read(fd_, &count, sizeof count) < 0 && errno == EINTR) {
  }
  std::lock_guard<std::mutex> lock(mu_);
  wds->swap(wds_);
  wds_.clear();
  *overflow = overflow_;
  overflow_ = false;
}

void Mailbox::Post(int wd, bool overflow) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (overflow) {
      overflow_ = true;
    } else {
      wds_.insert(wd);
    }
  }
  uint64_t one = 1;
  // Only fails when the counter would overflow: it is readable then anyway.
  ssize_t ignored = write(fd_, &one, sizeof one);
  (void)ignored;
}

// The instance and its reader thread. Made on first use and never destroyed (the thread may be
// blocked in read() when the process exits).
class Hub {
 public:
  static Hub* Get(int* err) {
    static std::mutex init_mu;
    static Hub* hub = nullptr;
    std::lock_guard<std::mutex> lock(init_mu);
    if (hub != nullptr) return hub;
    int fd = inotify_init1(IN_CLOEXEC);  // blocking: only its own thread reads it
    if (fd < 0) {
      *err = errno;  // not kept: a later registration tries again
      return nullptr;
    }
    Hub* h = new Hub(fd);
    pthread_t tid;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&tid, &attr, [](void* arg) -> void* {
      pthread_setname_np(pthread_self(), "pager-inotify");
      static_cast<Hub*>(arg)->Run();
      return nullptr;
    }, h);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
      close(fd);
      delete h;
      *err = rc;
      return nullptr;
    }
    hub = h;
    return hub;
  }

  int Watch(const char* path, const std::shared_ptr<Mailbox>& box) {
    std::lock_guard<std::mutex> lock(mu_);
    int wd = inotify_add_watch(fd_, path, IN_CLOSE_WRITE | IN_CLOSE_NOWRITE);
    if (wd < 0) return -errno;
    boxes_[wd] = box;
    return wd;
  }

  void Unwatch(int wd) {
    // Under mu_ with the removal from the kernel: a reused wd is never unmapped by a stale Unwatch.
    std::lock_guard<std::mutex> lock(mu_);
    inotify_rm_watch(fd_, wd);
    boxes_.erase(wd);
  }

 private:
  explicit Hub(int fd) : fd_(fd) {}

  void Run() {
    alignas(struct inotify_event) char buf[8192];
    for (;;) {
      ssize_t n = read(fd_, buf, sizeof buf);
      if (n <= 0) {
        if (n < 0 && errno == EINTR) continue;
        usleep(10000);  // should not happen; never spin
        continue;
      }
      std::vector<std::pair<std::shared_ptr<Mailbox>, int>> posts;
      bool overflow = false;
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (char* p = buf; p < buf + n;) {
          auto* e = reinterpret_cast<struct inotify_event*>(p);
          p += sizeof(struct inotify_event) + e->len;
          if (e->mask & IN_Q_OVERFLOW) overflow = true;
          if ((e->mask & (IN_CLOSE_WRITE | IN_CLOSE_NOWRITE)) == 0) continue;  // IN_IGNORED and the like
          auto it = boxes_.find(e->wd);
          if (it == boxes_.end()) continue;
          if (auto box = it->second.lock()) posts.emplace_back(std::move(box), e->wd);
        }
        if (overflow) {
          // Events were lost, of any watch: every pager looks at all its files.
          for (auto& entry : boxes_) {
            if (auto box = entry.second.lock()) posts.emplace_back(std::move(box), -1);
          }
        }
      }
      for (auto& post : posts) post.first->Post(post.second, post.second < 0);
    }
  }

  int fd_;
  std::mutex mu_;
  std::unordered_map<int, std::weak_ptr<Mailbox>> boxes_;
};

int Watch(const char* path, const std::shared_ptr<Mailbox>& box) {
  int err = 0;
  Hub* hub = Hub::Get(&err);
  if (hub == nullptr) return -err;
  return hub->Watch(path, box);
}

void Unwatch(int wd) {
  int err = 0;
  Hub* hub = Hub::Get(&err);
  if (hub != nullptr && wd >= 0) hub->Unwatch(wd);
}

}  // namespace closewatch
}  // namespace starnix
