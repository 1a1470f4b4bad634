// What pull's and push's progress views share: one bar per layer redrawn in place on a
// terminal (at most every 100 ms), one line per event otherwise (logs, CI).

export const shortDigest = (d: string) => d.replace(/^sha256:/, '').slice(0, 12);

/** "<digest> [=====>    ] <label>" for a fraction done. */
export function progressBar(digest: string, frac: number, label: string, width = 30): string {
  const fill = Math.round(Math.min(1, Math.max(0, frac)) * width);
  return `${shortDigest(digest)} [${'='.repeat(fill)}${fill < width ? '>' : ''}${' '.repeat(Math.max(0, width - fill - 1))}] ${label}`;
}

export type ProgressOut = NodeJS.WritableStream & { isTTY?: boolean; columns?: number };

export abstract class BarView<R> {
  protected rows: R[] = [];
  private drawn = 0;
  private last = 0;

  constructor(
    protected readonly out: ProgressOut,
    protected readonly quiet = false,
  ) {}

  protected get tty(): boolean {
    return !!this.out.isTTY;
  }

  protected line(s: string): void {
    if (!this.quiet) this.out.write(`${s}\n`);
  }

  protected abstract bar(r: R): string;

  protected redraw(force = false): void {
    if (!this.tty || this.quiet) return;
    const now = Date.now();
    if (!force && now - this.last < 100) return;
    this.last = now;
    let s = this.drawn ? `\x1b[${this.drawn}A` : '';
    for (const r of this.rows) s += `\x1b[2K${this.bar(r)}\n`;
    this.drawn = this.rows.length;
    this.out.write(s);
  }
}
