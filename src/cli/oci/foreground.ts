// Foreground `run`/`exec`: forward the signals we get to the process, proxy its pty when
// we hold the master, and return its exit status (128+signal when killed, as runc does).
import { readSync } from 'node:fs';
import { native } from '../../native/index.js';
import { lazyRequire } from '../../util/lazy-require.js';

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'];

/** More than a pty holds once its slave is closed (line discipline + flip buffers). */
const DRAIN_LIMIT = 1 << 20;

/**
 * Proxies stdio to the pty; the returned function waits for the end of the output (bounded),
 * then tears down.
 *
 * One stream carries both directions, so exactly one libuv handle owns the master fd and closes
 * it, once. With a ReadStream and a WriteStream on the same fd, the read side closed the fd when
 * the output ended while stdin was still piped into the write side: a byte typed then (script(1)
 * sends its EOF character when its stdin ends) was written to a closed fd (EBADF, an unhandled
 * 'error': a stack trace and exit status 1) or to whatever file had taken the number since, and
 * the write side closed the number a second time.
 */
function proxyPty(master: number): () => Promise<void> {
  const { ReadStream } = lazyRequire<typeof import('node:tty')>('node:tty'); // only for --tty
  // allowHalfOpen: nothing closes the fd behind our back when the output ends (see drainRest).
  const pty = new ReadStream(master, { allowHalfOpen: true });
  const stdin = process.stdin;
  const raw = stdin.isTTY;
  if (raw) stdin.setRawMode(true);
  // The fd number is only ours while the stream is: once destroyed it may name another file.
  const resize = () => {
    if (!pty.destroyed && process.stdout.isTTY) native.setWinsize(master, process.stdout.rows, process.stdout.columns);
  };
  resize();
  process.stdout.on('resize', resize);
  const closed = new Promise<void>((res) => pty.once('close', () => res()));
  const finish = () => {
    stdin.unpipe(pty);
    pty.destroy();
  };
  // The master reads EIO once the last slave fd is closed and everything is read: the end of
  // the output, not a failure. Any other error (a write after the end) ends the session too.
  pty.on('error', finish);
  // libuv reports EOF instead when poll says POLLHUP and its last read was partial, without
  // reading to EIO: output the process wrote just before exiting can still be on its way
  // through the pty's buffers. Read it from the fd, which is still open, then close.
  pty.on('end', () => {
    stdin.unpipe(pty);
    drainRest(pty, master);
    finish();
  });
  pty.pipe(process.stdout);
  stdin.pipe(pty);
  return async () => {
    await Promise.race([closed, new Promise((r) => setTimeout(r, 2000).unref())]);
    stdin.unpipe(pty);
    if (raw) stdin.setRawMode(false);
    stdin.pause();
    process.stdout.off('resize', resize);
    pty.destroy();
  };
}

/** Copy what is left in the master to stdout, up to EIO. Non-blocking: a slave reopened in the container cannot hang us. */
function drainRest(pty: import('node:tty').ReadStream, master: number): void {
  (pty as unknown as { _handle?: { setBlocking?(b: boolean): number } })._handle?.setBlocking?.(false);
  const buf = Buffer.allocUnsafe(65536);
  for (let total = 0; total < DRAIN_LIMIT; ) {
    let n: number;
    try {
      n = readSync(master, buf, 0, buf.length, null);
    } catch {
      return; // EIO: all read. EAGAIN: the slave was opened again since; we stop rather than wait.
    }
    if (n <= 0) return;
    total += n;
    process.stdout.write(Buffer.from(buf.subarray(0, n)));
  }
}

export async function runForeground(pid: number, ptyMaster: number): Promise<number> {
  const handlers = FORWARDED.map((sig) => {
    const h = () => {
      try {
        process.kill(pid, sig);
      } catch {
        /* exited */
      }
    };
    process.on(sig, h);
    return [sig, h] as const;
  });
  const stop = ptyMaster >= 0 ? proxyPty(ptyMaster) : undefined;
  try {
    const st = await native.waitPidAsync(pid);
    return st.code ?? 1;
  } finally {
    await stop?.();
    for (const [sig, h] of handlers) process.off(sig, h);
  }
}
