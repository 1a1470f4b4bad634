// linux.resources.pids.limit → pids.max.
import type { Resources } from '../../spec/types.js';
import { fmtInt, requireInt, type ResourceWrite } from './plan.js';

/**
 * A positive limit is written as is; 0 and -1 both mean "no limit" and write "max" (-1 is
 * cgroup v1's "unlimited", 0 is Docker's; a pids.max of 0 is never what anyone means).
 * Unlike memory, where 0 is "not given", a pids block is only present when someone set it.
 */
export function pidsWrites(r: Resources): ResourceWrite[] {
  if (!r.pids || r.pids.limit === undefined) return [];
  const limit = requireInt('pids.limit', r.pids.limit, -1);
  return [{ controller: 'pids', file: 'pids.max', value: limit > 0 ? fmtInt(limit) : 'max', field: 'pids.limit' }];
}
