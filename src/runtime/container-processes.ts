// Which processes are the container's. A cgroup can be shared (two containers given the same
// cgroupsPath, a process a host tool moved in), so "everything in the cgroup" is the
// container's only when tsrun made the cgroup for it and nothing else is found in it.
import { readFileSync, statSync } from 'node:fs';
import { native } from '../native/index.js';
import { isErrno, wrap } from '../util/errors.js';
import type { RuntimeContext } from './context.js';
import { isAlive } from './proc.js';
import type { ContainerRecord } from './state-store.js';

/** A pid namespace of its own (not joined by path): the kernel ends all of it with its init. */
export function hasOwnPidNs(rec: ContainerRecord): boolean {
  return (rec.config.linux?.namespaces ?? []).some((n) => n.type === 'pid' && !n.path);
}

/** This container's create made its cgroup (records of older versions: assumed, as they did). */
export function cgroupMadeForIt(rec: ContainerRecord): boolean {
  return rec.cgroupCreated !== false;
}

function pidNsId(pid: number): string | null {
  try {
    const st = statSync(`/proc/${pid}/ns/pid`, { bigint: true });
    return `${st.dev}:${st.ino}`;
  } catch {
    return null;
  }
}

function parentPid(pid: number): number {
  try {
    const m = /^PPid:\s*(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/**
 * In the pid namespace `ns` or one nested in it: itself or an ancestor is in `ns` (a nested
 * namespace's init is a child of a process of `ns`, and orphans are re-parented inside it).
 */
function inPidNsTree(pid: number, ns: string): boolean {
  const host = pidNsId(process.pid);
  for (let p = pid, i = 0; p > 1 && i < 64; p = parentPid(p), i++) {
    const n = pidNsId(p);
    if (n === null || n === host) return false;
    if (n === ns) return true;
  }
  return false;
}

/** `ancestor` is the parent, grandparent, … of `pid` (it must be pinned: no reuse meanwhile). */
function descendsFrom(pid: number, ancestor: number): boolean {
  for (let p = parentPid(pid), i = 0; p > 1 && i < 64; p = parentPid(p), i++) if (p === ancestor) return true;
  return false;
}

/** A pidfd on the recorded init if it is still that process; null when it is gone. */
function pinInit(rec: ContainerRecord): number | null {
  if (rec.pid <= 0) return null;
  let pidfd: number;
  try {
    pidfd = native.pidfdOpen(rec.pid);
  } catch {
    return null;
  }
  if (!isAlive(rec.pid, rec.startTime)) {
    native.close(pidfd);
    return null;
  }
  return pidfd;
}

function pidfdKill(pidfd: number, signal: number, what: string): void {
  try {
    native.pidfdSignal(pidfd, signal);
  } catch (e) {
    if (!isErrno(e, 'ESRCH')) throw wrap(e, `signal ${what}`);
  }
}

/**
 * `kill --all`, and the kill of `delete --force`: signal every process of the container and
 * nothing else. With its own pid namespace, those are the processes of that namespace (found
 * in its cgroup, each pinned by a pidfd before it is checked); none are left once the init is
 * gone. Without one, the whole cgroup is signalled only when tsrun made it for this container;
 * otherwise the init and those of its descendants that are in the cgroup.
 * Returns whether anything was signalled.
 */
export function signalContainerProcesses(ctx: RuntimeContext, rec: ContainerRecord, signal: number): boolean {
  const rel = ctx.cgroup && rec.cgroupPath && ctx.cgroup.exists(rec.cgroupPath) ? rec.cgroupPath : null;
  const cg = ctx.cgroup;
  const own = hasOwnPidNs(rec);
  if (!own && cg && rel && cgroupMadeForIt(rec)) {
    cg.killAll(rel, signal);
    return true;
  }
  const init = pinInit(rec);
  if (init === null) return false;
  try {
    let belongs: (pid: number) => boolean;
    if (own) {
      // The pidfd holds the init's struct pid, which holds its pid namespace: the id below
      // cannot be reused by another namespace while we look.
      const ns = pidNsId(rec.pid);
      if (!ns || !isAlive(rec.pid, rec.startTime)) return false;
      belongs = (pid) => inPidNsTree(pid, ns);
    } else {
      belongs = (pid) => descendsFrom(pid, rec.pid);
    }
    // Pin each member with a pidfd, then check it, all before the init is signalled: once the
    // init is gone its children are re-parented and no longer look like its descendants.
    const pinned: number[] = [];
    let foreign = 0;
    try {
      for (const pid of cg && rel ? cg.procs(rel) : []) {
        if (pid === rec.pid) continue;
        let fd: number;
        try {
          fd = native.pidfdOpen(pid);
        } catch {
          continue; // exited
        }
        if (belongs(pid)) pinned.push(fd);
        else {
          native.close(fd);
          foreign++;
        }
      }
      if (own && signal === 9 && cg && rel && cgroupMadeForIt(rec) && foreign === 0) {
        cg.killAll(rel, 9); // the cgroup is the container's alone: one atomic cgroup.kill
        return true;
      }
      pidfdKill(init, signal, `container init ${rec.pid}`);
      for (const fd of pinned) pidfdKill(fd, signal, 'a container process');
    } finally {
      for (const fd of pinned) native.close(fd);
    }
    return true;
  } finally {
    native.close(init);
  }
}
