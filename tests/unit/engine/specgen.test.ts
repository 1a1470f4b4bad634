import { describe, expect, it } from 'vitest';
import { DEFAULT_CAPABILITIES, MASKED_PATHS } from '../../../src/engine/defaults.js';
import { buildSpec, capabilitySet, commandLine, mergeEnv, resourcesFromIntent, rlimitsFromUlimits, type SpecInputs } from '../../../src/engine/specgen.js';
import { CAPABILITIES } from '../../../src/linux/capabilities.js';
import { parseSpec } from '../../../src/spec/load.js';

const root = { uid: 0, gid: 0, additionalGids: [0], home: '/root' };
const inputs = (over: Partial<SpecInputs> = {}): SpecInputs => ({
  image: { Entrypoint: ['/entry'], Cmd: ['--serve'], Env: ['PATH=/img/bin', 'LANG=C.UTF-8'], WorkingDir: '/srv' },
  intent: {},
  user: root,
  hostname: 'abc123',
  ...over,
});

describe('commandLine (docker/podman rules)', () => {
  const img = { Entrypoint: ['/entry'], Cmd: ['--serve'] };
  it('combines, replaces Cmd, and --entrypoint drops the image Cmd', () => {
    expect(commandLine(img, {})).toEqual(['/entry', '--serve']);
    expect(commandLine(img, { cmd: ['--debug'] })).toEqual(['/entry', '--debug']);
    expect(commandLine(img, { entrypoint: '/bin/sh' })).toEqual(['/bin/sh']);
    expect(commandLine(img, { entrypoint: '/bin/sh', cmd: ['-c', 'true'] })).toEqual(['/bin/sh', '-c', 'true']);
    expect(commandLine(img, { entrypoint: '', cmd: ['true'] })).toEqual(['true']);
  });
  it('refuses nothing to run, as docker does', () => {
    expect(() => commandLine({}, {})).toThrow('no command specified');
    expect(() => commandLine(img, { entrypoint: '' })).toThrow('no command specified');
  });
});

describe('environment, capabilities, limits', () => {
  it('merges env by key: defaults <- image <- -e', () => {
    expect(
      mergeEnv([
        ['PATH=/a', 'HOSTNAME=h'],
        ['PATH=/img', 'X=1'],
        ['X=2', 'EMPTY'],
      ]),
    ).toEqual(['HOSTNAME=h', 'PATH=/img', 'X=2', 'EMPTY=']);
    expect(() => mergeEnv([['=oops']])).toThrow('has no name');
  });
  it('docker’s 14 by default; drop, add, ALL; privileged has all; unknown names refused', () => {
    expect(capabilitySet({})).toEqual(CAPABILITIES.filter((c) => (DEFAULT_CAPABILITIES as readonly string[]).includes(c)));
    expect(capabilitySet({ capDrop: ['net_raw', 'CAP_MKNOD'], capAdd: ['sys_admin'] })).toContain('CAP_SYS_ADMIN');
    expect(capabilitySet({ capDrop: ['net_raw'] })).not.toContain('CAP_NET_RAW');
    expect(capabilitySet({ capDrop: ['ALL'], capAdd: ['chown'] })).toEqual(['CAP_CHOWN']);
    expect(capabilitySet({ capAdd: ['ALL'] })).toEqual([...CAPABILITIES]);
    expect(capabilitySet({ privileged: true })).toEqual([...CAPABILITIES]);
    expect(() => capabilitySet({ capAdd: ['sys_wizard'] })).toThrow('CAP_SYS_WIZARD');
  });
  it('limits: --cpus as quota/period, swap needs memory, ulimits', () => {
    expect(resourcesFromIntent({ memoryBytes: 64 << 20, cpus: 0.5, pidsLimit: 50 })).toEqual({
      memory: { limit: 64 << 20 },
      cpu: { quota: 50000, period: 100000 },
      pids: { limit: 50 },
    });
    expect(resourcesFromIntent({})).toBeUndefined();
    expect(() => resourcesFromIntent({ memorySwapBytes: 1 << 30 })).toThrow('needs --memory');
    expect(() => resourcesFromIntent({ cpus: 0 })).toThrow('more than 0');
    expect(rlimitsFromUlimits(['nofile=1024:2048', 'core=-1'])).toEqual([
      { type: 'RLIMIT_NOFILE', soft: 1024, hard: 2048 },
      { type: 'RLIMIT_CORE', soft: 2 ** 64 - 1, hard: 2 ** 64 - 1 },
    ]);
    expect(() => rlimitsFromUlimits(['nofile=10:5'])).toThrow('above the hard');
  });
});

describe('buildSpec', () => {
  it('makes a spec the runtime’s own validator accepts, with docker’s safe defaults', () => {
    const spec = buildSpec(inputs({ intent: { env: ['LANG=de_DE.UTF-8'], tty: true } }));
    expect(() => parseSpec(JSON.stringify(spec))).not.toThrow();
    expect(spec.process!.args).toEqual(['/entry', '--serve']);
    expect(spec.process!.cwd).toBe('/srv');
    expect(spec.process!.env).toEqual(['HOSTNAME=abc123', 'TERM=xterm', 'PATH=/img/bin', 'LANG=de_DE.UTF-8', 'HOME=/root']);
    expect(spec.linux!.maskedPaths).toEqual(MASKED_PATHS);
    expect(spec.linux!.namespaces!.map((n) => n.type)).toEqual(['pid', 'ipc', 'uts', 'mount', 'cgroup', 'network']);
    expect(spec.mounts!.find((m) => m.destination === '/sys')!.options).toContain('ro');
    expect(spec.process!.capabilities!.inheritable).toBeUndefined();
  });
  it('--privileged lifts masks, read-only /sys and seccomp; --network host keeps the host’s; --read-only', () => {
    const seccomp = { defaultAction: 'SCMP_ACT_ERRNO' } as const;
    const p = buildSpec(inputs({ intent: { privileged: true, network: 'host', readOnly: true }, seccomp }));
    expect(p.linux!.maskedPaths).toBeUndefined();
    expect(p.linux!.seccomp).toBeUndefined();
    expect(p.mounts!.find((m) => m.destination === '/sys')!.options).not.toContain('ro');
    expect(p.linux!.namespaces!.map((n) => n.type)).not.toContain('network');
    expect(p.root!.readonly).toBe(true);
    expect(buildSpec(inputs({ seccomp })).linux!.seccomp).toEqual(seccomp);
  });
  it('refuses a relative working directory', () => {
    expect(() => buildSpec(inputs({ intent: { workdir: 'srv' } }))).toThrow('must be absolute');
  });
});
