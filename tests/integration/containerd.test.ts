// containerd 1.6 (ctr -> containerd -> containerd-shim-runc-v2) driving the OCI runtime given by
// path: `ctr run --runc-binary <rt> …`. The runtime is runtimePath(): $TSRUN_OCI_RUNTIME, else
// /usr/sbin/runc for now. Asserted from the outside: ctr output, exit codes, task status.
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ContainerdEnv,
  type RunOpts,
  containerdSkipReason,
  describeResult,
  freezerSkipReason,
  runtimePath,
  setupContainerd,
  ttySkipReason,
  waitFor,
} from './helpers/clients.js';

const rt = runtimePath();
const skipReason = containerdSkipReason();
if (skipReason) console.warn(`[containerd.test] SKIPPED: ${skipReason}`);
const ttySkip = ttySkipReason();
if (!skipReason && ttySkip) console.warn(`[containerd.test] tty test SKIPPED: ${ttySkip}`);
const pauseSkip = freezerSkipReason();
if (!skipReason && pauseSkip) console.warn(`[containerd.test] pause/resume SKIPPED: ${pauseSkip}`);

// a long-running task that exits 0 on SIGTERM (pid 1 ignores TERM without a trap)
const LOOP = `trap 'exit 0' TERM; while :; do sleep 0.1; done`;

interface TaskInfo {
  pid: number;
  status: string;
}

describe.skipIf(skipReason !== null)(`ctr --runc-binary ${rt}`, () => {
  let env: ContainerdEnv | undefined;
  const cd = (): ContainerdEnv => {
    if (!env) throw new Error('containerd setup failed (see beforeAll)');
    return env;
  };
  /** ctr --address <ours> -n <ns> <args> */
  const ctr = (args: string[], opts?: RunOpts) => cd().run(args, opts);
  /** ctr run --runc-binary <rt> <flags> IMG <id> <cmd…> */
  const ctrRun = (flags: string[], id: string, cmd: string[], opts?: RunOpts) => ctr(['run', ...flags, '--runc-binary', rt, cd().image, id, ...cmd], opts);
  /** the row of `ctr task ls` for id (TASK PID STATUS) */
  const task = async (id: string): Promise<TaskInfo | undefined> => {
    const r = await ctr(['task', 'ls']);
    expect(r.code, describeResult(r)).toBe(0);
    for (const line of r.stdout.split('\n').slice(1)) {
      const [t, pid, status] = line.trim().split(/\s+/);
      if (t === id && pid && status) return { pid: Number(pid), status };
    }
    return undefined;
  };
  const alive = (pid: number) => fs.existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(safeRead(`/proc/${pid}/status`));

  beforeAll(async () => {
    env = await setupContainerd();
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  it('ctr run --rm IMG id echo hi prints hi', async () => {
    const r = await ctrRun(['--rm'], 'echo1', ['echo', 'hi']);
    expect(r.code, describeResult(r)).toBe(0);
    expect(r.stdout).toBe('hi\n');
  });

  it("propagates the task's exit code (sh -c 'exit 42' -> 42)", async () => {
    const r = await ctrRun(['--rm'], 'exit1', ['sh', '-c', 'exit 42']);
    expect(r.code, describeResult(r)).toBe(42);
  });

  it('ctr run of a missing executable fails at create with the runtime error text', async () => {
    const r = await ctrRun(['--rm'], 'noexec1', ['/nonexistent']);
    expect(r.code, describeResult(r)).not.toBe(0);
    expect(r.stderr).toMatch(/no such file or directory|executable file not found/);
    const ls = await ctr(['containers', 'ls', '-q']);
    expect(ls.stdout.split('\n')).not.toContain('noexec1');
  });

  it.skipIf(ttySkip !== null)('ctr run -t with a real tty: tty is /dev/pts/0, exit 6 propagates', async () => {
    const cmd = cd().ctrCommandLine(['run', '--rm', '-t', '--runc-binary', rt, cd().image, 'tty1', 'sh', '-c', 'tty; exit 6']);
    const r = await cd().runRaw('script', ['-qec', cmd, '/dev/null'], { holdStdin: true });
    expect(r.code, describeResult(r)).toBe(6);
    expect(r.stdout).toContain('/dev/pts/0');
  });

  it('run -d, task exec, task ps, pause/resume, kill, task rm, c rm', async () => {
    const id = 'life1';
    const r = await ctrRun(['-d'], id, ['sh', '-c', LOOP]);
    expect(r.code, describeResult(r)).toBe(0);
    const t = await task(id);
    expect(t?.status).toBe('RUNNING');
    const initPid = t!.pid;
    expect(initPid).toBeGreaterThan(0);
    expect(alive(initPid)).toBe(true);

    const ex = await ctr(['task', 'exec', '--exec-id', 'e1', id, 'sh', '-c', 'echo from-exec; echo to-stderr >&2; exit 3']);
    expect(ex.code, describeResult(ex)).toBe(3);
    expect(ex.stdout).toBe('from-exec\n');
    expect(ex.stderr).toContain('to-stderr');

    const ok = await ctr(['task', 'exec', '--exec-id', 'e2', id, 'cat', '/proc/1/cmdline']);
    expect(ok.code, describeResult(ok)).toBe(0);
    expect(ok.stdout.split('\0')).toEqual(['sh', '-c', LOOP, '']);

    // PID INFO table; the host pids of the processes in the task's cgroup
    const ps = await ctr(['task', 'ps', id]);
    expect(ps.code, describeResult(ps)).toBe(0);
    const rows = ps.stdout.trim().split('\n');
    expect(rows[0]).toMatch(/^PID\s+INFO/);
    const pids = rows.slice(1).map((l) => Number(l.trim().split(/\s+/)[0]));
    expect(pids.length).toBeGreaterThanOrEqual(1);
    for (const p of pids) expect(Number.isInteger(p) && p > 0, `pid ${p}`).toBe(true);
    expect(pids).toContain(initPid);

    if (!pauseSkip) {
      const p = await ctr(['task', 'pause', id]);
      expect(p.code, describeResult(p)).toBe(0);
      expect((await task(id))?.status).toBe('PAUSED');
      const res = await ctr(['task', 'resume', id]);
      expect(res.code, describeResult(res)).toBe(0);
      expect((await task(id))?.status).toBe('RUNNING');
    }

    const k = await ctr(['task', 'kill', id]); // SIGTERM -> the trap exits 0
    expect(k.code, describeResult(k)).toBe(0);
    expect(await waitFor(async () => (await task(id))?.status === 'STOPPED')).toBe(true);
    expect(await waitFor(() => !alive(initPid))).toBe(true);

    const rm = await ctr(['task', 'rm', id]);
    expect(rm.code, describeResult(rm)).toBe(0);
    expect(await task(id)).toBeUndefined();

    const crm = await ctr(['containers', 'rm', id]);
    expect(crm.code, describeResult(crm)).toBe(0);
    const ls = await ctr(['containers', 'ls', '-q']);
    expect(ls.stdout.split('\n')).not.toContain(id);
  });

  it('task rm -f removes a running task (and its processes); c rm removes the container', async () => {
    const id = 'force1';
    const r = await ctrRun(['-d'], id, ['sh', '-c', 'sleep 1000 & exec sleep 1000']);
    expect(r.code, describeResult(r)).toBe(0);
    const t = await task(id);
    expect(t?.status).toBe('RUNNING');
    const ps = await ctr(['task', 'ps', id]);
    const pids = ps.stdout
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => Number(l.trim().split(/\s+/)[0]));
    expect(pids.length, describeResult(ps)).toBe(2);

    const rm = await ctr(['task', 'rm', '-f', id]);
    expect(rm.code, describeResult(rm)).toBe(0);
    expect(await task(id)).toBeUndefined();
    expect(await waitFor(() => pids.every((p) => !alive(p))), `pids ${pids.join(',')} gone`).toBe(true);

    const crm = await ctr(['containers', 'rm', id]);
    expect(crm.code, describeResult(crm)).toBe(0);
    const ls = await ctr(['containers', 'ls', '-q']);
    expect(ls.stdout.split('\n')).not.toContain(id);
  });
});

function safeRead(p: string): string {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}
