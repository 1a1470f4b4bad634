// `tsrun-oci checkpoint` and `tsrun-oci restore`: runc's flags, as Podman (directly, and through
// conmon's `--restore`) and containerd pass them. The work is src/runtime/checkpoint.ts.
import { resolve } from 'node:path';
import { type Command, Option } from 'commander';
import { checkpointContainer, restoreContainer } from '../../runtime/checkpoint.js';
import type { RuntimeContext } from '../../runtime/context.js';
import { deleteContainer } from '../../runtime/lifecycle.js';
import { TsrunError } from '../../util/errors.js';
import { runForeground } from './foreground.js';

type Act = <A extends unknown[]>(name: string, fn: (...a: A) => Promise<number | void> | number | void) => (...a: A) => Promise<void>;

const collect = (v: string, prev: string[] = []) => [...prev, v];

interface Common {
  imagePath?: string;
  workPath?: string;
  tcpEstablished: boolean;
  extUnixSk: boolean;
  shellJob: boolean;
  fileLocks: boolean;
  autoDedup: boolean;
  lazyPages: boolean;
  manageCgroupsMode?: string;
  emptyNs: string[];
  networkLockMethod?: string;
}

/** Flags both verbs have (runc's checkpoint.go / restore.go). */
function commonOptions(c: Command): Command {
  return c
    .option('--image-path <dir>', 'directory of the criu image files (default: ./checkpoint)')
    .option('--work-path <dir>', "directory for criu's work files and log (default: the image path)")
    .option('--tcp-established', 'allow open tcp connections', false)
    .option('--ext-unix-sk', 'allow external unix sockets', false)
    .option('--shell-job', 'allow shell jobs', false)
    .option('--file-locks', 'handle file locks, for safety', false)
    .option('--auto-dedup', 'enable auto deduplication of memory images', false)
    .option('--lazy-pages', 'restore memory pages lazily (not supported)', false)
    .option('--manage-cgroups-mode <mode>', 'cgroups mode: soft (default), full, strict or ignore')
    .option('--empty-ns <ns>', 'create a namespace but do not restore its properties (network)', collect, [])
    .option('--network-lock-method <method>', "how criu locks the network: nftables (default) or iptables (criu's default)");
}

function commonValues(o: Common, criu: string | undefined) {
  if (o.lazyPages) throw new TsrunError('ERR_UNSUPPORTED', '--lazy-pages is not supported by tsrun (it needs criu lazy-pages and a page server)');
  return {
    imagePath: resolve(o.imagePath ?? 'checkpoint'),
    workPath: o.workPath,
    tcpEstablished: o.tcpEstablished,
    extUnixSk: o.extUnixSk,
    shellJob: o.shellJob,
    fileLocks: o.fileLocks,
    autoDedup: o.autoDedup,
    manageCgroupsMode: o.manageCgroupsMode,
    emptyNs: o.emptyNs,
    networkLock: o.networkLockMethod,
    criu,
  };
}

export function addCheckpointCommands(program: Command, act: Act, context: () => RuntimeContext): void {
  const criu = () => (program.opts() as { criu?: string }).criu;

  commonOptions(program.command('checkpoint').argument('<id>'))
    .option('--parent-path <dir>', 'previous criu images (pre-dump), relative to --image-path')
    .option('--leave-running', 'leave the process running after checkpointing', false)
    .option('--pre-dump', "dump the container's memory only, leave it running", false)
    .addOption(new Option('--page-server <address:port>', 'not supported').hideHelp())
    .addOption(new Option('--status-fd <fd>', 'not supported').hideHelp())
    .description('checkpoint a running container with CRIU; it is stopped afterwards unless --leave-running')
    .action(
      act(
        'checkpoint',
        async (id: string, o: Common & { parentPath?: string; leaveRunning: boolean; preDump: boolean; pageServer?: string; statusFd?: string }) => {
          if (o.pageServer) throw new TsrunError('ERR_UNSUPPORTED', '--page-server is not supported by tsrun');
          if (o.statusFd !== undefined) throw new TsrunError('ERR_UNSUPPORTED', '--status-fd is not supported by tsrun (it is for --lazy-pages)');
          await checkpointContainer(context(), { id, ...commonValues(o, criu()), parentPath: o.parentPath, leaveRunning: o.leaveRunning, preDump: o.preDump });
        },
      ),
    );

  commonOptions(program.command('restore').argument('<id>'))
    .option('-b, --bundle <dir>', 'bundle directory', '.')
    .option('-d, --detach', 'detach from the restored container', false)
    .option('--pid-file <file>', 'write the restored init pid here')
    .option('--console-socket <path>', 'AF_UNIX socket for the pty master (terminals are not supported)')
    .option('--no-pivot', 'accepted for compatibility (criu sets up the root)')
    .option('--no-new-keyring', 'accepted for compatibility')
    .option('--no-subreaper', 'accepted for compatibility')
    .option('--lsm-profile <type:label>', 'LSM profile for the restored processes (criu --lsm-profile)')
    .option('--lsm-mount-context <context>', 'SELinux mount context (criu --lsm-mount-context)')
    .description('restore a container from a checkpoint made by `checkpoint`')
    .action(
      act(
        'restore',
        async (
          id: string,
          o: Common & { bundle: string; detach: boolean; pidFile?: string; consoleSocket?: string; lsmProfile?: string; lsmMountContext?: string },
        ) => {
          const c = context();
          const r = await restoreContainer(c, {
            id,
            ...commonValues(o, criu()),
            bundle: o.bundle,
            detach: o.detach,
            pidFile: o.pidFile,
            consoleSocket: o.consoleSocket,
            lsmProfile: o.lsmProfile,
            lsmMountContext: o.lsmMountContext,
          });
          if (o.detach) return 0;
          // criu restored the init as our child (--restore-sibling): wait for it, as `run` does.
          const code = await runForeground(r.pid, -1);
          await deleteContainer(c, id, true);
          return code;
        },
      ),
    );
}
