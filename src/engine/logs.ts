// `logs`: the monitor's CRI-format log ("<time> <stream> <F|P> <bytes>", monitor_protocol.h),
// read back with docker's options: --tail, --since, -t, -f (follow until the container is
// down, across rotations).
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { MONITOR_FILES } from '../native/monitor-protocol.js';
import { TsrunError } from '../util/errors.js';
import type { ContainerRecord } from './container-store.js';
import { containerState } from './container-state.js';
import type { EngineContext } from './context.js';

export interface LogEntry {
  time: string;
  stream: 'stdout' | 'stderr';
  partial: boolean;
  text: string;
}

export interface LogOptions {
  tail?: number;
  /** RFC 3339 time, or a duration like 10m, 1h30m, 45s (relative to now). */
  since?: string;
  timestamps?: boolean;
  follow?: boolean;
}

export type LogSink = (stream: 'stdout' | 'stderr', text: string) => void;

export function parseLogLine(line: string): LogEntry | undefined {
  const a = line.indexOf(' ');
  const b = line.indexOf(' ', a + 1);
  const c = line.indexOf(' ', b + 1);
  if (a < 0 || b < 0 || c < 0) return undefined;
  const stream = line.slice(a + 1, b);
  if (stream !== 'stdout' && stream !== 'stderr') return undefined;
  return { time: line.slice(0, a), stream, partial: line.slice(b + 1, c) === 'P', text: line.slice(c + 1) };
}

const DURATION = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$/;

export function parseSince(s: string, now = Date.now()): number {
  const d = DURATION.exec(s);
  if (d && s) return now - ((Number(d[1] ?? 0) * 60 + Number(d[2] ?? 0)) * 60 + Number(d[3] ?? 0)) * 1000;
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s) * 1000;
  const t = Date.parse(s);
  if (Number.isNaN(t))
    throw new TsrunError('ERR_INVALID_ARGUMENT', `--since ${s}: expected a time (2026-12-06T10:00:00Z), a Unix time or a duration (10m, 1h)`);
  return t;
}

function render(e: LogEntry, timestamps: boolean): string {
  return `${timestamps ? `${e.time} ` : ''}${e.text}${e.partial ? '' : '\n'}`;
}

/** Lines of the rotated files, oldest first, then the current one. */
function logFiles(dir: string, max: number): string[] {
  const files: string[] = [];
  for (let i = Math.max(1, max - 1); i >= 1; i--) {
    const f = join(dir, `${MONITOR_FILES.log}.${i}`);
    if (existsSync(f)) files.push(f);
  }
  files.push(join(dir, MONITOR_FILES.log));
  return files;
}

class LogReader {
  private fd = -1;
  private ino = 0;
  private pos = 0;
  private rest = '';
  constructor(private readonly path: string) {}

  /** New complete lines since the last call; reopens after a rotation. */
  read(): string[] {
    let st: ReturnType<typeof statSync>;
    try {
      st = statSync(this.path);
    } catch {
      return [];
    }
    if (this.fd < 0 || st.ino !== this.ino || st.size < this.pos) {
      if (this.fd >= 0) closeSync(this.fd);
      this.fd = openSync(this.path, 'r');
      this.ino = st.ino;
      this.pos = 0;
      this.rest = '';
    }
    const out: string[] = [];
    const buf = Buffer.allocUnsafe(65536);
    for (;;) {
      const n = readSync(this.fd, buf, 0, buf.length, this.pos);
      if (n <= 0) break;
      this.pos += n;
      const text = this.rest + buf.subarray(0, n).toString('utf8');
      const lines = text.split('\n');
      this.rest = lines.pop() ?? '';
      out.push(...lines);
    }
    return out;
  }
  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}

export async function readLogs(ctx: EngineContext, rec: ContainerRecord, o: LogOptions, sink: LogSink): Promise<void> {
  const dir = ctx.containers.dir(rec.id);
  const since = o.since ? parseSince(o.since) : undefined;
  const keep = (e: LogEntry | undefined): e is LogEntry => !!e && (since === undefined || Date.parse(e.time) >= since);
  const files = logFiles(dir, rec.logMaxFiles);
  const current = new LogReader(files[files.length - 1]!);
  const entries: LogEntry[] = [];
  for (const f of files.slice(0, -1)) {
    const r = new LogReader(f);
    entries.push(...r.read().map(parseLogLine).filter(keep));
    r.close();
  }
  entries.push(...current.read().map(parseLogLine).filter(keep));
  const shown = o.tail !== undefined && o.tail >= 0 ? entries.slice(Math.max(0, entries.length - o.tail)) : entries;
  for (const e of shown) sink(e.stream, render(e, o.timestamps === true));
  if (!o.follow) {
    current.close();
    return;
  }
  try {
    for (;;) {
      const down = !isUp(ctx, rec.id);
      for (const e of current.read().map(parseLogLine).filter(keep)) sink(e.stream, render(e, o.timestamps === true));
      if (down) return; // the exit record exists only once the log is complete
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    current.close();
  }
}

function isUp(ctx: EngineContext, id: string): boolean {
  try {
    const st = containerState(ctx, ctx.containers.read(id));
    return st.status === 'running' || st.status === 'paused' || st.status === 'stopping' || st.status === 'created' || st.status === 'creating';
  } catch {
    return false;
  }
}
