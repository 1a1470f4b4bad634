// tsrun as a CNI runtime against Debian's real plugins (containernetworking-plugins in
// /usr/lib/cni): src/network/cni-exec.ts runs the conflist src/network/conflist.ts builds,
// into a network namespace of the test's own, and the test looks at what the plugins did
// with ip(8) and iptables-save(8), then that DEL undid it.
//
// What this test touches, and only that: a network namespace `tsrun-test-<pid>` (and `-b`),
// bridges named after its pid, /24s of 10.231.0.0/16 that no host route or address
// overlaps, iptables rules the plugins add for its own container ids, and temp dirs.
// Packets go only to those: the gateway address on its bridge, a server in its namespace,
// and 127.0.0.1. The test's namespace gets no default route (the routes of its conflist are
// emptied), and nothing is added to the host's routes but the bridge's own subnet route.
//
// Host state the plugins change beyond the container: the bridge plugin sets
// net.ipv4.ip_forward=1 (isGateway; put back at the end if it was 0), and portmap/firewall
// create shared chains (CNI-HOSTPORT-DNAT/-SETMARK/-MASQ, CNI-FORWARD, CNI-ADMIN and their
// jumps) that they never delete, by design: every container on every CNI network uses them
// (podman's too). The test removes the ones it brought into being, when nobody else has a
// rule in them or a jump to them (removeSharedChainsMadeByTest); otherwise they stay.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addNetworkList, checkNetworkList, type CniConflist, type CniResult, delNetworkList, type RuntimeConf, cachePath } from '../../src/network/cni-exec.js';
import { buildConflist, defineNetwork } from '../../src/network/conflist.js';
import { cidrsOverlap, parseCidr } from '../../src/network/ipv4.js';
import { tempDir } from '../helpers/tmp-dir.js';
import {
  CNI_DIR,
  CORE_CNI_PLUGINS,
  cniPluginsSkipReason,
  freeLocalPort,
  freeSubnet24,
  iptablesLines,
  iptablesSkipReason,
  ipSkipReason,
  linkExists,
  must,
  type Subnet24Range,
  sh,
  subnetPrefix,
} from './helpers/network.js';

function findSkipReason(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, bridges, iptables)';
  const tools = cniPluginsSkipReason(CORE_CNI_PLUGINS) ?? ipSkipReason() ?? iptablesSkipReason();
  if (tools) return tools;
  const bb = spawnSync('busybox', ['--list'], { encoding: 'utf8' });
  if (bb.error !== undefined || !bb.stdout.split('\n').includes('ping')) return 'busybox (for ping) is missing';
  return null;
}

const skipReason = findSkipReason();
if (skipReason) console.warn(`[network-cni.test] SKIPPED: ${skipReason}`);

const hex = (n: number) =>
  Math.floor(Math.random() * 16 ** n)
    .toString(16)
    .padStart(n, '0');
const PID = process.pid;
const TAG = hex(4);

/** This file's /24s: the 256 of 10.231.0.0/16 (tried from a random one, see freeSubnet24). */
const SUBNETS: Subnet24Range = { net: '10.231', first: 0, count: 256 };

/**
 * The chains every CNI user shares (portmap's and firewall's), with the rules the plugins
 * put in them when they make them. The plugins never delete these (by design: other
 * containers, podman's too, use them).
 */
const SHARED_CHAINS: ReadonlyArray<{ table: string; chain: string; own: string[] }> = [
  { table: 'nat', chain: 'CNI-HOSTPORT-DNAT', own: [] },
  { table: 'nat', chain: 'CNI-HOSTPORT-SETMARK', own: ['-m comment --comment "CNI portfwd masquerade mark" -j MARK --set-xmark 0x2000/0x2000'] },
  { table: 'nat', chain: 'CNI-HOSTPORT-MASQ', own: ['-m mark --mark 0x2000/0x2000 -j MASQUERADE'] },
  { table: 'nat', chain: 'CNI-HOSTPORT-SNAT', own: [] },
  { table: 'filter', chain: 'CNI-FORWARD', own: ['-m comment --comment "CNI firewall plugin admin overrides" -j CNI-ADMIN'] },
  { table: 'filter', chain: 'CNI-ADMIN', own: [] },
];
const SHARED_NAMES = new Set(SHARED_CHAINS.map((c) => c.chain));

/** Split an iptables-save rule into argv (it double-quotes arguments with spaces, escaping " and \\). */
function ruleArgs(rule: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  let any = false;
  for (let i = 0; i < rule.length; i++) {
    const ch = rule[i]!;
    if (quoted && ch === '\\' && i + 1 < rule.length) {
      cur += rule[++i];
    } else if (ch === '"') {
      quoted = !quoted;
      any = true;
    } else if (ch === ' ' && !quoted) {
      if (any || cur !== '') out.push(cur);
      cur = '';
      any = false;
    } else {
      cur += ch;
    }
  }
  if (any || cur !== '') out.push(cur);
  return out;
}

/**
 * Put the host's iptables back as the test found them: remove the shared CNI chains that
 * did not exist before the test, but only while they hold nothing but the plugins' own
 * rules and nothing but the built-in chains (or each other) jumps to them: a chain that
 * anyone else has put a rule in or jumps to is in use and stays.
 */
function removeSharedChainsMadeByTest(before: Set<string>): string[] {
  const now = iptablesLines();
  const ours = SHARED_CHAINS.filter((c) => !before.has(`${c.table}: :${c.chain} - []`) && now.includes(`${c.table}: :${c.chain} - []`));
  const removable = new Set(
    ours
      .filter((c) => {
        const rules = now.filter((l) => l.startsWith(`${c.table}: -A ${c.chain} `)).map((l) => l.slice(`${c.table}: -A ${c.chain} `.length));
        return rules.every((r) => c.own.includes(r));
      })
      .map((c) => `${c.table}:${c.chain}`),
  );
  const done: string[] = [];
  for (const c of ours) {
    if (!removable.has(`${c.table}:${c.chain}`)) continue;
    const jumps = now.filter((l) => l.startsWith(`${c.table}: -A `) && l.endsWith(` -j ${c.chain}`));
    const fromOthers = jumps.some((l) => {
      const from = l.split(' ')[2]!;
      return !/^[A-Z]+$/.test(from) && !(SHARED_NAMES.has(from) && removable.has(`${c.table}:${from}`));
    });
    if (fromOthers) removable.delete(`${c.table}:${c.chain}`);
  }
  for (const c of ours) {
    if (!removable.has(`${c.table}:${c.chain}`)) continue;
    for (const l of now.filter((x) => x.startsWith(`${c.table}: -A `) && x.endsWith(` -j ${c.chain}`))) {
      const args = ruleArgs(l.slice(`${c.table}: `.length));
      args[0] = '-D';
      sh('iptables', ['-w', '-t', c.table, ...args]);
    }
  }
  for (const c of ours) {
    if (!removable.has(`${c.table}:${c.chain}`)) continue;
    sh('iptables', ['-w', '-t', c.table, '-F', c.chain]);
  }
  for (const c of ours) {
    if (!removable.has(`${c.table}:${c.chain}`)) continue;
    if (sh('iptables', ['-w', '-t', c.table, '-X', c.chain]).code === 0) done.push(c.chain);
  }
  return done;
}

function netnsExists(name: string): boolean {
  return must('ip', ['netns', 'list'])
    .split('\n')
    .some((l) => l.split(' ')[0] === name);
}

/** One attachment of the test: its namespace, bridge, network and container id. */
interface Attachment {
  ns: string;
  bridge: string;
  subnet: string;
  gateway: string;
  list: CniConflist;
  rt: RuntimeConf;
  /** Strings only this attachment's iptables rules contain. */
  marks: string[];
}

describe.skipIf(!!skipReason)('CNI plugins driven by tsrun: bridge, host-local, portmap, firewall, tuning', () => {
  let tmp = '';
  let ipamDir = '';
  let cacheDir = '';
  let before: Set<string>;
  let ipForwardBefore = '';
  const attachments: Attachment[] = [];
  const children: ChildProcess[] = [];
  const opts = () => ({ pluginDirs: [CNI_DIR], cacheDir, timeoutMs: 30_000 });

  function attachment(suffix: string, internal: boolean): Attachment {
    const ns = `tsrun-test-${PID}${suffix}`;
    const bridge = `tsrt${PID.toString(36)}${hex(3)}`.slice(0, 15);
    const subnet = freeSubnet24(SUBNETS, { taken: attachments.map((a) => a.subnet) });
    // The core plugins only (dns: false): dnsname and its dnsmasq are the engine tests' (and
    // dnsname 1.3.1's CHECK looks for its files in the wrong directory: it always fails).
    const def = { ...defineNetwork({ name: `tsrun-it-${PID}-${TAG}${suffix}`, subnet, bridge, internal }), dns: false };
    const list = buildConflist(def, { ipamDataDir: ipamDir });
    // No route out of the machine from the test's namespace, whatever the network's kind:
    // the default route a bridged network gives its containers is left out here (the unit
    // tests check that buildConflist writes it).
    (list.plugins[0]!['ipam'] as { routes: unknown[] }).routes = [];
    const containerId = `tsrunit${PID}${TAG}${suffix.replace(/\W/g, '')}`;
    const a: Attachment = {
      ns,
      bridge,
      subnet,
      gateway: def.gateway,
      list,
      rt: { containerId, netns: `/run/netns/${ns}`, ifName: 'eth0' },
      marks: [containerId, bridge, subnetPrefix(subnet)],
    };
    attachments.push(a);
    must('ip', ['netns', 'add', ns]);
    return a;
  }

  /** Rules added since the test began that belong to `a`: its marks, or a chain only its rules jump to. */
  function rulesOf(a: Attachment, chains: Set<string> = new Set()): string[] {
    return iptablesLines().filter((l) => !before.has(l) && (a.marks.some((m) => l.includes(m)) || [...chains].some((c) => l.includes(c))));
  }

  function chainsIn(lines: string[]): Set<string> {
    const out = new Set<string>();
    for (const l of lines) for (const m of l.matchAll(/CNI-[A-Za-z0-9-]+/g)) if (!SHARED_NAMES.has(m[0])) out.add(m[0]);
    return out;
  }

  function allocated(a: Attachment): string[] {
    const dir = join(ipamDir, a.list.name);
    return existsSync(dir) ? readdirSync(dir).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)) : [];
  }

  beforeAll(() => {
    tmp = tempDir('tsrun-cni-it-');
    ipamDir = join(tmp, 'ipam');
    cacheDir = join(tmp, 'cache');
    before = new Set(iptablesLines());
    ipForwardBefore = readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim();
  });

  afterAll(async () => {
    const problems: string[] = [];
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const a of attachments) {
      // Idempotent: after a test that passed this finds nothing to do.
      await delNetworkList(a.list, a.rt, opts()).catch((e: Error) => problems.push(`cleanup DEL ${a.rt.containerId}: ${e.message}`));
      if (netnsExists(a.ns)) sh('ip', ['netns', 'del', a.ns]);
      if (linkExists(a.bridge)) sh('ip', ['link', 'del', a.bridge]);
    }
    if (ipForwardBefore === '0') writeFileSync('/proc/sys/net/ipv4/ip_forward', '0');
    removeSharedChainsMadeByTest(before);
    for (const a of attachments) {
      if (netnsExists(a.ns)) problems.push(`netns ${a.ns} left`);
      if (linkExists(a.bridge)) problems.push(`bridge ${a.bridge} left`);
      const left = rulesOf(a);
      if (left.length > 0) problems.push(`iptables rules left for ${a.rt.containerId}:\n${left.join('\n')}`);
    }
    const added = iptablesLines().filter((l) => !before.has(l));
    if (added.length > 0) console.warn(`[network-cni.test] iptables lines added since the start (shared chains in use by others stay):\n${added.join('\n')}`);
    expect(problems, problems.join('\n')).toEqual([]);
  });

  it('ADD: a veth in the namespace with an address of the subnet, the bridge with the gateway, the gateway answers; CHECK passes', async () => {
    const a = attachment('', false);
    const result: CniResult = await addNetworkList(a.list, a.rt, opts());

    const ctrIf = result.interfaces?.find((i) => i.name === 'eth0');
    expect(ctrIf?.sandbox).toBe(a.rt.netns);
    const addr = result.ips?.[0]?.address ?? '';
    expect(cidrsOverlap(parseCidr(addr)!, parseCidr(a.subnet)!)).toBe(true);
    expect(result.ips?.[0]?.gateway).toBe(a.gateway);

    expect(must('ip', ['-n', a.ns, '-4', '-o', 'addr', 'show', 'dev', 'eth0'])).toContain(`inet ${addr} `);
    expect(must('ip', ['-4', '-o', 'addr', 'show', 'dev', a.bridge])).toContain(`inet ${a.gateway}/24 `);
    // The host side of the veth is a port of the bridge.
    const hostVeth = result.interfaces?.find((i) => i.name !== a.bridge && i.sandbox === undefined)?.name ?? '';
    expect(must('ip', ['-o', 'link', 'show', 'dev', hostVeth])).toContain(`master ${a.bridge}`);
    // No default route in the test's namespace (see attachment()).
    expect(must('ip', ['-n', a.ns, '-4', 'route'])).not.toContain('default');

    const ping = sh('ip', ['netns', 'exec', a.ns, 'busybox', 'ping', '-c1', '-W1', a.gateway]);
    expect(ping.code, ping.stdout + ping.stderr).toBe(0);

    // host-local's allocation file, and the ipMasq and firewall rules for this container.
    expect(allocated(a)).toEqual([addr.split('/')[0]]);
    expect(rulesOf(a).length).toBeGreaterThan(0);

    await checkNetworkList(a.list, a.rt, opts());
  });

  it('portmap: 127.0.0.1:HOSTPORT reaches the server in the namespace (route_localnet set on the bridge, the source masqueraded)', async () => {
    const a = attachments[0]!;
    // Re-ADD with a port mapping: DEL the plain attachment first (a second ADD on one
    // interface is refused by the bridge plugin), so this also runs a full DEL/ADD cycle.
    await delNetworkList(a.list, a.rt, opts());
    const hostPort = await freeLocalPort();
    const containerPort = 8080;
    a.rt = { ...a.rt, capabilityArgs: { portMappings: [{ hostPort, containerPort, protocol: 'tcp', hostIP: '127.0.0.1' }] } };
    const result = await addNetworkList(a.list, a.rt, opts());
    const ctrIP = (result.ips?.[0]?.address ?? '').split('/')[0]!;

    // The plugin enables route_localnet on the interface that routes to the container (the
    // bridge), so a packet from 127.0.0.1 may leave through it after the DNAT.
    expect(readFileSync(`/proc/sys/net/ipv4/conf/${a.bridge}/route_localnet`, 'utf8').trim()).toBe('1');
    const dnat = rulesOf(a).filter((l) => l.includes('DNAT') && l.includes(`${ctrIP}:${containerPort}`));
    expect(dnat.join('\n')).toContain(`-d 127.0.0.1/32 -p tcp -m tcp --dport ${hostPort}`);

    const server = spawn(
      'ip',
      [
        'netns',
        'exec',
        a.ns,
        process.execPath,
        '-e',
        `const s = require('net').createServer((c) => c.end(c.remoteAddress + '\\n')); s.listen(${containerPort}, '0.0.0.0', () => console.log('ready'));`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.push(server);
    await waitForLine(server, 'ready', 10_000);

    // The server answers with the address it sees: the connection from 127.0.0.1 is
    // masqueraded (CNI-HOSTPORT-MASQ) to the bridge's address on the way out.
    const seen = await readAll('127.0.0.1', hostPort, 10_000);
    expect(seen.trim()).toBe(a.gateway);
    server.kill('SIGKILL');
  });

  it('DEL: veth, address, rules and cache gone; the bridge stays (the plugin never removes it); DEL again, and with the namespace gone, succeeds', async () => {
    const a = attachments[0]!;
    const cached = JSON.parse(readFileSync(cachePath(cacheDir, a.list.name, a.rt.containerId, a.rt.ifName), 'utf8'));
    const hostVeth: string = cached.result.interfaces.find((i: { name: string; sandbox?: string }) => i.name !== a.bridge && i.sandbox === undefined).name;
    const ours = rulesOf(a);
    const chains = chainsIn(ours);
    // The bridge plugin's masquerade chain and portmap's DNAT chain for this container.
    expect(chains.size).toBeGreaterThanOrEqual(2);

    await delNetworkList(a.list, a.rt, opts());

    expect(linkExists('eth0', a.ns)).toBe(false);
    expect(linkExists(hostVeth)).toBe(false);
    expect(allocated(a)).toEqual([]);
    expect(existsSync(cachePath(cacheDir, a.list.name, a.rt.containerId, a.rt.ifName))).toBe(false);
    expect(rulesOf(a, chains)).toEqual([]);

    // The CNI bridge plugin leaves the bridge (with its address and subnet route) for the
    // next container; podman removes it when the network's last container goes, and tsrun's
    // engine will have to do the same. Here: it is still there, and the test removes it.
    expect(linkExists(a.bridge)).toBe(true);
    must('ip', ['link', 'del', a.bridge]);

    await delNetworkList(a.list, a.rt, opts());
    must('ip', ['netns', 'del', a.ns]);
    await delNetworkList(a.list, a.rt, opts());
    expect(rulesOf(a, chains)).toEqual([]);
  });

  it('an internal network: no masquerade, no portmap; a DEL after the namespace is gone still releases the address and the firewall rules', async () => {
    const a = attachment('-b', true);
    expect(a.list.plugins.map((p) => p.type)).toEqual(['bridge', 'firewall', 'tuning']);
    const result = await addNetworkList(a.list, a.rt, opts());
    const addr = (result.ips?.[0]?.address ?? '').split('/')[0]!;
    expect(allocated(a)).toEqual([addr]);
    const ping = sh('ip', ['netns', 'exec', a.ns, 'busybox', 'ping', '-c1', '-W1', a.gateway]);
    expect(ping.code, ping.stdout + ping.stderr).toBe(0);

    const ours = rulesOf(a);
    // Only the firewall plugin's FORWARD accepts for the address: no NAT at all.
    expect(ours.length).toBeGreaterThan(0);
    expect(ours.every((l) => l.startsWith('filter: -A CNI-FORWARD '))).toBe(true);

    // The container's namespace goes first (its last process died; the kernel deletes the
    // veth pair with it). DEL must still release what is outside it: the firewall plugin
    // finds the address in the cached result (prevResult), host-local frees the allocation.
    must('ip', ['netns', 'del', a.ns]);
    await delNetworkList(a.list, a.rt, opts());
    expect(allocated(a)).toEqual([]);
    expect(rulesOf(a)).toEqual([]);
    expect(existsSync(cachePath(cacheDir, a.list.name, a.rt.containerId, a.rt.ifName))).toBe(false);
    must('ip', ['link', 'del', a.bridge]);
  });
});

function waitForLine(child: ChildProcess, line: string, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`no "${line}" within ${ms} ms; stderr: ${err}`)), ms);
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.split('\n').includes(line)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code}) before "${line}": ${err}`));
    });
  });
}

function readAll(host: string, port: number, ms: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    const sock = net.connect({ host, port });
    sock.setTimeout(ms, () => {
      sock.destroy();
      reject(new Error(`no answer from ${host}:${port} within ${ms} ms`));
    });
    sock.on('data', (d) => {
      data += d.toString();
    });
    sock.on('end', () => resolve(data));
    sock.on('error', reject);
  });
}
