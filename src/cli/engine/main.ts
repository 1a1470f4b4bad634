// tsrun: the engine CLI (images, `tsrun run IMAGE`). Its image side arrives with the image
// store; until then it runs bundles through the same runtime core as tsrun-oci.
import { main as ociMain } from '../oci/main.js';
import { VERSION } from '../version.js';

export async function main(argv: string[]): Promise<number> {
  if (argv[0] === '--version' || argv[0] === 'version') {
    process.stdout.write(`tsrun version ${VERSION}\n`);
    return 0;
  }
  if (argv[0] === 'oci') return ociMain(argv.slice(1));
  process.stderr.write('tsrun: the image engine (pull, run IMAGE) is not built yet; use `tsrun oci <runc command>` or tsrun-oci\n');
  return 2;
}
