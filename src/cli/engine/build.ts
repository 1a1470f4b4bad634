// `tsrun build`, as `docker build` and `podman build` take it; prints each step as podman does
// (STEP 3/7: RUN …, "--> Using cache", the RUN's own output), then the image id.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import type { BuildEvent } from '../../build/builder.js';
import type { EngineContext } from '../../engine/context.js';
import { TsrunError } from '../../util/errors.js';
import type { Act } from './containers.js';
import { PullProgressView } from './progress.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

interface BuildFlags {
  file?: string;
  tag: string[];
  buildArg: string[];
  target?: string;
  platform?: string;
  cache: boolean;
  pull?: boolean;
  network?: string;
  label: string[];
  output?: string;
  quiet?: boolean;
}

function pairs(flag: string, list: string[], fromEnv: boolean): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list) {
    const i = kv.indexOf('=');
    if (i === 0) throw new TsrunError('ERR_INVALID_ARGUMENT', `${flag} ${kv}: expected KEY=VALUE`);
    if (i < 0) {
      // --build-arg NAME: the value of NAME in our environment, as docker does
      const v = fromEnv ? process.env[kv] : undefined;
      if (v !== undefined) out[kv] = v;
      continue;
    }
    out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}

function containerfile(context: string, file: string | undefined): string {
  const path = file ? resolve(file) : ['Containerfile', 'Dockerfile'].map((n) => join(context, n)).find((p) => existsSync(p));
  if (!path) throw new TsrunError('ERR_INVALID_ARGUMENT', `no Containerfile or Dockerfile in ${context}`, { hint: 'give one with -f FILE' });
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new TsrunError('ERR_INVALID_ARGUMENT', `-f ${path}: ${(e as Error).message}`);
  }
}

function parseOutput(v: string): string {
  const kv = Object.fromEntries(v.split(',').map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)]));
  if (kv.type !== 'oci-archive' || !kv.dest) throw new TsrunError('ERR_INVALID_ARGUMENT', `--output ${v}: supported is type=oci-archive,dest=FILE`);
  return kv.dest;
}

export function registerBuildCommand(program: Command, ctxOf: () => EngineContext, act: Act): void {
  program
    .command('build')
    .argument('<context>', 'the build context directory')
    .option('-f, --file <file>', 'the Containerfile (default: CONTEXT/Containerfile, else CONTEXT/Dockerfile)')
    .option('-t, --tag <name>', 'name the image (repeatable)', collect, [])
    .option('--build-arg <k=v>', 'set a build argument (repeatable)', collect, [])
    .option('--target <stage>', 'build up to this stage')
    .option('--platform <os/arch>', 'the platform of FROM images')
    .option('--no-cache', 'run every step, reuse no layer')
    .option('--pull', 'pull FROM images even when they are in the store')
    .option('--network <net>', 'RUN’s network: bridge (default: the default network), a network name, none or host')
    .option('--label <k=v>', 'a label on the image (repeatable)', collect, [])
    .option('--output <spec>', 'also write the image: type=oci-archive,dest=FILE')
    .option('-q, --quiet', 'print only the image id')
    .description('build an image from a Containerfile (Dockerfile)')
    .action(
      act(async (contextDir: string, o: BuildFlags) => {
        const ctx = ctxOf();
        const epochText = process.env.SOURCE_DATE_EPOCH;
        const epoch = epochText === undefined || epochText === '' ? undefined : Number(epochText);
        if (epoch !== undefined && !(Number.isInteger(epoch) && epoch >= 0))
          throw new TsrunError('ERR_INVALID_ARGUMENT', `SOURCE_DATE_EPOCH=${epochText}: seconds since the epoch`);
        const dest = o.output ? parseOutput(o.output) : undefined;
        if (!existsSync(contextDir)) throw new TsrunError('ERR_INVALID_ARGUMENT', `build context ${resolve(contextDir)}: no such directory`);
        const say = (s: string) => {
          if (!o.quiet) process.stdout.write(s);
        };
        const onEvent = (e: BuildEvent) => {
          if (e.kind === 'step') say(`STEP ${e.n}/${e.total}: ${e.text}\n`);
          else if (e.kind === 'cached') say(`--> Using cache ${e.layer.slice(7, 19)}\n`);
          else if (e.kind === 'layer') say(`--> ${e.layer.slice(7, 19)}\n`);
          else if (e.kind === 'done') {
            for (const t of e.tags) say(`Successfully tagged ${t}\n`);
          }
        };
        const { buildImage, buildNetwork } = await import('../../build/builder.js');
        const network = buildNetwork(ctx, o.network ?? 'bridge', '--network');
        // ^C ends the build cleanly: the running step's container is killed, its mounts removed.
        const abort = new AbortController();
        const onSignal = () => abort.abort();
        for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, onSignal);
        const r = await buildImage(ctx, {
          signal: abort.signal,
          contextDir,
          containerfile: containerfile(resolve(contextDir), o.file),
          tags: o.tag,
          buildArgs: pairs('--build-arg', o.buildArg, true),
          ...(o.target ? { target: o.target } : {}),
          ...(o.platform ? { platform: o.platform } : {}),
          noCache: o.cache === false,
          pull: o.pull === true,
          network,
          labels: pairs('--label', o.label, false),
          ...(epoch !== undefined ? { sourceDateEpoch: epoch } : {}),
          output: { out: o.quiet ? 2 : 1, err: 2 },
          pullImage: async (ref, platform) => {
            const view = new PullProgressView(process.stderr, false);
            const { pullImage } = await import('../../image/pull.js');
            await pullImage(ctx.images, ref, { ...(platform ? { platform } : {}), onProgress: (ev) => view.handle(ev) });
          },
          onEvent,
        }).finally(() => {
          for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(sig, onSignal);
        });
        if (dest) {
          const { saveImage } = await import('../../image/archive/save.js');
          let ref = r.tags[0];
          const temp = ref === undefined;
          if (temp) {
            ref = `localhost/tsrun-build-output:${r.id.slice(7, 19)}`;
            await ctx.images.setTag(ref, { digest: r.manifestDigest });
          }
          try {
            await saveImage(ctx.images, [ref!], dest, 'oci-archive');
          } finally {
            if (temp) await ctx.images.removeTag(ref!);
          }
        }
        process.stdout.write(`${r.id}\n`);
        return 0;
      }),
    );
}
