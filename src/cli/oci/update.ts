// `update --resources FILE|-`: new limits for a running container, applied live through the
// same manager as create (so a limit the host cannot apply is refused the same way).
import { readFileSync } from 'node:fs';
import { CgroupManager } from '../../cgroups/manager.js';
import type { RuntimeContext } from '../../runtime/context.js';
import { statusOf } from '../../runtime/lifecycle.js';
import type { Resources } from '../../spec/types.js';
import { TsrunError } from '../../util/errors.js';
import { writeFileAtomic } from '../../util/fs-atomic.js';
import { join } from 'node:path';

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
  if (!ctx.cgroup || !rec.cgroupPath) throw new TsrunError('ERR_CGROUP', `container ${id} has no cgroup v2 directory to update`);
  for (const w of new CgroupManager(ctx.cgroup).apply(rec.cgroupPath, r).warnings) ctx.log.warn(w);
  // Keep the record in step, so `inspect`-style views show the limits in force.
  rec.config.linux = { ...rec.config.linux, resources: { ...rec.config.linux?.resources, ...r } };
  writeFileAtomic(join(ctx.store.dir(id), 'state.json'), JSON.stringify(rec));
}
