// OCI lifecycle hooks (runtime-spec config.md#posix-platform-hooks).
//
// Where each phase runs (the caller's job; this module only runs a list):
//   prestart        deprecated alias of createRuntime; runs first, in the runtime
//                   namespace, after the container's namespaces are made
//   createRuntime   runtime namespace, after namespaces are made (the create op)
//   createContainer container namespaces, after mounts, before pivot_root
//   startContainer  in the container, just before exec of the user process (start)
//   poststart       runtime namespace, after the user process has started
//   poststop        runtime namespace, after the container is deleted
// Failures of prestart/createRuntime/createContainer/startContainer abort the
// operation; failures of poststart and poststop are only warnings.

import type { ChildProcess } from 'node:child_process';
import { lazyRequire } from '../util/lazy-require.js';
import { getSystemErrorMap } from 'node:util';
import type { Hook, HookName, OciState } from '../spec/types.js';
import { TsrunError, invalidConfig, type TsrunErrorOptions } from '../util/errors.js';

/** The phases in the order they run, with where each runs (see the comment above). */
export const hookOrder: ReadonlyArray<{ kind: HookName; where: string }> = Object.freeze([
  { kind: 'prestart', where: 'runtime namespace, after namespaces are created (deprecated)' },
  { kind: 'createRuntime', where: 'runtime namespace, after namespaces are created' },
  { kind: 'createContainer', where: 'container namespaces, before pivot_root' },
  { kind: 'startContainer', where: 'container, before exec of the user process' },
  { kind: 'poststart', where: 'runtime namespace, after the user process started' },
  { kind: 'poststop', where: 'runtime namespace, after delete' },
]);

/** True for the phases whose failures the spec says are only logged. */
export function hookFailureIsWarning(kind: HookName): boolean {
  return kind === 'poststart' || kind === 'poststop';
}

export interface RunHooksOptions {
  /** Working directory of the hooks; runc/crun use the bundle. Default: tsrun's own. */
  cwd?: string;
  /** Called with the failure message of a poststart/poststop hook. */
  onWarning?: (msg: string) => void;
}

const STDERR_TAIL = 4096;
/** After the hook exits, how long to wait for its stderr to reach EOF (a daemonised child may hold it). */
const DRAIN_MS = 250;

/** How a hook is exec'd: argv[0] is args[0], or the path when args is absent or empty. */
export function hookCommand(hook: Hook): { file: string; argv0: string; args: string[] } {
  const args = hook.args ?? [];
  return { file: hook.path, argv0: args[0] ?? hook.path, args: args.slice(1) };
}

/** A hook's environment, exactly its `env` (KEY=VALUE; later duplicates win, entries without "=" dropped). */
export function hookEnv(hook: Hook): Record<string, string> {
  const env: Record<string, string> = {};
  for (const kv of hook.env ?? []) {
    const i = kv.indexOf('=');
    if (i <= 0) continue;
    env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return env;
}

/**
 * Run the hooks of one phase in order. For every phase but poststart/poststop the
 * first failure throws ERR_HOOK_FAILED (or ERR_INVALID_CONFIG for a bad timeout)
 * and later hooks do not run; for poststart/poststop each failure goes to
 * onWarning and the next hook runs.
 */
export async function runHooks(kind: HookName, hooks: Hook[] | undefined, state: OciState, opts: RunHooksOptions = {}): Promise<void> {
  if (hooks === undefined || hooks.length === 0) return;
  // Loaded on demand: most runtime invocations run no hook, and the module costs start-up time.
  const { spawn } = lazyRequire<typeof import('node:child_process')>('node:child_process');
  const input = JSON.stringify(state);
  for (const [i, hook] of hooks.entries()) {
    try {
      await runHook(spawn, kind, i, hook, input, opts.cwd);
    } catch (err) {
      if (!hookFailureIsWarning(kind)) throw err;
      opts.onWarning?.(err instanceof Error ? err.message : String(err));
    }
  }
}

function errnoText(err: NodeJS.ErrnoException): string {
  if (typeof err.errno === 'number') {
    const entry = getSystemErrorMap().get(err.errno);
    if (entry !== undefined) return `${entry[1]} (${entry[0]})`;
  }
  return err.code ?? err.message;
}

function spawnError(label: string, hook: Hook, err: NodeJS.ErrnoException): TsrunError {
  const opts: TsrunErrorOptions = { path: hook.path, cause: err };
  if (typeof err.errno === 'number') opts.errno = Math.abs(err.errno);
  if (err.syscall !== undefined) opts.syscall = err.syscall;
  const why = typeof err.errno === 'number' ? errnoText(err) : err.message;
  return new TsrunError('ERR_HOOK_FAILED', `${label}: cannot run: ${why}`, opts);
}

function runHook(
  spawn: typeof import('node:child_process').spawn,
  kind: HookName,
  index: number,
  hook: Hook,
  input: string,
  cwd: string | undefined,
): Promise<void> {
  const label = `hook "${kind}" ${hook.path}`;
  const timeout = hook.timeout;
  if (timeout !== undefined && !(Number.isFinite(timeout) && timeout > 0)) {
    return Promise.reject(invalidConfig(`hooks.${kind}[${index}].timeout`, 'must be greater than zero'));
  }
  const cmd = hookCommand(hook);

  return new Promise<void>((resolve, reject) => {
    let child: ChildProcess;
    try {
      child = spawn(cmd.file, cmd.args, {
        argv0: cmd.argv0,
        env: hookEnv(hook),
        stdio: ['pipe', 'ignore', 'pipe'],
        ...(cwd === undefined ? {} : { cwd }),
      });
    } catch (err) {
      // Node throws synchronously for bad arguments (a NUL byte in the path) and
      // for spawn errnos other than ENOENT/EACCES/EAGAIN/EMFILE/ENFILE.
      reject(spawnError(label, hook, err as NodeJS.ErrnoException));
      return;
    }

    let tail = Buffer.alloc(0);
    let timedOut = false;
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    let drainTimer: NodeJS.Timeout | undefined;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;

    const stderrText = (): string => {
      let s = tail.toString('utf8');
      // Cut to a character boundary at the front if the tail split a UTF-8 sequence.
      if (s.startsWith('\uFFFD')) s = s.replace(/^\uFFFD+/, '');
      return s.trim();
    };

    const finish = (): void => {
      if (settled) return;
      settled = true;
      if (timer !== undefined) clearTimeout(timer);
      if (drainTimer !== undefined) clearTimeout(drainTimer);
      child.stdin?.destroy();
      child.stderr?.destroy();
      const e = exit;
      if (e === undefined) return resolve(); // unreachable: finish runs after exit
      if (timedOut) {
        return reject(new TsrunError('ERR_HOOK_FAILED', `${label}: timed out after ${timeout} s`, { path: hook.path }));
      }
      if (e.code === 0) return resolve();
      const why = e.signal !== null ? `killed by ${e.signal}` : `exited with status ${e.code}`;
      const text = stderrText();
      reject(new TsrunError('ERR_HOOK_FAILED', `${label}: ${why}${text === '' ? '' : `: ${text}`}`, { path: hook.path }));
    };

    child.on('error', (err: NodeJS.ErrnoException) => {
      // Spawn failed (ENOENT, EACCES, ENOEXEC, a bad cwd...). Errors after a
      // successful spawn (a failed kill) are not failures of the hook.
      if (settled || child.pid !== undefined) return;
      settled = true;
      if (timer !== undefined) clearTimeout(timer);
      reject(spawnError(label, hook, err));
    });

    child.stderr?.on('data', (chunk: Buffer) => {
      tail = Buffer.concat([tail, chunk]);
      if (tail.length > STDERR_TAIL) tail = tail.subarray(tail.length - STDERR_TAIL);
    });
    child.stderr?.on('error', () => {});

    // A hook need not read its stdin: EPIPE / ECONNRESET on the write is expected.
    child.stdin?.on('error', () => {});
    child.stdin?.end(input);

    child.on('exit', (code, signal) => {
      exit = { code, signal };
      drainTimer = setTimeout(finish, DRAIN_MS);
    });
    child.on('close', (code: number | null, signal: NodeJS.Signals | null) => {
      exit ??= { code, signal };
      finish();
    });

    if (timeout !== undefined && child.pid !== undefined) {
      timer = setTimeout(() => {
        if (exit !== undefined) return;
        timedOut = true;
        child.kill('SIGKILL');
      }, timeout * 1000);
    }
  });
}
