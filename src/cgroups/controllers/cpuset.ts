// linux.resources.cpu.cpus/mems → cpuset.cpus, cpuset.mems (runc's fs2 setCpuset).
import type { Resources } from '../../spec/types.js';
import { invalidConfig } from '../../util/errors.js';
import { R, type ResourceWrite } from './plan.js';

/**
 * The kernel's list syntax (bitmap_parselist): comma-separated CPUs or ranges, `0-3,5`,
 * a range optionally strided as `0-15:2/4` (use 2 of every 4). Ranges must not run backwards.
 */
export function isCpuList(list: string): boolean {
  if (list === '') return false;
  for (const part of list.split(',')) {
    const m = /^(\d+)(?:-(\d+)(?::(\d+)\/(\d+))?)?$/.exec(part);
    if (!m) return false;
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo) return false;
    if (m[3] !== undefined) {
      const used = Number(m[3]);
      const group = Number(m[4]);
      if (used === 0 || group === 0 || used > group) return false;
    }
  }
  return true;
}

export function cpusetWrites(r: Resources): ResourceWrite[] {
  const c = r.cpu;
  if (!c) return [];
  const out: ResourceWrite[] = [];
  for (const [key, file] of [
    ['cpus', 'cpuset.cpus'],
    ['mems', 'cpuset.mems'],
  ] as const) {
    const v = c[key];
    if (v === undefined || v === '') continue;
    if (typeof v !== 'string' || !isCpuList(v.trim())) {
      throw invalidConfig(`${R}.cpu.${key}`, `must be a list like "0-3,5", got ${JSON.stringify(v)}`);
    }
    out.push({ controller: 'cpuset', file, value: v.trim(), field: `cpu.${key}` });
  }
  return out;
}
