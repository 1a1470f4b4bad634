import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hookCommand, hookEnv, hookFailureIsWarning, hookOrder, runHooks } from '../../../src/runtime/hooks.js';
import type { Hook, OciState } from '../../../src/spec/types.js';
import { TsrunError } from '../../../src/util/errors.js';

let dir: string;
let n = 0;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tsrun-hooks-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function script(body: string, mode = 0o755): string {
  const p = join(dir, `hook-${++n}.sh`);
  writeFileSync(p, `#!/bin/sh\n${body}\n`);
  chmodSync(p, mode);
  return p;
}

function out(): string {
  return join(dir, `out-${++n}`);
}

const PATH = 'PATH=/usr/bin:/bin';

function state(extra: Partial<OciState> = {}): OciState {
  return {
    ociVersion: '1.2.0',
    id: 'ctr-abc',
    status: 'created',
    pid: 4242,
    bundle: '/run/bundles/ctr-abc',
    annotations: { 'org.example': 'yes' },
    ...extra,
  };
}

async function failure(p: Promise<unknown>): Promise<TsrunError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(TsrunError);
    return e as TsrunError;
  }
  throw new Error('expected the promise to reject');
}

describe('hookOrder', () => {
  it('lists the six phases in run order', () => {
    expect(hookOrder.map((h) => h.kind)).toEqual(['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop']);
  });
  it('only poststart and poststop failures are warnings', () => {
    expect(hookOrder.filter((h) => hookFailureIsWarning(h.kind)).map((h) => h.kind)).toEqual(['poststart', 'poststop']);
  });
});

describe('hookCommand / hookEnv', () => {
  it('uses args[0] as argv0 and the rest as arguments', () => {
    expect(hookCommand({ path: '/usr/bin/hook', args: ['hook-name', 'a', 'b'] })).toEqual({
      file: '/usr/bin/hook',
      argv0: 'hook-name',
      args: ['a', 'b'],
    });
  });
  it('uses the path as argv0 when args is absent or empty', () => {
    expect(hookCommand({ path: '/usr/bin/hook' })).toEqual({ file: '/usr/bin/hook', argv0: '/usr/bin/hook', args: [] });
    expect(hookCommand({ path: '/usr/bin/hook', args: [] })).toEqual({
      file: '/usr/bin/hook',
      argv0: '/usr/bin/hook',
      args: [],
    });
  });
  it('builds the environment only from hook.env', () => {
    expect(hookEnv({ path: '/x' })).toEqual({});
    expect(hookEnv({ path: '/x', env: ['A=1', 'B=x=y', 'C=', 'NOEQ', '=v', 'A=2'] })).toEqual({ A: '2', B: 'x=y', C: '' });
  });
});

describe('runHooks', () => {
  it('does nothing for undefined or empty lists', async () => {
    await expect(runHooks('prestart', undefined, state())).resolves.toBeUndefined();
    await expect(runHooks('prestart', [], state())).resolves.toBeUndefined();
  });

  it('writes the state JSON to the hook stdin', async () => {
    const o = out();
    const hook = script('cat > "$1"');
    await runHooks('createRuntime', [{ path: hook, args: [hook, o], env: [PATH] }], state({ status: 'creating', pid: 777 }));
    const got = JSON.parse(readFileSync(o, 'utf8')) as OciState;
    expect(got).toEqual({
      ociVersion: '1.2.0',
      id: 'ctr-abc',
      status: 'creating',
      pid: 777,
      bundle: '/run/bundles/ctr-abc',
      annotations: { 'org.example': 'yes' },
    });
  });

  it('passes exactly hook.env and nothing from tsrun', async () => {
    process.env['TSRUN_HOOK_LEAK'] = 'leaked';
    try {
      const o = out();
      const hook = script(`/usr/bin/tr '\\000' '\\n' < /proc/$$/environ > "$1"`);
      await runHooks('prestart', [{ path: hook, args: [hook, o], env: ['FOO=bar', 'EMPTY=', 'X=a=b', PATH] }], state());
      const lines = readFileSync(o, 'utf8')
        .split('\n')
        .filter((l) => l !== '');
      expect(lines.sort()).toEqual(['EMPTY=', 'FOO=bar', PATH, 'X=a=b'].sort());

      const o2 = out();
      const hook2 = script(`/usr/bin/tr '\\000' '\\n' < /proc/$$/environ > "$1"`);
      await runHooks('prestart', [{ path: hook2, args: [hook2, o2] }], state());
      expect(readFileSync(o2, 'utf8')).toBe('');
    } finally {
      delete process.env['TSRUN_HOOK_LEAK'];
    }
  });

  it('passes args, with args[0] as argv[0]', async () => {
    const o = out();
    // sh's $0 is its own argv[0] when -c has no extra operands.
    await runHooks('createContainer', [{ path: '/bin/sh', args: ['custom-argv0', '-c', `echo "$0" > ${o}`] }], state());
    expect(readFileSync(o, 'utf8')).toBe('custom-argv0\n');

    const o2 = out();
    const hook = script('printf "%s|" "$#" "$@" > "$1"');
    await runHooks('startContainer', [{ path: hook, args: ['ignored-argv0', o2, 'two words', '--flag'] }], state());
    expect(readFileSync(o2, 'utf8')).toBe(`3|${o2}|two words|--flag|`);
  });

  it('runs a hook without args with no arguments', async () => {
    const o = out();
    const hook = script(`echo "$#" > ${o}`);
    await runHooks('prestart', [{ path: hook }], state());
    expect(readFileSync(o, 'utf8')).toBe('0\n');
  });

  it('runs in opts.cwd', async () => {
    const o = out();
    const hook = script(`/bin/pwd > ${o}`);
    await runHooks('prestart', [{ path: hook }], state(), { cwd: dir });
    expect(readFileSync(o, 'utf8').trim()).toBe(dir);
  });

  it('runs hooks in order', async () => {
    const o = out();
    const a = script(`echo a >> ${o}`);
    const b = script(`/bin/sleep 0.2; echo b >> ${o}`);
    const c = script(`echo c >> ${o}`);
    await runHooks('createRuntime', [{ path: a }, { path: b }, { path: c }], state());
    expect(readFileSync(o, 'utf8')).toBe('a\nb\nc\n');
  });

  it('fails on a non-zero exit with the status and stderr tail', async () => {
    const hook = script('echo "something broke" >&2; exit 3');
    const e = await failure(runHooks('prestart', [{ path: hook }], state()));
    expect(e.code).toBe('ERR_HOOK_FAILED');
    expect(e.message).toBe(`hook "prestart" ${hook}: exited with status 3: something broke`);
  });

  it('omits the stderr part when the hook printed nothing', async () => {
    const hook = script('exit 1');
    const e = await failure(runHooks('createContainer', [{ path: hook }], state()));
    expect(e.message).toBe(`hook "createContainer" ${hook}: exited with status 1`);
  });

  it('keeps only the last 4 KiB of stderr', async () => {
    const hook = script(
      'echo FIRST >&2; i=0; while [ $i -lt 200 ]; do echo "0123456789012345678901234567890123456789012345678" >&2; i=$((i+1)); done; echo LAST >&2; exit 2',
    );
    const e = await failure(runHooks('prestart', [{ path: hook }], state()));
    expect(e.message).toContain('exited with status 2: ');
    expect(e.message.endsWith('LAST')).toBe(true);
    expect(e.message).not.toContain('FIRST');
    const tail = e.message.slice(e.message.indexOf('status 2: ') + 'status 2: '.length);
    expect(tail.length).toBeLessThanOrEqual(4096);
    expect(tail.length).toBeGreaterThan(4000);
  });

  it('reports death by signal', async () => {
    const hook = script('kill -KILL $$');
    const e = await failure(runHooks('prestart', [{ path: hook }], state()));
    expect(e.code).toBe('ERR_HOOK_FAILED');
    expect(e.message).toBe(`hook "prestart" ${hook}: killed by SIGKILL`);
  });

  it('kills a hook at its timeout', async () => {
    const after = out();
    const hook = script(`/bin/sleep 5; touch ${after}`);
    const t0 = Date.now();
    const e = await failure(runHooks('createRuntime', [{ path: hook, timeout: 1 }], state()));
    const ms = Date.now() - t0;
    expect(e.code).toBe('ERR_HOOK_FAILED');
    expect(e.message).toBe(`hook "createRuntime" ${hook}: timed out after 1 s`);
    expect(ms).toBeGreaterThanOrEqual(900);
    expect(ms).toBeLessThan(2500);
    await new Promise((r) => setTimeout(r, 200));
    expect(existsSync(after)).toBe(false);
  });

  it('does not time out a hook that finishes in time', async () => {
    const hook = script('/bin/sleep 0.1');
    await expect(runHooks('prestart', [{ path: hook, timeout: 5 }], state())).resolves.toBeUndefined();
  });

  it('rejects a non-positive timeout', async () => {
    const hook = script('exit 0');
    const e = await failure(runHooks('prestart', [{ path: hook, timeout: 0 }], state()));
    expect(e.code).toBe('ERR_INVALID_CONFIG');
  });

  it('stops at the first failure for create-time hooks', async () => {
    const marker = out();
    const bad = script('exit 1');
    const good = script(`touch ${marker}`);
    const warnings: string[] = [];
    await failure(runHooks('createRuntime', [{ path: bad }, { path: good }], state(), { onWarning: (m) => warnings.push(m) }));
    expect(existsSync(marker)).toBe(false);
    expect(warnings).toEqual([]);
  });

  it.each(['poststop', 'poststart'] as const)('%s failures only warn and the next hook runs', async (kind) => {
    const marker = out();
    const bad = script('echo nope >&2; exit 4');
    const good = script(`touch ${marker}`);
    const warnings: string[] = [];
    await expect(
      runHooks(kind, [{ path: bad }, { path: '/nonexistent/hook' }, { path: good }], state({ status: 'stopped' }), {
        onWarning: (m) => warnings.push(m),
      }),
    ).resolves.toBeUndefined();
    expect(existsSync(marker)).toBe(true);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toBe(`hook "${kind}" ${bad}: exited with status 4: nope`);
    expect(warnings[1]).toContain(`hook "${kind}" /nonexistent/hook: `);
    expect(warnings[1]).toContain('ENOENT');
  });

  it('poststop failures without onWarning are swallowed', async () => {
    const bad = script('exit 1');
    await expect(runHooks('poststop', [{ path: bad }], state())).resolves.toBeUndefined();
  });

  it('reports a missing executable with errno ENOENT', async () => {
    const e = await failure(runHooks('prestart', [{ path: join(dir, 'does-not-exist') }], state()));
    expect(e.code).toBe('ERR_HOOK_FAILED');
    expect(e.errno).toBe(2);
    expect(e.message).toMatch(/^hook "prestart" .*does-not-exist: cannot run: .*ENOENT/);
  });

  it('reports a non-executable file with errno EACCES', async () => {
    const hook = script('exit 0', 0o644);
    const e = await failure(runHooks('prestart', [{ path: hook }], state()));
    expect(e.code).toBe('ERR_HOOK_FAILED');
    expect(e.errno).toBe(13);
    expect(e.message).toContain('EACCES');
  });

  it('a hook that does not read a large state on stdin does not fail', async () => {
    const big = state({ annotations: { big: 'x'.repeat(4 * 1024 * 1024) } });
    const marker = out();
    const hook = script(`touch ${marker}; exit 0`);
    await expect(runHooks('prestart', [{ path: hook }, { path: hook }], big)).resolves.toBeUndefined();
    expect(existsSync(marker)).toBe(true);
  });

  it('a hook that reads part of a large state and exits 0 does not fail', async () => {
    const big = state({ annotations: { big: 'y'.repeat(2 * 1024 * 1024) } });
    const hook = script('/usr/bin/head -c 10 > /dev/null; exit 0');
    await expect(runHooks('createRuntime', [{ path: hook }], big)).resolves.toBeUndefined();
  });

  it('does not wait for a daemonised child holding stderr', async () => {
    const hook = script('/bin/sleep 3 & exit 0');
    const t0 = Date.now();
    await runHooks('poststart', [{ path: hook }], state(), { onWarning: (m) => expect.fail(m) });
    expect(Date.now() - t0).toBeLessThan(1500);
  });
});
