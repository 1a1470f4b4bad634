// How a failed verb is reported, shared by the full CLI (main.ts) and the hot verbs (hot.ts).
import { TsrunError } from '../../util/errors.js';
import type { CliLogger } from '../../util/log.js';
import { errorMessage, failureExitCode, withHint } from './fatal.js';

/**
 * Exit code + message for a failure, in the shape runc gives (exec failures exit 255). With
 * --log the hint goes into the message itself: conmon and containerd's shim show only the
 * `msg` of the log record. Without it, people get the hint on a line of its own.
 */
export function report(log: CliLogger, err: unknown, command: string, toLogFile: boolean): number {
  const prefix = command === 'exec' ? 'exec failed: ' : command === 'create' || command === 'run' ? `tsrun-oci ${command} failed: ` : '';
  if (err instanceof TsrunError) {
    let msg = prefix + err.message;
    for (const c of err.cleanupErrors) msg += `; cleanup: ${c.message}`;
    if (toLogFile) log.error(withHint(msg, err.hint));
    else log.error(msg, err.hint);
  } else {
    // Not one of ours: one line saying what failed, never a stack (that is for --debug).
    if (err instanceof Error && err.stack) log.debug(err.stack);
    log.error(`${prefix || `tsrun-oci: ${command ? `${command} failed` : 'error'}: `}${errorMessage(err)}`);
  }
  return failureExitCode(command);
}
