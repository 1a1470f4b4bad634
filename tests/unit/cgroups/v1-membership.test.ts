// cgroup v1 membership (hybrid hosts): which hierarchies, what is recorded as made, what
// delete removes (only what it made, only when empty), on fake hierarchies in a tmpdir.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CgroupV1, joinV1, parseV1Hierarchies, removeV1 } from '../../../src/cgroups/v1-membership.js';
import { tempDir } from '../../helpers/tmp-dir.js';

const HYBRID = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,clone_children
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd,release_agent=/x
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
90 35 0:32 /some/sub /mnt/mem\\040copy rw,relatime - cgroup cgroup rw,memory
91 31 0:39 /.. /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
`;

describe('parseV1Hierarchies', () => {
  it('finds each v1 hierarchy once, with its controllers or name; cgroup2 and out-of-namespace roots left out', () => {
    expect(parseV1Hierarchies(HYBRID)).toEqual([
      { mount: '/sys/fs/cgroup/cpu,cpuacct', controllers: ['cpu', 'cpuacct'] },
      { mount: '/sys/fs/cgroup/cpuset', controllers: ['cpuset'] },
      { mount: '/sys/fs/cgroup/memory', controllers: ['memory'] },
      { mount: '/sys/fs/cgroup/systemd', controllers: [], name: 'systemd' },
    ]);
  });
  it('detect() is null on a pure v2 host, even with a name=systemd compatibility mount', () => {
    const d = tempDir('v1mi-');
    writeFileSync(
      join(d, 'v2'),
      '41 31 0:38 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n',
    );
    expect(CgroupV1.detect(join(d, 'v2'))).toBeNull();
    writeFileSync(join(d, 'hybrid'), HYBRID);
    expect(CgroupV1.detect(join(d, 'hybrid'))?.hierarchies.length).toBe(4);
  });
});

function fakeHost() {
  const d = tempDir('v1cg-');
  const mem = join(d, 'memory');
  const cpuset = join(d, 'cpuset');
  mkdirSync(mem);
  mkdirSync(cpuset);
  writeFileSync(join(cpuset, 'cpuset.cpus'), '0-3\n');
  writeFileSync(join(cpuset, 'cpuset.mems'), '0\n');
  const v1 = new CgroupV1(
    [
      { mount: cpuset, controllers: ['cpuset'] },
      { mount: mem, controllers: ['memory'] },
    ],
    { checkFs: false },
  );
  return { d, mem, cpuset, v1 };
}

/** What the kernel gives a new cgroup directory: empty cgroup.procs (and empty cpuset files). */
function kernelFiles(dir: string, cpuset: boolean): void {
  writeFileSync(join(dir, 'cgroup.procs'), '');
  if (cpuset) {
    writeFileSync(join(dir, 'cpuset.cpus'), '');
    writeFileSync(join(dir, 'cpuset.mems'), '');
  }
}

describe('CgroupV1', () => {
  it('plans the v2 path in every hierarchy, says what it made, and fills a new cpuset from its parent', () => {
    const { mem, cpuset, v1 } = fakeHost();
    mkdirSync(join(mem, 'tsrun', 'c1'), { recursive: true }); // found, not made
    const p = v1.plan('tsrun/c1');
    expect(p).toEqual([
      { dir: join(cpuset, 'tsrun/c1'), created: true, top: join(cpuset, 'tsrun') },
      { dir: join(mem, 'tsrun/c1'), created: false },
    ]);
    // A real cpuset hierarchy creates the files with the directory; here, give the parent
    // level's files up front (what mkdir would) and check the leaf is filled top-down.
    mkdirSync(join(cpuset, 'tsrun'));
    kernelFiles(join(cpuset, 'tsrun'), true);
    v1.create('tsrun/c1', p);
    expect(p.map((x) => x.created)).toEqual([true, false]);
    expect(p[0]!.top, 'the parent was there by then: not made by this create').toBeUndefined();
    expect(readFileSync(join(cpuset, 'tsrun', 'cpuset.cpus'), 'utf8')).toBe('0-3');
    expect(readFileSync(join(cpuset, 'tsrun', 'c1', 'cpuset.cpus'), 'utf8')).toBe('0-3');
    expect(readFileSync(join(cpuset, 'tsrun', 'c1', 'cpuset.mems'), 'utf8')).toBe('0');
  });

  it('joins by writing the pid to cgroup.procs of each directory; exec skips a vanished one', () => {
    const { mem, cpuset, v1 } = fakeHost();
    const p = v1.plan('x');
    v1.create('x', p);
    v1.join(p, 4242);
    expect(readFileSync(join(mem, 'x', 'cgroup.procs'), 'utf8')).toBe('4242');
    expect(readFileSync(join(cpuset, 'x', 'cgroup.procs'), 'utf8')).toBe('4242');
    const gone = [...p, { dir: join(mem, 'nope'), created: true }];
    expect(() => joinV1(gone, 7, { checkFs: false })).toThrow(/place process 7 in cgroup v1/);
    joinV1(gone, 7, { checkFs: false, skipMissing: true });
  });

  it('removes only the directories it made, only when no process or sub-cgroup is in them', () => {
    const { mem, cpuset, v1 } = fakeHost();
    mkdirSync(join(mem, 'c'));
    kernelFiles(join(mem, 'c'), false);
    const p = v1.plan('c');
    v1.create('c', p);
    kernelFiles(join(cpuset, 'c'), true);
    expect(p.map((x) => x.created)).toEqual([true, false]);
    // A host process lives in the cpuset directory it made: left, and said so.
    writeFileSync(join(cpuset, 'c', 'cgroup.procs'), '99\n');
    const left = v1.remove(p, 0);
    expect(left).toEqual([{ dir: join(cpuset, 'c'), reason: '1 process(es) and 0 sub-cgroup(s) still in it' }]);
    expect(existsSync(join(mem, 'c')), 'found, not made: never removed').toBe(true);
  });

  it('removes the parents it made (mkdir -p) while they are empty, and keeps one another container uses', () => {
    // (No files in these fake directories: a plain rmdir must succeed, as on cgroupfs.)
    const { mem } = fakeHost();
    const v1 = new CgroupV1([{ mount: mem, controllers: ['memory'] }], { checkFs: false });
    const a = v1.plan('ns/a');
    v1.create('ns/a', a);
    expect(a[0]).toEqual({ dir: join(mem, 'ns/a'), created: true, top: join(mem, 'ns') });
    const b = v1.plan('ns/b');
    v1.create('ns/b', b);
    expect(b[0]).toEqual({ dir: join(mem, 'ns/b'), created: true });
    expect(v1.remove(a, 0)).toEqual([]);
    expect(existsSync(join(mem, 'ns/a'))).toBe(false);
    expect(existsSync(join(mem, 'ns')), 'b still lives under it').toBe(true);
    expect(v1.remove(b, 0)).toEqual([]);
    expect(existsSync(join(mem, 'ns')), 'b did not make it: left').toBe(true);
    expect(existsSync(join(mem, 'ns/b'))).toBe(false);
    const c = v1.plan('ns2/x/c');
    v1.create('ns2/x/c', c);
    expect(v1.remove(c, 0)).toEqual([]);
    expect(existsSync(join(mem, 'ns2')), 'made by c, empty: removed up to top').toBe(false);
  });

  it('refuses to touch a recorded directory that is not on a cgroup v1 filesystem', () => {
    const { mem, v1 } = fakeHost();
    const p = v1.plan('y');
    v1.create('y', p);
    expect(() => joinV1(p, 1)).toThrow(/is not in a cgroup v1 hierarchy/);
    const left = removeV1(p, 0);
    expect(left.map((l) => l.dir)).toEqual(p.map((x) => x.dir));
    expect(existsSync(join(mem, 'y'))).toBe(true);
  });
});
