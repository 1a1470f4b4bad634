// Device access rules on cgroup v2: an eBPF program of type BPF_PROG_TYPE_CGROUP_DEVICE,
// generated here (pure) and attached by the addon. Semantics are those of the v1 devices
// controller that OCI rules were written for: rules apply in order, the last matching rule
// decides, and a request that matches none is allowed (so configs start with "deny all").
import type { Device, DeviceCgroup } from '../spec/types.js';

/** Always allowed on top of the config's rules (runc's specconv.AllowedDevices, minus tun). */
export const DEFAULT_ALLOWED: DeviceCgroup[] = [
  { allow: true, type: 'c', access: 'm' },
  { allow: true, type: 'b', access: 'm' },
  { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' }, // null
  { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' }, // zero
  { allow: true, type: 'c', major: 1, minor: 7, access: 'rwm' }, // full
  { allow: true, type: 'c', major: 1, minor: 8, access: 'rwm' }, // random
  { allow: true, type: 'c', major: 1, minor: 9, access: 'rwm' }, // urandom
  { allow: true, type: 'c', major: 5, minor: 0, access: 'rwm' }, // tty
  { allow: true, type: 'c', major: 5, minor: 1, access: 'rwm' }, // console
  { allow: true, type: 'c', major: 5, minor: 2, access: 'rwm' }, // ptmx
  { allow: true, type: 'c', major: 136, access: 'rwm' }, // pts
];

/** The effective rule list, or null when the config asks for no device control at all. */
export function deviceRules(rules: DeviceCgroup[] | undefined, devices: Device[] | undefined): DeviceCgroup[] | null {
  if (!rules?.length) return null;
  const fromDevices: DeviceCgroup[] = (devices ?? []).map((d) => ({
    allow: true,
    type: d.type === 'u' ? 'c' : d.type,
    ...(d.major !== undefined ? { major: d.major } : {}),
    ...(d.minor !== undefined ? { minor: d.minor } : {}),
    access: 'rwm',
  }));
  return [...rules, ...DEFAULT_ALLOWED, ...fromDevices];
}

// struct bpf_insn { u8 code; u8 dst_reg:4, src_reg:4; s16 off; s32 imm; }
function insn(code: number, dst: number, src: number, off: number, imm: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt8(code, 0);
  b.writeUInt8((src << 4) | dst, 1);
  b.writeInt16LE(off, 2);
  b.writeInt32LE(imm, 4);
  return b;
}

const LDX_W = 0x61; // BPF_LDX | BPF_W | BPF_MEM
const ALU32_AND_K = 0x54;
const ALU32_RSH_K = 0x74;
const ALU64_MOV_K = 0xb7;
const ALU64_MOV_X = 0xbf;
const JMP_JNE_K = 0x55;
const EXIT = 0x95;

const TYPE: Record<string, number> = { b: 1, c: 2 }; // BPF_DEVCG_DEV_BLOCK, _CHAR
function accessBits(a: string | undefined): number {
  const s = a ?? 'rwm';
  return (s.includes('m') ? 1 : 0) | (s.includes('r') ? 2 : 0) | (s.includes('w') ? 4 : 0);
}

/**
 * The program: r2 = type, r3 = access, r4 = major, r5 = minor (from bpf_cgroup_dev_ctx),
 * then one block per rule, last rule first; a block that matches returns its verdict.
 */
export function deviceProgram(rules: DeviceCgroup[]): Buffer {
  const out: Buffer[] = [
    insn(LDX_W, 2, 1, 0, 0),
    insn(ALU32_AND_K, 2, 0, 0, 0xffff),
    insn(LDX_W, 3, 1, 0, 0),
    insn(ALU32_RSH_K, 3, 0, 0, 16),
    insn(LDX_W, 4, 1, 4, 0),
    insn(LDX_W, 5, 1, 8, 0),
  ];
  for (const r of [...rules].reverse()) {
    const checks: Array<(skip: number) => Buffer[]> = [];
    const t = r.type ?? 'a';
    if (t !== 'a') checks.push((skip) => [insn(JMP_JNE_K, 2, 0, skip, TYPE[t] ?? 0)]);
    const bits = accessBits(r.access);
    // Every requested access bit must be one the rule covers: (access & ~bits) == 0.
    if (bits !== 7) checks.push((skip) => [insn(ALU64_MOV_X, 6, 3, 0, 0), insn(ALU32_AND_K, 6, 0, 0, ~bits & 7), insn(JMP_JNE_K, 6, 0, skip, 0)]);
    if (r.major !== undefined && r.major >= 0) checks.push((skip) => [insn(JMP_JNE_K, 4, 0, skip, r.major!)]);
    if (r.minor !== undefined && r.minor >= 0) checks.push((skip) => [insn(JMP_JNE_K, 5, 0, skip, r.minor!)]);
    // Jumps skip to the end of this block: count what follows each check.
    const sizes = checks.map((c) => c(0).length);
    const tail = 2; // mov r0, verdict; exit
    checks.forEach((c, i) => {
      // The check's jump lands just past this block.
      out.push(...c(sizes.slice(i + 1).reduce((a, b) => a + b, 0) + tail));
    });
    out.push(insn(ALU64_MOV_K, 0, 0, 0, r.allow ? 1 : 0), insn(EXIT, 0, 0, 0, 0));
    // A rule that matches everything ends the program: the verifier refuses dead code.
    if (!checks.length) return Buffer.concat(out);
  }
  out.push(insn(ALU64_MOV_K, 0, 0, 0, 1), insn(EXIT, 0, 0, 0, 0));
  return Buffer.concat(out);
}
