// tsrun-oci: the runc command-line contract (see shared reference oci-client-contract.md).
// The only place that reads argv, prints results and decides exit codes; everything else is
// the runtime library.
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { makeContext, type RuntimeContext } from '../../runtime/context.js';
import { OCI_VERSION } from '../../runtime/create.js';
import { execInContainer, type ExecOptions } from '../../runtime/exec.js';
import {
  containerPids,
  deleteContainer,
  getState,
  killContainer,
  listStates,
  pauseContainer,
  resumeContainer,
  startContainer,
} from '../../runtime/lifecycle.js';
import { parseSignal } from '../../runtime/signals.js';
import { DEFAULT_STATE_ROOT } from '../../runtime/state-store.js';
import { parseUserSpec } from '../../runtime/user-spec.js';
import { parseProcess } from '../../spec/load.js';
import { TsrunError } from '../../util/errors.js';
import { CliLogger } from '../../util/log.js';
import { parseGoDuration, resourcesFromUpdateFlags, UPDATE_FLAGS, type UpdateFlags } from './args.js';
import { addCheckpointCommands } from './checkpoint.js';
import { createVerb, runVerb } from './container-verbs.js';
import { runForeground } from './foreground.js';
import { defaultSpec, featuresDocument } from './documents.js';
import { setFatalContext } from './fatal.js';
import { report } from './report.js';
import { psTable } from './ps.js';
import { events, stats } from './stats.js';
import { updateResources } from './update.js';
import { VERSION } from '../version.js';

interface GlobalOpts {
  root: string;
  log?: string;
  logFormat: 'json' | 'text';
  debug: boolean;
  systemdCgroup: boolean;
}

function intOpt(name: string) {
  return (v: string): number => {
    if (!/^\d+$/.test(v)) throw new TsrunError('ERR_INVALID_ARGUMENT', `--${name} must be a non-negative integer, got "${v}"`);
    return Number(v);
  };
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

export async function main(argv: string[]): Promise<number> {
  let exitCode = 0;
  let log = new CliLogger({ format: 'text', debug: false });
  let current = '';
  /** The logger the global flags ask for (--log, --log-format, --debug). */
  const useGlobalLogger = () => {
    const g = program.opts<GlobalOpts>();
    log = new CliLogger({ file: g.log, format: g.logFormat, debug: g.debug });
    setFatalContext({ error: (l) => log.error(l), debug: (l) => log.debug(l) });
  };
  const toLogFile = () => !!program.opts<GlobalOpts>().log;
  const program = new Command('tsrun-oci');
  program
    .description('tsrun OCI runtime: a drop-in for runc')
    .option('--root <dir>', 'state directory', DEFAULT_STATE_ROOT)
    .option('--log <file>', 'append log lines to this file')
    .addOption(new Option('--log-format <format>', 'log format').choices(['json', 'text']).default('text'))
    .option('--debug', 'debug logging', false)
    .option('--systemd-cgroup', 'cgroupsPath is slice:prefix:name', false)
    .addOption(new Option('--criu <path>').hideHelp())
    .addOption(new Option('--rootless <value>').hideHelp())
    .version(`tsrun-oci version ${VERSION}\ncommit: ${VERSION}\nspec: ${OCI_VERSION}`, '-v, --version')
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  let ctx: RuntimeContext | undefined;
  const context = (): RuntimeContext => {
    const g = program.opts<GlobalOpts>();
    ctx ??= makeContext(resolve(g.root), { systemdCgroup: g.systemdCgroup, log });
    return ctx;
  };
  // Every action runs through here: one place maps errors to exit codes.
  const act =
    <A extends unknown[]>(name: string, fn: (...a: A) => Promise<number | void> | number | void) =>
    async (...a: A) => {
      current = name;
      setFatalContext({ verb: name });
      try {
        const r = await fn(...a);
        exitCode = typeof r === 'number' ? r : 0;
      } catch (e) {
        exitCode = report(log, e, name, toLogFile());
      }
    };
  program.hook('preAction', useGlobalLogger);

  /** The options `create` and `run` share (runc's). */
  const containerOptions = (c: Command) =>
    c
      .argument('<id>')
      .option('-b, --bundle <dir>', 'bundle directory', '.')
      .option('--pid-file <file>', 'write the container pid here')
      .option('--console-socket <path>', 'send the pty master to this AF_UNIX socket')
      .option('--preserve-fds <n>', 'pass fds 3..3+n-1 to the container', intOpt('preserve-fds'), 0)
      .option('--no-pivot', 'use MS_MOVE+chroot instead of pivot_root')
      .option('--no-new-keyring', 'accepted for compatibility');

  containerOptions(program.command('create').description('create a container; its process waits for `start`')).action(
    act('create', (id: string, o: { bundle: string; pidFile?: string; consoleSocket?: string; preserveFds: number; pivot: boolean }) =>
      createVerb(context(), id, { bundle: o.bundle, pidFile: o.pidFile, consoleSocket: o.consoleSocket, preserveFds: o.preserveFds, noPivot: !o.pivot }),
    ),
  );

  containerOptions(program.command('run').description('create and start a container, and wait for it unless --detach'))
    .option('-d, --detach', 'do not wait for the container', false)
    .option('--keep', 'do not delete the container after it exits', false)
    .action(
      act(
        'run',
        (id: string, o: { bundle: string; pidFile?: string; consoleSocket?: string; preserveFds: number; detach: boolean; pivot: boolean; keep: boolean }) =>
          runVerb(context(), log, id, {
            bundle: o.bundle,
            pidFile: o.pidFile,
            consoleSocket: o.consoleSocket,
            preserveFds: o.preserveFds,
            noPivot: !o.pivot,
            detach: o.detach,
            keep: o.keep,
          }),
      ),
    );

  program
    .command('start')
    .argument('<id>')
    .description('start the process of a created container')
    .action(act('start', async (id: string) => startContainer(context(), id)));

  program
    .command('state')
    .argument('<id>')
    .description('print the state of a container as JSON')
    .action(
      act('state', (id: string) => {
        process.stdout.write(`${JSON.stringify(getState(context(), id), null, 2)}\n`);
      }),
    );

  program
    .command('kill')
    .argument('<id>')
    .argument('[signal]', 'number or name', 'SIGTERM')
    .option('-a, --all', 'signal every process in the container', false)
    .description('send a signal to the container init (or all its processes)')
    .action(act('kill', (id: string, sig: string, o: { all: boolean }) => killContainer(context(), id, parseSignal(sig), o.all)));

  program
    .command('delete')
    .argument('<id>')
    .option('-f, --force', 'kill a running container first; succeed if it does not exist', false)
    .description('remove a container and everything tsrun made for it')
    .action(act('delete', async (id: string, o: { force: boolean }) => deleteContainer(context(), id, o.force)));

  program
    .command('pause')
    .argument('<id>')
    .description('freeze every process of the container (cgroup.freeze)')
    .action(act('pause', (id: string) => pauseContainer(context(), id)));

  program
    .command('resume')
    .argument('<id>')
    .description('thaw a paused container')
    .action(act('resume', (id: string) => resumeContainer(context(), id)));

  program
    .command('ps')
    .argument('<id>')
    .argument('[ps-options...]', 'options for ps(1), default -ef (runc: everything after the id goes to ps)')
    .addOption(new Option('-f, --format <format>').choices(['table', 'json']).default('table'))
    .passThroughOptions()
    .description('list the processes of a container: ps(1) output filtered to them, or their pids as JSON')
    .action(
      act('ps', (id: string, psArgs: string[], o: { format: string }) => {
        const pids = containerPids(context(), id);
        if (o.format === 'json') {
          process.stdout.write(`${JSON.stringify(pids)}\n`);
          return;
        }
        process.stdout.write(psTable(pids ?? [], psArgs));
      }),
    );

  program
    .command('list')
    .alias('ls')
    .addOption(new Option('-f, --format <format>').choices(['table', 'json']).default('table'))
    .option('-q, --quiet', 'ids only', false)
    .description('list containers')
    .action(
      act('list', (o: { format: string; quiet: boolean }) => {
        const states = listStates(context());
        if (o.quiet) process.stdout.write(states.map((s) => `${s.id}\n`).join(''));
        else if (o.format === 'json') process.stdout.write(`${JSON.stringify(states)}\n`);
        else {
          const rows = states.map((s) => [s.id, String(s.pid), s.status, s.bundle, s.created ?? '', s.owner ?? ''].join('\t'));
          process.stdout.write(['ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER', ...rows].join('\n') + '\n');
        }
      }),
    );

  program
    .command('exec')
    .argument('<id>')
    .argument('[command...]')
    .option('-p, --process <file>', 'a JSON OCI Process to run')
    .option('-d, --detach', 'do not wait for the process', false)
    .option('--pid-file <file>', 'write the process pid here')
    .option('-t, --tty', 'allocate a pseudo-terminal', false)
    .option('--console-socket <path>', 'send the pty master to this AF_UNIX socket')
    .option('--cwd <dir>', 'working directory in the container')
    .option('-e, --env <KEY=VALUE>', 'set an environment variable (repeatable)', collect, [])
    .option('-u, --user <uid[:gid]>', 'numeric user (and group)')
    .option('-g, --additional-gids <gid>', 'additional group (repeatable)', collect, [])
    .option('--preserve-fds <n>', 'pass fds 3..3+n-1 to the process', intOpt('preserve-fds'), 0)
    .option('--no-new-privs', 'set no_new_privs')
    .passThroughOptions()
    .description('run a new process inside a running container')
    .action(
      act(
        'exec',
        async (
          id: string,
          command: string[],
          o: {
            process?: string;
            detach: boolean;
            pidFile?: string;
            tty: boolean;
            consoleSocket?: string;
            cwd?: string;
            env: string[];
            user?: string;
            additionalGids: string[];
            preserveFds: number;
            newPrivs?: boolean;
          },
        ) => {
          const c = context();
          const opts: ExecOptions = { id, detach: o.detach, pidFile: o.pidFile, consoleSocket: o.consoleSocket, preserveFds: o.preserveFds };
          if (o.process) {
            let text: string;
            try {
              text = readFileSync(o.process, 'utf8');
            } catch (e) {
              throw new TsrunError('ERR_INVALID_ARGUMENT', `read --process "${o.process}": ${(e as Error).message}`);
            }
            const { process: p, warnings } = parseProcess(text);
            for (const w of warnings) log.debug(w);
            opts.process = p;
          } else {
            if (!command.length) throw new TsrunError('ERR_INVALID_ARGUMENT', 'exec needs a command or --process');
            opts.overrides = {
              args: command,
              tty: o.tty,
              ...(o.cwd ? { cwd: o.cwd } : {}),
              ...(o.env.length ? { env: o.env } : {}),
              ...(o.user ? { user: parseUserSpec(o.user) } : {}),
              ...(o.additionalGids.length ? { additionalGids: o.additionalGids.map((g) => parseUserSpec(g).uid) } : {}),
              ...(o.newPrivs === false ? { noNewPrivileges: true } : {}),
            };
          }
          const r = await execInContainer(c, opts);
          if (o.detach) return 0;
          return runForeground(r.pid, r.consoleFd);
        },
      ),
    );

  const update = program
    .command('update')
    .argument('<id>')
    .option('-r, --resources <file>', 'LinuxResources JSON file, or - for stdin (the other flags are then ignored)');
  for (const f of UPDATE_FLAGS) update.addOption(f.hidden ? new Option(`--${f.flag} <value>`).hideHelp() : new Option(`--${f.flag} <value>`, f.help));
  update
    .description('change the resource limits of a running container')
    .action(act('update', (id: string, o: { resources?: string } & UpdateFlags) => updateResources(context(), id, o.resources, resourcesFromUpdateFlags(o))));

  program
    .command('events')
    .argument('<id>')
    .option('--stats', 'print one stats line and exit', false)
    .option('--interval <duration>', 'time between stats lines, a Go duration: 5s, 1m30s, 500ms', '5s')
    .description("print the container's cgroup statistics as JSON lines (runc's format)")
    .action(
      act('events', (id: string, o: { stats: boolean; interval: string }) => {
        let ms: number;
        try {
          ms = parseGoDuration(o.interval);
        } catch (e) {
          throw new TsrunError('ERR_INVALID_ARGUMENT', `--interval: ${(e as Error).message}`);
        }
        if (!(ms > 0)) throw new TsrunError('ERR_INVALID_ARGUMENT', `duration interval must be greater than 0, got "${o.interval}"`);
        // setTimeout's range: about 24.8 days.
        return events(context(), id, o.stats, Math.min(ms, 2 ** 31 - 1), (l) => process.stdout.write(l));
      }),
    );

  program
    .command('stats')
    .argument('<id>')
    .description('show the limits in force and what the container uses (memory, OOM kills, cpu, pids, io, pressure)')
    .action(
      act('stats', (id: string) => {
        process.stdout.write(stats(context(), id));
      }),
    );

  addCheckpointCommands(program, act, context);

  program
    .command('features')
    .description('print what this runtime supports (runtime-spec features.md)')
    .action(
      act('features', () => {
        process.stdout.write(`${JSON.stringify(featuresDocument(), null, 2)}\n`);
      }),
    );

  program
    .command('spec')
    .option('-b, --bundle <dir>', 'where to write config.json', '.')
    .option('--rootless', 'a spec for an unprivileged user', false)
    .description('write a starter config.json')
    .action(
      act('spec', (o: { bundle: string; rootless: boolean }) => {
        const path = resolve(o.bundle, 'config.json');
        if (existsSync(path)) throw new TsrunError('ERR_INVALID_ARGUMENT', `File ${path} exists. Remove it first`);
        writeFileSync(path, `${JSON.stringify(defaultSpec(o.rootless), null, 2)}\n`);
      }),
    );

  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
      return 2;
    }
    // An option that failed to parse (before preAction): still honour --log.
    try {
      useGlobalLogger();
    } catch {
      /* keep the plain logger */
    }
    return report(log, e, current, toLogFile());
  }
  return exitCode;
}
