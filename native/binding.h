// Each native module registers its exports here; binding.cc calls them all.
#pragma once
#include <napi.h>

void InitSpawn(Napi::Env env, Napi::Object exports);     // spawn.cc: fork/clone3 + sync socket
void InitSys(Napi::Env env, Napi::Object exports);       // sys.cc: flock, pidfd, waitpid, console, misc
void InitSeccomp(Napi::Env env, Napi::Object exports);   // seccomp.cc: libseccomp -> BPF bytes
void InitFsInRoot(Napi::Env env, Napi::Object exports);  // fs_inroot.cc: openat2-based writes in a root
void InitNetns(Napi::Env env, Napi::Object exports);     // netns.cc: named network namespaces

// Throws a JS Error shaped like Node's SystemError: {code:'EPERM', errno, syscall, path}.
Napi::Error SystemError(Napi::Env env, int err, const char* syscall, const char* path = nullptr);
