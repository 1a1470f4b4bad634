import { describe, expect, it } from 'vitest';
import { convertMemorySwapToV2 } from '../../../../src/cgroups/controllers/memory.js';
import { planResources, resourceWrites } from '../../../../src/cgroups/controllers/index.js';
import type { Resources } from '../../../../src/spec/types.js';

const G = 1073741824;
const files = (r: Resources, current?: Record<string, string>) =>
  resourceWrites(r, current ? { current: (f) => current[f] } : undefined).map((w) => `${w.file}=${w.value}`);

describe('convertMemorySwapToV2 (runc ConvertMemorySwapToCgroupV2Value)', () => {
  it('subtracts the memory limit from the memory+swap total', () => {
    expect(convertMemorySwapToV2(2 * G, G)).toBe(G);
    expect(convertMemorySwapToV2(G, G)).toBe(0);
  });
  it('keeps -1 and 0, and turns unlimited memory without swap into unlimited swap', () => {
    expect(convertMemorySwapToV2(-1, G)).toBe(-1);
    expect(convertMemorySwapToV2(0, G)).toBe(0);
    expect(convertMemorySwapToV2(0, -1)).toBe(-1);
    expect(convertMemorySwapToV2(-1, 0)).toBe(-1);
  });
  it('takes the total as the swap when memory is unlimited (current runc)', () => {
    expect(convertMemorySwapToV2(G, -1)).toBe(G);
  });
  it('refuses a swap limit without a memory limit, and a total below the memory limit naming both', () => {
    expect(() => convertMemorySwapToV2(G, 0)).toThrow(/without a memory limit/);
    expect(() => convertMemorySwapToV2(G, 2 * G)).toThrow(/\(1073741824\) must be >= "linux\.resources\.memory\.limit" \(2147483648\)/);
    expect(() => convertMemorySwapToV2(G, -5)).toThrow(/must be -1 or positive, got -5/);
  });
  it('is exact past 2^53', () => {
    expect(convertMemorySwapToV2(2 ** 62, 2 ** 61)).toBe(2 ** 61);
  });
});

describe('memory writes', () => {
  it('writes swap, then max, then low (runc order)', () => {
    expect(files({ memory: { limit: G, swap: 2 * G, reservation: G / 2 } })).toEqual([
      'memory.swap.max=1073741824',
      'memory.max=1073741824',
      'memory.low=536870912',
    ]);
  });
  it('disables swap with "0" when swap == limit, and marks "0"/"max" swap writes optional', () => {
    const w = resourceWrites({ memory: { limit: G, swap: G } });
    expect(w[0]).toEqual({ controller: 'memory', file: 'memory.swap.max', value: '0', field: 'memory.swap', optional: true });
    const n = resourceWrites({ memory: { limit: G, swap: 3 * G } });
    expect(n[0]).toEqual({ controller: 'memory', file: 'memory.swap.max', value: String(2 * G), field: 'memory.swap' });
  });
  it('maps -1 to "max" and 0 to nothing', () => {
    expect(files({ memory: { limit: -1 } })).toEqual(['memory.swap.max=max', 'memory.max=max']);
    expect(files({ memory: { limit: G, swap: -1 } })).toEqual(['memory.swap.max=max', 'memory.max=1073741824']);
    expect(files({ memory: { limit: 0, reservation: 0, swap: 0 } })).toEqual([]);
    expect(files({ memory: { limit: G, swap: 0 } })).toEqual(['memory.max=1073741824']);
    expect(files({ memory: { reservation: -1 } })).toEqual(['memory.low=max']);
  });
  it('writes the swap total as is under unlimited memory', () => {
    expect(files({ memory: { limit: -1, swap: G } })).toEqual(['memory.swap.max=1073741824', 'memory.max=max']);
  });
  it('refuses swap without a limit unless the limit in force (or a unified memory.max) is known', () => {
    expect(() => files({ memory: { swap: G } })).toThrow(/without a memory limit/);
    expect(files({ memory: { swap: G } }, { 'memory.max': '536870912\n' })).toEqual(['memory.swap.max=536870912']);
    expect(files({ memory: { swap: G } }, { 'memory.max': 'max\n' })).toEqual(['memory.swap.max=1073741824']);
    expect(files({ memory: { swap: G }, unified: { 'memory.max': '805306368' } })).toEqual(['memory.swap.max=268435456', 'memory.max=805306368']);
  });
  it('refuses swap below the limit and limits below -1', () => {
    expect(() => files({ memory: { limit: 2 * G, swap: G } })).toThrow(/\(1073741824\) must be >= .*\(2147483648\)/);
    expect(() => files({ memory: { limit: -2 } })).toThrow(/"linux\.resources\.memory\.limit" must be >= -1, got -2/);
    expect(() => files({ memory: { limit: 1.5 } })).toThrow(/must be an integer/);
  });
  it('checkBeforeUpdate rejects limits at or below memory.current, only when it is readable', () => {
    const r: Resources = { memory: { limit: 100 << 20, swap: 200 << 20, checkBeforeUpdate: true } };
    expect(() => files(r, { 'memory.current': String(150 << 20) })).toThrow(/memory limit 104857600 <= usage 157286400/);
    expect(() => files(r, { 'memory.current': String(300 << 20) })).toThrow(/memory\+swap limit 209715200 <= usage 314572800/);
    expect(files(r, { 'memory.current': String(50 << 20) })).toEqual(['memory.swap.max=104857600', 'memory.max=104857600']);
    expect(files(r)).toHaveLength(2);
    expect(files({ memory: { limit: 100 << 20 } }, { 'memory.current': String(150 << 20) })).toEqual(['memory.max=104857600']);
  });
  it('warns about the v1-only fields instead of failing', () => {
    const p = planResources({ memory: { kernel: G, kernelTCP: G, swappiness: 60, disableOOMKiller: true } });
    expect(p.writes).toEqual([]);
    expect(p.warnings).toHaveLength(4);
    expect(p.warnings.join('\n')).toMatch(/memory\.kernel is not supported.*\n.*kernelTCP.*\n.*swappiness.*\n.*disableOOMKiller/);
    expect(planResources({ memory: { swappiness: -1, kernel: 0, disableOOMKiller: false } }).warnings).toEqual([]);
  });
});
