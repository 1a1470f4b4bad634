// `USER` / `-u` to ids, as docker and podman resolve it (moby/sys/user GetExecUser): read
// from the image's own /etc/passwd and /etc/group, given here as text (the caller reads them
// inside the rootfs, fd-based, O_NOFOLLOW, regular files only, size-capped: CVE-2024-9676).
// Pure. An all-digit part is always an id, never a name (CVE-2026-46680), and range-checked
// as an unsigned 32-bit value below (uid_t)-1 (CVE-2024-40635).
import { TsrunError } from '../util/errors.js';

export interface ExecUser {
  uid: number;
  gid: number;
  /** Supplementary groups: the primary gid first, then the user's groups (implicit form only), then --group-add. */
  additionalGids: number[];
  home: string;
}

const MAX_ID = 4294967294; // (uid_t)-1 is "no change" to the kernel, never a real id
const DIGITS = /^\d+$/;

function bad(spec: string, why: string): TsrunError {
  return new TsrunError('ERR_INVALID_ARGUMENT', `user "${spec}": ${why}`, { hint: 'use NAME, UID, NAME:GROUP or UID:GID; names must exist in the image' });
}

function numericId(spec: string, s: string): number {
  const n = Number(s);
  if (s.length > 10 || !Number.isSafeInteger(n) || n > MAX_ID) throw bad(spec, `${s} is out of range (0..${MAX_ID})`);
  return n;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}
interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

/** passwd lines "name:x:uid:gid:gecos:home:shell"; malformed lines are skipped, as libc does. */
export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 7 || !f[0] || !DIGITS.test(f[2]!) || !DIGITS.test(f[3]!)) continue;
    out.push({ name: f[0], uid: Number(f[2]), gid: Number(f[3]), home: f[5] || '/' });
  }
  return out;
}

/** group lines "name:x:gid:member,member". */
export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 4 || !f[0] || !DIGITS.test(f[2]!)) continue;
    out.push({ name: f[0], gid: Number(f[2]), members: f[3] ? f[3].split(',').filter(Boolean) : [] });
  }
  return out;
}

/**
 * Resolve `spec` (`user`, `uid`, `user:group`, `uid:gid`, `user:gid`, `uid:group`; empty =
 * root) against the image's files (null = the file does not exist). `groupAdd`: --group-add
 * names or ids.
 */
export function resolveExecUser(spec: string, passwd: string | null, group: string | null, groupAdd: string[] = []): ExecUser {
  const [userPart = '', groupPart, extra] = spec.split(':');
  if (extra !== undefined) throw bad(spec, 'has more than one ":"');
  const users = passwd === null ? [] : parsePasswd(passwd);
  const groups = group === null ? [] : parseGroup(group);
  let uid = 0;
  let gid = 0;
  let home = '/';
  let name: string | undefined;
  if (userPart === '') {
    const root = users.find((u) => u.uid === 0);
    if (root) ({ uid, gid, home, name } = { ...root, name: root.name });
  } else if (DIGITS.test(userPart)) {
    uid = numericId(spec, userPart);
    const e = users.find((u) => u.uid === uid); // a uid missing from passwd is accepted
    if (e) ({ gid, home, name } = { gid: e.gid, home: e.home, name: e.name });
  } else {
    const e = users.find((u) => u.name === userPart);
    if (!e) throw bad(spec, passwd === null ? `no /etc/passwd in the image to find "${userPart}" in` : `no user "${userPart}" in the image's /etc/passwd`);
    ({ uid, gid, home, name } = e);
  }
  if (groupPart !== undefined) {
    if (groupPart === '') throw bad(spec, 'the group after ":" is empty');
    if (DIGITS.test(groupPart)) gid = numericId(spec, groupPart);
    else {
      const g = groups.find((x) => x.name === groupPart);
      if (!g) throw bad(spec, group === null ? `no /etc/group in the image to find "${groupPart}" in` : `no group "${groupPart}" in the image's /etc/group`);
      gid = g.gid;
    }
  }
  // Supplementary groups from /etc/group only in the implicit form (no group given).
  const supplementary = groupPart === undefined && name !== undefined ? groups.filter((g) => g.members.includes(name)).map((g) => g.gid) : [];
  const added = groupAdd.map((a) => {
    if (DIGITS.test(a)) return numericId(`--group-add ${a}`, a);
    const g = groups.find((x) => x.name === a);
    if (!g) throw bad(`--group-add ${a}`, `no group "${a}" in the image's /etc/group`);
    return g.gid;
  });
  const additionalGids = [...new Set([gid, ...supplementary, ...added])];
  return { uid, gid, additionalGids, home };
}
