// `tsrun run IMAGE` security defaults, seen from inside the container (/proc/self/status,
// mountinfo, what a syscall answers) and from outside (/proc/<pid>/status of the container's
// init on the host): docker's capabilities, the default seccomp profile and its
// capability-conditional part, no_new_privs, masked and read-only paths, rlimits, devices and
// the device cgroup, the fresh /dev, network modes, and on a cgroup v1 hybrid host the refusal
// of limits whose controller is not in cgroup v2 (and `tsrun info` saying so in advance).
import { existsSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CAPABILITIES, capMask, readLastCap } from '../../src/linux/capabilities.js';
import { type Engine, engineSkipReason, leftovers, makeEngine, type Result, show } from './helpers/engine.js';
import { DOCKER_CAPS } from '../helpers/docker-caps.js';

const skip = engineSkipReason();
if (skip) console.warn(`[engine-security.test] SKIPPED: ${skip}`);

const CAP_SYS_ADMIN_BIT = 1n << 21n;

const hex = (m: bigint) => m.toString(16).padStart(16, '0');

/** `Key:\tvalue` lines of a /proc/PID/status text. */
function statusFields(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of text.split('\n')) {
    const i = l.indexOf(':');
    if (i > 0) out[l.slice(0, i)] = l.slice(i + 1).trim();
  }
  return out;
}

/** Interface names of a /proc/net/dev text. */
function netDevNames(text: string): string[] {
  return text
    .split('\n')
    .slice(2)
    .map((l) => l.split(':')[0]!.trim())
    .filter(Boolean)
    .sort();
}

/** The mountinfo line whose mount point is `mp` (the last one: what is visible). */
function mountLine(mountinfo: string, mp: string): string | undefined {
  return mountinfo
    .split('\n')
    .filter((l) => l.split(' ')[4] === mp)
    .at(-1);
}
const mountRo = (line: string | undefined) => (line ?? '').split(' ')[5]!.split(',').includes('ro');

/** Pure cgroup v2 with the memory controller: the refusal checks do not apply. */
const pureV2 = (() => {
  try {
    return readFileSync('/sys/fs/cgroup/cgroup.controllers', 'utf8').split(/\s+/).includes('memory');
  } catch {
    return false;
  }
})();

const lastCap = readLastCap();
const allKnown = (1n << BigInt(lastCap + 1)) - 1n;
/** What this process may hand out: its bounding set (the runner may lack some caps, e.g. CAP_SYS_RESOURCE). */
const ownBounding = BigInt(`0x${statusFields(readFileSync('/proc/self/status', 'utf8'))['CapBnd'] ?? '0'}`) & allKnown;
/** Known caps the runner itself does not have (their numbers). */
const missingCaps = [...Array(lastCap + 1).keys()].filter((n) => !(ownBounding & (1n << BigInt(n))));

describe.skipIf(!!skip)('engine security (run IMAGE on this host)', () => {
  let e: Engine;
  const dockerMask = capMask(DOCKER_CAPS, lastCap).mask;

  /** `run --rm FLAGS busybox sh -c SCRIPT` */
  const sh = (flags: string[], script: string, timeoutMs = 60_000): Promise<Result> =>
    e.tsrun(['run', '--rm', ...flags, 'busybox', 'sh', '-c', script], { timeoutMs });
  const status = async (flags: string[]) => {
    const r = await sh(flags, 'cat /proc/self/status');
    expect(r.code, show(r)).toBe(0);
    return statusFields(r.stdout);
  };
  /** A detached `sleep` and its init's /proc/PID/status read on the host; removed after. */
  const outside = async (flags: string[]) => {
    const d = await e.tsrun(['run', '-d', ...flags, 'busybox', 'sleep', '60']);
    expect(d.code, show(d)).toBe(0);
    const id = d.stdout.trim();
    try {
      const pid = Number((await e.tsrun(['inspect', '-f', '{{.State.Pid}}', id])).stdout.trim());
      expect(pid).toBeGreaterThan(1);
      return statusFields(readFileSync(`/proc/${pid}/status`, 'utf8'));
    } finally {
      const rm = await e.tsrun(['rm', '-f', id]);
      expect(rm.code, show(rm)).toBe(0);
    }
  };
  const noContainers = () => expect(e.tsrunSync(['ps', '-a', '-q']).stdout).toBe('');

  beforeAll(() => {
    e = makeEngine('tsrun-engine-sec');
  });
  afterAll(async () => {
    if (!e) return;
    const problems = await e.teardown();
    expect(problems, problems.join('\n')).toEqual([]);
  });

  describe('capabilities', () => {
    it("default: docker's 14 in the effective, permitted and bounding sets, nothing inheritable or ambient (inside and outside)", async () => {
      expect(hex(dockerMask)).toBe('00000000a80425fb');
      for (const s of [await status([]), await outside([])]) {
        expect(s['CapEff']).toBe(hex(dockerMask));
        expect(s['CapPrm']).toBe(hex(dockerMask));
        expect(s['CapBnd']).toBe(hex(dockerMask));
        expect(s['CapInh']).toBe(hex(0n));
        expect(s['CapAmb']).toBe(hex(0n));
      }
    });

    it('--cap-drop ALL: no capabilities at all', async () => {
      for (const s of [await status(['--cap-drop', 'ALL']), await outside(['--cap-drop', 'ALL'])]) {
        expect(s['CapEff']).toBe(hex(0n));
        expect(s['CapPrm']).toBe(hex(0n));
        expect(s['CapBnd']).toBe(hex(0n));
      }
    });

    it('--cap-add SYS_ADMIN: the defaults plus CAP_SYS_ADMIN; --cap-drop of one default removes just it', async () => {
      const s = await status(['--cap-add', 'SYS_ADMIN']);
      expect(s['CapEff']).toBe(hex(dockerMask | CAP_SYS_ADMIN_BIT));
      expect((await outside(['--cap-add', 'sys_admin']))['CapEff']).toBe(hex(dockerMask | CAP_SYS_ADMIN_BIT));
      const d = await status(['--cap-drop', 'NET_RAW']);
      expect(d['CapEff']).toBe(hex(dockerMask & ~(1n << 13n)));
    });

    it('--privileged: every capability this host can give (all known ones when the runner has them all)', async () => {
      // docker (moby caps.GetAllCapabilities) and podman (capabilities.BoundingSet) give a
      // privileged container the capabilities of the current environment, so a runner without
      // e.g. CAP_SYS_RESOURCE still runs privileged containers.
      const r = await sh(['--privileged'], 'grep -E "^(CapEff|CapBnd|Seccomp):" /proc/self/status');
      expect(r.code, `${show(r)}\n(this runner lacks capability numbers [${missingCaps.join(', ')}])`).toBe(0);
      const s = statusFields(r.stdout);
      expect(s['CapEff']).toBe(hex(ownBounding));
      expect(s['CapBnd']).toBe(hex(ownBounding));
      expect(s['Seccomp']).toBe('0');
      noContainers();
    });

    it('--privileged (minus what the runner lacks): no seccomp, rw /sys, no masks, /proc/sys writable', async () => {
      const drops = missingCaps.flatMap((n) => ['--cap-drop', CAPABILITIES[n] ?? String(n)]);
      const flags = ['--privileged', ...drops];
      const r = await sh(flags, 'grep -E "^(CapEff|Seccomp|NoNewPrivs):" /proc/self/status; echo ---; cat /proc/self/mountinfo');
      expect(r.code, show(r)).toBe(0);
      const [st, mi] = r.stdout.split('---\n') as [string, string];
      const s = statusFields(st);
      expect(s['CapEff']).toBe(hex(ownBounding));
      expect(s['Seccomp']).toBe('0');
      expect(s['NoNewPrivs']).toBe('0');
      expect(mountLine(mi, '/sys'), mi).toBeDefined();
      expect(mountRo(mountLine(mi, '/sys'))).toBe(false);
      for (const masked of ['/proc/keys', '/proc/timer_list', '/sys/firmware', '/proc/sys']) expect(mountLine(mi, masked), masked).toBeUndefined();
      const out = await outside(flags);
      expect(out['CapEff']).toBe(hex(ownBounding));
      expect(out['Seccomp']).toBe('0');
    });
  });

  describe('seccomp', () => {
    it('default profile is on (inside and outside); unshare -m is refused with EPERM', async () => {
      expect((await status([]))['Seccomp']).toBe('2');
      expect((await outside([]))['Seccomp']).toBe('2');
      const r = await sh([], 'unshare -m true; echo rc=$?');
      expect(r.stdout).toContain('rc=1');
      expect(r.stderr).toMatch(/Operation not permitted/);
    });

    it('the profile itself refuses (not only the capability): pivot_root is EPERM even with CAP_SYS_ADMIN, EBUSY unconfined', async () => {
      const probe = 'mkdir /tmp/old && pivot_root /tmp /tmp/old; echo rc=$?';
      const confined = await sh(['--cap-add', 'SYS_ADMIN'], probe);
      expect(confined.stdout).toContain('rc=1');
      expect(confined.stderr).toMatch(/Operation not permitted/);
      const unconfined = await sh(['--cap-add', 'SYS_ADMIN', '--security-opt', 'seccomp=unconfined'], probe);
      expect(unconfined.stdout).toContain('rc=1');
      expect(unconfined.stderr).not.toMatch(/Operation not permitted/);
      expect(unconfined.stderr).toMatch(/busy|Invalid argument/);
    });

    it('--security-opt seccomp=unconfined: Seccomp 0 (inside and outside)', async () => {
      expect((await status(['--security-opt', 'seccomp=unconfined']))['Seccomp']).toBe('0');
      expect((await outside(['--security-opt', 'seccomp=unconfined']))['Seccomp']).toBe('0');
    });

    it("--cap-add SYS_ADMIN: the profile's CAP_SYS_ADMIN part lets unshare -m (and mount) through", async () => {
      const r = await sh(
        ['--cap-add', 'SYS_ADMIN'],
        'grep Seccomp: /proc/self/status; unshare -m true && echo unshare-ok; mount -t tmpfs t /tmp && echo mount-ok',
      );
      expect(r.code, show(r)).toBe(0);
      expect(r.stdout).toMatch(/Seccomp:\s+2/);
      expect(r.stdout).toContain('unshare-ok');
      expect(r.stdout).toContain('mount-ok');
    });

    it('--security-opt seccomp=FILE applies that profile; an unreadable or invalid one is refused with 125', async () => {
      const file = path.join(e.tmp, 'seccomp-custom.json');
      // Allow everything but unshare and mkdir(at), which get EOPNOTSUPP: an errno neither
      // capabilities nor the default profile would give.
      writeFileSync(
        file,
        JSON.stringify({
          defaultAction: 'SCMP_ACT_ALLOW',
          syscalls: [{ names: ['unshare', 'mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 95 }],
        }),
      );
      const r = await sh(
        ['--cap-add', 'SYS_ADMIN', '--security-opt', `seccomp=${file}`],
        'grep Seccomp: /proc/self/status; unshare -m true; echo u=$?; mkdir /tmp/d; echo m=$?',
      );
      expect(r.stdout, show(r)).toMatch(/Seccomp:\s+2/);
      expect(r.stdout).toContain('u=1');
      expect(r.stdout).toContain('m=1');
      expect(r.stderr).toMatch(/not supported/i);
      // the same commands pass without the custom profile (SYS_ADMIN: default profile allows unshare)
      const ok = await sh(['--cap-add', 'SYS_ADMIN'], 'unshare -m true; echo u=$?; mkdir /tmp/d; echo m=$?');
      expect(ok.stdout, show(ok)).toContain('u=0');
      expect(ok.stdout).toContain('m=0');

      const missing = await sh(['--security-opt', `seccomp=${path.join(e.tmp, 'no-such.json')}`], 'true');
      expect(missing.code, show(missing)).toBe(125);
      expect(missing.stderr).toMatch(/seccomp/);
      const bad = path.join(e.tmp, 'seccomp-bad.json');
      writeFileSync(bad, '{ not json');
      const invalid = await sh(['--security-opt', `seccomp=${bad}`], 'true');
      expect(invalid.code, show(invalid)).toBe(125);
      expect(invalid.stderr).toMatch(/seccomp/);
      expect(invalid.stderr).not.toMatch(/\n\s+at .*\.(c?js|ts)/);
      noContainers();
    });
  });

  it('--security-opt no-new-privileges: NoNewPrivs 1 (inside and outside); 0 by default', async () => {
    expect((await status([]))['NoNewPrivs']).toBe('0');
    expect((await status(['--security-opt', 'no-new-privileges']))['NoNewPrivs']).toBe('1');
    expect((await outside(['--security-opt', 'no-new-privileges']))['NoNewPrivs']).toBe('1');
    expect((await outside([]))['NoNewPrivs']).toBe('0');
  });

  it('masked paths are empty, /proc/sys and /sys are read-only', async () => {
    const r = await sh(
      [],
      [
        'echo kcore=$(cat /proc/kcore 2>/dev/null | head -c 16 | wc -c)',
        'echo keys=$(cat /proc/keys | wc -c)',
        'echo timer_list=$(cat /proc/timer_list | wc -c)',
        'echo firmware=$(ls -A /sys/firmware | wc -l)',
        'echo x > /proc/sys/kernel/domainname; echo procsys=$?',
        'touch /sys/kernel/x; echo sys=$?',
        'echo ---',
        'cat /proc/self/mountinfo',
      ].join('; '),
    );
    const [out, mi] = r.stdout.split('---\n') as [string, string];
    expect(out).toContain('kcore=0');
    // the host has content there; the container sees an empty file / directory
    if (readFileSync('/proc/keys', 'utf8').length) expect(out).toContain('keys=0');
    expect(out).toContain('timer_list=0');
    expect(out).toContain('firmware=0');
    expect(out).toContain('procsys=1');
    expect(out).toContain('sys=1');
    expect(r.stderr).toMatch(/domainname: Read-only file system/);
    expect(r.stderr).toMatch(/\/sys\/kernel\/x: Read-only file system/);
    expect(mountRo(mountLine(mi, '/proc/sys'))).toBe(true);
    expect(mountRo(mountLine(mi, '/sys'))).toBe(true);
    for (const p of ['/proc/keys', '/proc/timer_list', '/sys/firmware']) expect(mountLine(mi, p), p).toBeDefined();
  });

  it('--ulimit nofile=512:1024 sets soft 512 and hard 1024', async () => {
    const r = await sh(['--ulimit', 'nofile=512:1024'], 'ulimit -n; ulimit -Hn; grep "open files" /proc/self/limits');
    expect(r.code, show(r)).toBe(0);
    const [soft, hard, line] = r.stdout.split('\n');
    expect(soft).toBe('512');
    expect(hard).toBe('1024');
    expect(line).toMatch(/Max open files\s+512\s+1024/);
    const bad = await sh(['--ulimit', 'nofile=2048:1024'], 'true');
    expect(bad.code, show(bad)).toBe(125);
  });

  it('--device /dev/null:/dev/mynull: the node exists and is writable; others are absent and the device cgroup refuses them', async () => {
    const r = await sh(
      ['--device', '/dev/null:/dev/mynull'],
      'ls -l /dev/mynull; echo hi > /dev/mynull && echo wrote; [ -e /dev/kmsg ] || echo no-kmsg; [ -e /dev/mem ] || echo no-mem; ' +
        'mknod /dev/k2 c 1 11 && head -c 1 /dev/k2; echo kmsg=$?; mknod /dev/z2 c 1 5 && head -c 4 /dev/z2 | wc -c',
    );
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toMatch(/^crw-rw-rw-\s+1 root\s+root\s+1,\s+3 .* \/dev\/mynull$/m);
    expect(r.stdout).toContain('wrote');
    expect(r.stdout).toContain('no-kmsg');
    expect(r.stdout).toContain('no-mem');
    expect(r.stdout).toContain('kmsg=1');
    expect(r.stderr).toMatch(/\/dev\/k2: Operation not permitted/);
    expect(r.stdout).toMatch(/^4$/m); // the default allow-list (zero) still holds
    const none = await sh([], '[ -e /dev/mynull ] && echo present || echo absent');
    expect(none.stdout).toBe('absent\n');
  });

  it('a fresh tmpfs /dev with only the defaults; /dev/shm 64m by default, --shm-size 8m changes it', async () => {
    const r = await sh([], 'ls -A /dev; echo ---; grep -E " /dev | /dev/shm | /dev/pts | /dev/mqueue " /proc/self/mountinfo');
    expect(r.code, show(r)).toBe(0);
    const [ls, mi] = r.stdout.split('---\n') as [string, string];
    expect(ls.split(/\s+/).filter(Boolean).sort()).toEqual(
      ['fd', 'full', 'mqueue', 'null', 'ptmx', 'pts', 'random', 'shm', 'stderr', 'stdin', 'stdout', 'tty', 'urandom', 'zero'].sort(),
    );
    expect(mountLine(mi, '/dev')).toMatch(/ - tmpfs /);
    expect(mountLine(mi, '/dev/pts')).toMatch(/ - devpts /);
    expect(mountLine(mi, '/dev/mqueue')).toMatch(/ - mqueue /);
    expect(mountLine(mi, '/dev/shm')).toMatch(/ - tmpfs .*size=65536k/);
    const s = await sh(['--shm-size', '8m'], 'grep " /dev/shm " /proc/self/mountinfo; df -k /dev/shm | tail -1');
    expect(s.code, show(s)).toBe(0);
    expect(s.stdout).toMatch(/size=8192k/);
    expect(s.stdout).toMatch(/^shm\s+8192\s/m);
  });

  it('with -t there is also /dev/console (the pty)', async () => {
    const r = await e.tsrun(['run', '--rm', '-t', 'busybox', 'sh', '-c', '[ -c /dev/console ] && echo console-ok; tty']);
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toContain('console-ok');
    expect(r.stdout).toMatch(/\/dev\/(pts\/\d+|console)/);
  });

  it("--network none: only lo, and up; the default: eth0 and lo; --network host: the host's namespace", async () => {
    const none = await sh(['--network', 'none'], 'cat /proc/net/dev; ip link show lo');
    expect(none.code, show(none)).toBe(0);
    expect(netDevNames(none.stdout.split(/^\d+: lo:/m)[0]!)).toEqual(['lo']);
    expect(none.stdout).toMatch(/^1: lo: <LOOPBACK,UP,LOWER_UP>/m);
    const dflt = await sh([], 'cat /proc/net/dev');
    expect(netDevNames(dflt.stdout)).toEqual(['eth0', 'lo']);
    // Interfaces come and go on this machine while other tests run: the namespace itself tells.
    const host = await sh(['--network', 'host'], 'readlink /proc/self/ns/net');
    expect(host.code, show(host)).toBe(0);
    expect(host.stdout.trim()).toBe(readlinkSync('/proc/self/ns/net'));
  });

  describe.skipIf(pureV2)('cgroup limits on a host whose controllers are held by cgroup v1', () => {
    it.each([
      [['--memory', '64m'], 'memory'],
      [['--cpus', '0.5'], 'cpu'],
      [['--pids-limit', '50'], 'pids'],
    ])('run %j is refused with 125, naming the %s controller and the fix; nothing is left', async (flags, controller) => {
      const r = await e.tsrun(['run', '--rm', ...flags, 'busybox', 'true']);
      expect(r.code, show(r)).toBe(125);
      expect(r.stderr).toMatch(new RegExp(`controller\\(s\\) ${controller} not available`));
      expect(r.stderr).toMatch(/systemd\.unified_cgroup_hierarchy=1/);
      expect(r.stderr).not.toMatch(/\n\s+at .*\.(c?js|ts)/);
      noContainers();
    });

    it('without --rm, and at create, the refusal comes before anything exists (README: "stops the container before anything is created")', async () => {
      const r = await e.tsrun(['run', '--name', 'refused', '--memory', '64m', 'busybox', 'true']);
      expect(r.code, show(r)).toBe(125);
      expect(r.stderr).toMatch(/memory not available/);
      const c = await e.tsrun(['create', '--name', 'refused2', '--pids-limit', '50', 'busybox', 'true']);
      expect(c.code, show(c)).toBe(125);
      expect(c.stderr).toMatch(/pids not available/);
      noContainers();
      expect(leftovers(e)).toEqual([]);
      // the names are free again
      const ok = await e.tsrun(['run', '--rm', '--name', 'refused', 'busybox', 'true']);
      expect(ok.code, show(ok)).toBe(0);
    });

    it('`tsrun info` lists the refusals for memory, cpu and pids with the fix; --format json parses', async () => {
      const t = await e.tsrun(['info']);
      expect(t.code, show(t)).toBe(0);
      const refusals = t.stdout.slice(t.stdout.indexOf('Refusals:'));
      expect(refusals).toMatch(/--memory.*memory controller/);
      expect(refusals).toMatch(/--cpus.*cpu controller/);
      expect(refusals).toMatch(/--pids-limit.*pids controller/);
      expect(refusals).toMatch(/fix: .*systemd\.unified_cgroup_hierarchy=1/);
      const j = await e.tsrun(['info', '--format', 'json']);
      expect(j.code, show(j)).toBe(0);
      const info = JSON.parse(j.stdout) as { cgroup: { version: string }; refusals: { controller?: string; fix: string; feature: string }[] };
      expect(info.cgroup.version).not.toBe('v2');
      for (const c of ['memory', 'cpu', 'pids']) {
        const ref = info.refusals.find((x) => x.controller === c);
        expect(ref, c).toBeDefined();
        expect(ref!.fix).toMatch(/unified_cgroup_hierarchy/);
      }
    });
  });
  if (pureV2) console.warn('[engine-security.test] refusal checks skipped: this host is pure cgroup v2 with the memory controller (limits apply here)');

  const catatonit = existsSync('/usr/bin/catatonit');
  if (!catatonit) console.warn('[engine-security.test] --init skipped: /usr/bin/catatonit is not installed (apt-get install catatonit)');
  it.skipIf(!catatonit)('--init: catatonit is pid 1 and the command its child', async () => {
    const r = await e.tsrun(['run', '--rm', '--init', 'busybox', 'ps', '-o', 'pid,ppid,args']);
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toMatch(/^\s*1\s+0\s+\S*(catatonit|tsrun-init)/m);
    expect(r.stdout).toMatch(/^\s*\d+\s+1\s+ps -o pid,ppid,args$/m);
    // it forwards SIGTERM: a sleep under it stops at once (as pid 1 it would ignore it)
    const d = await e.tsrun(['run', '-d', '--init', 'busybox', 'sleep', '60']);
    expect(d.code, show(d)).toBe(0);
    const t0 = Date.now();
    const stop = await e.tsrun(['stop', '-t', '20', d.stdout.trim()]);
    expect(stop.code, show(stop)).toBe(0);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect((await e.tsrun(['inspect', '-f', '{{.State.ExitCode}}', d.stdout.trim()])).stdout.trim()).toBe('143');
    expect((await e.tsrun(['rm', d.stdout.trim()])).code).toBe(0);
  });
});
