// Small syscall bindings Node lacks: sync-socket messages, waitpid, pidfds, flock, mkfifo,
// unix-socket connect for --console-socket, window size. All safe in the Node parent:
// none of them changes credentials, namespaces, cwd or root.
#include "binding.h"
#include "protocol.h"
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <linux/bpf.h>

static int ArgInt(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a number");
  return info[i].As<Napi::Number>().Int32Value();
}

static std::string ArgStr(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsString()) throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

// recvMsg(fd, timeoutMs) -> { type, step, err, value, fd } | null on EOF; throws ETIMEDOUT.
static Napi::Value JsRecvMsg(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgInt(info, 0, "fd");
  int timeout = ArgInt(info, 1, "timeoutMs");
  struct pollfd p = {fd, POLLIN, 0};
  int r;
  do r = poll(&p, 1, timeout);
  while (r < 0 && errno == EINTR);
  if (r < 0) throw SystemError(env, errno, "poll");
  if (r == 0) throw SystemError(env, ETIMEDOUT, "poll");
  struct sync_msg m;
  memset(&m, 0, sizeof m);
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  struct iovec iov = {&m, sizeof m};
  struct msghdr mh;
  memset(&mh, 0, sizeof mh);
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = u.buf;
  mh.msg_controllen = sizeof u.buf;
  ssize_t n;
  do n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == ECONNRESET) return env.Null();
    throw SystemError(env, errno, "recvmsg");
  }
  if (n == 0) return env.Null();
  int passed = -1;
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) memcpy(&passed, CMSG_DATA(c), sizeof(int));
  Napi::Object o = Napi::Object::New(env);
  o.Set("type", m.type);
  o.Set("step", m.step);
  o.Set("err", m.err);
  o.Set("value", m.value);
  o.Set("fd", passed);
  return o;
}

// sendMsg(fd, type, value)
static Napi::Value JsSendMsg(const Napi::CallbackInfo& info) {
  int fd = ArgInt(info, 0, "fd");
  struct sync_msg m = {ArgInt(info, 1, "type"), 0, 0, info.Length() > 2 ? ArgInt(info, 2, "value") : 0};
  if (send(fd, &m, sizeof m, MSG_NOSIGNAL) < 0) throw SystemError(info.Env(), errno, "send");
  return info.Env().Undefined();
}

static Napi::Object StatusObject(Napi::Env env, pid_t pid, int status) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("pid", (double)pid);
  if (pid > 0 && WIFEXITED(status)) {
    o.Set("code", WEXITSTATUS(status));
    o.Set("signal", 0);
  } else if (pid > 0 && WIFSIGNALED(status)) {
    o.Set("code", 128 + WTERMSIG(status));
    o.Set("signal", WTERMSIG(status));
  }
  return o;
}

// waitPid(pid, noHang) -> { pid, code?, signal? } (pid 0 when still running)
static Napi::Value JsWaitPid(const Napi::CallbackInfo& info) {
  int pid = ArgInt(info, 0, "pid");
  bool nohang = info.Length() > 1 && info[1].ToBoolean();
  int status = 0;
  pid_t r;
  do r = waitpid(pid, &status, nohang ? WNOHANG : 0);
  while (r < 0 && errno == EINTR);
  if (r < 0) throw SystemError(info.Env(), errno, "waitpid");
  return StatusObject(info.Env(), r, status);
}

class WaitWorker : public Napi::AsyncWorker {
 public:
  WaitWorker(Napi::Env env, int pid) : Napi::AsyncWorker(env), pid_(pid), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() {
    return deferred_.Promise();
  }
  void Execute() override {
    pid_t r;
    do r = waitpid(pid_, &status_, 0);
    while (r < 0 && errno == EINTR);
    if (r < 0) err_ = errno;
  }
  void OnOK() override {
    if (err_)
      deferred_.Reject(SystemError(Env(), err_, "waitpid").Value());
    else
      deferred_.Resolve(StatusObject(Env(), pid_, status_));
  }

 private:
  int pid_;
  int status_ = 0;
  int err_ = 0;
  Napi::Promise::Deferred deferred_;
};

// waitPidAsync(pid) -> Promise<{ pid, code, signal }> (blocks a pool thread, not the loop)
static Napi::Value JsWaitPidAsync(const Napi::CallbackInfo& info) {
  auto* w = new WaitWorker(info.Env(), ArgInt(info, 0, "pid"));
  auto p = w->Promise();
  w->Queue();
  return p;
}

// pidfdOpen(pid) -> fd (throws ESRCH when gone)
static Napi::Value JsPidfdOpen(const Napi::CallbackInfo& info) {
  long fd = syscall(SYS_pidfd_open, ArgInt(info, 0, "pid"), 0);
  if (fd < 0) throw SystemError(info.Env(), errno, "pidfd_open");
  fcntl((int)fd, F_SETFD, FD_CLOEXEC);
  return Napi::Number::New(info.Env(), (double)fd);
}

// pidfdSignal(pidfd, sig): signals exactly the process the pidfd names (no pid reuse race).
static Napi::Value JsPidfdSignal(const Napi::CallbackInfo& info) {
  if (syscall(SYS_pidfd_send_signal, ArgInt(info, 0, "pidfd"), ArgInt(info, 1, "signal"), nullptr, 0) < 0)
    throw SystemError(info.Env(), errno, "pidfd_send_signal");
  return info.Env().Undefined();
}

// pollReadable(fd, timeoutMs) -> boolean (a pidfd becomes readable when the process exits)
static Napi::Value JsPollReadable(const Napi::CallbackInfo& info) {
  struct pollfd p = {ArgInt(info, 0, "fd"), POLLIN, 0};
  int timeout = ArgInt(info, 1, "timeoutMs");
  int r;
  do r = poll(&p, 1, timeout);
  while (r < 0 && errno == EINTR);
  if (r < 0) throw SystemError(info.Env(), errno, "poll");
  return Napi::Boolean::New(info.Env(), r > 0);
}

// lockFile(path, timeoutMs, shared?) -> fd holding an exclusive (or shared) lock, released by closing it.
// A POSIX record lock, not flock: record locks are not inherited by fork, so the container
// init (which holds every parent fd until it execs) never keeps the lock alive.
static Napi::Value JsLockFile(const Napi::CallbackInfo& info) {
  std::string path = ArgStr(info, 0, "path");
  int timeout = ArgInt(info, 1, "timeoutMs");
  bool shared = info.Length() > 2 && info[2].IsBoolean() && info[2].As<Napi::Boolean>().Value();
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) throw SystemError(info.Env(), errno, "open", path.c_str());
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = shared ? F_RDLCK : F_WRLCK;
    fl.l_whence = SEEK_SET;
    int err = 0;
    if (fcntl(fd, F_SETLK, &fl) == 0) {
      // The holder before us may have unlinked the file: a lock on that old inode excludes
      // nobody who opens the path now. Keep it only if the path still names our inode.
      struct stat a, b;
      if (fstat(fd, &a) == 0 && stat(path.c_str(), &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev)
        return Napi::Number::New(info.Env(), fd);
      err = EAGAIN;
    } else {
      err = errno;
    }
    close(fd);
    clock_gettime(CLOCK_MONOTONIC, &now);
    long ms = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
    bool busy = err == EAGAIN || err == EACCES;
    if (!busy || ms >= timeout) throw SystemError(info.Env(), busy ? ETIMEDOUT : err, "fcntl(F_SETLK)", path.c_str());
    usleep(2000);
  }
}

// mkfifo(path, mode)
static Napi::Value JsMkfifo(const Napi::CallbackInfo& info) {
  std::string path = ArgStr(info, 0, "path");
  if (mkfifo(path.c_str(), (mode_t)ArgInt(info, 1, "mode")) < 0) throw SystemError(info.Env(), errno, "mkfifo", path.c_str());
  return info.Env().Undefined();
}

// connectUnix(path) -> fd of a connected SOCK_STREAM socket (the --console-socket).
static Napi::Value JsConnectUnix(const Napi::CallbackInfo& info) {
  std::string path = ArgStr(info, 0, "path");
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof sa.sun_path) throw SystemError(info.Env(), ENAMETOOLONG, "connect", path.c_str());
  memcpy(sa.sun_path, path.c_str(), path.size());
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw SystemError(info.Env(), errno, "socket");
  if (connect(fd, (struct sockaddr*)&sa, sizeof sa) < 0) {
    int err = errno;
    close(fd);
    throw SystemError(info.Env(), err, "connect", path.c_str());
  }
  return Napi::Number::New(info.Env(), fd);
}

// setWinsize(fd, rows, cols)
static Napi::Value JsSetWinsize(const Napi::CallbackInfo& info) {
  struct winsize ws;
  memset(&ws, 0, sizeof ws);
  ws.ws_row = (unsigned short)ArgInt(info, 1, "rows");
  ws.ws_col = (unsigned short)ArgInt(info, 2, "cols");
  if (ioctl(ArgInt(info, 0, "fd"), TIOCSWINSZ, &ws) < 0) throw SystemError(info.Env(), errno, "ioctl(TIOCSWINSZ)");
  return info.Env().Undefined();
}

// pipe() -> [readFd, writeFd], both CLOEXEC.
static Napi::Value JsPipe(const Napi::CallbackInfo& info) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0) throw SystemError(info.Env(), errno, "pipe2");
  Napi::Array a = Napi::Array::New(info.Env(), 2);
  a.Set(0u, fds[0]);
  a.Set(1u, fds[1]);
  return a;
}

// socketPair() -> [a, b]: a SOCK_STREAM unix pair, both CLOEXEC (the engine's console socket:
// the init sends the pty master on one end, the monitor receives it on the other).
static Napi::Value JsSocketPair(const Napi::CallbackInfo& info) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0) throw SystemError(info.Env(), errno, "socketpair");
  Napi::Array a = Napi::Array::New(info.Env(), 2);
  a.Set(0u, fds[0]);
  a.Set(1u, fds[1]);
  return a;
}

static long sys_bpf(int cmd, union bpf_attr* attr) {
  return syscall(SYS_bpf, cmd, attr, sizeof *attr);
}

// attachDeviceFilter(cgroupFd, insns: Buffer): load a BPF_PROG_TYPE_CGROUP_DEVICE program and
// attach it to the cgroup (BPF_F_ALLOW_MULTI, as runc does). On a verifier error the message
// carries the verifier log.
static Napi::Value JsAttachDeviceFilter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int cg = ArgInt(info, 0, "cgroupFd");
  if (info.Length() < 2 || !info[1].IsBuffer()) throw Napi::TypeError::New(env, "insns must be a Buffer");
  auto insns = info[1].As<Napi::Buffer<unsigned char>>();
  static char log[16384];
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  a.insn_cnt = (uint32_t)(insns.Length() / 8);
  a.insns = (uint64_t)(uintptr_t)insns.Data();
  a.license = (uint64_t)(uintptr_t) "Apache-2.0";
  // The verifier gives up with EAGAIN when a signal is pending (e.g. a profiler's SIGPROF);
  // libbpf retries the load a few times for the same reason.
  int prog;
  int tries = 0;
  do prog = (int)sys_bpf(BPF_PROG_LOAD, &a);
  while (prog < 0 && errno == EAGAIN && ++tries < 5);
  if (prog < 0) {
    int err = errno;
    log[0] = 0;
    a.log_level = 1;
    a.log_buf = (uint64_t)(uintptr_t)log;
    a.log_size = sizeof log;
    sys_bpf(BPF_PROG_LOAD, &a);
    Napi::Error e = SystemError(env, err, "bpf(BPF_PROG_LOAD)");
    e.Set("verifierLog", Napi::String::New(env, log));
    throw e;
  }
  memset(&a, 0, sizeof a);
  a.target_fd = (uint32_t)cg;
  a.attach_bpf_fd = (uint32_t)prog;
  a.attach_type = BPF_CGROUP_DEVICE;
  a.attach_flags = BPF_F_ALLOW_MULTI;
  if (sys_bpf(BPF_PROG_ATTACH, &a) < 0) {
    int err = errno;
    close(prog);
    throw SystemError(env, err, "bpf(BPF_PROG_ATTACH)");
  }
  close(prog);  // the attachment holds the program
  return env.Undefined();
}

// mount(source, target, fstype, flags, data): for the image store's overlays, in the host
// namespace (safe in the parent: it changes no process state).
static Napi::Value JsMount(const Napi::CallbackInfo& info) {
  std::string src = ArgStr(info, 0, "source"), tgt = ArgStr(info, 1, "target"), type = ArgStr(info, 2, "fstype");
  unsigned long flags = (unsigned long)info[3].As<Napi::Number>().Int64Value();
  std::string data = ArgStr(info, 4, "data");
  if (mount(src.c_str(), tgt.c_str(), type.empty() ? nullptr : type.c_str(), flags, data.empty() ? nullptr : data.c_str()) < 0)
    throw SystemError(info.Env(), errno, "mount", tgt.c_str());
  return info.Env().Undefined();
}

// umount2(target, flags)
static Napi::Value JsUmount2(const Napi::CallbackInfo& info) {
  std::string tgt = ArgStr(info, 0, "target");
  if (umount2(tgt.c_str(), ArgInt(info, 1, "flags")) < 0) throw SystemError(info.Env(), errno, "umount2", tgt.c_str());
  return info.Env().Undefined();
}

// close(fd) without Node's fd bookkeeping (for fds the addon handed out).
static Napi::Value JsClose(const Napi::CallbackInfo& info) {
  close(ArgInt(info, 0, "fd"));
  return info.Env().Undefined();
}

void InitSys(Napi::Env env, Napi::Object exports) {
  exports.Set("recvMsg", Napi::Function::New(env, JsRecvMsg, "recvMsg"));
  exports.Set("sendMsg", Napi::Function::New(env, JsSendMsg, "sendMsg"));
  exports.Set("waitPid", Napi::Function::New(env, JsWaitPid, "waitPid"));
  exports.Set("waitPidAsync", Napi::Function::New(env, JsWaitPidAsync, "waitPidAsync"));
  exports.Set("pidfdOpen", Napi::Function::New(env, JsPidfdOpen, "pidfdOpen"));
  exports.Set("pidfdSignal", Napi::Function::New(env, JsPidfdSignal, "pidfdSignal"));
  exports.Set("pollReadable", Napi::Function::New(env, JsPollReadable, "pollReadable"));
  exports.Set("lockFile", Napi::Function::New(env, JsLockFile, "lockFile"));
  exports.Set("mkfifo", Napi::Function::New(env, JsMkfifo, "mkfifo"));
  exports.Set("connectUnix", Napi::Function::New(env, JsConnectUnix, "connectUnix"));
  exports.Set("setWinsize", Napi::Function::New(env, JsSetWinsize, "setWinsize"));
  exports.Set("close", Napi::Function::New(env, JsClose, "close"));
  exports.Set("pipe", Napi::Function::New(env, JsPipe, "pipe"));
  exports.Set("socketPair", Napi::Function::New(env, JsSocketPair, "socketPair"));
  exports.Set("mount", Napi::Function::New(env, JsMount, "mount"));
  exports.Set("umount2", Napi::Function::New(env, JsUmount2, "umount2"));
  exports.Set("attachDeviceFilter", Napi::Function::New(env, JsAttachDeviceFilter, "attachDeviceFilter"));
}
