// The bodies of `create` and `run`, shared by the full CLI (main.ts) and the fast entry
// (create-fast.ts), so both give the same results, messages and exit codes.
import type { RuntimeContext } from '../../runtime/context.js';
import { createContainer } from '../../runtime/create.js';
import { deleteContainer, oomKills } from '../../runtime/lifecycle.js';
import type { CliLogger } from '../../util/log.js';
import { runForeground } from './foreground.js';

export interface ContainerVerbOptions {
  bundle: string;
  pidFile?: string | undefined;
  consoleSocket?: string | undefined;
  preserveFds: number;
  noPivot: boolean;
}

export async function createVerb(ctx: RuntimeContext, id: string, o: ContainerVerbOptions): Promise<number> {
  await createContainer(ctx, { id, ...o, mode: 'create', detach: true });
  return 0;
}

/** run: create and start; unless detached, wait, report an OOM kill, delete (unless keep). */
export async function runVerb(ctx: RuntimeContext, log: CliLogger, id: string, o: ContainerVerbOptions & { detach: boolean; keep: boolean }): Promise<number> {
  const { detach, keep, ...rest } = o;
  const created = await createContainer(ctx, { id, ...rest, mode: 'run', detach });
  if (detach) return 0;
  const code = await runForeground(created.pid, created.consoleFd);
  const killed = oomKills(ctx, id);
  if (killed) log.error(`container ${id} was OOM-killed: ${killed} process(es) killed at its memory limit`);
  if (!keep) await deleteContainer(ctx, id, true);
  return code;
}
