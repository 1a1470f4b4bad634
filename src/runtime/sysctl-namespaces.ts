// Sysctls are written in the namespaces the container actually ends up in. A namespace
// joined by path may be the runtime's own (the host's, for a root runtime): a sysctl
// written there changes the host, so it is refused, as runc does. Needs the filesystem
// (namespace inodes), so it lives here and not in the pure validator.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import type { Spec } from '../spec/types.js';
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

/** Throws when a sysctl would be written into the runtime's own namespace. */
export function checkSysctlNamespaces(spec: Spec, procSelf = '/proc/self'): void {
  const namespaces = spec.linux?.namespaces ?? [];
  for (const key of Object.keys(spec.linux?.sysctl ?? {})) {
    const type = sysctlNamespace(key);
    const ns = type && namespaces.find((n) => n.type === type);
    if (!type || !ns?.path) continue;
    if (sameInode(ns.path, join(procSelf, 'ns', NS_FILE[type]))) {
      const what = type === 'network' ? 'network' : type;
      throw new TsrunError('ERR_INVALID_CONFIG', `sysctl "${key}" not allowed in host ${what} namespace`, {
        path: ns.path,
        hint: `give the container its own ${what} namespace, or set this sysctl on the host yourself`,
      });
    }
  }
}
