// Networks and their CNI conflists (src/network/conflist.ts) and the IPv4 helpers under
// them (src/network/ipv4.ts): validation, defaults, the free-subnet chooser, the list's shape.
import { describe, expect, it } from 'vitest';
import {
  bridgeNameFor,
  buildConflist,
  checkConflicts,
  chooseFreeSubnet,
  DEFAULT_BRIDGE,
  DEFAULT_SUBNET,
  defaultNetwork,
  defineNetwork,
  networkFromConflist,
  usedCidrsFromIp,
  validateBridgeName,
  validateGateway,
  validateNetworkName,
  validateSubnet,
  validateDnsName,
} from '../../../src/network/conflist.js';
import { cidrsOverlap, formatCidr, intToIp, ipToInt, parseCidr } from '../../../src/network/ipv4.js';
import { TsrunError } from '../../../src/util/errors.js';
import { errorOf } from '../../helpers/error-of.js';

describe('ipv4', () => {
  it('converts both ways, unsigned', () => {
    expect(ipToInt('255.255.255.255')).toBe(0xffffffff);
    expect(intToIp(ipToInt('10.87.0.1'))).toBe('10.87.0.1');
  });
  it('parses CIDRs, noting host bits; a bare address is a /32', () => {
    expect(parseCidr('10.1.2.3/24')).toEqual({ addr: ipToInt('10.1.2.0'), prefix: 24, hostBitsSet: true });
    expect(parseCidr('10.1.2.3')).toMatchObject({ prefix: 32, hostBitsSet: false });
    expect(parseCidr('10.1.2.0/33')).toBeUndefined();
    expect(parseCidr('fd00::/64')).toBeUndefined();
    expect(formatCidr(parseCidr('0.0.0.0/0')!)).toBe('0.0.0.0/0');
  });
  it('overlap is containment either way', () => {
    const c = (s: string) => parseCidr(s)!;
    expect(cidrsOverlap(c('10.0.0.0/8'), c('10.87.3.0/24'))).toBe(true);
    expect(cidrsOverlap(c('10.87.3.0/24'), c('10.0.0.0/8'))).toBe(true);
    expect(cidrsOverlap(c('10.87.0.0/16'), c('10.86.255.0/24'))).toBe(false);
  });
});

describe('validation', () => {
  it("network names: docker's rule, a length cap, and the --network mode words", () => {
    for (const ok of ['a', 'my-net', 'Net_1.2', '0x']) expect(() => validateNetworkName(ok)).not.toThrow();
    for (const bad of ['', '-x', '.x', 'a b', 'a/b', 'a:b', 'x'.repeat(129)]) expect(() => validateNetworkName(bad)).toThrow(TsrunError);
    for (const word of ['none', 'host', 'bridge', 'container']) expect(errorOf(() => validateNetworkName(word)).message).toContain('reserved');
    expect(errorOf(() => validateNetworkName('bridge')).hint).toContain('"tsrun"');
  });
  it('bridge names are interface names (15 characters at most)', () => {
    expect(() => validateBridgeName('tsrun0123456789')).not.toThrow();
    expect(() => validateBridgeName('tsrun01234567890')).toThrow(/1-15 characters/);
    expect(() => validateBridgeName('a/b')).toThrow(TsrunError);
    expect(() => validateBridgeName('..')).toThrow(TsrunError);
  });
  it('subnets: IPv4 CIDR, no host bits (with the fix), /8-/30, not a special range', () => {
    expect(formatCidr(validateSubnet('192.168.5.0/24'))).toBe('192.168.5.0/24');
    const hostBits = errorOf(() => validateSubnet('10.1.2.3/24'));
    expect(hostBits.message).toBe('--subnet "10.1.2.3/24": host bits are set');
    expect(hostBits.hint).toBe('the network is 10.1.2.0/24');
    expect(errorOf(() => validateSubnet('10.1.2.0')).message).toContain('not an IPv4 CIDR');
    expect(errorOf(() => validateSubnet('fd00::/64')).hint).toContain('IPv4 only');
    expect(errorOf(() => validateSubnet('10.0.0.0/31')).message).toContain('/8 to /30');
    expect(errorOf(() => validateSubnet('10.0.0.0/7')).message).toContain('/8 to /30');
    expect(errorOf(() => validateSubnet('127.1.0.0/16')).message).toContain('loopback');
    expect(errorOf(() => validateSubnet('169.254.1.0/24')).message).toContain('link-local');
    expect(errorOf(() => validateSubnet('224.1.0.0/16')).message).toContain('multicast');
  });
  it('gateways: inside the subnet, not its network or broadcast address', () => {
    const s = validateSubnet('10.5.0.0/24');
    expect(validateGateway('10.5.0.254', s)).toBe('10.5.0.254');
    expect(errorOf(() => validateGateway('10.5.1.1', s)).message).toBe('--gateway 10.5.1.1 is not in the subnet 10.5.0.0/24');
    expect(errorOf(() => validateGateway('10.5.0.0', s)).message).toContain('network address');
    expect(errorOf(() => validateGateway('10.5.0.255', s)).message).toContain('broadcast address');
    expect(errorOf(() => validateGateway('10.5.0.x', s)).message).toContain('not an IPv4 address');
  });
});

describe('defaults and choices', () => {
  it('the default network is tsrun on 10.87.0.0/16 (not podman 10.88/16 nor its user pool from 10.89.0.0/24), bridge tsrun0', () => {
    expect(defaultNetwork()).toEqual({ name: 'tsrun', subnet: DEFAULT_SUBNET, gateway: '10.87.0.1', internal: false, bridge: DEFAULT_BRIDGE, dns: false });
    expect(DEFAULT_SUBNET).toBe('10.87.0.0/16');
    for (const podman of ['10.88.0.0/16', '10.89.0.0/24']) expect(cidrsOverlap(parseCidr(DEFAULT_SUBNET)!, parseCidr(podman)!)).toBe(false);
  });
  it('bridge names: tsrun0 for the default network, tsrun + 8 hex of sha256(name) otherwise, stable', () => {
    expect(bridgeNameFor('tsrun')).toBe('tsrun0');
    expect(bridgeNameFor('web')).toMatch(/^tsrun[0-9a-f]{8}$/);
    expect(bridgeNameFor('web')).toBe(bridgeNameFor('web'));
    expect(bridgeNameFor('web')).not.toBe(bridgeNameFor('db'));
    expect(bridgeNameFor('x'.repeat(128)).length).toBeLessThanOrEqual(15);
  });
  it('chooses the first free /24 of 10.86.0.0/16, ignoring default routes', () => {
    expect(chooseFreeSubnet([])).toBe('10.86.0.0/24');
    expect(chooseFreeSubnet(['0.0.0.0/0', '10.86.0.0/24', '10.86.1.7/32', '192.0.2.0/24'])).toBe('10.86.2.0/24');
    expect(chooseFreeSubnet(['10.0.0.0/8'])).toBeUndefined();
    expect(chooseFreeSubnet(['10.0.0.0/16'], [{ base: '10.0.0.0/15', prefix: 16 }])).toBe('10.1.0.0/16');
  });
  it('reads the used CIDRs from `ip -j` route and address output', () => {
    const routes = JSON.stringify([
      { dst: 'default', gateway: '192.0.2.1', dev: 'eth0' },
      { dst: '10.88.0.0/16', dev: 'cni-podman0' },
      { dst: '192.0.2.1', dev: 'eth0' },
      { type: 'local', dst: '127.0.0.0/8', dev: 'lo' },
    ]);
    const addrs = JSON.stringify([
      { ifname: 'lo', addr_info: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8 }] },
      { ifname: 'eth0', addr_info: [{ family: 'inet', local: '192.0.2.2', prefixlen: 24 }] },
    ]);
    expect(usedCidrsFromIp(routes, addrs).sort()).toEqual(['10.88.0.0/16', '127.0.0.0/8', '192.0.2.0/24', '192.0.2.1/32']);
    expect(usedCidrsFromIp('', '')).toEqual([]);
  });
});

describe('defineNetwork', () => {
  it('fills in a free subnet, its first address as gateway, and the hashed bridge', () => {
    expect(defineNetwork({ name: 'web' }, ['10.86.0.0/24'])).toEqual({
      name: 'web',
      subnet: '10.86.1.0/24',
      gateway: '10.86.1.1',
      internal: false,
      bridge: bridgeNameFor('web'),
      dns: true,
    });
  });
  it('keeps what was given, checked', () => {
    expect(defineNetwork({ name: 'i', subnet: '172.30.0.0/16', gateway: '172.30.255.254', internal: true, bridge: 'br-i' })).toEqual({
      name: 'i',
      subnet: '172.30.0.0/16',
      gateway: '172.30.255.254',
      internal: true,
      bridge: 'br-i',
      dns: true,
    });
  });
  it('refuses a subnet in use on the host, a gateway without a subnet, a bad bridge', () => {
    expect(errorOf(() => defineNetwork({ name: 'x', subnet: '10.88.5.0/24' }, ['10.88.0.0/16'])).message).toBe(
      '--subnet 10.88.5.0/24 overlaps 10.88.0.0/16, which is in use',
    );
    expect(errorOf(() => defineNetwork({ name: 'x', gateway: '10.86.0.9' })).message).toBe('--gateway needs --subnet');
    expect(() => defineNetwork({ name: 'x', bridge: 'much-too-long-bridge' })).toThrow(/interface name/);
    expect(errorOf(() => defineNetwork({ name: 'x' }, ['10.86.0.0/16'])).hint).toBe('give one with --subnet');
  });
  it('checkConflicts: one name, one bridge, disjoint subnets', () => {
    const a = defineNetwork({ name: 'a', subnet: '10.86.0.0/24' });
    expect(() => checkConflicts(defineNetwork({ name: 'b', subnet: '10.86.1.0/24' }), [a])).not.toThrow();
    expect(() => checkConflicts({ ...a }, [a])).toThrow(/already exists/);
    expect(() => checkConflicts({ ...defineNetwork({ name: 'c', subnet: '10.86.1.0/24' }), bridge: a.bridge }, [a])).toThrow(/already the bridge/);
    expect(() => checkConflicts(defineNetwork({ name: 'd', subnet: '10.86.0.128/25' }), [a])).toThrow(/overlaps 10.86.0.0\/24 of network "a"/);
  });
});

describe('buildConflist', () => {
  const opts = { ipamDataDir: '/var/lib/tsrun/networks/ipam' };

  it('a bridged network: bridge (gateway, masquerade, hairpin, host-local with a default route), portmap, firewall, tuning', () => {
    expect(buildConflist(defaultNetwork(), opts)).toEqual({
      cniVersion: '1.0.0',
      name: 'tsrun',
      plugins: [
        {
          type: 'bridge',
          bridge: 'tsrun0',
          isGateway: true,
          ipMasq: true,
          hairpinMode: true,
          ipam: {
            type: 'host-local',
            ranges: [[{ subnet: '10.87.0.0/16', gateway: '10.87.0.1' }]],
            routes: [{ dst: '0.0.0.0/0' }],
            dataDir: '/var/lib/tsrun/networks/ipam',
          },
        },
        { type: 'portmap', capabilities: { portMappings: true } },
        { type: 'firewall', backend: 'iptables' },
        { type: 'tuning' },
      ],
    });
  });
  it('an internal network: no masquerade, no default route, no portmap; names still resolve (dnsname)', () => {
    const l = buildConflist(defineNetwork({ name: 'int', subnet: '10.86.9.0/24', internal: true }), opts);
    expect(l.plugins.map((p) => p.type)).toEqual(['bridge', 'firewall', 'tuning', 'dnsname']);
    expect(l.plugins[3]).toEqual({ type: 'dnsname', domainName: 'dns.tsrun', capabilities: { aliases: true } });
    expect(l.plugins[0]).toMatchObject({ ipMasq: false, isGateway: true, ipam: { routes: [] } });
  });
  it('refuses a definition that would not pass network create', () => {
    expect(() => buildConflist({ ...defaultNetwork(), gateway: '10.1.0.1' }, opts)).toThrow(/not in the subnet/);
  });
  it('networkFromConflist reads back what buildConflist wrote', () => {
    for (const net of [defaultNetwork(), defineNetwork({ name: 'int', subnet: '10.86.9.0/24', internal: true, bridge: 'brint' })]) {
      expect(networkFromConflist(JSON.parse(JSON.stringify(buildConflist(net, opts))))).toEqual(net);
    }
  });
  it('networkFromConflist refuses lists of another shape', () => {
    expect(() => networkFromConflist({ cniVersion: '1.0.0', name: 'x', plugins: [{ type: 'macvlan' }] })).toThrow(/not "bridge"/);
    expect(() => networkFromConflist({ cniVersion: '1.0.0', name: 'x', plugins: [{ type: 'bridge', bridge: 'b', ipam: { type: 'dhcp' } }] })).toThrow(
      /host-local/,
    );
  });
});

describe('validateDnsName (--network-alias)', () => {
  it('takes DNS names', () => {
    for (const n of ['web', 'web-1', 'a.b.c', 'X9']) expect(() => validateDnsName(n)).not.toThrow();
  });
  it('refuses what would add lines or names to dnsmasq’s hosts file', () => {
    for (const n of ['a b', 'a\n10.0.0.9\tweb', '-a', 'a-', 'a..b', '', 'a_b']) expect(() => validateDnsName(n)).toThrow(/--network-alias .*not a DNS name/);
  });
});
