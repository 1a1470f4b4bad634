// Push progress for people, like pull's: one bar per layer, redrawn in place on a terminal;
// one line per event otherwise (logs, CI), so output stays greppable. Configs are pushed too,
// silently, as docker does.
import type { PushBlobInfo, PushProgress } from '../../image/push.js';
import { formatBytes } from './progress.js';
import { BarView, shortDigest, type ProgressOut, progressBar } from './bar-view.js';

interface Row {
  blob: PushBlobInfo;
  bytes: number;
  state: 'waiting' | 'pushing' | 'pushed' | 'exists' | 'mounted' | 'retrying';
  note: string;
}

export class PushProgressView extends BarView<Row> {
  constructor(
    out: ProgressOut,
    quiet = false,
    /** Warnings go here, even with -q. */
    private readonly err: NodeJS.WritableStream = process.stderr,
  ) {
    super(out, quiet);
  }

  protected bar(r: Row): string {
    const finished = r.state === 'pushed' || r.state === 'exists' || r.state === 'mounted';
    const frac = finished ? 1 : r.bytes / (r.blob.size || 1);
    const label =
      r.state === 'exists'
        ? 'layer already exists'
        : r.state === 'mounted'
          ? `mounted ${r.note}`
          : r.state === 'pushed'
            ? `pushed ${formatBytes(r.blob.size)}`
            : r.state === 'waiting'
              ? 'waiting'
              : `${formatBytes(r.bytes)} / ${formatBytes(r.blob.size)}${r.note ? ` ${r.note}` : ''}`;
    return progressBar(r.blob.digest, frac, label);
  }

  private row(b: PushBlobInfo): Row | undefined {
    return this.rows.find((r) => r.blob.index === b.index);
  }

  handle(e: PushProgress): void {
    if (e.type === 'resolved') {
      this.rows = e.blobs.filter((b) => b.kind === 'layer').map((blob) => ({ blob, bytes: 0, state: 'waiting', note: '' }));
      const what = e.platforms.length ? `index ${e.digest} (${e.platforms.join(', ')})` : e.digest;
      this.line(`pushing ${what} to ${e.ref}, ${this.rows.length} layer(s)`);
      this.redraw(true);
      return;
    }
    if (e.type === 'warning') {
      this.err.write(`warning: ${e.message}\n`);
      return;
    }
    if (e.type === 'manifest') {
      if (!this.tty) this.line(`manifest ${shortDigest(e.digest)}${e.platform ? ` (${e.platform})` : ''}: ${e.existed ? 'already exists' : 'pushed'}`);
      return;
    }
    if (e.type === 'pushed') {
      this.redraw(true);
      this.line(`${e.ref}: digest: ${e.digest} size: ${e.size}`);
      return;
    }
    const r = this.row(e.blob);
    if (!r) return; // a config
    const name = `layer ${shortDigest(e.blob.digest)}`;
    switch (e.type) {
      case 'exists':
        r.state = 'exists';
        if (!this.tty) this.line(`${name}: exists`);
        break;
      case 'mounted':
        r.state = 'mounted';
        r.note = `from ${e.from}`;
        if (!this.tty) this.line(`${name}: mounted from ${e.from}`);
        break;
      case 'started':
        r.state = 'pushing';
        r.note = '';
        if (!this.tty) this.line(`${name}: pushing ${formatBytes(e.blob.size)}${e.chunked ? ' in chunks' : ''}`);
        break;
      case 'bytes':
        r.bytes = e.bytes;
        break;
      case 'done':
        r.state = 'pushed';
        if (!this.tty) this.line(`${name}: pushed`);
        break;
      case 'retrying':
        r.state = 'retrying';
        r.note = `(retry ${e.attempt}: ${e.error})`;
        if (!this.tty) this.line(`${name}: retry ${e.attempt}: ${e.error}`);
        break;
    }
    this.redraw(e.type !== 'bytes');
  }
}
