// linux.resources.blockIO → io.bfq.weight or io.weight, and io.max (runc's fs2 setIo).
import type { Resources, ThrottleDevice } from '../../spec/types.js';
import { fmtInt, R, requireInt, type PlanContext, type ResourceWrite } from './plan.js';

/**
 * blkio.weight [10, 1000] → io.weight [1, 10000], runc's ConvertBlkIOToIOWeightValue:
 * `1 + (weight - 10) * 9999 / 990`, integer division; 0 means "not given".
 */
export function convertBlkioWeightToIoWeight(weight: number): number {
  if (weight === 0) return 0;
  return 1 + Math.floor(((weight - 10) * 9999) / 990);
}

const THROTTLES = [
  ['throttleReadBpsDevice', 'rbps'],
  ['throttleWriteBpsDevice', 'wbps'],
  ['throttleReadIOPSDevice', 'riops'],
  ['throttleWriteIOPSDevice', 'wiops'],
] as const;

function device(field: string, d: { major: number; minor: number }): string {
  return `${requireInt(`${field}.major`, d.major, 0)}:${requireInt(`${field}.minor`, d.minor, 0)}`;
}

export function ioWrites(r: Resources, ctx: PlanContext): ResourceWrite[] {
  const b = r.blockIO;
  if (!b) return [];
  const out: ResourceWrite[] = [];
  const w = (file: string, value: string, field: string) => out.push({ controller: 'io', file, value, field });

  // With the BFQ scheduler the cgroup has io.bfq.weight, which takes v1's weights as they
  // are; runc prefers it. It takes per-device lines only since Linux 5.4, recognisable by
  // its content: "default 100" rather than a bare "100".
  const wantsWeight = (b.weight ?? 0) !== 0 || (b.weightDevice?.length ?? 0) > 0;
  const bfqText = wantsWeight ? ctx.current('io.bfq.weight') : undefined;
  const bfq = bfqText !== undefined;
  const bfqPerDevice = bfqText !== undefined && !/^\d+$/.test(bfqText);

  if (b.weight !== undefined && b.weight !== 0) {
    const weight = requireInt('blockIO.weight', b.weight, 10, 1000);
    if (bfq) w('io.bfq.weight', String(weight), 'blockIO.weight');
    else w('io.weight', String(convertBlkioWeightToIoWeight(weight)), 'blockIO.weight');
  }
  if (b.leafWeight !== undefined && b.leafWeight !== 0) {
    ctx.warn(`${R}.blockIO.leafWeight is not supported on cgroup v2; ignored`);
  }
  (b.weightDevice ?? []).forEach((wd, i) => {
    const field = `blockIO.weightDevice[${i}]`;
    const dev = device(field, wd);
    if (wd.leafWeight !== undefined && wd.leafWeight !== 0) ctx.warn(`${R}.${field}.leafWeight is not supported on cgroup v2; ignored`);
    if (wd.weight === undefined || wd.weight === 0) return;
    const weight = requireInt(`${field}.weight`, wd.weight, 10, 1000);
    if (bfqPerDevice) w('io.bfq.weight', `${dev} ${weight}`, field);
    else if (bfq) ctx.warn(`${R}.${field}: this kernel's io.bfq.weight takes no per-device weights (Linux < 5.4); ignored`);
    else w('io.weight', `${dev} ${convertBlkioWeightToIoWeight(weight)}`, field);
  });

  for (const [key, name] of THROTTLES) {
    const list: ThrottleDevice[] = b[key] ?? [];
    list.forEach((td, i) => {
      const field = `blockIO.${key}[${i}]`;
      const dev = device(field, td);
      const rate = requireInt(`${field}.rate`, td.rate, 0);
      // As runc: 0 writes nothing (it does not lift a limit set earlier).
      if (rate !== 0) w('io.max', `${dev} ${name}=${fmtInt(rate)}`, field);
    });
  }
  return out;
}
