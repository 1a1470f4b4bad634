// What this host offers a container runtime, for `tsrun info` (docker info's Host, Cgroups,
// Security and Storage parts), and what tsrun will refuse here and why. Plain data read from
// /proc, /sys and /etc/os-release; every root is injectable so tests run on fixture dirs.
// The refusals follow the checks the runtime makes (CgroupManager.check: a limit whose
// controller is not in the v2 root's cgroup.controllers; lsm.ts; seccomp; overlayfs), so
// `tsrun info` says in advance what `tsrun run` would refuse.
import { accessSync, existsSync, constants as fsConstants, readFileSync } from 'node:fs';
import { machine, release as osRelease } from 'node:os';
import { join } from 'node:path';
import { parseV1Hierarchies, type V1Hierarchy } from '../cgroups/v1-membership.js';
import { CgroupV2, findV2Mount } from '../cgroups/v2.js';
import { lsmSupport } from '../linux/lsm.js';
import { DEFAULT_CNI_PLUGIN_DIRS } from '../network/cni-exec.js';

export type CgroupVersion = 'v2' | 'hybrid' | 'v1' | 'none';

/** A line of /proc/cgroups: a controller the kernel knows (v1 names: blkio is v2's io). */
export interface KernelController {
  name: string;
  /** The v1 hierarchy id it is bound to; 0 = none (in cgroup v2, or not mounted). */
  hierarchy: number;
  enabled: boolean;
}

export interface Refusal {
  /** What tsrun refuses: the flags or spec fields. */
  feature: string;
  reason: string;
  fix: string;
  /** For a resource limit: the cgroup v2 controller it needs. */
  controller?: string;
}

export interface HostInfo {
  /** uname -r, from <proc>/sys/kernel/osrelease. */
  kernel: string;
  /** uname -m (x86_64, aarch64). */
  arch: string;
  /** PRETTY_NAME of os-release, or "" when there is none. */
  os: string;
  /** pidfd_open(2): Linux 5.3. */
  pidfd: boolean;
  /** clone3(2) with CLONE_INTO_CGROUP: Linux 5.7. */
  clone3IntoCgroup: boolean;
  cgroup: {
    version: CgroupVersion;
    /** Where cgroup2 is mounted (/sys/fs/cgroup; /sys/fs/cgroup/unified on a hybrid host), or null. */
    v2Mount: string | null;
    /** The v2 root's cgroup.controllers: what limits can use. */
    v2Controllers: string[];
    /** The v2 root's cgroup.subtree_control: what is enabled for its children now. */
    v2SubtreeControl: string[];
    /** The mounted v1 hierarchies and their controllers (named ones, name=systemd, have none). */
    v1Hierarchies: V1Hierarchy[];
    /** /proc/cgroups. */
    kernelControllers: KernelController[];
  };
  seccomp: {
    /** The kernel has seccomp (a Seccomp: line in /proc/self/status). */
    supported: boolean;
    /** The kernel has filter mode (CONFIG_SECCOMP_FILTER: /proc/sys/kernel/seccomp/actions_avail). */
    filter: boolean;
    /** This process's own mode (0 disabled, 1 strict, 2 filter): 2 when tsrun itself runs confined. */
    mode: 'disabled' | 'strict' | 'filter' | 'unknown';
    /** actions_avail: the filter return actions the kernel knows. */
    actions: string[];
  };
  apparmor: boolean;
  selinux: boolean;
  userNamespaces: {
    /** The kernel has user namespaces and user.max_user_namespaces > 0. */
    enabled: boolean;
    /** user.max_user_namespaces, or null when the kernel has no user namespaces. */
    max: number | null;
    /** kernel.unprivileged_userns_clone (Debian/Ubuntu kernels), or null where it does not exist. */
    unprivilegedClone: boolean | null;
  };
  storage: {
    /** registered: in /proc/filesystems; module: loadable (modprobe overlay); missing: neither. */
    overlayfs: 'registered' | 'module' | 'missing';
  };
  network: {
    /** Each CNI plugin bridge networks use, and where it was found (null: missing). */
    plugins: Record<string, string | null>;
    /** dnsmasq on PATH: the dnsname plugin runs it for names on user networks. */
    dnsmasq: boolean;
  };
  refusals: Refusal[];
}

export interface HostInfoOptions {
  /** The cgroup v2 mount to read (default: found in <procRoot>/self/mountinfo). */
  cgroupMount?: string;
  /** Default /proc. */
  procRoot?: string;
  /** Default /sys (AppArmor and SELinux state). */
  sysRoot?: string;
  /** os-release file (default /etc/os-release, then /usr/lib/os-release). */
  osRelease?: string;
  /** Default /lib/modules (is overlayfs a loadable module). */
  modulesRoot?: string;
  /** Where CNI plugins are looked for (default: the engine's list). */
  cniPluginDirs?: readonly string[];
  /** Where dnsmasq is looked for (default: /usr/sbin, /usr/bin, /sbin, /bin). */
  binDirs?: readonly string[];
}

/** The plugins a bridge network's conflist names, and why each. */
const NETWORK_PLUGINS: ReadonlyArray<{ name: string; feature: string }> = [
  { name: 'bridge', feature: 'bridge networks (--network bridge|NAME, the default)' },
  { name: 'host-local', feature: 'bridge networks (addresses)' },
  { name: 'portmap', feature: 'published ports (-p, -P)' },
  { name: 'firewall', feature: 'bridge networks (forwarding rules)' },
  { name: 'tuning', feature: 'bridge networks' },
  { name: 'dnsname', feature: 'names on user networks (network create)' },
];

function findIn(dirs: readonly string[], name: string): string | null {
  for (const d of dirs) {
    const p = join(d, name);
    try {
      accessSync(p, fsConstants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return null;
}

/** tsrun's minimum kernel (README: openat2, clone3 CLONE_INTO_CGROUP, close_range, mount_setattr). */
export const MIN_KERNEL: readonly [number, number] = [5, 12];

const V2_FIX = 'boot with systemd.unified_cgroup_hierarchy=1 (cgroup v2)';

/** The resource limits of `tsrun run`, by the cgroup v2 controller each needs. */
const LIMITS: ReadonlyArray<{ controller: string; v1Name: string; feature: string; config: string }> = [
  { controller: 'memory', v1Name: 'memory', feature: '--memory, --memory-swap, --memory-reservation (linux.resources.memory)', config: 'CONFIG_MEMCG' },
  { controller: 'cpu', v1Name: 'cpu', feature: '--cpus, --cpu-shares, --cpu-quota, --cpu-period (linux.resources.cpu)', config: 'CONFIG_CGROUP_SCHED' },
  { controller: 'pids', v1Name: 'pids', feature: '--pids-limit (linux.resources.pids)', config: 'CONFIG_CGROUP_PIDS' },
  { controller: 'io', v1Name: 'blkio', feature: '--blkio-weight, --device-{read,write}-{bps,iops} (linux.resources.blockIO)', config: 'CONFIG_BLK_CGROUP' },
  { controller: 'cpuset', v1Name: 'cpuset', feature: '--cpuset-cpus, --cpuset-mems (linux.resources.cpu.cpus, .mems)', config: 'CONFIG_CPUSETS' },
  { controller: 'hugetlb', v1Name: 'hugetlb', feature: 'hugepage limits (linux.resources.hugepageLimits)', config: 'CONFIG_CGROUP_HUGETLB' },
];

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/** [major, minor, patch] of a kernel release ("6.1.0-18-amd64" -> [6, 1, 0]); zeros where unparsable. */
export function parseKernelVersion(release: string): [number, number, number] {
  const m = /^(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(release);
  return m ? [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0)] : [0, 0, 0];
}

/** release >= major.minor */
export function kernelAtLeast(release: string, major: number, minor: number): boolean {
  const [a, b] = parseKernelVersion(release);
  return a > major || (a === major && b >= minor);
}

/** PRETTY_NAME of an os-release text (shell-style quoting), else NAME VERSION, else "". */
export function parseOsRelease(text: string): string {
  const vars = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    let v = m[2]!;
    if ((v.startsWith('"') && v.endsWith('"') && v.length >= 2) || (v.startsWith("'") && v.endsWith("'") && v.length >= 2)) {
      v = v.slice(1, -1);
      if (m[2]!.startsWith('"')) v = v.replace(/\\(["$`\\])/g, '$1');
    }
    vars.set(m[1]!, v);
  }
  return vars.get('PRETTY_NAME') || [vars.get('NAME'), vars.get('VERSION')].filter(Boolean).join(' ');
}

/** /proc/cgroups: "#subsys_name hierarchy num_cgroups enabled" lines. */
export function parseProcCgroups(text: string): KernelController[] {
  const out: KernelController[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const [name, hierarchy, , enabled] = line.split(/\s+/);
    if (!name || hierarchy === undefined) continue;
    out.push({ name, hierarchy: Number(hierarchy), enabled: enabled !== '0' });
  }
  return out;
}

function words(text: string | null): string[] {
  return (text ?? '').split(/\s+/).filter(Boolean);
}

function cgroupVersion(v2Mount: string | null, v1: V1Hierarchy[]): CgroupVersion {
  const v1Controllers = v1.some((h) => h.controllers.length > 0);
  if (v2Mount) return v1Controllers ? 'hybrid' : 'v2';
  return v1Controllers ? 'v1' : 'none';
}

/** Why a limit kind cannot be applied here, or null when its controller is in the v2 root. */
function limitRefusal(l: (typeof LIMITS)[number], info: HostInfo): Refusal | null {
  const cg = info.cgroup;
  if (cg.v2Mount && cg.v2Controllers.includes(l.controller)) return null;
  const v1 = cg.v1Hierarchies.find((h) => h.controllers.includes(l.v1Name));
  const k = cg.kernelControllers.find((c) => c.name === l.v1Name);
  const name = `the ${l.controller} controller`;
  let reason: string;
  let fix: string;
  if (k && !k.enabled) {
    reason = `${name} is disabled by the kernel command line`;
    fix = `remove cgroup_disable=${l.v1Name} from the kernel command line`;
  } else if (v1 || (k && k.hierarchy > 0)) {
    reason = `${name} is held by cgroup v1 here${v1 ? ` (${v1.mount})` : ''}`;
    fix = V2_FIX;
  } else if (!cg.v2Mount) {
    reason = 'no cgroup v2 hierarchy is mounted';
    fix = `${V2_FIX}, or mount cgroup2 (mount -t cgroup2 none /sys/fs/cgroup)`;
  } else if (!k && cg.kernelControllers.length > 0) {
    reason = `the kernel has no ${l.controller} controller (${l.config})`;
    fix = `use a kernel built with ${l.config}`;
  } else {
    reason = `${name} is not available in ${cg.v2Mount} (not delegated to this cgroup)`;
    fix = `enable it in the parent cgroup's cgroup.subtree_control (systemd: Delegate=yes), or ${V2_FIX}`;
  }
  return { feature: l.feature, reason, fix, controller: l.controller };
}

function refusalsOf(info: HostInfo): Refusal[] {
  const out: Refusal[] = [];
  const [maj, min] = MIN_KERNEL;
  if (!kernelAtLeast(info.kernel, maj, min)) {
    out.push({
      feature: 'containers (tsrun run, create)',
      reason: `Linux ${info.kernel} is older than ${maj}.${min}, tsrun's minimum (openat2, clone3 CLONE_INTO_CGROUP, close_range, mount_setattr)`,
      fix: `run on Linux ${maj}.${min} or newer`,
    });
  }
  for (const p of NETWORK_PLUGINS) {
    if (info.network.plugins[p.name] !== null) continue;
    const pkg = p.name === 'dnsname' ? 'golang-github-containernetworking-plugin-dnsname' : 'containernetworking-plugins';
    out.push({ feature: p.feature, reason: `the CNI plugin "${p.name}" is not in ${DEFAULT_CNI_PLUGIN_DIRS.join(', ')}`, fix: `apt-get install ${pkg}` });
  }
  if (info.network.plugins['dnsname'] !== null && !info.network.dnsmasq) {
    out.push({
      feature: 'names on user networks (network create)',
      reason: 'dnsmasq is not installed (the dnsname plugin runs it)',
      fix: 'apt-get install dnsmasq-base',
    });
  }
  for (const l of LIMITS) {
    const r = limitRefusal(l, info);
    if (r) out.push(r);
  }
  if (!info.cgroup.v2Mount) {
    out.push({
      feature: 'tsrun pause, unpause, kill --all',
      reason: 'no cgroup v2 hierarchy is mounted (they use cgroup.freeze and cgroup.kill)',
      fix: `${V2_FIX}, or mount cgroup2 (mount -t cgroup2 none /sys/fs/cgroup/unified)`,
    });
  }
  if (!info.seccomp.filter) {
    out.push({
      feature: 'seccomp profiles (the default profile, --security-opt seccomp=FILE, linux.seccomp)',
      reason: info.seccomp.supported ? 'the kernel has no seccomp filter mode' : 'the kernel has no seccomp',
      fix: 'use a kernel built with CONFIG_SECCOMP_FILTER, or run with --security-opt seccomp=unconfined',
    });
  }
  if (!info.apparmor) {
    out.push({
      feature: '--security-opt apparmor=PROFILE (process.apparmorProfile)',
      reason: 'AppArmor is not enabled on this host',
      fix: 'boot with AppArmor enabled (apparmor=1 security=apparmor) and load the profile, or run without an AppArmor profile',
    });
  }
  if (!info.selinux) {
    out.push({
      feature: '--security-opt label=... (process.selinuxLabel)',
      reason: 'SELinux is disabled or not supported on this host',
      fix: 'run on a host with SELinux enabled, or run without an SELinux label',
    });
  }
  if (!info.userNamespaces.enabled) {
    const u = info.userNamespaces;
    out.push({
      feature: 'user namespaces (--userns, linux.namespaces "user")',
      reason: u.max === null ? 'the kernel has no user namespaces (CONFIG_USER_NS)' : 'user.max_user_namespaces is 0',
      fix: u.max === null ? 'use a kernel built with CONFIG_USER_NS' : 'sysctl -w user.max_user_namespaces=15000',
    });
  }
  if (info.storage.overlayfs === 'missing') {
    out.push({
      feature: 'containers from images (tsrun run, create: their root is an overlayfs mount)',
      reason: `overlayfs is not in /proc/filesystems and no overlay module was found for ${info.kernel}`,
      fix: 'modprobe overlay, or use a kernel built with CONFIG_OVERLAY_FS',
    });
  }
  return out;
}

/** What this host offers and what tsrun refuses on it. Never throws: what cannot be read is reported as absent. */
export function hostInfo(o: HostInfoOptions = {}): HostInfo {
  const proc = o.procRoot ?? '/proc';
  const kernel = readText(join(proc, 'sys/kernel/osrelease'))?.trim() || osRelease();
  const osText = o.osRelease !== undefined ? readText(o.osRelease) : (readText('/etc/os-release') ?? readText('/usr/lib/os-release'));

  const mountinfo = join(proc, 'self/mountinfo');
  const v2Mount = o.cgroupMount ?? findV2Mount(mountinfo);
  const v1Hierarchies = parseV1Hierarchies(readText(mountinfo) ?? '');
  const v2 = v2Mount ? new CgroupV2(v2Mount) : null;

  const status = readText(join(proc, 'self/status')) ?? '';
  const modeField = /^Seccomp:\s*(\d+)/m.exec(status)?.[1];
  const actionsText = readText(join(proc, 'sys/kernel/seccomp/actions_avail'));

  const maxText = readText(join(proc, 'sys/user/max_user_namespaces'));
  const max = maxText === null ? null : Number(maxText.trim());
  const cloneText = readText(join(proc, 'sys/kernel/unprivileged_userns_clone'));

  const filesystems = readText(join(proc, 'filesystems')) ?? '';
  const overlayRegistered = filesystems.split('\n').some((l) => l.split(/\s+/).includes('overlay'));
  const modules = join(o.modulesRoot ?? '/lib/modules', kernel, 'kernel/fs/overlayfs');

  const lsm = lsmSupport(o.sysRoot ?? '/sys');
  const info: HostInfo = {
    kernel,
    arch: machine(),
    os: osText === null ? '' : parseOsRelease(osText),
    pidfd: kernelAtLeast(kernel, 5, 3),
    clone3IntoCgroup: kernelAtLeast(kernel, 5, 7),
    cgroup: {
      version: cgroupVersion(v2Mount, v1Hierarchies),
      v2Mount,
      v2Controllers: v2 ? v2.rootControllers() : [],
      v2SubtreeControl: v2 ? v2.readList('', 'cgroup.subtree_control') : [],
      v1Hierarchies,
      kernelControllers: parseProcCgroups(readText(join(proc, 'cgroups')) ?? ''),
    },
    seccomp: {
      supported: modeField !== undefined,
      filter: actionsText !== null,
      mode: modeField === '0' ? 'disabled' : modeField === '1' ? 'strict' : modeField === '2' ? 'filter' : 'unknown',
      actions: words(actionsText),
    },
    apparmor: lsm.apparmor,
    selinux: lsm.selinux,
    userNamespaces: {
      enabled: max !== null && max > 0,
      max: max === null || Number.isNaN(max) ? null : max,
      unprivilegedClone: cloneText === null ? null : cloneText.trim() !== '0',
    },
    storage: { overlayfs: overlayRegistered ? 'registered' : existsSync(modules) ? 'module' : 'missing' },
    network: {
      plugins: Object.fromEntries(NETWORK_PLUGINS.map((p) => [p.name, findIn(o.cniPluginDirs ?? DEFAULT_CNI_PLUGIN_DIRS, p.name)])),
      dnsmasq: findIn(o.binDirs ?? ['/usr/sbin', '/usr/bin', '/sbin', '/bin'], 'dnsmasq') !== null,
    },
    refusals: [],
  };
  info.refusals = refusalsOf(info);
  return info;
}

const yesNo = (b: boolean): string => (b ? 'yes' : 'no');
const list = (xs: string[]): string => (xs.length ? xs.join(' ') : '(none)');

/** Human text in the manner of `docker info`: Host, Cgroups, Security, Storage, Refusals. */
export function formatHostInfo(info: HostInfo): string {
  const cg = info.cgroup;
  const lines: string[] = [];
  lines.push('Host:');
  lines.push(` Kernel Version: ${info.kernel}`);
  lines.push(` Operating System: ${info.os || '(unknown)'}`);
  lines.push(` Architecture: ${info.arch}`);
  lines.push(` pidfd (Linux 5.3+): ${yesNo(info.pidfd)}`);
  lines.push(` clone3 CLONE_INTO_CGROUP (Linux 5.7+): ${yesNo(info.clone3IntoCgroup)}`);

  lines.push('Cgroups:');
  const version = { v2: '2', hybrid: 'hybrid (cgroup v1 controllers, cgroup v2 alongside)', v1: '1 (no cgroup v2 mounted)', none: 'none mounted' }[cg.version];
  lines.push(` Cgroup Version: ${version}`);
  if (cg.v2Mount) {
    lines.push(` v2 Mount: ${cg.v2Mount}`);
    lines.push(` v2 Controllers: ${list(cg.v2Controllers)}`);
    lines.push(` v2 Subtree Control: ${list(cg.v2SubtreeControl)}`);
  }
  if (cg.v1Hierarchies.length) {
    lines.push(' v1 Hierarchies:');
    for (const h of cg.v1Hierarchies) lines.push(`  ${h.mount}: ${[...h.controllers, ...(h.name ? [`name=${h.name}`] : [])].join(',') || '(none)'}`);
  }
  const disabled = cg.kernelControllers.filter((c) => !c.enabled).map((c) => c.name);
  if (disabled.length) lines.push(` Disabled by the kernel: ${disabled.join(' ')}`);

  lines.push('Security:');
  const s = info.seccomp;
  lines.push(
    ` Seccomp: ${s.filter ? 'filter mode' : s.supported ? 'strict mode only' : 'no'}${s.mode === 'filter' ? ' (tsrun itself runs under a filter)' : ''}`,
  );
  if (s.actions.length) lines.push(`  Actions: ${s.actions.join(' ')}`);
  lines.push(` AppArmor: ${yesNo(info.apparmor)}`);
  lines.push(` SELinux: ${yesNo(info.selinux)}`);
  const u = info.userNamespaces;
  const clone = u.unprivilegedClone === null ? '' : `, unprivileged_userns_clone ${u.unprivilegedClone ? 1 : 0}`;
  lines.push(` User Namespaces: ${u.max === null ? 'no (not in this kernel)' : `${yesNo(u.enabled)} (max_user_namespaces ${u.max}${clone})`}`);

  lines.push('Storage:');
  const ov = { registered: 'yes', module: 'yes (module, loaded on first use)', missing: 'no' }[info.storage.overlayfs];
  lines.push(` Overlayfs: ${ov}`);

  lines.push('Network (CNI plugins):');
  for (const [name, path] of Object.entries(info.network.plugins)) lines.push(` ${name}: ${path ?? 'missing'}`);
  lines.push(` dnsmasq (for dnsname): ${yesNo(info.network.dnsmasq)}`);

  lines.push('Refusals:');
  if (!info.refusals.length) lines.push(' (none)');
  for (const r of info.refusals) {
    lines.push(` ${r.feature}: ${r.reason}`);
    lines.push(`   fix: ${r.fix}`);
  }
  return `${lines.join('\n')}\n`;
}
