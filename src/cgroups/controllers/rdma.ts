// linux.resources.rdma → rdma.max, one line per device (runc's fscommon RdmaSet).
import type { Resources } from '../../spec/types.js';
import { invalidConfig } from '../../util/errors.js';
import { R, requireInt, type ResourceWrite } from './plan.js';

export function rdmaWrites(r: Resources): ResourceWrite[] {
  const out: ResourceWrite[] = [];
  // Sorted, so the plan does not depend on the JSON's key order.
  for (const dev of Object.keys(r.rdma ?? {}).sort()) {
    const lim = r.rdma![dev]!;
    const field = `rdma["${dev}"]`;
    if (!/^[^\s=]+$/.test(dev)) throw invalidConfig(`${R}.${field}`, 'must be named by an RDMA device name (no spaces, newlines or "=")');
    let line = dev;
    if (lim.hcaHandles !== undefined) line += ` hca_handle=${requireInt(`${field}.hcaHandles`, lim.hcaHandles, 0, 0xffffffff)}`;
    if (lim.hcaObjects !== undefined) line += ` hca_object=${requireInt(`${field}.hcaObjects`, lim.hcaObjects, 0, 0xffffffff)}`;
    if (line !== dev) out.push({ controller: 'rdma', file: 'rdma.max', value: line, field });
  }
  return out;
}
