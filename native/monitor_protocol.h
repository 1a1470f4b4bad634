/*
 * The engine <-> monitor protocol (mirrored in src/native/monitor-protocol.ts; keep both in
 * step). The monitor is the per-container process that outlives the CLI (conmon's job): it
 * starts the container's init, is its parent and subreaper, holds its stdio (pipes or the
 * pty master), writes the log, serves attach clients, records the exit and, when asked,
 * runs an exit command (`tsrun container cleanup`).
 *
 * It is the role "tsrun-monitor" of the static tsrun-init executable (init_main.c),
 * started by the addon (spawn.cc spawnMonitor) from the same sealed memfd copy:
 *   argv = { "tsrun-monitor", <container id>, "key=value"... }
 *   env  = { "_TSRUN_MONITOR=<ctl>,<exec>,<plan>,<sync>,<cgroup>,<dir>,<console>,<in>,<out>,<err>" }
 * fds: ctl = the monitor's end of a SOCK_SEQPACKET socketpair with the engine; exec = the
 * sealed tsrun-init memfd; plan/sync = the init's plan memfd and its protocol socket
 * (protocol.h; the engine drives that protocol itself, directly with the init); cgroup =
 * the container's cgroup v2 dir (-1: none) for CLONE_INTO_CGROUP and memory.events; dir =
 * the container's engine directory (log, exit record, attach socket live there); console =
 * the socket on which the init sends the pty master (-1: no tty); in/out/err = a foreground
 * CLI's own stdio to copy to and from (-1: none). Every other fd the monitor inherits belongs
 * to the init's plan: it passes them to the init and closes its own copies.
 *
 * Options (argv "key=value"): log=<name in dir> (default ctr.log), log-max-size=<bytes>
 * (0: no limit), log-max-files=<n> (rotated files kept: name.1 .. name.n-1; 1 = none kept),
 * stdin=1 (the container gets a stdin pipe), exit-arg=<s> (repeated: the exit command's argv).
 *
 * Control messages are struct sync_msg (protocol.h), 16 bytes, on ctl:
 *   monitor -> engine  MON_SPAWNED{value=stage-1 pid}   right after clone3
 *                      MON_FAILED{err}                  clone3 or setup failed; it exits
 *                      MON_EXITED{value=status}          after the exit record is written
 *   engine -> monitor  MON_INIT{value=init pid}         the container's pid 1 (from MSG_PID)
 *                      MON_DETACH                        the engine will close ctl: not an abort;
 *                                                        sent before MON_INIT (the monitor may
 *                                                        finish as soon as it knows the init)
 *                      MON_RESIZE{value=rows<<16|cols}   the foreground terminal's new size
 *                      MON_SIGNAL{value=signal}          forward to the init (foreground ^C etc)
 * EOF on ctl before MON_INIT: the engine died while setting up; the monitor kills what it
 * started and exits (the init has PDEATHSIG on it). EOF after MON_INIT without MON_DETACH:
 * the foreground CLI is gone; at the exit the exit command runs as if detached.
 *
 * Files in dir (written by the monitor):
 *   <log>        lines "<RFC3339Nano UTC> <stdout|stderr> <F|P> <bytes>\n" (the CRI format
 *                kubelet and podman's k8s-file use; P = a partial line, cut at 16 KiB or at
 *                the exit), opened O_APPEND, rotated by size, fsync'd at the exit
 *   exit.json    {"exitCode":N,"signal":S,"oomKilled":B,"finishedAt":"<RFC3339Nano>"}, written
 *                to exit.json.tmp and renamed after the log is synced: once it exists, the
 *                log is complete (conmon's order)
 *   monitor.err  one line when the monitor itself fails after setup
 *   attach       SOCK_STREAM unix socket (mode 0600) for attach clients, frames below
 *
 * Attach frames (both directions): u8 type, u32 little-endian length, payload.
 *   client -> monitor  ATTACH_STDIN (bytes for the container's stdin), ATTACH_STDIN_EOF,
 *                      ATTACH_RESIZE (u16 rows, u16 cols, little endian)
 *   monitor -> client  ATTACH_STDOUT, ATTACH_STDERR (output from the moment of attaching),
 *                      ATTACH_EXIT (i32 status, little endian), then the monitor closes
 * A client that cannot keep up (its socket buffer full) is dropped, never waited for.
 */
#pragma once

enum monitor_msg {
  MON_SPAWNED = 101,
  MON_FAILED = 102,
  MON_EXITED = 103,
  MON_INIT = 111,
  MON_DETACH = 112,
  MON_RESIZE = 113,
  MON_SIGNAL = 114,
};

enum attach_frame {
  ATTACH_STDIN = 1,
  ATTACH_STDOUT = 2,
  ATTACH_STDERR = 3,
  ATTACH_RESIZE = 4,
  ATTACH_STDIN_EOF = 5,
  ATTACH_EXIT = 6,
};

#define ATTACH_HEADER 5
#define ATTACH_MAX_PAYLOAD 65536
