// Semantic checks of an OCI runtime-spec 1.2 config, in the spirit of runc's
// libcontainer/configs/validate/validator.go. Field types are checked before this by
// load.ts; here we check ranges, enums, paths and the rules that span several fields.
// The first problem throws TsrunError('ERR_INVALID_CONFIG'); things a newer kernel may
// accept (unknown capability names) are only reported in `warnings`.

import { posix } from 'node:path';
import { CAPABILITIES } from '../linux/capabilities.js';
import { RLIMITS } from '../linux/rlimits.js';
import { TsrunError, invalidConfig } from '../util/errors.js';
import type { HookName, IdMapping, Linux, Process, Resources, Spec } from './types.js';

const MAX_ID = 4294967294; // (uid_t)-1 is "no id"
const NAMESPACES = ['pid', 'network', 'mount', 'ipc', 'uts', 'user', 'cgroup', 'time'];
const HOOKS: readonly HookName[] = ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'];
const PROPAGATIONS = ['shared', 'slave', 'private', 'unbindable', 'rshared', 'rslave', 'rprivate', 'runbindable'];
const SECCOMP_ACTIONS = ['KILL', 'KILL_PROCESS', 'KILL_THREAD', 'TRAP', 'ERRNO', 'TRACE', 'ALLOW', 'LOG', 'NOTIFY'].map((a) => `SCMP_ACT_${a}`);
const SECCOMP_OPS = ['NE', 'LT', 'LE', 'EQ', 'GE', 'GT', 'MASKED_EQ'].map((o) => `SCMP_CMP_${o}`);
const IPC_SYSCTLS = new Set([
  'kernel.msgmax',
  'kernel.msgmnb',
  'kernel.msgmni',
  'kernel.sem',
  'kernel.shmall',
  'kernel.shmmax',
  'kernel.shmmni',
  'kernel.shm_rmid_forced',
]);
/** The namespace a sysctl key belongs to, or undefined for a key that is not namespaced. */
export function sysctlNamespace(key: string): 'ipc' | 'network' | 'uts' | undefined {
  if (IPC_SYSCTLS.has(key) || key.startsWith('fs.mqueue.')) return 'ipc';
  if (key.startsWith('net.')) return 'network';
  if (key === 'kernel.hostname' || key === 'kernel.domainname') return 'uts';
  return undefined;
}
const SYSCTL_KEY = /^[a-z0-9_]+(\.[a-zA-Z0-9_-]+)+$/;
const PROC_FD = /^\/proc\/(self|thread-self|\d+)(\/task\/\d+)?\/fd/; // CVE-2024-21626
const KNOWN_CAPS = new Set(CAPABILITIES);

/** [path under linux.resources, min, max]: integer ranges; -1 means "unlimited" where allowed. */
const RESOURCE_RANGES: ReadonlyArray<readonly [string, number, number]> = [
  ['memory.limit', -1, Infinity],
  ['memory.reservation', -1, Infinity],
  ['memory.swap', -1, Infinity],
  ['memory.kernel', -1, Infinity],
  ['memory.kernelTCP', -1, Infinity],
  ['memory.swappiness', 0, 100],
  ['cpu.shares', 0, Infinity],
  ['cpu.quota', -1, Infinity],
  ['cpu.burst', 0, Infinity],
  ['cpu.period', 0, Infinity],
  ['cpu.realtimeRuntime', -1, Infinity],
  ['cpu.realtimePeriod', 0, Infinity],
  ['cpu.idle', 0, 1],
  ['pids.limit', -1, Infinity],
  ['blockIO.weight', 0, 1000],
  ['blockIO.leafWeight', 0, 1000],
];

function fail(field: string, must: string): never {
  throw invalidConfig(field, must);
}

function configError(message: string): never {
  throw new TsrunError('ERR_INVALID_CONFIG', message);
}

function rangeText(min: number, max: number): string {
  if (max !== Infinity) return `an integer between ${min} and ${max}`;
  return min === -1 ? '-1 or a non-negative integer' : min === 0 ? 'a non-negative integer' : 'a positive integer';
}

/** An optional integer in [min, max]. */
function int(v: unknown, field: string, min: number, max: number, what = rangeText(min, max)): void {
  if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)) fail(field, `must be ${what}`);
}

function oneOf(v: unknown, field: string, allowed: readonly string[]): void {
  if (typeof v !== 'string' || !allowed.includes(v)) fail(field, `must be one of ${allowed.join(', ')}`);
}

function absolute(v: unknown, field: string): void {
  if (typeof v !== 'string' || !v.startsWith('/')) fail(field, 'must be an absolute path');
}

function hasDotDot(p: string, sep: RegExp = /\//): boolean {
  return p.split(sep).includes('..');
}

function dig(o: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((x, k) => (x !== null && typeof x === 'object' ? (x as Record<string, unknown>)[k] : undefined), o);
}

function mappings(list: IdMapping[] | undefined, field: string): void {
  (list ?? []).forEach((m, i) => {
    int(m.containerID, `${field}[${i}].containerID`, 0, 4294967295);
    int(m.hostID, `${field}[${i}].hostID`, 0, 4294967295);
    int(m.size, `${field}[${i}].size`, 1, 4294967295);
  });
}

/** Checks a whole config; throws on the first problem. */
export function validateSpec(spec: Spec, warnings: string[] = []): void {
  if (typeof spec.ociVersion !== 'string' || !/^1\.\d+(\.\d+)?([-+~].*)?$/.test(spec.ociVersion)) fail('ociVersion', 'must be a 1.x version');
  if (typeof spec.root?.path !== 'string' || spec.root.path === '') fail('root.path', 'is required');
  if (spec.process === undefined) fail('process', 'is required');
  validateProcess(spec.process, 'process', warnings);

  (spec.mounts ?? []).forEach((m, i) => {
    const field = `mounts[${i}].destination`;
    absolute(m.destination, field);
    if (hasDotDot(m.destination)) fail(field, 'must not contain ".." components');
    const dest = posix.normalize(m.destination).replace(/\/+$/, '');
    if ((dest === '/proc' && m.type !== 'proc') || dest.startsWith('/proc/')) fail(field, 'must not be inside /proc');
    mappings(m.uidMappings, `mounts[${i}].uidMappings`);
    mappings(m.gidMappings, `mounts[${i}].gidMappings`);
  });

  for (const name of HOOKS) {
    (spec.hooks?.[name] ?? []).forEach((h, i) => {
      absolute(h.path, `hooks.${name}[${i}].path`);
      int(h.timeout, `hooks.${name}[${i}].timeout`, 1, Infinity);
    });
  }

  validateLinux(spec, spec.linux ?? {});
}

function validateLinux(spec: Spec, linux: Linux): void {
  const ns = new Map<string, string | undefined>(); // type -> path
  (linux.namespaces ?? []).forEach((n, i) => {
    oneOf(n.type, `linux.namespaces[${i}].type`, NAMESPACES);
    if (ns.has(n.type)) fail(`linux.namespaces[${i}].type`, `must not repeat namespace "${n.type}"`);
    if (n.path !== undefined) absolute(n.path, `linux.namespaces[${i}].path`);
    ns.set(n.type, n.path);
  });
  const isNew = (t: string): boolean => ns.has(t) && ns.get(t) === undefined;

  for (const kind of ['uidMappings', 'gidMappings'] as const) {
    const list = linux[kind];
    if (list?.length && !ns.has('user')) fail(`linux.${kind}`, 'requires a user namespace');
    if (isNew('user') && !list?.length) fail(`linux.${kind}`, 'is required with a new user namespace');
    mappings(list, `linux.${kind}`);
  }
  if (linux.timeOffsets && Object.keys(linux.timeOffsets).length > 0 && !isNew('time')) fail('linux.timeOffsets', 'requires a new time namespace');
  // A uts namespace joined by path is fine (the runtime's own is refused where the inode
  // can be checked, in runtime/host-namespace-writes.ts); none at all would rename the host.
  for (const f of ['hostname', 'domainname'] as const) {
    if (spec[f] && !ns.has('uts')) fail(f, 'requires a uts namespace (new, or joined by path): without one it would rename the host');
  }

  for (const [key, value] of Object.entries(linux.sysctl ?? {})) {
    if (!SYSCTL_KEY.test(key)) configError(`sysctl key ${JSON.stringify(key)} is not valid`);
    if (/[\n\0]/.test(value)) configError(`sysctl "${key}" value must not contain a newline or NUL byte`);
    // The uts namespace's name has its own field; two sources for it would disagree (runc).
    if (key === 'kernel.hostname') configError('sysctl "kernel.hostname" is not allowed as it conflicts with the OCI "hostname" field');
    const needs = sysctlNamespace(key);
    if (needs === undefined) configError(`sysctl "${key}" is not allowed in a container`);
    if (!ns.has(needs)) configError(`sysctl "${key}" requires ${needs === 'ipc' ? 'an' : 'a'} ${needs} namespace`);
  }

  for (const f of ['maskedPaths', 'readonlyPaths'] as const)
    (linux[f] ?? []).forEach((p, i) => {
      absolute(p, `linux.${f}[${i}]`);
    });

  (linux.devices ?? []).forEach((d, i) => {
    const f = `linux.devices[${i}]`;
    if (typeof d.path !== 'string' || hasDotDot(d.path) || !/^\/dev\/[^/]/.test(posix.normalize(d.path)))
      fail(`${f}.path`, 'must be an absolute path under /dev/');
    oneOf(d.type, `${f}.type`, ['c', 'b', 'u', 'p']);
    for (const k of ['major', 'minor'] as const) {
      if (d.type !== 'p' && d[k] === undefined) fail(`${f}.${k}`, `is required for type "${d.type}"`);
      int(d[k], `${f}.${k}`, 0, 4294967295);
    }
    // Podman and CRI-O pass the type bits too (0o20600 for a char device), as runc accepts.
    int(d.fileMode, `${f}.fileMode`, 0, 0o177777, 'a file mode (permission bits, optionally with the type bits)');
    int(d.uid, `${f}.uid`, 0, MAX_ID);
    int(d.gid, `${f}.gid`, 0, MAX_ID);
  });

  if (linux.cgroupsPath !== undefined && hasDotDot(linux.cgroupsPath, /[/:]/)) fail('linux.cgroupsPath', 'must not contain ".." components');
  if (linux.rootfsPropagation !== undefined) oneOf(linux.rootfsPropagation, 'linux.rootfsPropagation', PROPAGATIONS);

  const sc = linux.seccomp;
  if (sc) {
    oneOf(sc.defaultAction, 'linux.seccomp.defaultAction', SECCOMP_ACTIONS);
    int(sc.defaultErrnoRet, 'linux.seccomp.defaultErrnoRet', 0, 4095);
    (sc.syscalls ?? []).forEach((s, i) => {
      const f = `linux.seccomp.syscalls[${i}]`;
      if (!Array.isArray(s.names) || s.names.length === 0) fail(`${f}.names`, 'must be a non-empty array of strings');
      oneOf(s.action, `${f}.action`, SECCOMP_ACTIONS);
      int(s.errnoRet, `${f}.errnoRet`, 0, 4095);
      (s.args ?? []).forEach((a, j) => {
        int(a.index, `${f}.args[${j}].index`, 0, 5);
        oneOf(a.op, `${f}.args[${j}].op`, SECCOMP_OPS);
      });
    });
  }

  if (linux.resources) validateResources(linux.resources);
}

function validateResources(r: Resources): void {
  const at = 'linux.resources';
  for (const [p, min, max] of RESOURCE_RANGES) int(dig(r, p), `${at}.${p}`, min, max);
  for (const p of ['cpu.cpus', 'cpu.mems']) {
    const v = dig(r, p);
    if (typeof v === 'string' && !/^(\d+(-\d+)?(,\d+(-\d+)?)*)?$/.test(v)) fail(`${at}.${p}`, 'must be a list like "0-3,6"');
  }
  (r.devices ?? []).forEach((d, i) => {
    const f = `${at}.devices[${i}]`;
    if (typeof d.allow !== 'boolean') fail(`${f}.allow`, 'must be a boolean');
    if (d.type !== undefined) oneOf(d.type, `${f}.type`, ['a', 'c', 'b']);
    int(d.major, `${f}.major`, -1, Infinity);
    int(d.minor, `${f}.minor`, -1, Infinity);
    if (d.access !== undefined && !/^[rwm]*$/.test(d.access)) fail(`${f}.access`, 'must contain only the letters r, w and m');
  });
  const bio = r.blockIO;
  if (bio) {
    (bio.weightDevice ?? []).forEach((d, i) => {
      for (const k of ['major', 'minor'] as const) int(d[k], `${at}.blockIO.weightDevice[${i}].${k}`, 0, Infinity);
      for (const k of ['weight', 'leafWeight'] as const) int(d[k], `${at}.blockIO.weightDevice[${i}].${k}`, 0, 1000);
    });
    for (const k of ['throttleReadBpsDevice', 'throttleWriteBpsDevice', 'throttleReadIOPSDevice', 'throttleWriteIOPSDevice'] as const) {
      (bio[k] ?? []).forEach((d, i) => {
        for (const n of ['major', 'minor', 'rate'] as const) int(d[n], `${at}.blockIO.${k}[${i}].${n}`, 0, Infinity);
      });
    }
  }
  (r.hugepageLimits ?? []).forEach((h, i) => {
    if (!/^\d+[KMGTP]?B$/.test(h.pageSize)) fail(`${at}.hugepageLimits[${i}].pageSize`, 'must be a size like "2MB"');
    int(h.limit, `${at}.hugepageLimits[${i}].limit`, 0, Infinity);
  });
  for (const key of Object.keys(r.unified ?? {})) {
    if (!/^[a-zA-Z0-9_]+(\.[a-zA-Z0-9_]+)+$/.test(key)) configError(`"${at}.unified" key ${JSON.stringify(key)} is not a cgroup file name`);
  }
}

/** Checks a process object (config.json's `process`, or `exec --process FILE`). */
export function validateProcess(p: Process, prefix = 'process', warnings: string[] = []): void {
  const args = p.args;
  if (p.commandLine === undefined && (!Array.isArray(args) || args.length === 0)) fail(`${prefix}.args`, 'must be a non-empty array of strings');
  if (typeof p.cwd !== 'string' || !p.cwd.startsWith('/')) fail(`${prefix}.cwd`, 'must be an absolute path');
  if (PROC_FD.test(posix.normalize(p.cwd))) fail(`${prefix}.cwd`, 'must not be inside /proc/<pid>/fd');
  (p.env ?? []).forEach((e, i) => {
    if (!(e.indexOf('=') > 0)) fail(`${prefix}.env[${i}]`, 'must be in the form KEY=VALUE');
  });

  const u = p.user;
  if (u === undefined) fail(`${prefix}.user`, 'is required');
  int(u.uid ?? -1, `${prefix}.user.uid`, 0, MAX_ID);
  int(u.gid ?? -1, `${prefix}.user.gid`, 0, MAX_ID);
  (u.additionalGids ?? []).forEach((g, i) => {
    int(g, `${prefix}.user.additionalGids[${i}]`, 0, MAX_ID);
  });
  int(u.umask, `${prefix}.user.umask`, 0, 0o777, 'a mode between 0 and 0o777');

  const seen = new Set<string>();
  (p.rlimits ?? []).forEach((r, i) => {
    const f = `${prefix}.rlimits[${i}]`;
    oneOf(r.type, `${f}.type`, Object.keys(RLIMITS));
    if (seen.has(r.type)) fail(`${f}.type`, `sets ${r.type} twice`);
    seen.add(r.type);
    // 18446744073709551615 (RLIM_INFINITY) parses as 2^64.
    int(r.soft, `${f}.soft`, 0, 2 ** 64, 'a non-negative integer');
    int(r.hard, `${f}.hard`, 0, 2 ** 64, 'a non-negative integer');
    if (r.soft > r.hard) fail(`${f}.soft`, 'must not exceed the hard limit');
  });

  const warned = new Set<string>();
  for (const [set, names] of Object.entries<string[] | undefined>({ ...p.capabilities })) {
    (names ?? []).forEach((name, i) => {
      if (typeof name !== 'string' || !/^CAP_[A-Z_]+$/.test(name)) fail(`${prefix}.capabilities.${set}[${i}]`, 'must be a capability name like CAP_CHOWN');
      if (!KNOWN_CAPS.has(name) && !warned.has(name)) {
        warned.add(name);
        warnings.push(`unknown capability "${name}" in ${prefix}.capabilities.${set}`);
      }
    });
  }

  int(p.oomScoreAdj, `${prefix}.oomScoreAdj`, -1000, 1000);
  int(p.consoleSize?.height, `${prefix}.consoleSize.height`, 0, 65535);
  int(p.consoleSize?.width, `${prefix}.consoleSize.width`, 0, 65535);
  if (p.ioPriority) {
    oneOf(p.ioPriority.class, `${prefix}.ioPriority.class`, ['IOPRIO_CLASS_RT', 'IOPRIO_CLASS_BE', 'IOPRIO_CLASS_IDLE']);
    int(p.ioPriority.priority, `${prefix}.ioPriority.priority`, 0, 7);
  }
}
