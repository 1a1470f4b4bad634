// The operations on an existing container: state, start, kill, delete, pause/resume, ps,
// list. Status is derived from the live process (pid + start time), the exec fifo and
// cgroup.freeze, never trusted from a file (crun's libcrun_check_pid_valid).
import { closeSync, constants, existsSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { removeV1 } from '../cgroups/v1-membership.js';
import { native } from '../native/index.js';
import type { ContainerStatus, OciState } from '../spec/types.js';
import { isErrno, TsrunError, wrap } from '../util/errors.js';
import type { RuntimeContext } from './context.js';
import { ociState } from './create.js';
import { runHooksInContainer } from './container-hooks.js';
import { cgroupMadeForIt, hasOwnPidNs, signalContainerProcesses } from './container-processes.js';
import { runHooks } from './hooks.js';
import { isAlive } from './proc.js';
import type { ContainerRecord } from './state-store.js';

export function statusOf(ctx: RuntimeContext, rec: ContainerRecord): ContainerStatus {
  if (rec.phase === 'creating') {
    // A create whose process is gone crashed: 'stopped', and `delete` finishes its job.
    const creatorAlive = rec.creatorStartTime ? isAlive(rec.creatorPid, rec.creatorStartTime) : existsSync(`/proc/${rec.creatorPid}`);
    return rec.pid === 0 && creatorAlive ? 'creating' : 'stopped';
  }
  if (!isAlive(rec.pid, rec.startTime)) return 'stopped';
  // Frozen first (runc's order): a paused, never-started container must still be resumable.
  if (ctx.cgroup && rec.cgroupPath && ctx.cgroup.isFrozen(rec.cgroupPath)) return 'paused';
  if (existsSync(ctx.store.fifoPath(rec.id))) return 'created';
  return 'running';
}

export function getState(ctx: RuntimeContext, id: string): OciState {
  const rec = ctx.store.read(id);
  return ociState(rec, statusOf(ctx, rec));
}

export function listStates(ctx: RuntimeContext): OciState[] {
  const out: OciState[] = [];
  for (const id of ctx.store.ids()) {
    try {
      out.push({ ...getState(ctx, id), owner: 'root' });
    } catch {
      /* removed meanwhile, or mid-create without a state file yet */
    }
  }
  return out;
}

export async function startContainer(ctx: RuntimeContext, id: string): Promise<void> {
  const release = ctx.store.lock(id);
  let rec: ContainerRecord;
  try {
    rec = ctx.store.read(id);
    const status = statusOf(ctx, rec);
    if (status !== 'created') {
      throw new TsrunError(
        'ERR_INVALID_STATE',
        status === 'stopped' ? 'cannot start a container that has stopped' : `cannot start an already ${status} container`,
      );
    }
    // startContainer hooks: in the container, after `start` was called, before the program.
    const hooks = rec.config.hooks?.startContainer;
    if (hooks?.length) {
      const namespaces = (rec.config.linux?.namespaces ?? []).map((n) => n.type);
      const cgroupFd = ctx.cgroup && rec.cgroupPath && ctx.cgroup.exists(rec.cgroupPath) ? ctx.cgroup.openDir(rec.cgroupPath) : -1;
      try {
        await runHooksInContainer('startContainer', hooks, ociState(rec, 'created'), { namespaces, capabilities: rec.config.process?.capabilities, cgroupFd });
      } finally {
        if (cgroupFd >= 0) closeSync(cgroupFd);
      }
    }
    const fifo = ctx.store.fifoPath(id);
    let fd: number;
    try {
      fd = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
    } catch (e) {
      // ENXIO: no reader, the init is gone.
      if (isErrno(e, 'ENXIO')) throw new TsrunError('ERR_CONTAINER_NOT_RUNNING', 'cannot start a container that has stopped');
      throw wrap(e, `open ${fifo}`);
    }
    try {
      writeSync(fd, '0');
    } finally {
      closeSync(fd);
    }
    unlinkSync(fifo);
  } finally {
    release();
  }
  await runHooks('poststart', rec.config.hooks?.poststart, ociState(rec, 'running'), { cwd: rec.bundle, onWarning: (m) => ctx.log.warn(m) });
}

/** Signal exactly the recorded init: a pidfd, checked against the start time after opening. */
function signalInit(rec: ContainerRecord, signal: number): void {
  let pidfd: number;
  try {
    pidfd = native.pidfdOpen(rec.pid);
  } catch {
    throw new TsrunError('ERR_CONTAINER_NOT_RUNNING', 'container not running');
  }
  try {
    if (!isAlive(rec.pid, rec.startTime)) throw new TsrunError('ERR_CONTAINER_NOT_RUNNING', 'container not running');
    native.pidfdSignal(pidfd, signal);
  } catch (e) {
    if (e instanceof TsrunError) throw e;
    if (isErrno(e, 'ESRCH')) throw new TsrunError('ERR_CONTAINER_NOT_RUNNING', 'container not running');
    throw wrap(e, `signal container init ${rec.pid}`);
  } finally {
    native.close(pidfd);
  }
}

export function killContainer(ctx: RuntimeContext, id: string, signal: number, all: boolean): void {
  const rec = ctx.store.read(id);
  const status = statusOf(ctx, rec);
  if (all) {
    // Must succeed on a stopped container: CRI sends kill --all after the init died.
    signalContainerProcesses(ctx, rec, signal);
    return;
  }
  if (status === 'stopped' || status === 'creating') throw new TsrunError('ERR_CONTAINER_NOT_RUNNING', 'container not running');
  signalInit(rec, signal);
}

/** Wait (without being its parent) until the init is gone. */
function waitGone(rec: ContainerRecord, timeoutMs: number): boolean {
  let pidfd: number;
  try {
    pidfd = native.pidfdOpen(rec.pid);
  } catch {
    return true;
  }
  try {
    if (native.pollReadable(pidfd, timeoutMs)) return true;
    return !isAlive(rec.pid, rec.startTime);
  } finally {
    native.close(pidfd);
  }
}

export async function deleteContainer(ctx: RuntimeContext, id: string, force: boolean): Promise<void> {
  const release = ctx.store.lock(id);
  let rec: ContainerRecord;
  try {
    try {
      rec = ctx.store.read(id);
    } catch (e) {
      if (e instanceof TsrunError && e.code === 'ERR_CONTAINER_NOT_FOUND' && force) {
        ctx.store.remove(id); // a create killed before its first state write
        return;
      }
      throw e;
    }
    const status = statusOf(ctx, rec);
    if (status === 'creating') throw new TsrunError('ERR_INVALID_STATE', `container ${id} is being created by process ${rec.creatorPid}`);
    // runtime-spec: delete of a container that is not stopped MUST fail (created included).
    if ((status === 'running' || status === 'paused' || status === 'created') && !force) {
      throw new TsrunError('ERR_INVALID_STATE', `cannot delete container ${id} that is not stopped: ${status}`);
    }
    // A stopped container with its own pid namespace has no process left: nothing is killed.
    // A live init (running, created, or left by a create that crashed after READY) is.
    let killed = false;
    if (isAlive(rec.pid, rec.startTime)) {
      killed = signalContainerProcesses(ctx, rec, 9);
      if (!waitGone(rec, 10_000)) throw new TsrunError('ERR_INVALID_STATE', `container ${id} init ${rec.pid} did not exit after SIGKILL`);
    }
    // How long a cgroup may take to empty: killed processes, or a crashed create's dying of PDEATHSIG.
    const emptyWait = () => (killed || rec.phase === 'creating' ? 5000 : 200);
    const cg = ctx.cgroup && rec.cgroupPath && ctx.cgroup.exists(rec.cgroupPath) ? ctx.cgroup : null;
    if (cg && cgroupMadeForIt(rec)) {
      const rel = rec.cgroupPath!;
      // Without its own pid namespace, processes of the container may outlive its init.
      if (!hasOwnPidNs(rec)) killed = signalContainerProcesses(ctx, rec, 9) || killed;
      // A crashed create's processes die of PDEATHSIG: give them (and killed ones) time to go.
      const left = cg.removeIfUnused(rel, emptyWait());
      if (left) ctx.log.warn(`cgroup ${cg.path(rel)} left in place: ${left} process(es) that are not container ${id}'s live in it`);
    }
    // Hybrid hosts: the v1 directories this container's create made, when empty (never kills).
    for (const l of removeV1(rec.cgroupV1, emptyWait())) ctx.log.warn(`cgroup ${l.dir} left in place: ${l.reason}`);
    ctx.store.remove(id);
  } finally {
    release();
  }
  await runHooks('poststop', rec.config.hooks?.poststop, ociState(rec, 'stopped'), { cwd: rec.bundle, onWarning: (m) => ctx.log.warn(m) });
}

function requireCgroup(ctx: RuntimeContext, rec: ContainerRecord, what: string): string {
  if (!ctx.cgroup || !rec.cgroupPath) {
    throw new TsrunError('ERR_UNSUPPORTED', `cannot ${what} container ${rec.id}: it is not in a cgroup v2 hierarchy`, {
      hint: 'mount cgroup2 (hybrid hosts have it at /sys/fs/cgroup/unified)',
    });
  }
  return rec.cgroupPath;
}

export function pauseContainer(ctx: RuntimeContext, id: string): void {
  const rec = ctx.store.read(id);
  const status = statusOf(ctx, rec);
  if (status !== 'running' && status !== 'created') throw new TsrunError('ERR_INVALID_STATE', `container ${id} is not running: ${status}`);
  ctx.cgroup!.freeze(requireCgroup(ctx, rec, 'pause'), true);
}

export function resumeContainer(ctx: RuntimeContext, id: string): void {
  const rec = ctx.store.read(id);
  const status = statusOf(ctx, rec);
  if (status !== 'paused') throw new TsrunError('ERR_INVALID_STATE', `container ${id} is not paused: ${status}`);
  ctx.cgroup!.freeze(requireCgroup(ctx, rec, 'resume'), false);
}

/** Host pids in the container's cgroup; null when stopped (runc prints `null`). */
export function containerPids(ctx: RuntimeContext, id: string): number[] | null {
  const rec = ctx.store.read(id);
  if (statusOf(ctx, rec) === 'stopped') return null;
  if (ctx.cgroup && rec.cgroupPath) return ctx.cgroup.procs(rec.cgroupPath);
  return [rec.pid];
}

/** Processes the OOM killer took in the container's cgroup (memory.events oom_kill). */
export function oomKills(ctx: RuntimeContext, id: string): number {
  const rec = ctx.store.read(id);
  if (!ctx.cgroup || !rec.cgroupPath) return 0;
  try {
    const m = /^oom_kill (\d+)$/m.exec(readFileSync(join(ctx.cgroup.path(rec.cgroupPath), 'memory.events'), 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}
