import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveCgroupPath } from '../../../src/cgroups/paths.js';
import { CgroupV2, findV2Mount } from '../../../src/cgroups/v2.js';
import { tempDir } from '../../helpers/tmp-dir.js';

describe('resolveCgroupPath', () => {
  it('maps absolute, relative and absent paths', () => {
    expect(resolveCgroupPath('/libpod_parent/libpod-abc', 'x')).toBe('libpod_parent/libpod-abc');
    expect(resolveCgroupPath('pods/p1', 'x')).toBe('tsrun/pods/p1');
    expect(resolveCgroupPath(undefined, 'c1')).toBe('tsrun/c1');
  });
  it('refuses escapes', () => {
    expect(() => resolveCgroupPath('/a/../../etc', 'x')).toThrow(/escapes/);
    expect(() => resolveCgroupPath('pods/../../x', 'x')).toThrow(/escapes/);
    expect(() => resolveCgroupPath('/', 'x')).toThrow(/escapes/);
  });
  it('maps systemd slice:prefix:name notation', () => {
    expect(resolveCgroupPath('machine.slice:libpod:abc', 'x', true)).toBe('machine.slice/libpod-abc.scope');
    expect(resolveCgroupPath('a-b.slice:cri:c1', 'x', true)).toBe('a.slice/a-b.slice/cri-c1.scope');
    expect(() => resolveCgroupPath('bad', 'x', true)).toThrow(/slice:prefix:name/);
  });
});

describe('findV2Mount', () => {
  it('finds the cgroup2 line in mountinfo (hybrid layout)', () => {
    const d = tempDir('mi-');
    writeFileSync(
      join(d, 'mountinfo'),
      '30 25 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro\n31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw\n32 30 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n',
    );
    expect(findV2Mount(join(d, 'mountinfo'))).toBe('/sys/fs/cgroup/unified');
    writeFileSync(join(d, 'none'), '32 30 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n');
    expect(findV2Mount(join(d, 'none'))).toBeNull();
  });
});

describe('CgroupV2 on a fake hierarchy', () => {
  const root = () => {
    const d = tempDir('cg-');
    writeFileSync(join(d, 'cgroup.controllers'), 'cpu memory pids\n');
    return new CgroupV2(d);
  };

  it('creates nested cgroups and refuses one that already holds processes', () => {
    const cg = root();
    cg.create('tsrun/c1');
    expect(existsSync(cg.path('tsrun/c1'))).toBe(true);
    writeFileSync(join(cg.path('tsrun/c1'), 'cgroup.procs'), '123\n456\n');
    expect(() => cg.create('tsrun/c1')).toThrow(/not empty: 2 process/);
    expect(cg.procs('tsrun')).toEqual([123, 456]);
    expect(cg.rootControllers()).toEqual(['cpu', 'memory', 'pids']);
  });

  it('freezes by writing cgroup.freeze and waiting for cgroup.events', () => {
    const cg = root();
    mkdirSync(cg.path('c'));
    writeFileSync(join(cg.path('c'), 'cgroup.events'), 'populated 1\nfrozen 1\n');
    cg.freeze('c', true, 200);
    expect(readFileSync(join(cg.path('c'), 'cgroup.freeze'), 'utf8')).toBe('1');
    expect(cg.isFrozen('c')).toBe(true);
    expect(() => cg.freeze('c', false, 50)).toThrow(/did not reach "frozen 0"/);
  });

  it('kills through cgroup.kill for SIGKILL', () => {
    const cg = root();
    mkdirSync(cg.path('k'));
    cg.killAll('k', 9);
    expect(readFileSync(join(cg.path('k'), 'cgroup.kill'), 'utf8')).toBe('1');
  });
});
