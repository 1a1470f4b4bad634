// The engine's default seccomp profile (src/engine/seccomp-profile.ts) through the project's
// real compiler (compileSeccomp -> libseccomp): it compiles for Docker's default capabilities
// and for all of them, libseccomp knows every name but a short list of syscalls newer than it,
// and the compiled BPF, run by the small classic-BPF interpreter below, gives the answers the
// profile promises (EPERM for known-and-refused, ENOSYS for unknown, the clone and socket
// argument filters).
import { describe, expect, it } from 'vitest';
import { defaultSeccompProfile, seccompSyscallNames } from '../../src/engine/seccomp-profile.js';
import { CAPABILITIES } from '../../src/linux/capabilities.js';
import { compileSeccomp, seccompConstants } from '../../src/linux/seccomp.js';
import { DOCKER_CAPS } from '../helpers/docker-caps.js';

/**
 * Names in the template that libseccomp 2.5.4 (Debian 12's 2.5.4-1+deb12u1) cannot resolve:
 * syscalls added to Linux after its syscall tables. compileSeccomp skips them, as runc does, and
 * they get the default (ENOSYS). Anything else skipped is a typo or a regression and fails.
 */
const NEWER_THAN_LIBSECCOMP = new Set([
  'riscv_hwprobe', // Linux 6.4
  'listmount', // 6.8
  'statmount', // 6.8
  'lsm_get_self_attr', // 6.8
  'lsm_set_self_attr', // 6.8
  'lsm_list_modules', // 6.8
  'mseal', // 6.10
  'uretprobe', // 6.11
  'setxattrat', // 6.13
  'getxattrat', // 6.13
  'listxattrat', // 6.13
  'removexattrat', // 6.13
]);

// --------------------------------------------------------------------------------------------
// A classic BPF interpreter for seccomp programs (linux/filter.h, bpf_common.h), enough for
// what libseccomp emits: loads from struct seccomp_data, scratch memory, ALU, jumps, returns.

interface Call {
  arch: number;
  nr: number;
  args?: number[];
}

const AUDIT_ARCH_X86_64 = 0xc000003e;
const AUDIT_ARCH_I386 = 0x40000003;
const AUDIT_ARCH_AARCH64 = 0xc00000b7;

function seccompData(c: Call): Buffer {
  const b = Buffer.alloc(64);
  b.writeUInt32LE(c.nr >>> 0, 0);
  b.writeUInt32LE(c.arch >>> 0, 4);
  for (const [i, a] of (c.args ?? []).entries()) b.writeBigUInt64LE(BigInt.asUintN(64, BigInt(a)), 16 + 8 * i);
  return b;
}

function alu(op: number, a: number, v: number, pc: number): number {
  switch (op) {
    case 0x00:
      return a + v;
    case 0x10:
      return a - v;
    case 0x20:
      return Math.imul(a, v);
    case 0x30:
      return Math.floor(a / v);
    case 0x40:
      return a | v;
    case 0x50:
      return a & v;
    case 0x60:
      return a << v;
    case 0x70:
      return a >>> v;
    case 0x80:
      return -a;
    case 0x90:
      return a % v;
    case 0xa0:
      return a ^ v;
    default:
      throw new Error(`unsupported alu op 0x${op.toString(16)} at ${pc}`);
  }
}

function runBpf(bpf: Buffer, call: Call): number {
  const data = seccompData(call);
  const mem = new Uint32Array(16);
  let a = 0;
  let x = 0;
  const n = bpf.length / 8;
  for (let pc = 0, steps = 0; pc < n && steps < 100_000; pc++, steps++) {
    const off = pc * 8;
    const code = bpf.readUInt16LE(off);
    const jt = bpf[off + 2]!;
    const jf = bpf[off + 3]!;
    const k = bpf.readUInt32LE(off + 4);
    const cls = code & 0x07;
    const src = code & 0x08 ? x : k;
    switch (cls) {
      case 0x00: // BPF_LD, BPF_LDX
      case 0x01: {
        const mode = code & 0xe0;
        let v: number;
        if (mode === 0x00) v = k;
        else if (mode === 0x20) {
          if ((code & 0x18) !== 0x00 || k + 4 > data.length) throw new Error(`unsupported load at ${pc}`);
          v = data.readUInt32LE(k);
        } else if (mode === 0x60) v = mem[k]!;
        else if (mode === 0x80) v = data.length;
        else throw new Error(`unsupported load mode 0x${mode.toString(16)} at ${pc}`);
        if (cls === 0x00) a = v >>> 0;
        else x = v >>> 0;
        break;
      }
      case 0x02: // BPF_ST
        mem[k] = a;
        break;
      case 0x03: // BPF_STX
        mem[k] = x;
        break;
      case 0x04: // BPF_ALU
        a = alu(code & 0xf0, a, src, pc) >>> 0;
        break;
      case 0x05: {
        // BPF_JMP
        const op = code & 0xf0;
        if (op === 0x00) {
          pc += k;
          break;
        }
        let cond: boolean;
        if (op === 0x10) cond = a === src >>> 0;
        else if (op === 0x20) cond = a > src >>> 0;
        else if (op === 0x30) cond = a >= src >>> 0;
        else if (op === 0x40) cond = (a & src) !== 0;
        else throw new Error(`unsupported jump 0x${op.toString(16)} at ${pc}`);
        pc += cond ? jt : jf;
        break;
      }
      case 0x06: // BPF_RET
        return ((code & 0x18) === 0x10 ? a : k) >>> 0;
      case 0x07: // BPF_MISC: TAX, TXA
        if ((code & 0xf8) === 0x00) x = a;
        else if ((code & 0xf8) === 0x80) a = x;
        else throw new Error(`unsupported misc 0x${code.toString(16)} at ${pc}`);
        break;
    }
  }
  throw new Error('the program ran off its end');
}

const ALLOW = 0x7fff0000;
const errno = (e: number) => (0x00050000 | e) >>> 0;
const EPERM = errno(1);
const ENOSYS = errno(38);

// x86_64 and i386 syscall numbers (arch/x86/entry/syscalls/syscall_{64,32}.tbl).
const X64 = {
  getpid: 39,
  socket: 41,
  clone: 56,
  ptrace: 101,
  personality: 135,
  mount: 165,
  reboot: 169,
  keyctl: 250,
  kexec_load: 246,
  unshare: 272,
  open_by_handle_at: 304,
  setns: 308,
  io_uring_setup: 425,
  clone3: 435,
  chroot: 161,
};
const I386 = { getpid: 20, mount: 21, socketcall: 102, clone: 120, unshare: 310 };
const SIGCHLD = 17;
const CLONE_NEWNS = 0x00020000;
const CLONE_NEWUSER = 0x10000000;
const CLONE_NEWNET = 0x40000000;
const CLONE_NEWTIME = 0x00000080;

function compiled(caps: string[]) {
  const profile = defaultSeccompProfile({ capabilities: caps });
  const out = compileSeccomp(profile);
  return { profile, ...out };
}

describe('the default profile compiles with libseccomp', () => {
  const cases: Array<[string, string[]]> = [
    ["docker's 14 capabilities", DOCKER_CAPS],
    ['every capability', [...CAPABILITIES]],
    ['no capabilities', []],
  ];
  for (const [what, caps] of cases) {
    it(`${what}: compiles, and only syscalls newer than libseccomp are skipped`, () => {
      const { bpf, flags, skipped, profile } = compiled(caps);
      const version = (seccompConstants() as { version?: string }).version;
      console.log(
        `[seccomp-default-profile] ${what}: libseccomp ${version}, ${bpf.length / 8} BPF instructions, skipped (${skipped.length}): ${skipped.join(' ')}`,
      );
      expect(bpf.length % 8).toBe(0);
      expect(bpf.length / 8).toBeGreaterThan(100);
      expect(bpf.length / 8).toBeLessThanOrEqual(4096);
      expect(flags).toBe(0);
      const unexpected = skipped.filter((n) => !NEWER_THAN_LIBSECCOMP.has(n));
      expect(unexpected, `names libseccomp does not know and that are not known-new syscalls (typos?): ${unexpected.join(', ')}`).toEqual([]);
      // Everything skipped came from the rendered profile: nothing invented by the compiler.
      const rendered = new Set(profile.syscalls!.flatMap((s) => s.names));
      for (const n of skipped) expect(rendered.has(n), n).toBe(true);
    });
  }

  it('every name of the template is either known to libseccomp or a listed newer syscall', () => {
    // A profile allowing every name of the template (any arch) shows which names are unknown.
    const names = seccompSyscallNames();
    const { skipped } = compileSeccomp({ defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 38, syscalls: [{ names, action: 'SCMP_ACT_ALLOW' }] });
    console.log(`[seccomp-default-profile] template: ${names.length} names, unknown to libseccomp: ${skipped.join(' ')}`);
    expect(skipped.filter((n) => !NEWER_THAN_LIBSECCOMP.has(n))).toEqual([]);
    // The list stays honest: each entry is in the template (no stale entries hiding a typo).
    for (const n of NEWER_THAN_LIBSECCOMP) expect(names, n).toContain(n);
    // A misspelt name is reported, so the check above can fail.
    const typo = compileSeccomp({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['getpid', 'mounnt'], action: 'SCMP_ACT_ALLOW' }] });
    expect(typo.skipped).toEqual(['mounnt']);
  });
});

describe.skipIf(process.arch !== 'x64')('what the compiled filter answers (x86_64 host)', () => {
  it("docker's default capabilities", () => {
    const { bpf } = compiled(DOCKER_CAPS);
    const x64 = (nr: number, ...args: number[]) => runBpf(bpf, { arch: AUDIT_ARCH_X86_64, nr, args });
    expect(x64(X64.getpid)).toBe(ALLOW);
    // Known, refused without a capability: EPERM, not "not implemented".
    expect(x64(X64.mount)).toBe(EPERM);
    expect(x64(X64.unshare, CLONE_NEWUSER)).toBe(EPERM);
    expect(x64(X64.setns)).toBe(EPERM);
    expect(x64(X64.reboot)).toBe(EPERM);
    expect(x64(X64.open_by_handle_at)).toBe(EPERM);
    expect(x64(X64.kexec_load)).toBe(EPERM);
    expect(x64(X64.keyctl)).toBe(EPERM);
    // SYS_CHROOT is one of docker's 14.
    expect(x64(X64.chroot)).toBe(ALLOW);
    // The clone filter: fork-like clones pass, namespace flags are refused.
    expect(x64(X64.clone, SIGCHLD)).toBe(ALLOW);
    expect(x64(X64.clone, 0x003d0f00)).toBe(ALLOW); // pthread_create's flags
    expect(x64(X64.clone, CLONE_NEWTIME | SIGCHLD)).toBe(ALLOW); // not in Docker's mask
    expect(x64(X64.clone, CLONE_NEWUSER | SIGCHLD)).toBe(EPERM);
    expect(x64(X64.clone, CLONE_NEWNS)).toBe(EPERM);
    expect(x64(X64.clone, CLONE_NEWNET | CLONE_NEWUSER)).toBe(EPERM);
    expect(x64(X64.clone3)).toBe(ENOSYS);
    // socket: every family but AF_ALG and AF_VSOCK.
    expect(x64(X64.socket, 1)).toBe(ALLOW);
    expect(x64(X64.socket, 2)).toBe(ALLOW);
    expect(x64(X64.socket, 37)).toBe(ALLOW);
    expect(x64(X64.socket, 38)).toBe(EPERM);
    expect(x64(X64.socket, 39)).toBe(ALLOW);
    expect(x64(X64.socket, 40)).toBe(EPERM);
    expect(x64(X64.socket, 41)).toBe(ALLOW);
    // personality: Docker's five values; others get the default.
    for (const v of [0, 8, 0x20000, 0x20008, 0xffffffff]) expect(x64(X64.personality, v), v.toString(16)).toBe(ALLOW);
    expect(x64(X64.personality, 0x0040000)).toBe(ENOSYS);
    // ptrace is for everyone on kernels >= 4.8 (this one).
    expect(x64(X64.ptrace)).toBe(ALLOW);
    // Unknown to the profile: ENOSYS, so libc falls back.
    expect(x64(X64.io_uring_setup)).toBe(ENOSYS);
    expect(x64(1000)).toBe(ENOSYS);
    // The i386 sub-architecture gets the same rules under its own numbers.
    const i386 = (nr: number, ...args: number[]) => runBpf(bpf, { arch: AUDIT_ARCH_I386, nr, args });
    expect(i386(I386.getpid)).toBe(ALLOW);
    expect(i386(I386.mount)).toBe(EPERM);
    expect(i386(I386.unshare)).toBe(EPERM);
    expect(i386(I386.clone, SIGCHLD)).toBe(ALLOW);
    expect(i386(I386.clone, CLONE_NEWUSER)).toBe(EPERM);
    expect(i386(I386.socketcall, 1)).toBe(ALLOW);
    // An architecture outside the filter's list is killed.
    expect([0, 0x80000000]).toContain(runBpf(bpf, { arch: AUDIT_ARCH_AARCH64, nr: 39 })); // SECCOMP_RET_KILL_*
  });

  it('with CAP_SYS_ADMIN added', () => {
    const { bpf } = compiled([...DOCKER_CAPS, 'CAP_SYS_ADMIN']);
    const x64 = (nr: number, ...args: number[]) => runBpf(bpf, { arch: AUDIT_ARCH_X86_64, nr, args });
    expect(x64(X64.mount)).toBe(ALLOW);
    expect(x64(X64.unshare, CLONE_NEWNS)).toBe(ALLOW);
    expect(x64(X64.setns)).toBe(ALLOW);
    expect(x64(X64.clone, CLONE_NEWUSER | SIGCHLD)).toBe(ALLOW);
    expect(x64(X64.clone3)).toBe(ALLOW);
    // Still refused: other capabilities' syscalls and the known-denied ones.
    expect(x64(X64.reboot)).toBe(EPERM);
    expect(x64(X64.kexec_load)).toBe(EPERM);
    expect(x64(X64.socket, 40)).toBe(EPERM);
  });
});
