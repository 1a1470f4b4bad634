import { main } from '../cli/engine/main.js';

void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
