import { describe, expect, it } from 'vitest';
import { addHostLine, etcFiles } from '../../../src/engine/etc-files.js';

const hostResolvConf = 'search example.org\nnameserver 127.0.0.53\nnameserver ::1\nnameserver 10.0.0.2\n';

describe('/etc files of a container', () => {
  it('network none: its hostname and name on 127.0.1.1, localhost, the host resolvers minus loopback ones', () => {
    const f = etcFiles({ hostname: 'abc123', name: 'web', network: 'none', hostHosts: '1.2.3.4 hostonly\n', hostResolvConf });
    expect(f['/etc/hostname']).toBe('abc123\n');
    expect(f['/etc/hosts']).toContain('127.0.0.1\tlocalhost');
    expect(f['/etc/hosts']).toContain('127.0.1.1\tabc123 web');
    expect(f['/etc/hosts']).not.toContain('hostonly');
    expect(f['/etc/resolv.conf']).toContain('nameserver 10.0.0.2');
    expect(f['/etc/resolv.conf']).toContain('search example.org');
    expect(f['/etc/resolv.conf']).not.toMatch(/nameserver (127|::1)/);
  });
  it('network host: the host’s hosts and resolv.conf as they are', () => {
    const f = etcFiles({ hostname: 'h', name: 'h', network: 'host', hostHosts: '1.2.3.4 hostonly\n', hostResolvConf });
    expect(f['/etc/hosts']).toBe('1.2.3.4 hostonly\n');
    expect(f['/etc/resolv.conf']).toBe(hostResolvConf);
  });
  it('a hostname equal to the name is listed once', () => {
    expect(etcFiles({ hostname: 'x', name: 'x', network: 'none' })['/etc/hosts']).toContain('127.0.1.1\tx\n');
  });
});

describe('/etc files on a bridge network', () => {
  const attached = { addresses: ['10.86.0.5', '10.87.0.9'], gateway: '10.86.0.1', nameservers: ['10.86.0.1'], search: ['dns.tsrun'] };
  it('before the first start (no address yet): names on 127.0.1.1, host-gateway lines left for the start', () => {
    const f = etcFiles({ hostname: 'h', name: 'web', network: 'bridge', addHosts: ['gw:host-gateway', 'db:10.9.9.9'], hostResolvConf });
    expect(f['/etc/hosts']).toContain('127.0.1.1\th web');
    expect(f['/etc/hosts']).toContain('10.9.9.9\tdb');
    expect(f['/etc/hosts']).not.toContain('gw');
  });
  it('attached: its own address with its names and aliases, the host as host.containers.internal, --add-host', () => {
    const f = etcFiles({ hostname: 'h', name: 'web', aliases: ['www'], network: 'bridge', attached, addHosts: ['gw:host-gateway'], hostResolvConf });
    expect(f['/etc/hosts']).toContain('10.86.0.5\th web www\n');
    expect(f['/etc/hosts']).toContain('10.86.0.1\thost.containers.internal\n');
    expect(f['/etc/hosts']).toContain('10.86.0.1\tgw\n');
  });
  it('resolv.conf: the network’s name server and search domain replace the host’s', () => {
    const r = etcFiles({ hostname: 'h', name: 'w', network: 'bridge', attached, hostResolvConf })['/etc/resolv.conf'];
    expect(r).toContain('search dns.tsrun\n');
    expect(r).toContain('nameserver 10.86.0.1\n');
    expect(r).not.toContain('10.0.0.2');
    expect(r).not.toContain('example.org');
  });
  it('the default network (no name server of its own): the host’s resolvers minus loopback ones', () => {
    const r = etcFiles({ hostname: 'h', name: 'w', network: 'bridge', attached: { ...attached, nameservers: [], search: [] }, hostResolvConf })[
      '/etc/resolv.conf'
    ];
    expect(r).toContain('nameserver 10.0.0.2');
    expect(r).toContain('search example.org');
    expect(r).not.toMatch(/nameserver (127|::1)/);
  });
  it('--dns, --dns-search and --dns-option win over the network and the host', () => {
    const r = etcFiles({
      hostname: 'h',
      name: 'w',
      network: 'bridge',
      attached,
      dns: ['10.1.2.3'],
      dnsSearch: ['corp'],
      dnsOptions: ['ndots:2'],
      hostResolvConf,
    })['/etc/resolv.conf'];
    expect(r).toContain('nameserver 10.1.2.3\n');
    expect(r).not.toContain('nameserver 10.86.0.1');
    expect(r).toContain('search corp\n');
    expect(r).toContain('options ndots:2\n');
  });
  it('a bad --add-host is refused with the flag', () => {
    expect(() => addHostLine('nocolon')).toThrow(/--add-host nocolon: expected NAME:IP/);
    expect(() => addHostLine('db:not-an-ip')).toThrow(/"not-an-ip" is not an IP address/);
    expect(() => addHostLine('gw:host-gateway')).toThrow(/host-gateway needs a bridge network/);
    expect(addHostLine('db:[::1]')).toBe('::1\tdb');
  });
});
