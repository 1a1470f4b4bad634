// The forked child without namespaces (no root needed): what a container process inherits
// from Node must be cleaned up (design-notes §0: SIGPIPE ignored, CLOEXEC stdio, leaked fds).
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { F, type PlanStep } from '../../src/linux/plan-encode.js';
import { native } from '../../src/native/index.js';
import { SpawnSession } from '../../src/runtime/spawn-session.js';
import { tempDir } from '../helpers/tmp-dir.js';

const step = (op: PlanStep['op'], fields: PlanStep['fields'] = [], target?: string): PlanStep => ({
  op,
  syscall: op.toLowerCase(),
  fields,
  ...(target ? { target } : {}),
});

function plan(argv: string[], preserve = 0): PlanStep[] {
  return [
    step('DUMPABLE', [F.int(0)]),
    step('FORK'),
    step('SETSID'),
    step('FIND_EXEC', [F.str(argv[0]!), F.str('/usr/bin:/bin')], argv[0]),
    step('CLOSE_FDS', [F.int(3 + preserve)]),
    step('READY', [F.int(-1), F.int(0)]),
    step('EXEC', [F.list(argv), F.list(['PATH=/usr/bin:/bin'])], argv[0]),
  ];
}

async function runPlan(steps: PlanStep[]): Promise<number> {
  const s = SpawnSession.start(steps);
  await s.untilReady();
  s.go();
  s.waitExec();
  s.close();
  return (await native.waitPidAsync(s.initPid)).code ?? -1;
}

describe('spawn hygiene (no namespaces)', () => {
  it('CVE-2024-21626 (leaked fds): resets ignored signals, unblocks all, closes leaked fds and keeps stdio', async () => {
    const dir = tempDir('hyg-');
    const out = join(dir, 'out');
    // An extra fd open in the parent at spawn time (the integration tests cover non-CLOEXEC ones).
    const leaked = openSync(join(dir, 'leak'), 'w');
    const code = await runPlan(plan(['/bin/sh', '-c', `grep -E '^Sig(Ign|Blk)' /proc/self/status > ${out}; ls /proc/self/fd >> ${out}`]));
    closeSync(leaked);
    expect(code).toBe(0);
    const text = readFileSync(out, 'utf8');
    expect(text).toMatch(/SigBlk:\s+0000000000000000/);
    expect(text).toMatch(/SigIgn:\s+0000000000000000/); // Node ignores SIGPIPE; the child must not
    const fds = text
      .split('\n')
      .filter((l) => /^\d+$/.test(l))
      .map(Number);
    // 0-2, plus the one ls uses to read the directory
    expect(fds.filter((f) => f > 2).length).toBeLessThanOrEqual(1);
    expect(fds).toEqual(expect.arrayContaining([0, 1, 2]));
  });

  it('passes exactly the preserved fds', async () => {
    const dir = tempDir('hyg-');
    const out = join(dir, 'out');
    const code = await runPlan(plan(['/bin/sh', '-c', `ls /proc/self/fd > ${out}`], 2));
    expect(code).toBe(0);
    const fds = readFileSync(out, 'utf8')
      .split('\n')
      .filter((l) => /^\d+$/.test(l))
      .map(Number);
    expect(fds).toEqual(expect.arrayContaining([0, 1, 2]));
  });

  it('reports a missing executable as a typed error naming it, and leaves no process', async () => {
    const s = SpawnSession.start(plan(['/nonexistent/prog']));
    await expect(s.untilReady()).rejects.toMatchObject({
      code: 'ERR_EXEC_NOT_FOUND',
      message: 'unable to start container process: exec: "/nonexistent/prog": stat /nonexistent/prog: no such file or directory',
    });
    s.abort();
  });

  it('finds a command on PATH like execvp, and fails clearly when it is not there', async () => {
    expect(await runPlan(plan(['true']))).toBe(0);
    const s = SpawnSession.start(plan(['no-such-command-xyz']));
    await expect(s.untilReady()).rejects.toThrow('executable file not found in $PATH');
    s.abort();
  });
});
