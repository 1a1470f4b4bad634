import { constants } from 'node:os';
import { describe, expect, it } from 'vitest';
import type { PlanStep } from '../../../src/linux/plan-encode.js';
import { D_NOT_FOUND_IN_PATH, D_STAT, D_SYMLINK_TARGET } from '../../../src/native/protocol.js';
import { childError } from '../../../src/runtime/child-error.js';

const E = constants.errno;
const find: PlanStep = { op: 'FIND_EXEC', syscall: 'stat', target: '/nonexistent', fields: [] };

describe('childError keeps the texts Podman and containerd match on', () => {
  it('missing absolute executable → "no such file or directory" (podman exit 127)', () => {
    const e = childError([find], 0, E.ENOENT, D_STAT);
    expect(e.message).toBe('unable to start container process: exec: "/nonexistent": stat /nonexistent: no such file or directory');
    expect(e.code).toBe('ERR_EXEC_NOT_FOUND');
  });
  it('command not in PATH → "executable file not found in $PATH"', () => {
    const e = childError([{ ...find, target: 'nosuch' }], 0, E.ENOENT, D_NOT_FOUND_IN_PATH);
    expect(e.message).toContain('exec: "nosuch": executable file not found in $PATH');
  });
  it('not executable → "permission denied" (podman exit 126)', () => {
    const e = childError([{ ...find, target: '/etc/passwd' }], 0, E.EACCES, D_STAT);
    expect(e.message).toContain('permission denied');
    expect(e.code).toBe('ERR_EXEC_PERMISSION');
  });
  it('other steps name the step, syscall, object and errno', () => {
    const m: PlanStep = { op: 'MOUNT', syscall: 'mount', target: '/src on /dst', fields: [] };
    const e = childError([m], 0, E.ENOENT, 3);
    expect(e.message).toBe('step mount: mount (mount) "/src on /dst": ENOENT, no such file or directory');
    expect(e.errno).toBe(E.ENOENT);
    expect(childError([m], 0, E.ELOOP, D_SYMLINK_TARGET).message).toContain('refused: the path is a symlink');
  });
});
