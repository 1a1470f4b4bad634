// Prints vitest JSON reports as one plain closing line: "N passed, N failed, N skipped".
// Several reports (the host run and the VM run) are added up.
import { existsSync, readFileSync } from 'node:fs';

let passed = 0;
let failed = 0;
let skipped = 0;
const files = process.argv.slice(2).filter((f) => existsSync(f));
for (const f of files) {
  const r = JSON.parse(readFileSync(f, 'utf8'));
  passed += r.numPassedTests ?? 0;
  failed += r.numFailedTests ?? 0;
  skipped += (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
}
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
