// A failed `create` must say what failed (step, syscall, path, errno text) and leave nothing
// behind: no state dir, nothing in `list`, no cgroup, no mount, no process. Plus the error
// contract of the lifecycle commands on duplicate, missing and stopped containers.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BaseBundle,
  buildBaseBundle,
  cleanupAll,
  leftoversFor,
  makeBundle,
  mountLines,
  mountsMentioning,
  oci,
  ociSkipReason,
  type OciResult,
  processesMentioning,
  removeScratch,
  show,
  tsrunOci,
  until,
  v2Mount,
} from './helpers/bundle.js';

const skipReason = ociSkipReason();
if (skipReason) console.warn(`[create-failure.test] SKIPPED: ${skipReason}`);

describe.skipIf(process.getuid?.() !== 0 || !existsSync(tsrunOci) || skipReason !== null)(
  'tsrun-oci: failed create leaves nothing behind (§7 undo on failure)',
  () => {
    let base: BaseBundle;
    let root: string;
    const ids = new Set<string>();
    let seq = 0;
    const newId = (tag: string) => {
      const id = `cf-${process.pid}-${++seq}-${tag}`;
      ids.add(id);
      return id;
    };
    const bundle = (mutate: (spec: any) => void) => makeBundle(base, mutate);

    beforeAll(() => {
      base = buildBaseBundle('tsrun-create-failure');
      root = path.join(base.tmp, 'state');
    });

    afterAll(async () => {
      if (!base) return;
      const problems = await cleanupAll(root, ids, base.tmp);
      expect(mountsMentioning(base.tmp), 'mounts left on the scratch dir').toEqual([]);
      removeScratch(base.tmp);
      expect(problems, 'leftovers after delete --force of every container').toEqual([]);
    });

    /**
     * `create` must fail with exit 1 and a message matching every pattern; afterwards no trace
     * of the container may remain.
     */
    async function expectCleanFailure(dir: string, tag: string, patterns: (string | RegExp)[]): Promise<OciResult> {
      const id = newId(tag);
      const mountsBefore = new Set(mountLines());
      const r = await oci(root, ['create', '--bundle', dir, id]);
      expect(r.code, show(r)).toBe(1);
      expect(r.timedOut, show(r)).toBe(false);
      for (const p of patterns) {
        if (typeof p === 'string') expect(r.stderr, show(r)).toContain(p);
        else expect(r.stderr, show(r)).toMatch(p);
      }
      expect(existsSync(path.join(root, id)), `state dir left:\n${show(r)}`).toBe(false);
      const ls = await oci(root, ['list', '-q']);
      expect(ls.code, show(ls)).toBe(0);
      expect(ls.stdout.trim(), show(ls)).toBe('');
      const v2 = v2Mount();
      if (v2) expect(existsSync(path.join(v2, 'tsrun', id)), `cgroup ${v2}/tsrun/${id} left`).toBe(false);
      // The runtime's own mounts happen in the container's mount namespace; none may show here.
      const added = mountLines().filter((l) => !mountsBefore.has(l) && (l.includes(base.tmp) || l.includes(id) || l.includes('tsrun')));
      expect(added, 'new mounts').toEqual([]);
      // A forked init that was never exec'd still carries the runtime's argv (with the id).
      await until(() => processesMentioning(id).length === 0, 3000);
      expect(processesMentioning(id), 'processes of the container left').toEqual([]);
      const st = await oci(root, ['state', id]);
      expect(st.code, show(st)).toBe(1);
      expect(st.stderr, show(st)).toContain('container does not exist');
      return r;
    }

    describe('bad creates', () => {
      it('bind mount with a missing source', async () => {
        const dir = bundle((s) => s.mounts.push({ destination: '/x', type: 'bind', source: '/nonexistent-src', options: ['rbind'] }));
        await expectCleanFailure(dir, 'nosrc', ['mount', '/nonexistent-src', '/x', 'no such file or directory']);
      });

      it('a mount of an unknown filesystem type fails in the container init (child side)', async () => {
        const dir = bundle((s) => s.mounts.push({ destination: '/x', type: 'nosuchfs-tsrun', source: 'none' }));
        await expectCleanFailure(dir, 'badfs', ['step mount', 'nosuchfs-tsrun', '/x', 'ENODEV']);
      });

      it('missing executable /nonexistent', async () => {
        const dir = bundle((s) => (s.process.args = ['/nonexistent']));
        await expectCleanFailure(dir, 'noexe', ['/nonexistent', 'no such file or directory']);
      });

      it('command not in $PATH', async () => {
        const dir = bundle((s) => (s.process.args = ['nosuchcmd']));
        await expectCleanFailure(dir, 'nocmd', ['nosuchcmd', 'executable file not found in $PATH']);
      });

      it('non-executable file /etc/passwd', async () => {
        const dir = bundle((s) => (s.process.args = ['/etc/passwd']));
        await expectCleanFailure(dir, 'noexec', ['/etc/passwd', 'permission denied']);
      });

      it('cwd is a regular file', async () => {
        const dir = bundle((s) => (s.process.cwd = '/etc/passwd'));
        await expectCleanFailure(dir, 'cwdfile', ['/etc/passwd', 'not a directory']);
      });

      it('a uid not mapped in the user namespace fails at setuser', async () => {
        const dir = bundle((s) => {
          s.linux.namespaces.push({ type: 'user' });
          s.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 1 }];
          s.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 1 }];
          // what a user namespace cannot do here: a cgroup2 mount without a cgroup namespace,
          // devpts gid=5 (unmapped)
          s.mounts = s.mounts.filter((m: any) => m.destination !== '/sys/fs/cgroup');
          for (const m of s.mounts) if (m.options) m.options = m.options.filter((o: string) => o !== 'gid=5');
          s.process.user = { uid: 5, gid: 0 };
        });
        await expectCleanFailure(dir, 'userns', [/setuser|setresuid/, '5', 'invalid argument']);
      });

      it('control: the same user-namespace config with uid 0 runs', async () => {
        const dir = bundle((s) => {
          s.linux.namespaces.push({ type: 'user' });
          s.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 1 }];
          s.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 1 }];
          s.mounts = s.mounts.filter((m: any) => m.destination !== '/sys/fs/cgroup');
          for (const m of s.mounts) if (m.options) m.options = m.options.filter((o: string) => o !== 'gid=5');
          s.process.args = ['/bin/sh', '-c', 'echo "ID=$(id -u):$(id -g)"; cat /proc/self/uid_map'];
        });
        const id = newId('userns-ok');
        const r = await oci(root, ['run', '--bundle', dir, id]);
        expect(r.code, show(r)).toBe(0);
        expect(r.stdout, show(r)).toContain('ID=0:0');
        expect(r.stdout.split('\n')[1]?.trim().split(/\s+/), show(r)).toEqual(['0', '100000', '1']);
      });

      it('malformed config.json', async () => {
        const dir = bundle(() => {});
        writeFileSync(path.join(dir, 'config.json'), '{"ociVersion": "1.0.2", "process": {');
        await expectCleanFailure(dir, 'badjson', ['config.json', /JSON/]);
      });

      it('relative process.cwd', async () => {
        const dir = bundle((s) => (s.process.cwd = 'tmp'));
        await expectCleanFailure(dir, 'relcwd', ['"process.cwd" must be an absolute path']);
      });

      it('root.path that does not exist', async () => {
        const dir = bundle((s) => (s.root.path = path.join(base.tmp, 'no-such-rootfs')));
        await expectCleanFailure(dir, 'norootfs', ['no-such-rootfs']);
      });
    });

    describe('lifecycle errors', () => {
      it('creation exclusivity (§7): duplicate id: the second create fails with "already exists" and the first container is unaffected', async () => {
        const dir = bundle((s) => (s.process.args = ['/bin/sleep', '1000']));
        const id = newId('dup');
        const pidFile = path.join(base.tmp, `${id}.pid`);
        const c1 = await oci(root, ['create', '--pid-file', pidFile, '--bundle', dir, id]);
        expect(c1.code, show(c1)).toBe(0);
        const pid = Number(readFileSync(pidFile, 'utf8'));
        const st1 = JSON.parse((await oci(root, ['state', id])).stdout);
        expect(st1.status).toBe('created');
        expect(st1.pid).toBe(pid);

        const other = bundle((s) => (s.process.args = ['/bin/true']));
        const c2 = await oci(root, ['create', '--bundle', other, id]);
        expect(c2.code, show(c2)).toBe(1);
        expect(c2.stderr, show(c2)).toContain('already exists');

        const st2 = await oci(root, ['state', id]);
        expect(st2.code, show(st2)).toBe(0);
        const s2 = JSON.parse(st2.stdout);
        expect([s2.status, s2.pid, s2.bundle], show(st2)).toEqual(['created', pid, dir]);
        expect(existsSync(`/proc/${pid}`)).toBe(true);
        const v2 = v2Mount();
        if (v2) expect(readFileSync(path.join(v2, 'tsrun', id, 'cgroup.procs'), 'utf8').split('\n')).toContain(String(pid));

        // and it still starts
        const s = await oci(root, ['start', id]);
        expect(s.code, show(s)).toBe(0);
        const st3 = JSON.parse((await oci(root, ['state', id])).stdout);
        expect([st3.status, st3.pid]).toEqual(['running', pid]);
        const d = await oci(root, ['delete', '--force', id]);
        expect(d.code, show(d)).toBe(0);
        await until(() => leftoversFor(root, id, base.tmp).length === 0, 3000);
        expect(leftoversFor(root, id, base.tmp)).toEqual([]);
        expect(existsSync(`/proc/${pid}`) && readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[2] !== 'Z').toBe(false);
      });

      it('delete --force of a missing id exits 0', async () => {
        const r = await oci(root, ['delete', '--force', newId('missing')]);
        expect(r.code, show(r)).toBe(0);
      });

      it('delete (without --force) of a missing id exits 1', async () => {
        const r = await oci(root, ['delete', newId('missing2')]);
        expect(r.code, show(r)).toBe(1);
        expect(r.stderr, show(r)).toContain('container does not exist');
      });

      it('state of a missing id exits 1 with "container does not exist"', async () => {
        const r = await oci(root, ['state', newId('missing3')]);
        expect(r.code, show(r)).toBe(1);
        expect(r.stderr, show(r)).toContain('container does not exist');
      });

      it('stopped container: kill --all exits 0, kill exits 1 with "container not running"', async () => {
        const dir = bundle((s) => (s.process.args = ['/bin/true']));
        const id = newId('stopped');
        const c = await oci(root, ['create', '--bundle', dir, id]);
        expect(c.code, show(c)).toBe(0);
        const s = await oci(root, ['start', id]);
        expect(s.code, show(s)).toBe(0);
        let status = '';
        for (let i = 0; i < 100 && status !== 'stopped'; i++) {
          status = JSON.parse((await oci(root, ['state', id])).stdout).status;
          if (status !== 'stopped') await new Promise((res) => setTimeout(res, 50));
        }
        expect(status).toBe('stopped');

        const ka = await oci(root, ['kill', '--all', id, 'KILL']);
        expect(ka.code, show(ka)).toBe(0);
        const k = await oci(root, ['kill', id, 'KILL']);
        expect(k.code, show(k)).toBe(1);
        expect(k.stderr, show(k)).toContain('container not running');
        const kt = await oci(root, ['kill', id]);
        expect(kt.code, show(kt)).toBe(1);

        const d = await oci(root, ['delete', id]);
        expect(d.code, show(d)).toBe(0);
        expect(leftoversFor(root, id, base.tmp)).toEqual([]);
      });
    });
  },
);
