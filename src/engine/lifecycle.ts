// stop, kill, wait, rm, pause/unpause, cleanup: the engine's verbs over a container record,
// through the same runtime core as tsrun-oci. Waiting never holds the container's lock.
import { removeRootfs, unmountRootfs } from '../image/rootfs.js';
import { deleteContainer as runtimeDelete, killContainer, pauseContainer, resumeContainer } from '../runtime/lifecycle.js';
import { parseSignal } from '../runtime/signals.js';
import { TsrunError } from '../util/errors.js';
import type { ContainerRecord } from './container-store.js';
import { type ContainerState, containerState } from './container-state.js';
import type { EngineContext } from './context.js';
import { monitorAlive } from './monitor.js';
import { stopNetworking } from './network-setup.js';

const POLL_MS = 10;
const KILL_WAIT_MS = 10_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function isUp(st: ContainerState): boolean {
  return st.status === 'running' || st.status === 'paused' || st.status === 'stopping' || st.status === 'unknown';
}

/** Poll until the container is no longer up (the monitor has written its exit), or the deadline. */
export async function waitUntilDown(ctx: EngineContext, id: string, timeoutMs: number, name = id): Promise<ContainerState> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let rec: ContainerRecord;
    try {
      rec = ctx.containers.read(id);
    } catch (e) {
      if (e instanceof TsrunError && e.code === 'ERR_CONTAINER_NOT_FOUND') throw new TsrunError('ERR_CONTAINER_NOT_FOUND', `no such container: ${name}`);
      throw e;
    }
    const st = containerState(ctx, rec);
    if (!isUp(st) || Date.now() >= deadline) return st;
    await sleep(POLL_MS);
  }
}

function signalInit(ctx: EngineContext, rec: ContainerRecord, signal: number, all: boolean): void {
  try {
    killContainer(ctx.runtime, rec.id, signal, all);
  } catch (e) {
    // Down or gone meanwhile (another command won the race): the caller reads the state next.
    if (!(e instanceof TsrunError && (e.code === 'ERR_CONTAINER_NOT_FOUND' || /not running|stopped/.test(e.message)))) throw e;
  }
}

export function killEngineContainer(ctx: EngineContext, ref: string, signal = 'SIGKILL'): ContainerRecord {
  const rec = ctx.containers.resolve(ref);
  const st = containerState(ctx, rec);
  if (!isUp(st)) throw new TsrunError('ERR_CONTAINER_NOT_RUNNING', `container ${rec.name} is not running`);
  const sig = parseSignal(signal);
  if (st.status === 'paused' && sig === 9) resumeContainer(ctx.runtime, rec.id);
  signalInit(ctx, rec, sig, false);
  return rec;
}

/** docker stop: the stop signal, `timeoutSec` to exit, then SIGKILL to every process. */
export async function stopContainer(ctx: EngineContext, ref: string, timeoutSec?: number): Promise<ContainerRecord> {
  const rec = ctx.containers.resolve(ref);
  let st = containerState(ctx, rec);
  if (!isUp(st)) return rec; // docker: stopping a stopped container is not an error
  if (st.status === 'paused') resumeContainer(ctx.runtime, rec.id);
  const timeout = timeoutSec ?? rec.stopTimeout;
  if (st.status !== 'unknown') signalInit(ctx, rec, parseSignal(rec.stopSignal), false);
  st = await waitUntilDown(ctx, rec.id, timeout * 1000, rec.name);
  if (isUp(st)) {
    signalInit(ctx, rec, 9, true);
    st = await waitUntilDown(ctx, rec.id, KILL_WAIT_MS, rec.name);
    if (isUp(st)) throw new TsrunError('ERR_INVALID_STATE', `container ${rec.name} did not exit after SIGKILL (${st.status})`);
  }
  return rec;
}

/** docker wait: the exit code once the container is down (255 when the monitor was lost). */
export async function waitContainer(ctx: EngineContext, ref: string): Promise<number> {
  const rec = ctx.containers.resolve(ref);
  for (;;) {
    let st: ContainerState;
    try {
      st = containerState(ctx, ctx.containers.read(rec.id));
    } catch {
      throw new TsrunError('ERR_CONTAINER_NOT_FOUND', `container ${rec.name} was removed while waiting`);
    }
    if (st.status === 'exited' || st.status === 'dead') return st.exitCode;
    await sleep(50); // a created container is waited for until it has run and exited (docker)
  }
}

export interface RemoveOptions {
  force?: boolean;
  /** -v: anonymous volumes go too. */
  volumes?: boolean;
}

/** Remove a container that is down: runtime state and cgroup, overlay, record, lock. */
async function removeDown(ctx: EngineContext, rec: ContainerRecord, o: RemoveOptions): Promise<void> {
  rec.phase = 'removing';
  ctx.containers.write(rec);
  // A monitor still alive (stuck draining) goes with the container; its pid is checked by start time.
  if (monitorAlive(rec.monitor)) {
    try {
      process.kill(rec.monitor!.pid, 'SIGKILL');
    } catch {
      /* exited meanwhile */
    }
  }

  if (ctx.runtime.store.ids().includes(rec.id)) await runtimeDelete(ctx.runtime, rec.id, true);
  await stopNetworking(ctx, rec); // before the record goes: a failed DEL leaves what `rm -f` retries
  removeRootfs(ctx.images, rec.id);
  ctx.containers.removeDir(rec.id);
  if (o.volumes) {
    for (const v of rec.anonymousVolumes) {
      try {
        ctx.volumes.remove(v, { inUse: (n) => volumeUsers(ctx, n) });
      } catch (e) {
        ctx.log.warn(`volume ${v}: ${(e as Error).message}`);
      }
    }
  }
}

export async function removeContainer(ctx: EngineContext, ref: string, o: RemoveOptions = {}): Promise<ContainerRecord> {
  const rec = ctx.containers.resolve(ref);
  let st = containerState(ctx, rec);
  if ((isUp(st) || st.status === 'creating') && !o.force) {
    throw new TsrunError('ERR_INVALID_STATE', `cannot remove container ${rec.name}: it is ${st.status}`, { hint: 'stop it first, or use rm -f' });
  }
  if (isUp(st)) {
    if (st.status === 'paused') resumeContainer(ctx.runtime, rec.id);
    signalInit(ctx, rec, 9, true);
    st = await waitUntilDown(ctx, rec.id, KILL_WAIT_MS, rec.name);
  }
  const unlock = ctx.containers.lock(rec.id);
  try {
    let current: ContainerRecord;
    try {
      current = ctx.containers.read(rec.id);
    } catch {
      throw new TsrunError('ERR_CONTAINER_NOT_FOUND', `no such container: ${rec.name}`);
    }
    await removeDown(ctx, current, o);
  } finally {
    unlock();
    ctx.containers.unlinkLock(rec.id);
  }
  return rec;
}

/** The monitor's exit command: --rm removes the container; otherwise its overlay is unmounted. */
export async function cleanupContainer(ctx: EngineContext, id: string, rm: boolean): Promise<void> {
  let rec: ContainerRecord;
  try {
    rec = ctx.containers.read(id);
  } catch {
    return; // removed already (a foreground CLI did it)
  }
  const st = containerState(ctx, rec);
  if (isUp(st)) return; // started again meanwhile
  if (rm) {
    await removeContainer(ctx, id, { force: true, volumes: true });
    return;
  }
  const unlock = ctx.containers.lock(id);
  let gone = false;
  try {
    let current: ContainerRecord;
    try {
      current = ctx.containers.read(id);
    } catch {
      gone = true; // removed while we waited for the lock
      return;
    }
    if (isUp(containerState(ctx, current))) return; // started again meanwhile
    await stopNetworking(ctx, current);
    unmountRootfs(ctx.images, id);
  } finally {
    unlock();
    if (gone) ctx.containers.unlinkLock(id);
  }
}

export function pauseEngineContainer(ctx: EngineContext, ref: string): ContainerRecord {
  const rec = ctx.containers.resolve(ref);
  const st = containerState(ctx, rec);
  if (st.status !== 'running') throw new TsrunError('ERR_INVALID_STATE', `container ${rec.name} is ${st.status}, not running`);
  pauseContainer(ctx.runtime, rec.id);
  return rec;
}

export function unpauseEngineContainer(ctx: EngineContext, ref: string): ContainerRecord {
  const rec = ctx.containers.resolve(ref);
  const st = containerState(ctx, rec);
  if (st.status !== 'paused') throw new TsrunError('ERR_INVALID_STATE', `container ${rec.name} is ${st.status}, not paused`);
  resumeContainer(ctx.runtime, rec.id);
  return rec;
}

/** Containers whose mounts use volume `name`. */
export function volumeUsers(ctx: EngineContext, name: string): string[] {
  return ctx.containers
    .all()
    .filter((c) => c.mounts.some((m) => m.type === 'volume' && m.name === name))
    .map((c) => c.id.slice(0, 12));
}

/** Layers (diff_ids) used by any container: rmi and image prune keep them. */
export function layersInUse(ctx: EngineContext): Set<string> {
  return new Set(ctx.containers.all().flatMap((c) => c.diffIds));
}

/** Manifests of the images containers were made from: prune keeps them (commit and inspect need them). */
export function manifestsInUse(ctx: EngineContext): Set<string> {
  return new Set(ctx.containers.all().map((c) => c.manifestDigest));
}
