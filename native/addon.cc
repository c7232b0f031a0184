// The module's entry point: gathers the functions of every part of the addon.
#include "exports.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  starnix::InitChannel(env, exports);
  starnix::InitHandleInfo(env, exports);
  starnix::InitMemfd(env, exports);
  starnix::InitServerResources(env, exports);
  starnix::InitPager(env, exports);
  starnix::InitMapping(env, exports);
  starnix::InitFdWatch(env, exports);
  return exports;
}

NODE_API_MODULE(starnix_native, Init)
