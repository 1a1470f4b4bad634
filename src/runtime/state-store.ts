// Container records under the state root (default /run/tsrun, a tmpfs: a reboot clears it).
// Layout: <root>/<id>/state.json, <root>/<id>/exec.fifo, <root>/<id>.lock.
// Creation is decided by mkdir(2), as in runc and crun; a POSIX record lock serialises operations on
// one id; state.json is replaced atomically.
import { existsSync, fstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { V1Placement } from '../cgroups/v1-membership.js';
import type { Spec } from '../spec/types.js';
import { native } from '../native/index.js';
import { isErrno, TsrunError, wrap } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs-atomic.js';

export const DEFAULT_STATE_ROOT = '/run/tsrun';
const LOCK_TIMEOUT_MS = 30_000;

/** What tsrun persists per container (runc keeps the same in its state.json). */
export interface ContainerRecord {
  id: string;
  /** 'creating' until the init reported READY; the rest is derived from the live process. */
  phase: 'creating' | 'created';
  pid: number;
  /** Field 22 of /proc/<pid>/stat: guards against pid reuse. */
  startTime: string;
  bundle: string;
  rootfs: string;
  created: string;
  owner: string;
  cgroupPath: string | null;
  /**
   * Whether this container's create made the cgroup directory (mkdir succeeded) rather than
   * finding it. Written before the mkdir, so a create killed at any point leaves the record
   * `delete --force` needs. Only a cgroup tsrun made is ever removed; absent in records of
   * older versions (treated as made, which is what they assumed).
   */
  cgroupCreated?: boolean;
  /**
   * Hybrid hosts: the cgroup v1 directories the container's processes are also placed in
   * (membership for accounting, no limits; src/cgroups/v1-membership.ts), each with whether
   * this create made it. Recorded before the mkdirs, as cgroupCreated; only those made are
   * removed, and only when empty.
   */
  cgroupV1?: V1Placement[];
  /** The config as it was at create (the bundle may change or vanish). */
  config: Spec;
  /** The tsrun process doing the create, for cleaning up after a crash mid-create. */
  creatorPid: number;
  /** Its start time: a reused creatorPid must not make a crashed create look alive. */
  creatorStartTime?: string;
}

const ID_RE = /^[A-Za-z0-9_+\-][A-Za-z0-9_+.\-]{0,1023}$/;

export function validateId(id: string): void {
  if (!ID_RE.test(id) || id.includes('..')) {
    throw new TsrunError('ERR_INVALID_ID', `invalid container id "${id}": use letters, digits, "_", "+", "-" and "." (not leading)`);
  }
}

export class StateStore {
  constructor(readonly root: string = DEFAULT_STATE_ROOT) {}

  dir(id: string): string {
    validateId(id);
    return join(this.root, id);
  }

  fifoPath(id: string): string {
    return join(this.dir(id), 'exec.fifo');
  }

  /** Take the per-id lock; returns a release function. */
  lock(id: string): () => void {
    validateId(id);
    mkdirSync(this.root, { recursive: true, mode: 0o700 });
    let fd: number;
    try {
      fd = native.lockFile(join(this.root, `${id}.lock`), LOCK_TIMEOUT_MS);
    } catch (e) {
      if (isErrno(e, 'ETIMEDOUT')) throw new TsrunError('ERR_LOCK_TIMEOUT', `container "${id}" is locked by another tsrun process`);
      throw wrap(e, `lock container "${id}"`);
    }
    const path = join(this.root, `${id}.lock`);
    const dir = join(this.root, id);
    return () => {
      // No container under this id any more (deleted, never existed, failed create): drop the
      // lock file while still holding the lock. Only a holder unlinks, and a waiter that had
      // opened this inode re-checks after locking that the path still names it (lockFile).
      if (!existsSync(dir)) {
        try {
          const held = fstatSync(fd);
          const now = statSync(path);
          if (held.ino === now.ino && held.dev === now.dev) unlinkSync(path);
        } catch {
          /* already gone */
        }
      }
      native.close(fd);
    };
  }

  /** mkdir the container's directory; fails if it exists. */
  reserve(id: string): string {
    const dir = this.dir(id);
    mkdirSync(this.root, { recursive: true, mode: 0o700 });
    try {
      mkdirSync(dir, { mode: 0o700 });
    } catch (e) {
      if (isErrno(e, 'EEXIST')) throw new TsrunError('ERR_CONTAINER_EXISTS', 'container with given ID already exists');
      throw wrap(e, `create state directory ${dir}`);
    }
    return dir;
  }

  exists(id: string): boolean {
    try {
      readFileSync(join(this.dir(id), 'state.json'));
      return true;
    } catch {
      return false;
    }
  }

  read(id: string): ContainerRecord {
    let text: string;
    try {
      text = readFileSync(join(this.dir(id), 'state.json'), 'utf8');
    } catch (e) {
      if (isErrno(e, 'ENOENT')) throw new TsrunError('ERR_CONTAINER_NOT_FOUND', 'container does not exist');
      throw wrap(e, `read state of "${id}"`);
    }
    try {
      return JSON.parse(text) as ContainerRecord;
    } catch (e) {
      throw new TsrunError('ERR_INVALID_STATE', `state of "${id}" is corrupt: ${(e as Error).message}`, { hint: `remove it with \`delete --force ${id}\`` });
    }
  }

  write(rec: ContainerRecord): void {
    writeFileAtomic(join(this.dir(rec.id), 'state.json'), JSON.stringify(rec));
  }

  /** Remove the state directory (the lock's release then removes the lock file). */
  remove(id: string): void {
    rmSync(this.dir(id), { recursive: true, force: true });
  }

  /** Ids with a directory under the root (including ones mid-create). */
  ids(): string[] {
    try {
      return readdirSync(this.root, { withFileTypes: true })
        .filter((d) => d.isDirectory() && ID_RE.test(d.name))
        .map((d) => d.name)
        .sort();
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return [];
      throw wrap(e, `list ${this.root}`);
    }
  }
}
