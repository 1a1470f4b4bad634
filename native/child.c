/*
 * The forked child: executes an init plan (plan.h) up to execve.
 *
 * This runs in a child of a multithreaded Node process, born from a raw clone3, so it is
 * held to async-signal-safe code: raw syscalls on data that was prepared before the fork,
 * no allocation, no stdio, no locks, no C++ and `_exit` only. Failures are reported to
 * the parent as {step, errno, detail} (protocol.h); the parent writes the message.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/magic.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <termios.h>
#include <unistd.h>

#include "plan.h"
#include "protocol.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif
#ifndef ST_RDONLY
#define ST_RDONLY 1
#endif

struct ctx {
  int sync_fd;
  int root_fd; /* the bound rootfs before pivot, "/" after; -1 until needed (exec) */
  int step;
  int pdeathsig;         /* 1 while we are tied to the parent (READY may untie us for good) */
  const char* exec_path; /* set by OP_FIND_EXEC */
  char exec_buf[4096];
  char path_buf[4096];
};

struct cur {
  const unsigned char* p;
  const unsigned char* end;
};

/* ---------- tiny helpers (no libc string functions) ---------- */

static size_t c_strlen(const char* s) {
  size_t n = 0;
  while (s[n]) n++;
  return n;
}

static int c_strchr(const char* s, char c) {
  for (; *s; s++)
    if (*s == c) return 1;
  return 0;
}

static int64_t rd_int(struct cur* c) {
  int64_t v = 0;
  if (c->p + 8 <= c->end) {
    memcpy(&v, c->p, 8);
    c->p += 8;
  }
  return v;
}

static const char* rd_str(struct cur* c) {
  int64_t len = rd_int(c);
  const char* s = (const char*)c->p;
  int64_t padded = (len + 1 + 7) & ~(int64_t)7;
  if (len < 0 || c->p + padded > c->end) {
    c->p = c->end;
    return "";
  }
  c->p += padded;
  return s;
}

static int64_t rd_blob(struct cur* c, const void** out) {
  int64_t len = rd_int(c);
  int64_t padded = (len + 1 + 7) & ~(int64_t)7;
  if (len < 0 || c->p + padded > c->end) {
    *out = 0;
    c->p = c->end;
    return 0;
  }
  *out = c->p;
  c->p += padded;
  return len;
}

static void send_msg(struct ctx* x, int type, int err, int value) {
  struct sync_msg m = {type, x->step, err, value};
  (void)!send(x->sync_fd, &m, sizeof m, MSG_NOSIGNAL);
}

static __attribute__((noreturn)) void fail(struct ctx* x, int err, int detail) {
  send_msg(x, MSG_ERROR, err, detail);
  _exit(1);
}

static int recv_msg(struct ctx* x, struct sync_msg* m) {
  ssize_t n;
  do n = recv(x->sync_fd, m, sizeof *m, 0);
  while (n < 0 && errno == EINTR);
  return n == (ssize_t)sizeof *m ? 0 : -1;
}

static void expect_msg(struct ctx* x, int type) {
  struct sync_msg m;
  if (recv_msg(x, &m) < 0) _exit(1); /* the parent is gone: nothing to report to */
  if (m.type != type) fail(x, EPROTO, D_RECV);
}

static long sys_openat2(int dirfd, const char* path, int flags, uint64_t resolve) {
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = (uint64_t)flags;
  how.resolve = resolve;
  long r;
  do r = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
  while (r < 0 && errno == EAGAIN);
  return r;
}

/* Open a path strictly inside the root (symlinks resolve against the root, never out). */
static int open_in_root(struct ctx* x, const char* rel, int flags) {
  /* exec has no rootfs step: after joining the mount namespace "/" is the container's root. */
  if (x->root_fd < 0) x->root_fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  while (*rel == '/') rel++;
  if (!*rel) rel = ".";
  return (int)sys_openat2(x->root_fd, rel, flags | O_CLOEXEC, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
}

static void fd_path(char* buf, int fd) {
  /* "/proc/self/fd/<fd>", formatted by hand */
  const char* pre = "/proc/self/fd/";
  size_t n = c_strlen(pre);
  memcpy(buf, pre, n);
  char digits[16];
  int d = 0;
  unsigned v = (unsigned)fd;
  do {
    digits[d++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  while (d) buf[n++] = digits[--d];
  buf[n] = 0;
}

/*
 * mkdir -p inside the root. Every prefix is re-resolved from the root fd with
 * RESOLVE_IN_ROOT, and only its last component is created with mkdirat on the parent's fd,
 * so a symlink swapped in anywhere cannot make us create outside the root.
 * kind: 0 directory, 1 regular file for the last component.
 */
static int mkdir_in_root(struct ctx* x, const char* rel, int kind, int mode) {
  while (*rel == '/') rel++;
  size_t len = c_strlen(rel);
  if (len == 0 || len >= sizeof x->path_buf) {
    errno = ENAMETOOLONG;
    return -1;
  }
  char* buf = x->path_buf;
  memcpy(buf, rel, len + 1);
  int parent = (int)sys_openat2(x->root_fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC, RESOLVE_IN_ROOT);
  if (parent < 0) return -1;
  size_t start = 0;
  while (start < len) {
    size_t end = start;
    while (end < len && buf[end] != '/') end++;
    int last = end >= len;
    char saved = buf[end];
    buf[end] = 0;
    const char* name = buf + start;
    if (name[0] && !(name[0] == '.' && name[1] == 0)) {
      int fd = (int)sys_openat2(x->root_fd, buf, O_PATH | O_CLOEXEC | (last && kind ? 0 : O_DIRECTORY),
                                RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
      if (fd < 0 && errno == ENOENT) {
        int r;
        if (last && kind == 1) {
          r = mknodat(parent, name, S_IFREG | 0644, 0);
        } else {
          r = mkdirat(parent, name, (mode_t)mode);
        }
        if (r < 0 && errno != EEXIST) {
          close(parent);
          return -1;
        }
        fd = (int)sys_openat2(x->root_fd, buf, O_PATH | O_CLOEXEC | (last && kind ? 0 : O_DIRECTORY),
                              RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
      }
      if (fd < 0) {
        close(parent);
        return -1;
      }
      close(parent);
      parent = fd;
    }
    buf[end] = saved;
    start = end + 1;
  }
  close(parent);
  return 0;
}

/*
 * Open a mount target in the root; create it when missing. A symlink as the last component
 * is refused, unless kind has MT_FOLLOW (the runtime's own /dev): then it is followed, still
 * strictly inside the root.
 */
static void split_parent(const char* rel, char* dir, size_t cap, const char** base) {
  while (*rel == '/') rel++;
  size_t n = c_strlen(rel), slash = n;
  while (slash > 0 && rel[slash - 1] != '/') slash--;
  size_t dl = slash ? slash - 1 : 0;
  if (dl >= cap) dl = cap - 1;
  memcpy(dir, rel, dl);
  dir[dl] = 0;
  if (dl == 0) {
    dir[0] = '.';
    dir[1] = 0;
  }
  *base = rel + slash;
}

#define MT_FOLLOW 4

/* Lexically normalise `in` into `out` as a root-relative path: "." dropped, ".." clamped at "/". */
static void normalize_in_root(const char* in, char* out, size_t cap) {
  size_t n = 0;
  while (*in) {
    while (*in == '/') in++;
    const char* e = in;
    while (*e && *e != '/') e++;
    size_t len = (size_t)(e - in);
    if (len == 1 && in[0] == '.') {
    } else if (len == 2 && in[0] == '.' && in[1] == '.') {
      while (n > 0 && out[n - 1] != '/') n--;
      if (n > 0) n--;
    } else if (len && n + len + 2 < cap) {
      if (n) out[n++] = '/';
      memcpy(out + n, in, len);
      n += len;
    }
    in = e;
  }
  out[n] = 0;
}

/* `rel`'s last component is a dangling symlink: make its target (inside the root) a directory. */
static int mkdir_symlink_target(struct ctx* x, const char* rel) {
  char dir[512], link[512], joined[1100], norm[1100];
  const char* base;
  split_parent(rel, dir, sizeof dir, &base);
  int dfd = open_in_root(x, dir, O_PATH | O_DIRECTORY);
  if (dfd < 0) return -1;
  ssize_t l = readlinkat(dfd, base, link, sizeof link - 1);
  close(dfd);
  if (l < 0) return -1;
  link[l] = 0;
  size_t n = 0;
  if (link[0] != '/') {
    size_t dl = c_strlen(dir);
    memcpy(joined, dir, dl);
    n = dl;
    joined[n++] = '/';
  }
  memcpy(joined + n, link, (size_t)l + 1);
  normalize_in_root(joined, norm, sizeof norm);
  if (!norm[0]) return 0;
  return mkdir_in_root(x, norm, 0, 0755);
}

static int open_mount_target(struct ctx* x, const char* rel, int kind) {
  int nofollow = (kind & MT_FOLLOW) ? 0 : O_NOFOLLOW;
  kind &= ~MT_FOLLOW;
  int fd = open_in_root(x, rel, O_PATH | nofollow);
  if (fd < 0 && errno == ENOENT) {
    int r = mkdir_in_root(x, rel, kind, 0755);
    if (r < 0 && !nofollow && errno == ENOENT) r = mkdir_symlink_target(x, rel);
    if (r < 0) fail(x, errno, D_MKDIR);
    fd = open_in_root(x, rel, O_PATH | nofollow);
  }
  if (fd < 0) fail(x, errno, D_OPEN);
  struct stat st;
  if (fstat(fd, &st) < 0) fail(x, errno, D_STAT);
  if (S_ISLNK(st.st_mode)) fail(x, ELOOP, D_SYMLINK_TARGET);
  if (kind == 0 && !S_ISDIR(st.st_mode)) fail(x, ENOTDIR, D_TYPE);
  if (kind == 1 && S_ISDIR(st.st_mode)) fail(x, EISDIR, D_TYPE);
  return fd;
}

static int sys_mount_setattr(int fd, const char* path, unsigned flags, uint64_t set, uint64_t clr) {
  struct mount_attr a;
  memset(&a, 0, sizeof a);
  a.attr_set = set;
  a.attr_clr = clr;
  return (int)syscall(SYS_mount_setattr, fd, path, flags, &a, sizeof a);
}

static int sys_move_mount(int from, int to) {
  return (int)syscall(SYS_move_mount, from, "", to, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
}

/* ---------- steps ---------- */

static void step_mount(struct ctx* x, struct cur* c) {
  unsigned long flags = (unsigned long)rd_int(c);
  int kind = (int)rd_int(c);
  int is_bind = (int)rd_int(c);
  unsigned long remount = (unsigned long)rd_int(c);
  unsigned long propagation = (unsigned long)rd_int(c);
  uint64_t attr_set = (uint64_t)rd_int(c);
  uint64_t attr_clr = (uint64_t)rd_int(c);
  const char* source = rd_str(c);
  const char* target = rd_str(c);
  const char* fstype = rd_str(c);
  const char* data = rd_str(c);

  int follow = kind & MT_FOLLOW;
  int fd = open_mount_target(x, target, kind);
  char p[32];
  fd_path(p, fd);
  if (is_bind) {
    if (mount(source, p, 0, MS_BIND | (flags & MS_REC), 0) < 0) fail(x, errno, D_MOUNT);
  } else {
    if (mount(source, p, fstype, flags, *data ? data : 0) < 0) fail(x, errno, D_MOUNT);
  }
  close(fd);
  if (!remount && !propagation && !attr_set && !attr_clr) return;
  /* Re-open: the first fd still names the covered directory, not the mount just made. */
  fd = open_in_root(x, target, O_PATH | (follow ? 0 : O_NOFOLLOW));
  if (fd < 0) fail(x, errno, D_OPEN);
  fd_path(p, fd);
  if (remount && mount(0, p, 0, MS_REMOUNT | MS_BIND | remount, 0) < 0) {
    /* In a user namespace the source mount's nosuid/nodev/noexec/atime flags are locked and
     * must be repeated in the remount. */
    struct statfs sf;
    if (errno != EPERM || fstatfs(fd, &sf) < 0) fail(x, errno, D_REMOUNT);
    unsigned long locked = sf.f_flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME);
    if (mount(0, p, 0, MS_REMOUNT | MS_BIND | remount | locked, 0) < 0) fail(x, errno, D_REMOUNT);
  }
  if (propagation && mount(0, p, 0, propagation, 0) < 0) fail(x, errno, D_PROPAGATION);
  if ((attr_set || attr_clr) && sys_mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, attr_set, attr_clr) < 0)
    fail(x, errno, D_SETATTR);
  close(fd);
}

static void step_mknod(struct ctx* x, struct cur* c) {
  mode_t mode = (mode_t)rd_int(c);
  unsigned major_ = (unsigned)rd_int(c), minor_ = (unsigned)rd_int(c);
  uid_t uid = (uid_t)rd_int(c);
  gid_t gid = (gid_t)rd_int(c);
  const char* target = rd_str(c);
  const char* host = rd_str(c);
  char dir[512];
  const char* base;
  split_parent(target, dir, sizeof dir, &base);
  if (mkdir_in_root(x, dir, 0, 0755) < 0 && errno != EEXIST) fail(x, errno, D_MKDIR);
  int dfd = open_in_root(x, dir, O_PATH | O_DIRECTORY);
  if (dfd < 0) fail(x, errno, D_OPEN);
  unlinkat(dfd, base, 0); /* our own fresh /dev: replace whatever is there */
  if (mknodat(dfd, base, mode, makedev(major_, minor_)) == 0) {
    if (fchownat(dfd, base, uid, gid, AT_SYMLINK_NOFOLLOW) < 0) fail(x, errno, D_MKNOD);
    close(dfd);
    return;
  }
  if (errno != EPERM || !*host) fail(x, errno, D_MKNOD);
  /* In a user namespace mknod is refused: bind the host's node instead (runc does too). */
  int f = openat(dfd, base, O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY | O_CLOEXEC, 0);
  if (f < 0) fail(x, errno, D_BIND_FALLBACK);
  close(f);
  int t = open_in_root(x, target, O_PATH | O_NOFOLLOW);
  if (t < 0) fail(x, errno, D_OPEN);
  char p[32];
  fd_path(p, t);
  if (mount(host, p, 0, MS_BIND, 0) < 0) fail(x, errno, D_BIND_FALLBACK);
  close(t);
  close(dfd);
}

static void step_symlink(struct ctx* x, struct cur* c) {
  const char* link_target = rd_str(c);
  const char* path = rd_str(c);
  char dir[512];
  const char* base;
  split_parent(path, dir, sizeof dir, &base);
  int dfd = open_in_root(x, dir, O_PATH | O_DIRECTORY);
  if (dfd < 0) fail(x, errno, D_OPEN);
  if (symlinkat(link_target, dfd, base) < 0 && errno != EEXIST) fail(x, errno, D_MKNOD);
  close(dfd);
}

static void step_bind_rootfs(struct ctx* x, struct cur* c) {
  const char* path = rd_str(c);
  if (mount(path, path, 0, MS_BIND | MS_REC, 0) < 0) fail(x, errno, D_MOUNT);
  x->root_fd = (int)sys_openat2(AT_FDCWD, path, O_PATH | O_DIRECTORY | O_CLOEXEC, 0);
  if (x->root_fd < 0) fail(x, errno, D_OPEN);
}

static void step_pivot(struct ctx* x) {
  int old = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (old < 0) fail(x, errno, D_OPEN);
  if (fchdir(x->root_fd) < 0) fail(x, errno, D_NONE);
  if (syscall(SYS_pivot_root, ".", ".") < 0) fail(x, errno, D_NONE);
  if (fchdir(old) < 0) fail(x, errno, D_NONE);
  /* Keep the unmount from propagating back to the host. */
  if (mount(0, ".", 0, MS_SLAVE | MS_REC, 0) < 0) fail(x, errno, D_PROPAGATION);
  if (umount2(".", MNT_DETACH) < 0) fail(x, errno, D_MOUNT);
  if (chdir("/") < 0) fail(x, errno, D_NONE);
  close(old);
  close(x->root_fd);
  x->root_fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (x->root_fd < 0) fail(x, errno, D_OPEN);
}

static void step_chroot(struct ctx* x) {
  if (fchdir(x->root_fd) < 0) fail(x, errno, D_NONE);
  if (mount(".", "/", 0, MS_MOVE, 0) < 0) fail(x, errno, D_MOUNT);
  if (chroot(".") < 0) fail(x, errno, D_NONE);
  if (chdir("/") < 0) fail(x, errno, D_NONE);
  close(x->root_fd);
  x->root_fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (x->root_fd < 0) fail(x, errno, D_OPEN);
}

/* The runtime's own /dev/null, verified to be the real char device 1:3 (CVE-2025-31133). */
static int verified_devnull(struct ctx* x) {
  int fd = open_in_root(x, "dev/null", O_PATH | O_NOFOLLOW);
  if (fd < 0) fail(x, errno, D_OPEN);
  struct stat st;
  if (fstat(fd, &st) < 0) fail(x, errno, D_STAT);
  if (!S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3)) fail(x, EPERM, D_VERIFY);
  return fd;
}

/* Open a masked/readonly path: -1 when it does not exist (nothing to do); a symlink is refused
 * (CVE-2023-27561: a /proc symlink must not redirect a mask). */
static int open_existing_nolink(struct ctx* x, const char* path, struct stat* st) {
  int fd = open_in_root(x, path, O_PATH | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT) return -1;
    fail(x, errno, D_OPEN);
  }
  if (fstat(fd, st) < 0) fail(x, errno, D_STAT);
  if (S_ISLNK(st->st_mode)) fail(x, ELOOP, D_SYMLINK_TARGET);
  return fd;
}

/* Post-condition: the path is now on a read-only mount. */
static void verify_readonly(struct ctx* x, const char* path) {
  struct statfs sf;
  int v = open_in_root(x, path, O_PATH | O_NOFOLLOW);
  if (v < 0 || fstatfs(v, &sf) < 0 || !(sf.f_flags & ST_RDONLY)) fail(x, EPERM, D_VERIFY);
  close(v);
}

static void step_mask(struct ctx* x, struct cur* c) {
  const char* path = rd_str(c);
  struct stat st;
  int fd = open_existing_nolink(x, path, &st);
  if (fd < 0) return;
  int mfd;
  if (S_ISDIR(st.st_mode)) {
    int fs = (int)syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC);
    if (fs < 0) fail(x, errno, D_MOUNT);
    if (syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "size", "0", 0) < 0) fail(x, errno, D_MOUNT);
    if (syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, 0, 0, 0) < 0) fail(x, errno, D_MOUNT);
    mfd = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC,
                       MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
    if (mfd < 0) fail(x, errno, D_MOUNT);
    close(fs);
  } else {
    int null_fd = verified_devnull(x);
    mfd = (int)syscall(SYS_open_tree, null_fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
    if (mfd < 0) fail(x, errno, D_MOUNT);
    close(null_fd);
  }
  if (sys_move_mount(mfd, fd) < 0) fail(x, errno, D_MOUNT);
  close(mfd);
  close(fd);
  if (S_ISDIR(st.st_mode)) verify_readonly(x, path);
}

static void step_readonly(struct ctx* x, struct cur* c) {
  const char* path = rd_str(c);
  struct stat st;
  int fd = open_existing_nolink(x, path, &st);
  if (fd < 0) return;
  int t = (int)syscall(SYS_open_tree, fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
  if (t < 0) fail(x, errno, D_MOUNT);
  if (sys_mount_setattr(t, "", AT_EMPTY_PATH | AT_RECURSIVE, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, 0) < 0)
    fail(x, errno, D_SETATTR);
  if (sys_move_mount(t, fd) < 0) fail(x, errno, D_MOUNT);
  close(t);
  close(fd);
  verify_readonly(x, path);
}

static void step_root_readonly(struct ctx* x) {
  if (mount(0, "/", 0, MS_REMOUNT | MS_BIND | MS_RDONLY, 0) < 0) {
    /* Locked flags (nosuid, nodev) must be repeated in a remount. */
    struct statfs sf;
    if (statfs("/", &sf) < 0) fail(x, errno, D_STAT);
    unsigned long keep = sf.f_flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME);
    if (mount(0, "/", 0, MS_REMOUNT | MS_BIND | MS_RDONLY | keep, 0) < 0) fail(x, errno, D_REMOUNT);
  }
}

/* An fd on the container's /proc, verified to be a procfs (not a tmpfs or bind laid over it). */
static int verified_proc(struct ctx* x) {
  int proc = open_in_root(x, "proc", O_PATH | O_DIRECTORY | O_NOFOLLOW);
  if (proc < 0) fail(x, errno, D_OPEN);
  struct statfs sf;
  if (fstatfs(proc, &sf) < 0 || sf.f_type != PROC_SUPER_MAGIC) fail(x, EXDEV, D_VERIFY);
  return proc;
}

/* Write a file under a verified procfs, resolved without any symlink; 0, or -1 with errno. */
static int write_in_proc(struct ctx* x, int proc, const char* rel, const char* value) {
  int fd = (int)sys_openat2(proc, rel, O_WRONLY | O_CLOEXEC | O_NOFOLLOW,
                            RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_BENEATH);
  if (fd < 0) return -1;
  struct statfs sf;
  if (fstatfs(fd, &sf) < 0 || sf.f_type != PROC_SUPER_MAGIC) fail(x, EXDEV, D_VERIFY);
  size_t vl = c_strlen(value);
  ssize_t n = write(fd, value, vl);
  int err = errno;
  close(fd);
  if (n != (ssize_t)vl) {
    errno = n < 0 ? err : EIO;
    return -1;
  }
  return 0;
}

static size_t append(struct ctx* x, char* buf, size_t n, size_t cap, const char* s) {
  size_t l = c_strlen(s);
  if (n + l + 1 > cap) fail(x, ENAMETOOLONG, D_OPEN);
  memcpy(buf + n, s, l + 1);
  return n + l;
}

/* Sysctls go through a procfs fd verified by its magic, never through a path string (CVE-2025-52881). */
static void step_sysctl(struct ctx* x, struct cur* c) {
  const char* key = rd_str(c);
  const char* value = rd_str(c);
  int proc = verified_proc(x);
  char rel[512];
  append(x, rel, append(x, rel, 0, sizeof rel, "sys/"), sizeof rel, key);
  if (write_in_proc(x, proc, rel, value) < 0) fail(x, errno, errno == EXDEV ? D_VERIFY : D_WRITE);
  close(proc);
}

/*
 * The LSM label for the next execve: AppArmor's "exec <profile>" or an SELinux context, in
 * /proc/<pid>/attr/ of the verified procfs (our pid in the proc's pid namespace: no
 * self/thread-self symlink to follow). lsm: 1 AppArmor, 2 SELinux.
 */
static void step_lsm_exec(struct ctx* x, struct cur* c) {
  int lsm = (int)rd_int(c);
  const char* value = rd_str(c);
  int proc = verified_proc(x);
  char rel[128], digits[16];
  int d = 0;
  unsigned v = (unsigned)getpid();
  do {
    digits[d++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  size_t n = 0;
  while (d) rel[n++] = digits[--d];
  rel[n] = 0;
  n = append(x, rel, n, sizeof rel, "/attr/");
  int r;
  if (lsm == 1) {
    append(x, rel, n, sizeof rel, "apparmor/exec");
    r = write_in_proc(x, proc, rel, value);
    if (r < 0 && errno == ENOENT) { /* kernels before 5.8 have only the shared attr file */
      append(x, rel, n, sizeof rel, "exec");
      r = write_in_proc(x, proc, rel, value);
    }
  } else {
    append(x, rel, n, sizeof rel, "exec");
    r = write_in_proc(x, proc, rel, value);
  }
  if (r < 0) fail(x, errno, D_WRITE);
  close(proc);
}

static void write_proc_self(struct ctx* x, const char* file, const char* value) {
  int fd = open(file, O_WRONLY | O_CLOEXEC);
  if (fd < 0) fail(x, errno, D_OPEN);
  size_t vl = c_strlen(value);
  if (write(fd, value, vl) != (ssize_t)vl) fail(x, errno, D_WRITE);
  close(fd);
}

static void step_tty(struct ctx* x, struct cur* c) {
  int sock = (int)rd_int(c);
  int rows = (int)rd_int(c), cols = (int)rd_int(c);
  int master = open_in_root(x, "dev/pts/ptmx", O_RDWR | O_NOCTTY | O_NOFOLLOW);
  if (master < 0) fail(x, errno, D_OPEN);
  int unlock = 0;
  if (ioctl(master, TIOCSPTLCK, &unlock) < 0) fail(x, errno, D_NONE);
  /* The peer comes from the master itself, never from a /dev/pts path (CVE-2025-52565). */
  int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY);
  if (slave < 0) fail(x, errno, D_OPEN);
  if (rows > 0 && cols > 0) {
    struct winsize ws;
    memset(&ws, 0, sizeof ws);
    ws.ws_row = (unsigned short)rows;
    ws.ws_col = (unsigned short)cols;
    ioctl(slave, TIOCSWINSZ, &ws);
  }
  /* /dev/console: a file we create on our own /dev, with the pty bound over it. */
  int dev = open_in_root(x, "dev", O_PATH | O_DIRECTORY | O_NOFOLLOW);
  if (dev >= 0) {
    int f = openat(dev, "console", O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY | O_CLOEXEC, 0600);
    if (f >= 0) {
      close(f);
      int tgt = (int)sys_openat2(dev, "console", O_PATH | O_NOFOLLOW | O_CLOEXEC, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS);
      int tree = (int)syscall(SYS_open_tree, slave, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
      if (tgt < 0 || tree < 0 || sys_move_mount(tree, tgt) < 0) fail(x, errno, D_MOUNT);
      close(tree);
      close(tgt);
    }
    close(dev);
  }
  /* Hand the master over: to the console socket (SOCK_STREAM, name payload) or back to us. */
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  memset(&u, 0, sizeof u);
  struct sync_msg m = {MSG_CONSOLE, x->step, 0, 0};
  char name[] = "/dev/ptmx";
  struct iovec iov;
  if (sock >= 0) {
    iov.iov_base = name;
    iov.iov_len = sizeof name - 1;
  } else {
    iov.iov_base = &m;
    iov.iov_len = sizeof m;
  }
  struct msghdr mh;
  memset(&mh, 0, sizeof mh);
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = u.buf;
  mh.msg_controllen = sizeof u.buf;
  struct cmsghdr* cm = CMSG_FIRSTHDR(&mh);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cm), &master, sizeof(int));
  if (sendmsg(sock >= 0 ? sock : x->sync_fd, &mh, MSG_NOSIGNAL) < 0) fail(x, errno, D_SEND);
  close(master);
  if (sock >= 0) close(sock);
  if (ioctl(slave, TIOCSCTTY, 0) < 0) fail(x, errno, D_NONE);
  for (int i = 0; i < 3; i++)
    if (dup2(slave, i) < 0) fail(x, errno, D_NONE);
  if (slave > 2) close(slave);
}

static void step_chdir(struct ctx* x, struct cur* c) {
  const char* cwd = rd_str(c);
  if (chdir(cwd) < 0) fail(x, errno, D_NONE);
  /* A cwd outside our root shows up as "(unreachable)..." or ENOENT (CVE-2024-21626). */
  long n = syscall(SYS_getcwd, x->path_buf, sizeof x->path_buf);
  if (n < 0) fail(x, errno, D_VERIFY);
  if (x->path_buf[0] != '/') fail(x, ENOENT, D_VERIFY);
}

static void step_setuser(struct ctx* x, struct cur* c) {
  uid_t uid = (uid_t)rd_int(c);
  gid_t gid = (gid_t)rd_int(c);
  int64_t n = rd_int(c);
  gid_t groups[256];
  if (n < 0 || n > 256) fail(x, E2BIG, D_NONE);
  for (int64_t i = 0; i < n; i++) groups[i] = (gid_t)rd_int(c);
  /* Raw syscalls: glibc's wrappers would try to broadcast to Node's (absent) threads. */
  if (syscall(SYS_setgroups, (size_t)n, groups) < 0 && !(errno == EPERM && n == 0)) fail(x, errno, D_NONE);
  if (syscall(SYS_setresgid, gid, gid, gid) < 0) fail(x, errno, D_NONE);
  if (syscall(SYS_setresuid, uid, uid, uid) < 0) fail(x, errno, D_NONE);
  /* A euid change clears PDEATHSIG: re-arm it, unless READY already untied us (detached). */
  if (x->pdeathsig) prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0); /* no getppid() check: it reads 0 in a pid ns */
}

static void step_caps_bounding(struct ctx* x, struct cur* c) {
  int last = (int)rd_int(c);
  uint64_t keep = (uint64_t)rd_int(c);
  for (int i = 0; i <= last && i < 64; i++) {
    if (keep & (1ULL << i)) continue;
    if (prctl(PR_CAPBSET_DROP, i, 0, 0, 0) < 0 && errno != EINVAL) fail(x, errno, D_NONE);
  }
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) fail(x, errno, D_NONE);
}

static void step_caps(struct ctx* x, struct cur* c) {
  uint64_t eff = (uint64_t)rd_int(c), perm = (uint64_t)rd_int(c);
  uint64_t inh = (uint64_t)rd_int(c), amb = (uint64_t)rd_int(c);
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct d[2];
  d[0].effective = (uint32_t)eff;
  d[1].effective = (uint32_t)(eff >> 32);
  d[0].permitted = (uint32_t)perm;
  d[1].permitted = (uint32_t)(perm >> 32);
  d[0].inheritable = (uint32_t)inh;
  d[1].inheritable = (uint32_t)(inh >> 32);
  if (syscall(SYS_capset, &h, d) < 0) fail(x, errno, D_NONE);
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) fail(x, errno, D_NONE);
  for (int i = 0; i < 64; i++)
    if ((amb & (1ULL << i)) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, i, 0, 0) < 0) fail(x, errno, D_NONE);
}

/*
 * Load the filter as the last step but the capability (and, without no_new_privs, the
 * credential) calls that must follow it. Without no_new_privs the kernel wants
 * CAP_SYS_ADMIN: raise it in the effective set from the permitted set (kept by KEEPCAPS
 * across a uid change); the CAPS step right after sets the final sets.
 */
static void step_seccomp(struct ctx* x, struct cur* c) {
  unsigned flags = (unsigned)rd_int(c);
  int raise_admin = (int)rd_int(c);
  const void* bytes;
  int64_t len = rd_blob(c, &bytes);
  if (len <= 0 || len % (int64_t)sizeof(struct sock_filter)) fail(x, EINVAL, D_NONE);
  if (raise_admin) {
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    if (syscall(SYS_capget, &h, d) < 0) fail(x, errno, D_NONE);
    d[CAP_TO_INDEX(CAP_SYS_ADMIN)].effective |= CAP_TO_MASK(CAP_SYS_ADMIN);
    if (syscall(SYS_capset, &h, d) < 0) fail(x, errno, D_NONE);
  }
  struct sock_fprog prog;
  prog.len = (unsigned short)(len / (int64_t)sizeof(struct sock_filter));
  prog.filter = (struct sock_filter*)bytes;
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog) < 0) fail(x, errno, D_NONE);
}

static int is_executable_file(const char* path) {
  struct stat st;
  if (stat(path, &st) < 0) return -1;
  if (!S_ISREG(st.st_mode)) {
    errno = EACCES;
    return -1;
  }
  if (faccessat(AT_FDCWD, path, X_OK, AT_EACCESS) < 0) return -1;
  return 0;
}

/* Resolve argv[0] now, so a missing executable fails `create` (as runc does), not `start`. */
static void step_find_exec(struct ctx* x, struct cur* c) {
  const char* argv0 = rd_str(c);
  const char* path = rd_str(c);
  if (c_strchr(argv0, '/')) {
    if (is_executable_file(argv0) < 0) fail(x, errno, D_STAT);
    x->exec_path = argv0;
    return;
  }
  int saw_eacces = 0;
  size_t al = c_strlen(argv0);
  const char* p = path;
  while (1) {
    const char* e = p;
    while (*e && *e != ':') e++;
    size_t dl = (size_t)(e - p);
    if (dl + al + 2 < sizeof x->exec_buf) {
      if (dl == 0) {
        x->exec_buf[0] = '.';
        dl = 1;
      } else {
        memcpy(x->exec_buf, p, dl);
      }
      x->exec_buf[dl] = '/';
      memcpy(x->exec_buf + dl + 1, argv0, al + 1);
      if (is_executable_file(x->exec_buf) == 0) {
        x->exec_path = x->exec_buf;
        return;
      }
      if (errno == EACCES) saw_eacces = 1;
    }
    if (!*e) break;
    p = e + 1;
  }
  fail(x, saw_eacces ? EACCES : ENOENT, D_NOT_FOUND_IN_PATH);
}

static void step_close_fds(struct ctx* x, struct cur* c) {
  unsigned first = (unsigned)rd_int(c);
  if (syscall(SYS_close_range, first, ~0U, CLOSE_RANGE_CLOEXEC) < 0) fail(x, errno, D_NONE);
  /* Node marks even 0-2 CLOEXEC, and dup2(fd, fd) would not clear it: re-arm explicitly. */
  for (unsigned fd = 0; fd < first; fd++) {
    if (fd == (unsigned)x->sync_fd) continue;
    if (fcntl((int)fd, F_SETFD, 0) < 0 && errno != EBADF) fail(x, errno, D_NONE);
  }
}

static void step_ready(struct ctx* x, struct cur* c) {
  int fifo = (int)rd_int(c);
  int clear_pdeathsig = (int)rd_int(c);
  send_msg(x, MSG_READY, 0, 0);
  expect_msg(x, MSG_GO);
  if (clear_pdeathsig) {
    prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
    x->pdeathsig = 0;
  }
  send_msg(x, MSG_WAITING, 0, 0);
  if (fifo >= 0) {
    /* Signals are deliverable while a created container waits (kill TERM ends it, as with
     * runc); dispositions are already SIG_DFL. */
    sigset_t none;
    sigemptyset(&none);
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, 0, sizeof(uint64_t));
    /* We hold a write end too, so read() blocks until `start` writes a byte. */
    int fl = fcntl(fifo, F_GETFL);
    if (fl < 0 || fcntl(fifo, F_SETFL, fl & ~O_NONBLOCK) < 0) _exit(1);
    char b;
    ssize_t n;
    do n = read(fifo, &b, 1);
    while (n < 0 && errno == EINTR);
    if (n != 1) _exit(1);
  }
}

static void step_exec(struct ctx* x, struct cur* c) {
  int64_t argc = rd_int(c);
  if (argc <= 0 || argc > 65536) fail(x, E2BIG, D_NONE);
  const char* argv[argc + 1];
  for (int64_t i = 0; i < argc; i++) argv[i] = rd_str(c);
  argv[argc] = 0;
  int64_t envc = rd_int(c);
  if (envc < 0 || envc > 65536) fail(x, E2BIG, D_NONE);
  const char* envp[envc + 1];
  for (int64_t i = 0; i < envc; i++) envp[i] = rd_str(c);
  envp[envc] = 0;
  sigset_t none;
  sigemptyset(&none);
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, 0, sizeof(uint64_t));
  execve(x->exec_path ? x->exec_path : argv[0], (char* const*)argv, (char* const*)envp);
  int err = errno;
  sigset_t all;
  sigfillset(&all);
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, 0, sizeof(uint64_t));
  fail(x, err, D_NONE);
}

static void step_fork(struct ctx* x) {
  /* CLONE_PARENT: the container's pid 1 becomes a child of the Node process (and, once that
   * exits, of the caller's subreaper), never an orphan of this short-lived stage. */
  struct clone_args a;
  memset(&a, 0, sizeof a);
  a.flags = CLONE_PARENT;
  /* exit_signal must be 0 with CLONE_PARENT: the child inherits ours (SIGCHLD). */
  long pid = syscall(SYS_clone3, &a, sizeof a);
  if (pid < 0) fail(x, errno, D_NONE);
  if (pid > 0) {
    send_msg(x, MSG_PID, 0, (int)pid);
    _exit(0);
  }
  /* PDEATHSIG is cleared by fork: re-arm it against the Node parent. */
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  /* Say nothing until the parent has our pid: stage 1 may not have sent it yet. */
  expect_msg(x, MSG_CONTINUE);
}

static void run_step(struct ctx* x, int op, struct cur* c) {
  switch (op) {
    case OP_SETNS: {
      int fd = (int)rd_int(c);
      int type = (int)rd_int(c);
      if (setns(fd, type) < 0) fail(x, errno, D_NONE);
      close(fd);
      /* Our host ids mean nothing in a joined user namespace: become its root, as after
       * OP_USERNS (files made later would otherwise fail with EOVERFLOW). */
      if (type == CLONE_NEWUSER) {
        if (syscall(SYS_setresgid, 0, 0, 0) < 0) fail(x, errno, D_NONE);
        if (syscall(SYS_setresuid, 0, 0, 0) < 0) fail(x, errno, D_NONE);
      }
      break;
    }
    case OP_USERNS:
      if (unshare(CLONE_NEWUSER) < 0) fail(x, errno, D_NONE);
      send_msg(x, MSG_MAP_REQUEST, 0, 0);
      expect_msg(x, MSG_MAP_DONE);
      if (syscall(SYS_setresgid, 0, 0, 0) < 0) fail(x, errno, D_NONE);
      if (syscall(SYS_setresuid, 0, 0, 0) < 0) fail(x, errno, D_NONE);
      break;
    case OP_UNSHARE:
      if (unshare((int)rd_int(c)) < 0) fail(x, errno, D_NONE);
      break;
    case OP_TIMENS_OFFSETS:
      write_proc_self(x, "/proc/self/timens_offsets", rd_str(c));
      break;
    case OP_FORK:
      step_fork(x);
      break;
    case OP_SETSID:
      if (setsid() < 0 && errno != EPERM) fail(x, errno, D_NONE);
      break;
    case OP_OOM_SCORE_ADJ:
      write_proc_self(x, "/proc/self/oom_score_adj", rd_str(c));
      break;
    case OP_ROOT_PROPAGATION:
      if (mount(0, "/", 0, (unsigned long)rd_int(c), 0) < 0) fail(x, errno, D_PROPAGATION);
      break;
    case OP_BIND_ROOTFS:
      step_bind_rootfs(x, c);
      break;
    case OP_MOUNT:
      step_mount(x, c);
      break;
    case OP_MKNOD:
      step_mknod(x, c);
      break;
    case OP_SYMLINK:
      step_symlink(x, c);
      break;
    case OP_MKDIR: {
      int mode = (int)rd_int(c);
      if (mkdir_in_root(x, rd_str(c), 0, mode) < 0) fail(x, errno, D_MKDIR);
      break;
    }
    case OP_HOOK:
      send_msg(x, MSG_HOOK, 0, (int)rd_int(c));
      expect_msg(x, MSG_CONTINUE);
      break;
    case OP_PIVOT:
      step_pivot(x);
      break;
    case OP_CHROOT:
      step_chroot(x);
      break;
    case OP_SYSCTL:
      step_sysctl(x, c);
      break;
    case OP_HOSTNAME: {
      const char* h = rd_str(c);
      if (sethostname(h, c_strlen(h)) < 0) fail(x, errno, D_NONE);
      break;
    }
    case OP_DOMAINNAME: {
      const char* h = rd_str(c);
      if (setdomainname(h, c_strlen(h)) < 0) fail(x, errno, D_NONE);
      break;
    }
    case OP_MASK:
      step_mask(x, c);
      break;
    case OP_READONLY:
      step_readonly(x, c);
      break;
    case OP_ROOT_READONLY:
      step_root_readonly(x);
      break;
    case OP_RLIMIT: {
      int res = (int)rd_int(c);
      struct {
        uint64_t cur, max;
      } l;
      l.cur = (uint64_t)rd_int(c);
      l.max = (uint64_t)rd_int(c);
      if (syscall(SYS_prlimit64, 0, res, &l, 0) < 0) fail(x, errno, D_NONE);
      break;
    }
    case OP_TTY:
      step_tty(x, c);
      break;
    case OP_CHDIR:
      step_chdir(x, c);
      break;
    case OP_UMASK:
      umask((mode_t)rd_int(c));
      break;
    case OP_CAPS_BOUNDING:
      step_caps_bounding(x, c);
      break;
    case OP_SETUSER:
      step_setuser(x, c);
      break;
    case OP_CAPS:
      step_caps(x, c);
      break;
    case OP_NNP:
      if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) fail(x, errno, D_NONE);
      break;
    case OP_SECCOMP:
      step_seccomp(x, c);
      break;
    case OP_FIND_EXEC:
      step_find_exec(x, c);
      break;
    case OP_CLOSE_FDS:
      step_close_fds(x, c);
      break;
    case OP_READY:
      step_ready(x, c);
      break;
    case OP_EXEC:
      step_exec(x, c);
      break;
    case OP_LSM_EXEC:
      step_lsm_exec(x, c);
      break;
    case OP_STDIN:
      if (dup2((int)rd_int(c), 0) < 0) fail(x, errno, D_NONE);
      break;
    case OP_DUMPABLE:
      if (prctl(PR_SET_DUMPABLE, (int)rd_int(c), 0, 0, 0) < 0) fail(x, errno, D_NONE);
      break;
    default:
      fail(x, EINVAL, D_NONE);
  }
}

/* Entry point, called in the child right after clone3 returns 0. Never returns. */
__attribute__((noreturn)) void child_main(const unsigned char* plan, size_t len, int sync_fd, int parent_pid) {
  struct ctx x;
  memset(&x, 0, sizeof x);
  x.sync_fd = sync_fd;
  x.root_fd = -1;
  x.step = -1;

  /* Node ignores SIGPIPE and SIGXFSZ; an ignored signal would survive execve. */
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (int s = 1; s < 65; s++)
    if (s != SIGKILL && s != SIGSTOP) sigaction(s, &dfl, 0);
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) _exit(1);
  if (getppid() != parent_pid) _exit(1); /* the parent died before PDEATHSIG was armed */
  x.pdeathsig = 1;
  umask(0);

  struct cur c = {plan, plan + len};
  if (rd_int(&c) != PLAN_MAGIC || rd_int(&c) != PLAN_VERSION) fail(&x, EPROTO, D_NONE);
  int64_t nsteps = rd_int(&c);
  for (int64_t i = 0; i < nsteps; i++) {
    x.step = (int)i;
    int op = (int)rd_int(&c);
    int64_t bytes = rd_int(&c);
    if (bytes < 0 || c.p + bytes > c.end) fail(&x, EPROTO, D_NONE);
    struct cur sc = {c.p, c.p + bytes};
    run_step(&x, op, &sc);
    c.p += bytes;
  }
  /* A plan always ends in OP_EXEC; reaching here is a plan bug. */
  fail(&x, EPROTO, D_NONE);
}
