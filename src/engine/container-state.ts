// A container's status, derived every time from what is true now (never trusted from a
// file): the monitor's exit record, whether the monitor lives (pid + start time), and the
// runtime core's own derivation (live init, exec fifo, cgroup.freeze).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MONITOR_FILES } from '../native/monitor-protocol.js';
import { statusOf } from '../runtime/lifecycle.js';
import type { ContainerRecord as RuntimeRecord } from '../runtime/state-store.js';
import type { ContainerRecord } from './container-store.js';
import type { EngineContext } from './context.js';
import { monitorAlive } from './monitor.js';

export type EngineStatus = 'creating' | 'created' | 'running' | 'paused' | 'stopping' | 'exited' | 'unknown' | 'dead' | 'removing';

export interface ExitRecord {
  exitCode: number;
  signal: number;
  oomKilled: boolean;
  finishedAt: string;
}

export interface ContainerState {
  status: EngineStatus;
  running: boolean;
  paused: boolean;
  pid: number;
  exitCode: number;
  oomKilled: boolean;
  startedAt: string;
  finishedAt: string;
  /** Why the state is not what it seems (a lost monitor, a create that never finished). */
  error: string;
  monitorPid: number;
  monitorAlive: boolean;
}

/** Exit code when the monitor died without recording one (containerd's "unknown" is 255). */
export const UNKNOWN_EXIT = 255;

export function readExitRecord(dir: string): ExitRecord | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, MONITOR_FILES.exit), 'utf8')) as ExitRecord;
  } catch {
    return undefined;
  }
}

export function runtimeRecord(ctx: EngineContext, id: string): RuntimeRecord | undefined {
  try {
    return ctx.runtime.store.read(id);
  } catch {
    return undefined;
  }
}

export function containerState(ctx: EngineContext, rec: ContainerRecord): ContainerState {
  const dir = ctx.containers.dir(rec.id);
  const alive = monitorAlive(rec.monitor);
  const base: ContainerState = {
    status: 'created',
    running: false,
    paused: false,
    pid: 0,
    exitCode: 0,
    oomKilled: false,
    startedAt: rec.startedAt ?? '',
    finishedAt: '',
    error: '',
    monitorPid: rec.monitor?.pid ?? 0,
    monitorAlive: alive,
  };
  if (rec.phase === 'removing') return { ...base, status: 'removing' };
  const exit = readExitRecord(dir);
  const rt = runtimeRecord(ctx, rec.id);
  const rtStatus = rt ? statusOf(ctx.runtime, rt) : undefined;
  // A new run after an exit: the exit record is removed before the next monitor starts.
  if (exit && !(alive && rtStatus && rtStatus !== 'stopped')) {
    return { ...base, status: 'exited', exitCode: exit.exitCode, oomKilled: exit.oomKilled, finishedAt: exit.finishedAt };
  }
  if (rec.phase === 'creating') {
    if (alive) return { ...base, status: 'creating' };
    return { ...base, status: 'dead', exitCode: UNKNOWN_EXIT, error: 'the create did not finish (its process was killed): remove it with `tsrun rm -f`' };
  }
  if (!rec.monitor) return { ...base, status: 'created' }; // never started (a create from an older layout)
  if (!rt || rtStatus === 'stopped') {
    if (alive) return { ...base, status: 'stopping' };
    return { ...base, status: 'exited', exitCode: UNKNOWN_EXIT, error: 'monitor lost: it died before recording the exit status' };
  }
  const pid = rt.pid;
  if (!alive) {
    return {
      ...base,
      status: 'unknown',
      pid,
      error: `monitor lost: no exit will be recorded; the container's init (pid ${pid}) is still alive (stop or remove it)`,
    };
  }
  if (rtStatus === 'paused') return { ...base, status: 'paused', paused: true, running: true, pid };
  if (rtStatus === 'created') return { ...base, status: 'created', pid };
  return { ...base, status: 'running', running: true, pid };
}
