import { describe, it, expect } from 'vitest';
import { parseSpec } from '../../../src/spec/load.js';
import type { Spec } from '../../../src/spec/types.js';
import { validateProcess, validateSpec } from '../../../src/spec/validate.js';
import { TsrunError } from '../../../src/util/errors.js';

const ID = '3f1c2a9b7d4e';
const USERDATA = `/var/lib/containers/storage/overlay-containers/${ID}/userdata`;
const CAPS = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_NET_BIND_SERVICE',
  'CAP_SETFCAP',
  'CAP_SETGID',
  'CAP_SETPCAP',
  'CAP_SETUID',
  'CAP_SYS_CHROOT',
];

/** What `podman run --rm alpine sh -c 'echo hi'` hands to its runtime (trimmed seccomp). */
function podmanConfig(): Spec {
  return {
    ociVersion: '1.2.0',
    process: {
      user: { uid: 0, gid: 0, umask: 0o22, additionalGids: [0, 1, 2, 3, 4, 6, 10, 11, 20, 26, 27] },
      args: ['/bin/sh', '-c', 'echo hi'],
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'container=podman', 'HOSTNAME=3f1c2a9b7d4e', 'HOME=/root', 'EMPTY='],
      cwd: '/',
      capabilities: { bounding: [...CAPS], effective: [...CAPS], permitted: [...CAPS] },
      rlimits: [
        { type: 'RLIMIT_NOFILE', hard: 1048576, soft: 1048576 },
        { type: 'RLIMIT_NPROC', hard: 4194304, soft: 4194304 },
      ],
      terminal: false,
      oomScoreAdj: 0,
    },
    root: { path: `/var/lib/containers/storage/overlay/9a8b7c/merged` },
    hostname: ID,
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      {
        destination: '/etc/hostname',
        type: 'bind',
        source: `/run/containers/storage/overlay-containers/${ID}/userdata/hostname`,
        options: ['bind', 'rprivate'],
      },
      {
        destination: '/etc/resolv.conf',
        type: 'bind',
        source: `/run/containers/storage/overlay-containers/${ID}/userdata/resolv.conf`,
        options: ['bind', 'rprivate'],
      },
      { destination: '/etc/hosts', type: 'bind', source: `/run/containers/storage/overlay-containers/${ID}/userdata/hosts`, options: ['bind', 'rprivate'] },
      { destination: '/dev/shm', type: 'bind', source: `${USERDATA}/shm`, options: ['bind', 'rprivate', 'nosuid', 'noexec', 'nodev'] },
      {
        destination: '/run/.containerenv',
        type: 'bind',
        source: `/run/containers/storage/overlay-containers/${ID}/userdata/.containerenv`,
        options: ['bind', 'rprivate'],
      },
      { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['rprivate', 'nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
    ],
    annotations: {
      'io.container.manager': 'libpod',
      'io.podman.annotations.autoremove': 'TRUE',
      'org.opencontainers.image.stopSignal': '15',
    },
    linux: {
      sysctl: { 'net.ipv4.ping_group_range': '0 0' },
      resources: { devices: [{ allow: false, access: 'rwm' }], pids: { limit: 2048 } },
      cgroupsPath: `machine.slice:libpod:${ID}`,
      namespaces: [
        { type: 'pid' },
        { type: 'network', path: '/run/netns/netns-2b1c0a17' },
        { type: 'ipc' },
        { type: 'uts' },
        { type: 'mount' },
        { type: 'cgroup' },
      ],
      seccomp: {
        defaultAction: 'SCMP_ACT_ERRNO',
        defaultErrnoRet: 38,
        architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
        syscalls: [
          { names: ['accept', 'accept4', 'access', 'brk', 'execve', 'exit_group', 'read', 'write'], action: 'SCMP_ACT_ALLOW' },
          { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0, op: 'SCMP_CMP_EQ' }] },
          { names: ['bdflush', 'io_pgetevents', 'kexec_file_load'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 },
        ],
      },
      maskedPaths: [
        '/proc/acpi',
        '/proc/kcore',
        '/proc/keys',
        '/proc/latency_stats',
        '/proc/timer_list',
        '/proc/timer_stats',
        '/proc/sched_debug',
        '/proc/scsi',
        '/sys/firmware',
        '/sys/fs/selinux',
        '/sys/dev/block',
      ],
      readonlyPaths: ['/proc/asound', '/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}

function messageOf(fn: () => void): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(TsrunError);
    expect((err as TsrunError).code).toBe('ERR_INVALID_CONFIG');
    return (err as Error).message;
  }
  throw new Error('expected a config error, but validation passed');
}

const userns = (s: Spec): void => {
  s.linux!.namespaces!.push({ type: 'user' });
  s.linux!.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
  s.linux!.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
};

describe('the podman config', () => {
  it('passes validateSpec', () => {
    expect(() => validateSpec(podmanConfig())).not.toThrow();
  });

  it('parses from JSON with no warnings and keeps every field', () => {
    const { spec, warnings } = parseSpec(JSON.stringify(podmanConfig()));
    expect(warnings).toEqual([]);
    expect(JSON.parse(JSON.stringify(spec))).toEqual(podmanConfig());
  });
});

// [what, mutation, exact message substring]. Every case starts from the valid podman config.
const failing: Array<[string, (s: Spec) => void, string]> = [
  [
    'ociVersion 2.x',
    (s) => {
      s.ociVersion = '2.0.0';
    },
    '"ociVersion" must be a 1.x version',
  ],
  [
    'ociVersion not a version',
    (s) => {
      s.ociVersion = '1.x';
    },
    '"ociVersion" must be a 1.x version',
  ],
  [
    'root missing',
    (s) => {
      delete s.root;
    },
    '"root.path" is required',
  ],
  [
    'root.path empty',
    (s) => {
      s.root!.path = '';
    },
    '"root.path" is required',
  ],
  [
    'process missing',
    (s) => {
      delete s.process;
    },
    '"process" is required',
  ],
  [
    'args empty',
    (s) => {
      s.process!.args = [];
    },
    '"process.args" must be a non-empty array of strings',
  ],
  [
    'args missing',
    (s) => {
      delete s.process!.args;
    },
    '"process.args" must be a non-empty array of strings',
  ],
  [
    'cwd relative',
    (s) => {
      s.process!.cwd = 'tmp';
    },
    '"process.cwd" must be an absolute path',
  ],
  [
    'cwd empty',
    (s) => {
      s.process!.cwd = '';
    },
    '"process.cwd" must be an absolute path',
  ],
  [
    'CVE-2024-21626: cwd /proc/self/fd',
    (s) => {
      s.process!.cwd = '/proc/self/fd/7';
    },
    '"process.cwd" must not be inside /proc/<pid>/fd',
  ],
  [
    'CVE-2024-21626: cwd /proc/<pid>/fd',
    (s) => {
      s.process!.cwd = '/proc/1/fd/3';
    },
    '"process.cwd" must not be inside /proc/<pid>/fd',
  ],
  [
    'cwd /proc/thread-self/fd',
    (s) => {
      s.process!.cwd = '/proc/thread-self/fd';
    },
    '"process.cwd" must not be inside /proc/<pid>/fd',
  ],
  [
    'CVE-2024-21626: cwd disguised /proc fd',
    (s) => {
      s.process!.cwd = '//proc/./self//fd/7';
    },
    '"process.cwd" must not be inside /proc/<pid>/fd',
  ],
  [
    'env without =',
    (s) => {
      s.process!.env!.push('NOEQUALS');
    },
    '"process.env[5]" must be in the form KEY=VALUE',
  ],
  [
    'env with empty name',
    (s) => {
      s.process!.env![0] = '=x';
    },
    '"process.env[0]" must be in the form KEY=VALUE',
  ],
  [
    'uid negative',
    (s) => {
      s.process!.user.uid = -1;
    },
    '"process.user.uid" must be an integer between 0 and 4294967294',
  ],
  [
    'CVE-2024-40635: uid (uid_t)-1',
    (s) => {
      s.process!.user.uid = 4294967295;
    },
    '"process.user.uid" must be an integer between 0 and 4294967294',
  ],
  [
    'gid too large',
    (s) => {
      s.process!.user.gid = 2 ** 32;
    },
    '"process.user.gid" must be an integer between 0 and 4294967294',
  ],
  [
    'additionalGids too large',
    (s) => {
      s.process!.user.additionalGids![2] = 4294967295;
    },
    '"process.user.additionalGids[2]" must be an integer between 0 and 4294967294',
  ],
  [
    'umask too large',
    (s) => {
      s.process!.user.umask = 0o1000;
    },
    '"process.user.umask" must be a mode between 0 and 0o777',
  ],
  [
    'rlimit unknown type',
    (s) => {
      s.process!.rlimits![0]!.type = 'RLIMIT_BOGUS';
    },
    '"process.rlimits[0].type" must be one of RLIMIT_CPU, RLIMIT_FSIZE',
  ],
  [
    'rlimit soft > hard',
    (s) => {
      s.process!.rlimits![1]!.soft = 4194305;
    },
    '"process.rlimits[1].soft" must not exceed the hard limit',
  ],
  [
    'rlimit negative',
    (s) => {
      s.process!.rlimits![0] = { type: 'RLIMIT_CORE', soft: -1, hard: 0 };
    },
    '"process.rlimits[0].soft" must be a non-negative integer',
  ],
  [
    'rlimit above 2^64',
    (s) => {
      s.process!.rlimits![0]!.hard = 2 ** 65;
    },
    '"process.rlimits[0].hard" must be a non-negative integer',
  ],
  [
    'rlimit duplicate',
    (s) => {
      s.process!.rlimits!.push({ type: 'RLIMIT_NOFILE', soft: 1, hard: 1 });
    },
    '"process.rlimits[2].type" sets RLIMIT_NOFILE twice',
  ],
  [
    'capability lower case',
    (s) => {
      s.process!.capabilities!.bounding![3] = 'cap_kill';
    },
    '"process.capabilities.bounding[3]" must be a capability name like CAP_CHOWN',
  ],
  [
    'capability without prefix',
    (s) => {
      s.process!.capabilities!.effective = ['CHOWN'];
    },
    '"process.capabilities.effective[0]" must be a capability name like CAP_CHOWN',
  ],
  [
    'oomScoreAdj above 1000',
    (s) => {
      s.process!.oomScoreAdj = 1001;
    },
    '"process.oomScoreAdj" must be an integer between -1000 and 1000',
  ],
  [
    'oomScoreAdj below -1000',
    (s) => {
      s.process!.oomScoreAdj = -1001;
    },
    '"process.oomScoreAdj" must be an integer between -1000 and 1000',
  ],
  [
    'consoleSize negative',
    (s) => {
      s.process!.consoleSize = { height: -1, width: 80 };
    },
    '"process.consoleSize.height" must be an integer between 0 and 65535',
  ],
  [
    'consoleSize fraction',
    (s) => {
      s.process!.consoleSize = { height: 24, width: 80.5 };
    },
    '"process.consoleSize.width" must be an integer between 0 and 65535',
  ],
  [
    'ioPriority class',
    (s) => {
      s.process!.ioPriority = { class: 'BE' };
    },
    '"process.ioPriority.class" must be one of IOPRIO_CLASS_RT',
  ],
  [
    'mount relative',
    (s) => {
      s.mounts![5]!.destination = 'etc/hostname';
    },
    '"mounts[5].destination" must be an absolute path',
  ],
  [
    'mount with ..',
    (s) => {
      s.mounts![5]!.destination = '/etc/../../hostname';
    },
    '"mounts[5].destination" must not contain ".." components',
  ],
  [
    'CVE-2019-16884: mount inside /proc',
    (s) => {
      s.mounts!.push({ destination: '/proc/sys/kernel', type: 'bind', source: '/tmp' });
    },
    '"mounts[11].destination" must not be inside /proc',
  ],
  [
    'CVE-2019-16884: tmpfs over /proc',
    (s) => {
      s.mounts![0]!.type = 'tmpfs';
    },
    '"mounts[0].destination" must not be inside /proc',
  ],
  [
    'proc inside /proc',
    (s) => {
      s.mounts![3] = { destination: '/proc//self/', type: 'proc', source: 'proc' };
    },
    '"mounts[3].destination" must not be inside /proc',
  ],
  [
    'mount idmap size 0',
    (s) => {
      s.mounts![5]!.uidMappings = [{ containerID: 0, hostID: 1000, size: 0 }];
    },
    '"mounts[5].uidMappings[0].size" must be an integer between 1 and 4294967295',
  ],
  [
    'namespace type unknown',
    (s) => {
      s.linux!.namespaces!.push({ type: 'net' as 'network' });
    },
    '"linux.namespaces[6].type" must be one of pid, network, mount, ipc, uts, user, cgroup, time',
  ],
  [
    'namespace duplicate',
    (s) => {
      s.linux!.namespaces!.push({ type: 'pid', path: '/proc/1/ns/pid' });
    },
    '"linux.namespaces[6].type" must not repeat namespace "pid"',
  ],
  [
    'namespace relative path',
    (s) => {
      s.linux!.namespaces![1]!.path = 'run/netns/x';
    },
    '"linux.namespaces[1].path" must be an absolute path',
  ],
  [
    'uidMappings without userns',
    (s) => {
      s.linux!.uidMappings = [{ containerID: 0, hostID: 1000, size: 1 }];
    },
    '"linux.uidMappings" requires a user namespace',
  ],
  [
    'userns without uidMappings',
    (s) => {
      userns(s);
      delete s.linux!.uidMappings;
    },
    '"linux.uidMappings" is required with a new user namespace',
  ],
  [
    'userns without gidMappings',
    (s) => {
      userns(s);
      s.linux!.gidMappings = [];
    },
    '"linux.gidMappings" is required with a new user namespace',
  ],
  [
    'uidMappings size 0',
    (s) => {
      userns(s);
      s.linux!.uidMappings![0]!.size = 0;
    },
    '"linux.uidMappings[0].size" must be an integer between 1 and 4294967295',
  ],
  [
    'hostname without uts',
    (s) => {
      s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== 'uts');
    },
    '"hostname" requires a uts namespace (new, or joined by path)',
  ],
  [
    'kernel.hostname sysctl',
    (s) => {
      s.linux!.sysctl = { 'kernel.hostname': 'h' };
    },
    'sysctl "kernel.hostname" is not allowed as it conflicts with the OCI "hostname" field',
  ],
  [
    'domainname without uts',
    (s) => {
      delete s.hostname;
      s.domainname = 'example.org';
      s.linux!.namespaces!.splice(3, 1);
    },
    '"domainname" requires a uts namespace (new, or joined by path)',
  ],
  [
    'timeOffsets without time ns',
    (s) => {
      s.linux!.timeOffsets = { monotonic: { secs: 10 } };
    },
    '"linux.timeOffsets" requires a new time namespace',
  ],
  [
    'sysctl not namespaced',
    (s) => {
      s.linux!.sysctl!['vm.swappiness'] = '10';
    },
    'sysctl "vm.swappiness" is not allowed in a container',
  ],
  [
    'sysctl kernel.pid_max',
    (s) => {
      s.linux!.sysctl!['kernel.pid_max'] = '100';
    },
    'sysctl "kernel.pid_max" is not allowed in a container',
  ],
  [
    'ipc sysctl without ipc ns',
    (s) => {
      s.linux!.sysctl!['kernel.shmmax'] = '1';
      s.linux!.namespaces!.splice(2, 1);
    },
    'sysctl "kernel.shmmax" requires an ipc namespace',
  ],
  [
    'mqueue sysctl without ipc ns',
    (s) => {
      s.linux!.sysctl!['fs.mqueue.msg_max'] = '1';
      s.linux!.namespaces!.splice(2, 1);
    },
    'sysctl "fs.mqueue.msg_max" requires an ipc namespace',
  ],
  [
    'net sysctl without netns',
    (s) => {
      s.linux!.namespaces!.splice(1, 1);
    },
    'sysctl "net.ipv4.ping_group_range" requires a network namespace',
  ],
  [
    'uts sysctl without uts ns',
    (s) => {
      delete s.hostname;
      s.linux!.namespaces!.splice(3, 1);
      s.linux!.sysctl!['kernel.domainname'] = 'x';
    },
    'sysctl "kernel.domainname" requires a uts namespace',
  ],
  [
    'sysctl key with /',
    (s) => {
      s.linux!.sysctl!['net/ipv4/ip_forward'] = '1';
    },
    'sysctl key "net/ipv4/ip_forward" is not valid',
  ],
  [
    'sysctl key with a / after a dot',
    (s) => {
      s.linux!.sysctl!['net.ipv4/ip_forward'] = '1';
    },
    'sysctl key "net.ipv4/ip_forward" is not valid',
  ],
  [
    'sysctl key with ..',
    (s) => {
      s.linux!.sysctl!['net..ipv4'] = '1';
    },
    'sysctl key "net..ipv4" is not valid',
  ],
  [
    'sysctl key with one part',
    (s) => {
      s.linux!.sysctl!['kernel'] = '1';
    },
    'sysctl key "kernel" is not valid',
  ],
  [
    'CVE-2022-0811: sysctl value with newline',
    (s) => {
      s.linux!.sysctl!['net.ipv4.ip_forward'] = '1\nnet.core.somaxconn=5';
    },
    'sysctl "net.ipv4.ip_forward" value must not contain a newline or NUL byte',
  ],
  [
    'maskedPaths relative',
    (s) => {
      s.linux!.maskedPaths!.push('proc/kcore');
    },
    '"linux.maskedPaths[11]" must be an absolute path',
  ],
  [
    'readonlyPaths relative',
    (s) => {
      s.linux!.readonlyPaths![0] = 'proc/asound';
    },
    '"linux.readonlyPaths[0]" must be an absolute path',
  ],
  [
    'device outside /dev',
    (s) => {
      s.linux!.devices = [{ type: 'c', path: '/tmp/null', major: 1, minor: 3 }];
    },
    '"linux.devices[0].path" must be an absolute path under /dev/',
  ],
  [
    'device escaping /dev',
    (s) => {
      s.linux!.devices = [{ type: 'c', path: '/dev/../etc/null', major: 1, minor: 3 }];
    },
    '"linux.devices[0].path" must be an absolute path under /dev/',
  ],
  [
    'device /dev itself',
    (s) => {
      s.linux!.devices = [{ type: 'c', path: '/dev/', major: 1, minor: 3 }];
    },
    '"linux.devices[0].path" must be an absolute path under /dev/',
  ],
  [
    'device type',
    (s) => {
      s.linux!.devices = [{ type: 'x', path: '/dev/null', major: 1, minor: 3 }];
    },
    '"linux.devices[0].type" must be one of c, b, u, p',
  ],
  [
    'device without major',
    (s) => {
      s.linux!.devices = [{ type: 'b', path: '/dev/sda', minor: 0 }];
    },
    '"linux.devices[0].major" is required for type "b"',
  ],
  [
    'device without minor',
    (s) => {
      s.linux!.devices = [{ type: 'u', path: '/dev/null', major: 1 }];
    },
    '"linux.devices[0].minor" is required for type "u"',
  ],
  [
    'device fileMode',
    (s) => {
      s.linux!.devices = [{ type: 'p', path: '/dev/fifo', fileMode: 0o200000 }];
    },
    '"linux.devices[0].fileMode" must be a file mode (permission bits, optionally with the type bits)',
  ],
  [
    'cgroup escape: cgroupsPath with ..',
    (s) => {
      s.linux!.cgroupsPath = '/tsrun/../../system.slice';
    },
    '"linux.cgroupsPath" must not contain ".." components',
  ],
  [
    'systemd cgroupsPath with ..',
    (s) => {
      s.linux!.cgroupsPath = 'machine.slice:..:x';
    },
    '"linux.cgroupsPath" must not contain ".." components',
  ],
  [
    'rootfsPropagation',
    (s) => {
      s.linux!.rootfsPropagation = 'recursive';
    },
    '"linux.rootfsPropagation" must be one of shared, slave, private, unbindable, rshared, rslave, rprivate, runbindable',
  ],
  [
    'seccomp defaultAction',
    (s) => {
      s.linux!.seccomp!.defaultAction = 'SCMP_ACT_DENY';
    },
    '"linux.seccomp.defaultAction" must be one of SCMP_ACT_KILL',
  ],
  [
    'seccomp empty names',
    (s) => {
      s.linux!.seccomp!.syscalls![1]!.names = [];
    },
    '"linux.seccomp.syscalls[1].names" must be a non-empty array of strings',
  ],
  [
    'seccomp action',
    (s) => {
      s.linux!.seccomp!.syscalls![0]!.action = 'ALLOW';
    },
    '"linux.seccomp.syscalls[0].action" must be one of SCMP_ACT_KILL',
  ],
  [
    'seccomp op',
    (s) => {
      s.linux!.seccomp!.syscalls![1]!.args![0]!.op = 'SCMP_CMP_XX';
    },
    '"linux.seccomp.syscalls[1].args[0].op" must be one of SCMP_CMP_NE, SCMP_CMP_LT',
  ],
  [
    'seccomp arg index',
    (s) => {
      s.linux!.seccomp!.syscalls![1]!.args![0]!.index = 6;
    },
    '"linux.seccomp.syscalls[1].args[0].index" must be an integer between 0 and 5',
  ],
  [
    'hook relative path',
    (s) => {
      s.hooks = { createRuntime: [{ path: 'bin/hook' }] };
    },
    '"hooks.createRuntime[0].path" must be an absolute path',
  ],
  [
    'hook timeout 0',
    (s) => {
      s.hooks = { poststop: [{ path: '/bin/true' }, { path: '/bin/true', timeout: 0 }] };
    },
    '"hooks.poststop[1].timeout" must be a positive integer',
  ],
  [
    'memory.limit -2',
    (s) => {
      s.linux!.resources!.memory = { limit: -2 };
    },
    '"linux.resources.memory.limit" must be -1 or a non-negative integer',
  ],
  [
    'memory.swappiness 101',
    (s) => {
      s.linux!.resources!.memory = { swappiness: 101 };
    },
    '"linux.resources.memory.swappiness" must be an integer between 0 and 100',
  ],
  [
    'pids.limit -2',
    (s) => {
      s.linux!.resources!.pids!.limit = -2;
    },
    '"linux.resources.pids.limit" must be -1 or a non-negative integer',
  ],
  [
    'cpu.shares negative',
    (s) => {
      s.linux!.resources!.cpu = { shares: -1 };
    },
    '"linux.resources.cpu.shares" must be a non-negative integer',
  ],
  [
    'cpu.quota -2',
    (s) => {
      s.linux!.resources!.cpu = { quota: -2 };
    },
    '"linux.resources.cpu.quota" must be -1 or a non-negative integer',
  ],
  [
    'cpu.cpus garbage',
    (s) => {
      s.linux!.resources!.cpu = { cpus: '0-3\n' };
    },
    '"linux.resources.cpu.cpus" must be a list like "0-3,6"',
  ],
  [
    'device cgroup access',
    (s) => {
      s.linux!.resources!.devices![0]!.access = 'rwx';
    },
    '"linux.resources.devices[0].access" must contain only the letters r, w and m',
  ],
  [
    'device cgroup allow',
    (s) => {
      (s.linux!.resources!.devices![0] as { allow: unknown }).allow = 'false';
    },
    '"linux.resources.devices[0].allow" must be a boolean',
  ],
  [
    'device cgroup type',
    (s) => {
      s.linux!.resources!.devices![0]!.type = 'p';
    },
    '"linux.resources.devices[0].type" must be one of a, c, b',
  ],
  [
    'hugepage pageSize',
    (s) => {
      s.linux!.resources!.hugepageLimits = [{ pageSize: '2M', limit: 0 }];
    },
    '"linux.resources.hugepageLimits[0].pageSize" must be a size like "2MB"',
  ],
  [
    'throttle rate negative',
    (s) => {
      s.linux!.resources!.blockIO = { throttleReadBpsDevice: [{ major: 8, minor: 0, rate: -1 }] };
    },
    '"linux.resources.blockIO.throttleReadBpsDevice[0].rate" must be a non-negative integer',
  ],
  [
    'unified key',
    (s) => {
      s.linux!.resources!.unified = { '../cgroup.procs': '1' };
    },
    '"linux.resources.unified" key "../cgroup.procs" is not a cgroup file name',
  ],
];

describe('validateSpec rejects', () => {
  it.each(failing)('%s', (_what, mutate, message) => {
    const spec = podmanConfig();
    mutate(spec);
    expect(messageOf(() => validateSpec(spec))).toContain(message);
  });
});

// Edge values that are valid and must stay valid.
const passing: Array<[string, (s: Spec) => void]> = [
  [
    'rlimit RLIM_INFINITY as parsed (2^64)',
    (s) => {
      // biome-ignore lint/correctness/noPrecisionLoss: the literal is what a parsed config.json holds (2^64 rounds to it)
      s.process!.rlimits![0] = { type: 'RLIMIT_CORE', soft: 18446744073709551615, hard: 18446744073709551615 };
    },
  ],
  [
    'commandLine instead of args',
    (s) => {
      delete s.process!.args;
      s.process!.commandLine = 'sh -c true';
    },
  ],
  [
    'uid 4294967294',
    (s) => {
      s.process!.user.uid = 4294967294;
    },
  ],
  [
    'umask 0o777',
    (s) => {
      s.process!.user.umask = 0o777;
    },
  ],
  [
    'proc at /proc/',
    (s) => {
      s.mounts![0]!.destination = '/proc/';
    },
  ],
  [
    'mount at /procfoo',
    (s) => {
      s.mounts!.push({ destination: '/procfoo', type: 'tmpfs' });
    },
  ],
  ['user namespace with mappings', userns],
  [
    'joined user namespace without mappings',
    (s) => {
      s.linux!.namespaces!.push({ type: 'user', path: '/proc/42/ns/user' });
    },
  ],
  [
    'ipc and mqueue sysctls with ipc ns',
    (s) => {
      Object.assign(s.linux!.sysctl!, { 'kernel.shm_rmid_forced': '1', 'fs.mqueue.msg_max': '10' });
    },
  ],
  [
    'net sysctl with a new netns',
    (s) => {
      delete s.linux!.namespaces![1]!.path;
      s.linux!.sysctl!['net.ipv4.conf.eth0.route_localnet'] = '1';
    },
  ],
  [
    'hostname with a uts namespace joined by path',
    (s) => {
      s.linux!.namespaces![3]!.path = '/proc/42/ns/uts';
    },
  ],
  [
    'uts sysctl with uts ns',
    (s) => {
      Object.assign(s.linux!.sysctl!, { 'kernel.domainname': 'example.org' });
    },
  ],
  [
    'no hostname, no uts',
    (s) => {
      delete s.hostname;
      s.linux!.namespaces!.splice(3, 1);
    },
  ],
  [
    'devices of every type',
    (s) => {
      s.linux!.devices = [
        { type: 'c', path: '/dev/fuse', major: 10, minor: 229, fileMode: 0o666, uid: 0, gid: 0 },
        { type: 'b', path: '/dev/loop0', major: 7, minor: 0 },
        { type: 'p', path: '/dev/fifo0', fileMode: 0o7777 },
      ];
    },
  ],
  [
    'resources at their limits',
    (s) => {
      s.linux!.resources = {
        memory: { limit: -1, swap: -1, reservation: 0, swappiness: 0 },
        cpu: { shares: 0, quota: -1, period: 100000, cpus: '0-3,6', mems: '' },
        pids: { limit: -1 },
        devices: [{ allow: true, type: 'c', major: -1, minor: -1, access: '' }],
        hugepageLimits: [{ pageSize: '2MB', limit: 0 }],
        unified: { 'memory.high': '1G', 'hugetlb.2MB.max': 'max' },
      };
    },
  ],
  [
    'pids.limit 0',
    (s) => {
      s.linux!.resources!.pids!.limit = 0;
    },
  ],
  [
    'hook with timeout',
    (s) => {
      s.hooks = { prestart: [{ path: '/usr/bin/hook', args: ['hook', 'prestart'], env: ['A=1'], timeout: 5 }] };
    },
  ],
  [
    'time namespace with offsets',
    (s) => {
      s.linux!.namespaces!.push({ type: 'time' });
      s.linux!.timeOffsets = { boottime: { secs: 1 } };
    },
  ],
];

describe('validateSpec accepts', () => {
  it.each(passing)('%s', (_what, mutate) => {
    const spec = podmanConfig();
    mutate(spec);
    expect(() => validateSpec(spec)).not.toThrow();
  });
});

describe('capability warnings', () => {
  it('warns once about a well-formed but unknown capability and does not throw', () => {
    const spec = podmanConfig();
    spec.process!.capabilities!.bounding!.push('CAP_FUTURE_THING');
    spec.process!.capabilities!.permitted!.push('CAP_FUTURE_THING');
    const warnings: string[] = [];
    validateSpec(spec, warnings);
    expect(warnings).toEqual(['unknown capability "CAP_FUTURE_THING" in process.capabilities.bounding']);
  });

  it('reaches parseSpec callers', () => {
    const spec = podmanConfig();
    spec.process!.capabilities!.ambient = ['CAP_NEW'];
    expect(parseSpec(JSON.stringify(spec)).warnings).toEqual(['unknown capability "CAP_NEW" in process.capabilities.ambient']);
  });
});

describe('validateProcess', () => {
  it('uses the given prefix in messages', () => {
    const p = podmanConfig().process!;
    p.cwd = 'relative';
    expect(messageOf(() => validateProcess(p, 'exec'))).toBe('"exec.cwd" must be an absolute path');
  });

  it('accepts the podman process on its own', () => {
    expect(() => validateProcess(podmanConfig().process!)).not.toThrow();
  });
});
