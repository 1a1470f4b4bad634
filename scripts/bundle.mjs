// Bundles each CLI into one ESM file (fewer module loads at start-up) and writes its
// launcher with the absolute path of the node that built it: clients such as Podman run the
// runtime with no PATH at all.
import { build } from 'esbuild';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist/bin');
mkdirSync(out, { recursive: true });
for (const name of ['tsrun-oci', 'tsrun']) {
  await build({
    entryPoints: [join(root, `src/bin/${name}.ts`)],
    outfile: join(out, `${name}.mjs`),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: ['pino'],
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
    logLevel: 'warning',
  });
  const launcher = join(out, name);
  writeFileSync(launcher, `#!${process.execPath}\nimport('./${name}.mjs');\n`);
  chmodSync(launcher, 0o755);
}
