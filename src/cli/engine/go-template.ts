// The part of Go's text/template that docker's --format users write: text with {{.A.B}},
// {{json .X}}, {{index .Labels "k"}}, {{upper .X}}/{{lower .X}}, and "table" headers.
// Anything else is refused by name rather than printed wrong.
import { TsrunError } from '../../util/errors.js';

type Value = unknown;

function field(v: Value, path: string, expr: string): Value {
  if (path === '.') return v;
  let cur: Value = v;
  for (const part of path.slice(1).split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    if (!(part in (cur as Record<string, unknown>))) throw new TsrunError('ERR_INVALID_ARGUMENT', `template: ${expr}: no field "${part}"`);
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

function show(v: Value): string {
  if (v === undefined || v === null) return '<no value>';
  if (Array.isArray(v)) return `[${v.map(show).join(' ')}]`;
  if (typeof v === 'object') {
    return `map[${Object.entries(v as Record<string, unknown>)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, x]) => `${k}:${show(x)}`)
      .join(' ')}]`;
  }
  return String(v);
}

function args(s: string): string[] {
  return [...s.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)].map((m) => (m[1] !== undefined ? JSON.parse(`"${m[1]}"`) : m[2]!));
}

function evaluate(expr: string, v: Value): string {
  const [fn, ...rest] = args(expr.trim());
  if (!fn) return '';
  if (fn.startsWith('.')) return show(field(v, fn, expr));
  const arg = (i: number) => field(v, rest[i] ?? '.', expr);
  switch (fn) {
    case 'json':
      return JSON.stringify(arg(0) ?? null);
    case 'upper':
      return show(arg(0)).toUpperCase();
    case 'lower':
      return show(arg(0)).toLowerCase();
    case 'index': {
      const m = arg(0) as Record<string, unknown> | undefined;
      return show(m?.[rest[1] ?? '']);
    }
    default:
      throw new TsrunError('ERR_INVALID_ARGUMENT', `template: function "${fn}" is not supported`, {
        hint: 'use {{.Field}}, {{json .Field}}, {{index .Map "key"}}, {{upper|lower .Field}}',
      });
  }
}

/** Render `template` for one value. */
export function renderTemplate(template: string, v: Value): string {
  const t = template.replace(/\\t/g, '\t').replace(/\\n/g, '\n');
  return t.replace(/\{\{-?\s*(.*?)\s*-?\}\}/g, (_, expr: string) => evaluate(expr, v));
}

/** `table ...` templates: a header row from the field names, then one row per value, aligned. */
export function renderTable(template: string, values: Value[]): string {
  const body = template.replace(/^table\s*/, '');
  const header = body.replace(/\{\{\s*\.(\w+)\s*\}\}/g, (_, f: string) => f.replace(/([a-z])([A-Z])/g, '$1 $2').toUpperCase());
  const rows = [header, ...values.map((v) => renderTemplate(body, v))].map((r) => r.replace(/\\t/g, '\t').split('\t'));
  const widths: number[] = [];
  for (const r of rows) {
    for (const [i, c] of r.entries()) widths[i] = Math.max(widths[i] ?? 0, c.length);
  }
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + 3))).join('')).join('\n') + '\n';
}

export function formatAll(template: string | undefined, values: Value[], fallback: () => string): string {
  if (!template) return fallback();
  // docker prints one JSON object per line for --format json (ps, stats, volume ls, …)
  if (template === 'json') return values.map((v) => `${JSON.stringify(v)}\n`).join('');
  if (template.startsWith('table')) return renderTable(template, values);
  return values.map((v) => `${renderTemplate(template, v)}\n`).join('');
}
