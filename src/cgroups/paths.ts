// cgroupsPath → a path relative to the cgroup v2 mount (pure).
import { posix } from 'node:path';
import { TsrunError } from '../util/errors.js';

export const DEFAULT_PARENT = 'tsrun';

/**
 * Absolute paths are taken from the hierarchy root; relative ones sit under tsrun's default
 * parent; none at all means `<parent>/<id>`. With --systemd-cgroup, `slice:prefix:name`
 * maps to the path systemd would create (`a-b.slice` nests under `a.slice`).
 */
export function resolveCgroupPath(cgroupsPath: string | undefined, id: string, systemd = false): string {
  if (systemd && cgroupsPath) return systemdPath(cgroupsPath);
  const raw = cgroupsPath ?? id;
  const joined = raw.startsWith('/') ? raw : `${DEFAULT_PARENT}/${raw}`;
  const norm = posix.normalize(joined).replace(/^\/+/, '').replace(/\/+$/, '');
  // Judge the raw components: normalising first would hide "pods/../../x" leaving tsrun/.
  if (!norm || norm === '.' || raw.split('/').includes('..')) {
    throw new TsrunError('ERR_INVALID_CONFIG', `"linux.cgroupsPath" ${JSON.stringify(raw)} escapes the cgroup hierarchy`);
  }
  return norm;
}

function systemdPath(spec: string): string {
  const parts = spec.split(':');
  if (parts.length !== 3) {
    throw new TsrunError('ERR_INVALID_CONFIG', `"linux.cgroupsPath" ${JSON.stringify(spec)} must be "slice:prefix:name" with --systemd-cgroup`);
  }
  const [slice, prefix, name] = parts as [string, string, string];
  const s = slice || 'system.slice';
  if (!s.endsWith('.slice') || s.includes('/')) throw new TsrunError('ERR_INVALID_CONFIG', `invalid systemd slice "${s}"`);
  // "a-b-c.slice" lives at a.slice/a-b.slice/a-b-c.slice
  const stem = s.slice(0, -'.slice'.length);
  const chain: string[] = [];
  if (stem !== '-') {
    const bits = stem.split('-');
    for (let i = 1; i <= bits.length; i++) chain.push(`${bits.slice(0, i).join('-')}.slice`);
  }
  const unit = name.endsWith('.slice') ? name : `${prefix ? `${prefix}-` : ''}${name}.scope`;
  return [...chain, unit].join('/');
}
