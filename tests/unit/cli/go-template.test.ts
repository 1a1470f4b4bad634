import { describe, expect, it } from 'vitest';
import { formatAll, renderTable, renderTemplate } from '../../../src/cli/engine/go-template.js';

const c = { Name: '/web', State: { ExitCode: 3, Pid: 42, Running: false }, Config: { Env: ['A=1', 'B=2'], Labels: { k: 'v' } } };

describe('Go templates as docker users write them', () => {
  it('fields, nested fields, json, index, upper/lower', () => {
    expect(renderTemplate('{{.State.ExitCode}}', c)).toBe('3');
    expect(renderTemplate('{{ .State.Pid }} {{.Name}}', c)).toBe('42 /web');
    expect(renderTemplate('{{json .Config.Env}}', c)).toBe('["A=1","B=2"]');
    expect(renderTemplate('{{index .Config.Labels "k"}}', c)).toBe('v');
    expect(renderTemplate('{{upper .Name}}', c)).toBe('/WEB');
    expect(renderTemplate('{{.State.Running}}', c)).toBe('false');
    expect(renderTemplate('{{.Config.Env}}', c)).toBe('[A=1 B=2]');
    expect(renderTemplate('{{.Config.Labels}}', c)).toBe('map[k:v]');
    expect(renderTemplate('a\\tb', c)).toBe('a\tb');
  });
  it('refuses unknown fields and functions by name', () => {
    expect(() => renderTemplate('{{.State.Nope}}', c)).toThrow(/no field "Nope"/);
    expect(() => renderTemplate('{{printf "%s" .Name}}', c)).toThrow(/function "printf" is not supported/);
  });
  it('tables get a header from the field names', () => {
    const t = renderTable('table {{.Name}}\t{{.Size}}', [
      { Name: 'a', Size: '1' },
      { Name: 'bbbb', Size: '22' },
    ]);
    expect(t.split('\n')[0]).toMatch(/^NAME\s+SIZE$/);
    expect(t).toContain('bbbb   22');
  });
  it('json prints an object per line; no template uses the fallback', () => {
    // docker: one object per line
    expect(
      formatAll('json', [c, c], () => 'x')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l)),
    ).toEqual([c, c]);
    expect(formatAll(undefined, [c], () => 'fallback')).toBe('fallback');
    expect(formatAll('{{.Name}}', [c, { ...c, Name: '/db' }], () => '')).toBe('/web\n/db\n');
  });
});

describe('templates docker users write for networks', () => {
  const c = { NetworkSettings: { Networks: { b: { IPAddress: '10.86.0.3' }, a: { IPAddress: '10.87.0.2' } } } };
  it('(index .Map "key").Field', () => {
    expect(renderTemplate('{{(index .NetworkSettings.Networks "b").IPAddress}}', c)).toBe('10.86.0.3');
  });
  it('range over a map visits its values in key order, with the value as dot', () => {
    expect(renderTemplate('{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}', c)).toBe('10.87.0.2 10.86.0.3 ');
  });
  it('range over a list; over nothing prints nothing', () => {
    expect(renderTemplate('{{range .L}}[{{.}}]{{end}}', { L: ['x', 'y'] })).toBe('[x][y]');
    expect(renderTemplate('a{{range .L}}[{{.}}]{{end}}b', { L: [] })).toBe('ab');
  });
});

describe('data is never template text', () => {
  it('a value that looks like an action is printed as it is', () => {
    expect(renderTemplate('{{.A}} {{range .L}}{{.}}{{end}}', { A: '{{.B}}', B: 'no', L: ['{{.B}}'] })).toBe('{{.B}} {{.B}}');
  });
});
