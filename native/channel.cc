// Placeholder until this part lands; replaced by its owner.
#include "exports.h"
namespace starnix {
void InitChannel(Napi::Env, Napi::Object) {}
}  // namespace starnix
