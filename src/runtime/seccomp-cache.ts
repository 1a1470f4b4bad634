// Compiled seccomp filters, cached under the runtime's state root (a tmpfs): libseccomp's
// compile of a docker-sized profile costs ~25 ms per container, the same profile every time
// (crun keeps such a cache too). A file holds the profile text it was made from and is used
// only when that text is identical, so a hash collision can never apply the wrong filter; the
// libseccomp version and the machine are part of the text.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type CompiledSeccomp, compileSeccomp, seccompConstants } from '../linux/seccomp.js';
import type { Seccomp } from '../spec/types.js';
import type { RuntimeContext } from './context.js';
import { writeFileAtomic } from '../util/fs-atomic.js';

/** Two 32-bit FNV-1a lanes: a file name, not a proof of identity (the stored text is). */
function fnv1a(s: string): string {
  let a = 0x811c9dc5;
  let b = 0x050c5d1f;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193) ^ (b >>> 15);
  }
  return (a >>> 0).toString(16).padStart(8, '0') + (b >>> 0).toString(16).padStart(8, '0');
}

interface Entry {
  key: string;
  flags: number;
  skipped: string[];
  bpf: string;
}

export function compileSeccompCached(profile: Seccomp, cacheDir: string | undefined): CompiledSeccomp {
  if (!cacheDir) return compileSeccomp(profile);
  const key = JSON.stringify([seccompConstants().version, process.arch, profile]);
  const file = join(cacheDir, `${fnv1a(key)}.json`);
  try {
    const e = JSON.parse(readFileSync(file, 'utf8')) as Entry;
    if (e.key === key) return { flags: e.flags, skipped: e.skipped, bpf: Buffer.from(e.bpf, 'base64') };
  } catch {
    /* not cached yet */
  }
  const c = compileSeccomp(profile);
  try {
    mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
    writeFileAtomic(file, JSON.stringify({ key, flags: c.flags, skipped: c.skipped, bpf: c.bpf.toString('base64') } satisfies Entry), 0o600);
  } catch {
    /* a cache only */
  }
  return c;
}

/** Beside the containers' state ("." is not a valid container id, so no container is named so). */
export function seccompCacheDir(ctx: RuntimeContext): string {
  return join(ctx.store.root, '.seccomp-cache');
}
