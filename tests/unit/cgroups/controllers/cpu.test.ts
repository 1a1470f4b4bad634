import { describe, expect, it } from 'vitest';
import { convertSharesToWeight, parseCpuMax } from '../../../../src/cgroups/controllers/cpu.js';
import { planResources, resourceWrites } from '../../../../src/cgroups/controllers/index.js';
import type { Resources } from '../../../../src/spec/types.js';
import { TsrunError } from '../../../../src/util/errors.js';

const files = (r: Resources, current?: Record<string, string>) =>
  resourceWrites(r, current ? { current: (f) => current[f] } : undefined).map((w) => `${w.file}=${w.value}`);

describe('convertSharesToWeight', () => {
  it('linear (runc <= 1.3.1): exact integer results', () => {
    expect(convertSharesToWeight(2, 'linear')).toBe(1);
    expect(convertSharesToWeight(3, 'linear')).toBe(1);
    expect(convertSharesToWeight(512, 'linear')).toBe(20);
    expect(convertSharesToWeight(1024, 'linear')).toBe(39);
    expect(convertSharesToWeight(2048, 'linear')).toBe(79);
    expect(convertSharesToWeight(262144, 'linear')).toBe(10000);
    expect(convertSharesToWeight(0, 'linear')).toBe(0);
  });
  it('quadratic (runc >= 1.3.2, crun >= 1.23): 1024 lands on the v2 default 100', () => {
    expect(convertSharesToWeight(2, 'quadratic')).toBe(1);
    expect(convertSharesToWeight(100, 'quadratic')).toBe(17);
    expect(convertSharesToWeight(512, 'quadratic')).toBe(59);
    expect(convertSharesToWeight(1024, 'quadratic')).toBe(100);
    expect(convertSharesToWeight(2048, 'quadratic')).toBe(174);
    expect(convertSharesToWeight(262143, 'quadratic')).toBe(10000);
    expect(convertSharesToWeight(262144, 'quadratic')).toBe(10000);
  });
  it('clamps out-of-range shares instead of wrapping around', () => {
    expect(convertSharesToWeight(1, 'linear')).toBe(1);
    expect(convertSharesToWeight(1_000_000, 'linear')).toBe(10000);
    expect(convertSharesToWeight(1, 'quadratic')).toBe(1);
  });
});

describe('cpu writes', () => {
  it('converts shares, and lets the caller pick the formula', () => {
    expect(files({ cpu: { shares: 1024 } })).toEqual(['cpu.weight=100']); // default: quadratic
    expect(resourceWrites({ cpu: { shares: 1024 } }, { sharesConversion: 'linear' })[0]?.value).toBe('39');
    expect(files({ cpu: { shares: 0 } })).toEqual([]);
    const p = planResources({ cpu: { shares: 1 } });
    expect(p.writes[0]?.value).toBe('1');
    expect(p.warnings[0]).toMatch(/shares 1 is outside \[2, 262144\]; clamped/);
  });
  it('builds cpu.max from quota and period, with the 100000 default', () => {
    expect(files({ cpu: { quota: 50000, period: 200000 } })).toEqual(['cpu.max=50000 200000']);
    expect(files({ cpu: { quota: 50000 } })).toEqual(['cpu.max=50000 100000']);
    expect(files({ cpu: { quota: -1 } })).toEqual(['cpu.max=max 100000']);
    expect(files({ cpu: { period: 250000 } })).toEqual(['cpu.max=max 250000']);
    expect(files({ cpu: { quota: -1, period: 50000 } })).toEqual(['cpu.max=max 50000']);
    expect(files({ cpu: { quota: 0, period: 0 } })).toEqual([]);
    expect(resourceWrites({ cpu: { quota: 1, period: 2 } })[0]?.field).toBe('cpu.quota+cpu.period');
  });
  it('keeps the half of cpu.max the config leaves out (update)', () => {
    expect(files({ cpu: { quota: 50000 } }, { 'cpu.max': 'max 200000\n' })).toEqual(['cpu.max=50000 200000']);
    expect(files({ cpu: { period: 250000 } }, { 'cpu.max': '30000 100000\n' })).toEqual(['cpu.max=30000 250000']);
    expect(files({ cpu: { quota: -1 } }, { 'cpu.max': '30000 20000' })).toEqual(['cpu.max=max 20000']);
  });
  it('orders cpu.max.burst so that burst <= quota holds at every step', () => {
    expect(files({ cpu: { quota: 50000, burst: 10000 } })).toEqual(['cpu.max.burst=10000', 'cpu.max=50000 100000']);
    expect(files({ cpu: { quota: 50000, burst: 20000 } }, { 'cpu.max': '5000 100000' })).toEqual(['cpu.max=50000 100000', 'cpu.max.burst=20000']);
    expect(files({ cpu: { quota: 50000, burst: 4000 } }, { 'cpu.max': '5000 100000' })).toEqual(['cpu.max.burst=4000', 'cpu.max=50000 100000']);
    expect(files({ cpu: { burst: 0 } })).toEqual(['cpu.max.burst=0']);
  });
  it('writes cpu.idle first and skips the weight while idle', () => {
    expect(files({ cpu: { idle: 0, shares: 2048 } })).toEqual(['cpu.idle=0', 'cpu.weight=174']);
    const p = planResources({ cpu: { idle: 1, shares: 2048 } });
    expect(p.writes.map((w) => w.file)).toEqual(['cpu.idle']);
    expect(p.warnings[0]).toMatch(/shares is ignored while .*idle is 1/);
    expect(() => files({ cpu: { idle: 2 } })).toThrow(/cpu\.idle" must be <= 1/);
  });
  it('refuses real-time bandwidth, which cgroup v2 does not have', () => {
    let err: unknown;
    try {
      files({ cpu: { realtimeRuntime: 950000, realtimePeriod: 1000000 } });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TsrunError);
    expect((err as TsrunError).code).toBe('ERR_UNSUPPORTED');
    expect((err as TsrunError).message).toMatch(/realtimeRuntime.*not supported on cgroup v2/);
    expect(files({ cpu: { realtimeRuntime: 0, realtimePeriod: 0, shares: 2 } })).toEqual(['cpu.weight=1']);
  });
  it('refuses quotas below -1 and negative periods', () => {
    expect(() => files({ cpu: { quota: -2 } })).toThrow(/cpu\.quota" must be >= -1/);
    expect(() => files({ cpu: { period: -1 } })).toThrow(/cpu\.period" must be >= 0/);
  });
  it('parses cpu.max', () => {
    expect(parseCpuMax('max 100000\n')).toEqual({ quota: 'max', period: 100000 });
    expect(parseCpuMax('50000 20000')).toEqual({ quota: 50000, period: 20000 });
    expect(parseCpuMax('garbage')).toBeUndefined();
  });
});
