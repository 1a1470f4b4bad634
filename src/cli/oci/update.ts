// `update --resources FILE|-` or runc's flags (--memory, --cpu-quota, --pids-limit…): new
// limits for a running container, applied live through the same manager as create (so a
// limit the host cannot apply is refused the same way).
import { readFileSync } from 'node:fs';
import { CgroupManager } from '../../cgroups/manager.js';
import type { RuntimeContext } from '../../runtime/context.js';
import { statusOf } from '../../runtime/lifecycle.js';
import type { Resources } from '../../spec/types.js';
import { TsrunError } from '../../util/errors.js';
import { writeFileAtomic } from '../../util/fs-atomic.js';
import { join } from 'node:path';

/** The limits in force after `update`: each section (memory, cpu…) keeps the fields not given. */
export function mergeResources(old: Resources | undefined, r: Resources): Resources {
  const out: Resources = { ...old };
  for (const [k, v] of Object.entries(r) as Array<[keyof Resources, unknown]>) {
    const prev = out[k];
    const plain = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
    (out as Record<string, unknown>)[k] = plain(prev) && plain(v) ? { ...prev, ...v } : v;
  }
  return out;
}

/**
 * `file` (--resources) wins over `fromFlags` (the other flags), as in runc, where "all other
 * options are ignored" when the resources come from a file or stdin.
 */
export function updateResources(ctx: RuntimeContext, id: string, file: string | undefined, fromFlags?: Resources): void {
  const rec = ctx.store.read(id);
  if (statusOf(ctx, rec) === 'stopped') throw new TsrunError('ERR_CONTAINER_NOT_RUNNING', 'container not running');
  let r: Resources;
  if (file) {
    if (fromFlags) ctx.log.warn(`update: --resources ${file} given, the other limit flags are ignored`);
    try {
      r = JSON.parse(readFileSync(file === '-' ? 0 : file, 'utf8')) as Resources;
    } catch (e) {
      throw new TsrunError('ERR_INVALID_ARGUMENT', `read resources from ${file === '-' ? 'stdin' : file}: ${(e as Error).message}`);
    }
  } else if (fromFlags) {
    r = fromFlags;
  } else {
    return;
  }
  if (!ctx.cgroup || !rec.cgroupPath) throw new TsrunError('ERR_CGROUP', `container ${id} has no cgroup v2 directory to update`);
  for (const w of new CgroupManager(ctx.cgroup).apply(rec.cgroupPath, r).warnings) ctx.log.warn(w);
  // Keep the record in step, so `inspect`-style views show the limits in force.
  rec.config.linux = { ...rec.config.linux, resources: mergeResources(rec.config.linux?.resources, r) };
  writeFileAtomic(join(ctx.store.dir(id), 'state.json'), JSON.stringify(rec));
}
