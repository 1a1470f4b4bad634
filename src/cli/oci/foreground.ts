// Foreground `run`/`exec`: forward the signals we get to the process, proxy its pty when
// we hold the master, and return its exit status (128+signal when killed, as runc does).
import { native } from '../../native/index.js';
import { lazyRequire } from '../../util/lazy-require.js';

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'];

/** Proxies stdio to the pty; the returned function drains what is left, then tears down. */
async function proxyPty(master: number): Promise<() => Promise<void>> {
  const { ReadStream, WriteStream } = lazyRequire<typeof import('node:tty')>('node:tty'); // only for --tty
  const input = new ReadStream(master);
  const output = new WriteStream(master);
  const stdin = process.stdin;
  const raw = stdin.isTTY;
  if (raw) stdin.setRawMode(true);
  const resize = () => {
    if (process.stdout.isTTY) native.setWinsize(master, process.stdout.rows, process.stdout.columns);
  };
  resize();
  process.stdout.on('resize', resize);
  // The master reads EIO once the last slave fd is closed: that is the end of the output.
  const ended = new Promise<void>((res) => {
    input.on('error', () => res());
    input.on('end', () => res());
    input.on('close', () => res());
  });
  input.pipe(process.stdout);
  stdin.pipe(output);
  return async () => {
    await Promise.race([ended, new Promise((r) => setTimeout(r, 2000).unref())]);
    stdin.unpipe(output);
    if (raw) stdin.setRawMode(false);
    stdin.pause();
    process.stdout.off('resize', resize);
    input.destroy();
    output.destroy();
  };
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
  const stop = ptyMaster >= 0 ? await proxyPty(ptyMaster) : undefined;
  try {
    const st = await native.waitPidAsync(pid);
    return st.code ?? 1;
  } finally {
    await stop?.();
    for (const [sig, h] of handlers) process.off(sig, h);
  }
}
