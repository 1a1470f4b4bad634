// A container's life through the engine CLI, as a docker user sees it: create/start/stop/
// restart/kill/rm/wait/pause/unpause, ps and inspect output, names and id prefixes, prune,
// --rm, and a state that stays truthful when the monitor or the init is killed from outside or
// two commands race on one container. Every test leaves nothing behind.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Engine, engineSkipReason, leftovers, makeEngine, type Result, show, until } from './helpers/engine.js';

const skip = engineSkipReason();
if (skip) console.warn(`[engine-lifecycle.test] SKIPPED: ${skip}`);

interface Inspect {
  Id: string;
  Name: string;
  RestartCount: number;
  State: {
    Status: string;
    Running: boolean;
    Paused: boolean;
    Pid: number;
    ExitCode: number;
    OOMKilled: boolean;
    Error: string;
    StartedAt: string;
    FinishedAt: string;
    MonitorPid: number;
    MonitorAlive: boolean;
  };
  Mounts: { Type: string; Name?: string; Destination: string }[];
  Config: { Env: string[]; StopSignal: string };
  GraphDriver: { Data: { UpperDir: string } };
}

const FULL_ID = /^[0-9a-f]{64}$/;
const SHORT_ID = /^[0-9a-f]{12}$/;
/** A JS stack frame or a raw exception name: what a user must never see. */
const STACK = /\n\s+at |\.js:\d+|\.cjs:\d+|TypeError|ReferenceError/;

/** Process state letter from /proc/<pid>/stat, undefined when the pid is gone. */
function procState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}
const procAlive = (pid: number) => {
  const s = procState(pid);
  return s !== undefined && s !== 'Z' && s !== 'X';
};

describe.skipIf(!!skip)('tsrun container lifecycle', () => {
  let e: Engine;

  const ok = (r: Result): Result => {
    expect(r.code, show(r)).toBe(0);
    return r;
  };
  /** The container's inspect JSON, or undefined when it does not exist. */
  const inspect = (ref: string): Inspect | undefined => {
    const r = e.tsrunSync(['inspect', '--type', 'container', ref]);
    if (r.code !== 0) return undefined;
    return (JSON.parse(r.stdout) as Inspect[])[0];
  };
  const status = (ref: string) => inspect(ref)?.State.Status;
  const logs = (ref: string) => e.tsrunSync(['logs', ref]).stdout;
  const names = (args: string[] = []) =>
    e
      .tsrunSync(['ps', ...args, '--format', '{{.Names}}'])
      .stdout.split('\n')
      .filter(Boolean);
  /** `run -d` that must succeed; the full id. */
  const runD = async (args: string[]): Promise<string> => {
    const r = ok(await e.tsrun(['run', '-d', ...args]));
    const id = r.stdout.trim();
    expect(id).toMatch(FULL_ID);
    return id;
  };
  /** A looping shell that installs its traps, then says "ready" (so a signal sent after finds the trap). */
  const trapLoop = (traps: string) => ['sh', '-c', `${traps}; echo ready; while :; do sleep 0.1; done`];
  const waitReady = async (ref: string) => expect(await until(() => logs(ref).includes('ready'))).toBe(true);
  const waitStatus = async (ref: string, want: string, ms = 10_000) => {
    await until(() => status(ref) === want, ms);
    expect(status(ref)).toBe(want);
  };

  beforeAll(() => {
    e = makeEngine('tsrun-engine-lifecycle');
  });
  afterEach(() => {
    if (!e) return;
    const ids = e.tsrunSync(['ps', '-a', '-q']).stdout.split('\n').filter(Boolean);
    if (ids.length) e.tsrunSync(['rm', '-f', '-v', ...ids]);
  });
  afterAll(async () => {
    if (!e) return;
    const problems = await e.teardown();
    expect(problems, problems.join('\n')).toEqual([]);
  });

  it('create shows Created; start runs it as pid 1 of its own pid namespace', async () => {
    const created = ok(await e.tsrun(['create', '--name', 'life', 'busybox', 'sleep', '300']));
    const id = created.stdout.trim();
    expect(id).toMatch(FULL_ID);
    expect(e.tsrunSync(['ps', '-a', '--format', '{{.Names}} {{.Status}}']).stdout).toContain('life Created\n');
    expect(names()).not.toContain('life'); // ps without -a: running containers only
    const before = inspect('life')!;
    expect(before.State).toMatchObject({ Status: 'created', Running: false, Pid: 0 });
    expect(before.Id).toBe(id);
    expect(before.Name).toBe('/life');

    const started = ok(await e.tsrun(['start', 'life']));
    expect(started.stdout).toBe('life\n');
    const st = inspect('life')!.State;
    expect(st).toMatchObject({ Status: 'running', Running: true, Paused: false, MonitorAlive: true });
    expect(st.Pid).toBeGreaterThan(0);
    expect(existsSync(`/proc/${st.Pid}`)).toBe(true);
    expect(st.MonitorPid).toBeGreaterThan(0);
    expect(Number.isNaN(Date.parse(st.StartedAt))).toBe(false);
    const nspid = readFileSync(`/proc/${st.Pid}/status`, 'utf8')
      .match(/^NSpid:\s+(.*)$/m)?.[1]
      ?.split(/\s+/);
    expect(nspid?.length).toBeGreaterThanOrEqual(2);
    expect(nspid?.[0]).toBe(String(st.Pid));
    expect(nspid?.at(-1)).toBe('1');
    expect(e.tsrunSync(['ps', '--format', '{{.Names}} {{.Status}}']).stdout).toMatch(/^life Up /m);
  });

  it('stop sends SIGTERM by default and the container’s handler runs; stopping a stopped container is fine', async () => {
    await runD(['--name', 'term', 'busybox', ...trapLoop('trap "echo got TERM; exit 3" TERM')]);
    await waitReady('term');
    const stop = ok(await e.tsrun(['stop', 'term']));
    expect(stop.stdout).toBe('term\n');
    expect(inspect('term')!.State).toMatchObject({ Status: 'exited', Running: false, ExitCode: 3 });
    expect(logs('term')).toContain('got TERM\n');
    ok(await e.tsrun(['stop', 'term']));
    expect(inspect('term')!.State.ExitCode).toBe(3);
  });

  it('honours --stop-signal', async () => {
    await runD(['--name', 'usr1', '--stop-signal', 'USR1', 'busybox', ...trapLoop('trap "echo got USR1; exit 4" USR1; trap "echo got TERM; exit 9" TERM')]);
    await waitReady('usr1');
    ok(await e.tsrun(['stop', 'usr1']));
    expect(inspect('usr1')!.State.ExitCode).toBe(4);
    expect(logs('usr1')).toContain('got USR1\n');
    expect(logs('usr1')).not.toContain('got TERM');
  });

  it('stop -t 1 kills a container that ignores SIGTERM after about a second (137)', async () => {
    await runD(['--name', 'stubborn', 'busybox', ...trapLoop('trap "" TERM')]);
    await waitReady('stubborn');
    const t0 = Date.now();
    ok(await e.tsrun(['stop', '-t', '1', 'stubborn']));
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(1000);
    expect(took).toBeLessThan(8000);
    expect(inspect('stubborn')!.State).toMatchObject({ Status: 'exited', ExitCode: 137 });
  });

  it('restart gives a new process, counts the restart and appends to the logs', async () => {
    await runD(['--name', 'again', 'busybox', 'sh', '-c', 'trap "exit 0" TERM; echo started; while :; do sleep 0.1; done']);
    await until(() => logs('again').includes('started'));
    const first = inspect('again')!;
    expect(first.RestartCount).toBe(0);
    const r = ok(await e.tsrun(['restart', 'again']));
    expect(r.stdout).toBe('again\n');
    const second = inspect('again')!;
    expect(second.State.Status).toBe('running');
    expect(second.State.Pid).toBeGreaterThan(0);
    expect(second.State.Pid).not.toBe(first.State.Pid);
    expect(procAlive(second.State.Pid)).toBe(true);
    expect(second.RestartCount).toBe(1);
    expect(await until(() => logs('again') === 'started\nstarted\n')).toBe(true);
  });

  it('kill -s HUP reaches a trap; kill of a stopped container is a one-line error', async () => {
    await runD(['--name', 'hup', 'busybox', ...trapLoop('trap "echo got HUP" HUP')]);
    await waitReady('hup');
    const k = ok(await e.tsrun(['kill', '-s', 'HUP', 'hup']));
    expect(k.stdout).toBe('hup\n');
    expect(await until(() => logs('hup').includes('got HUP'))).toBe(true);
    expect(status('hup')).toBe('running');
    ok(await e.tsrun(['kill', 'hup'])); // SIGKILL by default
    await waitStatus('hup', 'exited');
    expect(inspect('hup')!.State.ExitCode).toBe(137);

    const again = await e.tsrun(['kill', 'hup']);
    expect(again.code, show(again)).not.toBe(0);
    expect(again.stderr.trim().split('\n'), show(again)).toHaveLength(1);
    expect(again.stderr).toMatch(/hup.*not running/);
    expect(again.stderr).not.toMatch(STACK);
  });

  it('rm refuses a running container (saying what to do), rm -f removes it, an unknown name is exit 1', async () => {
    await runD(['--name', 'busy', 'busybox', 'sleep', '300']);
    const refused = await e.tsrun(['rm', 'busy']);
    expect(refused.code, show(refused)).not.toBe(0);
    expect(refused.stderr).toMatch(/busy/);
    expect(refused.stderr).toMatch(/running/);
    expect(refused.stderr).not.toMatch(STACK);
    expect(status('busy')).toBe('running');

    const forced = ok(await e.tsrun(['rm', '-f', 'busy']));
    expect(forced.stdout).toBe('busy\n');
    expect(inspect('busy')).toBeUndefined();
    expect(names(['-a'])).not.toContain('busy');

    const unknown = await e.tsrun(['rm', 'no-such-box']);
    expect(unknown.code, show(unknown)).toBe(1);
    expect(unknown.stderr).toMatch(/no such container: no-such-box/i);
    expect(unknown.stderr).not.toMatch(STACK);

    // docker: "cannot remove container …: container is running: stop the container before removing or force remove"
    expect.soft(refused.stderr, show(refused)).toMatch(/stop|-f|force/);
  });

  it('rm -v removes the anonymous volume of -v /data; rm without -v keeps it', async () => {
    const vols = () => new Set(e.tsrunSync(['volume', 'ls', '-q']).stdout.split('\n').filter(Boolean));
    const before = vols();
    await runD(['--name', 'vol', '-v', '/data', 'busybox', 'sh', '-c', 'echo x > /data/f; sleep 300']);
    const added = [...vols()].filter((v) => !before.has(v));
    expect(added).toHaveLength(1);
    const mount = inspect('vol')!.Mounts.find((m) => m.Destination === '/data');
    expect(mount).toMatchObject({ Type: 'volume', Name: added[0] });
    ok(await e.tsrun(['rm', '-f', '-v', 'vol']));
    expect(vols().has(added[0]!)).toBe(false);

    ok(await e.tsrun(['create', '--name', 'keepvol', '-v', '/data', 'busybox', 'true']));
    const kept = [...vols()].filter((v) => !before.has(v));
    expect(kept).toHaveLength(1);
    ok(await e.tsrun(['rm', 'keepvol']));
    expect(vols().has(kept[0]!)).toBe(true);
    ok(await e.tsrun(['volume', 'rm', kept[0]!]));
    expect(vols()).toEqual(before);
  });

  it('wait prints the exit code', async () => {
    await runD(['--name', 'five', 'busybox', 'sh', '-c', 'sleep 0.5; exit 5']);
    const w = ok(await e.tsrun(['wait', 'five']));
    expect(w.stdout).toBe('5\n');
    expect(status('five')).toBe('exited');
    const w2 = ok(await e.tsrun(['wait', 'five'])); // already exited: the same answer at once
    expect(w2.stdout).toBe('5\n');
  });

  it('pause freezes every process (Paused in ps and inspect); unpause thaws them', async () => {
    await runD(['--name', 'frz', 'busybox', 'sh', '-c', 'i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.1; done']);
    const counter = path.join(inspect('frz')!.GraphDriver.Data.UpperDir, 'tmp/count');
    const count = () => {
      try {
        return Number(readFileSync(counter, 'utf8'));
      } catch {
        return 0;
      }
    };
    expect(await until(() => count() >= 2)).toBe(true);

    const p = await e.tsrun(['pause', 'frz']);
    // On this hybrid host the container's cgroup is in the (controller-less) v2 hierarchy, whose
    // cgroup.freeze works: tsrun's README promises pause here.
    expect(p.code, show(p)).toBe(0);
    expect(p.stdout).toBe('frz\n');
    expect(inspect('frz')!.State).toMatchObject({ Status: 'paused', Paused: true, Running: true });
    expect(e.tsrunSync(['ps', '--format', '{{.Names}} {{.Status}}']).stdout).toMatch(/^frz Up .*\(Paused\)$/m);
    const frozenAt = count();
    await new Promise((r) => setTimeout(r, 600)); // six loop turns if it were not frozen
    expect(count()).toBe(frozenAt);

    const twice = await e.tsrun(['pause', 'frz']);
    expect(twice.code, show(twice)).not.toBe(0);
    expect(twice.stderr).toMatch(/paused/);
    expect(twice.stderr).not.toMatch(STACK);

    ok(await e.tsrun(['unpause', 'frz']));
    expect(inspect('frz')!.State).toMatchObject({ Status: 'running', Paused: false, Running: true });
    expect(await until(() => count() > frozenAt)).toBe(true);
    const notPaused = await e.tsrun(['unpause', 'frz']);
    expect(notPaused.code, show(notPaused)).not.toBe(0);
    expect(notPaused.stderr).toMatch(/not paused/);

    // A paused container can be stopped (thawed, then signalled).
    ok(await e.tsrun(['pause', 'frz']));
    ok(await e.tsrun(['stop', '-t', '1', 'frz']));
    expect(inspect('frz')!.State).toMatchObject({ Status: 'exited', Paused: false, ExitCode: 137 });
  });

  it('ps: running only by default, -a with "Exited (N) … ago", -q short ids, --format template and json', async () => {
    const upId = await runD(['--name', 'ps-up', 'busybox', 'sleep', '300']);
    const exId = await runD(['--name', 'ps-ex', 'busybox', 'sh', '-c', 'exit 2']);
    await waitStatus('ps-ex', 'exited');

    const table = ok(await e.tsrun(['ps'])).stdout;
    expect(table.split('\n')[0]).toMatch(/^CONTAINER ID\s+IMAGE\s+COMMAND\s+CREATED\s+STATUS\s+PORTS\s+NAMES$/);
    expect(table).toContain('ps-up');
    expect(table).not.toContain('ps-ex');
    const all = ok(await e.tsrun(['ps', '-a'])).stdout;
    expect(all).toMatch(/Exited \(2\) .*ago\s+ps-ex$/m);
    expect(all).toMatch(new RegExp(`^${exId.slice(0, 12)}\\s+busybox\\s`, 'm'));

    const q = ok(await e.tsrun(['ps', '-q']))
      .stdout.split('\n')
      .filter(Boolean);
    expect(q).toEqual([upId.slice(0, 12)]);
    const qa = ok(await e.tsrun(['ps', '-a', '-q']))
      .stdout.split('\n')
      .filter(Boolean);
    expect(qa.sort()).toEqual([upId.slice(0, 12), exId.slice(0, 12)].sort());
    for (const id of qa) expect(id).toMatch(SHORT_ID);

    const fmt = ok(await e.tsrun(['ps', '-a', '--format', '{{.Names}} {{.Status}}'])).stdout;
    expect(fmt).toMatch(/^ps-up Up .+$/m);
    expect(fmt).toMatch(/^ps-ex Exited \(2\) .+ ago$/m);
    expect(fmt.trim().split('\n')).toHaveLength(2);

    // one JSON object per line, as docker prints them
    const lines = (s: string) =>
      s
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l));
    const json = lines(ok(await e.tsrun(['ps', '-a', '--format', 'json'])).stdout) as { Names: string; State: string; ID: string }[];
    expect(Array.isArray(json)).toBe(true);
    expect(json.map((c) => c.Names).sort()).toEqual(['ps-ex', 'ps-up']);
    expect(json.find((c) => c.Names === 'ps-up')).toMatchObject({ State: 'running', ID: upId.slice(0, 12) });
    expect(json.find((c) => c.Names === 'ps-ex')).toMatchObject({ State: 'exited' });
    expect(lines(ok(await e.tsrun(['ps', '--format', 'json'])).stdout)).toHaveLength(1);
  });

  it('ps --no-trunc prints full ids (with -q and in the table)', async () => {
    const id = await runD(['--name', 'long', 'busybox', 'sleep', '300']);
    const q = ok(await e.tsrun(['ps', '-q', '--no-trunc']));
    expect(q.stdout, show(q)).toBe(`${id}\n`);
    const table = ok(await e.tsrun(['ps', '--no-trunc']));
    expect(table.stdout, show(table)).toMatch(new RegExp(`^${id}\\s`, 'm'));
  });

  it('a unique id prefix works for inspect, logs and rm; an ambiguous or unknown one is a clear error', async () => {
    const id = await runD(['--name', 'pfx', 'busybox', 'echo', 'hello from pfx']);
    await waitStatus('pfx', 'exited');
    // Containers until two ids share their first digit (16 digits: at most 17 containers).
    const ids = [id];
    let shared: string | undefined;
    for (let i = 0; !shared && i < 17; i++) {
      const c = ok(await e.tsrun(['create', '--name', `pfx-${i}`, 'busybox', 'true'])).stdout.trim();
      shared = ids.find((x) => x[0] === c[0])?.[0];
      ids.push(c);
    }
    expect(shared).toBeDefined();
    /** The shortest prefix of `x` that no other id starts with. */
    const unique = (x: string) => {
      for (let n = 1; ; n++) if (!ids.some((o) => o !== x && o.startsWith(x.slice(0, n)))) return x.slice(0, n);
    };
    const p = unique(id);
    expect(e.tsrunSync(['inspect', '-f', '{{.Name}}', p]).stdout).toBe('/pfx\n');
    expect(e.tsrunSync(['inspect', '-f', '{{.Id}}', '/pfx']).stdout).toBe(`${id}\n`);
    expect(e.tsrunSync(['logs', p]).stdout).toBe('hello from pfx\n');

    for (const verb of [['inspect'], ['logs'], ['rm']]) {
      const r = await e.tsrun([...verb, shared!]);
      expect(r.code, show(r)).not.toBe(0);
      expect(r.stderr, show(r)).toMatch(/ambiguous/);
      expect(r.stderr).not.toMatch(STACK);
    }
    expect(e.tsrunSync(['ps', '-a', '-q']).stdout.split('\n').filter(Boolean)).toHaveLength(ids.length); // nothing removed

    for (const verb of [['inspect'], ['logs'], ['rm']]) {
      const r = await e.tsrun([...verb, 'nosuchthing']);
      expect(r.code, show(r)).not.toBe(0);
      expect(r.stderr, show(r)).toMatch(/no such .*nosuchthing/i);
      expect(r.stderr).not.toMatch(STACK);
    }

    expect(ok(await e.tsrun(['rm', p])).stdout).toBe(`${p}\n`);
    expect(inspect(id)).toBeUndefined();
  });

  it('inspect -f reads State.ExitCode, State.Pid and json Config.Env', async () => {
    await runD(['--name', 'fmt-ex', '-e', 'FOO=bar baz', 'busybox', 'sh', '-c', 'exit 6']);
    await waitStatus('fmt-ex', 'exited');
    expect(e.tsrunSync(['inspect', '-f', '{{.State.ExitCode}}', 'fmt-ex']).stdout).toBe('6\n');
    const env = JSON.parse(e.tsrunSync(['inspect', '-f', '{{json .Config.Env}}', 'fmt-ex']).stdout) as string[];
    expect(env).toContain('FOO=bar baz');
    expect(env.some((v) => v.startsWith('PATH='))).toBe(true);

    await runD(['--name', 'fmt-up', 'busybox', 'sleep', '300']);
    const pid = Number(e.tsrunSync(['inspect', '-f', '{{.State.Pid}}', 'fmt-up']).stdout);
    expect(pid).toBeGreaterThan(0);
    expect(pid).toBe(inspect('fmt-up')!.State.Pid);
    expect(procAlive(pid)).toBe(true);
    // several at once: one line each, in order
    expect(e.tsrunSync(['inspect', '-f', '{{.Name}} {{.State.Status}}', 'fmt-up', 'fmt-ex']).stdout).toBe('/fmt-up running\n/fmt-ex exited\n');
  });

  it('inspect of an image name falls back to the image (also the short name run accepts)', async () => {
    const full = e.tsrunSync(['inspect', 'localhost/busybox']);
    expect(full.code, show(full)).toBe(0);
    const img = (JSON.parse(full.stdout) as { id?: string; Id?: string }[])[0]!;
    const imgId = img.Id ?? img.id;
    expect(imgId).toMatch(/^sha256:[0-9a-f]{64}$/);
    const typed = await e.tsrun(['inspect', '--type', 'container', 'localhost/busybox']);
    expect(typed.code, show(typed)).not.toBe(0);
    expect(typed.stderr).toMatch(/no such container/);
    // `run busybox` finds localhost/busybox; so must `inspect busybox` (docker: same lookup).
    const short = await e.tsrun(['inspect', 'busybox']);
    expect(short.code, show(short)).toBe(0);
    const s = (JSON.parse(short.stdout) as { id?: string; Id?: string }[])[0]!;
    expect(s.Id ?? s.id).toBe(imgId);
  });

  it('container prune removes stopped containers only; container ls and container inspect are aliases', async () => {
    ok(await e.tsrun(['create', '--name', 'pr-created', 'busybox', 'true']));
    await runD(['--name', 'pr-exited', 'busybox', 'true']);
    await runD(['--name', 'pr-up', 'busybox', 'sleep', '300']);
    await runD(['--name', 'pr-paused', 'busybox', 'sleep', '300']);
    ok(await e.tsrun(['pause', 'pr-paused']));
    await waitStatus('pr-exited', 'exited');
    const gone = [inspect('pr-created')!.Id, inspect('pr-exited')!.Id];

    const ls = ok(await e.tsrun(['container', 'ls']));
    expect(ls.stdout).toMatch(/^CONTAINER ID/);
    expect(ls.stdout).toContain('pr-up');
    expect(ls.stdout).not.toContain('pr-exited');
    expect(
      ok(await e.tsrun(['container', 'ls', '-a', '--format', '{{.Names}}']))
        .stdout.split('\n')
        .filter(Boolean)
        .sort(),
    ).toEqual(['pr-created', 'pr-exited', 'pr-paused', 'pr-up'].sort());
    expect(ok(await e.tsrun(['container', 'inspect', '-f', '{{.Name}} {{.State.Status}}', 'pr-paused'])).stdout).toBe('/pr-paused paused\n');

    const prune = ok(await e.tsrun(['container', 'prune', '-f']));
    expect(prune.stdout.split('\n').filter(Boolean).sort()).toEqual(gone.sort());
    expect(names(['-a']).sort()).toEqual(['pr-paused', 'pr-up']);
    expect(status('pr-up')).toBe('running');
    expect(status('pr-paused')).toBe('paused');
  });

  it('a SIGKILLed monitor: the container reads exited 255 with a "monitor lost" error, never running; rm -f leaves nothing', async () => {
    await runD(['--name', 'orphan', 'busybox', 'sleep', '300']);
    const before = inspect('orphan')!.State;
    expect(before).toMatchObject({ Status: 'running', MonitorAlive: true });
    process.kill(before.MonitorPid, 'SIGKILL');
    // The init has PDEATHSIG on its monitor: it dies too.
    expect(await until(() => !procAlive(before.Pid))).toBe(true);
    await waitStatus('orphan', 'exited');
    const st = inspect('orphan')!.State;
    expect(st).toMatchObject({ Status: 'exited', Running: false, Paused: false, ExitCode: 255, MonitorAlive: false });
    expect(st.Error).toMatch(/monitor/);
    expect(e.tsrunSync(['ps', '-a', '--format', '{{.Names}} {{.Status}}']).stdout).toMatch(/^orphan Exited \(255\) /m);
    expect(names()).not.toContain('orphan');
    expect(ok(await e.tsrun(['wait', 'orphan'])).stdout).toBe('255\n');
    const stop = ok(await e.tsrun(['stop', 'orphan']));
    expect(stop.stdout).toBe('orphan\n');

    ok(await e.tsrun(['rm', '-f', 'orphan']));
    expect(inspect('orphan')).toBeUndefined();
    expect(leftovers(e)).toEqual([]);
  });

  it('an init SIGKILLed from the host: exited 137, recorded by the monitor', async () => {
    await runD(['--name', 'shot', 'busybox', 'sleep', '300']);
    const before = inspect('shot')!.State;
    process.kill(before.Pid, 'SIGKILL');
    await waitStatus('shot', 'exited');
    const st = inspect('shot')!.State;
    expect(st).toMatchObject({ Status: 'exited', Running: false, ExitCode: 137, Error: '' });
    expect(Date.parse(st.FinishedAt)).toBeGreaterThanOrEqual(Date.parse(st.StartedAt));
    // The monitor exits once it has recorded the status.
    expect(await until(() => inspect('shot')!.State.MonitorAlive === false)).toBe(true);
    expect(e.tsrunSync(['ps', '-a', '--format', '{{.Names}} {{.Status}}']).stdout).toMatch(/^shot Exited \(137\) .* ago$/m);
  });

  it('two rm -f and a stop at once on one container: it is gone, the losers only say "no such container"', async () => {
    for (let round = 0; round < 5; round++) {
      const name = `race-${round}`;
      await runD(['--name', name, 'busybox', 'sleep', '300']);
      const results = await Promise.all([e.tsrun(['rm', '-f', name]), e.tsrun(['rm', '-f', name]), e.tsrun(['stop', name])]);
      const [rm1, rm2] = results;
      expect([rm1!.code, rm2!.code], results.map(show).join('\n')).toContain(0);
      for (const r of results) {
        if (r.code === 0) {
          expect(r.stdout, show(r)).toBe(`${name}\n`);
          expect(r.stderr, show(r)).toBe('');
        } else {
          expect(r.code, show(r)).toBe(1);
          for (const line of r.stderr.split('\n').filter((l) => l && !l.startsWith('hint: '))) expect(line, show(r)).toMatch(/no such container/);
        }
      }
      expect(inspect(name)).toBeUndefined();
      expect(e.tsrunSync(['ps', '-a', '-q']).stdout).toBe('');
      expect(leftovers(e)).toEqual([]);
    }
  });

  it('five concurrent run -d with distinct names all succeed', async () => {
    const want = ['par-1', 'par-2', 'par-3', 'par-4', 'par-5'];
    const results = await Promise.all(want.map((n) => e.tsrun(['run', '-d', '--name', n, 'busybox', 'sleep', '300'])));
    for (const r of results) {
      expect(r.code, show(r)).toBe(0);
      expect(r.stdout.trim()).toMatch(FULL_ID);
    }
    expect(new Set(results.map((r) => r.stdout)).size).toBe(5);
    expect(names().sort()).toEqual(want);
    for (const n of want) expect(status(n)).toBe('running');
  });

  it('run -d of containers that exit at once: every run succeeds, every --rm one is removed', async () => {
    // The init may be gone before the engine hands its pid to the monitor: the monitor must
    // still know it is detached (no EPIPE for `run -d`, and the exit command runs).
    for (let i = 0; i < 10; i++) await runD([...(i % 2 ? ['--rm'] : []), '--name', `instant-${i}`, 'busybox', 'true']);
    expect(await until(() => names(['-a']).length === 5, 15_000)).toBe(true);
    expect(names(['-a']).sort()).toEqual(['instant-0', 'instant-2', 'instant-4', 'instant-6', 'instant-8']);
  });

  it('run -d --rm: the monitor’s exit command removes the container when it exits on its own', async () => {
    const id = await runD(['--rm', '--name', 'auto', 'busybox', 'sh', '-c', 'sleep 0.3']);
    expect(await until(() => e.tsrunSync(['ps', '-a', '-q']).stdout === '', 15_000)).toBe(true);
    expect(inspect(id)).toBeUndefined();
    expect(await until(() => leftovers(e).length === 0, 5000)).toBe(true);
    expect(leftovers(e)).toEqual([]);
  });
});
