// How tsrun-oci's errors reach people and clients: the message with its hint for --log
// (conmon and containerd's shim read only the msg of the last log record), one line for an
// error nobody expected, and the process-wide last resort (uncaught exceptions, unhandled
// rejections, 'error' events on stdio) so no Node stack trace ever reaches a user.
import { writeSync } from 'node:fs';

/** The message a log record carries: the hint goes into it, as clients show only `msg`. */
export function withHint(msg: string, hint: string | undefined): string {
  return hint ? `${msg} (hint: ${hint})` : msg;
}

/** The message of anything thrown, on one line, without a stack. */
export function errorMessage(err: unknown): string {
  let msg: string;
  if (err instanceof Error) msg = err.message || err.name;
  else if (typeof err === 'string') msg = err;
  else if (err === undefined || err === null) msg = '';
  else {
    try {
      msg = JSON.stringify(err) ?? String(err);
    } catch {
      msg = String(err);
    }
  }
  return msg.replace(/\s*\n\s*/g, ' ').trim() || 'unknown error';
}

/** `tsrun-oci: <what failed>: <message>`, the line for an error the code did not expect. */
export function unexpectedErrorLine(verb: string, err: unknown): string {
  return `tsrun-oci: ${verb ? `${verb} failed` : 'internal error'}: ${errorMessage(err)}`;
}

/** runc's exit status for a failed verb: exec failures exit 255, everything else 1. */
export function failureExitCode(verb: string): number {
  return verb === 'exec' ? 255 : 1;
}

interface FatalContext {
  /** The verb being run ('' before one is known). */
  verb: string;
  /** Writes an error line where errors go (--log and stderr); stderr alone when unset. */
  error?: (line: string) => void;
  /** Extra detail for --debug (the stack). */
  debug?: (line: string) => void;
}

const context: FatalContext = { verb: '' };

export function setFatalContext(c: Partial<FatalContext>): void {
  Object.assign(context, c);
}

let dying = false;

/** Report an error that escaped every handler, in one line, and exit with the verb's code. */
export function die(err: unknown): never {
  const code = failureExitCode(context.verb);
  if (!dying) {
    dying = true;
    const line = unexpectedErrorLine(context.verb, err);
    try {
      if (err instanceof Error && err.stack) context.debug?.(err.stack);
    } catch {
      /* best effort */
    }
    try {
      if (context.error) context.error(line);
      else writeSync(2, `${line}\n`);
    } catch {
      /* stderr closed: the exit status still says it failed */
    }
  }
  process.exit(code);
}

/** Verbs that wait for a container process: losing their stdout must not orphan it. */
const FOREGROUND = new Set(['run', 'exec']);

/**
 * The last resort. An EPIPE on stdout or stderr means the reader is gone (`… | head`,
 * Podman closing the stderr of `state`): not an error of ours. On stdout it ends the verb
 * quietly (runc dies of SIGPIPE there; `events` would otherwise print into the void forever),
 * except a foreground run/exec, which keeps waiting for its process.
 */
export function installFatalHandlers(): void {
  process.on('uncaughtException', (e) => die(e));
  process.on('unhandledRejection', (e) => die(e));
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') die(e);
    if (!FOREGROUND.has(context.verb)) process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
  });
  process.stderr.on('error', () => {
    /* nowhere left to say it */
  });
}
