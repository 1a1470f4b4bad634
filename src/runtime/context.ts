// What every runtime operation needs: the state root, the cgroup hierarchy and a logger.
// The CLI builds one; tests build their own with a tmp root.
import { CgroupV2 } from '../cgroups/v2.js';
import { StateStore } from './state-store.js';

export interface RuntimeLogger {
  warn(msg: string): void;
  debug(msg: string): void;
}

export interface RuntimeContext {
  store: StateStore;
  cgroup: CgroupV2 | null;
  systemdCgroup: boolean;
  log: RuntimeLogger;
}

export const SILENT: RuntimeLogger = { warn() {}, debug() {} };

export function makeContext(root: string, opts: { systemdCgroup?: boolean; log?: RuntimeLogger; cgroupMount?: string } = {}): RuntimeContext {
  return {
    store: new StateStore(root),
    cgroup: opts.cgroupMount ? new CgroupV2(opts.cgroupMount) : CgroupV2.detect(),
    systemdCgroup: opts.systemdCgroup ?? false,
    log: opts.log ?? SILENT,
  };
}
