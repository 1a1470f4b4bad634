// A tsrun network and the CNI configuration list that implements it. Pure: no file, no
// netlink; the network store (next) writes the list under `<root>/networks/` and reads it
// back with networkFromConflist, so the .conflist is the one record of a network (as podman
// 3 kept its networks: a conflist each, parsed for `network inspect`).
//
// The list, in plugin order (podman 3's 87-podman-bridge.conflist, with tsrun's names):
//   bridge    a Linux bridge per network, a veth per container; isGateway puts the gateway
//             address on the bridge (the host is the containers' router, and the address a
//             name server can listen on); ipMasq (unless internal) masquerades what the
//             containers send off the subnet; hairpinMode lets a container reach itself
//             through a published port. Addresses from host-local: the subnet and gateway,
//             a default route only when not internal, allocations under tsrun's root.
//   portmap   published ports (the portMappings capability), unless internal: an internal
//             network has no way in or out. It keeps its gateway address (the host, and a
//             name server later, stay reachable) but its containers get no route through it;
//             a container allowed CAP_NET_ADMIN could add one, and the host would forward if
//             its FORWARD policy lets it (docker adds DROP rules for that; CNI has no plugin
//             for it, and tsrun writes no iptables rules of its own).
//   firewall  iptables backend: the FORWARD accept rules for the container's addresses
//             (needed on hosts whose FORWARD policy is DROP, and with br_netfilter for
//             traffic between containers of one bridge).
//   tuning    no options: the hook for per-container sysctls later, as podman has it.
//   dnsname   user-defined networks only (docker's rule: the default bridge resolves no
//             names): a dnsmasq per network on its gateway address, answering the names
//             and --network-aliases of the containers on it under DNS_DOMAIN (podman 3's
//             plugin, from Debian's golang-github-containernetworking-plugin-dnsname).
//
// Defaults and why:
//   - The default network "tsrun" is 10.87.0.0/16 on bridge "tsrun0". Not 10.88.0.0/16
//     (podman's default network, and containerd's example CNI config), not cri-o's
//     10.85.0.0/16, and not 10.89.0.0/16 either: podman 4's `network create` takes its
//     subnets from 10.89.0.0/24 upwards (containers/common DefaultSubnetPools: 10.89.0.0/16
//     .. 10.128.0.0/9 in /24s), so 10.89.0.0/24 is the first network a podman user makes.
//   - Networks created without --subnet get a free /24 of 10.86.0.0/16 (256 networks),
//     chosen against the host's routes and addresses and the other tsrun networks.
//   - Bridge names: "tsrun0" for the default network; "tsrun" + 8 hex digits of
//     sha256(network name) for the others (13 characters, within IFNAMSIZ's 15; the same
//     name always gives the same bridge, so a re-created network finds its old bridge).
import type { CniConflist, CniPluginConf } from './cni-exec.js';
import { broadcastOf, type Cidr, cidrContains, cidrsOverlap, formatCidr, intToIp, ipToInt, isIPv4, parseCidr } from './ipv4.js';
import { TsrunError } from '../util/errors.js';
import { lazyRequire } from '../util/lazy-require.js';

export const CONFLIST_CNI_VERSION = '1.0.0';
export const DEFAULT_NETWORK_NAME = 'tsrun';
export const DEFAULT_SUBNET = '10.87.0.0/16';
export const DEFAULT_BRIDGE = 'tsrun0';
/** The domain dnsname answers for (podman's is dns.podman); containers get it as their search domain. */
export const DNS_DOMAIN = 'dns.tsrun';
/** Where networks without --subnet get theirs: /24s of these, in order. */
export const DEFAULT_SUBNET_POOLS: ReadonlyArray<{ base: string; prefix: number }> = Object.freeze([{ base: '10.86.0.0/16', prefix: 24 }]);

/**
 * `--network` words that are modes, not networks (docker's and podman's): a network cannot
 * take these names. "bridge" is what docker and podman users write for the default network.
 */
export const RESERVED_NETWORK_NAMES: readonly string[] = Object.freeze([
  'none',
  'host',
  'bridge',
  'container',
  'default',
  'private',
  'ns',
  'slirp4netns',
  'pasta',
]);

/** A tsrun network: what `network create` records and `network inspect` shows. */
export interface NetworkDefinition {
  name: string;
  /** IPv4 CIDR, canonical (no host bits). */
  subnet: string;
  gateway: string;
  /** No default route, no masquerade, no published ports. */
  internal: boolean;
  /** The Linux bridge's name. */
  bridge: string;
  /** Containers resolve each other's names (the dnsname plugin): every network but the default. */
  dns: boolean;
}

/** What `network create` was given; what is missing is chosen. */
export interface NetworkRequest {
  name: string;
  subnet?: string;
  gateway?: string;
  internal?: boolean;
  bridge?: string;
}

export interface ConflistOptions {
  /** host-local's dataDir: `<root>/networks/ipam` (it keeps `<dataDir>/<network>/<ip>` files). */
  ipamDataDir: string;
}

// ---------------------------------------------------------------------------------------
// Validation.

/**
 * docker's network name rule ([a-zA-Z0-9][a-zA-Z0-9_.-]*, which is also the CNI spec's),
 * at most 128 characters (the name is part of file names: the result cache's
 * `<network>-<64-hex id>-<ifname>.json` and host-local's `<dataDir>/<network>/`, under
 * NAME_MAX 255), and not one of the `--network` mode words.
 */
export function validateNetworkName(name: string): void {
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(name)) {
    throw new TsrunError('ERR_INVALID_ARGUMENT', `invalid network name "${name}": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  }
  if (name.length > 128) throw new TsrunError('ERR_INVALID_ARGUMENT', `invalid network name "${name.slice(0, 20)}...": longer than 128 characters`);
  if (RESERVED_NETWORK_NAMES.includes(name)) {
    const hint = name === 'bridge' ? { hint: `"bridge" names the default network, "${DEFAULT_NETWORK_NAME}"` } : {};
    throw new TsrunError('ERR_INVALID_ARGUMENT', `network name "${name}" is reserved: it is a --network mode`, hint);
  }
}

/**
 * A name dnsname will serve (--network-alias): DNS labels of letters, digits and inner
 * hyphens, dot-separated, 253 characters at most. dnsname writes names into dnsmasq's hosts
 * file a line per container, so a space or newline would add names or records of its own.
 */
export function validateDnsName(name: string, flag = '--network-alias'): void {
  const label = '[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?';
  if (name.length > 253 || !new RegExp(`^${label}(\\.${label})*$`).test(name)) {
    throw new TsrunError('ERR_INVALID_ARGUMENT', `${flag} ${JSON.stringify(name)}: not a DNS name (letters, digits, inner hyphens, dot-separated labels)`);
  }
}

/** A Linux interface name: 1-15 characters of [a-zA-Z0-9_.-], not "." or "..". */
export function validateBridgeName(name: string, flag = 'bridge name'): void {
  if (!/^[a-zA-Z0-9_.-]{1,15}$/.test(name) || name === '.' || name === '..') {
    throw new TsrunError('ERR_INVALID_ARGUMENT', `${flag} "${name}": an interface name is 1-15 characters of [a-zA-Z0-9_.-]`);
  }
}

/** Address ranges a container subnet must not touch: they mean something else to every host. */
const SPECIAL: ReadonlyArray<{ cidr: string; what: string }> = [
  { cidr: '0.0.0.0/8', what: '"this network" (0.0.0.0/8)' },
  { cidr: '127.0.0.0/8', what: 'loopback (127.0.0.0/8)' },
  { cidr: '169.254.0.0/16', what: 'link-local (169.254.0.0/16)' },
  { cidr: '224.0.0.0/4', what: 'multicast (224.0.0.0/4)' },
  { cidr: '240.0.0.0/4', what: 'reserved (240.0.0.0/4)' },
];

/**
 * `--subnet`: an IPv4 CIDR with no host bits set, prefix /8 to /30 (a /31 or /32 has no
 * room for a gateway and a container), outside the special ranges. Returns it canonical.
 */
export function validateSubnet(text: string, flag = '--subnet'): Cidr {
  const c = parseCidr(text);
  if (c === undefined || !text.includes('/')) {
    throw new TsrunError('ERR_INVALID_ARGUMENT', `${flag} "${text}": not an IPv4 CIDR (a.b.c.d/n)`, {
      ...(text.includes(':') ? { hint: 'tsrun networks are IPv4 only' } : {}),
    });
  }
  const canonical = formatCidr(c);
  if (c.hostBitsSet) {
    throw new TsrunError('ERR_INVALID_ARGUMENT', `${flag} "${text}": host bits are set`, { hint: `the network is ${canonical}` });
  }
  if (c.prefix < 8 || c.prefix > 30) throw new TsrunError('ERR_INVALID_ARGUMENT', `${flag} "${text}": the prefix must be /8 to /30`);
  for (const s of SPECIAL) {
    if (cidrsOverlap(c, parseCidr(s.cidr)!)) throw new TsrunError('ERR_INVALID_ARGUMENT', `${flag} "${text}": overlaps ${s.what}`);
  }
  return { addr: c.addr, prefix: c.prefix };
}

/** `--gateway`: an IPv4 address inside the subnet, neither its network nor its broadcast address. */
export function validateGateway(text: string, subnet: Cidr, flag = '--gateway'): string {
  if (!isIPv4(text)) throw new TsrunError('ERR_INVALID_ARGUMENT', `${flag} "${text}": not an IPv4 address`);
  const ip = ipToInt(text);
  const net = formatCidr(subnet);
  if (!cidrContains(subnet, ip)) throw new TsrunError('ERR_INVALID_ARGUMENT', `${flag} ${text} is not in the subnet ${net}`);
  if (ip === subnet.addr) throw new TsrunError('ERR_INVALID_ARGUMENT', `${flag} ${text} is the network address of ${net}`);
  if (ip === broadcastOf(subnet)) throw new TsrunError('ERR_INVALID_ARGUMENT', `${flag} ${text} is the broadcast address of ${net}`);
  return text;
}

// ---------------------------------------------------------------------------------------
// Choosing: bridge names, subnets.

/** The bridge of a network: DEFAULT_BRIDGE for the default network, else "tsrun" + 8 hex of sha256(name). */
export function bridgeNameFor(name: string): string {
  if (name === DEFAULT_NETWORK_NAME) return DEFAULT_BRIDGE;
  // node:crypto on demand: most commands never name a bridge, and it costs start-up time.
  const { createHash } = lazyRequire<typeof import('node:crypto')>('node:crypto');
  return `tsrun${createHash('sha256').update(name).digest('hex').slice(0, 8)}`;
}

/**
 * The first /prefix of the pools that overlaps none of `used` (CIDRs or bare addresses: the
 * host's routes and addresses, the other networks' subnets). Default routes (/0) are not a
 * use: they overlap everything. Undefined when every candidate is taken.
 */
export function chooseFreeSubnet(used: readonly string[], pools: ReadonlyArray<{ base: string; prefix: number }> = DEFAULT_SUBNET_POOLS): string | undefined {
  const taken = used
    .map((u) => parseCidr(u))
    .filter((c): c is Cidr & { hostBitsSet: boolean } => c !== undefined && c.prefix > 0)
    .map((c) => ({ addr: c.addr, prefix: c.prefix }));
  for (const pool of pools) {
    const base = parseCidr(pool.base);
    if (base === undefined || pool.prefix < base.prefix || pool.prefix > 30) continue;
    const step = 2 ** (32 - pool.prefix);
    const count = 2 ** (pool.prefix - base.prefix);
    for (let i = 0; i < count; i++) {
      const cand: Cidr = { addr: (base.addr + i * step) >>> 0, prefix: pool.prefix };
      if (!taken.some((t) => cidrsOverlap(cand, t))) return formatCidr(cand);
    }
  }
  return undefined;
}

/**
 * The CIDRs in use on the host, from `ip -j -4 route show table all` and `ip -j -4 addr`
 * (either may be given as ''). Pure: the caller runs ip. Routes give their destinations
 * ("default" is skipped), addresses their prefix (10.0.0.5/24 -> 10.0.0.0/24).
 */
export function usedCidrsFromIp(routesJson: string, addrsJson: string): string[] {
  const out = new Set<string>();
  const parse = (text: string): unknown[] => {
    if (text.trim() === '') return [];
    const v: unknown = JSON.parse(text);
    return Array.isArray(v) ? v : [];
  };
  for (const r of parse(routesJson)) {
    const dst = (r as { dst?: unknown }).dst;
    if (typeof dst !== 'string' || dst === 'default') continue;
    const c = parseCidr(dst);
    if (c !== undefined && c.prefix > 0) out.add(formatCidr(c));
  }
  for (const link of parse(addrsJson)) {
    for (const a of (link as { addr_info?: unknown[] }).addr_info ?? []) {
      const { local, prefixlen } = a as { local?: unknown; prefixlen?: unknown };
      if (typeof local !== 'string' || typeof prefixlen !== 'number') continue;
      const c = parseCidr(`${local}/${prefixlen}`);
      if (c !== undefined && c.prefix > 0) out.add(formatCidr(c));
    }
  }
  return [...out];
}

/**
 * Complete and check a `network create` request: the name; the subnet given (checked) or a
 * free one (from `used`: the host's CIDRs and the other networks' subnets); the gateway
 * given (checked) or the subnet's first address; the bridge given (checked) or
 * bridgeNameFor(name). A given subnet that overlaps `used` is refused, as docker does.
 * The caller still checks names and bridges against the existing networks (checkConflicts).
 */
export function defineNetwork(req: NetworkRequest, used: readonly string[] = []): NetworkDefinition {
  validateNetworkName(req.name);
  let subnet: Cidr;
  if (req.subnet !== undefined) {
    subnet = validateSubnet(req.subnet);
    const clash = used.map((u) => ({ u, c: parseCidr(u) })).find(({ c }) => c !== undefined && c.prefix > 0 && cidrsOverlap(subnet, c));
    if (clash !== undefined) {
      throw new TsrunError('ERR_INVALID_ARGUMENT', `--subnet ${formatCidr(subnet)} overlaps ${clash.u}, which is in use`);
    }
  } else {
    const free = chooseFreeSubnet(used);
    if (free === undefined) {
      throw new TsrunError('ERR_INVALID_ARGUMENT', `no free subnet left in ${DEFAULT_SUBNET_POOLS.map((p) => p.base).join(', ')}`, {
        hint: 'give one with --subnet',
      });
    }
    subnet = parseCidr(free)!;
  }
  if (req.gateway !== undefined && req.subnet === undefined) {
    throw new TsrunError('ERR_INVALID_ARGUMENT', '--gateway needs --subnet', { hint: 'the gateway must be in a subnet you chose' });
  }
  const gateway = req.gateway !== undefined ? validateGateway(req.gateway, subnet) : intToIp(subnet.addr + 1);
  const bridge = req.bridge ?? bridgeNameFor(req.name);
  validateBridgeName(bridge);
  return { name: req.name, subnet: formatCidr(subnet), gateway, internal: req.internal === true, bridge, dns: true };
}

/** The default network: `tsrun` on 10.87.0.0/16, bridge tsrun0, gateway 10.87.0.1. */
export function defaultNetwork(): NetworkDefinition {
  return { name: DEFAULT_NETWORK_NAME, subnet: DEFAULT_SUBNET, gateway: '10.87.0.1', internal: false, bridge: DEFAULT_BRIDGE, dns: false };
}

/** A new network against the existing ones: same name, same bridge, or an overlapping subnet is refused. */
export function checkConflicts(net: NetworkDefinition, existing: readonly NetworkDefinition[]): void {
  const mine = parseCidr(net.subnet)!;
  for (const o of existing) {
    if (o.name === net.name) throw new TsrunError('ERR_INVALID_ARGUMENT', `network "${net.name}" already exists`);
    if (o.bridge === net.bridge) throw new TsrunError('ERR_INVALID_ARGUMENT', `bridge ${net.bridge} is already the bridge of network "${o.name}"`);
    const theirs = parseCidr(o.subnet);
    if (theirs !== undefined && cidrsOverlap(mine, theirs)) {
      throw new TsrunError('ERR_INVALID_ARGUMENT', `subnet ${net.subnet} overlaps ${o.subnet} of network "${o.name}"`);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Network <-> conflist.

/** The CNI configuration list of a network (see the top of this file for each plugin's why). */
export function buildConflist(net: NetworkDefinition, opts: ConflistOptions): CniConflist {
  const subnet = validateSubnet(net.subnet, 'subnet');
  validateGateway(net.gateway, subnet, 'gateway');
  validateBridgeName(net.bridge);
  const bridge: CniPluginConf = {
    type: 'bridge',
    bridge: net.bridge,
    isGateway: true,
    ipMasq: !net.internal,
    hairpinMode: true,
    ipam: {
      type: 'host-local',
      ranges: [[{ subnet: net.subnet, gateway: net.gateway }]],
      routes: net.internal ? [] : [{ dst: '0.0.0.0/0' }],
      dataDir: opts.ipamDataDir,
    },
  };
  const plugins: CniPluginConf[] = [bridge];
  if (!net.internal) plugins.push({ type: 'portmap', capabilities: { portMappings: true } });
  plugins.push({ type: 'firewall', backend: 'iptables' });
  plugins.push({ type: 'tuning' });
  if (net.dns) plugins.push({ type: 'dnsname', domainName: DNS_DOMAIN, capabilities: { aliases: true } });
  return { cniVersion: CONFLIST_CNI_VERSION, name: net.name, plugins };
}

/**
 * The network a conflist made by buildConflist describes (the store reads networks back
 * this way). Throws ERR_INVALID_CONFIG for a list of another shape: tsrun manages only the
 * networks it wrote.
 */
export function networkFromConflist(list: CniConflist): NetworkDefinition {
  const bad = (why: string) => new TsrunError('ERR_INVALID_CONFIG', `network config "${String(list?.name)}": ${why}`);
  const br = Array.isArray(list?.plugins) ? list.plugins[0] : undefined;
  if (br?.type !== 'bridge') throw bad('the first plugin is not "bridge"');
  const ipam = br['ipam'] as { type?: unknown; ranges?: unknown; routes?: unknown } | undefined;
  if (ipam?.type !== 'host-local') throw bad('the bridge has no host-local ipam');
  const range = (ipam.ranges as Array<Array<{ subnet?: unknown; gateway?: unknown }>> | undefined)?.[0]?.[0];
  if (typeof range?.subnet !== 'string' || typeof range.gateway !== 'string') throw bad('no subnet and gateway in ipam.ranges[0][0]');
  if (typeof br['bridge'] !== 'string') throw bad('the bridge plugin names no bridge');
  const routes = Array.isArray(ipam.routes) ? (ipam.routes as Array<{ dst?: unknown }>) : [];
  const hasDefault = routes.some((r) => r.dst === '0.0.0.0/0');
  const hasPortmap = list.plugins.some((p) => p.type === 'portmap');
  const net: NetworkDefinition = {
    name: list.name,
    subnet: range.subnet,
    gateway: range.gateway,
    internal: !hasDefault && !hasPortmap && br['ipMasq'] !== true,
    bridge: br['bridge'],
    dns: list.plugins.some((p) => p.type === 'dnsname'),
  };
  validateNetworkName(net.name);
  validateGateway(net.gateway, validateSubnet(net.subnet, 'subnet'), 'gateway');
  return net;
}
