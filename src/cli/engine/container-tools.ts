// The container verbs that look inside or around a container: top, stats, cp, diff, commit,
// plus system df, info and volumes. Printing only; the work is in src/engine and src/image.
import { statSync } from 'node:fs';
import { join, posix } from 'node:path';
import type { Command } from 'commander';
import type { ContainerRecord } from '../../engine/container-store.js';
import { containerState } from '../../engine/container-state.js';
import type { EngineContext } from '../../engine/context.js';
import { ETC_FILES } from '../../engine/etc-files.js';
import { formatHostInfo, hostInfo } from '../../engine/host-info.js';
import { volumeUsers } from '../../engine/lifecycle.js';
import { sample, statsRow, type StatsRow } from '../../engine/stats.js';
import { dirSize } from '../../engine/volumes.js';
import { isRootfsMounted, mountRootfs } from '../../image/rootfs.js';
import { containerPids } from '../../runtime/lifecycle.js';
import { TsrunError } from '../../util/errors.js';
import { lazyRequire } from '../../util/lazy-require.js';
import type { Act } from './containers.js';
import { formatAll } from './go-template.js';
import { formatBytes } from './progress.js';
import { table } from './table.js';

const out = (s: string) => process.stdout.write(s);
const collect = (v: string, prev: string[] = []) => [...prev, v];

function running(ctx: EngineContext, ref: string): ContainerRecord {
  const rec = ctx.containers.resolve(ref);
  const st = containerState(ctx, rec);
  if (st.status !== 'running' && st.status !== 'paused')
    throw new TsrunError('ERR_CONTAINER_NOT_RUNNING', `container ${rec.name} is ${st.status}, not running`);
  return rec;
}

/** The container's root, mounted if it was unmounted since it stopped. */
function rootOf(ctx: EngineContext, rec: ContainerRecord): string {
  if (!isRootfsMounted(ctx.images, rec.id)) mountRootfs(ctx.images, rec.id, rec.diffIds, { existingDir: true });
  return join(ctx.containers.dir(rec.id), 'merged');
}

/**
 * Where a container path lives for `cp`: under one of its bind or volume mounts (the longest
 * that covers it: the mount's source is then the root), else in its root filesystem. A path
 * reaching a mount only through a symlink is not followed into it (the root's view is used).
 */
function cpTarget(ctx: EngineContext, rec: ContainerRecord, path: string): { root: string; rel: string } {
  const abs = posix.normalize(`/${path}`);
  const covering = rec.mounts
    .filter((m) => m.type !== 'tmpfs' && (abs === m.destination || abs.startsWith(`${m.destination}/`)))
    .filter((m) => {
      try {
        return statSync(m.source).isDirectory();
      } catch {
        return false;
      }
    })
    .sort((a, b) => b.destination.length - a.destination.length)[0];
  if (!covering) return { root: rootOf(ctx, rec), rel: path };
  // keep a trailing "/" or "/." (docker's "contents of" and "must be a directory" forms)
  const tail = path.endsWith('/.') ? '/.' : path.endsWith('/') ? '/' : '';
  const rest = abs.slice(covering.destination.length).replace(/^\/+/, '');
  return { root: covering.source, rel: `${rest}${tail}` || '.' };
}

function splitCpArg(a: string): { container?: string; path: string } {
  const i = a.indexOf(':');
  if (i <= 0 || a.startsWith('/') || a.startsWith('.')) return { path: a };
  return { container: a.slice(0, i), path: a.slice(i + 1) };
}

/** The container's own mount points: made by the runtime in the upper dir, never its content (docker's init layer). */
function mountPoints(rec: ContainerRecord): (path: string) => boolean {
  const dests = new Set<string>([...rec.mounts.map((m) => m.destination), ...ETC_FILES]);
  return (p) => dests.has(p);
}

const pct = (n: number | null) => (n === null ? '--' : `${n.toFixed(2)}%`);

function statsTable(rows: StatsRow[]): string {
  return table([
    ['CONTAINER ID', 'NAME', 'CPU %', 'MEM USAGE / LIMIT', 'MEM %', 'PIDS', 'BLOCK I/O', 'THROTTLED', 'OOM KILLS'],
    ...rows.map((r) => [
      r.ID,
      r.Name,
      pct(r.CPUPerc),
      `${formatBytes(r.MemUsage)} / ${r.MemLimit === null ? 'unlimited' : formatBytes(r.MemLimit)}`,
      pct(r.MemPerc),
      `${r.PIDs}${r.PidsLimit === null ? '' : ` / ${r.PidsLimit}`}`,
      `${formatBytes(r.BlockRead)} / ${formatBytes(r.BlockWrite)}`,
      `${r.ThrottledPeriods} (${(r.ThrottledUsec / 1e6).toFixed(2)} s)`,
      String(r.OOMKills),
    ]),
  ]);
}

export function registerContainerTools(program: Command, ctxOf: () => EngineContext, act: Act): void {
  program
    .command('top')
    .argument('<container>')
    .argument('[ps-options...]')
    .description('the processes of a container (ps on the host, limited to its cgroup)')
    .action(
      act((ref: string, psOpts: string[]) => {
        const ctx = ctxOf();
        const rec = running(ctx, ref);
        const pids = containerPids(ctx.runtime, rec.id) ?? [];
        if (!pids.length) return 0;
        const opts = psOpts.length ? psOpts : ['-o', 'user,pid,ppid,c,stime,tty,time,cmd'];
        const { execFileSync } = lazyRequire<typeof import('node:child_process')>('node:child_process');
        out(execFileSync('ps', [...opts, '-p', pids.join(',')], { encoding: 'utf8' }));
        return 0;
      }),
    );

  program
    .command('stats')
    .argument('[container...]')
    .option('--no-stream', 'one sample and exit (the default when stdout is not a terminal)')
    .option('-a, --all', 'also stopped containers')
    .option('--format <format>', 'json, or a Go template ({{.Name}} {{.CPUPerc}} {{.MemUsage}} …)')
    .description('live CPU, memory, pids, IO, throttling, OOM kills and pressure, from the cgroups')
    .action(
      act(async (refs: string[], o: { stream: boolean; all?: boolean; format?: string }) => {
        const ctx = ctxOf();
        const pick = () =>
          refs.length ? refs.map((r) => ctx.containers.resolve(r)) : ctx.containers.all().filter((r) => o.all || containerState(ctx, r).running);
        const live = o.stream && process.stdout.isTTY === true && !o.format;
        for (;;) {
          const recs = pick();
          const first = recs.map((r) => sample(ctx, r));
          await new Promise((r) => setTimeout(r, 500));
          const rows = recs.map((r, i) => statsRow(r, first[i]!, sample(ctx, r)));
          const text = o.format === 'json' ? rows.map((r) => `${JSON.stringify(r)}\n`).join('') : formatAll(o.format, rows, () => statsTable(rows));
          if (!live) return void out(text);
          out(`\x1b[2J\x1b[H${text}`);
          await new Promise((r) => setTimeout(r, 500));
        }
      }),
    );

  program
    .command('cp')
    .argument('<src>', 'CONTAINER:PATH or a host path')
    .argument('<dest>', 'CONTAINER:PATH or a host path')
    .option('-a, --archive', 'keep uid/gid of the copied files (else they belong to root in the container)')
    .option('-L, --follow-link', 'follow a symlink given as the source')
    .description('copy files between a container and the host (in-root, never through a symlink out)')
    .action(
      act(async (src: string, dest: string, o: { archive?: boolean; followLink?: boolean }) => {
        const ctx = ctxOf();
        const s = splitCpArg(src);
        const d = splitCpArg(dest);
        const { copyIn, copyOut } = await import('../../linux/in-root.js');
        if (s.container && !d.container) {
          const t = cpTarget(ctx, ctx.containers.resolve(s.container), s.path);
          await copyOut(t.root, t.rel, d.path, { followLink: o.followLink === true });
        } else if (d.container && !s.container) {
          const t = cpTarget(ctx, ctx.containers.resolve(d.container), d.path);
          await copyIn(s.path, t.root, t.rel, {
            followLink: o.followLink === true,
            ...(o.archive ? {} : { owner: { uid: 0, gid: 0 } }),
          });
        } else {
          throw new TsrunError(
            'ERR_INVALID_ARGUMENT',
            'cp copies between a container and the host: one of SRC and DEST must be CONTAINER:PATH, the other a host path',
          );
        }
        return 0;
      }),
    );

  program
    .command('diff')
    .argument('<container>')
    .description('files added (A), changed (C) and deleted (D) in the container, against its image')
    .action(
      act(async (ref: string) => {
        const ctx = ctxOf();
        const rec = ctx.containers.resolve(ref);
        const { diffUpperDir } = await import('../../image/diff.js');
        const lowers = rec.diffIds.map((d) => ctx.images.layout.layerRoot(d)).reverse();
        for (const c of diffUpperDir(join(ctx.containers.dir(rec.id), 'upper'), lowers, { exclude: mountPoints(rec) })) out(`${c.kind} ${c.path}\n`);
        return 0;
      }),
    );

  program
    .command('commit')
    .argument('<container>')
    .argument('[image]')
    .option('-a, --author <name>', 'author of the new image')
    .option('-m, --message <text>', 'commit message')
    .option('-c, --change <instruction>', 'CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE, VOLUME, STOPSIGNAL (repeatable)', collect, [])
    .option('-p, --pause', 'pause the container while committing (default: not paused, as podman)')
    .description("make an image from the container's changes (its upper layer as a new layer)")
    .action(
      act(async (ref: string, image: string | undefined, o: { author?: string; message?: string; change: string[]; pause?: boolean }) => {
        const ctx = ctxOf();
        const rec = ctx.containers.resolve(ref);
        const { commitContainer } = await import('../../image/commit.js');
        const { parseChanges } = await import('../../engine/commit-changes.js');
        const st = containerState(ctx, rec);
        const pause = o.pause === true && st.status === 'running';
        const { pauseContainer, resumeContainer } = await import('../../runtime/lifecycle.js');
        if (pause) pauseContainer(ctx.runtime, rec.id);
        try {
          const r = await commitContainer(ctx.images, {
            base: rec.manifestDigest,
            upperDir: join(ctx.containers.dir(rec.id), 'upper'),
            ...(image ? { ref: image } : {}),
            ...(o.author ? { author: o.author } : {}),
            ...(o.message ? { message: o.message } : {}),
            createdBy: rec.args.join(' '),
            changes: parseChanges(o.change),
            pack: { exclude: mountPoints(rec) },
          });
          out(`${r.id}\n`);
        } finally {
          if (pause) resumeContainer(ctx.runtime, rec.id);
        }
        return 0;
      }),
    );

  const system = program.command('system').description('tsrun itself: disk use, host support');
  system
    .command('df')
    .option('--format <format>', 'json')
    .description('disk used by images, containers and volumes')
    .action(
      act(async () => {
        const ctx = ctxOf();
        const { listImages } = await import('../../image/inspect.js');
        const images = listImages(ctx.images);
        const imageBytes = dirSize(join(ctx.root, 'layers'));
        const containers = ctx.containers.all();
        const ctrBytes = containers.reduce((n, c) => n + dirSize(join(ctx.containers.dir(c.id), 'upper')), 0);
        const active = containers.filter((c) => containerState(ctx, c).running).length;
        const vols = ctx.volumes.list();
        const volBytes = vols.reduce((n, v) => n + ctx.volumes.size(v.Name), 0);
        const inUse = vols.filter((v) => volumeUsers(ctx, v.Name).length).length;
        out(
          table([
            ['TYPE', 'TOTAL', 'ACTIVE', 'SIZE'],
            ['Images', String(images.length), String(new Set(containers.map((c) => c.imageId)).size), formatBytes(imageBytes)],
            ['Containers', String(containers.length), String(active), formatBytes(ctrBytes)],
            ['Local Volumes', String(vols.length), String(inUse), formatBytes(volBytes)],
          ]),
        );
        return 0;
      }),
    );
  const info = (o: { format?: string }) => {
    const i = hostInfo();
    out(o.format === 'json' ? `${JSON.stringify(i, null, 2)}\n` : formatHostInfo(i));
    return 0;
  };
  system.command('info').option('--format <format>', 'json').action(act(info));
  program.command('info').option('--format <format>', 'json').description('what this host supports, and what tsrun will refuse here and why').action(act(info));

  const volume = program.command('volume').description('named volumes (kept across containers)');
  volume
    .command('create')
    .argument('[name]')
    .option('-l, --label <k=v>', 'label (repeatable)', collect, [])
    .action(
      act((name: string | undefined, o: { label: string[] }) => {
        const labels = Object.fromEntries(o.label.map((kv) => [kv.split('=')[0]!, kv.slice(kv.indexOf('=') + 1)]));
        out(`${ctxOf().volumes.create(name, { labels }).Name}\n`);
        return 0;
      }),
    );
  volume
    .command('ls')
    .option('-q, --quiet', 'names only')
    .option('--format <format>', 'json or a Go template')
    .action(
      act((o: { quiet?: boolean; format?: string }) => {
        const vols = ctxOf().volumes.list();
        if (o.quiet) out(vols.map((v) => `${v.Name}\n`).join(''));
        else out(formatAll(o.format, vols, () => table([['DRIVER', 'VOLUME NAME'], ...vols.map((v) => [v.Driver, v.Name])])));
        return 0;
      }),
    );
  volume
    .command('inspect')
    .argument('<name...>')
    .option('-f, --format <format>', 'a Go template')
    .action(
      act((names: string[], o: { format?: string }) => {
        const vols = names.map((n) => ctxOf().volumes.inspect(n));
        out(o.format ? formatAll(o.format, vols, () => '') : `${JSON.stringify(vols, null, 2)}\n`);
        return 0;
      }),
    );
  volume
    .command('rm')
    .argument('<name...>')
    .option('-f, --force', 'no error when it does not exist')
    .action(
      act((names: string[], o: { force?: boolean }) => {
        const ctx = ctxOf();
        for (const n of names) {
          ctx.volumes.remove(n, { force: o.force === true, inUse: (v) => volumeUsers(ctx, v) });
          out(`${n}\n`);
        }
        return 0;
      }),
    );
  volume
    .command('prune')
    .option('-a, --all', 'also named volumes (default: anonymous ones only)')
    .option('-f, --force', 'do not ask (kept for docker’s scripts)')
    .action(
      act((o: { all?: boolean }) => {
        const ctx = ctxOf();
        const r = ctx.volumes.prune((v) => volumeUsers(ctx, v), { all: o.all === true });
        for (const n of r.removed) out(`${n}\n`);
        out(`Total reclaimed space: ${formatBytes(r.reclaimedBytes)}\n`);
        return 0;
      }),
    );
}
