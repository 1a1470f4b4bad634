// The part of Go's text/template that docker's --format users write: text with {{.A.B}},
// {{json .X}}, {{index .Labels "k"}}, {{(index .M "k").Field}}, {{upper .X}}/{{lower .X}},
// {{range .X}}…{{end}} (over a list, or a map's values in key order, as Go's), and "table"
// headers. Anything else is refused by name rather than printed wrong.
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

/** `(index .M "k").A.B`: the parenthesized pipeline's value, then the fields after it. */
function parenthesized(expr: string, v: Value): Value | undefined {
  const m = /^\((.*)\)((?:\.\w+)*)$/.exec(expr.trim());
  if (!m) return undefined;
  const inner = value(m[1]!, v);
  return m[2] ? field(inner, m[2], expr) : inner;
}

/** The value an expression names (fields, index, parentheses), for range and for printing. */
function value(expr: string, v: Value): Value {
  const p = parenthesized(expr, v);
  if (p !== undefined) return p;
  const [fn, ...rest] = args(expr.trim());
  if (fn?.startsWith('.')) return field(v, fn, expr);
  if (fn === 'index') {
    const m = field(v, rest[0] ?? '.', expr) as Record<string, unknown> | undefined;
    return m?.[rest[1] ?? ''];
  }
  return evaluate(expr, v);
}

function evaluate(expr: string, v: Value): string {
  if (expr.trim().startsWith('(')) return show(value(expr, v));
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
        hint: 'use {{.Field}}, {{json .Field}}, {{index .Map "key"}}, {{(index .Map "key").Field}}, {{upper|lower .Field}}, {{range .List}}…{{end}}',
      });
  }
}

/** Render `template` for one value. */
export function renderTemplate(template: string, v: Value): string {
  const t = template.replace(/\\t/g, '\t').replace(/\\n/g, '\n');
  // One pass: a range block (not nested; its body rendered with the element as dot) or an
  // action. Output is never scanned again, so data that looks like {{…}} stays data.
  return t.replace(
    /\{\{-?\s*range\s+(.*?)\s*-?\}\}([\s\S]*?)\{\{-?\s*end\s*-?\}\}|\{\{-?\s*(.*?)\s*-?\}\}/g,
    (_, expr?: string, body?: string, action?: string) => {
      if (expr === undefined) return evaluate(action ?? '', v);
      const over = value(expr, v);
      const items = Array.isArray(over)
        ? over
        : over !== null && typeof over === 'object'
          ? Object.keys(over as Record<string, unknown>)
              .sort()
              .map((k) => (over as Record<string, unknown>)[k])
          : [];
      return items.map((item) => renderTemplate(body ?? '', item)).join('');
    },
  );
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
