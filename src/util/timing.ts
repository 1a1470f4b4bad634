// Phase timings for people chasing start-up time: TSRUN_TIMING=1 prints, at exit, the time since
// the process started at each mark (performance.now() counts from the process's start).
const marks: Array<[string, number]> = [];
const on = process.env.TSRUN_TIMING === '1';

export function mark(name: string): void {
  if (!on) return;
  if (!marks.length) process.once('exit', () => process.stderr.write(`timing: ${marks.map(([n, t]) => `${n} ${t.toFixed(1)}`).join(', ')} (ms since start)\n`));
  marks.push([name, performance.now()]);
}
