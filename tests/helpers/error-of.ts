import { expect } from 'vitest';
import { TsrunError } from '../../src/util/errors.js';

/** The TsrunError `f` throws (the test fails if it throws something else, or nothing). */
export function errorOf(f: () => unknown): TsrunError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(TsrunError);
    return e as TsrunError;
  }
  throw new Error('did not throw');
}
