// One error type for the whole library (crun/youki style): a stable code to branch on,
// the Node-like system fields when a syscall failed, and a message in crun's grammar
// ("verb `object`: reason"). Only the CLI turns these into exit codes and text.

export type TsrunCode =
  | 'ERR_CONTAINER_EXISTS'
  | 'ERR_CONTAINER_NOT_FOUND'
  | 'ERR_CONTAINER_NOT_RUNNING'
  | 'ERR_INVALID_STATE'
  | 'ERR_INVALID_CONFIG'
  | 'ERR_INVALID_ID'
  | 'ERR_INVALID_ARGUMENT'
  | 'ERR_UNSUPPORTED'
  | 'ERR_CGROUP'
  | 'ERR_SYSCALL'
  | 'ERR_LOCK_TIMEOUT'
  | 'ERR_CHILD_FAILED'
  | 'ERR_EXEC_NOT_FOUND'
  | 'ERR_EXEC_PERMISSION'
  | 'ERR_HOOK_FAILED'
  | 'ERR_NATIVE_MISSING'
  | 'ERR_LAYER_REJECTED'
  | 'ERR_DIGEST_MISMATCH';

export interface TsrunErrorOptions {
  errno?: number;
  syscall?: string;
  path?: string;
  step?: string;
  hint?: string;
  cause?: unknown;
}

export class TsrunError extends Error {
  override readonly name = 'TsrunError';
  readonly code: TsrunCode;
  readonly errno: number | undefined;
  readonly syscall: string | undefined;
  readonly path: string | undefined;
  readonly step: string | undefined;
  /** How to fix it, for people; the CLI prints it on its own line. */
  readonly hint: string | undefined;
  /** Errors met while undoing a failed operation; they never replace the cause. */
  cleanupErrors: Error[] = [];

  constructor(code: TsrunCode, message: string, opts: TsrunErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    this.errno = opts.errno;
    this.syscall = opts.syscall;
    this.path = opts.path;
    this.step = opts.step;
    this.hint = opts.hint;
  }
}

/** Prefix context onto an error, keeping its code and fields (crun_error_wrap). */
export function wrap(err: unknown, context: string): TsrunError {
  if (err instanceof TsrunError) {
    err.message = `${context}: ${err.message}`;
    return err;
  }
  const e = err as NodeJS.ErrnoException;
  const opts: TsrunErrorOptions = { cause: err };
  if (typeof e?.errno === 'number') opts.errno = Math.abs(e.errno);
  if (e?.syscall) opts.syscall = e.syscall;
  if (e?.path) opts.path = e.path;
  return new TsrunError('ERR_SYSCALL', `${context}: ${e?.message ?? String(err)}`, opts);
}

export function invalidConfig(field: string, must: string): TsrunError {
  return new TsrunError('ERR_INVALID_CONFIG', `"${field}" ${must}`);
}

export function isErrno(err: unknown, code: string): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === code;
}
