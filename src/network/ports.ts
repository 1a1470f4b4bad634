// Published ports: docker's `-p` and `-P`, turned into the CNI portmap plugin's
// `portMappings` capability ({hostPort, containerPort, protocol, hostIP}, CONVENTIONS.md).
//
// Pure: nothing here opens a socket. Parsing (`parsePublish`, `publishAll`) only says what was
// asked; choosing a host port for a spec that left it open (`-p 80`, `-p 127.0.0.1::80`,
// `-P`, `-p 8000-8010:80`) is `assignHostPorts`, which asks a predicate whether a port is
// free, so the engine can pass a real bind test and the tests a set.
//
// Why the split: the portmap plugin does not reserve a host port (its README: "it does not
// perform any kind of reservation of the actual host port ... last-write-wins"), so whether
// a port is free is the engine's question to answer at start time, against the live host.
import { isIPv4 } from './ipv4.js';
import { TsrunError } from '../util/errors.js';

export type PortProtocol = 'tcp' | 'udp';

/** One entry of the portmap plugin's `runtimeConfig.portMappings`. */
export interface PortMapping {
  hostPort: number;
  containerPort: number;
  protocol: PortProtocol;
  /** '' = every local address (portmap omits the `-d` match); else one IPv4 address. */
  hostIP: string;
}

/**
 * What one `-p` (or one `-P` port) asks for, before host ports are chosen. A `-p` with a
 * range yields one spec per port. `hostPort` 0 means "choose one"; with `hostRange` the
 * choice is limited to that range (`-p 8000-8010:80`, docker's rule).
 */
export interface PortSpec {
  hostIP: string;
  hostPort: number;
  hostRange?: { first: number; last: number };
  containerPort: number;
  protocol: PortProtocol;
  /** The flag and value it came from, for error messages: `-p 8080:80`. */
  source: string;
}

function bad(flag: string, value: string, why: string, hint?: string): TsrunError {
  return new TsrunError('ERR_INVALID_ARGUMENT', `${flag} ${JSON.stringify(value)}: ${why}`, hint === undefined ? {} : { hint });
}

const PUBLISH_HINT = 'the forms are [hostIP:]hostPort:containerPort[/tcp|udp], hostIP::containerPort, containerPort, and ranges (8000-8001:80-81)';

/** A port or a range "a-b" (1-65535; `allowZero` for a host port "0", docker's "choose one"). */
function parseRange(flag: string, value: string, text: string, what: string, allowZero: boolean): { first: number; last: number } {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  if (m === null) throw bad(flag, value, `${what} "${text}" is not a port or a range of ports`, PUBLISH_HINT);
  const first = Number(m[1]);
  const last = m[2] === undefined ? first : Number(m[2]);
  const min = allowZero && m[2] === undefined ? 0 : 1;
  if (first < min || first > 65535 || last < min || last > 65535) throw bad(flag, value, `${what} ${text} is out of range (1-65535)`);
  if (last < first) throw bad(flag, value, `${what} range ${text} ends before it starts`);
  return { first, last };
}

function parseHostIP(flag: string, value: string, text: string): string {
  // docker writes IPv6 host addresses in brackets; the networks here are IPv4 only, so an
  // IPv6 binding could never reach the container: refuse it rather than publish nothing.
  if (text.startsWith('[') || text.includes(':')) throw bad(flag, value, 'IPv6 host addresses are not supported (tsrun networks are IPv4)');
  if (!isIPv4(text)) throw bad(flag, value, `host address "${text}" is not an IPv4 address`);
  // 0.0.0.0 is docker's spelling of "every address"; portmap spells it as no hostIP at all.
  return text === '0.0.0.0' ? '' : text;
}

function parseProtocol(flag: string, value: string, text: string | undefined): PortProtocol {
  if (text === undefined) return 'tcp';
  const p = text.toLowerCase();
  if (p === 'tcp' || p === 'udp') return p;
  throw bad(flag, value, `protocol "${text}" is not tcp or udp`);
}

/**
 * Parse one `-p`/`--publish` value (docker's grammar; `flag` names the flag in errors):
 *   containerPort[/proto]                      host port chosen, every address
 *   hostPort:containerPort[/proto]             every address
 *   hostIP:hostPort:containerPort[/proto]
 *   hostIP::containerPort[/proto]              host port chosen, on hostIP
 * Each port may be a range "a-b". A host range must be as long as the container range, or
 * the container side a single port, which then gets one free port of the host range.
 */
export function parsePublish(value: string, flag = '-p'): PortSpec[] {
  const source = `${flag} ${value}`;
  if (value === '') throw bad(flag, value, 'empty', PUBLISH_HINT);
  const slash = value.lastIndexOf('/');
  const main = slash === -1 ? value : value.slice(0, slash);
  const protocol = parseProtocol(flag, value, slash === -1 ? undefined : value.slice(slash + 1));

  // Split from the right: the container port is last, the host port before it, and what
  // is left is the host address (IPv4 has no colon; an IPv6 one is refused above).
  const fields = main.split(':');
  let hostIPText: string | undefined;
  let hostText: string | undefined;
  let containerText: string;
  if (fields.length === 1) {
    containerText = fields[0]!;
  } else if (fields.length === 2) {
    [hostText, containerText] = fields as [string, string];
  } else if (fields.length === 3) {
    [hostIPText, hostText, containerText] = fields as [string, string, string];
  } else {
    // "[::1]:80:80" lands here; name the real reason rather than "too many colons".
    if (main.startsWith('[')) throw bad(flag, value, 'IPv6 host addresses are not supported (tsrun networks are IPv4)');
    throw bad(flag, value, 'too many ":"', PUBLISH_HINT);
  }
  if (containerText === '') throw bad(flag, value, 'no container port', PUBLISH_HINT);

  const hostIP = hostIPText === undefined ? '' : parseHostIP(flag, value, hostIPText);
  const ctr = parseRange(flag, value, containerText, 'container port', false);
  const count = ctr.last - ctr.first + 1;

  // No host port (absent or empty): each container port gets a chosen one.
  if (hostText === undefined || hostText === '') {
    return range(ctr.first, ctr.last).map((p) => ({ hostIP, hostPort: 0, containerPort: p, protocol, source }));
  }
  const host = parseRange(flag, value, hostText, 'host port', true);
  const hostCount = host.last - host.first + 1;
  if (host.first === 0) {
    // "-p 0:80": docker's explicit "any host port".
    if (count !== 1) throw bad(flag, value, 'host port 0 ("choose one") needs a single container port');
    return [{ hostIP, hostPort: 0, containerPort: ctr.first, protocol, source }];
  }
  if (hostCount === count) {
    return range(ctr.first, ctr.last).map((p, i) => ({ hostIP, hostPort: host.first + i, containerPort: p, protocol, source }));
  }
  if (count === 1) {
    // docker: "-p 8000-8010:80" publishes 80 on the first free port of the range.
    return [{ hostIP, hostPort: 0, hostRange: host, containerPort: ctr.first, protocol, source }];
  }
  throw bad(
    flag,
    value,
    `the host range has ${hostCount} ports and the container range ${count}`,
    'give ranges of the same length, or a single container port',
  );
}

function range(first: number, last: number): number[] {
  const out: number[] = [];
  for (let p = first; p <= last; p++) out.push(p);
  return out;
}

/**
 * `-P`/`--publish-all`: every port of the image's ExposedPorts ("80/tcp", "53/udp", "80",
 * "8000-8010/tcp" as some builders write a range) that `explicit` (the `-p` specs) does not
 * already publish, on a chosen host port of every address. Docker's rule: an explicit
 * binding for a port replaces -P's for that port and protocol. Sorted, so the order does not
 * depend on the JSON object's key order.
 */
export function publishAll(exposed: Record<string, unknown> | undefined, explicit: readonly PortSpec[] = [], flag = '-P'): PortSpec[] {
  const taken = new Set(explicit.map((s) => `${s.containerPort}/${s.protocol}`));
  const out: PortSpec[] = [];
  const seen = new Set<string>();
  for (const key of Object.keys(exposed ?? {})) {
    const m = /^([^/]+)(?:\/(.*))?$/.exec(key);
    const what = `image ExposedPorts ${JSON.stringify(key)}`;
    if (m === null) throw bad(flag, what, 'not a port');
    const protocol = parseProtocol(flag, what, m[2]);
    const r = parseRange(flag, what, m[1]!, 'port', false);
    for (const p of range(r.first, r.last)) {
      const k = `${p}/${protocol}`;
      if (taken.has(k) || seen.has(k)) continue;
      seen.add(k);
      out.push({ hostIP: '', hostPort: 0, containerPort: p, protocol, source: `${flag} (${p}/${protocol})` });
    }
  }
  return out.sort((a, b) => a.containerPort - b.containerPort || a.protocol.localeCompare(b.protocol));
}

/** Whether `hostIP:port/protocol` can be published ('' = every address). */
export type PortIsFree = (port: number, protocol: PortProtocol, hostIP: string) => boolean;

export interface AssignOptions {
  /**
   * Where chosen ports come from when a spec gives no range. Default: 32768-60999, Linux's
   * default ip_local_port_range (net.ipv4.ip_local_port_range), as podman and docker do.
   */
  range?: { first: number; last: number };
  /** [0, 1): where in the range the search starts (default Math.random), so concurrent starts rarely collide. */
  random?: () => number;
}

function conflicts(a: { hostIP: string; hostPort: number; protocol: PortProtocol }, b: { hostIP: string; hostPort: number; protocol: PortProtocol }): boolean {
  // Every-address ('') overlaps every specific address, as a socket bound to 0.0.0.0 would.
  return a.hostPort === b.hostPort && a.protocol === b.protocol && (a.hostIP === b.hostIP || a.hostIP === '' || b.hostIP === '');
}

/**
 * Turn specs into portmap entries, choosing each open host port: the first port, from a
 * random start and wrapping, that `isFree` accepts and no other entry of this container
 * uses. Fixed host ports are not tested with `isFree` (the user named them; the engine may
 * check them itself and say so); two entries that claim the same host port, protocol and
 * address are refused, since portmap would silently let the last one win.
 */
export function assignHostPorts(specs: readonly PortSpec[], isFree: PortIsFree, opts: AssignOptions = {}): PortMapping[] {
  const defaultRange = opts.range ?? { first: 32768, last: 60999 };
  const random = opts.random ?? Math.random;
  // Fixed ports first, so a chosen port never takes one the user named later in the list;
  // results are kept at their spec's index, so the output is in the order given.
  const result: (PortMapping | undefined)[] = specs.map(() => undefined);
  const placed = (): PortMapping[] => result.filter((m): m is PortMapping => m !== undefined);

  specs.forEach((s, i) => {
    if (s.hostPort === 0) return;
    const m: PortMapping = { hostPort: s.hostPort, containerPort: s.containerPort, protocol: s.protocol, hostIP: s.hostIP };
    const clash = placed().find((o) => conflicts(o, m));
    if (clash !== undefined) {
      throw new TsrunError(
        'ERR_INVALID_ARGUMENT',
        `${s.source}: host port ${describe(m)} is already published to container port ${clash.containerPort}/${clash.protocol}`,
      );
    }
    result[i] = m;
  });
  specs.forEach((s, i) => {
    if (s.hostPort !== 0) return;
    const r = s.hostRange ?? defaultRange;
    const size = r.last - r.first + 1;
    // A given range is searched from its start (docker takes the first free one); the
    // default range from a random point, so two containers started together rarely race
    // for the same port.
    const start = s.hostRange === undefined ? Math.min(size - 1, Math.floor(random() * size)) : 0;
    const others = placed();
    for (let k = 0; k < size; k++) {
      const port = r.first + ((start + k) % size);
      const m: PortMapping = { hostPort: port, containerPort: s.containerPort, protocol: s.protocol, hostIP: s.hostIP };
      if (others.some((o) => conflicts(o, m))) continue;
      if (isFree(port, s.protocol, s.hostIP)) {
        result[i] = m;
        return;
      }
    }
    throw new TsrunError('ERR_INVALID_ARGUMENT', `${s.source}: no free host port in ${r.first}-${r.last} for ${s.containerPort}/${s.protocol}`);
  });
  return result as PortMapping[];
}

function describe(m: PortMapping): string {
  return `${m.hostIP === '' ? '0.0.0.0' : m.hostIP}:${m.hostPort}/${m.protocol}`;
}

/** docker-style text of a mapping, for `port` and `ps`: "127.0.0.1:8080->80/tcp". */
export function formatPortMapping(m: PortMapping): string {
  return `${m.hostIP === '' ? '0.0.0.0' : m.hostIP}:${m.hostPort}->${m.containerPort}/${m.protocol}`;
}
