// Scratch directories for tests: made in os.tmpdir() and removed when the test file ends,
// whether its tests passed or failed, so a test run leaves nothing behind in /tmp.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

const made: string[] = [];

// Registered on the test file that imports this module (directly or through a fixture helper):
// vitest evaluates the modules of each test file anew.
afterAll(() => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** mkdtemp(`<tmpdir>/<prefix>XXXXXX`), removed after the test file. */
export function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  made.push(d);
  return d;
}
