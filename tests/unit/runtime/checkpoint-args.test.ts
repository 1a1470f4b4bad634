// The criu command lines of checkpoint and restore (src/runtime/checkpoint.ts), checked without
// criu: which mounts are external and how they map back, stdio and namespace inheritance, flags.
import { describe, expect, it } from 'vitest';
import { criuDumpArgs, criuLogErrors, criuRestoreArgs, externalMounts } from '../../../src/runtime/checkpoint.js';
import type { Spec } from '../../../src/spec/types.js';
import { TsrunError } from '../../../src/util/errors.js';

const spec = (over: Partial<Spec> = {}): Spec =>
  ({
    ociVersion: '1.2.0',
    root: { path: 'rootfs' },
    process: { cwd: '/', args: ['sh'], user: { uid: 0, gid: 0 } },
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs' },
      { destination: '/etc/hosts', type: 'bind', source: '/var/run/x/hosts', options: ['rbind', 'ro'] },
      { destination: '/data/', source: 'vol', options: ['bind'] },
      { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['ro'] },
    ],
    linux: { namespaces: [{ type: 'pid' }, { type: 'mount' }, { type: 'network' }] },
    ...over,
  }) as Spec;

describe('externalMounts', () => {
  it('lists bind mounts (source resolved against the bundle) and, without a cgroup namespace, the cgroup bind', () => {
    expect(externalMounts(spec(), '/b', '/sys/fs/cgroup/tsrun/c1')).toEqual([
      { destination: '/etc/hosts', source: '/var/run/x/hosts' },
      { destination: '/data', source: '/b/vol' },
      { destination: '/sys/fs/cgroup', source: '/sys/fs/cgroup/tsrun/c1' },
    ]);
  });
  it('leaves the cgroup mount to criu with a cgroup namespace (a real cgroup2 mount)', () => {
    const s = spec({ linux: { namespaces: [{ type: 'mount' }, { type: 'cgroup' }] } });
    expect(externalMounts(s, '/b', '/sys/fs/cgroup/tsrun/c1').map((m) => m.destination)).toEqual(['/etc/hosts', '/data']);
  });
});

describe('criuDumpArgs', () => {
  const inputs = {
    pid: 42,
    rootfs: '/b/rootfs',
    cgroupDir: '/sys/fs/cgroup/tsrun/c1',
    external: [{ destination: '/etc/hosts', source: '/h' }],
    externalNs: ['net[4026532000]:extRootNetNS'],
    externalFiles: ['file[19:4]', 'file[19:4]'],
  };
  it("dumps the init with runc's options: root, cgroups, freezer, external mounts, namespaces and stdio files", () => {
    const a = criuDumpArgs({ id: 'c1', imagePath: '/img', workPath: '/w', tcpEstablished: true, fileLocks: true }, inputs, 'dump.log');
    expect(a.slice(0, 10)).toEqual(['dump', '-t', '42', '-D', '/img', '-o', 'dump.log', '-v4', '--root', '/b/rootfs']);
    expect(a.join(' ')).toContain('-W /w --manage-cgroups=soft --network-lock nftables --freeze-cgroup /sys/fs/cgroup/tsrun/c1');
    expect(a.join(' ')).toContain('--external net[4026532000]:extRootNetNS --empty-ns net --external file[19:4]');
    expect(a.filter((x) => x === 'file[19:4]')).toHaveLength(1);
    expect(a).toEqual(expect.arrayContaining(['--tcp-established', '--file-locks']));
    expect(a).not.toContain('--leave-running');
    expect(a.slice(-2)).toEqual(['--ext-mount-map', '/etc/hosts:/etc/hosts']);
  });
  it('pre-dump tracks memory and dumps no mounts; --parent-path becomes --prev-images-dir', () => {
    const pre = criuDumpArgs({ id: 'c1', imagePath: '/img', preDump: true }, inputs, 'dump.log');
    expect(pre[0]).toBe('pre-dump');
    expect(pre).toContain('--track-mem');
    expect(pre).not.toContain('--ext-mount-map');
    const dump = criuDumpArgs({ id: 'c1', imagePath: '/img', parentPath: '../pre', leaveRunning: true, manageCgroupsMode: 'full' }, inputs, 'dump.log');
    expect(dump.join(' ')).toContain('--prev-images-dir ../pre --track-mem');
    expect(dump).toEqual(expect.arrayContaining(['--leave-running', '--manage-cgroups=full']));
  });
  it('refuses an unknown cgroups mode, --empty-ns other than network, an unknown network lock', () => {
    expect(() => criuDumpArgs({ id: 'c', imagePath: '/i', manageCgroupsMode: 'x' }, inputs, 'l')).toThrow(TsrunError);
    expect(() => criuDumpArgs({ id: 'c', imagePath: '/i', emptyNs: ['pid'] }, inputs, 'l')).toThrow(/only "network"/);
    expect(() => criuDumpArgs({ id: 'c', imagePath: '/i', networkLock: 'skip' }, inputs, 'l')).toThrow(/nftables or iptables/);
  });
});

describe('criuRestoreArgs', () => {
  it("maps mounts back to their sources, reconnects pipes and external files to tsrun's own stdio, passes namespaces", () => {
    const a = criuRestoreArgs(
      { id: 'c1', bundle: '/b', detach: true, imagePath: '/img', lsmProfile: 'apparmor:p' },
      {
        root: '/run/tsrun/.criu-root-c1',
        pidFile: '/run/tsrun/c1/criu.pid',
        cgroupPath: 'tsrun/c1',
        external: [{ destination: '/etc/hosts', source: '/h' }],
        descriptors: ['/dev/null', 'pipe:[123]', 'pipe:[124]'],
        inheritNs: ['fd[3]:extRootNetNS'],
        joinNs: ['ipc:/proc/9/ns/ipc'],
        externalFiles: [{ fd: 0, key: 'file[19:4]' }],
      },
      'restore.log',
    );
    const s = a.join(' ');
    expect(a.slice(0, 12)).toEqual([
      'restore',
      '-D',
      '/img',
      '-o',
      'restore.log',
      '-v4',
      '--root',
      '/run/tsrun/.criu-root-c1',
      '--restore-detached',
      '--restore-sibling',
      '--pidfile',
      '/run/tsrun/c1/criu.pid',
    ]);
    expect(s).toContain('--cgroup-root /tsrun/c1');
    expect(s).toContain('--ext-mount-map /etc/hosts:/h');
    expect(s).toContain('--inherit-fd fd[1]:pipe:[123] --inherit-fd fd[2]:pipe:[124]');
    expect(s).not.toContain('fd[0]:/dev/null');
    expect(s).toContain('--inherit-fd fd[0]:file[19:4]');
    expect(s).toContain('--inherit-fd fd[3]:extRootNetNS');
    expect(s).toContain('--join-ns ipc:/proc/9/ns/ipc');
    expect(s).toContain('--lsm-profile apparmor:p');
    expect(s).toContain('--empty-ns net');
  });
});

describe('criuLogErrors', () => {
  it('picks the Error lines with the line before each', () => {
    const log = ['(0.1) a', '(0.2) b', '(0.3) Error (x.c:1): bad', '(0.4) c', '(0.5) Error (y.c:2): worse'].join('\n');
    expect(criuLogErrors(log)).toEqual(['(0.2) b', '(0.3) Error (x.c:1): bad', '(0.4) c', '(0.5) Error (y.c:2): worse']);
  });
});
