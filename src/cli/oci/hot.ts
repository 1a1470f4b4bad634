// The verbs clients call around every container: state, start, kill, delete, pause, resume
// (Podman and containerd run a new runtime process for each). They get their own small
// bundle (src/bin/tsrun-oci-hot.ts) with this hand-written parser instead of commander, so a
// call costs little more than Node's own start. The parser accepts exactly runc's forms of
// these verbs; anything else (help, unknown flags, a missing id) returns null and the full
// CLI handles it, with its messages. Same runtime functions, same report() as main.ts.
import { writeSync } from 'node:fs';
import { resolve } from 'node:path';
import { makeContext } from '../../runtime/context.js';
import { deleteContainer, getState, killContainer, pauseContainer, resumeContainer, startContainer } from '../../runtime/lifecycle.js';
import { parseSignal } from '../../runtime/signals.js';
import { CliLogger } from '../../util/log.js';
import { setFatalContext } from './fatal.js';
import { type GlobalArgs, parseGlobals } from './global-args.js';
import { report } from './report.js';

export const HOT_VERBS = ['state', 'start', 'kill', 'delete', 'pause', 'resume'] as const;
export type HotVerb = (typeof HOT_VERBS)[number];

export interface HotCall extends GlobalArgs {
  verb: HotVerb;
  id: string;
  /** delete --force */
  force: boolean;
  /** kill --all */
  all: boolean;
  /** kill's signal argument, as given */
  signal: string;
}

const VERB_BOOL: Record<HotVerb, Record<string, 'force' | 'all'>> = {
  state: {},
  start: {},
  pause: {},
  resume: {},
  delete: { '-f': 'force', '--force': 'force' },
  kill: { '-a': 'all', '--all': 'all' },
};

/** Pure: runc's argv for a hot verb, or null for anything the full CLI must handle. */
export function parseHot(argv: readonly string[]): HotCall | null {
  const g = parseGlobals(argv);
  if (!g) return null;
  let i = g.next;
  const verb = argv[i++] as HotVerb | undefined;
  if (!verb || !(HOT_VERBS as readonly string[]).includes(verb)) return null;
  const call: HotCall = { ...g.globals, verb, id: '', force: false, all: false, signal: 'SIGTERM' };
  const positional: string[] = [];
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith('-') && a !== '-') {
      const flag = VERB_BOOL[verb][a];
      if (!flag) return null;
      call[flag] = true;
    } else positional.push(a);
  }
  const max = verb === 'kill' ? 2 : 1;
  if (positional.length < 1 || positional.length > max) return null;
  call.id = positional[0]!;
  if (positional[1] !== undefined) call.signal = positional[1];
  return call;
}

/** Straight to fd 1 (no stream set-up); a reader that went away is not our failure. */
function writeStdout(text: string): void {
  try {
    writeSync(1, text);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPIPE') throw e;
  }
}

/** Runs a parsed hot verb; the exit status, as main.ts would give it. */
export async function runHot(call: HotCall): Promise<number> {
  const log = new CliLogger({ file: call.log, format: call.logFormat, debug: call.debug });
  setFatalContext({ verb: call.verb, error: (l) => log.error(l), debug: (l) => log.debug(l) });
  try {
    const ctx = makeContext(resolve(call.root), { systemdCgroup: call.systemdCgroup, log });
    switch (call.verb) {
      case 'state':
        writeStdout(`${JSON.stringify(getState(ctx, call.id), null, 2)}\n`);
        break;
      case 'start':
        await startContainer(ctx, call.id);
        break;
      case 'kill':
        killContainer(ctx, call.id, parseSignal(call.signal), call.all);
        break;
      case 'delete':
        await deleteContainer(ctx, call.id, call.force);
        break;
      case 'pause':
        pauseContainer(ctx, call.id);
        break;
      case 'resume':
        resumeContainer(ctx, call.id);
        break;
    }
    return 0;
  } catch (e) {
    return report(log, e, call.verb, !!call.log);
  }
}
