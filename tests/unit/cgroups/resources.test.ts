import { describe, expect, it } from 'vitest';
import { requiredControllers } from '../../../src/cgroups/resources.js';

describe('requiredControllers', () => {
  it('asks nothing for absent resources or device rules only', () => {
    expect(requiredControllers(undefined).size).toBe(0);
    expect(requiredControllers({ devices: [{ allow: false, access: 'rwm' }] }).size).toBe(0);
  });

  it('treats kernel defaults and "unlimited" as no limit (containerd always sends shares 1024)', () => {
    const need = requiredControllers({ cpu: { shares: 1024 }, memory: { limit: -1, swap: 0 }, pids: { limit: 0 } });
    expect([...need.keys()]).toEqual([]);
  });

  it('names the controller and field of every real limit', () => {
    const need = requiredControllers({
      memory: { limit: 67108864, swap: 134217728 },
      cpu: { shares: 512, quota: 50000, period: 100000, cpus: '0' },
      pids: { limit: 50 },
      blockIO: { weight: 100 },
      hugepageLimits: [{ pageSize: '2MB', limit: 0 }],
      unified: { 'memory.high': '1G', 'cgroup.freeze': '0' },
    });
    expect(Object.fromEntries(need)).toEqual({
      memory: ['memory.limit', 'memory.swap', 'unified["memory.high"]'],
      cpu: ['cpu.shares', 'cpu.quota', 'cpu.period'],
      cpuset: ['cpu.cpus'],
      pids: ['pids.limit'],
      io: ['blockIO'],
      hugetlb: ['hugepageLimits'],
    });
  });

  it('ignores a period without a quota', () => {
    expect(requiredControllers({ cpu: { period: 100000 } }).size).toBe(0);
  });
});
