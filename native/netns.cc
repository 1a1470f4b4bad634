// A named network namespace: a file under tsrun's run root with the namespace bind-mounted on
// it, so CNI plugins can enter it by path and it outlives the processes in it (`ip netns add`
// does the same). Its loopback is brought up, as docker and podman do (CNI's loopback plugin's
// one job), so a container can always reach 127.0.0.1. The namespace is made by a cloned child, never by the Node process (the
// fork boundary: nothing here changes the caller's namespaces); the child makes only raw
// syscalls (mount, _exit) before it exits, which is safe after a clone of a threaded process.
#include "binding.h"
#include <cerrno>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <cstring>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
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
  // The child's exit status says what failed: the step in bit 7, the errno in the low bits.
  if (pid == 0) {
    if (mount("/proc/self/ns/net", path.c_str(), nullptr, MS_BIND, nullptr) < 0) _exit(errno & 0x7f);
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    memcpy(ifr.ifr_name, "lo", 3);
    if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0) _exit(0x80 | (errno & 0x7f));
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) _exit(0x80 | (errno & 0x7f));
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
  // Killed before it said (a signal): it may have mounted; undo both steps.
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : (0x80 | EINTR);
  if (code != 0) {
    if (code & 0x80) umount2(path.c_str(), MNT_DETACH);
    unlink(path.c_str());
    throw SystemError(env, code & 0x7f, code & 0x80 ? "ioctl(SIOCSIFFLAGS lo up)" : "mount(/proc/self/ns/net, MS_BIND)",
                      path.c_str());
  }
  return env.Undefined();
}

void InitNetns(Napi::Env env, Napi::Object exports) {
  exports.Set("newNetns", Napi::Function::New(env, JsNewNetns, "newNetns"));
}
