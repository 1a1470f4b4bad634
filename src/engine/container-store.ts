// The engine's container records: one directory per container under the image store's root
// (`<root>/containers/<id>/`, shared with the overlay of src/image/rootfs.ts), holding
//   container.json   the record below (atomic writes: temp + rename)
//   config.json      the OCI spec rendered at create (the bundle is this directory)
//   upper/ work/ merged/   the overlay (rootfs.ts)
//   ctr.log, exit.json, attach, monitor.err   written by the monitor (monitor_protocol.h)
// Names are unique under a store-wide lock; each container has its own lock file, taken by
// every command that changes it (lock order: names, then container; never held while
// waiting for an exit).
import type { PortMapping } from '../network/ports.js';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { native } from '../native/index.js';
import { isErrno, TsrunError, wrap } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs-atomic.js';
import type { CreateIntent } from './specgen.js';

const LOCK_TIMEOUT_MS = 30_000;
const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const ID_RE = /^[a-f0-9]{64}$/;

export interface MountRecord {
  type: 'bind' | 'volume' | 'tmpfs';
  source: string;
  destination: string;
  readOnly: boolean;
  /** Named or anonymous volume name (type volume). */
  name?: string;
}

export interface ContainerRecord {
  id: string;
  name: string;
  created: string;
  /** The image as the user named it, and what it resolved to. */
  image: string;
  imageRef: string;
  imageId: string;
  manifestDigest: string;
  diffIds: string[];
  intent: CreateIntent;
  /** The process's argv (for ps and inspect). */
  args: string[];
  /** The user as given or from the image (inspect's Config.User). */
  user: string;
  env: string[];
  workdir: string;
  labels: Record<string, string>;
  stopSignal: string;
  stopTimeout: number;
  autoRemove: boolean;
  interactive: boolean;
  tty: boolean;
  logMaxSize: number;
  logMaxFiles: number;
  mounts: MountRecord[];
  anonymousVolumes: string[];
  /** Published ports (bridge networks), host ports chosen at create. */
  ports?: PortMapping[];
  /** Indexes of `ports` whose host port tsrun chose (-p PORT, -P): chosen again at a start if taken. */
  chosenPorts?: number[];
  monitor?: { pid: number; startTime: string };
  startedAt?: string;
  restartCount: number;
  /** Set before the first undoable step of create and of rm: a crash leaves what `rm -f` finishes. */
  phase: 'creating' | 'created' | 'removing';
}

const ADJECTIVES = ['brave', 'calm', 'eager', 'fond', 'gentle', 'happy', 'keen', 'lucid', 'merry', 'nifty', 'quirky', 'sharp', 'stoic', 'vivid', 'wise', 'zen'];
const NOUNS = ['ada', 'babbage', 'curie', 'dijkstra', 'euler', 'gauss', 'hopper', 'knuth', 'lovelace', 'noether', 'ritchie', 'shannon', 'thompson', 'turing'];

/** /dev/urandom, not node:crypto: loading that costs every CLI start a few milliseconds. */
function randomBytes(n: number): Buffer {
  const b = Buffer.alloc(n);
  const fd = openSync('/dev/urandom', 'r');
  try {
    readSync(fd, b, 0, n, null);
  } finally {
    closeSync(fd);
  }
  return b;
}

export function randomName(): string {
  const b = randomBytes(3);
  return `${ADJECTIVES[b[0]! % ADJECTIVES.length]}_${NOUNS[b[1]! % NOUNS.length]}${b[2]! % 100}`;
}

export function validateName(name: string): void {
  if (!NAME_RE.test(name) || name.length > 128) {
    throw new TsrunError('ERR_INVALID_ARGUMENT', `invalid container name "${name}": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  }
}

export class ContainerStore {
  constructor(readonly root: string) {}

  private get base(): string {
    return join(this.root, 'containers');
  }
  dir(id: string): string {
    if (!ID_RE.test(id)) throw new TsrunError('ERR_INVALID_ID', `invalid container id "${id}"`);
    return join(this.base, id);
  }
  recordPath(id: string): string {
    return join(this.dir(id), 'container.json');
  }

  newId(): string {
    return randomBytes(32).toString('hex');
  }

  ids(): string[] {
    try {
      return readdirSync(this.base).filter((d) => ID_RE.test(d) && existsSync(join(this.base, d, 'container.json')));
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return [];
      throw wrap(e, `list containers in ${this.base}`);
    }
  }

  read(id: string): ContainerRecord {
    try {
      return JSON.parse(readFileSync(this.recordPath(id), 'utf8')) as ContainerRecord;
    } catch (e) {
      if (isErrno(e, 'ENOENT')) throw new TsrunError('ERR_CONTAINER_NOT_FOUND', `no such container: ${id}`);
      throw wrap(e, `read container ${id}`);
    }
  }

  all(): ContainerRecord[] {
    const out: ContainerRecord[] = [];
    for (const id of this.ids()) {
      try {
        out.push(this.read(id));
      } catch {
        /* removed meanwhile */
      }
    }
    return out;
  }

  write(rec: ContainerRecord): void {
    mkdirSync(this.dir(rec.id), { recursive: true, mode: 0o700 });
    // Not fsync'd: atomic for readers and across a killed writer; a power loss may lose the
    // latest change (podman's transient store makes the same trade for speed).
    writeFileAtomic(this.recordPath(rec.id), JSON.stringify(rec), 0o600, false);
  }

  /** Remove the record and everything left in its directory (the overlay must be unmounted). */
  removeDir(id: string): void {
    rmSync(this.dir(id), { recursive: true, force: true });
  }

  /** A container by full id, name, or unique id prefix (docker's lookup order). */
  resolve(ref: string): ContainerRecord {
    if (ID_RE.test(ref) && existsSync(this.recordPath(ref))) return this.read(ref);
    const all = this.all();
    const byName = all.find((r) => r.name === ref || r.name === ref.replace(/^\//, ''));
    if (byName) return byName;
    if (/^[a-f0-9]+$/.test(ref)) {
      const hits = all.filter((r) => r.id.startsWith(ref));
      if (hits.length === 1) return hits[0]!;
      if (hits.length > 1) {
        throw new TsrunError('ERR_INVALID_ARGUMENT', `"${ref}" is ambiguous: it matches ${hits.length} containers`, {
          hint: 'give more digits of the id, or the name',
        });
      }
    }
    throw new TsrunError('ERR_CONTAINER_NOT_FOUND', `no such container: ${ref}`, { hint: 'list containers with `tsrun ps -a`' });
  }

  private lockPath(name: string): string {
    const dir = join(this.root, 'locks');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return join(dir, name);
  }

  lockFile(name: string, what: string): () => void {
    let fd: number;
    try {
      fd = native.lockFile(this.lockPath(name), LOCK_TIMEOUT_MS);
    } catch (e) {
      if (isErrno(e, 'ETIMEDOUT')) throw new TsrunError('ERR_LOCK_TIMEOUT', `${what} is locked by another tsrun process`);
      throw wrap(e, `lock ${what}`);
    }
    return () => native.close(fd);
  }

  /** Per-container lock: every command that changes a container holds it. */
  lock(id: string): () => void {
    return this.lockFile(`container-${id}.lock`, `container ${id.slice(0, 12)}`);
  }

  /** Store-wide lock for name reservation (held only while checking and writing the record). */
  lockNames(): () => void {
    return this.lockFile('container-names.lock', 'the container name table');
  }

  unlinkLock(id: string): void {
    rmSync(join(this.root, 'locks', `container-${id}.lock`), { force: true });
  }
}
