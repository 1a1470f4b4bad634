// The TypeScript face of build/Release/tsrun.node; keep in step with native/*.cc.
import type { FsInRootBinding } from './fs-inroot-binding.js';

export interface SyncMessage {
  type: number;
  step: number;
  err: number;
  value: number;
  /** A passed fd (SCM_RIGHTS), or -1. */
  fd: number;
}

export interface WaitStatus {
  /** 0 when still running (noHang). */
  pid: number;
  /** Exit code, or 128 + signal when killed. */
  code?: number;
  signal?: number;
}

export interface SeccompProfileNative {
  defaultAction: number;
  arches: string[];
  rules: Array<{
    syscall: string;
    action: number;
    args: Array<{ index: number; op: number; value: bigint | number; valueTwo: bigint | number }>;
  }>;
}

export interface SeccompConstants {
  SCMP_ACT_KILL_PROCESS: number;
  SCMP_ACT_KILL_THREAD: number;
  SCMP_ACT_KILL: number;
  SCMP_ACT_TRAP: number;
  SCMP_ACT_ERRNO: number;
  SCMP_ACT_TRACE: number;
  SCMP_ACT_ALLOW: number;
  SCMP_ACT_LOG: number;
  SCMP_ACT_NOTIFY: number;
  /** The libseccomp actually loaded, e.g. "2.5.4". */
  version: string;
  SCMP_CMP_NE: number;
  SCMP_CMP_LT: number;
  SCMP_CMP_LE: number;
  SCMP_CMP_EQ: number;
  SCMP_CMP_GE: number;
  SCMP_CMP_GT: number;
  SCMP_CMP_MASKED_EQ: number;
}

export interface NativeBinding extends FsInRootBinding {
  /** stdio: fds that become the child's 0/1/2 (-1 keeps ours). */
  spawn(plan: Buffer, cgroupFd: number, keepFds: number[], stdio?: [number, number, number]): { pid: number; syncFd: number };
  /** The per-container monitor (native/monitor_protocol.h), which clones the init itself. */
  spawnMonitor(
    plan: Buffer,
    cgroupFd: number,
    keepFds: number[],
    argv: string[],
    fds: { dir: number; console?: number; in?: number; out?: number; err?: number },
  ): { pid: number; ctlFd: number; syncFd: number };
  recvMsg(fd: number, timeoutMs: number): SyncMessage | null;
  sendMsg(fd: number, type: number, value?: number): void;
  waitPid(pid: number, noHang: boolean): WaitStatus;
  waitPidAsync(pid: number): Promise<WaitStatus>;
  pidfdOpen(pid: number): number;
  pidfdSignal(pidfd: number, signal: number): void;
  pollReadable(fd: number, timeoutMs: number): boolean;
  /** An fcntl lock on `path` (made if missing), exclusive unless `shared`; released by closing the fd. */
  lockFile(path: string, timeoutMs: number, shared?: boolean): number;
  mkfifo(path: string, mode: number): void;
  connectUnix(path: string): number;
  setWinsize(fd: number, rows: number, cols: number): void;
  close(fd: number): void;
  pipe(): [number, number];
  socketPair(): [number, number];
  attachDeviceFilter(cgroupFd: number, insns: Buffer): void;
  /** mount(2) in the calling (host) namespace: image-store overlays. */
  mount(source: string, target: string, fstype: string, flags: number, data: string): void;
  umount2(target: string, flags: number): void;
  /** A new network namespace bind-mounted on `path` (made here; must not exist), by a cloned child. */
  newNetns(path: string): void;
  seccompCompile(profile: SeccompProfileNative): { bpf: Buffer; skipped: string[] };
  seccompActions(): SeccompConstants;
}
