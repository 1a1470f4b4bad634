// The engine's side of the monitor (native/monitor_protocol.h): start it as the spawner of a
// container's init, then talk to it on its control socket.
import { closeSync, constants, openSync, read, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { native } from '../native/index.js';
import { MON, MONITOR_FILES } from '../native/monitor-protocol.js';
import { isAlive, procStartTime } from '../runtime/proc.js';
import type { Spawner } from '../runtime/spawn-session.js';
import { TsrunError, wrap } from '../util/errors.js';

const SPAWN_TIMEOUT_MS = 10_000;

export interface MonitorOptions {
  id: string;
  dir: string;
  /** The monitor's end of the console socket (tty). */
  consoleFd?: number;
  /** A foreground CLI's stdio to copy to and from. */
  stdio?: { in?: number; out?: number; err?: number };
  stdin: boolean;
  logMaxSize: number;
  logMaxFiles: number;
  /** argv of the command the monitor runs at the exit when nobody is attached (--rm). */
  exitCommand?: string[];
}

export interface MonitorHandle {
  pid: number;
  startTime: string;
  ctlFd: number;
}

export function monitorArgs(o: MonitorOptions): string[] {
  const args = [o.id, `log=${MONITOR_FILES.log}`, `log-max-size=${o.logMaxSize}`, `log-max-files=${o.logMaxFiles}`];
  if (o.stdin) args.push('stdin=1');
  for (const a of o.exitCommand ?? []) args.push(`exit-arg=${a}`);
  return args;
}

/**
 * A Spawner (runtime/spawn-session.ts) that starts the monitor, which clones the init as its
 * own child. `started` gets the monitor before the init exists: the caller records it and
 * undoes it on failure.
 */
export function monitorSpawner(o: MonitorOptions, started: (m: MonitorHandle) => void): Spawner {
  return (plan, cgroupFd, keepFds) => {
    const dirFd = openSync(o.dir, constants.O_RDONLY | constants.O_DIRECTORY);
    let r: { pid: number; ctlFd: number; syncFd: number };
    try {
      r = native.spawnMonitor(plan, cgroupFd, keepFds, monitorArgs(o), {
        dir: dirFd,
        console: o.consoleFd ?? -1,
        in: o.stdio?.in ?? -1,
        out: o.stdio?.out ?? -1,
        err: o.stdio?.err ?? -1,
      });
    } finally {
      closeSync(dirFd);
    }
    started({ pid: r.pid, startTime: procStartTime(r.pid) ?? '', ctlFd: r.ctlFd });
    const m = native.recvMsg(r.ctlFd, SPAWN_TIMEOUT_MS);
    if (!m || m.type !== MON.SPAWNED) {
      native.close(r.syncFd);
      const why = m?.type === MON.FAILED ? `errno ${m.err}` : m ? `message ${m.type}` : 'it exited';
      throw new TsrunError('ERR_CHILD_FAILED', `the container monitor could not start the container (${why})${monitorError(o.dir)}`);
    }
    return { pid: m.value, syncFd: r.syncFd };
  };
}

function monitorError(dir: string): string {
  try {
    return `: ${readFileSync(join(dir, MONITOR_FILES.error), 'utf8').trim()}`;
  } catch {
    return '';
  }
}

export function sendMonitor(ctlFd: number, type: number, value = 0): void {
  try {
    native.sendMsg(ctlFd, type, value);
  } catch (e) {
    throw wrap(e, 'talk to the container monitor');
  }
}

export function monitorAlive(m: { pid: number; startTime: string } | undefined): boolean {
  return !!m && m.pid > 0 && isAlive(m.pid, m.startTime);
}

/** Kill a monitor this process started and reap it (a failed create). */
export function killMonitor(m: MonitorHandle): void {
  try {
    process.kill(m.pid, 'SIGKILL');
  } catch {
    /* gone */
  }
  try {
    native.waitPid(m.pid, false);
  } catch {
    /* not ours */
  }
  try {
    native.close(m.ctlFd);
  } catch {
    /* closed */
  }
}

/**
 * A foreground CLI waits for MON_EXITED on the control socket (read in libuv's pool, so signal
 * handlers keep running). undefined: the monitor hung up without one (it died).
 */
export async function waitForExit(ctlFd: number): Promise<number | undefined> {
  const buf = Buffer.alloc(16);
  for (;;) {
    const n = await new Promise<number>((res, rej) => read(ctlFd, buf, 0, 16, null, (e, got) => (e ? rej(e) : res(got))));
    if (n < 16) return undefined;
    if (buf.readInt32LE(0) === MON.EXITED) return buf.readInt32LE(12);
  }
}
