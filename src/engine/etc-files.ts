// /etc/hostname, /etc/hosts and /etc/resolv.conf of a container: written by the engine into its
// directory and bind-mounted (never written into the image's layers), as docker and podman do
// (engine-notes §2.6). etcFiles is pure; writeEtcFiles reads the host's files and writes them.
import { readFileSync, writeFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import type { Mount } from '../spec/types.js';

export const ETC_FILES = ['/etc/hostname', '/etc/hosts', '/etc/resolv.conf'] as const;

export interface EtcInput {
  hostname: string;
  name: string;
  network: 'none' | 'host';
  hostHosts?: string;
  hostResolvConf?: string;
}

const LOCALHOST = ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback'];

/** Nameservers on the host's loopback answer only in the host's network namespace. */
function withoutLoopbackServers(text: string): string {
  return text
    .split('\n')
    .filter((l) => !/^\s*nameserver\s+(127\.|::1\b)/.test(l))
    .join('\n');
}

export function etcFiles(o: EtcInput): Record<(typeof ETC_FILES)[number], string> {
  const names = [...new Set([o.hostname, o.name])].join(' ');
  const hosts = o.network === 'host' && o.hostHosts !== undefined ? o.hostHosts : `${[...LOCALHOST, `127.0.1.1\t${names}`].join('\n')}\n`;
  const resolv =
    o.network === 'host'
      ? (o.hostResolvConf ?? '')
      : `# tsrun: --network none (no interface but lo); the host's resolvers without its loopback ones\n${withoutLoopbackServers(o.hostResolvConf ?? '')}`;
  return { '/etc/hostname': `${o.hostname}\n`, '/etc/hosts': hosts, '/etc/resolv.conf': resolv.endsWith('\n') || !resolv ? resolv : `${resolv}\n` };
}

function readHostFile(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** The engine's /etc files for the container, written beside its record, and their bind mounts. */
export function writeEtcFiles(dir: string, o: Omit<EtcInput, 'hostHosts' | 'hostResolvConf'>, readOnly: boolean): Mount[] {
  const host = { hostHosts: readHostFile('/etc/hosts'), hostResolvConf: readHostFile('/etc/resolv.conf') };
  const files = etcFiles({
    ...o,
    ...(host.hostHosts !== undefined ? { hostHosts: host.hostHosts } : {}),
    ...(host.hostResolvConf !== undefined ? { hostResolvConf: host.hostResolvConf } : {}),
  });
  return ETC_FILES.map((dest) => {
    const source = join(dir, posix.basename(dest));
    writeFileSync(source, files[dest], { mode: 0o644 });
    return { destination: dest, type: 'bind', source, options: ['rbind', readOnly ? 'ro' : 'rw', 'nosuid', 'nodev', 'noexec'] };
  });
}
