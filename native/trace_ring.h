// Per-thread trace buffers for the pager threads (`--trace FILE`).
//
// The fault path must not call into JavaScript, so each pager thread appends a fixed-size record
// of every window it fills (Perfetto's `vmo_read`) to a ring of its own, with timestamps it takes
// itself from CLOCK_BOOTTIME (Perfetto's default trace clock; the trace declares it). The
// JavaScript thread drains the rings now and then and writes the trace from them. One producer
// (the thread) and one consumer (the drain) per ring: no lock, two atomics. A full ring drops the
// record and counts it, it never blocks a fault. Without --trace a pager has no rings and the
// fault path pays one null test per window.
#pragma once

#include <stdint.h>
#include <time.h>

#include <atomic>
#include <vector>

namespace starnix {
namespace trace {

// CLOCK_BOOTTIME in nanoseconds.
inline uint64_t NowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// VmoRead::flags
constexpr uint32_t kFaultWindow = 1;  // the window of a fault whose reader waits on it (not a read-ahead job)
constexpr uint32_t kFailed = 2;       // the window stopped at a page that could not be read
constexpr uint32_t kPoisoned = 4;     // ... and that page was the fault's own: failed with EIO

// One window filled by a pager thread. Laid out as JS reads it (native/pager.cc packs it as is).
struct VmoRead {
  uint64_t begin_ns = 0;
  uint64_t end_ns = 0;
  uint64_t attachment = 0;  // the client mapping (AttachMapping's id): JS knows its client
  uint64_t offset = 0;      // window start in the file
  uint64_t length = 0;      // window length asked for
  uint64_t bytes_copied = 0;  // supplied from the backing
  uint64_t bytes_zeroed = 0;  // holes and the tail past the file's end
  uint32_t inode = 0;
  uint32_t flags = 0;
};
static_assert(sizeof(VmoRead) == 64, "VmoRead is read from JS as 64-byte records");

class Ring {
 public:
  explicit Ring(size_t capacity) : slots_(capacity) {}

  // Producer side (one pager thread).
  void Push(const VmoRead& e) {
    uint64_t head = head_.load(std::memory_order_relaxed);
    if (head - tail_.load(std::memory_order_acquire) >= slots_.size()) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    slots_[head % slots_.size()] = e;
    head_.store(head + 1, std::memory_order_release);
  }

  // Consumer side (the JS thread): appends what is there to *out.
  void Drain(std::vector<VmoRead>* out) {
    uint64_t tail = tail_.load(std::memory_order_relaxed);
    uint64_t head = head_.load(std::memory_order_acquire);
    for (; tail < head; tail++) out->push_back(slots_[tail % slots_.size()]);
    tail_.store(tail, std::memory_order_release);
  }

  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

  std::atomic<int> tid{0};  // the thread's Linux tid, set when it starts

 private:
  std::vector<VmoRead> slots_;
  std::atomic<uint64_t> head_{0}, tail_{0}, dropped_{0};
};

// Times one window and pushes it to the ring when it goes out of scope (every return path).
class VmoReadScope {
 public:
  VmoReadScope(Ring* ring, uint64_t attachment, uint32_t inode, uint64_t offset, uint64_t length, bool fault_window)
      : ring_(ring) {
    if (ring_ == nullptr) return;
    ev.begin_ns = NowNs();
    ev.attachment = attachment;
    ev.inode = inode;
    ev.offset = offset;
    ev.length = length;
    ev.flags = fault_window ? kFaultWindow : 0;
  }
  ~VmoReadScope() {
    if (ring_ == nullptr) return;
    ev.end_ns = NowNs();
    ring_->Push(ev);
  }
  VmoReadScope(const VmoReadScope&) = delete;
  VmoReadScope& operator=(const VmoReadScope&) = delete;

  VmoRead ev;

 private:
  Ring* ring_;
};

}  // namespace trace
}  // namespace starnix
