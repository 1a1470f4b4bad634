// One way to tell people what failed: the message, the hint on its own line, what undoing it
// met; a stack only with TSRUN_DEBUG. The exit code is the error's own (run: 125/126/127) or 1.
import { TsrunError } from '../../util/errors.js';

export function reportError(err: unknown): number {
  const code = (err as { exitCode?: number })?.exitCode ?? 1;
  if (err instanceof TsrunError) {
    process.stderr.write(`tsrun: ${err.message}\n`);
    if (err.hint) process.stderr.write(`hint: ${err.hint}\n`);
    for (const c of err.cleanupErrors) process.stderr.write(`tsrun: while undoing: ${c.message}\n`);
  } else {
    process.stderr.write(`tsrun: ${String((err as Error)?.message ?? err)}\n`);
  }
  if (process.env.TSRUN_DEBUG) process.stderr.write(`${(err as Error)?.stack}\n`);
  return code;
}
