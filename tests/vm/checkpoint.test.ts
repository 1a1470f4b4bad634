// checkpoint / restore with CRIU inside the cgroup v2 VM (`npm run test:vm -- -t checkpoint`):
// Debian's kernel there (6.1) is one Debian 12's criu supports; scripts/vm-run puts criu, GNU
// tar and the kernel modules criu needs in the guest when the host has criu. The cases are the
// host's (tests/integration/helpers/checkpoint.ts), skipped with `criu check`'s reason if it fails.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { describe, it } from 'vitest';
import {
  criuSkipReason,
  directCheckpointSkipReason,
  podmanCheckpointSkipReason,
  registerDirectCases,
  registerPodmanCases,
} from '../integration/helpers/checkpoint.js';

const inVm = process.env.TSRUN_VM === '1';
if (!inVm) console.log('tests/vm: skipped: run them with `npm run test:vm` (they need the VM)');

if (inVm) {
  // The guest's /etc is the initramfs' (thrown away with the VM): podman import needs a policy.
  if (!existsSync('/etc/containers/policy.json')) {
    mkdirSync('/etc/containers', { recursive: true });
    writeFileSync('/etc/containers/policy.json', '{"default":[{"type":"insecureAcceptAnything"}]}\n');
  }
  const criuSkip = criuSkipReason();
  const direct = directCheckpointSkipReason(criuSkip);
  const podman = podmanCheckpointSkipReason(criuSkip);
  if (direct) console.warn(`[vm checkpoint] tsrun-oci checkpoint/restore SKIPPED: ${direct}`);
  if (podman) console.warn(`[vm checkpoint] podman checkpoint/restore SKIPPED: ${podman}`);
  registerDirectCases('vm', direct);
  registerPodmanCases(podman);
} else {
  describe.skip('checkpoint / restore in the VM', () => it('runs in the VM only', () => {}));
}
