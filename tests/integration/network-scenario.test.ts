// The bridge-networking issue's seed scenario, end to end and offline: on a user network of
// the test's own (`tsrun network create`, names resolved by the dnsname plugin's dnsmasq),
//   - `repo`: a busybox container serving a local apt repository (helpers/debian.ts makeRepo,
//     bound read-only) over HTTP with `busybox httpd`;
//   - `web`: the Debian image of images/debian running `busybox httpd` (the host's static
//     busybox bound read-only: the minbase image has no web server) with a CGI script that
//     prints the output of the package's command, or "missing" while it is not installed;
//     published on 127.0.0.1:PORT;
//   - a client: busybox containers on the same network that resolve `web` by name and fetch
//     the app; the host fetches it with curl on 127.0.0.1:PORT.
// Then `tsrun exec web` points apt at http://repo/ (only there) and installs the package, and
// the still-running server (same pid) serves its output to the client and to the host.
//
// Traffic goes only to 127.0.0.1 and the test's own bridge: apt's only source is the repo
// container, and the Debian sources of the image are removed before `apt-get update`.
// After the engine's teardown (rm -f, network prune, leftovers) the test checks that the
// network's bridge, its iptables rules and its dnsmasq are gone from the host.
//
// Skipped with the reason when not root, the engine or dpkg-deb is missing, the CNI plugins,
// dnsmasq, iptables or curl are missing, or the Debian image cannot be built (no cache and no
// mirror). Scratch dirs come from tempDir (removed at the end).
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cidrContains, ipToInt, isIPv4, parseCidr } from '../../src/network/ipv4.js';
import { tempDir } from '../helpers/tmp-dir.js';
import { buildDebianImage, debianSkipReason, has, makeRepo } from './helpers/debian.js';
import { type Engine, engineSkipReason, makeEngine, type Result, show, until } from './helpers/engine.js';
import {
  bridgeNetworkSkipReason,
  dnsmasqPidsOf,
  freeLocalPort,
  freeSubnet24,
  iptablesLines,
  linkExists,
  listensIn,
  type Subnet24Range,
  subnetPrefix,
} from './helpers/network.js';

const skip = engineSkipReason() ?? debianSkipReason() ?? bridgeNetworkSkipReason() ?? (has('curl') ? null : 'curl is missing (apt-get install curl)');
if (skip) console.warn(`[network-scenario.test] SKIPPED: ${skip}`);

const APT_TIMEOUT = 180_000;
const NET = `scn${process.pid}`;
const APP_MISSING = 'app: tsrun-hello missing\n';
const APP_HELLO = 'app: hello\n';

/** This file's /24s: 10.86.230.0/24..10.86.239.0/24 (tried from a random one, see freeSubnet24). */
const SUBNETS: Subnet24Range = { net: '10.86', first: 230, count: 10 };

/** curl on the host, to 127.0.0.1 only (no proxy: this machine's egress goes nowhere else). */
function curl(url: string): Result {
  const r = spawnSync('curl', ['-sS', '--noproxy', '*', '--max-time', '30', url], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

describe.skipIf(!!skip)('user network: web server by name, published port, exec apt-get install from a repo container (seed scenario)', () => {
  let e: Engine;
  let buildSkip: string | null = null;
  let repo: string;
  let www: string;
  let subnet: string;
  let port: number;
  let bridge: string | undefined;

  const ok = async (args: string[], timeoutMs = 60_000): Promise<Result> => {
    const r = await e.tsrun(args, { timeoutMs });
    expect(r.code, `tsrun ${args.join(' ')}\n${show(r)}`).toBe(0);
    return r;
  };

  /** Until `container` listens on TCP port 80, per its own /proc/net/tcp or tcp6 (httpd binds :: if it can). */
  const listening = (container: string) =>
    until(async () => {
      const r = await e.tsrun(['exec', container, 'sh', '-c', 'cat /proc/net/tcp /proc/net/tcp6 2>/dev/null']);
      return listensIn(r.stdout, 80);
    }, 20_000);

  /** The client: a fresh busybox container on the network fetching http://web/cgi-bin/app by name. */
  const fromClient = () => ok(['run', '--rm', '--network', NET, 'localhost/busybox', 'wget', '-q', '-O', '-', 'http://web/cgi-bin/app']);

  beforeAll(async () => {
    e = makeEngine('tsrun-network-scenario');
    const img = buildDebianImage(tempDir('tsrun-network-scenario-image-'));
    if ('skip' in img) {
      buildSkip = img.skip;
      console.warn(`[network-scenario.test] SKIPPED: ${buildSkip}`);
      return;
    }
    await ok(['load', '-i', img.archive, '-t', 'localhost/debian:12'], 300_000);
    const work = tempDir('tsrun-network-scenario-repo-');
    chmodSync(work, 0o755);
    repo = path.join(work, 'repo');
    makeRepo(work, repo);
    www = path.join(work, 'www');
    mkdirSync(path.join(www, 'cgi-bin'), { recursive: true });
    writeFileSync(
      path.join(www, 'cgi-bin/app'),
      [
        '#!/bin/sh',
        "printf 'Content-Type: text/plain\\r\\n\\r\\n'",
        'if command -v tsrun-hello >/dev/null 2>&1; then echo "app: $(tsrun-hello)"; else echo "app: tsrun-hello missing"; fi',
        '',
      ].join('\n'),
    );
    chmodSync(path.join(www, 'cgi-bin/app'), 0o755);
    subnet = freeSubnet24(SUBNETS);
    port = await freeLocalPort();
  }, 900_000);

  afterAll(async () => {
    if (!e) return;
    const problems = await e.teardown();
    // What the network put on the host beyond the engine's dirs: its bridge, its iptables rules, its dnsmasq.
    if (bridge) {
      if (linkExists(bridge)) problems.push(`bridge left: ${bridge}`);
      const rules = iptablesLines().filter((l) => l.includes(bridge!) || l.includes(subnetPrefix(subnet)));
      if (rules.length) problems.push(`iptables rules left:\n${rules.join('\n')}`);
    }
    const dns = dnsmasqPidsOf(NET);
    if (dns.length) problems.push(`dnsmasq of ${NET} left: pids ${dns.join(' ')}`);
    expect(problems, problems.join('\n')).toEqual([]);
  });

  it('a client reaches the server by name, the host through 127.0.0.1:PORT, and both see the package exec installed', async (ctx) => {
    ctx.skip(!!buildSkip, buildSkip ?? '');

    // The user network.
    await ok(['network', 'create', '--subnet', subnet, NET]);
    const info = JSON.parse((await ok(['network', 'inspect', NET])).stdout) as Array<{
      NetworkInterface: string;
      Subnets: Array<{ Subnet: string; Gateway: string }>;
      DNSEnabled: boolean;
    }>;
    bridge = info[0]!.NetworkInterface;
    expect(info[0]!.Subnets[0]!.Subnet).toBe(subnet);
    expect(info[0]!.DNSEnabled).toBe(true);
    const gateway = info[0]!.Subnets[0]!.Gateway;

    // The apt repository, served by a container on the network (-vv: httpd logs each request).
    await ok([
      'run',
      '-d',
      '--name',
      'repo',
      '--network',
      NET,
      '-v',
      `${repo}:/repo:ro`,
      'localhost/busybox',
      'busybox',
      'httpd',
      '-f',
      '-vv',
      '-p',
      '80',
      '-h',
      '/repo',
    ]);
    // The web server: Debian, busybox httpd with the app's CGI script, published on 127.0.0.1.
    await ok([
      'run',
      '-d',
      '--name',
      'web',
      '--network',
      NET,
      '-p',
      `127.0.0.1:${port}:80`,
      '-v',
      '/bin/busybox:/usr/local/bin/busybox:ro',
      '-v',
      `${www}:/www:ro`,
      'localhost/debian:12',
      'busybox',
      'httpd',
      '-f',
      '-p',
      '80',
      '-h',
      '/www',
    ]);
    expect(await listening('repo'), 'repo: httpd listens on :80').toBe(true);
    expect(await listening('web'), 'web: httpd listens on :80').toBe(true);
    expect((await ok(['port', 'web', '80/tcp'])).stdout).toBe(`127.0.0.1:${port}\n`);
    // Present now, and checked gone after teardown (afterAll): the network's bridge and its dnsmasq.
    expect(linkExists(bridge), `bridge ${bridge}`).toBe(true);
    expect(dnsmasqPidsOf(NET), `dnsmasq of ${NET}`).toHaveLength(1);

    // Names resolve through the network's name server (the gateway).
    const resolv = (await ok(['exec', 'web', 'cat', '/etc/resolv.conf'])).stdout;
    expect(resolv).toMatch(/^search dns\.tsrun$/m);
    expect(resolv).toMatch(new RegExp(`^nameserver ${gateway.replace(/\./g, '\\.')}$`, 'm'));
    const ipOf = async (c: string) => {
      const [rec] = JSON.parse((await ok(['inspect', c])).stdout) as Array<{ NetworkSettings: { Networks: Record<string, { IPAddress: string }> } }>;
      return rec!.NetworkSettings.Networks[NET]?.IPAddress ?? '';
    };
    const webIp = await ipOf('web');
    const repoIp = await ipOf('repo');
    for (const ip of [webIp, repoIp]) expect(isIPv4(ip) && cidrContains(parseCidr(subnet)!, ipToInt(ip)), `${ip} in ${subnet}`).toBe(true);
    expect(repoIp).not.toBe(webIp);
    const lookup = await ok(['run', '--rm', '--network', NET, 'localhost/busybox', 'nslookup', 'web']);
    expect(lookup.stdout).toContain(`Address: ${webIp}`);

    const pidBefore = (await ok(['inspect', '-f', '{{.State.Pid}} {{.State.StartedAt}}', 'web'])).stdout;

    // Before the install: the app runs, the package is missing; by name from the client, and from the host.
    expect((await fromClient()).stdout).toBe(APP_MISSING);
    const hostBefore = curl(`http://127.0.0.1:${port}/cgi-bin/app`);
    expect(hostBefore.code, show(hostBefore)).toBe(0);
    expect(hostBefore.stdout).toBe(APP_MISSING);

    // Install the package into the running server, from http://repo/ only.
    const sources = await ok([
      'exec',
      'web',
      'sh',
      '-c',
      'echo "deb [trusted=yes] http://repo/ ./" > /etc/apt/sources.list; rm -f /etc/apt/sources.list.d/debian.sources; ls -A /etc/apt/sources.list.d',
    ]);
    expect(sources.stdout, 'no other apt source').toBe('');
    const update = await ok(['exec', 'web', 'apt-get', 'update'], APT_TIMEOUT);
    expect(update.stdout).toMatch(/^Get:\d+ http:\/\/repo \.\/ Packages/m);
    expect(update.stdout).not.toMatch(/deb\.debian\.org|security\.debian\.org/);
    const install = await ok(['exec', '-e', 'DEBIAN_FRONTEND=noninteractive', 'web', 'apt-get', 'install', '-y', 'tsrun-hello'], APT_TIMEOUT);
    expect(install.stdout).toMatch(/^Get:1 http:\/\/repo \.\/ tsrun-hello 1\.0/m);
    expect(install.stdout).toMatch(/Setting up tsrun-hello \(1\.0\)/);
    // The repo container served it, to the web container's address on the network.
    const logs = await ok(['logs', 'repo']);
    const repoLog = logs.stdout + logs.stderr;
    expect(repoLog).toContain(webIp);
    expect(repoLog).toContain('/tsrun-hello_1.0_all.deb');

    // After: the same server process (not restarted) now uses the package, for the client and the host.
    expect((await ok(['inspect', '-f', '{{.State.Pid}} {{.State.StartedAt}}', 'web'])).stdout).toBe(pidBefore);
    expect((await fromClient()).stdout).toBe(APP_HELLO);
    const hostAfter = curl(`http://127.0.0.1:${port}/cgi-bin/app`);
    expect(hostAfter.code, show(hostAfter)).toBe(0);
    expect(hostAfter.stdout).toBe(APP_HELLO);

    await ok(['rm', '-f', 'web', 'repo']);
    await ok(['network', 'rm', NET]);
    expect((await ok(['network', 'ls', '-q'])).stdout.split('\n')).not.toContain(NET);
  }, 900_000);
});
