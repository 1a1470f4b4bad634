import { describe, expect, it } from 'vitest';
import { controllersFor, planResources, resourceWrites, validateResources } from '../../../../src/cgroups/controllers/index.js';
import type { Resources } from '../../../../src/spec/types.js';
import { TsrunError } from '../../../../src/util/errors.js';

const all: Resources = {
  devices: [{ allow: false, access: 'rwm' }],
  unified: { 'memory.high': '805306368' },
  rdma: { mlx5_0: { hcaHandles: 2 } },
  hugepageLimits: [{ pageSize: '2MB', limit: 2097152 }],
  cpu: { shares: 1024, quota: 20000, period: 100000, cpus: '0-1', mems: '0' },
  blockIO: { weight: 500 },
  memory: { limit: 1073741824, swap: 2147483648 },
  pids: { limit: 64 },
};

describe('resourceWrites', () => {
  it('orders controllers as runc does: pids, memory, io, cpu, cpuset, hugetlb, rdma, unified', () => {
    expect(resourceWrites(all).map((w) => `${w.controller}:${w.file}=${w.value}`)).toEqual([
      'pids:pids.max=64',
      'memory:memory.swap.max=1073741824',
      'memory:memory.max=1073741824',
      'io:io.weight=4950',
      'cpu:cpu.weight=100',
      'cpu:cpu.max=20000 100000',
      'cpuset:cpuset.cpus=0-1',
      'cpuset:cpuset.mems=0',
      'hugetlb:hugetlb.2MB.max=2097152',
      'hugetlb:hugetlb.2MB.rsvd.max=2097152',
      'rdma:rdma.max=mlx5_0 hca_handle=2',
      'memory:memory.high=805306368',
    ]);
  });
  it('writes nothing for an empty block or device rules alone', () => {
    expect(resourceWrites({})).toEqual([]);
    expect(resourceWrites({ devices: [{ allow: true, access: 'rwm' }] })).toEqual([]);
  });
  it('only reads the files it is asked about through opts.current', () => {
    const asked: string[] = [];
    resourceWrites(all, { current: (f) => (asked.push(f), undefined) });
    expect(asked.sort()).toEqual(['cpu.max', 'io.bfq.weight']);
  });
});

describe('controllersFor', () => {
  it('names each controller once, in first-write order', () => {
    expect([...controllersFor(resourceWrites(all))]).toEqual(['pids', 'memory', 'io', 'cpu', 'cpuset', 'hugetlb', 'rdma']);
    expect(controllersFor([]).size).toBe(0);
    expect([...controllersFor(resourceWrites({ unified: { 'misc.max': 'res_a 1' } }))]).toEqual(['misc']);
  });
});

describe('validateResources', () => {
  it('throws TsrunError ERR_INVALID_CONFIG for bad values without reading anything', () => {
    const bad: Resources[] = [
      { memory: { limit: 2 << 20, swap: 1 << 20 } },
      { memory: { swap: 1 << 20 } },
      { unified: { 'cgroup.procs': '1' } },
      { cpu: { cpus: 'x' } },
      { blockIO: { weight: 1 } },
    ];
    for (const r of bad) {
      let err: unknown;
      try {
        validateResources(r);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(r)).toBeInstanceOf(TsrunError);
      expect((err as TsrunError).code).toBe('ERR_INVALID_CONFIG');
    }
    expect(() => validateResources({ cpu: { realtimePeriod: 1000000 } })).toThrow(/not supported on cgroup v2/);
  });
  it('returns the warnings of an acceptable config', () => {
    expect(validateResources(all)).toEqual([]);
    expect(validateResources({ memory: { disableOOMKiller: true } })).toEqual([
      'linux.resources.memory.disableOOMKiller is not supported on cgroup v2 (there is no memory.oom_control); ignored',
    ]);
  });
  it('refuses linux.resources.network: the controllers it needs do not exist in cgroup v2', () => {
    expect(() => validateResources({ network: { classID: 1 } })).toThrow('cannot apply linux.resources.network: cgroup v2 has no net_cls/net_prio controllers');
    expect(() => validateResources({ network: { priorities: [{ name: 'eth0', priority: 1 }] } })).toThrow(TsrunError);
    expect(validateResources({ network: {} })).toEqual([]);
  });
  it('agrees with planResources', () => {
    const r: Resources = { memory: { swappiness: 0 } };
    expect(validateResources(r)).toEqual(planResources(r).warnings);
    expect(planResources(r).warnings).toHaveLength(1);
  });
});
