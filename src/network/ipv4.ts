// IPv4 addresses and CIDRs as unsigned 32-bit numbers: what the subnet checks, the subnet
// chooser and the -p parser share. Pure. IPv4 only because tsrun's networks are (the CNI
// plugins do IPv6 too; a dual-stack network is later work and gets its own helpers).

export interface Cidr {
  /** The network address (host bits zero). */
  addr: number;
  prefix: number;
}

/** Dotted-quad IPv4 with no leading zeros (which inet_aton, and so iptables, would read as octal). */
export function isIPv4(s: string): boolean {
  const parts = s.split('.');
  return parts.length === 4 && parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && Number(p) <= 255);
}

export function ipToInt(ip: string): number {
  return ip.split('.').reduce((n, o) => n * 256 + Number(o), 0) >>> 0;
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

function mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** "a.b.c.d/n" (or a bare address: /32) -> {addr, prefix} with host bits cleared; undefined if not IPv4. */
export function parseCidr(text: string): (Cidr & { hostBitsSet: boolean }) | undefined {
  const m = /^([0-9.]+)(?:\/(\d{1,2}))?$/.exec(text);
  if (m === null || !isIPv4(m[1]!)) return undefined;
  const prefix = m[2] === undefined ? 32 : Number(m[2]);
  if (prefix > 32) return undefined;
  const ip = ipToInt(m[1]!);
  const addr = (ip & mask(prefix)) >>> 0;
  return { addr, prefix, hostBitsSet: addr !== ip };
}

export function formatCidr(c: Cidr): string {
  return `${intToIp(c.addr)}/${c.prefix}`;
}

export function broadcastOf(c: Cidr): number {
  return (c.addr | ~mask(c.prefix)) >>> 0;
}

export function cidrContains(c: Cidr, ip: number): boolean {
  return (ip & mask(c.prefix)) >>> 0 === c.addr;
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  const p = Math.min(a.prefix, b.prefix);
  return (a.addr & mask(p)) >>> 0 === (b.addr & mask(p)) >>> 0;
}
