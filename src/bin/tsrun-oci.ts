import { main } from '../cli/oci/main.js';

process.exitCode = await main(process.argv.slice(2));
