// One way to make a libuv poll handle for an fd on the addon's event loop, shared by the
// channel, the service acceptor and the fd watcher.
#pragma once
#include <napi.h>
#include <uv.h>

namespace starnix {

// Allocates and initializes a uv_poll_t watching fd on env's loop, with data = owner. Returns 0
// and the handle in *out, or a libuv error (UV_EINVAL when env has no loop) and *out = nullptr.
// The handle is freed by uv_close's callback, as every poll handle of the addon is.
inline int NewPoll(napi_env env, int fd, void* owner, uv_poll_t** out) {
  *out = nullptr;
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) return UV_EINVAL;
  uv_poll_t* poll = new uv_poll_t;
  int err = uv_poll_init(loop, poll, fd);
  if (err != 0) {
    delete poll;
    return err;
  }
  poll->data = owner;
  *out = poll;
  return 0;
}

}  // namespace starnix
