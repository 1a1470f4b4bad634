import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { machine, release } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatHostInfo, type HostInfoOptions, hostInfo, kernelAtLeast, parseKernelVersion, parseOsRelease } from '../../../src/engine/host-info.js';
import { tempDir } from '../../helpers/tmp-dir.js';

const V2_MOUNTINFO = [
  '22 1 259:1 / / rw,relatime - ext4 /dev/vda1 rw',
  '25 22 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot',
].join('\n');

const HYBRID_MOUNTINFO = [
  '22 1 259:1 / / rw,relatime - ext4 /dev/vda1 rw',
  '31 22 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
  '32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu',
  '35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
  '38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio',
  '39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids',
  '34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset',
  '40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd',
  '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
].join('\n');

const PROC_CGROUPS_V2 = `#subsys_name\thierarchy\tnum_cgroups\tenabled
cpuset\t0\t1\t1
cpu\t0\t1\t1
cpuacct\t0\t1\t1
blkio\t0\t1\t1
memory\t0\t1\t1
devices\t0\t1\t1
freezer\t0\t1\t1
hugetlb\t0\t1\t1
pids\t0\t1\t1
`;

const PROC_CGROUPS_HYBRID = `#subsys_name\thierarchy\tnum_cgroups\tenabled
cpuset\t3\t2\t1
cpu\t1\t2\t1
cpuacct\t2\t2\t1
blkio\t7\t2\t1
memory\t4\t44\t1
devices\t5\t2\t1
freezer\t6\t2\t1
hugetlb\t0\t2\t1
pids\t8\t2\t1
`;

interface Fixture {
  kernel?: string;
  mountinfo: string;
  procCgroups: string;
  controllers?: string;
  subtree?: string;
  filesystems?: string;
  seccompMode?: string | null;
  actions?: string | null;
  maxUserns?: string | null;
  usernsClone?: string;
  apparmor?: boolean;
  selinux?: boolean;
  osRelease?: string;
  /** CNI plugins to leave out of the fixture's plugin dir; dnsmasq: false leaves it out. */
  missingPlugins?: string[];
  dnsmasq?: boolean;
}

function put(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
}

/** A /proc, /sys, cgroup mount and os-release laid out in a tmpdir. */
function fixture(f: Fixture): HostInfoOptions {
  const root = tempDir('tsrun-hostinfo-');
  const proc = join(root, 'proc');
  const sys = join(root, 'sys');
  const cg = join(root, 'cgroup');
  put(join(proc, 'sys/kernel/osrelease'), `${f.kernel ?? '6.1.0-18-amd64'}\n`);
  put(join(proc, 'self/mountinfo'), `${f.mountinfo}\n`);
  put(join(proc, 'cgroups'), f.procCgroups);
  put(join(proc, 'filesystems'), f.filesystems ?? 'nodev\tsysfs\nnodev\ttmpfs\n\text4\nnodev\toverlay\n');
  put(join(proc, 'self/status'), `Name:\tnode\n${f.seccompMode === null ? '' : `Seccomp:\t${f.seccompMode ?? '0'}\nSeccomp_filters:\t0\n`}`);
  if (f.actions !== null)
    put(join(proc, 'sys/kernel/seccomp/actions_avail'), `${f.actions ?? 'kill_process kill_thread trap errno user_notif trace log allow'}\n`);
  if (f.maxUserns !== null) put(join(proc, 'sys/user/max_user_namespaces'), `${f.maxUserns ?? '63445'}\n`);
  if (f.usernsClone !== undefined) put(join(proc, 'sys/kernel/unprivileged_userns_clone'), `${f.usernsClone}\n`);
  mkdirSync(sys, { recursive: true });
  if (f.apparmor) put(join(sys, 'module/apparmor/parameters/enabled'), 'Y\n');
  if (f.selinux) put(join(sys, 'fs/selinux/enforce'), '1\n');
  put(join(cg, 'cgroup.controllers'), `${f.controllers ?? ''}\n`);
  put(join(cg, 'cgroup.subtree_control'), `${f.subtree ?? ''}\n`);
  put(join(root, 'os-release'), f.osRelease ?? 'NAME="Debian GNU/Linux"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n');
  mkdirSync(join(root, 'modules'));
  for (const p of ['bridge', 'host-local', 'portmap', 'firewall', 'tuning', 'dnsname']) {
    if (!f.missingPlugins?.includes(p)) put(join(root, 'cni', p), '#!/bin/sh\n');
  }
  if (f.dnsmasq !== false) put(join(root, 'bin', 'dnsmasq'), '#!/bin/sh\n');
  spawnSync('chmod', ['-R', '755', join(root, 'cni'), join(root, 'bin')]);
  return {
    procRoot: proc,
    sysRoot: sys,
    cgroupMount: cg,
    osRelease: join(root, 'os-release'),
    modulesRoot: join(root, 'modules'),
    cniPluginDirs: [join(root, 'cni')],
    binDirs: [join(root, 'bin')],
  };
}

describe('hostInfo on fixture hosts', () => {
  it('names each missing CNI plugin (and dnsmasq) with the feature it costs and the package that brings it', () => {
    const info = hostInfo(fixture({ mountinfo: V2_MOUNTINFO, procCgroups: '', missingPlugins: ['portmap', 'dnsname'], dnsmasq: false }));
    expect(info.network.plugins['portmap']).toBeNull();
    expect(info.network.plugins['bridge']).toMatch(/cni\/bridge$/);
    const portmap = info.refusals.find((r) => r.feature.startsWith('published ports'));
    expect(portmap).toMatchObject({ fix: 'apt-get install containernetworking-plugins' });
    expect(info.refusals.find((r) => r.reason.includes('"dnsname"'))?.fix).toBe('apt-get install golang-github-containernetworking-plugin-dnsname');
    expect(formatHostInfo(info)).toContain(' portmap: missing');
  });
  it('pure cgroup v2 with every controller, AppArmor and SELinux on: nothing refused', () => {
    const o = fixture({
      mountinfo: V2_MOUNTINFO,
      procCgroups: PROC_CGROUPS_V2,
      controllers: 'cpuset cpu io memory hugetlb pids rdma misc',
      subtree: 'cpuset cpu io memory pids',
      apparmor: true,
      selinux: true,
      usernsClone: '1',
    });
    const info = hostInfo(o);
    expect(info.refusals).toEqual([]);
    expect(info).toMatchObject({
      kernel: '6.1.0-18-amd64',
      os: 'Debian GNU/Linux 12 (bookworm)',
      pidfd: true,
      clone3IntoCgroup: true,
      cgroup: {
        version: 'v2',
        v2Mount: o.cgroupMount,
        v2Controllers: ['cpuset', 'cpu', 'io', 'memory', 'hugetlb', 'pids', 'rdma', 'misc'],
        v2SubtreeControl: ['cpuset', 'cpu', 'io', 'memory', 'pids'],
        v1Hierarchies: [],
      },
      seccomp: { supported: true, filter: true, mode: 'disabled' },
      apparmor: true,
      selinux: true,
      userNamespaces: { enabled: true, max: 63445, unprivilegedClone: true },
      storage: { overlayfs: 'registered' },
    });
    expect(info.seccomp.actions).toContain('user_notif');
    expect(info.cgroup.kernelControllers.find((c) => c.name === 'memory')).toEqual({ name: 'memory', hierarchy: 0, enabled: true });
  });

  it('hybrid with an empty v2 root: memory, cpu, pids, io and cpuset are refused with the v2 fix', () => {
    const o = fixture({ mountinfo: HYBRID_MOUNTINFO, procCgroups: PROC_CGROUPS_HYBRID, controllers: '' });
    const info = hostInfo(o);
    expect(info.cgroup.version).toBe('hybrid');
    expect(info.cgroup.v2Controllers).toEqual([]);
    expect(info.cgroup.v1Hierarchies.map((h) => h.mount)).toEqual([
      '/sys/fs/cgroup/blkio',
      '/sys/fs/cgroup/cpu',
      '/sys/fs/cgroup/cpuset',
      '/sys/fs/cgroup/memory',
      '/sys/fs/cgroup/pids',
      '/sys/fs/cgroup/systemd',
    ]);
    const byCtrl = (c: string) => info.refusals.find((r) => r.controller === c);
    for (const c of ['memory', 'cpu', 'pids', 'io', 'cpuset']) {
      const r = byCtrl(c);
      expect(r, c).toBeDefined();
      expect(r!.reason).toMatch(new RegExp(`the ${c} controller is held by cgroup v1 here \\(/sys/fs/cgroup/`));
      expect(r!.fix).toBe('boot with systemd.unified_cgroup_hierarchy=1 (cgroup v2)');
    }
    expect(byCtrl('memory')!.feature).toMatch(/^--memory\b/);
    expect(byCtrl('pids')!.feature).toMatch(/^--pids-limit\b/);
    expect(byCtrl('cpu')!.feature).toMatch(/^--cpus\b/);
    // hugetlb is in no v1 hierarchy (0 in /proc/cgroups) and not in this v2 root: not delegated.
    expect(byCtrl('hugetlb')!.reason).toMatch(/not available in .* \(not delegated/);
    // No LSM on this fixture: profiles and labels are refused too.
    expect(info.refusals.map((r) => r.feature)).toEqual(expect.arrayContaining([expect.stringMatching(/apparmor/), expect.stringMatching(/label/)]));

    const text = formatHostInfo(info);
    for (const section of ['Host:', 'Cgroups:', 'Security:', 'Storage:', 'Refusals:']) expect(text).toContain(`\n${section}`.trimStart());
    expect(text).toContain('Cgroup Version: hybrid');
    expect(text).toContain('/sys/fs/cgroup/memory: memory');
    expect(text).toContain('/sys/fs/cgroup/systemd: name=systemd');
    expect(text).toContain(' v2 Controllers: (none)');
    expect(text).toMatch(
      /--memory.*: the memory controller is held by cgroup v1 here \(\/sys\/fs\/cgroup\/memory\)\n {3}fix: boot with systemd\.unified_cgroup_hierarchy=1/,
    );
  });

  it('hybrid that gave some controllers to v2: only the others are refused', () => {
    const cgroups = PROC_CGROUPS_HYBRID.replace(/^memory\t4/m, 'memory\t0').replace(/^pids\t8/m, 'pids\t0');
    const mountinfo = HYBRID_MOUNTINFO.split('\n')
      .filter((l) => !/\/(memory|pids) /.test(l))
      .join('\n');
    const info = hostInfo(fixture({ mountinfo, procCgroups: cgroups, controllers: 'memory pids hugetlb' }));
    const reasons = info.refusals.map((r) => r.reason).join('\n');
    expect(reasons).not.toMatch(/memory|pids|hugetlb/);
    expect(reasons).toMatch(/the cpu controller is held by cgroup v1/);
  });

  it('cgroup v1 only (no cgroup2): limits and pause are refused', () => {
    const mountinfo = HYBRID_MOUNTINFO.split('\n')
      .filter((l) => !l.includes('cgroup2'))
      .join('\n');
    const o = fixture({ mountinfo, procCgroups: PROC_CGROUPS_HYBRID });
    delete o.cgroupMount;
    const info = hostInfo(o);
    expect(info.cgroup).toMatchObject({ version: 'v1', v2Mount: null, v2Controllers: [], v2SubtreeControl: [] });
    expect(info.refusals.find((r) => r.feature.startsWith('tsrun pause'))?.reason).toMatch(/no cgroup v2 hierarchy is mounted/);
    expect(info.refusals.find((r) => r.feature.startsWith('--memory'))?.reason).toMatch(/held by cgroup v1/);
    expect(info.refusals.find((r) => r.feature.startsWith('hugepage'))?.reason).toBe('no cgroup v2 hierarchy is mounted');
    expect(formatHostInfo(info)).toContain('Cgroup Version: 1 (no cgroup v2 mounted)');
  });

  it('a controller disabled on the kernel command line names cgroup_disable', () => {
    const cgroups = PROC_CGROUPS_V2.replace(/^memory\t0\t1\t1/m, 'memory\t0\t1\t0');
    const info = hostInfo(fixture({ mountinfo: V2_MOUNTINFO, procCgroups: cgroups, controllers: 'cpuset cpu io hugetlb pids', apparmor: true, selinux: true }));
    expect(info.refusals).toEqual([
      {
        feature: expect.stringMatching(/^--memory/),
        reason: 'the memory controller is disabled by the kernel command line',
        fix: 'remove cgroup_disable=memory from the kernel command line',
        controller: 'memory',
      },
    ]);
  });

  it('an old kernel, no seccomp filter, no user namespaces, no overlayfs', () => {
    const info = hostInfo(
      fixture({
        kernel: '5.4.0-150-generic',
        mountinfo: V2_MOUNTINFO,
        procCgroups: PROC_CGROUPS_V2,
        controllers: 'cpuset cpu io memory hugetlb pids',
        filesystems: 'nodev\tsysfs\n\text4\n',
        seccompMode: '2',
        actions: null,
        maxUserns: '0',
        usernsClone: '0',
        apparmor: true,
        selinux: true,
      }),
    );
    expect(info).toMatchObject({
      pidfd: true,
      clone3IntoCgroup: false,
      seccomp: { supported: true, filter: false, mode: 'filter', actions: [] },
      userNamespaces: { enabled: false, max: 0, unprivilegedClone: false },
      storage: { overlayfs: 'missing' },
    });
    const features = info.refusals.map((r) => r.feature);
    expect(features).toHaveLength(4);
    expect(info.refusals[0]).toMatchObject({
      reason: expect.stringMatching(/Linux 5\.4\.0-150-generic is older than 5\.12/),
      fix: 'run on Linux 5.12 or newer',
    });
    expect(info.refusals.find((r) => r.feature.startsWith('seccomp'))?.reason).toBe('the kernel has no seccomp filter mode');
    expect(info.refusals.find((r) => r.feature.startsWith('user namespaces'))?.fix).toBe('sysctl -w user.max_user_namespaces=15000');
    expect(info.refusals.find((r) => r.reason.startsWith('overlayfs'))?.fix).toMatch(/modprobe overlay/);
  });

  it('overlayfs as a loadable module is not refused', () => {
    const o = fixture({ mountinfo: V2_MOUNTINFO, procCgroups: PROC_CGROUPS_V2, filesystems: 'nodev\tsysfs\n' });
    mkdirSync(join(o.modulesRoot!, '6.1.0-18-amd64/kernel/fs/overlayfs'), { recursive: true });
    const info = hostInfo(o);
    expect(info.storage.overlayfs).toBe('module');
    expect(info.refusals.some((r) => r.reason.startsWith('overlayfs'))).toBe(false);
  });
});

describe('parsers', () => {
  it('kernel versions', () => {
    expect(parseKernelVersion('6.18.44-fc-v1300')).toEqual([6, 18, 44]);
    expect(parseKernelVersion('5.10')).toEqual([5, 10, 0]);
    expect(parseKernelVersion('garbage')).toEqual([0, 0, 0]);
    expect(kernelAtLeast('5.7.0', 5, 7)).toBe(true);
    expect(kernelAtLeast('5.6.19', 5, 7)).toBe(false);
    expect(kernelAtLeast('6.0.0', 5, 12)).toBe(true);
    expect(kernelAtLeast('4.19.0', 5, 3)).toBe(false);
  });

  it('os-release', () => {
    expect(parseOsRelease('NAME="Alpine Linux"\nPRETTY_NAME="Alpine Linux v3.20"\n')).toBe('Alpine Linux v3.20');
    expect(parseOsRelease('PRETTY_NAME=\'Quoted \\"single\\"\'\n')).toBe('Quoted \\"single\\"');
    expect(parseOsRelease('PRETTY_NAME="Say \\"hi\\""\n')).toBe('Say "hi"');
    expect(parseOsRelease('NAME=Fedora\nVERSION="40 (Forty)"\n')).toBe('Fedora 40 (Forty)');
    expect(parseOsRelease('')).toBe('');
  });
});

describe('hostInfo on this host (invariants only)', () => {
  it('agrees with node:os and its own parts', () => {
    const info = hostInfo();
    expect(info.kernel).toBe(release());
    expect(info.arch).toBe(machine());
    expect(['v2', 'hybrid', 'v1', 'none']).toContain(info.cgroup.version);
    expect(info.cgroup.v2Mount === null).toBe(info.cgroup.version === 'v1' || info.cgroup.version === 'none');
    if (info.cgroup.version === 'hybrid') expect(info.cgroup.v1Hierarchies.some((h) => h.controllers.length > 0)).toBe(true);
    expect(info.pidfd).toBe(kernelAtLeast(release(), 5, 3));
    expect(info.clone3IntoCgroup).toBe(kernelAtLeast(release(), 5, 7));
    // A limit kind is refused exactly when its controller is missing from the v2 root.
    for (const c of ['memory', 'cpu', 'pids', 'io', 'cpuset', 'hugetlb']) {
      const refused = info.refusals.some((r) => r.controller === c);
      expect(refused, c).toBe(!info.cgroup.v2Controllers.includes(c));
    }
    for (const r of info.refusals) {
      expect(r.feature).not.toBe('');
      expect(r.reason).not.toBe('');
      expect(r.fix).not.toBe('');
    }
    const text = formatHostInfo(info);
    expect(text).toContain(`Kernel Version: ${release()}`);
    expect(text).toMatch(/^Host:\n[\s\S]*\nCgroups:\n[\s\S]*\nSecurity:\n[\s\S]*\nStorage:\n[\s\S]*\nRefusals:\n/);
  });
});
