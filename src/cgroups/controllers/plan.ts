// Shared pieces of the pure resources → cgroup v2 translation: the write record, the
// context every controller module receives, and integer checks/formatting. No I/O here.
import { invalidConfig } from '../../util/errors.js';

/** One write of one value to one interface file of the container's cgroup, in order. */
export interface ResourceWrite {
  /** The controller that owns the file (what an ancestor's cgroup.subtree_control must enable). */
  controller: string;
  /** A bare interface file name inside the cgroup directory, e.g. `memory.max`. */
  file: string;
  /** What to write, without a trailing newline. Keyed files (io.max, rdma.max…) get one line per write. */
  value: string;
  /** The `linux.resources` field it came from, for messages: `memory.limit`, `unified["memory.high"]`. */
  field: string;
  /**
   * The file may be missing on this kernel, and a missing file (ENOENT) is not an error: runc
   * tolerates it for `memory.swap.max` = "max"/"0" (no swap accounting) and for
   * `hugetlb.<size>.rsvd.max` (kernels before 5.7). Any other error still is.
   */
  optional?: true;
}

export type SharesConversion = 'linear' | 'quadratic';

export interface PlanOptions {
  /**
   * The current content of an interface file of the cgroup, or undefined when it does not
   * exist or is unknown (a cgroup not created yet). Used for `update`: to keep the other
   * half of cpu.max, to convert swap against the memory limit in force, for
   * memory.checkBeforeUpdate, to order cpu.max.burst, and to detect BFQ (io.bfq.weight).
   */
  current?: (file: string) => string | undefined;
  /** cpu.shares → cpu.weight formula; see cpu.ts. Default 'linear'. */
  sharesConversion?: SharesConversion;
}

export interface PlanContext {
  /** Trimmed content of a file, or undefined. */
  current(file: string): string | undefined;
  warn(message: string): void;
  sharesConversion: SharesConversion;
}

export function makeContext(opts: PlanOptions | undefined, warnings: string[]): PlanContext {
  const read = opts?.current;
  return {
    current: (file) => {
      const v = read?.(file);
      return v === undefined ? undefined : v.trim();
    },
    warn: (m) => warnings.push(m),
    sharesConversion: opts?.sharesConversion ?? 'quadratic',
  };
}

export const R = 'linux.resources';

/** Throws unless v is an integer (JSON numbers beyond 2^53 are integers too, only imprecise). */
export function requireInt(field: string, v: number, min?: number, max?: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw invalidConfig(`${R}.${field}`, `must be an integer, got ${String(v)}`);
  if (min !== undefined && v < min) throw invalidConfig(`${R}.${field}`, `must be >= ${min}, got ${fmtInt(v)}`);
  if (max !== undefined && v > max) throw invalidConfig(`${R}.${field}`, `must be <= ${max}, got ${fmtInt(v)}`);
  return v;
}

/** Decimal text of an integer; exact for the value the double holds, even above 2^53. */
export function fmtInt(v: number): string {
  return Number.isSafeInteger(v) ? String(v) : BigInt(v).toString();
}
