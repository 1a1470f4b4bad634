// `exec`: a new process in a running container, through the runtime core's exec (joins all
// of its namespaces and its cgroup), with the container's user, env and cwd unless -u, -e,
// -w say otherwise. A user name is looked up in the container's own /etc/passwd, in-root.
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { readFileInRoot } from '../linux/in-root.js';
import { execInContainer } from '../runtime/exec.js';
import { TsrunError } from '../util/errors.js';
import type { ContainerRecord } from './container-store.js';
import { containerState } from './container-state.js';
import type { EngineContext } from './context.js';
import { resolveExecUser } from './exec-user.js';
import { mergeEnv } from './specgen.js';

export interface ExecRequest {
  args: string[];
  user?: string;
  workdir?: string;
  env?: string[];
  tty?: boolean;
  detach?: boolean;
  /** -i: our stdin is the process's; otherwise it reads /dev/null (docker's rule). */
  interactive?: boolean;
}

function imageFile(rootfs: string, rel: string): string | null {
  const b = readFileInRoot(rootfs, rel, 4 * 1024 * 1024);
  return b ? b.toString('utf8') : null;
}

export async function execInEngineContainer(ctx: EngineContext, rec: ContainerRecord, r: ExecRequest): Promise<{ pid: number; consoleFd: number }> {
  const st = containerState(ctx, rec);
  if (st.status !== 'running') {
    throw new TsrunError('ERR_CONTAINER_NOT_RUNNING', `container ${rec.name} is ${st.status === 'paused' ? 'paused, unpause it' : 'not running'}`);
  }
  if (!r.args.length) throw new TsrunError('ERR_INVALID_ARGUMENT', 'exec needs a command');
  let user: { uid: number; gid: number } | undefined;
  let additionalGids: number[] | undefined;
  if (r.user !== undefined) {
    const merged = join(ctx.containers.dir(rec.id), 'merged');
    const u = resolveExecUser(r.user, imageFile(merged, 'etc/passwd'), imageFile(merged, 'etc/group'));
    user = { uid: u.uid, gid: u.gid };
    additionalGids = u.additionalGids;
  }
  // Without -i the process gets no input; detached, it gets no output either (docker).
  const nullFd = r.detach || !r.interactive ? openSync('/dev/null', 'r+') : -1;
  try {
    return await execInContainer(ctx.runtime, {
      id: rec.id,
      detach: r.detach === true,
      ...(nullFd >= 0 ? { stdio: [nullFd, r.detach ? nullFd : -1, r.detach ? nullFd : -1] as [number, number, number] } : {}),
      overrides: {
        args: r.args,
        ...(r.workdir ? { cwd: r.workdir } : {}),
        ...(r.env?.length ? { env: mergeEnv([r.env]) } : {}),
        ...(user ? { user } : {}),
        ...(additionalGids ? { additionalGids } : {}),
        tty: r.tty === true,
      },
    });
  } finally {
    if (nullFd >= 0) closeSync(nullFd);
  }
}
