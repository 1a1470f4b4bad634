// N-API registration only; each module lives in its own file (see binding.h).
#include "binding.h"
#include <cerrno>
#include <cstring>

Napi::Error SystemError(Napi::Env env, int err, const char* syscall, const char* path) {
  const char* name = strerrorname_np(err);
  if (!name) name = "EUNKNOWN";
  std::string msg = std::string(syscall) + ": " + name + " (" + strerror(err) + ")";
  if (path) msg += std::string(" `") + path + "`";
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, name));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall));
  if (path) e.Set("path", Napi::String::New(env, path));
  return e;
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InitSpawn(env, exports);
  InitSys(env, exports);
  InitSeccomp(env, exports);
  InitFsInRoot(env, exports);
  InitNetns(env, exports);
  return exports;
}

NODE_API_MODULE(tsrun, Init)
