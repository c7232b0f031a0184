// The pager core: registration, file lifetime, and the pager threads that serve page faults.
// See pager_core.h for the design and why it differs from a literal translation of the seed.
#include "pager_core.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/timerfd.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "mapping_registry.h"
#include "close_watch.h"
#include "filled_set.h"
#include "uffd.h"

namespace starnix {
namespace pager {

namespace {

// The seed's TRANSFER_VMO_SIZE was 1 MiB; a huge file's page is assembled whole, so 2 MiB.
constexpr uint64_t kTransferBytes = 2 << 20;
constexpr uint64_t kHugePage = 2 << 20;           // MFD_HUGE_2MB
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MFD_HUGE_2MB
#define MFD_HUGE_2MB (21U << 26)
#endif
constexpr uint64_t kFixedWindow = 128 * 1024;     // the seed's read-ahead alignment
constexpr uint64_t kRandomWindow = 4 * 1024;      // adaptive: a fault that is not part of a stream
constexpr uint64_t kMaxWindow = 8 << 20;          // adaptive: the most a streaming reader gets
constexpr uint64_t kFirstChunk = 64 * 1024;       // supplied (and woken) first: the faulter's page
constexpr uint64_t kChunk = 512 * 1024;           // then the rest of the window, woken chunk by chunk
// A sequential window beyond the faulter's first kJob bytes is cut into kJob-sized read-ahead
// jobs that any idle pager thread takes (front to back), each woken kJobChunk at a time.
constexpr uint64_t kJob = 512 * 1024;
// Records per thread's trace ring (64 bytes each: 4 MiB): a 1 GiB first read fills ~2100 windows,
// and the ring is drained every 100 ms.
constexpr size_t kTraceRingRecords = 65536;
constexpr uint64_t kJobChunk = 128 * 1024;
constexpr uint64_t kStopTag = 1;
constexpr uint64_t kInotifyTag = 2;
constexpr uint64_t kRecheckTag = 3;
constexpr uint64_t kJobTag = 4;
// Probes of a file whose close event came before its lock was dropped: 1 ms apart, then doubling.
constexpr int kRecheckProbes = 8;
// Times a client may clear O_NONBLOCK on its uffd (each costs the pager an epoll wake-up and an
// fcntl) before its mapping is detached.
constexpr uint32_t kMaxNonblockResets = 1000;
// Faults on one page that is already present before the mapping is taken for inconsistent (a few
// client threads touching one page at once each bring one), and how many pages are tracked.
constexpr uint32_t kMaxPresentRefaults = 16;
constexpr size_t kPresentFaultsTracked = 256;
constexpr size_t kMemfdNameMax = 249;
// Bytes of attached ranges that Stop maps (filled) for their readers, and that it poisons (not
// filled), each over all attachments: every page costs a page table entry in the reader, and time
// on the JS thread.
constexpr uint64_t kStopBudget = uint64_t{4} << 30;             // NAME_MAX - strlen("memfd:")

uint64_t RoundDown(uint64_t v, uint64_t a) { return v - v % a; }
uint64_t RoundUp(uint64_t v, uint64_t a) { return RoundDown(v + a - 1, a); }

std::string Errno(const char* what, int err) {
  return std::string(what) + ": " + strerror(err);
}

// Closes an fd unless released: keeps every early return in Create/Register from leaking.
class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  ~UniqueFd() {
    if (fd_ >= 0) close(fd_);
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

// read/pread until `len` bytes or an error. Returns bytes read; *err is 0, an errno, or EIO
// for a short read (the backing ends early: a read that cannot be completed is an error).
uint64_t PreadFull(int fd, uint8_t* buf, uint64_t len, uint64_t offset, int* err) {
  uint64_t got = 0;
  *err = 0;
  while (got < len) {
    ssize_t n = pread(fd, buf + got, len - got, static_cast<off_t>(offset + got));
    if (n < 0) {
      if (errno == EINTR) continue;
      *err = errno;
      break;
    }
    if (n == 0) {
      *err = EIO;
      break;
    }
    got += static_cast<uint64_t>(n);
  }
  return got;
}

// Whether fd's file lives on a tmpfs mount. Not fstatfs: that asks the file system, and a FUSE
// daemon that stops answering would freeze the caller (the JavaScript thread); the mount's type
// comes from /proc/self/mountinfo, found by the mount id statx gives without asking anyone.
bool OnTmpfs(int fd) {
  struct statx st;
  if (uffd::StatNoSync(fd, STATX_MNT_ID, &st) != 0 || (st.stx_mask & STATX_MNT_ID) == 0) return false;
  FILE* info = fopen("/proc/self/mountinfo", "re");
  if (info == nullptr) return false;
  bool tmpfs = false;
  char* line = nullptr;
  size_t cap = 0;
  const std::string id = std::to_string(st.stx_mnt_id) + " ";
  while (getline(&line, &cap, info) > 0) {
    if (strncmp(line, id.c_str(), id.size()) != 0) continue;
    const char* sep = strstr(line, " - ");  // then: fstype source options
    tmpfs = sep != nullptr && strncmp(sep + 3, "tmpfs ", 6) == 0;
    break;
  }
  free(line);
  fclose(info);
  return tmpfs;
}

}  // namespace

// One registered inode.
struct PagedFile {
  uint32_t inode = 0;
  std::string name;
  uint64_t size = 0;
  uint64_t mapped_size = 0;  // size rounded up to pages (huge pages for a huge file)
  uint64_t page = 0;         // 4 KiB, or 2 MiB for a hugetlb memfd
  bool huge = false;
  std::vector<Extent> extents;
  int memfd = -1;            // the pager's own read-write description
  dev_t dev = 0;
  ino_t ino = 0;
  // The pager's shared read-write mapping, made at registration before the memfd is sealed
  // against writes (F_SEAL_FUTURE_WRITE forbids new writable mappings, not existing ones), and
  // registered with fill_uffd_ at the first fault; `fill` is set once it is (under fill_mu).
  uint8_t* fill_map = nullptr;
  uint8_t* fill = nullptr;   // == fill_map once registered; never touched directly
  int wd = -1;               // inotify watch
  // The pages the pager filled with the right bytes: the only ones it lets readers map (a page in
  // the page cache may be a holder's page of zeros; see filled_set.h).
  FilledSet filled;
  // Ranges being filled or queued to be (see Claim); a fault in one waits for it.
  std::mutex fill_mu;
  std::vector<std::shared_ptr<Claim>> claims;

  ~PagedFile() {
    if (fill_map != nullptr) munmap(fill_map, mapped_size);
    if (memfd >= 0) close(memfd);
  }
};

// A range [start, end) of a file that one thread fills, or that is queued to be filled. Pager
// threads never fill the same pages twice: a fault on a claimed page is recorded here, and
// served when the claim is released (woken, or filled anew if the claim's fill failed before it).
struct Claim {
  Claim(uint64_t s, uint64_t e) : start(s), end(e) {}
  uint64_t start, end;
  std::vector<std::pair<std::shared_ptr<Attachment>, uint64_t>> waiters;  // (attachment, fault page address)
};

// One client mapping of a file, with the client's uffd.
struct Attachment {
  uint64_t id = 0;
  int uffd = -1;
  // Where the client's mapping is: moved by UFFD_EVENT_REMAP (mremap) while other threads serve it.
  std::atomic<uint64_t> address{0};
  uint64_t length = 0, offset = 0;
  std::shared_ptr<PagedFile> file;
  // Adaptive read-ahead state.
  std::atomic<bool> detached{false};  // queued read-ahead for it is skipped
  std::atomic<uint32_t> nonblock_resets{0};  // times its client cleared O_NONBLOCK (see ServeUffd)
  // A fault on a page already in the page cache is woken, and the woken access finds the page: the
  // same page faulting again and again means the client's mapping is not what it declared (another
  // offset or file). Counted per page (under ra_mu); past a limit every fault of it fails.
  std::unordered_map<uint64_t, uint32_t> present_faults;
  std::atomic<bool> inconsistent{false};
  // UFFDIO_CONTINUE failed with EINVAL on its range: it is woken instead (the reader's retried fault
  // then maps whatever the page cache holds; only a MINOR-registered reader is guaranteed right bytes).
  std::atomic<bool> no_continue{false};
  std::mutex ra_mu;
  uint64_t last_fault = UINT64_MAX;
  uint64_t expected = UINT64_MAX;  // where the last window ended: a forward reader faults next near it
  uint64_t low = UINT64_MAX;       // where the last window began: a backward reader faults next near it
  uint64_t window = 0;

  ~Attachment() {
    if (uffd >= 0) close(uffd);
  }
  uint64_t FileEnd() const { return offset + length; }
};

// The per-thread worker that puts pages into a file: the seed's SupplyHelper.
class Filler {
 public:
  explicit Filler(Pager* pager, trace::Ring* trace_ring = nullptr)
      : pager_(pager), page_(uffd::PageSize()), trace_ring_(trace_ring) {
    void* buf = mmap(nullptr, kTransferBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    buf_ = buf == MAP_FAILED ? nullptr : static_cast<uint8_t*>(buf);
    // Never written: every page of it reads as the kernel's zero page. The source of a huge
    // file's holes (hugetlb has no UFFDIO_ZEROPAGE).
    void* zeros = mmap(nullptr, kHugePage, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    zeros_ = zeros == MAP_FAILED ? nullptr : static_cast<const uint8_t*>(zeros);
  }
  ~Filler() {
    if (buf_ != nullptr) munmap(buf_, kTransferBytes);
    if (zeros_ != nullptr) munmap(const_cast<uint8_t*>(zeros_), kHugePage);
  }
  bool ok() const { return buf_ != nullptr && zeros_ != nullptr; }

  // Supplies the missing pages [fault_fo, end) of the file (page-aligned; the fault's own page
  // first) and wakes att's waiters as the pages arrive. If the fault's own page cannot be
  // supplied, it is poisoned in att's mapping; a failure further on only cuts the read-ahead.
  // first_chunk: how much goes in (and is woken) first, then the rest `chunk` at a time.
  // poison_first: the first page is a fault's own (read-ahead jobs pass false: a failure only
  // stops them, and the fault that later needs the page gets its own attempt).
  void Fill(Attachment& att, PagedFile& f, uint64_t fault_fo, uint64_t end, uint64_t first_chunk, uint64_t chunk,
            bool poison_first);

 private:
  enum class Kind { kHole, kDirect, kAssemble };
  struct Piece {
    Kind kind;
    uint64_t len;
    uint64_t phys;  // kDirect: offset in the backing
  };
  Piece Classify(const PagedFile& f, uint64_t cursor, uint64_t limit, uint64_t no_direct_until) const;
  // UFFDIO_COPY / UFFDIO_ZEROPAGE into the pager's mapping. A page already in the page cache that
  // the pager did not fill (a holder's page of zeros, root's fallocate) gets the right bytes written
  // over it through the pager's mapping (ReplaceForeign); one it filled is kept.
  // backing_phys: src is the backing's mapping at that offset (UINT64_MAX: src is ordinary memory).
  // Returns 0 or an errno; *done is how far it got (the failing page is at *done).
  int Copy(PagedFile& f, uint64_t fo, const uint8_t* src, uint64_t len, uint64_t* done, uint64_t* copied,
           uint64_t backing_phys = UINT64_MAX);
  // Writes the right bytes of page fo over a page the pager did not fill. The page is in the page
  // cache (UFFDIO_COPY said EEXIST), and the seals forbid removing it (no hole punch, no shrink;
  // hugetlb pages are never swapped), so the write never faults to the pager's own uffd. The
  // source is read with ReadBacking when it is the backing (a memcpy from its mapping could raise
  // SIGBUS). 0 or an errno.
  int ReplaceForeign(PagedFile& f, uint64_t fo, const uint8_t* src, uint64_t backing_phys);
  int Zero(PagedFile& f, uint64_t fo, uint64_t len, uint64_t* done);
  // Builds [cursor, cursor+len) in the transfer buffer. Returns how many leading bytes are
  // good; *err and *err_at tell where the backing failed.
  // *data_bytes counts the bytes that came from the backing (the rest are zeros).
  uint64_t Assemble(const PagedFile& f, uint64_t cursor, uint64_t len, int* err, uint64_t* err_at,
                    uint64_t* data_bytes);
  // Reads [phys, phys+len) of the backing into dst: from the backing's mapping (see the definition
  // for why), by pread only past its end. Returns how many bytes it read; *err as PreadFull.
  uint64_t ReadBacking(uint8_t* dst, uint64_t len, uint64_t phys, int* err);
  void WakeClient(Attachment& att, uint64_t from, uint64_t to);
  void DropCache(uint64_t phys, uint64_t len, bool mapped);
  // Maps the backing's pages under [phys, phys+len) of backing_map_ before a direct copy from
  // them. UFFDIO_COPY copies with page faults disabled: on a source page not mapped yet it backs
  // out and copies again outside mmap_lock, and for a hugetlb destination that second try copies
  // twice (into a temporary huge page, then into the real one). Measured with
  // bench/probes/huge_fill.c: 2 MiB copies from an unmapped source cost the pager 830-970 ms of CPU
  // per GiB, from a populated one 320-410 ms.
  void PopulateSource(uint64_t phys, uint64_t len);

  Pager* pager_;
  uint64_t page_;
  uint64_t backing_now_ = 0;  // the backing's size when this Fill began  // the page size of the file being filled (set by Fill)
  trace::Ring* trace_ring_;  // this thread's vmo_read records, when tracing
  uint8_t* buf_ = nullptr;
  const uint8_t* zeros_ = nullptr;
};

Filler::Piece Filler::Classify(const PagedFile& f, uint64_t cursor, uint64_t limit,
                               uint64_t no_direct_until) const {
  const uint64_t bs = pager_->block_size_;
  const auto& ex = f.extents;
  // First extent that ends after the cursor (extents are sorted and disjoint).
  auto it = std::partition_point(ex.begin(), ex.end(), [&](const Extent& e) {
    return static_cast<uint64_t>(e.logical_end) * bs <= cursor;
  });
  uint64_t data_start = UINT64_MAX, data_end = 0;
  if (it != ex.end()) {
    data_start = static_cast<uint64_t>(it->logical_start) * bs;
    data_end = std::min<uint64_t>(static_cast<uint64_t>(it->logical_end) * bs, f.size);
    if (data_start >= data_end) data_start = UINT64_MAX;  // beyond the file's size: not data
  }
  if (data_start >= cursor + page_) {
    // No data in this page: zero-fill up to the page holding the next data.
    uint64_t hole_end = data_start == UINT64_MAX ? limit : std::min(limit, RoundDown(data_start, page_));
    return Piece{Kind::kHole, hole_end - cursor, 0};
  }
  if (data_start <= cursor && data_end >= cursor + page_ && cursor >= no_direct_until &&
      pager_->backing_map_ != nullptr) {
    uint64_t phys = it->physical_block * bs + (cursor - data_start);
    // Only whole pages the backing still has: the page holding the end of a backing that shrank
    // to an odd size maps as its data plus zeros, which must not become the file's bytes (pread
    // reports the short read, and the page fails with EIO).
    const uint64_t direct_end = std::min(pager_->backing_map_len_, RoundDown(backing_now_, uffd::PageSize()));
    // The source of UFFDIO_COPY may be anywhere; a base page boundary keeps DropCache's madvise exact.
    if (phys % uffd::PageSize() == 0 && phys + page_ <= direct_end) {
      uint64_t run_end = std::min(limit, RoundDown(data_end, page_));
      uint64_t len = std::min(run_end - cursor, RoundDown(direct_end - phys, page_));
      return Piece{Kind::kDirect, len, phys};
    }
  }
  return Piece{Kind::kAssemble, limit - cursor, 0};
}

int Filler::ReplaceForeign(PagedFile& f, uint64_t fo, const uint8_t* src, uint64_t backing_phys) {
  if (f.filled.Contains(fo)) return 0;  // filled by the pager: right already
  if (backing_phys != UINT64_MAX) {
    int err = 0;
    ReadBacking(buf_, page_, backing_phys, &err);
    if (err != 0) return err;
    src = buf_;
  }
  if (src == nullptr) {
    memset(f.fill + fo, 0, page_);
  } else {
    memcpy(f.fill + fo, src, page_);
  }
  pager_->foreign_pages_++;
  return 0;
}

int Filler::Copy(PagedFile& f, uint64_t fo, const uint8_t* src, uint64_t len, uint64_t* done,
                 uint64_t* copied, uint64_t backing_phys) {
  uint64_t pos = 0;
  int again = 0;
  *copied = 0;
  while (pos < len) {
    struct uffdio_copy c = {};
    c.dst = reinterpret_cast<uint64_t>(f.fill) + fo + pos;
    c.src = reinterpret_cast<uint64_t>(src) + pos;
    c.len = len - pos;
    c.mode = UFFDIO_COPY_MODE_DONTWAKE;  // nobody waits on the pager's own mapping
    if (ioctl(pager_->fill_uffd_, UFFDIO_COPY, &c) == 0) {
      *copied += len - pos;
      pos = len;
      break;
    }
    int err = errno;
    if (c.copy > 0) {  // partial: go on from where it stopped, to learn why
      pos += static_cast<uint64_t>(c.copy);
      *copied += static_cast<uint64_t>(c.copy);
      continue;
    }
    if (c.copy < 0) err = static_cast<int>(-c.copy);
    if (err == EEXIST) {
      // In the page cache already: the pager's (keep it) or a holder's zeros (write over them).
      int replace_err = ReplaceForeign(f, fo + pos, src + pos, backing_phys == UINT64_MAX ? UINT64_MAX : backing_phys + pos);
      if (replace_err != 0) {
        *done = pos;
        return replace_err;
      }
      *copied += page_;
      pos += page_;
    } else if (err == EAGAIN && ++again < 1000) {
      continue;
    } else {
      *done = pos;
      return err;
    }
  }
  *done = pos;
  return 0;
}

int Filler::Zero(PagedFile& f, uint64_t fo, uint64_t len, uint64_t* done) {
  uint64_t pos = 0;
  int again = 0;
  if (f.huge) {
    // No UFFDIO_ZEROPAGE on hugetlb: copy zeros, a huge page at a time.
    while (pos < len) {
      uint64_t d = 0, copied = 0;
      int err = Copy(f, fo + pos, zeros_, std::min(kHugePage, len - pos), &d, &copied);
      pos += d;
      if (err != 0) {
        *done = pos;
        return err;
      }
    }
    *done = pos;
    return 0;
  }
  while (pos < len) {
    struct uffdio_zeropage z = {};
    z.range.start = reinterpret_cast<uint64_t>(f.fill) + fo + pos;
    z.range.len = len - pos;
    z.mode = UFFDIO_ZEROPAGE_MODE_DONTWAKE;
    if (ioctl(pager_->fill_uffd_, UFFDIO_ZEROPAGE, &z) == 0) {
      pos = len;
      break;
    }
    int err = errno;
    if (z.zeropage > 0) {
      pos += static_cast<uint64_t>(z.zeropage);
      continue;
    }
    if (z.zeropage < 0) err = static_cast<int>(-z.zeropage);
    if (err == EEXIST) {
      ReplaceForeign(f, fo + pos, nullptr, UINT64_MAX);  // a hole: zeros (memset, never fails)
      pos += page_;
    } else if (err == EAGAIN && ++again < 1000) {
      continue;
    } else {
      *done = pos;
      return err;
    }
  }
  *done = pos;
  return 0;
}

uint64_t Filler::Assemble(const PagedFile& f, uint64_t cursor, uint64_t len, int* err, uint64_t* err_at,
                          uint64_t* data_bytes) {
  const uint64_t bs = pager_->block_size_;
  const uint64_t end = cursor + len;
  memset(buf_, 0, len);
  *err = 0;
  *data_bytes = 0;
  auto it = std::partition_point(f.extents.begin(), f.extents.end(), [&](const Extent& e) {
    return static_cast<uint64_t>(e.logical_end) * bs <= cursor;
  });
  for (; it != f.extents.end(); ++it) {
    uint64_t ls = static_cast<uint64_t>(it->logical_start) * bs;
    if (ls >= end || ls >= f.size) break;
    uint64_t le = std::min({static_cast<uint64_t>(it->logical_end) * bs, f.size, end});
    uint64_t s = std::max(ls, cursor);
    if (s >= le) continue;
    uint64_t phys = it->physical_block * bs + (s - ls);
    int e = 0;
    uint64_t got = ReadBacking(buf_ + (s - cursor), le - s, phys, &e);
    if (got > 0) DropCache(phys, got, phys < pager_->backing_map_len_);
    *data_bytes += got;
    if (e != 0) {
      *err = e;
      *err_at = s + got;
      return s + got - cursor;
    }
  }
  return len;
}

// Through the mapping, not pread, so that a thread waiting for a backing that never answers can
// always be killed: a page fault on a FUSE file waits for its page killably (the read is the page
// cache's), whereas a pread of a FUSE file in direct I/O mode, or of a description its client set
// O_DIRECT on (the description is shared), is a request the kernel waits out even on SIGKILL, and
// the server could then never exit. process_vm_readv of this process copies from the mapping and
// reports a page the backing cannot give as EFAULT (taken as EIO), where a memcpy would raise
// SIGBUS. Bytes past the backing's size when the fill began (it shrank) are not read from the
// mapping, whose last page would give zeros for them: they are an error, as pread's short read is.
// Extents never reach past the mapping (RegisterFile checks them against it), so pread serves only
// where process_vm_readv is not allowed (seccomp).
uint64_t Filler::ReadBacking(uint8_t* dst, uint64_t len, uint64_t phys, int* err) {
  *err = 0;
  uint64_t got = 0;
  const uint64_t map_len = pager_->backing_map_len_;
  if (pager_->backing_map_ != nullptr && phys < map_len) {
    const uint64_t readable = std::min(map_len, backing_now_);
    const uint64_t want = phys < readable ? std::min(len, readable - phys) : 0;
    while (got < want) {
      struct iovec local = {dst + got, static_cast<size_t>(want - got)};
      struct iovec remote = {const_cast<uint8_t*>(pager_->backing_map_) + phys + got, static_cast<size_t>(want - got)};
      ssize_t n = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
      if (n > 0) {
        got += static_cast<uint64_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == ENOSYS || errno == EPERM)) break;  // not allowed here (seccomp): pread
      *err = (n == 0 || errno == EFAULT) ? EIO : errno;
      return got;
    }
    if (got == len) return got;
    if (got == want && phys + got < map_len) {
      *err = EIO;  // the backing ends here (it shrank)
      return got;
    }
  }
  return got + PreadFull(pager_->backing_fd_, dst + got, len - got, phys + got, err);
}


void Filler::WakeClient(Attachment& att, uint64_t from, uint64_t to) { pager_->MapForClient(att, from, to); }

bool Pager::MapForClient(Attachment& att, uint64_t from, uint64_t to) {
  from = std::max(from, att.offset);
  to = std::min(to, att.FileEnd());
  if (from >= to) return false;
  const uint64_t address = att.address + (from - att.offset);
  if (!att.no_continue) {
    int err = uffd::Continue(att.uffd, address, to - from, att.file->page);
    if (err == 0) return true;
    if (err != EINVAL) {
      // ENOENT/ESRCH: the range or its address space is gone. EFAULT: the client's mapping is not
      // of this file at the declared offset; its faults come back and RefaultedTooOften ends them.
      Log(LogLevel::kDebug, Errno("UFFDIO_CONTINUE", err));
    } else {
      att.no_continue = true;
      Log(LogLevel::kInfo, "mapping " + std::to_string(att.id) + " refuses UFFDIO_CONTINUE: it is woken instead, " +
                               "and a page of zeros another holder put into the page cache could reach it");
    }
  }
  int err = uffd::Wake(att.uffd, address, to - from);
  if (err != 0) Log(LogLevel::kDebug, Errno("UFFDIO_WAKE", err));
  return false;
}

void Filler::DropCache(uint64_t phys, uint64_t len, bool mapped) {
  if (!pager_->options_.drop_cache || pager_->backing_is_memfd_ || pager_->backing_on_tmpfs_) return;
  if (mapped) {
    // The copy faulted the backing's pages into the pager's mapping; mapped pages cannot be
    // dropped from the page cache, so unmap them first.
    // (Whole pages: an assembled piece may start and end inside one.)
    const uint64_t page = uffd::PageSize();
    const uint64_t from = RoundDown(phys, page);
    const uint64_t to = std::min(RoundUp(phys + len, page), pager_->backing_map_len_);
    if (to > from) madvise(const_cast<uint8_t*>(pager_->backing_map_) + from, to - from, MADV_DONTNEED);
  }
  posix_fadvise(pager_->backing_fd_, static_cast<off_t>(phys), static_cast<off_t>(len), POSIX_FADV_DONTNEED);
}

void Filler::PopulateSource(uint64_t phys, uint64_t len) {
  // Errors are left to the copy: an unreadable page gives it EFAULT, which Fill handles (pread).
  madvise(const_cast<uint8_t*>(pager_->backing_map_) + phys, len, MADV_POPULATE_READ);
}

void Filler::Fill(Attachment& att, PagedFile& f, uint64_t fault_fo, uint64_t end, uint64_t first_chunk,
                  uint64_t chunk, bool poison_first) {
  page_ = f.page;
  first_chunk = std::max(first_chunk, page_);  // a huge file moves a whole huge page at a time
  chunk = std::max(chunk, page_);
  trace::VmoReadScope traced(trace_ring_, att.id, f.inode, fault_fo, end - fault_fo, poison_first);
  uint64_t cursor = fault_fo;
  backing_now_ = pager_->BackingSize();  // statx(DONT_SYNC) or BLKGETSIZE64: a FUSE daemon is not asked
  uint64_t no_direct_until = 0;  // after EFAULT from the backing's mapping: learn the truth by pread
  int failure = 0;
  uint64_t failed_at = 0;
  while (cursor < end && failure == 0) {
    uint64_t limit = std::min(end, cursor + (cursor == fault_fo ? first_chunk : chunk));
    Piece p = Classify(f, cursor, limit, no_direct_until);
    uint64_t done = 0, copied = 0;
    int err = 0;
    switch (p.kind) {
      case Kind::kHole:
        err = Zero(f, cursor, p.len, &done);
        pager_->bytes_zeroed_ += done;
        traced.ev.bytes_zeroed += done;
        break;
      case Kind::kDirect:
        PopulateSource(p.phys, p.len);
        err = Copy(f, cursor, pager_->backing_map_ + p.phys, p.len, &done, &copied, p.phys);
        pager_->bytes_supplied_ += copied;
        traced.ev.bytes_copied += copied;
        if (copied > 0) DropCache(p.phys, done, true);
        if (err == EFAULT) {
          // The backing's mapping could not be read there (I/O error, or the backing shrank):
          // assemble from the failing page on, which finds the exact byte and the reason.
          no_direct_until = cursor + p.len;
          err = 0;
        }
        break;
      case Kind::kAssemble: {
        int read_err = 0;
        uint64_t err_at = 0;
        uint64_t data_bytes = 0;
        uint64_t good = Assemble(f, cursor, p.len, &read_err, &err_at, &data_bytes);
        uint64_t good_pages = RoundDown(good, page_);
        if (good_pages > 0) {
          err = Copy(f, cursor, buf_, good_pages, &done, &copied);
          // Split what went in between backing data and zero fill (approximate when some
          // pages were already present).
          uint64_t data = std::min(data_bytes, copied);
          pager_->bytes_supplied_ += data;
          pager_->bytes_zeroed_ += copied - data;
          traced.ev.bytes_copied += data;
          traced.ev.bytes_zeroed += copied - data;
        }
        if (err == 0 && read_err != 0) {
          // The good pages before the bad one are in; the page holding the error is not.
          f.filled.Add(cursor, cursor + done);
          if (done > 0) WakeClient(att, cursor, cursor + done);
          failure = read_err;
          failed_at = RoundDown(err_at, page_);
          pager_->Log(LogLevel::kDebug, Errno("reading the backing", read_err) + " (file " + f.name +
                                            " offset " + std::to_string(err_at) + ")");
          continue;
        }
        break;
      }
    }
    // Recorded before any reader is given them (WakeClient maps them into att's mapping).
    f.filled.Add(cursor, cursor + done);
    if (done > 0) WakeClient(att, cursor, cursor + done);
    if (err != 0) {
      failure = err;
      failed_at = cursor + done;
      pager_->Log(LogLevel::kError, Errno("supplying pages", err) + " (file " + f.name + " offset " +
                                        std::to_string(failed_at) + ")");
      break;
    }
    cursor += done;
  }
  if (failure == 0) return;
  traced.ev.flags |= trace::kFailed;
  if (failed_at > fault_fo || !poison_first) {
    // Only read-ahead was lost; the fault's own page is in. A later fault retries the rest.
    pager_->Log(LogLevel::kDebug, "read-ahead stopped at offset " + std::to_string(failed_at) + " of " +
                                      f.name + ": " + strerror(failure));
    return;
  }
  // The requested page itself cannot be read: fail exactly it, never let it read as zeros.
  pager_->failures_++;
  traced.ev.flags |= trace::kPoisoned;
  pager_->Log(LogLevel::kWarn, "failing page-in of " + f.name + " offset " + std::to_string(fault_fo) +
                                   ": " + strerror(failure));
  int err = uffd::Poison(att.uffd, att.address + (fault_fo - att.offset), page_, page_);
  if (err != 0) pager_->Log(LogLevel::kError, Errno("UFFDIO_POISON", err) + " (the reader may wait until its mapping is gone)");
}

// ---------------------------------------------------------------------------------------------

Status Pager::Create(int backing_fd, uint64_t block_size, const Options& options, LogFn log,
                     ForgottenFn forgotten, std::shared_ptr<Pager>* out) {
  if (block_size == 0 || block_size > (1 << 20) || (block_size & (block_size - 1)) != 0) {
    return Status::Error(ZX_ERR_INVALID_ARGS, "bad block size " + std::to_string(block_size) +
                                                  " (a power of two, at most 1 MiB)");
  }
  if (options.threads < 1 || options.threads > 64) {
    return Status::Error(ZX_ERR_INVALID_ARGS, "threads must be 1..64");
  }
  UniqueFd fd(fcntl(backing_fd, F_DUPFD_CLOEXEC, 3));
  if (fd.get() < 0) return Status::Error(ZX_ERR_BAD_HANDLE, Errno("dup(backing)", errno));
  // Never a plain fstat here: this runs on the JavaScript thread, and the client chose the backing
  // (a FUSE file whose daemon stops answering GETATTR would freeze the whole server).
  struct statx st;
  int stat_err = uffd::StatNoSync(fd.get(), STATX_TYPE, &st);
  if (stat_err != 0) return Status::Error(ZX_ERR_BAD_HANDLE, Errno("statx(backing)", stat_err));
  std::shared_ptr<Pager> p(new Pager());
  if (S_ISBLK(st.stx_mode)) {
    p->backing_is_blockdev_ = true;
  } else if (S_ISREG(st.stx_mode)) {
    char path[64], target[256];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd.get());
    ssize_t n = readlink(path, target, sizeof target - 1);
    if (n > 0) {
      target[n] = 0;
      p->backing_is_memfd_ = strncmp(target, "/memfd:", 7) == 0;
    }
    p->backing_on_tmpfs_ = OnTmpfs(fd.get());
  } else {
    return Status::Error(ZX_ERR_WRONG_TYPE, "backing is neither a regular file, a memfd nor a block device");
  }
  p->backing_fd_ = fd.release();
  p->block_size_ = block_size;
  p->options_ = options;
  if (options.trace) {
    for (int i = 0; i < options.threads; i++) p->trace_rings_.push_back(std::make_unique<trace::Ring>(kTraceRingRecords));
  }
  p->log_ = std::move(log);
  p->forgotten_ = std::move(forgotten);

  uint64_t size = p->BackingSize();
  if (size > 0) {
    void* map = mmap(nullptr, size, PROT_READ, MAP_SHARED, p->backing_fd_, 0);
    if (map == MAP_FAILED) {
      // Every read of the backing goes through this mapping (Filler::ReadBacking says why): a
      // backing that cannot be mapped (a FUSE file in direct I/O mode: ENODEV) is refused.
      return Status::Error(ZX_ERR_NOT_SUPPORTED, Errno("mmap(backing)", errno) +
                                                     ": the pager reads a backing only through a mapping of it");
    } else {
      p->backing_map_ = static_cast<const uint8_t*>(map);
      p->backing_map_len_ = size;
    }
  }
  p->epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (p->epoll_fd_ < 0) return Status::Error(ZX_ERR_NO_RESOURCES, Errno("epoll_create1", errno));
  p->stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (p->stop_fd_ < 0) return Status::Error(ZX_ERR_NO_RESOURCES, Errno("eventfd", errno));
  // Close events come from the process's one inotify instance (close_watch.h), through a mailbox.
  p->close_box_ = std::make_shared<closewatch::Mailbox>();
  if (p->close_box_->fd() < 0) return Status::Error(ZX_ERR_NO_RESOURCES, Errno("eventfd(close events)", errno));
  // Close-on-exec: a child never uses it (it would name the parent's fds).
  p->proc_fd_dir_ = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  uffd::Created u = uffd::Create();
  if (u.fd < 0) return Status::Error(ZX_ERR_NOT_SUPPORTED, Errno("userfaultfd (for the pager's own mappings)", u.err));
  p->fill_uffd_ = u.fd;
  int err = uffd::Api(p->fill_uffd_, 0, nullptr);
  if (err != 0) return Status::Error(ZX_ERR_NOT_SUPPORTED, Errno("UFFDIO_API", err));

  struct epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.u64 = kStopTag;
  if (epoll_ctl(p->epoll_fd_, EPOLL_CTL_ADD, p->stop_fd_, &ev) != 0)
    return Status::Error(ZX_ERR_NO_RESOURCES, Errno("epoll_ctl(stop)", errno));
  // Edge-triggered: one batch of close events wakes one pager thread (HandleInotify takes them
  // all), not every idle one, which then queue on inotify_mu_.
  ev.events = EPOLLIN | EPOLLET;
  ev.data.u64 = kInotifyTag;
  if (epoll_ctl(p->epoll_fd_, EPOLL_CTL_ADD, p->close_box_->fd(), &ev) != 0)
    return Status::Error(ZX_ERR_NO_RESOURCES, Errno("epoll_ctl(inotify)", errno));
  ev.events = EPOLLIN;
  // A semaphore: each read takes one job's token.
  p->jobs_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK | EFD_SEMAPHORE);
  if (p->jobs_fd_ < 0) return Status::Error(ZX_ERR_NO_RESOURCES, Errno("eventfd(jobs)", errno));
  ev.data.u64 = kJobTag;
  if (epoll_ctl(p->epoll_fd_, EPOLL_CTL_ADD, p->jobs_fd_, &ev) != 0)
    return Status::Error(ZX_ERR_NO_RESOURCES, Errno("epoll_ctl(jobs)", errno));
  p->recheck_timer_fd_ = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  if (p->recheck_timer_fd_ < 0) return Status::Error(ZX_ERR_NO_RESOURCES, Errno("timerfd_create", errno));
  ev.events = EPOLLIN | EPOLLET;  // as inotify: one expiry, one thread
  ev.data.u64 = kRecheckTag;
  if (epoll_ctl(p->epoll_fd_, EPOLL_CTL_ADD, p->recheck_timer_fd_, &ev) != 0)
    return Status::Error(ZX_ERR_NO_RESOURCES, Errno("epoll_ctl(timerfd)", errno));

  // Detached threads that each own a reference to the pager: Stop() never joins them (one may be
  // inside a read of a backing that does not answer, e.g. a stalled FUSE file, and Stop runs on
  // the JavaScript thread). The last thread to leave frees the pager and closes its fds.
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  for (int i = 0; i < options.threads; i++) {
    // std::thread would abort on failure (no exceptions): use pthreads and report.
    struct Start {
      std::shared_ptr<Pager> pager;
      int index;
    };
    Start* start = new Start{p, i};
    pthread_t tid;
    int rc = pthread_create(&tid, &attr, [](void* arg) -> void* {
      Start* s = static_cast<Start*>(arg);
      std::shared_ptr<Pager> pager = std::move(s->pager);
      int index = s->index;
      delete s;
      char name[16];
      snprintf(name, sizeof name, "pager-%d", index);
      pthread_setname_np(pthread_self(), name);
      pager->ThreadMain(index);
      return nullptr;
    }, start);
    if (rc != 0) {
      delete start;
      pthread_attr_destroy(&attr);
      p->Stop();
      return Status::Error(ZX_ERR_NO_RESOURCES, Errno("pthread_create", rc));
    }
  }
  pthread_attr_destroy(&attr);
  *out = std::move(p);
  return Status::Ok();
}

// Runs when the last reference goes: the JS object's, or the last pager thread's after Stop().
// No thread uses the pager's own fds any more.
Pager::~Pager() {
  Stop();
  FailQueuedJobs();  // none should be left; a claim left with waiters would keep its file alive
  for (int* fd : {&epoll_fd_, &stop_fd_, &proc_fd_dir_, &recheck_timer_fd_, &jobs_fd_, &fill_uffd_, &backing_fd_}) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
  }
  if (backing_map_ != nullptr) munmap(const_cast<uint8_t*>(backing_map_), backing_map_len_);
  backing_map_ = nullptr;
}

uint64_t Pager::BackingSize() {
  if (backing_is_blockdev_) {
    uint64_t size = 0;
    if (ioctl(backing_fd_, BLKGETSIZE64, &size) != 0) return 0;
    return size;
  }
  // Cached attributes only: a FUSE backing is never asked (see StatNoSync).
  struct statx st;
  if (uffd::StatNoSync(backing_fd_, STATX_SIZE, &st) != 0) return 0;
  return static_cast<uint64_t>(st.stx_size);
}

void Pager::Log(LogLevel level, const std::string& message) {
  if (log_) log_(level, message);
}

Status Pager::ValidateExtents(uint64_t size, const std::vector<Extent>& extents, uint64_t backing_size) {
  const uint64_t bs = block_size_;
  uint64_t prev_end = 0;
  for (size_t i = 0; i < extents.size(); i++) {
    const Extent& e = extents[i];
    // Formatted only for an error: a valid extent (every one, normally) costs no string.
    auto where = [&]() {
      return "extent " + std::to_string(i) + " [" + std::to_string(e.logical_start) + ", " +
             std::to_string(e.logical_end) + ") at block " + std::to_string(e.physical_block);
    };
    if (e.logical_start >= e.logical_end) return Status::Error(ZX_ERR_INVALID_ARGS, where() + ": empty or reversed");
    if (i > 0 && e.logical_start < prev_end)
      return Status::Error(ZX_ERR_INVALID_ARGS, where() + ": not sorted or overlapping the previous one");
    prev_end = e.logical_end;
    uint64_t len_bytes = static_cast<uint64_t>(e.logical_end - e.logical_start) * bs;
    uint64_t phys_bytes, phys_end;
    if (__builtin_mul_overflow(e.physical_block, bs, &phys_bytes) ||
        __builtin_add_overflow(phys_bytes, len_bytes, &phys_end))
      return Status::Error(ZX_ERR_INVALID_ARGS, where() + ": block arithmetic overflows");
    if (phys_end > backing_size)
      return Status::Error(ZX_ERR_INVALID_ARGS, where() + ": outside the backing (" + std::to_string(backing_size) + " bytes)");
  }
  (void)size;
  return Status::Ok();
}

Status Pager::RegisterFile(const std::string& name, uint32_t inode, uint64_t size,
                           const std::vector<Extent>& extents, int* fd_out, bool* created) {
  // Extents must lie inside the pager's mapping of the backing, not merely inside its size now: a
  // backing that grew since CreatePager would otherwise be read past the mapping with pread, the
  // one read a client's FUSE daemon can make unkillable (Filler::ReadBacking). The seed's backing
  // VMO does not grow either.
  Status valid = ValidateExtents(size, extents, std::min(BackingSize(), backing_map_len_));
  if (!valid.ok()) return valid;
  if (size > (uint64_t{1} << 62)) return Status::Error(ZX_ERR_INVALID_ARGS, "file size too large");
  const uint64_t page = uffd::PageSize();

  std::lock_guard<std::mutex> lock(mu_);
  if (stopped_) return Status::Error(ZX_ERR_BAD_STATE, "pager is stopped");
  std::shared_ptr<PagedFile> file;
  auto found = files_.find(inode);
  *created = found == files_.end();
  if (!*created) {
    file = found->second;  // as the seed: the new size and extents are ignored
  } else {
    file = std::make_shared<PagedFile>();
    file->inode = inode;
    file->name = name;
    file->size = size;
    file->page = page;
    file->mapped_size = (size + page - 1) / page * page;
    // The pager maps the file at its first fault; one that no address space could hold is refused now.
    if (file->mapped_size > (uint64_t{1} << 47))
      return Status::Error(ZX_ERR_NO_MEMORY, "file of " + std::to_string(size) + " bytes is too large to map");
    file->extents = extents;
    std::string memfd_name = "ext4!" + name;
    memfd_name.erase(std::remove(memfd_name.begin(), memfd_name.end(), '\0'), memfd_name.end());
    if (memfd_name.size() > kMemfdNameMax) {
      size_t cut = kMemfdNameMax;
      while (cut > 0 && (static_cast<unsigned char>(memfd_name[cut]) & 0xC0) == 0x80) cut--;  // whole UTF-8 characters
      memfd_name.resize(cut);
    }
    const bool want_huge = size > 0 && (options_.huge_pages == HugePages::kAlways ||
                                        (options_.huge_pages == HugePages::kAuto && size >= options_.huge_threshold));
    if (want_huge) {
      std::string why = MakeHugeMemfd(*file, memfd_name);
      if (!why.empty()) {
        if (options_.huge_pages == HugePages::kAlways)
          return Status::Error(ZX_ERR_NO_RESOURCES, "no huge pages for " + name + " (huge pages: always): " + why);
        huge_fallbacks_++;
        Log(LogLevel::kInfo, "file " + name + " gets 4 KiB pages: " + why);
      }
    }
    if (!file->huge) {
      file->memfd = memfd_create(memfd_name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
      if (file->memfd < 0) return Status::Error(ZX_ERR_NO_RESOURCES, Errno("memfd_create", errno));
      if (ftruncate(file->memfd, static_cast<off_t>(size)) != 0)
        return Status::Error(ZX_ERR_NO_MEMORY, Errno("ftruncate(memfd)", errno));
      if (fchmod(file->memfd, 0444) != 0) return Status::Error(ZX_ERR_INTERNAL, Errno("fchmod(memfd)", errno));
    }
    if (file->mapped_size > 0 && file->fill_map == nullptr) {
      void* map = mmap(nullptr, file->mapped_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, file->memfd, 0);
      if (map == MAP_FAILED) return Status::Error(ZX_ERR_NO_MEMORY, Errno("mmap(memfd)", errno));
      file->fill_map = static_cast<uint8_t*>(map);
    }
    // No client may change what another reads: no writes (also not through a read-write reopen
    // of /proc/self/fd/N, which root could do despite mode 0444), no growing or shrinking, no
    // further seals. The pager's own mapping above stays writable for UFFDIO_COPY.
    if (fcntl(file->memfd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) != 0)
      return Status::Error(ZX_ERR_INTERNAL, Errno("F_ADD_SEALS", errno));
    struct stat st;
    if (fstat(file->memfd, &st) != 0) return Status::Error(ZX_ERR_INTERNAL, Errno("fstat(memfd)", errno));
    file->dev = st.st_dev;
    file->ino = st.st_ino;
    // The pager's mapping is registered with its uffd at the file's first fault (MapForFill):
    // most registered files are never read, and the registration is the costly part.
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", file->memfd);
    file->wd = closewatch::Watch(path, close_box_);
    if (file->wd < 0) return Status::Error(ZX_ERR_NO_RESOURCES, Errno("inotify_add_watch", -file->wd));
  }
  // A fresh description: its lock (and so the file) lives as long as any fd or mapping of it.
  int reopened;
  if (proc_fd_dir_ >= 0) {
    char name[16];
    snprintf(name, sizeof name, "%d", file->memfd);
    reopened = openat(proc_fd_dir_, name, O_RDONLY | O_CLOEXEC);
  } else {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", file->memfd);
    reopened = open(path, O_RDONLY | O_CLOEXEC);
  }
  UniqueFd handle(reopened);
  int err = handle.get() < 0 ? errno : 0;
  if (err == 0 && flock(handle.get(), LOCK_SH | LOCK_NB) != 0) err = errno;
  if (err != 0) {
    if (*created) closewatch::Unwatch(file->wd);
    return Status::Error(ZX_ERR_NO_RESOURCES, Errno("opening a handle to the memfd", err));
  }
  if (*created) {
    files_[inode] = file;
    inode_by_wd_[file->wd] = inode;
  }
  *fd_out = handle.release();
  return Status::Ok();
}

std::string Pager::MakeHugeMemfd(PagedFile& f, const std::string& memfd_name) {
  UniqueFd fd(memfd_create(memfd_name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB | MFD_HUGE_2MB));
  if (fd.get() < 0) return Errno("memfd_create(MFD_HUGETLB)", errno);
  // hugetlbfs sizes are whole huge pages; the tail past f.size reads as zeros (filled from zeros).
  const uint64_t mapped = RoundUp(f.size, kHugePage);
  if (mapped > (uint64_t{1} << 47)) return "too large";
  if (ftruncate(fd.get(), static_cast<off_t>(mapped)) != 0) return Errno("ftruncate(hugetlb memfd)", errno);
  if (fchmod(fd.get(), 0444) != 0) return Errno("fchmod(hugetlb memfd)", errno);
  // No MAP_NORESERVE: this mmap reserves all the file's huge pages from the pool now, or fails
  // (ENOMEM) when the pool has too few free; reserved pages cannot be taken by anyone else, so
  // no fault of this file can ever find the pool empty (which would be a SIGBUS).
  void* map = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (map == MAP_FAILED) {
    int err = errno;
    if (err == ENOMEM)
      return "the huge page pool has fewer than " + std::to_string(mapped / kHugePage) + " free huge pages (vm.nr_hugepages)";
    return Errno("mmap(hugetlb memfd)", err);
  }
  f.memfd = fd.release();
  f.fill_map = static_cast<uint8_t*>(map);
  f.mapped_size = mapped;
  f.page = kHugePage;
  f.huge = true;
  return "";
}

Status Pager::AttachMapping(int file_fd, int uffd_fd, uint64_t address, uint64_t length, uint64_t offset,
                            uint64_t* id_out) {
  UniqueFd owned(uffd_fd);
  const uint64_t page = uffd::PageSize();
  // file_fd is the client's: never a GETATTR to a file system it may control.
  struct statx stx;
  int stat_err = uffd::StatNoSync(file_fd, STATX_INO, &stx);
  if (stat_err != 0) return Status::Error(ZX_ERR_BAD_HANDLE, Errno("statx(file)", stat_err));
  const dev_t st_dev = makedev(stx.stx_dev_major, stx.stx_dev_minor);
  const ino_t st_ino = stx.stx_ino;
  uint64_t features = 0;
  if (!uffd::ReadFeatures(uffd_fd, &features))
    return Status::Error(ZX_ERR_WRONG_TYPE, "not an initialized userfaultfd");
  if ((features & UFFD_FEATURE_POISON) == 0)
    return Status::Error(ZX_ERR_NOT_SUPPORTED, "the uffd lacks UFFD_FEATURE_POISON: a failed read could not be reported");
  uint64_t end;
  if (length == 0 || address % page != 0 || length % page != 0 || offset % page != 0 ||
      __builtin_add_overflow(address, length, &end) || __builtin_add_overflow(offset, length, &end))
    return Status::Error(ZX_ERR_INVALID_ARGS, "mapping must be non-empty and page-aligned");
  int flags = fcntl(uffd_fd, F_GETFL);
  if (flags < 0 || fcntl(uffd_fd, F_SETFL, flags | O_NONBLOCK) != 0)
    return Status::Error(ZX_ERR_BAD_HANDLE, Errno("fcntl(uffd, O_NONBLOCK)", errno));

  std::lock_guard<std::mutex> lock(mu_);
  if (stopped_) return Status::Error(ZX_ERR_BAD_STATE, "pager is stopped");
  std::shared_ptr<PagedFile> file;
  for (auto& entry : files_) {
    if (entry.second->dev == st_dev && entry.second->ino == st_ino) file = entry.second;
  }
  if (!file) return Status::Error(ZX_ERR_NOT_FOUND, "not a file of this pager");
  if (address % file->page != 0 || length % file->page != 0 || offset % file->page != 0)
    return Status::Error(ZX_ERR_INVALID_ARGS, "a mapping of a huge-page file must be aligned to its 2 MiB pages");
  if (offset + length > file->mapped_size)
    return Status::Error(ZX_ERR_INVALID_ARGS, "mapping extends beyond the file's last page");
  auto att = std::make_shared<Attachment>();
  att->id = next_attachment_id_++;
  att->uffd = owned.release();
  att->address = address;
  att->length = length;
  att->offset = offset;
  att->file = file;
  attachments_[att->id] = att;
  struct epoll_event ev = {};
  // Edge-triggered: a new fault wakes one pager thread. Level-triggered, the thread that took
  // the event left the uffd readable until it read the message, so epoll woke the other idle
  // thread too, which found nothing (strace of a random-read run: one EAGAIN read per fault):
  // a second vCPU woken per fault on a 2-vCPU machine. ServeUffd reads until the uffd is empty
  // (a short read), so no message is left behind an edge; EPOLLERR and EPOLLHUP are always reported.
  ev.events = EPOLLIN | EPOLLET;
  ev.data.u64 = att->id;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, att->uffd, &ev) != 0) {
    int err = errno;
    attachments_.erase(att->id);
    return Status::Error(ZX_ERR_NO_RESOURCES, Errno("epoll_ctl(uffd)", err));
  }
  *id_out = att->id;
  return Status::Ok();
}

bool Pager::FailPages(int uffd, uint64_t start, uint64_t len, const std::string& what, uint64_t page) {
  if (page == 0) page = uffd::PageSize();
  int err = uffd::Poison(uffd, start, len, page);
  // ENOMEM (page tables) may pass on a later try; EAGAIN is retried inside Poison already.
  for (int attempt = 0; err == ENOMEM && attempt < 20; attempt++) {
    usleep(1000);
    err = uffd::Poison(uffd, start, len, page);
  }
  if (err == 0) return true;
  if (err == ENOENT || err == ESRCH) {
    // The range is unmapped or its address space is gone: no reader is left to wait.
    Log(LogLevel::kDebug, Errno("UFFDIO_POISON", err) + " failing " + what + " (the reader is gone)");
    return true;
  }
  Log(LogLevel::kError, Errno("UFFDIO_POISON", err) + " failing " + what + " at 0x" + std::to_string(start) +
                            ": its reader may wait until its mapping is closed");
  return false;
}

void Pager::FailMissingPages(const Attachment& att, uint64_t* map_budget, uint64_t poison_budget) {
  PagedFile& f = *att.file;
  const uint64_t end = std::min(att.FileEnd(), f.mapped_size);
  bool cut = false;
  // The filled runs are mapped for the reader (it keeps reading what the pager put in), then the
  // gaps between them poisoned (a reader gets EPIPE, never a wait or zeros). Either costs the
  // reader a page table entry per page, so a stop does a bounded amount of each: a sparse
  // 2^46-byte mapping must not become terabytes of page tables. Past the budgets, the client
  // library answers the faults itself (MarkPagerGone in this process; its watcher when the pager's
  // socket hangs up).
  f.filled.Walk(att.offset, end, [&](uint64_t s, uint64_t e, bool filled) {
    if (!filled) return true;
    uint64_t len = std::min(e - s, *map_budget);
    *map_budget -= len;
    if (len > 0) {
      int err = uffd::Continue(att.uffd, att.address + (s - att.offset), len, f.page);
      if (err != 0) Log(LogLevel::kDebug, Errno("UFFDIO_CONTINUE", err) + " mapping the filled pages of " + f.name + " at stop");
    }
    cut = cut || len < e - s;
    return len == e - s;
  });
  f.filled.Walk(att.offset, end, [&](uint64_t s, uint64_t e, bool filled) {
    if (filled) return true;
    uint64_t len = RoundDown(std::min(e - s, poison_budget), f.page);
    poison_budget -= len;
    if (len > 0 && !FailPages(att.uffd, att.address + (s - att.offset), len, "the missing pages of " + f.name + " at stop", f.page)) {
      failures_++;
    }
    cut = cut || len < e - s;
    return len == e - s;
  });
  if (cut) {
    Log(LogLevel::kDebug, "mapping " + std::to_string(att.id) + " of " + f.name +
                              ": beyond the stop budget, its faults are left to the client library");
  }
  // Faults read but never answered (a thread still inside a backing read) fault again, to whoever
  // answers them now.
  uffd::Wake(att.uffd, att.address, att.length);
}

void Pager::DetachLocked(uint64_t id) {
  auto it = attachments_.find(id);
  if (it == attachments_.end()) return;
  // Out of epoll before the fd can be closed (the client's copy keeps the description alive).
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, it->second->uffd, nullptr) != 0)
    Log(LogLevel::kError, Errno("epoll_ctl(DEL uffd)", errno));
  it->second->detached = true;
  attachments_.erase(it);  // the uffd closes when no thread uses it any more
}

void Pager::DetachMapping(uint64_t id) {
  std::shared_ptr<Attachment> att;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    auto it = attachments_.find(id);
    if (it == attachments_.end()) return;
    att = it->second;
    DetachLocked(id);
  }
  // Its client's mapping may still exist (its Mapper connection went, the mapping did not): a fault
  // there would now wait on a uffd nobody reads, for ever. A pager thread fails what is queued
  // and every page still missing in the range (the readers get SIGBUS, which the library reports
  // as an error; a mapping of this process EPIPE), not this thread: the range may be large.
  {
    std::lock_guard<std::mutex> lock(jobs_mu_);
    jobs_.push_back(FillJob{att, nullptr});
  }
  uint64_t one = 1;
  if (write(jobs_fd_, &one, sizeof one) != sizeof one) {
    Log(LogLevel::kError, Errno("write(jobs eventfd)", errno) + ": failing detached mapping " + std::to_string(id) + " here");
    {
      std::lock_guard<std::mutex> lock(jobs_mu_);
      auto it = std::find_if(jobs_.begin(), jobs_.end(), [&](const FillJob& j) { return j.att == att && !j.claim; });
      if (it == jobs_.end()) return;  // a thread took it after all
      jobs_.erase(it);
    }
    FailDetached(*att);
  }
}

void Pager::FailDetached(Attachment& att) {
  FailQueued(att);
  MarkPagerGone(att.uffd);
  uint64_t map_budget = kStopBudget;
  FailMissingPages(att, &map_budget, kStopBudget);
}

bool Pager::IsAttached(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  return !stopped_ && attachments_.count(id) != 0;
}

Stats Pager::GetStats() {
  Stats s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    s.files = files_.size();
    s.attachments = attachments_.size();
    for (auto& entry : files_) s.huge_files += entry.second->huge ? 1 : 0;
  }
  s.faults = faults_;
  s.bytes_supplied = bytes_supplied_;
  s.bytes_zeroed = bytes_zeroed_;
  s.failures = failures_;
  s.huge_fallbacks = huge_fallbacks_;
  s.foreign_pages = foreign_pages_;
  return s;
}

uint64_t Pager::ResidentBytes() {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t total = 0;
  struct stat st;
  for (auto& entry : files_) {
    if (fstat(entry.second->memfd, &st) == 0) total += static_cast<uint64_t>(st.st_blocks) * 512;
  }
  return total;
}

bool Pager::OwnsFile(dev_t dev, ino_t ino) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& entry : files_) {
    if (entry.second->dev == dev && entry.second->ino == ino) return true;
  }
  return false;
}

bool Pager::MaybeForgetLocked(std::shared_ptr<PagedFile> file,
                              std::vector<std::pair<uint32_t, std::string>>* forgotten) {
  // Every handle holds LOCK_SH on its description: LOCK_EX succeeds only when none is left.
  if (flock(file->memfd, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) Log(LogLevel::kError, Errno("flock(memfd)", errno));
    return false;
  }
  closewatch::Unwatch(file->wd);
  inode_by_wd_.erase(file->wd);
  auto it = files_.find(file->inode);
  if (it != files_.end() && it->second == file) files_.erase(it);
  // Mappings are gone, so are the uffds' reasons to exist.
  std::vector<uint64_t> stale;
  for (auto& entry : attachments_) {
    if (entry.second->file == file) stale.push_back(entry.first);
  }
  for (uint64_t id : stale) DetachLocked(id);
  recheck_.erase(file->inode);
  forgotten->emplace_back(file->inode, file->name);
  return true;
}

void Pager::ArmRecheckLocked(int delay_ms) {
  struct itimerspec when = {};
  when.it_value.tv_sec = delay_ms / 1000;
  when.it_value.tv_nsec = static_cast<long>(delay_ms % 1000) * 1000000L;
  if (timerfd_settime(recheck_timer_fd_, 0, &when, nullptr) != 0) Log(LogLevel::kError, Errno("timerfd_settime", errno));
}

void Pager::HandleRecheck() {
  uint64_t expirations;
  while (read(recheck_timer_fd_, &expirations, sizeof expirations) < 0 && errno == EINTR) {
  }
  std::vector<std::pair<uint32_t, std::string>> forgotten;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    int next_delay = 0;
    // MaybeForgetLocked erases from recheck_: walk a copy of the keys, not the map.
    std::vector<uint32_t> inodes;
    inodes.reserve(recheck_.size());
    for (auto& entry : recheck_) inodes.push_back(entry.first);
    for (uint32_t inode : inodes) {
      auto f = files_.find(inode);
      auto probe = recheck_.find(inode);
      if (f == files_.end() || MaybeForgetLocked(f->second, &forgotten) || probe == recheck_.end() ||
          --probe->second <= 0) {
        // Forgotten, gone, or still held after every probe: a holder is alive, and its own close
        // will bring a new event.
        recheck_.erase(inode);
        continue;
      }
      next_delay = std::max(next_delay, 1 << (kRecheckProbes - probe->second));
    }
    if (next_delay > 0) ArmRecheckLocked(next_delay);
  }
  for (auto& entry : forgotten) {
    Log(LogLevel::kDebug, "forgot file " + entry.second + " (inode " + std::to_string(entry.first) + ")");
    if (forgotten_) forgotten_(entry.first, entry.second);
  }
}

void Pager::HandleInotify() {
  std::lock_guard<std::mutex> reader(inotify_mu_);
  std::set<int> wds;
  bool overflow = false;
  close_box_->Take(&wds, &overflow);
  std::vector<std::pair<uint32_t, std::string>> forgotten;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    std::vector<std::shared_ptr<PagedFile>> check;
    if (overflow) {
      // Events were lost: look at every file (the lock probe does not depend on events).
      Log(LogLevel::kError, "inotify queue overflowed (IN_Q_OVERFLOW): checking every file");
      for (auto& entry : files_) check.push_back(entry.second);
    } else {
      for (int wd : wds) {
        auto it = inode_by_wd_.find(wd);
        if (it == inode_by_wd_.end()) continue;
        auto f = files_.find(it->second);
        if (f != files_.end()) check.push_back(f->second);
      }
    }
    bool recheck = false;
    for (auto& f : check) {
      if (!MaybeForgetLocked(f, &forgotten)) {
        recheck_[f->inode] = kRecheckProbes;
        recheck = true;
      }
    }
    if (recheck) ArmRecheckLocked(1);
  }
  for (auto& entry : forgotten) {
    Log(LogLevel::kDebug, "forgot file " + entry.second + " (inode " + std::to_string(entry.first) + ")");
    if (forgotten_) forgotten_(entry.first, entry.second);
  }
}

Pager::Window Pager::ReadaheadWindow(Attachment& att, uint64_t fo, uint64_t page) {
  if (options_.readahead == Readahead::kFixed) return Window{fo, fo + std::max(kFixedWindow, page)};
  std::lock_guard<std::mutex> lock(att.ra_mu);
  const bool seen = att.last_fault != UINT64_MAX;
  // Forward: on from the last fault, not far beyond where the last window ended.
  const bool forward = fo == 0 || (seen && fo > att.last_fault && fo <= att.expected + att.window);
  // Backward: below the last fault, not far below where the last window began. A large memcpy
  // walks a mapping back to front (glibc's does on x86-64 for copies of a few MiB: measured,
  // first page, then last to first), and the pager must not fall back to a page per fault then.
  const bool backward = !forward && seen && fo < att.last_fault && fo + att.window >= att.low;
  if (forward || backward) {
    // A huge file's window grows to 16 of its pages (32 MiB): the reader faults only when it
    // runs off the end of a window, and each such fault waits for one 2 MiB copy.
    att.window = std::min(std::max(kMaxWindow, 16 * page), std::max(kFixedWindow, att.window * 2));
  } else {
    att.window = kRandomWindow;
  }
  att.window = std::max(att.window, page);  // a huge file: at least its one huge page
  att.last_fault = fo;
  Window w;
  if (backward) {
    w = Window{fo + page > att.window ? fo + page - att.window : 0, fo + page};
  } else {
    w = Window{fo, fo + att.window};
  }
  w.start = RoundDown(w.start, page);
  w.end = RoundUp(w.end, page);
  att.low = w.start;
  att.expected = w.end;
  return w;
}

void Pager::ServeFault(const std::shared_ptr<Attachment>& att, uint64_t address, Filler& filler, bool count) {
  if (count) faults_++;
  PagedFile& f = *att->file;
  const uint64_t page = f.page;
  const uint64_t fault_page = RoundDown(address, page);
  const uint64_t job_size = std::max(kJob, page);
  const uint64_t behind_job = std::max(kJobChunk, page);
  if (fault_page < att->address || fault_page - att->address >= att->length) {
    failures_++;
    Log(LogLevel::kError, "fault at 0x" + std::to_string(address) + " outside the attached mapping: failing it");
    FailPages(att->uffd, fault_page, page, "a fault outside the attached mapping", page);
    return;
  }
  if (att->inconsistent) {
    failures_++;
    FailPages(att->uffd, fault_page, page, "a fault of an inconsistent mapping", page);
    return;
  }
  if (stopping_) {
    // Stop does not wait for the threads: one still serving must not start new claims or jobs
    // that no thread will ever fill. The pager is gone for this reader.
    failures_++;
    FailPages(att->uffd, fault_page, page, "a fault after stop", page);
    return;
  }
  const uint64_t fo = fault_page - att->address + att->offset;
  std::shared_ptr<Claim> mine;
  std::vector<FillJob> queued;
  bool present = false;
  {
    // Claims and the page cache are looked at under fill_mu, and a claim is released under it
    // only after its pages are in: a fault either finds its page, or joins the claim's waiters.
    std::unique_lock<std::mutex> lock(f.fill_mu);
    for (auto& c : f.claims) {
      if (fo >= c->start && fo < c->end) {
        c->waiters.emplace_back(att, fault_page);
        std::shared_ptr<Claim> waiting_on = c;
        lock.unlock();
        // A reader waits on it: if it is still a queued read-ahead job, it goes first (memcpy's
        // walk down from a window's end would otherwise wait for every job queued before it).
        std::lock_guard<std::mutex> jobs_lock(jobs_mu_);
        auto job = std::find_if(jobs_.begin(), jobs_.end(), [&](const FillJob& j) { return j.claim == waiting_on; });
        if (job != jobs_.end() && job != jobs_.begin()) {
          FillJob urgent = std::move(*job);
          jobs_.erase(job);
          jobs_.push_front(std::move(urgent));
        }
        return;
      }
    }
    // Filled by the pager already (another mapping's fault, or read-ahead): map it for this reader.
    // Being in the page cache is not enough (a holder's zero page is there too): see filled_set.h.
    present = f.filled.Contains(fo);
    std::string map_error;
    if (!present && f.fill == nullptr) map_error = MapForFillLocked(f);
    if (!map_error.empty()) {
      // Without its mapping the file cannot be filled: fail this page, never leave it waiting.
      failures_++;
      Log(LogLevel::kError, map_error + " (file " + f.name + "): failing the fault");
      int err = uffd::Poison(att->uffd, fault_page, page, page);
      if (err != 0) Log(LogLevel::kError, Errno("UFFDIO_POISON", err));
      return;
    }
    if (!present) {
      Window w = ReadaheadWindow(*att, fo, page);
      uint64_t end = std::min({w.end, att->FileEnd(), f.mapped_size});
      uint64_t start = std::max(w.start, att->offset);
      // Stop the window where pages are already present, or where another claim begins.
      if (end > fo + page) end = std::max(fo + page, f.filled.FirstFrom(fo, end));
      if (start < fo) start = f.filled.LastEndBelow(start, fo);
      for (auto& c : f.claims) {
        if (c->start > fo && c->start < end) end = c->start;
        if (c->end <= fo && c->end > start) start = c->end;
      }
      // This thread fills the fault's page and the next kJob bytes; the rest of a (sequential,
      // large) window goes to the job queue in kJob pieces, so an idle thread fills them meanwhile.
      mine = std::make_shared<Claim>(fo, std::min(end, fo + job_size));
      f.claims.push_back(mine);
      for (uint64_t s = mine->end; s < end; s += job_size) {
        auto c = std::make_shared<Claim>(s, std::min(end, s + job_size));
        f.claims.push_back(c);
        queued.push_back(FillJob{att, c});
      }
      // A window behind the fault (a reader walking backwards): jobs nearest the fault first, and
      // smaller, because a job wakes its pages front to back and the reader needs its top first.
      for (uint64_t e = fo; e > start; e -= std::min(e - start, behind_job)) {
        auto c = std::make_shared<Claim>(e - std::min(e - start, behind_job), e);
        f.claims.push_back(c);
        queued.push_back(FillJob{att, c});
      }
    }
  }
  bool refault = false;
  if (present && RefaultedTooOften(*att, fault_page, &refault)) {
    failures_++;
    Log(LogLevel::kError, "mapping " + std::to_string(att->id) + " of " + f.name + " faults again and again on pages " +
                              "that are present: it does not map the file at the offset it declared; failing its faults");
    FailPages(att->uffd, fault_page, page, "a page that keeps faulting while present", page);
    return;
  }
  if (present) {
    // A fresh fault maps the filled run around it as far as its read-ahead window reaches (a second
    // reader of a filled file takes one fault per window, not one per page); a waiter of a claim
    // (count false) only its page, without touching the stream's state.
    // A page that faulted while filled before (its CONTINUE did not map it: a mapping not at its
    // declared offset) is answered alone, and does not move the stream's window either.
    uint64_t from = fo, to = fo + page;
    if (count && !refault) {
      Window w = ReadaheadWindow(*att, fo, page);
      auto run = f.filled.RunAround(fo, std::max(w.start, att->offset), std::min({w.end, att->FileEnd(), f.mapped_size}));
      from = std::min(run.first, fo);
      to = std::max(run.second, fo + page);
    }
    if (MapForClient(*att, from, to)) {
      // Mapped: if the page comes back it was unmapped since (reclaim, MADV_DONTNEED), not a
      // mapping at the wrong offset, whose CONTINUE fails (EFAULT) and whose count goes on.
      std::lock_guard<std::mutex> lock(att->ra_mu);
      att->present_faults.erase(fault_page);
    }
    return;
  }
  if (!queued.empty()) {
    {
      std::lock_guard<std::mutex> lock(jobs_mu_);
      for (auto& job : queued) jobs_.push_back(job);
    }
    uint64_t n = queued.size();
    if (write(jobs_fd_, &n, sizeof n) != sizeof n) {
      // No thread would ever be told: take them back and fill them here (behind this fault). One
      // that another thread already took (a waiter moved it to the front, and a thread with another
      // job's token popped it) is that thread's now; the job left without a token is taken instead.
      Log(LogLevel::kError, Errno("write(jobs eventfd)", errno));
      std::lock_guard<std::mutex> lock(jobs_mu_);
      size_t taken_by_others = 0;
      for (auto& job : queued) {
        auto it = std::find_if(jobs_.begin(), jobs_.end(), [&](const FillJob& j) { return j.claim == job.claim; });
        if (it != jobs_.end()) {
          jobs_.erase(it);
        } else {
          job.claim = nullptr;
          taken_by_others++;
        }
      }
      queued.erase(std::remove_if(queued.begin(), queued.end(), [](const FillJob& j) { return j.claim == nullptr; }), queued.end());
      for (; taken_by_others > 0 && !jobs_.empty(); taken_by_others--) {
        queued.push_back(std::move(jobs_.front()));
        jobs_.pop_front();
      }
    } else {
      queued.clear();
    }
  }
  filler.Fill(*att, f, fo, mine->end, kFirstChunk, kChunk, /*poison_first=*/true);
  ReleaseClaim(f, mine, filler);
  for (auto& job : queued) {
    PagedFile& jf = *job.att->file;  // a job taken over from the queue may be another file's
    if (!job.att->detached) filler.Fill(*job.att, jf, job.claim->start, job.claim->end, kJobChunk, kJobChunk, false);
    ReleaseClaim(jf, job.claim, filler);
  }
}

bool Pager::RefaultedTooOften(Attachment& att, uint64_t fault_page, bool* refault) {
  std::lock_guard<std::mutex> lock(att.ra_mu);
  if (att.present_faults.size() >= kPresentFaultsTracked && att.present_faults.count(fault_page) == 0) att.present_faults.clear();
  uint32_t n = ++att.present_faults[fault_page];
  *refault = n > 1;
  if (n <= kMaxPresentRefaults) return false;
  att.inconsistent = true;
  return true;
}

std::string Pager::MapForFillLocked(PagedFile& f) {
  if (f.fill_map == nullptr) return "the file has no pager mapping";
  int err = uffd::RegisterMissing(fill_uffd_, reinterpret_cast<uint64_t>(f.fill_map), f.mapped_size);
  if (err != 0) return Errno("UFFDIO_REGISTER(pager mapping)", err);
  f.fill = f.fill_map;
  return "";
}

void Pager::ReleaseClaim(PagedFile& f, const std::shared_ptr<Claim>& claim, Filler& filler) {
  std::vector<std::pair<std::shared_ptr<Attachment>, uint64_t>> waiters;
  {
    std::lock_guard<std::mutex> lock(f.fill_mu);
    f.claims.erase(std::find(f.claims.begin(), f.claims.end(), claim));
    waiters.swap(claim->waiters);
  }
  // Usually their pages are in (and were woken chunk by chunk if they are claim's attachment's):
  // this wakes them. A page the fill did not reach is served as a fault of its own.
  for (auto& w : waiters) ServeFault(w.first, w.second, filler, /*count=*/false);
}

void Pager::RunJob(Filler& filler) {
  uint64_t token;
  if (read(jobs_fd_, &token, sizeof token) != sizeof token) return;  // another thread took it
  FillJob job;
  {
    std::lock_guard<std::mutex> lock(jobs_mu_);
    if (jobs_.empty()) return;
    job = std::move(jobs_.front());
    jobs_.pop_front();
  }
  if (!job.claim) {  // a mapping detached while it may still be mapped (DetachMapping)
    FailDetached(*job.att);
    return;
  }
  PagedFile& f = *job.att->file;
  if (!job.att->detached) filler.Fill(*job.att, f, job.claim->start, job.claim->end, kJobChunk, kJobChunk, false);
  ReleaseClaim(f, job.claim, filler);
}

void Pager::ServeUffd(const std::shared_ptr<Attachment>& att, uint32_t events, Filler& filler) {
  if (events & (EPOLLERR | EPOLLHUP)) {
    // An initialized uffd polls as EPOLLERR only when its description is not O_NONBLOCK: the
    // client cleared the flag on the description it shares with the pager (it may have set it
    // again since). Reads here never depend on the flag (ReadNoWait), but epoll would report the
    // error at every wait: set the flag again, a bounded number of times, and go on serving.
    uint32_t resets = ++att->nonblock_resets;
    int flags = fcntl(att->uffd, F_GETFL);
    bool ok = (events & EPOLLHUP) == 0 && resets <= kMaxNonblockResets && flags >= 0 &&
              ((flags & O_NONBLOCK) != 0 || fcntl(att->uffd, F_SETFL, flags | O_NONBLOCK) == 0);
    if (!ok) {
      Log(LogLevel::kWarn, "uffd of mapping " + std::to_string(att->id) +
                               (resets > kMaxNonblockResets ? " had O_NONBLOCK cleared by its client too often" : " reports an error or hang-up") +
                               ": failing its queued faults and detaching it");
      {
        std::lock_guard<std::mutex> lock(mu_);
        DetachLocked(att->id);
      }
      FailDetached(*att);
      return;
    }
    if (resets == 1) {
      Log(LogLevel::kWarn, "the client of mapping " + std::to_string(att->id) + " cleared O_NONBLOCK on its uffd: set again");
    }
  }
  struct uffd_msg msgs[16];
  for (;;) {
    ssize_t n = uffd::ReadNoWait(att->uffd, msgs, sizeof msgs);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return;
      Log(LogLevel::kError, Errno("read(uffd)", errno) + ": detaching mapping " + std::to_string(att->id));
      {
        std::lock_guard<std::mutex> lock(mu_);
        DetachLocked(att->id);
      }
      FailDetached(*att);
      return;
    }
    size_t count = static_cast<size_t>(n) / sizeof(struct uffd_msg);
    for (size_t i = 0; i < count; i++) {
      if (msgs[i].event == UFFD_EVENT_PAGEFAULT) {
        ServeFault(att, msgs[i].arg.pagefault.address, filler);
      } else {
        HandleUffdEvent(*att, msgs[i]);
      }
    }
    if (count < 16) return;
  }
}

void Pager::ThreadMain(int index) {
  trace::Ring* ring = TraceRing(static_cast<size_t>(index));
  if (ring != nullptr) ring->tid = static_cast<int>(gettid());
  Filler filler(this, ring);
  if (!filler.ok()) {
    Log(LogLevel::kError, "pager-" + std::to_string(index) + ": no transfer buffer; thread not serving");
    return;
  }
  struct epoll_event events[16];
  for (;;) {
    int n = epoll_wait(epoll_fd_, events, 16, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      Log(LogLevel::kError, Errno("epoll_wait", errno) + ": pager thread exits");
      return;
    }
    for (int i = 0; i < n; i++) {
      uint64_t tag = events[i].data.u64;
      if (tag == kStopTag) {
        // A fault this thread served while Stop ran may have queued read-ahead after Stop took
        // the queue: fail those too, before the last reference to the pager can go.
        FailQueuedJobs();
        return;
      }
      if (tag == kInotifyTag) {
        HandleInotify();
        continue;
      }
      if (tag == kRecheckTag) {
        HandleRecheck();
        continue;
      }
      if (tag == kJobTag) {
        RunJob(filler);
        continue;
      }
      std::shared_ptr<Attachment> att;
      {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = attachments_.find(tag);
        if (it != attachments_.end()) att = it->second;
      }
      if (att) ServeUffd(att, events[i].events, filler);
    }
  }
}

void Pager::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    stopped_ = true;
    stopping_ = true;
  }
  // Tell the threads, and do not wait for them: a thread may be in a read of a backing that never
  // answers. Each holds the pager, which lives until the last one leaves.
  if (stop_fd_ >= 0) {
    uint64_t one = 1;
    if (write(stop_fd_, &one, sizeof one) != sizeof one) Log(LogLevel::kError, Errno("write(stop eventfd)", errno));
  }
  FailQueuedJobs();
  std::map<uint64_t, std::shared_ptr<Attachment>> attachments;
  std::unordered_map<uint32_t, std::shared_ptr<PagedFile>> files;
  {
    std::lock_guard<std::mutex> lock(mu_);
    attachments.swap(attachments_);
    files.swap(files_);
    inode_by_wd_.clear();
  }
  // The inotify instance is the process's: its watches of these files go now (a watch pins its
  // memfd's inode).
  for (auto& entry : files) closewatch::Unwatch(entry.second->wd);
  // Faults still queued will never be served: fail them rather than leave readers waiting.
  uint64_t map_budget = kStopBudget;
  const uint64_t poison_share = kStopBudget / std::max<size_t>(1, attachments.size());
  for (auto& entry : attachments) {
    FailQueued(*entry.second);
    if (epoll_fd_ >= 0) epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, entry.second->uffd, nullptr);
    // A mapping of this process on that uffd reports EPIPE from now on, as a watched one does
    // when its pager's socket hangs up; then nothing is left for a later fault to wait on.
    MarkPagerGone(entry.second->uffd);
    FailMissingPages(*entry.second, &map_budget, poison_share);
  }
  // The uffds close, and the memfds close and unmap, as soon as no thread still uses them (a
  // thread filling a file holds its attachment and file). The pager's own fds close in ~Pager.
  attachments.clear();
  files.clear();
}

void Pager::FailQueuedJobs() {
  // Read-ahead never filled: faults that waited on it will not be served either. Fail them.
  std::deque<FillJob> jobs;
  {
    std::lock_guard<std::mutex> lock(jobs_mu_);
    jobs.swap(jobs_);
  }
  for (auto& job : jobs) {
    if (!job.claim) {  // a detached mapping not failed yet
      FailDetached(*job.att);
      continue;
    }
    // Out of its file's list first, under fill_mu, so that no thread still serving a fault can
    // join it as a waiter afterwards: a waiter holds its attachment, which holds the file, which
    // holds the claim, and the memfd, pager mapping and uffds would never be freed.
    std::vector<std::pair<std::shared_ptr<Attachment>, uint64_t>> waiters;
    {
      PagedFile& f = *job.att->file;
      std::lock_guard<std::mutex> lock(f.fill_mu);
      f.claims.erase(std::remove(f.claims.begin(), f.claims.end(), job.claim), f.claims.end());
      waiters.swap(job.claim->waiters);
    }
    for (auto& w : waiters) {
      failures_++;
      const uint64_t wpage = w.first->file->page;
      FailPages(w.first->uffd, RoundDown(w.second, wpage), wpage, "a fault waiting on read-ahead at stop", wpage);
    }
  }
}

void Pager::FailQueued(Attachment& att) {
  const uint64_t page = att.file->page;  // 2 MiB for a huge file: poison covers whole huge pages
  struct uffd_msg msgs[16];
  ssize_t n;
  // Bounded: a client whose threads keep faulting (and catch SIGBUS) must not keep Stop, which runs
  // on the JavaScript thread, reading for ever. What is left is failed as the uffd closes.
  for (int reads = 0; reads < 64 && (n = uffd::ReadNoWait(att.uffd, msgs, sizeof msgs)) > 0; reads++) {
    for (size_t i = 0; i < static_cast<size_t>(n) / sizeof(struct uffd_msg); i++) {
      if (msgs[i].event != UFFD_EVENT_PAGEFAULT) {
        HandleUffdEvent(att, msgs[i]);
        continue;
      }
      failures_++;
      FailPages(att.uffd, RoundDown(msgs[i].arg.pagefault.address, page), page, "a fault of a mapping no longer served", page);
    }
  }
}

void Pager::HandleUffdEvent(Attachment& att, const struct uffd_msg& msg) {
  switch (msg.event) {
    case UFFD_EVENT_FORK:
      // The client's uffd has UFFD_FEATURE_EVENT_FORK and forked: the kernel put a uffd for the
      // child's copy of the mapping into this process's fd table. The pager serves the mappings it
      // was given, not a client's children: close it (the child's registration ends with it).
      close(static_cast<int>(msg.arg.fork.ufd));
      Log(LogLevel::kDebug, "mapping " + std::to_string(att.id) + ": the client forked; its child's uffd is closed");
      break;
    case UFFD_EVENT_REMAP: {
      // mremap moved the mapping (the kernel waits for this event to be read before it returns).
      // The whole mapping moved: follow it. A part moved: faults there fall outside the mapping
      // and are failed, never served from the wrong offset.
      uint64_t from = msg.arg.remap.from, to = msg.arg.remap.to, len = msg.arg.remap.len;
      if (from == att.address.load() && len >= att.length) {
        att.address = to;
        Log(LogLevel::kDebug, "mapping " + std::to_string(att.id) + " moved by mremap");
      } else {
        Log(LogLevel::kWarn, "mapping " + std::to_string(att.id) + ": part of it was moved by mremap; faults there will fail");
      }
      break;
    }
    case UFFD_EVENT_REMOVE:
    case UFFD_EVENT_UNMAP:
      // Pages dropped or unmapped by the client: nothing to do; a later fault is served as any.
      break;
    default:
      Log(LogLevel::kDebug, "ignoring uffd event " + std::to_string(msg.event));
  }
}

}  // namespace pager
}  // namespace starnix
