// `commit --change 'CMD ["sh"]'`: the Dockerfile instructions docker accepts there, parsed into
// config changes (exec form as JSON, shell form wrapped in /bin/sh -c, as a Dockerfile does).
import type { ConfigChanges } from '../image/commit.js';
import { TsrunError } from '../util/errors.js';

function bad(line: string, why: string): TsrunError {
  return new TsrunError('ERR_INVALID_ARGUMENT', `--change ${line}: ${why}`);
}

function command(line: string, arg: string): string[] {
  if (arg.startsWith('[')) {
    let v: unknown;
    try {
      v = JSON.parse(arg);
    } catch {
      throw bad(line, 'the exec form must be a JSON array of strings');
    }
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw bad(line, 'the exec form must be a JSON array of strings');
    return v;
  }
  return ['/bin/sh', '-c', arg];
}

function pairs(line: string, arg: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of arg.matchAll(/([^\s=]+)=("(?:[^"\\]|\\.)*"|\S*)/g)) out[m[1]!] = m[2]!.startsWith('"') ? JSON.parse(m[2]!) : m[2]!;
  if (!Object.keys(out).length) {
    const [k, ...v] = arg.split(/\s+/);
    if (!k || !v.length) throw bad(line, 'expected KEY=VALUE');
    out[k] = v.join(' ');
  }
  return out;
}

export function parseChanges(lines: string[]): ConfigChanges {
  const c: ConfigChanges = {};
  for (const line of lines) {
    const m = /^\s*([A-Za-z]+)\s+(.*)$/s.exec(line);
    if (!m) throw bad(line, 'expected INSTRUCTION ARGUMENTS');
    const arg = m[2]!.trim();
    switch (m[1]!.toUpperCase()) {
      case 'CMD':
        c.Cmd = command(line, arg);
        break;
      case 'ENTRYPOINT':
        c.Entrypoint = command(line, arg);
        break;
      case 'ENV':
        c.Env = [...(c.Env ?? []), ...Object.entries(pairs(line, arg)).map(([k, v]) => `${k}=${v}`)];
        break;
      case 'LABEL':
        c.Labels = { ...(c.Labels ?? {}), ...pairs(line, arg) };
        break;
      case 'WORKDIR':
        c.WorkingDir = arg;
        break;
      case 'USER':
        c.User = arg;
        break;
      case 'STOPSIGNAL':
        c.StopSignal = arg;
        break;
      case 'EXPOSE':
        c.ExposedPorts = { ...(c.ExposedPorts ?? {}), ...Object.fromEntries(arg.split(/\s+/).map((p) => [p.includes('/') ? p : `${p}/tcp`, {}])) };
        break;
      case 'VOLUME':
        c.Volumes = {
          ...(c.Volumes ?? {}),
          ...Object.fromEntries(
            command(line, arg)
              .slice(arg.startsWith('[') ? 0 : 2)
              .flatMap((v) => v.split(/\s+/))
              .map((v) => [v, {}]),
          ),
        };
        break;
      default:
        throw bad(line, `${m[1]} is not supported (CMD, ENTRYPOINT, ENV, LABEL, WORKDIR, USER, STOPSIGNAL, EXPOSE, VOLUME)`);
    }
  }
  return c;
}
