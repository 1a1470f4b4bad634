// `npm test` on a fresh clone: build the addon if it is missing or older than its sources,
// and re-bundle the CLIs (fast), so tests never run against stale code.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
// The addon and the helper it execs for every container-side process.
const outputs = ['tsrun.node', 'tsrun-init'].map((f) => join(root, 'build/Release', f));
const sources = [join(root, 'binding.gyp'), ...readdirSync(join(root, 'native')).map((f) => join(root, 'native', f))];
const newest = Math.max(...sources.map((f) => statSync(f).mtimeMs));
const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: 'inherit' });
if (outputs.some((f) => !existsSync(f) || statSync(f).mtimeMs < newest)) run('npx', ['node-gyp', 'rebuild']);
run(process.execPath, [join(root, 'scripts/bundle.mjs')]);
