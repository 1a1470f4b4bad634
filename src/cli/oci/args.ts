// Pure parsers for tsrun-oci arguments whose syntax comes from runc's Go world: durations
// (`events --interval`, Go's time.ParseDuration), memory sizes (`update --memory`,
// docker/go-units RAMInBytes) and the `update` flags → LinuxResources mapping. No I/O.
import type { Resources } from '../../spec/types.js';
import { TsrunError } from '../../util/errors.js';

const bad = (msg: string) => new TsrunError('ERR_INVALID_ARGUMENT', msg);

// ---------------------------------------------------------------------------------------------
// durations

/** Go's time.ParseDuration units, in nanoseconds (µ is U+00B5, μ is U+03BC: Go takes both). */
const DURATION_UNITS: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, μs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/**
 * A Go duration ("5s", "1m30s", "500ms", "1.5h", "-2s", "0") in milliseconds, as
 * time.ParseDuration reads it. A bare non-zero number is seconds: runc refuses it ("missing
 * unit"), tsrun-oci took plain seconds before it took durations, so it still does.
 */
export function parseGoDuration(text: string): number {
  const s = text.trim();
  if (/^\d+$/.test(s)) return Number(s) * 1000;
  let rest = s;
  let sign = 1;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    if (rest[0] === '-') sign = -1;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  if (rest === '') throw bad(`invalid duration "${text}"`);
  let ns = 0;
  const part = /^(\d*)(?:\.(\d*))?(ns|us|µs|μs|ms|s|m|h)/;
  while (rest !== '') {
    const m = part.exec(rest);
    // A number needs digits on one side of the dot, and every number needs a unit.
    if (!m || (m[1] === '' && (m[2] ?? '') === '')) {
      throw bad(/^[\d.]+$/.test(rest) ? `invalid duration "${text}": missing unit (ns, us, ms, s, m, h)` : `invalid duration "${text}"`);
    }
    ns += Number(`${m[1] || '0'}.${m[2] || '0'}`) * DURATION_UNITS[m[3]!]!;
    rest = rest.slice(m[0].length);
  }
  return (sign * ns) / 1e6;
}

// ---------------------------------------------------------------------------------------------
// memory sizes

const RAM_UNITS: Record<string, number> = { k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };

/**
 * docker/go-units RAMInBytes as runc 1.1 links it: a number (decimals allowed), an optional
 * space, then an optional binary unit k/m/g/t/p (any case), optionally followed by "i"
 * and/or "b": "64m", "1g", "1.5GiB", "512k", "100" (bytes). Negative sizes are invalid.
 */
export function parseRamInBytes(text: string): number {
  const m = /^(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?$/.exec(text);
  if (!m) throw bad(`invalid size: '${text}'`);
  const n = Number(m[1]) * (m[2] ? RAM_UNITS[m[2].toLowerCase()]! : 1);
  return Math.trunc(n);
}

// ---------------------------------------------------------------------------------------------
// update flags

/** The flags `runc update` takes besides --resources (commander's camelCase names). */
export interface UpdateFlags {
  blkioWeight?: string;
  cpuPeriod?: string;
  cpuQuota?: string;
  /** runc's name is --cpu-share; --cpu-shares (Docker's) is accepted too. */
  cpuShare?: string;
  cpuShares?: string;
  cpuRtPeriod?: string;
  cpuRtRuntime?: string;
  cpusetCpus?: string;
  cpusetMems?: string;
  memory?: string;
  memoryReservation?: string;
  memorySwap?: string;
  pidsLimit?: string;
  l3CacheSchema?: string;
  memBwSchema?: string;
}

/** Each flag with its long name, for the option list and for messages. */
export const UPDATE_FLAGS: ReadonlyArray<{ key: keyof UpdateFlags; flag: string; help: string; hidden?: true }> = [
  { key: 'blkioWeight', flag: 'blkio-weight', help: 'per-cgroup block IO weight, 10 to 1000 (0: unchanged)' },
  { key: 'cpuPeriod', flag: 'cpu-period', help: 'CPU CFS period in usecs (0: unchanged)' },
  { key: 'cpuQuota', flag: 'cpu-quota', help: 'CPU CFS quota in usecs per period; -1 for no limit (0: unchanged)' },
  { key: 'cpuShare', flag: 'cpu-share', help: 'CPU shares, relative weight (0: unchanged)' },
  { key: 'cpuShares', flag: 'cpu-shares', help: 'same as --cpu-share', hidden: true },
  { key: 'cpuRtPeriod', flag: 'cpu-rt-period', help: 'CPU realtime period in usecs (no cgroup v2 equivalent)' },
  { key: 'cpuRtRuntime', flag: 'cpu-rt-runtime', help: 'CPU realtime runtime in usecs (no cgroup v2 equivalent)' },
  { key: 'cpusetCpus', flag: 'cpuset-cpus', help: 'CPUs to use, e.g. 0-3,5' },
  { key: 'cpusetMems', flag: 'cpuset-mems', help: 'memory nodes to use, e.g. 0' },
  { key: 'memory', flag: 'memory', help: 'memory limit (bytes, or 64m, 1g…); -1 for no limit' },
  { key: 'memoryReservation', flag: 'memory-reservation', help: 'memory reservation, soft limit (bytes, or 64m…); -1 for none' },
  { key: 'memorySwap', flag: 'memory-swap', help: 'total memory+swap limit (bytes, or 64m…); -1 for unlimited swap' },
  { key: 'pidsLimit', flag: 'pids-limit', help: 'maximum number of pids; -1 for no limit (0: unchanged)' },
  { key: 'l3CacheSchema', flag: 'l3-cache-schema', help: 'Intel RDT/CAT L3 cache schema (not supported)' },
  { key: 'memBwSchema', flag: 'mem-bw-schema', help: 'Intel RDT/MBA memory bandwidth schema (not supported)' },
];

/** strconv.ParseInt / ParseUint (base 10), with runc's "invalid value for FLAG" message. */
function integer(flag: string, v: string, unsigned: boolean): number {
  if (!(unsigned ? /^\+?\d+$/ : /^[+-]?\d+$/).test(v)) {
    throw bad(`invalid value for ${flag}: ${JSON.stringify(v)} is not ${unsigned ? 'a non-negative' : 'an'} integer`);
  }
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw bad(`invalid value for ${flag}: ${v} is out of range`);
  return n;
}

/** "-1", or a size for go-units RAMInBytes. */
function memoryValue(flag: string, v: string): number {
  if (v === '-1') return -1;
  try {
    return parseRamInBytes(v);
  } catch (e) {
    throw bad(`invalid value for ${flag}: ${(e as Error).message} (bytes, or a number with k, m, g, t or p; -1 for unlimited)`);
  }
}

/**
 * runc update's flags → the LinuxResources object `update --resources` reads, holding only
 * what the flags change. As in runc, 0 and "" mean "leave as it is" (so they add nothing),
 * -1 means "no limit" for --memory, --memory-swap, --memory-reservation, --cpu-quota and
 * --pids-limit (any negative pids limit is "max" in runc), and --cpu-period or --cpu-quota
 * alone keeps the other half of the CPU limit in force. Returns undefined when no flag was
 * given.
 */
export function resourcesFromUpdateFlags(f: UpdateFlags): Resources | undefined {
  for (const k of ['l3CacheSchema', 'memBwSchema'] as const) {
    if (f[k] !== undefined && f[k] !== '') {
      throw new TsrunError('ERR_UNSUPPORTED', `--${k === 'l3CacheSchema' ? 'l3-cache-schema' : 'mem-bw-schema'}: Intel RDT is not supported by tsrun`, {
        hint: 'drop the flag; tsrun has no resctrl (Intel RDT) support',
      });
    }
  }
  const r: Resources = {};
  const memory = (): NonNullable<Resources['memory']> => (r.memory ??= {});
  const cpu = (): NonNullable<Resources['cpu']> => (r.cpu ??= {});
  let given = false;
  const has = (v: string | undefined): v is string => {
    if (v === undefined) return false;
    given = true;
    return v !== '';
  };

  if (has(f.blkioWeight)) {
    const w = integer('blkio-weight', f.blkioWeight, false);
    if (w !== 0 && (w < 10 || w > 1000)) throw bad(`invalid value for blkio-weight: ${w} is not in [10, 1000] (0 leaves it unchanged)`);
    if (w !== 0) r.blockIO = { weight: w };
  }
  if (has(f.cpusetCpus)) cpu().cpus = f.cpusetCpus;
  if (has(f.cpusetMems)) cpu().mems = f.cpusetMems;
  if (f.cpuShare !== undefined && f.cpuShares !== undefined && f.cpuShare !== f.cpuShares) {
    throw bad(`--cpu-share ${f.cpuShare} and --cpu-shares ${f.cpuShares} disagree: give one`);
  }
  const shares = f.cpuShare ?? f.cpuShares;
  for (const [flag, v, key, unsigned] of [
    ['cpu-period', f.cpuPeriod, 'period', true],
    ['cpu-rt-period', f.cpuRtPeriod, 'realtimePeriod', true],
    ['cpu-share', shares, 'shares', true],
    ['cpu-quota', f.cpuQuota, 'quota', false],
    ['cpu-rt-runtime', f.cpuRtRuntime, 'realtimeRuntime', false],
  ] as const) {
    if (!has(v)) continue;
    const n = integer(flag, v, unsigned);
    if (n !== 0) cpu()[key] = n;
  }
  for (const [flag, v, key] of [
    ['memory', f.memory, 'limit'],
    ['memory-swap', f.memorySwap, 'swap'],
    ['memory-reservation', f.memoryReservation, 'reservation'],
  ] as const) {
    if (!has(v)) continue;
    const n = memoryValue(flag, v);
    if (n !== 0) memory()[key] = n;
  }
  if (has(f.pidsLimit)) {
    const n = integer('pids-limit', f.pidsLimit, false);
    if (n !== 0) r.pids = { limit: n < 0 ? -1 : n };
  }
  return given ? r : undefined;
}
