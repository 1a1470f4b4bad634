// What every runtime operation needs: the state root, the cgroup hierarchy and a logger.
// The CLI builds one; tests build their own with a tmp root.
import { CgroupV1 } from '../cgroups/v1-membership.js';
import { CgroupV2 } from '../cgroups/v2.js';
import { StateStore } from './state-store.js';

export interface RuntimeLogger {
  warn(msg: string): void;
  debug(msg: string): void;
}

export interface RuntimeContext {
  store: StateStore;
  cgroup: CgroupV2 | null;
  /** Hybrid hosts: the v1 hierarchies containers also join, for accounting (absent or null: none). */
  cgroupV1?: CgroupV1 | null;
  systemdCgroup: boolean;
  log: RuntimeLogger;
}

export const SILENT: RuntimeLogger = { warn() {}, debug() {} };

export function makeContext(
  root: string,
  opts: { systemdCgroup?: boolean; log?: RuntimeLogger; cgroupMount?: string; cgroupV1?: CgroupV1 | null } = {},
): RuntimeContext {
  // A given v2 mount (tests on a tmpdir) brings no v1 hierarchies unless they are given too.
  // Detected on first use: only create needs them (the hot verbs never read mountinfo twice).
  let v1: CgroupV1 | null | undefined = opts.cgroupV1 !== undefined ? opts.cgroupV1 : opts.cgroupMount ? null : undefined;
  return {
    store: new StateStore(root),
    cgroup: opts.cgroupMount ? new CgroupV2(opts.cgroupMount) : CgroupV2.detect(),
    get cgroupV1() {
      if (v1 === undefined) v1 = CgroupV1.detect();
      return v1;
    },
    systemdCgroup: opts.systemdCgroup ?? false,
    log: opts.log ?? SILENT,
  };
}
