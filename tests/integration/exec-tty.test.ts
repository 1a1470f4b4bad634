// `tsrun-oci exec --tty` in a running container, many times over: the foreground proxy between
// our terminal and the container's pty master must return the process's exit status and all of
// its output, and end without a crash, every time. It once closed the master fd from its read
// side (when the output ended) while its write side still forwarded stdin to the same fd: a byte
// arriving then (script(1) sends its EOF character when its stdin ends) was written to a closed
// fd, an unhandled EBADF 'error' printed a Node stack trace and the exit status became 1. And it
// took libuv's early EOF (POLLHUP after a short read) for the end of the output, losing what the
// process wrote last when it was still in the pty's buffers (here: the echo, then "got:...").
// `script` gives tsrun-oci a terminal, as a user's shell would.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBaseBundle, cleanupAll, makeBundle, oci, ociSkipReason, removeScratch, show, tsrunOci, type BaseBundle } from './helpers/bundle.js';

const hasScript = spawnSync('sh', ['-c', 'command -v script'], { stdio: 'ignore' }).status === 0;
const skip = ociSkipReason() ?? (hasScript ? null : '`script` is missing (apt-get install bsdutils)');
if (skip) console.log(`exec-tty: skipped: ${skip}`);

/** A Node stack trace, an uncaught error or any error line, wherever it went (under script, stderr is the pty too). */
const CRASH = /node:events|Unhandled 'error'|^\s+at \S.*\(.*:\d+:\d+\)|^\w*Error: |tsrun-oci: .*failed: /m;

describe.skipIf(!!skip)('tsrun-oci exec --tty, repeated', () => {
  let base: BaseBundle | undefined;
  let root: string | undefined;
  const ids: string[] = [];
  let c = '';

  /** `tsrun-oci exec -t <c> <cmd>` inside script(1), with `input` as the terminal's typed input. */
  const execTty = (cmd: string, input = '') => {
    const line = `${tsrunOci} --root ${root} exec -t ${c} ${cmd}`;
    const r = spawnSync('script', ['-qec', line, '/dev/null'], { encoding: 'utf8', input, timeout: 20_000 });
    const all = `${r.stdout ?? ''}${r.stderr ?? ''}`;
    return {
      ...r,
      all,
      text: (r.stdout ?? '').replace(/\r/g, ''),
      describe: `${line}\n  -> status=${r.status} signal=${r.signal} error=${r.error?.message ?? ''}\n  output: ${JSON.stringify(all.slice(0, 400))}`,
    };
  };

  beforeAll(async () => {
    base = buildBaseBundle('tsrun-exectty');
    root = mkdtempSync(join(tmpdir(), 'tsrun-exectty-root-'));
    const b = makeBundle(base, (s) => (s.process.args = ['/bin/sh', '-c', 'trap "exit 0" TERM; while :; do sleep 0.1; done']));
    c = `exectty-${process.pid}`;
    ids.push(c);
    const r = await oci(root, ['run', '-d', '--bundle', b, c]);
    expect(r.code, show(r)).toBe(0);
  });

  afterAll(async () => {
    // Runs after a failed test or a failed beforeAll too: nothing may stay behind.
    const left = root && base ? await cleanupAll(root, ids, base.tmp) : [];
    if (root) rmSync(root, { recursive: true, force: true });
    if (base) removeScratch(base.tmp);
    expect(left).toEqual([]);
  });

  it('exec -t returns the process exit status and its output, 50 times in a row, never a stack trace', () => {
    const failures: string[] = [];
    for (let i = 0; i < 50; i++) {
      const r = execTty(`sh -c 'echo out-${i}; exit 3'`);
      const problems: string[] = [];
      if (r.status !== 3) problems.push(`exit status ${r.status}, expected 3`);
      // script's EOF character can reach the terminal before the process exits: echoed, it is not output.
      const text = r.text.replace(/\^[@D]/g, '');
      if (text !== `out-${i}\n`) problems.push(`output ${JSON.stringify(r.text)}, expected "out-${i}\\n"`);
      if (CRASH.test(r.all)) problems.push('a stack trace or an error message');
      if (problems.length) failures.push(`run ${i}: ${problems.join('; ')}\n  ${r.describe}`);
    }
    expect(failures, failures.join('\n')).toEqual([]);
  });

  it('exec -t forwards typed input to the process, returns its status and its last output, 30 times', () => {
    const failures: string[] = [];
    for (let i = 0; i < 30; i++) {
      const r = execTty(`sh -c 'read x; echo got:$x; exit 4'`, `ping${i}\n`);
      const problems: string[] = [];
      if (r.status !== 4) problems.push(`exit status ${r.status}, expected 4`);
      if (!r.text.includes(`got:ping${i}\n`)) problems.push(`no "got:ping${i}": the typed line never reached the process, or its last output was lost`);
      if (CRASH.test(r.all)) problems.push('a stack trace or an error message');
      if (problems.length) failures.push(`run ${i}: ${problems.join('; ')}\n  ${r.describe}`);
    }
    expect(failures, failures.join('\n')).toEqual([]);
  });
});
