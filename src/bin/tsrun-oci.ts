import { main } from '../cli/oci/main.js';

void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
