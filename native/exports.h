// Each part of the addon registers its functions on the module's exports.
// One module, several files: every file owns one job and one Init function.
#pragma once
#include <napi.h>

namespace starnix {

// channel.cc: socketpair, sendmsg/recvmsg with SCM_RIGHTS, readiness through libuv.
void InitChannel(Napi::Env env, Napi::Object exports);
// handle_info.cc: what kind of object an fd is, and whether it is readable/writable.
void InitHandleInfo(Napi::Env env, Napi::Object exports);
// server_resources.cc: fd limits, kcmp, unix socket peers (sock_diag), the stop watchdog.
void InitServerResources(Napi::Env env, Napi::Object exports);
// memfd.cc: memfd_create, seals, close.
void InitMemfd(Napi::Env env, Napi::Object exports);
// pager.cc: the server side, userfaultfd pager threads serving page faults.
void InitPager(Napi::Env env, Napi::Object exports);
// mapping.cc: the client side, mapping a file and registering its uffd.
void InitMapping(Napi::Env env, Napi::Object exports);
// fd_watch.cc: readiness of any fd; datagram socket pairs (EVENTPAIR) and eventfds (EVENT, COUNTER).
void InitFdWatch(Napi::Env env, Napi::Object exports);

}  // namespace starnix
