// Entry of the create/run bundle (see src/cli/oci/create-fast.ts); like tsrun-oci-hot.ts,
// anything its parser does not take goes to the full CLI through the launcher's loader.
import { parseCreate, runCreate } from '../cli/oci/create-fast.js';
import { die, installFatalHandlers } from '../cli/oci/fatal.js';

const load = (globalThis as { __tsrunLoad?: (name: string) => void }).__tsrunLoad;
const call = parseCreate(process.argv.slice(2));
if (!call) {
  if (!load) die(new Error('the create bundle must be started by the dist/bin/tsrun-oci launcher'));
  load('tsrun-oci');
} else {
  // run proxies stdio to the container: the full handlers (EPIPE policy) apply; create needs
  // only the last resort, without setting up stdio streams.
  if (call.verb === 'run') installFatalHandlers();
  else {
    process.on('uncaughtException', die);
    process.on('unhandledRejection', die);
  }
  runCreate(call).then((code) => {
    process.exitCode = code;
  }, die);
}
