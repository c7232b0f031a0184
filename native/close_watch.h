// One inotify instance for the whole process, shared by every pager: each registered file's memfd
// is watched for IN_CLOSE_* (the trigger of the pager's "is any handle left?" probe). An instance
// per pager let 2 connections x 64 pagers use up the uid's fs.inotify.max_user_instances (128 by
// default), after which CreatePager failed for everyone, and every other process of that uid got
// EMFILE from inotify_init1. Watches are counted against max_user_watches instead (192k here).
//
// A thread of its own reads the instance (a blocking read of an fd no client can touch) and
// hands each close event to the mailbox of the pager that owns the watch: a set of watch
// descriptors and an eventfd in that pager's epoll set. The pager's threads then probe as before;
// this thread never takes a pager's locks.
#pragma once

#include <memory>
#include <mutex>
#include <set>

namespace starnix {
namespace closewatch {

// Where the events for one pager's watches go.
class Mailbox {
 public:
  // Creates its eventfd (nonblocking, close-on-exec); fd() < 0 if that failed.
  Mailbox();
  ~Mailbox();
  Mailbox(const Mailbox&) = delete;
  Mailbox& operator=(const Mailbox&) = delete;
  // Readable (in the pager's epoll set) when events are waiting.
  int fd() const { return fd_; }
  // Takes what arrived: the watches that saw a close, and whether events were lost (IN_Q_OVERFLOW:
  // every file must be looked at).
  void Take(std::set<int>* wds, bool* overflow);

 private:
  friend class Hub;
  void Post(int wd, bool overflow);
  int fd_ = -1;
  std::mutex mu_;
  std::set<int> wds_;
  bool overflow_ = false;
};

// Watches path (the pager's /proc/self/fd/N of a memfd) for IN_CLOSE_WRITE | IN_CLOSE_NOWRITE;
// events go to box. Returns the watch descriptor, or a negated errno (the shared instance could
// not be made, or inotify_add_watch failed, e.g. ENOSPC past max_user_watches).
int Watch(const char* path, const std::shared_ptr<Mailbox>& box);
// Removes a watch made by Watch (its events stop; ones already read are dropped).
void Unwatch(int wd);

}  // namespace closewatch
}  // namespace starnix
