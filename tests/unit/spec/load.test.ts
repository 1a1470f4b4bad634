import { describe, it, expect, afterEach } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_MAX_CONFIG_BYTES, loadSpec, parseProcess, parseSpec } from '../../../src/spec/load.js';
import { TsrunError } from '../../../src/util/errors.js';

type Json = Record<string, unknown>;

function minimal(): Json {
  return {
    ociVersion: '1.0.2-dev',
    root: { path: 'rootfs', readonly: true },
    process: { user: { uid: 0, gid: 0 }, args: ['sh'], cwd: '/', env: ['PATH=/bin'] },
    linux: { namespaces: [{ type: 'pid' }, { type: 'mount' }] },
  };
}

/** Sets a dotted path ("process.user.uid", "mounts.0.type") in a JSON object. */
function set(o: Json, path: string, value: unknown): Json {
  const keys = path.split('.');
  let at: Json = o;
  for (const k of keys.slice(0, -1)) {
    at[k] ??= {};
    at = at[k] as Json;
  }
  at[keys.at(-1)!] = value;
  return o;
}

function configError(fn: () => unknown): TsrunError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(TsrunError);
    expect((err as TsrunError).code).toBe('ERR_INVALID_CONFIG');
    return err as TsrunError;
  }
  throw new Error('expected a config error');
}

describe('parseSpec', () => {
  it('returns a typed spec for a minimal config', () => {
    const { spec, warnings } = parseSpec(JSON.stringify(minimal()));
    expect(warnings).toEqual([]);
    expect(spec.root).toEqual({ path: 'rootfs', readonly: true });
    expect(spec.process?.args).toEqual(['sh']);
    expect(spec.linux?.namespaces).toEqual([{ type: 'pid' }, { type: 'mount' }]);
  });

  it('rejects input over the default 4 MiB cap', () => {
    const big = JSON.stringify({ ...minimal(), annotations: { pad: 'x'.repeat(DEFAULT_MAX_CONFIG_BYTES) } });
    expect(configError(() => parseSpec(big)).message).toBe('config.json is larger than 4194304 bytes');
  });

  it('counts UTF-8 bytes, not characters, against maxBytes', () => {
    const text = JSON.stringify({ ...minimal(), annotations: { pad: 'é'.repeat(300) } });
    expect(text.length).toBeLessThan(600);
    expect(() => parseSpec(text, { maxBytes: 600 })).toThrow('config.json is larger than 600 bytes');
    expect(() => parseSpec(text, { maxBytes: 1000 })).not.toThrow();
  });

  it('turns JSON syntax errors into config errors', () => {
    const err = configError(() => parseSpec('{"ociVersion": "1.0.0",}'));
    expect(err.message).toMatch(/^config\.json is not valid JSON: \S/);
    expect(err.cause).toBeInstanceOf(SyntaxError);
  });

  it.each(['[]', 'null', '42', '"config"'])('rejects a top level that is not an object: %s', (text) => {
    expect(configError(() => parseSpec(text)).message).toBe('config.json must contain a JSON object');
  });

  it.each([
    ['process.args.1', 'a\u0000b', '"process.args[1]" must not contain NUL bytes'],
    ['hostname', 'h\u0000', '"hostname" must not contain NUL bytes'],
    ['root.path', 'root\u0000fs', '"root.path" must not contain NUL bytes'],
    ['annotations.a', '\u0000', '"annotations.a" must not contain NUL bytes'],
    ['annotations.a\u0000b', 'x', '"annotations" keys must not contain NUL bytes'],
  ])('rejects NUL bytes in %j', (path, value, message) => {
    const cfg = minimal();
    if (path === 'process.args.1') (cfg.process as Json).args = ['sh', value];
    else if (path.startsWith('annotations.')) cfg.annotations = { [path.slice('annotations.'.length)]: value };
    else set(cfg, path, value);
    expect(configError(() => parseSpec(JSON.stringify(cfg))).message).toBe(message);
  });

  // [path to set, value, exact message]
  const wrongTypes: Array<[string, unknown, string]> = [
    ['ociVersion', 1, '"ociVersion" must be a string'],
    ['process.args', 'sh -c true', '"process.args" must be an array of strings'],
    ['process.args', ['sh', 1], '"process.args" must be an array of strings'],
    ['process.env', [null], '"process.env" must be an array of strings'],
    ['process.terminal', 'yes', '"process.terminal" must be a boolean'],
    ['process.user.uid', '0', '"process.user.uid" must be an integer'],
    ['process.user.additionalGids', ['10'], '"process.user.additionalGids" must be an array of integers'],
    ['process.user', 0, '"process.user" must be an object'],
    ['process.capabilities.bounding', 'CAP_CHOWN', '"process.capabilities.bounding" must be an array of strings'],
    ['process.rlimits', [{ type: 'RLIMIT_NOFILE', soft: 1 }], '"process.rlimits[0].hard" is required'],
    ['process.oomScoreAdj', 1.5, '"process.oomScoreAdj" must be an integer'],
    ['mounts', { destination: '/x' }, '"mounts" must be an array'],
    ['mounts', ['/x'], '"mounts[0]" must be an object'],
    ['mounts', [{ destination: '/x', options: 'ro' }], '"mounts[0].options" must be an array of strings'],
    ['mounts', [{ type: 'tmpfs' }], '"mounts[0].destination" is required'],
    ['annotations', { a: 1 }, '"annotations.a" must be a string'],
    ['annotations', ['a=b'], '"annotations" must be an object'],
    ['linux.sysctl', { 'net.core.somaxconn': 1024 }, '"linux.sysctl.net.core.somaxconn" must be a string'],
    ['linux.resources.memory.limit', '1g', '"linux.resources.memory.limit" must be an integer'],
    ['linux.resources.memory.limit', 1.5, '"linux.resources.memory.limit" must be an integer'],
    ['linux.resources.pids', {}, '"linux.resources.pids.limit" is required'],
    ['linux.resources.devices', [{ allow: 'yes' }], '"linux.resources.devices[0].allow" must be a boolean'],
    ['linux.namespaces', [{ path: '/proc/1/ns/pid' }], '"linux.namespaces[0].type" is required'],
    ['linux.seccomp', { syscalls: [] }, '"linux.seccomp.defaultAction" is required'],
    [
      'linux.seccomp',
      { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: 'read', action: 'SCMP_ACT_ALLOW' }] },
      '"linux.seccomp.syscalls[0].names" must be an array of strings',
    ],
    ['hooks.prestart', [{ path: '/bin/true', timeout: '5' }], '"hooks.prestart[0].timeout" must be an integer'],
    ['root', { readonly: true }, '"root.path" is required'],
  ];

  it.each(wrongTypes)('checks the type of %s (%j)', (path, value, message) => {
    expect(configError(() => parseSpec(JSON.stringify(set(minimal(), path, value)))).message).toBe(message);
  });

  it('rejects numbers that overflow to Infinity', () => {
    const text = JSON.stringify(minimal()).replace('"uid":0', '"uid":1e999');
    expect(text).toContain('1e999');
    expect(configError(() => parseSpec(text)).message).toBe('"process.user.uid" must be an integer');
  });

  it('runs the semantic checks after the type checks', () => {
    const cfg = set(minimal(), 'process.cwd', 'relative');
    expect(configError(() => parseSpec(JSON.stringify(cfg))).message).toBe('"process.cwd" must be an absolute path');
  });

  it('warns about unknown fields at any level and drops them', () => {
    const cfg = minimal();
    cfg.vendorExtension = { a: 1 };
    set(cfg, 'process.foo', true);
    set(cfg, 'process.user.extra', 1);
    set(cfg, 'linux.resources.memory.bar', 'x');
    cfg.mounts = [{ destination: '/tmp', type: 'tmpfs', idmap: true }];
    const { spec, warnings } = parseSpec(JSON.stringify(cfg));
    expect(warnings).toEqual([
      'unknown field "process.user.extra" ignored',
      'unknown field "process.foo" ignored',
      'unknown field "linux.resources.memory.bar" ignored',
      'unknown field "vendorExtension" ignored',
      'unknown field "mounts[0].idmap" ignored',
    ]);
    expect(Object.keys(spec)).not.toContain('vendorExtension');
    expect(spec.process && Object.keys(spec.process)).not.toContain('foo');
    expect(spec.mounts).toEqual([{ destination: '/tmp', type: 'tmpfs' }]);
    expect(spec.linux?.resources?.memory).toEqual({});
  });

  it('accepts spec fields tsrun does not use without warnings', () => {
    const cfg = minimal();
    cfg.windows = { layerFolders: [] };
    cfg.vm = { hypervisor: { path: '/usr/bin/qemu' } };
    set(cfg, 'linux.intelRdt', { closID: 'x' });
    set(cfg, 'linux.netDevices', { eth0: { name: 'ctr0' } });
    set(cfg, 'process.execCPUAffinity', { initial: '0' });
    expect(parseSpec(JSON.stringify(cfg)).warnings).toEqual([]);
  });

  it('treats null as an absent field', () => {
    const cfg = { ...minimal(), hostname: null, annotations: null };
    const { spec } = parseSpec(JSON.stringify(cfg));
    expect('hostname' in spec).toBe(false);
    expect('annotations' in spec).toBe(false);
  });

  it('is not fooled by __proto__ or constructor keys', () => {
    const text = `{
      "ociVersion": "1.2.0",
      "__proto__": { "polluted": "top", "hostname": "evil" },
      "constructor": { "prototype": { "polluted": "ctor" } },
      "root": { "path": "rootfs", "__proto__": { "readonly": false } },
      "process": { "user": { "uid": 0, "gid": 0 }, "args": ["sh"], "cwd": "/",
                   "__proto__": { "polluted": "process" } },
      "annotations": { "__proto__": "just-a-key", "toString": "also" },
      "linux": { "sysctl": { "__proto__": "1" } }
    }`;
    const err = configError(() => parseSpec(text));
    expect(err.message).toBe('sysctl key "__proto__" is not valid');

    const { spec, warnings } = parseSpec(text.replace('"sysctl": { "__proto__": "1" }', '"sysctl": {}'));
    expect(({} as Json).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
    expect(Object.getPrototypeOf(spec)).toBe(Object.prototype);
    expect(spec.hostname).toBeUndefined();
    expect(Object.getPrototypeOf(spec.root)).toBe(Object.prototype);
    expect(spec.root?.readonly).toBeUndefined();
    expect(Object.hasOwn(spec.annotations!, '__proto__')).toBe(true);
    expect(spec.annotations!['__proto__']).toBe('just-a-key');
    expect(spec.annotations!['toString']).toBe('also');
    expect(warnings).toEqual([
      'unknown field "__proto__" ignored',
      'unknown field "constructor" ignored',
      'unknown field "root.__proto__" ignored',
      'unknown field "process.__proto__" ignored',
    ]);
  });
});

describe('parseProcess', () => {
  const proc = { user: { uid: 1000, gid: 1000 }, args: ['ls', '-l'], cwd: '/home', env: ['A=1'], terminal: true, consoleSize: { height: 24, width: 80 } };

  it('parses a bare process object', () => {
    const { process: p, warnings } = parseProcess(JSON.stringify(proc));
    expect(warnings).toEqual([]);
    expect(p).toEqual(proc);
  });

  it('prefixes unknown fields with "process."', () => {
    expect(parseProcess(JSON.stringify({ ...proc, foo: 1 })).warnings).toEqual(['unknown field "process.foo" ignored']);
  });

  it('checks types and rules like config.json', () => {
    expect(configError(() => parseProcess(JSON.stringify({ ...proc, args: 'ls' }))).message).toBe('"process.args" must be an array of strings');
    expect(configError(() => parseProcess(JSON.stringify({ ...proc, cwd: 'home' }))).message).toBe('"process.cwd" must be an absolute path');
    expect(configError(() => parseProcess(JSON.stringify({ ...proc, cwd: '/proc/self/fd/3' }))).message).toBe(
      '"process.cwd" must not be inside /proc/<pid>/fd',
    );
    expect(configError(() => parseProcess(JSON.stringify({ ...proc, args: [] }))).message).toBe('"process.args" must be a non-empty array of strings');
    expect(configError(() => parseProcess('[1]')).message).toBe('"process" must be an object');
  });

  it('rejects invalid JSON and oversize input', () => {
    expect(configError(() => parseProcess('{')).message).toMatch(/^process file is not valid JSON: /);
    expect(configError(() => parseProcess(JSON.stringify(proc), { maxBytes: 10 })).message).toBe('process file is larger than 10 bytes');
  });
});

describe('loadSpec', () => {
  const dirs: string[] = [];
  const bundle = (): string => {
    const dir = mkdtempSync(join(tmpdir(), 'tsrun-spec-'));
    dirs.push(dir);
    return dir;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('reads <bundle>/config.json and returns its absolute path', () => {
    const dir = bundle();
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...minimal(), extra: 1 }));
    const { spec, warnings, path } = loadSpec(dir);
    expect(path).toBe(join(dir, 'config.json'));
    expect(spec.process?.args).toEqual(['sh']);
    expect(warnings).toEqual(['unknown field "extra" ignored']);
  });

  it('names the bundle and errno when config.json is missing', () => {
    const dir = bundle();
    const err = configError(() => loadSpec(dir));
    expect(err.message).toBe(`open config.json in bundle "${dir}": ENOENT`);
    expect(err.errno).toBe(2);
    expect(err.path).toBe(join(dir, 'config.json'));
  });

  it('refuses a config.json that is not a regular file', () => {
    const dir = bundle();
    mkdirSync(join(dir, 'config.json'));
    expect(configError(() => loadSpec(dir)).message).toBe(`open config.json in bundle "${dir}": not a regular file`);
  });

  it('checks the size before reading', () => {
    const dir = bundle();
    writeFileSync(join(dir, 'config.json'), JSON.stringify(minimal()));
    expect(configError(() => loadSpec(dir, { maxBytes: 16 })).message).toBe('config.json is larger than 16 bytes');
  });

  it('reports validation errors from the file', () => {
    const dir = bundle();
    writeFileSync(join(dir, 'config.json'), JSON.stringify(set(minimal(), 'ociVersion', '0.9.0')));
    expect(configError(() => loadSpec(dir)).message).toBe('"ociVersion" must be a 1.x version');
  });
});
