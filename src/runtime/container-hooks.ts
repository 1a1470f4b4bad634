// createContainer and startContainer hooks run in the container's namespaces (runtime-spec
// config.md "POSIX-platform Hooks"): each is a short-lived process joined to every namespace
// of the container init, through the same fork machinery as `exec`, with the state on stdin,
// held to the container process's capabilities, no_new_privs and cgroup.
import { closeSync, constants, openSync, writeFile } from 'node:fs';
import { readLastCap } from '../linux/capabilities.js';
import { buildHookPlan, type NsJoin } from '../linux/plan.js';
import { native } from '../native/index.js';
import type { Capabilities, Hook, NamespaceType, OciState } from '../spec/types.js';
import { TsrunError } from '../util/errors.js';
import { NS_FILE } from './ns-files.js';
import { SpawnSession } from './spawn-session.js';

/** The container a hook runs in: what it joins and what it is held to. */
export interface HookTarget {
  namespaces: NamespaceType[];
  capabilities: Capabilities | undefined;
  /** The container's cgroup directory (CLONE_INTO_CGROUP), or -1 when it has none. */
  cgroupFd: number;
}

export async function runHooksInContainer(
  kind: 'createContainer' | 'startContainer',
  hooks: Hook[] | undefined,
  state: OciState,
  target: HookTarget,
): Promise<void> {
  for (const hook of hooks ?? []) await runOne(kind, hook, state, target);
}

async function runOne(kind: string, hook: Hook, state: OciState, target: HookTarget): Promise<void> {
  const label = `hook "${kind}" ${hook.path}`;
  const joins: NsJoin[] = [];
  const [r, wEnd] = native.pipe();
  let w = wEnd;
  let session: SpawnSession | undefined;
  try {
    for (const type of new Set(target.namespaces)) {
      const path = `/proc/${state.pid}/ns/${NS_FILE[type]}`;
      joins.push({ type, fd: openSync(path, constants.O_RDONLY), path });
    }
    const plan = buildHookPlan(hook, joins, r, { lastCap: readLastCap(), capabilities: target.capabilities });
    session = SpawnSession.start(plan, target.cgroupFd);
    await session.untilReady();
    session.go();
    session.waitExec();
    const pid = session.initPid;
    // The hook runs now: write the state while it reads. Asynchronously, so a hook that never
    // reads a large state cannot block us (its exit ends the write with EPIPE).
    const wfd = w;
    w = -1;
    writeFile(wfd, JSON.stringify(state), () => native.close(wfd));
    let timer: NodeJS.Timeout | undefined;
    const timeout = hook.timeout ? hook.timeout * 1000 : undefined;
    if (timeout) timer = setTimeout(() => process.kill(pid, 'SIGKILL'), timeout);
    const st = await native.waitPidAsync(pid);
    session.markReaped(pid);
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
    session?.close();
    native.close(r);
    if (w >= 0) native.close(w);
    for (const j of joins) closeSync(j.fd);
  }
}
