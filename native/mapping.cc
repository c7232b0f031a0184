// Placeholder until this part lands; replaced by its owner.
#include "exports.h"
namespace starnix {
void InitMapping(Napi::Env, Napi::Object) {}
}  // namespace starnix
