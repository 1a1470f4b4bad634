// Pull progress for people: one bar per layer, redrawn in place on a terminal; one line per
// event otherwise (logs, CI), so output stays greppable.
import type { PullLayerInfo, PullProgress } from '../../image/pull.js';
import { BarView, shortDigest, progressBar } from './bar-view.js';

export function formatBytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB'];
  let v = n;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${v < 10 && u ? v.toFixed(1) : Math.round(v)} ${units[u]}`;
}

interface Row {
  layer: PullLayerInfo;
  bytes: number;
  state: 'waiting' | 'pulling' | 'done' | 'exists' | 'retrying';
  note: string;
}

export class PullProgressView extends BarView<Row> {
  protected bar(r: Row): string {
    const frac = r.state === 'done' || r.state === 'exists' ? 1 : r.bytes / (r.layer.size || 1);
    const label =
      r.state === 'exists'
        ? 'already present'
        : r.state === 'done'
          ? `done ${r.note}`
          : r.state === 'waiting'
            ? 'waiting'
            : `${formatBytes(r.bytes)} / ${formatBytes(r.layer.size)}${r.note ? ` ${r.note}` : ''}`;
    return progressBar(r.layer.digest, frac, label);
  }

  private row(l: PullLayerInfo): Row {
    return this.rows.find((r) => r.layer.index === l.index)!;
  }

  handle(e: PullProgress): void {
    switch (e.type) {
      case 'resolved':
        this.rows = e.layers.map((layer) => ({ layer, bytes: 0, state: 'waiting', note: '' }));
        this.line(`${e.ref}: ${e.manifestDigest}${e.platform ? ` (${e.platform})` : ''}, ${e.layers.length} layer(s)`);
        this.redraw(true);
        return;
      case 'started':
        this.row(e.layer).state = 'pulling';
        if (!this.tty) this.line(`layer ${shortDigest(e.layer.digest)}: pulling ${formatBytes(e.layer.size)}`);
        break;
      case 'bytes':
        this.row(e.layer).bytes = e.bytes;
        break;
      case 'done': {
        const r = this.row(e.layer);
        r.state = 'done';
        r.note = `(${e.files} files, ${formatBytes(e.unpackedSize)} unpacked)`;
        if (!this.tty) this.line(`layer ${shortDigest(e.layer.digest)}: done ${r.note}`);
        break;
      }
      case 'skipped-exists':
        this.row(e.layer).state = 'exists';
        if (!this.tty) this.line(`layer ${shortDigest(e.layer.digest)}: already present`);
        break;
      case 'retrying': {
        const r = this.row(e.layer);
        r.state = 'retrying';
        r.note = `(retry ${e.attempt}: ${e.error})`;
        if (!this.tty) this.line(`layer ${shortDigest(e.layer.digest)}: retry ${e.attempt}: ${e.error}`);
        break;
      }
      case 'warning':
        this.line(`warning: ${e.message}`);
        return;
      case 'tagged':
        this.redraw(true);
        this.line(`tagged ${e.ref} -> ${e.digest}`);
        return;
    }
    this.redraw(e.type !== 'bytes');
  }
}
