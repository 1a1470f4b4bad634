// linux.resources.memory → memory.swap.max, memory.max, memory.low (runc's fs2 setMemory,
// same order). memory.high/min/oom.group have no OCI field: they come through `unified`.
import type { Resources } from '../../spec/types.js';
import { invalidConfig } from '../../util/errors.js';
import { fmtInt, R, requireInt, type PlanContext, type ResourceWrite } from './plan.js';

/**
 * runc's numToStr for .max/.low/.high files: 0 means "not given" (no write), -1 means
 * "max" (cgroup v1's way to remove a limit). Anything below -1 is refused.
 */
export function limitValue(field: string, v: number | undefined): string | undefined {
  if (v === undefined || v === 0) return undefined;
  requireInt(field, v, -1);
  return v === -1 ? 'max' : fmtInt(v);
}

/**
 * OCI `memory.swap` is the memory+swap total (cgroup v1's memsw); cgroup v2's
 * memory.swap.max is swap alone. This is runc's ConvertMemorySwapToCgroupV2Value
 * (opencontainers/cgroups utils.go, current version): returns the v2 value with runc's
 * conventions, -1 = "max", 0 = "not given" — the caller turns swap == memory into "0".
 */
export function convertMemorySwapToV2(swap: number, memory: number): number {
  // Unlimited memory and no swap given: unlimited swap too (what v1 did).
  if (memory === -1 && swap === 0) return -1;
  if (swap === -1 || swap === 0) return swap;
  // Unlimited memory: nothing to subtract, the total is the swap. (runc < 1.2 refused this.)
  if (memory === -1) return swap;
  if (memory === 0) {
    throw invalidConfig(
      `${R}.memory.swap`,
      `(${fmtInt(swap)}) needs "${R}.memory.limit": it is the memory+swap total, so a swap limit without a memory limit cannot be converted for cgroup v2`,
    );
  }
  if (memory < 0) throw invalidConfig(`${R}.memory.limit`, `must be -1 or positive, got ${fmtInt(memory)}`);
  if (swap < memory) {
    throw invalidConfig(
      `${R}.memory.swap`,
      `(${fmtInt(swap)}) must be >= "${R}.memory.limit" (${fmtInt(memory)}): it is the memory+swap total, not swap alone`,
    );
  }
  const d = Number.isSafeInteger(swap) && Number.isSafeInteger(memory) ? swap - memory : Number(BigInt(swap) - BigInt(memory));
  return d;
}

/** A memory.max-style text ("max", "123") as runc's int64 convention: "max" → -1. */
function limitFromText(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (text === 'max') return -1;
  return /^\d+$/.test(text) ? Number(text) : undefined;
}

export function memoryWrites(r: Resources, ctx: PlanContext): ResourceWrite[] {
  const m = r.memory;
  if (!m) return [];
  const out: ResourceWrite[] = [];
  const w = (file: string, value: string, field: string, optional = false) =>
    out.push({ controller: 'memory', file, value, field, ...(optional ? { optional: true as const } : {}) });

  const limit = m.limit === undefined ? undefined : requireInt('memory.limit', m.limit, -1);
  const swap = m.swap === undefined ? undefined : requireInt('memory.swap', m.swap, -1);
  const limitStr = limitValue('memory.limit', limit);
  const lowStr = limitValue('memory.reservation', m.reservation);

  // The memory limit the swap total is measured against: this config's, else the one a
  // `unified` memory.max sets (crun does this), else the one in force (runc's update keeps
  // the old limit from its state, which is what memory.max holds).
  let base = limit ?? 0;
  if (base === 0 && swap !== undefined && swap > 0) {
    base = limitFromText(r.unified?.['memory.max']?.trim()) ?? limitFromText(ctx.current('memory.max')) ?? 0;
  }

  if (m.checkBeforeUpdate && ((limit ?? 0) > 0 || (swap ?? 0) > 0)) {
    // Best effort, as runc's CheckMemoryUsage: without a readable memory.current, no check.
    const text = ctx.current('memory.current');
    const usage = text !== undefined && /^\d+$/.test(text) ? Number(text) : undefined;
    if (usage !== undefined) {
      if (swap !== undefined && swap > 0 && swap <= usage) {
        throw invalidConfig(`${R}.memory.swap`, `rejected by checkBeforeUpdate: memory+swap limit ${fmtInt(swap)} <= usage ${usage}`);
      }
      if (limit !== undefined && limit > 0 && limit <= usage) {
        throw invalidConfig(`${R}.memory.limit`, `rejected by checkBeforeUpdate: memory limit ${fmtInt(limit)} <= usage ${usage}`);
      }
    }
  }

  if (swap !== undefined || base === -1) {
    const v2 = convertMemorySwapToV2(swap ?? 0, base);
    // swap == limit: "disable swap", which is 0 — never an empty write (that also means 0).
    const swapStr = v2 === -1 ? 'max' : v2 === 0 ? ((swap ?? 0) > 0 ? '0' : undefined) : fmtInt(v2);
    if (swapStr !== undefined) {
      // Without swap accounting there is no memory.swap.max; "max" and "0" then already hold.
      w('memory.swap.max', swapStr, swap === undefined ? 'memory.limit' : 'memory.swap', swapStr === 'max' || swapStr === '0');
    }
  }
  if (limitStr !== undefined) w('memory.max', limitStr, 'memory.limit');
  if (lowStr !== undefined) w('memory.low', lowStr, 'memory.reservation');

  // Fields cgroup v2 has no file for. runc ignores them silently; say so instead.
  if (m.kernel !== undefined && m.kernel !== 0) {
    ctx.warn(`${R}.memory.kernel is not supported on cgroup v2 (kernel memory is accounted in memory.max); ignored`);
  }
  if (m.kernelTCP !== undefined && m.kernelTCP !== 0) {
    ctx.warn(`${R}.memory.kernelTCP is not supported on cgroup v2 (socket memory is accounted in memory.max); ignored`);
  }
  if (m.swappiness !== undefined && m.swappiness !== -1) {
    ctx.warn(`${R}.memory.swappiness is not supported on cgroup v2; ignored`);
  }
  if (m.disableOOMKiller === true) {
    ctx.warn(`${R}.memory.disableOOMKiller is not supported on cgroup v2 (there is no memory.oom_control); ignored`);
  }
  return out;
}
