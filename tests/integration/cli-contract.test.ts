// The parts of runc's CLI contract that clients parse (oci-client-contract.md §6): output
// shapes, the --log JSON lines, the pid file, and running with an empty environment.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBaseBundle, cleanupAll, makeBundle, oci, ociSkipReason, removeScratch, show, tsrunOci, type BaseBundle } from './helpers/bundle.js';

const skip = ociSkipReason();
if (skip) console.log(`cli-contract: skipped: ${skip}`);

describe.skipIf(!!skip)('tsrun-oci CLI contract', () => {
  let base: BaseBundle;
  let root: string;
  const ids: string[] = [];
  const id = (n: string) => {
    const v = `cli-${process.pid}-${n}`;
    ids.push(v);
    return v;
  };

  beforeAll(() => {
    base = buildBaseBundle('tsrun-cli');
    root = mkdtempSync(join(tmpdir(), 'tsrun-cli-root-'));
  });
  afterAll(async () => {
    const left = await cleanupAll(root, ids, base.tmp);
    rmSync(root, { recursive: true, force: true });
    removeScratch(base.tmp);
    expect(left).toEqual([]);
  });

  it('works with an empty environment (Podman runs kill/delete/state with only XDG_RUNTIME_DIR=)', () => {
    const r = spawnSync(tsrunOci, ['--version'], { env: { XDG_RUNTIME_DIR: '' }, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^tsrun-oci version \S+\ncommit: \S+\nspec: 1\.\d+\.\d+/);
    const s = spawnSync(tsrunOci, ['--root', root, 'state', 'nope'], { env: {}, encoding: 'utf8' });
    expect(s.status).toBe(1);
    expect(s.stdout).toBe('');
    expect(s.stderr).toContain('container does not exist');
  });

  it('appends one {"level","msg","time"} JSON line per error to --log, and prints the message on stderr', async () => {
    const log = join(base.tmp, 'log.json');
    const b = makeBundle(base, (s) => (s.process.args = ['/nonexistent']));
    const r = await oci(root, ['--log', log, '--log-format', 'json', 'create', '--bundle', b, id('log')]);
    expect(r.code, show(r)).toBe(1);
    expect(r.stderr).toContain('no such file or directory');
    const lines = readFileSync(log, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(1);
    const entry = JSON.parse(lines[0]!);
    expect(Object.keys(entry).sort()).toEqual(['level', 'msg', 'time']);
    expect(entry.level).toBe('error');
    expect(entry.msg).toMatch(
      /^tsrun-oci create failed: unable to start container process: exec: "\/nonexistent": stat \/nonexistent: no such file or directory/,
    );
    expect(entry.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });

  it('writes the pid file without a newline, reports state and ps, and start runs the program', async () => {
    const b = makeBundle(base, (s) => (s.process.args = ['/bin/sh', '-c', 'trap "exit 0" TERM; while :; do sleep 0.1; done']));
    const c = id('life');
    const pidFile = join(base.tmp, 'pid');
    const r = await oci(root, ['create', '--bundle', b, '--pid-file', pidFile, c]);
    expect(r.code, show(r)).toBe(0);
    const pid = readFileSync(pidFile, 'utf8');
    expect(pid).toMatch(/^\d+$/);
    const st = JSON.parse((await oci(root, ['state', c])).stdout);
    expect(st).toMatchObject({ id: c, status: 'created', pid: Number(pid), bundle: b });
    expect(st.created).toMatch(/^\d{4}-/);
    expect((await oci(root, ['start', c])).code).toBe(0);
    expect(JSON.parse((await oci(root, ['state', c])).stdout).status).toBe('running');
    const again = await oci(root, ['start', c]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('cannot start an already running container');
    const ps = await oci(root, ['ps', '--format', 'json', c]);
    expect(ps.stderr).toBe('');
    expect(JSON.parse(ps.stdout)).toContain(Number(pid));
    const list = JSON.parse((await oci(root, ['list', '--format', 'json'])).stdout);
    expect(list.map((x: { id: string }) => x.id)).toContain(c);
    const del = await oci(root, ['delete', c]);
    expect(del.code).toBe(1);
    expect(del.stderr).toContain(`cannot delete container ${c} that is not stopped: running`);
    expect((await oci(root, ['kill', c, '15'])).code).toBe(0);
    const stopped = await (async () => {
      for (let i = 0; i < 100; i++) {
        const s = JSON.parse((await oci(root, ['state', c])).stdout);
        if (s.status === 'stopped') return s;
        await new Promise((res) => setTimeout(res, 50));
      }
      return null;
    })();
    expect(stopped).toMatchObject({ status: 'stopped', pid: 0 });
    expect((await oci(root, ['ps', '--format', 'json', c])).stdout.trim()).toBe('null');
    expect((await oci(root, ['delete', c])).code).toBe(0);
    expect(existsSync(join(root, c))).toBe(false);
  });

  it('exec --tty gets a terminal inside a running container', async () => {
    const b = makeBundle(base, (s) => (s.process.args = ['/bin/sh', '-c', 'trap "exit 0" TERM; while :; do sleep 0.1; done']));
    const c = id('tty');
    expect((await oci(root, ['run', '-d', '--bundle', b, c])).code).toBe(0);
    const r = spawnSync('script', ['-qec', `${tsrunOci} --root ${root} exec -t ${c} sh -c 'tty; exit 5'`, '/dev/null'], {
      encoding: 'utf8',
      input: '',
      timeout: 20_000,
    });
    expect(r.stdout).toContain('/dev/pts/');
    expect(r.status).toBe(5);
    expect((await oci(root, ['delete', '--force', c])).code).toBe(0);
  });

  it('a created container can be paused and resumed, and killed before start', async () => {
    const b = makeBundle(base, (s) => (s.process.args = ['/bin/true']));
    const c = id('frozen');
    expect((await oci(root, ['create', '--bundle', b, c])).code).toBe(0);
    expect((await oci(root, ['pause', c])).code).toBe(0);
    expect(JSON.parse((await oci(root, ['state', c])).stdout).status).toBe('paused');
    expect((await oci(root, ['resume', c])).code).toBe(0);
    expect(JSON.parse((await oci(root, ['state', c])).stdout).status).toBe('created');
    expect((await oci(root, ['kill', c, 'KILL'])).code).toBe(0);
    let status = '';
    for (let i = 0; i < 100 && status !== 'stopped'; i++) {
      status = JSON.parse((await oci(root, ['state', c])).stdout).status;
      if (status !== 'stopped') await new Promise((res) => setTimeout(res, 50));
    }
    expect(status).toBe('stopped');
    expect((await oci(root, ['delete', c])).code).toBe(0);
  });

  it('runs every hook kind in the runtime-spec order, the container ones inside the container', async () => {
    const log = join(base.tmp, 'hooks.log');
    const h = (cmd: string) => [{ path: '/bin/sh', args: ['sh', '-c', cmd] }];
    const b = makeBundle(
      base,
      (s) => {
        s.process.args = ['/bin/sh', '-c', 'cat /from-start-hook'];
        s.root.readonly = false;
        s.hooks = {
          prestart: h(`echo prestart >> ${log}`),
          createRuntime: h(`echo createRuntime >> ${log}; cat > ${log}.state`),
          createContainer: h(`echo createContainer >> ${log}`),
          startContainer: h('echo written-by-startContainer > /from-start-hook'),
          poststart: h(`echo poststart >> ${log}`),
          poststop: h(`echo poststop >> ${log}`),
        };
      },
      { copyRootfs: true },
    );
    const c = id('hooks');
    const r = await oci(root, ['run', '--bundle', b, c]);
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toContain('written-by-startContainer'); // its path resolved in the container
    expect(readFileSync(log, 'utf8').trim().split('\n')).toEqual(['prestart', 'createRuntime', 'createContainer', 'poststart', 'poststop']);
    expect(JSON.parse(readFileSync(`${log}.state`, 'utf8'))).toMatchObject({ id: c, status: 'creating', bundle: b });
  });

  it('prints features and writes a spec that it can run', async () => {
    const f = JSON.parse((await oci(root, ['features'])).stdout);
    expect(f.ociVersionMax).toMatch(/^1\./);
    expect(f.linux.namespaces).toContain('cgroup');
    const dir = makeBundle(base);
    rmSync(join(dir, 'config.json'));
    expect((await oci(root, ['spec', '--bundle', dir])).code).toBe(0);
    expect(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).process.noNewPrivileges).toBe(true);
    expect((await oci(root, ['spec', '--bundle', dir])).stderr).toContain('exists');
  });
});
