// `tsrun run IMAGE`: output, docker's exit codes, --rm, names, and nothing left behind.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Engine, engineSkipReason, makeEngine, show, until } from './helpers/engine.js';

const skip = engineSkipReason();
if (skip) console.warn(`[engine-run.test] SKIPPED: ${skip}`);

describe.skipIf(!!skip)('tsrun run', () => {
  let e: Engine;
  beforeAll(() => {
    e = makeEngine('tsrun-engine-run');
  });
  afterAll(async () => {
    if (!e) return;
    const problems = await e.teardown();
    expect(problems, problems.join('\n')).toEqual([]);
  });

  it('runs a command from the short name and prints its output', async () => {
    const r = await e.tsrun(['run', '--rm', 'busybox', 'echo', 'hello from tsrun']);
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toBe('hello from tsrun\n');
    expect(e.tsrunSync(['ps', '-a', '-q']).stdout).toBe('');
  });

  it('passes the exit status through, 128+N for a signal', async () => {
    expect((await e.tsrun(['run', '--rm', 'busybox', 'sh', '-c', 'exit 7'])).code).toBe(7);
    // A pid 1 ignores signals it has no handler for unless they come from outside: kill it from here.
    const run = e.tsrun(['run', '--rm', '--name', 'sig', 'busybox', 'sh', '-c', 'trap "exit 99" USR1; echo up; sleep 30 & wait']);
    await until(() => e.tsrunSync(['logs', 'sig']).stdout.includes('up'));
    const k = await e.tsrun(['kill', '-s', 'KILL', 'sig']);
    expect(k.code, show(k)).toBe(0);
    expect((await run).code).toBe(137);
  });

  it('answers 127 for a missing command, 126 for one that cannot run, 125 for its own errors', async () => {
    const nf = await e.tsrun(['run', '--rm', 'busybox', 'no-such-cmd']);
    expect(nf.code, show(nf)).toBe(127);
    expect(nf.stderr).toMatch(/no-such-cmd/);
    const perm = await e.tsrun(['run', '--rm', 'busybox', '/etc']);
    expect(perm.code, show(perm)).toBe(126);
    const img = await e.tsrun(['run', '--rm', '--pull', 'never', 'nope-image']);
    expect(img.code, show(img)).toBe(125);
    expect(img.stderr).toMatch(/no such image/);
    expect(img.stderr).not.toMatch(/at .*\.js/);
    const flag = await e.tsrun(['run', '--rm', '--memory', 'lots', 'busybox', 'true']);
    expect(flag.code, show(flag)).toBe(125);
    expect(e.tsrunSync(['ps', '-a', '-q']).stdout).toBe('');
  });

  it('a usage error is 125, as docker’s', async () => {
    const r = await e.tsrun(['run', '--rm', '--bogus', 'busybox', 'true']);
    expect(r.code, show(r)).toBe(125);
    expect(r.stderr).toMatch(/unknown option '--bogus'/);
    expect((await e.tsrun(['run'])).code).toBe(125);
  });

  it('diff of an untouched container is empty (its /etc files are mounts, not changes)', async () => {
    expect((await e.tsrun(['run', '-d', '--name', 'quiet', 'busybox', 'sleep', '30'])).code).toBe(0);
    const d = await e.tsrun(['diff', 'quiet']);
    expect(d.code, show(d)).toBe(0);
    expect(d.stdout).toBe('');
    expect((await e.tsrun(['rm', '-f', 'quiet'])).code).toBe(0);
  });

  it('keeps stderr apart from stdout and feeds stdin with -i', async () => {
    const r = await e.tsrun(['run', '--rm', '-i', 'busybox', 'sh', '-c', 'cat; echo err >&2'], { input: 'from stdin\n' });
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toBe('from stdin\n');
    expect(r.stderr).toBe('err\n');
  });

  it('refuses a second container with the same name', async () => {
    const a = await e.tsrun(['create', '--name', 'dup', 'busybox', 'true']);
    expect(a.code, show(a)).toBe(0);
    const b = await e.tsrun(['create', '--name', 'dup', 'busybox', 'true']);
    expect(b.code, show(b)).toBe(125);
    expect(b.stderr).toMatch(/already in use/);
    expect((await e.tsrun(['rm', 'dup'])).code).toBe(0);
  });
});
