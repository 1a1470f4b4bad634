// What a user of `tsrun` sees of a container's filesystem, through the real CLI: -v binds and
// named volumes (sharing, ls/inspect/rm/prune, seeding from the image), --mount, --tmpfs and
// --read-only, cp both ways (also through symlinks a hostile container planted, and through its
// volumes), diff, commit (with --change), images a container still uses, and the create flags
// that shape the process's view (-w, --entrypoint, -e/--env-file, --hostname, -l, -u).
//
// Each expectation is docker's behaviour. A private store and run root (helpers/engine.ts) per
// describe; host-side scratch dirs come from tempDir and are removed when the file ends.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/tmp-dir.js';
import { type Engine, engineSkipReason, makeEngine, type Result, show } from './helpers/engine.js';

const skip = engineSkipReason();
if (skip) console.warn(`[engine-fs.test] SKIPPED: ${skip}`);

interface Inspected {
  Id: string;
  Mounts: Array<{ Type: string; Name?: string; Source: string; Destination: string; RW: boolean }>;
  Config: { Labels: Record<string, string>; Env: string[] };
  GraphDriver: { Data: { LowerDir: string } };
}

interface VolumeJson {
  Name: string;
  Mountpoint: string;
}

/** The lines of `/proc/mounts` inside a container for one mount point. */
const mountLine = (mounts: string, dst: string) => mounts.split('\n').find((l) => l.split(' ')[1] === dst) ?? '';

describe.skipIf(!!skip)('tsrun: volumes, mounts, cp, diff, commit, create flags', () => {
  let e: Engine;
  let host: string;

  /** Run tsrun and require exit 0 (the message shows the command and its output). */
  const ok = async (args: string[], o?: { input?: string; timeoutMs?: number }): Promise<Result> => {
    const r = await e.tsrun(args, o);
    expect(r.code, `tsrun ${args.join(' ')}\n${show(r)}`).toBe(0);
    return r;
  };
  const inspect = async (ref: string): Promise<Inspected> => (JSON.parse((await ok(['inspect', ref])).stdout) as Inspected[])[0]!;
  const volume = async (name: string): Promise<VolumeJson> => (JSON.parse((await ok(['volume', 'inspect', name])).stdout) as VolumeJson[])[0]!;
  const volumeNames = async () => (await ok(['volume', 'ls', '-q'])).stdout.split('\n').filter(Boolean);
  const containerCount = () => e.tsrunSync(['ps', '-a', '-q']).stdout.split('\n').filter(Boolean).length;

  beforeAll(() => {
    e = makeEngine('tsrun-engine-fs');
    host = tempDir('tsrun-engine-fs-host-');
  });
  afterAll(async () => {
    if (!e) return;
    const problems = await e.teardown();
    expect(problems, problems.join('\n')).toEqual([]);
  });

  /** A fresh host dir under the test's scratch dir. */
  const hostDir = (name: string) => {
    const d = path.join(host, name);
    mkdirSync(d, { recursive: true });
    return d;
  };

  describe('-v HOSTDIR:/dst', () => {
    it('shows a file the container wrote on the host', async () => {
      const d = hostDir('bind-rw');
      await ok(['run', '--rm', '-v', `${d}:/dst`, 'busybox', 'sh', '-c', 'echo from-container > /dst/f']);
      expect(readFileSync(path.join(d, 'f'), 'utf8')).toBe('from-container\n');
    });

    it('refuses writes under :ro, and the host dir stays untouched', async () => {
      const d = hostDir('bind-ro');
      writeFileSync(path.join(d, 'existing'), 'host\n');
      const r = await e.tsrun(['run', '--rm', '-v', `${d}:/dst:ro`, 'busybox', 'sh', '-c', 'cat /dst/existing; echo x > /dst/new']);
      expect(r.code, show(r)).not.toBe(0);
      expect(r.stdout).toBe('host\n');
      expect(r.stderr).toMatch(/Read-only file system/);
      expect(readdirSync(d)).toEqual(['existing']);
    });

    it.each([
      ['a relative path', 'rel/dir:/dst'],
      ['a ./relative path', './rel:/dst'],
      ['an empty source', ':/dst'],
      ['an empty spec', ''],
    ])('refuses %s with exit 125 and a one-line error', async (_what, spec) => {
      const before = containerCount();
      const r = await e.tsrun(['run', '--rm', '-v', spec, 'busybox', 'true']);
      expect(r.code, show(r)).toBe(125);
      expect(r.stdout).toBe('');
      const lines = r.stderr.trim().split('\n');
      expect(lines, show(r)).toHaveLength(1);
      expect(lines[0]).toMatch(/^tsrun: .*-v/);
      expect(r.stderr).not.toMatch(/at .*\.js/);
      expect(containerCount()).toBe(before);
    });
  });

  describe('named volumes', () => {
    it('keeps data across containers; ls, inspect, rm refused while a stopped container uses it', async () => {
      await ok(['run', '--name', 'vol1-writer', '-v', 'vol1:/data', 'busybox', 'sh', '-c', 'echo one > /data/f']);
      const r = await ok(['run', '--rm', '-v', 'vol1:/data', 'busybox', 'cat', '/data/f']);
      expect(r.stdout).toBe('one\n');

      expect(await volumeNames()).toContain('vol1');
      expect((await ok(['volume', 'ls'])).stdout).toMatch(/^local\s+vol1$/m);
      const v = await volume('vol1');
      expect(v.Name).toBe('vol1');
      expect(statSync(v.Mountpoint).isDirectory()).toBe(true);
      expect(readFileSync(path.join(v.Mountpoint, 'f'), 'utf8')).toBe('one\n');

      // docker: "remove vol1: volume is in use - [<container id>]", for a stopped container too.
      const id = (await inspect('vol1-writer')).Id;
      const refused = await e.tsrun(['volume', 'rm', 'vol1']);
      expect(refused.code, show(refused)).not.toBe(0);
      expect(refused.stderr).toMatch(/in use/);
      expect(refused.stderr.includes(id.slice(0, 12)) || refused.stderr.includes('vol1-writer'), show(refused)).toBe(true);
      expect(existsSync(path.join(v.Mountpoint, 'f'))).toBe(true);

      await ok(['rm', 'vol1-writer']);
      const rm = await ok(['volume', 'rm', 'vol1']);
      expect(rm.stdout).toBe('vol1\n');
      expect(await volumeNames()).not.toContain('vol1');
      expect(existsSync(v.Mountpoint)).toBe(false);
    });

    it('prune removes unused anonymous volumes by default; -a also named ones; never one in use', async () => {
      await ok(['volume', 'create', 'prune-named']);
      await ok(['create', '--name', 'anon-gone', '-v', '/anon', 'busybox', 'true']);
      const gone = (await inspect('anon-gone')).Mounts.find((m) => m.Destination === '/anon')!.Name!;
      await ok(['rm', 'anon-gone']); // without -v: its anonymous volume stays, unused
      await ok(['create', '--name', 'anon-kept', '-v', '/anon', 'busybox', 'true']);
      const kept = (await inspect('anon-kept')).Mounts.find((m) => m.Destination === '/anon')!.Name!;
      expect(gone).toMatch(/^[0-9a-f]{64}$/);
      expect(await volumeNames()).toEqual(expect.arrayContaining([gone, kept, 'prune-named']));

      const p = await ok(['volume', 'prune', '-f']);
      expect(p.stdout.split('\n')).toContain(gone);
      let names = await volumeNames();
      expect(names).not.toContain(gone);
      expect(names).toContain(kept);
      expect(names).toContain('prune-named');

      const pa = await ok(['volume', 'prune', '-a', '-f']);
      expect(pa.stdout.split('\n')).toContain('prune-named');
      names = await volumeNames();
      expect(names).not.toContain('prune-named');
      expect(names).toContain(kept);

      await ok(['rm', '-v', 'anon-kept']);
      expect(await volumeNames()).not.toContain(kept);
    });

    it("seeds a new volume from the image's content at the mount point, once", async () => {
      await ok(['run', '--name', 'seed-maker', 'busybox', 'sh', '-c', 'mkdir /seed && echo from-image > /seed/hello']);
      await ok(['commit', 'seed-maker', 'localhost/seeded:1']);
      await ok(['rm', 'seed-maker']);

      const first = await ok(['run', '--rm', '-v', 'newvol:/seed', 'localhost/seeded:1', 'cat', '/seed/hello']);
      expect(first.stdout).toBe('from-image\n');
      await ok(['run', '--rm', '-v', 'newvol:/seed', 'localhost/seeded:1', 'sh', '-c', 'echo changed > /seed/hello; echo x > /seed/extra']);
      const second = await ok(['run', '--rm', '-v', 'newvol:/seed', 'localhost/seeded:1', 'sh', '-c', 'cat /seed/hello; ls /seed']);
      expect(second.stdout).toBe('changed\nextra\nhello\n');
      expect(readFileSync(path.join((await volume('newvol')).Mountpoint, 'hello'), 'utf8')).toBe('changed\n');
    });
  });

  describe('--mount, --tmpfs, --read-only', () => {
    it('--mount type=bind,...,readonly: readable, not writable', async () => {
      const d = hostDir('mount-bind');
      writeFileSync(path.join(d, 'b'), 'content\n');
      const r = await e.tsrun(['run', '--rm', '--mount', `type=bind,source=${d},target=/b,readonly`, 'busybox', 'sh', '-c', 'cat /b/b; echo x > /b/y']);
      expect(r.code, show(r)).not.toBe(0);
      expect(r.stdout).toBe('content\n');
      expect(r.stderr).toMatch(/Read-only file system/);
      expect(readdirSync(d)).toEqual(['b']);
    });

    it('--mount type=volume,source=v2,target=/v: a named volume', async () => {
      await ok(['run', '--rm', '--mount', 'type=volume,source=v2,target=/v', 'busybox', 'sh', '-c', 'echo in-v2 > /v/f']);
      expect(await volumeNames()).toContain('v2');
      expect(readFileSync(path.join((await volume('v2')).Mountpoint, 'f'), 'utf8')).toBe('in-v2\n');
      const r = await ok(['run', '--rm', '--mount', 'type=volume,source=v2,target=/other', 'busybox', 'cat', '/other/f']);
      expect(r.stdout).toBe('in-v2\n');
    });

    it('--mount type=tmpfs,tmpfs-size=1m and --tmpfs /run2:size=2m are sized tmpfs mounts', async () => {
      const r = await ok([
        'run',
        '--rm',
        '--mount',
        'type=tmpfs,target=/t,tmpfs-size=1m',
        '--tmpfs',
        '/run2:size=2m',
        'busybox',
        'sh',
        '-c',
        'cat /proc/mounts; echo ---; df -k /t',
      ]);
      const [mounts, df] = r.stdout.split('---\n') as [string, string];
      expect(mountLine(mounts, '/t')).toMatch(/^tmpfs \/t tmpfs \S*size=1024k/);
      expect(mountLine(mounts, '/run2')).toMatch(/^tmpfs \/run2 tmpfs \S*size=2048k/);
      expect(df).toMatch(/\s1024\s+\d+\s+\d+\s+\d+%\s+\/t$/m);
    });

    it('--read-only: writing / fails, writing the tmpfs works', async () => {
      const r = await e.tsrun(['run', '--rm', '--read-only', '--tmpfs', '/run2', 'busybox', 'sh', '-c', 'echo w > /run2/ok && cat /run2/ok; touch /nope']);
      expect(r.code, show(r)).not.toBe(0);
      expect(r.stdout).toBe('w\n');
      expect(r.stderr).toMatch(/Read-only file system/);
    });
  });

  describe('cp', () => {
    beforeAll(async () => {
      await ok(['run', '-d', '--name', 'cpc', 'busybox', 'sleep', '1000']);
    });

    it('copies a file and a directory from the host into the container', async () => {
      const src = hostDir('cp-in');
      const bin = randomBytes(64 * 1024);
      writeFileSync(path.join(src, 'blob'), bin);
      mkdirSync(path.join(src, 'tree/sub'), { recursive: true });
      writeFileSync(path.join(src, 'tree/a'), 'a\n');
      writeFileSync(path.join(src, 'tree/sub/b'), 'b\n');

      await ok(['cp', path.join(src, 'blob'), 'cpc:/tmp/blob']);
      await ok(['cp', path.join(src, 'tree'), 'cpc:/tmp/']);
      const sum = await ok(['exec', 'cpc', 'sh', '-c', 'md5sum /tmp/blob; cat /tmp/tree/a /tmp/tree/sub/b']);
      const md5 = createHash('md5').update(bin).digest('hex');
      expect(sum.stdout).toBe(`${md5}  /tmp/blob\na\nb\n`);
    });

    it('copies a file and a directory from the container to the host', async () => {
      await ok([
        'exec',
        'cpc',
        'sh',
        '-c',
        'mkdir -p /out/d/e; echo of > /out/f; echo o > /out/d/o; echo deep > /out/d/e/deep; head -c 50000 /bin/busybox > /out/bin',
      ]);
      const dst = hostDir('cp-out');
      await ok(['cp', 'cpc:/out/f', `${dst}/`]);
      await ok(['cp', 'cpc:/out/d', `${dst}/`]);
      await ok(['cp', 'cpc:/out/bin', path.join(dst, 'bin-renamed')]);
      expect(readFileSync(path.join(dst, 'f'), 'utf8')).toBe('of\n');
      expect(readFileSync(path.join(dst, 'd/o'), 'utf8')).toBe('o\n');
      expect(readFileSync(path.join(dst, 'd/e/deep'), 'utf8')).toBe('deep\n');
      const busybox = (await ok(['exec', 'cpc', 'md5sum', '/out/bin'])).stdout.split(' ')[0];
      const md5 = createHash('md5')
        .update(readFileSync(path.join(dst, 'bin-renamed')))
        .digest('hex');
      expect(md5).toBe(busybox);
    });

    it("never writes through a container's symlink to the host", async () => {
      await ok(['exec', 'cpc', 'sh', '-c', 'ln -s / /escape && ln -s /etc /etcl']);
      const name = `tsrun-cp-escape-${process.pid}-${randomBytes(4).toString('hex')}`;
      const hostTarget = path.join('/tmp', name);
      const src = path.join(hostDir('cp-escape'), 'payload');
      writeFileSync(src, 'payload\n');
      try {
        const r = await e.tsrun(['cp', src, `cpc:/escape/tmp/${name}`]);
        expect(existsSync(hostTarget), `the host's ${hostTarget} was written: ${show(r)}`).toBe(false);
        // docker resolves the symlink inside the container's root: the file lands in its /tmp.
        expect(r.code, show(r)).toBe(0);
        expect((await ok(['exec', 'cpc', 'cat', `/tmp/${name}`])).stdout).toBe('payload\n');
      } finally {
        rmSync(hostTarget, { force: true });
      }
    });

    it("never reads the host's file through a container's symlink", async () => {
      const hostShadow = existsSync('/etc/shadow') ? readFileSync('/etc/shadow') : undefined;
      const check = async (dir: string, expected: string | undefined) => {
        const r = await e.tsrun(['cp', 'cpc:/etcl/shadow', `${dir}/`]);
        const got = path.join(dir, 'shadow');
        if (r.code !== 0) {
          expect(existsSync(got), show(r)).toBe(false);
          return r;
        }
        const content = readFileSync(got);
        if (hostShadow) expect(content.equals(hostShadow), "cp copied the host's /etc/shadow").toBe(false);
        expect(content.toString(), show(r)).toBe(expected);
        return r;
      };
      // busybox has no /etc/shadow: the copy fails (and must not find the host's).
      const none = await check(hostDir('cp-shadow-none'), undefined);
      expect(none.code, show(none)).not.toBe(0);
      await ok(['exec', 'cpc', 'sh', '-c', 'echo container-shadow > /etc/shadow']);
      const mine = await check(hostDir('cp-shadow-ctr'), 'container-shadow\n');
      expect(mine.code, show(mine)).toBe(0);
      // The same through the symlink to / as a middle component.
      const dst = hostDir('cp-shadow-escape');
      await ok(['cp', 'cpc:/escape/etc/shadow', `${dst}/`]);
      expect(readFileSync(path.join(dst, 'shadow'), 'utf8')).toBe('container-shadow\n');
    });

    // docker cp mounts the container's volumes and binds for the copy: a path under one is the
    // volume's content, both ways (daemon/archive.go, container.MountVolumes).
    it("copies into and out of the container's bind mounts and volumes", async () => {
      const bind = hostDir('cp-bind');
      await ok(['run', '-d', '--name', 'cpv', '-v', `${bind}:/b`, '-v', 'cpvol:/v', 'busybox', 'sleep', '1000']);
      await ok(['exec', 'cpv', 'sh', '-c', 'echo in-volume > /v/y']);
      const src = path.join(hostDir('cp-bind-src'), 'fromhost');
      writeFileSync(src, 'from-host\n');

      const into = await e.tsrun(['cp', src, 'cpv:/b/fromhost']);
      expect(into.code, show(into)).toBe(0);
      expect((await ok(['exec', 'cpv', 'ls', '/b'])).stdout).toBe('fromhost\n');
      expect(readFileSync(path.join(bind, 'fromhost'), 'utf8')).toBe('from-host\n');

      const dst = hostDir('cp-vol-out');
      const out = await e.tsrun(['cp', 'cpv:/v/y', `${dst}/`]);
      expect(out.code, show(out)).toBe(0);
      expect(readFileSync(path.join(dst, 'y'), 'utf8')).toBe('in-volume\n');
    });
  });

  describe('diff and commit', () => {
    it('diff lists A, C and D against the image, never the mount points', async () => {
      const d = hostDir('diff-bind');
      await ok([
        'run',
        '--name',
        'differ',
        '-v',
        'diffvol:/vol',
        '-v',
        `${d}:/hostdir`,
        '-v',
        '/anon',
        '--tmpfs',
        '/tm',
        'busybox',
        'sh',
        '-c',
        'touch /newfile; rm /bin/vi; echo x >> /etc/group; echo v > /vol/v; echo h > /hostdir/h; echo a > /anon/a; echo t > /tm/t',
      ]);
      const r = await ok(['diff', 'differ']);
      const lines = r.stdout.split('\n').filter(Boolean);
      expect(lines).toEqual(expect.arrayContaining(['A /newfile', 'D /bin/vi', 'C /bin', 'C /etc', 'C /etc/group']));
      for (const l of lines) expect(l).toMatch(/^[ACD] \//);
      const mountPaths = ['/vol', '/hostdir', '/anon', '/tm'];
      expect(lines.filter((l) => mountPaths.some((m) => l.slice(2) === m || l.slice(2).startsWith(`${m}/`)))).toEqual([]);
      expect(lines).toHaveLength(5);
    });

    it('commit makes an image with the changes; --change sets its CMD; images lists both tags', async () => {
      await ok(['run', '--name', 'committer', 'busybox', 'sh', '-c', 'echo added > /added; rm /bin/vi']);
      const id1 = (await ok(['commit', 'committer', 'localhost/committed:1'])).stdout.trim();
      expect(id1).toMatch(/^sha256:[0-9a-f]{64}$/);
      const r = await e.tsrun(['run', '--rm', 'localhost/committed:1', 'sh', '-c', 'cat /added; ls /bin/vi']);
      expect(r.code, show(r)).not.toBe(0);
      expect(r.stdout).toBe('added\n');
      expect(r.stderr).toMatch(/\/bin\/vi: No such file or directory/);

      await ok(['commit', '--change', 'CMD ["echo","from-cmd"]', 'committer', 'localhost/committed:2']);
      expect((await ok(['run', '--rm', 'localhost/committed:2'])).stdout).toBe('from-cmd\n');

      const images = (await ok(['images'])).stdout;
      expect(images).toMatch(/^localhost\/committed:1\s+[0-9a-f]{12}\s/m);
      expect(images).toMatch(/^localhost\/committed:2\s+[0-9a-f]{12}\s/m);
      expect(images).toMatch(new RegExp(`^localhost/committed:1\\s+${id1.slice(7, 19)}\\s`, 'm'));
    });
  });

  describe('create flags', () => {
    it('-w creates a missing working directory', async () => {
      expect((await ok(['run', '--rm', '-w', '/newdir/sub', 'busybox', 'pwd'])).stdout).toBe('/newdir/sub\n');
      const owned = await ok(['run', '--rm', '-u', 'nobody', '-w', '/wd', 'busybox', 'sh', '-c', 'pwd; stat -c %U /wd; touch f && echo wrote']);
      expect(owned.stdout).toBe('/wd\nnobody\nwrote\n');
    });

    it("--entrypoint replaces the entrypoint and drops the image's Cmd", async () => {
      // busybox's Cmd is ["sh"]: kept, it would print "sh".
      expect((await ok(['run', '--rm', '--entrypoint', 'echo', 'busybox'])).stdout).toBe('\n');
      expect((await ok(['run', '--rm', '--entrypoint', 'echo', 'busybox', 'hi', 'there'])).stdout).toBe('hi there\n');
    });

    it('-e and --env-file reach the environment (comments and blank lines skipped)', async () => {
      const f = path.join(hostDir('envfile'), 'env');
      writeFileSync(f, '# a comment\nFROMFILE=file-value\n\nSPACED=a b\nOVERRIDDEN=file\n');
      const r = await ok(['run', '--rm', '--env-file', f, '-e', 'A=1', '-e', 'OVERRIDDEN=flag', '-e', 'EMPTY=', 'busybox', 'env']);
      const env = r.stdout.split('\n');
      expect(env).toEqual(expect.arrayContaining(['FROMFILE=file-value', 'SPACED=a b', 'A=1', 'OVERRIDDEN=flag', 'EMPTY=']));
      expect(env.filter((l) => l.startsWith('OVERRIDDEN='))).toEqual(['OVERRIDDEN=flag']);
      expect(env.some((l) => l.startsWith('#'))).toBe(false);
    });

    it('-e NAME takes the value from the caller, and leaves NAME unset when the caller has none', async () => {
      const env: NodeJS.ProcessEnv = { ...process.env, TSRUN_FS_PASSED: 'passed-through' };
      delete env.TSRUN_FS_SURELY_UNSET;
      const r = await e.tsrun(['run', '--rm', '-e', 'TSRUN_FS_PASSED', '-e', 'TSRUN_FS_SURELY_UNSET', 'busybox', 'env'], { env });
      expect(r.code, show(r)).toBe(0);
      const lines = r.stdout.split('\n');
      expect(lines).toContain('TSRUN_FS_PASSED=passed-through');
      // docker: "If the variable isn't exported in your local environment, it isn't set in the container."
      expect(lines.filter((l) => l.startsWith('TSRUN_FS_SURELY_UNSET'))).toEqual([]);
    });

    it('--hostname sets the hostname and HOSTNAME', async () => {
      const r = await ok(['run', '--rm', '--hostname', 'myhost', 'busybox', 'sh', '-c', 'hostname; echo $HOSTNAME']);
      expect(r.stdout).toBe('myhost\nmyhost\n');
    });

    it('--hostname is in /etc/hostname, as docker writes it', async () => {
      const r = await e.tsrun(['run', '--rm', '--hostname', 'myhost', 'busybox', 'cat', '/etc/hostname']);
      expect(r.code, show(r)).toBe(0);
      expect(r.stdout).toBe('myhost\n');
    });

    it('-l k=v shows in inspect .Config.Labels', async () => {
      await ok(['create', '--name', 'labelled', '-l', 'k=v', '-l', 'with=an=equals', 'busybox', 'true']);
      expect((await inspect('labelled')).Config.Labels).toEqual({ k: 'v', with: 'an=equals' });
      const f = await ok(['inspect', '-f', '{{index .Config.Labels "k"}}', 'labelled']);
      expect(f.stdout).toBe('v\n');
      await ok(['rm', 'labelled']);
    });

    it("-u takes a name from the image's /etc/passwd", async () => {
      expect((await ok(['run', '--rm', '-u', 'nobody', 'busybox', 'sh', '-c', 'id -u; id -un; id -g'])).stdout).toBe('65534\nnobody\n65534\n');
      const r = await e.tsrun(['run', '--rm', '-u', 'no-such-user', 'busybox', 'id']);
      expect(r.code, show(r)).toBe(125);
      expect(r.stderr).toMatch(/no-such-user/);
    });
  });
});

describe.skipIf(!!skip)('tsrun: the images a container uses stay usable', () => {
  let e: Engine;
  const ok = async (args: string[]): Promise<Result> => {
    const r = await e.tsrun(args);
    expect(r.code, `tsrun ${args.join(' ')}\n${show(r)}`).toBe(0);
    return r;
  };
  beforeAll(() => {
    e = makeEngine('tsrun-engine-fs-images');
  });
  afterAll(async () => {
    if (!e) return;
    const problems = await e.teardown();
    expect(problems, problems.join('\n')).toEqual([]);
  });

  it('rmi and image prune -a keep the layers of a stopped container: start -a, diff and commit still work', async () => {
    await ok(['run', '--name', 'keep', 'busybox', 'sh', '-c', 'echo kept; echo x > /made']);
    const lower = (JSON.parse((await ok(['inspect', 'keep'])).stdout) as Inspected[])[0]!.GraphDriver.Data.LowerDir;
    expect(lower.startsWith(path.join(e.root, 'layers'))).toBe(true);

    // docker: the last tag of an image a container uses is not removed without -f.
    const refused = await e.tsrun(['rmi', 'localhost/busybox:latest']);
    expect(refused.code, show(refused)).not.toBe(0);
    expect(refused.stderr).toMatch(/in use|is using/);
    await ok(['image', 'prune', '-a']);
    expect((await ok(['start', '-a', 'keep'])).stdout).toBe('kept\n');

    // -f untags; the image itself stays while the container exists.
    expect((await ok(['rmi', '-f', 'localhost/busybox:latest'])).stdout).toMatch(/untagged: localhost\/busybox:latest/);
    expect((await ok(['images'])).stdout).not.toMatch(/localhost\/busybox:latest/);
    await ok(['image', 'prune', '-a']);
    for (const dir of lower.split(':')) expect(existsSync(dir), `${dir} was pruned`).toBe(true);
    expect((await ok(['start', '-a', 'keep'])).stdout).toBe('kept\n');
    expect((await ok(['diff', 'keep'])).stdout).toMatch(/^A \/made$/m);
    // docker keeps the untagged image of a container through prune -a: commit still finds its base.
    await ok(['commit', 'keep', 'localhost/after-prune:1']);
    expect((await ok(['run', '--rm', 'localhost/after-prune:1', 'cat', '/made'])).stdout).toBe('x\n');
  });
});
