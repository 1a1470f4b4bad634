import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { isAlive, procStartTime } from '../../../src/runtime/proc.js';
import { StateStore, validateId, type ContainerRecord } from '../../../src/runtime/state-store.js';
import { tempDir } from '../../helpers/tmp-dir.js';

const rec = (id: string): ContainerRecord => ({
  id,
  phase: 'created',
  pid: process.pid,
  startTime: procStartTime(process.pid)!,
  bundle: '/b',
  rootfs: '/b/rootfs',
  created: new Date().toISOString(),
  owner: '',
  cgroupPath: null,
  config: { ociVersion: '1.2.0' },
  creatorPid: process.pid,
});

describe('StateStore', () => {
  it('reserves an id once (mkdir decides), reads back what it wrote, and removes it', () => {
    const s = new StateStore(tempDir('st-'));
    s.reserve('c1');
    expect(() => s.reserve('c1')).toThrow(/already exists/);
    s.write(rec('c1'));
    expect(s.read('c1').pid).toBe(process.pid);
    expect(s.ids()).toEqual(['c1']);
    // the atomic write leaves no temp files behind
    expect(readdirSync(s.dir('c1'))).toEqual(['state.json']);
    s.remove('c1');
    expect(() => s.read('c1')).toThrow(/does not exist/);
  });

  it('validates ids like crun', () => {
    for (const bad of ['', '.hidden', 'a/b', '../x', 'a b', 'x'.repeat(1025)]) expect(() => validateId(bad)).toThrow(/invalid container id/);
    for (const ok of ['c1', 'a.b', 'A_b+c-d', '0'.repeat(64)]) expect(() => validateId(ok)).not.toThrow();
  });

  it('serialises operations on one id with a lock that times out for others', () => {
    const s = new StateStore(tempDir('st-'));
    const release = s.lock('c1');
    release();
    s.lock('c1')();
  });
});

describe('liveness', () => {
  it('is alive only with a matching start time', () => {
    const st = procStartTime(process.pid)!;
    expect(isAlive(process.pid, st)).toBe(true);
    expect(isAlive(process.pid, String(Number(st) + 1))).toBe(false);
    expect(isAlive(2 ** 22 + 7, st)).toBe(false);
  });
});
