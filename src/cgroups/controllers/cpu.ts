// linux.resources.cpu (minus cpus/mems, see cpuset.ts) → cpu.idle, cpu.weight,
// cpu.max.burst, cpu.max — runc's fs2 setCPU, same order.
import type { Resources } from '../../spec/types.js';
import { TsrunError } from '../../util/errors.js';
import { fmtInt, R, requireInt, type PlanContext, type ResourceWrite, type SharesConversion } from './plan.js';

/** The kernel's range of cgroup v1 cpu.shares ([2, 2^18]) and of v2 cpu.weight ([1, 10^4]). */
const SHARES_MIN = 2;
const SHARES_MAX = 262144;
const WEIGHT_MAX = 10000;
/** cpu.max's period when the config gives a quota alone (kernel default, documented in cgroup-v2.rst). */
export const DEFAULT_CPU_PERIOD = 100000;

/**
 * cpu.shares → cpu.weight.
 *
 * 'linear' is the formula runc used from 2020 (PR #2213) up to 1.3.1 and crun up to 1.22:
 * `1 + ((shares - 2) * 9999) / 262142`, integer division. It maps the v1 range onto the v2
 * range end to end (2 → 1, 262144 → 10000) but the v1 default 1024 lands on 39, not on
 * v2's default 100.
 *
 * 'quadratic' is the newer one, in runc >= 1.3.2 (opencontainers/cgroups PR #20, runc PR
 * #4785) and crun >= 1.23 (PR #1767): with l = log2(shares),
 * `ceil(10 ^ ((l² + 125·l) / 612 − 7/34))`, which also maps 1024 → 100.
 *
 * tsrun defaults to 'quadratic', as current runc and crun do: the v1 default maps to the v2
 * default, so "shares 1024" (which containerd always sends) asks for nothing, and a
 * container carrying it runs where the cpu controller is missing. 'linear' stays available
 * for nodes that must match runc < 1.3.2.
 *
 * Shares outside [2, 262144] are clamped, as the v1 kernel did (runc's old code instead
 * wrapped around in uint64 and wrote garbage). 0 means "not given" (Docker's convention).
 */
export function convertSharesToWeight(shares: number, formula: SharesConversion = 'quadratic'): number {
  if (shares === 0) return 0;
  const s = Math.min(Math.max(shares, SHARES_MIN), SHARES_MAX);
  if (formula === 'linear') return 1 + Math.floor(((s - 2) * 9999) / 262142);
  if (s <= SHARES_MIN) return 1;
  if (s >= SHARES_MAX) return WEIGHT_MAX;
  const l = Math.log2(s);
  return Math.ceil(Math.pow(10, (l * l + 125 * l) / 612.0 - 7.0 / 34.0));
}

/** cpu.max text: "QUOTA PERIOD" / "max PERIOD" → its two halves (undefined if malformed). */
export function parseCpuMax(text: string | undefined): { quota: number | 'max'; period: number } | undefined {
  const m = text === undefined ? null : /^(max|\d+)(?:\s+(\d+))?$/.exec(text.trim());
  if (!m) return undefined;
  return { quota: m[1] === 'max' ? 'max' : Number(m[1]), period: m[2] === undefined ? DEFAULT_CPU_PERIOD : Number(m[2]) };
}

export function cpuWrites(r: Resources, ctx: PlanContext): ResourceWrite[] {
  const c = r.cpu;
  if (!c) return [];
  const out: ResourceWrite[] = [];
  const w = (file: string, value: string, field: string) => out.push({ controller: 'cpu', file, value, field });

  if ((c.realtimeRuntime ?? 0) !== 0 || (c.realtimePeriod ?? 0) !== 0) {
    throw new TsrunError('ERR_UNSUPPORTED', `"${R}.cpu.realtimeRuntime" and "${R}.cpu.realtimePeriod" are not supported on cgroup v2`, {
      hint: 'the cgroup v2 cpu controller has no real-time bandwidth files (cpu.rt_runtime_us); drop those fields',
    });
  }

  const idle = c.idle === undefined ? undefined : requireInt('cpu.idle', c.idle, 0, 1);
  if (idle !== undefined) w('cpu.idle', String(idle), 'cpu.idle');

  if (c.shares !== undefined) {
    const shares = requireInt('cpu.shares', c.shares, 0);
    if (shares !== 0 && (shares < SHARES_MIN || shares > SHARES_MAX)) {
      ctx.warn(`${R}.cpu.shares ${fmtInt(shares)} is outside [${SHARES_MIN}, ${SHARES_MAX}]; clamped`);
    }
    const weight = convertSharesToWeight(shares, ctx.sharesConversion);
    if (weight !== 0) {
      // The kernel refuses cpu.weight while cpu.idle is 1; runc skips it the same way.
      if (idle === 1) ctx.warn(`${R}.cpu.shares is ignored while ${R}.cpu.idle is 1`);
      else w('cpu.weight', String(weight), 'cpu.shares');
    }
  }

  const quota = c.quota === undefined ? undefined : requireInt('cpu.quota', c.quota, -1);
  const period = c.period === undefined ? undefined : requireInt('cpu.period', c.period, 0);
  const burst = c.burst === undefined ? undefined : requireInt('cpu.burst', c.burst, 0);

  let cpuMax: string | undefined;
  if ((quota ?? 0) !== 0 || (period ?? 0) !== 0) {
    // On update, the half the config leaves out keeps its value (runc keeps it in its state).
    const cur = parseCpuMax(ctx.current('cpu.max'));
    const q = quota === undefined || quota === 0 ? (cur?.quota ?? 'max') : quota === -1 ? 'max' : quota;
    const p = period === undefined || period === 0 ? (cur?.period ?? DEFAULT_CPU_PERIOD) : period;
    cpuMax = `${q === 'max' ? 'max' : fmtInt(q)} ${fmtInt(p)}`;
  }
  const fields = [quota !== undefined && quota !== 0 ? 'cpu.quota' : '', period !== undefined && period !== 0 ? 'cpu.period' : ''].filter(Boolean).join('+');

  if (burst !== undefined) {
    // The kernel wants burst <= quota at every step. runc writes the burst first and, if
    // that fails, again after cpu.max; knowing the quota in force lets us order it once.
    const curQuota = parseCpuMax(ctx.current('cpu.max'))?.quota;
    const burstFirst = cpuMax === undefined || curQuota === undefined || curQuota === 'max' || burst <= curQuota;
    if (burstFirst) {
      w('cpu.max.burst', fmtInt(burst), 'cpu.burst');
      if (cpuMax !== undefined) w('cpu.max', cpuMax, fields);
    } else {
      w('cpu.max', cpuMax!, fields);
      w('cpu.max.burst', fmtInt(burst), 'cpu.burst');
    }
  } else if (cpuMax !== undefined) {
    w('cpu.max', cpuMax, fields);
  }
  return out;
}
