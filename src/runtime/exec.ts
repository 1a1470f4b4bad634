// `exec`: a new process inside a running container: join every namespace of its init,
// enter its cgroup at birth (CLONE_INTO_CGROUP), take on the process's identity, apply the
// container's seccomp profile, execve.
import { closeSync, constants, openSync } from 'node:fs';
import { resolve } from 'node:path';
import { joinV1 } from '../cgroups/v1-membership.js';
import { readLastCap } from '../linux/capabilities.js';
import { buildExecPlan, type NsJoin } from '../linux/plan.js';
import { compileSeccompCached, seccompCacheDir } from './seccomp-cache.js';
import { lsmSupportFor } from '../linux/lsm.js';
import { native } from '../native/index.js';
import type { Process } from '../spec/types.js';
import { validateProcess } from '../spec/validate.js';
import { TsrunError, wrap } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs-atomic.js';
import type { RuntimeContext } from './context.js';
import { NS_FILE } from './ns-files.js';
import { statusOf } from './lifecycle.js';
import { isAlive } from './proc.js';
import { SpawnSession } from './spawn-session.js';
import { Undo } from './undo.js';

export interface ExecOverrides {
  args?: string[];
  cwd?: string;
  env?: string[];
  user?: { uid: number; gid?: number };
  tty?: boolean;
  additionalGids?: number[];
  noNewPrivileges?: boolean;
}

export interface ExecOptions {
  id: string;
  /** A full OCI Process (--process FILE); else the container's process with overrides. */
  process?: Process;
  overrides?: ExecOverrides;
  detach: boolean;
  pidFile?: string | undefined;
  consoleSocket?: string | undefined;
  preserveFds?: number | undefined;
  /** fds for the process's 0/1/2 instead of ours (-1: ours), e.g. /dev/null for `exec -d`. */
  stdio?: [number, number, number] | undefined;
}

function mergeEnv(base: string[], extra: string[]): string[] {
  const out = new Map<string, string>();
  for (const e of [...base, ...extra]) out.set(e.split('=')[0]!, e);
  return [...out.values()];
}

export function execProcessSpec(base: Process, o: ExecOverrides): Process {
  const p: Process = structuredClone(base);
  if (o.args) p.args = o.args;
  if (o.cwd) p.cwd = o.cwd;
  if (o.env?.length) p.env = mergeEnv(p.env ?? [], o.env);
  if (o.user) p.user = { ...p.user, uid: o.user.uid, gid: o.user.gid ?? p.user.gid };
  if (o.additionalGids) p.user.additionalGids = o.additionalGids;
  if (o.tty !== undefined) p.terminal = o.tty;
  if (o.noNewPrivileges) p.noNewPrivileges = true;
  delete p.commandLine;
  return p;
}

export async function execInContainer(ctx: RuntimeContext, o: ExecOptions): Promise<{ pid: number; consoleFd: number }> {
  const rec = ctx.store.read(o.id);
  const status = statusOf(ctx, rec);
  if (status !== 'running' && status !== 'created') {
    throw new TsrunError('ERR_CONTAINER_NOT_RUNNING', status === 'paused' ? 'cannot exec in a paused container' : 'cannot exec in a stopped container');
  }
  const config = rec.config;
  const p = o.process ?? execProcessSpec(config.process!, o.overrides ?? {});
  validateProcess(p);
  if (p.terminal && !o.consoleSocket && o.detach) {
    throw new TsrunError('ERR_INVALID_ARGUMENT', 'cannot allocate tty if tsrun will detach without setting console socket');
  }
  if (p.noNewPrivileges === undefined && config.process?.noNewPrivileges) p.noNewPrivileges = true;

  const undo = new Undo();
  let session: SpawnSession | undefined;
  try {
    const types = new Set((config.linux?.namespaces ?? []).map((n) => n.type));
    const joins: NsJoin[] = [];
    // Pin the init: its pid could be reused between the start-time check and the opens.
    let pidfd: number;
    try {
      pidfd = native.pidfdOpen(rec.pid);
    } catch {
      throw new TsrunError('ERR_CONTAINER_NOT_RUNNING', 'cannot exec in a stopped container');
    }
    undo.always(() => native.close(pidfd));
    if (!isAlive(rec.pid, rec.startTime)) throw new TsrunError('ERR_CONTAINER_NOT_RUNNING', 'cannot exec in a stopped container');
    for (const type of types) {
      const path = `/proc/${rec.pid}/ns/${NS_FILE[type]}`;
      let fd: number;
      try {
        fd = openSync(path, constants.O_RDONLY);
      } catch (e) {
        throw wrap(e, `open ${type} namespace of the container`);
      }
      undo.always(() => closeSync(fd));
      joins.push({ type, fd, path });
    }
    // Still the same, live process (a pidfd turns readable when it exits): the fds are its.
    if (native.pollReadable(pidfd, 0)) throw new TsrunError('ERR_CONTAINER_NOT_RUNNING', 'cannot exec in a stopped container');
    let cgroupFd = -1;
    if (ctx.cgroup && rec.cgroupPath && ctx.cgroup.exists(rec.cgroupPath)) {
      cgroupFd = ctx.cgroup.openDir(rec.cgroupPath);
      const fd = cgroupFd;
      undo.always(() => closeSync(fd));
    }
    let consoleFd = -1;
    if (o.consoleSocket) {
      consoleFd = native.connectUnix(resolve(o.consoleSocket));
      const fd = consoleFd;
      undo.always(() => native.close(fd));
    }
    const seccomp = config.linux?.seccomp ? compileSeccompCached(config.linux.seccomp, seccompCacheDir(ctx)) : undefined;
    const steps = buildExecPlan(p, {
      lastCap: readLastCap(),
      joins,
      consoleFd,
      preserveFds: o.preserveFds ?? 0,
      ...(seccomp ? { seccomp: { bpf: seccomp.bpf, flags: seccomp.flags } } : {}),
      detach: o.detach,
      lsm: lsmSupportFor(p),
    });
    const stdio = o.stdio;
    session = SpawnSession.start(steps, cgroupFd, stdio ? (plan, cg, keep) => native.spawn(plan, cg, keep, stdio) : undefined);
    const s = session;
    undo.onFail(() => s.abort());
    let ptyMaster = -1;
    await session.untilReady({
      onConsole: (fd) => (ptyMaster = fd),
      // Hybrid hosts: the container's v1 cgroups too (accounting), before it runs anything.
      onPid: (pid) => joinV1(rec.cgroupV1 ?? [], pid, { skipMissing: true }),
    });
    if (o.pidFile) writeFileAtomic(resolve(o.pidFile), String(session.initPid), 0o644);
    session.go();
    session.waitExec();
    session.close();
    undo.commit();
    return { pid: session.initPid, consoleFd: ptyMaster };
  } catch (e) {
    const err = e instanceof TsrunError ? e : wrap(e, `exec in container "${o.id}"`);
    err.cleanupErrors.push(...undo.rollback());
    throw err;
  }
}
