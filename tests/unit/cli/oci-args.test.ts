// tsrun-oci's pure argument parsers: runc's `update` flags → LinuxResources, Go durations for
// `events --interval`, go-units memory sizes, the ps(1) filter, and error lines for --log.
import { describe, expect, it } from 'vitest';
import { parseGoDuration, parseRamInBytes, resourcesFromUpdateFlags } from '../../../src/cli/oci/args.js';
import { errorMessage, failureExitCode, unexpectedErrorLine, withHint } from '../../../src/cli/oci/fatal.js';
import { filterPsOutput, psArguments } from '../../../src/cli/oci/ps.js';
import { mergeResources } from '../../../src/cli/oci/update.js';
import { requiredControllers } from '../../../src/cgroups/resources.js';
import { TsrunError } from '../../../src/util/errors.js';

const MiB = 1024 * 1024;

describe('parseRamInBytes (docker/go-units RAMInBytes, as runc 1.1 uses it)', () => {
  it('takes bytes and binary k/m/g/t/p suffixes in any case, with optional i/b', () => {
    expect(parseRamInBytes('100')).toBe(100);
    expect(parseRamInBytes('512k')).toBe(512 * 1024);
    expect(parseRamInBytes('64m')).toBe(64 * MiB);
    expect(parseRamInBytes('64M')).toBe(64 * MiB);
    expect(parseRamInBytes('64MB')).toBe(64 * MiB);
    expect(parseRamInBytes('64MiB')).toBe(64 * MiB);
    expect(parseRamInBytes('1g')).toBe(1024 * MiB);
    expect(parseRamInBytes('1 g')).toBe(1024 * MiB);
    expect(parseRamInBytes('1.5g')).toBe(1.5 * 1024 * MiB);
    expect(parseRamInBytes('2t')).toBe(2 * 1024 ** 4);
    expect(parseRamInBytes('10b')).toBe(10);
  });

  it("refuses what runc refuses, with go-units' message", () => {
    for (const bad of ['64x', '-2', '-1', '', 'm', '1.2.3', '64mm', ' 64m']) {
      expect(() => parseRamInBytes(bad), bad).toThrow(`invalid size: '${bad}'`);
    }
  });
});

describe('parseGoDuration (time.ParseDuration) in milliseconds', () => {
  it('takes Go durations', () => {
    expect(parseGoDuration('5s')).toBe(5000);
    expect(parseGoDuration('1s')).toBe(1000);
    expect(parseGoDuration('500ms')).toBe(500);
    expect(parseGoDuration('1m30s')).toBe(90_000);
    expect(parseGoDuration('1.5h')).toBe(5_400_000);
    expect(parseGoDuration('2h45m')).toBe(9_900_000);
    expect(parseGoDuration('.5s')).toBe(500);
    expect(parseGoDuration('1.s')).toBe(1000);
    expect(parseGoDuration('1500us')).toBe(1.5);
    expect(parseGoDuration('1500µs')).toBe(1.5);
    expect(parseGoDuration('2000000ns')).toBe(2);
    expect(parseGoDuration('-2s')).toBe(-2000);
    expect(parseGoDuration('+2s')).toBe(2000);
    expect(parseGoDuration('0')).toBe(0);
  });

  it('keeps bare integers as seconds (tsrun-oci took seconds before; runc refuses them)', () => {
    expect(parseGoDuration('5')).toBe(5000);
  });

  it('refuses malformed durations', () => {
    expect(() => parseGoDuration('1x')).toThrow('invalid duration "1x"');
    expect(() => parseGoDuration('1.5')).toThrow('missing unit');
    expect(() => parseGoDuration('s')).toThrow('invalid duration');
    expect(() => parseGoDuration('.s')).toThrow('invalid duration');
    expect(() => parseGoDuration('')).toThrow('invalid duration');
    expect(() => parseGoDuration('-')).toThrow('invalid duration');
    expect(() => parseGoDuration('1s2')).toThrow('missing unit');
  });
});

describe('resourcesFromUpdateFlags (runc update flags → LinuxResources)', () => {
  it('gives undefined when no flag is given', () => {
    expect(resourcesFromUpdateFlags({})).toBeUndefined();
  });

  it('maps each flag to its field, memory sizes with suffixes', () => {
    expect(resourcesFromUpdateFlags({ memory: '64m' })).toEqual({ memory: { limit: 64 * MiB } });
    expect(resourcesFromUpdateFlags({ memorySwap: '1g', memory: '512m', memoryReservation: '256m' })).toEqual({
      memory: { limit: 512 * MiB, swap: 1024 * MiB, reservation: 256 * MiB },
    });
    expect(resourcesFromUpdateFlags({ cpuQuota: '50000', cpuPeriod: '100000' })).toEqual({ cpu: { quota: 50000, period: 100000 } });
    expect(resourcesFromUpdateFlags({ cpuShare: '512' })).toEqual({ cpu: { shares: 512 } });
    expect(resourcesFromUpdateFlags({ cpuShares: '512' })).toEqual({ cpu: { shares: 512 } });
    expect(resourcesFromUpdateFlags({ cpusetCpus: '0-3,5', cpusetMems: '0' })).toEqual({ cpu: { cpus: '0-3,5', mems: '0' } });
    expect(resourcesFromUpdateFlags({ pidsLimit: '100' })).toEqual({ pids: { limit: 100 } });
    expect(resourcesFromUpdateFlags({ blkioWeight: '500' })).toEqual({ blockIO: { weight: 500 } });
    expect(resourcesFromUpdateFlags({ cpuRtPeriod: '1000000', cpuRtRuntime: '950000' })).toEqual({ cpu: { realtimePeriod: 1000000, realtimeRuntime: 950000 } });
  });

  it('reads -1 as "no limit" where runc does, and 0 or "" as "unchanged"', () => {
    expect(resourcesFromUpdateFlags({ memory: '-1', memorySwap: '-1' })).toEqual({ memory: { limit: -1, swap: -1 } });
    expect(resourcesFromUpdateFlags({ cpuQuota: '-1' })).toEqual({ cpu: { quota: -1 } });
    expect(resourcesFromUpdateFlags({ pidsLimit: '-1' })).toEqual({ pids: { limit: -1 } });
    expect(resourcesFromUpdateFlags({ pidsLimit: '-5' })).toEqual({ pids: { limit: -1 } }); // runc: any negative is "max"
    expect(resourcesFromUpdateFlags({ memory: '0', cpuShare: '0', pidsLimit: '0', blkioWeight: '0', cpusetCpus: '' })).toEqual({});
  });

  it('asks no controller for "unlimited" values, so they apply on hosts without the controller', () => {
    expect(requiredControllers(resourcesFromUpdateFlags({ memory: '-1', cpuQuota: '-1', pidsLimit: '-1' })).size).toBe(0);
    expect(
      [
        ...requiredControllers(resourcesFromUpdateFlags({ memory: '64m', pidsLimit: '10', cpuQuota: '1000', cpusetCpus: '0', blkioWeight: '100' })).keys(),
      ].sort(),
    ).toEqual(['cpu', 'cpuset', 'io', 'memory', 'pids']);
  });

  it('refuses bad values naming the flag, as runc does', () => {
    expect(() => resourcesFromUpdateFlags({ memory: '64x' })).toThrow("invalid value for memory: invalid size: '64x'");
    expect(() => resourcesFromUpdateFlags({ memorySwap: '-2' })).toThrow("invalid value for memory-swap: invalid size: '-2'");
    expect(() => resourcesFromUpdateFlags({ cpuPeriod: '-5' })).toThrow('invalid value for cpu-period');
    expect(() => resourcesFromUpdateFlags({ cpuShare: 'lots' })).toThrow('invalid value for cpu-share');
    expect(() => resourcesFromUpdateFlags({ cpuQuota: '1.5' })).toThrow('invalid value for cpu-quota');
    expect(() => resourcesFromUpdateFlags({ pidsLimit: 'abc' })).toThrow('invalid value for pids-limit');
    expect(() => resourcesFromUpdateFlags({ blkioWeight: '5' })).toThrow('invalid value for blkio-weight: 5 is not in [10, 1000]');
    expect(() => resourcesFromUpdateFlags({ cpuShare: '512', cpuShares: '256' })).toThrow('disagree');
    expect(() => resourcesFromUpdateFlags({ l3CacheSchema: 'L3:0=ff' })).toThrow('Intel RDT is not supported');
    try {
      resourcesFromUpdateFlags({ memory: 'x' });
    } catch (e) {
      expect(e).toBeInstanceOf(TsrunError);
      expect((e as TsrunError).code).toBe('ERR_INVALID_ARGUMENT');
    }
  });
});

describe('mergeResources (the record after update)', () => {
  it('keeps the fields of a section that the update does not give', () => {
    expect(mergeResources({ memory: { limit: 100, reservation: 50 }, pids: { limit: 5 } }, { memory: { limit: 200 } })).toEqual({
      memory: { limit: 200, reservation: 50 },
      pids: { limit: 5 },
    });
    expect(mergeResources(undefined, { cpu: { shares: 2 } })).toEqual({ cpu: { shares: 2 } });
  });
});

describe('ps: runc’s filter of ps(1) output', () => {
  const out = [
    'UID          PID    PPID  C STIME TTY          TIME CMD',
    'root           1       0  0 10:00 ?        00:00:01 /sbin/init',
    'root         42       1  0 10:01 ?        00:00:00 sleep 1000',
    '',
  ].join('\n');

  it('prints the header and the lines of the given pids', () => {
    expect(filterPsOutput(out, [42])).toBe(
      'UID          PID    PPID  C STIME TTY          TIME CMD\nroot         42       1  0 10:01 ?        00:00:00 sleep 1000\n',
    );
    expect(filterPsOutput(out, [])).toBe('UID          PID    PPID  C STIME TTY          TIME CMD\n');
    expect(filterPsOutput('    PID COMMAND\n     42 sleep\n      7 sh\n', [42])).toBe('    PID COMMAND\n     42 sleep\n');
  });

  it("refuses output without a PID column, with runc's message", () => {
    expect(() => filterPsOutput('COMMAND\nsleep\n', [1])).toThrow("couldn't find PID field in ps output");
  });

  it('passes everything after the id to ps, default -ef, without a leading --', () => {
    expect(psArguments([])).toEqual(['-ef']);
    expect(psArguments(['-ef'])).toEqual(['-ef']);
    expect(psArguments(['--', '-o', 'pid,comm'])).toEqual(['-o', 'pid,comm']);
    expect(psArguments(['--'])).toEqual(['-ef']);
    expect(psArguments(['aux'])).toEqual(['aux']);
  });
});

describe('error lines', () => {
  it('puts the hint into the message a log record carries', () => {
    expect(withHint('tsrun-oci create failed: x', 'do y')).toBe('tsrun-oci create failed: x (hint: do y)');
    expect(withHint('m', undefined)).toBe('m');
  });

  it('says what failed in one line, without a stack', () => {
    const e = Object.assign(new Error("ENOENT: no such file or directory, open '/x'"), { code: 'ENOENT' });
    expect(unexpectedErrorLine('spec', e)).toBe("tsrun-oci: spec failed: ENOENT: no such file or directory, open '/x'");
    expect(unexpectedErrorLine('', new Error('a\n  b'))).toBe('tsrun-oci: internal error: a b');
    expect(errorMessage('plain')).toBe('plain');
    expect(errorMessage({ weird: 1 })).toBe('{"weird":1}');
    expect(errorMessage(undefined)).toBe('unknown error');
    expect(failureExitCode('exec')).toBe(255);
    expect(failureExitCode('state')).toBe(1);
  });
});
