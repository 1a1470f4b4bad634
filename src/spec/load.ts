// Reading config.json (and `exec --process` files): size cap, JSON parsing, a
// table-driven check of every field's JSON type, then validateSpec/validateProcess.
// The result is a fresh copy holding only the fields in the tables below; unknown
// fields are dropped with a warning (runtime-spec "Extensibility"), and JSON null is
// treated as an absent field, as Go's encoding/json does.

import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { TsrunError, invalidConfig } from '../util/errors.js';
import type { HookName, Process, Spec } from './types.js';
import { validateProcess, validateSpec } from './validate.js';

export const DEFAULT_MAX_CONFIG_BYTES = 4 * 1024 * 1024;

export interface ParseOptions {
  /** Reject input larger than this many bytes (UTF-8); default 4 MiB. */
  maxBytes?: number;
}

type Scalar = 'string' | 'boolean' | 'integer';
type Shape =
  | Scalar
  | 'any' // known to the spec, passed through unchecked (tsrun does not read it)
  | { array: Shape }
  | { map: Shape } // an object with arbitrary keys
  | { fields: Readonly<Record<string, Shape>>; required: readonly string[] };

const S = 'string';
const B = 'boolean';
const I = 'integer';
const ANY = 'any';
const arr = (of: Shape): Shape => ({ array: of });
const map = (of: Shape): Shape => ({ map: of });
const obj = (fields: Record<string, Shape>, ...required: string[]): Shape => ({ fields, required });

const NOUN: Record<Scalar, [string, string]> = {
  string: ['a string', 'strings'],
  boolean: ['a boolean', 'booleans'],
  integer: ['an integer', 'integers'],
};

const ID_MAPPING = obj({ containerID: I, hostID: I, size: I }, 'containerID', 'hostID', 'size');
const HOOK = obj({ path: S, args: arr(S), env: arr(S), timeout: I }, 'path');
const THROTTLE = obj({ major: I, minor: I, rate: I }, 'major', 'minor', 'rate');
const HOOK_NAMES: readonly HookName[] = ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'];
const CAP_SETS = ['bounding', 'effective', 'inheritable', 'permitted', 'ambient'];

const PROCESS = obj(
  {
    terminal: B,
    consoleSize: obj({ height: I, width: I }, 'height', 'width'),
    user: obj({ uid: I, gid: I, umask: I, additionalGids: arr(I), username: S }, 'uid', 'gid'),
    args: arr(S),
    commandLine: S,
    env: arr(S),
    cwd: S,
    capabilities: obj(Object.fromEntries(CAP_SETS.map((s) => [s, arr(S)]))),
    rlimits: arr(obj({ type: S, soft: I, hard: I }, 'type', 'soft', 'hard')),
    noNewPrivileges: B,
    apparmorProfile: S,
    oomScoreAdj: I,
    selinuxLabel: S,
    ioPriority: obj({ class: S, priority: I }, 'class'),
    scheduler: obj({ policy: S, nice: I, priority: I, flags: arr(S), runtime: I, deadline: I, period: I }, 'policy'),
    execCPUAffinity: obj({ initial: S, final: S }),
  },
  'user',
  'cwd',
);

const RESOURCES = obj({
  devices: arr(obj({ allow: B, type: S, major: I, minor: I, access: S }, 'allow')),
  memory: obj({
    limit: I,
    reservation: I,
    swap: I,
    kernel: I,
    kernelTCP: I,
    swappiness: I,
    disableOOMKiller: B,
    useHierarchy: B,
    checkBeforeUpdate: B,
  }),
  cpu: obj({ shares: I, quota: I, burst: I, period: I, realtimeRuntime: I, realtimePeriod: I, cpus: S, mems: S, idle: I }),
  pids: obj({ limit: I }, 'limit'),
  blockIO: obj({
    weight: I,
    leafWeight: I,
    weightDevice: arr(obj({ major: I, minor: I, weight: I, leafWeight: I }, 'major', 'minor')),
    throttleReadBpsDevice: arr(THROTTLE),
    throttleWriteBpsDevice: arr(THROTTLE),
    throttleReadIOPSDevice: arr(THROTTLE),
    throttleWriteIOPSDevice: arr(THROTTLE),
  }),
  hugepageLimits: arr(obj({ pageSize: S, limit: I }, 'pageSize', 'limit')),
  network: obj({ classID: I, priorities: arr(obj({ name: S, priority: I }, 'name', 'priority')) }),
  rdma: map(obj({ hcaHandles: I, hcaObjects: I })),
  unified: map(S),
});

const SECCOMP = obj(
  {
    defaultAction: S,
    defaultErrnoRet: I,
    architectures: arr(S),
    flags: arr(S),
    listenerPath: S,
    listenerMetadata: S,
    syscalls: arr(
      obj({ names: arr(S), action: S, errnoRet: I, args: arr(obj({ index: I, value: I, valueTwo: I, op: S }, 'index', 'value', 'op')) }, 'names', 'action'),
    ),
  },
  'defaultAction',
);

const LINUX = obj({
  namespaces: arr(obj({ type: S, path: S }, 'type')),
  uidMappings: arr(ID_MAPPING),
  gidMappings: arr(ID_MAPPING),
  timeOffsets: map(obj({ secs: I, nanosecs: I })),
  devices: arr(obj({ type: S, path: S, major: I, minor: I, fileMode: I, uid: I, gid: I }, 'type', 'path')),
  netDevices: map(obj({ name: S })),
  cgroupsPath: S,
  resources: RESOURCES,
  rootfsPropagation: S,
  seccomp: SECCOMP,
  sysctl: map(S),
  maskedPaths: arr(S),
  readonlyPaths: arr(S),
  mountLabel: S,
  personality: obj({ domain: S, flags: arr(S) }, 'domain'),
  intelRdt: ANY,
  memoryPolicy: ANY,
});

const SPEC = obj(
  {
    ociVersion: S,
    process: PROCESS,
    root: obj({ path: S, readonly: B }, 'path'),
    hostname: S,
    domainname: S,
    mounts: arr(obj({ destination: S, type: S, source: S, options: arr(S), uidMappings: arr(ID_MAPPING), gidMappings: arr(ID_MAPPING) }, 'destination')),
    hooks: obj(Object.fromEntries(HOOK_NAMES.map((h) => [h, arr(HOOK)]))),
    annotations: map(S),
    linux: LINUX,
    // Other platforms' sections: valid in a config.json, unused on Linux.
    solaris: ANY,
    windows: ANY,
    vm: ANY,
    zos: ANY,
  },
  'ociVersion',
);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function scalarOk(v: unknown, s: Scalar): boolean {
  return s === 'integer' ? Number.isInteger(v) : typeof v === s;
}

function noNul(v: string, at: string): void {
  if (v.includes('\0')) throw invalidConfig(at, 'must not contain NUL bytes');
}

/** Checks `v` against `shape` and returns a copy holding only known fields. */
function check(v: unknown, shape: Shape, at: string, warnings: string[]): unknown {
  if (shape === 'any') return v;
  if (typeof shape === 'string') {
    if (!scalarOk(v, shape)) throw invalidConfig(at, `must be ${NOUN[shape][0]}`);
    if (typeof v === 'string') noNul(v, at);
    return v;
  }
  if ('array' in shape) {
    const of = shape.array;
    if (typeof of === 'string' && of !== 'any') {
      if (!Array.isArray(v) || !v.every((x) => scalarOk(x, of))) throw invalidConfig(at, `must be an array of ${NOUN[of][1]}`);
    } else if (!Array.isArray(v)) {
      throw invalidConfig(at, 'must be an array');
    }
    return v.map((x, i) => check(x, of, `${at}[${i}]`, warnings));
  }
  if (!isObject(v)) {
    if (at === '') throw new TsrunError('ERR_INVALID_CONFIG', 'config.json must contain a JSON object');
    throw invalidConfig(at, 'must be an object');
  }
  if ('map' in shape) {
    // Null prototype: a "__proto__" key stays an ordinary entry.
    const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
    for (const [k, x] of Object.entries(v)) {
      if (k.includes('\0')) throw invalidConfig(at, 'keys must not contain NUL bytes');
      out[k] = check(x, shape.map, `${at}.${k}`, warnings);
    }
    return out;
  }
  const out: Record<string, unknown> = {};
  const name = (k: string): string => (at === '' ? k : `${at}.${k}`);
  for (const k of shape.required) {
    if (!Object.hasOwn(v, k) || v[k] === null) throw invalidConfig(name(k), 'is required');
  }
  for (const [k, x] of Object.entries(v)) {
    const field = Object.hasOwn(shape.fields, k) ? shape.fields[k] : undefined;
    if (field === undefined) warnings.push(`unknown field ${JSON.stringify(name(k))} ignored`);
    else if (x !== null) out[k] = check(x, field, name(k), warnings); // k is one of our own names, never "__proto__"
  }
  return out;
}

function parseJson(text: string, what: string, maxBytes: number): unknown {
  if (Buffer.byteLength(text, 'utf8') > maxBytes) throw new TsrunError('ERR_INVALID_CONFIG', `${what} is larger than ${maxBytes} bytes`);
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new TsrunError('ERR_INVALID_CONFIG', `${what} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

/** Parses and validates the text of a config.json. */
export function parseSpec(text: string, opts: ParseOptions = {}): { spec: Spec; warnings: string[] } {
  const warnings: string[] = [];
  const spec = check(parseJson(text, 'config.json', opts.maxBytes ?? DEFAULT_MAX_CONFIG_BYTES), SPEC, '', warnings) as Spec;
  validateSpec(spec, warnings);
  return { spec, warnings };
}

/** Parses and validates a bare OCI Process object (`exec --process FILE`). */
export function parseProcess(text: string, opts: ParseOptions = {}): { process: Process; warnings: string[] } {
  const warnings: string[] = [];
  const proc = check(parseJson(text, 'process file', opts.maxBytes ?? DEFAULT_MAX_CONFIG_BYTES), PROCESS, 'process', warnings) as Process;
  validateProcess(proc, 'process', warnings);
  return { process: proc, warnings };
}

/** Reads, parses and validates `<bundleDir>/config.json`; `path` is its absolute path. */
export function loadSpec(bundleDir: string, opts: ParseOptions = {}): { spec: Spec; warnings: string[]; path: string } {
  const path = resolve(bundleDir, 'config.json');
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_CONFIG_BYTES;
  const fail = (verb: string, reason: string, cause?: unknown): TsrunError => {
    const e = cause as NodeJS.ErrnoException | undefined;
    return new TsrunError('ERR_INVALID_CONFIG', `${verb} config.json in bundle "${bundleDir}": ${reason}`, {
      path,
      ...(typeof e?.errno === 'number' ? { errno: Math.abs(e.errno), syscall: verb } : {}),
      ...(cause === undefined ? {} : { cause }),
    });
  };
  let text: string;
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw fail('open', (err as NodeJS.ErrnoException).code ?? String(err), err);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw fail('open', 'not a regular file');
    if (st.size > maxBytes) throw new TsrunError('ERR_INVALID_CONFIG', `config.json is larger than ${maxBytes} bytes`, { path });
    text = readFileSync(fd, 'utf8');
  } catch (err) {
    if (err instanceof TsrunError) throw err;
    throw fail('read', (err as NodeJS.ErrnoException).code ?? String(err), err);
  } finally {
    closeSync(fd);
  }
  return { ...parseSpec(text, opts), path };
}
