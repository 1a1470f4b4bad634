// Encodes an init plan into the byte format native/plan.h documents (all items 8-byte
// aligned little-endian i64; strings length-prefixed, NUL-terminated, zero-padded).

export const PLAN_MAGIC = 0x31504c5052535354n;
export const PLAN_VERSION = 1n;

export const OP = {
  SETNS: 1,
  USERNS: 2,
  UNSHARE: 3,
  TIMENS_OFFSETS: 4,
  FORK: 5,
  SETSID: 6,
  OOM_SCORE_ADJ: 7,
  ROOT_PROPAGATION: 8,
  BIND_ROOTFS: 9,
  MOUNT: 10,
  MKNOD: 11,
  SYMLINK: 12,
  MKDIR: 13,
  HOOK: 14,
  PIVOT: 15,
  CHROOT: 16,
  SYSCTL: 17,
  HOSTNAME: 18,
  DOMAINNAME: 19,
  MASK: 20,
  READONLY: 21,
  ROOT_READONLY: 22,
  RLIMIT: 23,
  TTY: 24,
  CHDIR: 25,
  UMASK: 26,
  CAPS_BOUNDING: 27,
  SETUSER: 28,
  CAPS: 29,
  NNP: 30,
  SECCOMP: 31,
  FIND_EXEC: 32,
  CLOSE_FDS: 33,
  READY: 34,
  EXEC: 35,
  DUMPABLE: 36,
  STDIN: 37,
  LSM_EXEC: 38,
} as const;

export type OpName = keyof typeof OP;

export type Field = { int: bigint | number } | { str: string } | { list: string[] } | { blob: Buffer };

export interface PlanStep {
  op: OpName;
  /** For error messages: the syscall the step is about and the object it acts on. */
  syscall: string;
  target?: string;
  fields: Field[];
}

const int = (n: bigint | number): Field => ({ int: n });
const str = (s: string): Field => ({ str: s });
export const F = { int, str, list: (l: string[]): Field => ({ list: l }), blob: (b: Buffer): Field => ({ blob: b }) };

function strBytes(s: string | Buffer): Buffer {
  const body = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
  const padded = (body.length + 1 + 7) & ~7;
  const out = Buffer.alloc(8 + padded);
  out.writeBigInt64LE(BigInt(body.length), 0);
  body.copy(out, 8);
  return out;
}

function intBytes(n: bigint | number): Buffer {
  const out = Buffer.alloc(8);
  const v = BigInt(n);
  // u64 values (masks, RLIM_INFINITY) are written as their two's-complement i64.
  out.writeBigUInt64LE(v < 0n ? v + (1n << 64n) : v, 0);
  return out;
}

function fieldBytes(f: Field): Buffer[] {
  if ('int' in f) return [intBytes(f.int)];
  if ('str' in f) {
    if (f.str.includes('\0')) throw new Error(`plan string contains NUL: ${JSON.stringify(f.str)}`);
    return [strBytes(f.str)];
  }
  if ('blob' in f) return [strBytes(f.blob)];
  return [intBytes(f.list.length), ...f.list.map((s) => strBytes(s))];
}

export function encodePlan(steps: PlanStep[]): Buffer {
  const parts: Buffer[] = [intBytes(PLAN_MAGIC), intBytes(PLAN_VERSION), intBytes(steps.length)];
  for (const s of steps) {
    const payload = Buffer.concat(s.fields.flatMap(fieldBytes));
    parts.push(intBytes(OP[s.op]), intBytes(payload.length), payload);
  }
  return Buffer.concat(parts);
}

/** Steps whose first field names an fd the child uses (-1: none). */
const FD_FIELD_OPS: ReadonlySet<OpName> = new Set(['SETNS', 'TTY', 'READY', 'STDIN']);

/**
 * The fds the plan refers to, which must survive the child's execve of tsrun-init (Node
 * opens everything CLOEXEC): namespace, console, fifo and stdin fds, and the preserved fds
 * below CLOSE_FDS's first.
 */
export function planFds(steps: PlanStep[]): number[] {
  const fds = new Set<number>();
  for (const s of steps) {
    const f = s.fields[0];
    const n = f && 'int' in f ? Number(f.int) : -1;
    if (FD_FIELD_OPS.has(s.op) && n >= 0) fds.add(n);
    if (s.op === 'CLOSE_FDS') for (let fd = 3; fd < n; fd++) fds.add(fd);
  }
  return [...fds];
}
