import { describe, expect, it } from 'vitest';
import { RLIM_INFINITY, RLIMITS, rlimitNumber, rlimitValue } from '../../../src/linux/rlimits.js';
import { TsrunError } from '../../../src/util/errors.js';

describe('RLIMITS', () => {
  it('has the Linux numbers', () => {
    expect(Object.keys(RLIMITS)).toHaveLength(16);
    expect(RLIMITS['RLIMIT_CPU']).toBe(0);
    expect(RLIMITS['RLIMIT_CORE']).toBe(4);
    expect(RLIMITS['RLIMIT_NPROC']).toBe(6);
    expect(RLIMITS['RLIMIT_NOFILE']).toBe(7);
    expect(RLIMITS['RLIMIT_MEMLOCK']).toBe(8);
    expect(RLIMITS['RLIMIT_AS']).toBe(9);
    expect(RLIMITS['RLIMIT_RTTIME']).toBe(15);
    expect(new Set(Object.values(RLIMITS))).toEqual(new Set([...Array(16).keys()]));
  });
  it('rlimitNumber', () => {
    expect(rlimitNumber('RLIMIT_NOFILE')).toBe(7);
    expect(rlimitNumber('RLIMIT_STACK')).toBe(3);
    expect(rlimitNumber('RLIMIT_MSGQUEUE')).toBe(12);
    expect(rlimitNumber('NOFILE')).toBeUndefined();
    expect(rlimitNumber('rlimit_nofile')).toBeUndefined();
    expect(rlimitNumber('toString')).toBeUndefined();
    expect(rlimitNumber('__proto__')).toBeUndefined();
  });
});

describe('rlimitValue', () => {
  it('passes ordinary values through', () => {
    expect(rlimitValue(0)).toBe(0n);
    expect(rlimitValue(1024)).toBe(1024n);
    expect(rlimitValue(2 ** 53)).toBe(2n ** 53n);
    expect(rlimitValue(2 ** 63)).toBe(2n ** 63n);
  });
  it('maps -1 and 2^64-1 (as parsed from JSON) to RLIM_INFINITY', () => {
    expect(RLIM_INFINITY).toBe(18446744073709551615n);
    const parsed = (JSON.parse('{"v":18446744073709551615}') as { v: number }).v;
    expect(rlimitValue(parsed)).toBe(RLIM_INFINITY);
    expect(rlimitValue(-1)).toBe(RLIM_INFINITY);
    expect(rlimitValue(Infinity)).toBe(RLIM_INFINITY);
    expect(rlimitValue(2 ** 64 + 2 ** 20)).toBe(RLIM_INFINITY);
  });
  it('rejects other negatives, fractions and NaN', () => {
    expect(() => rlimitValue(-2)).toThrow(TsrunError);
    expect(() => rlimitValue(1.5)).toThrow(/invalid rlimit value 1.5/);
    expect(() => rlimitValue(NaN)).toThrow(TsrunError);
  });
});
