/*
 * The init plan: a flat list of steps computed and validated by TypeScript
 * (src/linux/plan.ts, which also encodes it) and executed in order by the forked child
 * (child.c). No pointers cross the boundary: the plan is one byte buffer.
 *
 * Encoding (little endian, every item 8-byte aligned):
 *   header : i64 magic (PLAN_MAGIC), i64 version, i64 nsteps
 *   step   : i64 op, i64 payload_bytes, payload
 *   int    : i64
 *   string : i64 length, bytes, NUL, zero padding to a multiple of 8
 *   list   : i64 count, then `count` strings
 * Each op's payload fields, in order, are listed below and in plan.ts (OP_FIELDS).
 */
#pragma once

#define PLAN_MAGIC 0x31504c5052535354LL /* "TSRSPLP1" */
#define PLAN_VERSION 1

enum plan_op {
  OP_SETNS = 1,            /* int fd, int nstype */
  OP_USERNS = 2,           /* (none) unshare(CLONE_NEWUSER), MAP_REQUEST/DONE, become ns root */
  OP_UNSHARE = 3,          /* int flags */
  OP_TIMENS_OFFSETS = 4,   /* string offsets (written to /proc/self/timens_offsets) */
  OP_FORK = 5,             /* (none) clone(CLONE_PARENT): the rest runs in the new pid 1 */
  OP_SETSID = 6,           /* (none) */
  OP_OOM_SCORE_ADJ = 7,    /* string value */
  OP_ROOT_PROPAGATION = 8, /* int flags: mount(NULL, "/", NULL, flags) */
  OP_BIND_ROOTFS = 9,      /* string path: bind it onto itself, open it as the root fd */
  OP_MOUNT = 10,      /* int flags, int kind(0 dir, 1 file, | 4 follow a final symlink in root), int is_bind, int remount_flags,
                         int propagation, int attr_set, int attr_clr,
                         string source, string target (relative to root), string fstype, string data */
  OP_MKNOD = 11,      /* int mode, int major, int minor, int uid, int gid,
                         string target (relative), string host_path (bind fallback) */
  OP_SYMLINK = 12,    /* string link_target, string path (relative) */
  OP_MKDIR = 13,      /* int mode, string path (relative): mkdir -p in root, existing is fine */
  OP_HOOK = 14,       /* int hook id: ask the parent to run hooks, wait for MSG_CONTINUE */
  OP_PIVOT = 15,      /* (none) */
  OP_CHROOT = 16,     /* (none) --no-pivot: MS_MOVE + chroot */
  OP_SYSCTL = 17,     /* string key path under /proc/sys, string value */
  OP_HOSTNAME = 18,   /* string */
  OP_DOMAINNAME = 19, /* string */
  OP_MASK = 20,       /* string absolute path */
  OP_READONLY = 21,   /* string absolute path */
  OP_ROOT_READONLY = 22, /* (none) */
  OP_RLIMIT = 23,        /* int resource, int soft, int hard */
  OP_TTY = 24,           /* int socket fd (-1: the sync socket), int rows, int cols */
  OP_CHDIR = 25,         /* string cwd */
  OP_UMASK = 26,         /* int mask */
  OP_CAPS_BOUNDING = 27, /* int last_cap, int keep_mask: drop the rest, set KEEPCAPS */
  OP_SETUSER = 28,       /* int uid, int gid, int ngroups, then ngroups ints */
  OP_CAPS = 29,          /* int effective, int permitted, int inheritable, int ambient */
  OP_NNP = 30,           /* (none) */
  OP_SECCOMP = 31,       /* int flags, int raise_admin (CAP_SYS_ADMIN first: no NNP), string bpf bytes (blob) */
  OP_FIND_EXEC = 32,     /* string argv0, string PATH */
  OP_CLOSE_FDS = 33,     /* int first: everything >= first gets CLOEXEC; 0..first-1 lose it */
  OP_READY = 34,         /* int fifo_fd (-1: none), int clear_pdeathsig */
  OP_EXEC = 35,          /* list argv, list envp */
  OP_DUMPABLE = 36,      /* int value (prctl PR_SET_DUMPABLE) */
  OP_STDIN = 37,         /* int fd: becomes fd 0 (hooks read the state from it) */
  OP_LSM_EXEC = 38,      /* int lsm (1 AppArmor, 2 SELinux), string value for attr/.../exec */
};
