// Loads a Node built-in on first use. `import()` cannot be used: the bundled CLIs run
// through vm.Script (for the V8 code cache), where dynamic import is unavailable.
import { createRequire } from 'node:module';

const req = createRequire(import.meta.url);

export function lazyRequire<T>(id: string): T {
  return req(id) as T;
}
