// `create` and `run` in runc's forms, parsed by hand for their own bundle (as hot.ts does for
// the light verbs): no commander and none of the other verbs' code to load. Anything this
// parser does not know returns null and goes to the full CLI, which has the messages.
import { resolve } from 'node:path';
import { makeContext } from '../../runtime/context.js';
import { CliLogger } from '../../util/log.js';
import { type ContainerVerbOptions, createVerb, runVerb } from './container-verbs.js';
import { setFatalContext } from './fatal.js';
import { type GlobalArgs, parseGlobals } from './global-args.js';
import { report } from './report.js';

export interface CreateCall extends GlobalArgs, ContainerVerbOptions {
  verb: 'create' | 'run';
  id: string;
  detach: boolean;
  keep: boolean;
}

const VALUE_FLAGS: Record<string, 'bundle' | 'pidFile' | 'consoleSocket' | 'preserveFds'> = {
  '-b': 'bundle',
  '--bundle': 'bundle',
  '--pid-file': 'pidFile',
  '--console-socket': 'consoleSocket',
  '--preserve-fds': 'preserveFds',
};

/** Pure: runc's argv for create/run, or null for anything the full CLI must handle. */
export function parseCreate(argv: readonly string[]): CreateCall | null {
  const g = parseGlobals(argv);
  if (!g) return null;
  let i = g.next;
  const verb = argv[i++];
  if (verb !== 'create' && verb !== 'run') return null;
  const call: CreateCall = { ...g.globals, verb, id: '', bundle: '.', preserveFds: 0, noPivot: false, detach: false, keep: false };
  const positional: string[] = [];
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('-') || a === '-') {
      positional.push(a);
      continue;
    }
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    const name = eq > 0 ? a.slice(0, eq) : a;
    const field = VALUE_FLAGS[name];
    if (field) {
      const value = eq > 0 ? a.slice(eq + 1) : argv[++i];
      if (value === undefined || value === '') return null;
      if (field === 'preserveFds') {
        if (!/^\d+$/.test(value)) return null; // the full CLI says why
        call.preserveFds = Number(value);
      } else call[field] = value;
    } else if (a === '--no-pivot') call.noPivot = true;
    else if (a === '--no-new-keyring') continue;
    else if (verb === 'run' && (a === '-d' || a === '--detach')) call.detach = true;
    else if (verb === 'run' && a === '--keep') call.keep = true;
    else return null;
  }
  if (positional.length !== 1) return null;
  call.id = positional[0]!;
  return call;
}

export async function runCreate(call: CreateCall): Promise<number> {
  const log = new CliLogger({ file: call.log, format: call.logFormat, debug: call.debug });
  setFatalContext({ verb: call.verb, error: (l) => log.error(l), debug: (l) => log.debug(l) });
  const o: ContainerVerbOptions = {
    bundle: call.bundle,
    pidFile: call.pidFile,
    consoleSocket: call.consoleSocket,
    preserveFds: call.preserveFds,
    noPivot: call.noPivot,
  };
  try {
    const ctx = makeContext(resolve(call.root), { systemdCgroup: call.systemdCgroup, log });
    if (call.verb === 'create') return await createVerb(ctx, call.id, o);
    return await runVerb(ctx, log, call.id, { ...o, detach: call.detach, keep: call.keep });
  } catch (e) {
    return report(log, e, call.verb, !!call.log);
  }
}
