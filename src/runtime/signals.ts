// Signal names and numbers for `kill` (Linux x86/arm generic numbering), parsed the
// way runc's and crun's kill do: a number, or a name with or without SIG, any case,
// including SIGRTMIN+n / SIGRTMAX-n.

import { TsrunError } from '../util/errors.js';

export const SIGRTMIN = 34;
export const SIGRTMAX = 64;

/** Standard signals by number (index = number; 0, 32, 33 have no name). */
const NAMES: ReadonlyArray<string | undefined> = [
  undefined,
  'SIGHUP', // 1
  'SIGINT', // 2
  'SIGQUIT', // 3
  'SIGILL', // 4
  'SIGTRAP', // 5
  'SIGABRT', // 6
  'SIGBUS', // 7
  'SIGFPE', // 8
  'SIGKILL', // 9
  'SIGUSR1', // 10
  'SIGSEGV', // 11
  'SIGUSR2', // 12
  'SIGPIPE', // 13
  'SIGALRM', // 14
  'SIGTERM', // 15
  'SIGSTKFLT', // 16
  'SIGCHLD', // 17
  'SIGCONT', // 18
  'SIGSTOP', // 19
  'SIGTSTP', // 20
  'SIGTTIN', // 21
  'SIGTTOU', // 22
  'SIGURG', // 23
  'SIGXCPU', // 24
  'SIGXFSZ', // 25
  'SIGVTALRM', // 26
  'SIGPROF', // 27
  'SIGWINCH', // 28
  'SIGIO', // 29
  'SIGPWR', // 30
  'SIGSYS', // 31
];

/** Every accepted name (without SIG) → number; includes the usual aliases. */
export const SIGNALS: ReadonlyMap<string, number> = new Map([
  ...NAMES.flatMap((name, n): Array<[string, number]> => (name === undefined ? [] : [[name.slice(3), n]])),
  ['IOT', 6],
  ['CLD', 17],
  ['POLL', 29],
  ['RTMIN', SIGRTMIN],
  ['RTMAX', SIGRTMAX],
]);

function invalid(s: string): TsrunError {
  return new TsrunError('ERR_INVALID_ARGUMENT', `unknown signal "${s}"`);
}

/** Parse "9", "KILL", "sigterm", "SIGRTMIN+3", "RTMAX-1"; throws ERR_INVALID_ARGUMENT otherwise. */
export function parseSignal(s: string): number {
  if (/^\d{1,3}$/.test(s)) {
    const n = Number(s);
    if (n >= 1 && n <= SIGRTMAX) return n;
    throw invalid(s);
  }
  const upper = s.toUpperCase();
  const name = upper.startsWith('SIG') ? upper.slice(3) : upper;
  const known = SIGNALS.get(name);
  if (known !== undefined) return known;
  const rt = /^RT(MIN\+|MAX-)(\d{1,2})$/.exec(name);
  if (rt !== null) {
    const off = Number(rt[2]);
    const n = rt[1] === 'MIN+' ? SIGRTMIN + off : SIGRTMAX - off;
    if (n >= SIGRTMIN && n <= SIGRTMAX) return n;
  }
  throw invalid(s);
}

/**
 * The name of a signal number: "SIGKILL", "SIGRTMIN", "SIGRTMIN+3", "SIGRTMAX-1"
 * (the split bash's `kill -l` uses); numbers with no name come back as digits.
 */
export function signalName(n: number): string {
  const std = NAMES[n];
  if (std !== undefined) return std;
  if (Number.isInteger(n) && n >= SIGRTMIN && n <= SIGRTMAX) {
    if (n === SIGRTMIN) return 'SIGRTMIN';
    if (n === SIGRTMAX) return 'SIGRTMAX';
    const mid = SIGRTMIN + Math.floor((SIGRTMAX - SIGRTMIN) / 2); // 49
    return n <= mid ? `SIGRTMIN+${n - SIGRTMIN}` : `SIGRTMAX-${SIGRTMAX - n}`;
  }
  return String(n);
}
