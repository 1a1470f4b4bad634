// /etc/hostname, /etc/hosts and /etc/resolv.conf of a container: written by the engine into its
// directory and bind-mounted (never written into the image's layers), as docker and podman do
// (engine-notes §2.6). etcFiles is pure; writeEtcFiles reads the host's files and writes them.
// On a bridge network they are written twice: at create (no address yet) and at each start
// once CNI has given the addresses, in place, so the bind mount's inode stays the same.
import { readFileSync, writeFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import type { Mount } from '../spec/types.js';
import { TsrunError } from '../util/errors.js';

export const ETC_FILES = ['/etc/hostname', '/etc/hosts', '/etc/resolv.conf'] as const;
type EtcFile = (typeof ETC_FILES)[number];

/** What the networks said once the container was attached (bridge only). */
export interface EtcNetwork {
  /** The container's addresses, eth0's first. */
  addresses: string[];
  /** The first network's gateway: host.containers.internal (podman's name for the host). */
  gateway?: string;
  /** Name servers and search domains the plugins returned (dnsname: the gateway, dns.tsrun). */
  nameservers: string[];
  search: string[];
}

export interface EtcInput {
  hostname: string;
  name: string;
  network: 'none' | 'host' | 'bridge';
  /** --network-alias names: also the container's own in its /etc/hosts. */
  aliases?: string[];
  attached?: EtcNetwork;
  /** --dns, --dns-search, --dns-option: replace what the network or the host says. */
  dns?: string[];
  dnsSearch?: string[];
  dnsOptions?: string[];
  /** --add-host NAME:IP (IP "host-gateway" is the gateway). */
  addHosts?: string[];
  hostHosts?: string;
  hostResolvConf?: string;
}

const LOCALHOST = ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback'];

/** `--add-host NAME:IP` -> "IP\tNAME"; a bad one is refused with the flag's words. */
export function addHostLine(value: string, gateway?: string): string {
  const i = value.indexOf(':');
  const name = i > 0 ? value.slice(0, i) : '';
  let ip = i > 0 ? value.slice(i + 1).replace(/^\[(.*)\]$/, '$1') : '';
  if (!/^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?$/.test(name) || !ip) {
    throw new TsrunError('ERR_INVALID_ARGUMENT', `--add-host ${value}: expected NAME:IP (e.g. db:10.0.0.5)`);
  }
  if (ip === 'host-gateway') {
    if (gateway === '') return ''; // a bridge before its first start: written again then
    if (!gateway) throw new TsrunError('ERR_INVALID_ARGUMENT', `--add-host ${value}: host-gateway needs a bridge network (it is its gateway)`);
    ip = gateway;
  }
  if (!/^(\d{1,3}\.){3}\d{1,3}$/.test(ip) && !/^[0-9a-fA-F:]+$/.test(ip)) {
    throw new TsrunError('ERR_INVALID_ARGUMENT', `--add-host ${value}: "${ip}" is not an IP address`);
  }
  return `${ip}\t${name}`;
}

/** Nameservers on the host's loopback answer only in the host's network namespace. */
function withoutLoopbackServers(text: string): string {
  return text
    .split('\n')
    .filter((l) => !/^\s*nameserver\s+(127\.|::1\b)/.test(l))
    .join('\n');
}

function hostsFile(o: EtcInput): string {
  const gateway = o.attached?.gateway ?? (o.network === 'bridge' ? '' : undefined);
  const extra = (o.addHosts ?? []).map((h) => addHostLine(h, gateway)).filter((l) => l !== '');
  if (o.network === 'host' && o.hostHosts !== undefined) {
    return extra.length ? `${o.hostHosts.replace(/\n?$/, '\n')}${extra.join('\n')}\n` : o.hostHosts;
  }
  const names = [...new Set([o.hostname, o.name, ...(o.aliases ?? [])])].join(' ');
  const own = o.attached?.addresses[0];
  const lines = [...LOCALHOST, `${own ?? '127.0.1.1'}\t${names}`];
  if (o.attached?.gateway) lines.push(`${o.attached.gateway}\thost.containers.internal`);
  return `${[...lines, ...extra].join('\n')}\n`;
}

function resolvFile(o: EtcInput): string {
  const host = o.hostResolvConf ?? '';
  const userGiven = (o.dns?.length ?? 0) + (o.dnsSearch?.length ?? 0) + (o.dnsOptions?.length ?? 0) > 0;
  if (o.network === 'host' && !userGiven) return host;
  const hostServers = withoutLoopbackServers(host)
    .split('\n')
    .filter((l) => /^\s*nameserver\s/.test(l))
    .map((l) => l.trim().split(/\s+/)[1]!);
  const hostSearch = host
    .split('\n')
    .filter((l) => /^\s*(search|domain)\s/.test(l))
    .flatMap((l) => l.trim().split(/\s+/).slice(1));
  const hostOptions = host
    .split('\n')
    .filter((l) => /^\s*options\s/.test(l))
    .flatMap((l) => l.trim().split(/\s+/).slice(1));
  const net = o.attached && o.attached.nameservers.length > 0 ? o.attached : undefined;
  // A network name server (dnsname) answers the containers' names and forwards the rest, so
  // it replaces the host's; its search domain makes plain names resolve there first.
  const servers = o.dns?.length ? o.dns : net ? net.nameservers : hostServers;
  const search = o.dnsSearch?.length ? o.dnsSearch.filter((s) => s !== '.') : net ? net.search : hostSearch;
  const options = o.dnsOptions?.length ? o.dnsOptions : hostOptions;
  const why = o.dns?.length
    ? '# tsrun: --dns'
    : o.network === 'none'
      ? '# tsrun: --network none (no interface but lo); the host’s resolvers without its loopback ones'
      : net
        ? '# tsrun: the network’s name server (container names resolve)'
        : '# tsrun: the host’s resolvers without its loopback ones';
  const lines = [why];
  if (search.length) lines.push(`search ${search.join(' ')}`);
  for (const s of servers) lines.push(`nameserver ${s}`);
  if (options.length) lines.push(`options ${options.join(' ')}`);
  return `${lines.join('\n')}\n`;
}

export function etcFiles(o: EtcInput): Record<EtcFile, string> {
  return { '/etc/hostname': `${o.hostname}\n`, '/etc/hosts': hostsFile(o), '/etc/resolv.conf': resolvFile(o) };
}

function readHostFile(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function hostFiles(): Pick<EtcInput, 'hostHosts' | 'hostResolvConf'> {
  const hosts = readHostFile('/etc/hosts');
  const resolv = readHostFile('/etc/resolv.conf');
  return { ...(hosts !== undefined ? { hostHosts: hosts } : {}), ...(resolv !== undefined ? { hostResolvConf: resolv } : {}) };
}

/** The engine's /etc files for the container, written beside its record, and their bind mounts. */
export function writeEtcFiles(dir: string, o: Omit<EtcInput, 'hostHosts' | 'hostResolvConf'>, readOnly: boolean): Mount[] {
  const files = etcFiles({ ...o, ...hostFiles() });
  return ETC_FILES.map((dest) => {
    const source = join(dir, posix.basename(dest));
    writeFileSync(source, files[dest], { mode: 0o644 });
    return { destination: dest, type: 'bind', source, options: ['rbind', readOnly ? 'ro' : 'rw', 'nosuid', 'nodev', 'noexec'] };
  });
}

/** hosts and resolv.conf again, in place (truncate and write: the bind mounts keep their inode). */
export function rewriteNetworkEtcFiles(dir: string, o: Omit<EtcInput, 'hostHosts' | 'hostResolvConf'>): void {
  const files = etcFiles({ ...o, ...hostFiles() });
  for (const dest of ['/etc/hosts', '/etc/resolv.conf'] as const) writeFileSync(join(dir, posix.basename(dest)), files[dest]);
}
