// Resource limit names and numbers (include/uapi/asm-generic/resource.h) and the
// conversion of OCI `process.rlimits` values to the kernel's 64-bit rlim_t.

import { TsrunError } from '../util/errors.js';

export const RLIMITS: Readonly<Record<string, number>> = Object.freeze({
  RLIMIT_CPU: 0,
  RLIMIT_FSIZE: 1,
  RLIMIT_DATA: 2,
  RLIMIT_STACK: 3,
  RLIMIT_CORE: 4,
  RLIMIT_RSS: 5,
  RLIMIT_NPROC: 6,
  RLIMIT_NOFILE: 7,
  RLIMIT_MEMLOCK: 8,
  RLIMIT_AS: 9,
  RLIMIT_LOCKS: 10,
  RLIMIT_SIGPENDING: 11,
  RLIMIT_MSGQUEUE: 12,
  RLIMIT_NICE: 13,
  RLIMIT_RTPRIO: 14,
  RLIMIT_RTTIME: 15,
});

/** RLIM_INFINITY on Linux: (rlim_t)-1, i.e. 2^64-1. */
export const RLIM_INFINITY = 2n ** 64n - 1n;

/** The number of an rlimit type such as "RLIMIT_NOFILE" (exact, as in the spec), or undefined. */
export function rlimitNumber(name: string): number | undefined {
  return Object.hasOwn(RLIMITS, name) ? RLIMITS[name] : undefined;
}

/**
 * An rlimit value as the kernel's rlim_t. JSON numbers lose precision above 2^53, so
 * 18446744073709551615 (RLIM_INFINITY as written in config.json) parses as 2^64;
 * anything >= 2^64-1, -1 (what some generators write) and Infinity mean RLIM_INFINITY.
 * Other negative, fractional or NaN values are rejected.
 */
export function rlimitValue(v: number): bigint {
  if (v === -1 || v >= 2 ** 64 - 1) return RLIM_INFINITY;
  if (!Number.isInteger(v) || v < 0) {
    throw new TsrunError('ERR_INVALID_ARGUMENT', `invalid rlimit value ${String(v)}`);
  }
  return BigInt(v);
}
