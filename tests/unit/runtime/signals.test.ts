import { describe, expect, it } from 'vitest';
import { parseSignal, signalName } from '../../../src/runtime/signals.js';
import { TsrunError } from '../../../src/util/errors.js';

describe('parseSignal', () => {
  it('accepts numbers', () => {
    expect(parseSignal('9')).toBe(9);
    expect(parseSignal('1')).toBe(1);
    expect(parseSignal('15')).toBe(15);
    expect(parseSignal('64')).toBe(64);
  });
  it('accepts names with or without SIG, any case', () => {
    expect(parseSignal('KILL')).toBe(9);
    expect(parseSignal('SIGKILL')).toBe(9);
    expect(parseSignal('sigterm')).toBe(15);
    expect(parseSignal('term')).toBe(15);
    expect(parseSignal('SigHup')).toBe(1);
    expect(parseSignal('INT')).toBe(2);
    expect(parseSignal('USR1')).toBe(10);
    expect(parseSignal('USR2')).toBe(12);
    expect(parseSignal('CHLD')).toBe(17);
    expect(parseSignal('CONT')).toBe(18);
    expect(parseSignal('STOP')).toBe(19);
    expect(parseSignal('WINCH')).toBe(28);
    expect(parseSignal('PWR')).toBe(30);
    expect(parseSignal('SIGSYS')).toBe(31);
    expect(parseSignal('IOT')).toBe(6);
    expect(parseSignal('CLD')).toBe(17);
  });
  it('accepts real-time signals', () => {
    expect(parseSignal('SIGRTMIN')).toBe(34);
    expect(parseSignal('RTMAX')).toBe(64);
    expect(parseSignal('SIGRTMIN+3')).toBe(37);
    expect(parseSignal('rtmin+0')).toBe(34);
    expect(parseSignal('RTMAX-1')).toBe(63);
    expect(parseSignal('SIGRTMIN+30')).toBe(64);
    expect(parseSignal('SIGRTMAX-30')).toBe(34);
  });
  it('rejects anything else with ERR_INVALID_ARGUMENT', () => {
    const bad = [
      'FOO',
      '',
      '0',
      '65',
      '-9',
      '9.0',
      ' 9',
      '9 ',
      '0x9',
      'SIG',
      'SIGSIGKILL',
      'KILL ',
      'SIGRTMIN+31',
      'SIGRTMAX-31',
      'RTMIN-1',
      'RTMAX+1',
      'RTMIN+',
      '1000',
    ];
    for (const s of bad) {
      expect(() => parseSignal(s), JSON.stringify(s)).toThrow(TsrunError);
    }
    try {
      parseSignal('FOO');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(TsrunError);
      expect((e as TsrunError).code).toBe('ERR_INVALID_ARGUMENT');
      expect((e as TsrunError).message).toBe('unknown signal "FOO"');
    }
  });
});

describe('signalName', () => {
  it('names standard and real-time signals', () => {
    expect(signalName(1)).toBe('SIGHUP');
    expect(signalName(9)).toBe('SIGKILL');
    expect(signalName(15)).toBe('SIGTERM');
    expect(signalName(31)).toBe('SIGSYS');
    expect(signalName(34)).toBe('SIGRTMIN');
    expect(signalName(37)).toBe('SIGRTMIN+3');
    expect(signalName(49)).toBe('SIGRTMIN+15');
    expect(signalName(50)).toBe('SIGRTMAX-14');
    expect(signalName(63)).toBe('SIGRTMAX-1');
    expect(signalName(64)).toBe('SIGRTMAX');
  });
  it('gives digits for unnamed numbers', () => {
    expect(signalName(0)).toBe('0');
    expect(signalName(32)).toBe('32');
    expect(signalName(65)).toBe('65');
  });
  it('round-trips through parseSignal', () => {
    for (let n = 1; n <= 64; n++) {
      if (n === 32 || n === 33) continue;
      expect(parseSignal(signalName(n))).toBe(n);
    }
  });
});
