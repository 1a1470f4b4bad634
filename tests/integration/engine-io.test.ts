// The engine's I/O verbs as a docker user sees them: `logs` (streams, --tail, -t, --since,
// partial lines, -f, rotation), `attach`, `exec` (namespaces, cgroup, -u/-w/-e/-d, exit codes),
// `run -it`/`exec -it` through a real terminal (script(1)), `start -a`, and `run -d`'s output.
// Every wait is on observable state (the container's output, its processes, its exit), never a
// fixed sleep and never a retry.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Engine, engineSkipReason, makeEngine, type Result, show, sleep, until } from './helpers/engine.js';

const hasScript = spawnSync('sh', ['-c', 'command -v script'], { stdio: 'ignore' }).status === 0;
const skip = engineSkipReason() ?? (hasScript ? null : '`script` is missing (apt-get install bsdutils)');
if (skip) console.warn(`[engine-io.test] SKIPPED: ${skip}`);

/** A Node stack trace or an uncaught error, wherever it went. */
const CRASH = /node:events|node:internal|Unhandled 'error'|^\s+at \S.*:\d+:\d+\)?$|^\w*Error: /m;
/** docker logs -t: RFC 3339 with nanoseconds, fixed width, UTC. */
const RFC3339NANO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$/;
const IMAGE_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** A terminal control sequence (ESC [ ... letter). */
const CSI = new RegExp(`${String.fromCharCode(27)}\\[[0-9;?]*[a-zA-Z]`, 'g');

const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/** Host pids whose argv is exactly `argv` and whose pid namespace is `pidNs` (readlink of ns/pid). */
function procsIn(pidNs: string, argv: string[]): number[] {
  const want = `${argv.join('\0')}\0`;
  const found: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/cmdline`, 'utf8') === want && readlinkSync(`/proc/${d}/ns/pid`) === pidNs) found.push(Number(d));
    } catch {
      /* exited meanwhile */
    }
  }
  return found;
}

/** The highest N of the "tickN" lines in `text` (0: none). */
const lastTick = (text: string) => Math.max(0, ...[...text.matchAll(/^tick(\d+)$/gm)].map((m) => Number(m[1])));
/** True when the tick lines of `text` are 'tick<a>', 'tick<a+1>', ... with nothing missing or repeated. */
function contiguousTicks(text: string): boolean {
  const n = [...text.matchAll(/^tick(\d+)$/gm)].map((m) => Number(m[1]));
  return n.length > 0 && n.every((v, i) => v === n[0]! + i);
}

describe.skipIf(!!skip)('tsrun logs, attach, exec, -it', () => {
  let e: Engine;
  /** Every process this file started in the background: killed (by pid) if a test left one. */
  const started: ChildProcess[] = [];

  beforeAll(() => {
    e = makeEngine('tsrun-engine-io');
  });
  afterAll(async () => {
    for (const p of started) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    if (!e) return;
    const problems = await e.teardown();
    expect(problems, problems.join('\n')).toEqual([]);
  });

  /** `tsrun ARGS` in the background, stdin /dev/null; its output so far at any time. */
  const bg = (args: string[]) => {
    const [cmd, ...rest] = e.argv(args);
    const p = spawn(cmd!, rest, { stdio: ['ignore', 'pipe', 'pipe'] });
    started.push(p);
    const r: Result = { code: -1, stdout: '', stderr: '' };
    p.stdout!.on('data', (d) => (r.stdout += d));
    p.stderr!.on('data', (d) => (r.stderr += d));
    const done = new Promise<Result>((res) => p.on('close', (code, sig) => res({ ...r, code: code ?? (sig ? -1 : -2) })));
    return { r, done, exited: () => p.exitCode !== null || p.signalCode !== null };
  };

  /** A host dir bind-mounted at /ctl: the test drives the container by creating files in it. */
  const ctlDir = () => mkdtempSync(path.join(e.tmp, 'ctl-'));

  const runD = async (args: string[]): Promise<string> => {
    const r = await e.tsrun(['run', '-d', ...args]);
    expect(r.code, show(r)).toBe(0);
    return r.stdout.trim();
  };
  const waitExit = async (name: string): Promise<number> => {
    const r = await e.tsrun(['wait', name]);
    expect(r.code, show(r)).toBe(0);
    return Number(r.stdout.trim());
  };
  const inspect = (name: string, tmpl: string) => e.tsrunSync(['inspect', '-f', tmpl, name]).stdout.trim();

  describe('logs', () => {
    // Two stdout lines and two stderr lines, a second's pause, three more stdout lines.
    const SCRIPT = 'echo line1; echo line2; echo warn1 >&2; echo warn2 >&2; sleep 1; echo line3; echo line4; echo line5';
    let before = 0;
    let after = 0;
    beforeAll(async () => {
      before = Date.now();
      await runD(['--name', 'logs-basic', 'busybox', 'sh', '-c', SCRIPT]);
      expect(await waitExit('logs-basic')).toBe(0);
      after = Date.now();
    });

    it('prints stdout lines on stdout and stderr lines on stderr, each in order', async () => {
      const r = await e.tsrun(['logs', 'logs-basic']);
      expect(r.code, show(r)).toBe(0);
      expect(r.stdout).toBe('line1\nline2\nline3\nline4\nline5\n');
      expect(r.stderr).toBe('warn1\nwarn2\n');
      // Both streams into one pipe (2>&1): what was written before the pause comes first.
      const merged = spawnSync('sh', ['-c', '"$@" 2>&1', 'sh', ...e.argv(['logs', 'logs-basic'])], { encoding: 'utf8' });
      const lines = merged.stdout.split('\n');
      expect(lines.slice(0, 4).sort(), merged.stdout).toEqual(['line1', 'line2', 'warn1', 'warn2']);
      expect(lines.slice(4), merged.stdout).toEqual(['line3', 'line4', 'line5', '']);
    });

    it('--tail N prints the last N lines only', async () => {
      const r = await e.tsrun(['logs', '--tail', '2', 'logs-basic']);
      expect(r.code, show(r)).toBe(0);
      expect(r.stdout).toBe('line4\nline5\n');
      expect(r.stderr).toBe('');
      const zero = await e.tsrun(['logs', '--tail', '0', 'logs-basic']);
      expect(zero.code, show(zero)).toBe(0);
      expect(zero.stdout + zero.stderr).toBe('');
    });

    it('-t prefixes each line with its RFC 3339 time', async () => {
      const r = await e.tsrun(['logs', '-t', 'logs-basic']);
      expect(r.code, show(r)).toBe(0);
      const parse = (text: string) =>
        text
          .split('\n')
          .filter(Boolean)
          .map((l) => {
            const [ts, msg, ...more] = l.split(' ');
            expect(more, l).toEqual([]);
            expect(ts, l).toMatch(RFC3339NANO);
            const t = Date.parse(ts!);
            expect(t, `${l}: the time the line was written`).toBeGreaterThanOrEqual(before - 1000);
            expect(t, `${l}: the time the line was written`).toBeLessThanOrEqual(after + 1000);
            return { ts: ts!, t, msg: msg! };
          });
      const out = parse(r.stdout);
      const err = parse(r.stderr);
      expect(out.map((x) => x.msg)).toEqual(['line1', 'line2', 'line3', 'line4', 'line5']);
      expect(err.map((x) => x.msg)).toEqual(['warn1', 'warn2']);
      for (let i = 1; i < out.length; i++) expect(out[i]!.ts >= out[i - 1]!.ts, r.stdout).toBe(true);
      // The container slept a second between line2 and line3.
      expect(out[2]!.t - out[1]!.t, r.stdout).toBeGreaterThanOrEqual(900);
    });

    it('--since TIME leaves out the lines written before TIME', async () => {
      const t = await e.tsrun(['logs', '-t', 'logs-basic']);
      const time = (text: string, msg: string) =>
        Date.parse(
          text
            .split('\n')
            .find((l) => l.endsWith(` ${msg}`))!
            .split(' ')[0]!,
        );
      const firstBatch = Math.max(time(t.stdout, 'line2'), time(t.stderr, 'warn2'));
      const since = new Date((firstBatch + time(t.stdout, 'line3')) / 2).toISOString();
      const r = await e.tsrun(['logs', '--since', since, 'logs-basic']);
      expect(r.code, `${show(r)}\n--- logs -t\n${t.stdout}${t.stderr}`).toBe(0);
      expect(r.stdout).toBe('line3\nline4\nline5\n');
      expect(r.stderr).toBe('');
      // A duration: everything of the last ten minutes.
      const all = await e.tsrun(['logs', '--since', '10m', 'logs-basic']);
      expect(all.stdout).toBe('line1\nline2\nline3\nline4\nline5\n');
    });

    it('prints a last line without a newline as it is, adding none', async () => {
      await runD(['--name', 'logs-partial', 'busybox', 'sh', '-c', 'echo first; printf abc']);
      expect(await waitExit('logs-partial')).toBe(0);
      const r = await e.tsrun(['logs', 'logs-partial']);
      expect(r.code, show(r)).toBe(0);
      expect(r.stdout).toBe('first\nabc');
      expect(r.stderr).toBe('');
    });

    it('ends quietly when its reader goes away (`logs C | head -n 1`), as docker does', async () => {
      // More than a pipe holds (64 KiB), so logs is still writing when head exits.
      await runD([
        '--name',
        'logs-many',
        'busybox',
        'sh',
        '-c',
        'i=0; while [ $i -lt 2000 ]; do i=$((i+1)); echo "line $i ....................................."; done',
      ]);
      expect(await waitExit('logs-many')).toBe(0);
      const r = spawnSync('sh', ['-c', `${e.argv(['logs', 'logs-many']).map(q).join(' ')} 2>"$1" | head -n 1`, 'sh', path.join(e.tmp, 'logs-head.err')], {
        encoding: 'utf8',
      });
      const err = readFileSync(path.join(e.tmp, 'logs-head.err'), 'utf8');
      expect(r.stdout).toBe('line 1 .....................................\n');
      expect(err, `tsrun logs stderr when its stdout reader exits:\n${err}`).not.toMatch(CRASH);
      expect(err).toBe('');
    });

    it('-f prints the lines written while it runs and exits 0 by itself when the container exits', async () => {
      const ctl = ctlDir();
      await runD([
        '--name',
        'logs-follow',
        '-v',
        `${ctl}:/ctl`,
        'busybox',
        'sh',
        '-c',
        'i=0; while [ ! -e /ctl/stop ]; do i=$((i+1)); echo tick$i; sleep 0.2; done; echo bye',
      ]);
      await until(() => e.tsrunSync(['logs', 'logs-follow']).stdout.includes('tick1\n'));
      const f = bg(['logs', '-f', 'logs-follow']);
      expect(await until(() => lastTick(f.r.stdout) > 0), show(f.r)).toBe(true);
      const seen = lastTick(f.r.stdout);
      // Two more ticks: written after logs -f was already printing.
      expect(await until(() => lastTick(f.r.stdout) >= seen + 2), show(f.r)).toBe(true);
      expect(f.exited(), `logs -f ended while the container runs\n${show(f.r)}`).toBe(false);
      writeFileSync(path.join(ctl, 'stop'), '');
      const r = await Promise.race([f.done, sleep(15_000).then(() => undefined)]);
      expect(r, `logs -f still running 15 s after the container was told to exit\n${show(f.r)}`).toBeDefined();
      expect(r!.code, show(r!)).toBe(0);
      expect(r!.stdout.startsWith('tick1\n'), r!.stdout).toBe(true);
      expect(r!.stdout.endsWith('\nbye\n'), r!.stdout).toBe(true);
      expect(contiguousTicks(r!.stdout), r!.stdout).toBe(true);
      expect(r!.stderr).toBe('');
      expect(await waitExit('logs-follow')).toBe(0);
    });

    it('--log-opt max-size=2k max-file=2: rotates, never grows the file past the limit, keeps two files, logs shows the newest lines', async () => {
      // ~20 KB in 400 lines of 49 bytes, in bursts of 20 lines so that the files can be watched growing.
      const id = await runD([
        '--log-opt',
        'max-size=2k',
        '--log-opt',
        'max-file=2',
        'busybox',
        'sh',
        '-c',
        'i=0; while [ $i -lt 400 ]; do i=$((i+1)); printf "line %04d ......................................\\n" $i; if [ $((i % 20)) -eq 0 ]; then sleep 0.05; fi; done',
      ]);
      const dir = path.join(e.root, 'containers', id);
      const log = path.join(dir, 'ctr.log');
      let maxSize = 0;
      let maxFiles = 0;
      const files = () => readdirSync(dir).filter((f) => f.startsWith('ctr.log'));
      const sample = () => {
        try {
          maxSize = Math.max(maxSize, statSync(log).size);
        } catch {
          /* between the rename and the new file */
        }
        maxFiles = Math.max(maxFiles, files().length);
      };
      const deadline = Date.now() + 30_000;
      while (!existsSync(path.join(dir, 'exit.json')) && Date.now() < deadline) {
        sample();
        await sleep(2);
      }
      sample();
      expect(await waitExit(id)).toBe(0);
      const text = readFileSync(log, 'utf8') + (existsSync(`${log}.1`) ? readFileSync(`${log}.1`, 'utf8') : '');
      const longest = Math.max(...text.split('\n').map((l) => l.length + 1));
      expect(files().sort()).toEqual(['ctr.log', 'ctr.log.1']);
      expect(maxFiles, 'log files at one time').toBeLessThanOrEqual(2);
      expect(maxSize, `largest ctr.log seen (limit 2048 + a line of ${longest})`).toBeLessThanOrEqual(2048 + longest);
      expect(statSync(`${log}.1`).size).toBeLessThanOrEqual(2048 + longest);
      const r = await e.tsrun(['logs', id]);
      expect(r.code, show(r)).toBe(0);
      const lines = r.stdout.split('\n').filter(Boolean);
      const nums = lines.map((l) => Number(/^line (\d{4}) \.+$/.exec(l)?.[1]));
      expect(nums.at(-1), r.stdout).toBe(400);
      expect(
        nums.every((n, i) => n === 400 - nums.length + 1 + i),
        r.stdout,
      ).toBe(true);
      // Both files: more lines than one file holds, the oldest from ctr.log.1.
      expect(lines[0]).toBe(readFileSync(`${log}.1`, 'utf8').split('\n')[0]!.split(' ').slice(3).join(' '));
      expect(lines.length).toBeLessThanOrEqual(Math.floor((2 * (2048 + longest)) / longest));
    });
  });

  describe('attach', () => {
    const TICKER = 'i=0; while [ ! -e /ctl/stop ]; do i=$((i+1)); echo tick$i; sleep 0.2; done; echo bye; exit 5';

    it('receives the new lines of a running container and exits with its exit code when it exits', async () => {
      const ctl = ctlDir();
      await runD(['--name', 'att-exit', '-v', `${ctl}:/ctl`, 'busybox', 'sh', '-c', TICKER]);
      await until(() => e.tsrunSync(['logs', 'att-exit']).stdout.includes('tick1\n'));
      const a = bg(['attach', 'att-exit']);
      expect(await until(() => lastTick(a.r.stdout) > 0), show(a.r)).toBe(true);
      const seen = lastTick(a.r.stdout);
      expect(await until(() => lastTick(a.r.stdout) >= seen + 2), show(a.r)).toBe(true);
      writeFileSync(path.join(ctl, 'stop'), '');
      const r = await Promise.race([a.done, sleep(15_000).then(() => undefined)]);
      expect(r, `attach still running 15 s after the container was told to exit\n${show(a.r)}`).toBeDefined();
      expect(r!.code, show(r!)).toBe(5);
      expect(r!.stdout.endsWith('\nbye\n'), r!.stdout).toBe(true);
      expect(contiguousTicks(r!.stdout), r!.stdout).toBe(true);
      expect(r!.stderr).toBe('');
      expect(inspect('att-exit', '{{.State.ExitCode}}')).toBe('5');
    });

    it('exits with the container’s code when it is stopped: its TERM handler’s, or 137 after the kill', async () => {
      await runD(['--name', 'att-trap', 'busybox', 'sh', '-c', 'trap "echo term; exit 3" TERM; i=0; while :; do i=$((i+1)); echo tick$i; sleep 0.2; done']);
      await runD(['--name', 'att-kill', 'busybox', 'sh', '-c', 'i=0; while :; do i=$((i+1)); echo tick$i; sleep 0.2; done']);
      for (const [name, stop, code, last] of [
        ['att-trap', ['stop', 'att-trap'], 3, /\nterm\n$/],
        ['att-kill', ['stop', '-t', '1', 'att-kill'], 137, /\ntick\d+\n$/],
      ] as const) {
        await until(() => e.tsrunSync(['logs', name]).stdout.includes('tick1\n'));
        const a = bg(['attach', name]);
        expect(await until(() => lastTick(a.r.stdout) > 0), show(a.r)).toBe(true);
        const s = await e.tsrun([...stop]);
        expect(s.code, show(s)).toBe(0);
        const r = await Promise.race([a.done, sleep(15_000).then(() => undefined)]);
        expect(r, `attach ${name} still running 15 s after stop returned\n${show(a.r)}`).toBeDefined();
        expect(r!.code, `${name}\n${show(r!)}`).toBe(code);
        expect(r!.stdout, name).toMatch(last);
        expect(inspect(name, '{{.State.ExitCode}}')).toBe(String(code));
      }
    });
  });

  describe('exec', () => {
    let id = '';
    let ctl = '';
    let initPid = 0;
    beforeAll(async () => {
      ctl = ctlDir();
      id = await runD(['--name', 'ex', '-v', `${ctl}:/ctl`, 'busybox', 'sleep', '1000']);
      initPid = Number(inspect('ex', '{{.State.Pid}}'));
      expect(initPid).toBeGreaterThan(1);
    });

    const exec = async (args: string[], code = 0, input?: string) => {
      const r = await e.tsrun(['exec', ...args], input === undefined ? {} : { input });
      expect(r.code, show(r)).toBe(code);
      return r;
    };

    it('runs in the container’s UTS namespace: hostname is the 12-character id, or --hostname', async () => {
      expect((await exec(['ex', 'hostname'])).stdout).toBe(`${id.slice(0, 12)}\n`);
      await runD(['--name', 'ex-host', '--hostname', 'myhost', 'busybox', 'sleep', '1000']);
      expect((await exec(['ex-host', 'hostname'])).stdout).toBe('myhost\n');
    });

    it('joins every namespace of the container’s init', async () => {
      const kinds = ['pid', 'mnt', 'net', 'uts', 'ipc', 'cgroup'];
      const r = await exec(['ex', 'sh', '-c', `for n in ${kinds.join(' ')}; do readlink /proc/self/ns/$n; done`]);
      expect(r.stdout).toBe(kinds.map((k) => `${readlinkSync(`/proc/${initPid}/ns/${k}`)}\n`).join(''));
      expect((await exec(['ex', 'readlink', '/proc/self/ns/pid'])).stdout).toBe(`${readlinkSync(`/proc/${initPid}/ns/pid`)}\n`);
      // The init is pid 1 in there.
      expect((await exec(['ex', 'cat', '/proc/1/cmdline'])).stdout).toBe('sleep\u00001000\u0000');
    });

    it('runs in the container’s cgroup', async () => {
      const inside = (await exec(['ex', 'cat', '/proc/self/cgroup'])).stdout;
      expect(inside).toBe((await exec(['ex', 'cat', '/proc/1/cgroup'])).stdout);
      // Seen from the host (no cgroup namespace in the way): the same cgroups as the init. The
      // exec'd process waits for a file the test creates once it has looked.
      const wait = 'while [ ! -e /ctl/cgroup-seen ]; do sleep 0.05; done';
      const fg = bg(['exec', 'ex', 'sh', '-c', wait]);
      try {
        const ns = readlinkSync(`/proc/${initPid}/ns/pid`);
        const pids = await until(() => {
          const p = procsIn(ns, ['sh', '-c', wait]);
          return p.length ? p : undefined;
        });
        expect(pids, `the exec'd process on the host\n${show(fg.r)}`).toHaveLength(1);
        expect(readFileSync(`/proc/${pids?.[0]}/cgroup`, 'utf8')).toBe(readFileSync(`/proc/${initPid}/cgroup`, 'utf8'));
      } finally {
        writeFileSync(path.join(ctl, 'cgroup-seen'), '');
      }
      const r = await fg.done;
      expect(r.code, show(r)).toBe(0);
    });

    it('-u uid:gid and -u NAME (from the image’s /etc/passwd and /etc/group)', async () => {
      expect((await exec(['-u', '1000:1000', 'ex', 'id'])).stdout).toMatch(/^uid=1000 gid=1000(?: |\n)/);
      expect((await exec(['-u', 'nobody', 'ex', 'id'])).stdout).toMatch(/^uid=65534\(nobody\) gid=65534\(nogroup\)(?: |\n)/);
      expect((await exec(['ex', 'id'])).stdout).toMatch(/^uid=0\(root\) gid=0\(root\)/);
    });

    it('-w sets the working directory, -e adds to the image’s environment', async () => {
      expect((await exec(['-w', '/tmp', 'ex', 'pwd'])).stdout).toBe('/tmp\n');
      expect((await exec(['ex', 'pwd'])).stdout).toBe('/\n');
      const env = (await exec(['-e', 'FOO=bar', 'ex', 'env'])).stdout.split('\n');
      expect(env).toContain('FOO=bar');
      expect(env).toContain(IMAGE_PATH);
      expect((await exec(['ex', 'env'])).stdout.split('\n')).not.toContain('FOO=bar');
    });

    it('-d returns at once, leaving the caller’s stdout and stderr alone, while the process goes on running', async () => {
      // The process waits for a file the test creates: exec -d must be done before that. Like
      // docker, it must not hand our stdout/stderr to the process either: `id=$(tsrun exec -d C
      // daemon)` would wait for the daemon to exit.
      const script = 'while [ ! -e /ctl/go ]; do sleep 0.05; done; echo ran > /tmp/exec-d-marker';
      const [cmd, ...rest] = e.argv(['exec', '-d', 'ex', 'sh', '-c', script]);
      const p = spawn(cmd!, rest, { stdio: ['ignore', 'pipe', 'pipe'] });
      started.push(p);
      let output = '';
      let open = 2;
      for (const s of [p.stdout!, p.stderr!]) {
        s.on('data', (d) => (output += d));
        s.on('close', () => open--);
      }
      try {
        const code = await new Promise<number | null>((res) => p.on('exit', (c) => res(c)));
        expect(code, output).toBe(0);
        const ns = readlinkSync(`/proc/${initPid}/ns/pid`);
        const waiting = await until(() => procsIn(ns, ['sh', '-c', script]).length === 1);
        expect(waiting, 'the detached process is running').toBe(true);
        const released = await until(() => open === 0, 5000);
        expect(released, 'exec -d exited but its stdout/stderr stay open: the detached process holds them').toBe(true);
        expect(output).toBe('');
      } finally {
        writeFileSync(path.join(ctl, 'go'), '');
      }
      const ran = await until(async () => (await e.tsrun(['exec', 'ex', 'cat', '/tmp/exec-d-marker'])).stdout === 'ran\n');
      expect(ran, 'the detached process wrote its file').toBe(true);
    });

    it('passes the exit code through; 127 for a missing command', async () => {
      await exec(['ex', 'sh', '-c', 'exit 4'], 4);
      const nf = await exec(['ex', 'no-such-cmd'], 127);
      expect(nf.stderr).toMatch(/no-such-cmd/);
      expect(nf.stderr).not.toMatch(CRASH);
    });

    it('reads stdin with -i only, as docker does', async () => {
      expect((await exec(['-i', 'ex', 'cat'], 0, 'typed\n')).stdout).toBe('typed\n');
      // Without -i the process's stdin is not ours (docker: /dev/null): a loop reading a file
      // and running `exec` for each line must not lose the rest of the file to the exec.
      const r = await exec(['ex', 'cat'], 0, 'typed\n');
      expect(r.stdout, 'exec without -i read the caller’s stdin').toBe('');
    });

    it('fails with a clear message in a container that is not running', async () => {
      await runD(['--name', 'ex-done', 'busybox', 'true']);
      expect(await waitExit('ex-done')).toBe(0);
      const r = await e.tsrun(['exec', 'ex-done', 'echo', 'hi']);
      expect(r.code, show(r)).not.toBe(0);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/ex-done.*not running|not running.*ex-done/);
      expect(r.stderr).not.toMatch(CRASH);
      const c = await e.tsrun(['create', '--name', 'ex-created', 'busybox', 'true']);
      expect(c.code, show(c)).toBe(0);
      const r2 = await e.tsrun(['exec', 'ex-created', 'echo', 'hi']);
      expect(r2.code, show(r2)).not.toBe(0);
      expect(r2.stderr).toMatch(/not running/);
    });
  });

  describe('a terminal: run -it and exec -it (script(1))', () => {
    /** `script -qfec CMD` with our writes as the typed input; output with \r dropped. */
    const terminal = (cmd: string) => {
      const p = spawn('script', ['-qfec', cmd, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
      started.push(p);
      let raw = '';
      p.stdout!.on('data', (d) => (raw += d));
      p.stderr!.on('data', (d) => (raw += d));
      // Without carriage returns and terminal control sequences (ash asks for the cursor position: ESC [6n).
      const clean = () => raw.replaceAll('\r', '').replace(CSI, '');
      const status = new Promise<number | null>((res) => p.on('close', (code) => res(code)));
      const t = {
        get text() {
          return clean();
        },
        type: (s: string) => p.stdin!.write(s),
        /** Wait until `re` matches the output after offset `from`: the match and the offset of its end. */
        expect: async (re: RegExp, from: number, what: string): Promise<{ m: RegExpExecArray; at: number }> => {
          const m = await until(() => re.exec(clean().slice(from)), 20_000);
          if (!m) throw new Error(`no ${what} (${re}) within 20 s; terminal output:\n${JSON.stringify(clean())}`);
          return { m, at: from + m.index + m[0].length };
        },
        /** The exit status of script (the command's), or undefined after 20 s. */
        status: async () => {
          const s = await Promise.race([status, sleep(20_000).then(() => 'timeout' as const)]);
          if (s === 'timeout') throw new Error(`still running 20 s later; terminal output:\n${JSON.stringify(clean())}`);
          p.stdin!.end();
          return s;
        },
      };
      return t;
    };

    /** Size, tty, ^C during `sleep 30` (the shell survives), `exit 3`: in the shell of `cmd`, whose processes live in pid ns `pidNs()`. */
    const session = async (cmd: string, pidNs: () => string) => {
      const t = terminal(`stty cols 111 rows 33; exec ${cmd}`);
      let { at } = await t.expect(/# $/, 0, 'first prompt');
      t.type('echo "size:$(stty size)"\r');
      const size = await t.expect(/^size:(.*)\n/m, at, 'stty size output');
      expect(size.m[1], 'stty size inside (rows cols)').toBe('33 111');
      t.type('echo "tty:$(tty)"\r');
      const tty = await t.expect(/^tty:(.*)\n/m, size.at, 'tty output');
      expect(tty.m[1], 'tty inside').toMatch(/^\/dev\/pts\/\d+$/);
      at = tty.at;
      const ns = pidNs();
      t.type('sleep 30; echo "not-interrupted:$((40+2))"\r');
      const running = await until(() => procsIn(ns, ['sleep', '30']).length === 1);
      expect(running, `sleep 30 never ran in the container; terminal output:\n${JSON.stringify(t.text)}`).toBe(true);
      t.type('\x03');
      const gone = await until(() => procsIn(ns, ['sleep', '30']).length === 0);
      expect(gone, `^C did not interrupt sleep 30; terminal output:\n${JSON.stringify(t.text)}`).toBe(true);
      at = (await t.expect(/\^C\n(?:.*\n)*?.*# $/, at, 'a prompt after ^C')).at;
      t.type('echo "alive:$((1+1))"\r');
      await t.expect(/alive:2\n/, at, 'the shell still running commands after ^C');
      expect(t.text).not.toMatch(/not-interrupted:42/);
      t.type('exit 3\r');
      const code = await t.status();
      expect(code, `exit status; terminal output:\n${JSON.stringify(t.text)}`).toBe(3);
      expect(t.text).not.toMatch(CRASH);
      return t;
    };

    const cli = (args: string[]) => e.argv(args).map(q).join(' ');

    it('run --rm -it busybox sh: the terminal’s size, a /dev/pts tty, ^C interrupts the foreground command only, exit 3 is the status', async () => {
      const nsOf = () => readlinkSync(`/proc/${inspect('tty-run', '{{.State.Pid}}')}/ns/pid`);
      await session(cli(['run', '--rm', '-it', '--name', 'tty-run', 'busybox', 'sh']), nsOf);
      expect(e.tsrunSync(['ps', '-a', '--format', '{{.Names}}']).stdout.split('\n')).not.toContain('tty-run');
    });

    it('exec -it into a running container: the same', async () => {
      await runD(['--name', 'tty-exec', 'busybox', 'sleep', '1000']);
      const ns = readlinkSync(`/proc/${inspect('tty-exec', '{{.State.Pid}}')}/ns/pid`);
      await session(cli(['exec', '-it', 'tty-exec', 'sh']), () => ns);
      expect(inspect('tty-exec', '{{.State.Status}}')).toBe('running');
    });
  });

  describe('start -a, run -d', () => {
    it('start -a prints a created container’s output on the right streams and exits with its code', async () => {
      const c = await e.tsrun(['create', '--name', 'sa', 'busybox', 'sh', '-c', 'echo out1; echo err1 >&2; echo out2; exit 6']);
      expect(c.code, show(c)).toBe(0);
      const r = await e.tsrun(['start', '-a', 'sa']);
      expect(r.code, show(r)).toBe(6);
      expect(r.stdout).toBe('out1\nout2\n');
      expect(r.stderr).toBe('err1\n');
      expect(inspect('sa', '{{.State.Status}} {{.State.ExitCode}}')).toBe('exited 6');
    });

    it('run -d prints the 64-hex id on stdout and nothing on stderr', async () => {
      const r = await e.tsrun(['run', '-d', '--name', 'rund', 'busybox', 'sleep', '1000']);
      expect(r.code, show(r)).toBe(0);
      expect(r.stdout).toMatch(/^[0-9a-f]{64}\n$/);
      expect(r.stderr).toBe('');
      expect(inspect('rund', '{{.Id}}')).toBe(r.stdout.trim());
      expect(inspect('rund', '{{.State.Status}}')).toBe('running');
    });
  });
});
