// Isolation properties of tsrun-oci, each proven from INSIDE the container: the container
// prints facts (ls, /proc/<pid>/status, stat, error texts) and the test parses its stdout.
// Every test that could pass vacuously carries a control (the same probe where the property
// must NOT hold), so a broken runtime or a broken probe fails instead of passing.
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { capMask, readLastCap } from '../../src/linux/capabilities.js';
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
  readlinkOrNull,
  removeScratch,
  runProgram,
  show,
  tsrunOci,
  until,
} from './helpers/bundle.js';

const skipReason = ociSkipReason();
if (skipReason) console.warn(`[isolation.test] SKIPPED: ${skipReason}`);

/** `ls -l /proc/self/fd` (busybox) → fd number → link target (null when unreadable). */
function parseFdListing(stdout: string): Map<number, string | null> {
  const fds = new Map<number, string | null>();
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('l')) continue;
    const m = /\s(\d+)(?: -> (.*))?$/.exec(line);
    if (m) fds.set(Number(m[1]), m[2] ?? null);
  }
  return fds;
}

/** "Key:\tvalue" lines of /proc/<pid>/status. */
function parseStatus(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}

/** KEY=value lines printed by the container scripts below. */
function facts(stdout: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const m = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

const hex16 = (n: bigint) => n.toString(16).padStart(16, '0');
const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

/** A shell snippet: run a command, print KEY=<rc> and KEY_OUT=<its output on one line>. */
const probe = (key: string, cmd: string) => `out=$( { ${cmd} ; } 2>&1 ); rc=$?; echo "${key}=$rc"; echo "${key}_OUT=$(echo $out)"`;

describe.skipIf(process.getuid?.() !== 0 || !existsSync(tsrunOci) || skipReason !== null)('tsrun-oci isolation (seen from inside the container)', () => {
  let base: BaseBundle;
  let root: string;
  const ids = new Set<string>();
  let seq = 0;

  const newId = (tag: string) => {
    const id = `iso-${process.pid}-${++seq}-${tag}`;
    ids.add(id);
    return id;
  };
  const bundle = (mutate: (spec: any) => void, opts?: BundleOptions) => makeBundle(base, mutate, opts);
  /** A shell script as the container's process. */
  const sh = (script: string) => (spec: any) => {
    spec.process.args = ['/bin/sh', '-c', script];
  };

  /** `run` a container in the foreground; afterwards nothing of it may be left. */
  const run = async (dir: string, tag: string, o: { args?: string[]; extraFds?: number[] } = {}): Promise<OciResult> => {
    const id = newId(tag);
    const r = await oci(root, ['run', ...(o.args ?? []), '--bundle', dir, id], o.extraFds ? { extraFds: o.extraFds } : {});
    await until(() => leftoversFor(root, id, base.tmp).length === 0, 3000);
    expect(leftoversFor(root, id, base.tmp), `leftovers after ${show(r)}`).toEqual([]);
    return r;
  };

  beforeAll(() => {
    base = buildBaseBundle('tsrun-isolation');
    root = path.join(base.tmp, 'state');
  });

  afterAll(async () => {
    if (!base) return;
    const problems = await cleanupAll(root, ids, base.tmp);
    expect(mountsMentioning(base.tmp), 'mounts left on the scratch dir').toEqual([]);
    removeScratch(base.tmp);
    expect(problems, 'leftovers after delete --force of every container').toEqual([]);
  });

  // ------------------------------------------------------------------------------------------
  describe('1. fd hygiene: CVE-2024-21626 / CVE-2016-9962 class (runc TestFdLeaks, youki fd_control)', () => {
    let fdA = -1;
    let fdB = -1;
    beforeAll(() => {
      writeFileSync(path.join(base.tmp, 'fd-leak-A.marker'), 'A');
      writeFileSync(path.join(base.tmp, 'fd-leak-B.marker'), 'B');
      fdA = openSync(path.join(base.tmp, 'fd-leak-A.marker'), 'r');
      fdB = openSync(path.join(base.tmp, 'fd-leak-B.marker'), 'r');
    });
    afterAll(() => {
      if (fdA >= 0) closeSync(fdA);
      if (fdB >= 0) closeSync(fdB);
    });
    const lsFd = () => bundle((s) => (s.process.args = ['/bin/ls', '-l', '/proc/self/fd']));

    it('control: fds handed to a spawned program at 3 and 4 arrive open (no CLOEXEC)', async () => {
      const r = await runProgram('/bin/busybox', ['ls', '-l', '/proc/self/fd'], { extraFds: [fdA, fdB] });
      expect(r.code, show(r)).toBe(0);
      const fds = parseFdListing(r.stdout);
      expect(fds.get(3), show(r)).toMatch(/fd-leak-A\.marker$/);
      expect(fds.get(4), show(r)).toMatch(/fd-leak-B\.marker$/);
    });

    it('CVE-2024-21626 (leaked fd): without --preserve-fds the container sees only 0, 1, 2 (+ the fd ls opened itself)', async () => {
      const r = await run(lsFd(), 'fd0', { extraFds: [fdA, fdB] });
      expect(r.code, show(r)).toBe(0);
      const fds = parseFdListing(r.stdout);
      expect(
        [0, 1, 2].every((f) => fds.has(f)),
        show(r),
      ).toBe(true);
      const extra = [...fds.entries()].filter(([n]) => n >= 3);
      // ls's own directory fd is listed but already closed when ls reads the link; anything
      // else (our markers, the runtime's epoll/pipes/sockets, exec.fifo, the sync socket) leaked.
      expect(extra.length, `more than ls's own fd:\n${show(r)}`).toBeLessThanOrEqual(1);
      for (const [n, target] of extra) expect(target ?? '', `fd ${n}:\n${show(r)}`).not.toMatch(/fd-leak|pipe:|socket:|anon_inode|fifo/);
    });

    it('--preserve-fds 1 passes fd 3 and nothing above it', async () => {
      const r = await run(lsFd(), 'fd1', { args: ['--preserve-fds', '1'], extraFds: [fdA, fdB] });
      expect(r.code, show(r)).toBe(0);
      const fds = parseFdListing(r.stdout);
      expect(fds.get(3), show(r)).toMatch(/fd-leak-A\.marker$/);
      const above = [...fds.entries()].filter(([n]) => n > 3);
      expect(above.length, show(r)).toBeLessThanOrEqual(1);
      for (const [n, target] of above) expect(target ?? '', `fd ${n}:\n${show(r)}`).not.toMatch(/fd-leak|pipe:|socket:|anon_inode|fifo/);
    });

    it('--preserve-fds 2 passes fds 3 and 4', async () => {
      const r = await run(lsFd(), 'fd2', { args: ['--preserve-fds', '2'], extraFds: [fdA, fdB] });
      expect(r.code, show(r)).toBe(0);
      const fds = parseFdListing(r.stdout);
      expect(fds.get(3), show(r)).toMatch(/fd-leak-A\.marker$/);
      expect(fds.get(4), show(r)).toMatch(/fd-leak-B\.marker$/);
    });
  });

  // ------------------------------------------------------------------------------------------
  describe('2. signals and capabilities of pid 1 (/proc/1/status)', () => {
    const CAPS = ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_KILL', 'CAP_NET_RAW', 'CAP_SYS_CHROOT', 'CAP_AUDIT_WRITE', 'CAP_WAKE_ALARM'];

    it('control: the runtime (node) itself ignores SIGPIPE and SIGXFSZ, so a missing reset would show', () => {
      const own = parseStatus(readFileSync('/proc/self/status', 'utf8'));
      expect(BigInt(`0x${own.SigIgn}`) & ((1n << 12n) | (1n << 24n))).not.toBe(0n);
    });

    it('CVE-2022-29162 (inheritable caps): SigIgn/SigBlk/SigCgt are 0; CapEff/CapPrm/CapBnd are exactly the configured set; CapInh/CapAmb 0', async () => {
      const dir = bundle((s) => {
        s.process.args = ['/bin/cat', '/proc/1/status'];
        s.process.capabilities = { bounding: CAPS, effective: CAPS, permitted: CAPS, inheritable: [], ambient: [] };
      });
      const r = await run(dir, 'status');
      expect(r.code, show(r)).toBe(0);
      const st = parseStatus(r.stdout);
      expect(st.Name, `pid 1 must be cat itself:\n${show(r)}`).toBe('cat');
      expect(st.SigIgn, show(r)).toBe('0000000000000000');
      expect(st.SigBlk, show(r)).toBe('0000000000000000');
      expect(st.SigCgt, show(r)).toBe('0000000000000000');
      const want = hex16(capMask(CAPS, readLastCap()).mask);
      expect(want).not.toBe('0000000000000000');
      expect(st.CapEff, show(r)).toBe(want);
      expect(st.CapPrm, show(r)).toBe(want);
      expect(st.CapBnd, show(r)).toBe(want);
      expect(st.CapInh, show(r)).toBe('0000000000000000');
      expect(st.CapAmb, show(r)).toBe('0000000000000000');
    });

    it('a different capability set gives a different mask (the probe is not constant)', async () => {
      const few = ['CAP_KILL'];
      const dir = bundle((s) => {
        s.process.args = ['/bin/cat', '/proc/1/status'];
        s.process.capabilities = { bounding: few, effective: few, permitted: few, inheritable: few, ambient: few };
      });
      const r = await run(dir, 'status2');
      expect(r.code, show(r)).toBe(0);
      const st = parseStatus(r.stdout);
      const want = hex16(capMask(few, readLastCap()).mask);
      expect(want).toBe('0000000000000020');
      expect([st.CapEff, st.CapPrm, st.CapBnd, st.CapInh, st.CapAmb], show(r)).toEqual([want, want, want, want, want]);
    });
  });

  // ------------------------------------------------------------------------------------------
  describe('3. maskedPaths and readonlyPaths', () => {
    /** A masked file that exists on this host and is not empty here. */
    const maskedFile = ['/proc/kcore', '/proc/timer_list', '/proc/keys'].find((f) => {
      try {
        const fd = openSync(f, 'r');
        try {
          return readSync(fd, Buffer.alloc(16), 0, 16, null) > 0;
        } finally {
          closeSync(fd);
        }
      } catch {
        return false;
      }
    });
    const maskedDirs = ['/proc/acpi', '/sys/firmware'].filter((d) => existsSync(d));

    it('CVE-2025-31133 (masked paths via /dev/null): a masked file reads empty and is the char device 1:3 (/dev/null)', async () => {
      expect(maskedFile, 'none of /proc/kcore, /proc/timer_list, /proc/keys is readable on the host').toBeDefined();
      const f = maskedFile!;
      const dir = bundle((s) => {
        if (!s.linux.maskedPaths.includes(f)) s.linux.maskedPaths.push(f);
        sh(`echo "TYPE=$(stat -c '%F %t:%T' ${f})"; echo "BYTES=$(wc -c < ${f})"`)(s);
      });
      const r = await run(dir, 'maskfile');
      expect(r.code, show(r)).toBe(0);
      const k = facts(r.stdout);
      expect(k.TYPE, show(r)).toBe('character special file 1:3');
      expect(k.BYTES, show(r)).toBe('0');
    });

    it('control: the same file unmasked is not empty inside the container', async () => {
      const f = maskedFile!;
      const dir = bundle((s) => {
        s.linux.maskedPaths = s.linux.maskedPaths.filter((p: string) => p !== f);
        sh(`echo "BYTES=$(head -c 64 ${f} | wc -c)"`)(s);
      });
      const r = await run(dir, 'unmaskfile');
      expect(r.code, show(r)).toBe(0);
      expect(Number(facts(r.stdout).BYTES), show(r)).toBeGreaterThan(0);
    });

    it('CVE-2025-31133 (masked directories, ST_RDONLY): masked directories are empty and read-only', async () => {
      expect(maskedDirs.length).toBeGreaterThan(0);
      // /sys/firmware has entries on the host: its emptiness inside is the masking
      expect(existsSync('/sys/firmware') && readdirSync('/sys/firmware').length > 0, 'host /sys/firmware should be non-empty').toBe(true);
      const script = maskedDirs
        .map((d, i) =>
          [`echo "D${i}_ENTRIES=$(ls -A ${d} | wc -l)"`, probe(`D${i}_TOUCH`, `touch ${d}/tsrun-x`), probe(`D${i}_MKDIR`, `mkdir ${d}/tsrun-y`)].join('; '),
        )
        .join('; ');
      const r = await run(bundle(sh(script)), 'maskdir');
      expect(r.code, show(r)).toBe(0);
      const k = facts(r.stdout);
      maskedDirs.forEach((d, i) => {
        expect(k[`D${i}_ENTRIES`], `${d}\n${show(r)}`).toBe('0');
        expect(k[`D${i}_TOUCH`], `${d}\n${show(r)}`).not.toBe('0');
        expect(k[`D${i}_TOUCH_OUT`], `${d}\n${show(r)}`).toMatch(/Read-only file system/);
        expect(k[`D${i}_MKDIR`], `${d}\n${show(r)}`).not.toBe('0');
      });
    });

    it('/proc/sys (readonlyPaths) is read-only: writing kernel/hostname fails with EROFS', async () => {
      const dir = bundle((s) => {
        expect(s.linux.readonlyPaths).toContain('/proc/sys');
        sh(`${probe('W', 'echo tsrun-ro-probe > /proc/sys/kernel/hostname')}; echo "HN=$(hostname)"`)(s);
      });
      const r = await run(dir, 'procsys');
      expect(r.code, show(r)).toBe(0);
      const k = facts(r.stdout);
      expect(k.W, show(r)).not.toBe('0');
      expect(k.W_OUT, show(r)).toMatch(/Read-only file system/);
      expect(k.HN, show(r)).toBe('tsrun');
    });

    it('control: without /proc/sys in readonlyPaths the same write succeeds (in the container UTS namespace only)', async () => {
      const hostBefore = os.hostname();
      const dir = bundle((s) => {
        s.linux.readonlyPaths = s.linux.readonlyPaths.filter((p: string) => p !== '/proc/sys');
        sh(`${probe('W', 'echo tsrun-rw-probe > /proc/sys/kernel/hostname')}; echo "HN=$(hostname)"`)(s);
      });
      const r = await run(dir, 'procsysrw');
      const hostAfter = os.hostname();
      if (hostAfter !== hostBefore) writeFileSync('/proc/sys/kernel/hostname', hostBefore); // repair before failing
      expect(hostAfter, 'the host hostname changed: no UTS namespace?').toBe(hostBefore);
      expect(r.code, show(r)).toBe(0);
      const k = facts(r.stdout);
      expect(k.W, show(r)).toBe('0');
      expect(k.HN, show(r)).toBe('tsrun-rw-probe');
    });

    it('a custom readonly path in a writable rootfs is read-only; its sibling stays writable', async () => {
      const dir = bundle(
        (s) => {
          s.root.readonly = false;
          s.linux.readonlyPaths.push('/ro-data');
          sh(`${probe('RO', 'touch /ro-data/f')}; ${probe('RW', 'touch /rw-data/f')}; echo "RO_OLD=$(cat /ro-data/old)"`)(s);
        },
        {
          prepareRootfs: (rootfs) => {
            mkdirSync(path.join(rootfs, 'ro-data'));
            mkdirSync(path.join(rootfs, 'rw-data'));
            writeFileSync(path.join(rootfs, 'ro-data/old'), 'still-readable');
          },
        },
      );
      const r = await run(dir, 'customro');
      expect(r.code, show(r)).toBe(0);
      const k = facts(r.stdout);
      expect(k.RO, show(r)).not.toBe('0');
      expect(k.RO_OUT, show(r)).toMatch(/Read-only file system/);
      expect(k.RO_OLD, show(r)).toBe('still-readable');
      expect(k.RW, show(r)).toBe('0');
      expect(existsSync(path.join(dir, 'rootfs/ro-data/f'))).toBe(false);
      expect(existsSync(path.join(dir, 'rootfs/rw-data/f')), 'the writable sibling write should land in the rootfs').toBe(true);
    });
  });

  // ------------------------------------------------------------------------------------------
  describe('4. CVE-2026-41579 / CVE-2026-47766 (/dev symlink in the image): rootfs /dev is a symlink out of the rootfs (crun test_dev_symlink_does_not_populate_outside_rootfs)', () => {
    const devSymlinkBundle = () =>
      bundle((s) => sh(`stat -c 'NULL=%F %t:%T' /dev/null; echo "ZERO=$(head -c 4 /dev/zero | wc -c)"`)(s), {
        prepareRootfs: (rootfs) => {
          rmSync(path.join(rootfs, 'dev'), { recursive: true, force: true });
          symlinkSync('../outside-dev', path.join(rootfs, 'dev'));
          mkdirSync(path.join(rootfs, '../outside-dev'));
          writeFileSync(path.join(rootfs, '../outside-dev/marker'), 'marker');
        },
      });

    it('CVE-2026-47766 (/dev symlink): nothing is created in the directory the symlink points to (no nodes, links or mounts)', async () => {
      const dir = devSymlinkBundle();
      const outside = path.join(dir, 'outside-dev');
      const r = await run(dir, 'devlink');
      expect(readdirSync(outside).sort(), show(r)).toEqual(['marker']);
      expect(readFileSync(path.join(outside, 'marker'), 'utf8')).toBe('marker');
      expect(mountsMentioning(outside)).toEqual([]);
      expect(
        existsSync(path.join(dir, 'rootfs/outside-dev')) ? readdirSync(path.join(dir, 'rootfs/outside-dev')) : [],
        'nothing left in the rootfs either',
      ).toEqual([]);
    });

    it('CVE-2026-41579 (/dev symlink): the container still runs, with a fresh /dev of its own', async () => {
      const dir = devSymlinkBundle();
      const r = await run(dir, 'devlink2');
      expect(r.code, show(r)).toBe(0);
      const k = facts(r.stdout);
      expect(k.NULL, show(r)).toBe('character special file 1:3');
      expect(k.ZERO, show(r)).toBe('4');
      expect(readdirSync(path.join(dir, 'outside-dev'))).toEqual(['marker']);
    });
  });

  // ------------------------------------------------------------------------------------------
  describe('5. symlinked mount destinations', () => {
    it('CVE-2021-30465 (symlinked mount destination): a destination that is an absolute symlink to a host dir is refused; the host dir is untouched', async () => {
      const hostDir = path.join(base.tmp, 'evil-host-dir');
      const src = path.join(base.tmp, 'evil-src');
      mkdirSync(hostDir);
      mkdirSync(src);
      writeFileSync(path.join(hostDir, 'marker'), 'host');
      writeFileSync(path.join(src, 'from-src'), 'src');
      const dir = bundle(
        (s) => {
          s.process.args = ['/bin/ls', '/evil'];
          s.mounts.push({ destination: '/evil', type: 'bind', source: src, options: ['rbind'] });
        },
        { prepareRootfs: (rootfs) => symlinkSync(hostDir, path.join(rootfs, 'evil')) },
      );
      const id = newId('evil');
      const r = await oci(root, ['create', '--bundle', dir, id]);
      expect(r.code, show(r)).not.toBe(0);
      expect(r.stderr, show(r)).toMatch(/symlink/i);
      expect(r.stderr, show(r)).toContain('/evil');
      expect(readdirSync(hostDir)).toEqual(['marker']);
      expect(mountsMentioning(hostDir), 'a mount on the host dir').toEqual([]);
      expect(existsSync(path.join(root, id)), 'state dir left').toBe(false);
      const ls = await oci(root, ['list', '-q']);
      expect(ls.stdout.trim(), show(ls)).toBe('');
      expect(await until(() => leftoversFor(root, id, base.tmp).length === 0, 3000), leftoversFor(root, id, base.tmp).join('\n')).toBe(true);
    });

    it('CVE-2024-45310 (host file creation): /link/sub with /link -> / resolves inside the rootfs: the container sees the mount at /sub', async () => {
      const hostSubBefore = existsSync('/sub');
      const src = path.join(base.tmp, 'link-src');
      mkdirSync(src);
      writeFileSync(path.join(src, 'from-src'), 'src-content');
      const dir = bundle(
        (s) => {
          s.mounts.push({ destination: '/link/sub', type: 'bind', source: src, options: ['rbind', 'ro'] });
          sh(`echo "SUB=$(cat /sub/from-src)"; echo "VIA_LINK=$(cat /link/sub/from-src)"; grep -c ' /sub ' /proc/self/mountinfo | sed 's/^/MOUNTED=/'`)(s);
        },
        { prepareRootfs: (rootfs) => symlinkSync('/', path.join(rootfs, 'link')) },
      );
      const r = await run(dir, 'linksub');
      expect(r.code, show(r)).toBe(0);
      const k = facts(r.stdout);
      expect(k.SUB, show(r)).toBe('src-content');
      expect(k.VIA_LINK, show(r)).toBe('src-content');
      expect(k.MOUNTED, show(r)).toBe('1');
      // the mount point was created inside the rootfs copy, not on the host
      expect(lstatSync(path.join(dir, 'rootfs/sub')).isDirectory()).toBe(true);
      expect(existsSync('/sub')).toBe(hostSubBefore);
      expect(mountLinesAt('/sub'), 'host /sub is a mount point').toEqual([]);
    });
  });

  // ------------------------------------------------------------------------------------------
  describe('6. the runtime binary behind a created init cannot be opened from the container (CVE-2019-5736 class)', () => {
    it('CVE-2016-9962 / CVE-2019-5736 (non-dumpable init, runtime binary): exec into a created container: /proc/1/exe (the sealed tsrun-init) cannot be read or written', async () => {
      const dir = bundle((s) => (s.process.args = ['/bin/sleep', '1000']));
      const id = newId('exe');
      const pidFile = path.join(base.tmp, `${id}.pid`);
      const c = await oci(root, ['create', '--pid-file', pidFile, '--bundle', dir, id]);
      expect(c.code, show(c)).toBe(0);
      const pid = Number(readFileSync(pidFile, 'utf8'));
      expect(pid).toBeGreaterThan(1);
      // Meaningful only while the init has not exec'd yet: its exe is the runtime's helper, a
      // sealed memfd copy of tsrun-init (never the host's node: CVE-2019-5736 class).
      const exe = readlinkOrNull(`/proc/${pid}/exe`);
      expect(exe, 'init exe before start').toMatch(/^\/memfd:tsrun-init/);
      const before = sha256(`/proc/${pid}/exe`);

      const script = [
        probe('LINK', 'readlink /proc/1/exe'),
        probe('READ', 'cat /proc/1/exe > /dev/null'),
        probe('WRITE', 'echo x >> /proc/1/exe'),
        probe('SELF', 'cat /proc/self/exe > /dev/null'),
      ].join('; ');
      const e = await oci(root, ['exec', id, '/bin/sh', '-c', script]);
      expect(e.code, show(e)).toBe(0);
      const k = facts(e.stdout);
      expect(k.READ, show(e)).not.toBe('0');
      expect(k.READ_OUT, show(e)).toMatch(/Permission denied/);
      expect(k.WRITE, show(e)).not.toBe('0');
      expect(k.WRITE_OUT, show(e)).toMatch(/Permission denied/);
      expect(k.LINK, show(e)).not.toBe('0');
      // control: the exec'd process can read its own exe, so the refusal is about pid 1
      expect(k.SELF, show(e)).toBe('0');
      expect(sha256(`/proc/${pid}/exe`)).toBe(before);

      const st = await oci(root, ['state', id]);
      expect(JSON.parse(st.stdout).status, show(st)).toBe('created');

      // control: after start, pid 1 is the container's own (dumpable) program and readable
      const s = await oci(root, ['start', id]);
      expect(s.code, show(s)).toBe(0);
      expect(await until(() => readlinkOrNull(`/proc/${pid}/exe`)?.endsWith('busybox') ?? false, 5000)).toBe(true);
      const e2 = await oci(root, ['exec', id, '/bin/sh', '-c', probe('READ', 'cat /proc/1/exe > /dev/null')]);
      expect(e2.code, show(e2)).toBe(0);
      expect(facts(e2.stdout).READ, show(e2)).toBe('0');

      const d = await oci(root, ['delete', '--force', id]);
      expect(d.code, show(d)).toBe(0);
      expect(await until(() => leftoversFor(root, id, base.tmp).length === 0, 3000), leftoversFor(root, id, base.tmp).join('\n')).toBe(true);
    });
  });

  // ------------------------------------------------------------------------------------------
  describe('7. seccomp', () => {
    const script = `${probe('MKDIR', 'mkdir /tmp/x')}; ${probe('TOUCH', 'touch /tmp/y')}; echo "LS=$(ls /tmp | tr '\\n' ' ')"; grep '^Seccomp:' /proc/self/status | sed 's/^Seccomp:[[:space:]]*/MODE=/'`;
    const withTmp = (s: any) => {
      s.mounts.push({ destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777'] });
      sh(script)(s);
    };

    it('ERRNO(EPERM) for mkdir/mkdirat: mkdir fails with "Operation not permitted", touch works', async () => {
      const dir = bundle((s) => {
        withTmp(s);
        s.linux.seccomp = {
          defaultAction: 'SCMP_ACT_ALLOW',
          syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }],
        };
      });
      const r = await run(dir, 'seccomp');
      expect(r.code, show(r)).toBe(0);
      const k = facts(r.stdout);
      expect(k.MKDIR, show(r)).not.toBe('0');
      expect(k.MKDIR_OUT, show(r)).toMatch(/Operation not permitted/);
      expect(k.TOUCH, show(r)).toBe('0');
      expect(k.LS?.trim(), show(r)).toBe('y');
      expect(k.MODE, show(r)).toBe('2');
    });

    it('control: without linux.seccomp the same mkdir succeeds', async () => {
      const r = await run(bundle(withTmp), 'noseccomp');
      expect(r.code, show(r)).toBe(0);
      const k = facts(r.stdout);
      expect(k.MKDIR, show(r)).toBe('0');
      expect(k.LS?.trim().split(' ').sort(), show(r)).toEqual(['x', 'y']);
      expect(k.MODE, show(r)).toBe('0');
    });
  });

  // ------------------------------------------------------------------------------------------
  describe('8. user and groups', () => {
    it('CVE-2023-25173 (primary gid in supplementary groups): uid 1000 gid 1000 additionalGids [2000] → id shows groups=1000,2000', async () => {
      const dir = bundle((s) => {
        s.process.user = { uid: 1000, gid: 1000, additionalGids: [2000] };
        sh(
          `echo "ID=$(id)"; grep -E '^(Uid|Gid|Groups):' /proc/self/status | sed 's/:[[:space:]]*/=/; s/[[:space:]]*$//; s/^Uid/UID/; s/^Gid/GID/; s/^Groups/GROUPS/'`,
        )(s);
      });
      const r = await run(dir, 'uid');
      expect(r.code, show(r)).toBe(0);
      const k = facts(r.stdout);
      expect(k.ID, show(r)).toBe('uid=1000 gid=1000 groups=1000,2000');
      expect(k.UID?.split(/\s+/), show(r)).toEqual(['1000', '1000', '1000', '1000']);
      expect(k.GID?.split(/\s+/), show(r)).toEqual(['1000', '1000', '1000', '1000']);
      expect(k.GROUPS?.split(/\s+/), show(r)).toEqual(['1000', '2000']);
    });
  });
});

/** Host mountinfo lines whose mount point is exactly `mp`. */
function mountLinesAt(mp: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.split(' ')[4] === mp);
}
