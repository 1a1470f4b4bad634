import { main } from '../cli/engine/main.js';

process.exitCode = await main(process.argv.slice(2));
