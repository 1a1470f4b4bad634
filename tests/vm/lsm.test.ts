// AppArmor labels applied for real: Debian's kernel in the VM enforces AppArmor (the host
// here has no LSM, where tests/integration/security-config.test.ts proves the refusal).
// Without apparmor_parser in the VM no profile can be loaded, so the kernel itself is the
// witness: the transition to "unconfined" is accepted and shows in attr/current, and a
// profile that does not exist makes create fail instead of running unconfined.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BaseBundle, buildBaseBundle, cleanupAll, makeBundle, oci, show } from '../integration/helpers/bundle.js';

const inVm = process.env.TSRUN_VM === '1';
const apparmor = existsSync('/sys/module/apparmor/parameters/enabled') && readFileSync('/sys/module/apparmor/parameters/enabled', 'utf8').trim() === 'Y';
if (!inVm) console.log('tests/vm: skipped: run them with `npm run test:vm` (they need the VM)');

describe.skipIf(!inVm || !apparmor)('AppArmor labels (process.apparmorProfile)', () => {
  let base: BaseBundle;
  let root: string;
  const ids: string[] = [];

  beforeAll(() => {
    base = buildBaseBundle('tsrun-vm-lsm');
    root = mkdtempSync(join(tmpdir(), 'tsrun-vm-lsm-'));
  });
  afterAll(async () => {
    const left = await cleanupAll(root, ids, base.tmp);
    rmSync(root, { recursive: true, force: true });
    rmSync(base.tmp, { recursive: true, force: true });
    expect(left).toEqual([]);
  });

  it('a profile the kernel knows is applied at exec: attr/current shows it', async () => {
    const b = makeBundle(base, (s) => {
      s.process.apparmorProfile = 'unconfined';
      s.process.args = ['/bin/cat', '/proc/self/attr/current'];
    });
    ids.push('vm-aa-ok');
    const r = await oci(root, ['run', '--bundle', b, 'vm-aa-ok']);
    expect(r.code, show(r)).toBe(0);
    expect(r.stdout.trim()).toBe('unconfined');
  });

  it('a profile that is not loaded fails create, never runs unconfined', async () => {
    const b = makeBundle(base, (s) => {
      s.process.apparmorProfile = 'tsrun-no-such-profile';
      s.process.args = ['/bin/echo', 'RAN'];
    });
    ids.push('vm-aa-missing');
    const r = await oci(root, ['run', '--bundle', b, 'vm-aa-missing']);
    expect(r.code, show(r)).toBe(1);
    expect(r.stdout).not.toContain('RAN');
    expect(r.stderr).toMatch(/lsm-exec.*tsrun-no-such-profile/);
  });
});
