// OCI `linux.seccomp` -> classic BPF bytes, compiled in the parent with libseccomp (native
// seccompCompile) so the forked child only calls seccomp(SECCOMP_SET_MODE_FILTER, flags, prog).
// This file turns the OCI strings into the numbers libseccomp wants and validates the profile
// with field paths; rule semantics follow runc (see native/seccomp.cc).

import { native } from '../native/index.js';
import type { SeccompConstants, SeccompProfileNative } from '../native/binding.js';
import type { Seccomp, SeccompArg } from '../spec/types.js';
import { TsrunError, invalidConfig, wrap } from '../util/errors.js';

export interface CompiledSeccomp {
  /** struct sock_filter[] in host byte order, 8 bytes per instruction. */
  bpf: Buffer;
  /** SECCOMP_FILTER_FLAG_* bits for seccomp(2). */
  flags: number;
  /** Syscall names libseccomp does not know; runc ignores them too (log them at debug). */
  skipped: string[];
}

type NativeRule = SeccompProfileNative['rules'][number];
type NativeArg = NativeRule['args'][number];
type CmpName = Extract<keyof SeccompConstants, `SCMP_CMP_${string}`>;

let constants: SeccompConstants | undefined;
/**
 * libseccomp's action and comparison values (native seccompActions), read once. SCMP_ACT_ERRNO
 * and SCMP_ACT_TRACE are bases: the action is `(base | (n & 0xffff)) >>> 0`.
 */
export function seccompConstants(): SeccompConstants {
  constants ??= native.seccompActions();
  return constants;
}

/** The libseccomp version the addon loaded (an extra field of seccompActions()), for messages. */
function libseccompVersion(k: SeccompConstants): string {
  const v = (k as { version?: unknown }).version;
  return typeof v === 'string' ? v : 'unknown';
}

const FIELD = 'linux.seccomp';
const EPERM = 1;
/** BPF_MAXINSNS: the kernel refuses longer classic BPF programs with EINVAL. */
const BPF_MAXINSNS = 4096;
const BPF_INSN_SIZE = 8;
const MAX_ARGS = 6;
const U64_LIMIT = 2n ** 64n;

/** OCI architecture names -> libseccomp's names (seccomp_arch_resolve_name). */
const ARCHES: Readonly<Record<string, string>> = {
  SCMP_ARCH_X86: 'x86',
  SCMP_ARCH_X86_64: 'x86_64',
  SCMP_ARCH_X32: 'x32',
  SCMP_ARCH_ARM: 'arm',
  SCMP_ARCH_AARCH64: 'aarch64',
  SCMP_ARCH_MIPS: 'mips',
  SCMP_ARCH_MIPS64: 'mips64',
  SCMP_ARCH_MIPS64N32: 'mips64n32',
  SCMP_ARCH_MIPSEL: 'mipsel',
  SCMP_ARCH_MIPSEL64: 'mipsel64',
  SCMP_ARCH_MIPSEL64N32: 'mipsel64n32',
  SCMP_ARCH_PPC: 'ppc',
  SCMP_ARCH_PPC64: 'ppc64',
  SCMP_ARCH_PPC64LE: 'ppc64le',
  SCMP_ARCH_S390: 's390',
  SCMP_ARCH_S390X: 's390x',
  SCMP_ARCH_PARISC: 'parisc',
  SCMP_ARCH_PARISC64: 'parisc64',
  SCMP_ARCH_RISCV64: 'riscv64',
  SCMP_ARCH_LOONGARCH64: 'loongarch64',
  SCMP_ARCH_M68K: 'm68k',
  SCMP_ARCH_SH: 'sh',
  SCMP_ARCH_SHEB: 'sheb',
};

/** SECCOMP_FILTER_FLAG_* (linux/seccomp.h): a bit to pass, or why we refuse the flag. */
const FLAGS: Readonly<Record<string, number | { refuse: string }>> = {
  SECCOMP_FILTER_FLAG_LOG: 2,
  SECCOMP_FILTER_FLAG_SPEC_ALLOW: 4,
  // Only changes how a notify listener's wait is interrupted. We never create a listener
  // (SCMP_ACT_NOTIFY is refused) and the kernel rejects this bit without
  // SECCOMP_FILTER_FLAG_NEW_LISTENER (EINVAL), so accept it and pass nothing.
  SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: 0,
  SECCOMP_FILTER_FLAG_TSYNC: { refuse: 'the filter is installed by a single-threaded child before exec' },
  SECCOMP_FILTER_FLAG_TSYNC_ESRCH: { refuse: 'the filter is installed by a single-threaded child before exec' },
  SECCOMP_FILTER_FLAG_NEW_LISTENER: { refuse: 'seccomp notify listeners are not supported' },
};

/** Compile an OCI seccomp profile to BPF bytes and seccomp(2) flags. */
export function compileSeccomp(profile: Seccomp): CompiledSeccomp {
  const k = seccompConstants();

  const defaultAction = actionValue(k, profile.defaultAction, profile.defaultErrnoRet, `${FIELD}.defaultAction`, `${FIELD}.defaultErrnoRet`);

  const arches: string[] = [];
  (profile.architectures ?? []).forEach((name, i) => {
    const arch = ARCHES[name];
    if (arch === undefined) {
      throw invalidConfig(`${FIELD}.architectures[${i}]`, `must be a SCMP_ARCH_* name, got ${JSON.stringify(name)}`);
    }
    if (!arches.includes(arch)) arches.push(arch);
  });

  let flags = 0;
  (profile.flags ?? []).forEach((name, i) => {
    const flag = FLAGS[name];
    if (flag === undefined) {
      throw invalidConfig(`${FIELD}.flags[${i}]`, `must be a SECCOMP_FILTER_FLAG_* name, got ${JSON.stringify(name)}`);
    }
    if (typeof flag !== 'number') {
      throw new TsrunError('ERR_UNSUPPORTED', `seccomp flag ${name} is not supported: ${flag.refuse}`);
    }
    flags |= flag;
  });

  const rules: NativeRule[] = [];
  (profile.syscalls ?? []).forEach((call, i) => {
    const at = `${FIELD}.syscalls[${i}]`;
    const action = actionValue(k, call.action, call.errnoRet, `${at}.action`, `${at}.errnoRet`);
    if (!Array.isArray(call.names)) throw invalidConfig(`${at}.names`, 'must be an array of syscall names');
    const args = (call.args ?? []).map((arg, j) => argValue(k, arg, `${at}.args[${j}]`));
    // Same as runc: a rule that does what the default does is redundant, and libseccomp
    // refuses it. Checked after validation so a bad rule is still reported.
    if (action === defaultAction) return;
    call.names.forEach((name, j) => {
      if (typeof name !== 'string' || name === '') {
        throw invalidConfig(`${at}.names[${j}]`, 'must be a non-empty syscall name');
      }
      rules.push({ syscall: name, action, args });
    });
  });

  let out: { bpf: Buffer; skipped: string[] };
  try {
    out = native.seccompCompile({ defaultAction, arches, rules });
  } catch (err) {
    const arch = (err as { arch?: unknown } | null)?.arch;
    if (typeof arch === 'string') {
      const oci = Object.keys(ARCHES).find((key) => ARCHES[key] === arch) ?? arch;
      const why =
        (err as NodeJS.ErrnoException).code === 'EDOM'
          ? 'it cannot share a filter with the native architecture (different byte order)'
          : `libseccomp ${libseccompVersion(k)} does not know it`;
      throw new TsrunError('ERR_UNSUPPORTED', `seccomp architecture ${oci} is not supported: ${why}`, {
        cause: err,
      });
    }
    throw wrap(err, 'compile seccomp profile');
  }

  const insns = out.bpf.length / BPF_INSN_SIZE;
  if (insns > BPF_MAXINSNS) {
    throw new TsrunError('ERR_INVALID_CONFIG', `"${FIELD}" compiles to ${insns} BPF instructions; the kernel accepts at most ${BPF_MAXINSNS}`);
  }
  return { bpf: out.bpf, flags, skipped: out.skipped };
}

function actionValue(k: SeccompConstants, action: unknown, errnoRet: number | undefined, field: string, errnoField: string): number {
  const errnoOrDefault = (): number => {
    if (errnoRet === undefined) return EPERM;
    if (!Number.isInteger(errnoRet) || errnoRet < 0 || errnoRet > 0xffff) {
      throw invalidConfig(errnoField, `must be an integer from 0 to 65535, got ${JSON.stringify(errnoRet)}`);
    }
    return errnoRet;
  };
  // runtime-spec: errnoRet on an action without a return code MUST be an error.
  const noErrno = (value: number): number => {
    if (errnoRet !== undefined) {
      throw invalidConfig(errnoField, `is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not ${String(action)}`);
    }
    return value;
  };
  switch (action) {
    case 'SCMP_ACT_KILL':
    case 'SCMP_ACT_KILL_THREAD':
      return noErrno(k.SCMP_ACT_KILL_THREAD);
    case 'SCMP_ACT_KILL_PROCESS':
      return noErrno(k.SCMP_ACT_KILL_PROCESS);
    case 'SCMP_ACT_TRAP':
      return noErrno(k.SCMP_ACT_TRAP);
    case 'SCMP_ACT_ALLOW':
      return noErrno(k.SCMP_ACT_ALLOW);
    case 'SCMP_ACT_LOG':
      return noErrno(k.SCMP_ACT_LOG);
    case 'SCMP_ACT_ERRNO':
      return (k.SCMP_ACT_ERRNO | (errnoOrDefault() & 0xffff)) >>> 0;
    case 'SCMP_ACT_TRACE':
      return (k.SCMP_ACT_TRACE | (errnoOrDefault() & 0xffff)) >>> 0;
    case 'SCMP_ACT_NOTIFY':
      throw new TsrunError('ERR_UNSUPPORTED', 'seccomp action SCMP_ACT_NOTIFY is not supported: no listener');
    default:
      throw invalidConfig(field, `must be a SCMP_ACT_* action, got ${JSON.stringify(action)}`);
  }
}

function argValue(k: SeccompConstants, arg: SeccompArg, at: string): NativeArg {
  if (!Number.isInteger(arg.index) || arg.index < 0 || arg.index >= MAX_ARGS) {
    throw invalidConfig(`${at}.index`, `must be an integer from 0 to ${MAX_ARGS - 1}, got ${JSON.stringify(arg.index)}`);
  }
  const op = isCmpName(arg.op) ? k[arg.op] : undefined;
  if (op === undefined) {
    throw invalidConfig(`${at}.op`, `must be a SCMP_CMP_* operator, got ${JSON.stringify(arg.op)}`);
  }
  return {
    index: arg.index,
    op,
    value: u64(arg.value, `${at}.value`),
    valueTwo: arg.valueTwo === undefined ? 0n : u64(arg.valueTwo, `${at}.valueTwo`),
  };
}

function isCmpName(op: unknown): op is CmpName {
  return (
    op === 'SCMP_CMP_NE' ||
    op === 'SCMP_CMP_LT' ||
    op === 'SCMP_CMP_LE' ||
    op === 'SCMP_CMP_EQ' ||
    op === 'SCMP_CMP_GE' ||
    op === 'SCMP_CMP_GT' ||
    op === 'SCMP_CMP_MASKED_EQ'
  );
}

/**
 * A uint64 comparison datum. JSON numbers above 2^53 already lost precision in JSON.parse;
 * the one such value that matters in practice, 2^64-1 (all bits set), parses to exactly
 * 2^64, so that is read back as 2^64-1 instead of being rejected.
 */
function u64(value: unknown, field: string): bigint {
  let v: bigint | undefined;
  if (typeof value === 'bigint') v = value;
  else if (typeof value === 'number' && Number.isInteger(value)) v = BigInt(value);
  if (v === U64_LIMIT && typeof value === 'number') v = U64_LIMIT - 1n;
  if (v === undefined || v < 0n || v >= U64_LIMIT) {
    throw invalidConfig(field, `must be an integer from 0 to 2^64-1, got ${String(value)}`);
  }
  return v;
}
