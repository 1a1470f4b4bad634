import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { execForm, keyValues, parseContainerfile } from '../../../src/build/containerfile.js';
import { BuildContext } from '../../../src/build/context.js';
import { expand } from '../../../src/build/expand.js';
import { copyDestination } from '../../../src/build/steps.js';
import { tempDir } from '../../helpers/tmp-dir.js';

describe('parseContainerfile', () => {
  it('stages, names, flags, line numbers, global ARGs, continuations', () => {
    const f = parseContainerfile(
      [
        'ARG BASE=busybox',
        'FROM $BASE AS Build',
        'RUN echo a && \\',
        '    echo b',
        'COPY --chown=1:2 --chmod=0644 a b /d/',
        'FROM --platform=linux/amd64 scratch',
        'COPY --from=build /x /x',
      ].join('\n'),
    );
    expect(f.globalArgs.map((a) => a.args)).toEqual(['BASE=busybox']);
    expect(f.stages.map((s) => [s.index, s.name, s.from, s.platform, s.line])).toEqual([
      [0, 'build', '$BASE', undefined, 2],
      [1, undefined, 'scratch', 'linux/amd64', 6],
    ]);
    const [run, copy] = f.stages[0]!.instructions;
    expect(run).toMatchObject({ keyword: 'RUN', line: 3 });
    expect(run!.args).toMatch(/^echo a &&\s+echo b$/);
    expect(copy).toMatchObject({ keyword: 'COPY', flags: { chown: '1:2', chmod: '0644' }, args: 'a b /d/', line: 5 });
    expect(f.stages[1]!.instructions[0]).toMatchObject({ flags: { from: 'build' }, args: '/x /x' });
  });
  it('refuses by name and line', () => {
    expect(() => parseContainerfile('FROM busybox\nFOO bar')).toThrow(/line 2: FOO is not a supported instruction/);
    expect(() => parseContainerfile('RUN true')).toThrow(/line 1: RUN before the first FROM/);
    expect(() => parseContainerfile('# nothing')).toThrow(/no FROM/);
    expect(() => parseContainerfile('FROM a AS x\nFROM b AS x')).toThrow(/line 2: stage name "x" is used twice/);
    expect(() => parseContainerfile('FROM a\nCOPY --from a b')).toThrow(/--from needs a value/);
    expect(() => parseContainerfile('FROM --squash a')).toThrow(/needs a value|has no --squash/);
  });
  it('exec form and key=value pairs', () => {
    expect(execForm('["sh", "-c", "echo hi"]')).toEqual(['sh', '-c', 'echo hi']);
    expect(execForm('echo ["x"]')).toBeUndefined();
    expect(execForm('[not json')).toBeUndefined();
    expect(keyValues('A=1 B="two words" C=a\\ b D=\'q\'', 1, 'ENV')).toEqual([
      ['A', '1'],
      ['B', 'two words'],
      ['C', 'a b'],
      ['D', 'q'],
    ]);
    expect(keyValues('LEGACY some value', 1, 'ENV')).toEqual([['LEGACY', 'some value']]);
    expect(() => keyValues('A="open', 3, 'ENV')).toThrow(/line 3: ENV: unterminated quote/);
  });
});

describe('variable expansion', () => {
  const vars = new Map([
    ['A', 'one'],
    ['EMPTY', ''],
  ]);
  it.each([
    ['$A', 'one'],
    ['${A}x', 'onex'],
    ['${MISSING:-dflt}', 'dflt'],
    ['${EMPTY:-dflt}', 'dflt'],
    ['${A:+set}', 'set'],
    ['${MISSING:+set}', ''],
    ['\\$A', '$A'],
    ['$MISSING', ''],
    ['a$', 'a$'],
  ])('%s -> %s', (input, out) => expect(expand(input, vars)).toBe(out));
});

describe('COPY destinations', () => {
  it('relative to WORKDIR; a trailing / means a directory', () => {
    expect(copyDestination('./', '/app')).toEqual({ rel: 'app', isDir: true });
    expect(copyDestination('x', '/app')).toEqual({ rel: 'app/x', isDir: false });
    expect(copyDestination('/etc/', '/app')).toEqual({ rel: 'etc', isDir: true });
    expect(copyDestination('/', '/app')).toEqual({ rel: '', isDir: true });
  });
});

describe('the build context', () => {
  function ctx() {
    const d = tempDir('tsrun-ctx-');
    mkdirSync(join(d, 'src'));
    writeFileSync(join(d, 'src', 'a.js'), 'a');
    writeFileSync(join(d, 'src', 'b.ts'), 'b');
    writeFileSync(join(d, 'README.md'), 'r');
    writeFileSync(join(d, 'notes.md'), 'n');
    writeFileSync(join(d, '.dockerignore'), '*.md\n!README.md\nsecret\n');
    writeFileSync(join(d, 'secret'), 's');
    symlinkSync('/etc/passwd', join(d, 'leak'));
    symlinkSync('src/a.js', join(d, 'inside'));
    return { d, c: new BuildContext(d) };
  }
  it('globs inside the context, .dockerignore honoured (negation too)', () => {
    const { c } = ctx();
    expect(c.resolve('src/*.js', 1).map((s) => s.rel)).toEqual(['src/a.js']);
    expect(c.resolve('*.md', 1).map((s) => s.rel)).toEqual(['README.md']);
    expect(() => c.resolve('notes.md', 4)).toThrow(/line 4: "notes.md": no such file .*excluded by .dockerignore/);
    expect(() => c.resolve('secret', 1)).toThrow(/excluded/);
  });
  it('a symlink out of the context is refused; one inside is followed', () => {
    const { c } = ctx();
    expect(() => c.resolve('leak', 7)).toThrow(/line 7: "leak": forbidden path outside the build context/);
    expect(() => c.resolve('../x', 1)).toThrow(/outside the build context|no such file/);
    expect(c.resolve('inside', 1)[0]).toMatchObject({ rel: 'inside', isDir: false });
  });
  it('the content digest changes with content, not with ignored files', () => {
    const { d, c } = ctx();
    const all = () => c.digest(c.resolve('.', 1));
    const before = all();
    writeFileSync(join(d, 'notes.md'), 'changed, but ignored');
    expect(all()).toBe(before);
    writeFileSync(join(d, 'src', 'a.js'), 'changed');
    expect(all()).not.toBe(before);
  });
});
