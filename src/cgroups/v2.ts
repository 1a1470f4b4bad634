// The cgroup v2 hierarchy: placement, freeze, kill and removal of a container's cgroup.
// The mount point is injectable, so the file logic runs against a tmpdir in unit tests.
import { existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { constants } from 'node:fs';
import { join } from 'node:path';
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
      return readFileSync(join(this.path(rel), file), 'utf8').split(/\s+/).filter(Boolean);
    } catch {
      return [];
    }
  }

  /** mkdir -p; refuses a pre-existing cgroup that already holds processes (as runc does). */
  create(rel: string): void {
    const dir = this.path(rel);
    try {
      mkdirSync(dir, { recursive: true });
    } catch (e) {
      throw wrap(e, `create cgroup ${dir}`);
    }
    const procs = this.procs(rel);
    if (procs.length) {
      throw new TsrunError('ERR_CGROUP', `cgroup ${dir} is not empty: ${procs.length} process(es) found`, { path: dir });
    }
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
        entries = readdirSync(this.path(r), { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
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

  /** rmdir bottom-up, retrying EBUSY while exiting processes drain (crun's pattern). */
  destroy(rel: string, timeoutMs = 5000): void {
    const dir = this.path(rel);
    const deadline = Date.now() + timeoutMs;
    const rm = (d: string) => {
      let kids: string[] = [];
      try {
        kids = readdirSync(d, { withFileTypes: true }).filter((x) => x.isDirectory()).map((x) => x.name);
      } catch (e) {
        if (isErrno(e, 'ENOENT')) return;
      }
      for (const k of kids) rm(join(d, k));
      for (;;) {
        try {
          rmdirSync(d);
          return;
        } catch (e) {
          if (isErrno(e, 'ENOENT')) return;
          if (!isErrno(e, 'EBUSY') || Date.now() > deadline) throw wrap(e, `remove cgroup ${d}`);
          try {
            writeFileSync(join(d, 'cgroup.kill'), '1');
          } catch {
            /* older kernels: the processes are already being killed */
          }
          sleepMs(10);
        }
      }
    };
    rm(dir);
  }
}
