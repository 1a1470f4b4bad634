// The seccomp filter is the last thing before execve that it can be (issue 10 item 1): a
// profile that denies everything but what the container's program needs, plus the few
// calls that must follow the filter (runc's order), works with no_new_privs on and off.
// tsrun's own set-up (executable lookup, fd closing, the sync with the parent) is never
// subject to the container's filter.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BaseBundle, buildBaseBundle, cleanupAll, makeBundle, oci, ociSkipReason, removeScratch, show } from './helpers/bundle.js';

const skipReason = ociSkipReason();
if (skipReason) console.warn(`[seccomp-order.test] SKIPPED: ${skipReason}`);

/** What busybox-static's `echo` calls from its first instruction to exit (strace). */
const PROGRAM = [
  'arch_prctl',
  'brk',
  'exit_group',
  'getrandom',
  'getuid',
  'mprotect',
  'prctl',
  'prlimit64',
  'readlink',
  'rseq',
  'set_robust_list',
  'set_tid_address',
  'write',
];
/** After the filter: signal mask and execve; without no_new_privs also the final capset. */
const AFTER_FILTER_NNP = ['rt_sigprocmask', 'execve'];
const AFTER_FILTER_NO_NNP = [...AFTER_FILTER_NNP, 'capget', 'capset'];

const profile = (names: string[]) => ({
  defaultAction: 'SCMP_ACT_ERRNO',
  architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32', 'SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'],
  syscalls: [{ names, action: 'SCMP_ACT_ALLOW' }],
});

describe.skipIf(!!skipReason)('seccomp: a minimal allow-list (default SCMP_ACT_ERRNO)', () => {
  let base: BaseBundle;
  const root = () => path.join(base.tmp, 'state');
  const ids = new Set<string>();
  let seq = 0;

  beforeAll(() => {
    base = buildBaseBundle('tsrun-seccomp-order');
  });
  afterAll(async () => {
    if (!base) return;
    const problems = await cleanupAll(root(), ids, base.tmp);
    removeScratch(base.tmp);
    expect(problems, problems.join('\n')).toEqual([]);
  });

  async function run(nnp: boolean, names: string[], mode: 'run' | 'create' = 'run') {
    const dir = makeBundle(base, (s) => {
      s.process.noNewPrivileges = nnp;
      s.process.args = ['echo', 'filtered-ok']; // looked up in PATH: faccessat2 and stat before the filter
      s.linux.seccomp = profile(names);
    });
    const id = `secord-${process.pid}-${++seq}`;
    ids.add(id);
    if (mode === 'run') return oci(root(), ['run', '--bundle', dir, id]);
    const c = await oci(root(), ['create', '--bundle', dir, id]);
    expect(c.code, show(c)).toBe(0);
    const s = await oci(root(), ['start', id]);
    expect(s.code, show(s)).toBe(0);
    return s;
  }

  for (const nnp of [true, false]) {
    const allow = [...PROGRAM, ...(nnp ? AFTER_FILTER_NNP : AFTER_FILTER_NO_NNP)];
    it(`noNewPrivileges ${nnp}: runs with only the program's syscalls and ${nnp ? 'rt_sigprocmask/execve' : 'rt_sigprocmask/execve/capget/capset'} allowed`, async () => {
      const r = await run(nnp, allow);
      expect(r.code, show(r)).toBe(0);
      expect(r.stdout).toBe('filtered-ok\n');
    });

    it(`noNewPrivileges ${nnp}: create + start (the wait for start is before the filter)`, async () => {
      const r = await run(nnp, allow, 'create');
      expect(r.code, show(r)).toBe(0);
    });

    it(`noNewPrivileges ${nnp}: control: without write in the list, the filter stops the program's output`, async () => {
      const r = await run(
        nnp,
        allow.filter((n) => n !== 'write'),
      );
      expect(r.stdout).toBe('');
    });
  }
});
