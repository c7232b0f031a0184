// Placeholder until this part lands; replaced by its owner.
#include "exports.h"
namespace starnix {
void InitHandleInfo(Napi::Env, Napi::Object) {}
}  // namespace starnix
