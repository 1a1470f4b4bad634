// Entry of the hot-verb bundle (see src/cli/oci/hot.ts). The launcher (scripts/bundle.mjs)
// runs it for argv naming a hot verb; anything the hot parser does not take goes to the full
// CLI through the launcher's loader, in this same process.
import { die } from '../cli/oci/fatal.js';
import { parseHot, runHot } from '../cli/oci/hot.js';

const load = (globalThis as { __tsrunLoad?: (name: string) => void }).__tsrunLoad;
const call = parseHot(process.argv.slice(2));
if (!call) {
  if (!load) die(new Error('the hot-verb bundle must be started by the dist/bin/tsrun-oci launcher'));
  load('tsrun-oci');
} else {
  // The last resort without touching process.stdout/stderr (creating those streams costs ms).
  process.on('uncaughtException', die);
  process.on('unhandledRejection', die);
  runHot(call).then((code) => {
    process.exitCode = code;
  }, die);
}
