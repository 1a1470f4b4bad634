import { describe, expect, it } from 'vitest';
import { resourceWrites } from '../../../../src/cgroups/controllers/index.js';
import { validateUnifiedKey } from '../../../../src/cgroups/controllers/unified.js';
import type { Resources } from '../../../../src/spec/types.js';

const files = (r: Resources) => resourceWrites(r).map((w) => `${w.file}=${w.value}`);

describe('unified keys', () => {
  it('accepts interface file names, including upper-case page sizes', () => {
    for (const k of ['memory.high', 'memory.oom.group', 'io.bfq.weight', 'hugetlb.2MB.rsvd.max', 'cpu.uclamp.min', 'misc.max']) {
      expect(() => validateUnifiedKey(k)).not.toThrow();
    }
  });
  it('refuses paths, traversal and malformed names', () => {
    expect(() => validateUnifiedKey('../memory.max')).toThrow(/must be a file name \(no slashes\)/);
    expect(() => validateUnifiedKey('foo/memory.max')).toThrow(/no slashes/);
    expect(() => validateUnifiedKey('memory..max')).toThrow(/interface file name/);
    expect(() => validateUnifiedKey('memory.max.')).toThrow(/interface file name/);
    expect(() => validateUnifiedKey('memory')).toThrow(/CONTROLLER\.PARAMETER/);
    expect(() => validateUnifiedKey('Memory.max')).toThrow(/CONTROLLER\.PARAMETER/);
    expect(() => validateUnifiedKey('memory.max\n')).toThrow(/CONTROLLER\.PARAMETER/);
  });
  it('refuses every cgroup core file', () => {
    for (const k of ['cgroup.procs', 'cgroup.threads', 'cgroup.subtree_control', 'cgroup.freeze', 'cgroup.kill', 'cgroup.type', 'cgroup.max.depth']) {
      expect(() => validateUnifiedKey(k)).toThrow(new RegExp(`unified\\["${k.replace(/\./g, '\\.')}"\\]" names a cgroup core file`));
    }
  });
});

describe('unified writes', () => {
  it('writes each key under its controller, line by line', () => {
    expect(resourceWrites({ unified: { 'memory.high': '1073741824', 'io.max': '8:0 rbps=1\n8:16 wiops=2\n' } })).toEqual([
      { controller: 'memory', file: 'memory.high', value: '1073741824', field: 'unified["memory.high"]' },
      { controller: 'io', file: 'io.max', value: '8:0 rbps=1', field: 'unified["io.max"]' },
      { controller: 'io', file: 'io.max', value: '8:16 wiops=2', field: 'unified["io.max"]' },
    ]);
  });
  it('refuses empty values and control characters', () => {
    expect(() => files({ unified: { 'memory.high': '' } })).toThrow(/must not be empty/);
    expect(() => files({ unified: { 'memory.high': '\n' } })).toThrow(/must not be empty/);
    expect(() => files({ unified: { 'memory.high': '1\u0000' } })).toThrow(/NUL/);
    expect(() => files({ unified: { 'memory.high': '1\r\n' } })).toThrow(/carriage-return/);
  });
  it('wins over a mapped field setting the same file, which is then not written at all', () => {
    expect(
      files({ memory: { limit: 1 << 30, reservation: 1 << 20 }, pids: { limit: 10 }, unified: { 'memory.max': '2147483648', 'pids.max': 'max' } }),
    ).toEqual(['memory.low=1048576', 'memory.max=2147483648', 'pids.max=max']);
  });
  it('keeps mapped lines of keyed files, whose other keys a unified line does not touch', () => {
    expect(files({ blockIO: { throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 100 }] }, unified: { 'io.max': '8:16 wbps=200' } })).toEqual([
      'io.max=8:0 rbps=100',
      'io.max=8:16 wbps=200',
    ]);
  });
});
