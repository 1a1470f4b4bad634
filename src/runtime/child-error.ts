// Turns a child's {step, errno, detail} report into a TsrunError that names the step, the
// syscall, the path and the errno, and keeps the texts Podman and containerd match on
// ("no such file or directory", "executable file not found in $PATH", "permission denied").
import { constants } from 'node:os';
import type { PlanStep } from '../linux/plan-encode.js';
import { D_INIT_EXEC, D_NOT_FOUND_IN_PATH, D_STAT, D_SYMLINK_TARGET, D_VERIFY, DETAIL } from '../native/protocol.js';
import { TsrunError } from '../util/errors.js';

let errnoNames: Map<number, string> | undefined; // built on first use: most runs never fail

const ERRNO_TEXT: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOTDIR: 'not a directory',
  EISDIR: 'is a directory',
  ELOOP: 'too many levels of symbolic links',
  EINVAL: 'invalid argument',
  EBUSY: 'device or resource busy',
  EEXIST: 'file exists',
  ENOSPC: 'no space left on device',
  EXDEV: 'not on the expected filesystem',
  ENOSYS: 'function not implemented',
  EBADF: 'bad file descriptor',
};

export function errnoName(n: number): string {
  errnoNames ??= new Map<number, string>(Object.entries(constants.errno).map(([k, v]) => [v, k]));
  return errnoNames.get(n) ?? `errno ${n}`;
}

export function errnoText(n: number): string {
  const name = errnoName(n);
  return ERRNO_TEXT[name] ?? name.toLowerCase();
}

const HINTS: Record<string, string> = {
  MOUNT: 'check the mount source exists and the options suit its filesystem type',
  SETUSER: 'check process.user: the uid/gid must be mapped in the container user namespace',
  CHDIR: 'process.cwd must be a directory inside the rootfs',
  OOM_SCORE_ADJ: 'lowering oom_score_adj needs CAP_SYS_RESOURCE; raise it or leave it unset',
  RLIMIT: 'raising a hard rlimit above the current one needs CAP_SYS_RESOURCE',
  PIVOT: 'the rootfs must be a directory that is not the host root',
};

export function childError(steps: PlanStep[], index: number, errno: number, detail: number): TsrunError {
  const s = steps[index];
  const name = errnoName(errno);
  if (index < 0 && detail === D_INIT_EXEC) {
    return new TsrunError('ERR_CHILD_FAILED', `start the container process: execveat(tsrun-init, sealed memfd): ${name}, ${errnoText(errno)}`, {
      errno,
      syscall: 'execveat',
      hint: 'exec from a memfd must be allowed (vm.memfd_noexec < 2; no noexec policy on memfds)',
    });
  }
  const opts = { errno, syscall: s?.syscall ?? 'unknown', path: s?.target ?? '', step: s?.op ?? `#${index}` };
  if (s?.op === 'FIND_EXEC') {
    const argv0 = s.target ?? '';
    const code = errno === constants.errno.EACCES ? 'ERR_EXEC_PERMISSION' : 'ERR_EXEC_NOT_FOUND';
    const what =
      detail === D_NOT_FOUND_IN_PATH && errno !== constants.errno.EACCES
        ? `exec: "${argv0}": executable file not found in $PATH`
        : detail === D_STAT && errno === constants.errno.ENOENT
          ? `exec: "${argv0}": stat ${argv0}: ${errnoText(errno)}`
          : `exec: "${argv0}": ${errnoText(errno)}`;
    return new TsrunError(code, `unable to start container process: ${what}`, opts);
  }
  if (s?.op === 'EXEC') {
    return new TsrunError('ERR_EXEC_NOT_FOUND', `unable to start container process: exec: "${s.target}": ${errnoText(errno)}`, opts);
  }
  const sub = DETAIL[detail] ? ` (${DETAIL[detail]})` : '';
  let why = `${name}, ${errnoText(errno)}`;
  if (detail === D_SYMLINK_TARGET) why = 'refused: the path is a symlink';
  if (detail === D_VERIFY) why = `verification failed: ${name}`;
  const msg = `step ${s?.op.toLowerCase().replaceAll('_', '-') ?? index}: ${s?.syscall ?? '?'}${sub} ${s?.target ? `"${s.target}"` : ''}: ${why}`;
  const hint = s ? HINTS[s.op] : undefined;
  return new TsrunError('ERR_CHILD_FAILED', msg.replace(/\s+:/, ':'), hint ? { ...opts, hint } : opts);
}
