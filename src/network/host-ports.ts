// Ports the host's own sockets hold, from /proc/net/{tcp,tcp6,udp,udp6} of this (the host's)
// network namespace: TCP listeners and bound UDP sockets. The portmap plugin reserves nothing
// and its DNAT would silently shadow such a socket, so the engine refuses those ports.
import { readFileSync } from 'node:fs';
import type { PortProtocol } from './ports.js';

const TCP_LISTEN = '0A';

/** Parse one /proc/net table: the local ports of the sockets that hold one. */
export function boundPorts(table: string, protocol: PortProtocol): number[] {
  const out: number[] = [];
  for (const line of table.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4) continue;
    const port = Number.parseInt(f[1]!.split(':')[1] ?? '', 16);
    if (!Number.isInteger(port) || port === 0) continue;
    if (protocol === 'tcp' && f[3] !== TCP_LISTEN) continue;
    out.push(port);
  }
  return out;
}

/** "tcp/8080"-style keys of every port held on the host now. */
export function hostPortsInUse(procNet = '/proc/net'): Set<string> {
  const used = new Set<string>();
  for (const [file, proto] of [
    ['tcp', 'tcp'],
    ['tcp6', 'tcp'],
    ['udp', 'udp'],
    ['udp6', 'udp'],
  ] as const) {
    let text = '';
    try {
      text = readFileSync(`${procNet}/${file}`, 'utf8');
    } catch {
      continue; // no IPv6 on this host
    }
    for (const p of boundPorts(text, proto)) used.add(`${proto}/${p}`);
  }
  return used;
}
