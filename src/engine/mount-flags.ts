// -v, --mount, --tmpfs and --device as docker parses them, into what the engine mounts.
// Pure: the caller creates volumes and checks host paths.
import { isAbsolute, posix } from 'node:path';
import { TsrunError } from '../util/errors.js';

export type MountRequest =
  | { type: 'bind'; source: string; destination: string; readOnly: boolean }
  | { type: 'volume'; name?: string; destination: string; readOnly: boolean; noCopy: boolean }
  | { type: 'tmpfs'; destination: string; options: string[] };

export interface DeviceRequest {
  host: string;
  container: string;
  permissions: string;
}

function invalid(flag: string, v: string, why: string): TsrunError {
  return new TsrunError('ERR_INVALID_ARGUMENT', `${flag} ${v}: ${why}`);
}

function destination(flag: string, v: string, d: string | undefined): string {
  if (!d) throw invalid(flag, v, 'no destination in the container');
  if (!d.startsWith('/')) throw invalid(flag, v, `the destination "${d}" must be an absolute path`);
  const n = posix.normalize(d);
  if (n === '/') throw invalid(flag, v, 'cannot mount over the container’s root');
  return n.replace(/\/+$/, '');
}

const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

/** -v [SOURCE:]DEST[:OPTIONS]: SOURCE absolute = bind, a name = named volume, none = anonymous. */
export function parseVolumeFlag(v: string): MountRequest {
  const parts = v.split(':');
  if (parts.length > 3 || parts.some((p) => p === '')) throw invalid('-v', v, 'expected [SOURCE:]DESTINATION[:ro|rw]');
  let src: string | undefined;
  let dst: string;
  let opts = '';
  if (parts.length === 1) dst = parts[0]!;
  else if (parts.length === 2 && parts[1]!.startsWith('/')) [src, dst] = parts as [string, string];
  else if (parts.length === 2) [dst, opts] = parts as [string, string];
  else [src, dst, opts] = parts as [string, string, string];
  let readOnly = false;
  let noCopy = false;
  for (const o of opts ? opts.split(',') : []) {
    if (o === 'ro') readOnly = true;
    else if (o === 'rw') readOnly = false;
    else if (o === 'nocopy') noCopy = true;
    else if (o === 'z' || o === 'Z')
      continue; // SELinux relabel: nothing to do without SELinux
    else throw invalid('-v', v, `unknown option "${o}" (ro, rw, nocopy)`);
  }
  const destinationPath = destination('-v', v, dst);
  if (src === undefined) return { type: 'volume', destination: destinationPath, readOnly, noCopy };
  if (isAbsolute(src)) return { type: 'bind', source: posix.normalize(src), destination: destinationPath, readOnly };
  if (!VOLUME_NAME.test(src)) throw invalid('-v', v, `"${src}" is neither an absolute host path nor a volume name`);
  return { type: 'volume', name: src, destination: destinationPath, readOnly, noCopy };
}

/** --mount type=bind|volume|tmpfs,source=..,target=..,readonly,tmpfs-size=..,tmpfs-mode=.. */
export function parseMountFlag(v: string): MountRequest {
  const kv = new Map<string, string>();
  for (const field of v.split(',')) {
    const i = field.indexOf('=');
    const k = (i < 0 ? field : field.slice(0, i)).trim();
    const val = i < 0 ? 'true' : field.slice(i + 1);
    if (!k) throw invalid('--mount', v, 'empty field');
    kv.set(k === 'src' ? 'source' : k === 'dst' || k === 'destination' ? 'target' : k === 'ro' ? 'readonly' : k, val);
  }
  const type = kv.get('type') ?? 'volume';
  const dst = destination('--mount', v, kv.get('target'));
  const ro = kv.get('readonly');
  const readOnly = ro === 'true' || ro === '1';
  const known = new Set(['type', 'source', 'target', 'readonly', 'volume-nocopy', 'tmpfs-size', 'tmpfs-mode', 'bind-propagation']);
  for (const k of kv.keys()) if (!known.has(k)) throw invalid('--mount', v, `unknown field "${k}"`);
  if (type === 'bind') {
    const src = kv.get('source');
    if (!src || !isAbsolute(src)) throw invalid('--mount', v, 'a bind mount needs an absolute source=');
    return { type: 'bind', source: posix.normalize(src), destination: dst, readOnly };
  }
  if (type === 'volume') {
    const name = kv.get('source');
    if (name !== undefined && !VOLUME_NAME.test(name)) throw invalid('--mount', v, `invalid volume name "${name}"`);
    return { type: 'volume', ...(name ? { name } : {}), destination: dst, readOnly, noCopy: kv.get('volume-nocopy') === 'true' };
  }
  if (type === 'tmpfs') {
    if (kv.has('source')) throw invalid('--mount', v, 'a tmpfs has no source');
    const options = ['nosuid', 'nodev'];
    const size = kv.get('tmpfs-size');
    if (size !== undefined) options.push(`size=${parseBytes('--mount tmpfs-size', size)}`);
    const mode = kv.get('tmpfs-mode');
    if (mode !== undefined) {
      if (!/^[0-7]{1,4}$/.test(mode)) throw invalid('--mount', v, 'tmpfs-mode must be octal');
      options.push(`mode=${mode}`);
    }
    if (readOnly) options.push('ro');
    return { type: 'tmpfs', destination: dst, options };
  }
  throw invalid('--mount', v, `unknown type "${type}" (bind, volume, tmpfs)`);
}

/** --tmpfs DEST[:OPTIONS] (mount(8) options, docker's defaults noexec,nosuid,nodev). */
export function parseTmpfsFlag(v: string): MountRequest {
  const i = v.indexOf(':');
  const dst = destination('--tmpfs', v, i < 0 ? v : v.slice(0, i));
  const extra =
    i < 0
      ? []
      : v
          .slice(i + 1)
          .split(',')
          .filter(Boolean);
  for (const o of extra) if (!/^[a-z_]+(=[\w.%]+)?$/.test(o)) throw invalid('--tmpfs', v, `bad option "${o}"`);
  return { type: 'tmpfs', destination: dst, options: ['noexec', 'nosuid', 'nodev', ...extra] };
}

/** --device HOST[:CONTAINER][:PERMISSIONS] */
export function parseDeviceFlag(v: string): DeviceRequest {
  const parts = v.split(':');
  if (parts.length > 3 || !parts[0]) throw invalid('--device', v, 'expected HOST[:CONTAINER][:rwm]');
  const host = parts[0];
  let container = host;
  let permissions = 'rwm';
  if (parts.length === 2) {
    if (/^[rwm]+$/.test(parts[1]!)) permissions = parts[1]!;
    else container = parts[1]!;
  } else if (parts.length === 3) {
    container = parts[1]!;
    permissions = parts[2]!;
  }
  if (!host.startsWith('/') || !container.startsWith('/')) throw invalid('--device', v, 'device paths must be absolute');
  if (!/^[rwm]+$/.test(permissions)) throw invalid('--device', v, 'permissions are a combination of r, w, m');
  return { host: posix.normalize(host), container: posix.normalize(container), permissions };
}

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** docker's RAMInBytes: 64m, 1g, 512k, 100 (bytes). */
export function parseBytes(flag: string, v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([bkmgt]?)b?$/i.exec(v.trim());
  if (!m) throw new TsrunError('ERR_INVALID_ARGUMENT', `${flag} ${v}: expected a size like 64m, 1g, 512k`);
  return Math.round(Number(m[1]) * UNITS[m[2]!.toLowerCase()]!);
}
