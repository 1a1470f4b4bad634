// Drives one forked child through the sync protocol (native/protocol.h): user-namespace
// maps, the container pid, hook points, the pty master, READY/GO. Blocking reads are fine
// here: the CLI has nothing else to do while a container is being set up.
import { writeFileSync } from 'node:fs';
import { HOOK_ID, type HookPoint } from '../linux/plan.js';
import { encodePlan, type PlanStep, planFds } from '../linux/plan-encode.js';
import { native } from '../native/index.js';
import { MSG } from '../native/protocol.js';
import { TsrunError, wrap } from '../util/errors.js';
import { childError } from './child-error.js';

const SETUP_TIMEOUT_MS = 60_000;

export interface SessionHandlers {
  /** Write uid/gid maps for the stage-1 pid (it has just unshared its user namespace). */
  onMapRequest?: (stage1Pid: number) => void;
  /** The container pid is known and it waits (before anything of its own) until this returns. */
  onPid?: (initPid: number) => void;
  onHook?: (point: HookPoint, initPid: number) => Promise<void> | void;
  /** The pty master came back (run --tty without --console-socket). */
  onConsole?: (fd: number) => void;
}

/** Starts a child that execs tsrun-init with the plan; returns the stage-1 pid and our sync fd. */
export type Spawner = (plan: Buffer, cgroupFd: number, keepFds: number[]) => { pid: number; syncFd: number };

const nativeSpawner: Spawner = (plan, cgroupFd, keepFds) => native.spawn(plan, cgroupFd, keepFds);

const HOOK_BY_ID = new Map(Object.entries(HOOK_ID).map(([k, v]) => [v, k as HookPoint]));

export class SpawnSession {
  initPid = 0;
  private closed = false;
  /** Pids already waited for: their numbers may belong to someone else now. */
  private readonly reaped = new Set<number>();

  private constructor(
    readonly steps: PlanStep[],
    readonly stage1Pid: number,
    readonly syncFd: number,
  ) {}

  static start(steps: PlanStep[], cgroupFd = -1, spawner: Spawner = nativeSpawner): SpawnSession {
    const plan = encodePlan(steps);
    let r: { pid: number; syncFd: number };
    try {
      r = spawner(plan, cgroupFd, planFds(steps));
    } catch (e) {
      throw wrap(e, 'start container process');
    }
    return new SpawnSession(steps, r.pid, r.syncFd);
  }

  private recv() {
    try {
      return native.recvMsg(this.syncFd, SETUP_TIMEOUT_MS);
    } catch (e) {
      throw wrap(e, 'wait for the container process');
    }
  }

  private failure(m: { step: number; err: number; value: number }): TsrunError {
    return childError(this.steps, m.step, m.err, m.value);
  }

  /** EOF before the expected message: the child died without a word (e.g. killed). */
  private died(when: string): TsrunError {
    const pid = this.initPid || this.stage1Pid;
    let how = '';
    try {
      const st = native.waitPid(pid, true);
      if (st.pid) this.reaped.add(pid);
      if (st.pid && st.signal) how = ` (killed by signal ${st.signal})`;
      else if (st.pid) how = ` (exit status ${st.code})`;
    } catch {
      /* already reaped */
    }
    return new TsrunError('ERR_CHILD_FAILED', `container process exited ${when}${how}`);
  }

  private reapStage1(): void {
    if (this.reaped.has(this.stage1Pid)) return;
    try {
      native.waitPid(this.stage1Pid, false);
    } catch {
      /* already reaped */
    }
    this.reaped.add(this.stage1Pid);
  }

  /** The caller waited for the init itself (exec, hooks): abort() must not signal it. */
  markReaped(pid: number): void {
    this.reaped.add(pid);
  }

  /** Run the protocol until the init reports READY. */
  async untilReady(h: SessionHandlers = {}): Promise<void> {
    for (;;) {
      const m = this.recv();
      if (!m) {
        const err = this.died('during setup'); // before reaping: it reports how stage 1 ended
        this.reapStage1();
        throw err;
      }
      switch (m.type) {
        case MSG.MAP_REQUEST:
          h.onMapRequest?.(this.stage1Pid);
          native.sendMsg(this.syncFd, MSG.MAP_DONE);
          break;
        case MSG.PID:
          this.initPid = m.value;
          h.onPid?.(this.initPid);
          native.sendMsg(this.syncFd, MSG.CONTINUE);
          this.reapStage1();
          break;
        case MSG.HOOK: {
          const point = HOOK_BY_ID.get(m.value);
          if (point) await h.onHook?.(point, this.initPid);
          native.sendMsg(this.syncFd, MSG.CONTINUE);
          break;
        }
        case MSG.CONSOLE:
          if (m.fd >= 0) h.onConsole?.(m.fd);
          break;
        case MSG.READY:
          if (!this.initPid) throw new TsrunError('ERR_CHILD_FAILED', 'protocol error: READY before PID');
          return;
        case MSG.ERROR:
          if (!this.initPid) this.reapStage1();
          throw this.failure(m);
        default:
          throw new TsrunError('ERR_CHILD_FAILED', `protocol error: unexpected message ${m.type}`);
      }
    }
  }

  /** Let the init go on: it drops PDEATHSIG (when detaching) and answers WAITING. */
  go(): void {
    native.sendMsg(this.syncFd, MSG.GO);
    const m = this.recv();
    if (!m) throw this.died('before it was released');
    if (m.type === MSG.ERROR) throw this.failure(m);
    if (m.type !== MSG.WAITING) throw new TsrunError('ERR_CHILD_FAILED', `protocol error: unexpected message ${m.type}`);
  }

  /** After go() without an exec fifo: EOF means execve succeeded. */
  waitExec(): void {
    const m = this.recv();
    if (!m) return;
    if (m.type === MSG.ERROR) throw this.failure(m);
    throw new TsrunError('ERR_CHILD_FAILED', `protocol error: unexpected message ${m.type}`);
  }

  /** Best-effort: SIGKILL and reap whatever this session started. */
  abort(): void {
    for (const pid of [this.initPid, this.stage1Pid]) {
      if (!pid || this.reaped.has(pid)) continue;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
      try {
        native.waitPid(pid, false);
      } catch {
        /* not ours or already reaped */
      }
    }
    this.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    native.close(this.syncFd);
  }
}

export function writeIdMaps(pid: number, uid: string, gid: string): void {
  try {
    writeFileSync(`/proc/${pid}/uid_map`, uid);
    writeFileSync(`/proc/${pid}/gid_map`, gid);
  } catch (e) {
    throw wrap(e, `write id maps of ${pid}`);
  }
}
