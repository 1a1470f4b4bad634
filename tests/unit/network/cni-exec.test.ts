// The CNI runtime side (src/network/cni-exec.ts). The pure parts (environment, the config a
// plugin reads, reading its output) directly; the list semantics (ADD order and prevResult,
// DEL in reverse with the cached result, errors collected, CHECK, the cache, undo of a failed
// ADD, timeouts) against fake plugins: small node scripts that log what they were given and
// answer as a plugin would. No root, no network change.
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  addNetworkList,
  CniPluginError,
  type CniConflist,
  type CniResult,
  cachePath,
  checkNetworkList,
  cniEnv,
  delNetworkList,
  execPlugin,
  findPlugin,
  formatCniArgs,
  getCachedResult,
  parsePluginOutput,
  type PluginRun,
  pluginConfig,
  pluginVersions,
  type RuntimeConf,
  validateConflist,
  validateRuntimeConf,
} from '../../../src/network/cni-exec.js';
import { TsrunError } from '../../../src/util/errors.js';
import { tempDir } from '../../helpers/tmp-dir.js';

const rt: RuntimeConf = { containerId: 'c0ffee', netns: '/run/netns/x', ifName: 'eth0' };
const list: CniConflist = {
  cniVersion: '1.0.0',
  name: 'net1',
  plugins: [{ type: 'fakea', x: 1 }, { type: 'fakeb', capabilities: { portMappings: true, other: false } }, { type: 'fakec' }],
};

describe('cniEnv', () => {
  it('the six CNI variables, PATH kept, CNI_* of the caller dropped', () => {
    const env = cniEnv(
      'ADD',
      {
        ...rt,
        args: [
          ['IgnoreUnknown', '1'],
          ['K8S_POD_NAME', 'p'],
        ],
      },
      ['/a', '/b'],
      {
        PATH: '/x',
        HOME: '/root',
        CNI_ARGS: 'leak=1',
        CNI_FOO: 'y',
      },
    );
    expect(env).toEqual({
      PATH: '/x',
      HOME: '/root',
      CNI_COMMAND: 'ADD',
      CNI_CONTAINERID: 'c0ffee',
      CNI_NETNS: '/run/netns/x',
      CNI_IFNAME: 'eth0',
      CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=p',
      CNI_PATH: '/a:/b',
    });
  });
  it('a PATH when the caller has none (plugins exec iptables); VERSION gets only the command and path', () => {
    const env = cniEnv('VERSION', rt, ['/a'], {});
    expect(env['PATH']).toContain('/usr/sbin');
    expect(Object.keys(env).filter((k) => k.startsWith('CNI_'))).toEqual(['CNI_COMMAND', 'CNI_PATH']);
  });
  it('CNI_ARGS refuses what a plugin would split wrongly', () => {
    expect(formatCniArgs([])).toBe('');
    expect(() => formatCniArgs([['a;b', '1']])).toThrow(TsrunError);
    expect(() => formatCniArgs([['A', 'x=y']])).toThrow(/must not contain/);
  });
});

describe('pluginConfig', () => {
  it("replaces name and cniVersion with the list's, passes only declared capabilities, adds prevResult", () => {
    const prev: CniResult = { cniVersion: '1.0.0', ips: [{ address: '10.0.0.2/24' }] };
    const c = pluginConfig(
      { ...list, cniVersion: '0.4.0' },
      { type: 'fakeb', name: 'other', cniVersion: '0.3.1', capabilities: { portMappings: true, other: false }, prevResult: 'stale' },
      { ...rt, capabilityArgs: { portMappings: [{ hostPort: 1 }], other: 1, undeclared: 2 } },
      prev,
    );
    expect(c).toEqual({
      type: 'fakeb',
      name: 'net1',
      cniVersion: '0.4.0',
      capabilities: { portMappings: true, other: false },
      runtimeConfig: { portMappings: [{ hostPort: 1 }] },
      prevResult: prev,
    });
  });
  it('no runtimeConfig and no prevResult when there are none', () => {
    expect(pluginConfig(list, { type: 'fakea', runtimeConfig: { stale: 1 } }, rt, undefined)).toEqual({ type: 'fakea', name: 'net1', cniVersion: '1.0.0' });
  });
});

describe('validation', () => {
  it('lists: a CNI name, a version with CHECK and DEL prevResult, plugin types that are file names', () => {
    expect(() => validateConflist(list)).not.toThrow();
    expect(() => validateConflist({ ...list, cniVersion: '0.3.1' })).toThrow(/"cniVersion" "0.3.1" is not supported/);
    expect(() => validateConflist({ ...list, name: '-x' })).toThrow(/"name"/);
    expect(() => validateConflist({ ...list, plugins: [] })).toThrow(/non-empty/);
    expect(() => validateConflist({ ...list, plugins: [{ type: '../bin/sh' }] })).toThrow(/plugins\[0\]\.type/);
  });
  it('runtime conf: container id and interface name by the spec; DEL alone may have no netns', () => {
    expect(() => validateRuntimeConf(rt, 'ADD')).not.toThrow();
    expect(() => validateRuntimeConf({ ...rt, containerId: '' }, 'ADD')).toThrow(/container id/);
    for (const ifName of ['', 'a/b', 'a:b', 'a b', '.', 'x'.repeat(16)]) expect(() => validateRuntimeConf({ ...rt, ifName }, 'ADD')).toThrow(/interface name/);
    expect(() => validateRuntimeConf({ ...rt, netns: '' }, 'ADD')).toThrow(/namespace/);
    expect(() => validateRuntimeConf({ ...rt, netns: '' }, 'DEL')).not.toThrow();
  });
  it('the cache path is <dir>/<network>-<container>-<ifname>.json', () => {
    expect(cachePath('/r/networks/cache', 'tsrun', 'abc', 'eth0')).toBe('/r/networks/cache/tsrun-abc-eth0.json');
  });
});

describe('parsePluginOutput', () => {
  const run = (o: Partial<PluginRun>): PluginRun => ({
    plugin: 'bridge',
    command: 'ADD',
    network: 'net1',
    exitCode: 0,
    signal: null,
    stdout: '',
    stderr: '',
    ...o,
  });
  function errorOf(r: PluginRun): CniPluginError {
    try {
      parsePluginOutput(r);
    } catch (e) {
      expect(e).toBeInstanceOf(CniPluginError);
      expect(e).toBeInstanceOf(TsrunError);
      return e as CniPluginError;
    }
    throw new Error('did not throw');
  }

  it('an ADD result', () => {
    expect(parsePluginOutput(run({ stdout: '{"cniVersion":"1.0.0","ips":[]}' }))).toEqual({ cniVersion: '1.0.0', ips: [] });
  });
  it('DEL and CHECK have no result', () => {
    expect(parsePluginOutput(run({ command: 'DEL', stdout: 'whatever' }))).toBeUndefined();
    expect(parsePluginOutput(run({ command: 'CHECK' }))).toBeUndefined();
  });
  it("the plugin's error object: plugin, command, network, msg and details named; code kept", () => {
    const e = errorOf(run({ exitCode: 1, stdout: '{"cniVersion":"1.0.0","code":7,"msg":"bad subnet","details":"10.0.0.0/33"}', stderr: 'noise' }));
    expect(e.message).toBe('CNI ADD `bridge` (network "net1"): bad subnet: 10.0.0.0/33');
    expect(e.code).toBe('ERR_CHILD_FAILED');
    expect([e.plugin, e.command, e.network, e.cniCode, e.details]).toEqual(['bridge', 'ADD', 'net1', 7, '10.0.0.0/33']);
  });
  it('a well-known code with no msg is spelled out; code 1 hints at VERSION', () => {
    const e = errorOf(run({ exitCode: 1, stdout: '{"code":1}' }));
    expect(e.message).toContain('incompatible CNI version');
    expect(e.hint).toContain('CNI_COMMAND=VERSION');
  });
  it('Go plugins often repeat the details in msg: not twice', () => {
    expect(errorOf(run({ exitCode: 1, stdout: '{"code":999,"msg":"failed: x","details":"x"}' })).message).toMatch(/: failed: x$/);
  });
  it('no error object: the exit status or signal, and stderr', () => {
    expect(errorOf(run({ exitCode: 2, stderr: 'panic: boom\n' })).message).toBe('CNI ADD `bridge` (network "net1"): exited with status 2: panic: boom');
    expect(errorOf(run({ exitCode: null, signal: 'SIGSEGV', command: 'DEL' })).message).toBe('CNI DEL `bridge` (network "net1"): killed by SIGSEGV');
  });
  it('a successful ADD with no JSON, or JSON without cniVersion, is an error', () => {
    expect(errorOf(run({ stdout: 'ok' })).message).toContain('printed no JSON result: ok');
    expect(errorOf(run({ stdout: '{"ips":[]}' })).message).toContain('without "cniVersion"');
  });
  it('timeouts and runaway output', () => {
    expect(errorOf(run({ exitCode: null, signal: 'SIGKILL', timedOutMs: 50 })).message).toContain('timed out after 50 ms');
    expect(errorOf(run({ exitCode: null, signal: 'SIGKILL', stdoutOverflow: true })).message).toContain('more than');
  });
});

// ---------------------------------------------------------------------------------------
// Fake plugins. One script under several names: it appends {type, env, conf} to $FAKE_LOG
// and answers per $FAKE_FAIL ("ADD:fakeb,DEL:fakec": fail that command of that plugin),
// $FAKE_SLEEP ("fakea": never answer). ADD: the previous result with one more interface
// and, from the first plugin, an address.
const FAKE = `
const fs = require('node:fs');
const type = require('node:path').basename(process.argv[1]);
const input = fs.readFileSync(0, 'utf8');
const conf = input === '' ? {} : JSON.parse(input);
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('CNI_')));
const cmd = env.CNI_COMMAND;
if (cmd === 'VERSION') { process.stdout.write(JSON.stringify({ cniVersion: '1.0.0', supportedVersions: ['0.4.0', '1.0.0'] })); process.exit(0); }
fs.appendFileSync(process.env.FAKE_LOG, JSON.stringify({ type, env, conf }) + '\\n');
if ((process.env.FAKE_SLEEP || '') === type) setInterval(() => {}, 1000);
else if ((process.env.FAKE_FAIL || '').split(',').includes(cmd + ':' + type)) {
  process.stdout.write(JSON.stringify({ cniVersion: conf.cniVersion, code: 100, msg: type + ' refuses ' + cmd, details: '' }));
  process.exit(1);
} else if (cmd === 'ADD') {
  const prev = conf.prevResult || { cniVersion: conf.cniVersion, interfaces: [], ips: [{ address: '10.9.0.2/24', gateway: '10.9.0.1', interface: 0 }] };
  prev.interfaces = [...(prev.interfaces || []), { name: type, sandbox: env.CNI_NETNS }];
  process.stdout.write(JSON.stringify(prev));
}
`;

interface LogLine {
  type: string;
  env: Record<string, string>;
  conf: Record<string, any>;
}

function fakeSetup(names = ['fakea', 'fakeb', 'fakec']) {
  const dir = tempDir('tsrun-cni-unit-');
  const bin = join(dir, 'bin');
  const cacheDir = join(dir, 'cache');
  const log = join(dir, 'log');
  mkdirSync(bin, { recursive: true });
  for (const n of names) {
    writeFileSync(join(bin, n), `#!${process.execPath}\n${FAKE}`);
    chmodSync(join(bin, n), 0o755);
  }
  writeFileSync(log, '');
  const env = (extra: Record<string, string> = {}) => ({ PATH: process.env['PATH'] ?? '', FAKE_LOG: log, CNI_ARGS: 'leak', ...extra });
  const opts = (extra: Record<string, string> = {}, timeoutMs = 10_000) => ({ pluginDirs: [join(dir, 'empty'), bin], cacheDir, env: env(extra), timeoutMs });
  const lines = (): LogLine[] =>
    readFileSync(log, 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as LogLine);
  const clear = () => writeFileSync(log, '');
  return { dir, bin, cacheDir, opts, lines, clear };
}

describe('plugins run for real (fake ones)', () => {
  it('findPlugin: the first directory that has an executable of that name', () => {
    const f = fakeSetup(['fakea']);
    expect(findPlugin('fakea', ['/nonexistent', f.bin])).toBe(join(f.bin, 'fakea'));
    writeFileSync(join(f.dir, 'fakez'), '');
    const e = (() => {
      try {
        findPlugin('fakez', [f.dir, '/nonexistent']);
      } catch (err) {
        return err as TsrunError;
      }
    })();
    expect(e?.code).toBe('ERR_UNSUPPORTED');
    expect(e?.message).toBe(`CNI plugin \`fakez\` not found in ${f.dir}:/nonexistent`);
    expect(e?.hint).toContain('containernetworking-plugins');
  });

  it('VERSION', async () => {
    const f = fakeSetup(['fakea']);
    expect(await pluginVersions('fakea', f.opts())).toEqual(['0.4.0', '1.0.0']);
  });

  it('ADD: in order, the list name and version in each, prevResult chained, capabilities only where declared, cached', async () => {
    const f = fakeSetup();
    const portMappings = [{ hostPort: 8080, containerPort: 80, protocol: 'tcp', hostIP: '' }];
    const result = await addNetworkList(list, { ...rt, args: [['IgnoreUnknown', '1']], capabilityArgs: { portMappings } }, f.opts());
    expect(result.interfaces?.map((i) => i.name)).toEqual(['fakea', 'fakeb', 'fakec']);

    const l = f.lines();
    expect(l.map((x) => `${x.env['CNI_COMMAND']} ${x.type}`)).toEqual(['ADD fakea', 'ADD fakeb', 'ADD fakec']);
    expect(l[0]!.env).toEqual({
      CNI_COMMAND: 'ADD',
      CNI_CONTAINERID: 'c0ffee',
      CNI_NETNS: '/run/netns/x',
      CNI_IFNAME: 'eth0',
      CNI_ARGS: 'IgnoreUnknown=1',
      CNI_PATH: `${join(f.dir, 'empty')}:${f.bin}`,
    });
    expect(l[0]!.conf).toEqual({ type: 'fakea', x: 1, name: 'net1', cniVersion: '1.0.0' });
    expect(l[1]!.conf['prevResult'].interfaces.map((i: { name: string }) => i.name)).toEqual(['fakea']);
    expect(l[1]!.conf['runtimeConfig']).toEqual({ portMappings });
    expect(l[2]!.conf['runtimeConfig']).toBeUndefined();
    expect(l[2]!.conf['prevResult'].interfaces).toHaveLength(2);

    const rec = JSON.parse(readFileSync(cachePath(f.cacheDir, 'net1', 'c0ffee', 'eth0'), 'utf8'));
    expect(rec).toMatchObject({ kind: 'tsrunCniCacheV1', network: 'net1', containerId: 'c0ffee', ifName: 'eth0', netns: '/run/netns/x', config: list });
    expect(rec.capabilityArgs).toEqual({ portMappings });
    expect(getCachedResult(f.cacheDir, 'net1', 'c0ffee', 'eth0')).toEqual(result);
  });

  it('CHECK: in order, every plugin with the cached result; refused before any ADD', async () => {
    const f = fakeSetup();
    await expect(checkNetworkList(list, rt, f.opts())).rejects.toMatchObject({ code: 'ERR_INVALID_STATE' });
    const result = await addNetworkList(list, rt, f.opts());
    f.clear();
    await checkNetworkList(list, rt, f.opts());
    expect(f.lines().map((x) => `${x.env['CNI_COMMAND']} ${x.type}`)).toEqual(['CHECK fakea', 'CHECK fakeb', 'CHECK fakec']);
    for (const x of f.lines()) expect(x.conf['prevResult']).toEqual(result);
    f.clear();
    await checkNetworkList({ ...list, disableCheck: true }, rt, f.opts());
    expect(f.lines()).toEqual([]);
    await expect(checkNetworkList(list, rt, f.opts({ FAKE_FAIL: 'CHECK:fakeb' }))).rejects.toThrow('CNI CHECK `fakeb` (network "net1"): fakeb refuses CHECK');
  });

  it('DEL: in reverse, each with the cached result and the cached arguments; the cache goes on success; again is fine', async () => {
    const f = fakeSetup();
    const capabilityArgs = { portMappings: [{ hostPort: 1, containerPort: 2, protocol: 'udp', hostIP: '' }] };
    const result = await addNetworkList(list, { ...rt, args: [['A', 'b']], capabilityArgs }, f.opts());
    f.clear();
    await delNetworkList(list, rt, f.opts());
    const l = f.lines();
    expect(l.map((x) => `${x.env['CNI_COMMAND']} ${x.type}`)).toEqual(['DEL fakec', 'DEL fakeb', 'DEL fakea']);
    for (const x of l) expect(x.conf['prevResult']).toEqual(result);
    expect(l[1]!.conf['runtimeConfig']).toEqual(capabilityArgs);
    expect(l[0]!.env['CNI_ARGS']).toBe('A=b');
    expect(existsSync(cachePath(f.cacheDir, 'net1', 'c0ffee', 'eth0'))).toBe(false);

    // Idempotent: a second DEL (nothing cached) runs every plugin, without prevResult.
    f.clear();
    await delNetworkList(list, rt, f.opts());
    expect(f.lines().map((x) => x.conf['prevResult'])).toEqual([undefined, undefined, undefined]);
  });

  it('DEL: a failing plugin does not stop the others; all failures are reported and the cache is kept for a retry', async () => {
    const f = fakeSetup();
    await addNetworkList(list, rt, f.opts());
    f.clear();
    const err = await delNetworkList(list, rt, f.opts({ FAKE_FAIL: 'DEL:fakec,DEL:fakea' })).catch((e: TsrunError) => e);
    expect(f.lines().map((x) => x.type)).toEqual(['fakec', 'fakeb', 'fakea']);
    expect(err).toBeInstanceOf(TsrunError);
    expect((err as TsrunError).message).toBe(
      'CNI DEL (network "net1"): 2 plugins failed: CNI DEL `fakec` (network "net1"): fakec refuses DEL; CNI DEL `fakea` (network "net1"): fakea refuses DEL',
    );
    expect((err as TsrunError).cleanupErrors).toHaveLength(1);
    expect(getCachedResult(f.cacheDir, 'net1', 'c0ffee', 'eth0')).toBeDefined();
    await delNetworkList(list, rt, f.opts());
    expect(getCachedResult(f.cacheDir, 'net1', 'c0ffee', 'eth0')).toBeUndefined();
  });

  it('DEL with no namespace path (allowed by the spec) passes CNI_NETNS empty', async () => {
    const f = fakeSetup();
    await delNetworkList(list, { ...rt, netns: '' }, f.opts());
    expect(f.lines().map((x) => x.env['CNI_NETNS'])).toEqual(['', '', '']);
  });

  it("a failed ADD is undone: every plugin DEL'd in reverse with the partial result, the plugin error thrown, no cache left", async () => {
    const f = fakeSetup();
    const err = await addNetworkList(list, rt, f.opts({ FAKE_FAIL: 'ADD:fakeb' })).catch((e: CniPluginError) => e);
    expect(err).toBeInstanceOf(CniPluginError);
    expect((err as CniPluginError).message).toBe('CNI ADD `fakeb` (network "net1"): fakeb refuses ADD');
    expect((err as CniPluginError).cniCode).toBe(100);
    const l = f.lines();
    expect(l.map((x) => `${x.env['CNI_COMMAND']} ${x.type}`)).toEqual(['ADD fakea', 'ADD fakeb', 'DEL fakec', 'DEL fakeb', 'DEL fakea']);
    expect(l[2]!.conf['prevResult'].interfaces.map((i: { name: string }) => i.name)).toEqual(['fakea']);
    expect(existsSync(cachePath(f.cacheDir, 'net1', 'c0ffee', 'eth0'))).toBe(false);
  });

  it('a failed ADD whose undo fails too keeps the cache (with the partial result) and reports the undo errors', async () => {
    const f = fakeSetup();
    const err = (await addNetworkList(list, rt, f.opts({ FAKE_FAIL: 'ADD:fakec,DEL:fakea' })).catch((e: TsrunError) => e)) as TsrunError;
    expect(err.message).toContain('fakec refuses ADD');
    expect(err.cleanupErrors.map((e) => e.message)).toEqual(['CNI DEL `fakea` (network "net1"): fakea refuses DEL']);
    expect(getCachedResult(f.cacheDir, 'net1', 'c0ffee', 'eth0')?.interfaces?.map((i) => i.name)).toEqual(['fakea', 'fakeb']);
  });

  it('a missing plugin stops an ADD before anything runs', async () => {
    const f = fakeSetup(['fakea', 'fakeb']);
    await expect(addNetworkList(list, rt, f.opts())).rejects.toMatchObject({ code: 'ERR_UNSUPPORTED' });
    expect(f.lines()).toEqual([]);
    expect(existsSync(cachePath(f.cacheDir, 'net1', 'c0ffee', 'eth0'))).toBe(false);
  });

  it('a plugin that hangs is killed at the timeout', async () => {
    const f = fakeSetup(['fakea']);
    const t0 = Date.now();
    await expect(execPlugin('ADD', 'net1', 'fakea', '{}', rt, f.opts({ FAKE_SLEEP: 'fakea' }, 300))).rejects.toThrow(
      'CNI ADD `fakea` (network "net1"): timed out after 300 ms',
    );
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});
