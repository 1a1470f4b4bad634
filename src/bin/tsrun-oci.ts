import { die, installFatalHandlers } from '../cli/oci/fatal.js';
import { main } from '../cli/oci/main.js';

installFatalHandlers();
main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
}, die);
