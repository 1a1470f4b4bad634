// Issue 12's seed scenario, end to end and offline: a Containerfile FROM the Debian image of
// images/debian that installs a package from a local apt repository (a file: source copied
// into the build context), copies an app in and sets CMD; `tsrun build -t 127.0.0.1:PORT/app:1`,
// `tsrun push` to Debian's docker-registry on 127.0.0.1, `rmi` and `image prune`; then
// `tsrun run 127.0.0.1:PORT/app:1` pulls it back and the app runs with the package present.
import { chmodSync, cpSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/tmp-dir.js';
import { buildDebianImage, debianSkipReason, makeRepo } from './helpers/debian.js';
import { type Engine, engineSkipReason, makeEngine, type Result, show } from './helpers/engine.js';
import { type Registry, startRegistry, stopRegistry, which } from './helpers/registry.js';

const skip = engineSkipReason() ?? debianSkipReason() ?? (which('docker-registry') ? null : 'docker-registry is missing (apt-get install docker-registry)');
if (skip) console.warn(`[build-push-scenario.test] SKIPPED: ${skip}`);

describe.skipIf(!!skip)('build → push → rmi + prune → run pulls it back (issue 12 seed scenario)', () => {
  let e: Engine;
  let reg: Registry | undefined;
  let buildSkip: string | null = null;
  let context: string;

  const ok = async (args: string[], timeoutMs = 120_000): Promise<Result> => {
    const r = await e.tsrun(args, { timeoutMs });
    expect(r.code, `tsrun ${args.join(' ')}\n${show(r)}`).toBe(0);
    return r;
  };

  beforeAll(async () => {
    e = makeEngine('tsrun-build-scenario');
    const img = buildDebianImage(tempDir('tsrun-build-scenario-image-'));
    if ('skip' in img) {
      buildSkip = img.skip;
      console.warn(`[build-push-scenario.test] SKIPPED: ${buildSkip}`);
      return;
    }
    await ok(['load', '-i', img.archive, '-t', 'localhost/debian:12'], 300_000);
    reg = await startRegistry(path.join(e.tmp, 'registry'));
    context = tempDir('tsrun-build-scenario-ctx-');
    const work = tempDir('tsrun-build-scenario-repo-');
    makeRepo(work, path.join(work, 'repo'));
    cpSync(path.join(work, 'repo'), path.join(context, 'repo'), { recursive: true });
    writeFileSync(path.join(context, 'app.sh'), '#!/bin/sh\necho "app says: $(tsrun-hello)"\n');
    chmodSync(path.join(context, 'app.sh'), 0o755);
    writeFileSync(
      path.join(context, 'Containerfile'),
      [
        'FROM localhost/debian:12',
        'COPY repo /repo/',
        'RUN echo "deb [trusted=yes] file:/repo ./" > /etc/apt/sources.list.d/local.list \\',
        '    && rm -f /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list \\',
        '    && apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q tsrun-hello \\',
        '    && rm -rf /var/lib/apt/lists/* /repo',
        'COPY app.sh /usr/local/bin/app',
        'CMD ["app"]',
        '',
      ].join('\n'),
    );
  }, 900_000);
  afterAll(async () => {
    if (reg) await stopRegistry(reg);
    if (!e) return;
    const problems = await e.teardown();
    expect(problems, problems.join('\n')).toEqual([]);
  });

  it('builds, pushes, forgets, and runs what it pulls back', async (ctx) => {
    ctx.skip(!!buildSkip, buildSkip ?? '');
    const ref = `${reg!.host}/app:1`;
    const built = await ok(['build', '-t', ref, context], 600_000);
    expect(built.stdout).toMatch(/^STEP 3\/5: RUN /m);
    expect(built.stdout).toMatch(/Setting up tsrun-hello \(1\.0\)/);
    const id = built.stdout.trim().split('\n').pop()!;
    expect(id).toMatch(/^sha256:[a-f0-9]{64}$/);

    await ok(['push', ref], 300_000);
    await ok(['rmi', ref]);
    await ok(['image', 'prune', '--all']);
    expect((await ok(['images'])).stdout).not.toContain(ref);

    const r = await ok(['run', '--rm', ref], 300_000);
    expect(r.stdout).toBe('app says: hello\n');
    const status = await ok(['run', '--rm', ref, 'dpkg', '-s', 'tsrun-hello']);
    expect(status.stdout).toMatch(/^Status: install ok installed$/m);
    // The image that came back is the one that was built.
    expect((await ok(['image', 'inspect', ref])).stdout).toContain(id);
  }, 900_000);
});
