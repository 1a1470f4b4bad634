import { existsSync, readFileSync } from 'node:fs';
import { endianness } from 'node:os';
import { describe, expect, it } from 'vitest';
import { compileSeccomp, seccompConstants } from '../../src/linux/seccomp.js';
import type { Seccomp, SeccompSyscall } from '../../src/spec/types.js';
import { TsrunError } from '../../src/util/errors.js';

const PODMAN_PROFILE = '/usr/share/containers/seccomp.json';
const IS_X86_64 = process.arch === 'x64';

// Classic BPF opcodes (linux/bpf_common.h) and seccomp return values (linux/seccomp.h).
const BPF_LD_W_ABS = 0x00 | 0x00 | 0x20;
const BPF_JMP_JEQ_K = 0x05 | 0x10 | 0x00;
const BPF_RET_K = 0x06 | 0x00;
const SECCOMP_RET_ERRNO = 0x00050000;
const SECCOMP_DATA_ARCH = 4; // offsetof(struct seccomp_data, arch)
const NR_MKDIR_X86_64 = 83;

interface Insn {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

function insns(bpf: Buffer): Insn[] {
  const out: Insn[] = [];
  for (let off = 0; off + 8 <= bpf.length; off += 8) {
    // struct sock_filter in host byte order; every platform tsrun runs on is little-endian.
    out.push({ code: bpf.readUInt16LE(off), jt: bpf[off + 2] ?? 0, jf: bpf[off + 3] ?? 0, k: bpf.readUInt32LE(off + 4) });
  }
  return out;
}

function errorOf(fn: () => unknown): TsrunError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(TsrunError);
    return err as TsrunError;
  }
  throw new Error('expected an error');
}

// Podman's file is the containers/common "docker" format (archMap, includes/excludes), not
// OCI's linux.seccomp; resolve it the way Podman does for a container with no capabilities.
interface DockerProfile {
  defaultAction: string;
  defaultErrnoRet?: number;
  archMap?: Array<{ architecture: string; subArchitectures?: string[] | null }> | null;
  syscalls?: Array<{
    names?: string[] | null;
    action: string;
    errnoRet?: number | null;
    args?: Array<{ index: number; value: number; valueTwo?: number; op: string }> | null;
    includes?: { arches?: string[] | null; caps?: string[] | null } | null;
    excludes?: { arches?: string[] | null; caps?: string[] | null } | null;
  }> | null;
}

function podmanToOci(p: DockerProfile): Seccomp {
  const goArch = process.arch === 'x64' ? 'amd64' : process.arch;
  const nativeArch = process.arch === 'x64' ? 'SCMP_ARCH_X86_64' : process.arch === 'arm64' ? 'SCMP_ARCH_AARCH64' : '';
  const out: Seccomp = { defaultAction: p.defaultAction, architectures: [], syscalls: [] };
  if (p.defaultErrnoRet !== undefined) out.defaultErrnoRet = p.defaultErrnoRet;
  for (const m of p.archMap ?? []) {
    if (m.architecture === nativeArch) out.architectures = [m.architecture, ...(m.subArchitectures ?? [])];
  }
  for (const s of p.syscalls ?? []) {
    if ((s.includes?.caps ?? []).length > 0) continue; // needs a capability we do not grant
    const inc = s.includes?.arches ?? [];
    if (inc.length > 0 && !inc.includes(goArch)) continue;
    if ((s.excludes?.arches ?? []).includes(goArch)) continue;
    const call: SeccompSyscall = { names: s.names ?? [], action: s.action };
    if (s.errnoRet !== undefined && s.errnoRet !== null) call.errnoRet = s.errnoRet;
    if (s.args) call.args = s.args.map((a) => ({ index: a.index, value: a.value, valueTwo: a.valueTwo ?? 0, op: a.op }));
    out.syscalls?.push(call);
  }
  return out;
}

describe('seccompConstants (native seccompActions)', () => {
  it('exposes the kernel ABI values libseccomp was built with', () => {
    const k = seccompConstants(); // native seccompActions(), through src/native/index.ts
    expect(k.SCMP_ACT_ALLOW).toBe(0x7fff0000);
    expect(k.SCMP_ACT_ERRNO).toBe(SECCOMP_RET_ERRNO);
    expect(k.SCMP_ACT_KILL_PROCESS).toBe(0x80000000);
    expect(k.SCMP_ACT_KILL_THREAD).toBe(0);
    expect(k.SCMP_ACT_KILL).toBe(k.SCMP_ACT_KILL_THREAD);
    const ops = [k.SCMP_CMP_NE, k.SCMP_CMP_LT, k.SCMP_CMP_LE, k.SCMP_CMP_EQ, k.SCMP_CMP_GE, k.SCMP_CMP_GT, k.SCMP_CMP_MASKED_EQ];
    expect(new Set(ops).size).toBe(7);
    expect((k as { version?: unknown }).version).toMatch(/^\d+\.\d+\.\d+$/);
  });
});

describe('compileSeccomp', () => {
  it("compiles Podman's default profile", (ctx) => {
    ctx.skip(!existsSync(PODMAN_PROFILE), `${PODMAN_PROFILE} is not installed (containers-common)`);
    const profile = podmanToOci(JSON.parse(readFileSync(PODMAN_PROFILE, 'utf8')) as DockerProfile);
    expect(profile.syscalls?.length).toBeGreaterThan(10);

    const { bpf, flags, skipped } = compileSeccomp(profile);
    expect(bpf.length).toBeGreaterThan(0);
    expect(bpf.length % 8).toBe(0);
    expect(bpf.length / 8).toBeLessThanOrEqual(4096);
    expect(flags).toBe(0);
    expect(Array.isArray(skipped)).toBe(true);
    const first = insns(bpf)[0];
    expect(first).toMatchObject({ code: BPF_LD_W_ABS, k: SECCOMP_DATA_ARCH });
  });

  it('puts the mkdir syscall number and the errno into the program', (ctx) => {
    ctx.skip(!IS_X86_64, 'syscall number 83 is mkdir on x86_64 only (aarch64 has no mkdir)');
    const { bpf, skipped } = compileSeccomp({
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }],
    });
    expect(skipped).toEqual([]);
    const prog = insns(bpf);
    expect(prog[0]).toMatchObject({ code: BPF_LD_W_ABS, k: SECCOMP_DATA_ARCH });
    expect(prog.some((i) => i.code === BPF_JMP_JEQ_K && i.k === NR_MKDIR_X86_64)).toBe(true);
    expect(prog.some((i) => i.code === BPF_RET_K && i.k === (SECCOMP_RET_ERRNO | 13))).toBe(true);
  });

  it('uses EPERM for SCMP_ACT_ERRNO without errnoRet, and defaultErrnoRet for the default action', () => {
    const { bpf } = compileSeccomp({
      defaultAction: 'SCMP_ACT_ERRNO',
      defaultErrnoRet: 38,
      syscalls: [
        { names: ['getpid'], action: 'SCMP_ACT_ALLOW' },
        { names: ['mkdirat'], action: 'SCMP_ACT_ERRNO' },
      ],
    });
    const rets = insns(bpf)
      .filter((i) => i.code === BPF_RET_K)
      .map((i) => i.k);
    expect(rets).toContain(SECCOMP_RET_ERRNO | 38);
    expect(rets).toContain(SECCOMP_RET_ERRNO | 1);
  });

  it('reports syscalls libseccomp does not know in skipped', () => {
    const { bpf, skipped } = compileSeccomp({
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ names: ['tsrun_no_such_syscall', 'getpid', 'tsrun_no_such_syscall'], action: 'SCMP_ACT_ERRNO' }],
    });
    expect(skipped).toEqual(['tsrun_no_such_syscall']);
    expect(bpf.length).toBeGreaterThan(0);
  });

  it('drops rules whose action is the default action', () => {
    const none = compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW' });
    const same = compileSeccomp({
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ names: ['getpid'], action: 'SCMP_ACT_ALLOW' }],
    });
    expect(same.bpf.equals(none.bpf)).toBe(true);
  });

  it('splits conditions on the same argument into separate rules, and accepts u64 data', () => {
    const { bpf } = compileSeccomp({
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [
        {
          names: ['socket'],
          action: 'SCMP_ACT_ERRNO',
          args: [
            { index: 0, value: 16, op: 'SCMP_CMP_EQ' },
            { index: 0, value: 17, op: 'SCMP_CMP_EQ' },
          ],
        },
        // JSON.parse('18446744073709551615') === 2 ** 64; read back as all bits set.
        { names: ['personality'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 2 ** 64, op: 'SCMP_CMP_EQ' }] },
        {
          names: ['clone'],
          action: 'SCMP_ACT_ERRNO',
          args: [{ index: 0, value: 0x7e020000, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }],
        },
      ],
    });
    const ks = insns(bpf).map((i) => i.k);
    expect(ks).toContain(16);
    expect(ks).toContain(17);
    expect(ks).toContain(0xffffffff);
    expect(ks).toContain(0x7e020000);
  });

  it('maps flags and refuses TSYNC and NEW_LISTENER', () => {
    const base: Seccomp = { defaultAction: 'SCMP_ACT_ALLOW' };
    expect(compileSeccomp({ ...base, flags: ['SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW'] }).flags).toBe(6);
    // Meaningless without a notify listener, and the kernel rejects it alone: accepted, not passed.
    expect(compileSeccomp({ ...base, flags: ['SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV'] }).flags).toBe(0);
    expect(errorOf(() => compileSeccomp({ ...base, flags: ['SECCOMP_FILTER_FLAG_TSYNC'] })).code).toBe('ERR_UNSUPPORTED');
    expect(errorOf(() => compileSeccomp({ ...base, flags: ['SECCOMP_FILTER_FLAG_NEW_LISTENER'] })).code).toBe('ERR_UNSUPPORTED');
    const bad = errorOf(() => compileSeccomp({ ...base, flags: ['SECCOMP_FILTER_FLAG_NOPE'] }));
    expect(bad.code).toBe('ERR_INVALID_CONFIG');
    expect(bad.message).toContain('"linux.seccomp.flags[0]"');
  });

  it('rejects an unknown action with the field path', () => {
    const err = errorOf(() =>
      compileSeccomp({
        defaultAction: 'SCMP_ACT_ALLOW',
        syscalls: [
          { names: ['getpid'], action: 'SCMP_ACT_ERRNO' },
          { names: ['getppid'], action: 'SCMP_ACT_ERRNO' },
          { names: ['gettid'], action: 'SCMP_ACT_ERRNO' },
          { names: ['mkdir'], action: 'SCMP_ACT_EXPLODE' },
        ],
      }),
    );
    expect(err.code).toBe('ERR_INVALID_CONFIG');
    expect(err.message).toContain('"linux.seccomp.syscalls[3].action"');
    const def = errorOf(() => compileSeccomp({ defaultAction: 'ALLOW' }));
    expect(def.message).toContain('"linux.seccomp.defaultAction"');
  });

  it('refuses SCMP_ACT_NOTIFY', () => {
    const err = errorOf(() => compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' }] }));
    expect(err.code).toBe('ERR_UNSUPPORTED');
    expect(err.message).toBe('seccomp action SCMP_ACT_NOTIFY is not supported: no listener');
  });

  it('rejects errnoRet on actions without a return code, and bad arguments', () => {
    const errno = errorOf(() => compileSeccomp({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['getpid'], action: 'SCMP_ACT_ALLOW', errnoRet: 1 }] }));
    expect(errno.message).toContain('"linux.seccomp.syscalls[0].errnoRet"');
    const index = errorOf(() =>
      compileSeccomp({
        defaultAction: 'SCMP_ACT_ALLOW',
        syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', args: [{ index: 6, value: 0, op: 'SCMP_CMP_EQ' }] }],
      }),
    );
    expect(index.message).toContain('"linux.seccomp.syscalls[0].args[0].index"');
    const op = errorOf(() =>
      compileSeccomp({
        defaultAction: 'SCMP_ACT_ALLOW',
        syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: -1, op: 'SCMP_CMP_EQ' }] }],
      }),
    );
    expect(op.message).toContain('"linux.seccomp.syscalls[0].args[0].value"');
  });

  it('rejects unknown architectures and reports ones libseccomp cannot use', () => {
    const err = errorOf(() => compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_VAX'] }));
    expect(err.code).toBe('ERR_INVALID_CONFIG');
    expect(err.message).toContain('"linux.seccomp.architectures[0]"');

    if (endianness() === 'LE') {
      // A big-endian architecture cannot share a filter with a little-endian native one.
      const be = errorOf(() => compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_S390X'] }));
      expect(be.code).toBe('ERR_UNSUPPORTED');
      expect(be.message).toContain('SCMP_ARCH_S390X');
    }

    if (IS_X86_64) {
      const ok = compileSeccomp({
        defaultAction: 'SCMP_ACT_ALLOW',
        architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
      });
      expect(ok.bpf.length % 8).toBe(0);
    }
  });
});
