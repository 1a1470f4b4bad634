// Parent side of the fork boundary: socketpair, block signals, clone3 (into a cgroup when
// given one), and in the child nothing but execveat of tsrun-init (init_main.c) from a
// sealed memfd copy, with the plan in a second sealed memfd. Called synchronously on the JS
// main thread, so PDEATHSIG in the child tracks this thread (prctl(2)).
//
// Why a separate executable: a fork of node has the host's node binary as /proc/self/exe
// until execve, and a container that makes the runtime exec "#!/proc/self/exe" gets a
// handle on it (CVE-2019-5736). The sealed copy cannot be written, and it is all the
// container can ever reach.
#include "binding.h"
#include "protocol.h"
#include <cerrno>
#include <csignal>
#include <cstring>
#include <dlfcn.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <string>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <vector>

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif
#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif

static const unsigned SEALS = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;

// memfd_create asking for an executable memfd where the kernel knows the flag (>= 6.3, and
// required when vm.memfd_noexec is 1), without it on older kernels.
static int NewMemfd(const char* name, bool exec) {
  unsigned flags = MFD_CLOEXEC | MFD_ALLOW_SEALING;
  int fd = memfd_create(name, flags | (exec ? MFD_EXEC : MFD_NOEXEC_SEAL));
  if (fd < 0 && errno == EINVAL) fd = memfd_create(name, flags);
  return fd;
}

// tsrun-init lives beside the addon (build/Release/ in a checkout).
static std::string ExecutorPath() {
  Dl_info info;
  if (!dladdr(reinterpret_cast<void*>(&NewMemfd), &info) || !info.dli_fname) return "tsrun-init";
  std::string self = info.dli_fname;
  size_t slash = self.rfind('/');
  return (slash == std::string::npos ? std::string(".") : self.substr(0, slash)) + "/tsrun-init";
}

// One sealed copy per Node process: the copy costs one sendfile of ~0.8 MB.
static int g_executor = -1;

static int ExecutorFd(Napi::Env env) {
  if (g_executor >= 0) return g_executor;
  std::string path = ExecutorPath();
  int src = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (src < 0) throw SystemError(env, errno, "open (the tsrun-init helper; rebuild with `npm run build`)", path.c_str());
  struct stat st;
  if (fstat(src, &st) < 0) {
    int err = errno;
    close(src);
    throw SystemError(env, err, "fstat", path.c_str());
  }
  int fd = NewMemfd("tsrun-init", true);
  if (fd < 0) {
    int err = errno;
    close(src);
    throw SystemError(env, err, "memfd_create");
  }
  off_t off = 0;
  while (off < st.st_size) {
    ssize_t n = sendfile(fd, src, &off, (size_t)(st.st_size - off));
    if (n <= 0) {
      int err = n < 0 ? errno : EIO;
      close(src);
      close(fd);
      throw SystemError(env, err, "sendfile (copy of tsrun-init)", path.c_str());
    }
  }
  close(src);
  if (fchmod(fd, 0555) < 0 || fcntl(fd, F_ADD_SEALS, SEALS) < 0) {
    int err = errno;
    close(fd);
    throw SystemError(env, err, "seal memfd (tsrun-init)");
  }
  g_executor = fd;
  return fd;
}

static int PlanFd(Napi::Env env, const unsigned char* data, size_t len) {
  int fd = NewMemfd("tsrun-plan", false);
  if (fd < 0) throw SystemError(env, errno, "memfd_create");
  size_t done = 0;
  while (done < len) {
    ssize_t n = write(fd, data + done, len - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = n < 0 ? errno : EIO;
      close(fd);
      throw SystemError(env, err, "write (plan memfd)");
    }
    done += (size_t)n;
  }
  if (fcntl(fd, F_ADD_SEALS, SEALS) < 0) {
    int err = errno;
    close(fd);
    throw SystemError(env, err, "seal memfd (plan)");
  }
  return fd;
}

// In the child, between clone3 and execveat: async-signal-safe calls only.
[[noreturn]] static void ExecExecutor(int exec_fd, int sync_fd, int parent_pid, const std::vector<int>& keep, const int* stdio,
                                      char* const* argv, char* const* envp) {
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) _exit(1);
  if (getppid() != parent_pid) _exit(1);  // the parent died before PDEATHSIG was armed
  for (int i = 0; i < 3; i++)
    if (stdio[i] >= 0 && dup2(stdio[i], i) < 0) _exit(1);
  // Node opens everything CLOEXEC (stdio too): the fds the plan names must survive execve.
  for (int fd : keep) fcntl(fd, F_SETFD, 0);
  syscall(SYS_execveat, exec_fd, "", argv, envp, AT_EMPTY_PATH);
  struct sync_msg m = {MSG_ERROR, -1, errno, D_INIT_EXEC};
  (void)!send(sync_fd, &m, sizeof m, MSG_NOSIGNAL);
  _exit(1);
}

// spawn(plan: Buffer, cgroupFd: number, keepFds: number[], stdio?: [in, out, err]) -> { pid, syncFd }
// stdio: fds that become the child's 0/1/2 (-1: keep ours), e.g. /dev/null for a detached exec.
static Napi::Value JsSpawn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsBuffer() || !info[1].IsNumber() || !info[2].IsArray())
    throw Napi::TypeError::New(env, "spawn(plan: Buffer, cgroupFd: number, keepFds: number[])");
  auto buf = info[0].As<Napi::Buffer<unsigned char>>();
  int cgroup_fd = info[1].As<Napi::Number>().Int32Value();
  Napi::Array keepArr = info[2].As<Napi::Array>();
  int stdio[3] = {-1, -1, -1};
  if (info.Length() > 3 && info[3].IsArray()) {
    Napi::Array a = info[3].As<Napi::Array>();
    for (uint32_t i = 0; i < 3 && i < a.Length(); i++) stdio[i] = a.Get(i).As<Napi::Number>().Int32Value();
  }
  int exec_fd = ExecutorFd(env);
  int plan_fd = PlanFd(env, buf.Data(), buf.Length());

  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
    int err = errno;
    close(plan_fd);
    throw SystemError(env, err, "socketpair");
  }
  std::vector<int> keep = {0, 1, 2, sv[1], plan_fd};
  for (uint32_t i = 0; i < keepArr.Length(); i++) keep.push_back(keepArr.Get(i).As<Napi::Number>().Int32Value());
  int parent_pid = getpid();
  std::string init_env =
      "_TSRUN_INIT=" + std::to_string(sv[1]) + "," + std::to_string(plan_fd) + "," + std::to_string(parent_pid);
  char arg0[] = "tsrun-init";
  char* argv[] = {arg0, nullptr};
  char* envp[] = {init_env.data(), nullptr};

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
    ExecExecutor(exec_fd, sv[1], parent_pid, keep, stdio, argv, envp);
  }
  int err = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  close(sv[1]);
  close(plan_fd);
  if (pid < 0) {
    close(sv[0]);
    throw SystemError(env, err, cgroup_fd >= 0 ? "clone3(CLONE_INTO_CGROUP)" : "clone3");
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("pid", Napi::Number::New(env, (double)pid));
  out.Set("syncFd", Napi::Number::New(env, sv[0]));
  return out;
}

static int IntField(Napi::Object o, const char* k) {
  Napi::Value v = o.Get(k);
  return v.IsNumber() ? v.As<Napi::Number>().Int32Value() : -1;
}

// In the forked child, before execveat of the monitor: async-signal-safe calls only. The
// monitor must outlive us: no PDEATHSIG. Its own 0/1/2 become /dev/null (a foreground CLI's
// stdio reaches it as dups, named in the environment).
[[noreturn]] static void ExecMonitor(int exec_fd, const std::vector<int>& keep, char* const* argv, char* const* envp) {
  int null = open("/dev/null", O_RDWR);
  if (null >= 0) {
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
  }
  for (int fd : keep) fcntl(fd, F_SETFD, 0);
  syscall(SYS_execveat, exec_fd, "", argv, envp, AT_EMPTY_PATH);
  _exit(127);
}

struct MonitorChild {
  int exec_fd;
  const std::vector<int>* keep;
  char* const* argv;
  char* const* envp;
};

static int MonitorChildMain(void* arg) {
  auto* c = static_cast<MonitorChild*>(arg);
  ExecMonitor(c->exec_fd, *c->keep, c->argv, c->envp);
}

// spawnMonitor(plan, cgroupFd, keepFds, argv, {dir, console, in, out, err})
//   -> { pid, ctlFd, syncFd }. The monitor (monitor_protocol.h) clones the init itself; the
// caller drives the init's protocol on syncFd and the monitor's on ctlFd.
static Napi::Value JsSpawnMonitor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 5 || !info[0].IsBuffer() || !info[1].IsNumber() || !info[2].IsArray() || !info[3].IsArray() ||
      !info[4].IsObject())
    throw Napi::TypeError::New(env,
                               "spawnMonitor(plan: Buffer, cgroupFd: number, keepFds: number[], argv: string[], fds: object)");
  auto buf = info[0].As<Napi::Buffer<unsigned char>>();
  int cgroup_fd = info[1].As<Napi::Number>().Int32Value();
  Napi::Array keepArr = info[2].As<Napi::Array>();
  Napi::Array argArr = info[3].As<Napi::Array>();
  Napi::Object fds = info[4].As<Napi::Object>();
  int exec_fd = ExecutorFd(env);
  int plan_fd = PlanFd(env, buf.Data(), buf.Length());
  int dir = IntField(fds, "dir"), console = IntField(fds, "console");
  // Dups above 2 for a foreground CLI's stdio: the child's 0/1/2 become /dev/null.
  int stdio[3] = {IntField(fds, "in"), IntField(fds, "out"), IntField(fds, "err")};
  for (int& fd : stdio)
    if (fd >= 0) fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  auto close_stdio = [&]() {
    for (int fd : stdio)
      if (fd >= 0) close(fd);
  };
  int sync[2], ctl[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sync) < 0) {
    int err = errno;
    close(plan_fd);
    close_stdio();
    throw SystemError(env, err, "socketpair");
  }
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl) < 0) {
    int err = errno;
    close(plan_fd);
    close(sync[0]);
    close(sync[1]);
    close_stdio();
    throw SystemError(env, err, "socketpair");
  }
  std::vector<int> keep = {exec_fd, plan_fd, sync[1], ctl[1]};
  for (int fd : {cgroup_fd, dir, console, stdio[0], stdio[1], stdio[2]})
    if (fd >= 0) keep.push_back(fd);
  for (uint32_t i = 0; i < keepArr.Length(); i++) keep.push_back(keepArr.Get(i).As<Napi::Number>().Int32Value());
  std::string monitor_env = "_TSRUN_MONITOR=";
  for (int v : {ctl[1], exec_fd, plan_fd, sync[1], cgroup_fd, dir, console, stdio[0], stdio[1], stdio[2]})
    monitor_env += std::to_string(v) + ",";
  monitor_env.pop_back();
  std::vector<std::string> args = {"tsrun-monitor"};
  for (uint32_t i = 0; i < argArr.Length(); i++) args.push_back(argArr.Get(i).As<Napi::String>().Utf8Value());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  char* envp[] = {monitor_env.data(), nullptr};

  // vfork semantics (CLONE_VM|CLONE_VFORK, as posix_spawn): no copy of node's page tables
  // (~10 ms for a 60 MB process); we are suspended until the child has exec'd. The child only
  // touches its own stack and fd table, with every signal blocked.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  // The monitor itself runs from the installed file, not a private copy: its text pages are
  // then shared by every monitor (PSS ~1/N of its 0.9 MB). No container can reach it: it is
  // outside every container's pid namespace and not dumpable (monitor.c). The init still
  // starts from the sealed copy (exec_fd), which the monitor is given.
  int file_fd = open(ExecutorPath().c_str(), O_PATH | O_CLOEXEC);
  MonitorChild child = {file_fd >= 0 ? file_fd : exec_fd, &keep, argv.data(), envp};
  const size_t stack_size = 64 * 1024;
  void* stack = mmap(nullptr, stack_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  long pid = stack == MAP_FAILED
                 ? -1
                 : clone(MonitorChildMain, static_cast<char*>(stack) + stack_size, CLONE_VM | CLONE_VFORK | SIGCHLD, &child);
  int err = errno;
  if (stack != MAP_FAILED) munmap(stack, stack_size);
  if (file_fd >= 0) close(file_fd);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  close(sync[1]);
  close(ctl[1]);
  close(plan_fd);
  close_stdio();
  if (pid < 0) {
    close(sync[0]);
    close(ctl[0]);
    throw SystemError(env, err, "clone3 (tsrun-monitor)");
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("pid", Napi::Number::New(env, (double)pid));
  out.Set("ctlFd", Napi::Number::New(env, ctl[0]));
  out.Set("syncFd", Napi::Number::New(env, sync[0]));
  return out;
}

void InitSpawn(Napi::Env env, Napi::Object exports) {
  exports.Set("spawn", Napi::Function::New(env, JsSpawn, "spawn"));
  exports.Set("spawnMonitor", Napi::Function::New(env, JsSpawnMonitor, "spawnMonitor"));
}
