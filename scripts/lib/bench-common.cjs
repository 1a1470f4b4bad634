// Shared by the timers of scripts/bench-verbs.sh, bench-engine.sh and bench-network.sh (each
// copies this file next to its timer.cjs in its work directory): timed commands, our processes,
// cgroups, mounts and podman containers, the untimed wait for helpers, stats and their tables,
// interleaved rounds, bulk starts (N at once), the sweep steps of the EXIT trap, the timers' main,
// what the two engine benches share (engineBench), and (bench-network.sh) snapshots of the host's
// network state.
'use strict';
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

class RunError extends Error {}

const pause = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
const show = (s) => (s.length ? s.replace(/\n?$/, '\n') : '(empty)\n');
const isDir = (p) => {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
};
const listDir = (d) => {
  try {
    return fs.readdirSync(d);
  } catch {
    return [];
  }
};
const readLink = (p) => {
  try {
    return fs.readlinkSync(p);
  } catch {
    return '';
  }
};
const under = (dirs, p) => dirs.some((d) => p === d || p.startsWith(`${d}/`));

/** The environment of every command: ours minus the benchmark's config and what is not the engines' cost. */
function cleanEnv() {
  const env = { ...process.env };
  delete env.BENCH_CFG;
  delete env.NODE_EXTRA_CA_CERTS; // ~35-40 ms per Node start on some hosts: not tsrun's cost
  delete env.TSRUN_NATIVE;
  return env;
}

/** The private podman's environment (see bench_podman_config in bench-common.sh). */
function podmanEnvOf(env, confDir, tmpDir) {
  return { ...env, CONTAINERS_CONF: path.join(confDir, 'containers.conf'), CONTAINERS_STORAGE_CONF: path.join(confDir, 'storage.conf'), TMPDIR: tmpDir };
}

/**
 * exec(argv, { env, what, timeout, mayFail }): one timed command (process.hrtime.bigint() around
 * spawnSync), stdin /dev/null, stdout/stderr to fresh files in outDir (a detached container keeps
 * its stdio: a pipe would never close). A failure throws a RunError with its stderr unless
 * mayFail; the stderr of a successful run is kept in notes (what -> Set).
 */
function makeExec({ outDir, env, notes, timeout: defTimeout = 120_000 }) {
  let seq = 0;
  return (argv, { env: e = env, what, timeout = defTimeout, mayFail = false } = {}) => {
    const [file, ...args] = argv;
    const base = path.join(outDir, String(++seq % 4));
    const outPath = `${base}.out`;
    const errPath = `${base}.err`;
    fs.rmSync(outPath, { force: true }); // a detached container may still hold the old file
    fs.rmSync(errPath, { force: true });
    const ofd = fs.openSync(outPath, 'w');
    const efd = fs.openSync(errPath, 'w');
    let r;
    let t0;
    let t1;
    try {
      t0 = process.hrtime.bigint();
      r = spawnSync(file, args, { env: e, stdio: ['ignore', ofd, efd], timeout, cwd: '/' });
      t1 = process.hrtime.bigint();
    } finally {
      fs.closeSync(ofd);
      fs.closeSync(efd);
    }
    const stdout = fs.readFileSync(outPath, 'utf8');
    const stderr = fs.readFileSync(errPath, 'utf8');
    const ok = !r.error && r.status === 0;
    if (!ok && !mayFail) {
      const how = r.error ? `error ${r.error.message}` : r.signal ? `killed by ${r.signal}` : `exit status ${r.status}`;
      throw new RunError(`FAILED: ${what}: ${how}\n  command: ${argv.join(' ')}\n  --- stderr ---\n${show(stderr)}  --- stdout ---\n${show(stdout)}`);
    }
    if (ok && what && stderr.trim()) {
      if (!notes.has(what)) notes.set(what, new Set());
      notes.get(what).add(stderr.trim());
    }
    return { ok, ms: Number(t1 - t0) / 1e6, stdout, stderr, status: r.status };
  };
}

/**
 * Our processes (not this one, not our shell): command line or environment mentions a needle (the
 * work dirs: our tsrun CLI, podman, conmon, `podman container cleanup`, CNI plugins, runc; the
 * prefix); a tsrun-monitor with an fd or cwd in one of dirs (its container's directory, its log);
 * or, unless cgroups is false, a process in a cgroup path containing one of cgNeedles (the
 * containers' own processes mention nothing).
 */
function ourProcs({ needles, dirs = [], cgNeedles = [], cgroups = true }) {
  const res = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    if (pid === process.pid || pid === process.ppid) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0').join(' ').trim();
      if (!cmd) continue; // kernel thread or zombie
      const hit = (s) => needles.some((n) => s.includes(n));
      let ours = hit(cmd) || hit(fs.readFileSync(`/proc/${e}/environ`, 'utf8'));
      if (!ours && dirs.length && cmd.startsWith('tsrun-monitor')) {
        ours = under(dirs, readLink(`/proc/${e}/cwd`)) || listDir(`/proc/${e}/fd`).some((fd) => under(dirs, readLink(`/proc/${e}/fd/${fd}`)));
      }
      if (!ours && cgroups && cgNeedles.length) {
        const cg = fs.readFileSync(`/proc/${e}/cgroup`, 'utf8');
        ours = cgNeedles.some((n) => cg.includes(n));
      }
      if (ours) res.push({ pid, cmd: cmd.slice(0, 200) });
    } catch {
      /* exited */
    }
  }
  return res;
}

/** Untimed: until findProcs() is empty (conmon, podman cleanup, tsrun monitors). Returns the ms waited, or -1 after limitMs. */
function waitQuiet(findProcs, limitMs = 15_000) {
  const t0 = Date.now();
  while (findProcs().length) {
    if (Date.now() - t0 > limitMs) return -1;
    pause(5);
  }
  return Date.now() - t0;
}

/** The ids of the containers our podman made, from its events file (events_logger = "file"). */
function podmanIds(eventsLog) {
  const ids = new Set();
  let text = '';
  try {
    text = fs.readFileSync(eventsLog, 'utf8');
  } catch {
    return ids;
  }
  for (const line of text.split('\n')) {
    try {
      const ev = JSON.parse(line);
      if (ev.Type === 'container' && ev.ID) ids.add(ev.ID);
    } catch {
      /* partial line */
    }
  }
  return ids;
}

/** Container cgroups of ours (depth <= 4): <prefix>-* (runc, tsrun-oci), tsrun/<one of tsIds>, libpod_parent/libpod-<one of pdIds>. */
function ourCgroups({ prefix, tsIds = new Set(), pdIds = new Set() }) {
  const found = [];
  const walk = (dir, depth) => {
    for (const e of listDir(dir)) {
      const p = path.join(dir, e);
      if (!isDir(p)) continue;
      const parent = path.basename(dir);
      if (e.startsWith(`${prefix}-`)) found.push(p);
      else if (parent === 'tsrun' && [...tsIds].some((id) => id.length >= 12 && e.startsWith(id))) found.push(p); // ps -q gives short ids
      else if (parent === 'libpod_parent' && e.startsWith('libpod-') && pdIds.has(e.slice('libpod-'.length))) found.push(p);
      else if (depth < 4 && e !== parent) walk(p, depth + 1);
    }
  };
  walk('/sys/fs/cgroup', 1);
  return found;
}

function mountsUnder(dirs) {
  const res = [];
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const mp = line.split(' ')[4];
    if (!mp) continue;
    const p = mp.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
    if (under(dirs, p)) res.push(p);
  }
  return res.reverse(); // deepest first
}

/** Runtime state of our podman containers in the runtimes' default roots (podman passes no --root): roots is [[dir, runtime binary]]. */
function runtimeStateLeft(pdIds, roots) {
  const res = [];
  for (const [root, file] of roots) {
    for (const e of listDir(root)) if (pdIds.has(e) || pdIds.has(e.replace(/\.lock$/, ''))) res.push({ root, id: e.replace(/\.lock$/, ''), file, entry: e });
  }
  return res;
}

// ---- stats ----
function quantile(sorted, q) {
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]; // nearest rank
}
function median(sorted) {
  const n = sorted.length;
  return n % 2 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}
function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, min: s[0], med: median(s), p90: quantile(s, 0.9), max: s[s.length - 1], mean: s.reduce((a, b) => a + b, 0) / s.length };
}

// ---- output ----
const fmt = (x, w = 8) => x.toFixed(1).padStart(w);
/** A min/median/p90 table: head() and row(name, stats), names padded to width, after indent. */
function table(width, indent = '  ') {
  return {
    head: () => `${indent}${''.padEnd(width)}${'min'.padStart(8)}${'median'.padStart(8)}${'p90'.padStart(8)}`,
    row: (name, s) => `${indent}${name.padEnd(width)}${fmt(s.min)}${fmt(s.med)}${fmt(s.p90)}`,
  };
}
const goal = (r, g) => `goal: <= ${g.toFixed(2)} (${r <= g ? 'met' : 'not met'})`;
/** '  tsrun/podman  min R   median R', and with g the goal on the median ratio. */
const ratioLine = (name, a, b, g) => `  ${name}  min ${(a.min / b.min).toFixed(2)}   median ${(a.med / b.med).toFixed(2)}${g === undefined ? '' : `   ${goal(a.med / b.med, g)}`}`;
const progress = (s) => process.stderr.isTTY && process.stderr.write(`\r\x1b[K  ${s}`);
const progressEnd = () => process.stderr.isTTY && process.stderr.write('\r\x1b[K');
/** The raw samples: a column per key of cols, a row per round. */
function writeTsv(file, cols) {
  const keys = Object.keys(cols);
  const n = Math.max(...keys.map((k) => cols[k].length));
  const lines = [`round\t${keys.join('\t')}`];
  for (let i = 0; i < n; i++) lines.push([i + 1, ...keys.map((k) => (cols[k][i] ?? NaN).toFixed(3))].join('\t'));
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
}
/** verify's end when something is left: the problems on stderr, exit status 1. */
function reportLeftovers(name, problems) {
  if (!problems.length) return;
  process.stderr.write(`${name}: leftovers after the runs (removed by the cleanup that follows):\n  ${problems.join('\n  ')}\n`);
  process.exit(1);
}
/** sweep's end when it had to remove something: what, on stderr, exit status 1. */
function reportSweep(name, forced) {
  if (!forced.length) return;
  process.stderr.write(`${name}: cleanup had to remove:\n  ${forced.join('\n  ')}\n`);
  process.exit(1);
}
/** The stderr of the successful runs (makeExec's notes), a line each. */
function printNotes(notes) {
  for (const [what, set] of notes) for (const n of set) console.log(`note: ${what} printed on stderr (exit 0): ${n.split('\n').join(' | ').slice(0, 300)}`);
}

// ---- interleaved rounds ----
/** Odd rounds a first, even rounds b first. */
const alternate = (a, b) => (i) => (i % 2 ? [a, b] : [b, a]);

/**
 * warmup untimed rounds, then runs timed ones; round i runs the sides in order(i), each followed
 * by waitQuiet() (untimed). A side is { key, fn } and fn returns { ms, ...parts }. Returns
 * { samples: key -> [ms], parts: 'key part' -> [ms], waits: key -> [ms waited], slow: how many
 * times waitQuiet gave up }.
 */
function interleave({ title, sides, order, warmup, runs, waitQuiet: quiet }) {
  const samples = Object.fromEntries(sides.map((s) => [s.key, []]));
  const waits = Object.fromEntries(sides.map((s) => [s.key, []]));
  const parts = {};
  let slow = 0;
  const one = (side, record) => {
    const r = side.fn();
    const w = quiet();
    if (w < 0) slow++;
    if (!record) return;
    samples[side.key].push(r.ms);
    if (w >= 0) waits[side.key].push(w);
    for (const [k, v] of Object.entries(r)) if (k !== 'ms') (parts[`${side.key} ${k}`] ??= []).push(v);
  };
  for (let w = 1; w <= warmup; w++) {
    progress(`${title}: warm-up ${w}/${warmup}`);
    for (const s of order(w)) one(s, false);
  }
  for (let i = 1; i <= runs; i++) {
    progress(`${title}: round ${i}/${runs}`);
    for (const s of order(i)) one(s, true);
  }
  progressEnd();
  return { samples, parts, waits, slow };
}

/** The median untimed waits of interleave's result r (names: key -> name), and the times it gave up. */
function printWaits(r, names) {
  const m = (k) => (r.waits[k].length ? `${stats(r.waits[k]).med.toFixed(0)} ms` : 'n/a');
  console.log(`  (untimed wait after return until the helpers were gone, median: ${Object.entries(names).map(([k, n]) => `${n} ${m(k)}`).join(', ')})`);
  if (r.slow) console.log(`  note: ${r.slow} time(s) helpers were still running 15 s after the command returned`);
}

// ---- N at once ----
const howEnded = (x) => (x.error ? x.error.message : x.signal ? `killed by ${x.signal}` : `exit status ${x.status}`);

/** Spawns every argv at once; resolves when all have exited: { ms, res: [{ status, signal, error }] }. */
function spawnAll(argvs, stdios, env) {
  return new Promise((resolve) => {
    let left = argvs.length;
    const res = new Array(argvs.length);
    let t0;
    const done = (i, r) => {
      if (res[i]) return;
      res[i] = r;
      if (--left === 0) resolve({ ms: Number(process.hrtime.bigint() - t0) / 1e6, res });
    };
    t0 = process.hrtime.bigint();
    argvs.forEach(([file, ...args], i) => {
      const c = spawn(file, args, { env, stdio: stdios[i], cwd: '/' });
      c.on('error', (err) => done(i, { error: err }));
      c.on('exit', (status, signal) => done(i, { status, signal }));
    });
  });
}

/**
 * One bulk start of a client: n times argv (env) at once, stdout/stderr of #i in
 * outDir/bulk-i.out and .err, timed from the first spawn until all returned; onStdout sees each
 * stdout. Then, untimed: listRunning() (how many run), removeAll(), waitQuiet(). A RunError when
 * the helpers outlive the removal by 15 s, when a run failed (with its stderr), or when not all n
 * ran. Resolves to the ms.
 */
async function bulkStart({ side, n, label, argv, env, outDir, listRunning, removeAll, waitQuiet: quiet, onStdout = () => {} }) {
  const fds = [];
  const stdios = [];
  const file = (i, ext) => path.join(outDir, `bulk-${i}.${ext}`);
  for (let i = 0; i < n; i++) {
    const o = fs.openSync(file(i, 'out'), 'w');
    const er = fs.openSync(file(i, 'err'), 'w');
    fds.push(o, er);
    stdios.push(['ignore', o, er]);
  }
  let r;
  try {
    r = await spawnAll(Array.from({ length: n }, () => argv), stdios, env);
  } finally {
    for (const fd of fds) fs.closeSync(fd);
  }
  const failed = [];
  r.res.forEach((x, i) => {
    onStdout(fs.readFileSync(file(i, 'out'), 'utf8'));
    if (x.error || x.status !== 0) failed.push(`#${i + 1}: ${howEnded(x)}: ${fs.readFileSync(file(i, 'err'), 'utf8').trim().slice(0, 500)}`);
  });
  const running = listRunning();
  removeAll();
  if (quiet() < 0) throw new RunError(`${side}: helpers still running 15 s after the removal of the bulk containers`);
  if (failed.length) throw new RunError(`FAILED: ${label}: ${failed.length} of ${n} ${side} run -d failed:\n  ${failed.join('\n  ')}`);
  if (running !== n) throw new RunError(`${label}: ${running} of ${n} ${side} containers running after all returned (ps -q)`);
  return r.ms;
}

/**
 * A section of bulk starts, two sides { key, col, name, start(n, label) -> Promise<ms> }: one
 * untimed batch of 5 per side ('warm-up'), then `rounds` rounds of n ('bulk i'), the order
 * alternating, 200 ms between (the host settles after the untimed removal). Writes the samples
 * (columns col) to tsvFile; prints the table (rows name, with the median per container) and the
 * ratio line (ratio, goal g when given).
 */
async function bulkSection({ title, n, rounds, sides: [a, b], tsvFile, tbl, ratio, g }) {
  const s = { [a.key]: [], [b.key]: [] };
  progress(`${title}: warm-up`);
  await a.start(5, 'warm-up');
  await b.start(5, 'warm-up');
  for (let i = 1; i <= rounds; i++) {
    progress(`${title}: round ${i}/${rounds}`);
    for (const side of alternate(a, b)(i)) {
      s[side.key].push(await side.start(n, `bulk ${i}`));
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  progressEnd();
  writeTsv(tsvFile, { [a.col]: s[a.key], [b.col]: s[b.key] });
  const sa = stats(s[a.key]);
  const sb = stats(s[b.key]);
  console.log(tbl.head());
  for (const [side, st] of [
    [a, sa],
    [b, sb],
  ])
    console.log(`${tbl.row(side.name, st)}   (median ${(st.med / n).toFixed(1)} ms per container)`);
  console.log(ratioLine(ratio, sa, sb, g));
}

// ---- the sweep (EXIT trap): each step appends what it had to remove to forced ----
function sweepStep(forced, name, fn) {
  try {
    fn();
  } catch (e) {
    forced.push(`${name}: ${e.message}`);
  }
}

/** `podman rm --all --force --time 0`, then the runtime state of our podman containers in roots. */
function sweepPodman(forced, { podman, podmanEnv, env, pdIds, roots }) {
  sweepStep(forced, 'podman rm -af', () => {
    const r = spawnSync(podman, ['rm', '--all', '--force', '--time', '0'], { env: podmanEnv, encoding: 'utf8', timeout: 120_000 });
    if (r.stdout?.trim()) forced.push(`podman containers: ${r.stdout.trim().split('\n').join(' ')}`);
    if (r.status !== 0) forced.push(`podman rm -af failed: ${r.error?.message ?? r.stderr}`);
  });
  sweepStep(forced, 'podman runtime state', () => {
    for (const s of runtimeStateLeft(pdIds(), roots)) {
      forced.push(`runtime state ${s.root}/${s.entry}`);
      spawnSync(s.file, ['delete', '--force', s.id], { env, stdio: 'ignore', timeout: 30_000 });
      fs.rmSync(path.join(s.root, s.entry), { recursive: true, force: true });
    }
  });
}

/** Waits up to 5 s for findProcs() to be empty, then SIGKILLs what is left. */
function sweepProcs(forced, findProcs) {
  sweepStep(forced, 'processes', () => {
    const deadline = Date.now() + 5_000;
    while (findProcs().length && Date.now() < deadline) pause(50);
    const procs = findProcs();
    for (const p of procs) {
      forced.push(`process ${p.pid} ${p.cmd}`);
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {}
    }
    const until = Date.now() + 3_000;
    while (procs.some((p) => fs.existsSync(`/proc/${p.pid}`)) && Date.now() < until) pause(20);
  });
}

function sweepCgroups(forced, cgroups) {
  sweepStep(forced, 'cgroups', () => {
    for (const c of cgroups) {
      forced.push(`cgroup ${c}`);
      const dirs = [];
      const walk = (d) => {
        dirs.push(d);
        for (const e of listDir(d)) if (isDir(path.join(d, e))) walk(path.join(d, e));
      };
      walk(c);
      for (const d of dirs) {
        for (const [file, v] of [
          ['freezer.state', 'THAWED'],
          ['cgroup.freeze', '0'],
        ]) {
          try {
            fs.writeFileSync(path.join(d, file), v);
          } catch {}
        }
        for (const pid of listDir(d).includes('cgroup.procs') ? fs.readFileSync(path.join(d, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean) : []) {
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {}
        }
      }
      pause(100);
      for (const d of dirs.reverse()) {
        try {
          fs.rmdirSync(d);
        } catch {}
      }
    }
  });
}

function sweepMounts(forced, mounts) {
  sweepStep(forced, 'mounts', () => {
    for (const m of mounts) {
      forced.push(`mount ${m}`);
      if (spawnSync('umount', [m], { stdio: 'ignore' }).status !== 0) spawnSync('umount', ['-l', m], { stdio: 'ignore' });
    }
  });
}

/**
 * Puts back what the clients created outside our dirs (listed by bench_note_host_paths in
 * bench-common.sh): only what was absent before, and (except podman's blob-info cache) only
 * empty directories, deepest first.
 */
function sweepHostPaths(forced, hostAbsentFile) {
  sweepStep(forced, 'host paths', () => {
    const absent = fs.readFileSync(hostAbsentFile, 'utf8').split('\n').filter(Boolean);
    const prune = (d) => {
      if (!isDir(d)) return;
      for (const e of listDir(d)) prune(path.join(d, e));
      try {
        fs.rmdirSync(d);
      } catch {}
    };
    for (const p of absent.filter((p) => p.startsWith('/sys/fs/cgroup/'))) {
      try {
        fs.rmdirSync(path.join(p, 'conmon')); // libpod_parent/conmon: podman's shared conmon cgroup, empty once conmon is gone
      } catch {}
      try {
        fs.rmdirSync(p);
      } catch {}
    }
    if (absent.includes('/var/lib/containers/cache')) fs.rmSync('/var/lib/containers/cache', { recursive: true, force: true });
    for (const p of absent.filter((p) => !p.startsWith('/sys/fs/cgroup/') && p !== '/var/lib/containers/cache')) prune(p);
  });
}

// ---- the timers' main ----
/**
 * Runs modes[process.argv[2]] (modes.bench without one): a RunError ends it with its message
 * (after onError, outside verify and sweep) and exit status 1; anything else is a bug and throws.
 */
function main(name, modes, onError = () => {}) {
  const mode = process.argv[2];
  (async () => {
    try {
      await (modes[mode] ?? modes.bench)();
    } catch (e) {
      if (!(e instanceof RunError)) throw e;
      if (mode !== 'sweep' && mode !== 'verify') onError();
      progressEnd();
      process.stderr.write(`\n${name}: ${e.message}\n`);
      process.exit(1);
    }
  })();
}

// ---- what bench-engine.sh and bench-network.sh share ----
/**
 * cfg (BENCH_CFG): tsrun (the private copy), runc, podman ('' for none), work, prefix. The work
 * dir: out/ (the runs' output files), tsrun-root and tsrun-run (tsrun's --root/--runroot),
 * podman/ (containers.conf, storage.conf, tmp/events.log), tsrun-ids (the tsrun ids seen, for
 * the EXIT trap). Returns the timed commands (exec, ts, pd), what they printed on stderr (notes),
 * the tsrun ids (tsIds, saveIds, loadIds; finish() prints the notes and saves the ids), the finders of what is ours: processes (the work
 * dir or the prefix in their command line or environment, a tsrun-monitor with an fd in the work
 * dir, a process in a cgroup of our containers), the untimed waitQuiet (no helper of ours:
 * conmon, podman cleanup, CNI plugins, tsrun monitors; -1 after 15 s), cgroups, mounts, runc
 * state of our podman containers in /run/runc (podman passes no --root); leftovers() (the
 * common checks for verify, after loadIds) and sweepContainers() (loadIds, then the first steps
 * of the sweep; returns its list of what had to be removed) and sweepHost(forced) (its next ones).
 */
function engineBench(cfg) {
  const env = cleanEnv();
  const W = (...p) => path.join(cfg.work, ...p);
  const podmanEnv = podmanEnvOf(env, W('podman'), W('podman', 'tmp'));
  const TS = [cfg.tsrun, '--root', W('tsrun-root'), '--runroot', W('tsrun-run')];
  const notes = new Map(); // what -> Set of stderr texts of successful runs
  const tsIds = new Set(); // every tsrun container id seen (for the cgroup check)
  const exec = makeExec({ outDir: W('out'), env, notes });
  const pd = (args, o = {}) => exec([cfg.podman, ...args], { env: podmanEnv, ...o });
  const ts = (args, o = {}) => exec([...TS, ...args], o);
  const pdIds = () => podmanIds(W('podman', 'tmp', 'events.log'));
  const procs = ({ cgroups = true } = {}) =>
    ourProcs({
      needles: [cfg.work, cfg.prefix],
      dirs: [cfg.work],
      cgroups,
      cgNeedles: cgroups ? [`/${cfg.prefix}-`, ...[...tsIds].map((id) => `/tsrun/${id}`), ...[...pdIds()].map((id) => `/libpod-${id}`)] : [],
    });
  const quiet = () => waitQuiet(() => procs({ cgroups: false }));
  const cgroups = () => ourCgroups({ prefix: cfg.prefix, tsIds, pdIds: pdIds() });
  const mounts = () => mountsUnder([cfg.work]);
  const podmanStateLeft = () => runtimeStateLeft(pdIds(), [['/run/runc', cfg.runc]]).map((s) => s.entry);
  function tsrunLeft() {
    const r = ts(['ps', '-aq', '--no-trunc'], { what: null, mayFail: true });
    return r.ok ? { ids: r.stdout.split('\n').filter(Boolean) } : { error: r.stderr.trim() || `exit status ${r.status}` };
  }
  const saveIds = () => fs.writeFileSync(W('tsrun-ids'), `${[...tsIds].join('\n')}\n`);
  const finish = () => {
    printNotes(notes);
    saveIds();
  };
  function loadIds() {
    try {
      for (const id of fs.readFileSync(W('tsrun-ids'), 'utf8').split('\n').filter(Boolean)) tsIds.add(id);
    } catch {}
  }
  /** tsrun and podman containers, runc state of podman's, mounts, processes, cgroups: one line each. */
  function leftovers() {
    loadIds();
    const problems = [];
    const t = tsrunLeft();
    if (t.error) problems.push(`tsrun ps -aq failed: ${t.error}`);
    else if (t.ids.length) problems.push(`tsrun containers left (ps -a): ${t.ids.join(' ')}`);
    if (cfg.podman) {
      const r = pd(['ps', '-aq'], { what: null, mayFail: true });
      if (!r.ok) problems.push(`podman ps -aq failed: ${r.stderr.trim()}`);
      else if (r.stdout.trim()) problems.push(`podman containers left: ${r.stdout.trim().split('\n').join(' ')}`);
      for (const s of podmanStateLeft()) problems.push(`runc state /run/runc/${s} of a podman container`);
    }
    for (const m of mounts()) problems.push(`mount left: ${m}`);
    for (const p of procs()) problems.push(`process left: ${p.pid} ${p.cmd}`);
    for (const c of cgroups()) problems.push(`cgroup left: ${c}`);
    return problems;
  }
  /** The sweep's first steps: tsrun's containers (rm -f), then podman's (sweepPodman). Returns forced. */
  function sweepContainers() {
    loadIds();
    const forced = [];
    sweepStep(forced, 'tsrun containers', () => {
      if (!fs.existsSync(W('tsrun-root'))) return;
      const t = tsrunLeft();
      if (t.error) forced.push(`tsrun ps -aq failed: ${t.error}`);
      else if (t.ids.length) {
        forced.push(`tsrun containers: ${t.ids.join(' ')}`);
        for (const id of t.ids) tsIds.add(id);
        const r = ts(['rm', '-f', ...t.ids], { what: null, mayFail: true, timeout: 300_000 });
        if (!r.ok) forced.push(`tsrun rm -f failed: ${r.stderr.trim()}`);
      }
    });
    if (cfg.podman && fs.existsSync(W('podman', 'containers.conf'))) {
      sweepPodman(forced, { podman: cfg.podman, podmanEnv, env, pdIds, roots: [['/run/runc', cfg.runc]] });
    }
    return forced;
  }
  /** The sweep's next steps, once no container is left: processes, cgroups, mounts. */
  function sweepHost(forced) {
    sweepProcs(forced, procs);
    sweepCgroups(forced, cgroups());
    sweepMounts(forced, mounts());
  }
  return {
    env,
    W,
    podmanEnv,
    TS,
    notes,
    tsIds,
    exec,
    pd,
    ts,
    podmanIds: pdIds,
    ourProcs: procs,
    waitQuiet: quiet,
    ourCgroups: cgroups,
    mountsUnder: mounts,
    podmanStateLeft,
    tsrunLeft,
    saveIds,
    loadIds,
    finish,
    leftovers,
    sweepContainers,
    sweepHost,
  };
}

// ---- the host's network state (bench-network.sh) ----
const tryRun = (file, args) => {
  const r = spawnSync(file, args, { encoding: 'utf8', timeout: 30_000 });
  return r.status === 0 ? r.stdout : null;
};

/** iptables-save / ip6tables-save parsed: table -> { chains: [name], rules: ['-A ...'] } (counters dropped). */
function parseSave(text) {
  const tables = {};
  let t = null;
  for (const line of (text ?? '').split('\n')) {
    if (line.startsWith('*')) tables[(t = line.slice(1))] = { chains: [], rules: [] };
    else if (!t || line.startsWith('#') || line === 'COMMIT') continue;
    else if (line.startsWith(':')) tables[t].chains.push(line.slice(1).split(' ')[0]);
    else if (line.startsWith('-A ')) tables[t].rules.push(line.replace(/^\[\d+:\d+\] /, ''));
  }
  return tables;
}

/** Links (name, master), network namespaces in /run/netns, addresses, IPv4/IPv6 netfilter rules. */
function netSnapshot() {
  const links = [];
  for (const l of JSON.parse(tryRun('ip', ['-j', 'link', 'show']) ?? '[]')) links.push({ name: l.ifname, master: l.master ?? null, kind: l.link_type });
  const addrs = [];
  for (const l of JSON.parse(tryRun('ip', ['-j', '-4', 'addr', 'show']) ?? '[]')) for (const a of l.addr_info ?? []) addrs.push(`${l.ifname} ${a.local}/${a.prefixlen}`);
  return {
    links,
    addrs,
    netns: listDir('/run/netns'),
    v4: parseSave(tryRun('iptables-save', [])),
    v6: parseSave(tryRun('ip6tables-save', [])),
  };
}

/** What is in b and not in a: links, netns, addresses, chains and rules (a multiset difference). */
function netDiff(a, b) {
  const out = { links: [], netns: [], addrs: [], chains: [], rules: [] };
  const names = new Set(a.links.map((l) => l.name));
  out.links = b.links.filter((l) => !names.has(l.name)).map((l) => (l.master ? `${l.name} (master ${l.master})` : l.name));
  out.netns = b.netns.filter((n) => !a.netns.includes(n));
  out.addrs = b.addrs.filter((x) => !a.addrs.includes(x));
  for (const fam of ['v4', 'v6']) {
    for (const [t, tb] of Object.entries(b[fam])) {
      const ta = a[fam][t] ?? { chains: [], rules: [] };
      for (const c of tb.chains) if (!ta.chains.includes(c)) out.chains.push({ fam, table: t, chain: c });
      const left = new Map();
      for (const r of ta.rules) left.set(r, (left.get(r) ?? 0) + 1);
      for (const r of tb.rules) {
        const n = left.get(r) ?? 0;
        if (n > 0) left.set(r, n - 1);
        else out.rules.push({ fam, table: t, rule: r });
      }
    }
  }
  return out;
}

/** One line per difference, for a report. */
function netDiffLines(d) {
  return [
    ...d.links.map((l) => `link ${l}`),
    ...d.addrs.map((x) => `address ${x}`),
    ...d.netns.map((n) => `netns /run/netns/${n}`),
    ...d.chains.map((c) => `${c.fam === 'v4' ? 'iptables' : 'ip6tables'} -t ${c.table} chain ${c.chain}`),
    ...d.rules.map((r) => `${r.fam === 'v4' ? 'iptables' : 'ip6tables'} -t ${r.table} ${r.rule}`),
  ];
}

/**
 * Removes what the run added to the host's network state and is ours: rules that mention one of
 * needles (our bridges, subnets' prefixes, container ids), then the chains added since the
 * snapshot whose rules all mention a needle and that no rule jumps to any more (with their own
 * rules; generic(chain): a shared chain, whose jumps go too, see below), then links in bridges (added since the
 * snapshot, no port left in them) and netns in netnsOk (added since the snapshot). Returns what it
 * removed, one line each.
 */
function netRestore(before, { needles, bridges, generic = () => false, netnsOk = () => false }) {
  const removed = [];
  const now = netSnapshot();
  const d = netDiff(before, now);
  for (const fam of ['v4', 'v6']) {
    const restore = fam === 'v4' ? 'iptables-restore' : 'ip6tables-restore';
    const tables = [...new Set([...d.rules, ...d.chains].filter((x) => x.fam === fam).map((x) => x.table))];
    for (const t of tables) {
      const mine = d.rules.filter((r) => r.fam === fam && r.table === t && needles.some((n) => r.rule.includes(n)));
      const dels = mine.map((r) => r.rule.replace(/^-A /, '-D '));
      // chains new since the snapshot: empty and unreferenced once our rules are gone
      const cur = now[fam][t];
      const left = [...cur.rules];
      for (const r of mine) left.splice(left.indexOf(r.rule), 1);
      const newChains = d.chains.filter((c) => c.fam === fam && c.table === t).map((c) => c.chain);
      const drop = [];
      for (let changed = true; changed; ) {
        changed = false;
        for (const c of newChains) {
          if (drop.includes(c)) continue;
          const own = left.filter((r) => r.startsWith(`-A ${c} `));
          const refs = left.filter((r) => new RegExp(`\\s-[jg] ${c}(\\s|$)`).test(r) && !r.startsWith(`-A ${c} `));
          // only chains of ours: all their rules mention a needle (another user's chain may be
          // half made: not referenced yet)
          if (!generic(c) && !(own.length && own.every((r) => needles.some((n) => r.includes(n))))) continue;
          if (refs.length) {
            // a shared chain of the CNI plugins (CNI-FORWARD, CNI-ADMIN...) made during the run:
            // goes with the jumps to it when they were made during the run too and it holds no
            // container's rule (an address) any more
            if (!generic(c) || own.some((r) => /\d+\.\d+\.\d+\.\d+/.test(r))) continue;
            const fresh = d.rules.filter((r) => r.fam === fam && r.table === t).map((r) => r.rule);
            if (!refs.every((r) => fresh.includes(r))) continue;
            for (const r of refs) {
              dels.push(r.replace(/^-A /, '-D '));
              left.splice(left.indexOf(r), 1);
            }
          }
          // a chain made during the run that no rule jumps to any more: its own rules go with it
          for (const r of own) {
            dels.push(r.replace(/^-A /, '-D '));
            left.splice(left.indexOf(r), 1);
          }
          drop.push(c);
          changed = true;
        }
      }
      if (!dels.length && !drop.length) continue;
      const input = `*${t}\n${dels.join('\n')}${dels.length ? '\n' : ''}${drop.map((c) => `-X ${c}`).join('\n')}${drop.length ? '\n' : ''}COMMIT\n`;
      const r = spawnSync(restore, ['--noflush'], { input, encoding: 'utf8', timeout: 30_000 });
      if (r.status !== 0) removed.push(`${restore} --noflush failed (${(r.stderr || r.error?.message || '').trim()}) on:\n${input}`);
      else removed.push(...dels.map((x) => `${restore.replace('-restore', '')} -t ${t} ${x}`), ...drop.map((c) => `${restore.replace('-restore', '')} -t ${t} -X ${c}`));
    }
  }
  for (const name of d.links.filter((l) => bridges.includes(l))) { // (a bridge has no master: its line is its name)
    if (now.links.some((l) => l.master === name)) continue; // still has ports: not ours to take down
    if (spawnSync('ip', ['link', 'del', name], { stdio: 'ignore' }).status === 0) removed.push(`ip link del ${name}`);
  }
  for (const n of d.netns.filter(netnsOk)) {
    if (spawnSync('ip', ['netns', 'del', n], { stdio: 'ignore' }).status === 0) removed.push(`ip netns del ${n}`);
  }
  return removed;
}

module.exports = {
  RunError,
  pause,
  show,
  isDir,
  listDir,
  readLink,
  under,
  cleanEnv,
  podmanEnvOf,
  makeExec,
  ourProcs,
  waitQuiet,
  podmanIds,
  ourCgroups,
  mountsUnder,
  runtimeStateLeft,
  quantile,
  median,
  stats,
  fmt,
  table,
  goal,
  ratioLine,
  progress,
  progressEnd,
  writeTsv,
  printNotes,
  reportLeftovers,
  reportSweep,
  alternate,
  interleave,
  printWaits,
  howEnded,
  spawnAll,
  bulkStart,
  bulkSection,
  main,
  engineBench,
  sweepStep,
  sweepPodman,
  sweepProcs,
  sweepCgroups,
  sweepMounts,
  sweepHostPaths,
  netSnapshot,
  netDiff,
  netDiffLines,
  netRestore,
};
