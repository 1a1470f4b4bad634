import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { HOT_VERBS, parseHot } from '../../../src/cli/oci/hot.js';

describe('the hot-verb parser (runc forms only; anything else goes to the full CLI)', () => {
  it('takes runc’s global flags and each hot verb', () => {
    expect(parseHot(['--root', '/r', '--log', '/l', '--log-format=json', '--debug', 'state', 'c1'])).toMatchObject({
      verb: 'state',
      id: 'c1',
      root: '/r',
      log: '/l',
      logFormat: 'json',
      debug: true,
    });
    expect(parseHot(['--root=/r', '--systemd-cgroup', 'kill', '--all', 'c1', 'KILL'])).toMatchObject({
      verb: 'kill',
      all: true,
      signal: 'KILL',
      systemdCgroup: true,
    });
    expect(parseHot(['kill', 'c1'])).toMatchObject({ signal: 'SIGTERM', root: '/run/tsrun' });
    expect(parseHot(['delete', '-f', 'c1'])).toMatchObject({ verb: 'delete', force: true });
    expect(parseHot(['delete', 'c1', '--force'])).toMatchObject({ force: true });
    for (const v of ['start', 'pause', 'resume']) expect(parseHot([v, 'x'])).toMatchObject({ verb: v, id: 'x' });
  });

  it('hands everything else back (null)', () => {
    for (const argv of [
      [],
      ['state'],
      ['state', '--help'],
      ['-h'],
      ['--version'],
      ['state', 'a', 'b'],
      ['kill', 'a', 'b', 'c'],
      ['delete', '--all', 'c'],
      ['--criu', '/x', 'state', 'c'],
      ['--log-format', 'xml', 'state', 'c'],
      ['--root'],
      ['exec', 'c', 'kill'],
      ['create', 'c'],
      ['state', '--', 'c'],
    ])
      expect(parseHot(argv), JSON.stringify(argv)).toBeNull();
  });

  it('names the same verbs as the launcher generator', () => {
    const gen = readFileSync(new URL('../../../scripts/bundle.mjs', import.meta.url), 'utf8');
    expect(gen).toContain(
      `const HOT_VERBS = ${JSON.stringify([...HOT_VERBS])
        .replaceAll('"', "'")
        .replaceAll(',', ', ')};`,
    );
  });
});
