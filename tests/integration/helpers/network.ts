// Helpers for the bridge-networking integration tests (network-cni, engine-network,
// network-scenario): why a test cannot run here (CNI plugins, dnsmasq, iptables, ip), host
// commands run synchronously, the host's iptables rules as lines, links, a /24 of a test's
// own range that nothing on the host uses, a free TCP port on 127.0.0.1, TCP listeners read
// from /proc/net/tcp{,6}, and the dnsmasq processes of a network.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { usedCidrsFromIp } from '../../../src/network/conflist.js';
import { cidrsOverlap, parseCidr } from '../../../src/network/ipv4.js';
import { type Result, show } from './engine.js';

/** Where Debian's containernetworking-plugins (and the dnsname plugin) install the plugins. */
export const CNI_DIR = '/usr/lib/cni';
/** The plugins of a bridge network without name resolution (containernetworking-plugins). */
export const CORE_CNI_PLUGINS: readonly string[] = ['bridge', 'host-local', 'portmap', 'firewall', 'tuning'];
/** The plugins the engine's bridge networks use: the core ones and dnsname (names via dnsmasq). */
export const ENGINE_CNI_PLUGINS: readonly string[] = [...CORE_CNI_PLUGINS, 'dnsname'];

/** Does `cmd ARGS` run and exit 0 (a probe such as `ip -V`; its output is ignored)? */
function runs(cmd: string, args: string[]): boolean {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  return r.error === undefined && r.status === 0;
}

/** The first of `plugins` missing from CNI_DIR, as a skip reason naming the packages to install; or null. */
export function cniPluginsSkipReason(plugins: readonly string[]): string | null {
  const packages = ['containernetworking-plugins', ...(plugins.includes('dnsname') ? ['golang-github-containernetworking-plugin-dnsname'] : [])];
  for (const p of plugins) if (!existsSync(path.join(CNI_DIR, p))) return `${CNI_DIR}/${p} is missing (apt-get install ${packages.join(' ')})`;
  return null;
}

/** Why dnsmasq (which the dnsname plugin starts, one per network) cannot be run, or null. */
export function dnsmasqSkipReason(): string | null {
  if (!existsSync('/usr/sbin/dnsmasq') && !runs('dnsmasq', ['--version'])) return 'dnsmasq is missing (apt-get install dnsmasq-base)';
  return null;
}

/** Why iptables and iptables-save cannot be run, or null. */
export function iptablesSkipReason(): string | null {
  if (!runs('iptables', ['--version']) || !runs('iptables-save', ['--version'])) return 'iptables is missing (apt-get install iptables)';
  return null;
}

/** Why ip(8) cannot be run, or null. */
export function ipSkipReason(): string | null {
  if (!runs('ip', ['-V'])) return 'ip (iproute2) is missing (apt-get install iproute2)';
  return null;
}

/** Why the engine's bridge networks cannot be set up here (the plugins, dnsmasq, iptables, ip), or null. */
export function bridgeNetworkSkipReason(): string | null {
  return cniPluginsSkipReason(ENGINE_CNI_PLUGINS) ?? dnsmasqSkipReason() ?? iptablesSkipReason() ?? ipSkipReason();
}

/** Run a host command synchronously (30 s at most; a timeout or a spawn error: code -1). */
export function sh(cmd: string, args: string[]): Result {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** sh() that throws unless the command exits 0; returns its stdout. */
export function must(cmd: string, args: string[]): string {
  const r = sh(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${show(r)}`);
  return r.stdout;
}

/** Does the link `name` exist (on the host, or in the named network namespace `ns`)? */
export function linkExists(name: string, ns?: string): boolean {
  return sh('ip', [...(ns === undefined ? [] : ['-n', ns]), 'link', 'show', 'dev', name]).code === 0;
}

/** iptables-save without comments, COMMIT or table headers, counters blanked, each line prefixed by its table ("nat: -A ..."). */
export function iptablesLines(): string[] {
  let table = '';
  const out: string[] = [];
  for (const l of must('iptables-save', []).split('\n')) {
    if (l === '' || l.startsWith('#') || l === 'COMMIT') continue;
    if (l.startsWith('*')) {
      table = l.slice(1);
      continue;
    }
    out.push(`${table}: ${l.replace(/\[\d+:\d+\]/g, '[]')}`);
  }
  return out;
}

/** "10.86.200." of "10.86.200.0/24": what every rule naming an address of that /24 contains. */
export const subnetPrefix = (subnet24: string) => subnet24.replace(/0\/24$/, '');

/** A test's own range of /24s: `${net}.${first}.0/24` .. `${net}.${first + count - 1}.0/24` (net: "A.B"). */
export interface Subnet24Range {
  net: string;
  first: number;
  count: number;
}

/**
 * A /24 of `range` that overlaps no IPv4 route (any table) or address on the host, nor any of
 * `taken`. The candidates are tried in order from the one at offset `start` (modulo the
 * range's size; default: a random one), so concurrent test files spread out.
 */
export function freeSubnet24(
  range: Subnet24Range,
  { taken = [], start = Math.floor(Math.random() * range.count) }: { taken?: string[]; start?: number } = {},
): string {
  const host = usedCidrsFromIp(must('ip', ['-j', '-4', 'route', 'show', 'table', 'all']), must('ip', ['-j', '-4', 'addr']));
  const used = [...host, ...taken].map((c) => parseCidr(c)).filter((c) => c !== undefined && c.prefix > 0);
  for (let i = 0; i < range.count; i++) {
    const cand = `${range.net}.${range.first + ((start + i) % range.count)}.0/24`;
    if (!used.some((u) => cidrsOverlap(parseCidr(cand)!, u!))) return cand;
  }
  throw new Error(`no free /24 in ${range.net}.${range.first}.0/24..${range.net}.${range.first + range.count - 1}.0/24`);
}

/** A TCP port free on the host now (bound on 127.0.0.1, read, released). */
export function freeLocalPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Does the text of /proc/net/tcp or tcp6 (one or more of them, headers included) show a
 * socket listening (state 0A) on local TCP port `port`, on any address?
 */
export function listensIn(procNetTcp: string, port: number): boolean {
  return procNetTcp.split('\n').some((line) => {
    const c = line.trim().split(/\s+/);
    return c.length > 3 && c[3] === '0A' && Number.parseInt(c[1]!.split(':')[1] ?? '', 16) === port;
  });
}

/** Is any TCP socket on the host listening on `port` (any address), per /proc/net/tcp{,6}? */
export function hostListensOn(port: number): boolean {
  return ['/proc/net/tcp', '/proc/net/tcp6'].some((f) => {
    try {
      return listensIn(readFileSync(f, 'utf8'), port);
    } catch {
      return false; // no IPv6
    }
  });
}

/** The pids of the dnsmasq processes whose command line names a path with a `/word/` component (dnsname's per-network dir). */
export function dnsmasqPidsOf(word: string): string[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((pid) => {
      let argv: string[];
      try {
        argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      } catch {
        return false; // exited
      }
      return path.basename(argv[0] ?? '') === 'dnsmasq' && argv.some((a) => a.includes(`/${word}/`));
    });
}
