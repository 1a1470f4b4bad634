import { main } from '../cli/engine/main.js';

// A reader that goes away (`tsrun logs C | head -1`) ends us quietly, as it ends docker.
for (const s of [process.stdout, process.stderr]) {
  s.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
}

void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
