// Bridge networking through the engine CLI, as a user sees it from outside: the default
// network's address and route, user networks whose containers reach each other by name and
// by --network-alias, published ports reached from the host, internal networks with no way
// out, `network rm` of a network in use, `network connect|disconnect`, --dns/--add-host/
// --hostname, what inspect and `network inspect` say, and that nothing a container had on
// the host (veth, address, iptables rules, namespace, CNI cache) outlives it, whichever way
// it goes.
//
// What this test touches, and only that: a private engine (helpers/engine.ts) whose
// containers use the default network "tsrun" (bridge tsrun0, 10.87.0.0/16, shared with every
// other engine on the host) and networks of its own, named after the test's pid, on /24s of
// 10.86.200.0/24..10.86.219.0/24 that no host route or address overlaps. Packets go only to
// 127.0.0.1 (published ports) and between the test's own containers; no container is asked
// to reach anything else, and the internal network's "no way out" is read from its routing
// table and the firewall rules, never tried.
//
// Other test files (and other engines) run containers on tsrun0 meanwhile and share
// /run/tsrun/ipam/tsrun, so what is compared before/after is what is tied to this file's
// containers (their ids, addresses, host-side veths) and networks (their bridges, subnets),
// never global counts. The CNI plugins' shared chains (CNI-FORWARD, CNI-HOSTPORT-*) are left
// as they are: every CNI container on the host uses them (see network-cni.test.ts).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cidrContains, ipToInt, parseCidr } from '../../src/network/ipv4.js';
import { type Engine, engineSkipReason, makeEngine, type Result, show, until } from './helpers/engine.js';
import {
  bridgeNetworkSkipReason,
  freeLocalPort,
  freeSubnet24,
  hostListensOn,
  iptablesLines,
  linkExists,
  must,
  type Subnet24Range,
  subnetPrefix,
} from './helpers/network.js';

const IPAM_DIR = '/run/tsrun/ipam';
const DNSNAME_DIR = '/run/containers/cni/dnsname';
const DEFAULT_SUBNET = '10.87.0.0/16';
const DEFAULT_GATEWAY = '10.87.0.1';

const skip = engineSkipReason() ?? bridgeNetworkSkipReason();
if (skip) console.warn(`[engine-network.test] SKIPPED: ${skip}`);

const PID = process.pid;
const FULL_ID = /^[0-9a-f]{64}$/;
/** A JS stack frame or a raw exception name: what a user must never see. */
const STACK = /\n\s+at |\.js:\d+|\.cjs:\d+|TypeError|ReferenceError/;

interface NetworkSettings {
  SandboxKey: string;
  IPAddress: string;
  IPPrefixLen: number;
  Gateway: string;
  MacAddress: string;
  Ports: Record<string, Array<{ HostIp: string; HostPort: string }>>;
  Networks: Record<string, { IPAddress: string; IPPrefixLen: number; Gateway: string; MacAddress: string; Aliases: string[]; InterfaceName: string }>;
}

interface NetworkInspect {
  Name: string;
  NetworkInterface: string;
  Subnets: Array<{ Subnet: string; Gateway: string }>;
  Internal: boolean;
  DNSEnabled: boolean;
  Containers: Record<string, { Name: string; IPv4Address: string; MacAddress: string }>;
}

/** Names of the links whose master is `bridge` (its ports: the host ends of veths). */
const portsOf = (bridge: string) =>
  must('ip', ['-o', 'link', 'show', 'master', bridge])
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(': ')[1]!.split('@')[0]!)
    .sort();

/** Rules that mention `needle` as a whole word-ish token (an id, "10.87.0.5/32", a bridge name). */
const rulesMentioning = (needle: string, lines = iptablesLines()) => lines.filter((l) => l.includes(needle));

/** host-local's allocation files of `network` that hold `id` (the file's first line is the container id). */
function ipamFilesOf(network: string, id: string): string[] {
  const dir = path.join(IPAM_DIR, network);
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => {
    try {
      return readFileSync(path.join(dir, f), 'utf8').split(/\r?\n/)[0]!.trim() === id;
    } catch {
      return false; // released meanwhile
    }
  });
}

/** Who holds `ip` in host-local's store of `network` (undefined: nobody). */
function ipamHolder(network: string, ip: string): string | undefined {
  try {
    return readFileSync(path.join(IPAM_DIR, network, ip), 'utf8')
      .split(/\r?\n/)[0]!
      .trim();
  } catch {
    return undefined;
  }
}

/** A listener of the test's own on 127.0.0.1 (port 0: any free one). */
function listen(port = 0): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const s = net.createServer((c) => c.destroy());
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => resolve(s));
  });
}

/** One GET to 127.0.0.1:port through no proxy (node's http does not read *_proxy). */
function getLocal(port: number, urlPath: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent: false, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from 127.0.0.1:${port} within 10 s`)));
    req.on('error', reject);
  });
}

/** This file's /24s: 10.86.200.0/24..10.86.219.0/24 (tried from an offset by pid, see freeSubnet24). */
const SUBNETS: Subnet24Range = { net: '10.86', first: 200, count: 20 };

const inSubnet = (ip: string, cidr: string) => cidrContains(parseCidr(cidr)!, ipToInt(ip));

describe.skipIf(!!skip)('tsrun bridge networking (CNI) from outside', () => {
  let e: Engine;
  /** Networks this file made: name -> bridge, subnet (checked gone at the end). */
  const made = new Map<string, { bridge: string; subnet: string }>();

  const ok = (r: Result): Result => {
    expect(r.code, show(r)).toBe(0);
    return r;
  };
  const settings = (ref: string): NetworkSettings => JSON.parse(ok(e.tsrunSync(['inspect', '-f', '{{json .NetworkSettings}}', ref])).stdout);
  const netInspect = (name: string): NetworkInspect => (JSON.parse(ok(e.tsrunSync(['network', 'inspect', name])).stdout) as NetworkInspect[])[0]!;
  const exec = (ref: string, cmd: string[]) => e.tsrun(['exec', ref, ...cmd]);
  const runD = async (args: string[]): Promise<string> => {
    const r = ok(await e.tsrun(['run', '-d', ...args]));
    const id = r.stdout.trim();
    expect(id).toMatch(FULL_ID);
    return id;
  };
  /** The container's full id, or undefined when there is none of that name. */
  const idOf = (name: string) => {
    const r = e.tsrunSync(['inspect', '--type', 'container', '-f', '{{.Id}}', name]);
    return r.code === 0 ? r.stdout.trim() : undefined;
  };
  const rmF = (...refs: string[]) => {
    for (const r of refs) e.tsrunSync(['rm', '-f', r]);
  };
  /** `network create --subnet` of a fresh /24 (name: tsrun-it-PID-TAG); returns name, bridge, subnet, gateway. */
  const createNetwork = (tag: string, extra: string[] = []) => {
    const name = `tsrun-it-${PID}-${tag}`;
    const subnet = freeSubnet24(SUBNETS, { taken: [...made.values()].map((m) => m.subnet), start: PID });
    ok(e.tsrunSync(['network', 'create', '--subnet', subnet, ...extra, name]));
    const ins = netInspect(name);
    made.set(name, { bridge: ins.NetworkInterface, subnet });
    return { name, bridge: ins.NetworkInterface, subnet, gateway: ins.Subnets[0]!.Gateway };
  };
  const removeNetwork = (name: string) => e.tsrunSync(['network', 'rm', name]);
  /** busybox httpd on :80 serving /www/file with `body`, as pid 1. */
  const httpd = (body: string) => ['busybox', 'sh', '-c', `mkdir -p /www && echo ${body} > /www/file && exec httpd -f -p 80 -h /www`];
  /** Until httpd answers inside the container (a readiness wait, not a retried assertion). */
  const waitServing = async (ref: string) =>
    expect(await until(async () => (await exec(ref, ['wget', '-qO-', 'http://127.0.0.1/file'])).code === 0, 10_000, 100)).toBe(true);

  /** What the host holds for one container: its namespace, CNI cache records, host veths, addresses, rules. */
  function footprint(id: string) {
    const cacheDir = path.join(e.runRoot, 'networks', 'cache');
    const cache = existsSync(cacheDir) ? readdirSync(cacheDir).filter((f) => f.includes(id)) : [];
    const veths: string[] = [];
    const ips: Array<{ network: string; ip: string }> = [];
    for (const f of cache) {
      const rec = JSON.parse(readFileSync(path.join(cacheDir, f), 'utf8')) as {
        network: string;
        config: { plugins: Array<{ bridge?: string }> };
        result: { interfaces?: Array<{ name: string; sandbox?: string }>; ips?: Array<{ address: string }> };
      };
      const bridge = rec.config.plugins[0]?.bridge;
      veths.push(...(rec.result.interfaces ?? []).filter((i) => i.sandbox === undefined && i.name !== bridge).map((i) => i.name));
      ips.push(...(rec.result.ips ?? []).map((i) => ({ network: rec.network, ip: i.address.split('/')[0]! })));
    }
    return { netns: existsSync(path.join(e.runRoot, 'netns', id)), cache, veths, ips };
  }

  /** Nothing on the host names the container any more (the footprint taken while it ran). */
  function expectGone(id: string, was: ReturnType<typeof footprint>, networks: string[]) {
    const lines = iptablesLines();
    const left: string[] = [];
    if (existsSync(path.join(e.runRoot, 'netns', id))) left.push(`netns ${id}`);
    const cacheDir = path.join(e.runRoot, 'networks', 'cache');
    if (existsSync(cacheDir)) left.push(...readdirSync(cacheDir).filter((f) => f.includes(id)));
    for (const v of was.veths) if (linkExists(v)) left.push(`veth ${v}`);
    for (const n of networks) for (const f of ipamFilesOf(n, id)) left.push(`host-local ${n}/${f}`);
    left.push(...rulesMentioning(id, lines));
    // An address freed may be someone else's by now (the default network is shared): its
    // rules are checked only while host-local has not given it out again.
    for (const { network, ip } of was.ips) if (ipamHolder(network, ip) === undefined) left.push(...rulesMentioning(`${ip}/32`, lines));
    expect(left, left.join('\n')).toEqual([]);
  }

  beforeAll(() => {
    e = makeEngine('tsrun-engine-network');
  });

  afterAll(async () => {
    if (!e) return;
    const problems = await e.teardown();
    for (const [name, { bridge, subnet }] of made) {
      if (linkExists(bridge)) problems.push(`bridge ${bridge} of network ${name} left`);
      if (existsSync(path.join(IPAM_DIR, name))) problems.push(`host-local store ${IPAM_DIR}/${name} left`);
      if (existsSync(path.join(DNSNAME_DIR, name))) problems.push(`dnsname state ${DNSNAME_DIR}/${name} left`);
      const rules = [...rulesMentioning(bridge), ...rulesMentioning(subnet), ...rulesMentioning(subnetPrefix(subnet))];
      if (rules.length) problems.push(`iptables rules of network ${name} left:\n${[...new Set(rules)].join('\n')}`);
    }
    expect(problems, problems.join('\n')).toEqual([]);
  });

  it('the default network: an address of 10.87.0.0/16 on eth0 and the default route via 10.87.0.1; no name server of its own', async () => {
    const r = ok(await e.tsrun(['run', '--rm', 'busybox', 'sh', '-c', 'ip -4 addr show eth0; echo ---; ip route; echo ---; cat /etc/resolv.conf']));
    const [addr, route, resolv] = r.stdout.split('---\n');
    const ip = addr!.match(/inet (\d+\.\d+\.\d+\.\d+)\/16 /)?.[1];
    expect(ip, addr).toBeDefined();
    expect(inSubnet(ip!, DEFAULT_SUBNET)).toBe(true);
    expect(route).toMatch(new RegExp(`^default via ${DEFAULT_GATEWAY.replace(/\./g, '\\.')} dev eth0`, 'm'));
    // docker's default bridge: no embedded DNS, so neither the gateway nor the dns.tsrun domain.
    expect(resolv).not.toMatch(new RegExp(`nameserver ${DEFAULT_GATEWAY}$`, 'm'));
    expect(resolv).not.toContain('dns.tsrun');
    // --rm: its namespace and attachment went with it.
    expect(readdirSync(path.join(e.runRoot, 'netns'))).toEqual([]);
    expect(readdirSync(path.join(e.runRoot, 'networks', 'cache'))).toEqual([]);
  });

  it('a user network: containers ping and fetch each other by name; a shared --network-alias resolves to both', async () => {
    const n = createNetwork('names');
    const [w1, w2] = [`w1-${PID}`, `w2-${PID}`];
    try {
      await runD(['--name', w1, '--network', n.name, '--network-alias', 'svc', ...httpd(`from-${w1}`)]);
      await runD(['--name', w2, '--network', n.name, '--network-alias', 'svc', ...httpd(`from-${w2}`)]);
      const ip1 = settings(w1).Networks[n.name]!.IPAddress;
      const ip2 = settings(w2).Networks[n.name]!.IPAddress;
      expect(inSubnet(ip1, n.subnet) && inSubnet(ip2, n.subnet), `${ip1} ${ip2} in ${n.subnet}`).toBe(true);
      expect(ip1).not.toBe(ip2);
      await waitServing(w1);
      await waitServing(w2);

      const ping12 = ok(await exec(w1, ['ping', '-c', '1', '-W', '5', w2]));
      expect(ping12.stdout).toContain(`from ${ip2}:`);
      const ping21 = ok(await exec(w2, ['ping', '-c', '1', '-W', '5', w1]));
      expect(ping21.stdout).toContain(`from ${ip1}:`);
      expect(ok(await exec(w1, ['wget', '-qO-', `http://${w2}/file`])).stdout).toBe(`from-${w2}\n`);
      expect(ok(await exec(w2, ['wget', '-qO-', `http://${w1}/file`])).stdout).toBe(`from-${w1}\n`);

      // A third container: the network's name server and domain, and the alias's two addresses.
      const third = ok(await e.tsrun(['run', '--rm', '--network', n.name, 'busybox', 'sh', '-c', 'cat /etc/resolv.conf; echo ---; nslookup svc']));
      const [resolv, lookup] = third.stdout.split('---\n');
      expect(resolv).toMatch(/^search dns\.tsrun$/m);
      expect(resolv!.split('\n').filter((l) => l.startsWith('nameserver '))).toEqual([`nameserver ${n.gateway}`]);
      const answers = [...lookup!.matchAll(/^Address: (\d+\.\d+\.\d+\.\d+)$/gm)].map((m) => m[1]).sort();
      expect(answers, lookup).toEqual([ip1, ip2].sort());
    } finally {
      rmF(w1, w2);
      removeNetwork(n.name);
    }
  });

  it('-p 127.0.0.1:HOST:80 and -p 80 reach httpd from the host; port and ps show them; a port held on the host is refused and nothing is left', async () => {
    const n = createNetwork('ports');
    // The 18080, unless something on the host listens there already.
    const fixed = hostListensOn(18080) ? await freeLocalPort() : 18080;
    const name = `pub-${PID}`;
    const held = await listen();
    const heldPort = (held.address() as net.AddressInfo).port;
    try {
      await runD(['--name', name, '--network', n.name, '-p', `127.0.0.1:${fixed}:80`, '-p', '80', ...httpd('published')]);
      await waitServing(name);

      const all = ok(await e.tsrun(['port', name]))
        .stdout.split('\n')
        .filter(Boolean);
      expect(all[0]).toBe(`80/tcp -> 127.0.0.1:${fixed}`);
      const chosen = Number(all[1]?.match(/^80\/tcp -> 0\.0\.0\.0:(\d+)$/)?.[1]);
      expect(all.length, all.join('\n')).toBe(2);
      expect(chosen).toBeGreaterThan(0);
      expect(chosen).not.toBe(fixed);
      expect(ok(await e.tsrun(['port', name, '80'])).stdout).toBe(`127.0.0.1:${fixed}\n0.0.0.0:${chosen}\n`);
      const ps = ok(await e.tsrun(['ps', '--format', '{{.Names}} {{.Ports}}'])).stdout.split('\n');
      expect(ps).toContain(`${name} 127.0.0.1:${fixed}->80/tcp, 0.0.0.0:${chosen}->80/tcp`);
      expect(ok(await e.tsrun(['ps'])).stdout).toMatch(new RegExp(`127\\.0\\.0\\.1:${fixed}->80/tcp, 0\\.0\\.0\\.0:${chosen}->80/tcp\\s+${name}\\n`));
      expect(settings(name).Ports).toEqual({
        '80/tcp': [
          { HostIp: '127.0.0.1', HostPort: String(fixed) },
          { HostIp: '0.0.0.0', HostPort: String(chosen) },
        ],
      });

      expect(await getLocal(fixed, '/file')).toEqual({ status: 200, body: 'published\n' });
      expect(await getLocal(chosen, '/file')).toEqual({ status: 200, body: 'published\n' });

      // A port the test holds on 127.0.0.1: refused with one line naming it, and nothing made.
      const bridgePorts = portsOf(n.bridge);
      const ipamBefore = readdirSync(path.join(IPAM_DIR, n.name)).sort();
      const rulesBefore = rulesMentioning(subnetPrefix(n.subnet)).sort();
      for (const spec of [`127.0.0.1:${heldPort}:80`, `${heldPort}:80`]) {
        const r = await e.tsrun(['run', '-d', '--name', `held-${PID}`, '--network', n.name, '-p', spec, 'busybox', 'sleep', '300']);
        expect(r.code, show(r)).not.toBe(0);
        expect(r.stdout).toBe('');
        const lines = r.stderr.split('\n').filter(Boolean);
        expect(lines[0]).toMatch(new RegExp(`^tsrun: -p \\S*:${heldPort}->80/tcp: host port ${heldPort}/tcp is in use by a process on the host$`));
        expect(
          lines.slice(1).every((l) => l.startsWith('hint: ')),
          r.stderr,
        ).toBe(true);
        expect(r.stderr).not.toMatch(STACK);
        expect(idOf(`held-${PID}`)).toBeUndefined();
      }
      expect(portsOf(n.bridge)).toEqual(bridgePorts);
      expect(readdirSync(path.join(IPAM_DIR, n.name)).sort()).toEqual(ipamBefore);
      expect(rulesMentioning(subnetPrefix(n.subnet)).sort()).toEqual(rulesBefore);
      expect(rulesMentioning(`--dport ${heldPort} `)).toEqual([]);
    } finally {
      held.close();
      rmF(name, `held-${PID}`);
      removeNetwork(n.name);
    }
  });

  it('--internal: no default route in the container, and no MASQUERADE (nor any NAT) for its subnet or its container', async () => {
    const n = createNetwork('internal', ['--internal']);
    const name = `int-${PID}`;
    const control = `ext-${PID}`;
    try {
      expect(netInspect(n.name).Internal).toBe(true);
      const id = await runD(['--name', name, '--network', n.name, 'busybox', 'sleep', '300']);
      const ip = settings(name).Networks[n.name]!.IPAddress;
      expect(inSubnet(ip, n.subnet)).toBe(true);
      const routes = ok(await exec(name, ['ip', '-4', 'route'])).stdout;
      expect(routes).not.toMatch(/^default /m);
      expect(routes).toMatch(new RegExp(`^${n.subnet.replace(/\./g, '\\.')} dev eth0 `, 'm'));
      // The gateway (the host) is still on the link: the network is not cut off from its bridge.
      ok(await exec(name, ['ping', '-c', '1', '-W', '5', n.gateway]));

      // A container of a non-internal network, as the control: its masquerade is there.
      const cid = await runD(['--name', control, 'busybox', 'sleep', '300']);
      const lines = iptablesLines();
      const nat = (l: string) => l.startsWith('nat: ');
      const masqChain = lines.find((l) => nat(l) && l.includes(`-A POSTROUTING -s ${settings(control).IPAddress}/32 `) && l.includes(cid))?.split(' -j ')[1];
      expect(masqChain, 'the control container has a masquerade chain').toBeDefined();
      expect(lines.some((l) => l.startsWith(`nat: -A ${masqChain} `) && l.endsWith('-j MASQUERADE'))).toBe(true);

      const prefix = subnetPrefix(n.subnet);
      const ours = lines.filter((l) => l.includes(id) || l.includes(prefix) || l.includes(n.bridge));
      expect(ours.filter(nat), ours.join('\n')).toEqual([]);
      expect(ours.filter((l) => l.includes('MASQUERADE'))).toEqual([]);
      expect(lines.some((l) => nat(l) && l.includes('MASQUERADE') && (l.includes(`${ip}/32`) || l.includes(n.subnet)))).toBe(false);
    } finally {
      rmF(name, control);
      removeNetwork(n.name);
    }
  });

  it('network rm of a network in use is refused and names the container; after rm of the container it succeeds and the bridge goes', async () => {
    const n = createNetwork('rm');
    const name = `user-${PID}`;
    try {
      await runD(['--name', name, '--network', n.name, 'busybox', 'sleep', '300']);
      expect(linkExists(n.bridge)).toBe(true);

      const refused = await e.tsrun(['network', 'rm', n.name]);
      expect(refused.code, show(refused)).not.toBe(0);
      expect(refused.stdout).toBe('');
      expect(refused.stderr.split('\n')[0]).toMatch(new RegExp(`^tsrun: network ${n.name} is in use by container\\(s\\): ${name}$`));
      expect(refused.stderr).not.toMatch(STACK);
      expect(ok(await e.tsrun(['network', 'ls', '-q'])).stdout.split('\n')).toContain(n.name);
      expect(linkExists(n.bridge)).toBe(true);
      expect(portsOf(n.bridge).length).toBe(1);

      ok(await e.tsrun(['rm', '-f', name]));
      expect(ok(await e.tsrun(['network', 'rm', n.name])).stdout).toBe(`${n.name}\n`);
      expect(ok(await e.tsrun(['network', 'ls', '-q'])).stdout.split('\n')).not.toContain(n.name);
      expect(
        must('ip', ['-o', 'link'])
          .split('\n')
          .some((l) => l.split(': ')[1]?.split('@')[0] === n.bridge),
      ).toBe(false);
      expect(existsSync(path.join(IPAM_DIR, n.name))).toBe(false);
      expect(rulesMentioning(n.bridge)).toEqual([]);
      const again = await e.tsrun(['network', 'rm', n.name]);
      expect(again.code).not.toBe(0);
      expect(again.stderr.split('\n')[0]).toBe(`tsrun: no such network: ${n.name}`);
    } finally {
      rmF(name);
      removeNetwork(n.name);
    }
  });

  it('nothing is left after rm -f of a running container, after kill -9 of its monitor then rm -f, and after failed creates and starts', async () => {
    const n = createNetwork('leftovers');
    const names = [`rmf-${PID}`, `mon-${PID}`, `bad-${PID}`, `held-${PID}`, `addhost-${PID}`];
    const held = await listen();
    const heldPort = (held.address() as net.AddressInfo).port;
    try {
      // rm -f of a running container on the default network.
      const a = await runD(['--name', names[0]!, 'busybox', 'sleep', '300']);
      const fa = footprint(a);
      expect(fa.netns).toBe(true);
      expect(fa.veths.length).toBe(1);
      expect(fa.ips.length).toBe(1);
      expect(ipamFilesOf('tsrun', a)).toEqual([fa.ips[0]!.ip]);
      expect(rulesMentioning(a).length).toBeGreaterThan(0);
      ok(await e.tsrun(['rm', '-f', names[0]!]));
      expectGone(a, fa, ['tsrun']);

      // kill -9 of the monitor (the container dies with it: PDEATHSIG), then rm -f; on the test's network.
      const b = await runD(['--name', names[1]!, '--network', n.name, 'busybox', 'sleep', '300']);
      const fb = footprint(b);
      expect(fb.veths.length).toBe(1);
      expect(portsOf(n.bridge)).toEqual(fb.veths);
      expect(ipamFilesOf(n.name, b)).toEqual([fb.ips[0]!.ip]);
      const monitor = Number(ok(e.tsrunSync(['inspect', '-f', '{{.State.MonitorPid}}', names[1]!])).stdout.trim());
      expect(monitor).toBeGreaterThan(1);
      process.kill(monitor, 'SIGKILL');
      expect(await until(() => e.tsrunSync(['inspect', '-f', '{{.State.Status}}', names[1]!]).stdout.trim() === 'exited')).toBe(true);
      ok(await e.tsrun(['rm', '-f', names[1]!]));
      expectGone(b, fb, [n.name]);
      expect(portsOf(n.bridge)).toEqual([]);

      // A start that fails after the network was set up (the command does not exist): torn down.
      const bad = await e.tsrun(['run', '-d', '--name', names[2]!, 'busybox', '/nonexistent']);
      expect(bad.code, show(bad)).not.toBe(0);
      expect(bad.stderr).toContain('/nonexistent');
      const badId = idOf(names[2]!);
      expect(badId).toMatch(FULL_ID);
      expectGone(badId!, { netns: false, cache: [], veths: [], ips: [] }, ['tsrun']);
      ok(await e.tsrun(['rm', '-f', names[2]!]));

      // Creates refused before anything is made: a host port the test holds, a bad --add-host.
      const ipamBefore = readdirSync(path.join(IPAM_DIR, n.name)).sort();
      const rulesBefore = rulesMentioning(subnetPrefix(n.subnet)).sort();
      const netnsBefore = readdirSync(path.join(e.runRoot, 'netns')).sort();
      const cacheBefore = readdirSync(path.join(e.runRoot, 'networks', 'cache')).sort();
      const failed: Array<[string, string[], RegExp]> = [
        [names[3]!, ['-p', `127.0.0.1:${heldPort}:80`], new RegExp(`host port ${heldPort}/tcp is in use`)],
        [names[4]!, ['--add-host', 'db:not-an-ip'], /--add-host db:not-an-ip: "not-an-ip" is not an IP address/],
        [names[4]!, ['--add-host', 'no-colon'], /--add-host no-colon: expected NAME:IP/],
      ];
      for (const [name, flags, why] of failed) {
        for (const verb of ['run', 'create']) {
          const r = await e.tsrun([verb, ...(verb === 'run' ? ['-d'] : []), '--name', name, '--network', n.name, ...flags, 'busybox', 'sleep', '300']);
          expect(r.code, show(r)).not.toBe(0);
          expect(r.stderr.split('\n')[0]).toMatch(why);
          expect(r.stderr).not.toMatch(STACK);
          expect(idOf(name)).toBeUndefined();
        }
      }
      expect(portsOf(n.bridge)).toEqual([]);
      expect(readdirSync(path.join(IPAM_DIR, n.name)).sort()).toEqual(ipamBefore);
      expect(rulesMentioning(subnetPrefix(n.subnet)).sort()).toEqual(rulesBefore);
      expect(readdirSync(path.join(e.runRoot, 'netns')).sort()).toEqual(netnsBefore);
      expect(readdirSync(path.join(e.runRoot, 'networks', 'cache')).sort()).toEqual(cacheBefore);
    } finally {
      held.close();
      rmF(...names);
      removeNetwork(n.name);
    }
  });

  it('network connect/disconnect of a running container adds and removes eth1 on the second network; --dns, --add-host, --hostname land in /etc', async () => {
    const n = createNetwork('connect');
    const name = `conn-${PID}`;
    const peer = `peer-${PID}`;
    try {
      const id = await runD(['--name', name, 'busybox', 'sleep', '300']);
      await runD(['--name', peer, '--network', n.name, 'busybox', 'sleep', '300']);
      expect((await exec(name, ['ip', 'link', 'show', 'eth1'])).code).not.toBe(0);

      ok(await e.tsrun(['network', 'connect', '--alias', 'conn-alias', n.name, name]));
      const eth1 = ok(await exec(name, ['ip', '-o', '-4', 'addr', 'show', 'eth1'])).stdout;
      const ip = eth1.match(/inet (\d+\.\d+\.\d+\.\d+)\/24 /)?.[1];
      expect(ip, eth1).toBeDefined();
      expect(inSubnet(ip!, n.subnet)).toBe(true);
      const s = settings(name);
      expect(Object.keys(s.Networks).sort()).toEqual([n.name, 'tsrun'].sort());
      expect(s.Networks[n.name]).toMatchObject({ IPAddress: ip, InterfaceName: 'eth1', Gateway: n.gateway, Aliases: ['conn-alias'] });
      expect(s.Networks['tsrun']!.InterfaceName).toBe('eth0');
      expect(netInspect(n.name).Containers[id]).toMatchObject({ Name: name, IPv4Address: `${ip}/24` });
      // The network's containers find it by name and by the alias.
      ok(await exec(peer, ['ping', '-c', '1', '-W', '5', name]));
      const alias = ok(await exec(peer, ['nslookup', 'conn-alias'])).stdout;
      expect([...alias.matchAll(/^Address: (\d+\.\d+\.\d+\.\d+)$/gm)].map((m) => m[1])).toEqual([ip]);
      const veths = footprint(id).veths;
      expect(veths.length).toBe(2);

      ok(await e.tsrun(['network', 'disconnect', n.name, name]));
      expect((await exec(name, ['ip', 'link', 'show', 'eth1'])).code).not.toBe(0);
      expect(ok(await exec(name, ['ip', '-o', '-4', 'addr', 'show', 'eth0'])).stdout).toContain(`inet ${settings(name).IPAddress}/16 `);
      expect(Object.keys(settings(name).Networks)).toEqual(['tsrun']);
      expect(netInspect(n.name).Containers[id]).toBeUndefined();
      expect(ipamFilesOf(n.name, id)).toEqual([]);
      expect(portsOf(n.bridge).filter((p) => veths.includes(p))).toEqual([]);

      // The /etc files and the hostname from the flags.
      const etc = ok(
        await e.tsrun([
          'run',
          '--rm',
          '--dns',
          '10.1.2.3',
          '--dns-search',
          'example.test',
          '--dns-option',
          'ndots:2',
          '--add-host',
          'db:10.9.9.9',
          '--add-host',
          'gw:host-gateway',
          '--hostname',
          'h1',
          'busybox',
          'sh',
          '-c',
          'cat /etc/resolv.conf; echo ---; cat /etc/hosts; echo ---; hostname',
        ]),
      ).stdout;
      const [resolv, hosts, hostname] = etc.split('---\n');
      expect(resolv!.split('\n').filter((l) => l.startsWith('nameserver '))).toEqual(['nameserver 10.1.2.3']);
      expect(resolv).toMatch(/^search example\.test$/m);
      expect(resolv).toMatch(/^options ndots:2$/m);
      expect(hosts).toMatch(/^10\.9\.9\.9\s+db$/m);
      expect(hosts).toMatch(new RegExp(`^${DEFAULT_GATEWAY.replace(/\./g, '\\.')}\\s+gw$`, 'm'));
      expect(hosts).toMatch(/^10\.87\.\d+\.\d+\s+h1(\s|$)/m);
      expect(hostname).toBe('h1\n');
    } finally {
      rmF(name, peer);
      removeNetwork(n.name);
    }
  });

  it('inspect shows the IPAddress, Gateway and MacAddress that ip addr shows inside; network inspect lists the container', async () => {
    const n = createNetwork('inspect');
    const name = `insp-${PID}`;
    const user = `insp2-${PID}`;
    try {
      for (const [ref, netName, subnet, gateway] of [
        [name, 'tsrun', DEFAULT_SUBNET, DEFAULT_GATEWAY],
        [user, n.name, n.subnet, n.gateway],
      ] as const) {
        const id = await runD(['--name', ref, '--network', netName, 'busybox', 'sleep', '300']);
        const inside = ok(await exec(ref, ['sh', '-c', 'ip -o -4 addr show eth0; cat /sys/class/net/eth0/address; ip route'])).stdout;
        const [, ip, prefix] = inside.match(/inet (\d+\.\d+\.\d+\.\d+)\/(\d+) /) ?? [];
        const mac = inside.match(/^([0-9a-f]{2}(?::[0-9a-f]{2}){5})$/m)?.[1];
        const via = inside.match(/^default via (\S+) dev eth0/m)?.[1];
        expect(ip && mac && via, inside).toBeTruthy();
        expect(inSubnet(ip!, subnet)).toBe(true);
        expect(via).toBe(gateway);

        const s = settings(ref);
        expect(s).toMatchObject({
          IPAddress: ip,
          IPPrefixLen: Number(prefix),
          Gateway: gateway,
          MacAddress: mac,
          SandboxKey: path.join(e.runRoot, 'netns', id),
        });
        expect(existsSync(s.SandboxKey)).toBe(true);
        expect(s.Networks[netName]).toMatchObject({ IPAddress: ip, IPPrefixLen: Number(prefix), Gateway: gateway, MacAddress: mac, InterfaceName: 'eth0' });
        expect(Object.keys(s.Networks)).toEqual([netName]);
        expect(e.tsrunSync(['inspect', '-f', '{{.NetworkSettings.IPAddress}}', ref]).stdout).toBe(`${ip}\n`);

        const ni = netInspect(netName);
        expect(ni.Containers[id]).toEqual({ Name: ref, IPv4Address: `${ip}/${prefix}`, MacAddress: mac });
        expect(ni.Subnets).toEqual([{ Subnet: subnet, Gateway: gateway }]);
        expect(ni.DNSEnabled).toBe(netName !== 'tsrun');
      }
      expect(netInspect(n.name).NetworkInterface).toBe(n.bridge);
    } finally {
      rmF(name, user);
      removeNetwork(n.name);
    }
  });
});
