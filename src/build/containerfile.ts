// A Containerfile (Dockerfile) as stages of instructions. Parsed by dockerfile-ast, the parser
// VS Code's Docker tooling uses (comments, line continuations, escape and parser directives,
// heredoc-free Dockerfile syntax), so this file only turns its nodes into plain data. Pure.
import { DockerfileParser } from 'dockerfile-ast';
import { TsrunError } from '../util/errors.js';

export const SUPPORTED = [
  'FROM',
  'RUN',
  'COPY',
  'ADD',
  'ENV',
  'ARG',
  'WORKDIR',
  'USER',
  'ENTRYPOINT',
  'CMD',
  'EXPOSE',
  'VOLUME',
  'LABEL',
  'STOPSIGNAL',
  'HEALTHCHECK',
  'ONBUILD',
  'SHELL',
  'MAINTAINER',
] as const;
export type Keyword = (typeof SUPPORTED)[number];

export interface Instruction {
  keyword: Keyword;
  /** 1-based line in the file. */
  line: number;
  /** The arguments as written (continuations joined), without the flags. */
  args: string;
  /** --name=value flags (COPY --from, --chown, --chmod; FROM --platform; RUN --network). */
  flags: Record<string, string>;
  /** The instruction as written, for messages and history ("RUN apt-get install …"). */
  text: string;
}

export interface Stage {
  index: number;
  name?: string;
  /** FROM's image (unexpanded), "scratch" for none. */
  from: string;
  platform?: string;
  line: number;
  instructions: Instruction[];
}

export interface Containerfile {
  /** ARGs before the first FROM (usable in FROM lines). */
  globalArgs: Instruction[];
  stages: Stage[];
}

function fail(line: number, msg: string): TsrunError {
  return new TsrunError('ERR_INVALID_ARGUMENT', `Containerfile line ${line}: ${msg}`);
}

/** Flags are written before the arguments: "--from=build", "--chown=1:1". */
function splitFlags(content: string, line: number): { flags: Record<string, string>; args: string } {
  const flags: Record<string, string> = {};
  let rest = content.trimStart();
  for (;;) {
    const m = /^--([a-z][a-z-]*)(?:=(\S*))?(?:\s+|$)/.exec(rest);
    if (!m) break;
    if (m[2] === undefined) throw fail(line, `flag --${m[1]} needs a value (--${m[1]}=VALUE)`);
    flags[m[1]!] = m[2];
    rest = rest.slice(m[0].length);
  }
  return { flags, args: rest.trim() };
}

export function parseContainerfile(text: string): Containerfile {
  const doc = DockerfileParser.parse(text);
  const out: Containerfile = { globalArgs: [], stages: [] };
  for (const node of doc.getInstructions()) {
    const keyword = node.getKeyword().toUpperCase();
    const line = node.getRange().start.line + 1;
    if (!(SUPPORTED as readonly string[]).includes(keyword)) {
      throw fail(line, `${keyword || node.getInstruction()} is not a supported instruction (${SUPPORTED.join(', ')})`);
    }
    const content = node.getArgumentsContent() ?? '';
    const { flags, args } = splitFlags(content, line);
    // dockerfile-ast keeps the flags of FROM, COPY, ADD, RUN and HEALTHCHECK apart from the arguments.
    const astFlags = (node as unknown as { getFlags?: () => Array<{ getName(): string; getValue(): string | null }> }).getFlags?.() ?? [];
    for (const f of astFlags) {
      const v = f.getValue();
      if (v === null) throw fail(line, `flag --${f.getName()} needs a value (--${f.getName()}=VALUE)`);
      flags[f.getName()] = v;
    }
    const flagText = Object.entries(flags)
      .map(([k, v]) => `--${k}=${v} `)
      .join('');
    const ins: Instruction = { keyword: keyword as Keyword, line, args, flags, text: `${keyword} ${astFlags.length ? flagText : ''}${content}`.trim() };
    if (keyword === 'FROM') {
      const m = /^(\S+)(?:\s+(?:AS|as|As|aS)\s+(\S+))?$/.exec(args);
      if (!m) throw fail(line, 'FROM takes IMAGE [AS NAME]');
      const name = m[2]?.toLowerCase();
      if (name && !/^[a-z][a-z0-9_.-]*$/.test(name)) throw fail(line, `invalid stage name "${m[2]}"`);
      if (name && out.stages.some((s) => s.name === name)) throw fail(line, `stage name "${name}" is used twice`);
      for (const k of Object.keys(flags)) if (k !== 'platform') throw fail(line, `FROM has no --${k} flag`);
      out.stages.push({
        index: out.stages.length,
        ...(name ? { name } : {}),
        from: m[1]!,
        ...(flags.platform ? { platform: flags.platform } : {}),
        line,
        instructions: [],
      });
      continue;
    }
    const stage = out.stages[out.stages.length - 1];
    if (!stage) {
      if (keyword !== 'ARG') throw fail(line, `${keyword} before the first FROM (only ARG may come first)`);
      out.globalArgs.push(ins);
      continue;
    }
    stage.instructions.push(ins);
  }
  if (!out.stages.length) throw new TsrunError('ERR_INVALID_ARGUMENT', 'the Containerfile has no FROM');
  return out;
}

/** Exec form (a JSON array of strings) or undefined for the shell form. */
export function execForm(args: string): string[] | undefined {
  const t = args.trim();
  if (!t.startsWith('[')) return undefined;
  try {
    const v = JSON.parse(t) as unknown;
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v;
  } catch {
    /* not JSON: the shell form, as docker treats it */
  }
  return undefined;
}

/** KEY=VALUE pairs (quotes and backslash escapes as the Dockerfile reference has them), or the legacy "KEY VALUE". */
export function keyValues(args: string, line: number, what: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  if (!/^("[^"]*"|'[^']*'|[^\s=])+=/.test(args)) {
    const m = /^(\S+)\s+([\s\S]*)$/.exec(args.trim());
    if (!m) throw fail(line, `${what} takes KEY=VALUE`);
    return [[m[1]!, m[2]!]];
  }
  let i = 0;
  const s = args;
  while (i < s.length) {
    while (i < s.length && /\s/.test(s[i]!)) i++;
    if (i >= s.length) break;
    let key = '';
    while (i < s.length && s[i] !== '=' && !/\s/.test(s[i]!)) {
      const q = s[i]!;
      if (q === '"' || q === "'") {
        // a quoted key: LABEL "com.example.vendor"="ACME" (the reference's own example)
        i++;
        while (i < s.length && s[i] !== q) key += s[i++];
        if (s[i] !== q) throw fail(line, `${what}: unterminated quote`);
        i++;
      } else key += s[i++];
    }
    if (s[i] !== '=') throw fail(line, `${what}: "${key}" has no value (KEY=VALUE)`);
    i++;
    let value = '';
    while (i < s.length && !/\s/.test(s[i]!)) {
      const c = s[i]!;
      if (c === '"' || c === "'") {
        i++;
        while (i < s.length && s[i] !== c) {
          if (c === '"' && s[i] === '\\' && i + 1 < s.length) {
            // \$ stays escaped for the variable expansion after; other escapes are resolved here
            if (s[i + 1] === '$') value += '\\';
            i++;
          }
          value += s[i++];
        }
        if (s[i] !== c) throw fail(line, `${what}: unterminated quote`);
        i++;
      } else if (c === '\\' && i + 1 < s.length) {
        value += s[i + 1] === '$' ? '\\$' : s[i + 1];
        i += 2;
      } else {
        value += c;
        i++;
      }
    }
    out.push([key, value]);
  }
  return out;
}
