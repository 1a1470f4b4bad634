// The engine's default seccomp profile: Docker's default (moby/profiles seccomp/default.json,
// rendered by moby's setupSeccomp), kept as a template and rendered per container once its
// capability bounding set, the host architecture and the kernel version are known.
//
// Source of the facts: moby/profiles `seccomp/default.json` and `seccomp_linux.go` (the
// allowlist, the capability, architecture and minKernel groups, the clone mask 0x7E020000,
// clone3 -> ENOSYS, the personality values), moby#52494 (socket: AF_ALG 38 and AF_VSOCK 40
// denied with three range rules), containers/common `pkg/seccomp/seccomp.json` (ENOSYS default
// with explicit EPERM rules), runc #2151 and runtime-spec #1087/#1122 (why ENOSYS); summarised
// in the engine notes, section 3 (the default seccomp profile). The tables are written here from
// those facts; no profile file is copied.
//
// One deliberate difference from Docker, the default action:
//   - Docker returns EPERM for every syscall its profile does not allow. libc and Rust std fall
//     back to an older syscall only on ENOSYS, so a syscall newer than the profile (clone3,
//     faccessat2, statx on 32-bit, ...) breaks programs instead of degrading (runc #2151).
//     So, as Podman does, the default is SCMP_ACT_ERRNO with errno 38 (ENOSYS): "not known here".
//   - A syscall the profile knows and refuses must still say EPERM, not "not implemented":
//     every syscall that sits only in a capability group whose capability is absent gets an
//     EPERM twin when rendered (mount, unshare, setns, reboot, init_module, acct, ptrace on old
//     kernels, ...), and the syscalls Docker denies by leaving them out of its list
//     (kexec_load, swapon, keyctl, pivot_root, userfaultfd, ...) are named in an EPERM group.
//   - The argument filters get EPERM rules for what they refuse where one comparison per rule
//     can say it: clone with a namespace flag, socket(AF_ALG) and socket(AF_VSOCK). personality
//     with a value outside Docker's five gets the default (ENOSYS), as under Podman's profile:
//     "none of these five values" cannot be written as a union of single comparisons cheaply.
//   - clone3 stays ENOSYS without CAP_SYS_ADMIN (as Docker): its flags are in a struct BPF
//     cannot read, and ENOSYS makes libc fall back to clone, whose flags are filtered.
//   - io_uring_* are left to the default (ENOSYS, Docker denies them): liburing users fall back
//     to epoll on ENOSYS.
import os from 'node:os';
import type { Seccomp, SeccompArg, SeccompSyscall } from '../spec/types.js';

const ENOSYS = 38;
const EPERM = 1;
const ALLOW = 'SCMP_ACT_ALLOW';
const ERRNO = 'SCMP_ACT_ERRNO';

/** CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET */
const CLONE_NAMESPACE_FLAGS = 0x7e020000;
const CLONE_NS_BITS = [0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000];
const AF_ALG = 38;
const AF_VSOCK = 40;
/** PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, 0xffffffff (query). */
const PERSONALITY_VALUES = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];

/** One rule of the template and when it applies. Architectures are Node's process.arch names. */
export interface SeccompGroup {
  /** Why the group exists (not rendered). */
  comment: string;
  names: readonly string[];
  /** Default SCMP_ACT_ALLOW. */
  action?: typeof ALLOW | typeof ERRNO;
  errnoRet?: number;
  args?: readonly SeccompArg[];
  /** Kept only when every one of these is in the bounding set. */
  includesCaps?: readonly string[];
  /** Kept only when none of these is in the bounding set. */
  excludesCaps?: readonly string[];
  /** Kept only on these architectures. */
  arches?: readonly string[];
  /** Dropped on these architectures. */
  excludesArches?: readonly string[];
  /** Kept only on kernels at least this version ("major.minor"). */
  minKernel?: string;
}

const words = (s: string): string[] => s.split(/\s+/).filter(Boolean);
const arg = (index: number, op: string, value: number, valueTwo = 0): SeccompArg => ({ index, value, valueTwo, op });

/** Docker's unconditional allowlist (361 names; some exist on 32-bit or one architecture only). */
const DOCKER_ALLOWLIST = words(`
  accept accept4 access adjtimex alarm bind brk cachestat capget capset chdir chmod chown chown32
  clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64
  clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range creat
  dup dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2
  epoll_wait epoll_wait_old eventfd eventfd2 execve execveat exit exit_group
  faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat
  fchmodat2 fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork
  fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64
  futex futex_requeue futex_time64 futex_wait futex_waitv futex_wake futimesat
  getcpu getcwd getdents getdents64 getegid getegid32 geteuid geteuid32 getgid getgid32
  getgroups getgroups32 getitimer getpeername getpgid getpgrp getpid getppid getpriority
  getrandom getresgid getresgid32 getresuid getresuid32 getrlimit get_robust_list getrusage
  getsid getsockname getsockopt get_thread_area gettid gettimeofday getuid getuid32
  getxattr getxattrat
  inotify_add_watch inotify_init inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy
  io_getevents io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit ipc
  kill landlock_add_rule landlock_create_ruleset landlock_restrict_self
  lchown lchown32 lgetxattr link linkat listen listmount listxattr listxattrat llistxattr
  _llseek lremovexattr lseek lsetxattr lstat lstat64
  madvise map_shadow_stack membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod
  mknodat mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open
  mq_timedreceive mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap
  mseal msgctl msgget msgrcv msgsnd msync munlock munlockall munmap
  name_to_handle_at nanosleep newfstatat _newselect open openat openat2
  pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll
  ppoll_time64 prctl pread64 preadv preadv2 prlimit64 process_mrelease pselect6
  pselect6_time64 pwrite64 pwritev pwritev2
  read readahead readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg
  remap_file_pages removexattr removexattrat rename renameat renameat2 restart_syscall
  riscv_hwprobe rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo
  rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo
  sched_getaffinity sched_getattr sched_getparam sched_get_priority_max sched_get_priority_min
  sched_getscheduler sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity
  sched_setattr sched_setparam sched_setscheduler sched_yield seccomp select
  semctl semget semop semtimedop semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg
  sendto setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32
  setitimer setpgid setpriority setregid setregid32 setresgid setresgid32 setresuid
  setresuid32 setreuid setreuid32 setrlimit set_robust_list setsid setsockopt set_thread_area
  set_tid_address setuid setuid32 setxattr setxattrat shmat shmctl shmdt shmget shutdown
  sigaltstack signalfd signalfd4 sigprocmask sigreturn socketcall socketpair splice stat
  stat64 statfs statfs64 statmount statx symlink symlinkat sync sync_file_range syncfs sysinfo
  tee tgkill time timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64
  timer_settime timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64
  timerfd_settime timerfd_settime64 times tkill truncate truncate64
  ugetrlimit umask uname unlink unlinkat uretprobe utime utimensat utimensat_time64 utimes
  vfork vmsplice wait4 waitid waitpid write writev
`);

/**
 * Not in Docker's profile at all, so Docker answers EPERM (its default). Named here so they keep
 * EPERM under our ENOSYS default: they are known, and refused on purpose.
 */
const KNOWN_DENIED = words(`
  add_key keyctl request_key
  kexec_load kexec_file_load
  swapon swapoff
  pivot_root
  create_module get_kernel_syms query_module
  userfaultfd
  move_pages migrate_pages
  bdflush nfsservctl _sysctl sysfs uselib ustat vm86 vm86old
  pciconfig_iobase pciconfig_read pciconfig_write
`);

const SYS_ADMIN = 'CAP_SYS_ADMIN';

/** The template, in Docker's order, plus tsrun's EPERM rules (marked). */
const TEMPLATE: readonly SeccompGroup[] = [
  { comment: 'Docker: the unconditional allowlist', names: DOCKER_ALLOWLIST },
  { comment: 'tsrun: known and refused (EPERM, as under Docker)', names: KNOWN_DENIED, action: ERRNO, errnoRet: EPERM },
  {
    comment: 'Docker: from 4.8 ptrace cannot be used to bypass seccomp, so everyone may use it',
    names: ['process_vm_readv', 'process_vm_writev', 'ptrace'],
    minKernel: '4.8',
  },
  // socket: every family but AF_ALG (38) and AF_VSOCK (40). One comparison per rule; two NEs
  // on one argument in one rule would be split into an OR by runc and by native/seccomp.cc.
  { comment: 'Docker: socket families below AF_ALG', names: ['socket'], args: [arg(0, 'SCMP_CMP_LT', AF_ALG)] },
  { comment: 'Docker: AF_NFC, between AF_ALG and AF_VSOCK', names: ['socket'], args: [arg(0, 'SCMP_CMP_EQ', AF_ALG + 1)] },
  { comment: 'Docker: socket families above AF_VSOCK', names: ['socket'], args: [arg(0, 'SCMP_CMP_GT', AF_VSOCK)] },
  { comment: 'tsrun: socket(AF_ALG) is refused, EPERM', names: ['socket'], action: ERRNO, errnoRet: EPERM, args: [arg(0, 'SCMP_CMP_EQ', AF_ALG)] },
  { comment: 'tsrun: socket(AF_VSOCK) is refused, EPERM', names: ['socket'], action: ERRNO, errnoRet: EPERM, args: [arg(0, 'SCMP_CMP_EQ', AF_VSOCK)] },
  ...PERSONALITY_VALUES.map(
    (v): SeccompGroup => ({ comment: `Docker: personality(0x${v.toString(16)})`, names: ['personality'], args: [arg(0, 'SCMP_CMP_EQ', v)] }),
  ),
  { comment: 'Docker: ppc64le', names: ['sync_file_range2', 'swapcontext'], arches: ['ppc64'] },
  {
    comment: 'Docker: arm and arm64',
    names: ['arm_fadvise64_64', 'arm_sync_file_range', 'sync_file_range2', 'breakpoint', 'cacheflush', 'set_tls'],
    arches: ['arm', 'arm64'],
  },
  { comment: 'Docker: amd64 and x32', names: ['arch_prctl'], arches: ['x64'] },
  { comment: 'Docker: amd64, x32 and x86', names: ['modify_ldt'], arches: ['x64', 'ia32'] },
  { comment: 'Docker: s390', names: ['s390_pci_mmio_read', 's390_pci_mmio_write', 's390_runtime_instr'], arches: ['s390', 's390x'] },
  { comment: 'Docker: riscv64', names: ['riscv_flush_icache'], arches: ['riscv64'] },
  { comment: 'Docker: CAP_DAC_READ_SEARCH', names: ['open_by_handle_at'], includesCaps: ['CAP_DAC_READ_SEARCH'] },
  {
    comment: 'Docker: CAP_SYS_ADMIN (26)',
    names: words(`
      bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie
      lsm_get_self_attr lsm_list_modules lsm_set_self_attr mount mount_setattr move_mount
      open_tree perf_event_open quotactl quotactl_fd setdomainname sethostname setns syslog
      umount umount2 unshare
    `),
    includesCaps: [SYS_ADMIN],
  },
  {
    comment: 'Docker: without CAP_SYS_ADMIN, clone without namespace flags',
    names: ['clone'],
    args: [arg(0, 'SCMP_CMP_MASKED_EQ', CLONE_NAMESPACE_FLAGS, 0)],
    excludesCaps: [SYS_ADMIN],
    excludesArches: ['s390', 's390x'],
  },
  {
    comment: 'Docker: without CAP_SYS_ADMIN, clone without namespace flags (s390: flags are the second argument)',
    names: ['clone'],
    args: [arg(1, 'SCMP_CMP_MASKED_EQ', CLONE_NAMESPACE_FLAGS, 0)],
    excludesCaps: [SYS_ADMIN],
    arches: ['s390', 's390x'],
  },
  // Their EPERM side: one rule per namespace flag (a rule holds one comparison per argument, so
  // "any of these bits" is an OR of single-bit MASKED_EQ rules).
  ...CLONE_NS_BITS.map(
    (bit): SeccompGroup => ({
      comment: `tsrun: without CAP_SYS_ADMIN, clone with 0x${bit.toString(16)} is refused, EPERM`,
      names: ['clone'],
      action: ERRNO,
      errnoRet: EPERM,
      args: [arg(0, 'SCMP_CMP_MASKED_EQ', bit, bit)],
      excludesCaps: [SYS_ADMIN],
      excludesArches: ['s390', 's390x'],
    }),
  ),
  ...CLONE_NS_BITS.map(
    (bit): SeccompGroup => ({
      comment: `tsrun: without CAP_SYS_ADMIN, clone with 0x${bit.toString(16)} is refused, EPERM (s390)`,
      names: ['clone'],
      action: ERRNO,
      errnoRet: EPERM,
      args: [arg(1, 'SCMP_CMP_MASKED_EQ', bit, bit)],
      excludesCaps: [SYS_ADMIN],
      arches: ['s390', 's390x'],
    }),
  ),
  {
    comment: 'Docker: without CAP_SYS_ADMIN, clone3 is ENOSYS so libc falls back to the filterable clone',
    names: ['clone3'],
    action: ERRNO,
    errnoRet: ENOSYS,
    excludesCaps: [SYS_ADMIN],
  },
  { comment: 'Docker: CAP_SYS_BOOT', names: ['reboot'], includesCaps: ['CAP_SYS_BOOT'] },
  { comment: 'Docker: CAP_SYS_CHROOT', names: ['chroot'], includesCaps: ['CAP_SYS_CHROOT'] },
  { comment: 'Docker: CAP_SYS_MODULE', names: ['delete_module', 'init_module', 'finit_module'], includesCaps: ['CAP_SYS_MODULE'] },
  { comment: 'Docker: CAP_SYS_PACCT', names: ['acct'], includesCaps: ['CAP_SYS_PACCT'] },
  {
    comment: 'Docker: CAP_SYS_PTRACE',
    names: ['kcmp', 'pidfd_getfd', 'process_madvise', 'process_vm_readv', 'process_vm_writev', 'ptrace'],
    includesCaps: ['CAP_SYS_PTRACE'],
  },
  { comment: 'Docker: CAP_SYS_RAWIO', names: ['iopl', 'ioperm'], includesCaps: ['CAP_SYS_RAWIO'] },
  { comment: 'Docker: CAP_SYS_TIME', names: ['settimeofday', 'stime', 'clock_settime', 'clock_settime64'], includesCaps: ['CAP_SYS_TIME'] },
  { comment: 'Docker: CAP_SYS_TTY_CONFIG', names: ['vhangup'], includesCaps: ['CAP_SYS_TTY_CONFIG'] },
  {
    comment: 'Docker: CAP_SYS_NICE',
    names: ['get_mempolicy', 'mbind', 'set_mempolicy', 'set_mempolicy_home_node'],
    includesCaps: ['CAP_SYS_NICE'],
  },
  { comment: 'Docker: CAP_SYSLOG', names: ['syslog'], includesCaps: ['CAP_SYSLOG'] },
  { comment: 'Docker: CAP_BPF', names: ['bpf'], includesCaps: ['CAP_BPF'] },
  { comment: 'Docker: CAP_PERFMON', names: ['perf_event_open'], includesCaps: ['CAP_PERFMON'] },
];

/** Node's process.arch -> the filter's architectures (Docker's archMap: native + sub-architectures). */
function architecturesFor(arch: string): string[] {
  switch (arch) {
    case 'x64':
      return ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'];
    case 'arm64':
      return ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'];
    case 'ia32':
      return ['SCMP_ARCH_X86'];
    case 'arm':
      return ['SCMP_ARCH_ARM'];
    case 's390x':
      return ['SCMP_ARCH_S390X', 'SCMP_ARCH_S390'];
    case 's390':
      return ['SCMP_ARCH_S390'];
    case 'riscv64':
      return ['SCMP_ARCH_RISCV64'];
    case 'loong64':
      return ['SCMP_ARCH_LOONGARCH64'];
    case 'ppc64':
      return [os.endianness() === 'LE' ? 'SCMP_ARCH_PPC64LE' : 'SCMP_ARCH_PPC64'];
    case 'ppc':
      return ['SCMP_ARCH_PPC'];
    case 'mips':
      return ['SCMP_ARCH_MIPS'];
    case 'mipsel':
      return ['SCMP_ARCH_MIPSEL'];
    default:
      return []; // unknown: no list, libseccomp uses the native architecture only
  }
}

/** "6.1.0-18-amd64" -> [6, 1]; null when it does not start with major.minor. */
function kernelVersion(release: string): [number, number] | null {
  const m = /^(\d+)\.(\d+)/.exec(release.trim());
  return m ? [Number(m[1]), Number(m[2])] : null;
}

function kernelAtLeast(release: string, min: string): boolean {
  const have = kernelVersion(release);
  const want = kernelVersion(min);
  if (!have || !want) return false; // unknown: the conservative answer (the group is not kept)
  return have[0] !== want[0] ? have[0] > want[0] : have[1] >= want[1];
}

function capName(c: string): string {
  const up = c.trim().toUpperCase();
  return up.startsWith('CAP_') ? up : `CAP_${up}`;
}

/** A group as an OCI rule (copies, so callers cannot edit the template). */
function toSyscall(g: SeccompGroup): SeccompSyscall {
  const out: SeccompSyscall = { names: [...g.names], action: g.action ?? ALLOW };
  if (g.errnoRet !== undefined) out.errnoRet = g.errnoRet;
  if (g.args?.length) out.args = g.args.map((a) => ({ ...a }));
  return out;
}

/**
 * Render the default profile for one container: Docker's groups whose conditions hold, then an
 * EPERM twin for each capability group that was left out (only the names nothing kept handles).
 */
export function defaultSeccompProfile(o: { capabilities: string[]; arch?: string; kernel?: string }): Seccomp {
  const arch = o.arch ?? process.arch;
  const kernel = o.kernel ?? os.release();
  const caps = new Set(o.capabilities.map(capName));

  const archOk = (g: SeccompGroup) => (!g.arches || g.arches.includes(arch)) && !g.excludesArches?.includes(arch);
  const kernelOk = (g: SeccompGroup) => !g.minKernel || kernelAtLeast(kernel, g.minKernel);
  const capsOk = (g: SeccompGroup) => (g.includesCaps ?? []).every((c) => caps.has(c)) && !(g.excludesCaps ?? []).some((c) => caps.has(c));

  const kept = TEMPLATE.filter((g) => archOk(g) && kernelOk(g) && capsOk(g));
  const syscalls = kept.map(toSyscall);

  // Every name some kept rule speaks for (whatever its action or arguments) gets no twin: an
  // unconditional EPERM next to a syscall's conditional rules would override or conflict with
  // them in libseccomp (clone keeps its argument filter, clone3 its ENOSYS).
  const handled = new Set(kept.flatMap((g) => g.names));
  for (const g of TEMPLATE) {
    if (!g.includesCaps?.length || (g.action ?? ALLOW) !== ALLOW) continue;
    if (!archOk(g) || !kernelOk(g) || capsOk(g)) continue;
    const names = g.names.filter((n) => !handled.has(n));
    if (names.length === 0) continue;
    for (const n of names) handled.add(n);
    syscalls.push({ names, action: ERRNO, errnoRet: EPERM });
  }

  const profile: Seccomp = { defaultAction: ERRNO, defaultErrnoRet: ENOSYS };
  const architectures = architecturesFor(arch);
  if (architectures.length) profile.architectures = architectures;
  profile.syscalls = syscalls;
  return profile;
}

/** Every syscall name the template mentions, on any architecture, sorted (for tests). */
export function seccompSyscallNames(): string[] {
  return [...new Set(TEMPLATE.flatMap((g) => g.names))].sort();
}
