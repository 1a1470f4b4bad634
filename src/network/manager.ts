// The network subsystem's façade for the engine: a container's network namespace, its
// attachments to networks (CNI ADD/DEL through cni-exec), and what is left to remove when a
// network's last container goes (its bridge, and the DNS rule dnsname leaves).
//
// State is what the kernel and the plugins keep, read back each time: the namespace is a
// bind mount at `<runRoot>/netns/<id>`, each attachment is a CNI cache record
// (`readContainerCache`), each address a host-local file. So tearDown works from any state
// a crash leaves: a killed monitor, a half-done start, a record already gone.
import { mkdirSync, readdirSync, readFileSync, rmSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { native } from '../native/index.js';
import { isErrno, TsrunError, wrap } from '../util/errors.js';
import { lazyRequire } from '../util/lazy-require.js';
import { mark } from '../util/timing.js';
import { addNetworkList, type CniExecOptions, type CniResult, DEFAULT_CNI_PLUGIN_DIRS, delNetworkList, readContainerCache } from './cni-exec.js';
import type { PortMapping } from './ports.js';
import type { NetworkStore } from './store.js';

const MNT_DETACH = 2;

export interface NetworkRequestOf {
  name: string;
  /** Extra names on this network (--network-alias); the container's name is always one. */
  aliases: string[];
}

export interface Attachment {
  network: string;
  ifName: string;
  result: CniResult;
}

export interface SandboxRequest {
  id: string;
  /** The container's name: dnsname resolves it. */
  name: string;
  networks: NetworkRequestOf[];
  /** Published ports: given to the first network's portmap (docker publishes on one). */
  ports: PortMapping[];
}

export class Networking {
  private readonly cni: CniExecOptions;

  constructor(
    readonly store: NetworkStore,
    readonly runRoot: string,
    pluginDirs: readonly string[] = DEFAULT_CNI_PLUGIN_DIRS,
  ) {
    this.cni = { pluginDirs, cacheDir: store.cacheDir };
  }

  netnsPath(id: string): string {
    return join(this.runRoot, 'netns', id);
  }

  /** The container's attachments now, sorted by interface (eth0 first). */
  attachments(id: string): Attachment[] {
    return readContainerCache(this.store.cacheDir, id)
      .filter((r) => r.result !== undefined)
      .map((r) => ({ network: r.network, ifName: r.ifName, result: r.result! }))
      .sort((a, b) => ifIndex(a.ifName) - ifIndex(b.ifName));
  }

  /** Ids of the containers attached to `network`. */
  users(network: string): string[] {
    let files: string[];
    try {
      files = readdirSync(this.store.cacheDir);
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return [];
      throw e;
    }
    const ids = new Set<string>();
    for (const f of files) {
      if (!f.startsWith(`${network}-`) || !f.endsWith('.json')) continue;
      try {
        const rec = JSON.parse(readFileSync(join(this.store.cacheDir, f), 'utf8')) as { network?: unknown; containerId?: unknown };
        if (rec.network === network && typeof rec.containerId === 'string') ids.add(rec.containerId);
      } catch {
        /* removed meanwhile */
      }
    }
    return [...ids];
  }

  /**
   * A namespace and every requested attachment. On failure everything done is undone (the
   * error then carries what the undo could not do) and nothing is left.
   */
  async setUp(req: SandboxRequest): Promise<Attachment[]> {
    for (const n of req.networks) this.store.need(n.name);
    this.createNetns(req.id);
    const out: Attachment[] = [];
    try {
      for (const [i, n] of req.networks.entries()) {
        out.push(await this.attach(req, n, `eth${i}`, i === 0 ? req.ports : []));
      }
      return out;
    } catch (e) {
      const err = e instanceof TsrunError ? e : wrap(e, 'set up the container network');
      try {
        await this.tearDown(req.id);
      } catch (u) {
        err.cleanupErrors.push(u as Error);
      }
      throw err;
    }
  }

  /** `network connect` of a running container: the next free interface. */
  async connect(req: SandboxRequest, n: NetworkRequestOf): Promise<Attachment> {
    const taken = new Set(this.attachments(req.id).map((a) => a.ifName));
    let i = 0;
    while (taken.has(`eth${i}`)) i++;
    return this.attach(req, n, `eth${i}`, []);
  }

  private async attach(req: SandboxRequest, n: NetworkRequestOf, ifName: string, ports: PortMapping[]): Promise<Attachment> {
    const capabilityArgs: Record<string, unknown> = { aliases: { [n.name]: [...new Set(n.aliases)] } };
    if (ports.length > 0) capabilityArgs['portMappings'] = ports;
    const rt = {
      containerId: req.id,
      netns: this.netnsPath(req.id),
      ifName,
      args: [
        ['IgnoreUnknown', '1'],
        ['K8S_POD_NAME', req.name],
        ['K8S_POD_INFRA_CONTAINER_ID', req.id],
      ] as Array<[string, string]>,
      capabilityArgs,
    };
    // Read under the lock: a `network rm` that ran meanwhile is a clean "no such network".
    const result = await this.store.withNetworkLock(n.name, true, () => addNetworkList(this.store.need(n.name).list, rt, this.cni));
    return { network: n.name, ifName, result };
  }

  /** DEL every attachment (idempotent), then the namespace. */
  async tearDown(id: string): Promise<void> {
    const errors: Error[] = [];
    for (const rec of readContainerCache(this.store.cacheDir, id)) {
      try {
        await this.detachRecord(id, rec.network, rec.ifName);
      } catch (e) {
        errors.push(e as Error);
      }
    }
    // Only when every DEL went through: a DEL retried without the namespace cannot find the
    // bridge plugin's masquerade chain (cni-exec.ts), so a failed one keeps it for `rm -f`.
    if (errors.length === 0) {
      try {
        this.removeNetns(id);
      } catch (e) {
        errors.push(e as Error);
      }
    }
    if (errors.length > 0) {
      const e = errors[0] instanceof TsrunError ? errors[0] : wrap(errors[0], 'tear down the container network');
      e.cleanupErrors.push(...errors.slice(1));
      throw e;
    }
  }

  /** `network disconnect`: one network's attachment(s) of the container. */
  async disconnect(id: string, network: string): Promise<boolean> {
    const recs = readContainerCache(this.store.cacheDir, id).filter((r) => r.network === network);
    for (const r of recs) await this.detachRecord(id, r.network, r.ifName);
    return recs.length > 0;
  }

  private async detachRecord(id: string, network: string, ifName: string): Promise<void> {
    const rec = readContainerCache(this.store.cacheDir, id).find((r) => r.network === network && r.ifName === ifName);
    if (!rec) return;
    // The list the ADD ran (in the record): a network removed since is still undone right.
    await this.store.withNetworkLock(network, true, () => delNetworkList(rec.config, { containerId: id, netns: this.netnsPath(id), ifName }, this.cni));
    mark('n-del');
  }

  /**
   * `network rm` of a network no container uses. The bridge plugin makes a network's bridge
   * and never removes it, and dnsname leaves its INPUT rule for DNS on it; both live as long
   * as the network (docker's bridges likewise), so they go here, with its conflist and its
   * address store. The lock keeps an ADD from starting meanwhile.
   */
  async removeNetwork(name: string): Promise<void> {
    const net = this.store.need(name);
    await this.store.withNetworkLock(name, false, async () => {
      if (this.users(name).length > 0) {
        throw new TsrunError(
          'ERR_INVALID_STATE',
          `network ${name} is in use by container(s) ${this.users(name)
            .map((i) => i.slice(0, 12))
            .join(', ')}`,
        );
      }
      if (net.dns) {
        await run('iptables', ['-w', '-D', 'INPUT', '-i', net.bridge, '-p', 'udp', '-m', 'udp', '--dport', '53', '-j', 'ACCEPT']).catch(() => undefined);
      }
      await run('ip', ['link', 'del', net.bridge]).catch((e: Error) => {
        if (!/Cannot find device|does not exist/.test(e.message)) throw e;
      });
      rmSync(join(this.store.ipamDir, name), { recursive: true, force: true });
      this.store.remove(name);
    });
  }

  private createNetns(id: string): void {
    const p = this.netnsPath(id);
    mkdirSync(join(this.runRoot, 'netns'), { recursive: true, mode: 0o755 });
    this.removeNetns(id); // a stale one from a start that was killed
    try {
      native.newNetns(p);
    } catch (e) {
      throw wrap(e, `create the network namespace of container ${id.slice(0, 12)}`);
    }
  }

  removeNetns(id: string): void {
    const p = this.netnsPath(id);
    try {
      native.umount2(p, MNT_DETACH);
    } catch (e) {
      if (!isErrno(e, 'EINVAL') && !isErrno(e, 'ENOENT')) throw wrap(e, `unmount the network namespace ${p}`);
    }
    try {
      unlinkSync(p);
    } catch (e) {
      if (!isErrno(e, 'ENOENT')) throw wrap(e, `remove ${p}`);
    }
  }
}

function ifIndex(ifName: string): number {
  const m = /(\d+)$/.exec(ifName);
  return m ? Number(m[1]) : 0;
}

function run(cmd: string, args: string[]): Promise<void> {
  const { execFile } = lazyRequire<typeof import('node:child_process')>('node:child_process');
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 30_000 }, (err, _out, stderr) => {
      if (err) reject(new TsrunError('ERR_CHILD_FAILED', `${cmd} ${args.join(' ')}: ${String(stderr).trim() || err.message}`));
      else resolve();
    });
  });
}
