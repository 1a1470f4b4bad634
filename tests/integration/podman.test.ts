// Podman (4.x, via conmon) driving the OCI runtime given by path: `podman --runtime <rt> …`.
// The runtime is runtimePath(): $TSRUN_OCI_RUNTIME, else /usr/sbin/runc for now.
// Everything is asserted from the outside: podman's output, exit codes and inspect state.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type PodmanEnv,
  type RunOpts,
  describeResult,
  freezerSkipReason,
  podmanSkipReason,
  runtimePath,
  setupPodman,
  shq,
  ttySkipReason,
  waitFor,
} from './helpers/clients.js';

const rt = runtimePath();
const skipReason = podmanSkipReason();
if (skipReason) console.warn(`[podman.test] SKIPPED: ${skipReason}`);
const ttySkip = ttySkipReason();
if (!skipReason && ttySkip) console.warn(`[podman.test] tty test SKIPPED: ${ttySkip}`);
const pauseSkip = freezerSkipReason();
if (!skipReason && pauseSkip) console.warn(`[podman.test] pause test SKIPPED: ${pauseSkip}`);

// a long-running container: prints, and exits 0 on SIGTERM (pid 1 ignores TERM without a trap)
const LOOP = `trap 'exit 0' TERM; echo started; i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.1; done`;

describe.skipIf(skipReason !== null)(`podman --runtime ${rt}`, () => {
  let env: PodmanEnv | undefined;
  const pm = (): PodmanEnv => {
    if (!env) throw new Error('podman setup failed (see beforeAll)');
    return env;
  };
  /** podman --runtime <rt> <args> */
  const podman = (args: string[], opts?: RunOpts) => pm().run(['--runtime', rt, ...args], opts);
  /** podman --runtime <rt> run --network none <args> */
  const run = (args: string[], opts?: RunOpts) => podman(['run', '--network', 'none', ...args], opts);
  const state = async (name: string) => {
    const r = await podman(['inspect', '--format', '{{.State.Status}} {{.State.ExitCode}}', name]);
    expect(r.code, describeResult(r)).toBe(0);
    return r.stdout.trim();
  };
  const logLines = async (name: string) => (await podman(['logs', name])).stdout.split('\n').filter(Boolean);

  beforeAll(async () => {
    env = await setupPodman();
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  it('run --rm IMG echo hi prints hi', async () => {
    const r = await run(['--rm', pm().image, 'echo', 'hi']);
    expect(r.code, describeResult(r)).toBe(0);
    expect(r.stdout).toBe('hi\n');
  });

  it("propagates the container's exit code (sh -c 'exit 7' -> 7)", async () => {
    const r = await run(['--rm', pm().image, 'sh', '-c', 'exit 7']);
    expect(r.code, describeResult(r)).toBe(7);
  });

  it('run --rm IMG /nonexistent exits 127 (command not found, as with runc)', async () => {
    const r = await run(['--rm', pm().image, '/nonexistent']);
    expect(r.code, describeResult(r)).toBe(127);
    expect(r.stderr).toMatch(/no such file or directory|executable file not found|not found/i);
    // --rm: nothing left in podman's list
    const ps = await podman(['ps', '-a', '-q']);
    expect(ps.stdout.trim(), describeResult(ps)).toBe('');
  });

  it('run -d, exec (output + exit code), logs, stop, rm', async () => {
    const name = 'lifecycle';
    const r = await run(['-d', '--name', name, pm().image, 'sh', '-c', LOOP]);
    expect(r.code, describeResult(r)).toBe(0);
    expect(r.stdout.trim()).toMatch(/^[0-9a-f]{64}$/);
    expect(await state(name)).toBe('running 0');

    const ex = await podman(['exec', name, 'sh', '-c', 'echo from-exec; echo to-stderr >&2; exit 3']);
    expect(ex.code, describeResult(ex)).toBe(3);
    expect(ex.stdout).toBe('from-exec\n');
    expect(ex.stderr).toContain('to-stderr');

    const ok = await podman(['exec', name, 'cat', '/proc/1/cmdline']);
    expect(ok.code, describeResult(ok)).toBe(0);
    expect(ok.stdout.split('\0')).toEqual(['sh', '-c', LOOP, '']);

    const lines = await waitFor(async () => {
      const l = await logLines(name);
      return l.some((x) => x.startsWith('tick')) && l;
    });
    expect(lines, 'podman logs').toBeTruthy();
    expect(lines && lines[0]).toBe('started');

    const st = await podman(['stop', '--time', '10', name]);
    expect(st.code, describeResult(st)).toBe(0);
    expect(st.stdout.trim()).toBe(name);
    expect(await state(name)).toBe('exited 0'); // the TERM trap ran: stopped by signal 15, not 9

    const rm = await podman(['rm', name]);
    expect(rm.code, describeResult(rm)).toBe(0);
    const ps = await podman(['ps', '-a', '--format', '{{.Names}}']);
    expect(ps.stdout.split('\n')).not.toContain(name);
  });

  it.skipIf(ttySkip !== null)('run -it with a real tty: tty is /dev/pts/0, exit 6 propagates', async () => {
    const cmd = ['podman', '--runtime', rt, 'run', '-it', '--rm', '--network', 'none', pm().image, 'sh', '-c', 'tty; exit 6'].map(shq).join(' ');
    const r = await pm().runRaw('script', ['-qec', cmd, '/dev/null'], { holdStdin: true });
    expect(r.code, describeResult(r)).toBe(6);
    expect(r.stdout).toContain('/dev/pts/0');
  });

  it.skipIf(pauseSkip !== null)('pause / unpause: inspect shows paused, output stops, then resumes', async () => {
    const name = 'pausable';
    const r = await run(['-d', '--name', name, pm().image, 'sh', '-c', LOOP]);
    expect(r.code, describeResult(r)).toBe(0);
    expect(await waitFor(async () => (await logLines(name)).length > 2)).toBe(true);

    const p = await podman(['pause', name]);
    expect(p.code, describeResult(p)).toBe(0);
    expect(await state(name)).toBe('paused 0');
    await new Promise((res) => setTimeout(res, 200)); // let in-flight output reach the log
    const frozen = (await logLines(name)).length;
    await new Promise((res) => setTimeout(res, 600)); // ~6 ticks if it were running
    expect((await logLines(name)).length, 'no output while paused').toBe(frozen);

    const u = await podman(['unpause', name]);
    expect(u.code, describeResult(u)).toBe(0);
    expect(await state(name)).toBe('running 0');
    expect(await waitFor(async () => (await logLines(name)).length > frozen), 'output resumes').toBe(true);

    const rm = await podman(['rm', '--force', '--time', '0', name]);
    expect(rm.code, describeResult(rm)).toBe(0);
  });
});
