import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { defaultSeccompProfile, seccompSyscallNames } from '../../../src/engine/seccomp-profile.js';
import type { Seccomp, SeccompSyscall } from '../../../src/spec/types.js';
import { DOCKER_CAPS } from '../../helpers/docker-caps.js';

const KERNEL = '6.1.0-18-amd64';
const render = (caps: string[], over: { arch?: string; kernel?: string } = {}) =>
  defaultSeccompProfile({ capabilities: caps, arch: 'x64', kernel: KERNEL, ...over });

/** The rules that mention `name`. */
const rulesFor = (p: Seccomp, name: string): SeccompSyscall[] => (p.syscalls ?? []).filter((s) => s.names.includes(name));
const unconditional = (p: Seccomp, name: string, action: string, errnoRet?: number) =>
  rulesFor(p, name).some((s) => !s.args?.length && s.action === action && s.errnoRet === errnoRet);
const allowed = (p: Seccomp, name: string) => unconditional(p, name, 'SCMP_ACT_ALLOW');
const eperm = (p: Seccomp, name: string) => unconditional(p, name, 'SCMP_ACT_ERRNO', 1);

const CLONE_MASK = 0x7e020000;
const SYS_ADMIN_26 = [
  'bpf',
  'clone',
  'clone3',
  'fanotify_init',
  'fsconfig',
  'fsmount',
  'fsopen',
  'fspick',
  'lookup_dcookie',
  'lsm_get_self_attr',
  'lsm_list_modules',
  'lsm_set_self_attr',
  'mount',
  'mount_setattr',
  'move_mount',
  'open_tree',
  'perf_event_open',
  'quotactl',
  'quotactl_fd',
  'setdomainname',
  'sethostname',
  'setns',
  'syslog',
  'umount',
  'umount2',
  'unshare',
];

describe('defaultSeccompProfile: shape', () => {
  it('ENOSYS by default, the x86_64 architectures, an allowlist', () => {
    const p = render(DOCKER_CAPS);
    expect(p.defaultAction).toBe('SCMP_ACT_ERRNO');
    expect(p.defaultErrnoRet).toBe(38);
    expect(p.architectures).toEqual(['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
    const first = p.syscalls![0]!;
    expect(first.action).toBe('SCMP_ACT_ALLOW');
    expect(first.args).toBeUndefined();
    expect(first.names).toHaveLength(361); // Docker's group 0
    for (const n of ['read', 'write', 'execve', 'openat2', 'close_range', 'faccessat2', 'statx', 'socketcall', 'getxattrat', 'io_submit']) {
      expect(first.names, n).toContain(n);
    }
    for (const n of ['mount', 'unshare', 'setns', 'ptrace', 'keyctl', 'pivot_root', 'io_uring_setup', 'kexec_load', 'socket', 'personality', 'clone']) {
      expect(first.names, n).not.toContain(n);
    }
  });

  it('arm64 gets its architectures and arm syscalls, not the x86 ones', () => {
    const p = render(DOCKER_CAPS, { arch: 'arm64' });
    expect(p.architectures).toEqual(['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
    for (const n of ['arm_fadvise64_64', 'arm_sync_file_range', 'sync_file_range2', 'breakpoint', 'cacheflush', 'set_tls']) {
      expect(allowed(p, n), n).toBe(true);
    }
    expect(rulesFor(p, 'arch_prctl')).toEqual([]);
    expect(rulesFor(p, 'modify_ldt')).toEqual([]);
  });

  it('x86_64 gets arch_prctl and modify_ldt, not the arm syscalls; ia32 modify_ldt only', () => {
    const p = render(DOCKER_CAPS);
    expect(allowed(p, 'arch_prctl')).toBe(true);
    expect(allowed(p, 'modify_ldt')).toBe(true);
    expect(rulesFor(p, 'set_tls')).toEqual([]);
    const ia32 = render(DOCKER_CAPS, { arch: 'ia32' });
    expect(ia32.architectures).toEqual(['SCMP_ARCH_X86']);
    expect(allowed(ia32, 'modify_ldt')).toBe(true);
    expect(rulesFor(ia32, 'arch_prctl')).toEqual([]);
  });

  it('s390x: the clone filter reads the flags from the second argument', () => {
    const p = render(DOCKER_CAPS, { arch: 's390x' });
    expect(p.architectures).toEqual(['SCMP_ARCH_S390X', 'SCMP_ARCH_S390']);
    const allow = rulesFor(p, 'clone').filter((s) => s.action === 'SCMP_ACT_ALLOW');
    expect(allow).toEqual([{ names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 1, value: CLONE_MASK, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }] }]);
    expect(rulesFor(p, 'clone').every((s) => s.args?.[0]?.index === 1)).toBe(true);
    expect(allowed(p, 's390_runtime_instr')).toBe(true);
  });

  it('an unknown architecture gets no architecture list (native only)', () => {
    expect(render(DOCKER_CAPS, { arch: 'nonesuch' }).architectures).toBeUndefined();
  });

  it('defaults to the host (process.arch, os.release())', () => {
    const p = defaultSeccompProfile({ capabilities: DOCKER_CAPS });
    expect(p).toEqual(render(DOCKER_CAPS, { arch: process.arch, kernel: os.release() }));
  });
});

describe("defaultSeccompProfile: docker's 14 capabilities", () => {
  const p = render(DOCKER_CAPS);

  it('mount, unshare, setns and the rest of CAP_SYS_ADMIN are not allowed: EPERM twins', () => {
    for (const n of SYS_ADMIN_26.filter((x) => x !== 'clone' && x !== 'clone3')) {
      expect(allowed(p, n), n).toBe(false);
      expect(eperm(p, n), n).toBe(true);
      expect(rulesFor(p, n), n).toHaveLength(1);
    }
  });

  it('clone is allowed only without namespace flags, and refused (EPERM) with each of them', () => {
    const rules = rulesFor(p, 'clone');
    expect(rules.filter((s) => !s.args?.length)).toEqual([]); // nothing unconditional
    expect(rules).toContainEqual({
      names: ['clone'],
      action: 'SCMP_ACT_ALLOW',
      args: [{ index: 0, value: CLONE_MASK, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }],
    });
    const denied = rules.filter((s) => s.action === 'SCMP_ACT_ERRNO');
    expect(denied.every((s) => s.errnoRet === 1 && s.args?.length === 1 && s.args[0]!.index === 0 && s.args[0]!.op === 'SCMP_CMP_MASKED_EQ')).toBe(true);
    const bits = denied.map((s) => s.args![0]!.value);
    expect(denied.every((s) => s.args![0]!.value === s.args![0]!.valueTwo)).toBe(true);
    expect(bits.reduce((a, b) => a | b, 0) >>> 0).toBe(CLONE_MASK);
    expect(bits.every((b) => (b & (b - 1)) === 0)).toBe(true); // one bit each
  });

  it('clone3 is ENOSYS so libc falls back to clone', () => {
    expect(rulesFor(p, 'clone3')).toEqual([{ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 }]);
  });

  it('every other capability group that is absent has an EPERM twin; SYS_CHROOT is present', () => {
    for (const n of [
      'reboot',
      'init_module',
      'finit_module',
      'delete_module',
      'acct',
      'kcmp',
      'pidfd_getfd',
      'process_madvise',
      'iopl',
      'ioperm',
      'settimeofday',
      'stime',
      'clock_settime',
      'clock_settime64',
      'vhangup',
      'get_mempolicy',
      'mbind',
      'set_mempolicy',
      'set_mempolicy_home_node',
      'syslog',
      'bpf',
      'perf_event_open',
      'open_by_handle_at',
    ]) {
      expect(eperm(p, n), n).toBe(true);
      expect(allowed(p, n), n).toBe(false);
    }
    expect(allowed(p, 'chroot')).toBe(true);
    expect(eperm(p, 'chroot')).toBe(false);
  });

  it('syscalls Docker denies by omission are EPERM, not ENOSYS', () => {
    for (const n of ['kexec_load', 'kexec_file_load', 'swapon', 'swapoff', 'keyctl', 'add_key', 'request_key', 'pivot_root', 'userfaultfd', 'vm86']) {
      expect(eperm(p, n), n).toBe(true);
    }
  });

  it('each name has at most one unconditional rule, never next to conditional ones', () => {
    const byName = new Map<string, SeccompSyscall[]>();
    for (const s of p.syscalls!) for (const n of s.names) byName.set(n, [...(byName.get(n) ?? []), s]);
    for (const [n, rules] of byName) {
      const plain = rules.filter((s) => !s.args?.length);
      expect(plain.length, n).toBeLessThanOrEqual(1);
      if (plain.length) expect(rules, n).toHaveLength(1);
    }
  });

  it('socket: every family but AF_ALG (38) and AF_VSOCK (40), which are EPERM', () => {
    const rules = rulesFor(p, 'socket');
    const one = (action: string, op: string, value: number, errnoRet?: number) => ({
      names: ['socket'],
      action,
      ...(errnoRet === undefined ? {} : { errnoRet }),
      args: [{ index: 0, value, valueTwo: 0, op }],
    });
    expect(rules).toEqual([
      one('SCMP_ACT_ALLOW', 'SCMP_CMP_LT', 38),
      one('SCMP_ACT_ALLOW', 'SCMP_CMP_EQ', 39),
      one('SCMP_ACT_ALLOW', 'SCMP_CMP_GT', 40),
      one('SCMP_ACT_ERRNO', 'SCMP_CMP_EQ', 38, 1),
      one('SCMP_ACT_ERRNO', 'SCMP_CMP_EQ', 40, 1),
    ]);
    // Evaluate the rules on every family: allowed exactly when not 38 and not 40.
    const cmp = (op: string, a: number, v: number) => (op === 'SCMP_CMP_LT' ? a < v : op === 'SCMP_CMP_GT' ? a > v : a === v);
    for (let fam = 0; fam < 64; fam++) {
      const hit = rules.filter((s) => cmp(s.args![0]!.op, fam, s.args![0]!.value));
      expect(hit, String(fam)).toHaveLength(1);
      expect(hit[0]!.action, String(fam)).toBe(fam === 38 || fam === 40 ? 'SCMP_ACT_ERRNO' : 'SCMP_ACT_ALLOW');
    }
  });

  it("personality: Docker's five values only", () => {
    const rules = rulesFor(p, 'personality');
    expect(rules.every((s) => s.action === 'SCMP_ACT_ALLOW' && s.args?.length === 1 && s.args[0]!.op === 'SCMP_CMP_EQ' && s.args[0]!.index === 0)).toBe(true);
    expect(rules.map((s) => s.args![0]!.value)).toEqual([0x0, 0x8, 0x20000, 0x20008, 0xffffffff]);
  });

  it('ptrace and process_vm_* for everyone on kernel >= 4.8', () => {
    for (const n of ['ptrace', 'process_vm_readv', 'process_vm_writev']) {
      expect(allowed(p, n), n).toBe(true);
      expect(eperm(p, n), n).toBe(false);
    }
  });
});

describe('defaultSeccompProfile: with CAP_SYS_ADMIN', () => {
  const p = render([...DOCKER_CAPS, 'CAP_SYS_ADMIN']);

  it('mount, unshare, setns, clone3 allowed; clone unconditional; no twins for them', () => {
    for (const n of SYS_ADMIN_26) {
      expect(allowed(p, n), n).toBe(true);
      expect(eperm(p, n), n).toBe(false);
    }
    expect(rulesFor(p, 'clone')).toHaveLength(1);
    expect(rulesFor(p, 'clone3')).toHaveLength(1);
  });

  it('the other capability groups still have their twins', () => {
    expect(eperm(p, 'reboot')).toBe(true);
    expect(eperm(p, 'init_module')).toBe(true);
    expect(eperm(p, 'kexec_load')).toBe(true);
  });
});

describe('defaultSeccompProfile: capability groups', () => {
  it.each([
    ['CAP_SYS_BOOT', ['reboot']],
    ['CAP_SYS_MODULE', ['init_module', 'finit_module', 'delete_module']],
    ['CAP_SYS_PACCT', ['acct']],
    ['CAP_SYS_PTRACE', ['kcmp', 'pidfd_getfd', 'process_madvise', 'ptrace']],
    ['CAP_SYS_RAWIO', ['iopl', 'ioperm']],
    ['CAP_SYS_TIME', ['settimeofday', 'stime', 'clock_settime', 'clock_settime64']],
    ['CAP_SYS_TTY_CONFIG', ['vhangup']],
    ['CAP_SYS_NICE', ['get_mempolicy', 'mbind', 'set_mempolicy', 'set_mempolicy_home_node']],
    ['CAP_SYSLOG', ['syslog']],
    ['CAP_BPF', ['bpf']],
    ['CAP_PERFMON', ['perf_event_open']],
    ['CAP_DAC_READ_SEARCH', ['open_by_handle_at']],
  ])('%s allows %j', (cap, names) => {
    const without = render(DOCKER_CAPS);
    const withCap = render([...DOCKER_CAPS, cap]);
    for (const n of names) {
      expect(allowed(withCap, n), n).toBe(true);
      expect(eperm(withCap, n), n).toBe(false);
    }
    for (const n of names.filter((x) => x !== 'ptrace')) expect(allowed(without, n), n).toBe(false);
  });

  it('accepts names without the CAP_ prefix, in any case', () => {
    expect(allowed(render(['sys_admin']), 'mount')).toBe(true);
    expect(allowed(render(['SYS_BOOT']), 'reboot')).toBe(true);
  });

  it('the chroot group follows CAP_SYS_CHROOT', () => {
    expect(allowed(render([]), 'chroot')).toBe(false);
    expect(eperm(render([]), 'chroot')).toBe(true);
  });
});

describe('defaultSeccompProfile: kernel gating', () => {
  it('before 4.8, ptrace and process_vm_* need CAP_SYS_PTRACE (EPERM twin otherwise)', () => {
    for (const kernel of ['4.4.0-210-generic', '3.10.0', '4.7.10']) {
      const p = render(DOCKER_CAPS, { kernel });
      for (const n of ['ptrace', 'process_vm_readv', 'process_vm_writev']) {
        expect(allowed(p, n), `${kernel} ${n}`).toBe(false);
        expect(eperm(p, n), `${kernel} ${n}`).toBe(true);
      }
      expect(allowed(render([...DOCKER_CAPS, 'CAP_SYS_PTRACE'], { kernel }), 'ptrace')).toBe(true);
    }
  });

  it('4.8 and later (including 10.x and 5.10) allow them to everyone', () => {
    for (const kernel of ['4.8.0', '4.19.0-26-amd64', '5.10.0', '10.0.1']) {
      expect(allowed(render(DOCKER_CAPS, { kernel }), 'ptrace'), kernel).toBe(true);
    }
  });

  it('an unparseable release is treated as old (conservative)', () => {
    expect(allowed(render(DOCKER_CAPS, { kernel: 'weird' }), 'ptrace')).toBe(false);
  });
});

describe('seccompSyscallNames', () => {
  const names = seccompSyscallNames();

  it('every name in the template, once, sorted', () => {
    expect(names).toEqual([...new Set(names)].sort());
    expect(names.length).toBe(451); // Docker's 426 + 25 known-denied
    for (const n of ['read', 'clone3', 'arch_prctl', 's390_runtime_instr', 'riscv_flush_icache', 'swapcontext', 'kexec_load', 'socket', 'personality']) {
      expect(names, n).toContain(n);
    }
    expect(names.every((n) => /^[a-z_][a-z0-9_]*$/.test(n))).toBe(true);
  });

  it('no rendering names anything outside the template', () => {
    for (const arch of ['x64', 'arm64', 's390x', 'riscv64', 'ppc64', 'ia32']) {
      for (const caps of [[], DOCKER_CAPS, ['CAP_SYS_ADMIN', 'CAP_SYS_PTRACE', 'CAP_SYS_BOOT']]) {
        const p = render(caps, { arch });
        for (const s of p.syscalls!) for (const n of s.names) expect(names, n).toContain(n);
      }
    }
  });

  it('the known-denied names are in no allow rule, whatever the capabilities', () => {
    const all = render(['CAP_SYS_ADMIN', 'CAP_SYS_PTRACE', 'CAP_SYS_BOOT', 'CAP_SYS_MODULE', 'CAP_DAC_READ_SEARCH']);
    for (const n of ['kexec_load', 'swapon', 'keyctl', 'pivot_root', 'userfaultfd']) {
      expect(allowed(all, n), n).toBe(false);
      expect(eperm(all, n), n).toBe(true);
    }
  });
});
