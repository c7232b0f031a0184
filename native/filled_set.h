// Which pages of a file the pager itself filled with the right bytes (issue 12: "no holder can make
// another reader see zeros"). Being in the memfd's page cache proves nothing: any holder of a
// handle can map it without a uffd and touch a page, and the kernel then puts a page of zeros there
// (root can fallocate them too). So the pager trusts only this record: a page not in it is filled
// (or its foreign zero page overwritten) before any reader is given it.
//
// Files can be declared 2^46 bytes and be read sparsely, so the record is a set of disjoint,
// non-adjacent byte ranges [start, end) (adjacent ones merge): its memory grows with the number of
// separately filled runs, never with the declared size. Thread-safe; every call is O(log runs).
#pragma once

#include <stdint.h>

#include <algorithm>
#include <map>
#include <mutex>

namespace starnix {
namespace pager {

class FilledSet {
 public:
  // Records [start, end) as filled.
  void Add(uint64_t start, uint64_t end) {
    if (start >= end) return;
    std::lock_guard<std::mutex> lock(mu_);
    // Merge with a run that ends at or after start and begins at or before end.
    auto it = runs_.upper_bound(start);
    if (it != runs_.begin()) {
      auto prev = std::prev(it);
      if (prev->second >= start) {
        start = prev->first;
        end = std::max(end, prev->second);
        it = runs_.erase(prev);
      }
    }
    while (it != runs_.end() && it->first <= end) {
      end = std::max(end, it->second);
      it = runs_.erase(it);
    }
    runs_.emplace(start, end);
  }

  bool Contains(uint64_t at) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = Containing(at);
    return it != runs_.end();
  }

  // The run holding `at`, clipped to [lo, hi): {start, end}, or {at, at} when at is not filled.
  std::pair<uint64_t, uint64_t> RunAround(uint64_t at, uint64_t lo, uint64_t hi) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = Containing(at);
    if (it == runs_.end()) return {at, at};
    return {std::max(lo, it->first), std::min(hi, it->second)};
  }

  // The first filled byte in [from, to), or to.
  uint64_t FirstFrom(uint64_t from, uint64_t to) const {
    if (from >= to) return to;
    std::lock_guard<std::mutex> lock(mu_);
    auto it = Containing(from);
    if (it != runs_.end()) return from;
    it = runs_.upper_bound(from);
    if (it == runs_.end() || it->first >= to) return to;
    return it->first;
  }

  // The end of the last filled run below `to` that reaches past `from`, or from if none does.
  uint64_t LastEndBelow(uint64_t from, uint64_t to) const {
    if (from >= to) return from;
    std::lock_guard<std::mutex> lock(mu_);
    auto it = runs_.lower_bound(to);  // first run starting at or after to
    if (it == runs_.begin()) return from;
    --it;  // starts below to
    uint64_t end = std::min(it->second, to);
    return end > from ? end : from;
  }

  // Runs kept (for tests and logs).
  size_t Runs() const {
    std::lock_guard<std::mutex> lock(mu_);
    return runs_.size();
  }

  // Calls fn(start, end, filled) for consecutive pieces of [from, to): the filled runs and the
  // gaps between them, in order. Runs are copied first: fn may take as long as it likes.
  template <typename Fn>
  void Walk(uint64_t from, uint64_t to, Fn fn) const {
    std::map<uint64_t, uint64_t> copy;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = runs_.upper_bound(from);
      if (it != runs_.begin()) --it;
      for (; it != runs_.end() && it->first < to; ++it) copy.emplace(it->first, it->second);
    }
    uint64_t pos = from;
    for (auto& run : copy) {
      if (run.second <= pos) continue;
      if (run.first > pos) {
        if (!fn(pos, std::min(run.first, to), false)) return;
        pos = std::min(run.first, to);
      }
      if (pos >= to) return;
      uint64_t end = std::min(run.second, to);
      if (!fn(pos, end, true)) return;
      pos = end;
    }
    if (pos < to) fn(pos, to, false);
  }

 private:
  std::map<uint64_t, uint64_t>::const_iterator Containing(uint64_t at) const {
    auto it = runs_.upper_bound(at);
    if (it == runs_.begin()) return runs_.end();
    --it;
    return at < it->second ? it : runs_.end();
  }

  mutable std::mutex mu_;
  std::map<uint64_t, uint64_t> runs_;  // start -> end, disjoint and not adjacent
};

}  // namespace pager
}  // namespace starnix
