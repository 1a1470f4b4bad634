// linux.resources.hugepageLimits → hugetlb.<size>.max and hugetlb.<size>.rsvd.max.
import type { Resources } from '../../spec/types.js';
import { invalidConfig } from '../../util/errors.js';
import { fmtInt, R, requireInt, type ResourceWrite } from './plan.js';

/** Page sizes as the kernel names them in the file names: 64KB, 2MB, 32MB, 1GB, 16GB. */
const PAGE_SIZE = /^[1-9]\d*[KMG]B$/;

/**
 * `.max` limits faulted-in pages. Since Linux 5.7 pages reserved by mmap() count against
 * `.rsvd.max` as well, so a limit on `.max` alone lets a workload reserve past it: runc
 * (>= 1.2) writes the same limit to both and tolerates a kernel without the rsvd file.
 */
export function hugetlbWrites(r: Resources): ResourceWrite[] {
  const out: ResourceWrite[] = [];
  (r.hugepageLimits ?? []).forEach((h, i) => {
    const field = `hugepageLimits[${i}]`;
    if (typeof h.pageSize !== 'string' || !PAGE_SIZE.test(h.pageSize)) {
      throw invalidConfig(`${R}.${field}.pageSize`, `must be a size like "2MB" or "1GB", got ${JSON.stringify(h.pageSize)}`);
    }
    const limit = fmtInt(requireInt(`${field}.limit`, h.limit, 0));
    out.push({ controller: 'hugetlb', file: `hugetlb.${h.pageSize}.max`, value: limit, field });
    out.push({ controller: 'hugetlb', file: `hugetlb.${h.pageSize}.rsvd.max`, value: limit, field, optional: true });
  });
  return out;
}
