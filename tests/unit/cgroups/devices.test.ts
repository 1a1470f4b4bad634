import { describe, expect, it } from 'vitest';
import { deviceProgram, deviceRules } from '../../../src/cgroups/devices.js';
import type { DeviceCgroup } from '../../../src/spec/types.js';

/** Runs the generated program on a bpf_cgroup_dev_ctx, for the opcodes the generator uses. */
function run(prog: Buffer, type: 'b' | 'c', access: string, major: number, minor: number): number {
  const acc = (access.includes('m') ? 1 : 0) | (access.includes('r') ? 2 : 0) | (access.includes('w') ? 4 : 0);
  const ctx = [(acc << 16) | (type === 'b' ? 1 : 2), major, minor];
  const r = new Array<number>(11).fill(0);
  for (let pc = 0; pc < prog.length / 8; pc++) {
    const code = prog.readUInt8(pc * 8);
    const regs = prog.readUInt8(pc * 8 + 1);
    const dst = regs & 0xf;
    const src = regs >> 4;
    const off = prog.readInt16LE(pc * 8 + 2);
    const imm = prog.readInt32LE(pc * 8 + 4);
    switch (code) {
      case 0x61:
        r[dst] = ctx[off / 4]! >>> 0;
        break;
      case 0x54:
        r[dst] = (r[dst]! & imm) >>> 0;
        break;
      case 0x74:
        r[dst] = r[dst]! >>> imm;
        break;
      case 0xb7:
        r[dst] = imm;
        break;
      case 0xbf:
        r[dst] = r[src]!;
        break;
      case 0x55:
        if (r[dst] !== imm) pc += off;
        break;
      case 0x95:
        return r[0]!;
      default:
        throw new Error(`opcode ${code.toString(16)}`);
    }
  }
  throw new Error('fell off the end');
}

const podman: DeviceCgroup[] = [{ allow: false, access: 'rwm' }];

describe('deviceProgram', () => {
  const prog = deviceProgram(deviceRules(podman, [{ path: '/dev/fuse', type: 'c', major: 10, minor: 229 }])!);

  it('denies what the deny-all rule covers and allows the default devices', () => {
    expect(run(prog, 'c', 'rw', 1, 3)).toBe(1); // /dev/null
    expect(run(prog, 'c', 'r', 1, 9)).toBe(1); // urandom
    expect(run(prog, 'c', 'rw', 136, 7)).toBe(1); // a pts
    expect(run(prog, 'b', 'r', 8, 0)).toBe(0); // a disk
    expect(run(prog, 'c', 'r', 1, 1)).toBe(0); // /dev/mem
  });

  it('allows mknod of anything but not access to it', () => {
    expect(run(prog, 'b', 'm', 8, 0)).toBe(1);
    expect(run(prog, 'b', 'rm', 8, 0)).toBe(0);
  });

  it('allows the devices listed in linux.devices', () => {
    expect(run(prog, 'c', 'rw', 10, 229)).toBe(1);
  });

  it('lets a later rule override an earlier one, access bit by bit', () => {
    const p = deviceProgram([
      { allow: false, access: 'rwm' },
      { allow: true, type: 'c', major: 4, minor: 1, access: 'r' },
      { allow: false, type: 'c', major: 4, access: 'rwm' },
    ]);
    expect(run(p, 'c', 'r', 4, 1)).toBe(0); // the last rule wins
    const q = deviceProgram([
      { allow: false, access: 'rwm' },
      { allow: true, type: 'c', major: 4, minor: 1, access: 'r' },
    ]);
    expect(run(q, 'c', 'r', 4, 1)).toBe(1);
    expect(run(q, 'c', 'rw', 4, 1)).toBe(0); // w not covered
  });

  it('asks for no filter when the config has no device rules', () => {
    expect(deviceRules(undefined, [])).toBeNull();
    expect(deviceRules([], [])).toBeNull();
  });
});
