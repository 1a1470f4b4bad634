// Pure: turns a validated spec plus resources the caller already opened (fds, compiled
// seccomp) into the flat, ordered step list the forked child executes (native/child.c).
// The order is the one design-notes §7.4 lays out; unit tests pin it.
import { posix } from 'node:path';
import type { Capabilities, Device, IdMapping, Mount, NamespaceType, Process, Spec } from '../spec/types.js';
import { invalidConfig } from '../util/errors.js';
import { capMask } from './capabilities.js';
import { type LsmSupport, lsmSteps } from './lsm.js';
import { DEFAULT_DEVICES, DEFAULT_DEV_SYMLINKS, deviceMode } from './devices.js';
import { MS_BIND, MS_REC, MS_SHARED, MS_SLAVE, MS_UNBINDABLE, parseMountOptions, propagationFlag } from './mount-options.js';
import { F, type PlanStep } from './plan-encode.js';
import { rlimitNumber, rlimitValue } from './rlimits.js';

const NO_LSM: LsmSupport = { apparmor: false, selinux: false };

export const CLONE_NEW: Record<NamespaceType, number> = {
  mount: 0x00020000,
  uts: 0x04000000,
  ipc: 0x08000000,
  user: 0x10000000,
  pid: 0x20000000,
  network: 0x40000000,
  cgroup: 0x02000000,
  time: 0x00000080,
};

/** Namespaces are joined user first (its caps are needed for the rest), mount last. */
const JOIN_ORDER: NamespaceType[] = ['user', 'cgroup', 'ipc', 'uts', 'network', 'pid', 'time', 'mount'];

export interface NsJoin {
  type: NamespaceType;
  fd: number;
  path: string;
}

export interface Seccompiled {
  bpf: Buffer;
  flags: number;
}

export type HookPoint = 'createRuntime' | 'createContainer';
export const HOOK_ID: Record<HookPoint, number> = { createRuntime: 1, createContainer: 2 };

/** What the caller resolved or opened for the plan (the impure inputs, as plain data). */
export interface InitInputs {
  rootfs: string;
  bundle: string;
  lastCap: number;
  joins: NsJoin[];
  /** Read end of exec.fifo for create (blocks until start); -1 for run. */
  fifoFd: number;
  /** The connected --console-socket, or -1 to send the pty master back over the sync socket. */
  consoleFd: number;
  preserveFds: number;
  seccomp?: Seccompiled;
  /** Kind of each bind source, by resolved host path (the caller stats them). */
  bindKinds: Record<string, 'dir' | 'file'>;
  hookPoints: HookPoint[];
  /** The container's own cgroup v2 directory on the host, if it has one. */
  cgroupDir?: string | undefined;
  /** True when the container must outlive the calling process (create, run --detach). */
  detach: boolean;
  noPivot?: boolean;
  /** The LSMs this host enforces (for process.apparmorProfile/selinuxLabel); none if unset. */
  lsm?: LsmSupport;
}

export interface ExecInputs {
  lastCap: number;
  joins: NsJoin[];
  consoleFd: number;
  preserveFds: number;
  seccomp?: Seccompiled;
  detach: boolean;
  lsm?: LsmSupport;
}

const step = (op: PlanStep['op'], syscall: string, fields: PlanStep['fields'] = [], target?: string): PlanStep =>
  target === undefined ? { op, syscall, fields } : { op, syscall, fields, target };

function rel(p: string): string {
  return posix.normalize(p).replace(/^\/+/, '');
}

export function newNamespaces(spec: Spec): NamespaceType[] {
  return (spec.linux?.namespaces ?? []).filter((n) => !n.path).map((n) => n.type);
}

/** The PATH the executable is looked up in: the process's own, else runc's default. */
export function processPath(env: string[] | undefined): string {
  const p = env?.findLast((e) => e.startsWith('PATH='));
  return p ? p.slice(5) : '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
}

function joinSteps(joins: NsJoin[]): PlanStep[] {
  const sorted = [...joins].sort((a, b) => JOIN_ORDER.indexOf(a.type) - JOIN_ORDER.indexOf(b.type));
  return sorted.map((j) => step('SETNS', `setns(${j.type})`, [F.int(j.fd), F.int(CLONE_NEW[j.type])], j.path));
}

/**
 * A "cgroup" mount shows the container's own cgroup. With a cgroup namespace that is a
 * cgroup2 mount; without one, cgroup2 would show the host's whole tree (and cannot be
 * mounted at all from a user namespace), so the container's directory is bound instead.
 */
function cgroupMount(m: Mount, hasCgroupNs: boolean, inputs: InitInputs): Mount {
  if (hasCgroupNs || !inputs.cgroupDir) return m;
  const keep = (m.options ?? []).filter((o) => ['ro', 'nosuid', 'nodev', 'noexec'].includes(o));
  return { destination: m.destination, type: 'bind', source: inputs.cgroupDir, options: ['rbind', ...keep] };
}

/** Mount-target flag: follow a final symlink (inside the root) instead of refusing it. */
const MT_FOLLOW = 4;

function mountSteps(m: Mount, i: number, inputs: InitInputs, follow = false): PlanStep[] {
  const o = parseMountOptions(m.options);
  const type = m.type ?? (o.bind ? 'bind' : 'none');
  const isBind = o.bind || type === 'bind';
  const target = rel(m.destination);
  if (!target) throw invalidConfig(`mounts[${i}].destination`, 'must not be /');
  let source = m.source ?? type;
  if (isBind) {
    if (!m.source) throw invalidConfig(`mounts[${i}].source`, 'is required for a bind mount');
    source = posix.resolve(inputs.bundle, m.source);
  }
  const kind = isBind && inputs.bindKinds[source] === 'file' ? 1 : 0;
  // cgroup v1 hierarchies are not mounted: "cgroup" becomes the container's cgroup2 view.
  const fstype = type === 'cgroup' ? 'cgroup2' : type;
  const propagation = o.propagation.length ? o.propagation[o.propagation.length - 1]! : 0;
  const mountFlags = isBind ? o.flags & ~MS_BIND : o.flags;
  const remount = isBind ? mountFlags & ~MS_REC : 0;
  return [
    step(
      'MOUNT',
      'mount',
      [
        F.int(isBind ? mountFlags & MS_REC : mountFlags),
        F.int(kind | (follow ? MT_FOLLOW : 0)),
        F.int(isBind ? 1 : 0),
        F.int(remount),
        F.int(propagation),
        F.int(o.extra.recAttrSet),
        F.int(o.extra.recAttrClear),
        F.str(source),
        F.str(target),
        F.str(isBind ? '' : fstype),
        F.str(o.data.join(',')),
      ],
      `${isBind ? source : fstype} on ${m.destination}`,
    ),
  ];
}

function deviceSteps(devices: Device[]): PlanStep[] {
  return devices.map((d) =>
    step(
      'MKNOD',
      'mknodat',
      [F.int(deviceMode(d)), F.int(d.major ?? 0), F.int(d.minor ?? 0), F.int(d.uid ?? 0), F.int(d.gid ?? 0), F.str(rel(d.path)), F.str(d.path)],
      d.path,
    ),
  );
}

function mergedDevices(spec: Spec): Device[] {
  const byPath = new Map<string, Device>();
  for (const d of DEFAULT_DEVICES) byPath.set(d.path, d);
  for (const d of spec.linux?.devices ?? []) byPath.set(posix.normalize(d.path), d);
  return [...byPath.values()];
}

function hasMount(spec: Spec, dest: string): Mount | undefined {
  return spec.mounts?.find((m) => posix.normalize(m.destination) === dest);
}

/** Identity and privileges, shared by create and exec (runc's finalizeNamespace order). */
function processSteps(
  p: Process,
  lastCap: number,
  preserveFds: number,
  seccomp: Seccompiled | undefined,
  fifoFd: number,
  detach: boolean,
  lsm: LsmSupport = NO_LSM,
): PlanStep[] {
  const out: PlanStep[] = [];
  const caps = p.capabilities ?? {};
  const mask = (names: string[] | undefined) => capMask(names, lastCap).mask;
  out.push(step('CHDIR', 'chdir', [F.str(p.cwd)], p.cwd));
  out.push(step('UMASK', 'umask', [F.int(p.user.umask ?? 0o022)]));
  // Labels for the execve, written while we are still root (attr files belong to root).
  out.push(...lsmSteps(p, lsm));
  for (const r of p.rlimits ?? []) {
    const n = rlimitNumber(r.type);
    if (n === undefined) throw invalidConfig('process.rlimits', `has an unknown type ${r.type}`);
    out.push(step('RLIMIT', 'prlimit', [F.int(n), F.int(rlimitValue(r.soft)), F.int(rlimitValue(r.hard))], r.type));
  }
  out.push(step('CAPS_BOUNDING', 'prctl(PR_CAPBSET_DROP)', [F.int(lastCap), F.int(mask(caps.bounding))]));
  const groups = [p.user.gid, ...(p.user.additionalGids ?? []).filter((g) => g !== p.user.gid)];
  if (groups.length > 256) throw invalidConfig('process.user.additionalGids', 'must have at most 255 entries');
  out.push(
    step('SETUSER', 'setresuid', [F.int(p.user.uid), F.int(p.user.gid), F.int(groups.length), ...groups.map((g) => F.int(g))], `${p.user.uid}:${p.user.gid}`),
  );
  const args = p.args ?? [];
  const argv0 = args[0];
  if (!argv0) throw invalidConfig('process.args', 'must not be empty');
  // Everything tsrun itself needs happens before the filter: the lookup (as the user),
  // closing fds, the sync with the parent and the wait for `start`.
  out.push(step('FIND_EXEC', 'stat', [F.str(argv0), F.str(processPath(p.env))], argv0));
  out.push(step('CLOSE_FDS', 'close_range', [F.int(3 + preserveFds)]));
  out.push(step('READY', 'sync', [F.int(fifoFd), F.int(detach ? 1 : 0)]));
  // The kernel raises an ambient cap only if it is permitted and inheritable (see ambientDropped).
  const ambient = mask(caps.ambient) & mask(caps.permitted) & mask(caps.inheritable);
  const capsStep = step('CAPS', 'capset', [F.int(mask(caps.effective)), F.int(mask(caps.permitted)), F.int(mask(caps.inheritable)), F.int(ambient)]);
  const nnp = p.noNewPrivileges === true;
  if (nnp) {
    out.push(capsStep, step('NNP', 'prctl(PR_SET_NO_NEW_PRIVS)'));
    if (seccomp) out.push(step('SECCOMP', 'seccomp', [F.int(seccomp.flags), F.int(0), F.blob(seccomp.bpf)]));
  } else {
    // Without no_new_privs the filter needs CAP_SYS_ADMIN, so only capset follows it (runc's order).
    if (seccomp) out.push(step('SECCOMP', 'seccomp', [F.int(seccomp.flags), F.int(1), F.blob(seccomp.bpf)]));
    out.push(capsStep);
  }
  out.push(step('EXEC', 'execve', [F.list(args), F.list(p.env ?? [])], argv0));
  return out;
}

function ttySteps(p: Process, consoleFd: number): PlanStep[] {
  if (!p.terminal) return [];
  const size = p.consoleSize;
  return [step('TTY', 'ioctl(TIOCGPTPEER)', [F.int(consoleFd), F.int(size?.height ?? 0), F.int(size?.width ?? 0)], '/dev/pts/ptmx')];
}

/** The plan for `create`/`run`: a new container init. */
export function buildInitPlan(spec: Spec, inputs: InitInputs): PlanStep[] {
  const p = spec.process;
  if (!p) throw invalidConfig('process', 'is required');
  const linux = spec.linux ?? {};
  const fresh = new Set(newNamespaces(spec));
  const listed = new Set((linux.namespaces ?? []).map((n) => n.type));
  // An omitted type is inherited (runtime-spec), except mount: the rootfs would be set up,
  // and pivot_root done, in the runtime's own mount namespace. A joined one is used as is.
  if (!listed.has('mount')) {
    throw invalidConfig(
      'linux.namespaces',
      "must include a mount namespace (new, or joined by path): without one the rootfs would be set up in the runtime's own",
    );
  }
  const out: PlanStep[] = [step('DUMPABLE', 'prctl(PR_SET_DUMPABLE)', [F.int(0)])];

  // Stage 1: namespaces, then fork the container's pid 1.
  out.push(...joinSteps(inputs.joins));
  if (fresh.has('user')) out.push(step('USERNS', 'unshare(CLONE_NEWUSER)'));
  // cgroup waits for stage 2 (below): its root is the unsharer's cgroup in every hierarchy.
  const flags = [...fresh].filter((t) => t !== 'user' && t !== 'cgroup').reduce((a, t) => a | CLONE_NEW[t], 0);
  if (flags) out.push(step('UNSHARE', 'unshare', [F.int(flags)]));
  if (fresh.has('time') && linux.timeOffsets) {
    const lines = Object.entries(linux.timeOffsets).map(([clock, o]) => `${clock} ${o.secs ?? 0} ${o.nanosecs ?? 0}\n`);
    out.push(step('TIMENS_OFFSETS', 'write', [F.str(lines.join(''))], '/proc/self/timens_offsets'));
  }
  out.push(step('FORK', 'clone3(CLONE_PARENT)'));
  // Stage 2 runs once the parent has its pid and has placed it in its cgroups (the v1 ones
  // too, on hybrid hosts): a cgroup namespace made now is rooted at the container's cgroups
  // in every hierarchy, as runc does, not at the caller's v1 cgroups.
  if (fresh.has('cgroup')) out.push(step('UNSHARE', 'unshare', [F.int(CLONE_NEW.cgroup)]));

  // Stage 2 (the container's pid 1): the filesystem view.
  out.push(step('SETSID', 'setsid'));
  if (p.oomScoreAdj !== undefined) out.push(step('OOM_SCORE_ADJ', 'write', [F.str(String(p.oomScoreAdj))], '/proc/self/oom_score_adj'));
  // rootfsPropagation: slave and private hold from the start. shared and unbindable are set
  // on the container's root at the end: a shared "/" now would make pivot_root fail (EINVAL)
  // and could carry our set-up mounts out; an unbindable one would refuse the rootfs bind.
  const prop = linux.rootfsPropagation ? propagationFlag(linux.rootfsPropagation) : MS_REC | MS_SLAVE;
  const lateProp = prop & (MS_SHARED | MS_UNBINDABLE) ? prop : 0;
  out.push(step('ROOT_PROPAGATION', 'mount(/, propagation)', [F.int(lateProp ? MS_REC | MS_SLAVE : prop)], '/'));
  out.push(step('BIND_ROOTFS', 'mount(MS_BIND)', [F.str(inputs.rootfs)], inputs.rootfs));

  const mounts = [...(spec.mounts ?? [])];
  // /dev is always a fresh tmpfs of ours, never the image's (CVE-2026-41579, CVE-2026-47766).
  if (!hasMount(spec, '/dev')) {
    mounts.unshift({ destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] });
  }
  const devMount = mounts.find((m) => posix.normalize(m.destination) === '/dev')!;
  const devIsOurs = devMount.type === 'tmpfs';
  mounts.forEach((m, i) => {
    // Our own /dev tmpfs may land on an image's /dev symlink: follow it inside the root
    // (refusing would make the image unusable); every other destination refuses symlinks.
    const follow = m === devMount && devIsOurs;
    out.push(...mountSteps(m.type === 'cgroup' ? cgroupMount(m, fresh.has('cgroup'), inputs) : m, i, inputs, follow));
    // Devices and links go in right after /dev, before anything can be mounted beneath it.
    if (m === devMount && devIsOurs) {
      out.push(...deviceSteps(mergedDevices(spec)));
      for (const [link, target] of DEFAULT_DEV_SYMLINKS) out.push(step('SYMLINK', 'symlinkat', [F.str(target), F.str(rel(link))], link));
    }
  });
  if (!hasMount(spec, '/dev/pts') && p.terminal) {
    out.push(
      ...mountSteps(
        { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'] },
        mounts.length,
        inputs,
      ),
    );
  }
  out.push(step('MKDIR', 'mkdirat', [F.int(0o755), F.str(rel(p.cwd) || '.')], p.cwd));
  for (const h of inputs.hookPoints) out.push(step('HOOK', 'hook', [F.int(HOOK_ID[h])], h));
  out.push(inputs.noPivot ? step('CHROOT', 'chroot') : step('PIVOT', 'pivot_root', [], inputs.rootfs));

  for (const [key, value] of Object.entries(linux.sysctl ?? {})) {
    out.push(step('SYSCTL', 'write', [F.str(key.replaceAll('.', '/')), F.str(value)], `/proc/sys/${key.replaceAll('.', '/')}`));
  }
  if (spec.hostname !== undefined && listed.has('uts')) out.push(step('HOSTNAME', 'sethostname', [F.str(spec.hostname)], spec.hostname));
  if (spec.domainname !== undefined && listed.has('uts')) out.push(step('DOMAINNAME', 'setdomainname', [F.str(spec.domainname)], spec.domainname));
  out.push(...ttySteps(p, inputs.consoleFd));
  for (const m of linux.maskedPaths ?? []) out.push(step('MASK', 'mount(mask)', [F.str(m)], m));
  for (const r of linux.readonlyPaths ?? []) out.push(step('READONLY', 'mount_setattr(MOUNT_ATTR_RDONLY)', [F.str(r)], r));
  if (spec.root?.readonly) out.push(step('ROOT_READONLY', 'mount(MS_REMOUNT|MS_RDONLY)', [], '/'));
  if (lateProp) out.push(step('ROOT_PROPAGATION', 'mount(/, propagation)', [F.int(lateProp)], `/ (${linux.rootfsPropagation})`));

  out.push(...processSteps(p, inputs.lastCap, inputs.preserveFds, inputs.seccomp, inputs.fifoFd, inputs.detach, inputs.lsm));
  return out;
}

/** The plan for `exec`: join every namespace of a running container, then become `p`. */
export function buildExecPlan(p: Process, inputs: ExecInputs): PlanStep[] {
  const out: PlanStep[] = [step('DUMPABLE', 'prctl(PR_SET_DUMPABLE)', [F.int(0)])];
  // Before joining: the host's /proc, not one the container controls (CVE-2025-52881 class).
  if (p.oomScoreAdj !== undefined) out.push(step('OOM_SCORE_ADJ', 'write', [F.str(String(p.oomScoreAdj))], '/proc/self/oom_score_adj'));
  out.push(...joinSteps(inputs.joins));
  out.push(step('FORK', 'clone3(CLONE_PARENT)'));
  out.push(step('SETSID', 'setsid'));
  out.push(...ttySteps(p, inputs.consoleFd));
  out.push(...processSteps(p, inputs.lastCap, inputs.preserveFds, inputs.seccomp, -1, inputs.detach, inputs.lsm));
  return out;
}

/** Ambient caps that cannot be raised because they are not also permitted and inheritable. */
export function ambientDropped(p: Process): string[] {
  const c = p.capabilities ?? {};
  const ok = new Set((c.permitted ?? []).filter((x) => (c.inheritable ?? []).includes(x)));
  return (c.ambient ?? []).filter((x) => !ok.has(x));
}

/** "0 100000 65536\n" lines for /proc/<pid>/{uid,gid}_map. */
export function idMapText(maps: IdMapping[] | undefined): string {
  return (maps ?? []).map((m) => `${m.containerID} ${m.hostID} ${m.size}\n`).join('');
}

/** What a container-namespace hook is held to: the container process's own limits. */
export interface HookConfinement {
  lastCap: number;
  capabilities: Capabilities | undefined;
}

/**
 * The plan for a hook that must run in the container's namespaces, state on stdin. The hook's
 * executable belongs to the image, so it gets no more than the container's process would:
 * its capability sets (never ambient) and no_new_privs; the caller places it in the
 * container's cgroup, so the device filter and limits hold too (as runc does).
 */
export function buildHookPlan(
  hook: { path: string; args?: string[] | undefined; env?: string[] | undefined },
  joins: NsJoin[],
  stdinFd: number,
  confine: HookConfinement,
): PlanStep[] {
  const args = hook.args?.length ? hook.args : [hook.path];
  const caps = confine.capabilities ?? {};
  const mask = (names: string[] | undefined) => capMask(names, confine.lastCap).mask;
  return [
    step('DUMPABLE', 'prctl(PR_SET_DUMPABLE)', [F.int(0)]),
    ...joinSteps(joins),
    step('FORK', 'clone3(CLONE_PARENT)'),
    step('STDIN', 'dup2', [F.int(stdinFd)]),
    step('FIND_EXEC', 'stat', [F.str(hook.path), F.str('')], hook.path),
    step('CAPS_BOUNDING', 'prctl(PR_CAPBSET_DROP)', [F.int(confine.lastCap), F.int(mask(caps.bounding))]),
    step('CAPS', 'capset', [F.int(mask(caps.effective)), F.int(mask(caps.permitted)), F.int(mask(caps.inheritable)), F.int(0)]),
    step('NNP', 'prctl(PR_SET_NO_NEW_PRIVS)'),
    step('CLOSE_FDS', 'close_range', [F.int(3)]),
    step('READY', 'sync', [F.int(-1), F.int(0)]),
    step('EXEC', 'execve', [F.list(args), F.list(hook.env ?? [])], hook.path),
  ];
}
