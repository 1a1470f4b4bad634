// Mirror of native/monitor_protocol.h (the engine <-> monitor protocol, documented there).

export const MON = {
  SPAWNED: 101,
  FAILED: 102,
  EXITED: 103,
  INIT: 111,
  DETACH: 112,
  RESIZE: 113,
  SIGNAL: 114,
} as const;

export const ATTACH = {
  STDIN: 1,
  STDOUT: 2,
  STDERR: 3,
  RESIZE: 4,
  STDIN_EOF: 5,
  EXIT: 6,
} as const;

export const ATTACH_HEADER = 5;
export const ATTACH_MAX_PAYLOAD = 65536;

/** Files the monitor writes in the container's directory. */
export const MONITOR_FILES = { log: 'ctr.log', exit: 'exit.json', attach: 'attach', error: 'monitor.err' } as const;
