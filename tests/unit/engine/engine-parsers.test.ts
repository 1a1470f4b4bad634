// The engine's small parsers: log lines and --since, commit --change, short image names,
// the monitor's argv, and the run/create flags.
import { describe, expect, it } from 'vitest';
import { createRequest, networkFlags, type CreateFlags } from '../../../src/cli/engine/create-flags.js';
import { parseChanges } from '../../../src/engine/commit-changes.js';
import { isShortName } from '../../../src/engine/image-lookup.js';
import { parseLogLine, parseSince } from '../../../src/engine/logs.js';
import { monitorArgs } from '../../../src/engine/monitor.js';

describe('log lines (CRI format)', () => {
  it('parses full and partial lines, keeps spaces in the text', () => {
    expect(parseLogLine('2026-12-06T19:54:54.103855397Z stdout F tick  5')).toEqual({
      time: '2026-12-06T19:54:54.103855397Z',
      stream: 'stdout',
      partial: false,
      text: 'tick  5',
    });
    expect(parseLogLine('2026-12-06T19:54:54Z stderr P abc')).toMatchObject({ stream: 'stderr', partial: true, text: 'abc' });
    expect(parseLogLine('2026-12-06T19:54:54Z stdout F ')).toMatchObject({ text: '' });
    expect(parseLogLine('garbage')).toBeUndefined();
    expect(parseLogLine('t stdin F x')).toBeUndefined();
  });
  it('--since takes a time, a Unix time or a duration', () => {
    const now = Date.parse('2026-12-06T12:00:00Z');
    expect(parseSince('10m', now)).toBe(now - 600_000);
    expect(parseSince('1h30m', now)).toBe(now - 5_400_000);
    expect(parseSince('45s', now)).toBe(now - 45_000);
    expect(parseSince('2026-12-06T11:00:00Z', now)).toBe(Date.parse('2026-12-06T11:00:00Z'));
    expect(parseSince('1700000000', now)).toBe(1_700_000_000_000);
    expect(() => parseSince('yesterday', now)).toThrow(/--since yesterday/);
  });
});

describe('commit --change', () => {
  it('exec and shell forms, env and labels, expose and volumes', () => {
    expect(parseChanges(['CMD ["echo","hi"]'])).toEqual({ Cmd: ['echo', 'hi'] });
    expect(parseChanges(['CMD echo hi'])).toEqual({ Cmd: ['/bin/sh', '-c', 'echo hi'] });
    expect(parseChanges(['ENTRYPOINT ["/bin/app"]', 'WORKDIR /srv', 'USER 1000:1000', 'STOPSIGNAL SIGINT'])).toEqual({
      Entrypoint: ['/bin/app'],
      WorkingDir: '/srv',
      User: '1000:1000',
      StopSignal: 'SIGINT',
    });
    expect(parseChanges(['ENV A=1 B="two words"', 'ENV C 3'])).toEqual({ Env: ['A=1', 'B=two words', 'C=3'] });
    expect(parseChanges(['LABEL a=b'])).toEqual({ Labels: { a: 'b' } });
    expect(parseChanges(['EXPOSE 80 53/udp'])).toEqual({ ExposedPorts: { '80/tcp': {}, '53/udp': {} } });
    expect(parseChanges(['VOLUME ["/data"]'])).toEqual({ Volumes: { '/data': {} } });
  });
  it('refuses what it does not know, by name', () => {
    expect(() => parseChanges(['RUN apt-get update'])).toThrow(/RUN is not supported/);
    expect(() => parseChanges(['CMD ["unterminated"'])).toThrow(/JSON array/);
    expect(() => parseChanges(['CMD'])).toThrow(/INSTRUCTION ARGUMENTS/);
  });
});

describe('short image names (looked up as localhost/NAME first)', () => {
  it.each([
    ['busybox', true],
    ['busybox:1.36', true],
    ['library/busybox', true],
    ['localhost/busybox', false],
    ['127.0.0.1:5000/app', false],
    ['quay.io/x/y', false],
    ['busybox@sha256:' + 'a'.repeat(64), false],
    ['0123456789ab', false],
  ])('%s -> %s', (name, short) => expect(isShortName(name)).toBe(short));
});

describe('the monitor’s argv', () => {
  it('names the container, the log and its rotation, stdin and the exit command', () => {
    expect(monitorArgs({ id: 'abc', dir: '/d', stdin: true, logMaxSize: 2048, logMaxFiles: 3, exitCommand: ['/n', 'cleanup', 'abc'] })).toEqual([
      'abc',
      'log=ctr.log',
      'log-max-size=2048',
      'log-max-files=3',
      'stdin=1',
      'exit-arg=/n',
      'exit-arg=cleanup',
      'exit-arg=abc',
    ]);
  });
});

const flags = (o: Partial<CreateFlags> = {}): CreateFlags => ({
  env: [],
  envFile: [],
  groupAdd: [],
  volume: [],
  mount: [],
  tmpfs: [],
  device: [],
  capAdd: [],
  capDrop: [],
  securityOpt: [],
  ulimit: [],
  label: [],
  logOpt: [],
  network: [],
  net: [],
  networkAlias: [],
  publish: [],
  dns: [],
  dnsSearch: [],
  dnsOption: [],
  addHost: [],
  ...o,
});

describe('run/create flags', () => {
  it('--network: the default network unless told, names (repeated or comma-separated), none, host; aliases on user networks', () => {
    expect(networkFlags([], [])).toEqual({ network: 'bridge', networks: [{ name: 'tsrun', aliases: [] }] });
    expect(networkFlags(['bridge'], [])).toEqual({ network: 'bridge', networks: [{ name: 'tsrun', aliases: [] }] });
    expect(networkFlags(['none'], [])).toEqual({ network: 'none' });
    expect(networkFlags(['host'], [])).toEqual({ network: 'host' });
    expect(networkFlags(['a,b', 'bridge'], ['web'])).toEqual({
      network: 'bridge',
      networks: [
        { name: 'a', aliases: ['web'] },
        { name: 'b', aliases: ['web'] },
        { name: 'tsrun', aliases: [] },
      ],
    });
  });
  it('turns docker’s flags into the create request', () => {
    const r = createRequest(
      'busybox',
      ['echo', 'hi'],
      flags({ memory: '64m', cpus: '0.5', pidsLimit: '50', tty: true, rm: true, label: ['a=b'], logOpt: ['max-size=1k', 'max-file=3'] }),
    );
    expect(r.intent).toMatchObject({
      cmd: ['echo', 'hi'],
      memoryBytes: 64 * 1024 * 1024,
      cpus: 0.5,
      pidsLimit: 50,
      tty: true,
      network: 'bridge',
      networks: [{ name: 'tsrun', aliases: [] }],
    });
    expect(r).toMatchObject({ autoRemove: true, labels: { a: 'b' }, logMaxSize: 1024, logMaxFiles: 3, pull: 'missing' });
  });
  it('reads -e NAME from our environment and security options', () => {
    process.env.TSRUN_TEST_VAR = 'from-host';
    const r = createRequest('busybox', [], flags({ env: ['TSRUN_TEST_VAR', 'X=1'], securityOpt: ['no-new-privileges', 'seccomp=unconfined'] }));
    expect(r.intent.env).toEqual(['TSRUN_TEST_VAR=from-host', 'X=1']);
    expect(r.intent.noNewPrivileges).toBe(true);
    expect(r.seccomp).toBe('unconfined');
  });
  it('refuses bad values with the flag named', () => {
    expect(() => createRequest('b', [], flags({ memory: 'lots' }))).toThrow(/-m|--memory/);
    expect(() => createRequest('b', [], flags({ cpuShares: '1.5' }))).toThrow(/--cpu-shares 1.5/);
    expect(() => createRequest('b', [], flags({ network: ['none', 'web'] }))).toThrow(/--network none cannot be combined/);
    expect(() => createRequest('b', [], flags({ network: ['Bad/Name'] }))).toThrow(/invalid network name "Bad\/Name"/);
    expect(() => createRequest('b', [], flags({ networkAlias: ['x'] }))).toThrow(/--network-alias needs a user-defined network/);
    expect(() => createRequest('b', [], flags({ securityOpt: ['apparmor=x'] }))).toThrow(/--security-opt apparmor=x/);
    expect(() => createRequest('b', [], flags({ logOpt: ['compress=true'] }))).toThrow(/--log-opt compress/);
    expect(() => createRequest('b', [], flags({ pull: 'sometimes' }))).toThrow(/--pull sometimes/);
    expect(() => createRequest('b', [], flags({ label: ['novalue'] }))).toThrow(/--label novalue/);
  });
});
