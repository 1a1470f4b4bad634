// Published ports and addresses over a container's life: -P from the image's EXPOSE, a host
// port taken between create and start, what a stop gives back and a start takes again, and
// `network connect` of a stopped container taking effect at its next start. Traffic only to
// 127.0.0.1 and to the test's own network's addresses.
import http from 'node:http';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Engine, engineSkipReason, makeEngine, type Result, show, until } from './helpers/engine.js';
import { bridgeNetworkSkipReason, freeLocalPort, freeSubnet24, hostListensOn, listensIn } from './helpers/network.js';

const skip = engineSkipReason() ?? bridgeNetworkSkipReason();
if (skip) console.warn(`[engine-ports.test] SKIPPED: ${skip}`);

const IPAM_DIR = '/run/tsrun/ipam';

function get(port: number, p: string): Promise<string> {
  return getFrom('127.0.0.1', port, p);
}

/** GET http://host:port/p from this (the host's) network namespace. */
function getFrom(host: string, port: number, p: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path: p, timeout: 10_000 }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(body));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** host-local's allocation files of `network` that hold container `id`. */
function ipamFilesOf(network: string, id: string): string[] {
  const dir = path.join(IPAM_DIR, network);
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => {
    try {
      return readFileSync(path.join(dir, f), 'utf8').split('\n')[0]!.trim() === id;
    } catch {
      return false;
    }
  });
}

describe.skipIf(!!skip)('tsrun published ports and addresses over a container’s life', () => {
  let e: Engine;
  const ok = async (args: string[]): Promise<Result> => {
    const r = await e.tsrun(args);
    expect(r.code, `tsrun ${args.join(' ')}\n${show(r)}`).toBe(0);
    return r;
  };
  const idOf = async (name: string) => (await ok(['inspect', '-f', '{{.Id}}', name])).stdout.trim();
  /** Wait until httpd in the container listens (its /proc/net/tcp, read through exec). */
  const listening = (name: string) =>
    until(async () => {
      const r = await e.tsrun(['exec', name, 'cat', '/proc/net/tcp', '/proc/net/tcp6']);
      return r.code === 0 && listensIn(r.stdout, 80);
    }, 15_000);

  beforeAll(() => {
    e = makeEngine('tsrun-engine-ports');
  });
  afterAll(async () => {
    if (e) expect(await e.teardown()).toEqual([]);
  });

  it('-P publishes the image’s EXPOSE on free host ports, shown by port and reachable on 127.0.0.1', async () => {
    await ok(['create', '--name', 'exp-src', 'busybox', 'true']);
    await ok(['commit', '-c', 'EXPOSE 80/tcp', '-c', 'EXPOSE 53/udp', 'exp-src', 'localhost/exposed:1']);
    await ok(['rm', 'exp-src']);
    await ok(['run', '-d', '--name', 'exp', '-P', 'localhost/exposed:1', 'httpd', '-f', '-p', '80', '-h', '/etc']);
    try {
      const lines = (await ok(['port', 'exp'])).stdout.trim().split('\n').sort();
      expect(lines).toHaveLength(2);
      expect(lines[0]).toMatch(/^53\/udp -> 0\.0\.0\.0:\d+$/);
      expect(lines[1]).toMatch(/^80\/tcp -> 0\.0\.0\.0:\d+$/);
      const port = Number(lines[1]!.split(':')[1]);
      expect(port).toBeGreaterThanOrEqual(32768);
      expect(await listening('exp')).toBe(true);
      const id = await idOf('exp');
      expect(await get(port, '/hostname')).toBe(`${id.slice(0, 12)}\n`);
    } finally {
      await ok(['rm', '-f', 'exp']);
      await ok(['rmi', 'localhost/exposed:1']);
    }
  });

  it('a host port taken between create and start: the start is refused, saying by whom, and leaves nothing', async () => {
    const port = await freeLocalPort();
    await ok(['create', '--name', 'late', '-p', `127.0.0.1:${port}:80`, 'busybox', 'httpd', '-f', '-p', '80']);
    const id = await idOf('late');
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
    try {
      expect(hostListensOn(port)).toBe(true);
      const r = await e.tsrun(['start', 'late']);
      expect(r.code, show(r)).not.toBe(0);
      expect(r.stderr).toMatch(new RegExp(`host port ${port}/tcp is in use by a process on the host`));
      expect((await ok(['inspect', '-f', '{{.State.Status}}', 'late'])).stdout.trim()).toBe('created');
      expect(ipamFilesOf('tsrun', id)).toEqual([]);
      expect(existsSync(path.join(e.runRoot, 'netns', id))).toBe(false);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
    // freed again: now it starts and serves
    await ok(['start', 'late']);
    expect(await listening('late')).toBe(true);
    expect(await get(port, '/')).toBeDefined();
    await ok(['rm', '-f', 'late']);
  });

  it('a stop gives the address back (the monitor’s clean-up), a start takes one again with the same ports', async () => {
    const port = await freeLocalPort();
    await ok(['run', '-d', '--name', 'cycle', '-p', `127.0.0.1:${port}:80`, 'busybox', 'httpd', '-f', '-p', '80', '-h', '/etc']);
    const id = await idOf('cycle');
    expect(ipamFilesOf('tsrun', id)).toHaveLength(1);
    await ok(['stop', '-t', '1', 'cycle']);
    expect(await until(() => ipamFilesOf('tsrun', id).length === 0 && !existsSync(path.join(e.runRoot, 'netns', id)), 15_000)).toBe(true);
    expect((await ok(['inspect', '-f', '{{.NetworkSettings.IPAddress}}', 'cycle'])).stdout.trim()).toBe('');
    await ok(['start', 'cycle']);
    expect(ipamFilesOf('tsrun', id)).toHaveLength(1);
    const ip = (await ok(['inspect', '-f', '{{.NetworkSettings.IPAddress}}', 'cycle'])).stdout.trim();
    expect(ip).toMatch(/^10\.87\./);
    const hosts = (await ok(['exec', 'cycle', 'cat', '/etc/hosts'])).stdout;
    expect(hosts).toContain(`${ip}\t${id.slice(0, 12)} cycle`);
    expect(await listening('cycle')).toBe(true);
    expect(await get(port, '/hostname')).toBe(`${id.slice(0, 12)}\n`);
    await ok(['restart', '-t', '1', 'cycle']);
    expect(await listening('cycle')).toBe(true);
    expect(await get(port, '/hostname')).toBe(`${id.slice(0, 12)}\n`);
    expect(ipamFilesOf('tsrun', id)).toHaveLength(1);
    await ok(['rm', '-f', 'cycle']);
    expect(ipamFilesOf('tsrun', id)).toEqual([]);
  });

  it('network connect of a stopped container: recorded, and attached at its next start', async () => {
    const net1 = `ports${process.pid}`;
    const subnet = freeSubnet24({ net: '10.86', first: 240, count: 10 });
    await ok(['network', 'create', '--subnet', subnet, net1]);
    try {
      await ok(['create', '--name', 'later', 'busybox', 'sleep', '60']);
      await ok(['network', 'connect', '--alias', 'late-alias', net1, 'later']);
      expect((await ok(['inspect', '-f', '{{range .NetworkSettings.Networks}}{{.InterfaceName}}/{{end}}', 'later'])).stdout.trim()).toBe('//');
      await ok(['start', 'later']);
      const addrs = (await ok(['exec', 'later', 'ip', '-4', '-o', 'addr'])).stdout;
      expect(addrs).toMatch(/eth0\s+inet 10\.87\./);
      expect(addrs).toMatch(new RegExp(`eth1\\s+inet ${subnet.replace(/0\/24$/, '').replace(/\./g, '\\.')}`));
      const probe = await e.tsrun(['run', '--rm', '--network', net1, 'busybox', 'nslookup', 'late-alias']);
      expect(probe.code, show(probe)).toBe(0);
      await ok(['rm', '-f', 'later']);
    } finally {
      await e.tsrun(['rm', '-f', 'later']);
      await ok(['network', 'rm', net1]);
    }
  });

  it('a published port answers on the host’s own addresses too (here: the test network’s gateway, an address of this host)', async () => {
    const netName = `hostaddr${process.pid}`;
    const subnet = freeSubnet24({ net: '10.86', first: 240, count: 10 });
    await ok(['network', 'create', '--subnet', subnet, netName]);
    const port = await freeLocalPort();
    try {
      await ok(['run', '-d', '--name', 'pubhost', '--network', netName, '-p', `${port}:80`, 'busybox', 'httpd', '-f', '-p', '80', '-h', '/etc']);
      const id = await idOf('pubhost');
      const gw = (await ok(['network', 'inspect', '-f', '{{range .Subnets}}{{.Gateway}}{{end}}', netName])).stdout.trim();
      expect(gw).toBe(subnet.replace(/0\/24$/, '1'));
      expect(await listening('pubhost')).toBe(true);
      expect(await getFrom(gw, port, '/hostname')).toBe(`${id.slice(0, 12)}\n`);
      expect(await get(port, '/hostname')).toBe(`${id.slice(0, 12)}\n`);
    } finally {
      await e.tsrun(['rm', '-f', 'pubhost']);
      await ok(['network', 'rm', netName]);
    }
  });

  it('build --network NAME: a RUN step reaches a container of that network by name', async () => {
    const netName = `bld${process.pid}`;
    const subnet = freeSubnet24({ net: '10.86', first: 240, count: 10 });
    await ok(['network', 'create', '--subnet', subnet, netName]);
    const ctxDir = mkdtempSync(path.join(os.tmpdir(), 'tsrun-build-net-'));
    try {
      await ok(['run', '-d', '--name', 'srv', '--network', netName, 'busybox', 'httpd', '-f', '-p', '80', '-h', '/etc']);
      const id = await idOf('srv');
      expect(await listening('srv')).toBe(true);
      writeFileSync(path.join(ctxDir, 'Containerfile'), 'FROM localhost/busybox:latest\nRUN wget -qO /got http://srv/hostname\nCMD ["cat", "/got"]\n');
      await ok(['build', '--network', netName, '-t', 'localhost/fetched:1', ctxDir]);
      const r = await ok(['run', '--rm', '--network', 'none', 'localhost/fetched:1']);
      expect(r.stdout).toBe(`${id.slice(0, 12)}\n`);
    } finally {
      await e.tsrun(['rm', '-f', 'srv']);
      await e.tsrun(['rmi', 'localhost/fetched:1']);
      await ok(['network', 'rm', netName]);
      rmSync(ctxDir, { recursive: true, force: true });
    }
  });

  it('a foreground run without --rm gives its address and namespace back when it exits', async () => {
    const r = await e.tsrun(['run', '--name', 'fg', 'busybox', 'sh', '-c', 'ip -4 -o addr show eth0']);
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toMatch(/inet 10\.87\./);
    const id = await idOf('fg');
    expect(ipamFilesOf('tsrun', id)).toEqual([]);
    expect(existsSync(path.join(e.runRoot, 'netns', id))).toBe(false);
    expect(readdirSync(path.join(e.runRoot, 'networks', 'cache')).filter((f) => f.includes(id))).toEqual([]);
    await ok(['rm', 'fg']);
  });

  it('a host port tsrun chose (-p 80) and someone took meanwhile is chosen again at the next start', async () => {
    await ok(['create', '--name', 'repick', '-p', '127.0.0.1::80', 'busybox', 'httpd', '-f', '-p', '80', '-h', '/etc']);
    const first = Number((await ok(['port', 'repick', '80/tcp'])).stdout.trim().split(':')[1]);
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(first, '127.0.0.1', () => r()));
    try {
      await ok(['start', 'repick']);
      const second = Number((await ok(['port', 'repick', '80/tcp'])).stdout.trim().split(':')[1]);
      expect(second).not.toBe(first);
      expect(await listening('repick')).toBe(true);
      const id = await idOf('repick');
      expect(await get(second, '/hostname')).toBe(`${id.slice(0, 12)}\n`);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
      await ok(['rm', '-f', 'repick']);
    }
  });
});
