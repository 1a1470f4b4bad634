// Helpers for the engine's integration tests (`tsrun run IMAGE` and friends): a private image
// store and run root per test file with the busybox image of images/busybox loaded as
// localhost/busybox, a runner for the real CLI, and a teardown that removes every container
// and then checks that nothing is left (mounts, cgroups, monitors, state).
import { type SpawnOptions, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const TSRUN = path.join(REPO_ROOT, 'dist/bin/tsrun');
const OCI_LAYOUT_SH = path.join(REPO_ROOT, 'images/busybox/oci-layout.sh');

/** Why the engine tests cannot run here, or null. */
export function engineSkipReason(): string | null {
  if (process.getuid?.() !== 0) return 'needs root';
  if (!existsSync(TSRUN)) return `${TSRUN} is missing: run \`npm run build\``;
  if (!existsSync('/bin/busybox')) return '/bin/busybox is missing: apt-get install busybox-static';
  return null;
}

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

export function show(r: Result): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

export interface Engine {
  /** The per-file scratch dir (root and run root live under it). */
  tmp: string;
  root: string;
  runRoot: string;
  /** Run `tsrun --root R --runroot RR ARGS`; resolves when it exits (timeout: killed, code -1). */
  tsrun(args: string[], o?: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv }): Promise<Result>;
  /** Synchronous variant for teardown and quick probes. */
  tsrunSync(args: string[]): Result;
  /** The argv prefix for driving tsrun from a tty harness (script, tmux). */
  argv(args: string[]): string[];
  /** Remove every container (rm -f), then report what is left on the host. */
  teardown(): Promise<string[]>;
}

let builtLayout: string | undefined;

/** images/busybox/oci-layout.sh once per test file (reproducible, ~1 s). */
function busyboxArchive(tmp: string): string {
  if (builtLayout && existsSync(builtLayout)) return builtLayout;
  const out = path.join(tmp, 'busybox-image');
  const r = spawnSync(OCI_LAYOUT_SH, [out], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${OCI_LAYOUT_SH} failed (${r.status}): ${r.stderr}`);
  builtLayout = path.join(out, 'busybox-oci.tar');
  return builtLayout;
}

function runSync(argv: string[]): Result {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** A private engine: scratch dir, store with localhost/busybox loaded. */
export function makeEngine(prefix: string): Engine {
  const tmp = mkdtempSync(path.join(os.tmpdir(), `${prefix}-`));
  chmodSync(tmp, 0o755);
  const root = path.join(tmp, 'root');
  const runRoot = path.join(tmp, 'run');
  mkdirSync(root);
  const argv = (args: string[]) => [TSRUN, '--root', root, '--runroot', runRoot, ...args];
  const load = runSync(argv(['load', '-i', busyboxArchive(tmp), '-t', 'localhost/busybox:latest']));
  if (load.code !== 0) throw new Error(`tsrun load failed: ${show(load)}`);
  const engine: Engine = {
    tmp,
    root,
    runRoot,
    argv,
    tsrunSync: (args) => runSync(argv(args)),
    tsrun: (args, o = {}) =>
      new Promise((resolve) => {
        const [cmd, ...rest] = argv(args);
        const opts: SpawnOptions = { stdio: ['pipe', 'pipe', 'pipe'], env: o.env ?? process.env };
        const p = spawn(cmd!, rest, opts);
        let stdout = '';
        let stderr = '';
        p.stdout!.on('data', (d) => (stdout += d));
        p.stderr!.on('data', (d) => (stderr += d));
        const t = setTimeout(() => p.kill('SIGKILL'), o.timeoutMs ?? 60_000);
        p.on('close', (code) => {
          clearTimeout(t);
          resolve({ code: code ?? -1, stdout, stderr });
        });
        p.stdin!.end(o.input ?? '');
      }),
    teardown: async () => {
      const problems: string[] = [];
      const ids = runSync(argv(['ps', '-a', '-q', '--no-trunc']))
        .stdout.split('\n')
        .filter(Boolean);
      if (ids.length) {
        const rm = runSync(argv(['rm', '-f', '-v', ...ids]));
        if (rm.code !== 0) problems.push(`rm -f at teardown: ${show(rm)}`);
      }
      // Networks a test made (their bridges are the host's): gone with the engine.
      const prune = runSync(argv(['network', 'prune', '-f']));
      if (prune.code !== 0) problems.push(`network prune at teardown: ${show(prune)}`);
      problems.push(...leftovers(engine));
      for (const m of mountsUnder(tmp).reverse()) spawnSync('umount', ['-l', m]);
      rmSync(tmp, { recursive: true, force: true });
      return problems;
    },
  };
  return engine;
}

function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m.startsWith(`${dir}/`));
}

/** What a removed container must not leave: mounts, records, runtime state, monitors. */
export function leftovers(e: Engine): string[] {
  const out: string[] = [];
  for (const m of mountsUnder(e.tmp)) out.push(`mount left: ${m}`);
  const containers = path.join(e.root, 'containers');
  if (existsSync(containers) && readdirSync(containers).length) out.push(`container dirs left: ${readdirSync(containers).join(' ')}`);
  if (existsSync(e.runRoot)) {
    // netns/ and networks/ are the network subsystem's: what must be empty in them is checked below.
    const state = readdirSync(e.runRoot).filter((d) => !d.startsWith('.') && !d.endsWith('.lock') && d !== 'netns' && d !== 'networks');
    if (state.length) out.push(`runtime state left: ${state.join(' ')}`);
    const netns = path.join(e.runRoot, 'netns');
    if (existsSync(netns) && readdirSync(netns).length) out.push(`network namespaces left: ${readdirSync(netns).join(' ')}`);
    const cache = path.join(e.runRoot, 'networks', 'cache');
    if (existsSync(cache) && readdirSync(cache).length) out.push(`CNI attachments left: ${readdirSync(cache).join(' ')}`);
  }
  // Monitors of this engine's containers (argv: tsrun-monitor <id> ...), found in /proc (no pgrep in the VM).
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      continue; // exited
    }
    if (argv[0] === 'tsrun-monitor' && existsSync(path.join(containers, argv[1] ?? '-'))) out.push(`monitor left: ${pid} ${argv.join(' ')}`);
  }
  return out;
}

/** The cgroup v2 dir of a running container (from its runtime state), or undefined. */
export function cgroupDirOf(e: Engine, id: string): string | undefined {
  try {
    const st = JSON.parse(readFileSync(path.join(e.runRoot, id, 'state.json'), 'utf8')) as { cgroupPath?: string };
    const mi = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .find((l) => l.includes(' - cgroup2 '));
    const mnt = mi?.split(' ')[4];
    return mnt && st.cgroupPath ? path.join(mnt, st.cgroupPath) : undefined;
  } catch {
    return undefined;
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll `fn` until it returns a truthy value or the deadline passes (then the last value). */
export async function until<T>(fn: () => T | Promise<T>, timeoutMs = 10_000, stepMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v || Date.now() > deadline) return v;
    await sleep(stepMs);
  }
}
