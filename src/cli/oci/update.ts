// `update --resources FILE|-`: limits for a live container. Until the cgroup v2 resource
// manager lands, this refuses clearly rather than pretending.
import { readFileSync } from 'node:fs';
import { requiredControllers } from '../../cgroups/resources.js';
import type { RuntimeContext } from '../../runtime/context.js';
import { statusOf } from '../../runtime/lifecycle.js';
import type { Resources } from '../../spec/types.js';
import { TsrunError } from '../../util/errors.js';

export function updateResources(ctx: RuntimeContext, id: string, file: string | undefined): void {
  const rec = ctx.store.read(id);
  if (statusOf(ctx, rec) === 'stopped') throw new TsrunError('ERR_CONTAINER_NOT_RUNNING', 'container not running');
  if (!file) return;
  let r: Resources;
  try {
    r = JSON.parse(readFileSync(file === '-' ? 0 : file, 'utf8')) as Resources;
  } catch (e) {
    throw new TsrunError('ERR_INVALID_ARGUMENT', `read resources from ${file === '-' ? 'stdin' : file}: ${(e as Error).message}`);
  }
  const need = requiredControllers(r);
  if (!need.size) return;
  const have = new Set(ctx.cgroup?.rootControllers() ?? []);
  const missing = [...need.keys()].filter((c) => !have.has(c));
  if (missing.length) {
    throw new TsrunError('ERR_CGROUP', `cannot update ${[...need.values()].flat().join(', ')}: cgroup v2 controller(s) ${missing.join(', ')} not available`, {
      hint: 'boot with systemd.unified_cgroup_hierarchy=1 to move the controllers to cgroup v2',
    });
  }
  throw new TsrunError('ERR_UNSUPPORTED', 'updating resource limits is not implemented yet');
}
