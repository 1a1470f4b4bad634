import { describe, expect, it } from 'vitest';
import { parseCreate } from '../../../src/cli/oci/create-fast.js';

describe('the create/run fast parser (runc forms only; anything else goes to the full CLI)', () => {
  it('takes runc’s create and run flags in both forms', () => {
    expect(
      parseCreate([
        '--root',
        '/r',
        '--log=/l',
        '--log-format',
        'json',
        'create',
        '--bundle',
        '/b',
        '--pid-file=/p',
        '--console-socket',
        '/s',
        '--preserve-fds',
        '2',
        '--no-pivot',
        '--no-new-keyring',
        'c1',
      ]),
    ).toMatchObject({
      verb: 'create',
      id: 'c1',
      root: '/r',
      log: '/l',
      logFormat: 'json',
      bundle: '/b',
      pidFile: '/p',
      consoleSocket: '/s',
      preserveFds: 2,
      noPivot: true,
    });
    expect(parseCreate(['run', '-b', 'bb', '-d', '--keep', 'c2'])).toMatchObject({ verb: 'run', bundle: 'bb', detach: true, keep: true, id: 'c2' });
    expect(parseCreate(['run', 'c3'])).toMatchObject({ bundle: '.', detach: false, keep: false, noPivot: false, preserveFds: 0 });
  });

  it('hands everything else back (null)', () => {
    for (const argv of [
      ['create'],
      ['create', 'a', 'b'],
      ['create', '--help', 'c'],
      ['create', '-d', 'c'],
      ['create', '--keep', 'c'],
      ['run', '--preserve-fds', 'x', 'c'],
      ['run', '--bundle'],
      ['run', '--unknown', 'c'],
      ['--criu', '/x', 'run', 'c'],
      ['state', 'c'],
      ['exec', 'c', 'run'],
    ])
      expect(parseCreate(argv), JSON.stringify(argv)).toBeNull();
  });
});
