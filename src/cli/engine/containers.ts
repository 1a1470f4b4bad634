// The container verbs of `tsrun` (docker's names and flags): run, create, start, stop,
// restart, kill, rm, ps, logs, exec, attach, wait, inspect, pause, unpause, container
// prune/cleanup. Printing and exit codes only; the work is in src/engine/.
import { type Command, Option } from 'commander';
import type { ContainerRecord } from '../../engine/container-store.js';
import { containerState } from '../../engine/container-state.js';
import type { EngineContext } from '../../engine/context.js';
import { createContainer } from '../../engine/create.js';
import { execInEngineContainer } from '../../engine/exec.js';
import { inspectContainer, psEntry } from '../../engine/inspect.js';
import { launch } from '../../engine/launch.js';
import {
  cleanupContainer,
  killEngineContainer,
  pauseEngineContainer,
  removeContainer,
  stopContainer,
  unpauseEngineContainer,
  waitContainer,
} from '../../engine/lifecycle.js';
import { readLogs } from '../../engine/logs.js';
import { sendMonitor, waitForExit } from '../../engine/monitor.js';
import { findLocalImage } from '../../engine/image-lookup.js';
import { inspectImage } from '../../image/inspect.js';
import { native } from '../../native/index.js';
import { MON } from '../../native/monitor-protocol.js';
import { parseSignal } from '../../runtime/signals.js';
import { TsrunError } from '../../util/errors.js';
import { mark } from '../../util/timing.js';
import { runForeground } from '../oci/foreground.js';
import { addCreateFlags, type CreateFlags, createRequest } from './create-flags.js';
import { formatAll } from './go-template.js';
import { table } from './table.js';
import { PullProgressView } from './progress.js';
import { reportError } from './report.js';

export type Act = <A extends unknown[]>(fn: (...a: A) => Promise<number | undefined> | number | undefined) => (...a: A) => Promise<void>;

const collect = (v: string, prev: string[] = []) => [...prev, v];
const out = (s: string) => process.stdout.write(s);

/** docker's exit codes for run/create/start/exec: 125 ours, 126 cannot invoke, 127 not found. */
export function runErrorCode(e: unknown): number {
  if (e instanceof TsrunError && (e.code === 'ERR_EXEC_NOT_FOUND' || e.code === 'ERR_EXEC_PERMISSION')) {
    const errno = e.errno ?? 0;
    return e.code === 'ERR_EXEC_PERMISSION' || errno === 13 || errno === 21 || errno === 8 ? 126 : 127;
  }
  return 125;
}

/** Foreground: the monitor copies our stdio; we forward signals and resizes, and wait. */
async function foreground(ctx: EngineContext, rec: ContainerRecord): Promise<number> {
  const stdinTty = process.stdin.isTTY === true;
  const raw = rec.tty && rec.interactive && stdinTty;
  if (raw) process.stdin.setRawMode(true);
  const size = process.stdout.isTTY ? { rows: process.stdout.rows, cols: process.stdout.columns } : {};
  const fg = { ...(rec.interactive ? { in: 0 } : {}), out: 1, err: rec.tty ? 1 : 2, ...size };
  let ctlFd = -1;
  const onSignal = (sig: NodeJS.Signals) => {
    if (ctlFd >= 0) sendMonitor(ctlFd, MON.SIGNAL, parseSignal(sig));
  };
  const onResize = () => {
    if (ctlFd >= 0 && process.stdout.isTTY) sendMonitor(ctlFd, MON.RESIZE, (process.stdout.rows << 16) | process.stdout.columns);
  };
  const signals: NodeJS.Signals[] = rec.tty ? ['SIGTERM', 'SIGHUP'] : ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];
  for (const s of signals) process.on(s, onSignal);
  process.stdout.on('resize', onResize);
  try {
    const l = await launch(ctx, rec, { foreground: fg });
    mark('started');
    ctlFd = l.ctlFd;
    const status = await waitForExit(ctlFd);
    native.close(ctlFd);
    ctlFd = -1;
    const code = status ?? containerState(ctx, ctx.containers.read(rec.id)).exitCode;
    // The monitor runs no exit command while a CLI is attached: the network (and the overlay)
    // go back here; --rm removes the container in the caller.
    if (!rec.autoRemove) await cleanupContainer(ctx, rec.id, false);
    return code;
  } finally {
    for (const s of signals) process.off(s, onSignal);
    process.stdout.off('resize', onResize);
    if (raw) process.stdin.setRawMode(false);
    process.stdin.pause();
  }
}

export function registerContainerCommands(program: Command, ctxOf: () => EngineContext, act: Act): void {
  const pullFor = (platform?: string) => async (ref: string) => {
    process.stderr.write(`Pulling ${ref}\n`);
    const view = new PullProgressView(process.stderr, false);
    const { pullImage } = await import('../../image/pull.js');
    await pullImage(ctxOf().images, ref, { ...(platform ? { platform } : {}), onProgress: (e) => view.handle(e) });
  };
  const build = (image: string, cmd: string[], o: CreateFlags) => {
    const r = createRequest(image, cmd, o);
    r.pullImage = pullFor(o.platform);
    return r;
  };

  const run = addCreateFlags(program.command('run'), true)
    .helpOption('--help')
    .argument('<image>')
    .argument('[command...]')
    .passThroughOptions()
    .description('create and start a container from an image');
  run.action(
    act(async (image: string, cmd: string[], o: CreateFlags) => {
      mark('parsed');
      const ctx = ctxOf();
      let rec: ContainerRecord;
      try {
        rec = await createContainer(ctx, build(image, cmd, o));
        mark('created');
      } catch (e) {
        throw Object.assign(e as Error, { exitCode: 125 });
      }
      try {
        if (o.detach) {
          await launch(ctx, rec);
          mark('started');
          out(`${rec.id}\n`);
          return 0;
        }
        const code = await foreground(ctx, rec);
        mark('exited');
        if (rec.autoRemove) await removeContainer(ctx, rec.id, { force: true, volumes: true });
        mark('removed');
        return code;
      } catch (e) {
        if (rec.autoRemove) await removeContainer(ctx, rec.id, { force: true, volumes: true }).catch(() => undefined);
        throw Object.assign(e as Error, { exitCode: runErrorCode(e) });
      }
    }),
  );

  addCreateFlags(program.command('create'), false)
    .helpOption('--help')
    .argument('<image>')
    .argument('[command...]')
    .passThroughOptions()
    .description('create a container (start it with `tsrun start`)')
    .action(
      act(async (image: string, cmd: string[], o: CreateFlags) => {
        try {
          const rec = await createContainer(ctxOf(), build(image, cmd, o));
          out(`${rec.id}\n`);
          return 0;
        } catch (e) {
          throw Object.assign(e as Error, { exitCode: 125 });
        }
      }),
    );

  program
    .command('start')
    .argument('<container...>')
    .option('-a, --attach', 'attach to its output and wait for it (one container)')
    .option('-i, --interactive', 'attach stdin too')
    .description('start created or stopped containers')
    .action(
      act(async (refs: string[], o: { attach?: boolean; interactive?: boolean }) => {
        const ctx = ctxOf();
        if (o.attach) {
          if (refs.length !== 1) throw new TsrunError('ERR_INVALID_ARGUMENT', 'start --attach takes one container');
          const rec = ctx.containers.resolve(refs[0]!);
          try {
            return await foreground(ctx, { ...rec, interactive: rec.interactive && o.interactive === true });
          } catch (e) {
            throw Object.assign(e as Error, { exitCode: runErrorCode(e) });
          }
        }
        let code = 0;
        for (const ref of refs) {
          try {
            const rec = ctx.containers.resolve(ref);
            const st = containerState(ctx, rec);
            if (st.status !== 'running' && st.status !== 'paused') await launch(ctx, rec);
            out(`${ref}\n`);
          } catch (e) {
            reportError(e);
            code = runErrorCode(e);
          }
        }
        return code;
      }),
    );

  const eachRef = async (refs: string[], fn: (ref: string) => Promise<unknown> | unknown): Promise<number> => {
    let code = 0;
    for (const ref of refs) {
      try {
        await fn(ref);
        out(`${ref}\n`);
      } catch (e) {
        code = reportError(e);
      }
    }
    return code;
  };

  program
    .command('stop')
    .argument('<container...>')
    .option('-t, --time <seconds>', 'seconds to wait before SIGKILL (default: the container’s stop timeout, 10)')
    .description('stop containers: the stop signal, then SIGKILL after the timeout')
    .action(act((refs: string[], o: { time?: string }) => eachRef(refs, (r) => stopContainer(ctxOf(), r, o.time === undefined ? undefined : Number(o.time)))));

  program
    .command('restart')
    .argument('<container...>')
    .option('-t, --time <seconds>', 'seconds to wait before SIGKILL')
    .description('stop and start containers')
    .action(
      act((refs: string[], o: { time?: string }) =>
        eachRef(refs, async (r) => {
          const ctx = ctxOf();
          const rec = await stopContainer(ctx, r, o.time === undefined ? undefined : Number(o.time));
          const fresh = ctx.containers.read(rec.id);
          fresh.restartCount++;
          ctx.containers.write(fresh);
          await launch(ctx, fresh);
        }),
      ),
    );

  program
    .command('kill')
    .argument('<container...>')
    .option('-s, --signal <signal>', 'signal to send', 'KILL')
    .description('send a signal to containers')
    .action(act((refs: string[], o: { signal: string }) => eachRef(refs, (r) => killEngineContainer(ctxOf(), r, o.signal))));

  program
    .command('rm')
    .argument('<container...>')
    .option('-f, --force', 'kill a running container first')
    .option('-v, --volumes', 'remove its anonymous volumes too')
    .description('remove containers (their overlay, cgroup and state)')
    .action(
      act((refs: string[], o: { force?: boolean; volumes?: boolean }) =>
        eachRef(refs, (r) => removeContainer(ctxOf(), r, { force: o.force === true, volumes: o.volumes === true })),
      ),
    );

  program
    .command('pause')
    .argument('<container...>')
    .description('freeze every process of containers')
    .action(act((refs: string[]) => eachRef(refs, (r) => pauseEngineContainer(ctxOf(), r))));
  program
    .command('unpause')
    .argument('<container...>')
    .description('thaw paused containers')
    .action(act((refs: string[]) => eachRef(refs, (r) => unpauseEngineContainer(ctxOf(), r))));

  program
    .command('wait')
    .argument('<container...>')
    .description('wait for containers to exit and print their exit codes')
    .action(
      act(async (refs: string[]) => {
        for (const r of refs) out(`${await waitContainer(ctxOf(), r)}\n`);
        return 0;
      }),
    );

  const ps = (opts: { all?: boolean; quiet?: boolean; format?: string; trunc?: boolean }) => {
    const o = { ...opts, noTrunc: opts.trunc === false };
    const ctx = ctxOf();
    const now = Date.now();
    const rows = ctx.containers
      .all()
      .map((r) => psEntry(ctx, r, now))
      .filter((e) => o.all || e.State === 'running' || e.State === 'paused' || e.State === 'unknown' || e.State === 'stopping')
      .sort((a, b) => b.CreatedAt.localeCompare(a.CreatedAt));
    if (o.quiet) return void out(rows.map((r) => `${o.noTrunc ? r.Id : r.ID}\n`).join(''));
    if (o.format) return void out(formatAll(o.format, rows, () => ''));
    const cmd = (c: string) => JSON.stringify(o.noTrunc || c.length <= 20 ? c : `${c.slice(0, 19)}…`);
    out(
      table([
        ['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES'],
        ...rows.map((r) => [o.noTrunc ? r.Id : r.ID, r.Image, cmd(r.Command), r.RunningFor, r.Status, r.Ports, r.Names]),
      ]),
    );
  };
  for (const c of [program.command('ps'), program.command('container').command('ls')]) {
    c.option('-a, --all', 'also stopped containers')
      .option('-q, --quiet', 'ids only')
      .option('--no-trunc', 'full ids and commands')
      .option('--format <format>', 'json, or a Go template: {{.ID}} {{.Names}} {{.Status}} …')
      .description('list containers')
      .action(act(ps));
  }

  program
    .command('logs')
    .argument('<container>')
    .option('-f, --follow', 'keep printing as the container writes, until it exits')
    .option('--tail <n>', 'only the last N lines ("all" for every line)')
    .option('-t, --timestamps', 'show the time of each line')
    .option('--since <when>', 'only lines since a time (RFC 3339) or a duration ago (10m)')
    .description('print what a container wrote (stdout and stderr)')
    .action(
      act(async (ref: string, o: { follow?: boolean; tail?: string; timestamps?: boolean; since?: string }) => {
        const ctx = ctxOf();
        const rec = ctx.containers.resolve(ref);
        const tail = o.tail === undefined || o.tail === 'all' ? undefined : Number(o.tail);
        if (tail !== undefined && !(Number.isInteger(tail) && tail >= 0))
          throw new TsrunError('ERR_INVALID_ARGUMENT', `--tail ${o.tail}: a number of lines or "all"`);
        await readLogs(
          ctx,
          rec,
          { ...(tail !== undefined ? { tail } : {}), ...(o.since ? { since: o.since } : {}), timestamps: o.timestamps === true, follow: o.follow === true },
          (s, text) => (s === 'stdout' ? process.stdout : process.stderr).write(text),
        );
        return 0;
      }),
    );

  program
    .command('exec')
    .helpOption('--help')
    .argument('<container>')
    .argument('<command...>')
    .passThroughOptions()
    .option('-i, --interactive', 'keep stdin open')
    .option('-t, --tty', 'allocate a pseudo-terminal')
    .option('-d, --detach', 'run it in the background')
    .option('-u, --user <user[:group]>', 'user name or uid (looked up in the container)')
    .option('-w, --workdir <dir>', 'working directory')
    .option('-e, --env <KEY=VALUE>', 'set an environment variable (repeatable)', collect, [])
    .description('run a command in a running container (all of its namespaces, its cgroup)')
    .action(
      act(
        async (ref: string, args: string[], o: { interactive?: boolean; tty?: boolean; detach?: boolean; user?: string; workdir?: string; env: string[] }) => {
          const ctx = ctxOf();
          try {
            const rec = ctx.containers.resolve(ref);
            const r = await execInEngineContainer(ctx, rec, {
              args,
              ...(o.user !== undefined ? { user: o.user } : {}),
              ...(o.workdir ? { workdir: o.workdir } : {}),
              env: o.env,
              tty: o.tty === true && !o.detach,
              detach: o.detach === true,
              interactive: o.interactive === true,
            });
            if (o.detach) return 0;
            return await runForeground(r.pid, r.consoleFd);
          } catch (e) {
            throw Object.assign(e as Error, { exitCode: e instanceof TsrunError && e.code === 'ERR_CONTAINER_NOT_FOUND' ? 1 : runErrorCode(e) });
          }
        },
      ),
    );

  program
    .command('attach')
    .argument('<container>')
    .option('--no-stdin', 'do not attach stdin')
    .description('attach to a running container’s output (and stdin); its exit status when it ends')
    .action(
      act(async (ref: string, o: { stdin: boolean }) => {
        const ctx = ctxOf();
        const rec = ctx.containers.resolve(ref);
        const st = containerState(ctx, rec);
        if (st.status !== 'running') throw new TsrunError('ERR_CONTAINER_NOT_RUNNING', `container ${rec.name} is ${st.status}`);
        const { attachMonitor } = await import('../../engine/attach.js');
        const session = await attachMonitor(ctx.containers.dir(rec.id), (s, d) => (s === 'stdout' ? process.stdout : process.stderr).write(d));
        const raw = rec.tty && o.stdin && process.stdin.isTTY === true;
        if (raw) process.stdin.setRawMode(true);
        if (o.stdin && rec.interactive) {
          process.stdin.on('data', (d: Buffer) => session.sendStdin(d));
          process.stdin.on('end', () => session.closeStdin());
        }
        const resize = () => process.stdout.isTTY && session.resize(process.stdout.rows, process.stdout.columns);
        process.stdout.on('resize', resize);
        const status = await session.done;
        if (raw) process.stdin.setRawMode(false);
        process.stdin.destroy();
        process.stdout.off('resize', resize);
        return status ?? containerState(ctx, ctx.containers.read(rec.id)).exitCode;
      }),
    );

  program
    .command('inspect')
    .argument('<name...>')
    .option('-f, --format <template>', 'a Go template, e.g. {{.State.ExitCode}}')
    .addOption(new Option('--type <type>', 'container or image').choices(['container', 'image']))
    .description('show containers or images as JSON')
    .action(
      act((refs: string[], o: { format?: string; type?: 'container' | 'image' }) => {
        const ctx = ctxOf();
        const values = refs.map((ref) => {
          if (o.type !== 'image') {
            try {
              return inspectContainer(ctx, ctx.containers.resolve(ref));
            } catch (e) {
              if (o.type === 'container' || !(e instanceof TsrunError && e.code === 'ERR_CONTAINER_NOT_FOUND')) throw e;
            }
          }
          const img = findLocalImage(ctx.images, ref);
          if (!img && o.type !== 'image') throw new TsrunError('ERR_CONTAINER_NOT_FOUND', `no such container or image: ${ref}`);
          return inspectImage(ctx.images, img?.ref ?? ref);
        });
        out(o.format ? formatAll(o.format, values, () => '') : `${JSON.stringify(values, null, 2)}\n`);
        return 0;
      }),
    );

  const container = program.commands.find((c) => c.name() === 'container')!;
  container
    .command('prune')
    .option('-f, --force', 'do not ask (there is no prompt: kept for docker’s scripts)')
    .description('remove every stopped container')
    .action(
      act(async () => {
        const ctx = ctxOf();
        for (const rec of ctx.containers.all()) {
          const st = containerState(ctx, rec);
          if (st.status === 'exited' || st.status === 'dead' || st.status === 'created') {
            await removeContainer(ctx, rec.id, { force: false });
            out(`${rec.id}\n`);
          }
        }
        return 0;
      }),
    );
  container
    .command('cleanup', { hidden: true })
    .argument('<id>')
    .option('--rm', 'remove the container')
    .description('run by a container’s monitor when it exits')
    .action(
      act(async (id: string, o: { rm?: boolean }) => {
        await cleanupContainer(ctxOf(), id, o.rm === true);
        return 0;
      }),
    );
}
