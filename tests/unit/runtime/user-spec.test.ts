import { describe, expect, it } from 'vitest';
import { parseUserSpec } from '../../../src/runtime/user-spec.js';
import { TsrunError } from '../../../src/util/errors.js';

describe('parseUserSpec', () => {
  it('CVE-2026-30892 (exec -u 1 parsed as 0): "1" is uid 1, never 0', () => {
    expect(parseUserSpec('1')).toEqual({ uid: 1 });
    expect(parseUserSpec('1').uid).not.toBe(0);
  });
  it('parses uid and uid:gid', () => {
    expect(parseUserSpec('0')).toEqual({ uid: 0 });
    expect(parseUserSpec('1:2')).toEqual({ uid: 1, gid: 2 });
    expect(parseUserSpec('1000:1000')).toEqual({ uid: 1000, gid: 1000 });
    expect(parseUserSpec('0:0')).toEqual({ uid: 0, gid: 0 });
    expect(parseUserSpec('4294967294:4294967294')).toEqual({ uid: 4294967294, gid: 4294967294 });
    expect('gid' in parseUserSpec('5')).toBe(false);
  });
  it('CVE-2024-40635 / CVE-2026-46680 (uid overflow, digits taken as a name): rejects everything else', () => {
    const bad = [
      '',
      '4294967295',
      '1:4294967295',
      '4294967295:1',
      '9999999999',
      '12345678901',
      ' 1',
      '1 ',
      '1\n',
      '1:',
      ':1',
      '-1',
      '1:-1',
      '0x1',
      '1e3',
      '+1',
      '1.0',
      'root',
      '1:2:3',
      '1:root',
      '١',
    ];
    for (const s of bad) {
      let err: unknown;
      try {
        parseUserSpec(s);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(s)).toBeInstanceOf(TsrunError);
      expect((err as TsrunError).code).toBe('ERR_INVALID_ARGUMENT');
    }
  });
});
