// `tsrun build`: a Containerfile's stages executed step by step over the content store. Each
// RUN is a container of the engine core over the previous step's layers, each COPY/ADD an
// in-root copy onto them; both leave one layer (cached by parent, instruction and inputs).
// The other instructions change the config. The result is an OCI image in the store, tagged,
// with history and diff_ids; with SOURCE_DATE_EPOCH its layers and config are reproducible.
import { lstatSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join, posix } from 'node:path';
import type { EngineContext } from '../engine/context.js';
import { findLocalImage } from '../engine/image-lookup.js';
import { canonicalTag, storeBytes, writeManifest } from '../image/commit.js';
import { hostPlatform, MediaType, parseImageConfig, parsePlatform, type Descriptor, type ImageConfigBody } from '../image/manifest.js';
import { copyOut } from '../linux/in-root.js';
import { DEFAULT_NETWORK_NAME } from '../network/conflist.js';
import { TsrunError, wrap } from '../util/errors.js';
import { cacheKey, LayerCache } from './cache.js';
import { execForm, type Instruction, keyValues, parseContainerfile, type Stage } from './containerfile.js';
import { BuildContext, type Source } from './context.js';
import { expand } from './expand.js';
import { type CopyItem, copyStep, mkdirStep, runStep, type StepOutput, workdirExists } from './steps.js';
import { mountStepRootfs } from './step-rootfs.js';

/** RUN's network as the step runs it: none, host, or an existing network (bridge: the default one). */
export function buildNetwork(ctx: EngineContext, value: string, what: string): string {
  if (value === 'none' || value === 'host') return value;
  const name = value === 'bridge' || value === 'default' ? DEFAULT_NETWORK_NAME : value;
  try {
    ctx.networks.store.need(name);
  } catch (e) {
    throw wrap(e, what);
  }
  return name;
}

export interface BuildOptions {
  contextDir: string;
  /** The Containerfile's text (the CLI reads -f, default CONTEXT/Containerfile or Dockerfile). */
  containerfile: string;
  tags: string[];
  buildArgs: Record<string, string>;
  target?: string;
  platform?: string;
  noCache?: boolean;
  pull?: boolean;
  /** RUN's network: none, host, bridge (the default network) or a network's name. */
  network: string;
  labels: Record<string, string>;
  /** SOURCE_DATE_EPOCH: layer mtimes and every created time. */
  sourceDateEpoch?: number;
  output: StepOutput;
  /** Pull an image a FROM names that is not in the store (the CLI's pull with progress). */
  pullImage: (ref: string, platform?: string) => Promise<void>;
  onEvent: (e: BuildEvent) => void;
  /** Aborted on ^C: the build stops before its next step (a running RUN is killed by the step). */
  signal?: AbortSignal;
}

export type BuildEvent =
  | { kind: 'step'; n: number; total: number; text: string }
  | { kind: 'cached'; layer: string }
  | { kind: 'layer'; layer: string }
  | { kind: 'done'; id: string; tags: string[] };

export interface BuildResult {
  id: string;
  manifestDigest: string;
  tags: string[];
}

interface State {
  config: Record<string, unknown>;
  body: ImageConfigBody & Record<string, unknown>;
  layers: Descriptor[];
  diffIds: string[];
  history: Array<Record<string, unknown>>;
  shell: string[];
  /** ARG values in scope (not persisted into the image). */
  args: Map<string, string>;
  /** CMD set in this stage (an ENTRYPOINT resets only an inherited CMD). */
  cmdSet?: boolean;
}

/** Usable in RUN without an ARG line, when given with --build-arg (docker's predefined ARGs). */
const PREDEFINED_ARGS = ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy'];

function stepError(ins: Instruction, e: unknown): TsrunError {
  const err = e instanceof TsrunError ? e : wrap(e, '');
  // A message that already names its line (the context's) is not prefixed twice.
  const own = err.message.replace(/^: /, '').replace(new RegExp(`^Containerfile line ${ins.line}: `), '');
  err.message = `Containerfile line ${ins.line}: ${ins.text}: ${own}`;
  return err;
}

function envMap(body: ImageConfigBody): Map<string, string> {
  const m = new Map<string, string>();
  for (const e of body.Env ?? []) {
    const i = e.indexOf('=');
    m.set(i < 0 ? e : e.slice(0, i), i < 0 ? '' : e.slice(i + 1));
  }
  return m;
}

function scope(s: State): Map<string, string> {
  return new Map([...s.args, ...envMap(s.body)]);
}

function setEnv(body: ImageConfigBody, key: string, value: string): void {
  const env = (body.Env ?? []).filter((e) => e !== key && !e.startsWith(`${key}=`));
  env.push(`${key}=${value}`);
  body.Env = env;
}

function duration(flag: string, v: string, line: number): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(v);
  if (!m) throw new TsrunError('ERR_INVALID_ARGUMENT', `Containerfile line ${line}: HEALTHCHECK --${flag}=${v}: a duration like 30s, 1m`);
  return Math.round(Number(m[1]) * { ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 }[m[2] as 'ms' | 's' | 'm' | 'h']);
}

export class Builder {
  private readonly context: BuildContext;
  private readonly cache: LayerCache;
  private readonly done = new Map<number, State>();
  private readonly created: string;
  private readonly globalArgs = new Map<string, string>();
  private step = 0;
  private total = 0;

  constructor(
    private readonly ctx: EngineContext,
    private readonly o: BuildOptions,
  ) {
    this.context = new BuildContext(o.contextDir);
    this.cache = new LayerCache(ctx.images);
    this.created = new Date(o.sourceDateEpoch !== undefined ? o.sourceDateEpoch * 1000 : Date.now()).toISOString();
    const p = o.platform ? parsePlatform(o.platform) : hostPlatform();
    const plat = `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
    for (const [k, v] of Object.entries({ TARGETPLATFORM: plat, TARGETOS: p.os, TARGETARCH: p.architecture, TARGETVARIANT: p.variant ?? '' }))
      this.globalArgs.set(k, v);
    const h = hostPlatform();
    for (const [k, v] of Object.entries({ BUILDPLATFORM: `${h.os}/${h.architecture}`, BUILDOS: h.os, BUILDARCH: h.architecture })) this.globalArgs.set(k, v);
  }

  async build(): Promise<BuildResult> {
    const file = parseContainerfile(this.o.containerfile);
    for (const a of file.globalArgs) this.declareArg(this.globalArgs, a, this.globalArgs);
    const last = this.o.target === undefined ? file.stages.length - 1 : file.stages.findIndex((s) => s.name === this.o.target?.toLowerCase());
    if (last < 0)
      throw new TsrunError(
        'ERR_INVALID_ARGUMENT',
        `--target ${this.o.target}: no stage of that name (${file.stages.map((s) => s.name ?? s.index).join(', ')})`,
      );
    const stages = file.stages.slice(0, last + 1);
    this.total = stages.reduce((n, s) => n + 1 + s.instructions.length, 0);
    let final: State | undefined;
    for (const stage of stages) {
      final = await this.runStage(stage, file.stages);
      this.done.set(stage.index, final);
    }
    return this.commit(final!);
  }

  private declareArg(into: Map<string, string>, ins: Instruction, vars: Map<string, string>): void {
    for (const part of ins.args.split(/\s+/).filter(Boolean)) {
      const i = part.indexOf('=');
      const name = i < 0 ? part : part.slice(0, i);
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
        throw new TsrunError('ERR_INVALID_ARGUMENT', `Containerfile line ${ins.line}: ARG "${name}" is not a valid name`);
      const given = this.o.buildArgs[name];
      const global = this.globalArgs.get(name);
      const def = i < 0 ? global : expand(part.slice(i + 1).replace(/^"(.*)"$/, '$1'), vars);
      const v = given ?? def;
      if (v !== undefined) into.set(name, v);
    }
  }

  private announce(text: string): void {
    this.o.onEvent({ kind: 'step', n: ++this.step, total: this.total, text });
  }

  private async baseState(stage: Stage, all: Stage[]): Promise<State> {
    const from = expand(stage.from, this.globalArgs);
    const shell = ['/bin/sh', '-c'];
    const byName = all.find((s) => s.name === from.toLowerCase() && s.index < stage.index);
    if (byName) {
      const prev = this.done.get(byName.index)!;
      return {
        ...structuredClone({ config: prev.config, body: prev.body, layers: prev.layers, diffIds: prev.diffIds, history: prev.history }),
        shell: [...prev.shell],
        args: new Map(),
      };
    }
    if (from === 'scratch') {
      const p = stage.platform ? parsePlatform(stage.platform) : this.o.platform ? parsePlatform(this.o.platform) : hostPlatform();
      return { config: { architecture: p.architecture, os: p.os }, body: {}, layers: [], diffIds: [], history: [], shell, args: new Map() };
    }
    const platform = stage.platform ? expand(stage.platform, this.globalArgs) : this.o.platform;
    let img = this.o.pull ? undefined : findLocalImage(this.ctx.images, from);
    if (!img) {
      await this.o.pullImage(from, platform);
      img = findLocalImage(this.ctx.images, from);
      if (!img) throw new TsrunError('ERR_INVALID_ARGUMENT', `FROM ${from}: no such image after pulling`);
    }
    const r = img.resolved;
    const config = JSON.parse(this.ctx.images.readBlob(r.configDigest, 8 * 1024 * 1024).toString('utf8')) as Record<string, unknown>;
    const body = ((config.config as ImageConfigBody | undefined) ?? {}) as State['body'];
    const history = Array.isArray(config.history) ? (config.history as State['history']) : [];
    // What the build rewrites lives in the state (body, layers, history), not in the base's copy.
    for (const k of ['config', 'history', 'rootfs', 'created', 'container', 'container_config']) delete config[k];
    return {
      config,
      body,
      layers: [...r.manifest.layers],
      diffIds: [...r.config.rootfs.diff_ids],
      history,
      shell: (body.Shell as string[] | undefined) ?? shell,
      args: new Map(),
    };
  }

  private async runStage(stage: Stage, all: Stage[]): Promise<State> {
    this.announce(`FROM ${stage.from}${stage.name ? ` AS ${stage.name}` : ''}`);
    const s = await this.baseState(stage, all).catch((e) => {
      throw new TsrunError('ERR_INVALID_ARGUMENT', `Containerfile line ${stage.line}: FROM ${stage.from}: ${(e as Error).message}`);
    });
    // ONBUILD triggers of the base run first, then leave the image (docker's rule).
    const triggers = (s.body.OnBuild as string[] | undefined) ?? [];
    delete s.body.OnBuild;
    const onbuild = triggers.length
      ? parseContainerfile(`FROM scratch\n${triggers.join('\n')}`).stages[0]!.instructions.map((i) => ({ ...i, line: stage.line }))
      : [];
    this.total += onbuild.length;
    for (const ins of [...onbuild, ...stage.instructions]) {
      if (this.o.signal?.aborted) throw Object.assign(new TsrunError('ERR_CHILD_FAILED', 'the build was interrupted'), { exitCode: 130 });
      this.announce(ins.text);
      try {
        await this.instruction(s, ins, all, stage);
      } catch (e) {
        throw stepError(ins, e);
      }
    }
    return s;
  }

  private history(s: State, createdBy: string, emptyLayer: boolean): void {
    s.history.push({ created: this.created, created_by: createdBy, ...(emptyLayer ? { empty_layer: true } : {}) });
  }

  private parentKey(s: State): string {
    return cacheKey({ diffIds: s.diffIds, body: s.body });
  }

  private async layerStep(s: State, key: unknown, make: () => Promise<import('../image/commit.js').StoredLayer>, createdBy: string): Promise<void> {
    const k = cacheKey({ parent: this.parentKey(s), key, epoch: this.o.sourceDateEpoch ?? null });
    let layer = this.o.noCache ? undefined : this.cache.get(k);
    if (layer) this.o.onEvent({ kind: 'cached', layer: layer.diffId });
    else {
      layer = await make();
      this.cache.put(k, layer);
      this.o.onEvent({ kind: 'layer', layer: layer.diffId });
    }
    s.layers.push({ mediaType: MediaType.OciLayerGzip, digest: layer.digest, size: layer.size });
    s.diffIds.push(layer.diffId);
    this.history(s, createdBy, false);
  }

  private async instruction(s: State, ins: Instruction, all: Stage[], stage: Stage): Promise<void> {
    const vars = scope(s);
    const x = (t: string) => expand(t, vars);
    const onlyFlags = (...allowed: string[]) => {
      for (const f of Object.keys(ins.flags)) if (!allowed.includes(f)) throw new TsrunError('ERR_INVALID_ARGUMENT', `${ins.keyword} has no --${f} flag`);
    };
    switch (ins.keyword) {
      case 'ARG':
        onlyFlags();
        this.declareArg(s.args, ins, vars);
        return;
      case 'ENV':
        onlyFlags();
        // Every value of one ENV sees the environment before it (docker: `ENV abc=bye def=$abc`).
        for (const [k, v] of keyValues(ins.args, ins.line, 'ENV')) setEnv(s.body, k, expand(v, vars));
        this.history(s, `ENV ${ins.args}`, true);
        return;
      case 'LABEL':
        onlyFlags();
        s.body.Labels = { ...(s.body.Labels ?? {}), ...Object.fromEntries(keyValues(ins.args, ins.line, 'LABEL').map(([k, v]) => [x(k), x(v)])) };
        this.history(s, `LABEL ${ins.args}`, true);
        return;
      case 'MAINTAINER':
        s.config.author = ins.args;
        this.history(s, `MAINTAINER ${ins.args}`, true);
        return;
      case 'WORKDIR': {
        onlyFlags();
        const w = x(ins.args);
        s.body.WorkingDir = posix.normalize(w.startsWith('/') ? w : posix.join(s.body.WorkingDir || '/', w));
        // Made when missing, as docker does: a layer with the directory, or none when it exists.
        if (workdirExists(this.ctx, s.diffIds, s.body.WorkingDir)) this.history(s, `WORKDIR ${s.body.WorkingDir}`, true);
        else
          await this.layerStep(
            s,
            { workdir: s.body.WorkingDir },
            () => mkdirStep(this.ctx, { diffIds: s.diffIds, path: s.body.WorkingDir!, layer: this.layerOpts() }),
            `WORKDIR ${s.body.WorkingDir}`,
          );
        return;
      }
      case 'USER':
        onlyFlags();
        s.body.User = x(ins.args);
        this.history(s, `USER ${s.body.User}`, true);
        return;
      case 'ENTRYPOINT':
      case 'CMD': {
        onlyFlags();
        const argv = execForm(ins.args) ?? [...s.shell, ins.args];
        if (ins.keyword === 'ENTRYPOINT') {
          s.body.Entrypoint = argv;
          if (!s.cmdSet) s.body.Cmd = null; // docker: an ENTRYPOINT resets a CMD inherited from the base
        } else {
          s.body.Cmd = argv;
          s.cmdSet = true;
        }
        this.history(s, `${ins.keyword} ${JSON.stringify(argv)}`, true);
        return;
      }
      case 'SHELL': {
        const argv = execForm(ins.args);
        if (!argv?.length) throw new TsrunError('ERR_INVALID_ARGUMENT', 'SHELL takes the exec form: SHELL ["executable", "parameters"]');
        s.shell = argv;
        (s.body as Record<string, unknown>).Shell = argv;
        this.history(s, `SHELL ${JSON.stringify(argv)}`, true);
        return;
      }
      case 'EXPOSE': {
        const ports = x(ins.args).split(/\s+/).filter(Boolean);
        for (const p of ports)
          if (!/^\d+(-\d+)?(\/(tcp|udp|sctp))?$/.test(p)) throw new TsrunError('ERR_INVALID_ARGUMENT', `EXPOSE ${p}: expected PORT[/tcp|udp|sctp]`);
        s.body.ExposedPorts = { ...(s.body.ExposedPorts ?? {}), ...Object.fromEntries(ports.map((p) => [p.includes('/') ? p : `${p}/tcp`, {}])) };
        this.history(s, `EXPOSE ${ports.join(' ')}`, true);
        return;
      }
      case 'VOLUME': {
        const vols = execForm(x(ins.args)) ?? x(ins.args).split(/\s+/).filter(Boolean);
        s.body.Volumes = { ...(s.body.Volumes ?? {}), ...Object.fromEntries(vols.map((v) => [v, {}])) };
        this.history(s, `VOLUME ${JSON.stringify(vols)}`, true);
        return;
      }
      case 'STOPSIGNAL':
        s.body.StopSignal = x(ins.args);
        this.history(s, `STOPSIGNAL ${s.body.StopSignal}`, true);
        return;
      case 'HEALTHCHECK':
        (s.body as Record<string, unknown>).Healthcheck = this.healthcheck(ins);
        this.history(s, `HEALTHCHECK ${ins.args}`, true);
        return;
      case 'ONBUILD': {
        const trigger = ins.text.replace(/^ONBUILD\s+/i, '');
        if (/^(ONBUILD|FROM|MAINTAINER)\b/i.test(trigger)) throw new TsrunError('ERR_INVALID_ARGUMENT', `ONBUILD ${trigger.split(/\s/)[0]} is not allowed`);
        s.body.OnBuild = [...((s.body.OnBuild as string[] | undefined) ?? []), trigger];
        this.history(s, `ONBUILD ${trigger}`, true);
        return;
      }
      case 'RUN': {
        onlyFlags('network');
        const network = buildNetwork(this.ctx, ins.flags.network ?? this.o.network, `RUN --network (line ${ins.line})`);
        const argv = execForm(ins.args) ?? [...s.shell, ins.args];
        const predefined = PREDEFINED_ARGS.filter((k) => this.o.buildArgs[k] !== undefined && !s.args.has(k)).map((k) => [k, this.o.buildArgs[k]!] as const);
        const env = [...s.args, ...predefined].map(([k, v]) => `${k}=${v}`);
        await this.layerStep(
          s,
          { run: argv, env, network },
          () => runStep(this.ctx, { diffIds: s.diffIds, config: s.body, argv, env, network, output: this.o.output, layer: this.layerOpts() }),
          execForm(ins.args) ? `RUN ${JSON.stringify(argv)}` : `RUN ${ins.args}`,
        );
        return;
      }
      case 'COPY':
      case 'ADD':
        await this.copy(s, ins, all, stage);
        return;
    }
  }

  private layerOpts() {
    return this.o.sourceDateEpoch !== undefined ? { mtime: this.o.sourceDateEpoch } : {};
  }

  private healthcheck(ins: Instruction): Record<string, unknown> {
    const rest = ins.args.trim();
    if (/^NONE$/i.test(rest)) return { Test: ['NONE'] };
    const m = /^CMD\s+([\s\S]+)$/i.exec(rest);
    if (!m) throw new TsrunError('ERR_INVALID_ARGUMENT', 'HEALTHCHECK takes [OPTIONS] CMD command, or NONE');
    const argv = execForm(m[1]!);
    const hc: Record<string, unknown> = { Test: argv ? ['CMD', ...argv] : ['CMD-SHELL', m[1]!.trim()] };
    const names: Record<string, string> = {
      interval: 'Interval',
      timeout: 'Timeout',
      'start-period': 'StartPeriod',
      'start-interval': 'StartInterval',
      retries: 'Retries',
    };
    for (const [k, v] of Object.entries(ins.flags)) {
      const field = names[k];
      if (!field) throw new TsrunError('ERR_INVALID_ARGUMENT', `HEALTHCHECK has no --${k} flag`);
      hc[field] = k === 'retries' ? Number(v) : duration(k, v, ins.line);
    }
    return hc;
  }

  private async copy(s: State, ins: Instruction, all: Stage[], stage: Stage): Promise<void> {
    const allowed = ins.keyword === 'COPY' ? ['from', 'chown', 'chmod'] : ['chown', 'chmod'];
    for (const f of Object.keys(ins.flags)) if (!allowed.includes(f)) throw new TsrunError('ERR_INVALID_ARGUMENT', `${ins.keyword} has no --${f} flag`);
    const vars = scope(s);
    const words = (execForm(ins.args) ?? ins.args.split(/\s+/).filter(Boolean)).map((w) => expand(w, vars));
    if (words.length < 2) throw new TsrunError('ERR_INVALID_ARGUMENT', `${ins.keyword} takes SOURCE... DEST`);
    const dest = words.pop()!;
    const chmodFlag = ins.flags.chmod;
    if (chmodFlag !== undefined && !/^[0-7]{3,4}$/.test(chmodFlag))
      throw new TsrunError('ERR_INVALID_ARGUMENT', `--chmod=${chmodFlag}: an octal mode like 0755`);
    const chmod = chmodFlag === undefined ? undefined : Number.parseInt(chmodFlag, 8);
    const chown = ins.flags.chown === undefined ? undefined : expand(ins.flags.chown, vars);
    const staging = mkdtempSync(join(this.ctx.images.layout.tmp(), 'copy-'));
    try {
      let items: CopyItem[];
      let contentKey: string;
      if (ins.flags.from !== undefined) {
        items = await this.fromOther(ins.flags.from, words, all, stage, staging);
        contentKey = new BuildContext(staging).digest(items.map((i) => i.source));
      } else {
        const sources: Source[] = [];
        for (const w of words) {
          if (/^https?:\/\//.test(w)) {
            if (ins.keyword !== 'ADD') throw new TsrunError('ERR_INVALID_ARGUMENT', 'COPY takes no URLs (ADD does)');
            sources.push(await download(w, staging));
          } else sources.push(...this.context.resolve(w, ins.line));
        }
        // A file from a URL is copied as it is (docker never extracts a remote archive).
        items = sources.map((source) => (source.hostPath.startsWith(`${staging}/`) ? { source, extract: false } : { source, keep: this.context.keep }));
        contentKey = `${this.context.digest(sources.filter((x) => !x.hostPath.startsWith(`${staging}/`)))}|${new BuildContext(staging).digest(sources.filter((x) => x.hostPath.startsWith(`${staging}/`)).map((x) => ({ ...x, rel: basename(x.hostPath) })))}`;
      }
      await this.layerStep(
        s,
        { copy: ins.keyword, dest, chown: chown ?? null, chmod: chmod ?? null, content: contentKey, workdir: s.body.WorkingDir ?? '/' },
        () =>
          copyStep(this.ctx, {
            diffIds: s.diffIds,
            config: s.body,
            items,
            dest,
            ...(chown ? { chown } : {}),
            ...(chmod !== undefined ? { chmod } : {}),
            extractTars: ins.keyword === 'ADD',
            layer: this.layerOpts(),
          }),
        `${ins.keyword} ${contentKey.slice(0, 19)} in ${dest}`,
      );
    } finally {
      rmSync(staging, { recursive: true, force: true });
    }
  }

  /** COPY --from=STAGE|IMAGE: the sources copied out of that root (in-root) into a staging dir first. */
  private async fromOther(from: string, words: string[], all: Stage[], stage: Stage, staging: string): Promise<CopyItem[]> {
    const byName = all.find((s) => (s.name === from.toLowerCase() || String(s.index) === from) && s.index < stage.index);
    let diffIds: string[];
    if (byName) diffIds = this.done.get(byName.index)!.diffIds;
    else {
      let img = findLocalImage(this.ctx.images, from);
      if (!img) {
        await this.o.pullImage(from, this.o.platform);
        img = findLocalImage(this.ctx.images, from);
      }
      if (!img) throw new TsrunError('ERR_INVALID_ARGUMENT', `--from=${from}: no stage or image of that name`);
      diffIds = img.resolved.config.rootfs.diff_ids;
    }
    const root = mountStepRootfs(this.ctx.images, diffIds);
    try {
      const items: CopyItem[] = [];
      for (const [i, w] of words.entries()) {
        const out = join(staging, String(i));
        await copyOut(root.merged, w, out, { followLink: true, keepSetid: true });
        const isDir = lstatSync(out).isDirectory();
        items.push({ source: { hostPath: out, rel: posix.basename(w) || '.', isDir } });
      }
      return items;
    } finally {
      root.remove();
    }
  }

  /**
   * An identical build (same layers, config and history) gives the same image id, as docker's
   * cached builds do: the created time of its first build is reused. SOURCE_DATE_EPOCH fixes it anyway.
   */
  private stableCreated(s: State, body: unknown): string {
    if (this.o.sourceDateEpoch !== undefined) return this.created;
    const key = `image-${cacheKey({ body, diffIds: s.diffIds, history: s.history.map((h) => ({ ...h, created: undefined })), config: s.config })}`;
    const previous = this.cache.getText(key);
    if (previous) return previous;
    this.cache.putText(key, this.created);
    return this.created;
  }

  private async commit(s: State): Promise<BuildResult> {
    const body = { ...s.body, Labels: { ...(s.body.Labels ?? {}), ...this.o.labels } };
    if (!Object.keys(body.Labels).length) delete (body as Record<string, unknown>).Labels;
    const created = this.stableCreated(s, body);
    const history = s.history.map((h) => (h.created === this.created ? { ...h, created } : h));
    const config = { ...s.config, created, config: body, rootfs: { type: 'layers', diff_ids: s.diffIds }, history };
    const bytes = Buffer.from(JSON.stringify(config));
    parseImageConfig(bytes, 'the built image config');
    const configDigest = await storeBytes(this.ctx.images, bytes);
    const refs = this.o.tags.map(canonicalTag);
    let manifestDigest = '';
    for (const ref of refs.length ? refs : [undefined]) {
      manifestDigest = await writeManifest(this.ctx.images, {
        configDigest,
        configSize: bytes.length,
        layers: s.layers,
        docker: false,
        diffIds: s.diffIds,
        ...(ref ? { ref } : {}),
      });
    }
    this.o.onEvent({ kind: 'done', id: configDigest, tags: refs });
    return { id: configDigest, manifestDigest, tags: refs };
  }
}

/** ADD URL: fetched over http(s) (loopback works offline); a clear error when unreachable. */
async function download(url: string, staging: string): Promise<Source> {
  const name = basename(new URL(url).pathname) || 'index.html';
  const path = join(staging, name);
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(30_000) });
  } catch (e) {
    throw new TsrunError(
      'ERR_SYSCALL',
      `ADD ${url}: cannot fetch it (${(e as Error).cause ? String((e as { cause: Error }).cause.message) : (e as Error).message})`,
      {
        hint: 'is the network reachable from here? a URL on 127.0.0.1 works offline',
      },
    );
  }
  if (!res.ok) throw new TsrunError('ERR_SYSCALL', `ADD ${url}: the server answered ${res.status}`);
  writeFileSync(path, Buffer.from(await res.arrayBuffer()), { mode: 0o600 });
  return { hostPath: path, rel: name, isDir: false };
}

export async function buildImage(ctx: EngineContext, o: BuildOptions): Promise<BuildResult> {
  return new Builder(ctx, o).build();
}
