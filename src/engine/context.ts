// What every engine operation needs: the image store, the container records, the volume
// store, the runtime core (its state under the run root) and how to call ourselves back
// (the monitor's exit command). Roots are injectable so tests use their own.
import { join } from 'node:path';
import { DEFAULT_IMAGE_ROOT } from '../image/store/layout.js';
import { ImageStore } from '../image/store/store.js';
import { Networking } from '../network/manager.js';
import { NetworkStore } from '../network/store.js';
import { makeContext, type RuntimeContext, type RuntimeLogger, SILENT } from '../runtime/context.js';
import { ContainerStore } from './container-store.js';
import { VolumeStore } from './volumes.js';

export const DEFAULT_RUN_ROOT = '/run/tsrun/engine';

export interface EngineContext {
  root: string;
  runRoot: string;
  images: ImageStore;
  containers: ContainerStore;
  volumes: VolumeStore;
  /** Bridge networks: their store (conflists under root) and the CNI runtime (state under the run root). */
  networks: Networking;
  runtime: RuntimeContext;
  log: RuntimeLogger;
  /** argv that runs this CLI with the same roots (`[node, script, --root, X, --runroot, Y]`). */
  self: string[];
}

export interface EngineContextOptions {
  root?: string;
  runRoot?: string;
  log?: RuntimeLogger;
  self?: string[];
  cgroupMount?: string;
}

export function makeEngineContext(o: EngineContextOptions = {}): EngineContext {
  const root = o.root ?? DEFAULT_IMAGE_ROOT;
  const runRoot = o.runRoot ?? DEFAULT_RUN_ROOT;
  const log = o.log ?? SILENT;
  return {
    root,
    runRoot,
    images: new ImageStore(root),
    containers: new ContainerStore(root),
    volumes: new VolumeStore(join(root, 'volumes')),
    networks: new Networking(new NetworkStore(root, runRoot), runRoot),
    runtime: makeContext(runRoot, { log, ...(o.cgroupMount ? { cgroupMount: o.cgroupMount } : {}) }),
    log,
    self: [...(o.self ?? [process.execPath, process.argv[1] ?? 'tsrun']), '--root', root, '--runroot', runRoot],
  };
}
