// A container's networking, as the engine drives it: published ports chosen at create, the
// namespace and CNI attachments made at each start (and /etc/hosts, /etc/resolv.conf then
// written with the addresses), and all of it undone whenever the container goes down or away.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostPortsInUse } from '../network/host-ports.js';
import type { Attachment } from '../network/manager.js';
import { assignHostPorts, formatPortMapping, type PortMapping, type PortSpec, parsePublish, publishAll } from '../network/ports.js';
import type { Spec } from '../spec/types.js';
import { TsrunError } from '../util/errors.js';
import type { ContainerRecord } from './container-store.js';
import { containerState } from './container-state.js';
import type { EngineContext } from './context.js';
import { type EtcNetwork, rewriteNetworkEtcFiles } from './etc-files.js';
import type { CreateIntent } from './specgen.js';

export function isBridged(rec: Pick<ContainerRecord, 'intent'>): boolean {
  return rec.intent.network === 'bridge';
}

/** Ports published by containers that are up now (a stopped container holds none), but `except`. */
function portsOfRunningContainers(ctx: EngineContext, except?: string): Array<PortMapping & { owner: string }> {
  const out: Array<PortMapping & { owner: string }> = [];
  for (const c of ctx.containers.all()) {
    if (!c.ports?.length || c.id === except) continue;
    const st = containerState(ctx, c).status;
    if (st === 'running' || st === 'paused' || st === 'stopping') out.push(...c.ports.map((p) => ({ ...p, owner: `container ${c.name}` })));
  }
  return out;
}

function clashes(a: PortMapping, b: PortMapping): boolean {
  return a.hostPort === b.hostPort && a.protocol === b.protocol && (a.hostIP === b.hostIP || a.hostIP === '' || b.hostIP === '');
}

/** Who holds a host port now: a socket on the host or a running container's mapping (portmap reserves nothing). */
function portHolders(ctx: EngineContext, except?: string): (m: PortMapping) => string | undefined {
  const host = hostPortsInUse();
  const containers = portsOfRunningContainers(ctx, except);
  return (m) => (host.has(`${m.protocol}/${m.hostPort}`) ? 'a process on the host' : containers.find((c) => clashes(c, m))?.owner);
}

function refuseHeld(mappings: PortMapping[], heldBy: (m: PortMapping) => string | undefined): void {
  for (const m of mappings) {
    const owner = heldBy(m);
    if (owner) {
      throw new TsrunError('ERR_INVALID_ARGUMENT', `-p ${formatPortMapping(m)}: host port ${m.hostPort}/${m.protocol} is in use by ${owner}`, {
        hint: 'pick another host port, or -p CONTAINERPORT for a free one',
      });
    }
  }
}

/**
 * -p and -P -> portmap entries, with chosen ports filled in, and the indexes of the entries
 * whose host port tsrun chose (a start picks those again if they were taken meanwhile, as
 * docker does); a port held on the host is refused.
 */
export function planPorts(ctx: EngineContext, intent: CreateIntent, exposed: Record<string, unknown> | undefined): { ports: PortMapping[]; chosen: number[] } {
  const explicit: PortSpec[] = (intent.publish ?? []).flatMap((v) => parsePublish(v));
  const specs = intent.publishAll ? [...explicit, ...publishAll(exposed, explicit)] : explicit;
  if (specs.length === 0) return { ports: [], chosen: [] };
  if (intent.network !== 'bridge') {
    throw new TsrunError('ERR_INVALID_ARGUMENT', `-p/-P publish ports of a bridge network; --network ${intent.network} has none`, {
      hint: intent.network === 'host' ? 'with --network host the container’s ports are the host’s already' : 'drop --network none',
    });
  }
  // The first network takes the ports (manager.ts); an internal one has no portmap in its conflist.
  const first = intent.networks?.[0]?.name;
  if (first && ctx.networks.store.get(first)?.internal) {
    throw new TsrunError('ERR_INVALID_ARGUMENT', `-p/-P: network ${first} is internal: it publishes no ports`, {
      hint: 'put the container first on a network that is not --internal',
    });
  }
  const heldBy = portHolders(ctx);
  const mappings = assignHostPorts(specs, (port, protocol, hostIP) => heldBy({ hostPort: port, protocol, hostIP, containerPort: 0 }) === undefined);
  refuseHeld(mappings, heldBy);
  return { ports: mappings, chosen: specs.flatMap((s, i) => (s.hostPort === 0 ? [i] : [])) };
}

/** At start: a chosen port someone took since is chosen again; a named one still held is refused. */
function refreshPorts(ctx: EngineContext, rec: ContainerRecord): void {
  const heldBy = portHolders(ctx, rec.id);
  const chosen = new Set(rec.chosenPorts ?? []);
  const ports = [...(rec.ports ?? [])];
  ports.forEach((m, i) => {
    if (!chosen.has(i) || heldBy(m) === undefined) return;
    const others = ports.filter((_, j) => j !== i);
    const spec: PortSpec = {
      hostIP: m.hostIP,
      hostPort: 0,
      containerPort: m.containerPort,
      protocol: m.protocol,
      source: `-p ${m.containerPort}/${m.protocol}`,
    };
    ports[i] = assignHostPorts([spec], (port, protocol, hostIP) => {
      const cand = { hostPort: port, protocol, hostIP, containerPort: 0 };
      return heldBy(cand) === undefined && !others.some((o) => clashes(o, cand));
    })[0]!;
  });
  refuseHeld(ports, heldBy);
  rec.ports = ports;
}

/** The networks' view for /etc: addresses without prefix, eth0's first; dnsname's name servers. */
export function etcNetwork(atts: Attachment[]): EtcNetwork {
  const ips = atts.flatMap((a) => a.result.ips ?? []);
  return {
    addresses: ips.map((ip) => ip.address.split('/')[0]!),
    ...(ips[0]?.gateway ? { gateway: ips[0].gateway } : {}),
    nameservers: [...new Set(atts.flatMap((a) => a.result.dns?.nameservers ?? []))],
    search: [...new Set(atts.flatMap((a) => a.result.dns?.search ?? []))],
  };
}

/** The container's /etc/hosts and resolv.conf from what the networks gave it. */
export function writeNetworkEtc(ctx: EngineContext, rec: ContainerRecord, atts: Attachment[]): void {
  const i = rec.intent;
  rewriteNetworkEtcFiles(ctx.containers.dir(rec.id), {
    hostname: i.hostname ?? rec.id.slice(0, 12),
    name: rec.name,
    network: 'bridge',
    aliases: [...new Set((i.networks ?? []).flatMap((n) => n.aliases))],
    attached: etcNetwork(atts),
    ...(i.dns ? { dns: i.dns } : {}),
    ...(i.dnsSearch ? { dnsSearch: i.dnsSearch } : {}),
    ...(i.dnsOptions ? { dnsOptions: i.dnsOptions } : {}),
    ...(i.addHosts ? { addHosts: i.addHosts } : {}),
  });
}

/** A namespace of the engine's own (lo up): a record made before bridges joined none by unsharing. */
function ownsNetns(ctx: EngineContext, rec: ContainerRecord): boolean {
  if (isBridged(rec)) return true;
  if (rec.intent.network === 'host') return false;
  try {
    const spec = JSON.parse(readFileSync(join(ctx.containers.dir(rec.id), 'config.json'), 'utf8')) as Spec;
    return spec.linux?.namespaces?.some((n) => n.type === 'network' && n.path === ctx.networks.netnsPath(rec.id)) === true;
  } catch {
    return false;
  }
}

/** At start: a namespace, each network attached, the /etc files. Undone by itself on failure. */
export async function startNetworking(ctx: EngineContext, rec: ContainerRecord): Promise<void> {
  if (!ownsNetns(ctx, rec)) return;
  if (!isBridged(rec)) {
    await ctx.networks.setUp({ id: rec.id, name: rec.name, networks: [], ports: [] });
    return;
  }
  // Ports chosen at create may have been taken since (another container started, a host server).
  if (rec.ports?.length) refreshPorts(ctx, rec);
  const atts = await ctx.networks.setUp({
    id: rec.id,
    name: rec.name,
    // dnsname answers the name (K8S_POD_NAME) and these: the aliases and the short id (docker's).
    networks: (rec.intent.networks ?? []).map((n) => ({ name: n.name, aliases: [...n.aliases, rec.id.slice(0, 12)] })),
    ports: rec.ports ?? [],
  });
  try {
    writeNetworkEtc(ctx, rec, atts);
  } catch (e) {
    await ctx.networks.tearDown(rec.id).catch(() => undefined);
    throw e;
  }
}

/** Whenever the container is down or goes away: every attachment DEL'd, the namespace removed. */
export async function stopNetworking(ctx: EngineContext, rec: ContainerRecord): Promise<void> {
  if (rec.intent.network === 'host' && ctx.networks.attachments(rec.id).length === 0) return;
  await ctx.networks.tearDown(rec.id);
}
