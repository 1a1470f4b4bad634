// fd-based, in-root filesystem operations for layer extraction (placeholder until written).
#include "binding.h"
void InitFsInRoot(Napi::Env env, Napi::Object exports) {}
