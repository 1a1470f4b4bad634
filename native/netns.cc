// A named network namespace: a file under tsrun's run root with the namespace bind-mounted on
// it, so CNI plugins can enter it by path and it outlives the processes in it (`ip netns add`
// does the same). The namespace is made by a cloned child, never by the Node process (the
// fork boundary: nothing here changes the caller's namespaces); the child makes only raw
// syscalls (mount, _exit) before it exits, which is safe after a clone of a threaded process.
#include "binding.h"
#include <cerrno>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

// newNetns(path): path must not exist; on failure it is removed again.
static Napi::Value JsNewNetns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "path must be a string");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int fd = open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0444);
  if (fd < 0) throw SystemError(env, errno, "open", path.c_str());
  close(fd);
  // clone(CLONE_NEWNET) puts the child straight into a new namespace: no unshare step.
  long pid = syscall(SYS_clone, (unsigned long)(CLONE_NEWNET | SIGCHLD), nullptr, nullptr, nullptr, nullptr);
  if (pid == 0) {
    if (mount("/proc/self/ns/net", path.c_str(), nullptr, MS_BIND, nullptr) < 0) _exit(errno & 0xff);
    _exit(0);
  }
  if (pid < 0) {
    int err = errno;
    unlink(path.c_str());
    throw SystemError(env, err, "clone(CLONE_NEWNET)", path.c_str());
  }
  int status = 0;
  while (waitpid((pid_t)pid, &status, 0) < 0 && errno == EINTR) {
  }
  int err = WIFEXITED(status) ? WEXITSTATUS(status) : EINTR;
  if (err != 0) {
    unlink(path.c_str());
    throw SystemError(env, err, "mount(/proc/self/ns/net, MS_BIND)", path.c_str());
  }
  return env.Undefined();
}

void InitNetns(Napi::Env env, Napi::Object exports) {
  exports.Set("newNetns", Napi::Function::New(env, JsNewNetns, "newNetns"));
}
