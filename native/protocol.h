/*
 * The parent/child protocol (mirrored in src/native/protocol.ts; keep both in step).
 *
 * Channel: a SOCK_SEQPACKET socketpair created by spawn(); the child's end is CLOEXEC, so
 * the parent reads EOF exactly when the container process has called execve (or died).
 * The child is tsrun-init (init_main.c), exec'd by spawn.cc from a sealed memfd right after
 * clone3; if that execveat fails the fork sends MSG_ERROR{step=-1, value=D_INIT_EXEC}.
 * Every message is one struct sync_msg (16 bytes). A MSG_CONSOLE message carries one fd
 * (SCM_RIGHTS): the pty master, when the plan asks for it to come back to the parent.
 *
 *  child (stage-1)              parent (Node)
 *  MSG_MAP_REQUEST   ------->   writes /proc/<stage1>/{uid_map,gid_map}
 *                    <-------   MSG_MAP_DONE
 *  MSG_PID{value=pid1} ----->   records the container pid, reaps stage-1
 *                    <-------   MSG_CONTINUE (stage-2 waits for it: no message may
 *                               overtake the pid, whatever the scheduler does)
 *  child (stage-2 = container pid 1)
 *  MSG_HOOK{value=id} ------>   runs hooks for that point
 *                    <-------   MSG_CONTINUE
 *  MSG_CONSOLE + fd  ------->   (run --tty without --console-socket) proxies the pty
 *  MSG_READY         ------->   persists state (created), writes the pid file
 *                    <-------   MSG_GO
 *  MSG_WAITING       ------->   the child dropped PDEATHSIG; create may now exit
 *  (blocks on exec.fifo when the plan says so, then execve; EOF tells the parent)
 *  MSG_ERROR{step,err,value=detail} at any point, then _exit(1)
 */
#pragma once
#include <stdint.h>

enum sync_type {
  MSG_MAP_REQUEST = 1,
  MSG_MAP_DONE = 2,
  MSG_PID = 3,
  MSG_HOOK = 4,
  MSG_CONTINUE = 5,
  MSG_READY = 6,
  MSG_GO = 7,
  MSG_WAITING = 8,
  MSG_ERROR = 9,
  MSG_CONSOLE = 10,
};

struct sync_msg {
  int32_t type;
  int32_t step;  /* index of the plan step that failed (MSG_ERROR) */
  int32_t err;   /* errno (MSG_ERROR) */
  int32_t value; /* pid (MSG_PID), hook id (MSG_HOOK), detail code (MSG_ERROR) */
};

/* MSG_ERROR detail codes: which syscall inside a step failed. */
enum err_detail {
  D_NONE = 0,
  D_OPEN = 1,  /* openat2 of a path in the root */
  D_MKDIR = 2, /* creating a missing mount point */
  D_MOUNT = 3,
  D_REMOUNT = 4,
  D_PROPAGATION = 5,
  D_SYMLINK_TARGET = 6, /* refused: the final component is a symlink */
  D_NOT_FOUND_IN_PATH = 7,
  D_VERIFY = 8, /* post-condition check failed (cwd, /dev/null, ST_RDONLY, fs magic) */
  D_MKNOD = 9,
  D_BIND_FALLBACK = 10,
  D_SETATTR = 11,
  D_WRITE = 12,
  D_STAT = 13,
  D_SEND = 14,
  D_RECV = 15,
  D_TYPE = 16,      /* mount target has the wrong type (file vs directory) */
  D_INIT_EXEC = 17, /* step -1: the forked child could not execveat tsrun-init */
};
