// Runs inside the cgroup v2 VM (`npm run test:vm` -> scripts/test-vm -> scripts/vm-run,
// which sets TSRUN_VM=1). Skipped elsewhere: on a v1/hybrid host these files do not exist.
import { readFileSync, statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const inVm = process.env.TSRUN_VM === '1';

describe.skipIf(!inVm)('VM stage', () => {
  it('runs as root on a pure cgroup v2 hierarchy with the controllers enabled', () => {
    expect(process.getuid?.()).toBe(0);
    const read = (f: string) => readFileSync(`/sys/fs/cgroup/${f}`, 'utf8').trim().split(/\s+/);
    const wanted = ['memory', 'cpu', 'io', 'pids', 'cpuset'];
    expect(read('cgroup.controllers')).toEqual(expect.arrayContaining(wanted));
    expect(read('cgroup.subtree_control')).toEqual(expect.arrayContaining(wanted));
    // pure v2: the process is in the unified hierarchy only
    expect(readFileSync('/proc/self/cgroup', 'utf8')).toMatch(/^0::\//);
    // a real block device for io.max
    expect(statSync('/dev/vda').isBlockDevice()).toBe(true);
  });
});
