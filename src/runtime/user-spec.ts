// `exec --user UID[:GID]`. Numeric only, full match: a lenient parser (strtol-style
// or one that ignores what it cannot parse) has turned "-u 1" and out-of-range
// values into uid 0 before (CVE-2024-40635, CVE-2026-30892). 4294967295 is
// (uid_t)-1, "no change" to setresuid(2), so it is rejected too.

import { TsrunError } from '../util/errors.js';

export interface UserSpec {
  uid: number;
  gid?: number;
}

export const MAX_ID = 4294967294;

const USER_RE = /^(\d{1,10})(?::(\d{1,10}))?$/;

export function parseUserSpec(s: string): UserSpec {
  const m = USER_RE.exec(s);
  const bad = (): TsrunError => new TsrunError('ERR_INVALID_ARGUMENT', `invalid user "${s}": must be UID or UID:GID, each a number 0..${MAX_ID}`);
  if (m === null || m[1] === undefined) throw bad();
  const uid = Number(m[1]);
  if (uid > MAX_ID) throw bad();
  if (m[2] === undefined) return { uid };
  const gid = Number(m[2]);
  if (gid > MAX_ID) throw bad();
  return { uid, gid };
}
