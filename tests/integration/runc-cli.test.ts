// runc's command line where people (not Podman or containerd) use it: `update`'s limit flags,
// `events --interval` with a Go duration, `ps` passing its arguments to ps(1), exec's exit
// status for an unknown id, the hint inside the --log message, and no Node stack trace ever.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertSharesToWeight } from '../../src/cgroups/controllers/cpu.js';
import {
  buildBaseBundle,
  cleanupAll,
  makeBundle,
  oci,
  ociSkipReason,
  removeScratch,
  runProgram,
  show,
  tsrunOci,
  v2Mount,
  type BaseBundle,
} from './helpers/bundle.js';

const skip = ociSkipReason();
if (skip) console.log(`runc-cli: skipped: ${skip}`);

const RUNC = ['/usr/sbin/runc', '/usr/bin/runc'].find((p) => existsSync(p));
const MiB = 1024 * 1024;

/** Controllers the v2 hierarchy offers (a hybrid host has few or none). */
function v2Controllers(): Set<string> {
  const m = v2Mount();
  if (!m) return new Set();
  try {
    return new Set(readFileSync(join(m, 'cgroup.controllers'), 'utf8').trim().split(/\s+/).filter(Boolean));
  } catch {
    return new Set();
  }
}

/** The container's cgroup v2 directory, from /proc/PID/cgroup's "0::" line. */
function cgroupDirOf(pid: number): string {
  const line = readFileSync(`/proc/${pid}/cgroup`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('0::'));
  return join(v2Mount()!, line!.slice(3));
}

const STACK = /^\s+at .+[:(]/m;

describe.skipIf(!!skip)('tsrun-oci: runc CLI details (update flags, events, ps, exec, --log hints, no stacks)', () => {
  let base: BaseBundle;
  let root: string;
  const ids: string[] = [];
  const id = (n: string) => {
    const v = `rcli-${process.pid}-${n}`;
    ids.push(v);
    return v;
  };
  /** A running container (sleep loop), its id and init pid. */
  let c = '';
  let pid = 0;

  beforeAll(async () => {
    base = buildBaseBundle('tsrun-rcli');
    root = mkdtempSync(join(tmpdir(), 'tsrun-rcli-root-'));
    const b = makeBundle(base, (s) => (s.process.args = ['/bin/sh', '-c', 'trap "exit 0" TERM; while :; do sleep 0.1; done']));
    c = id('run');
    const pidFile = join(base.tmp, 'run.pid');
    const r = await oci(root, ['create', '--bundle', b, '--pid-file', pidFile, c]);
    if (r.code !== 0) throw new Error(show(r));
    pid = Number(readFileSync(pidFile, 'utf8'));
    const s = await oci(root, ['start', c]);
    if (s.code !== 0) throw new Error(show(s));
  });

  afterAll(async () => {
    const left = root ? await cleanupAll(root, ids, base?.tmp ?? '/nonexistent') : [];
    if (root) rmSync(root, { recursive: true, force: true });
    if (base) removeScratch(base.tmp);
    expect(left).toEqual([]);
  });

  describe('update takes runc’s limit flags', () => {
    const have = v2Controllers();
    // flag args, the controller, the fields named in the refusal, and the file + value when it applies.
    const cases: Array<{ args: string[]; ctrl: string; fields: string; file: string; value: string }> = [
      { args: ['--memory', '64m'], ctrl: 'memory', fields: 'memory.limit', file: 'memory.max', value: String(64 * MiB) },
      { args: ['--memory-reservation', '32m'], ctrl: 'memory', fields: 'memory.reservation', file: 'memory.low', value: String(32 * MiB) },
      { args: ['--memory', '1g', '--memory-swap', '2g'], ctrl: 'memory', fields: 'memory.limit, memory.swap', file: 'memory.max', value: String(1024 * MiB) },
      { args: ['--cpu-quota', '50000', '--cpu-period', '100000'], ctrl: 'cpu', fields: 'cpu.quota, cpu.period', file: 'cpu.max', value: '50000 100000' },
      { args: ['--cpu-share', '512'], ctrl: 'cpu', fields: 'cpu.shares', file: 'cpu.weight', value: String(convertSharesToWeight(512)) },
      { args: ['--cpu-shares', '2048'], ctrl: 'cpu', fields: 'cpu.shares', file: 'cpu.weight', value: String(convertSharesToWeight(2048)) },
      { args: ['--cpuset-cpus', '0'], ctrl: 'cpuset', fields: 'cpu.cpus', file: 'cpuset.cpus', value: '0' },
      { args: ['--cpuset-mems', '0'], ctrl: 'cpuset', fields: 'cpu.mems', file: 'cpuset.mems', value: '0' },
      { args: ['--pids-limit', '10'], ctrl: 'pids', fields: 'pids.limit', file: 'pids.max', value: '10' },
      { args: ['--blkio-weight', '500'], ctrl: 'io', fields: 'blockIO', file: '', value: '' },
    ];
    for (const t of cases) {
      it(`${t.args.join(' ')}: applied when cgroup v2 has ${t.ctrl}, else refused naming it`, async () => {
        const r = await oci(root, ['update', ...t.args, c]);
        expect(r.stderr, show(r)).not.toMatch(/unknown option/);
        if (have.has(t.ctrl)) {
          expect(r.code, show(r)).toBe(0);
          if (t.file) expect(readFileSync(join(cgroupDirOf(pid), t.file), 'utf8').trim()).toBe(t.value);
        } else {
          expect(r.code, show(r)).toBe(1);
          expect(r.stderr).toContain(`cannot apply linux.resources (${t.fields}): cgroup v2 controller(s) ${t.ctrl} not available`);
          expect(r.stderr).toContain('hint: ');
        }
      });
    }

    it('"-1" (no limit) needs no controller: --memory -1, --memory-swap -1, --cpu-quota -1, --pids-limit -1', async () => {
      for (const args of [
        ['--memory', '-1'],
        ['--memory', '-1', '--memory-swap', '-1'],
        ['--cpu-quota', '-1'],
        ['--pids-limit', '-1'],
      ]) {
        const r = await oci(root, ['update', ...args, c]);
        expect(r.code, show(r)).toBe(0);
        expect(r.stderr, show(r)).toBe('');
      }
    });

    it('refuses bad values naming the flag, as runc does', async () => {
      const bad: Array<[string[], string]> = [
        [['--memory', '64x'], "invalid value for memory: invalid size: '64x'"],
        [['--memory-swap', '-2'], "invalid value for memory-swap: invalid size: '-2'"],
        [['--pids-limit', 'abc'], 'invalid value for pids-limit'],
        [['--cpu-period', '-5'], 'invalid value for cpu-period'],
        [['--cpu-quota', 'abc'], 'invalid value for cpu-quota'],
        [['--blkio-weight', '5'], 'invalid value for blkio-weight'],
      ];
      for (const [args, msg] of bad) {
        const r = await oci(root, ['update', ...args, c]);
        expect(r.code, show(r)).toBe(1);
        expect(r.stderr, show(r)).toContain(msg);
      }
    });

    it('--resources wins over the flags (runc ignores them then)', async () => {
      const f = join(base.tmp, 'res.json');
      writeFileSync(f, JSON.stringify({ pids: { limit: -1 } }));
      const r = await oci(root, ['update', '--resources', f, '--memory', '64m', c]);
      expect(r.code, show(r)).toBe(0);
      expect(r.stderr).toContain('ignored');
    });
  });

  describe('events --interval takes a Go duration', () => {
    it('prints a stats line per interval with 1s and 500ms', async () => {
      for (const [interval, min] of [
        ['1s', 2],
        ['500ms', 3],
      ] as const) {
        const r = await oci(root, ['events', '--interval', interval, c], { timeoutMs: 3500 });
        expect(r.stderr, show(r)).toBe('');
        const lines = r.stdout.trim().split('\n').filter(Boolean);
        expect(lines.length, show(r)).toBeGreaterThanOrEqual(min);
        expect(JSON.parse(lines[0]!)).toMatchObject({ type: 'stats', id: c });
      }
    });

    it('refuses 0, negative and malformed intervals', async () => {
      for (const [v, msg] of [
        ['0s', 'greater than 0'],
        ['-1s', 'greater than 0'],
        ['1x', 'invalid duration "1x"'],
      ] as const) {
        const r = await oci(root, ['events', '--interval', v, c]);
        expect(r.code, show(r)).toBe(1);
        expect(r.stderr).toContain(msg);
      }
    });
  });

  describe('ps passes its arguments to ps(1) and keeps the container’s lines', () => {
    const header = (args: string[]) => spawnSync('ps', args, { encoding: 'utf8' }).stdout.split('\n')[0];

    it('default -ef: ps’s header, then the container’s processes only', async () => {
      for (const args of [[], ['-ef']]) {
        const r = await oci(root, ['ps', c, ...args]);
        expect(r.code, show(r)).toBe(0);
        const lines = r.stdout.trimEnd().split('\n');
        expect(lines[0]).toBe(header(['-ef']));
        const pids = lines.slice(1).map((l) => Number(l.trim().split(/\s+/)[1]));
        expect(pids).toContain(pid);
        // Only the container's processes: its shell loop and the `sleep 0.1` it runs (which
        // come and go, so they are recognised by their command, not by a second look; one that
        // has just exited and is not yet reaped shows as `[sleep] <defunct>`).
        for (const l of lines.slice(1)) expect(l, show(r)).toMatch(/ (\/bin\/sh -c trap .*|sleep 0\.1|\[sleep\] <defunct>)$/);
      }
    });

    it('ps ID -- -o pid,comm and ps ID -o pid,comm', async () => {
      for (const args of [
        ['--', '-o', 'pid,comm'],
        ['-o', 'pid,comm'],
      ]) {
        const r = await oci(root, ['ps', c, ...args]);
        expect(r.code, show(r)).toBe(0);
        const lines = r.stdout.trimEnd().split('\n');
        expect(lines[0]!.trim().split(/\s+/)).toEqual(['PID', 'COMMAND']);
        expect(
          lines.slice(1).some((l) => new RegExp(`^\\s*${pid}\\s+sh$`).test(l)),
          show(r),
        ).toBe(true);
      }
    });

    it("output without a PID column is refused with runc's message; --format json prints the pids", async () => {
      const r = await oci(root, ['ps', c, '-o', 'comm']);
      expect(r.code, show(r)).toBe(1);
      expect(r.stderr).toContain("couldn't find PID field in ps output");
      const bad = await oci(root, ['ps', c, '--no-such-ps-option']);
      expect(bad.code, show(bad)).toBe(1);
      expect(bad.stderr).toMatch(/^ps --no-such-ps-option: exit status 1: /);
      for (const args of [
        ['--format', 'json', c],
        ['-f', 'json', c],
      ]) {
        const j = await oci(root, ['ps', ...args]);
        expect(j.code, show(j)).toBe(0);
        expect(JSON.parse(j.stdout)).toContain(pid);
      }
    });

    it('same shape as runc ps when runc is installed', async () => {
      if (!RUNC) return;
      const r = await oci(root, ['ps', c, '-o', 'pid,comm']);
      const lines = r.stdout.trimEnd().split('\n');
      // runc's table is ps's header and ps's own lines, unchanged.
      const own = spawnSync('ps', ['-o', 'pid,comm'], { encoding: 'utf8' }).stdout.split('\n');
      expect(lines[0]).toBe(own[0]);
      expect(lines.slice(1).every((l) => /^\s*\d+ \S/.test(l))).toBe(true);
    });
  });

  it('exec of an unknown id: "exec failed: container does not exist", with runc’s exit status', async () => {
    const r = await oci(root, ['exec', 'no-such-container', 'true']);
    expect(r.stderr.trim()).toBe('exec failed: container does not exist');
    let want = 255;
    if (RUNC) {
      const runcRoot = mkdtempSync(join(tmpdir(), 'tsrun-rcli-runc-'));
      try {
        const rr = spawnSync(RUNC, ['--root', runcRoot, 'exec', 'no-such-container', 'true'], { encoding: 'utf8' });
        expect(rr.stderr).toContain('exec failed: container does not exist');
        want = rr.status!;
      } finally {
        rmSync(runcRoot, { recursive: true, force: true });
      }
    }
    expect(r.code, show(r)).toBe(want);
  });

  describe('--log: the hint is in the message clients read', () => {
    const networkBundle = () => makeBundle(base, (s) => (s.linux.resources = { ...s.linux.resources, network: { classID: 1 } }));
    const HINT = 'remove linux.resources.network';

    it('json: the last line’s msg carries the hint; the terminal gets it too', async () => {
      const log = join(base.tmp, 'hint.json');
      const r = await oci(root, ['--log', log, '--log-format', 'json', 'create', '--bundle', networkBundle(), id('hint')]);
      expect(r.code, show(r)).toBe(1);
      const lines = readFileSync(log, 'utf8').trim().split('\n');
      const last = JSON.parse(lines[lines.length - 1]!);
      expect(last.level).toBe('error');
      expect(last.msg).toMatch(/^tsrun-oci create failed: cannot apply linux\.resources\.network: .* \(hint: remove linux\.resources\.network/);
      expect(r.stderr).toContain(HINT);
    });

    it('text: the msg carries the hint; without --log the hint is a line of its own', async () => {
      const log = join(base.tmp, 'hint.txt');
      const r = await oci(root, ['--log', log, 'create', '--bundle', networkBundle(), id('hint-text')]);
      expect(r.code, show(r)).toBe(1);
      expect(readFileSync(log, 'utf8')).toMatch(/level=error msg=".*\(hint: remove linux\.resources\.network/);
      const plain = await oci(root, ['create', '--bundle', networkBundle(), id('hint-plain')]);
      expect(plain.code, show(plain)).toBe(1);
      expect(plain.stderr).toMatch(/^tsrun-oci create failed: cannot apply linux\.resources\.network: [^\n]*\nhint: remove linux\.resources\.network/);
    });
  });

  describe('no Node stack trace reaches a user', () => {
    it('an unexpected error of a verb is one line saying what failed', async () => {
      const r = await oci(root, ['spec', '--bundle', join(base.tmp, 'no', 'such', 'dir')]);
      expect(r.code, show(r)).toBe(1);
      expect(r.stderr).not.toMatch(STACK);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr.trim()).toMatch(/^tsrun-oci: spec failed: ENOENT: no such file or directory, open '.*config\.json'$/);
    });

    it('a reader that went away (EPIPE on stdout) is not an error', () => {
      // The reader closes its end at once, long before tsrun-oci (tens of ms to start) writes.
      const r = spawnSync('bash', ['-c', '"$0" --root "$1" list | (exec 0<&-; sleep 0.5); exit "${PIPESTATUS[0]}"', tsrunOci, root], { encoding: 'utf8' });
      expect(r.stderr, r.stderr).not.toMatch(STACK);
      expect(r.stderr).not.toContain('EPIPE');
      expect(r.status, r.stderr).toBe(0);
    });

    it('events stops when its reader goes away (`events | head -1`)', () => {
      const t0 = Date.now();
      const r = spawnSync('bash', ['-c', '"$0" --root "$1" events --interval 100ms "$2" | head -1; exit "${PIPESTATUS[0]}"', tsrunOci, root, c], {
        encoding: 'utf8',
        timeout: 15_000,
      });
      expect(r.signal, 'events kept running after its reader left').toBeNull();
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).not.toMatch(STACK);
      expect(JSON.parse(r.stdout)).toMatchObject({ type: 'stats', id: c });
      expect(Date.now() - t0).toBeLessThan(10_000);
    });

    it('uncaught exceptions and unhandled rejections become one line and exit 1', async () => {
      const pre = join(base.tmp, 'boom.cjs');
      writeFileSync(pre, 'setTimeout(() => { throw new Error("boom from a stream"); }, 300);\n');
      const rej = join(base.tmp, 'reject.cjs');
      writeFileSync(rej, 'setTimeout(() => { Promise.reject(new Error("rejected late")); }, 300);\n');
      for (const [file, msg] of [
        [pre, 'boom from a stream'],
        [rej, 'rejected late'],
      ] as const) {
        const log = join(base.tmp, `fatal-${msg.replace(/\s/g, '-')}.json`);
        const r = await runProgram(
          'env',
          [`NODE_OPTIONS=--require ${file}`, tsrunOci, '--root', root, '--log', log, '--log-format', 'json', 'events', '--interval', '1s', c],
          {
            timeoutMs: 10_000,
          },
        );
        expect(r.code, show(r)).toBe(1);
        expect(r.stderr).not.toMatch(STACK);
        expect(r.stderr.trim()).toBe(`tsrun-oci: events failed: ${msg}`);
        expect(JSON.parse(readFileSync(log, 'utf8').trim().split('\n').pop()!).msg).toBe(`tsrun-oci: events failed: ${msg}`);
      }
    });
  });
});
