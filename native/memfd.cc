// memfd: the Linux stand-in for a VMO. Created close-on-exec, optionally sealable.
//
// memfdCreate(name, size (number | BigInt), allowSealing): fd   memfd_create + ftruncate
// addSeals(fd, seals)                                           fcntl(F_ADD_SEALS)
// getSeals(fd): number                                          fcntl(F_GET_SEALS)
#include "exports.h"
#include "transport_common.h"

#include <sys/mman.h>
#include <unistd.h>

#include <string>

namespace starnix {
namespace {

using transport::FdArg;
using transport::ThrowErrno;
using transport::ThrowType;

// Reads a non-negative size from a number or a BigInt; false (and a JS error) otherwise.
bool SizeArg(const Napi::CallbackInfo& info, size_t index, uint64_t* size) {
  Napi::Env env = info.Env();
  if (info.Length() <= index || info[index].IsUndefined()) {
    *size = 0;
    return true;
  }
  if (info[index].IsBigInt()) {
    bool lossless = false;
    *size = info[index].As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless || *size > static_cast<uint64_t>(INT64_MAX)) {
      ThrowType(env, "size out of range");
      return false;
    }
    return true;
  }
  if (info[index].IsNumber()) {
    double d = info[index].As<Napi::Number>().DoubleValue();
    if (!(d >= 0) || d > 9007199254740991.0 || d != static_cast<double>(static_cast<uint64_t>(d))) {
      ThrowType(env, "size must be a non-negative integer");
      return false;
    }
    *size = static_cast<uint64_t>(d);
    return true;
  }
  ThrowType(env, "size must be a number or a bigint");
  return false;
}

Napi::Value MemfdCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    ThrowType(env, "memfdCreate(name: string, size?, allowSealing?)");
    return env.Undefined();
  }
  std::string name = info[0].As<Napi::String>().Utf8Value();
  uint64_t size = 0;
  if (!SizeArg(info, 1, &size)) return env.Undefined();
  bool allow_sealing = info.Length() > 2 && info[2].ToBoolean().Value();
  unsigned flags = MFD_CLOEXEC | (allow_sealing ? MFD_ALLOW_SEALING : 0);
  int fd = memfd_create(name.c_str(), flags);
  if (fd < 0) {
    // EINVAL here is most often a name over 249 bytes.
    ThrowErrno(env, "memfd_create", errno, name);
    return env.Undefined();
  }
  if (size > 0 && ftruncate(fd, static_cast<off_t>(size)) < 0) {
    int err = errno;
    close(fd);
    ThrowErrno(env, "ftruncate", err, name + ", " + std::to_string(size) + " bytes");
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

Napi::Value AddSeals(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0);
  if (fd < 0) return env.Undefined();
  uint64_t seals_arg;
  // Checked, not Int32Value(): that would wrap 2**32 + s to s.
  if (info.Length() < 2 || !U64Arg(info[1], &seals_arg) || seals_arg > INT32_MAX) {
    ThrowType(env, "addSeals(fd, seals: number)");
    return env.Undefined();
  }
  int seals = static_cast<int>(seals_arg);
  if (fcntl(fd, F_ADD_SEALS, seals) < 0) {
    ThrowErrno(env, "fcntl", errno, "F_ADD_SEALS " + std::to_string(seals) + ", fd " + std::to_string(fd));
    return env.Undefined();
  }
  return env.Undefined();
}

Napi::Value GetSeals(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0);
  if (fd < 0) return env.Undefined();
  int seals = fcntl(fd, F_GET_SEALS);
  if (seals < 0) {
    ThrowErrno(env, "fcntl", errno, "F_GET_SEALS, fd " + std::to_string(fd));
    return env.Undefined();
  }
  return Napi::Number::New(env, seals);
}

}  // namespace

void InitMemfd(Napi::Env env, Napi::Object exports) {
  exports.Set("memfdCreate", Napi::Function::New(env, MemfdCreate, "memfdCreate"));
  exports.Set("addSeals", Napi::Function::New(env, AddSeals, "addSeals"));
  exports.Set("getSeals", Napi::Function::New(env, GetSeals, "getSeals"));
}

}  // namespace starnix
