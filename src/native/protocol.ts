// Mirror of native/protocol.h (the parent/child sync protocol; the table is documented there).

export const MSG = {
  MAP_REQUEST: 1,
  MAP_DONE: 2,
  PID: 3,
  HOOK: 4,
  CONTINUE: 5,
  READY: 6,
  GO: 7,
  WAITING: 8,
  ERROR: 9,
  CONSOLE: 10,
} as const;

/** Which syscall inside a step failed (MSG_ERROR value). */
export const DETAIL: Record<number, string> = {
  0: '',
  1: 'openat2',
  2: 'mkdirat',
  3: 'mount',
  4: 'mount(MS_REMOUNT)',
  5: 'mount(propagation)',
  6: 'symlink check',
  7: 'PATH lookup',
  8: 'verify',
  9: 'mknodat',
  10: 'bind mount (mknod fallback)',
  11: 'mount_setattr',
  12: 'write',
  13: 'stat',
  14: 'sendmsg',
  15: 'recv',
  16: 'type check',
  17: 'execveat tsrun-init',
};

export const D_SYMLINK_TARGET = 6;
export const D_NOT_FOUND_IN_PATH = 7;
export const D_VERIFY = 8;
export const D_STAT = 13;
export const D_INIT_EXEC = 17;
