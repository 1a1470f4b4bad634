// createContainer and startContainer hooks run in the container's namespaces (runtime-spec
// config.md "POSIX-platform Hooks"): each is a short-lived process joined to every namespace
// of the container init, through the same fork machinery as `exec`, with the state on stdin.
import { closeSync, constants, openSync, writeSync } from 'node:fs';
import { buildHookPlan, type NsJoin } from '../linux/plan.js';
import { native } from '../native/index.js';
import type { Hook, NamespaceType, OciState } from '../spec/types.js';
import { TsrunError } from '../util/errors.js';
import { NS_FILE } from './ns-files.js';
import { SpawnSession } from './spawn-session.js';

export async function runHooksInContainer(
  kind: 'createContainer' | 'startContainer',
  hooks: Hook[] | undefined,
  state: OciState,
  namespaces: NamespaceType[],
): Promise<void> {
  for (const hook of hooks ?? []) await runOne(kind, hook, state, namespaces);
}

async function runOne(kind: string, hook: Hook, state: OciState, namespaces: NamespaceType[]): Promise<void> {
  const label = `hook "${kind}" ${hook.path}`;
  const joins: NsJoin[] = [];
  const [r, w] = native.pipe();
  let session: SpawnSession | undefined;
  try {
    for (const type of new Set(namespaces)) {
      const path = `/proc/${state.pid}/ns/${NS_FILE[type]}`;
      joins.push({ type, fd: openSync(path, constants.O_RDONLY), path });
    }
    session = SpawnSession.start(buildHookPlan(hook, joins, r));
    await session.untilReady();
    // The state fits the pipe buffer (64 KiB) in practice; a hook that never reads it
    // must not block us, so the write end is closed right after.
    try {
      writeSync(w, JSON.stringify(state));
    } catch {
      /* EPIPE / EAGAIN: the hook ignores stdin */
    }
    native.close(w);
    session.go();
    session.waitExec();
    const pid = session.initPid;
    session.close();
    let timer: NodeJS.Timeout | undefined;
    const timeout = hook.timeout ? hook.timeout * 1000 : undefined;
    if (timeout) timer = setTimeout(() => process.kill(pid, 'SIGKILL'), timeout);
    const st = await native.waitPidAsync(pid);
    if (timer) clearTimeout(timer);
    if (timeout && st.signal === 9) throw new TsrunError('ERR_HOOK_FAILED', `${label}: timed out after ${hook.timeout} s`);
    if (st.code !== 0) {
      throw new TsrunError('ERR_HOOK_FAILED', st.signal ? `${label}: killed by signal ${st.signal}` : `${label}: exited with status ${st.code}`);
    }
  } catch (e) {
    session?.abort();
    if (e instanceof TsrunError && e.code !== 'ERR_HOOK_FAILED') throw new TsrunError('ERR_HOOK_FAILED', `${label}: ${e.message}`, { cause: e });
    throw e;
  } finally {
    native.close(r);
    try {
      native.close(w);
    } catch {
      /* closed */
    }
    for (const j of joins) closeSync(j.fd);
  }
}
