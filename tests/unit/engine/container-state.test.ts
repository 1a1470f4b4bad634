// A container's status is derived from what is true now: the monitor's exit record, whether
// the monitor lives (pid + start time), the runtime core's state. Roots are temp dirs; "alive"
// processes are this test process, "dead" ones a pid that has exited.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ContainerRecord } from '../../../src/engine/container-store.js';
import { containerState, UNKNOWN_EXIT } from '../../../src/engine/container-state.js';
import { makeEngineContext } from '../../../src/engine/context.js';
import { procStartTime } from '../../../src/runtime/proc.js';
import { tempDir } from '../../helpers/tmp-dir.js';

function ctx() {
  const d = tempDir('tsrun-state-');
  mkdirSync(join(d, 'cg'));
  return makeEngineContext({ root: join(d, 'root'), runRoot: join(d, 'run'), cgroupMount: join(d, 'cg') });
}

const me = { pid: process.pid, startTime: procStartTime(process.pid)! };
const deadPid = spawnSync('true').pid!;
const dead = { pid: deadPid, startTime: '1' };

function record(id: string, o: Partial<ContainerRecord> = {}): ContainerRecord {
  return {
    id,
    name: 'c',
    created: new Date().toISOString(),
    image: 'busybox',
    imageRef: 'localhost/busybox:latest',
    imageId: 'sha256:x',
    manifestDigest: 'sha256:y',
    diffIds: [],
    intent: {},
    args: ['true'],
    user: '',
    env: [],
    workdir: '/',
    labels: {},
    stopSignal: 'SIGTERM',
    stopTimeout: 10,
    autoRemove: false,
    interactive: false,
    tty: false,
    logMaxSize: 0,
    logMaxFiles: 1,
    mounts: [],
    anonymousVolumes: [],
    restartCount: 0,
    phase: 'created',
    ...o,
  };
}

function runtimeState(c: ReturnType<typeof ctx>, id: string, pid: number, startTime: string) {
  mkdirSync(join(c.runRoot, id), { recursive: true });
  writeFileSync(
    join(c.runRoot, id, 'state.json'),
    JSON.stringify({
      id,
      phase: 'created',
      pid,
      startTime,
      bundle: '/b',
      rootfs: '/r',
      created: '',
      owner: 'root',
      cgroupPath: null,
      config: {},
      creatorPid: 1,
    }),
  );
}

const id = (n: number) => String(n).repeat(64);

describe('container status', () => {
  it('created: never started', () => {
    const c = ctx();
    const r = record(id(1));
    c.containers.write(r);
    expect(containerState(c, r).status).toBe('created');
  });

  it('running while the monitor and the init live; paused is the runtime’s to say', () => {
    const c = ctx();
    const r = record(id(2), { monitor: me });
    c.containers.write(r);
    runtimeState(c, r.id, me.pid, me.startTime);
    expect(containerState(c, r)).toMatchObject({ status: 'running', running: true, pid: me.pid, monitorAlive: true });
  });

  it('exited with the monitor’s record: code, OOM kill, finish time', () => {
    const c = ctx();
    const r = record(id(3), { monitor: dead });
    c.containers.write(r);
    writeFileSync(join(c.containers.dir(r.id), 'exit.json'), '{"exitCode":137,"signal":9,"oomKilled":true,"finishedAt":"2026-12-06T00:00:00Z"}');
    expect(containerState(c, r)).toMatchObject({ status: 'exited', exitCode: 137, oomKilled: true, finishedAt: '2026-12-06T00:00:00Z', running: false });
  });

  it('a monitor lost before the exit was recorded: exited 255 with the reason, never running', () => {
    const c = ctx();
    const r = record(id(4), { monitor: dead });
    c.containers.write(r);
    const st = containerState(c, r);
    expect(st).toMatchObject({ status: 'exited', exitCode: UNKNOWN_EXIT, running: false });
    expect(st.error).toMatch(/monitor lost/);
  });

  it('a lost monitor with the init somehow alive: unknown, with the pid to stop', () => {
    const c = ctx();
    const r = record(id(5), { monitor: dead });
    c.containers.write(r);
    runtimeState(c, r.id, me.pid, me.startTime);
    const st = containerState(c, r);
    expect(st).toMatchObject({ status: 'unknown', running: false });
    expect(st.error).toMatch(new RegExp(`pid ${me.pid}`));
  });

  it('a live monitor whose init is gone is stopping (the exit record is on its way)', () => {
    const c = ctx();
    const r = record(id(6), { monitor: me });
    c.containers.write(r);
    expect(containerState(c, r).status).toBe('stopping');
  });

  it('a create killed midway is dead, for rm -f to finish; removing says so', () => {
    const c = ctx();
    const r = record(id(7), { phase: 'creating' });
    c.containers.write(r);
    expect(containerState(c, r)).toMatchObject({ status: 'dead', exitCode: UNKNOWN_EXIT });
    expect(containerState(c, { ...r, phase: 'removing' }).status).toBe('removing');
  });

  it('a reused monitor pid (another start time) is not the monitor', () => {
    const c = ctx();
    const r = record(id(8), { monitor: { pid: me.pid, startTime: '1' } });
    c.containers.write(r);
    expect(containerState(c, r).monitorAlive).toBe(false);
  });
});
