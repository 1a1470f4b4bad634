// The cgroup v2 resource manager: turns linux.resources into writes (controllers/), makes
// sure every controller they need is available and enabled down the tree, and applies them.
// A limit that cannot be applied is an error naming the controller and the fix; nothing is
// ever applied in part.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Resources } from '../spec/types.js';
import { isErrno, TsrunError, wrap } from '../util/errors.js';
import { planResources, type ResourceWrite } from './controllers/index.js';
import { readStats, type CgroupStats } from './controllers/stats.js';
import { requiredControllers } from './resources.js';
import type { CgroupV2 } from './v2.js';

/** Where processes of an ancestor cgroup go so controllers can be enabled beneath it. */
export const LEAF_NAME = 'tsrun-leaf';

export interface ApplyResult {
  warnings: string[];
  written: ResourceWrite[];
}

function missingControllerError(fields: string[], missing: string[], where: string): TsrunError {
  return new TsrunError(
    'ERR_CGROUP',
    `cannot apply linux.resources (${fields.join(', ')}): cgroup v2 controller(s) ${missing.join(', ')} not available in ${where}`,
    {
      hint:
        'on a hybrid or v1 host the controllers are held by cgroup v1: boot with systemd.unified_cgroup_hierarchy=1 ' +
        '(or cgroup_no_v1=all) to give them to cgroup v2; inside a systemd user slice, ask for them with Delegate=yes; ' +
        'or run without these limits',
    },
  );
}

export class CgroupManager {
  constructor(readonly v2: CgroupV2) {}

  private read(rel: string, file: string): string | undefined {
    try {
      return readFileSync(join(this.v2.path(rel), file), 'utf8').trim();
    } catch {
      return undefined;
    }
  }

  /**
   * Refuse up front (before anything is created) what this host cannot apply. For an
   * existing cgroup (`update`), `rel` lets values that depend on what is in force (a swap
   * limit against the memory limit already set) be checked against it, as apply() does.
   */
  check(resources: Resources | undefined, rel?: string): void {
    const need = requiredControllers(resources);
    if (!need.size) return;
    const have = new Set(this.v2.rootControllers());
    const missing = [...need.keys()].filter((c) => !have.has(c));
    if (missing.length) {
      const fields = [...need.entries()].filter(([c]) => missing.includes(c)).flatMap(([, f]) => f);
      throw missingControllerError(fields, missing, this.v2.mount);
    }
    // Invalid values fail here, before any cgroup exists (or is changed).
    planResources(resources!, rel === undefined ? undefined : { current: (f) => this.read(rel, f) });
  }

  /**
   * Enable `controllers` in cgroup.subtree_control of every ancestor of `rel`. The
   * no-internal-process rule forbids that in a non-root cgroup holding processes (tsrun
   * inside a container or a delegated slice): those move to a leaf first, as crun does.
   */
  enable(rel: string, controllers: Set<string>): void {
    if (!controllers.size) return;
    const parts = rel.split('/');
    for (let i = 0; i < parts.length; i++) {
      const ancestor = parts.slice(0, i).join('/');
      const enabled = new Set(this.v2.readList(ancestor, 'cgroup.subtree_control'));
      const todo = [...controllers].filter((c) => !enabled.has(c));
      if (!todo.length) continue;
      const file = join(this.v2.path(ancestor), 'cgroup.subtree_control');
      const line = todo.map((c) => `+${c}`).join(' ');
      try {
        writeFileSync(file, line);
      } catch (e) {
        if (!isErrno(e, 'EBUSY') || !ancestor) throw wrap(e, `enable ${line} in ${file}`);
        this.moveToLeaf(ancestor);
        try {
          writeFileSync(file, line);
        } catch (e2) {
          throw wrap(e2, `enable ${line} in ${file}`);
        }
      }
    }
  }

  private moveToLeaf(rel: string): void {
    const leaf = `${rel}/${LEAF_NAME}`;
    this.v2.create(leaf);
    const procs = join(this.v2.path(leaf), 'cgroup.procs');
    for (const pid of this.v2.readList(rel, 'cgroup.procs')) {
      try {
        writeFileSync(procs, pid);
      } catch (e) {
        if (!isErrno(e, 'ESRCH')) throw wrap(e, `move process ${pid} to ${leaf}`);
      }
    }
  }

  /** Apply resources to an existing cgroup (create and update). */
  apply(rel: string, resources: Resources | undefined): ApplyResult {
    if (!resources) return { warnings: [], written: [] };
    this.check(resources, rel);
    const plan = planResources(resources, { current: (f) => this.read(rel, f) });
    const have = new Set(this.v2.rootControllers());
    // Writes of kernel defaults ("shares 1024", "pids max") for an absent controller are
    // no-ops (check() refused every real limit whose controller is missing): skip them.
    const writes = plan.writes.filter((w) => have.has(w.controller));
    this.enable(rel, new Set(writes.map((w) => w.controller)));
    for (const w of writes) {
      const file = join(this.v2.path(rel), w.file);
      try {
        writeFileSync(file, w.value);
      } catch (e) {
        if (w.optional && isErrno(e, 'ENOENT')) continue;
        throw wrap(e, `apply ${w.field}: write "${w.value}" to ${file}`);
      }
    }
    return { warnings: plan.warnings, written: writes };
  }

  stats(rel: string): CgroupStats {
    return readStats(this.v2.path(rel));
  }
}
