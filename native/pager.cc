// Placeholder until this part lands; replaced by its owner.
#include "exports.h"
namespace starnix {
void InitPager(Napi::Env, Napi::Object) {}
}  // namespace starnix
