import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CAPABILITIES, capMask, capNumber, readLastCap } from '../../../src/linux/capabilities.js';

describe('CAPABILITIES', () => {
  it('has 41 entries with the kernel numbering', () => {
    expect(CAPABILITIES).toHaveLength(41);
    expect(CAPABILITIES[0]).toBe('CAP_CHOWN');
    expect(CAPABILITIES[7]).toBe('CAP_SETUID');
    expect(CAPABILITIES[12]).toBe('CAP_NET_ADMIN');
    expect(CAPABILITIES[21]).toBe('CAP_SYS_ADMIN');
    expect(CAPABILITIES[29]).toBe('CAP_AUDIT_WRITE');
    expect(CAPABILITIES[31]).toBe('CAP_SETFCAP');
    expect(CAPABILITIES[37]).toBe('CAP_AUDIT_READ');
    expect(CAPABILITIES[38]).toBe('CAP_PERFMON');
    expect(CAPABILITIES[39]).toBe('CAP_BPF');
    expect(CAPABILITIES[40]).toBe('CAP_CHECKPOINT_RESTORE');
    expect(new Set(CAPABILITIES).size).toBe(41);
  });
});

describe('capNumber', () => {
  it('maps names to numbers', () => {
    expect(capNumber('CAP_CHOWN')).toBe(0);
    expect(capNumber('CAP_KILL')).toBe(5);
    expect(capNumber('CAP_NET_BIND_SERVICE')).toBe(10);
    expect(capNumber('CAP_SYS_ADMIN')).toBe(21);
    expect(capNumber('CAP_MKNOD')).toBe(27);
    expect(capNumber('CAP_CHECKPOINT_RESTORE')).toBe(40);
  });
  it('ignores case but requires the prefix', () => {
    expect(capNumber('cap_net_raw')).toBe(13);
    expect(capNumber('NET_RAW')).toBeUndefined();
    expect(capNumber('CAP_FOO')).toBeUndefined();
    expect(capNumber('')).toBeUndefined();
  });
});

describe('capMask', () => {
  it('builds the bit mask', () => {
    expect(capMask(['CAP_CHOWN', 'CAP_KILL', 'CAP_SYS_ADMIN'], 40)).toEqual({
      mask: (1n << 0n) | (1n << 5n) | (1n << 21n),
      unknown: [],
    });
    expect(capMask(['CAP_CHECKPOINT_RESTORE'], 40).mask).toBe(1n << 40n);
  });
  it('handles undefined, empty and duplicates', () => {
    expect(capMask(undefined, 40)).toEqual({ mask: 0n, unknown: [] });
    expect(capMask([], 40)).toEqual({ mask: 0n, unknown: [] });
    expect(capMask(['CAP_KILL', 'CAP_KILL'], 40).mask).toBe(1n << 5n);
  });
  it('full set is 2^41-1', () => {
    expect(capMask([...CAPABILITIES], 40)).toEqual({ mask: (1n << 41n) - 1n, unknown: [] });
  });
  it('puts unknown names and names above lastCap in unknown, in order', () => {
    const r = capMask(['CAP_BPF', 'CAP_NOPE', 'CAP_CHOWN', 'CAP_PERFMON'], 37);
    expect(r.mask).toBe(1n);
    expect(r.unknown).toEqual(['CAP_BPF', 'CAP_NOPE', 'CAP_PERFMON']);
  });
});

describe('readLastCap', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsrun-cap-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function fakeProc(content: string | undefined): string {
    const root = mkdtempSync(join(dir, 'proc-'));
    if (content !== undefined) {
      mkdirSync(join(root, 'sys/kernel'), { recursive: true });
      writeFileSync(join(root, 'sys/kernel/cap_last_cap'), content);
    }
    return root;
  }

  it('reads the value', () => {
    expect(readLastCap(fakeProc('37\n'))).toBe(37);
    expect(readLastCap(fakeProc('40\n'))).toBe(40);
  });
  it('falls back to 40 when missing or garbage', () => {
    expect(readLastCap(fakeProc(undefined))).toBe(40);
    expect(readLastCap(fakeProc('abc\n'))).toBe(40);
    expect(readLastCap(fakeProc(''))).toBe(40);
  });
  it('reads the real /proc', () => {
    const n = readLastCap();
    expect(n).toBeGreaterThanOrEqual(30);
    expect(n).toBeLessThanOrEqual(63);
  });
});
