// Placeholder until this part lands; replaced by its owner.
#include "exports.h"
namespace starnix {
void InitMemfd(Napi::Env, Napi::Object) {}
}  // namespace starnix
