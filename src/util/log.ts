// Runtime logging for the CLIs. runc's contract: with `--log FILE --log-format json`,
// append one JSON object per line {"level","msg","time"(RFC 3339, seconds)}; errors go to
// that file AND to stderr as plain text; nothing is written on success without --debug.
// pino (the JSON writer) is loaded only when a line is actually logged.
import { appendFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { RuntimeLogger } from '../runtime/context.js';

export interface LogOptions {
  file?: string | undefined;
  format: 'json' | 'text';
  debug: boolean;
  /** Where plain-text messages for people go (stderr); tests inject their own. */
  stderr?: (line: string) => void;
}

type Level = 'debug' | 'info' | 'warn' | 'error';

function rfc3339Seconds(d = new Date()): string {
  return d.toISOString().replace(/\.\d+Z$/, 'Z');
}

interface MinimalPino {
  [level: string]: (msg: string) => void;
}

export class CliLogger implements RuntimeLogger {
  private json: MinimalPino | undefined;

  constructor(private readonly o: LogOptions) {}

  private jsonLogger(): MinimalPino {
    if (!this.json) {
      const require = createRequire(import.meta.url);
      const pino = require('pino') as { default: (o: object, dest: unknown) => unknown; destination: (o: object) => unknown };
      this.json = pino.default(
        {
          base: undefined,
          level: 'debug',
          messageKey: 'msg',
          timestamp: () => `,"time":"${rfc3339Seconds()}"`,
          formatters: { level: (label: string) => ({ level: label }) },
        },
        pino.destination({ dest: this.o.file!, sync: true, append: true, mkdir: false }),
      ) as unknown as MinimalPino;
    }
    return this.json;
  }

  private toFile(level: Level, msg: string): void {
    if (!this.o.file) return;
    try {
      if (this.o.format === 'json') this.jsonLogger()[level]!(msg);
      else appendFileSync(this.o.file, `time="${rfc3339Seconds()}" level=${level} msg=${JSON.stringify(msg)}\n`);
    } catch {
      /* a log file we cannot write must not turn success into failure */
    }
  }

  private toStderr(line: string): void {
    try {
      (this.o.stderr ?? ((l: string) => process.stderr.write(`${l}\n`)))(line);
    } catch {
      /* EPIPE: podman closes stderr of `state` at once */
    }
  }

  error(msg: string, hint?: string): void {
    this.toFile('error', msg);
    this.toStderr(msg);
    if (hint && !this.o.file) this.toStderr(`hint: ${hint}`);
  }

  warn(msg: string): void {
    this.toFile('warn', msg);
    if (!this.o.file) this.toStderr(`warning: ${msg}`);
  }

  debug(msg: string): void {
    if (!this.o.debug) return;
    this.toFile('debug', msg);
    if (!this.o.file) this.toStderr(`debug: ${msg}`);
  }
}
