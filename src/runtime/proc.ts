// Facts about host processes read from /proc: start time (pid-reuse guard) and liveness.
import { readFileSync } from 'node:fs';

/** Fields after the command name of /proc/<pid>/stat, or null if the process is gone. */
function statFields(pid: number, procRoot = '/proc'): string[] | null {
  try {
    const text = readFileSync(`${procRoot}/${pid}/stat`, 'utf8');
    // The command may contain spaces and parentheses: split after the last ')'.
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

export function procStartTime(pid: number, procRoot = '/proc'): string | null {
  // fields[0] is field 3 (state); starttime is field 22.
  return statFields(pid, procRoot)?.[19] ?? null;
}

/** Alive, the same process (start time matches) and not a zombie. */
export function isAlive(pid: number, startTime: string, procRoot = '/proc'): boolean {
  if (pid <= 0) return false;
  const f = statFields(pid, procRoot);
  if (!f) return false;
  return f[19] === startTime && f[0] !== 'Z' && f[0] !== 'X';
}
