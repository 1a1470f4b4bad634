// -p / -P parsing and host port choice (src/network/ports.ts), with no socket: the "is this
// port free" question is a predicate the tests answer from a set.
import { describe, expect, it } from 'vitest';
import { assignHostPorts, formatPortMapping, type PortIsFree, parsePublish, publishAll } from '../../../src/network/ports.js';
import { errorOf } from '../../helpers/error-of.js';

const strip = (specs: ReturnType<typeof parsePublish>) => specs.map(({ source: _s, ...rest }) => rest);

describe('parsePublish', () => {
  it('containerPort alone: a chosen host port on every address, tcp by default', () => {
    expect(strip(parsePublish('80'))).toEqual([{ hostIP: '', hostPort: 0, containerPort: 80, protocol: 'tcp' }]);
  });
  it('hostPort:containerPort/proto', () => {
    expect(strip(parsePublish('8080:80/udp'))).toEqual([{ hostIP: '', hostPort: 8080, containerPort: 80, protocol: 'udp' }]);
    expect(strip(parsePublish('8080:80/TCP'))[0]!.protocol).toBe('tcp');
  });
  it('hostIP:hostPort:containerPort, and 0.0.0.0 means every address (no hostIP for portmap)', () => {
    expect(strip(parsePublish('127.0.0.1:8080:80'))).toEqual([{ hostIP: '127.0.0.1', hostPort: 8080, containerPort: 80, protocol: 'tcp' }]);
    expect(parsePublish('0.0.0.0:8080:80')[0]!.hostIP).toBe('');
  });
  it('hostIP::containerPort: a chosen port on that address', () => {
    expect(strip(parsePublish('127.0.0.1::53/udp'))).toEqual([{ hostIP: '127.0.0.1', hostPort: 0, containerPort: 53, protocol: 'udp' }]);
  });
  it('ranges of the same length map port by port', () => {
    expect(strip(parsePublish('8000-8001:80-81'))).toEqual([
      { hostIP: '', hostPort: 8000, containerPort: 80, protocol: 'tcp' },
      { hostIP: '', hostPort: 8001, containerPort: 81, protocol: 'tcp' },
    ]);
    expect(parsePublish('80-82').map((s) => [s.hostPort, s.containerPort])).toEqual([
      [0, 80],
      [0, 81],
      [0, 82],
    ]);
  });
  it('a host range for one container port: one free port of the range (docker)', () => {
    expect(strip(parsePublish('8000-8010:80'))).toEqual([
      { hostIP: '', hostPort: 0, hostRange: { first: 8000, last: 8010 }, containerPort: 80, protocol: 'tcp' },
    ]);
  });
  it('host port 0 is "choose one"', () => {
    expect(parsePublish('0:80')[0]!.hostPort).toBe(0);
  });
  it('keeps where each spec came from, for later errors', () => {
    expect(parsePublish('8080:80', '--publish')[0]!.source).toBe('--publish 8080:80');
  });
  it.each([
    ['', 'empty'],
    ['abc', 'container port "abc" is not a port'],
    ['8080:', 'no container port'],
    ['0', 'container port 0 is out of range'],
    ['70000:80', 'host port 70000 is out of range'],
    ['80:65536', 'out of range'],
    ['90-80:80-90', 'ends before it starts'],
    ['8000-8002:80-81', 'the host range has 3 ports and the container range 2'],
    ['0:80-81', 'needs a single container port'],
    ['80/sctp', 'protocol "sctp" is not tcp or udp'],
    ['1.2.3:80:80', 'host address "1.2.3" is not an IPv4 address'],
    ['010.0.0.1:80:80', 'is not an IPv4 address'],
    ['[::1]:80:80', 'IPv6 host addresses are not supported'],
    ['a:b:c:d', 'too many ":"'],
  ])('refuses %j, naming the flag (%s)', (value, why) => {
    const e = errorOf(() => parsePublish(value));
    expect(e.code).toBe('ERR_INVALID_ARGUMENT');
    expect(e.message).toContain(`-p ${JSON.stringify(value)}`);
    expect(e.message).toContain(why);
  });
});

describe('publishAll (-P)', () => {
  it('every exposed port on a chosen host port, sorted, tcp when no protocol', () => {
    const specs = publishAll({ '53/udp': {}, '80/tcp': {}, '443': {}, '53/tcp': {} });
    expect(specs.map((s) => `${s.containerPort}/${s.protocol}:${s.hostPort}`)).toEqual(['53/tcp:0', '53/udp:0', '80/tcp:0', '443/tcp:0']);
  });
  it('expands a range key and skips what -p already publishes (docker: an explicit binding wins)', () => {
    const explicit = parsePublish('8080:80');
    expect(publishAll({ '80/tcp': {}, '8000-8002/tcp': {} }, explicit).map((s) => s.containerPort)).toEqual([8000, 8001, 8002]);
  });
  it('nothing exposed, nothing published', () => {
    expect(publishAll(undefined)).toEqual([]);
  });
  it('a bad key is named with -P', () => {
    const e = errorOf(() => publishAll({ '80/sctp': {} }));
    expect(e.message).toContain('-P');
    expect(e.message).toContain('80/sctp');
  });
});

describe('assignHostPorts', () => {
  const allFree: PortIsFree = () => true;

  it('keeps fixed ports, untested, in the order given', () => {
    const asked: number[] = [];
    const out = assignHostPorts([...parsePublish('8080:80'), ...parsePublish('127.0.0.1:53:53/udp')], (p) => {
      asked.push(p);
      return true;
    });
    expect(out).toEqual([
      { hostPort: 8080, containerPort: 80, protocol: 'tcp', hostIP: '' },
      { hostPort: 53, containerPort: 53, protocol: 'udp', hostIP: '127.0.0.1' },
    ]);
    expect(asked).toEqual([]);
  });
  it('chooses from a random start of the range, wrapping, skipping ports the predicate refuses', () => {
    const busy = new Set([40000, 40001]);
    const out = assignHostPorts(parsePublish('80'), (p) => !busy.has(p), { range: { first: 39990, last: 40001 }, random: () => 10 / 12 });
    // start at 39990 + 10 = 40000 (busy), 40001 (busy), wraps to 39990.
    expect(out[0]!.hostPort).toBe(39990);
  });
  it('takes the first free port of a given host range (docker)', () => {
    const out = assignHostPorts(parsePublish('8000-8010:80'), (p) => p >= 8003, { random: () => 0.99 });
    expect(out[0]).toEqual({ hostPort: 8003, containerPort: 80, protocol: 'tcp', hostIP: '' });
  });
  it('never chooses a port this container already publishes, fixed ones included', () => {
    const out = assignHostPorts([...parsePublish('81'), ...parsePublish('5000:80')], allFree, { range: { first: 5000, last: 5001 }, random: () => 0 });
    expect(out.map((m) => m.hostPort)).toEqual([5001, 5000]);
  });
  it('the same port on another protocol or another specific address is no clash', () => {
    const out = assignHostPorts([...parsePublish('127.0.0.1:8080:80'), ...parsePublish('127.0.0.2:8080:81'), ...parsePublish('8080:80/udp')], allFree);
    expect(out.map(formatPortMapping)).toEqual(['127.0.0.1:8080->80/tcp', '127.0.0.2:8080->81/tcp', '0.0.0.0:8080->80/udp']);
  });
  it('refuses two claims of one host port (portmap would let the last win), every-address overlapping a specific one', () => {
    expect(errorOf(() => assignHostPorts([...parsePublish('8080:80'), ...parsePublish('8080:81')], allFree)).message).toContain(
      '-p 8080:81: host port 0.0.0.0:8080/tcp is already published to container port 80/tcp',
    );
    expect(() => assignHostPorts([...parsePublish('127.0.0.1:8080:80'), ...parsePublish('8080:81')], allFree)).toThrow(/already published/);
  });
  it('says which -p found no free port', () => {
    const e = errorOf(() => assignHostPorts(parsePublish('127.0.0.1::80'), () => false, { range: { first: 1000, last: 1001 } }));
    expect(e.message).toBe('-p 127.0.0.1::80: no free host port in 1000-1001 for 80/tcp');
  });
  it('the same container port twice on chosen ports gets two different host ports', () => {
    const out = assignHostPorts([...parsePublish('80'), ...parsePublish('80')], allFree, { range: { first: 2000, last: 2001 }, random: () => 0 });
    expect(out.map((m) => m.hostPort)).toEqual([2000, 2001]);
  });
});
