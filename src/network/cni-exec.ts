// The CNI runtime side (CNI spec 1.0.0 and 0.4.0), what libcni does for podman 3 and
// nerdctl: run the plugins of a network configuration list for one container attachment.
//
//   a plugin     an executable named by the plugin config's `type`, found in a list of
//                directories (CNI_PATH); run with CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS,
//                CNI_IFNAME, CNI_ARGS, CNI_PATH in its environment and its config JSON on
//                stdin; a result (ADD) or an error object {code, msg, details} on stdout.
//   ADD          each plugin in order; the list's `name` and `cniVersion` replace the
//                plugin's own; every plugin after the first gets the previous one's result
//                as `prevResult`; the last result is the attachment's.
//   DEL          each plugin in reverse order, all of them even when one fails (a DEL must
//                release what it can), with the cached ADD result as `prevResult` (spec
//                "DEL with prevResult": the firewall plugin removes its rules only for the
//                addresses the result names).
//   CHECK        each plugin in order with the cached result as `prevResult`.
//
// The cache: one JSON file per attachment, `<cacheDir>/<network>-<containerId>-<ifName>.json`
// (libcni keeps the same under /var/lib/cni/results). It is written before the ADD runs (so a
// tsrun killed mid-ADD leaves what a later DEL needs: the config and the runtime arguments),
// completed with the result after it, and removed only by a DEL that fully succeeded (spec:
// "it must delete that cached response on a successful DEL").
//
// Never a shell: the plugin is spawned directly. child_process is loaded on first use (as
// runtime/hooks.ts does): most tsrun commands never run a plugin.
import type { ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants, mkdirSync, readdirSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { isErrno, TsrunError, type TsrunErrorOptions } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs-atomic.js';
import { lazyRequire } from '../util/lazy-require.js';
import { mark } from '../util/timing.js';

/** The spec versions this runtime speaks: both have CHECK and prevResult on DEL. */
export const SUPPORTED_CNI_VERSIONS: readonly string[] = Object.freeze(['0.4.0', '1.0.0']);

/** Where plugins are looked for by default: podman's list (containers/common DefaultCNIPluginDirs). */
export const DEFAULT_CNI_PLUGIN_DIRS: readonly string[] = Object.freeze([
  '/usr/local/libexec/cni',
  '/usr/libexec/cni',
  '/usr/local/lib/cni',
  '/usr/lib/cni',
  '/opt/cni/bin',
]);

/** What a plugin gets when tsrun itself runs with no PATH (plugins exec iptables, ip6tables). */
const FALLBACK_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Long enough for the bridge plugin's port-state wait (~2.5 s) and iptables lock contention. */
export const DEFAULT_PLUGIN_TIMEOUT_MS = 60_000;

const STDOUT_LIMIT = 1 << 20;
const STDERR_TAIL = 4096;

/** One plugin's config in a list. */
export interface CniPluginConf {
  type: string;
  /** Runtime capabilities the plugin takes in `runtimeConfig` (e.g. portMappings). */
  capabilities?: Record<string, boolean>;
  [key: string]: unknown;
}

/** A network configuration list (a .conflist). */
export interface CniConflist {
  cniVersion: string;
  name: string;
  disableCheck?: boolean;
  plugins: CniPluginConf[];
  [key: string]: unknown;
}

export interface CniInterface {
  name: string;
  mac?: string;
  sandbox?: string;
  [key: string]: unknown;
}

export interface CniIPConfig {
  /** 0.4.0 only; 1.0.0 dropped it (the address says). */
  version?: '4' | '6';
  address: string;
  gateway?: string;
  interface?: number;
  [key: string]: unknown;
}

/** An ADD result (0.4.0 and 1.0.0 share this shape). */
export interface CniResult {
  cniVersion: string;
  interfaces?: CniInterface[];
  ips?: CniIPConfig[];
  routes?: { dst: string; gw?: string }[];
  dns?: { nameservers?: string[]; domain?: string; search?: string[]; options?: string[] };
  [key: string]: unknown;
}

/** One attachment: libcni's RuntimeConf. */
export interface RuntimeConf {
  containerId: string;
  /** Path of the network namespace (/proc/PID/ns/net or a bind mount). May be gone at DEL. */
  netns: string;
  /** The interface in the container: eth0, eth1, ... */
  ifName: string;
  /** CNI_ARGS pairs (K8S_POD_NAME=...), in order. */
  args?: ReadonlyArray<readonly [string, string]>;
  /** Capability arguments, passed to the plugins that declare them (portMappings, ...). */
  capabilityArgs?: Record<string, unknown>;
}

export interface CniExecOptions {
  /** CNI_PATH: directories searched for plugin executables, in order. */
  pluginDirs: readonly string[];
  /** Where results are cached: `<root>/networks/cache`. */
  cacheDir: string;
  /** Per plugin run; it is killed after this. */
  timeoutMs?: number;
  /** The environment plugins inherit besides CNI_* (default process.env; CNI_* in it are dropped). */
  env?: NodeJS.ProcessEnv;
}

/** The cache record of one attachment. */
export interface CniCacheRecord {
  kind: 'tsrunCniCacheV1';
  network: string;
  containerId: string;
  ifName: string;
  netns: string;
  args: Array<[string, string]>;
  capabilityArgs: Record<string, unknown>;
  /** The list the ADD ran, so a DEL can run even if the network's file was removed since. */
  config: CniConflist;
  /** Absent while the ADD runs (or after it failed half-way and could not be undone). */
  result?: CniResult;
}

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'VERSION';

/** The spec's well-known error codes (0-99 are reserved; 100+ are the plugin's own). */
export const CNI_ERROR_CODES: Readonly<Record<number, string>> = Object.freeze({
  1: 'incompatible CNI version',
  2: 'unsupported field in network configuration',
  3: 'container unknown or does not exist',
  4: 'invalid necessary environment variables',
  5: 'I/O failure',
  6: 'failed to decode content',
  7: 'invalid network config',
  11: 'try again later',
});

/** A plugin that failed: which plugin, which command, and the plugin's own error object. */
export class CniPluginError extends TsrunError {
  readonly plugin: string;
  readonly command: CniCommand;
  readonly network: string;
  /** The CNI error code, when the plugin printed an error object. */
  readonly cniCode: number | undefined;
  readonly details: string | undefined;

  constructor(o: { plugin: string; command: CniCommand; network: string; reason: string; cniCode?: number; details?: string }, opts: TsrunErrorOptions = {}) {
    super('ERR_CHILD_FAILED', `CNI ${o.command} \`${o.plugin}\` (network "${o.network}"): ${o.reason}`, opts);
    this.plugin = o.plugin;
    this.command = o.command;
    this.network = o.network;
    this.cniCode = o.cniCode;
    this.details = o.details;
  }
}

// ---------------------------------------------------------------------------------------
// Pure parts: validation, the config a plugin reads, its environment, reading its output.

/** The spec's rule for network names and container ids: [a-zA-Z0-9][a-zA-Z0-9_.-]*. */
const CNI_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** Check a list before running it: a bad one would fail in the first plugin with a vaguer message. */
export function validateConflist(list: CniConflist): void {
  const bad = (why: string) => new TsrunError('ERR_INVALID_CONFIG', `CNI network config "${String(list?.name)}": ${why}`);
  if (list === null || typeof list !== 'object') throw bad('not an object');
  if (typeof list.name !== 'string' || !CNI_NAME.test(list.name)) throw bad('"name" must match [a-zA-Z0-9][a-zA-Z0-9_.-]*');
  if (!SUPPORTED_CNI_VERSIONS.includes(list.cniVersion)) {
    // 0.3.x has no CHECK and no prevResult on DEL, which the cleanup here relies on.
    throw bad(`"cniVersion" ${JSON.stringify(list.cniVersion)} is not supported (tsrun speaks ${SUPPORTED_CNI_VERSIONS.join(', ')})`);
  }
  if (!Array.isArray(list.plugins) || list.plugins.length === 0) throw bad('"plugins" must be a non-empty list');
  for (const [i, p] of list.plugins.entries()) {
    // The type is a file name in the plugin directories, never a path out of them.
    if (p === null || typeof p !== 'object' || typeof p.type !== 'string' || !/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(p.type)) {
      throw bad(`plugins[${i}].type must be a plugin name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)`);
    }
  }
}

/** The spec's rules for CNI_CONTAINERID and CNI_IFNAME, checked before any plugin runs. */
export function validateRuntimeConf(rt: RuntimeConf, command: CniCommand): void {
  const bad = (why: string) => new TsrunError('ERR_INVALID_ARGUMENT', `CNI ${command}: ${why}`);
  if (!CNI_NAME.test(rt.containerId)) throw bad(`container id ${JSON.stringify(rt.containerId)} must match [a-zA-Z0-9][a-zA-Z0-9_.-]*`);
  const i = rt.ifName;
  if (i === '' || i.length > 15 || i === '.' || i === '..' || /[/:\s]/.test(i)) {
    throw bad(`interface name ${JSON.stringify(i)} must be 1-15 characters, not "." or "..", without "/", ":" or spaces`);
  }
  // DEL may run with no namespace at all (the spec allows it); ADD and CHECK need one.
  if (command !== 'DEL' && rt.netns === '') throw bad('a network namespace path is required');
  formatCniArgs(rt.args ?? []);
}

/** CNI_ARGS: "K=V;K2=V2". A key or value with ";" or "=" would be split wrongly by the plugin. */
export function formatCniArgs(args: ReadonlyArray<readonly [string, string]>): string {
  return args
    .map(([k, v]) => {
      if (!/^[A-Za-z0-9_]+$/.test(k)) throw new TsrunError('ERR_INVALID_ARGUMENT', `CNI_ARGS key ${JSON.stringify(k)} must be alphanumeric (and _)`);
      if (/[;=]/.test(v)) throw new TsrunError('ERR_INVALID_ARGUMENT', `CNI_ARGS value of ${k} must not contain ";" or "="`);
      return `${k}=${v}`;
    })
    .join(';');
}

/**
 * The environment of one plugin run: the base environment without any CNI_* of tsrun's
 * own (a stray CNI_ARGS would reach the plugin), PATH kept (plugins exec iptables) or set
 * when absent, then the six CNI variables. VERSION needs only CNI_COMMAND.
 */
export function cniEnv(
  command: CniCommand,
  rt: RuntimeConf | undefined,
  pluginDirs: readonly string[],
  base: NodeJS.ProcessEnv = process.env,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) if (v !== undefined && !k.startsWith('CNI_')) env[k] = v;
  if (env['PATH'] === undefined || env['PATH'] === '') env['PATH'] = FALLBACK_PATH;
  env['CNI_COMMAND'] = command;
  env['CNI_PATH'] = pluginDirs.join(':');
  if (rt !== undefined && command !== 'VERSION') {
    env['CNI_CONTAINERID'] = rt.containerId;
    env['CNI_NETNS'] = rt.netns;
    env['CNI_IFNAME'] = rt.ifName;
    env['CNI_ARGS'] = formatCniArgs(rt.args ?? []);
  }
  return env;
}

/**
 * The JSON one plugin reads (libcni's buildOneConfig): the plugin's config with the list's
 * name and cniVersion (the spec: "the runtime MUST replace"), `runtimeConfig` holding the
 * capability arguments the plugin declared in `capabilities` and nothing else, and
 * `prevResult` when given. The plugin config itself is not changed.
 */
export function pluginConfig(list: CniConflist, plugin: CniPluginConf, rt: RuntimeConf, prevResult: CniResult | undefined): Record<string, unknown> {
  const conf: Record<string, unknown> = { ...plugin, name: list.name, cniVersion: list.cniVersion };
  const runtimeConfig: Record<string, unknown> = {};
  for (const [cap, on] of Object.entries(plugin.capabilities ?? {})) {
    if (on === true && rt.capabilityArgs !== undefined && Object.hasOwn(rt.capabilityArgs, cap)) runtimeConfig[cap] = rt.capabilityArgs[cap];
  }
  if (Object.keys(runtimeConfig).length > 0) conf['runtimeConfig'] = runtimeConfig;
  else delete conf['runtimeConfig'];
  if (prevResult !== undefined) conf['prevResult'] = prevResult;
  else delete conf['prevResult'];
  return conf;
}

/** How a plugin run ended, as execPlugin saw it. */
export interface PluginRun {
  plugin: string;
  command: CniCommand;
  network: string;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOutMs?: number;
  stdoutOverflow?: boolean;
}

/**
 * Read a finished run: the parsed result for a successful ADD (or VERSION), undefined for
 * a successful DEL or CHECK (their output is not defined by the spec), or a CniPluginError
 * carrying the plugin's error object — or, when it printed none, its stderr.
 */
export function parsePluginOutput(run: PluginRun): CniResult | undefined {
  const fail = (reason: string, extra: { cniCode?: number; details?: string } = {}, hint?: string) =>
    new CniPluginError({ plugin: run.plugin, command: run.command, network: run.network, reason, ...extra }, hint === undefined ? {} : { hint });
  const stderr = run.stderr.trim();
  if (run.timedOutMs !== undefined) throw fail(`timed out after ${run.timedOutMs} ms${stderr === '' ? '' : `: ${stderr}`}`);
  if (run.stdoutOverflow === true) throw fail(`wrote more than ${STDOUT_LIMIT} bytes to stdout`);

  if (run.exitCode !== 0) {
    const obj = parseJsonObject(run.stdout);
    if (obj !== undefined && typeof obj['code'] === 'number') {
      const code = obj['code'];
      const msg = typeof obj['msg'] === 'string' && obj['msg'] !== '' ? obj['msg'] : (CNI_ERROR_CODES[code] ?? `error code ${code}`);
      const details = typeof obj['details'] === 'string' && obj['details'] !== '' ? obj['details'] : undefined;
      const reason = details === undefined || msg.includes(details) ? msg : `${msg}: ${details}`;
      throw fail(reason, { cniCode: code, ...(details === undefined ? {} : { details }) }, hintFor(code, run));
    }
    const why = run.signal !== null ? `killed by ${run.signal}` : `exited with status ${run.exitCode}`;
    const text = stderr !== '' ? stderr : run.stdout.trim();
    throw fail(text === '' ? why : `${why}: ${text}`);
  }
  if (run.command === 'DEL' || run.command === 'CHECK') return undefined;
  const obj = parseJsonObject(run.stdout);
  if (obj === undefined) throw fail(`printed no JSON result${run.stdout.trim() === '' ? '' : `: ${run.stdout.trim().slice(0, 200)}`}`);
  if (typeof obj['cniVersion'] !== 'string') throw fail('printed a result without "cniVersion"');
  return obj as CniResult;
}

function hintFor(code: number, run: PluginRun): string | undefined {
  if (code === 1) return `see the versions it speaks: echo '{}' | CNI_COMMAND=VERSION ${run.plugin}`;
  if (code === 11) return 'the plugin asks to be retried later';
  return undefined;
}

function parseJsonObject(text: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** `<cacheDir>/<network>-<containerId>-<ifName>.json`; the three parts are validated names. */
export function cachePath(cacheDir: string, network: string, containerId: string, ifName: string): string {
  return join(cacheDir, `${network}-${containerId}-${ifName}.json`);
}

// ---------------------------------------------------------------------------------------
// Running plugins.

/** The plugin's executable: the first `<dir>/<type>` that is an executable regular file. */
export function findPlugin(type: string, pluginDirs: readonly string[]): string {
  for (const dir of pluginDirs) {
    const p = join(dir, type);
    try {
      if (!statSync(p).isFile()) continue;
      accessSync(p, fsConstants.X_OK);
      return p;
    } catch {
      /* not here */
    }
  }
  throw new TsrunError('ERR_UNSUPPORTED', `CNI plugin \`${type}\` not found in ${pluginDirs.join(':') || '(no directories)'}`, {
    hint: 'install the CNI plugins (Debian/Ubuntu: apt-get install containernetworking-plugins; they go in /usr/lib/cni)',
  });
}

/** Run one plugin; its parsed output (see parsePluginOutput). */
export async function execPlugin(
  command: CniCommand,
  network: string,
  plugin: string,
  stdin: string,
  rt: RuntimeConf | undefined,
  opts: Pick<CniExecOptions, 'pluginDirs' | 'timeoutMs' | 'env'>,
): Promise<CniResult | undefined> {
  const file = findPlugin(plugin, opts.pluginDirs);
  const env = cniEnv(command, rt, opts.pluginDirs, opts.env);
  const run = await spawnCollect(file, env, stdin, opts.timeoutMs ?? DEFAULT_PLUGIN_TIMEOUT_MS).catch((err: NodeJS.ErrnoException) => {
    const o: TsrunErrorOptions = { path: file, cause: err };
    if (typeof err.errno === 'number') o.errno = Math.abs(err.errno);
    if (err.syscall !== undefined) o.syscall = err.syscall;
    throw new CniPluginError({ plugin, command, network, reason: `cannot run ${file}: ${err.code ?? err.message}` }, o);
  });
  return parsePluginOutput({ plugin, command, network, ...run });
}

/** The VERSION a plugin reports: {cniVersion, supportedVersions}. */
export async function pluginVersions(plugin: string, opts: Pick<CniExecOptions, 'pluginDirs' | 'timeoutMs' | 'env'>): Promise<string[]> {
  const r = await execPlugin('VERSION', '', plugin, '{}', undefined, opts);
  const v = (r as Record<string, unknown> | undefined)?.['supportedVersions'];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

type RunOutcome = Omit<PluginRun, 'plugin' | 'command' | 'network'>;

function spawnCollect(file: string, env: Record<string, string>, stdin: string, timeoutMs: number): Promise<RunOutcome> {
  const { spawn } = lazyRequire<typeof import('node:child_process')>('node:child_process');
  return new Promise<RunOutcome>((resolve, reject) => {
    let child: ChildProcess;
    try {
      // No shell, no inherited stdio: the plugin's output is the protocol.
      child = spawn(file, [], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    } catch (err) {
      reject(err);
      return;
    }
    const out: Buffer[] = [];
    let outLen = 0;
    let overflow = false;
    let errTail = Buffer.alloc(0);
    let timedOut = false;
    let settled = false;

    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);

    child.on('error', (err) => {
      // Only a failed spawn (ENOENT, EACCES, ENOEXEC) is an error of the run.
      if (settled || child.pid !== undefined) return;
      settled = true;
      clearTimeout(timer);
      reject(err);
    });
    child.stdout?.on('data', (chunk: Buffer) => {
      if (overflow) return;
      outLen += chunk.length;
      if (outLen > STDOUT_LIMIT) {
        overflow = true;
        child.kill('SIGKILL');
        return;
      }
      out.push(chunk);
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      errTail = Buffer.concat([errTail, chunk]);
      if (errTail.length > STDERR_TAIL) errTail = errTail.subarray(errTail.length - STDERR_TAIL);
    });
    // A plugin that exits without reading stdin (VERSION) makes the write fail with EPIPE.
    child.stdin?.on('error', () => {});
    child.stdin?.end(stdin);

    child.on('close', (code: number | null, signal: NodeJS.Signals | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const r: RunOutcome = { exitCode: code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: errTail.toString('utf8') };
      if (timedOut) r.timedOutMs = timeoutMs;
      if (overflow) r.stdoutOverflow = true;
      resolve(r);
    });
  });
}

// ---------------------------------------------------------------------------------------
// The cache.

/** Every cache record of one container (its attachments), in no order. */
export function readContainerCache(cacheDir: string, containerId: string): CniCacheRecord[] {
  let files: string[];
  try {
    files = readdirSync(cacheDir);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return [];
    throw err;
  }
  const out: CniCacheRecord[] = [];
  const marker = `-${containerId}-`;
  for (const f of files) {
    const i = f.lastIndexOf(marker);
    if (i < 1 || !f.endsWith('.json')) continue;
    const rec = readCache(cacheDir, f.slice(0, i), containerId, f.slice(i + marker.length, -'.json'.length));
    if (rec) out.push(rec);
  }
  return out;
}

export function readCache(cacheDir: string, network: string, containerId: string, ifName: string): CniCacheRecord | undefined {
  const p = cachePath(cacheDir, network, containerId, ifName);
  let text: string;
  try {
    text = readFileSync(p, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
  const rec = parseJsonObject(text);
  if (rec === undefined || rec['kind'] !== 'tsrunCniCacheV1') {
    throw new TsrunError('ERR_INVALID_CONFIG', `CNI result cache ${p}: not a tsrun cache record`, { path: p });
  }
  return rec as unknown as CniCacheRecord;
}

/** The result the last ADD of this attachment returned (addresses, interfaces), if any. */
export function getCachedResult(cacheDir: string, network: string, containerId: string, ifName: string): CniResult | undefined {
  return readCache(cacheDir, network, containerId, ifName)?.result;
}

function writeCache(cacheDir: string, rec: CniCacheRecord): void {
  mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
  // Not fsynced: the engine keeps it on the run root's tmpfs beside host-local's allocations,
  // and a reboot takes both (with the bridges, veths and rules they describe) together.
  writeFileAtomic(cachePath(cacheDir, rec.network, rec.containerId, rec.ifName), JSON.stringify(rec), 0o600, false);
}

function removeCache(cacheDir: string, network: string, containerId: string, ifName: string): void {
  try {
    unlinkSync(cachePath(cacheDir, network, containerId, ifName));
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
  }
}

// ---------------------------------------------------------------------------------------
// The list operations.

/**
 * ADD the container to the network: each plugin in order, each after the first getting the
 * previous result. Returns the final result, also cached. If a plugin fails, the plugins are
 * DEL'd (in reverse, with the partial result as prevResult so the firewall plugin can find
 * the addresses it may have opened) before the error is thrown; the errors of that undo go
 * to the error's cleanupErrors, and the cache record is then kept so a later DEL retries.
 */
export async function addNetworkList(list: CniConflist, rt: RuntimeConf, opts: CniExecOptions): Promise<CniResult> {
  validateConflist(list);
  validateRuntimeConf(rt, 'ADD');
  // Every plugin must be there before anything is changed: a missing one found half-way
  // would leave an undo to do (and a cache record to keep) for nothing.
  for (const plugin of list.plugins) findPlugin(plugin.type, opts.pluginDirs);
  const rec: CniCacheRecord = {
    kind: 'tsrunCniCacheV1',
    network: list.name,
    containerId: rt.containerId,
    ifName: rt.ifName,
    netns: rt.netns,
    args: (rt.args ?? []).map(([k, v]) => [k, v]),
    capabilityArgs: rt.capabilityArgs ?? {},
    config: list,
  };
  writeCache(opts.cacheDir, rec);

  let prev: CniResult | undefined;
  try {
    for (const plugin of list.plugins) {
      const stdin = JSON.stringify(pluginConfig(list, plugin, rt, prev));
      const r = await execPlugin('ADD', list.name, plugin.type, stdin, rt, opts);
      mark(`add-${plugin.type}`);
      if (r === undefined) throw new CniPluginError({ plugin: plugin.type, command: 'ADD', network: list.name, reason: 'printed no result' });
      prev = r;
    }
  } catch (err) {
    const undoErrors = await runDel(list, rt, prev, opts);
    if (undoErrors.length === 0) removeCache(opts.cacheDir, list.name, rt.containerId, rt.ifName);
    else if (prev !== undefined) writeCache(opts.cacheDir, { ...rec, result: prev });
    if (err instanceof TsrunError) err.cleanupErrors.push(...undoErrors);
    throw err;
  }
  const result = prev!;
  writeCache(opts.cacheDir, { ...rec, result });
  return result;
}

/**
 * DEL the container from the network: every plugin in reverse order, with the cached result
 * as prevResult. Idempotent, as the spec asks of plugins: a second DEL, a DEL after a failed
 * ADD, a DEL whose namespace is gone (CNI_NETNS is passed anyway; the plugins then release
 * what they can without it) all succeed. A failing plugin does not stop the others; the
 * failures are thrown together at the end, and the cache is kept for a retry. Capability
 * and CNI_ARGS arguments left out of `rt` are taken from the cache (the spec wants the ADD's).
 *
 * Run it while the namespace still exists whenever possible: the bridge plugin (1.1.1) finds
 * the masquerade rules to remove through the addresses on the container's interface, so a
 * DEL after the namespace is gone releases the address, the firewall and portmap rules, but
 * leaves the ipMasq chain (measured; podman keeps its namespaces bind-mounted until DEL).
 */
export async function delNetworkList(list: CniConflist, rt: RuntimeConf, opts: CniExecOptions): Promise<void> {
  validateConflist(list);
  validateRuntimeConf(rt, 'DEL');
  const cached = readCache(opts.cacheDir, list.name, rt.containerId, rt.ifName);
  const full: RuntimeConf = {
    ...rt,
    ...(rt.args === undefined && cached !== undefined ? { args: cached.args } : {}),
    ...(rt.capabilityArgs === undefined && cached !== undefined ? { capabilityArgs: cached.capabilityArgs } : {}),
  };
  const errors = await runDel(list, full, cached?.result, opts);
  if (errors.length === 0) {
    removeCache(opts.cacheDir, list.name, rt.containerId, rt.ifName);
    return;
  }
  const first = errors[0]!;
  const e = new TsrunError(
    'ERR_CHILD_FAILED',
    errors.length === 1 ? first.message : `CNI DEL (network "${list.name}"): ${errors.length} plugins failed: ${errors.map((x) => x.message).join('; ')}`,
    { cause: first },
  );
  e.cleanupErrors.push(...errors.slice(1));
  throw e;
}

async function runDel(list: CniConflist, rt: RuntimeConf, prevResult: CniResult | undefined, opts: CniExecOptions): Promise<Error[]> {
  const errors: Error[] = [];
  for (const plugin of [...list.plugins].reverse()) {
    try {
      await execPlugin('DEL', list.name, plugin.type, JSON.stringify(pluginConfig(list, plugin, rt, prevResult)), rt, opts);
      mark(`del-${plugin.type}`);
    } catch (err) {
      errors.push(err instanceof Error ? err : new Error(String(err)));
    }
  }
  return errors;
}

/**
 * CHECK the attachment: each plugin in order with the cached result. Throws the first
 * failure (the spec lets a runtime stop there). Refused for a container that was never
 * ADDed (no cached result: the spec forbids CHECK then); a list with disableCheck is not
 * checked at all.
 */
export async function checkNetworkList(list: CniConflist, rt: RuntimeConf, opts: CniExecOptions): Promise<void> {
  validateConflist(list);
  validateRuntimeConf(rt, 'CHECK');
  if (list.disableCheck === true) return;
  const cached = readCache(opts.cacheDir, list.name, rt.containerId, rt.ifName);
  if (cached?.result === undefined) {
    throw new TsrunError('ERR_INVALID_STATE', `CNI CHECK (network "${list.name}"): container ${rt.containerId} has no completed ADD on ${rt.ifName}`);
  }
  const full: RuntimeConf = {
    ...rt,
    ...(rt.args === undefined ? { args: cached.args } : {}),
    ...(rt.capabilityArgs === undefined ? { capabilityArgs: cached.capabilityArgs } : {}),
  };
  for (const plugin of list.plugins) {
    await execPlugin('CHECK', list.name, plugin.type, JSON.stringify(pluginConfig(list, plugin, full, cached.result)), full, opts);
  }
}
