// Foreground `run`/`exec`: forward the signals we get to the process, proxy its pty when
// we hold the master, and return its exit status (128+signal when killed, as runc does).
import { ReadStream, WriteStream } from 'node:tty';
import { native } from '../../native/index.js';

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'];

function proxyPty(master: number): () => void {
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
  input.on('error', () => {}); // EIO once the last slave fd closes
  input.pipe(process.stdout);
  stdin.pipe(output);
  return () => {
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
  const stop = ptyMaster >= 0 ? proxyPty(ptyMaster) : undefined;
  try {
    const st = await native.waitPidAsync(pid);
    return st.code ?? 1;
  } finally {
    stop?.();
    for (const [sig, h] of handlers) process.off(sig, h);
  }
}
