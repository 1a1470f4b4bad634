// tsrun's networks on disk. A network is its CNI conflist, `<root>/networks/<name>.conflist`
// (the one record of it: `network inspect` reads it back through networkFromConflist). What
// lives only while containers run is under the run root, so a reboot, which takes bridges,
// veths, iptables rules and namespaces with it, takes it too:
//   <runRoot>/networks/cache/<net>-<id>-<if>.json what each ADD returned, for DEL (cni-exec)
//   <runRoot>/networks/locks/<network>.lock      ADD and DEL share it; `network rm` takes it alone
//   /run/tsrun/ipam/<network>/<ip>               host-local's allocations: one store for the
//                                                 host, whatever the root, because a bridge
//                                                 and its subnet are the host's (two engines
//                                                 with their own roots share bridge tsrun0)
// The default network "tsrun" needs no `network create`: its conflist is written the first
// time it is used (podman's default network, likewise).
import { mkdirSync, readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { native } from '../native/index.js';
import { isErrno, TsrunError, wrap } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs-atomic.js';
import type { CniConflist } from './cni-exec.js';
import {
  buildConflist,
  checkConflicts,
  DEFAULT_NETWORK_NAME,
  defaultNetwork,
  defineNetwork,
  type NetworkDefinition,
  type NetworkRequest,
  networkFromConflist,
  validateNetworkName,
} from './conflist.js';

const LOCK_TIMEOUT_MS = 60_000;
export const DEFAULT_IPAM_DIR = '/run/tsrun/ipam';

export interface Network extends NetworkDefinition {
  /** When the conflist was written (ISO 8601): `network ls`/`inspect`'s Created. */
  created: string;
  list: CniConflist;
}

export class NetworkStore {
  readonly dir: string;
  readonly ipamDir: string;
  readonly cacheDir: string;
  private readonly lockDir: string;

  constructor(root: string, runRoot: string, ipamDir = DEFAULT_IPAM_DIR) {
    this.dir = join(root, 'networks');
    this.ipamDir = ipamDir;
    this.cacheDir = join(runRoot, 'networks', 'cache');
    this.lockDir = join(runRoot, 'networks', 'locks');
  }

  private path(name: string): string {
    return join(this.dir, `${name}.conflist`);
  }

  names(): string[] {
    let entries: string[] = [];
    try {
      entries = readdirSync(this.dir);
    } catch (e) {
      if (!isErrno(e, 'ENOENT')) throw wrap(e, `list networks in ${this.dir}`);
    }
    const names = entries.filter((f) => f.endsWith('.conflist')).map((f) => f.slice(0, -'.conflist'.length));
    if (!names.includes(DEFAULT_NETWORK_NAME)) names.push(DEFAULT_NETWORK_NAME);
    return names.sort();
  }

  /** The network, or undefined. The default network is always there (written on first read). */
  get(name: string): Network | undefined {
    if (name === DEFAULT_NETWORK_NAME) return this.ensureDefault();
    return this.read(name);
  }

  /** Like get, but a missing network is an error that says how to make one. */
  need(name: string): Network {
    const n = this.get(name);
    if (!n) {
      throw new TsrunError('ERR_INVALID_ARGUMENT', `no such network: ${name}`, { hint: `create it with \`tsrun network create ${name}\`` });
    }
    return n;
  }

  all(): Network[] {
    return this.names()
      .map((n) => this.get(n))
      .filter((n): n is Network => n !== undefined);
  }

  private read(name: string): Network | undefined {
    validateNetworkName(name);
    const p = this.path(name);
    let text: string;
    try {
      text = readFileSync(p, 'utf8');
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return undefined;
      throw wrap(e, `read network ${name}`);
    }
    let list: CniConflist;
    try {
      list = JSON.parse(text) as CniConflist;
    } catch (e) {
      throw new TsrunError('ERR_INVALID_CONFIG', `network config ${p} is not JSON: ${(e as Error).message}`, {
        hint: `remove it with \`tsrun network rm ${name}\``,
      });
    }
    const created = typeof list['tsrun.created'] === 'string' ? (list['tsrun.created'] as string) : '';
    return { ...networkFromConflist(list), created, list };
  }

  private write(def: NetworkDefinition): Network {
    const list: CniConflist = { ...buildConflist(def, { ipamDataDir: this.ipamDir }), 'tsrun.created': new Date().toISOString() };
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    writeFileAtomic(this.path(def.name), `${JSON.stringify(list, null, 2)}\n`, 0o644);
    return { ...def, created: list['tsrun.created'] as string, list };
  }

  private ensureDefault(): Network {
    const found = this.read(DEFAULT_NETWORK_NAME);
    if (found) return found;
    return this.withStoreLock(() => this.read(DEFAULT_NETWORK_NAME) ?? this.write(defaultNetwork()));
  }

  /** `network create`: subnets in use on the host (`used`) and by other networks are refused or avoided. */
  create(req: NetworkRequest, hostCidrs: readonly string[]): Network {
    return this.withStoreLock(() => {
      const existing = this.all();
      const def = defineNetwork(req, [...hostCidrs, ...existing.map((n) => n.subnet)]);
      checkConflicts(def, existing);
      return this.write(def);
    });
  }

  /** Removes the conflist only; the caller has checked that no container uses it. */
  remove(name: string): void {
    validateNetworkName(name);
    try {
      unlinkSync(this.path(name));
    } catch (e) {
      if (!isErrno(e, 'ENOENT')) throw wrap(e, `remove network ${name}`);
    }
  }

  /** Run `fn` holding the network's lock: shared for ADD and DEL, exclusive for `network rm`. */
  async withNetworkLock<T>(name: string, shared: boolean, fn: () => Promise<T>): Promise<T> {
    mkdirSync(this.lockDir, { recursive: true, mode: 0o700 });
    const fd = this.lock(join(this.lockDir, `${name}.lock`), `network ${name}`, shared);
    try {
      return await fn();
    } finally {
      native.close(fd);
    }
  }

  private withStoreLock<T>(fn: () => T): T {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const fd = this.lock(join(this.dir, '.lock'), 'the network store', false);
    try {
      return fn();
    } finally {
      native.close(fd);
    }
  }

  private lock(path: string, what: string, shared: boolean): number {
    try {
      return native.lockFile(path, LOCK_TIMEOUT_MS, shared);
    } catch (e) {
      throw wrap(e, `lock ${what}`);
    }
  }
}
