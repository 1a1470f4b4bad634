// tsrun: the engine CLI. Image commands over the content store (pull, images, rmi, inspect,
// prune, load, save, login/logout); `tsrun oci …` reaches the runtime. The only place in the
// engine that prints or decides exit codes.
import { readFileSync } from 'node:fs';
import type { SaveFormat } from '../../image/archive/save.js';
import { FRESH_MS } from '../../image/gc.js';
import { Command, CommanderError, Option } from 'commander';
import { inspectImage, listImages } from '../../image/inspect.js';
import { parseReference } from '../../image/reference.js';
import { DEFAULT_IMAGE_ROOT } from '../../image/store/layout.js';
import { ImageStore } from '../../image/store/store.js';
import { TsrunError } from '../../util/errors.js';
import { type EngineContext, DEFAULT_RUN_ROOT, makeEngineContext } from '../../engine/context.js';
import { findLocalImage } from '../../engine/image-lookup.js';
import { layersInUse, manifestsInUse } from '../../engine/lifecycle.js';
import { registerBuildCommand } from './build.js';
import { registerContainerTools } from './container-tools.js';
import { reportError } from './report.js';
import { type Act, registerContainerCommands } from './containers.js';
import { registerNetworkCommands } from './networks.js';
import { VERSION } from '../version.js';
import { formatBytes, PullProgressView } from './progress.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** `tsrun container VERB` is `tsrun VERB` for docker's container verbs (ls, prune, cleanup are its own). */
const CONTAINER_VERBS = new Set([
  'inspect',
  'start',
  'stop',
  'rm',
  'kill',
  'logs',
  'wait',
  'pause',
  'unpause',
  'restart',
  'attach',
  'exec',
  'create',
  'run',
  'top',
  'stats',
  'cp',
  'diff',
  'commit',
  'port',
]);

/** Index of the subcommand: the first word that is not a global flag or its value. */
function firstVerb(argv: string[]): number {
  let i = 0;
  while (i < argv.length && argv[i]!.startsWith('-')) i += argv[i] === '--root' || argv[i] === '--runroot' ? 2 : 1;
  return i;
}

function normalizeArgv(argv: string[]): string[] {
  const i = firstVerb(argv);
  if (argv[i] === 'container' && CONTAINER_VERBS.has(argv[i + 1] ?? '')) return [...argv.slice(0, i), ...argv.slice(i + 1)];
  return argv;
}

function age(iso: string | undefined): string {
  if (!iso) return '-';
  const s = (Date.now() - Date.parse(iso)) / 1000;
  if (!Number.isFinite(s)) return '-';
  for (const [unit, n] of [
    ['year', 31536000],
    ['month', 2592000],
    ['day', 86400],
    ['hour', 3600],
    ['minute', 60],
  ] as const) {
    if (s >= n) return `${Math.floor(s / n)} ${unit}${Math.floor(s / n) > 1 ? 's' : ''} ago`;
  }
  return 'just now';
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + 2))).join('')).join('\n') + '\n';
}

export async function main(argv: string[]): Promise<number> {
  // Each verb loads what it needs: `run` must not pay for the registry client or the archive code.
  const verbAt = firstVerb(argv);
  if (argv[verbAt] === 'oci') return (await import('../oci/main.js')).main([...argv.slice(0, verbAt), ...argv.slice(verbAt + 1)]);
  let exitCode = 0;
  const program = new Command('tsrun');
  program
    .description('tsrun: containers from images (the engine); `tsrun oci …` is the OCI runtime')
    .option('--root <dir>', 'image store and containers', DEFAULT_IMAGE_ROOT)
    .option('--runroot <dir>', 'runtime state of running containers (a tmpfs)', DEFAULT_RUN_ROOT)
    .enablePositionalOptions()
    .version(`tsrun version ${VERSION}`, '-v, --version')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  const store = () => new ImageStore(program.opts<{ root: string }>().root);
  let engine: EngineContext | undefined;
  const ctxOf = () => {
    const o = program.opts<{ root: string; runroot: string }>();
    engine ??= makeEngineContext({ root: o.root, runRoot: o.runroot, log: { warn: (m) => process.stderr.write(`warning: ${m}\n`), debug: () => {} } });
    return engine;
  };
  const act =
    <A extends unknown[]>(fn: (...a: A) => Promise<number | void> | number | void) =>
    async (...a: A) => {
      try {
        const r = await fn(...a);
        exitCode = typeof r === 'number' ? r : 0;
      } catch (e) {
        exitCode = reportError(e);
      }
    };

  program
    .command('pull')
    .argument('<image>')
    .option('--platform <os/arch[/variant]>', 'pick this platform from a multi-arch image')
    .option('--insecure-registry <host>', 'allow plain http / unverified TLS for this registry (repeatable)', collect, [])
    .option('-q, --quiet', 'print only the image digest', false)
    .description('pull an image from a registry (verified by digest, layers unpacked once)')
    .action(
      act(async (image: string, o: { platform?: string; insecureRegistry: string[]; quiet: boolean }) => {
        const view = new PullProgressView(process.stdout, o.quiet);
        const { pullImage } = await import('../../image/pull.js');
        const r = await pullImage(store(), image, {
          ...(o.platform ? { platform: o.platform } : {}),
          insecureRegistries: o.insecureRegistry,
          onProgress: (e) => view.handle(e),
        });
        if (o.quiet) process.stdout.write(`${r.digest}\n`);
      }),
    );

  program
    .command('tag')
    .argument('<source>')
    .argument('<target>')
    .description('give a stored image another name (busybox finds localhost/busybox, as run does)')
    .action(
      act(async (source: string, target: string) => {
        const { tagImage } = await import('../../image/tag.js');
        await tagImage(store(), source, target);
      }),
    );

  program
    .command('push')
    .argument('<image>')
    .argument('[destination]', 'where to push (default: the name the image is stored under)')
    .option('--insecure-registry <host>', 'allow plain http / unverified TLS for this registry (repeatable)', collect, [])
    .option('-q, --quiet', 'print only the digest', false)
    .description('push an image to a registry (the stored bytes: its digests stay the same)')
    .action(
      act(async (image: string, destination: string | undefined, o: { insecureRegistry: string[]; quiet: boolean }) => {
        const { PushProgressView } = await import('./push-progress.js');
        const { pushImage } = await import('../../image/push.js');
        const view = new PushProgressView(process.stdout, o.quiet);
        const r = await pushImage(store(), image, destination, { insecureRegistries: o.insecureRegistry, onProgress: (e) => view.handle(e) });
        if (o.quiet) process.stdout.write(`${r.digest}\n`);
      }),
    );

  const images = (o: { quiet: boolean; format?: string }) => {
    const rows = listImages(store());
    if (o.quiet) process.stdout.write(rows.map((r) => `${r.id.slice(7, 19)}\n`).join(''));
    else if (o.format === 'json') process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    else {
      process.stdout.write(
        table([
          ['REPOSITORY:TAG', 'IMAGE ID', 'PLATFORM', 'CREATED', 'SIZE'],
          ...rows.map((r) => [r.ref, r.id.slice(7, 19) || '-', r.platform || '-', age(r.created), r.error ? `(${r.error})` : formatBytes(r.size)]),
        ]),
      );
    }
  };
  program
    .command('images')
    .option('-q, --quiet', 'ids only', false)
    .addOption(new Option('--format <format>').choices(['table', 'json']))
    .description('list images')
    .action(act(images));

  const rmi = async (refs: string[], o: { force: boolean }) => {
    for (const ref of refs) {
      const inUse = layersInUse(ctxOf());
      const { removeImage } = await import('../../image/gc.js');
      const r = await removeImage(store(), findLocalImage(store(), ref)?.ref ?? ref, { force: o.force, inUse: (ids) => ids.some((d) => inUse.has(d)) });
      for (const t of r.untagged) process.stdout.write(`untagged: ${t}\n`);
    }
  };
  program
    .command('rmi')
    .argument('<image...>')
    .option('-f, --force', 'remove even if several tags point at it', false)
    .description('remove image tags (space is reclaimed by `tsrun image prune`)')
    .action(act(rmi));

  const prune = async (o: { all: boolean }) => {
    const { pruneImages } = await import('../../image/gc.js');
    const r = await pruneImages(store(), { all: o.all, inUseLayers: layersInUse(ctxOf()), inUseManifests: manifestsInUse(ctxOf()) });
    for (const w of r.warnings) process.stderr.write(`warning: ${w}\n`);
    process.stdout.write(`removed ${r.blobsRemoved} blob(s) and ${r.layersRemoved} layer(s), freed ${formatBytes(r.bytesFreed)}\n`);
    if (r.blobsKeptFresh || r.layersKeptFresh) {
      process.stdout.write(
        `kept ${r.blobsKeptFresh} unused blob(s) and ${r.layersKeptFresh} layer(s) changed in the last ${FRESH_MS / 60_000} minutes (a pull or load may still be tagging them): \`tsrun image prune --all\` removes them\n`,
      );
    }
  };
  const inspect = (refs: string[]) => {
    process.stdout.write(
      `${JSON.stringify(
        refs.map((r) => inspectImage(store(), findLocalImage(store(), r)?.ref ?? r)),
        null,
        2,
      )}\n`,
    );
  };
  const image = program.command('image').description('manage images');
  image
    .command('ls')
    .option('-q, --quiet', 'ids only', false)
    .addOption(new Option('--format <format>').choices(['table', 'json']))
    .action(act(images));
  image.command('inspect').argument('<image...>').description('show an image: manifest, config, layers').action(act(inspect));
  image.command('rm').argument('<image...>').option('-f, --force', '', false).action(act(rmi));
  image
    .command('prune')
    .option('-a, --all', 'also remove blobs and layers changed in the last 10 minutes', false)
    .description('remove blobs and layers no tagged image uses')
    .action(act(prune));
  registerContainerCommands(program, ctxOf, act as Act);
  registerContainerTools(program, ctxOf, act as Act);
  registerBuildCommand(program, ctxOf, act as Act);
  registerNetworkCommands(program, ctxOf, act as Act);

  program
    .command('load')
    .argument('[archive]')
    .option('-i, --input <file>', 'OCI layout dir, oci-archive or docker-save archive')
    .option('-t, --tag <ref>', 'tag the loaded image with this name')
    .description('load images from an archive or OCI layout')
    .action(
      act(async (archive: string | undefined, o: { input?: string; tag?: string }) => {
        const path = o.input ?? archive;
        if (!path) throw new TsrunError('ERR_INVALID_ARGUMENT', 'load needs an archive: tsrun load -i FILE');
        const { loadArchive } = await import('../../image/archive/load.js');
        const r = await loadArchive(store(), path, o.tag ? { tag: o.tag } : {});
        for (const img of r.images) process.stdout.write(`loaded ${img.refs.join(', ') || img.digest} (${img.layers} layer(s), ${r.format})\n`);
      }),
    );

  program
    .command('save')
    .argument('<image...>')
    .option('-o, --output <file>', 'where to write (default: stdout, as docker and podman)')
    .addOption(new Option('--format <format>').choices(['oci-archive', 'docker-archive', 'oci-dir']).default('oci-archive'))
    .description('write images to an archive or OCI layout')
    .action(
      act(async (refs: string[], o: { output?: string; format: SaveFormat }) => {
        const { saveImage } = await import('../../image/archive/save.js');
        const names = refs.map((r) => findLocalImage(store(), r)?.ref ?? r);
        if (o.output) {
          // A path: save writes a temp file and renames it, so a failure never truncates an existing file.
          await saveImage(store(), names, o.output, o.format);
          return;
        }
        if (o.format === 'oci-dir') throw new TsrunError('ERR_INVALID_ARGUMENT', 'save --format oci-dir writes a directory: give it with -o DIR');
        if (process.stdout.isTTY) {
          throw new TsrunError('ERR_INVALID_ARGUMENT', 'refusing to write an image archive to a terminal', {
            hint: 'redirect stdout (tsrun save IMAGE > file.tar) or use -o FILE',
          });
        }
        await saveImage(store(), names, process.stdout, o.format);
      }),
    );

  program
    .command('login')
    .argument('<registry>')
    .requiredOption('-u, --username <name>')
    .option('-p, --password <password>', 'the password (visible to other users in the process list: prefer --password-stdin)')
    .option('--password-stdin', 'read the password from stdin', false)
    .option('--insecure-registry <host>', 'allow plain http / unverified TLS for this registry (repeatable)', collect, [])
    .description(`check credentials with a registry and save them (in <root>/auth.json, mode 0600)`)
    .action(
      act(async (registry: string, o: { username: string; password?: string; passwordStdin: boolean; insecureRegistry: string[] }) => {
        const { normalizeRegistryKey, saveCredentials } = await import('../../image/registry/credentials.js');
        const password = o.passwordStdin ? readFileSync(0, 'utf8').replace(/\r?\n$/, '') : o.password;
        if (!password) throw new TsrunError('ERR_INVALID_ARGUMENT', 'login needs a password: --password-stdin or -p');
        // As docker does: the registry must accept them first (nothing is saved otherwise).
        const { checkLogin } = await import('../../image/registry/client.js');
        await checkLogin(registry, { username: o.username, password }, { insecureRegistries: o.insecureRegistry });
        const where = saveCredentials(normalizeRegistryKey(registry), { username: o.username, password }, { imageRoot: program.opts<{ root: string }>().root });
        process.stdout.write(`Login Succeeded\ncredentials for ${registry} saved in ${where}\n`);
      }),
    );

  program
    .command('logout')
    .argument('<registry>')
    .description('forget the credentials saved for a registry')
    .action(
      act(async (registry: string) => {
        const { normalizeRegistryKey, removeCredentials } = await import('../../image/registry/credentials.js');
        const removed = removeCredentials(normalizeRegistryKey(registry), { imageRoot: program.opts<{ root: string }>().root });
        process.stdout.write(removed ? `removed credentials for ${registry}\n` : `no credentials saved for ${registry}\n`);
      }),
    );

  program
    .command('normalize')
    .argument('<image>')
    .description('print the canonical name of an image reference')
    .action(
      act((ref: string) => {
        process.stdout.write(`${parseReference(ref).canonical}\n`);
      }),
    );

  try {
    await program.parseAsync(normalizeArgv(argv), { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) return e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help' ? 0 : 125; // docker: a usage error is 125
    return reportError(e);
  }
  return exitCode;
}
