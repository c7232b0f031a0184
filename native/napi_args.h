// Argument readers shared by the addon's JS-facing classes (pager.cc, mapping.cc): numbers
// from JavaScript checked for range and exactness, never silently truncated.
#pragma once
#include <napi.h>

#include <stdint.h>

namespace starnix {

// A u64 from a BigInt or a non-negative safe-integer Number.
inline bool U64Arg(Napi::Value v, uint64_t* out) {
  if (v.IsBigInt()) {
    bool lossless = false;
    *out = v.As<Napi::BigInt>().Uint64Value(&lossless);
    return lossless;
  }
  if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= 0) || d > 9007199254740991.0 || d != static_cast<double>(static_cast<uint64_t>(d))) return false;
    *out = static_cast<uint64_t>(d);
    return true;
  }
  return false;
}

// A whole Number in [0, INT_MAX] (an fd, a pid, a socket type): never wrapped as Int32Value()
// wraps 2**32 + n to n.
inline bool NonNegativeIntArg(Napi::Value v, int* out) {
  if (!v.IsNumber()) return false;
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d > 2147483647.0 || d != static_cast<double>(static_cast<int>(d))) return false;
  *out = static_cast<int>(d);
  return true;
}

// A file descriptor: a whole Number in [0, INT_MAX].
inline bool FdArg(Napi::Value v, int* fd) { return NonNegativeIntArg(v, fd); }

}  // namespace starnix
