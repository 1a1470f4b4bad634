// `tsrun build`, asserted from the outside as a user sees it: the build's output (STEP lines,
// "--> Using cache", the image id), its exit code and error messages, `tsrun run` of the result,
// `tsrun image inspect` (the image config docker and podman would write) and the files in the
// image. Expected behaviour is docker's (and podman's, where they agree): the Dockerfile
// reference's rules for every instruction, the build context's confinement, the layer cache,
// multi-stage builds, .dockerignore, build args, SOURCE_DATE_EPOCH and the CLI flags.
//
// One private engine per file (makeEngine: --root/--runroot in its own tmp dir, localhost/busybox
// loaded); contexts are tempDirs; the ADD-from-URL tests use an http server of this process on
// 127.0.0.1 (an ephemeral port), and the "unreachable URL" one a loopback port where nothing
// listens: no packet ever leaves the host. Needs root (overlay mounts, containers); skipped with
// the reason otherwise.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import * as tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/tmp-dir.js';
import { type Engine, engineSkipReason, leftovers, makeEngine, type Result, show, until } from './helpers/engine.js';

const skip = engineSkipReason();
if (skip) console.warn(`[build.test] SKIPPED: ${skip}`);

const BUSYBOX = 'localhost/busybox';
const ARCH =
  ({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' } as Record<string, string>)[process.arch] ?? process.arch;

// ---------------------------------------------------------------------------------------------
// fixtures

type Entry = string | Buffer | { link: string } | { content: string | Buffer; mode: number };

/** A build context in a tempDir: relative path -> content, symlink or content with a mode. */
function context(files: Record<string, Entry>): string {
  const dir = tempDir('tsrun-build-ctx-');
  for (const [rel, v] of Object.entries(files)) {
    const p = join(dir, rel);
    mkdirSync(dirname(p), { recursive: true });
    if (typeof v === 'string' || Buffer.isBuffer(v)) writeFileSync(p, v);
    else if ('link' in v) symlinkSync(v.link, p);
    else {
      writeFileSync(p, v.content);
      chmodSync(p, v.mode);
    }
  }
  return dir;
}

interface TarEntry {
  name: string;
  content?: string;
  type?: 'file' | 'directory' | 'symlink';
  linkname?: string;
  mode?: number;
}

/** A tar made with tar-stream (entries exactly as given: hostile names and links included). */
async function makeTar(entries: TarEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => {
    chunks.push(c as Buffer);
  });
  const done = new Promise<void>((resolve, reject) => {
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  for (const en of entries) {
    const type = en.type ?? 'file';
    const header = {
      name: en.name,
      type,
      mode: en.mode ?? (type === 'directory' ? 0o755 : 0o644),
      mtime: new Date(1_600_000_000_000),
      uid: 0,
      gid: 0,
      ...(en.linkname ? { linkname: en.linkname } : {}),
    };
    if (type === 'file') pack.entry(header, en.content ?? '');
    else pack.entry(header);
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

interface Step {
  n: number;
  text: string;
  /** "cache": "--> Using cache"; "new": a layer made now; undefined: no layer (config-only step). */
  layer?: 'cache' | 'new';
  /** The lines between this STEP and the next (RUN output, the layer line). */
  lines: string[];
}

/** The build's STEP blocks, from its stdout. */
function steps(stdout: string): Step[] {
  const out: Step[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^STEP (\d+)\/\d+: (.*)$/.exec(line);
    if (m) {
      out.push({ n: Number(m[1]), text: m[2]!, lines: [] });
      continue;
    }
    const cur = out[out.length - 1];
    if (!cur) continue;
    cur.lines.push(line);
    if (/^--> Using cache [0-9a-f]{12}$/.test(line)) cur.layer = 'cache';
    else if (/^--> [0-9a-f]{12}$/.test(line)) cur.layer = 'new';
  }
  return out;
}

const LAYER_STEP = /^(RUN|COPY|ADD)\b/;

/** What the build printed besides its STEP lines (the RUNs' own output, the layer lines). */
const runOutput = (r: Result) =>
  r.stdout
    .split('\n')
    .filter((l) => !/^STEP \d+\/\d+: /.test(l))
    .join('\n');

/** The image id a successful build prints last on stdout. */
function imageId(r: Result): string {
  const last = r.stdout.trimEnd().split('\n').pop() ?? '';
  expect(last, show(r)).toMatch(/^sha256:[0-9a-f]{64}$/);
  return last;
}

/** No stack trace, and the error is said on one "tsrun: …" line (a "hint:" line may follow). */
function expectCleanError(r: Result): string {
  expect(r.code, show(r)).not.toBe(0);
  expect(r.stderr, show(r)).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);
  const errors = r.stderr.split('\n').filter((l) => /^(tsrun|Error)\b/.test(l));
  expect(errors, show(r)).toHaveLength(1);
  return errors[0]!;
}

/** Pids whose argv is exactly `argv`. */
function pidsOf(argv: string[]): number[] {
  const want = `${argv.join('\0')}\0`;
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return readFileSync(`/proc/${d}/cmdline`, 'utf8') === want;
      } catch {
        return false; // exited
      }
    })
    .map(Number);
}

/** The cgroup directories (every hierarchy) of a process, other than the roots. */
function cgroupDirsOf(pid: number): string[] {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' - '))
    .filter(([, post]) => /^cgroup2? /.test(post ?? ''))
    .map(([pre, post]) => ({ dir: pre!.split(' ')[4]!, v2: post!.startsWith('cgroup2 '), opts: (post!.split(' ')[2] ?? '').split(',') }));
  const out: string[] = [];
  for (const line of readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').filter(Boolean)) {
    const [, , ctrls, rel] = /^(\d+):([^:]*):(.*)$/.exec(line) ?? [];
    if (!rel || rel === '/') continue;
    const m = ctrls === '' ? mounts.find((x) => x.v2) : mounts.find((x) => !x.v2 && ctrls!.split(',').every((c) => x.opts.includes(c)));
    if (m) out.push(join(m.dir, rel));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

describe.skipIf(skip !== null)('tsrun build', () => {
  let e: Engine;
  let n = 0;
  /** A fresh tag for each image a test builds. */
  const tag = (what: string) => `localhost/build-it-${what}-${++n}:latest`;

  beforeAll(() => {
    e = makeEngine('tsrun-build-it');
  });
  afterAll(async () => {
    if (e) expect(await e.teardown()).toEqual([]);
  });

  /** `tsrun build [args] DIR` with the Containerfile given as text (written as DIR/Containerfile). */
  const build = (dir: string, containerfile: string | undefined, args: string[] = [], o: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}) => {
    if (containerfile !== undefined) writeFileSync(join(dir, 'Containerfile'), containerfile);
    return e.tsrun(['build', ...args, dir], { timeoutMs: o.timeoutMs ?? 120_000, ...(o.env ? { env: o.env } : {}) });
  };
  /** build, expecting success: the result and the image id. */
  const buildOk = async (dir: string, containerfile: string | undefined, args: string[] = [], o: { env?: NodeJS.ProcessEnv } = {}) => {
    const r = await build(dir, containerfile, args, o);
    expect(r.code, show(r)).toBe(0);
    return { r, id: imageId(r) };
  };
  /** `tsrun run --rm [flags] IMAGE [cmd]`: stdout, expecting success. */
  const run = async (args: string[]) => {
    const r = await e.tsrun(['run', '--rm', ...args]);
    expect(r.code, show(r)).toBe(0);
    return r.stdout;
  };
  /** sh -c SCRIPT in the image (entrypoint overridden), stdout. */
  const sh = (ref: string, script: string, flags: string[] = []) => run([...flags, '--entrypoint', 'sh', ref, '-c', script]);
  const inspect = async (ref: string) => {
    const r = await e.tsrun(['image', 'inspect', ref]);
    expect(r.code, show(r)).toBe(0);
    return (JSON.parse(r.stdout) as Array<Record<string, any>>)[0]!;
  };
  /** The image config's "config" (Env, Cmd, Entrypoint, Labels …). */
  const config = async (ref: string) => ((await inspect(ref)).config?.config ?? {}) as Record<string, any>;
  /** The image config's "config" as stored (the config blob itself, not inspect's rendering). */
  const rawConfig = (ref: string, img: Record<string, any>) => {
    const id = String(img.id);
    expect(id, ref).toMatch(/^sha256:[0-9a-f]{64}$/);
    const blob = JSON.parse(readFileSync(join(e.root, 'blobs', 'sha256', id.slice(7)), 'utf8')) as { config?: Record<string, any> };
    return blob.config ?? {};
  };
  const isTagged = async (ref: string) => (await e.tsrun(['image', 'inspect', ref])).code === 0;

  // -------------------------------------------------------------------------------------------
  describe('instructions', () => {
    it('FROM scratch: COPY --from a busybox stage, the image runs its CMD', async () => {
      const ref = tag('scratch');
      const dir = context({});
      const { id } = await buildOk(
        dir,
        `FROM ${BUSYBOX} AS b\nFROM scratch\nCOPY --from=b /bin/busybox /bin/busybox\nCMD ["/bin/busybox","echo","from scratch"]\n`,
        ['-t', ref],
      );
      expect(await run([ref])).toBe('from scratch\n');
      const img = await inspect(ref);
      expect(img.id).toBe(id);
      // one layer: the COPY's (scratch has none, the busybox stage's layer is not inherited)
      expect(img.config.rootfs.diff_ids).toHaveLength(1);
      expect(img.config.os).toBe('linux');
      expect(img.config.architecture).toBe(ARCH);
    });

    it('RUN shell and exec form; ENV reaches a later RUN and the image config', async () => {
      const ref = tag('run-env');
      const dir = context({});
      const { r } = await buildOk(
        dir,
        [
          `FROM ${BUSYBOX}`,
          'ENV GREETING="hello world" N=1',
          'ENV LEGACY legacy form value',
          'RUN echo "shell:$GREETING:$N:$LEGACY" > /shell.txt && echo printed-by-run',
          'RUN ["/bin/sh", "-c", "echo exec:$GREETING > /exec.txt"]',
          'RUN ["/bin/busybox", "touch", "/exec-direct"]',
          '',
        ].join('\n'),
        ['-t', ref],
      );
      // the RUN's own output is shown, in its step
      const st = steps(r.stdout);
      expect(st.map((s) => s.text)).toEqual([
        `FROM ${BUSYBOX}`,
        'ENV GREETING="hello world" N=1',
        'ENV LEGACY legacy form value',
        'RUN echo "shell:$GREETING:$N:$LEGACY" > /shell.txt && echo printed-by-run',
        'RUN ["/bin/sh", "-c", "echo exec:$GREETING > /exec.txt"]',
        'RUN ["/bin/busybox", "touch", "/exec-direct"]',
      ]);
      expect(st[3]!.lines).toContain('printed-by-run');
      expect(st.filter((s) => LAYER_STEP.test(s.text)).every((s) => s.layer === 'new')).toBe(true);
      expect(st.filter((s) => !LAYER_STEP.test(s.text)).every((s) => s.layer === undefined)).toBe(true);
      expect(await sh(ref, 'cat /shell.txt /exec.txt; ls /exec-direct')).toBe('shell:hello world:1:legacy form value\nexec:hello world\n/exec-direct\n');
      const env = (await config(ref)).Env as string[];
      expect(env).toEqual(expect.arrayContaining(['GREETING=hello world', 'N=1', 'LEGACY=legacy form value']));
      expect(env.some((v) => v.startsWith('PATH='))).toBe(true); // the base image's env is kept
      expect(await sh(ref, 'echo "$GREETING"')).toBe('hello world\n');
    });

    it('a failing RUN: exit non-zero with its line and status, later steps never run, nothing tagged', async () => {
      const ref = tag('run-fails');
      const dir = context({});
      const r = await build(dir, [`FROM ${BUSYBOX}`, 'RUN echo before', 'RUN echo failing-step; exit 3', 'RUN echo never-runs', ''].join('\n'), ['-t', ref]);
      const err = expectCleanError(r);
      expect(err).toMatch(/line 3\b/);
      expect(err).toMatch(/status 3\b|exit (code|status):? 3\b/);
      expect(runOutput(r)).toContain('failing-step');
      expect(runOutput(r)).not.toContain('never-runs');
      expect(steps(r.stdout).map((s) => s.n)).toEqual([1, 2, 3]);
      expect(r.stdout).not.toContain('Successfully tagged');
      expect(await isTagged(ref)).toBe(false);
      // the failed step's container and root filesystem are gone
      const scratch = existsSync(join(e.root, 'tmp')) ? readdirSync(join(e.root, 'tmp')) : [];
      expect(scratch.filter((n) => /^(build|copy)-/.test(n))).toEqual([]);
      expect(readdirSync(e.runRoot).filter((n) => n.startsWith('build-'))).toEqual([]);
    });

    it('RUN --network: the default network by default (eth0 in 10.87.0.0/16), none (only lo), host with --network host or RUN --network=host', async () => {
      const hostNs = readlinkSync('/proc/self/ns/net');
      const file = [
        `FROM ${BUSYBOX}`,
        'RUN echo "net:$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " " | sort | tr "\\n" ,) ns:$(readlink /proc/self/ns/net) addr:$(ip -4 -o addr show eth0 2>/dev/null | tr -s " " | cut -d " " -f 4)"',
        '',
      ].join('\n');
      const field = (r: Result, k: string) => runOutput(r).match(new RegExp(`${k}:(\\S*)`))?.[1] ?? '';
      const netLine = (r: Result) => field(r, 'net').split(',').filter(Boolean);
      const bridged = await buildOk(context({}), file, ['--no-cache']);
      expect(netLine(bridged.r)).toEqual(['eth0', 'lo']);
      expect(field(bridged.r, 'addr')).toMatch(/^10\.87\.\d+\.\d+\/16$/);
      const none = await buildOk(context({}), file, ['--no-cache', '--network', 'none']);
      expect(netLine(none.r)).toEqual(['lo']);
      expect(field(none.r, 'ns')).not.toBe(hostNs);
      const hostNet = await buildOk(context({}), file, ['--no-cache', '--network', 'host']);
      expect(field(hostNet.r, 'ns')).toBe(hostNs);
      const perRun = await buildOk(context({}), file.replace('RUN ', 'RUN --network=host '), ['--no-cache', '--network', 'none']);
      expect(field(perRun.r, 'ns')).toBe(hostNs);
      const bad = await build(context({}), file, ['--network', 'nosuchnet']);
      expect(expectCleanError(bad)).toMatch(/--network: no such network: nosuchnet/);
    });

    it('a RUN of a missing command fails the build (exec form), nothing tagged', async () => {
      const ref = tag('run-enoent');
      const r = await build(context({}), `FROM ${BUSYBOX}\nRUN ["/no/such/command"]\n`, ['-t', ref]);
      expect(expectCleanError(r)).toMatch(/line 2\b/);
      expect(await isTagged(ref)).toBe(false);
    });

    it('RUN steps that change nothing (identical layers) do not break the next step', async () => {
      // docker and podman keep both layers (the same diff_id twice in rootfs.diff_ids) and go on
      const ref = tag('run-noop');
      const { r } = await buildOk(context({}), [`FROM ${BUSYBOX}`, 'RUN true', 'RUN true', 'RUN echo after > /after.txt', ''].join('\n'), ['-t', ref]);
      expect(steps(r.stdout).filter((s) => s.text.startsWith('RUN'))).toHaveLength(3);
      expect(await run([ref, 'cat', '/after.txt'])).toBe('after\n');
    });

    it('an image whose last RUN steps changed nothing (identical layers) runs', async () => {
      const ref = tag('run-noop-last');
      await buildOk(context({}), [`FROM ${BUSYBOX}`, 'RUN true', 'RUN true', ''].join('\n'), ['-t', ref]);
      expect(await run([ref, 'echo', 'runs'])).toBe('runs\n');
    });

    it('SHELL: later RUNs and shell-form CMD/ENTRYPOINT use it', async () => {
      const fails = tag('shell-e');
      const r = await build(
        context({}),
        [`FROM ${BUSYBOX}`, 'RUN false; echo plain-sh-goes-on', 'SHELL ["/bin/sh", "-ec"]', 'RUN echo with-e; false; echo never-printed', ''].join('\n'),
        ['-t', fails],
      );
      expect(expectCleanError(r)).toMatch(/line 4\b/);
      expect(runOutput(r)).toContain('plain-sh-goes-on');
      expect(runOutput(r)).toContain('with-e');
      expect(runOutput(r)).not.toContain('never-printed');
      expect(await isTagged(fails)).toBe(false);

      const ref = tag('shell');
      await buildOk(context({}), [`FROM ${BUSYBOX}`, 'SHELL ["/bin/sh", "-ec"]', 'RUN echo "$-" > /flags', 'CMD echo shell-cmd', ''].join('\n'), ['-t', ref]);
      expect(await run([ref, 'cat', '/flags'])).toMatch(/e/);
      expect((await config(ref)).Cmd).toEqual(['/bin/sh', '-ec', 'echo shell-cmd']);
      expect(await run([ref])).toBe('shell-cmd\n');
    });

    it('COPY: a file, a directory (its contents), globs, several sources into DIR/, dest relative to WORKDIR', async () => {
      const ref = tag('copy');
      const dir = context({
        'a.txt': 'A\n',
        'b.txt': 'B\n',
        'c.md': 'C\n',
        'dir/x': 'X\n',
        'dir/sub/y': 'Y\n',
        'run.sh': { content: '#!/bin/sh\necho script\n', mode: 0o755 },
      });
      await buildOk(
        dir,
        [
          `FROM ${BUSYBOX}`,
          'COPY a.txt /one/a.txt',
          'COPY dir /tree',
          'COPY *.txt /glob/',
          'COPY a.txt c.md /multi/',
          'COPY ["b.txt", "/json form.txt"]',
          'COPY run.sh /usr/local/bin/',
          'WORKDIR /w',
          'COPY b.txt rel/',
          'COPY a.txt renamed.txt',
          'COPY dir .',
          '',
        ].join('\n'),
        ['-t', ref],
      );
      const tree = await sh(ref, 'find /one /tree /glob /multi /w /json* /usr/local/bin | sort');
      expect(tree.split('\n').filter(Boolean)).toEqual([
        '/glob',
        '/glob/a.txt',
        '/glob/b.txt',
        '/json form.txt',
        '/multi',
        '/multi/a.txt',
        '/multi/c.md',
        '/one',
        '/one/a.txt',
        '/tree',
        '/tree/sub',
        '/tree/sub/y',
        '/tree/x',
        '/usr/local/bin',
        '/usr/local/bin/run.sh',
        '/w',
        '/w/rel',
        '/w/rel/b.txt',
        '/w/renamed.txt',
        '/w/sub',
        '/w/sub/y',
        '/w/x',
      ]);
      expect(await sh(ref, 'cat /one/a.txt /tree/x /tree/sub/y /w/rel/b.txt /w/renamed.txt "/json form.txt"')).toBe('A\nX\nY\nB\nA\nB\n');
      // a file's mode is kept, owners are root's (no --chown)
      expect(await sh(ref, 'stat -c "%a %u:%g" /usr/local/bin/run.sh /one/a.txt')).toBe('755 0:0\n644 0:0\n');
      expect(await run([ref, 'run.sh'])).toBe('script\n');
    });

    it('COPY of a file onto an existing directory without a trailing slash puts it inside', async () => {
      const ref = tag('copy-into-dir');
      await buildOk(context({ 'a.txt': 'A\n' }), `FROM ${BUSYBOX}\nCOPY a.txt /tmp\n`, ['-t', ref]);
      expect(await sh(ref, 'cat /tmp/a.txt; stat -c %a /tmp')).toBe('A\n1777\n');
    });

    it('COPY with several sources and a destination that is not a directory/ is refused', async () => {
      const ref = tag('copy-multi-nodir');
      const r = await build(context({ 'a.txt': 'A', 'b.txt': 'B' }), `FROM ${BUSYBOX}\nCOPY a.txt b.txt /dest\n`, ['-t', ref]);
      expect(expectCleanError(r)).toMatch(/line 2\b/);
      expect(await isTagged(ref)).toBe(false);
    });

    it('COPY/ADD --chown and --chmod; COPY ignores USER for ownership', async () => {
      const ref = tag('chown');
      const dir = context({ 'a.txt': 'A\n', 'b.txt': 'B\n', 'dir/x': 'X\n', 'dir/sub/y': 'Y\n' });
      await buildOk(
        dir,
        [
          `FROM ${BUSYBOX}`,
          'COPY --chown=1000:1000 a.txt /owned/a.txt',
          'COPY --chown=1000:1000 dir /owned-dir/',
          'COPY --chown=nobody:nogroup a.txt /named.txt',
          'COPY --chmod=0700 a.txt /mode/a.txt',
          'ADD --chown=1000:1000 --chmod=0700 b.txt /both',
          'USER 1000',
          'COPY a.txt /as-user.txt',
          '',
        ].join('\n'),
        ['-t', ref],
      );
      const ln = await sh(ref, 'ls -ln /owned/a.txt /owned-dir/x /owned-dir/sub/y | while read m l u g rest; do echo "$m $u $g"; done');
      expect(ln).toBe('-rw-r--r-- 1000 1000\n-rw-r--r-- 1000 1000\n-rw-r--r-- 1000 1000\n');
      expect(await sh(ref, 'stat -c "%n %u:%g %a" /owned-dir/sub /named.txt /mode/a.txt /both /as-user.txt')).toBe(
        '/owned-dir/sub 1000:1000 755\n/named.txt 65534:65534 644\n/mode/a.txt 0:0 700\n/both 1000:1000 700\n/as-user.txt 0:0 644\n',
      );
    });

    it('ADD of a local .tar and .tar.gz extracts it; COPY of a tar does not', async () => {
      const ref = tag('add-tar');
      const t = await makeTar([
        { name: 'top.txt', content: 'top\n' },
        { name: 'd/', type: 'directory' },
        { name: 'd/inner.txt', content: 'inner\n', mode: 0o600 },
        { name: 'd/link', type: 'symlink', linkname: 'inner.txt' },
      ]);
      const dir = context({ 'files.tar': t, 'files.tar.gz': gzipSync(t) });
      await buildOk(dir, [`FROM ${BUSYBOX}`, 'ADD files.tar /untar/', 'ADD files.tar.gz /untgz', 'COPY files.tar /copied/', ''].join('\n'), ['-t', ref]);
      const listing = await sh(ref, 'cd / && find untar untgz copied | sort && stat -c "%n %a" untar/d/inner.txt && readlink untgz/d/link && cat untgz/d/link');
      expect(listing).toBe(
        [
          'copied',
          'copied/files.tar',
          'untar',
          'untar/d',
          'untar/d/inner.txt',
          'untar/d/link',
          'untar/top.txt',
          'untgz',
          'untgz/d',
          'untgz/d/inner.txt',
          'untgz/d/link',
          'untgz/top.txt',
          'untar/d/inner.txt 600',
          'inner.txt',
          'inner',
          '',
        ].join('\n'),
      );
    });

    describe('ADD from a URL', () => {
      let server: Server;
      let base = '';
      let archive: Buffer;
      beforeAll(async () => {
        archive = gzipSync(await makeTar([{ name: 'in-archive.txt', content: 'x\n' }]));
        server = createServer((req, res) => {
          if (req.url === '/remote.txt') res.end('remote content\n');
          else if (req.url === '/archive.tar.gz') res.end(archive);
          else {
            res.statusCode = 404;
            res.end('not found\n');
          }
        });
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      });
      afterAll(async () => {
        await new Promise((resolve) => server?.close(resolve));
      });

      it('ADD URL fetches it (into DIR/ under its name, or as the named file); a remote archive is not extracted', async () => {
        const ref = tag('add-url');
        await buildOk(
          context({}),
          [`FROM ${BUSYBOX}`, `ADD ${base}/remote.txt /dl/`, `ADD ${base}/remote.txt /named.txt`, `ADD ${base}/archive.tar.gz /arch/`, ''].join('\n'),
          ['-t', ref],
        );
        expect(await sh(ref, 'cat /dl/remote.txt /named.txt; ls /arch')).toBe('remote content\nremote content\narchive.tar.gz\n');
        // docker: a file from a URL gets mode 600
        expect(await sh(ref, 'stat -c %a /dl/remote.txt')).toBe('600\n');
        const got = await sh(ref, 'cat /arch/archive.tar.gz | md5sum');
        expect(got.split(' ')[0]).toBe(createHash('md5').update(archive).digest('hex'));
      });

      it('ADD of a URL that answers 404 fails with the status, nothing tagged', async () => {
        const ref = tag('add-404');
        const r = await build(context({}), `FROM ${BUSYBOX}\nADD ${base}/missing.txt /x\n`, ['-t', ref]);
        const err = expectCleanError(r);
        expect(err).toContain(`${base}/missing.txt`);
        expect(err).toMatch(/404/);
        expect(await isTagged(ref)).toBe(false);
      });

      it('ADD of a URL where nothing listens fails with a clear message naming it, nothing tagged', async () => {
        // a loopback port that was free a moment ago: never a packet off the host
        const probe = createServer();
        await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
        const port = (probe.address() as AddressInfo).port;
        await new Promise((resolve) => probe.close(resolve));
        const ref = tag('add-refused');
        const url = `http://127.0.0.1:${port}/file.txt`;
        const r = await build(context({}), `FROM ${BUSYBOX}\nADD ${url} /x\n`, ['-t', ref], { timeoutMs: 60_000 });
        const err = expectCleanError(r);
        expect(err).toContain(url);
        expect(err).toMatch(/line 2\b/);
        expect(err).toMatch(/ECONNREFUSED|refused|cannot fetch|connect/i);
        expect(await isTagged(ref)).toBe(false);
      });
    });

    it("ENV: a reference in the same instruction sees the value before it (the reference's example), \\$ is a literal dollar", async () => {
      const ref = tag('env-rules');
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Containerfile text (its own ${VAR} syntax), not a template
      const braces = 'ENV lit=\\$HOME braces=${abc}-${nope:-dflt}';
      await buildOk(context({}), [`FROM ${BUSYBOX}`, 'ENV abc=hello', 'ENV abc=bye def=$abc', 'ENV ghi=$abc', braces, ''].join('\n'), ['-t', ref]);
      const env = (await config(ref)).Env as string[];
      expect(env).toEqual(expect.arrayContaining(['abc=bye', 'def=hello', 'ghi=bye', 'lit=$HOME', 'braces=bye-dflt']));
    });

    it('ARG before FROM: out of scope in the stage until declared again (then with the global value)', async () => {
      const ref = tag('arg-scope');
      await buildOk(context({}), ['ARG V=global', `FROM ${BUSYBOX}`, 'RUN echo "v1=$V" > /v1', 'ARG V', 'RUN echo "v2=$V" > /v2', ''].join('\n'), ['-t', ref]);
      expect(await sh(ref, 'cat /v1 /v2')).toBe('v1=\nv2=global\n');
    });

    it('ARG: default, --build-arg override, ARG before FROM used in FROM, TARGETARCH; not in the image env', async () => {
      const dir = context({});
      const file = [
        `ARG BASE=${BUSYBOX}`,
        'FROM $BASE',
        'ARG WHO=default-who',
        'ARG OTHER=other-default',
        'ARG TARGETARCH',
        'ARG TARGETOS',
        'RUN echo "who=$WHO other=$OTHER arch=$TARGETARCH os=$TARGETOS" > /args.txt',
        '',
      ].join('\n');
      const plain = tag('arg');
      await buildOk(dir, file, ['-t', plain]);
      expect(await run([plain, 'cat', '/args.txt'])).toBe(`who=default-who other=other-default arch=${ARCH} os=linux\n`);
      const env = ((await config(plain)).Env ?? []) as string[];
      expect(env.filter((v) => /^(WHO|OTHER|BASE|TARGETARCH)=/.test(v))).toEqual([]);

      const given = tag('arg-given');
      await buildOk(dir, undefined, ['-t', given, '--build-arg', 'WHO=given']);
      expect(await run([given, 'cat', '/args.txt'])).toBe(`who=given other=other-default arch=${ARCH} os=linux\n`);
    });

    it('build args: an unused --build-arg is fine, --build-arg NAME takes the value from the environment', async () => {
      const dir = context({});
      await buildOk(dir, [`FROM ${BUSYBOX}`, 'ARG OTHER=other-default', 'RUN echo "other=$OTHER" > /o.txt', ''].join('\n'), [
        '--build-arg',
        'NEVER_DECLARED=1',
      ]);
      const ref = tag('arg-env');
      const { r } = await buildOk(dir, undefined, ['-t', ref, '--build-arg', 'OTHER', '--build-arg', 'UNUSED_TOO=x'], {
        env: { ...process.env, OTHER: 'from-env' },
      });
      expect(r.stdout).not.toContain('Using cache'); // another value: another layer
      expect(await run([ref, 'cat', '/o.txt'])).toBe('other=from-env\n');
      // an ARG is not in the image's env
      expect(((await config(ref)).Env ?? []).some((v: string) => v.startsWith('OTHER='))).toBe(false);
      // --build-arg NAME when NAME is not in the environment: the default stays
      const unset = tag('arg-env-unset');
      const env = { ...process.env };
      delete env.OTHER;
      await buildOk(dir, undefined, ['-t', unset, '--build-arg', 'OTHER'], { env });
      expect(await run([unset, 'cat', '/o.txt'])).toBe('other=other-default\n');
    });

    it('WORKDIR: created (even with no later step using it), relative to the previous one, used by RUN', async () => {
      const ref = tag('workdir');
      await buildOk(context({}), [`FROM ${BUSYBOX}`, 'WORKDIR /a', 'WORKDIR b', 'RUN pwd > /pwd.txt', 'ENV D=/unused', 'WORKDIR $D/dir', ''].join('\n'), [
        '-t',
        ref,
      ]);
      expect(await run([ref, 'cat', '/pwd.txt'])).toBe('/a/b\n');
      expect((await config(ref)).WorkingDir).toBe('/unused/dir');
      expect(await run([ref, 'pwd'])).toBe('/unused/dir\n');
      // in the image itself, not only made by `run` for its cwd
      expect(await sh(ref, 'ls -d /a/b /unused/dir', ['-w', '/'])).toBe('/a/b\n/unused/dir\n');
    });

    it('USER of a name the image does not have: the next RUN fails naming it, nothing tagged', async () => {
      const ref = tag('user-unknown');
      const r = await build(context({}), `FROM ${BUSYBOX}\nUSER nosuchuser\nRUN true\n`, ['-t', ref]);
      const err = expectCleanError(r);
      expect(err).toMatch(/line 3\b/);
      expect(err).toContain('nosuchuser');
      expect(await isTagged(ref)).toBe(false);
    });

    it('USER: later RUNs run as that user (by id or name), and so does the image', async () => {
      const ref = tag('user');
      const { r } = await buildOk(
        context({}),
        [
          `FROM ${BUSYBOX}`,
          'RUN mkdir /home-1000 && chown 1000:1000 /home-1000',
          'USER 1000:1000',
          'RUN echo "uid=$(id -u) gid=$(id -g)" | tee /home-1000/who.txt',
          'USER nobody',
          'RUN echo "name-uid=$(id -u)"',
          'USER 1000',
          '',
        ].join('\n'),
        ['-t', ref],
      );
      expect(runOutput(r)).toContain('uid=1000 gid=1000');
      expect(runOutput(r)).toContain('name-uid=65534');
      expect(await run([ref, 'cat', '/home-1000/who.txt'])).toBe('uid=1000 gid=1000\n');
      expect(await sh(ref, 'stat -c %u:%g /home-1000/who.txt')).toBe('1000:1000\n');
      expect((await config(ref)).User).toBe('1000');
      expect(await run([ref, 'id', '-u'])).toBe('1000\n');
    });

    describe("ENTRYPOINT and CMD follow docker's rules", () => {
      let parent = '';
      beforeAll(async () => {
        parent = tag('cmd-parent');
        await buildOk(context({}), `FROM ${BUSYBOX}\nCMD ["echo", "parent-cmd"]\n`, ['-t', parent]);
      });

      it('CMD is what run runs; run arguments replace it', async () => {
        expect(await run([parent])).toBe('parent-cmd\n');
        expect(await run([parent, 'echo', 'override'])).toBe('override\n');
      });

      it('ENTRYPOINT resets an inherited CMD', async () => {
        const ep = tag('ep-resets');
        await buildOk(context({}), `FROM ${parent}\nENTRYPOINT ["echo", "child-ep"]\n`, ['-t', ep]);
        expect(await run([ep])).toBe('child-ep\n');
        expect((await config(ep)).Cmd ?? null).toBeNull();
      });

      it('ENTRYPOINT keeps a CMD set in the same stage before it', async () => {
        const before = tag('cmd-before-ep');
        await buildOk(context({}), `FROM ${parent}\nCMD ["c0"]\nENTRYPOINT ["echo", "ep"]\n`, ['-t', before]);
        expect((await config(before)).Cmd).toEqual(['c0']);
        expect(await run([before])).toBe('ep c0\n');
      });

      it('ENTRYPOINT + CMD after it: CMD is the default arguments, run arguments replace them', async () => {
        const after = tag('cmd-after-ep');
        await buildOk(context({}), `FROM ${parent}\nENTRYPOINT ["echo", "ep"]\nCMD ["default-arg"]\n`, ['-t', after]);
        expect(await run([after])).toBe('ep default-arg\n');
        expect(await run([after, 'given'])).toBe('ep given\n');
      });

      it('shell forms are /bin/sh -c; a shell-form ENTRYPOINT ignores CMD and run arguments', async () => {
        const shellEp = tag('shell-ep');
        await buildOk(context({}), `FROM ${BUSYBOX}\nENTRYPOINT echo shell-ep\nCMD ["ignored"]\n`, ['-t', shellEp]);
        expect((await config(shellEp)).Entrypoint).toEqual(['/bin/sh', '-c', 'echo shell-ep']);
        expect(await run([shellEp])).toBe('shell-ep\n');
        expect(await run([shellEp, 'also-ignored'])).toBe('shell-ep\n');
        const shellCmd = tag('shell-cmd');
        await buildOk(context({}), `FROM ${BUSYBOX}\nENV WHO=world\nCMD echo "hello $WHO"\n`, ['-t', shellCmd]);
        expect((await config(shellCmd)).Cmd).toEqual(['/bin/sh', '-c', 'echo "hello $WHO"']);
        expect(await run([shellCmd])).toBe('hello world\n');
      });
    });

    it('EXPOSE, VOLUME, LABEL (and --label), STOPSIGNAL, HEALTHCHECK land in the image config', async () => {
      const ref = tag('config');
      await buildOk(
        context({}),
        [
          `FROM ${BUSYBOX}`,
          'EXPOSE 80 53/udp',
          'EXPOSE 8080/tcp',
          'VOLUME /data /cache',
          'VOLUME ["/logs"]',
          'LABEL version=1.0',
          'LABEL description="two words" multi.word="a b c"',
          'STOPSIGNAL SIGUSR1',
          'HEALTHCHECK --interval=5s --timeout=2s --retries=4 CMD wget -q -O- http://localhost/ || exit 1',
          '',
        ].join('\n'),
        ['-t', ref, '--label', 'from.cli=yes'],
      );
      const c = rawConfig(ref, await inspect(ref));
      expect(c.ExposedPorts).toEqual({ '80/tcp': {}, '53/udp': {}, '8080/tcp': {} });
      expect(c.Volumes).toEqual({ '/data': {}, '/cache': {}, '/logs': {} });
      expect(c.Labels).toEqual({ version: '1.0', description: 'two words', 'multi.word': 'a b c', 'from.cli': 'yes' });
      expect(c.StopSignal).toBe('SIGUSR1');
      expect(c.Healthcheck).toEqual({ Test: ['CMD-SHELL', 'wget -q -O- http://localhost/ || exit 1'], Interval: 5e9, Timeout: 2e9, Retries: 4 });

      const none = tag('healthcheck-none');
      await buildOk(context({}), `FROM ${ref}\nHEALTHCHECK NONE\n`, ['-t', none]);
      expect(rawConfig(none, await inspect(none)).Healthcheck).toEqual({ Test: ['NONE'] });
      const exec = tag('healthcheck-exec');
      await buildOk(context({}), `FROM ${BUSYBOX}\nHEALTHCHECK CMD ["true"]\n`, ['-t', exec]);
      expect(rawConfig(exec, await inspect(exec)).Healthcheck).toEqual({ Test: ['CMD', 'true'] });
    });

    it("LABEL with a quoted key (the Dockerfile reference's own example)", async () => {
      const ref = tag('label-quoted');
      await buildOk(context({}), `FROM ${BUSYBOX}\nLABEL "com.example.vendor"="ACME Incorporated" com.example.label-with-value="foo"\n`, ['-t', ref]);
      expect((await config(ref)).Labels).toEqual({ 'com.example.vendor': 'ACME Incorporated', 'com.example.label-with-value': 'foo' });
    });

    it('image inspect shows the Healthcheck, OnBuild and Shell the image config has (as docker image inspect does)', async () => {
      const ref = tag('inspect-fields');
      await buildOk(
        context({}),
        [`FROM ${BUSYBOX}`, 'SHELL ["/bin/sh", "-ec"]', 'HEALTHCHECK --interval=5s CMD true', 'ONBUILD RUN echo trigger', 'STOPSIGNAL SIGTERM', ''].join('\n'),
        ['-t', ref],
      );
      const img = await inspect(ref);
      const raw = rawConfig(ref, img);
      expect(raw.Shell).toEqual(['/bin/sh', '-ec']);
      const shown = img.config.config as Record<string, unknown>;
      for (const k of ['Healthcheck', 'OnBuild', 'Shell', 'StopSignal']) expect(shown[k], `inspect .config.config.${k}`).toEqual(raw[k]);
    });

    it('ONBUILD: recorded in the parent, run by a child built FROM it, not inherited further', async () => {
      const parent = tag('onbuild-parent');
      await buildOk(context({}), [`FROM ${BUSYBOX}`, 'ONBUILD RUN echo triggered > /onbuild.txt', 'ONBUILD COPY trig.txt /trig.txt', ''].join('\n'), [
        '-t',
        parent,
      ]);
      expect(rawConfig(parent, await inspect(parent)).OnBuild).toEqual(['RUN echo triggered > /onbuild.txt', 'COPY trig.txt /trig.txt']);
      // the triggers did not run in the parent
      expect(await sh(parent, 'ls /onbuild.txt /trig.txt 2>&1; true')).toMatch(/No such file/);

      const child = tag('onbuild-child');
      const { r } = await buildOk(context({ 'trig.txt': 'from child context\n' }), `FROM ${parent}\nRUN cat /onbuild.txt /trig.txt\n`, ['-t', child]);
      expect(runOutput(r)).toContain('triggered\nfrom child context\n');
      expect(await sh(child, 'cat /onbuild.txt /trig.txt')).toBe('triggered\nfrom child context\n');
      expect(rawConfig(child, await inspect(child)).OnBuild ?? []).toEqual([]);
    });

    it('an unknown instruction is refused with its name and line before anything runs, nothing tagged', async () => {
      const ref = tag('unknown');
      const r = await build(context({}), [`FROM ${BUSYBOX}`, 'RUN echo should-not-run', 'FOO bar', ''].join('\n'), ['-t', ref]);
      const err = expectCleanError(r);
      expect(err).toMatch(/\bFOO\b/);
      expect(err).toMatch(/line 3\b/);
      expect(runOutput(r)).not.toContain('should-not-run');
      expect(await isTagged(ref)).toBe(false);
    });
  });

  // -------------------------------------------------------------------------------------------
  describe('hostile contexts and images', () => {
    /** Every file of every unpacked layer and every (gunzipped) blob of the store, as buffers. */
    function storeContents(): Array<{ path: string; data: Buffer }> {
      const out: Array<{ path: string; data: Buffer }> = [];
      const walk = (d: string) => {
        for (const name of readdirSync(d)) {
          const p = join(d, name);
          const st = lstatSync(p);
          if (st.isDirectory()) walk(p);
          else if (st.isFile()) out.push({ path: p, data: readFileSync(p) });
        }
      };
      for (const sub of ['layers', 'blobs']) if (existsSync(join(e.root, sub))) walk(join(e.root, sub));
      return out.map((f) => {
        if (f.data[0] === 0x1f && f.data[1] === 0x8b) {
          try {
            return { path: f.path, data: gunzipSync(f.data) };
          } catch {
            /* not a gzip stream after all */
          }
        }
        return f;
      });
    }

    it('a symlink in the context leading out of it is refused ("outside the build context"), the host file in no layer', async () => {
      const hostPasswd = readFileSync('/etc/passwd');
      const imagePasswd = await sh(BUSYBOX, 'cat /etc/passwd');
      expect(hostPasswd.toString(), 'the check needs a host /etc/passwd unlike the image one').not.toBe(imagePasswd);
      const dir = context({ leak: { link: '/etc/passwd' }, etcdir: { link: '/etc' }, up: { link: '../../../../../../../../etc/passwd' }, 'ok.txt': 'ok\n' });
      for (const [i, line] of ['COPY leak /x', 'ADD leak /x', 'COPY etcdir/passwd /x', 'COPY up /x', 'COPY ok.txt ../../../../etc/passwd /x/'].entries()) {
        const ref = tag(`leak-${i}`);
        const r = await build(dir, `FROM ${BUSYBOX}\n${line}\n`, ['-t', ref]);
        const err = expectCleanError(r);
        // a "../" source name: docker's classic builder says "outside the build context",
        // BuildKit cleans it to a path in the context (not found here); both refuse
        expect(err, line).toMatch(line.includes('../') ? /outside the build context|not found|no such file/ : /outside the build context/);
        expect(err, line).toMatch(/line 2\b/);
        expect(await isTagged(ref), line).toBe(false);
      }
      // a link inside a copied tree is copied as a link, never followed (docker's rule)
      const all = tag('leak-tree');
      await buildOk(dir, `FROM ${BUSYBOX}\nCOPY . /ctx/\n`, ['-t', all]);
      expect(await sh(all, 'readlink /ctx/leak; readlink /ctx/etcdir; cat /ctx/ok.txt; test -L /ctx/leak && echo is-link')).toBe(
        '/etc/passwd\n/etc\nok\nis-link\n',
      );
      // in the image the link leads to the image's own /etc/passwd
      expect(await sh(all, 'cat /ctx/leak')).toBe(imagePasswd);
      for (const f of storeContents()) expect(f.data.includes(hostPasswd), `host /etc/passwd content in ${f.path}`).toBe(false);
    });

    it('a COPY whose destination walks through a symlink in the image stays in the image (never on the host)', async () => {
      const hostFiles = ['/etc/tsrun-escape-test', '/etc/tsrun-escape-test2', '/tsrun-escape-test3'];
      for (const p of hostFiles) expect(existsSync(p), `${p} exists before the test`).toBe(false);
      const ref = tag('escape');
      const dir = context({ f: 'escape attempt\n' });
      const r = await build(
        dir,
        [
          `FROM ${BUSYBOX}`,
          'RUN ln -s / /escape && ln -s ../../../../../../../../etc /up && mkdir /d && ln -s /../../.. /d/root',
          'COPY f /escape/etc/tsrun-escape-test',
          'COPY f /up/tsrun-escape-test2',
          'COPY f /d/root/tsrun-escape-test3',
          '',
        ].join('\n'),
        ['-t', ref],
      );
      for (const p of hostFiles) expect(existsSync(p), `${p} written on the host`).toBe(false);
      // either refused, or the files are where the links lead inside the image (docker's result)
      if (r.code === 0) expect(await sh(ref, 'cat /etc/tsrun-escape-test /etc/tsrun-escape-test2 /tsrun-escape-test3')).toBe('escape attempt\n'.repeat(3));
      else {
        expectCleanError(r);
        expect(await isTagged(ref)).toBe(false);
      }
    });

    it('ADD of a hostile tar (a link out, a file through it, "../" names) never writes outside the image', async () => {
      const hostFiles = ['/etc/tsrun-escape-tar', '/tsrun-escape-tar2', '/etc/tsrun-escape-tar3'];
      for (const p of hostFiles) expect(existsSync(p), `${p} exists before the test`).toBe(false);
      const evil = await makeTar([
        { name: 'esc', type: 'symlink', linkname: '/' },
        { name: 'esc/etc/tsrun-escape-tar', content: 'via link\n' },
        { name: '../../../../../../tsrun-escape-tar2', content: 'dotdot\n' },
        { name: 'up', type: 'symlink', linkname: '../../../../../../etc' },
        { name: 'up/tsrun-escape-tar3', content: 'via relative link\n' },
      ]);
      const ref = tag('escape-tar');
      const r = await build(context({ 'evil.tar': evil }), `FROM ${BUSYBOX}\nADD evil.tar /x/\n`, ['-t', ref]);
      for (const p of hostFiles) expect(existsSync(p), `${p} written on the host`).toBe(false);
      if (r.code === 0) {
        // extracted in-root: whatever landed is inside the image
        const found = await sh(ref, 'find / -xdev -name "tsrun-escape-tar*" | sort');
        expect(found, 'the files went somewhere inside the image').not.toBe('');
      } else {
        expectCleanError(r);
        expect(await isTagged(ref)).toBe(false);
      }
    });
  });

  // -------------------------------------------------------------------------------------------
  describe('layer cache', () => {
    const FILE = [
      `FROM ${BUSYBOX}`,
      'COPY first.txt /first.txt',
      'RUN echo run-one > /r1',
      'COPY second.txt /second.txt',
      'RUN cat /second.txt > /r2',
      'CMD ["cat", "/r2"]',
      '',
    ].join('\n');

    it('a second identical build uses the cache for every layer step and gives the same image id', async () => {
      const dir = context({ 'first.txt': '1\n', 'second.txt': '2\n' });
      const ref = tag('cache');
      const a = await buildOk(dir, FILE, ['-t', ref]);
      const layersA = steps(a.r.stdout).filter((s) => LAYER_STEP.test(s.text));
      expect(layersA.map((s) => s.layer)).toEqual(['new', 'new', 'new', 'new']);
      const b = await buildOk(dir, FILE, ['-t', ref]);
      const layersB = steps(b.r.stdout).filter((s) => LAYER_STEP.test(s.text));
      expect(layersB.map((s) => s.layer)).toEqual(['cache', 'cache', 'cache', 'cache']);
      // the cached steps name the layers the first build made; the RUN did not run again
      expect(layersB.map((s) => s.lines.find((l) => l.startsWith('-->'))!.slice(-12))).toEqual(
        layersA.map((s) => s.lines.find((l) => l.startsWith('-->'))!.slice(-12)),
      );
      expect(b.id).toBe(a.id);
      expect((await inspect(ref)).id).toBe(a.id);
    });

    it('changing the file the 2nd COPY reads rebuilds from that step on; the steps before stay cached', async () => {
      const dir = context({ 'first.txt': '1\n', 'second.txt': '2\n' });
      const ref = tag('cache-change');
      await buildOk(dir, FILE, ['-t', ref]);
      writeFileSync(join(dir, 'second.txt'), 'changed\n');
      const { r } = await buildOk(dir, FILE, ['-t', ref]);
      expect(
        steps(r.stdout)
          .filter((s) => LAYER_STEP.test(s.text))
          .map((s) => [s.text, s.layer]),
      ).toEqual([
        ['COPY first.txt /first.txt', 'cache'],
        ['RUN echo run-one > /r1', 'cache'],
        ['COPY second.txt /second.txt', 'new'],
        ['RUN cat /second.txt > /r2', 'new'],
      ]);
      expect(await run([ref])).toBe('changed\n');
      // only an mtime change (same content): still cached, as docker's content-based key
      utimesSync(join(dir, 'second.txt'), new Date(1_500_000_000_000), new Date(1_500_000_000_000));
      const again = await buildOk(dir, FILE, ['-t', ref]);
      expect(
        steps(again.r.stdout)
          .filter((s) => LAYER_STEP.test(s.text))
          .map((s) => s.layer),
      ).toEqual(['cache', 'cache', 'cache', 'cache']);
    });

    it('--no-cache runs every step', async () => {
      const dir = context({ 'first.txt': '1\n', 'second.txt': '2\n' });
      await buildOk(dir, FILE, ['-t', tag('nocache')]);
      const { r } = await buildOk(dir, FILE, ['--no-cache', '-t', tag('nocache')]);
      expect(r.stdout).not.toContain('Using cache');
      expect(
        steps(r.stdout)
          .filter((s) => LAYER_STEP.test(s.text))
          .map((s) => s.layer),
      ).toEqual(['new', 'new', 'new', 'new']);
    });
  });

  // -------------------------------------------------------------------------------------------
  describe('multi-stage', () => {
    const FILE = [
      `FROM ${BUSYBOX} AS builder`,
      'RUN mkdir /out && echo built-by-name > /out/name.txt && echo junk > /junk',
      `FROM ${BUSYBOX}`,
      'RUN echo second > /second.txt',
      `FROM ${BUSYBOX} AS final`,
      'COPY --from=builder /out/name.txt /from-name.txt',
      'COPY --from=1 /second.txt /from-index.txt',
      'COPY --from=builder /out /outdir',
      'RUN echo FINAL-STAGE-RAN',
      '',
    ].join('\n');

    it('COPY --from a stage by name and by index; the final image has only what it copied', async () => {
      const ref = tag('multistage');
      await buildOk(context({}), FILE, ['-t', ref]);
      expect(await sh(ref, 'cat /from-name.txt /from-index.txt /outdir/name.txt; ls /junk /second.txt /out 2>&1; true')).toMatch(
        /^built-by-name\nsecond\nbuilt-by-name\n(.*No such file.*\n){3}$/,
      );
    });

    it('--target stops at that stage: later stages never run, the image is the target stage', async () => {
      const ref = tag('target');
      const { r } = await buildOk(context({}), FILE.replace(`FROM ${BUSYBOX}\n`, `FROM ${BUSYBOX} AS second\n`), ['--target', 'second', '-t', ref]);
      expect(steps(r.stdout).map((s) => s.text)).toEqual([
        `FROM ${BUSYBOX} AS builder`,
        'RUN mkdir /out && echo built-by-name > /out/name.txt && echo junk > /junk',
        `FROM ${BUSYBOX} AS second`,
        'RUN echo second > /second.txt',
      ]);
      expect(runOutput(r)).not.toContain('FINAL-STAGE-RAN');
      expect(await sh(ref, 'cat /second.txt; ls /from-name.txt 2>&1; true')).toMatch(/^second\n.*No such file/);
      const bad = await build(context({}), FILE, ['--target', 'nosuchstage', '-t', tag('target-bad')]);
      expect(expectCleanError(bad)).toContain('nosuchstage');
    });

    it('COPY --from an image (not a stage) of the store', async () => {
      const ref = tag('from-image');
      await buildOk(context({}), `FROM scratch\nCOPY --from=${BUSYBOX} /bin/busybox /bin/busybox\nCMD ["/bin/busybox", "echo", "copied from an image"]\n`, [
        '-t',
        ref,
      ]);
      expect(await run([ref])).toBe('copied from an image\n');
    });

    it('FROM an earlier stage continues from it', async () => {
      const ref = tag('from-stage');
      await buildOk(
        context({}),
        [`FROM ${BUSYBOX} AS base`, 'ENV FROM_BASE=yes', 'RUN echo base > /base.txt', 'FROM base', 'RUN echo "$FROM_BASE" >> /base.txt', ''].join('\n'),
        ['-t', ref],
      );
      expect(await run([ref, 'cat', '/base.txt'])).toBe('base\nyes\n');
    });
  });

  // -------------------------------------------------------------------------------------------
  describe('.dockerignore', () => {
    const files = {
      '.dockerignore': '# comment\n*.md\n!keep.md\nsecret/\n**/*.log\n',
      'a.txt': 'a\n',
      'notes.md': 'notes\n',
      'keep.md': 'keep\n',
      'secret/key': 'key\n',
      'sub/x.log': 'log\n',
      'sub/y.txt': 'y\n',
    };

    it('ignored files are not copied, a !negation brings one back', async () => {
      const ref = tag('ignore');
      await buildOk(context(files), `FROM ${BUSYBOX}\nCOPY . /ctx/\nCOPY *.md /md/\n`, ['-t', ref]);
      const list = await sh(ref, 'cd /ctx && find . | sort; ls /md');
      expect(list.split('\n').filter(Boolean)).toEqual(['.', './.dockerignore', './Containerfile', './a.txt', './keep.md', './sub', './sub/y.txt', 'keep.md']);
    });

    it('an ignored file named explicitly is not found, nothing tagged', async () => {
      const ref = tag('ignore-named');
      const r = await build(context(files), `FROM ${BUSYBOX}\nCOPY notes.md /n\n`, ['-t', ref]);
      const err = expectCleanError(r);
      expect(err).toMatch(/notes\.md/);
      expect(err).toMatch(/not found|no such file/i);
      expect(await isTagged(ref)).toBe(false);
    });
  });

  // -------------------------------------------------------------------------------------------
  it('reproducible: SOURCE_DATE_EPOCH + --no-cache, two builds give the same image id and layer digests', async () => {
    const dir = context({ 'f.txt': 'fixed content\n', 'd/g': 'g\n' });
    const file = [`FROM ${BUSYBOX}`, 'COPY f.txt /f.txt', 'COPY d /d2/', 'RUN mkdir /d && echo fixed > /d/f', 'ENV X=1', 'CMD ["cat", "/d/f"]', ''].join('\n');
    const env = { ...process.env, SOURCE_DATE_EPOCH: '1700000000' };
    const a = await buildOk(dir, file, ['--no-cache', '-t', tag('repro-a')], { env });
    const layersA = (await inspect(`localhost/build-it-repro-a-${n}:latest`)).manifest.layers.map((l: { digest: string }) => l.digest);
    // another mtime on the context's files must not matter either
    utimesSync(join(dir, 'f.txt'), new Date(), new Date());
    utimesSync(join(dir, 'd/g'), new Date(), new Date());
    const refB = tag('repro-b');
    const b = await buildOk(dir, undefined, ['--no-cache', '-t', refB], { env });
    expect(b.r.stdout).not.toContain('Using cache');
    const imgB = await inspect(refB);
    expect(imgB.manifest.layers.map((l: { digest: string }) => l.digest)).toEqual(layersA);
    expect(b.id).toBe(a.id);
    expect(imgB.config.created).toMatch(/^2023-11-14T22:13:20(\.000)?Z$/);
    expect(await run([refB])).toBe('fixed\n');
  });

  it('--output type=oci-archive,dest=FILE writes an archive another engine loads and runs', async () => {
    const ref = tag('output');
    const out = join(tempDir('tsrun-build-out-'), 'image.tar');
    const { id } = await buildOk(context({ 'msg.txt': 'from the archive\n' }), `FROM ${BUSYBOX}\nCOPY msg.txt /msg.txt\nCMD ["cat", "/msg.txt"]\n`, [
      '-t',
      ref,
      '--output',
      `type=oci-archive,dest=${out}`,
    ]);
    expect(statSync(out).size).toBeGreaterThan(1000);
    const tarList = spawnSync('tar', ['-tf', out], { encoding: 'utf8' });
    expect(tarList.stdout).toMatch(/^(\.\/)?oci-layout$/m);
    expect(tarList.stdout).toMatch(/^(\.\/)?index\.json$/m);
    const other = makeEngine('tsrun-build-load');
    try {
      const load = await other.tsrun(['load', '-i', out]);
      expect(load.code, show(load)).toBe(0);
      expect(load.stdout).toContain(ref);
      const r = await other.tsrun(['run', '--rm', ref]);
      expect(r.code, show(r)).toBe(0);
      expect(r.stdout).toBe('from the archive\n');
      const ins = await other.tsrun(['image', 'inspect', ref]);
      expect(JSON.parse(ins.stdout)[0].id).toBe(id);
    } finally {
      expect(await other.teardown()).toEqual([]);
    }
  });

  it('^C during a RUN ends the build (non-zero, 130 as for SIGINT): the RUN is killed, nothing tagged, nothing left', async () => {
    const ref = tag('interrupt');
    const secs = String(30_000 + Math.floor(Math.random() * 10_000));
    const dir = context({});
    writeFileSync(join(dir, 'Containerfile'), `FROM ${BUSYBOX}\nRUN echo run-started && sleep ${secs}\nRUN echo never\n`);
    const [cmd, ...args] = e.argv(['build', '-t', ref, dir]);
    const child = spawn(cmd!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    let done = false;
    const exited = new Promise<number>((resolve) =>
      child.on('close', (code, sig) => {
        done = true;
        resolve(code ?? 128 + (sig === 'SIGKILL' ? 9 : 2));
      }),
    );
    try {
      const sleeper = await until(() => (stdout.includes('run-started') ? pidsOf(['sleep', secs])[0] : undefined), 30_000);
      expect(sleeper, `the RUN started\n${stdout}\n${stderr}`).toBeDefined();
      const cgroups = cgroupDirsOf(sleeper!);
      expect(cgroups.length, `the RUN has a cgroup of its own: ${readFileSync(`/proc/${sleeper}/cgroup`, 'utf8')}`).toBeGreaterThan(0);
      child.kill('SIGINT');
      const code = await Promise.race([exited, new Promise<number>((resolve) => setTimeout(() => resolve(-1), 30_000))]);
      const r = { code, stdout, stderr };
      expect(code, `exit within 30 s of SIGINT\n${show(r)}`).not.toBe(-1);
      expect(code, show(r)).not.toBe(0);
      expect(code, show(r)).toBe(130);
      expect(stderr, show(r)).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);
      expect(stdout).not.toContain('STEP 3/3');
      expect(await until(() => pidsOf(['sleep', secs]).length === 0, 10_000), "the RUN's process is gone").toBe(true);
      for (const d of cgroups) expect(existsSync(d), `cgroup ${d} left`).toBe(false);
      expect(leftovers(e)).toEqual([]);
      const scratch = existsSync(join(e.root, 'tmp')) ? readdirSync(join(e.root, 'tmp')) : [];
      expect(scratch.filter((n) => /^(build|copy)-/.test(n))).toEqual([]);
      expect(await isTagged(ref)).toBe(false);
    } finally {
      // never leave the build running: SIGINT (its own clean-up), then SIGKILL
      if (!done) {
        child.kill('SIGINT');
        await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 15_000))]);
        if (!done) child.kill('SIGKILL');
        await exited;
      }
    }
  });

  it('the Containerfile defaults to CONTEXT/Containerfile, else CONTEXT/Dockerfile; -f names another one', async () => {
    const dir = context({ Dockerfile: `FROM ${BUSYBOX}\nCMD ["echo", "from Dockerfile"]\n`, 'other/Build.file': `FROM ${BUSYBOX}\nCMD ["echo", "from -f"]\n` });
    const a = tag('dockerfile');
    await buildOk(dir, undefined, ['-t', a]);
    expect(await run([a])).toBe('from Dockerfile\n');
    const b = tag('containerfile');
    await buildOk(dir, `FROM ${BUSYBOX}\nCMD ["echo", "from Containerfile"]\n`, ['-t', b]);
    expect(await run([b])).toBe('from Containerfile\n');
    const c = tag('dash-f');
    await buildOk(dir, undefined, ['-t', c, '-f', join(dir, 'other/Build.file')]);
    expect(await run([c])).toBe('from -f\n');
  });

  it('-q prints only the image id; -t is repeatable', async () => {
    const [t1, t2] = [tag('quiet'), tag('quiet-2')];
    const r = await build(context({ 'f.txt': 'f\n' }), `FROM ${BUSYBOX}\nCOPY f.txt /f.txt\nRUN echo run-output\n`, ['-q', '-t', t1, '-t', t2]);
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toMatch(/^sha256:[0-9a-f]{64}\n$/);
    const id = r.stdout.trim();
    expect((await inspect(t1)).id).toBe(id);
    expect((await inspect(t2)).id).toBe(id);
  });

  it('a missing context directory: non-zero exit, a one-line error saying it is not there, no stack trace', async () => {
    const missing = join(tempDir('tsrun-build-missing-'), 'no-such-dir');
    const err = expectCleanError(await e.tsrun(['build', missing]));
    expect(err).toContain(missing);
    expect(err).toMatch(/not found|no such|does not exist/i);
    expectCleanError(await e.tsrun(['build', '-f', join(context({}), 'Nope'), missing]));
  });

  it('a missing -f file or no Containerfile in the context: non-zero exit, a one-line error naming it, no stack trace', async () => {
    const dir = context({});
    expect(expectCleanError(await e.tsrun(['build', '-f', join(dir, 'Nope'), dir]))).toContain(join(dir, 'Nope'));
    expect(expectCleanError(await e.tsrun(['build', dir]))).toMatch(/Containerfile|Dockerfile/);
  });
});
