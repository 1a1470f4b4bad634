// cgroup v1 membership on a hybrid host, for accounting only.
//
// On a hybrid host (v1 hierarchies at /sys/fs/cgroup/<controller>, cgroup2 at
// /sys/fs/cgroup/unified) the resource controllers, and so the accounting, live in v1.
// Readers that follow the host's mode look there: containerd's runc shim sees that
// /sys/fs/cgroup is not cgroup2, takes the container's cgroups from the v1 lines of
// /proc/<pid>/cgroup and reads memory.usage_in_bytes, cpuacct.usage, pids.current there;
// Podman (cgroupfs manager) reads <hierarchy>/<cgroupsPath>. A container placed only in v2
// would show them its caller's cgroups (the host root, for containerd).
//
// So the init is also placed in every mounted v1 hierarchy, at the same path as its v2
// cgroup, before it runs anything of the container (its children inherit the membership).
// Membership only: no limit, device rule or freezer state is ever written in v1. Limits
// stay v2-only (refused where the v2 controller is missing, by CgroupManager.check), device
// rules stay the eBPF program on the v2 cgroup (the kernel checks it and the v1 devices list
// of the cgroup, which a new v1 cgroup copies from its parent: joining never allows more than
// the parent), pause stays v2 cgroup.freeze (a task is frozen when either freezer says so;
// v1 freezer.state is left THAWED). The one write that is not a pid: a new cpuset cgroup
// starts with empty cpuset.cpus/mems and refuses tasks until they are set, so they are
// copied from the parent, as runc does (the parent's set: no restriction).
//
// Ownership follows the v2 rules (state-store.ts cgroupCreated): each directory is recorded
// with whether this create made it, written before the mkdir; only those are removed, only
// when empty, never by killing.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, statfsSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { isErrno, TsrunError, wrap } from '../util/errors.js';

/** statfs f_type of a cgroup v1 hierarchy (linux/magic.h). */
export const CGROUP_SUPER_MAGIC = 0x27e0eb;

export interface V1Hierarchy {
  /** Where it is mounted (its root, or the part of it this mount namespace sees). */
  mount: string;
  /** Controllers bound to it (cpu, cpuacct, memory, …); empty for a named hierarchy. */
  controllers: string[];
  /** name=… of a named hierarchy (name=systemd). */
  name?: string;
}

/** One v1 directory of a container, as recorded in its state. */
export interface V1Placement {
  /** Absolute: <hierarchy mount>/<the container's v2 cgroup path>. */
  dir: string;
  /** This create made it (written as "about to make it" before the mkdir, corrected after). */
  created: boolean;
  /**
   * The highest ancestor of `dir` this create made too (mkdir -p: "tsrun", containerd's
   * "/<namespace>"), recorded the same way. Delete removes `dir`, then these parents up to
   * `top`, each only while it is empty: v1 keeps no settings there worth keeping.
   */
  top?: string;
}

/** A directory delete left in place, and why. */
export interface V1Leftover {
  dir: string;
  reason: string;
}

/** Mount options of a v1 cgroup superblock that are not controller names. */
const NOT_CONTROLLERS = new Set(['rw', 'ro', 'noprefix', 'xattr', 'clone_children', 'cpuset_v2_mode', 'favordynmods', 'nofavordynmods', 'all', 'none']);

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/**
 * The cgroup v1 hierarchies in a mountinfo text, one per superblock (a hierarchy mounted
 * twice counts once: the mount showing the most of it wins). Mounts whose root lies
 * outside this cgroup namespace ("/..") are left out.
 */
export function parseV1Hierarchies(mountinfo: string): V1Hierarchy[] {
  const bySuperblock = new Map<string, { root: string; h: V1Hierarchy }>();
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const [fstype, , superOpts = ''] = line.slice(sep + 3).split(' ');
    if (fstype !== 'cgroup') continue;
    const f = line.slice(0, sep).split(' ');
    const dev = f[2];
    const root = unescapeMount(f[3] ?? '');
    const mount = unescapeMount(f[4] ?? '');
    if (!dev || !mount || !root.startsWith('/') || root.startsWith('/..')) continue;
    const opts = superOpts.split(',');
    const name = opts.find((o) => o.startsWith('name='))?.slice('name='.length);
    const controllers = opts.filter((o) => o && !o.includes('=') && !NOT_CONTROLLERS.has(o));
    const prev = bySuperblock.get(dev);
    if (!prev || root.length < prev.root.length) bySuperblock.set(dev, { root, h: { mount, controllers, ...(name ? { name } : {}) } });
  }
  return [...bySuperblock.values()].map((v) => v.h).sort((a, b) => (a.mount < b.mount ? -1 : a.mount > b.mount ? 1 : 0));
}

function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function readOr(path: string, dflt: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return dflt;
  }
}

/** Pids listed in <dir>/cgroup.procs (none when it cannot be read). */
function procsIn(dir: string): number[] {
  return readOr(join(dir, 'cgroup.procs'), '').split(/\s+/).filter(Boolean).map(Number);
}

function subCgroups(dir: string): number {
  try {
    return readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).length;
  } catch {
    return 0;
  }
}

/** Why a recorded directory must not be written into or removed (not on a cgroup v1 filesystem), or null. */
function notCgroupFs(dir: string, check: boolean): string | null {
  if (!check) return null;
  let type: number;
  try {
    type = Number(statfsSync(dir).type);
  } catch (e) {
    return wrap(e, `statfs ${dir}`).message;
  }
  return type === CGROUP_SUPER_MAGIC ? null : `${dir} is not in a cgroup v1 hierarchy (statfs type 0x${type.toString(16)})`;
}

export interface V1Options {
  /** Check statfs(2) of recorded directories before writing or removing (off for tests on a tmpdir). */
  checkFs?: boolean;
}

/** The v1 hierarchies of a hybrid host, where containers are placed for accounting. */
export class CgroupV1 {
  private readonly checkFs: boolean;

  constructor(
    readonly hierarchies: V1Hierarchy[],
    opts: V1Options = {},
  ) {
    this.checkFs = opts.checkFs ?? true;
  }

  /**
   * The host's v1 hierarchies, or null when none carries a controller: a pure v2 host (a
   * lone name=systemd compatibility mount included), where every reader uses v2.
   */
  static detect(mountinfo = '/proc/self/mountinfo'): CgroupV1 | null {
    let text: string;
    try {
      text = readFileSync(mountinfo, 'utf8');
    } catch {
      return null;
    }
    const hs = parseV1Hierarchies(text);
    return hs.some((h) => h.controllers.length) ? new CgroupV1(hs) : null;
  }

  /** Where a container whose v2 cgroup is `rel` goes; `created` and `top` say "about to make it". */
  plan(rel: string): V1Placement[] {
    return this.hierarchies.map((h) => {
      const dir = join(h.mount, rel);
      const p: V1Placement = { dir, created: !existsSync(dir) };
      let top: string | undefined;
      for (let d = dirname(dir); d.length > h.mount.length && !existsSync(d); d = dirname(d)) top = d;
      if (top) p.top = top;
      return p;
    });
  }

  /**
   * mkdir -p each planned directory, setting `created` to whether this call made the leaf.
   * On a failure, the placements not reached are marked not made (nothing to remove).
   */
  create(rel: string, placements: V1Placement[]): void {
    let i = 0;
    try {
      for (; i < placements.length; i++) {
        const p = placements[i]!;
        const h = this.hierarchies.find((x) => join(x.mount, rel) === p.dir);
        if (!h) throw new TsrunError('ERR_CGROUP', `no cgroup v1 hierarchy holds ${p.dir}`);
        let made = false;
        p.created = false;
        delete p.top;
        // A parent made by another create can be removed by its delete between our two
        // mkdirs (ENOENT): make it again.
        for (let attempt = 0; ; attempt++) {
          try {
            const first = mkdirSync(dirname(p.dir), { recursive: true });
            if (first && !p.top) p.top = first;
            mkdirSync(p.dir);
            made = true;
            break;
          } catch (e) {
            if (isErrno(e, 'EEXIST')) break;
            if (!isErrno(e, 'ENOENT') || attempt >= 5) throw wrap(e, `create cgroup ${p.dir}`);
          }
        }
        p.created = made;
        if (h.controllers.includes('cpuset')) fillCpuset(h.mount, rel);
      }
    } catch (e) {
      for (let j = i + 1; j < placements.length; j++) {
        placements[j]!.created = false;
        delete placements[j]!.top;
      }
      throw e;
    }
  }

  /** Place `pid` in every placement (see joinV1). */
  join(placements: V1Placement[], pid: number): void {
    joinV1(placements, pid, { checkFs: this.checkFs });
  }

  /** Remove the placements this create made, when empty (see removeV1). */
  remove(placements: V1Placement[] | undefined, drainMs = 0): V1Leftover[] {
    return removeV1(placements, drainMs, { checkFs: this.checkFs });
  }
}

/**
 * Top-down from the hierarchy root to `rel`: a cpuset cgroup with empty cpus or mems gets
 * its parent's (a task cannot join it otherwise; ENOSPC). Never narrows anything.
 */
function fillCpuset(mount: string, rel: string): void {
  const parts = rel.split('/').filter(Boolean);
  const prefix = existsSync(join(mount, 'cpuset.cpus')) ? 'cpuset.' : ''; // "noprefix" mounts have bare cpus, mems
  for (let i = 1; i <= parts.length; i++) {
    const dir = join(mount, ...parts.slice(0, i));
    const parent = dirname(dir);
    for (const file of [`${prefix}cpus`, `${prefix}mems`]) {
      if (readOr(join(dir, file), '').trim() !== '') continue;
      const value = readOr(join(parent, file), '').trim();
      try {
        writeFileSync(join(dir, file), value);
      } catch (e) {
        throw wrap(e, `set ${join(dir, file)} to its parent's "${value}"`);
      }
    }
  }
}

/**
 * Write `pid` to cgroup.procs of each placement (the whole thread group moves). For exec and
 * later joins, `skipMissing` passes over a directory that is gone instead of failing.
 */
export function joinV1(placements: V1Placement[], pid: number, opts: V1Options & { skipMissing?: boolean } = {}): void {
  for (const p of placements) {
    if (opts.skipMissing && !existsSync(p.dir)) continue;
    const bad = notCgroupFs(p.dir, opts.checkFs ?? true);
    if (bad) throw new TsrunError('ERR_CGROUP', `place process ${pid} in cgroup v1: ${bad}`, { path: p.dir });
    const file = join(p.dir, 'cgroup.procs');
    try {
      writeFileSync(file, String(pid));
    } catch (e) {
      if (opts.skipMissing && isErrno(e, 'ENOENT')) continue;
      throw wrap(e, `place process ${pid} in cgroup v1 ${p.dir}`);
    }
  }
}

/**
 * rmdir the placements this container's create made, each only while no process and no
 * sub-cgroup is in it: this never kills. Whatever still holds something after `drainMs`
 * (processes that are not the container's, a cgroup a host tool made there) is left and
 * returned. EBUSY on an empty directory (exiting tasks not yet released) is retried a moment.
 * Then the parents it made (up to `top`), while empty; one in use by others stays, silently.
 */
export function removeV1(placements: V1Placement[] | undefined, drainMs = 0, opts: V1Options = {}): V1Leftover[] {
  const left: V1Leftover[] = [];
  const deadline = Date.now() + drainMs;
  const busyDeadline = Date.now() + Math.max(drainMs, 2000);
  for (const p of placements ?? []) {
    if (p.created && !removeLeaf(p, left, deadline, busyDeadline, opts)) continue;
    if (!p.top || !p.dir.startsWith(`${p.top}/`)) continue;
    for (let d = dirname(p.dir); d.length >= p.top.length; d = dirname(d)) {
      if (!existsSync(d)) continue;
      if (notCgroupFs(d, opts.checkFs ?? true) || procsIn(d).length || subCgroups(d)) break;
      try {
        rmdirSync(d);
      } catch (e) {
        if (!isErrno(e, 'ENOENT')) break;
      }
    }
  }
  return left;
}

/** The leaf of removeV1; false when it is left in place. */
function removeLeaf(p: V1Placement, left: V1Leftover[], deadline: number, busyDeadline: number, opts: V1Options): boolean {
  for (;;) {
    if (!existsSync(p.dir)) return true;
    const bad = notCgroupFs(p.dir, opts.checkFs ?? true);
    if (bad) {
      left.push({ dir: p.dir, reason: bad });
      return false;
    }
    const processes = procsIn(p.dir).length;
    const cgroups = subCgroups(p.dir);
    if (processes === 0 && cgroups === 0) {
      try {
        rmdirSync(p.dir);
        return true;
      } catch (e) {
        if (isErrno(e, 'ENOENT')) return true;
        if (!isErrno(e, 'EBUSY') || Date.now() > busyDeadline) throw wrap(e, `remove cgroup ${p.dir}`);
      }
    } else if (Date.now() > deadline) {
      left.push({ dir: p.dir, reason: `${processes} process(es) and ${cgroups} sub-cgroup(s) still in it` });
      return false;
    }
    sleepMs(10);
  }
}
