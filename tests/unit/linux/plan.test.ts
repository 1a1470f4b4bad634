import { describe, expect, it } from 'vitest';
import { buildExecPlan, buildInitPlan, type InitInputs } from '../../../src/linux/plan.js';
import { encodePlan, PLAN_MAGIC, type PlanStep } from '../../../src/linux/plan-encode.js';
import type { Spec } from '../../../src/spec/types.js';

function spec(mut: (s: Spec) => void = () => {}): Spec {
  const s: Spec = {
    ociVersion: '1.2.0',
    root: { path: 'rootfs' },
    process: {
      user: { uid: 1000, gid: 1000, additionalGids: [2000] },
      args: ['/bin/sh', '-c', 'true'],
      env: ['PATH=/bin'],
      cwd: '/work',
      capabilities: { bounding: ['CAP_KILL'], effective: ['CAP_KILL'], permitted: ['CAP_KILL'] },
      noNewPrivileges: true,
    },
    hostname: 'h',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['newinstance'] },
      { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['ro', 'nosuid'] },
    ],
    linux: {
      namespaces: [{ type: 'pid' }, { type: 'mount' }, { type: 'uts' }, { type: 'network', path: '/run/netns/x' }],
      maskedPaths: ['/proc/kcore'],
      readonlyPaths: ['/proc/sys'],
      seccomp: { defaultAction: 'SCMP_ACT_ALLOW' },
    },
  };
  mut(s);
  return s;
}

const inputs = (over: Partial<InitInputs> = {}): InitInputs => ({
  rootfs: '/b/rootfs',
  bundle: '/b',
  lastCap: 40,
  joins: [{ type: 'network', fd: 9, path: '/run/netns/x' }],
  fifoFd: 7,
  consoleFd: -1,
  preserveFds: 0,
  seccomp: { bpf: Buffer.alloc(8), flags: 0 },
  bindKinds: {},
  hookPoints: [],
  detach: true,
  cgroupDir: '/sys/fs/cgroup/unified/tsrun/c1',
  ...over,
});

const ops = (steps: PlanStep[]) => steps.map((s) => s.op);
const idx = (steps: PlanStep[], op: string) => ops(steps).indexOf(op as PlanStep['op']);

describe('buildInitPlan', () => {
  it('CVE-2016-9962 (non-dumpable first): orders stage 1 (namespaces), fork, filesystem, pivot, then identity, as design-notes §7.4 says', () => {
    const s = buildInitPlan(spec(), inputs());
    expect(ops(s).slice(0, 4)).toEqual(['DUMPABLE', 'SETNS', 'UNSHARE', 'FORK']);
    expect(idx(s, 'BIND_ROOTFS')).toBeLessThan(idx(s, 'MOUNT'));
    expect(idx(s, 'PIVOT')).toBeLessThan(idx(s, 'MASK'));
    expect(idx(s, 'MASK')).toBeLessThan(idx(s, 'READONLY'));
    expect(idx(s, 'CHDIR')).toBeLessThan(idx(s, 'SETUSER'));
    expect(idx(s, 'CAPS_BOUNDING')).toBeLessThan(idx(s, 'SETUSER'));
    expect(idx(s, 'SETUSER')).toBeLessThan(idx(s, 'CAPS'));
    // Everything tsrun needs before the filter; only the final capability sets and NNP between.
    expect(ops(s).slice(-8)).toEqual(['SETUSER', 'FIND_EXEC', 'CLOSE_FDS', 'READY', 'CAPS', 'NNP', 'SECCOMP', 'EXEC']);
  });

  it("without no_new_privs loads seccomp after tsrun's own work, followed only by capset (CAP_SYS_ADMIN raised for it)", () => {
    const s = buildInitPlan(
      spec((x) => (x.process!.noNewPrivileges = false)),
      inputs(),
    );
    expect(ops(s).slice(-7)).toEqual(['SETUSER', 'FIND_EXEC', 'CLOSE_FDS', 'READY', 'SECCOMP', 'CAPS', 'EXEC']);
    expect(s[idx(s, 'SECCOMP')]!.fields[1]).toEqual({ int: 1 });
    expect(ops(s)).not.toContain('NNP');
  });

  it('CVE-2026-41579 / CVE-2026-47766: always mounts a fresh tmpfs /dev first and creates devices right after it', () => {
    const s = buildInitPlan(spec(), inputs());
    const mounts = s.filter((x) => x.op === 'MOUNT');
    expect(mounts[0]!.target).toBe('tmpfs on /dev');
    const devAt = s.indexOf(mounts[0]!);
    expect(s[devAt + 1]!.op).toBe('MKNOD');
    expect(s.filter((x) => x.op === 'MKNOD').map((x) => x.target)).toEqual(['/dev/null', '/dev/zero', '/dev/full', '/dev/random', '/dev/urandom', '/dev/tty']);
    expect(s.filter((x) => x.op === 'SYMLINK').map((x) => x.target)).toContain('/dev/ptmx');
  });

  it('CVE-2023-25809 (cgroup exposure): binds the container cgroup instead of mounting cgroup2 when there is no cgroup namespace', () => {
    const s = buildInitPlan(spec(), inputs());
    const cg = s.find((x) => x.op === 'MOUNT' && x.target?.endsWith('/sys/fs/cgroup'));
    expect(cg!.target).toBe('/sys/fs/cgroup/unified/tsrun/c1 on /sys/fs/cgroup');
    const withNs = buildInitPlan(
      spec((x) => x.linux!.namespaces!.push({ type: 'cgroup' })),
      inputs(),
    );
    expect(withNs.find((x) => x.op === 'MOUNT' && x.target?.endsWith('/sys/fs/cgroup'))!.target).toBe('cgroup2 on /sys/fs/cgroup');
  });

  it('CVE-2023-25173: puts the primary gid in the supplementary groups', () => {
    const s = buildInitPlan(spec(), inputs());
    const su = s.find((x) => x.op === 'SETUSER')!;
    expect(su.fields).toEqual([{ int: 1000 }, { int: 1000 }, { int: 2 }, { int: 1000 }, { int: 2000 }]);
  });

  it('creates a user namespace before the other namespaces and joins user first', () => {
    const s = buildInitPlan(
      spec((x) => x.linux!.namespaces!.push({ type: 'user' })),
      inputs({
        joins: [
          { type: 'mount', fd: 4, path: '/m' },
          { type: 'user', fd: 3, path: '/u' },
        ],
      }),
    );
    expect(s.filter((x) => x.op === 'SETNS').map((x) => x.target)).toEqual(['/u', '/m']);
    expect(idx(s, 'USERNS')).toBeLessThan(idx(s, 'UNSHARE'));
  });

  it('refuses a spec without any mount namespace, and empty args; a joined one is used', () => {
    expect(() =>
      buildInitPlan(
        spec((x) => (x.linux!.namespaces = [{ type: 'pid' }])),
        inputs(),
      ),
    ).toThrow(/must include a mount namespace \(new, or joined by path\)/);
    const joined = buildInitPlan(
      spec((x) => (x.linux!.namespaces = [{ type: 'mount', path: '/run/ns/mnt' }])),
      inputs({ joins: [{ type: 'mount', fd: 9, path: '/run/ns/mnt' }] }),
    );
    expect(ops(joined).slice(0, 3)).toEqual(['DUMPABLE', 'SETNS', 'FORK']);
    expect(() =>
      buildInitPlan(
        spec((x) => (x.process!.args = [])),
        inputs(),
      ),
    ).toThrow(/process.args/);
  });

  it('raises only ambient caps that are also permitted and inheritable', () => {
    const s = buildInitPlan(
      spec((x) => (x.process!.capabilities = { permitted: ['CAP_KILL', 'CAP_CHOWN'], inheritable: ['CAP_KILL'], ambient: ['CAP_KILL', 'CAP_CHOWN'] })),
      inputs(),
    );
    const caps = s.find((x) => x.op === 'CAPS')!;
    expect(caps.fields[3]).toEqual({ int: 1n << 5n }); // CAP_KILL only
  });
});

describe('buildExecPlan', () => {
  it('joins, forks, and never touches mounts', () => {
    const s = buildExecPlan(spec().process!, { lastCap: 40, joins: [{ type: 'pid', fd: 5, path: '/p' }], consoleFd: -1, preserveFds: 0, detach: true });
    expect(ops(s)).toEqual([
      'DUMPABLE',
      'SETNS',
      'FORK',
      'SETSID',
      'CHDIR',
      'UMASK',
      'CAPS_BOUNDING',
      'SETUSER',
      'FIND_EXEC',
      'CLOSE_FDS',
      'READY',
      'CAPS',
      'NNP',
      'EXEC',
    ]);
  });
});

describe('encodePlan', () => {
  it('writes the header, the step count and 8-byte aligned strings', () => {
    const b = encodePlan([{ op: 'HOSTNAME', syscall: 'sethostname', fields: [{ str: 'abc' }] }]);
    expect(b.readBigUInt64LE(0)).toBe(PLAN_MAGIC);
    expect(b.readBigInt64LE(16)).toBe(1n);
    expect(b.readBigInt64LE(24)).toBe(18n); // OP_HOSTNAME
    expect(b.readBigInt64LE(32)).toBe(16n); // payload: len + "abc\0" padded to 8
    expect(b.subarray(48, 52).toString()).toBe('abc\0');
    expect(b.length % 8).toBe(0);
  });

  it('refuses strings with NUL bytes', () => {
    expect(() => encodePlan([{ op: 'HOSTNAME', syscall: 'x', fields: [{ str: 'a\0b' }] }])).toThrow(/NUL/);
  });
});
