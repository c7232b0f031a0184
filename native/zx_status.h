// zx.Status values on the wire (fidl/zx.fidl; spec/protocol.md), for every native part.
// In namespace starnix, so the parts' own namespaces (starnix::pager, starnix::transport) see them.
#pragma once

namespace starnix {

constexpr int ZX_OK = 0;
constexpr int ZX_ERR_INTERNAL = -1;
constexpr int ZX_ERR_NOT_SUPPORTED = -2;
constexpr int ZX_ERR_NO_RESOURCES = -3;
constexpr int ZX_ERR_NO_MEMORY = -4;
constexpr int ZX_ERR_INVALID_ARGS = -10;
constexpr int ZX_ERR_BAD_HANDLE = -11;
constexpr int ZX_ERR_WRONG_TYPE = -12;
constexpr int ZX_ERR_OUT_OF_RANGE = -14;
constexpr int ZX_ERR_BAD_STATE = -20;
constexpr int ZX_ERR_PEER_CLOSED = -24;
constexpr int ZX_ERR_NOT_FOUND = -25;
constexpr int ZX_ERR_ACCESS_DENIED = -30;
constexpr int ZX_ERR_IO = -40;

}  // namespace starnix
