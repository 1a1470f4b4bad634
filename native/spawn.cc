// Parent side of the fork boundary: socketpair, block signals, clone3 (into a cgroup when
// given one), hand the plan to child_main. Called synchronously on the JS main thread, so
// PDEATHSIG in the child tracks this thread (prctl(2)).
#include "binding.h"
#include <cerrno>
#include <csignal>
#include <cstring>
#include <linux/sched.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <vector>

extern "C" void child_main(const unsigned char* plan, size_t len, int sync_fd, int parent_pid);

// spawn(plan: Buffer, cgroupFd: number) -> { pid, syncFd }
static Napi::Value JsSpawn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsBuffer() || !info[1].IsNumber())
    throw Napi::TypeError::New(env, "spawn(plan: Buffer, cgroupFd: number)");
  auto buf = info[0].As<Napi::Buffer<unsigned char>>();
  int cgroup_fd = info[1].As<Napi::Number>().Int32Value();
  // The child reads the plan from its copy of this memory; copy it out of the JS heap first.
  std::vector<unsigned char> plan(buf.Data(), buf.Data() + buf.Length());

  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) throw SystemError(env, errno, "socketpair");
  int parent_pid = getpid();

  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  struct clone_args args;
  memset(&args, 0, sizeof args);
  args.exit_signal = SIGCHLD;
  if (cgroup_fd >= 0) {
    args.flags |= CLONE_INTO_CGROUP;
    args.cgroup = (uint64_t)cgroup_fd;
  }
  long pid = syscall(SYS_clone3, &args, sizeof args);
  if (pid == 0) {
    close(sv[0]);
    child_main(plan.data(), plan.size(), sv[1], parent_pid);
  }
  int err = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  close(sv[1]);
  if (pid < 0) {
    close(sv[0]);
    throw SystemError(env, err, cgroup_fd >= 0 ? "clone3(CLONE_INTO_CGROUP)" : "clone3");
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("pid", Napi::Number::New(env, (double)pid));
  out.Set("syncFd", Napi::Number::New(env, sv[0]));
  return out;
}

void InitSpawn(Napi::Env env, Napi::Object exports) {
  exports.Set("spawn", Napi::Function::New(env, JsSpawn, "spawn"));
}
