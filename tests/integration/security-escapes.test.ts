// Host escapes a hostile review found (issue 9, items 1 and 8), reproduced as the attacker
// would: an image whose program is a script starting "#!/proc/self/exe", so the kernel runs
// whatever the runtime's process is executing as the script's interpreter, inside the
// container. When that was a fork of node, the script (JavaScript: node skips the #! line)
// kept an fd on the host's node binary and, once no host process ran it, wrote through
// /proc/self/fd/N. Here tsrun-oci runs under a private copy of node, and every test proves
// the copy unchanged. The container sees the host's /usr/lib read-only, so node could run.
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BaseBundle, buildBaseBundle, cleanupAll, makeBundle, oci, ociSkipReason, removeScratch, show, until } from './helpers/bundle.js';

const skipReason = ociSkipReason() ?? (existsSync('/usr/lib64') ? null : 'the host has no /usr/lib64 (node could not run in the container)');
if (skipReason) console.warn(`[security-escapes.test] SKIPPED: ${skipReason}`);

/** The attacker's program: JavaScript behind a #! that names the runtime's own executable. */
const EVIL = `#!/proc/self/exe
const fs = require('fs');
const { spawn } = require('child_process');
fs.appendFileSync('/out/log', 'node ran\\n');
const fd = fs.openSync('/proc/self/exe', 'r');
// A writer that outlives us: ETXTBSY while any process executes the file, then it writes.
const loop = 'i=0; while [ $i -lt 80 ]; do if printf PWNED-BY-CONTAINER > /proc/self/fd/3 2>/dev/null; then echo wrote >> /out/log; exit 0; fi; sleep 0.1; i=$((i+1)); done; echo gave-up >> /out/log';
spawn('/bin/sh', ['-c', loop], { stdio: ['ignore', 'ignore', 'ignore', fd], detached: true }).unref();
`;

function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

describe.skipIf(!!skipReason)('host executable escapes (CVE-2019-5736 class)', () => {
  let base: BaseBundle;
  let nodeHash: string;
  const root = () => path.join(base.tmp, 'state');
  const ids = new Set<string>();
  let seq = 0;

  beforeAll(() => {
    base = buildBaseBundle('tsrun-escape');
    nodeHash = sha256(process.execPath);
  });

  afterAll(async () => {
    if (!base) return;
    const problems = await cleanupAll(root(), ids, base.tmp);
    removeScratch(base.tmp);
    expect(problems, problems.join('\n')).toEqual([]);
  });

  /** A bundle with /evil, the host's libraries read-only, and /out (a host dir) for the log. */
  function evilBundle(mutate: (spec: any) => void): { bundle: string; log: string } {
    const out = path.join(base.tmp, `out${++seq}`);
    mkdirSync(out);
    const bundle = makeBundle(
      base,
      (spec) => {
        spec.root.readonly = false;
        spec.mounts.push(
          { destination: '/usr/lib', type: 'bind', source: '/usr/lib', options: ['rbind', 'ro'] },
          { destination: '/usr/lib64', type: 'bind', source: '/usr/lib64', options: ['rbind', 'ro'] },
          { destination: '/out', type: 'bind', source: out, options: ['rbind', 'rw'] },
        );
        mutate(spec);
      },
      {
        prepareRootfs: (rootfs) => {
          writeFileSync(path.join(rootfs, 'evil'), EVIL, { mode: 0o755 });
          mkdirSync(path.join(rootfs, 'usr/lib'), { recursive: true });
          mkdirSync(path.join(rootfs, 'usr/lib64'), { recursive: true });
          symlinkSync('usr/lib', path.join(rootfs, 'lib'));
          symlinkSync('usr/lib64', path.join(rootfs, 'lib64'));
        },
      },
    );
    return { bundle, log: path.join(out, 'log') };
  }

  /** Node in the container either never ran, or its writer finished (wrote or gave up). */
  async function attackOver(log: string): Promise<string> {
    await until(
      () => {
        const t = existsSync(log) ? readFileSync(log, 'utf8') : '';
        return !t || /wrote|gave-up/.test(t);
      },
      15_000,
      100,
    );
    return existsSync(log) ? readFileSync(log, 'utf8') : '';
  }

  /** A private copy of node for one test (never the real one: a failing test modifies it). */
  function privateNode(): string {
    const copy = path.join(base.tmp, `node-copy${++seq}`);
    copyFileSync(process.execPath, copy);
    return copy;
  }

  /** tsrun-oci under a private node copy. */
  const viaCopy = (nodeCopy: string, args: string[]) => oci(root(), args, { wrapper: [nodeCopy] });

  it('CVE-2019-5736 (/proc/self/exe): exec of a "#!/proc/self/exe" program cannot reach a host executable', async () => {
    const nodeCopy = privateNode();
    const { bundle, log } = evilBundle((spec) => {
      spec.process.args = ['/bin/sleep', '60'];
    });
    const id = `esc-exec-${process.pid}`;
    ids.add(id);
    const r = await viaCopy(nodeCopy, ['run', '-d', '--bundle', bundle, id]);
    expect(r.code, show(r)).toBe(0);
    const e = await viaCopy(nodeCopy, ['exec', id, '/evil']);
    const text = await attackOver(log);
    expect(text, `container log; exec: ${show(e)}`).not.toContain('node ran');
    expect(sha256(nodeCopy), 'the private node copy was modified from inside the container').toBe(nodeHash);
    // What ran instead: the sealed helper, which refuses to do anything for a script.
    expect(e.code, show(e)).not.toBe(0);
  }, 60_000);

  it('CVE-2019-5736 (/proc/self/exe): an init that is a "#!/proc/self/exe" program cannot reach a host executable (no pid namespace)', async () => {
    const nodeCopy = privateNode();
    const { bundle, log } = evilBundle((spec) => {
      spec.process.args = ['/evil'];
      spec.linux.namespaces = spec.linux.namespaces.filter((n: any) => n.type !== 'pid');
    });
    const id = `esc-init-${process.pid}`;
    ids.add(id);
    const r = await viaCopy(nodeCopy, ['run', '--bundle', bundle, id]);
    const text = await attackOver(log);
    expect(text, `container log; run: ${show(r)}`).not.toContain('node ran');
    expect(sha256(nodeCopy), 'the private node copy was modified from inside the container').toBe(nodeHash);
  }, 60_000);

  it('CVE-2019-5736 (/proc/self/exe): a startContainer hook that is a "#!/proc/self/exe" program cannot reach a host executable', async () => {
    const nodeCopy = privateNode();
    const { bundle, log } = evilBundle((spec) => {
      spec.process.args = ['/bin/true'];
      spec.hooks = { startContainer: [{ path: '/evil' }] };
    });
    const id = `esc-hook-${process.pid}`;
    ids.add(id);
    const r = await viaCopy(nodeCopy, ['run', '--bundle', bundle, id]);
    const text = await attackOver(log);
    expect(text, `container log; run: ${show(r)}`).not.toContain('node ran');
    expect(sha256(nodeCopy), 'the private node copy was modified from inside the container').toBe(nodeHash);
  }, 60_000);

  it("CVE-2016-9962 (runtime state visible from the container): the runtime's command line and environment are not readable from the container (created, and during exec)", async () => {
    const bundle = makeBundle(base, (spec) => {
      spec.process.args = ['/bin/true'];
    });
    const id = `esc-cmdline-${process.pid}`;
    ids.add(id);
    const c = await oci(root(), ['create', '--bundle', bundle, '--pid-file', path.join(base.tmp, 'secret-pid-file'), id]);
    expect(c.code, show(c)).toBe(0);
    // pid 1 is the created init; the exec's own helper shows as its parent while it sets up.
    const e = await oci(root(), [
      'exec',
      id,
      '/bin/sh',
      '-c',
      'tr "\\0" " " < /proc/1/cmdline; echo; tr "\\0" " " < /proc/$PPID/cmdline; echo; cat /proc/1/environ 2>&1 | tr "\\0" " "',
    ]);
    expect(e.code, show(e)).toBe(0);
    const [init, parent, environ] = e.stdout.split('\n');
    expect(init?.trim()).toBe('tsrun-init');
    expect(parent ?? '').not.toMatch(/node|tsrun-oci|--root|secret-pid-file/);
    expect(environ ?? '').not.toMatch(/PATH=|HOME=|_TSRUN_INIT/);
    // Control: the same probe sees a real command line (its own).
    const self = await oci(root(), ['exec', id, '/bin/sh', '-c', 'tr "\\0" " " < /proc/self/cmdline']);
    expect(self.stdout).toContain('tr');
  }, 60_000);
});

// Item 2: a startContainer/createContainer hook's path resolves in the container, so the
// image owns the program. It must get no more than the container's own process.
describe.skipIf(!!ociSkipReason())('container-namespace hooks are held to the container process (issue 9 item 2)', () => {
  let base: BaseBundle;
  const root = () => path.join(base.tmp, 'state');
  const ids = new Set<string>();

  beforeAll(() => {
    base = buildBaseBundle('tsrun-hookcaps');
  });

  afterAll(async () => {
    if (!base) return;
    const problems = await cleanupAll(root(), ids, base.tmp);
    removeScratch(base.tmp);
    expect(problems, problems.join('\n')).toEqual([]);
  });

  const PROBE = `#!/bin/sh
{
  grep -E '^(CapEff|CapPrm|CapBnd|CapInh|CapAmb|NoNewPrivs):' /proc/self/status
  echo "CGROUP=$(cat /proc/self/cgroup)"
  # Beside the report, in the test's own scratch dir (before pivot_root /tmp is the host's).
  if mknod "$1.blockdev" b 8 0 2>/dev/null; then echo MKNOD=ok; else echo MKNOD=refused; fi
} > "$1"
`;

  for (const kind of ['createContainer', 'startContainer'] as const) {
    it(`hook confinement (issue 9 item 2): a ${kind} hook from the image has the container's capabilities, no_new_privs and cgroup`, async () => {
      const out = path.join(base.tmp, `out-${kind}`);
      mkdirSync(out);
      const bundle = makeBundle(
        base,
        (spec) => {
          spec.root.readonly = false;
          spec.process.args = ['/bin/sh', '-c', 'grep -E "^(CapEff|CapBnd)" /proc/self/status > /out/process'];
          spec.mounts.push({ destination: '/out', type: 'bind', source: out, options: ['rbind', 'rw'] });
          // createContainer runs before pivot_root: its path resolves in the container's mount
          // namespace but still on the host's root, so it names the probe inside the rootfs.
          const probe = kind === 'createContainer' ? path.join(path.dirname(out), 'bundles', `hookrootfs-${kind}`, 'probe') : '/probe';
          const dest = kind === 'createContainer' ? path.join(out, 'hook') : '/out/hook';
          spec.hooks = { [kind]: [{ path: probe, args: [probe, dest] }] };
        },
        { prepareRootfs: (rootfs) => writeFileSync(path.join(rootfs, 'probe'), PROBE, { mode: 0o755 }) },
      );
      symlinkSync(path.join(bundle, 'rootfs'), path.join(base.tmp, 'bundles', `hookrootfs-${kind}`));
      const id = `hookcaps-${kind}-${process.pid}`;
      ids.add(id);
      const r = await oci(root(), ['run', '--bundle', bundle, id]);
      expect(r.code, show(r)).toBe(0);
      const hook = readFileSync(path.join(out, 'hook'), 'utf8');
      const proc = readFileSync(path.join(out, 'process'), 'utf8');
      const field = (text: string, k: string) => new RegExp(`^${k}:\\s*(\\S+)`, 'm').exec(text)?.[1];
      // The bundle's process has runc spec's three capabilities: 0x20000420.
      expect(field(proc, 'CapEff')).toBe('0000000020000420');
      expect(field(hook, 'CapEff'), hook).toBe(field(proc, 'CapEff'));
      expect(field(hook, 'CapBnd'), hook).toBe(field(proc, 'CapBnd'));
      expect(field(hook, 'CapInh'), hook).toBe('0000000000000000');
      expect(field(hook, 'CapAmb'), hook).toBe('0000000000000000');
      expect(field(hook, 'NoNewPrivs'), hook).toBe('1');
      // Inside the container's cgroup namespace, its own cgroup is the root.
      expect(hook, hook).toMatch(/^(CGROUP=)?0::\/$/m);
      expect(hook, hook).toContain('MKNOD=refused');
    }, 30_000);
  }
});
