// The pager core: the seed's Pager (Zircon pager + port + VMOs) on Linux, without any JS.
//
// One Pager serves the files of one backing (an ext4 image: memfd, regular file or block
// device). Each registered inode gets a memfd ("ext4!<name>"). A client maps a file and hands
// its uffd to the pager (AttachMapping); the pager's threads read the client's fault events,
// put the file's pages into the memfd's page cache, and wake the client.
//
// Why the pages go into the page cache through the pager's own mapping, not through the
// client's uffd: UFFDIO_REGISTER refuses a mapping without VM_MAYWRITE (EPERM), and a
// MAP_SHARED mapping lacks it when the fd is read-only or the memfd carries F_SEAL_WRITE or
// F_SEAL_FUTURE_WRITE (measured on 6.18). So clients get read-only descriptions and map them
// MAP_PRIVATE (read-only, registered with their uffd); the pager keeps one read-write shared
// mapping of each memfd, registered with its own uffd, and fills it with UFFDIO_COPY (a page
// appears whole or not at all), then maps it into the client's mapping with UFFDIO_CONTINUE on the
// client's uffd (which wakes the fault): every process shares the same pages, pread() sees them,
// and no client can write them.
//
// Why clients register MISSING | MINOR, and why the pager keeps its own record of what it filled
// (issue 12, "no holder can make another reader see zeros"): any holder of a handle can map it
// without a uffd (or MADV_POPULATE_READ it) and touch a page the pager has not filled; shmem and
// hugetlbfs then put a page of zeros into the shared page cache (root can also fallocate them).
// With MISSING alone, a reader's fault on such a page is a minor fault the kernel resolves by
// itself: zeros. With MINOR too, every page not in the reader's own page tables faults to the
// pager, in the page cache or not (and the kernel's fault-around is off for the mapping). The pager
// trusts only PagedFile::filled (filled_set.h: byte ranges it filled, memory proportional to the
// runs filled, not to the declared size), never SEEK_DATA or mincore: a page in the cache that it
// did not fill (UFFDIO_COPY says EEXIST) gets the right bytes written over it through the pager's
// own shared mapping (the page exists and the seals forbid removing it, so that write never faults
// to the pager's uffd), then is recorded, then mapped with CONTINUE. CONTINUE works on MISSING-only
// registrations too (measured on 6.18, bench/probes/minor_fault.c), but only a MINOR-registered
// reader (the client library's) is guaranteed never to see a holder's zeros: for another one the
// kernel maps whatever is in the cache. A client that refuses CONTINUE (EINVAL) is woken instead.
// Seals: F_SEAL_FUTURE_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL, added just after the
// pager makes its own writable mapping (at registration; a write seal forbids new writable
// mappings, not existing ones, and the mapping's uffd registration still works, measured), so no
// holder can write, resize or remap the file writable, root reopening /proc/self/fd/N included.
//
// File lifetime (the seed's VMO_ZERO_CHILDREN): every handle given out is a fresh open file
// description holding a shared flock(). A description stays open while any fd or mapping of it
// exists, and its lock goes away with it. inotify IN_CLOSE_* on the memfd (from the process's one
// inotify instance, close_watch.h, not one per pager) tells the pager when
// to look (inotify merges identical successive events, so events are only triggers); the truth
// is whether the pager's own description can take LOCK_EX. When it can, the file is forgotten.
//
// Read-ahead (ReadaheadWindow): 'fixed' is the seed's, 128 KiB from the fault on. 'adaptive'
// fills one page for a lone fault (random reads pay for nothing they did not ask for) and, per
// mapping, a window that doubles from 128 KiB to 8 MiB while faults form a stream: forward (just
// past the last window: filled ahead of the fault) or backward (just below it: filled behind,
// nearest first), because glibc's memcpy of a large mapped range touches its first page and then
// walks down from the last (bench/probes/fault_order.c). The fault's own page goes in and is
// woken first; the rest of a window becomes jobs that any idle pager thread takes, front to
// back, except that a job a reader is waiting on goes first.
//
// Huge pages (Options::huge_pages): a file may get a hugetlb memfd (MFD_HUGETLB, 2 MiB pages)
// instead, sized to whole huge pages. The pager's shared mapping of it is made WITHOUT
// MAP_NORESERVE, so the mmap reserves every huge page of the file from the pool up front (ENOMEM
// when the pool lacks them: 'auto' then falls back to a 4 KiB memfd, 'always' fails the
// registration with NO_RESOURCES); a file that got huge pages can never hit SIGBUS for lack of
// them. Filling works in whole 2 MiB pages with UFFDIO_COPY (hugetlb has no UFFDIO_ZEROPAGE: holes
// and the tail past the size are copied from zeros), a failed page is poisoned 2 MiB at a time
// (UFFDIO_POISON works on hugetlb, measured on 6.18), and what is filled is the pager's own record,
// as for 4 KiB files. Clients map
// it MAP_PRIVATE | MAP_NORESERVE (native/mapping.cc): read faults map the shared huge pages, and a
// client reserves nothing. The huge pages go back to the pool when the file is forgotten.
#pragma once

#include <linux/userfaultfd.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "trace_ring.h"
#include "close_watch.h"
#include "zx_status.h"

namespace starnix {
namespace pager {

struct Status {
  int status = ZX_OK;
  std::string message;
  bool ok() const { return status == ZX_OK; }
  static Status Ok() { return Status(); }
  static Status Error(int status, std::string message) { return Status{status, std::move(message)}; }
};

// A run of file blocks [logical_start, logical_end) stored from physical_block on.
struct Extent {
  uint32_t logical_start;
  uint32_t logical_end;
  uint64_t physical_block;
};

enum class Readahead { kFixed, kAdaptive };
// kAuto: files of at least huge_threshold bytes get huge pages when the pool has room.
enum class HugePages { kNever, kAuto, kAlways };

struct Options {
  // Pager threads. Two by default (the seed had one): a sequential reader's read-ahead is split
  // into jobs that any idle thread takes, so two threads fill one window in parallel.
  int threads = 2;
  Readahead readahead = Readahead::kAdaptive;
  bool drop_cache = true;                  // posix_fadvise(DONTNEED) after copying; never on a memfd
  bool trace = false;                      // a trace::Ring per thread records every window filled
  // Never by default here; the service (src/server/service.ts) and the CLI default to auto.
  HugePages huge_pages = HugePages::kNever;
  uint64_t huge_threshold = 64 << 20;      // kAuto only (why 64 MiB: README, "Huge pages")
};

struct Stats {
  uint64_t files = 0;
  uint64_t faults = 0;
  uint64_t bytes_supplied = 0;  // from the backing
  uint64_t bytes_zeroed = 0;    // holes and the tail beyond the file's size
  uint64_t failures = 0;        // faults failed with UFFDIO_POISON, or that could not be served
  uint64_t attachments = 0;
  uint64_t huge_files = 0;      // files registered now that have 2 MiB huge pages
  uint64_t huge_fallbacks = 0;  // registrations that wanted huge pages and got 4 KiB ones (pool short)
  uint64_t foreign_pages = 0;   // pages found in the page cache unfilled (a holder's zeros), written over
};

enum class LogLevel { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };

struct PagedFile;
struct Attachment;
struct Claim;
class Filler;

// Read-ahead queued for any pager thread: fill the claim's range of the attachment's file. A job
// without a claim fails a detached mapping instead (Pager::DetachMapping).
struct FillJob {
  std::shared_ptr<Attachment> att;
  std::shared_ptr<Claim> claim;
};

class Pager : public std::enable_shared_from_this<Pager> {
 public:
  // Called from pager threads; must not block for long and must not touch JS.
  using LogFn = std::function<void(LogLevel, const std::string&)>;
  using ForgottenFn = std::function<void(uint32_t inode, const std::string& name)>;

  // Dups backing_fd (the caller keeps its own) and starts the threads.
  static Status Create(int backing_fd, uint64_t block_size, const Options& options, LogFn log,
                       ForgottenFn forgotten, std::shared_ptr<Pager>* out);
  ~Pager();

  // Returns a new read-only description of the inode's memfd in *fd_out (the caller owns it).
  // A known inode gets a new handle to the same file; the new size and extents are ignored
  // (as the seed), but they are still validated.
  Status RegisterFile(const std::string& name, uint32_t inode, uint64_t size,
                      const std::vector<Extent>& extents, int* fd_out, bool* created);

  // Takes ownership of uffd_fd, also when it fails. file_fd is only inspected (fstat).
  // [address, address+length) is the client's mapping of the file from `offset` on.
  Status AttachMapping(int file_fd, int uffd_fd, uint64_t address, uint64_t length, uint64_t offset,
                       uint64_t* id_out);
  // Unknown ids (already detached, or detached because the file was forgotten) are ignored. The
  // client's mapping may outlive its attachment: a pager thread then fails the faults queued on
  // its uffd and every page of the range still missing (FailDetached), so that no later access
  // waits for ever. Returns at once.
  void DetachMapping(uint64_t id);
  // False once the attachment is gone (detached, its file forgotten, or the pager stopped).
  bool IsAttached(uint64_t id);

  Stats GetStats();
  // Bytes of the files' memfds in memory (st_blocks of each): one fstat per file, for tracing.
  uint64_t ResidentBytes();
  // The ring of pager thread `index` (tracing only; nullptr otherwise or past the last thread).
  trace::Ring* TraceRing(size_t index) { return index < trace_rings_.size() ? trace_rings_[index].get() : nullptr; }
  bool OwnsFile(dev_t dev, ino_t ino);
  // Tells the threads to end without waiting for them (each holds the pager; the last one to leave
  // frees it and its fds), fails the faults still queued, maps the filled pages of each attached
  // range for its reader and poisons the rest, both within a budget (4 GiB of range each, over all
  // attachments: a sparse 2^46-byte mapping must not cost terabytes of page tables), and leaves
  // the faults past it to the client library (which poisons each as it comes once it knows its
  // pager is gone: MarkPagerGone here, its watched socket's hang-up elsewhere). No library reader
  // waits for a pager that is gone. Lets go of every file and mapping. Returns in bounded time
  // whatever clients and backings do. Idempotent.
  void Stop();

 private:
  friend class Filler;
  Pager() = default;

  void ThreadMain(int index);
  void HandleInotify();
  void HandleRecheck();
  void ArmRecheckLocked(int delay_ms);
  void ServeUffd(const std::shared_ptr<Attachment>& att, uint32_t events, Filler& filler);
  // A non-fault message of a client's uffd (fork, mremap, madvise, munmap): closes any fd it
  // delivered, follows a moved mapping.
  void HandleUffdEvent(Attachment& att, const struct uffd_msg& msg);
  // Reads what is queued on a uffd that will not be served any more (bounded), poisons its faults
  // (the readers get SIGBUS, not a wait for ever) and closes the fds its events delivered.
  void FailQueued(Attachment& att);
  // Fails the faults waiting on queued read-ahead jobs and drops the jobs (at Stop, and by each
  // thread as it leaves: Stop does not wait for a thread that may still queue one).
  void FailQueuedJobs();
  // A mapping no longer served whose client may still touch it: FailQueued, then every page of
  // its range missing from the file is failed (FailMissingPages); a mapping of this process is
  // told that its pager is gone (EPIPE).
  void FailDetached(Attachment& att);
  // count: false when re-serving a fault that was already counted (a waiter on a failed claim).
  void ServeFault(const std::shared_ptr<Attachment>& att, uint64_t address, Filler& filler, bool count = true);
  // Counts a fault on a page already present; true (and the attachment marked inconsistent) once
  // one page has come back more often than a correct mapping can make it.
  // *refault: the page faulted while present before.
  bool RefaultedTooOften(Attachment& att, uint64_t fault_page, bool* refault);
  // Maps the file read-write and registers it with fill_uffd_ (at its first fault, not at
  // registration). Needs the file's fill_mu. Returns "" or what failed.
  std::string MapForFillLocked(PagedFile& file);
  // Takes one queued read-ahead job, if any is left, and fills it.
  void RunJob(Filler& filler);
  // Ends a claim: wakes the faults that waited on it, serving anew those whose page is still missing.
  void ReleaseClaim(PagedFile& file, const std::shared_ptr<Claim>& claim, Filler& filler);
  // The range [start, end) of the file to fill for a fault at file_offset (start <= file_offset <
  // end): the seed's fixed 128 KiB ahead, or adaptive: one page for a fault that is not part of a
  // stream, growing to kMaxWindow ahead of (or behind) a reader that walks forward (or backward).
  struct Window {
    uint64_t start, end;
  };
  // page: the file's page size; a huge file's windows are whole huge pages.
  Window ReadaheadWindow(Attachment& att, uint64_t file_offset, uint64_t page);
  // Maps the filled pages [from, to) of att's file into att's mapping with UFFDIO_CONTINUE, which
  // wakes their faults (UFFDIO_WAKE for a mapping that refuses CONTINUE). True when CONTINUE did.
  bool MapForClient(Attachment& att, uint64_t from, uint64_t to);
  // Makes f's memfd a hugetlb one with the pager's reserving mapping. "" or why it could not.
  std::string MakeHugeMemfd(PagedFile& f, const std::string& memfd_name);
  // Forgets the file if no handle or mapping of it remains. Needs mu_.
  // True when the file was forgotten (no handle or mapping holds it any more).
  // Takes the file by value: it erases the file's node from files_, so a reference into files_
  // (the caller's f->second) would dangle for the rest of the call (a heap use-after-free).
  bool MaybeForgetLocked(std::shared_ptr<PagedFile> file, std::vector<std::pair<uint32_t, std::string>>* forgotten);
  void DetachLocked(uint64_t id);
  // Poisons [start, start+len) of a client's range through its uffd so that its readers get an
  // error, not a wait for ever; a poison that fails is retried while it may pass, else logged with
  // `what`. False when some page could not be failed (a reader there may still be waiting).
  // page: the mapping's page size (0: the base page; a huge file's is 2 MiB).
  bool FailPages(int uffd, uint64_t start, uint64_t len, const std::string& what, uint64_t page = 0);
  // At stop: maps the filled pages of att's range for its reader, up to *map_budget bytes (taken
  // from it), and poisons up to poison_budget bytes of the others, which nobody will ever fill now;
  // then wakes the whole range (the client library fails what is left as it faults).
  void FailMissingPages(const Attachment& att, uint64_t* map_budget, uint64_t poison_budget);
  void Log(LogLevel level, const std::string& message);
  Status ValidateExtents(uint64_t size, const std::vector<Extent>& extents, uint64_t backing_size);
  uint64_t BackingSize();

  // Set once at creation.
  int backing_fd_ = -1;
  bool backing_is_memfd_ = false;
  // A regular file on tmpfs: its page cache is its storage, so DONTNEED can drop nothing (as for a
  // memfd), and unmapping the pager's view of it after each copy would only cost a new population.
  bool backing_on_tmpfs_ = false;
  bool backing_is_blockdev_ = false;
  uint64_t block_size_ = 0;
  const uint8_t* backing_map_ = nullptr;  // read-only mapping of the backing, for one-copy supply
  uint64_t backing_map_len_ = 0;
  Options options_;
  LogFn log_;
  ForgottenFn forgotten_;
  int epoll_fd_ = -1;
  int stop_fd_ = -1;      // eventfd: readable once Stop() is called
  std::shared_ptr<closewatch::Mailbox> close_box_;  // close events of this pager's memfds
  // /proc/self/fd as a directory: a memfd is reopened with openat(proc_fd_dir_, "N"), one path
  // step instead of resolving /proc, self and fd again each time (-1: fall back to the full path).
  int proc_fd_dir_ = -1;
  int fill_uffd_ = -1;    // the pager's own uffd, registered on its mappings of the memfds
  std::vector<std::unique_ptr<trace::Ring>> trace_rings_;  // one per thread when options_.trace

  std::mutex mu_;  // guards everything below
  bool stopped_ = false;
  std::atomic<bool> stopping_{false};  // stopped_, readable without mu_ by the fault path
  std::unordered_map<uint32_t, std::shared_ptr<PagedFile>> files_;   // by inode
  std::unordered_map<int, uint32_t> inode_by_wd_;
  std::map<uint64_t, std::shared_ptr<Attachment>> attachments_;
  uint64_t next_attachment_id_ = 16;  // below 16: epoll tags of the pager's own fds
  std::mutex inotify_mu_;              // one reader of inotify at a time (events are ordered)
  // The kernel queues a close event before it drops the closed description's flock, so a lock
  // probe right after the event can still fail: such files are probed again on a timer.
  int recheck_timer_fd_ = -1;          // timerfd, armed while recheck_ is not empty
  std::unordered_map<uint32_t, int> recheck_;  // inode -> probes left (guarded by mu_)

  // Read-ahead jobs (FIFO, so windows fill front to back); jobs_fd_ (an eventfd semaphore in the
  // epoll set) counts them, so that whichever thread is idle takes the next one.
  int jobs_fd_ = -1;
  std::mutex jobs_mu_;
  std::deque<FillJob> jobs_;

  std::atomic<uint64_t> faults_{0}, bytes_supplied_{0}, bytes_zeroed_{0}, failures_{0}, huge_fallbacks_{0}, foreign_pages_{0};
};

}  // namespace pager
}  // namespace starnix
