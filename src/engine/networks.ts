// The engine's network verbs: `network create|ls|inspect|rm|prune|connect|disconnect`, and
// what `inspect`, `ps` and `port` show of a container's networks. The CNI work is the
// network subsystem's (src/network/manager.ts); this file knows containers.
import { existsSync } from 'node:fs';
import { bridgeNameFor, DEFAULT_NETWORK_NAME, usedCidrsFromIp, validateDnsName } from '../network/conflist.js';
import type { Attachment } from '../network/manager.js';
import { formatPortMapping, type PortMapping } from '../network/ports.js';
import type { Network } from '../network/store.js';
import { TsrunError } from '../util/errors.js';
import { lazyRequire } from '../util/lazy-require.js';
import type { ContainerRecord } from './container-store.js';
import { containerState } from './container-state.js';
import type { EngineContext } from './context.js';
import { isBridged, writeNetworkEtc } from './network-setup.js';

/** A stable id for a network: sha256 of its name (podman 3's rule for CNI networks). */
export function networkId(name: string): string {
  const { createHash } = lazyRequire<typeof import('node:crypto')>('node:crypto');
  return createHash('sha256').update(name).digest('hex');
}

/** Subnets the host routes or has addresses in: a new network avoids them. */
function hostCidrs(): string[] {
  const { spawnSync } = lazyRequire<typeof import('node:child_process')>('node:child_process');
  const ip = (args: string[]) => {
    const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 10_000 });
    if (r.error || r.status !== 0)
      throw new TsrunError('ERR_CHILD_FAILED', `ip ${args.join(' ')}: ${r.error?.message ?? r.stderr.trim()}`, { hint: 'install iproute2' });
    return r.stdout;
  };
  return usedCidrsFromIp(ip(['-j', '-4', 'route', 'show', 'table', 'all']), ip(['-j', '-4', 'addr']));
}

export function createNetwork(ctx: EngineContext, req: { name: string; subnet?: string; gateway?: string; internal?: boolean }): Network {
  if (ctx.networks.store.names().includes(req.name) && ctx.networks.store.get(req.name)) {
    throw new TsrunError('ERR_INVALID_ARGUMENT', `network "${req.name}" already exists`);
  }
  // The bridge's name comes from the network's: a bridge of that name already on the host
  // belongs to another root's network of the same name (or a `network rm` that was killed).
  const bridge = bridgeNameFor(req.name);
  if (existsSync(`/sys/class/net/${bridge}`)) {
    throw new TsrunError('ERR_INVALID_STATE', `network "${req.name}": its bridge ${bridge} already exists on this host`, {
      hint: `another tsrun root may have a network "${req.name}": pick another name, or remove the bridge (\`ip link del ${bridge}\`) if nothing uses it`,
    });
  }
  return ctx.networks.store.create(req, hostCidrs());
}

/** Containers (any state) whose record names the network: docker refuses `network rm` of these. */
export function containersOn(ctx: EngineContext, name: string): ContainerRecord[] {
  return ctx.containers.all().filter((c) => isBridged(c) && (c.intent.networks ?? []).some((n) => n.name === name));
}

/**
 * Attachments whose container is gone: a build step killed mid-RUN, a record removed by hand.
 * Nothing else would ever DEL them, and they would keep the network "in use" for good.
 */
async function reapOrphans(ctx: EngineContext, name: string): Promise<void> {
  const known = new Set([...ctx.containers.ids(), ...ctx.runtime.store.ids()]);
  for (const id of ctx.networks.users(name)) if (!known.has(id)) await ctx.networks.tearDown(id);
}

export async function removeNetwork(ctx: EngineContext, name: string): Promise<void> {
  ctx.networks.store.need(name);
  // Its bridge (tsrun0) and its address store (/run/tsrun/ipam/tsrun) are the host's: every
  // engine's containers use them, and this root's containers are not all of them (docker: "bridge
  // is a pre-defined network and cannot be removed").
  if (name === DEFAULT_NETWORK_NAME) {
    throw new TsrunError('ERR_INVALID_ARGUMENT', `network ${name} is the default network: it cannot be removed`);
  }
  const users = containersOn(ctx, name);
  if (users.length > 0) {
    throw new TsrunError('ERR_INVALID_STATE', `network ${name} is in use by container(s): ${users.map((c) => c.name).join(', ')}`, {
      hint: `remove them first (\`tsrun rm -f ${users.map((c) => c.name).join(' ')}\`), or \`tsrun network disconnect ${name} CONTAINER\``,
    });
  }
  await reapOrphans(ctx, name);
  await ctx.networks.removeNetwork(name);
}

/** Networks no container uses, but the default one. */
export async function pruneNetworks(ctx: EngineContext): Promise<string[]> {
  const removed: string[] = [];
  for (const n of ctx.networks.store.all()) {
    if (n.name === DEFAULT_NETWORK_NAME || containersOn(ctx, n.name).length > 0) continue;
    await reapOrphans(ctx, n.name);
    await ctx.networks.removeNetwork(n.name);
    removed.push(n.name);
  }
  return removed;
}

function isRunning(ctx: EngineContext, rec: ContainerRecord): boolean {
  const s = containerState(ctx, rec).status;
  return s === 'running' || s === 'paused';
}

/** `network connect`: recorded for the next start; a running container is attached now. */
export async function connectContainer(ctx: EngineContext, network: string, ref: string, aliases: string[]): Promise<void> {
  ctx.networks.store.need(network);
  for (const a of aliases) validateDnsName(a, '--alias');
  if (aliases.length && network === DEFAULT_NETWORK_NAME) {
    throw new TsrunError('ERR_INVALID_ARGUMENT', '--alias needs a user-defined network: the default network resolves no names');
  }
  const unlock = ctx.containers.lock(ctx.containers.resolve(ref).id);
  try {
    const rec = ctx.containers.read(ctx.containers.resolve(ref).id);
    if (!isBridged(rec)) throw new TsrunError('ERR_INVALID_STATE', `container ${rec.name} has --network ${rec.intent.network ?? 'none'}: it joins no networks`);
    const nets = rec.intent.networks ?? [];
    if (nets.some((n) => n.name === network)) throw new TsrunError('ERR_INVALID_STATE', `container ${rec.name} is already on network ${network}`);
    const entry = { name: network, aliases };
    if (isRunning(ctx, rec)) {
      await ctx.networks.connect({ id: rec.id, name: rec.name, networks: [], ports: [] }, { name: network, aliases: [...aliases, rec.id.slice(0, 12)] });
    }
    rec.intent.networks = [...nets, entry];
    ctx.containers.write(rec);
    if (isRunning(ctx, rec)) writeNetworkEtc(ctx, rec, ctx.networks.attachments(rec.id));
  } finally {
    unlock();
  }
}

export async function disconnectContainer(ctx: EngineContext, network: string, ref: string): Promise<void> {
  const unlock = ctx.containers.lock(ctx.containers.resolve(ref).id);
  try {
    const rec = ctx.containers.read(ctx.containers.resolve(ref).id);
    const nets = rec.intent.networks ?? [];
    if (!isBridged(rec) || !nets.some((n) => n.name === network)) {
      throw new TsrunError('ERR_INVALID_STATE', `container ${rec.name} is not on network ${network}`);
    }
    await ctx.networks.disconnect(rec.id, network);
    rec.intent.networks = nets.filter((n) => n.name !== network);
    ctx.containers.write(rec);
    if (isRunning(ctx, rec)) writeNetworkEtc(ctx, rec, ctx.networks.attachments(rec.id));
  } finally {
    unlock();
  }
}

function interfaceOf(a: Attachment) {
  const ip = a.result.ips?.[0];
  const iface = ip?.interface !== undefined ? a.result.interfaces?.[ip.interface] : a.result.interfaces?.find((i) => i.sandbox);
  const [addr, prefix] = (ip?.address ?? '').split('/');
  return { ip: addr ?? '', prefix: Number(prefix ?? 0), gateway: ip?.gateway ?? '', mac: iface?.mac ?? '' };
}

/** inspect's NetworkSettings (docker's shape): per network, and the first network's at the top. */
export function networkSettings(ctx: EngineContext, rec: ContainerRecord) {
  const atts = isBridged(rec) ? ctx.networks.attachments(rec.id) : [];
  const networks: Record<string, unknown> = {};
  for (const n of rec.intent.networks ?? []) {
    const a = atts.find((x) => x.network === n.name);
    const f = a ? interfaceOf(a) : { ip: '', prefix: 0, gateway: '', mac: '' };
    networks[n.name] = {
      NetworkID: networkId(n.name),
      IPAddress: f.ip,
      IPPrefixLen: f.prefix,
      Gateway: f.gateway,
      MacAddress: f.mac,
      Aliases: n.aliases,
      InterfaceName: a?.ifName ?? '',
    };
  }
  const first = atts[0] ? interfaceOf(atts[0]) : { ip: '', prefix: 0, gateway: '', mac: '' };
  return {
    SandboxKey: atts.length ? ctx.networks.netnsPath(rec.id) : '',
    IPAddress: first.ip,
    IPPrefixLen: first.prefix,
    Gateway: first.gateway,
    MacAddress: first.mac,
    Ports: portsObject(rec.ports ?? []),
    Networks: networks,
  };
}

/** docker's NetworkSettings.Ports: {"80/tcp": [{HostIp, HostPort}]}. */
export function portsObject(ports: PortMapping[]): Record<string, Array<{ HostIp: string; HostPort: string }>> {
  const out: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
  for (const p of ports) (out[`${p.containerPort}/${p.protocol}`] ??= []).push({ HostIp: p.hostIP || '0.0.0.0', HostPort: String(p.hostPort) });
  return out;
}

/** ps's PORTS column: "127.0.0.1:8080->80/tcp, 0.0.0.0:32768->443/tcp". */
export function portsText(ports: PortMapping[] | undefined): string {
  return (ports ?? []).map(formatPortMapping).join(', ');
}

/** `network inspect`: the network and the containers attached now. */
export function inspectNetwork(ctx: EngineContext, n: Network) {
  const containers: Record<string, unknown> = {};
  for (const id of ctx.networks.users(n.name)) {
    let name = '';
    try {
      name = ctx.containers.read(id).name;
    } catch {
      /* removed meanwhile */
    }
    const a = ctx.networks.attachments(id).find((x) => x.network === n.name);
    const f = a ? interfaceOf(a) : undefined;
    containers[id] = { Name: name, IPv4Address: f ? `${f.ip}/${f.prefix}` : '', MacAddress: f?.mac ?? '' };
  }
  return {
    Name: n.name,
    Id: networkId(n.name),
    Created: n.created,
    Driver: 'bridge',
    NetworkInterface: n.bridge,
    Subnets: [{ Subnet: n.subnet, Gateway: n.gateway }],
    Internal: n.internal,
    DNSEnabled: n.dns,
    Containers: containers,
    ConfigPath: `${ctx.networks.store.dir}/${n.name}.conflist`,
  };
}
