// runc's global flags (before the verb), parsed by hand for the fast entries (hot.ts,
// create-fast.ts); main.ts declares the same flags to commander. Pure.
import { DEFAULT_STATE_ROOT } from '../../runtime/state-store.js';

export interface GlobalArgs {
  root: string;
  log?: string;
  logFormat: 'json' | 'text';
  debug: boolean;
  systemdCgroup: boolean;
}

const VALUE = new Set(['--root', '--log', '--log-format']);
const BOOL = new Set(['--debug', '--systemd-cgroup']);

/** The globals and the index of the verb, or null for anything the full CLI must handle. */
export function parseGlobals(argv: readonly string[]): { globals: GlobalArgs; next: number } | null {
  const g: GlobalArgs = { root: DEFAULT_STATE_ROOT, logFormat: 'text', debug: false, systemdCgroup: false };
  let i = 0;
  for (; i < argv.length && argv[i]!.startsWith('-'); i++) {
    const a = argv[i]!;
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(0, eq) : a;
    if (BOOL.has(a)) {
      if (a === '--debug') g.debug = true;
      else g.systemdCgroup = true;
      continue;
    }
    if (!VALUE.has(name)) return null;
    const value = eq > 0 ? a.slice(eq + 1) : argv[++i];
    if (value === undefined || value === '') return null;
    if (name === '--root') g.root = value;
    else if (name === '--log') g.log = value;
    else if (value === 'json' || value === 'text') g.logFormat = value;
    else return null;
  }
  return { globals: g, next: i };
}
