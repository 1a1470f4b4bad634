// The cgroup v2 hierarchy: placement, freeze, kill and removal of a container's cgroup.
// The mount point is injectable, so the file logic runs against a tmpdir in unit tests.
import { existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { constants } from 'node:fs';
import { dirname, join } from 'node:path';
import { isErrno, TsrunError, wrap } from '../util/errors.js';

/** Where cgroup2 is mounted: /sys/fs/cgroup on a v2 host, /sys/fs/cgroup/unified on hybrid. */
export function findV2Mount(mountinfo = '/proc/self/mountinfo'): string | null {
  let text: string;
  try {
    text = readFileSync(mountinfo, 'utf8');
  } catch {
    return null;
  }
  for (const line of text.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    if (line.slice(sep + 3).split(' ')[0] === 'cgroup2') {
      const mp = line.slice(0, sep).split(' ')[4];
      if (mp) return mp.replace(/\\040/g, ' ');
    }
  }
  return null;
}

function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

export class CgroupV2 {
  constructor(readonly mount: string) {}

  static detect(): CgroupV2 | null {
    const m = findV2Mount();
    return m ? new CgroupV2(m) : null;
  }

  path(rel: string): string {
    return join(this.mount, rel);
  }

  /** Controllers the root offers (empty on a hybrid host whose v1 hierarchies hold them all). */
  rootControllers(): string[] {
    return this.readList('', 'cgroup.controllers');
  }

  readList(rel: string, file: string): string[] {
    try {
      return readFileSync(join(this.path(rel), file), 'utf8')
        .split(/\s+/)
        .filter(Boolean);
    } catch {
      return [];
    }
  }

  /**
   * mkdir -p, deciding by mkdir(2) of the leaf whether this call made it: returns true when it
   * did, false when the cgroup already existed (tsrun never removes a cgroup it did not make).
   * Refuses a pre-existing cgroup that already holds processes (as runc does).
   */
  create(rel: string): boolean {
    const dir = this.path(rel);
    let made = false;
    try {
      mkdirSync(dirname(dir), { recursive: true });
      mkdirSync(dir);
      made = true;
    } catch (e) {
      if (!isErrno(e, 'EEXIST')) throw wrap(e, `create cgroup ${dir}`);
    }
    const procs = made ? [] : this.procs(rel);
    if (procs.length) {
      throw new TsrunError('ERR_CGROUP', `cgroup ${dir} is not empty: ${procs.length} process(es) found`, { path: dir });
    }
    return made;
  }

  /** A directory fd for clone3(CLONE_INTO_CGROUP) (O_PATH fds are not accepted there). */
  openDir(rel: string): number {
    const dir = this.path(rel);
    try {
      return openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    } catch (e) {
      throw wrap(e, `open cgroup ${dir}`);
    }
  }

  exists(rel: string): boolean {
    return existsSync(join(this.path(rel), 'cgroup.procs'));
  }

  /** Every pid in the cgroup and its descendants. */
  procs(rel: string): number[] {
    const out: number[] = [];
    const walk = (r: string) => {
      for (const p of this.readList(r, 'cgroup.procs')) out.push(Number(p));
      let entries: string[] = [];
      try {
        entries = readdirSync(this.path(r), { withFileTypes: true })
          .filter((d) => d.isDirectory())
          .map((d) => d.name);
      } catch {
        return;
      }
      for (const e of entries) walk(join(r, e));
    };
    walk(rel);
    return out;
  }

  isFrozen(rel: string): boolean {
    try {
      return readFileSync(join(this.path(rel), 'cgroup.freeze'), 'utf8').trim() === '1';
    } catch {
      return false;
    }
  }

  /** cgroup.freeze, then wait until cgroup.events says the state is reached. */
  freeze(rel: string, frozen: boolean, timeoutMs = 5000): void {
    const file = join(this.path(rel), 'cgroup.freeze');
    try {
      writeFileSync(file, frozen ? '1' : '0');
    } catch (e) {
      throw wrap(e, `write ${file}`);
    }
    const want = `frozen ${frozen ? 1 : 0}`;
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (readFileSync(join(this.path(rel), 'cgroup.events'), 'utf8').includes(want)) return;
      sleepMs(2);
    }
    throw new TsrunError('ERR_CGROUP', `cgroup ${this.path(rel)} did not reach "${want}" in ${timeoutMs} ms`);
  }

  /** SIGKILL everything in the cgroup at once (cgroup.kill, Linux 5.14+), else one by one. */
  killAll(rel: string, signal: number): void {
    if (signal === 9) {
      try {
        writeFileSync(join(this.path(rel), 'cgroup.kill'), '1');
        return;
      } catch (e) {
        if (!isErrno(e, 'ENOENT')) throw wrap(e, `write ${join(this.path(rel), 'cgroup.kill')}`);
      }
    }
    for (const pid of this.procs(rel)) {
      try {
        process.kill(pid, signal);
      } catch (e) {
        if (!isErrno(e, 'ESRCH')) throw wrap(e, `kill ${pid}`);
      }
    }
  }

  /**
   * rmdir the cgroup and its sub-cgroups bottom-up, but only while no process lives in any of
   * them: this never kills. Processes still there after `drainMs` (another container given the
   * same cgroupsPath, a process a host tool moved in) keep their cgroup, and their number is
   * returned; 0 means the cgroup is gone. EBUSY on an empty cgroup (exiting tasks not yet
   * released) is retried for a moment.
   */
  removeIfUnused(rel: string, drainMs = 0): number {
    const deadline = Date.now() + drainMs;
    const busyDeadline = Date.now() + Math.max(drainMs, 2000);
    const rm = (d: string) => {
      let kids: string[] = [];
      try {
        kids = readdirSync(d, { withFileTypes: true })
          .filter((x) => x.isDirectory())
          .map((x) => x.name);
      } catch (e) {
        if (isErrno(e, 'ENOENT')) return;
      }
      for (const k of kids) rm(join(d, k));
      try {
        rmdirSync(d);
      } catch (e) {
        if (!isErrno(e, 'ENOENT')) throw e;
      }
    };
    for (;;) {
      if (!existsSync(this.path(rel))) return 0;
      const n = this.procs(rel).length;
      if (n === 0) {
        try {
          rm(this.path(rel));
          return 0;
        } catch (e) {
          if (!isErrno(e, 'EBUSY') || Date.now() > busyDeadline) throw wrap(e, `remove cgroup ${this.path(rel)}`);
        }
      } else if (Date.now() > deadline) {
        return n;
      }
      sleepMs(10);
    }
  }
}
