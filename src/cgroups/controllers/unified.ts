// linux.resources.unified: cgroup v2 interface files by name, written after everything
// else so that they win over a mapped field that sets the same file (runc's order).
import type { Resources } from '../../spec/types.js';
import { invalidConfig } from '../../util/errors.js';
import { R, type ResourceWrite } from './plan.js';

/** CONTROLLER.PARAMETER, e.g. memory.high, io.bfq.weight, hugetlb.2MB.rsvd.max (hence A-Z after the dot). */
const KEY = /^[a-z][a-z0-9_]*\.[A-Za-z0-9_.]+$/;

/** Throws unless `key` names an interface file of a controller, inside the cgroup directory. */
export function validateUnifiedKey(key: string): void {
  const field = `${R}.unified["${key}"]`;
  if (key.includes('/')) throw invalidConfig(field, 'must be a file name (no slashes)');
  if (key.includes('..') || key.endsWith('.')) throw invalidConfig(field, 'must be an interface file name like "memory.high"');
  if (key.startsWith('cgroup.')) {
    // cgroup.procs/threads/subtree_control/freeze/kill/type… are how the runtime itself
    // drives the cgroup; a config that writes them would move, freeze or kill behind its back.
    throw invalidConfig(field, 'names a cgroup core file (cgroup.*), which the runtime manages itself and a configuration may not set');
  }
  if (!KEY.test(key)) throw invalidConfig(field, 'must be an interface file name of the form CONTROLLER.PARAMETER, like "memory.high"');
}

/**
 * One write per line of the value, as runc's WriteFileByLine: a keyed file such as io.max
 * takes one device per write, and `unified` has one key per file, so several devices
 * need several lines. A trailing newline is dropped; empty lines are skipped.
 */
export function unifiedWrites(r: Resources): ResourceWrite[] {
  const out: ResourceWrite[] = [];
  for (const [key, value] of Object.entries(r.unified ?? {})) {
    validateUnifiedKey(key);
    const field = `unified["${key}"]`;
    if (typeof value !== 'string') throw invalidConfig(`${R}.${field}`, 'must be a string');
    if (/[\0\r]/.test(value)) throw invalidConfig(`${R}.${field}`, 'must not contain NUL or carriage-return characters');
    const lines = value
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '');
    // An empty write is not "nothing": memory.swap.max takes it as 0.
    if (!lines.length) throw invalidConfig(`${R}.${field}`, 'must not be empty');
    const controller = key.slice(0, key.indexOf('.'));
    for (const line of lines) out.push({ controller, file: key, value: line, field });
  }
  return out;
}
