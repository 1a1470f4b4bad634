// `create` can be SIGKILLed at any moment (an OOM kill, a client timing out). Whatever it had
// made by then, `delete --force` must finish the job: no state dir, no cgroup, no lock file, no
// mount, no process. Lock files must not pile up either: a verb on an id that does not exist,
// or a deleted one, leaves no <root>/<id>.lock.
// The exact moments come from a test-only hook in create.ts (TSRUN_TEST_CRASH_AT=<step>: create
// SIGKILLs itself there); random kills cover the moments in between.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  buildBaseBundle,
  leftoversFor,
  makeBundle,
  mountsMentioning,
  oci,
  ociSkipReason,
  processesMentioning,
  removeScratch,
  show,
  tsrunOci,
  until,
  v2Mount,
  type BaseBundle,
} from './helpers/bundle.js';

const skip = ociSkipReason();
if (skip) console.warn(`[crash-recovery.test] SKIPPED: ${skip}`);

/** The steps create.ts's crashPoint() knows, in the order create reaches them. */
const STEPS = ['reserved', 'recorded', 'cgroup', 'spawned', 'ready'] as const;

describe.skipIf(!!skip)('a create killed at any moment: delete --force leaves nothing', () => {
  let base: BaseBundle;
  let root: string;
  let bundle: string;
  const ids = new Set<string>();
  let seq = 0;
  const newId = (tag: string) => {
    const id = `crash-${process.pid}-${++seq}-${tag}`;
    ids.add(id);
    return id;
  };

  /** Everything left for `id`: state dir, cgroup, lock file, mounts, processes. */
  async function leftovers(id: string): Promise<string[]> {
    // a killed create's children die of PDEATHSIG: give them a moment
    await until(() => processesMentioning(id).length === 0, 3000);
    const problems = leftoversFor(root, id, base.tmp);
    if (existsSync(join(root, `${id}.lock`))) problems.push(`lock file ${join(root, `${id}.lock`)} exists`);
    return problems;
  }

  /** Last-resort cleanup of tsrun/<id> (the runtime under test should have removed it). */
  function removeCgroupOf(id: string): void {
    const v2 = v2Mount();
    const dir = v2 && join(v2, 'tsrun', id);
    if (!dir || !existsSync(dir)) return;
    try {
      writeFileSync(join(dir, 'cgroup.kill'), '1');
    } catch {
      /* old kernel */
    }
    for (let i = 0; i < 100; i++) {
      try {
        rmdirSync(dir);
        return;
      } catch {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
      }
    }
  }

  beforeAll(() => {
    base = buildBaseBundle('tsrun-crash');
    root = mkdtempSync(join(tmpdir(), 'tsrun-crash-root-'));
    // sleep, not exit: a create that got through must leave a live container for delete -f
    bundle = makeBundle(base, (s) => (s.process.args = ['/bin/sh', '-c', 'sleep 600']));
  });

  afterEach(async () => {
    const problems: string[] = [];
    for (const id of ids) {
      const r = await oci(root, ['delete', '--force', id]);
      if (r.code !== 0) problems.push(show(r));
      problems.push(...(await leftovers(id)));
      removeCgroupOf(id); // what a failing runtime left, so the host stays clean
    }
    ids.clear();
    expect(problems, 'leftovers after delete --force').toEqual([]);
  });

  afterAll(() => {
    if (!base) return;
    rmSync(root, { recursive: true, force: true });
    removeScratch(base.tmp);
  });

  for (const step of STEPS) {
    it(`killed at "${step}"`, async () => {
      const id = newId(step);
      const r = await oci(root, ['create', '--bundle', bundle, id], { wrapper: ['env', `TSRUN_TEST_CRASH_AT=${step}`] });
      expect(r.signal, `create must have killed itself at ${step}:\n${show(r)}`).toBe('SIGKILL');
      expect(existsSync(join(root, id)), 'the killed create left its state dir (what delete -f must clean)').toBe(true);
      if (step !== 'reserved' && v2Mount()) {
        const made = existsSync(join(v2Mount()!, 'tsrun', id));
        expect(made, `cgroup after "${step}"`).toBe(step !== 'recorded');
      }
      const d = await oci(root, ['delete', '--force', id]);
      expect(d.code, show(d)).toBe(0);
      expect(await leftovers(id)).toEqual([]);
      ids.delete(id);
      const ls = await oci(root, ['list', '-q']);
      expect(ls.stdout.trim(), show(ls)).toBe('');
    });
  }

  it('20 creates SIGKILLed after random delays: delete --force leaves nothing', { timeout: 240_000 }, async () => {
    // How long a warm create takes here (the first run also writes V8's code cache), to
    // spread the kills over it; node's start-up and module loading are its first half or so.
    const times: number[] = [];
    for (let i = 0; i < 4; i++) {
      const probe = newId(`probe${i}`);
      const t0 = Date.now();
      const child = spawn(tsrunOci, ['--root', root, 'create', '--bundle', bundle, probe], { stdio: 'ignore' });
      const code = await new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
      times.push(Date.now() - t0);
      expect(code, `create ${probe}`).toBe(0);
      expect((await oci(root, ['delete', '--force', probe])).code).toBe(0);
      ids.delete(probe);
    }
    const full = times.slice(1).sort((a, b) => a - b)[1]!;

    const mountsBefore = mountsMentioning(base.tmp, root).length;
    const outcomes: string[] = [];
    for (let i = 0; i < 20; i++) {
      const id = newId(`rand${i}`);
      const delay = Math.floor(full * (0.55 + Math.random() * 0.5));
      const child = spawn(tsrunOci, ['--root', root, 'create', '--bundle', bundle, id], { stdio: 'ignore' });
      const exited = new Promise<string>((res) => child.on('exit', (code, sig) => res(sig ?? `exit ${code}`)));
      await new Promise((res) => setTimeout(res, delay));
      child.kill('SIGKILL');
      const how = await exited;
      // what the killed create had made: state dir, state.json, cgroup
      const made = [
        existsSync(join(root, id)) ? 'dir' : '',
        existsSync(join(root, id, 'state.json')) ? 'state' : '',
        v2Mount() && existsSync(join(v2Mount()!, 'tsrun', id)) ? 'cgroup' : '',
      ].filter(Boolean);
      outcomes.push(`${delay}ms ${how} [${made.join('+')}]`);
      const d = await oci(root, ['delete', '--force', id]);
      expect(d.code, `${show(d)}\n(create killed after ${delay} ms)`).toBe(0);
      expect(await leftovers(id), `create killed after ${delay} ms`).toEqual([]);
      ids.delete(id);
    }
    console.log(`[crash-recovery] full create ${full} ms; kills: ${outcomes.join(', ')}`);
    expect(
      readdirSync(root).filter((n) => n !== '.seccomp-cache'),
      `${root} after all deletes`,
    ).toEqual([]);
    const v2 = v2Mount();
    if (v2 && existsSync(join(v2, 'tsrun'))) {
      expect(readdirSync(join(v2, 'tsrun')).filter((n) => n.startsWith(`crash-${process.pid}-`))).toEqual([]);
    }
    expect(mountsMentioning(base.tmp, root).length).toBe(mountsBefore);
  });

  describe('lock files', () => {
    it('delete, delete --force, start, state and kill of an id that never existed leave no lock file', async () => {
      const id = newId('never');
      for (const args of [
        ['delete', id],
        ['start', id],
        ['state', id],
        ['kill', id, 'KILL'],
        ['delete', '--force', id],
      ]) {
        const r = await oci(root, args);
        expect(r.code, show(r)).toBe(args.includes('--force') ? 0 : 1);
        expect(existsSync(join(root, `${id}.lock`)), `lock file after ${args.join(' ')}`).toBe(false);
      }
    });

    it('create, start, delete: no lock file afterwards', async () => {
      const id = newId('cycle');
      const c = await oci(root, ['create', '--bundle', bundle, id]);
      expect(c.code, show(c)).toBe(0);
      expect((await oci(root, ['start', id])).code).toBe(0);
      const d = await oci(root, ['delete', '--force', id]);
      expect(d.code, show(d)).toBe(0);
      expect(readdirSync(root).filter((n) => n.startsWith(id))).toEqual([]);
      ids.delete(id);
    });

    it('a failed create leaves no lock file', async () => {
      const id = newId('fail');
      const bad = makeBundle(base, (s) => (s.process.args = ['/nonexistent']));
      const r = await oci(root, ['create', '--bundle', bad, id]);
      expect(r.code, show(r)).toBe(1);
      expect(readdirSync(root).filter((n) => n.startsWith(id))).toEqual([]);
      ids.delete(id);
    });
  });
});
