import { describe, expect, it } from 'vitest';
import { isCpuList } from '../../../../src/cgroups/controllers/cpuset.js';
import { resourceWrites } from '../../../../src/cgroups/controllers/index.js';
import type { Resources } from '../../../../src/spec/types.js';

const files = (r: Resources) => resourceWrites(r).map((w) => `${w.file}=${w.value}`);

describe('cpuset', () => {
  it('accepts the kernel list syntax and refuses anything else', () => {
    for (const ok of ['0', '0-3', '0-3,5', '0,2,4-7', '0-15:2/4']) expect(isCpuList(ok)).toBe(true);
    for (const bad of ['', '3-1', '0-', ',0', '0,,1', 'a', '0 1', '0-7:3/2', '0-7:0/2', '-1']) expect(isCpuList(bad)).toBe(false);
  });
  it('writes cpus then mems, trimmed, and validates both', () => {
    expect(resourceWrites({ cpu: { cpus: '0-3,5 ', mems: '0' } })).toEqual([
      { controller: 'cpuset', file: 'cpuset.cpus', value: '0-3,5', field: 'cpu.cpus' },
      { controller: 'cpuset', file: 'cpuset.mems', value: '0', field: 'cpu.mems' },
    ]);
    expect(files({ cpu: { cpus: '' } })).toEqual([]);
    expect(() => files({ cpu: { mems: '1-0' } })).toThrow(/"linux\.resources\.cpu\.mems" must be a list like "0-3,5", got "1-0"/);
  });
});

describe('pids', () => {
  it('writes a positive limit, and "max" for 0 and -1', () => {
    expect(files({ pids: { limit: 1024 } })).toEqual(['pids.max=1024']);
    expect(files({ pids: { limit: 0 } })).toEqual(['pids.max=max']);
    expect(files({ pids: { limit: -1 } })).toEqual(['pids.max=max']);
    expect(() => files({ pids: { limit: -2 } })).toThrow(/pids\.limit" must be >= -1/);
  });
});

describe('hugetlb', () => {
  it('writes .max and an optional .rsvd.max per page size', () => {
    expect(
      resourceWrites({
        hugepageLimits: [
          { pageSize: '2MB', limit: 209715200 },
          { pageSize: '1GB', limit: 0 },
        ],
      }),
    ).toEqual([
      { controller: 'hugetlb', file: 'hugetlb.2MB.max', value: '209715200', field: 'hugepageLimits[0]' },
      { controller: 'hugetlb', file: 'hugetlb.2MB.rsvd.max', value: '209715200', field: 'hugepageLimits[0]', optional: true },
      { controller: 'hugetlb', file: 'hugetlb.1GB.max', value: '0', field: 'hugepageLimits[1]' },
      { controller: 'hugetlb', file: 'hugetlb.1GB.rsvd.max', value: '0', field: 'hugepageLimits[1]', optional: true },
    ]);
  });
  it('refuses page sizes that are not file-name tokens', () => {
    expect(() => files({ hugepageLimits: [{ pageSize: '2M', limit: 1 }] })).toThrow(/pageSize" must be a size like "2MB"/);
    expect(() => files({ hugepageLimits: [{ pageSize: '../2MB', limit: 1 }] })).toThrow(/pageSize/);
    expect(() => files({ hugepageLimits: [{ pageSize: '2MB', limit: -1 }] })).toThrow(/limit" must be >= 0/);
  });
});

describe('rdma', () => {
  it('writes one rdma.max line per device, sorted, with only the limits given', () => {
    expect(files({ rdma: { mlx5_1: { hcaObjects: 1000 }, mlx5_0: { hcaHandles: 3, hcaObjects: 10000 }, mlx4_0: {} } })).toEqual([
      'rdma.max=mlx5_0 hca_handle=3 hca_object=10000',
      'rdma.max=mlx5_1 hca_object=1000',
    ]);
    expect(() => files({ rdma: { 'mlx5_0 hca_handle=1': { hcaHandles: 1 } } })).toThrow(/RDMA device name/);
    expect(() => files({ rdma: { mlx5_0: { hcaHandles: -1 } } })).toThrow(/hcaHandles" must be >= 0/);
  });
});
