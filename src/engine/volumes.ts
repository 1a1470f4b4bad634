// Named volumes (docker's "local" driver): a directory per volume under the store.
//
//   <root>/                      e.g. /var/lib/tsrun/volumes (mode 0701, as docker's)
//     <name>/                    one volume (mode 0755); present only complete
//       _data/                   the data, bind-mounted into containers (mode 0755)
//       volume.json              {Name, Driver, Mountpoint, CreatedAt, Labels, Options, Scope, Anonymous?, Seeded?}
//     .create-<pid>-<rand>/      a volume being made; renamed to <name> when complete
//     .remove-<name>-<rand>/     a volume being removed: renamed away first, then deleted
//
// rename(2) is the commit point both ways, so a reader sees a volume whole or not at all.
// Two creates of one name race on the rename: a directory cannot be renamed onto a non-empty
// one, so exactly one wins and the other returns the winner's volume (docker returns an
// existing volume unchanged). Which containers use a volume is the caller's knowledge
// (`inUse`); this store never prints.
import { lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, chmodSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { isErrno, TsrunError, wrap } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs-atomic.js';
import { lazyRequire } from '../util/lazy-require.js';

/** volume.json, and what inspect shows (docker's field names). */
export interface VolumeInfo {
  Name: string;
  Driver: 'local';
  /** <root>/<name>/_data */
  Mountpoint: string;
  /** RFC 3339, seconds (docker's form). */
  CreatedAt: string;
  Labels: Record<string, string>;
  Options: Record<string, string>;
  Scope: 'local';
  /** Made for one container (no name given, or `-v /path`): pruned by default. */
  Anonymous?: boolean;
  /** Image content was copied in once (optional bookkeeping for the engine). */
  Seeded?: boolean;
}

export interface CreateVolumeOptions {
  labels?: Record<string, string>;
  /** Default: true when no name is given, else false. */
  anonymous?: boolean;
}

/** The ids of the containers that use a volume (empty: unused). */
export type VolumeUsers = (name: string) => string[];

export interface RemoveVolumeOptions {
  /** A missing volume is not an error (docker's `volume rm -f`); a volume in use is still refused, as in docker. */
  force?: boolean;
  inUse: VolumeUsers;
}

export interface PruneVolumeOptions {
  /** Named volumes too (docker's `volume prune --all`); by default only anonymous ones. */
  all?: boolean;
  /** Only volumes this accepts (label filters). */
  filter?: (v: VolumeInfo) => boolean;
}

export interface PruneResult {
  removed: string[];
  reclaimedBytes: number;
}

/** docker's rule for local volume names. */
export const VOLUME_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

const META = 'volume.json';
const DATA = '_data';
const CREATE_PREFIX = '.create-';
const REMOVE_PREFIX = '.remove-';

function randomHex(bytes: number): string {
  return lazyRequire<typeof import('node:crypto')>('node:crypto').randomBytes(bytes).toString('hex');
}

function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function noSuchVolume(name: string, verb = 'get'): TsrunError {
  return new TsrunError('ERR_INVALID_ARGUMENT', `${verb} ${name}: no such volume`, { hint: '`tsrun volume ls` lists the volumes' });
}

/** Is process `pid` alive (EPERM: alive, not ours). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return isErrno(e, 'EPERM');
  }
}

/** Bytes under `dir` as du --apparent-size counts them: every non-directory once (hardlinks by inode). */
export function dirSize(dir: string): number {
  const seen = new Set<string>();
  let total = 0;
  const walk = (d: string) => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(d, n);
      let st: ReturnType<typeof lstatSync>;
      try {
        st = lstatSync(p);
      } catch {
        continue;
      }
      if (st.isDirectory()) {
        walk(p);
        continue;
      }
      if (st.nlink > 1) {
        const key = `${st.dev}:${st.ino}`;
        if (seen.has(key)) continue;
        seen.add(key);
      }
      total += st.size;
    }
  };
  walk(dir);
  return total;
}

export class VolumeStore {
  constructor(readonly root: string) {}

  /** Throws the docker error for a name that is not a valid local volume name. */
  static validateName(name: string): void {
    if (!VOLUME_NAME_RE.test(name)) {
      throw new TsrunError(
        'ERR_INVALID_ARGUMENT',
        `create ${name}: "${name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed`,
        { hint: 'a name has at least two characters; if you intended to pass a host directory, use an absolute path' },
      );
    }
  }

  dir(name: string): string {
    return join(this.root, name);
  }

  /** Where the data lives (what a container mounts). */
  mountpoint(name: string): string {
    return join(this.root, name, DATA);
  }

  private ensureRoot(): void {
    mkdirSync(dirname(this.root), { recursive: true, mode: 0o700 });
    try {
      mkdirSync(this.root, { mode: 0o701 });
    } catch (e) {
      if (!isErrno(e, 'EEXIST')) throw wrap(e, `create volume root ${this.root}`);
    }
  }

  /**
   * A volume, made unless it exists. No name: a random 64-hex name, anonymous. An existing
   * name is returned unchanged (its labels stay), as docker does; concurrent creates of one
   * name (threads, processes) all get the same volume.
   */
  create(name?: string, o: CreateVolumeOptions = {}): VolumeInfo {
    const n = name ?? randomHex(32);
    VolumeStore.validateName(n);
    const existing = this.get(n);
    if (existing) return existing;

    this.ensureRoot();
    const staging = join(this.root, `${CREATE_PREFIX}${process.pid}-${randomHex(8)}`);
    const info: VolumeInfo = {
      Name: n,
      Driver: 'local',
      Mountpoint: this.mountpoint(n),
      CreatedAt: rfc3339(new Date()),
      Labels: { ...(o.labels ?? {}) },
      Options: {},
      Scope: 'local',
      ...((o.anonymous ?? name === undefined) ? { Anonymous: true } : {}),
    };
    try {
      mkdirSync(staging, { mode: 0o755 });
      mkdirSync(join(staging, DATA), { mode: 0o755 });
      // mkdir's mode is masked by the umask; the data directory is 0755 whatever it is.
      chmodSync(staging, 0o755);
      chmodSync(join(staging, DATA), 0o755);
      writeFileAtomic(join(staging, META), `${JSON.stringify(info, null, 2)}\n`, 0o644);
    } catch (e) {
      rmSync(staging, { recursive: true, force: true });
      throw wrap(e, `create volume ${n}`);
    }
    // Lost races: another create renamed its volume in first (ENOTEMPTY/EEXIST): return that.
    // A concurrent remove may take it away again before it is read: try again.
    for (let attempt = 0; ; attempt++) {
      try {
        renameSync(staging, this.dir(n));
        return info;
      } catch (e) {
        if (!isErrno(e, 'ENOTEMPTY') && !isErrno(e, 'EEXIST')) {
          rmSync(staging, { recursive: true, force: true });
          throw wrap(e, `create volume ${n}`);
        }
      }
      const winner = this.get(n);
      if (winner || attempt >= 10) {
        rmSync(staging, { recursive: true, force: true });
        if (winner) return winner;
        throw new TsrunError('ERR_INVALID_STATE', `create volume ${n}: ${this.dir(n)} exists but holds no volume`, {
          hint: `remove the directory ${this.dir(n)} if it is not a volume`,
        });
      }
    }
  }

  /** The volume, or null when there is none by this name (or the name is not a volume name). */
  get(name: string): VolumeInfo | null {
    if (!VOLUME_NAME_RE.test(name)) return null;
    let text: string;
    try {
      text = readFileSync(join(this.dir(name), META), 'utf8');
    } catch (e) {
      if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR')) return null;
      throw wrap(e, `read volume ${name}`);
    }
    try {
      const v = JSON.parse(text) as VolumeInfo;
      // The directory is the truth for where the data is (the store may have been moved).
      return { ...v, Name: name, Mountpoint: this.mountpoint(name) };
    } catch (e) {
      throw wrap(e, `read volume ${name}: ${join(this.dir(name), META)}`);
    }
  }

  /** Like get(), but a missing volume is docker's "no such volume" error. */
  inspect(name: string): VolumeInfo {
    const v = this.get(name);
    if (!v) throw noSuchVolume(name);
    return v;
  }

  /** Every volume, by name. */
  list(): VolumeInfo[] {
    let names: string[];
    try {
      names = readdirSync(this.root);
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return [];
      throw wrap(e, `list volumes in ${this.root}`);
    }
    const out: VolumeInfo[] = [];
    for (const n of names.sort()) {
      if (!VOLUME_NAME_RE.test(n)) continue;
      const v = this.get(n);
      if (v) out.push(v);
    }
    return out;
  }

  /** Bytes in the volume's data. */
  size(name: string): number {
    this.inspect(name);
    return dirSize(this.mountpoint(name));
  }

  /** Is _data empty: docker seeds a volume from the image's content only then. */
  isEmpty(name: string): boolean {
    this.inspect(name);
    try {
      return readdirSync(this.mountpoint(name)).length === 0;
    } catch (e) {
      throw wrap(e, `read volume ${name}`);
    }
  }

  markSeeded(name: string): void {
    const v = this.inspect(name);
    if (v.Seeded) return;
    try {
      writeFileAtomic(join(this.dir(name), META), `${JSON.stringify({ ...v, Seeded: true }, null, 2)}\n`, 0o644);
    } catch (e) {
      throw wrap(e, `update volume ${name}`);
    }
  }

  isSeeded(name: string): boolean {
    return this.inspect(name).Seeded === true;
  }

  /**
   * Remove a volume and its data. Refused while a container uses it, force or not (docker:
   * "volume is in use - [ids]"); `force` only makes a missing volume not an error.
   */
  remove(name: string, o: RemoveVolumeOptions): void {
    if (!this.get(name)) {
      if (o.force) return;
      throw noSuchVolume(name, 'remove');
    }
    const users = o.inUse(name);
    if (users.length) {
      throw new TsrunError('ERR_INVALID_STATE', `remove ${name}: volume is in use - [${users.join(', ')}]`, {
        hint: `remove the container(s) using it first (tsrun rm ${users.join(' ')})`,
      });
    }
    if (!this.removeDir(name) && !o.force) throw noSuchVolume(name, 'remove');
  }

  /**
   * rename away (the commit: the volume is gone for every reader), then delete. False when
   * it was not there (removed by someone else meanwhile).
   */
  private removeDir(name: string): boolean {
    const gone = join(this.root, `${REMOVE_PREFIX}${name}-${randomHex(8)}`);
    try {
      renameSync(this.dir(name), gone);
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return false;
      throw wrap(e, `remove volume ${name}`);
    }
    try {
      rmSync(gone, { recursive: true, force: true });
    } catch (e) {
      throw wrap(e, `remove volume ${name}: delete ${gone}`);
    }
    return true;
  }

  /**
   * Remove the volumes no container uses: anonymous ones, or all with `all` (docker's
   * `volume prune [--all]`). Also deletes what crashed creates and removes left behind.
   */
  prune(inUse: VolumeUsers, o: PruneVolumeOptions = {}): PruneResult {
    const result: PruneResult = { removed: [], reclaimedBytes: 0 };
    for (const v of this.list()) {
      if (!o.all && !v.Anonymous) continue;
      if (o.filter && !o.filter(v)) continue;
      if (inUse(v.Name).length) continue;
      const bytes = dirSize(this.mountpoint(v.Name));
      // Removed by someone else meanwhile: not ours to count.
      if (!this.removeDir(v.Name)) continue;
      result.removed.push(v.Name);
      result.reclaimedBytes += bytes;
    }
    this.removeLeftovers();
    return result;
  }

  /** .remove-* dirs (already committed removals) and .create-<pid>-* of processes that died. */
  private removeLeftovers(): void {
    let names: string[];
    try {
      names = readdirSync(this.root);
    } catch {
      return;
    }
    for (const n of names) {
      let garbage = n.startsWith(REMOVE_PREFIX);
      if (n.startsWith(CREATE_PREFIX)) {
        const pid = Number(n.slice(CREATE_PREFIX.length).split('-')[0]);
        garbage = Number.isInteger(pid) && pid > 0 && !alive(pid);
      }
      if (garbage) rmSync(join(this.root, n), { recursive: true, force: true });
    }
  }
}
