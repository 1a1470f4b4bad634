// The engine's default seccomp profile (src/engine/seccomp-profile.ts) in a real container under
// tsrun-oci: ordinary programs run (fork through the clone filter, pipes, personality), and
// what Docker's profile keeps for CAP_SYS_ADMIN is refused with EPERM ("Operation not
// permitted", not ENOSYS) unless the capability is in the bounding set the profile was
// rendered for. The control that isolates seccomp: CAP_SYS_ADMIN granted but the profile
// rendered without it still refuses `unshare -m`.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultSeccompProfile } from '../../src/engine/seccomp-profile.js';
import { type BaseBundle, buildBaseBundle, cleanupAll, makeBundle, oci, ociSkipReason, removeScratch, show } from './helpers/bundle.js';
import { DOCKER_CAPS } from '../helpers/docker-caps.js';

const skipReason = ociSkipReason();
if (skipReason) console.warn(`[seccomp-default-profile.test] SKIPPED: ${skipReason}`);

const WITH_SYS_ADMIN = [...DOCKER_CAPS, 'CAP_SYS_ADMIN'];

/** Whether the host lets a process without CAP_SYS_ADMIN create a user namespace. */
function hostAllowsUserns(): string | null {
  try {
    if (Number(readFileSync('/proc/sys/user/max_user_namespaces', 'utf8').trim()) === 0) return 'user.max_user_namespaces is 0';
  } catch {
    return 'no /proc/sys/user/max_user_namespaces';
  }
  try {
    if (readFileSync('/proc/sys/kernel/unprivileged_userns_clone', 'utf8').trim() === '0') return 'kernel.unprivileged_userns_clone is 0';
  } catch {
    /* not a Debian-patched kernel: no such switch */
  }
  return null;
}

describe.skipIf(!!skipReason)('the default seccomp profile under tsrun-oci', () => {
  let base: BaseBundle;
  const root = () => path.join(base.tmp, 'state');
  const ids = new Set<string>();
  let seq = 0;

  beforeAll(() => {
    base = buildBaseBundle('tsrun-seccomp-default');
  });
  afterAll(async () => {
    if (!base) return;
    const problems = await cleanupAll(root(), ids, base.tmp);
    removeScratch(base.tmp);
    expect(problems, problems.join('\n')).toEqual([]);
  });

  /** Run `args` with these capabilities and the profile rendered for `profileCaps` (null: no seccomp). */
  async function run(args: string[], caps: string[], profileCaps: string[] | null) {
    const dir = makeBundle(base, (s) => {
      s.process.args = args;
      s.process.capabilities = { bounding: caps, effective: caps, permitted: caps };
      if (profileCaps) s.linux.seccomp = defaultSeccompProfile({ capabilities: profileCaps });
      else delete s.linux.seccomp;
    });
    const id = `secdef-${process.pid}-${++seq}`;
    ids.add(id);
    return oci(root(), ['run', '--bundle', dir, id]);
  }

  it("docker's capabilities: echo, a pipe (fork through the clone filter) and linux32 (personality 8) work", async () => {
    const r = await run(['sh', '-c', 'echo hi | cat && linux32 true && echo done'], DOCKER_CAPS, DOCKER_CAPS);
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toBe('hi\ndone\n');
  });

  it("docker's capabilities: `echo hi`", async () => {
    const r = await run(['echo', 'hi'], DOCKER_CAPS, DOCKER_CAPS);
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout).toBe('hi\n');
  });

  it("docker's capabilities: `unshare -U true` is refused with EPERM (not ENOSYS)", async () => {
    const r = await run(['unshare', '-U', 'true'], DOCKER_CAPS, DOCKER_CAPS);
    expect(r.code, show(r)).not.toBe(0);
    expect(r.stderr, show(r)).toMatch(/unshare.*Operation not permitted/);
    expect(r.stderr, show(r)).not.toMatch(/Function not implemented/);
  });

  it("control: docker's capabilities without seccomp, `unshare -U true` works (so the refusal above is the filter's)", async (ctx) => {
    const why = hostAllowsUserns();
    ctx.skip(!!why, `the host refuses user namespaces anyway: ${why}`);
    const r = await run(['unshare', '-U', 'true'], DOCKER_CAPS, null);
    expect(r.code, show(r)).toBe(0);
  });

  it("docker's capabilities: `unshare -m true` fails", async () => {
    const r = await run(['unshare', '-m', 'true'], DOCKER_CAPS, DOCKER_CAPS);
    expect(r.code, show(r)).not.toBe(0);
    expect(r.stderr, show(r)).toMatch(/unshare.*Operation not permitted/);
  });

  it('CAP_SYS_ADMIN and its profile: `unshare -m true` succeeds', async () => {
    const r = await run(['unshare', '-m', 'true'], WITH_SYS_ADMIN, WITH_SYS_ADMIN);
    expect(r.code, show(r)).toBe(0);
  });

  it('CAP_SYS_ADMIN granted but the profile rendered without it: `unshare -m true` is refused by seccomp', async () => {
    const r = await run(['unshare', '-m', 'true'], WITH_SYS_ADMIN, DOCKER_CAPS);
    expect(r.code, show(r)).not.toBe(0);
    expect(r.stderr, show(r)).toMatch(/unshare.*Operation not permitted/);
  });
});
