// Sysctls, the hostname and the domain name are written in the namespaces the container
// actually ends up in. A namespace joined by path may be the runtime's own (the host's, for a
// root runtime): a write there changes the host, so it is refused, as runc does for sysctls.
// Needs the filesystem (namespace inodes), so it lives here and not in the pure validator.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import type { NamespaceType, Spec } from '../spec/types.js';
import { sysctlNamespace } from '../spec/validate.js';
import { TsrunError } from '../util/errors.js';
import { NS_FILE } from './ns-files.js';

function sameInode(a: string, b: string): boolean {
  try {
    const x = statSync(a);
    const y = statSync(b);
    return x.dev === y.dev && x.ino === y.ino;
  } catch {
    return false; // an unreadable path fails later, when it is opened to be joined
  }
}

/** The namespace of `type` joined by a path that is the runtime's own, if any. */
function ownJoined(spec: Spec, type: NamespaceType, procSelf: string): string | undefined {
  const ns = (spec.linux?.namespaces ?? []).find((n) => n.type === type);
  return ns?.path && sameInode(ns.path, join(procSelf, 'ns', NS_FILE[type])) ? ns.path : undefined;
}

/** Throws when a sysctl, the hostname or the domain name would be written into the runtime's own namespace. */
export function checkHostNamespaceWrites(spec: Spec, procSelf = '/proc/self'): void {
  for (const key of Object.keys(spec.linux?.sysctl ?? {})) {
    const type = sysctlNamespace(key);
    const path = type && ownJoined(spec, type, procSelf);
    if (type && path) {
      throw new TsrunError('ERR_INVALID_CONFIG', `sysctl "${key}" not allowed in host ${type} namespace`, {
        path,
        hint: `give the container its own ${type} namespace, or set this sysctl on the host yourself`,
      });
    }
  }
  for (const f of ['hostname', 'domainname'] as const) {
    const path = spec[f] !== undefined ? ownJoined(spec, 'uts', procSelf) : undefined;
    if (path) {
      throw new TsrunError('ERR_INVALID_CONFIG', `"${f}" not allowed in the host uts namespace (${path}): it would rename the host`, {
        path,
        hint: `give the container its own uts namespace, or remove "${f}"`,
      });
    }
  }
}
