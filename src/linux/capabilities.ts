// Linux capability names and numbers (include/uapi/linux/capability.h), and the
// bit masks built from an OCI `process.capabilities` set.

import { readFileSync } from 'node:fs';

/** Capability names indexed by number: CAPABILITIES[0] === 'CAP_CHOWN'. */
export const CAPABILITIES: readonly string[] = Object.freeze([
  'CAP_CHOWN', // 0
  'CAP_DAC_OVERRIDE', // 1
  'CAP_DAC_READ_SEARCH', // 2
  'CAP_FOWNER', // 3
  'CAP_FSETID', // 4
  'CAP_KILL', // 5
  'CAP_SETGID', // 6
  'CAP_SETUID', // 7
  'CAP_SETPCAP', // 8
  'CAP_LINUX_IMMUTABLE', // 9
  'CAP_NET_BIND_SERVICE', // 10
  'CAP_NET_BROADCAST', // 11
  'CAP_NET_ADMIN', // 12
  'CAP_NET_RAW', // 13
  'CAP_IPC_LOCK', // 14
  'CAP_IPC_OWNER', // 15
  'CAP_SYS_MODULE', // 16
  'CAP_SYS_RAWIO', // 17
  'CAP_SYS_CHROOT', // 18
  'CAP_SYS_PTRACE', // 19
  'CAP_SYS_PACCT', // 20
  'CAP_SYS_ADMIN', // 21
  'CAP_SYS_BOOT', // 22
  'CAP_SYS_NICE', // 23
  'CAP_SYS_RESOURCE', // 24
  'CAP_SYS_TIME', // 25
  'CAP_SYS_TTY_CONFIG', // 26
  'CAP_MKNOD', // 27
  'CAP_LEASE', // 28
  'CAP_AUDIT_WRITE', // 29
  'CAP_AUDIT_CONTROL', // 30
  'CAP_SETFCAP', // 31
  'CAP_MAC_OVERRIDE', // 32
  'CAP_MAC_ADMIN', // 33
  'CAP_SYSLOG', // 34
  'CAP_WAKE_ALARM', // 35
  'CAP_BLOCK_SUSPEND', // 36
  'CAP_AUDIT_READ', // 37
  'CAP_PERFMON', // 38
  'CAP_BPF', // 39
  'CAP_CHECKPOINT_RESTORE', // 40
]);

/** The highest capability this table knows; the fallback for readLastCap. */
export const LAST_KNOWN_CAP = CAPABILITIES.length - 1;

const BY_NAME: ReadonlyMap<string, number> = new Map(CAPABILITIES.map((name, i) => [name, i]));

/**
 * The number of a capability name. The `CAP_` prefix is required; case is ignored
 * (libcap's cap_from_name is case-insensitive too). Unknown names give undefined.
 */
export function capNumber(name: string): number | undefined {
  return BY_NAME.get(name.toUpperCase());
}

/**
 * The bit mask of a capability list. Names this table does not know, and names the
 * running kernel does not know (number > lastCap), are left out of the mask and
 * returned in `unknown` in the order given, so the caller can warn (runc/crun do).
 */
export function capMask(names: string[] | undefined, lastCap: number): { mask: bigint; unknown: string[] } {
  let mask = 0n;
  const unknown: string[] = [];
  for (const name of names ?? []) {
    const n = capNumber(name);
    if (n === undefined || n > lastCap) {
      unknown.push(name);
      continue;
    }
    mask |= 1n << BigInt(n);
  }
  return { mask, unknown };
}

/** The kernel's highest capability (/proc/sys/kernel/cap_last_cap), or 40 if unreadable. */
export function readLastCap(procRoot = '/proc'): number {
  try {
    const text = readFileSync(`${procRoot}/sys/kernel/cap_last_cap`, 'utf8').trim();
    if (!/^\d{1,3}$/.test(text)) return LAST_KNOWN_CAP;
    const n = Number(text);
    return n <= 63 ? n : LAST_KNOWN_CAP;
  } catch {
    return LAST_KNOWN_CAP;
  }
}

/** The capabilities this process can give (its bounding set, /proc/self/status CapBnd), by name. */
export function boundingSet(procRoot = '/proc'): string[] {
  let mask = 0n;
  try {
    const m = /^CapBnd:\s*([0-9a-f]+)$/m.exec(readFileSync(`${procRoot}/self/status`, 'utf8'));
    if (m) mask = BigInt(`0x${m[1]}`);
  } catch {
    /* no /proc: nothing known */
  }
  return CAPABILITIES.filter((c) => {
    const n = capNumber(c);
    return n !== undefined && (mask >> BigInt(n)) & 1n;
  });
}
