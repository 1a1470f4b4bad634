// `ps ID [ps options]` as runc does it: run the host's ps(1) with the given options (default
// -ef), print its header and the lines whose PID column is one of the container's processes.
import { lazyRequire } from '../../util/lazy-require.js';
import { TsrunError } from '../../util/errors.js';

/** Where ps is looked for when the caller gave no PATH (Podman runs the runtime without one). */
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * runc's filter (ps.go): the header as is, then each non-empty line whose field under the
 * "PID" title is one of `pids`. Throws when ps printed no PID column (e.g. `-o comm`).
 */
export function filterPsOutput(output: string, pids: readonly number[]): string {
  const lines = output.split('\n');
  const titles = (lines[0] ?? '').trim().split(/\s+/);
  const pidIndex = titles.indexOf('PID');
  if (pidIndex < 0)
    throw new TsrunError('ERR_INVALID_ARGUMENT', "couldn't find PID field in ps output", { hint: 'include the pid column, e.g. `-o pid,comm`' });
  const want = new Set(pids);
  const out = [lines[0]!];
  for (const line of lines.slice(1)) {
    if (line.length === 0) continue;
    const field = line.trim().split(/\s+/)[pidIndex];
    const pid = field !== undefined && /^\d+$/.test(field) ? Number(field) : NaN;
    if (Number.isNaN(pid))
      throw new TsrunError('ERR_INVALID_ARGUMENT', `unable to parse pid: ${JSON.stringify(field ?? '')} in ps output line ${JSON.stringify(line)}`);
    if (want.has(pid)) out.push(line);
  }
  return out.join('\n') + '\n';
}

/** The ps(1) arguments: a leading "--" (which ends our own options) is not one of them. */
export function psArguments(args: readonly string[]): string[] {
  const a = args[0] === '--' ? args.slice(1) : [...args];
  return a.length ? a : ['-ef'];
}

/** Runs ps(1) with `args` and returns the table for `pids` (runc's `ps` table output). */
export function psTable(pids: readonly number[], args: readonly string[]): string {
  const { spawnSync } = lazyRequire<typeof import('node:child_process')>('node:child_process');
  const argv = psArguments(args);
  const env = { ...process.env, PATH: process.env.PATH || DEFAULT_PATH };
  const r = spawnSync('ps', argv, { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 });
  if (r.error) {
    throw new TsrunError('ERR_SYSCALL', `run ps ${argv.join(' ')}: ${r.error.message}`, {
      hint: 'install procps (the ps(1) command), or use `ps --format json`',
    });
  }
  if (r.status !== 0) {
    const why = r.signal ? `killed by ${r.signal}` : `exit status ${r.status}`;
    // procps follows its one-line reason with a page of usage: keep the reason.
    const reason =
      `${r.stderr}\n${r.stdout}`
        .split('\n')
        .find((l) => l.trim() !== '')
        ?.trim() ?? '';
    throw new TsrunError('ERR_INVALID_ARGUMENT', `ps ${argv.join(' ')}: ${why}${reason ? `: ${reason}` : ''}`, {
      hint: 'the arguments after the container id go to ps(1) (default -ef); see ps --help',
    });
  }
  return filterPsOutput(r.stdout, pids);
}
