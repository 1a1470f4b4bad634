// fd-based, in-root filesystem writes for layer extraction (design-notes §7.2, checklist §3).
//
// Every operation takes a root directory fd (openRoot) and a path relative to it that the TS
// entry policy has already normalised. Parents are resolved with
//   openat2(rootFd, parent, O_PATH|O_DIRECTORY, RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS|RESOLVE_NO_SYMLINKS)
// so a parent can never be reached through a symlink (not even one that stays inside the
// root: a layer's own entries never legitimately go through its own symlinks), and the
// LAST component is only ever touched with *at() calls relative to that parent fd using
// AT_SYMLINK_NOFOLLOW / O_NOFOLLOW / O_EXCL. No path string is ever resolved from "/".
//
// One N-API call per tar entry (applyEntry); regular files return a write fd that TS fills
// and hands back to finishFile (xattrs and mtime must come after the data: a write drops
// security.capability). Directory mtimes are set at the end by finishDirs.
//
// Errors are thrown shaped like Node's SystemError ({code, errno, syscall, path}), with
// `path` the entry path relative to the root.
//
// READS (user lookup, `cp` out of a container, volume seeding; see src/linux/in-root.ts):
// openInRoot resolves with RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS only, so symlinks ARE
// followed but can never leave the root (an absolute target or ".." restarts / stops at the
// root fd), which is what docker/podman do for /etc/passwd and `cp` paths. Anything opened
// for I/O is first opened O_PATH and fstat()ed: only regular files and directories are ever
// opened for reading, so a FIFO (blocks open) or a device node (/dev/zero, a tape, a tty)
// planted in the rootfs is never opened at all. listDirFd/statAt/readlinkAt work on one
// component below a directory fd and never follow it.
#include "binding.h"
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <string>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <vector>

namespace {

// ---- internal error type: converted to a SystemError at the N-API boundary ----

struct SysErr {
  int err;
  const char* syscall;
  const char* detail;  // optional human reason replacing strerror in the message
};

[[noreturn]] void Fail(int err, const char* syscall, const char* detail = nullptr) {
  throw SysErr{err, syscall, detail};
}

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd, bool owned = true) : fd_(fd), owned_(owned) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& o) noexcept : fd_(o.fd_), owned_(o.owned_) {
    o.fd_ = -1;
  }
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      Reset();
      fd_ = o.fd_;
      owned_ = o.owned_;
      o.fd_ = -1;
    }
    return *this;
  }
  ~Fd() {
    Reset();
  }
  int get() const {
    return fd_;
  }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  void Reset() {
    if (fd_ >= 0 && owned_) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
  bool owned_ = true;
};

const bool kIsRoot = geteuid() == 0;

constexpr uint64_t kResolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS;

int Openat2(int dirfd, const char* path, uint64_t flags, uint64_t resolve) {
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = flags;
  how.resolve = resolve;
  for (int tries = 0;; tries++) {
    int fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
    if (fd >= 0) return fd;
    // EAGAIN: a concurrent rename/mount raced the RESOLVE_IN_ROOT walk; retry a few times.
    if ((errno == EAGAIN && tries < 64) || errno == EINTR) continue;
    return -1;
  }
}

// ---- entry decoding ----

enum class Type { File, Dir, Symlink, Hardlink, Char, Block, Fifo, Whiteout, Opaque };

struct Xattr {
  std::string name;
  const char* data;
  size_t len;
};

struct Entry {
  Type type = Type::File;
  std::string path;
  uint32_t mode = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  double mtime = 0;
  std::string linkname;
  bool hasLinkname = false;
  uint32_t devmajor = 0;
  uint32_t devminor = 0;
  std::vector<Xattr> xattrs;  // data points into Buffers owned by the JS entry (alive for the call)
};

Napi::Error TypeErr(Napi::Env env, const std::string& msg) {
  return Napi::TypeError::New(env, msg);
}

std::string GetStr(Napi::Env env, const Napi::Object& o, const char* key, bool optional, bool* present = nullptr) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() && optional) {
    if (present) *present = false;
    return std::string();
  }
  if (!v.IsString()) throw TypeErr(env, std::string("entry.") + key + " must be a string");
  if (present) *present = true;
  std::string s = v.As<Napi::String>().Utf8Value();
  if (s.find('\0') != std::string::npos) throw TypeErr(env, std::string("entry.") + key + " contains a NUL byte");
  return s;
}

uint32_t GetU32(Napi::Env env, const Napi::Object& o, const char* key, bool optional, uint32_t max = 0xFFFFFFFEu) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() && optional) return 0;
  if (!v.IsNumber()) throw TypeErr(env, std::string("entry.") + key + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= (double)max) || std::floor(d) != d)
    throw Napi::RangeError::New(env, std::string("entry.") + key + " is out of range");
  return (uint32_t)d;
}

Type ParseType(Napi::Env env, const std::string& t) {
  if (t == "file") return Type::File;
  if (t == "dir") return Type::Dir;
  if (t == "symlink") return Type::Symlink;
  if (t == "hardlink") return Type::Hardlink;
  if (t == "char") return Type::Char;
  if (t == "block") return Type::Block;
  if (t == "fifo") return Type::Fifo;
  if (t == "whiteout") return Type::Whiteout;
  if (t == "opaque") return Type::Opaque;
  throw TypeErr(env, "entry.type \"" + t + "\" is not a known entry type");
}

// The xattrs the addon will ever write (the TS policy is stricter still, by entry type).
bool XattrAllowed(const std::string& name) {
  return (name.size() > 5 && name.compare(0, 5, "user.") == 0) || name == "security.capability";
}

Entry ReadEntry(Napi::Env env, const Napi::Value& v) {
  if (!v.IsObject()) throw TypeErr(env, "entry must be an object");
  Napi::Object o = v.As<Napi::Object>();
  Entry e;
  e.type = ParseType(env, GetStr(env, o, "type", false));
  e.path = GetStr(env, o, "path", false);
  e.mode = GetU32(env, o, "mode", false, 07777);
  e.uid = GetU32(env, o, "uid", false);
  e.gid = GetU32(env, o, "gid", false);
  Napi::Value mt = o.Get("mtimeSec");
  if (!mt.IsNumber()) throw TypeErr(env, "entry.mtimeSec must be a number");
  e.mtime = mt.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(e.mtime) || std::fabs(e.mtime) > 1e15) throw Napi::RangeError::New(env, "entry.mtimeSec is out of range");
  e.linkname = GetStr(env, o, "linkname", true, &e.hasLinkname);
  e.devmajor = GetU32(env, o, "devmajor", true);
  e.devminor = GetU32(env, o, "devminor", true);
  Napi::Value xv = o.Get("xattrs");
  if (!xv.IsUndefined() && !xv.IsNull()) {
    if (!xv.IsObject()) throw TypeErr(env, "entry.xattrs must be an object");
    Napi::Object xo = xv.As<Napi::Object>();
    Napi::Array names = xo.GetPropertyNames();
    for (uint32_t i = 0; i < names.Length(); i++) {
      Napi::Value k = names.Get(i);
      std::string name = k.ToString().Utf8Value();
      Napi::Value val = xo.Get(k);
      if (!val.IsBuffer()) throw TypeErr(env, "entry.xattrs[\"" + name + "\"] must be a Buffer");
      if (name.find('\0') != std::string::npos || !XattrAllowed(name))
        throw TypeErr(env, "xattr \"" + name + "\" is not allowed");
      Napi::Buffer<char> b = val.As<Napi::Buffer<char>>();
      e.xattrs.push_back(Xattr{name, b.Data(), b.Length()});
    }
  }
  return e;
}

// ---- path helpers ----

// Split a normalised relative path into its components, refusing anything the TS policy
// should already have refused ("" / "." / ".." components, absolute paths).
std::vector<std::string> Components(const std::string& path) {
  std::vector<std::string> out;
  if (path.empty() || path[0] == '/') Fail(EINVAL, "resolve", "not a normalised relative path");
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string::npos) slash = path.size();
    std::string c = path.substr(start, slash - start);
    if (c.empty() || c == "." || c == "..") Fail(EINVAL, "resolve", "not a normalised relative path");
    out.push_back(std::move(c));
    start = slash + 1;
  }
  return out;
}

struct timespec ToTimespec(double sec) {
  struct timespec ts;
  double whole = std::floor(sec);
  ts.tv_sec = (time_t)whole;
  long ns = (long)std::llround((sec - whole) * 1e9);
  if (ns >= 1000000000L) {
    ts.tv_sec += 1;
    ns -= 1000000000L;
  }
  ts.tv_nsec = ns < 0 ? 0 : ns;
  return ts;
}

// Owner for an fd (or, with name, for name relative to dirfd without following it). Not
// root: ownership cannot be changed, so it is skipped (GNU tar's --no-same-owner) and the
// caller strips setuid/setgid bits that would otherwise be granted to the wrong identity.
void Chown(int fd, const char* name, uint32_t uid, uint32_t gid) {
  if (!kIsRoot) return;
  int r = name ? fchownat(fd, name, uid, gid, AT_SYMLINK_NOFOLLOW) : fchown(fd, uid, gid);
  if (r < 0) Fail(errno, name ? "fchownat" : "fchown");
}

uint32_t EffectiveMode(uint32_t mode, uint32_t uid, uint32_t gid) {
  mode &= 07777;
  if (!kIsRoot) {
    if (uid != geteuid()) mode &= ~(uint32_t)S_ISUID;
    if (gid != getegid()) mode &= ~(uint32_t)S_ISGID;
  }
  return mode;
}

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif

// chmod of name in dirfd without following a symlink: fchmodat2(AT_SYMLINK_NOFOLLOW) where
// the kernel has it (6.6+), else an O_PATH|O_NOFOLLOW fd re-opened through /proc/self/fd.
void ChmodNoFollow(int dirfd, const char* name, uint32_t mode) {
  if (syscall(SYS_fchmodat2, dirfd, name, (mode_t)mode, AT_SYMLINK_NOFOLLOW) == 0) return;
  if (errno != ENOSYS && errno != EINVAL) Fail(errno, "fchmodat2");
  Fd p(openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC));
  if (p.get() < 0) Fail(errno, "openat");
  struct stat st;
  if (fstat(p.get(), &st) < 0) Fail(errno, "fstat");
  if (S_ISLNK(st.st_mode)) return;  // never chmod a symlink (or what it points to)
  char proc[64];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", p.get());
  if (chmod(proc, mode) < 0) Fail(errno, "chmod");
}

void SetXattrs(int fd, const std::vector<Xattr>& xs) {
  for (const Xattr& x : xs) {
    if (fsetxattr(fd, x.name.c_str(), x.data, x.len, 0) < 0) Fail(errno, "fsetxattr");
  }
}

void SetTimesAt(int dirfd, const char* name, double mtime) {
  struct timespec ts[2] = {ToTimespec(mtime), ToTimespec(mtime)};
  if (utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0) Fail(errno, "utimensat");
}

void SetTimesFd(int fd, double mtime) {
  struct timespec ts[2] = {ToTimespec(mtime), ToTimespec(mtime)};
  if (futimens(fd, ts) < 0) Fail(errno, "futimens");
}

// Remove a directory tree below dirfd/name using fds only (never following symlinks: a
// symlink inside is unlinked, not descended into).
void RemoveTree(int dirfd, const char* name, int depth) {
  if (depth > 4096) Fail(ELOOP, "rmdir", "directory tree too deep to remove");
  int dfd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0) {
    if (errno == ENOENT) return;
    Fail(errno, "openat");
  }
  DIR* d = fdopendir(dfd);
  if (!d) {
    int e = errno;
    close(dfd);
    Fail(e, "fdopendir");
  }
  struct Closer {
    DIR* d;
    ~Closer() {
      closedir(d);
    }
  } closer{d};
  for (;;) {
    errno = 0;
    struct dirent* de = readdir(d);
    if (!de) {
      if (errno) Fail(errno, "readdir");
      break;
    }
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    if (unlinkat(dfd, de->d_name, 0) == 0 || errno == ENOENT) continue;
    if (errno != EISDIR) Fail(errno, "unlinkat");
    RemoveTree(dfd, de->d_name, depth + 1);
  }
  if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT) Fail(errno, "unlinkat");
}

// Make room for a new non-directory at dirfd/name: unlink whatever is there (a directory
// is removed recursively, as containerd does for a type change).
void RemoveExisting(int dirfd, const char* name) {
  if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT) return;
  if (errno != EISDIR) Fail(errno, "unlinkat");
  RemoveTree(dirfd, name, 0);
}

// A directory we create implicitly (missing parent, opaque marker target): 0755 root:root,
// as tar does for parents it has no header for.
void FixImplicitDir(int pfd, const char* name) {
  Fd d(openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (d.get() < 0) Fail(errno, "openat");
  Chown(d.get(), nullptr, 0, 0);
  if (fchmod(d.get(), 0755) < 0) Fail(errno, "fchmod");
}

struct Parent {
  Fd fd;             // the directory that holds the last component
  std::string base;  // the last component
};

// Resolve the parent of path (in-root, refusing symlinks), creating missing directories
// when create is set. With an empty parent the root fd itself is used (not owned).
Parent ResolveParent(int rootFd, const std::string& path, bool create) {
  std::vector<std::string> comps = Components(path);
  Parent p;
  p.base = comps.back();
  comps.pop_back();
  if (comps.empty()) {
    p.fd = Fd(rootFd, false);
    return p;
  }
  std::string parent = path.substr(0, path.size() - p.base.size() - 1);
  int fd = Openat2(rootFd, parent.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC, kResolve);
  if (fd >= 0) {
    p.fd = Fd(fd);
    return p;
  }
  if (errno == ELOOP) Fail(ELOOP, "openat2", "the parent path goes through a symlink");
  if (errno != ENOENT || !create) Fail(errno, "openat2");
  // Walk down from the root, creating what is missing. Each prefix is resolved afresh
  // from the root fd, so nothing here depends on an earlier lookup.
  Fd cur(rootFd, false);
  std::string prefix;
  for (const std::string& c : comps) {
    if (!prefix.empty()) prefix += '/';
    prefix += c;
    int nfd = Openat2(rootFd, prefix.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC, kResolve);
    if (nfd < 0) {
      if (errno == ELOOP) Fail(ELOOP, "openat2", "the parent path goes through a symlink");
      if (errno != ENOENT) Fail(errno, "openat2");
      if (mkdirat(cur.get(), c.c_str(), 0700) < 0) {
        if (errno == EEXIST) Fail(ENOTDIR, "mkdirat", "a parent path component exists and is not a directory");
        Fail(errno, "mkdirat");
      }
      FixImplicitDir(cur.get(), c.c_str());
      nfd = openat(cur.get(), c.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (nfd < 0) Fail(errno, "openat");
    }
    cur = Fd(nfd);
  }
  p.fd = std::move(cur);
  return p;
}

// ---- the operations ----

// Regular file: created fresh (O_EXCL|O_NOFOLLOW), owner then mode set on the fd before it
// is returned, so an interrupted write can never leave a setuid file with the wrong owner.
int ApplyFile(int rootFd, const Entry& e) {
  Parent p = ResolveParent(rootFd, e.path, true);
  const char* name = p.base.c_str();
  const int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
  int fd = openat(p.fd.get(), name, flags, 0600);
  if (fd < 0 && errno == EEXIST) {
    RemoveExisting(p.fd.get(), name);
    fd = openat(p.fd.get(), name, flags, 0600);
  }
  if (fd < 0) Fail(errno, "openat");
  Fd f(fd);
  Chown(f.get(), nullptr, e.uid, e.gid);
  if (fchmod(f.get(), EffectiveMode(e.mode, e.uid, e.gid)) < 0) Fail(errno, "fchmod");
  return f.release();
}

void ApplyDir(int rootFd, const Entry& e) {
  Parent p = ResolveParent(rootFd, e.path, true);
  const char* name = p.base.c_str();
  if (mkdirat(p.fd.get(), name, 0700) < 0) {
    if (errno != EEXIST) Fail(errno, "mkdirat");
    struct stat st;
    if (fstatat(p.fd.get(), name, &st, AT_SYMLINK_NOFOLLOW) < 0) Fail(errno, "fstatat");
    if (!S_ISDIR(st.st_mode)) {  // a directory over a non-directory replaces it
      RemoveExisting(p.fd.get(), name);
      if (mkdirat(p.fd.get(), name, 0700) < 0) Fail(errno, "mkdirat");
    }
  }
  Fd d(openat(p.fd.get(), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (d.get() < 0) Fail(errno, "openat");
  Chown(d.get(), nullptr, e.uid, e.gid);
  if (fchmod(d.get(), EffectiveMode(e.mode, e.uid, e.gid)) < 0) Fail(errno, "fchmod");
  SetXattrs(d.get(), e.xattrs);
  // mtime: set by finishDirs once the directory's children are in place.
}

void ApplySymlink(int rootFd, const Entry& e) {
  if (!e.hasLinkname || e.linkname.empty()) Fail(EINVAL, "symlinkat", "a symlink needs a non-empty linkname");
  Parent p = ResolveParent(rootFd, e.path, true);
  const char* name = p.base.c_str();
  if (symlinkat(e.linkname.c_str(), p.fd.get(), name) < 0) {
    if (errno != EEXIST) Fail(errno, "symlinkat");
    RemoveExisting(p.fd.get(), name);
    if (symlinkat(e.linkname.c_str(), p.fd.get(), name) < 0) Fail(errno, "symlinkat");
  }
  Chown(p.fd.get(), name, e.uid, e.gid);
  SetTimesAt(p.fd.get(), name, e.mtime);
}

void ApplyHardlink(int rootFd, const Entry& e) {
  if (!e.hasLinkname) Fail(EINVAL, "linkat", "a hardlink needs a linkname");
  Components(e.linkname);  // refuses non-normalised targets
  Fd target(Openat2(rootFd, e.linkname.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC, kResolve));
  if (target.get() < 0) {
    if (errno == ELOOP) Fail(ELOOP, "openat2", "the hardlink target path goes through a symlink");
    if (errno == ENOENT) Fail(ENOENT, "openat2", "the hardlink target does not exist in this layer");
    Fail(errno, "openat2");
  }
  struct stat tst;
  if (fstat(target.get(), &tst) < 0) Fail(errno, "fstat");
  if (!S_ISREG(tst.st_mode)) Fail(EPERM, "linkat", "the hardlink target is not a regular file");
  Parent p = ResolveParent(rootFd, e.path, true);
  const char* name = p.base.c_str();
  struct stat dst;
  if (fstatat(p.fd.get(), name, &dst, AT_SYMLINK_NOFOLLOW) == 0) {
    if (dst.st_dev == tst.st_dev && dst.st_ino == tst.st_ino) return;  // already that file
    RemoveExisting(p.fd.get(), name);
  } else if (errno != ENOENT) {
    Fail(errno, "fstatat");
  }
  if (linkat(target.get(), "", p.fd.get(), name, AT_EMPTY_PATH) == 0) return;
  if (errno != ENOENT && errno != EPERM) Fail(errno, "linkat");
  // AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH on older kernels; the /proc/self/fd form links
  // the very inode the O_PATH fd holds.
  char proc[64];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", target.get());
  if (linkat(AT_FDCWD, proc, p.fd.get(), name, AT_SYMLINK_FOLLOW) < 0) Fail(errno, "linkat");
}

void ApplyNode(int rootFd, const Entry& e) {
  mode_t kind = e.type == Type::Char ? S_IFCHR : e.type == Type::Block ? S_IFBLK : S_IFIFO;
  dev_t dev = e.type == Type::Fifo ? 0 : makedev(e.devmajor, e.devminor);
  Parent p = ResolveParent(rootFd, e.path, true);
  const char* name = p.base.c_str();
  if (mknodat(p.fd.get(), name, kind | 0600, dev) < 0) {
    if (errno != EEXIST) Fail(errno, "mknodat");
    RemoveExisting(p.fd.get(), name);
    if (mknodat(p.fd.get(), name, kind | 0600, dev) < 0) Fail(errno, "mknodat");
  }
  Chown(p.fd.get(), name, e.uid, e.gid);
  ChmodNoFollow(p.fd.get(), name, EffectiveMode(e.mode, e.uid, e.gid));
  SetTimesAt(p.fd.get(), name, e.mtime);
}

// `.wh.<name>` in the tar: an overlayfs whiteout (char 0:0) named <name>. Something the
// same layer already put at that path stays (whiteouts only hide lower layers).
void ApplyWhiteout(int rootFd, const Entry& e) {
  Parent p = ResolveParent(rootFd, e.path, true);
  const char* name = p.base.c_str();
  struct stat st;
  if (fstatat(p.fd.get(), name, &st, AT_SYMLINK_NOFOLLOW) == 0) return;
  if (errno != ENOENT) Fail(errno, "fstatat");
  if (mknodat(p.fd.get(), name, S_IFCHR | 0, makedev(0, 0)) < 0) Fail(errno, "mknodat");
  Chown(p.fd.get(), name, e.uid, e.gid);
  SetTimesAt(p.fd.get(), name, e.mtime);
}

// `.wh..wh..opq` in a directory: trusted.overlay.opaque=y on that directory ("." = the root).
void ApplyOpaque(int rootFd, const Entry& e) {
  Fd d;
  if (e.path == ".") {
    d = Fd(openat(rootFd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (d.get() < 0) Fail(errno, "openat");
  } else {
    Parent p = ResolveParent(rootFd, e.path, true);
    const char* name = p.base.c_str();
    if (mkdirat(p.fd.get(), name, 0700) == 0) {
      FixImplicitDir(p.fd.get(), name);
    } else if (errno != EEXIST) {
      Fail(errno, "mkdirat");
    }
    d = Fd(openat(p.fd.get(), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (d.get() < 0) {
      if (errno == ELOOP || errno == ENOTDIR) Fail(ENOTDIR, "openat", "the opaque marker's directory is not a directory");
      Fail(errno, "openat");
    }
  }
  if (fsetxattr(d.get(), "trusted.overlay.opaque", "y", 1, 0) < 0) Fail(errno, "fsetxattr");
}

// ---- N-API surface ----

int ArgFd(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a number");
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 2147483647.0) || std::floor(d) != d)
    throw Napi::RangeError::New(info.Env(), std::string(what) + " must be a file descriptor");
  return (int)d;
}

Napi::Error ToJs(Napi::Env env, const SysErr& s, const std::string& path) {
  Napi::Error e = SystemError(env, s.err, s.syscall, path.c_str());
  if (s.detail) {
    const char* code = strerrorname_np(s.err);
    std::string msg = std::string(s.syscall) + ": " + (code ? code : "EUNKNOWN") + " (" + s.detail + ") `" + path + "`";
    e.Set("message", Napi::String::New(env, msg));
  }
  return e;
}

// openRoot(path) -> O_PATH|O_DIRECTORY fd of a trusted directory (the layer root).
Napi::Value JsOpenRoot(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "path must be a string");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  if (path.find('\0') != std::string::npos) throw Napi::TypeError::New(env, "path contains a NUL byte");
  int fd = open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw SystemError(env, errno, "open", path.c_str());
  // Probe openat2 once, so a kernel without it (< 5.6) fails here and not mid-layer.
  int probe = Openat2(fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC, kResolve);
  if (probe < 0) {
    int err = errno;
    close(fd);
    throw ToJs(env, SysErr{err, "openat2", err == ENOSYS ? "the kernel lacks openat2 (Linux 5.6+ is required)" : nullptr}, path);
  }
  close(probe);
  return Napi::Number::New(env, fd);
}

Napi::Value JsCloseFd(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  if (close(fd) < 0 && errno != EINTR) throw SystemError(info.Env(), errno, "close");
  return info.Env().Undefined();
}

// applyEntry(rootFd, entry) -> a write fd for 'file' entries, else -1.
Napi::Value JsApplyEntry(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int rootFd = ArgFd(info, 0, "rootFd");
  if (info.Length() < 2) throw Napi::TypeError::New(env, "entry must be an object");
  Entry e = ReadEntry(env, info[1]);
  int out = -1;
  try {
    if (e.path == "." && e.type != Type::Opaque) Fail(EINVAL, "resolve", "only an opaque marker may target the root itself");
    switch (e.type) {
      case Type::File:
        out = ApplyFile(rootFd, e);
        break;
      case Type::Dir:
        ApplyDir(rootFd, e);
        break;
      case Type::Symlink:
        ApplySymlink(rootFd, e);
        break;
      case Type::Hardlink:
        ApplyHardlink(rootFd, e);
        break;
      case Type::Char:
      case Type::Block:
      case Type::Fifo:
        ApplyNode(rootFd, e);
        break;
      case Type::Whiteout:
        ApplyWhiteout(rootFd, e);
        break;
      case Type::Opaque:
        ApplyOpaque(rootFd, e);
        break;
    }
  } catch (const SysErr& s) {
    throw ToJs(env, s, e.path);
  }
  return Napi::Number::New(env, out);
}

// finishFile(fd, entry): after the data, re-assert setuid/setgid bits (a non-root write
// clears them), apply xattrs (a write drops security.capability), set the mtime, close.
// The fd is closed whatever happens.
Napi::Value JsFinishFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  Fd f(fd);
  if (info.Length() < 2) throw Napi::TypeError::New(env, "entry must be an object");
  Entry e = ReadEntry(env, info[1]);
  try {
    uint32_t mode = EffectiveMode(e.mode, e.uid, e.gid);
    if ((mode & (S_ISUID | S_ISGID)) && fchmod(f.get(), mode) < 0) Fail(errno, "fchmod");
    SetXattrs(f.get(), e.xattrs);
    SetTimesFd(f.get(), e.mtime);
    int raw = f.release();
    if (close(raw) < 0 && errno != EINTR) Fail(errno, "close");
  } catch (const SysErr& s) {
    throw ToJs(env, s, e.path);
  }
  return env.Undefined();
}

// finishDirs(rootFd, paths, mtimes): set directory mtimes last (children change them).
// Paths that are gone or no longer directories are skipped; nothing is followed.
Napi::Value JsFinishDirs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int rootFd = ArgFd(info, 0, "rootFd");
  if (info.Length() < 3 || !info[1].IsArray() || !info[2].IsArray())
    throw Napi::TypeError::New(env, "paths and mtimes must be arrays");
  Napi::Array paths = info[1].As<Napi::Array>();
  Napi::Array mtimes = info[2].As<Napi::Array>();
  if (paths.Length() != mtimes.Length()) throw Napi::RangeError::New(env, "paths and mtimes differ in length");
  for (uint32_t i = 0; i < paths.Length(); i++) {
    Napi::Value pv = paths.Get(i);
    Napi::Value mv = mtimes.Get(i);
    if (!pv.IsString() || !mv.IsNumber()) throw Napi::TypeError::New(env, "paths must be strings and mtimes numbers");
    std::string path = pv.As<Napi::String>().Utf8Value();
    double mtime = mv.As<Napi::Number>().DoubleValue();
    if (path.find('\0') != std::string::npos || !std::isfinite(mtime) || std::fabs(mtime) > 1e15)
      throw Napi::RangeError::New(env, "invalid directory path or mtime");
    try {
      Fd d;
      if (path == ".") {
        d = Fd(openat(rootFd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      } else {
        Parent p;
        try {
          p = ResolveParent(rootFd, path, false);
        } catch (const SysErr& s) {
          if (s.err == ENOENT || s.err == ENOTDIR || s.err == ELOOP) continue;
          throw;
        }
        d = Fd(openat(p.fd.get(), p.base.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      }
      if (d.get() < 0) {
        if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP) continue;
        Fail(errno, "openat");
      }
      SetTimesFd(d.get(), mtime);
    } catch (const SysErr& s) {
      throw ToJs(env, s, path);
    }
  }
  return env.Undefined();
}

// ---- in-root reads ----

// Symlinks are followed, but only inside the root (docker/podman semantics for reading).
constexpr uint64_t kResolveFollow = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
constexpr int kOpenInRootFlags = O_RDONLY | O_PATH | O_DIRECTORY | O_NOFOLLOW;

const char* TypeName(mode_t m) {
  switch (m & S_IFMT) {
    case S_IFREG:
      return "file";
    case S_IFDIR:
      return "dir";
    case S_IFLNK:
      return "symlink";
    case S_IFCHR:
      return "char";
    case S_IFBLK:
      return "block";
    case S_IFIFO:
      return "fifo";
    case S_IFSOCK:
      return "socket";
    default:
      return "unknown";
  }
}

const char* DirentTypeName(unsigned char t) {
  switch (t) {
    case DT_REG:
      return "file";
    case DT_DIR:
      return "dir";
    case DT_LNK:
      return "symlink";
    case DT_CHR:
      return "char";
    case DT_BLK:
      return "block";
    case DT_FIFO:
      return "fifo";
    case DT_SOCK:
      return "socket";
    default:
      return nullptr;  // DT_UNKNOWN: ask fstatat
  }
}

// Strict UTF-8 (no overlongs, no surrogates, <= U+10FFFF): names handed to JS as strings
// must round-trip, or a copy would silently write a different name.
bool ValidUtf8(const char* s, size_t n) {
  const unsigned char* p = (const unsigned char*)s;
  size_t i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t len;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (size_t k = 1; k < len; k++) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return false;
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsString()) throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a string");
  std::string s = info[i].As<Napi::String>().Utf8Value();
  if (s.find('\0') != std::string::npos) throw Napi::TypeError::New(info.Env(), std::string(what) + " contains a NUL byte");
  return s;
}

// One directory entry name for the *at() helpers: "" (the fd itself) or a single component
// that is not "..": these calls never walk a path.
void CheckName(const std::string& name) {
  if (name.find('/') != std::string::npos || name == "..") Fail(EINVAL, "resolve", "not a single path component");
}

const char* NotOpenedReason(mode_t m) {
  switch (m & S_IFMT) {
    case S_IFCHR:
      return "a char device is never opened for reading: only regular files and directories are";
    case S_IFBLK:
      return "a block device is never opened for reading: only regular files and directories are";
    case S_IFIFO:
      return "a fifo is never opened for reading: only regular files and directories are";
    case S_IFSOCK:
      return "a socket is never opened for reading: only regular files and directories are";
    default:
      return "only regular files and directories are opened for reading";
  }
}

// The opened object for I/O: a directory through openat(".") on the O_PATH fd, a regular
// file through its /proc/self/fd magic link (the very inode, no second path walk). Anything
// else is refused before it is ever opened for I/O.
int ReopenForRead(int pathFd, const struct stat& st) {
  int fd;
  if (S_ISDIR(st.st_mode)) {
    fd = openat(pathFd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) Fail(errno, "openat");
  } else if (S_ISREG(st.st_mode)) {
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", pathFd);
    fd = open(proc, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
      if (errno == ENOENT) Fail(ENOENT, "open", "/proc/self/fd is needed to reopen an O_PATH fd (is /proc mounted?)");
      Fail(errno, "open");
    }
  } else if (S_ISLNK(st.st_mode)) {
    Fail(ELOOP, "openat2", "the object is a symlink, which is not followed here");
  } else {
    Fail(ENXIO, "openInRoot", NotOpenedReason(st.st_mode));
  }
  Fd f(fd);
  struct stat st2;
  if (fstat(f.get(), &st2) < 0) Fail(errno, "fstat");
  if (st2.st_dev != st.st_dev || st2.st_ino != st.st_ino) Fail(EAGAIN, "openInRoot", "the file changed while it was reopened");
  if (fcntl(f.get(), F_SETFL, 0) < 0) Fail(errno, "fcntl");  // drop O_NONBLOCK: plain blocking reads
  return f.release();
}

// openInRoot(rootFd, relPath, flags) -> fd. See the header comment and fs-inroot-binding.d.ts.
Napi::Value JsOpenInRoot(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int rootFd = ArgFd(info, 0, "rootFd");
  std::string path = ArgString(info, 1, "relPath");
  if (info.Length() < 3 || !info[2].IsNumber()) throw Napi::TypeError::New(env, "flags must be a number");
  double fl = info[2].As<Napi::Number>().DoubleValue();
  try {
    if (!(fl >= 0 && fl <= 2147483647.0) || std::floor(fl) != fl || ((int)fl & ~kOpenInRootFlags) != 0)
      Fail(EINVAL, "openInRoot", "flags may only combine O_RDONLY, O_PATH, O_DIRECTORY and O_NOFOLLOW");
    const int flags = (int)fl;
    const bool self = path.empty();  // "" = the fd itself (reopen or duplicate it)
    Fd p;
    if (self) {
      p = Fd(fcntl(rootFd, F_DUPFD_CLOEXEC, 0));
      if (p.get() < 0) Fail(errno, "fcntl");
    } else {
      p = Fd(Openat2(rootFd, path.c_str(), O_PATH | O_CLOEXEC | (flags & (O_DIRECTORY | O_NOFOLLOW)), kResolveFollow));
      if (p.get() < 0) Fail(errno, "openat2");
    }
    struct stat st;
    if (fstat(p.get(), &st) < 0) Fail(errno, "fstat");
    if ((flags & O_DIRECTORY) && !S_ISDIR(st.st_mode)) Fail(ENOTDIR, "openat2");
    if (flags & O_PATH) return Napi::Number::New(env, p.release());
    return Napi::Number::New(env, ReopenForRead(p.get(), st));
  } catch (const SysErr& s) {
    throw ToJs(env, s, path);
  }
}

// listDirFd(dirFd) -> [{name, type}] of a directory fd (O_PATH is fine), without . and ..
// A fresh open file description is used (openat "."), so the fd's own offset is untouched
// and the call can be repeated.
Napi::Value JsListDirFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int dirFd = ArgFd(info, 0, "dirFd");
  Napi::Array out = Napi::Array::New(env);
  try {
    int dfd = openat(dirFd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) Fail(errno, "openat");
    DIR* d = fdopendir(dfd);
    if (!d) {
      int e = errno;
      close(dfd);
      Fail(e, "fdopendir");
    }
    struct Closer {
      DIR* d;
      ~Closer() {
        closedir(d);
      }
    } closer{d};
    uint32_t n = 0;
    for (;;) {
      errno = 0;
      struct dirent* de = readdir(d);
      if (!de) {
        if (errno) Fail(errno, "readdir");
        break;
      }
      if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
      if (!ValidUtf8(de->d_name, strlen(de->d_name))) Fail(EILSEQ, "readdir", "a directory entry name is not valid UTF-8");
      const char* type = DirentTypeName(de->d_type);
      if (!type) {
        struct stat st;
        if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
          if (errno == ENOENT) continue;  // removed meanwhile
          Fail(errno, "fstatat");
        }
        type = TypeName(st.st_mode);
      }
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", Napi::String::New(env, de->d_name));
      o.Set("type", Napi::String::New(env, type));
      out.Set(n++, o);
    }
  } catch (const SysErr& s) {
    throw ToJs(env, s, ".");
  }
  return out;
}

// statAt(dirFd, name) -> lstat of one entry below dirFd ("" = dirFd itself, O_PATH is fine).
Napi::Value JsStatAt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int dirFd = ArgFd(info, 0, "dirFd");
  std::string name = ArgString(info, 1, "name");
  struct stat st;
  try {
    CheckName(name);
    if (name.empty()) {
      if (fstat(dirFd, &st) < 0) Fail(errno, "fstat");
    } else if (fstatat(dirFd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) {
      Fail(errno, "fstatat");
    }
  } catch (const SysErr& s) {
    throw ToJs(env, s, name);
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("type", Napi::String::New(env, TypeName(st.st_mode)));
  o.Set("mode", Napi::Number::New(env, st.st_mode & 07777));
  o.Set("uid", Napi::Number::New(env, st.st_uid));
  o.Set("gid", Napi::Number::New(env, st.st_gid));
  o.Set("size", Napi::Number::New(env, (double)st.st_size));
  o.Set("mtimeSec", Napi::Number::New(env, (double)st.st_mtim.tv_sec + (double)st.st_mtim.tv_nsec / 1e9));
  o.Set("nlink", Napi::Number::New(env, (double)st.st_nlink));
  o.Set("rdevMajor", Napi::Number::New(env, major(st.st_rdev)));
  o.Set("rdevMinor", Napi::Number::New(env, minor(st.st_rdev)));
  return o;
}

// readlinkAt(dirFd, name) -> the target of the symlink name below dirFd ("" = dirFd itself,
// an O_PATH|O_NOFOLLOW fd of a symlink). Nothing is followed.
Napi::Value JsReadlinkAt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int dirFd = ArgFd(info, 0, "dirFd");
  std::string name = ArgString(info, 1, "name");
  std::vector<char> buf(PATH_MAX + 1);
  ssize_t n;
  try {
    CheckName(name);
    n = readlinkat(dirFd, name.c_str(), buf.data(), buf.size());
    if (n < 0) Fail(errno, "readlinkat");
    if ((size_t)n >= buf.size()) Fail(ENAMETOOLONG, "readlinkat", "the symlink target is longer than PATH_MAX");
    if (!ValidUtf8(buf.data(), (size_t)n)) Fail(EILSEQ, "readlinkat", "the symlink target is not valid UTF-8");
  } catch (const SysErr& s) {
    throw ToJs(env, s, name);
  }
  return Napi::String::New(env, buf.data(), (size_t)n);
}

}  // namespace

// ---- xattrTree: every extended attribute under a trusted host directory (an overlay upper
// dir the container wrote). Walked with *at() calls and O_NOFOLLOW: a symlink is read as
// itself, never followed; a directory is entered only through the fd of what fstatat saw.

struct XattrRow {
  std::string rel, name;
  std::string value;
};

static void XattrsOf(int dirfd, const char* name, const std::string& rel, const std::string& only, std::vector<XattrRow>& out) {
  std::string path = "/proc/self/fd/" + std::to_string(dirfd) + "/" + name;
  std::vector<char> names(4096);
  ssize_t n;
  for (;;) {
    n = llistxattr(path.c_str(), names.data(), names.size());
    if (n >= 0) break;
    if (errno == ERANGE) {
      names.resize(names.size() * 4);
      continue;
    }
    if (errno == ENOTSUP || errno == ENOENT) return;
    Fail(errno, "llistxattr");
  }
  for (ssize_t i = 0; i < n;) {
    std::string key(names.data() + i);
    i += (ssize_t)key.size() + 1;
    if (!only.empty() && key != only) continue;
    std::vector<char> val(256);
    ssize_t v;
    for (;;) {
      v = lgetxattr(path.c_str(), key.c_str(), val.data(), val.size());
      if (v >= 0) break;
      if (errno == ERANGE) {
        val.resize(val.size() * 4);
        continue;
      }
      if (errno == ENODATA) break;
      Fail(errno, "lgetxattr");
    }
    if (v >= 0) out.push_back({rel, key, std::string(val.data(), (size_t)v)});
  }
}

static void XattrWalk(int dirfd, const std::string& rel, bool dirs_only, const std::string& only, int depth,
                      std::vector<XattrRow>& out) {
  if (depth > 4096) Fail(ELOOP, "xattrTree");
  int copy = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (copy < 0) Fail(errno, "openat");
  DIR* d = fdopendir(copy);
  if (!d) {
    close(copy);
    Fail(errno, "fdopendir");
  }
  std::vector<std::pair<std::string, bool>> entries;
  while (struct dirent* e = readdir(d)) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    struct stat st;
    if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) continue;
    entries.push_back({e->d_name, S_ISDIR(st.st_mode)});
  }
  closedir(d);
  for (auto& [name, isdir] : entries) {
    std::string r = rel.empty() ? name : rel + "/" + name;
    if (isdir || !dirs_only) XattrsOf(dirfd, name.c_str(), r, only, out);
    if (!isdir) continue;
    int sub = openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0) continue; /* replaced meanwhile */
    try {
      XattrWalk(sub, r, dirs_only, only, depth + 1, out);
    } catch (...) {
      close(sub);
      throw;
    }
    close(sub);
  }
}

// xattrTree(root, dirsOnly, name) -> [rel, name, Buffer][] ("" is the root itself).
static Napi::Value JsXattrTree(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string root = info[0].As<Napi::String>().Utf8Value();
  bool dirs_only = info.Length() > 1 && info[1].ToBoolean().Value();
  std::string only = info.Length() > 2 && info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : "";
  std::vector<XattrRow> rows;
  int fd = open(root.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) throw SystemError(env, errno, "open", root.c_str());
  try {
    XattrsOf(fd, ".", "", only, rows);
    XattrWalk(fd, "", dirs_only, only, 0, rows);
  } catch (const SysErr& e) {
    close(fd);
    throw SystemError(env, e.err, e.syscall, root.c_str());
  }
  close(fd);
  Napi::Array a = Napi::Array::New(env, rows.size());
  for (size_t i = 0; i < rows.size(); i++) {
    Napi::Array row = Napi::Array::New(env, 3);
    row.Set(0u, rows[i].rel);
    row.Set(1u, rows[i].name);
    row.Set(2u, Napi::Buffer<char>::Copy(env, rows[i].value.data(), rows[i].value.size()));
    a.Set((uint32_t)i, row);
  }
  return a;
}

void InitFsInRoot(Napi::Env env, Napi::Object exports) {
  exports.Set("xattrTree", Napi::Function::New(env, JsXattrTree, "xattrTree"));
  exports.Set("openRoot", Napi::Function::New(env, JsOpenRoot, "openRoot"));
  exports.Set("closeFd", Napi::Function::New(env, JsCloseFd, "closeFd"));
  exports.Set("applyEntry", Napi::Function::New(env, JsApplyEntry, "applyEntry"));
  exports.Set("finishFile", Napi::Function::New(env, JsFinishFile, "finishFile"));
  exports.Set("finishDirs", Napi::Function::New(env, JsFinishDirs, "finishDirs"));
  exports.Set("openInRoot", Napi::Function::New(env, JsOpenInRoot, "openInRoot"));
  exports.Set("listDirFd", Napi::Function::New(env, JsListDirFd, "listDirFd"));
  exports.Set("statAt", Napi::Function::New(env, JsStatAt, "statAt"));
  exports.Set("readlinkAt", Napi::Function::New(env, JsReadlinkAt, "readlinkAt"));
  Napi::Object flags = Napi::Object::New(env);
  flags.Set("O_RDONLY", Napi::Number::New(env, O_RDONLY));
  flags.Set("O_PATH", Napi::Number::New(env, O_PATH));
  flags.Set("O_DIRECTORY", Napi::Number::New(env, O_DIRECTORY));
  flags.Set("O_NOFOLLOW", Napi::Number::New(env, O_NOFOLLOW));
  flags.Freeze();
  exports.Set("inRootFlags", flags);
}
