// Starting a container's process: its monitor (native/monitor.c) clones the init through the
// runtime core's create (one core with tsrun-oci, run in this process), so the init is the
// monitor's child and outlives this CLI. Used by `start`, `run` and `restart`.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isRootfsMounted, mountRootfs } from '../image/rootfs.js';
import { native } from '../native/index.js';
import { MON, MONITOR_FILES } from '../native/monitor-protocol.js';
import { createContainer as runtimeCreate } from '../runtime/create.js';
import { deleteContainer as runtimeDelete } from '../runtime/lifecycle.js';
import { TsrunError, wrap } from '../util/errors.js';
import { mark } from '../util/timing.js';
import type { ContainerRecord } from './container-store.js';
import { containerState } from './container-state.js';
import type { EngineContext } from './context.js';
import { startNetworking, stopNetworking } from './network-setup.js';
import { killMonitor, type MonitorHandle, monitorSpawner, sendMonitor } from './monitor.js';

export interface LaunchOptions {
  /** A foreground CLI: its stdio is copied by the monitor, and it keeps the control socket. */
  foreground?: { in?: number; out?: number; err?: number; rows?: number; cols?: number };
}

export interface Launched {
  pid: number;
  monitor: MonitorHandle;
  /** Open for a foreground launch (wait for MON_EXITED on it); closed otherwise. */
  ctlFd: number;
}

/** A new run replaces the earlier one's runtime state and exit record. */
async function clearPreviousRun(ctx: EngineContext, rec: ContainerRecord): Promise<void> {
  const st = containerState(ctx, rec);
  if (st.status === 'running' || st.status === 'paused' || st.status === 'stopping' || st.status === 'unknown' || st.status === 'creating') {
    throw new TsrunError('ERR_INVALID_STATE', `container ${rec.name} is ${st.status}`, { hint: st.status === 'unknown' ? st.error : 'stop it first' });
  }
  if (ctx.runtime.store.ids().includes(rec.id)) await runtimeDelete(ctx.runtime, rec.id, true);
  await stopNetworking(ctx, rec); // a run whose clean-up never came (a lost monitor)
  rmSync(join(ctx.containers.dir(rec.id), MONITOR_FILES.exit), { force: true });
}

/** The monitor's command at the container's exit: --rm removes it; otherwise its network (and namespace) go back. */
function exitCommand(ctx: EngineContext, rec: ContainerRecord): string[] | undefined {
  if (rec.autoRemove) return [...ctx.self, 'container', 'cleanup', '--rm', rec.id];
  if (rec.intent.network !== 'host') return [...ctx.self, 'container', 'cleanup', rec.id]; // its namespace goes
  return undefined;
}

export async function launch(ctx: EngineContext, given: ContainerRecord, o: LaunchOptions = {}): Promise<Launched> {
  // One start at a time per container (two `start`s at once: the second finds it running).
  const unlock = ctx.containers.lock(given.id);
  try {
    const rec = { ...ctx.containers.read(given.id), interactive: given.interactive };
    return await launchLocked(ctx, rec, o);
  } finally {
    unlock();
  }
}

async function launchLocked(ctx: EngineContext, rec: ContainerRecord, o: LaunchOptions): Promise<Launched> {
  mark('l-enter');
  await clearPreviousRun(ctx, rec);
  mark('l-cleared');
  if (!isRootfsMounted(ctx.images, rec.id)) mountRootfs(ctx.images, rec.id, rec.diffIds, { existingDir: true });
  const dir = ctx.containers.dir(rec.id);
  let consoleInit = -1;
  let consoleMonitor = -1;
  if (rec.tty) [consoleInit, consoleMonitor] = native.socketPair();
  let monitor: MonitorHandle | undefined;
  const fg = o.foreground;
  const spawner = monitorSpawner(
    {
      id: rec.id,
      dir,
      ...(consoleMonitor >= 0 ? { consoleFd: consoleMonitor } : {}),
      ...(fg ? { stdio: { ...(rec.interactive && fg.in !== undefined ? { in: fg.in } : {}), out: fg.out ?? -1, err: fg.err ?? -1 } } : {}),
      stdin: rec.interactive && !rec.tty,
      logMaxSize: rec.logMaxSize,
      logMaxFiles: rec.logMaxFiles,
      ...(exitCommand(ctx, rec) ? { exitCommand: exitCommand(ctx, rec)! } : {}),
    },
    (m) => {
      monitor = m;
    },
  );
  let networked = false;
  try {
    await startNetworking(ctx, rec);
    networked = true;
    mark('l-network');
    if (fg?.rows && fg.cols && rec.tty) setConsoleSize(ctx, rec.id, fg.rows, fg.cols);
    const created = await runtimeCreate(ctx.runtime, {
      id: rec.id,
      bundle: dir,
      mode: 'run',
      detach: false, // the init keeps PDEATHSIG on its monitor: it never outlives what records its exit
      ...(consoleInit >= 0 ? { consoleFd: consoleInit } : {}),
      spawner,
    });
    const m = monitor!;
    // Detached: say so before MON_INIT. The init already runs (a `true` may be gone), and once the
    // monitor has its pid it can finish at once: it decides between MON_EXITED and the exit
    // command (--rm, a bridge's clean-up) without reading ctl again, then closes it. A DETACH
    // sent after INIT is then never read (no exit command runs) or meets a closed socket (EPIPE,
    // and `run -d` fails with 125 although the container ran).
    if (!fg) sendMonitor(m.ctlFd, MON.DETACH);
    sendMonitor(m.ctlFd, MON.INIT, created.pid);
    rec.monitor = { pid: m.pid, startTime: m.startTime };
    rec.startedAt = new Date().toISOString();
    // Under the container's lock: an exit command that already runs (`cleanup --rm`) waits for it.
    ctx.containers.write({ ...rec, interactive: ctx.containers.read(rec.id).interactive }); // `start -a` without -i changes nothing
    if (!fg) native.close(m.ctlFd);
    return { pid: created.pid, monitor: m, ctlFd: fg ? m.ctlFd : -1 };
  } catch (e) {
    if (monitor) killMonitor(monitor);
    const err = e instanceof TsrunError ? e : wrap(e, `start container ${rec.name}`);
    if (networked) await stopNetworking(ctx, rec).catch((u: Error) => err.cleanupErrors.push(u));
    throw err;
  } finally {
    if (consoleInit >= 0) native.close(consoleInit);
    if (consoleMonitor >= 0) native.close(consoleMonitor);
  }
}

/** The pty's first size comes from the spec (process.consoleSize), so the shell starts right. */
function setConsoleSize(ctx: EngineContext, id: string, rows: number, cols: number): void {
  const path = join(ctx.containers.dir(id), 'config.json');
  const spec = JSON.parse(readFileSync(path, 'utf8'));
  spec.process.consoleSize = { height: rows, width: cols };
  writeFileSync(path, JSON.stringify(spec), { mode: 0o600 });
}
