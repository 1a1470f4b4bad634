// One test per attack class of ../shared/reference/security-checklist.md that had no test of its
// own elsewhere, each named after its class (CVE id first) so a regression is greppable. Every
// test drives tsrun-oci as a user would and judges only what can be seen from outside: exit
// codes and messages, the container's own output, host files. Where a refusal could pass for the
// wrong reason, a control shows the same probe working when the attack is absent.
// The README's "Security" table lists these next to the tests in the other files.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type BaseBundle,
  type BundleOptions,
  buildBaseBundle,
  cleanupAll,
  leftoversFor,
  makeBundle,
  mountsMentioning,
  oci,
  ociSkipReason,
  type OciResult,
  removeScratch,
  show,
  tsrunOci,
  until,
  v2Mount,
} from './helpers/bundle.js';

const skipReason = ociSkipReason();
if (skipReason) console.warn(`[security-classes.test] SKIPPED: ${skipReason}`);

const CORE_PATTERN = '/proc/sys/kernel/core_pattern';

/** KEY=value lines printed by the container scripts below. */
function facts(stdout: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of stdout.split(/\r?\n/)) {
    const m = /^([A-Z][A-Z0-9_]*)=(.*?)\r?$/.exec(line);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

/** A shell snippet: run a command, print KEY=<rc> and KEY_OUT=<its output on one line>. */
const probe = (key: string, cmd: string) => `out=$( { ${cmd} ; } 2>&1 ); rc=$?; echo "${key}=$rc"; echo "${key}_OUT=$(echo $out)"`;

describe.skipIf(!!skipReason)('security-checklist classes, seen from outside the runtime', () => {
  let base: BaseBundle;
  let root: string;
  const ids = new Set<string>();
  let seq = 0;
  const coreBefore = readFileSync(CORE_PATTERN, 'utf8');

  const newId = (tag: string) => {
    const id = `sc-${process.pid}-${++seq}-${tag}`;
    ids.add(id);
    return id;
  };
  const bundle = (mutate: (spec: any) => void, opts?: BundleOptions) => makeBundle(base, mutate, opts);
  const sh = (script: string) => (spec: any) => {
    spec.process.args = ['/bin/sh', '-c', script];
  };
  /** A scratch directory of the test's own (removed with the scratch dir). */
  const scratch = (name: string) => {
    const d = path.join(base.tmp, `${name}-${++seq}`);
    mkdirSync(d);
    return d;
  };

  /** `run` in the foreground; afterwards nothing of the container may be left. */
  const run = async (dir: string, tag: string, args: string[] = []): Promise<OciResult> => {
    const id = newId(tag);
    const r = await oci(root, ['run', ...args, '--bundle', dir, id]);
    await until(() => leftoversFor(root, id, base.tmp).length === 0, 3000);
    expect(leftoversFor(root, id, base.tmp), `leftovers after ${show(r)}`).toEqual([]);
    return r;
  };

  beforeAll(() => {
    base = buildBaseBundle('tsrun-secclasses');
    root = path.join(base.tmp, 'state');
  });

  // A runtime that fails CVE-2022-0811 or CVE-2025-31133 rewrites the host's core_pattern: put
  // it back before anything else runs, and fail the test that did it.
  afterEach(() => {
    const now = readFileSync(CORE_PATTERN, 'utf8');
    if (now !== coreBefore) {
      writeFileSync(CORE_PATTERN, coreBefore);
      throw new Error(`the host's ${CORE_PATTERN} was changed to ${JSON.stringify(now)} (restored)`);
    }
  });

  afterAll(async () => {
    if (!base) return;
    const problems = await cleanupAll(root, ids, base.tmp);
    expect(mountsMentioning(base.tmp), 'mounts left on the scratch dir').toEqual([]);
    removeScratch(base.tmp);
    expect(problems, problems.join('\n')).toEqual([]);
  });

  // ------------------------------------------------------------------------------------------
  it('CVE-2019-19921 / CVE-2023-27561 (/proc is a symlink): a rootfs whose /proc is a symlink is refused, nothing is mounted on its target', async () => {
    const withProcLink = bundle(sh('echo ran'), {
      prepareRootfs: (rootfs) => {
        rmSync(path.join(rootfs, 'proc'), { recursive: true, force: true });
        mkdirSync(path.join(rootfs, 'fakeproc'));
        writeFileSync(path.join(rootfs, 'fakeproc/marker'), 'image');
        symlinkSync('/fakeproc', path.join(rootfs, 'proc'));
      },
    });
    const r = await run(withProcLink, 'proclink');
    expect(r.code, show(r)).not.toBe(0);
    expect(r.stderr, show(r)).toMatch(/proc on \/proc.*the path is a symlink/);
    expect(r.stdout, show(r)).not.toContain('ran');
    expect(readdirSync(path.join(withProcLink, 'rootfs/fakeproc'))).toEqual(['marker']);

    // control: the same copied rootfs with a real /proc directory runs
    const plain = bundle(sh('echo ran; test -e /proc/self/status && echo PROC=ok'), { copyRootfs: true });
    const c = await run(plain, 'procdir');
    expect(c.code, show(c)).toBe(0);
    expect(facts(c.stdout).PROC, show(c)).toBe('ok');
  });

  // ------------------------------------------------------------------------------------------
  it('CVE-2023-27561 / CVE-2023-28642 (symlink in maskedPaths/readonlyPaths): an entry that is a symlink is refused, never followed', async () => {
    const evil = (list: 'maskedPaths' | 'readonlyPaths', target: string) =>
      bundle(
        (s) => {
          s.linux[list].push('/etc/evil');
          sh('echo ran')(s);
        },
        { prepareRootfs: (rootfs) => symlinkSync(target, path.join(rootfs, 'etc/evil')) },
      );
    const m = await run(evil('maskedPaths', CORE_PATTERN), 'masklink');
    expect(m.code, show(m)).not.toBe(0);
    expect(m.stderr, show(m)).toMatch(/step mask.*"\/etc\/evil".*the path is a symlink/);
    const ro = await run(evil('readonlyPaths', '/tmp'), 'rolink');
    expect(ro.code, show(ro)).not.toBe(0);
    expect(ro.stderr, show(ro)).toMatch(/step readonly.*"\/etc\/evil".*the path is a symlink/);
    expect(readFileSync(CORE_PATTERN, 'utf8')).toBe(coreBefore);

    // control: the same path as a regular file is masked (it reads as the null device)
    const file = bundle(
      (s) => {
        s.linux.maskedPaths.push('/etc/evil');
        sh(`stat -c 'TYPE=%F %t:%T' /etc/evil; echo "BYTES=$(wc -c < /etc/evil)"`)(s);
      },
      { prepareRootfs: (rootfs) => writeFileSync(path.join(rootfs, 'etc/evil'), 'secret') },
    );
    const c = await run(file, 'maskfile');
    expect(c.code, show(c)).toBe(0);
    expect(facts(c.stdout), show(c)).toMatchObject({ TYPE: 'character special file 1:3', BYTES: '0' });
  });

  // ------------------------------------------------------------------------------------------
  it('CVE-2025-31133 (masked paths via /dev/null): a /dev whose null is a symlink to core_pattern stops the create; core_pattern is untouched', async () => {
    const masked = ['/proc/interrupts', '/proc/timer_list', '/proc/keys', '/proc/kcore'].find((f) => existsSync(f));
    expect(masked, 'none of the usual masked /proc files exists on this host').toBeDefined();
    /** A config whose /dev is a bind of a host dir (so tsrun does not make its own /dev). */
    const devBind = (dev: string) =>
      bundle((s) => {
        s.mounts = s.mounts.filter((m: any) => m.destination !== '/dev');
        s.mounts.splice(1, 0, { destination: '/dev', type: 'bind', source: dev, options: ['rbind'] });
        if (!s.linux.maskedPaths.includes(masked)) s.linux.maskedPaths.push(masked);
        sh(`stat -c 'MASKED=%F %t:%T' ${masked}`)(s);
      });
    const evilDev = scratch('evil-dev');
    symlinkSync(CORE_PATTERN, path.join(evilDev, 'null'));
    const r = await run(devBind(evilDev), 'devnull-link');
    expect(r.code, show(r)).not.toBe(0);
    expect(r.stderr, show(r)).toMatch(/step mask.*verification failed/);
    expect(readFileSync(CORE_PATTERN, 'utf8')).toBe(coreBefore);
    expect(lstatSync(path.join(evilDev, 'null')).isSymbolicLink()).toBe(true);

    // control: the same bound /dev with a real null device masks as usual
    const goodDev = scratch('good-dev');
    const mk = spawnSync('mknod', ['-m', '666', path.join(goodDev, 'null'), 'c', '1', '3'], { encoding: 'utf8' });
    expect(mk.status, mk.stderr).toBe(0);
    const c = await run(devBind(goodDev), 'devnull-real');
    expect(c.code, show(c)).toBe(0);
    expect(facts(c.stdout).MASKED, show(c)).toBe('character special file 1:3');
  });

  // ------------------------------------------------------------------------------------------
  it("CVE-2019-16884 / CVE-2025-52881 (misdirected procfs write): with no procfs on /proc, a sysctl is refused instead of landing in the image's file", async () => {
    const KEY = 'net.ipv4.ip_local_reserved_ports';
    const fake = 'proc/sys/net/ipv4/ip_local_reserved_ports';
    const noProc = bundle(
      (s) => {
        s.mounts = s.mounts.filter((m: any) => m.destination !== '/proc');
        s.linux.sysctl = { [KEY]: '40000' };
        s.process.args = ['/bin/cat', `/${fake}`];
      },
      {
        prepareRootfs: (rootfs) => {
          mkdirSync(path.join(rootfs, path.dirname(fake)), { recursive: true });
          writeFileSync(path.join(rootfs, fake), 'fake\n');
        },
      },
    );
    const r = await run(noProc, 'noproc');
    expect(r.code, show(r)).not.toBe(0);
    expect(r.stderr, show(r)).toMatch(/step sysctl.*\/proc\/sys\/net\/ipv4\/ip_local_reserved_ports.*verification failed: EXDEV/);
    expect(readFileSync(path.join(noProc, 'rootfs', fake), 'utf8')).toBe('fake\n');

    // control: with the proc mount, the same sysctl is applied (in the container's netns)
    const withProc = bundle((s) => {
      s.linux.sysctl = { [KEY]: '40000' };
      s.process.args = ['/bin/cat', `/${fake}`];
    });
    const c = await run(withProc, 'withproc');
    expect(c.code, show(c)).toBe(0);
    expect(c.stdout.trim()).toBe('40000');
  });

  // ------------------------------------------------------------------------------------------
  it('CVE-2022-0811 (sysctl value injection): "1+kernel.core_pattern=|…" is one value for one key, never a second sysctl', async () => {
    const hostShm = readFileSync('/proc/sys/kernel/shm_rmid_forced', 'utf8');
    const evil = bundle((s) => {
      s.linux.sysctl = { 'kernel.shm_rmid_forced': '1+kernel.core_pattern=|/tmp/tsrun-cr8escape' };
      s.process.args = ['/bin/cat', '/proc/sys/kernel/shm_rmid_forced'];
    });
    const r = await run(evil, 'sysctl-inject');
    expect(r.code, show(r)).not.toBe(0);
    expect(r.stderr, show(r)).toMatch(/step sysctl.*\/proc\/sys\/kernel\/shm_rmid_forced.*EINVAL/);
    expect(readFileSync(CORE_PATTERN, 'utf8')).toBe(coreBefore);
    expect(readFileSync('/proc/sys/kernel/shm_rmid_forced', 'utf8')).toBe(hostShm);

    // control: the plain value is applied inside, in the container's ipc namespace only
    const plain = bundle((s) => {
      s.linux.sysctl = { 'kernel.shm_rmid_forced': hostShm.trim() === '1' ? '0' : '1' };
      s.process.args = ['/bin/cat', '/proc/sys/kernel/shm_rmid_forced'];
    });
    const c = await run(plain, 'sysctl-plain');
    expect(c.code, show(c)).toBe(0);
    expect(c.stdout.trim()).toBe(hostShm.trim() === '1' ? '0' : '1');
    expect(readFileSync('/proc/sys/kernel/shm_rmid_forced', 'utf8')).toBe(hostShm);
  });

  // ------------------------------------------------------------------------------------------
  const v2 = v2Mount();
  if (!v2) console.warn('[security-classes.test] CVE-2023-25809 test SKIPPED: no cgroup2 hierarchy on this host');
  it.skipIf(!v2)("CVE-2023-25809 (cgroup exposure): without a cgroup namespace, /sys/fs/cgroup shows only the container's own cgroup, read-only", async () => {
    const dir = bundle((s) => {
      s.linux.namespaces = s.linux.namespaces.filter((n: any) => n.type !== 'cgroup');
      s.process.args = ['/bin/sleep', '120'];
    });
    const id = newId('cgexpose');
    const pidFile = path.join(base.tmp, `${id}.pid`);
    const d = await oci(root, ['run', '-d', '--pid-file', pidFile, '--bundle', dir, id]);
    expect(d.code, show(d)).toBe(0);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    // The container's cgroup as the host sees it, e.g. "/tsrun/<id>".
    const own = /^0::(\/.*)$/m.exec(readFileSync(`/proc/${pid}/cgroup`, 'utf8'))?.[1];
    expect(own, 'the container init has no cgroup v2 path').toBeDefined();
    // control: the host's hierarchy has directories above and beside the container's cgroup
    expect(
      readdirSync(v2!, { withFileTypes: true }).some((e) => e.isDirectory()),
      `${v2} has no child cgroup`,
    ).toBe(true);

    const script = [
      `echo "DIRS=$(find /sys/fs/cgroup -mindepth 1 -type d | wc -l)"`,
      `echo "PROCS=$(test -f /sys/fs/cgroup/cgroup.procs && echo yes)"`,
      `awk '$5 == "/sys/fs/cgroup" { print "ROOT=" $4; print "OPTS=" $6 }' /proc/self/mountinfo`,
      probe('MKDIR', 'mkdir /sys/fs/cgroup/escape'),
    ].join('; ');
    const e = await oci(root, ['exec', id, '/bin/sh', '-c', script]);
    expect(e.code, show(e)).toBe(0);
    const k = facts(e.stdout);
    expect(k.PROCS, show(e)).toBe('yes');
    expect(k.DIRS, show(e)).toBe('0');
    // (the mount's root is relative to the cgroup2 root; a cgroup namespace around the tests may shorten `own`)
    expect(k.ROOT?.endsWith(own!), show(e)).toBe(true);
    expect(k.OPTS?.split(','), show(e)).toContain('ro');
    expect(k.MKDIR, show(e)).not.toBe('0');
    expect(k.MKDIR_OUT, show(e)).toMatch(/Read-only file system/);
    expect(existsSync(path.join(v2!, own!, 'escape'))).toBe(false);

    const del = await oci(root, ['delete', '--force', id]);
    expect(del.code, show(del)).toBe(0);
  });

  // ------------------------------------------------------------------------------------------
  it('CVE-2024-21626 (leaked fd → cwd breakout): a cwd reaching a host directory through /proc/self/fd is refused (validation, magic-link refusal, getcwd check)', async () => {
    const hostDir = scratch('host-secret');
    writeFileSync(path.join(hostDir, 'SECRET'), 'host');
    // The image's "WORKDIR" is a symlink to an fd, and a host directory arrives at that fd.
    const dir = bundle(sh('sleep 120'), {
      prepareRootfs: (rootfs) => {
        symlinkSync('/proc/self/fd/3', path.join(rootfs, 'fd3'));
        symlinkSync('/bin', path.join(rootfs, 'binlink'));
      },
    });
    const id = newId('cwdfd');
    const d = await oci(root, ['run', '-d', '--bundle', dir, id]);
    expect(d.code, show(d)).toBe(0);
    const fd = openSync(hostDir, 'r');
    try {
      // control: fd 3 really is the host directory (the process may use what it was given)
      const given = await oci(root, ['exec', '--preserve-fds', '1', id, '/bin/ls', '/proc/self/fd/3/'], { extraFds: [fd] });
      expect(given.code, show(given)).toBe(0);
      expect(given.stdout.trim(), show(given)).toBe('SECRET');
      // ...but it never becomes the cwd: chdir lands outside the root and getcwd says so
      const viaLink = await oci(root, ['exec', '--preserve-fds', '1', '--cwd', '/fd3', id, '/bin/ls', '-a', '..'], { extraFds: [fd] });
      expect(viaLink.code, show(viaLink)).not.toBe(0);
      expect(viaLink.stderr, show(viaLink)).toMatch(/step chdir.*\(verify\).*"\/fd3"/);
      expect(viaLink.stdout, show(viaLink)).not.toContain('SECRET');
      // the literal form is refused before anything runs
      const literal = await oci(root, ['exec', '--preserve-fds', '1', '--cwd', '/proc/self/fd/3', id, '/bin/pwd'], { extraFds: [fd] });
      expect(literal.code, show(literal)).not.toBe(0);
      expect(literal.stderr, show(literal)).toContain('"process.cwd" must not be inside /proc/<pid>/fd');
    } finally {
      closeSync(fd);
    }
    // control: a cwd through a symlink that stays inside the rootfs works
    const ok = await oci(root, ['exec', '--cwd', '/binlink', id, '/bin/pwd', '-P']);
    expect(ok.code, show(ok)).toBe(0);
    expect(ok.stdout.trim()).toBe('/bin');
    const del = await oci(root, ['delete', '--force', id]);
    expect(del.code, show(del)).toBe(0);

    // create: process.cwd = /proc/self/fd/7 (the runc PoC) is refused, leaving nothing
    const r = await run(
      bundle((s) => (s.process.cwd = '/proc/self/fd/7')),
      'cwd-procfd',
    );
    expect(r.code, show(r)).not.toBe(0);
    expect(r.stderr, show(r)).toContain('"process.cwd" must not be inside /proc/<pid>/fd');
  });

  // ------------------------------------------------------------------------------------------
  it('CVE-2026-30892 / CVE-2024-40635 (exec --user parsing): -u 1 runs as uid 1; out-of-range and non-numeric users are refused', async () => {
    const dir = bundle(sh('sleep 120'));
    const id = newId('user');
    const d = await oci(root, ['run', '-d', '--bundle', dir, id]);
    expect(d.code, show(d)).toBe(0);
    const uidOf = async (user: string) => {
      const r = await oci(root, ['exec', '-u', user, id, '/bin/grep', '-E', '^(Uid|Gid):', '/proc/self/status']);
      return { r, uid: /^Uid:\s+(\d+)/m.exec(r.stdout)?.[1], gid: /^Gid:\s+(\d+)/m.exec(r.stdout)?.[1] };
    };
    const one = await uidOf('1');
    expect(one.r.code, show(one.r)).toBe(0);
    expect(one.uid, show(one.r)).toBe('1');
    const pair = await uidOf('2:3');
    expect([pair.uid, pair.gid], show(pair.r)).toEqual(['2', '3']);
    // control: the probe does report root when asked for root
    const zero = await uidOf('0');
    expect(zero.uid, show(zero.r)).toBe('0');
    for (const bad of ['4294967295', '4294967296', '1:4294967296', 'root', '-1', '0x1', '1 ']) {
      const b = await uidOf(bad);
      expect(b.r.code, `${bad}: ${show(b.r)}`).not.toBe(0);
      expect(b.r.stderr, show(b.r)).toContain(`invalid user "${bad}"`);
      expect(b.uid, show(b.r)).toBeUndefined();
    }
    const del = await oci(root, ['delete', '--force', id]);
    expect(del.code, show(del)).toBe(0);
  });

  // ------------------------------------------------------------------------------------------
  it('CVE-2024-9676 (passwd/group read via FIFO): with /etc/passwd a FIFO and /etc/group a link to /dev/zero, run and exec finish: tsrun never reads them', async () => {
    const dir = bundle(
      (s) => {
        s.process.user = { uid: 1000, gid: 1000, additionalGids: [2000] };
        sh('sleep 120')(s);
      },
      {
        prepareRootfs: (rootfs) => {
          rmSync(path.join(rootfs, 'etc/passwd'));
          rmSync(path.join(rootfs, 'etc/group'));
          const mk = spawnSync('mkfifo', [path.join(rootfs, 'etc/passwd')], { encoding: 'utf8' });
          if (mk.status !== 0) throw new Error(`mkfifo: ${mk.stderr}`);
          symlinkSync('/dev/zero', path.join(rootfs, 'etc/group'));
        },
      },
    );
    expect(lstatSync(path.join(dir, 'rootfs/etc/passwd')).isFIFO()).toBe(true);
    const id = newId('fifo');
    const started = Date.now();
    const d = await oci(root, ['run', '-d', '--bundle', dir, id], { timeoutMs: 20_000 });
    expect(d.timedOut, show(d)).toBe(false);
    expect(d.code, show(d)).toBe(0);
    const e = await oci(root, ['exec', '-u', '1:1', id, '/bin/grep', '^Uid:', '/proc/self/status'], { timeoutMs: 20_000 });
    expect(e.timedOut, show(e)).toBe(false);
    expect(e.code, show(e)).toBe(0);
    expect(e.stdout).toMatch(/^Uid:\s+1\s/m);
    expect(Date.now() - started).toBeLessThan(20_000);
    // control: a reader of that /etc/passwd does block (the container's own `cat` times out)
    const st = await oci(root, ['exec', id, '/bin/sh', '-c', probe('FIFO', 'timeout 1 cat /etc/passwd')], { timeoutMs: 20_000 });
    expect(st.code, show(st)).toBe(0);
    expect(facts(st.stdout).FIFO, show(st)).not.toBe('0');
    const del = await oci(root, ['delete', '--force', id]);
    expect(del.code, show(del)).toBe(0);
  });

  // ------------------------------------------------------------------------------------------
  const script = ['/usr/bin/script', '/bin/script'].find((p) => existsSync(p));
  if (!script) console.warn('[security-classes.test] CVE-2025-52565 test SKIPPED: script(1) is missing (apt-get install bsdutils)');
  it.skipIf(!script)(
    "CVE-2025-52565 (/dev/console bind source): /dev/console is the container's own pty; a /dev/console symlink is never followed",
    async () => {
      /**
       * `run` with a terminal under script(1), which gives tsrun-oci a real tty to proxy. script's
       * stdin stays open until it exits: an EOF it forwards to a container that has already gone
       * would test the relay, not the console.
       */
      const runTty = (dir: string, tag: string) =>
        new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
          const id = newId(tag);
          const child = spawn(script!, ['-qec', `${tsrunOci} --root ${root} run --bundle ${dir} ${id}`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
          let out = '';
          let err = '';
          child.stdout.on('data', (b: Buffer) => (out += b.toString('utf8')));
          child.stderr.on('data', (b: Buffer) => (err += b.toString('utf8')));
          const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
          child.on('close', (code) => {
            clearTimeout(timer);
            child.stdin.destroy();
            resolve({ code, out, err });
          });
        });
      const probeScript = `stat -c 'CONSOLE=%F %t:%T' /dev/console; stat -c 'PTS=%F %t:%T' "$(tty)"; stat -c 'VICTIM=%F' /victim`;
      const plain = bundle(
        (s) => {
          s.process.terminal = true;
          sh(probeScript)(s);
        },
        { prepareRootfs: (rootfs) => writeFileSync(path.join(rootfs, 'victim'), 'victim\n') },
      );
      const p = await runTty(plain, 'console');
      expect(p.code, `${p.out}\n${p.err}`).toBe(0);
      const k = facts(p.out);
      expect(k.PTS, p.out).toMatch(/^character special file 88:\d+$/);
      expect(k.CONSOLE, p.out).toBe(k.PTS);
      expect(k.VICTIM, p.out).toBe('regular file');

      // A /dev the config binds from a host dir, holding console -> /victim: the pty must not
      // be bound over the symlink's target.
      const dev = scratch('console-dev');
      const mk = spawnSync('mknod', ['-m', '666', path.join(dev, 'null'), 'c', '1', '3'], { encoding: 'utf8' });
      expect(mk.status, mk.stderr).toBe(0);
      symlinkSync('/victim', path.join(dev, 'console'));
      const evil = bundle(
        (s) => {
          s.process.terminal = true;
          s.mounts = s.mounts.filter((m: any) => m.destination !== '/dev');
          s.mounts.splice(1, 0, { destination: '/dev', type: 'bind', source: dev, options: ['rbind'] });
          sh(`${probeScript}; echo "CONTENT=$(cat /victim)"; stat -c 'LINK=%F' /dev/console`)(s);
        },
        { prepareRootfs: (rootfs) => writeFileSync(path.join(rootfs, 'victim'), 'victim\n') },
      );
      const v = await runTty(evil, 'console-link');
      expect(v.code, `${v.out}\n${v.err}`).toBe(0);
      const kv = facts(v.out);
      expect(kv.PTS, v.out).toMatch(/^character special file 88:\d+$/);
      expect(kv.VICTIM, v.out).toBe('regular file');
      expect(kv.CONTENT, v.out).toBe('victim');
      expect(kv.LINK, v.out).toBe('symbolic link');
      expect(lstatSync(path.join(dev, 'console')).isSymbolicLink()).toBe(true);
      expect(readFileSync(path.join(evil, 'rootfs/victim'), 'utf8')).toBe('victim\n');
    },
  );

  // ------------------------------------------------------------------------------------------
  it('CVE-2022-29162 (inheritable capabilities): `tsrun-oci spec` sets no inheritable or ambient caps, and its container has CapInh and CapAmb 0', async () => {
    const dir = path.join(base.tmp, 'bundles', `spec-${++seq}`);
    mkdirSync(dir, { recursive: true });
    const g = await oci(root, ['spec', '--bundle', dir]);
    expect(g.code, show(g)).toBe(0);
    const spec = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'));
    expect(spec.process.capabilities.inheritable ?? []).toEqual([]);
    expect(spec.process.capabilities.ambient ?? []).toEqual([]);
    const status = (mutate: (s: any) => void) => {
      spec.root = { path: base.rootfs, readonly: true };
      spec.process.terminal = false;
      spec.process.args = ['/bin/grep', '-E', '^Cap(Inh|Amb|Eff):', '/proc/self/status'];
      mutate(spec);
      writeFileSync(path.join(dir, 'config.json'), JSON.stringify(spec));
      return run(dir, 'capinh');
    };
    const field = (text: string, k: string) => new RegExp(`^${k}:\\s*(\\S+)`, 'm').exec(text)?.[1];
    const r = await status(() => {});
    expect(r.code, show(r)).toBe(0);
    expect(field(r.stdout, 'CapEff'), show(r)).toBe('0000000020000420'); // AUDIT_WRITE, KILL, NET_BIND_SERVICE
    expect(field(r.stdout, 'CapInh'), show(r)).toBe('0000000000000000');
    expect(field(r.stdout, 'CapAmb'), show(r)).toBe('0000000000000000');
    // control: an inheritable set is applied when the config asks for one (the probe can see it)
    const c = await status((s) => (s.process.capabilities.inheritable = ['CAP_KILL']));
    expect(c.code, show(c)).toBe(0);
    expect(field(c.stdout, 'CapInh'), show(c)).toBe('0000000000000020');
  });
});
