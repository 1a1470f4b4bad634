// Loads the addon once, from the paths a source checkout or a bundle puts it at, and
// names every path tried when none works (node-pty's loadNativeModule pattern).
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TsrunError } from '../util/errors.js';
import type { NativeBinding } from './binding.js';

function load(): NativeBinding {
  const require = createRequire(import.meta.url);
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [
    process.env.TSRUN_NATIVE,
    join(here, '../../build/Release/tsrun.node'), // src/native or dist/bin -> repo root
    join(here, '../build/Release/tsrun.node'),
    join(here, 'tsrun.node'),
  ].filter((p): p is string => !!p);
  const errors: string[] = [];
  for (const p of candidates) {
    try {
      return require(p) as NativeBinding;
    } catch (e) {
      errors.push(`${p}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  throw new TsrunError('ERR_NATIVE_MISSING', `cannot load the tsrun native addon; tried:\n  ${errors.join('\n  ')}`, {
    hint: 'build it with `npm run build` (needs g++, make, python3 and libseccomp-dev)',
  });
}

let cached: NativeBinding | undefined;

/** The addon, loaded on first use so pure code paths never pay for it. */
export const native: NativeBinding = new Proxy({} as NativeBinding, {
  get(_t, prop) {
    cached ??= load();
    return cached[prop as keyof NativeBinding];
  },
});
