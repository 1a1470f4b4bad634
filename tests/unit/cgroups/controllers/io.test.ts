import { describe, expect, it } from 'vitest';
import { convertBlkioWeightToIoWeight } from '../../../../src/cgroups/controllers/io.js';
import { planResources, resourceWrites } from '../../../../src/cgroups/controllers/index.js';
import type { Resources } from '../../../../src/spec/types.js';

const files = (r: Resources, current?: Record<string, string>) =>
  resourceWrites(r, current ? { current: (f) => current[f] } : undefined).map((w) => `${w.file}=${w.value}`);

describe('convertBlkioWeightToIoWeight (runc ConvertBlkIOToIOWeightValue)', () => {
  it('maps [10, 1000] onto [1, 10000] with integer division', () => {
    expect(convertBlkioWeightToIoWeight(10)).toBe(1);
    expect(convertBlkioWeightToIoWeight(100)).toBe(910);
    expect(convertBlkioWeightToIoWeight(500)).toBe(4950);
    expect(convertBlkioWeightToIoWeight(999)).toBe(9989);
    expect(convertBlkioWeightToIoWeight(1000)).toBe(10000);
    expect(convertBlkioWeightToIoWeight(0)).toBe(0);
  });
});

describe('io writes', () => {
  it('writes the converted weight to io.weight without BFQ, the raw one to io.bfq.weight with it', () => {
    expect(files({ blockIO: { weight: 500 } })).toEqual(['io.weight=4950']);
    expect(files({ blockIO: { weight: 500 } }, { 'io.bfq.weight': 'default 100\n' })).toEqual(['io.bfq.weight=500']);
    expect(files({ blockIO: { weight: 0 } })).toEqual([]);
    expect(() => files({ blockIO: { weight: 5 } })).toThrow(/blockIO\.weight" must be >= 10, got 5/);
    expect(() => files({ blockIO: { weight: 1001 } })).toThrow(/must be <= 1000/);
  });
  it('writes per-device weights as "MAJ:MIN W" lines', () => {
    const r: Resources = {
      blockIO: {
        weightDevice: [
          { major: 8, minor: 0, weight: 500 },
          { major: 8, minor: 16, weight: 100 },
          { major: 8, minor: 32, leafWeight: 300 },
        ],
      },
    };
    expect(files(r)).toEqual(['io.weight=8:0 4950', 'io.weight=8:16 910']);
    expect(files(r, { 'io.bfq.weight': 'default 100\n8:0 300\n' })).toEqual(['io.bfq.weight=8:0 500', 'io.bfq.weight=8:16 100']);
    const old = planResources(r, { current: (f) => (f === 'io.bfq.weight' ? '100\n' : undefined) });
    expect(old.writes).toEqual([]);
    expect(old.warnings.filter((w) => /Linux < 5\.4/.test(w))).toHaveLength(2);
    expect(old.warnings.some((w) => /weightDevice\[2\]\.leafWeight is not supported/.test(w))).toBe(true);
  });
  it('writes one io.max line per device and key, in runc order, skipping rate 0', () => {
    const r: Resources = {
      blockIO: {
        throttleReadBpsDevice: [
          { major: 8, minor: 0, rate: 1048576 },
          { major: 8, minor: 16, rate: 0 },
        ],
        throttleWriteBpsDevice: [{ major: 8, minor: 0, rate: 2097152 }],
        throttleReadIOPSDevice: [{ major: 253, minor: 1, rate: 100 }],
        throttleWriteIOPSDevice: [{ major: 253, minor: 1, rate: 50 }],
      },
    };
    const w = resourceWrites(r);
    expect(w.map((x) => `${x.file}=${x.value}`)).toEqual([
      'io.max=8:0 rbps=1048576',
      'io.max=8:0 wbps=2097152',
      'io.max=253:1 riops=100',
      'io.max=253:1 wiops=50',
    ]);
    expect(w.map((x) => x.field)).toEqual([
      'blockIO.throttleReadBpsDevice[0]',
      'blockIO.throttleWriteBpsDevice[0]',
      'blockIO.throttleReadIOPSDevice[0]',
      'blockIO.throttleWriteIOPSDevice[0]',
    ]);
    expect(w.every((x) => x.controller === 'io')).toBe(true);
  });
  it('refuses bad devices and rates, and warns on leafWeight', () => {
    expect(() => files({ blockIO: { throttleReadBpsDevice: [{ major: -1, minor: 0, rate: 1 }] } })).toThrow(/throttleReadBpsDevice\[0\]\.major" must be >= 0/);
    expect(() => files({ blockIO: { throttleReadBpsDevice: [{ major: 8, minor: 0, rate: -5 }] } })).toThrow(/rate" must be >= 0/);
    expect(planResources({ blockIO: { leafWeight: 300 } }).warnings).toEqual(['linux.resources.blockIO.leafWeight is not supported on cgroup v2; ignored']);
  });
});
