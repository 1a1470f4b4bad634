// The Dockerfile's variable substitution ($VAR, ${VAR}, ${VAR:-word}, ${VAR:+word}, \$ for a
// literal dollar), applied by the builder to the instructions the reference lists (ADD, COPY,
// ENV, EXPOSE, FROM, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR, ARG, ONBUILD is not). RUN, CMD
// and ENTRYPOINT are left to the shell: their ARG and ENV values reach it as environment. Pure.

export function expand(text: string, vars: ReadonlyMap<string, string>): string {
  let out = '';
  for (let i = 0; i < text.length; ) {
    const c = text[i]!;
    if (c === '\\' && text[i + 1] === '$') {
      out += '$';
      i += 2;
      continue;
    }
    if (c !== '$') {
      out += c;
      i++;
      continue;
    }
    if (text[i + 1] === '{') {
      const end = text.indexOf('}', i + 2);
      if (end < 0) {
        out += text.slice(i);
        break;
      }
      const body = text.slice(i + 2, end);
      const m = /^([A-Za-z_][A-Za-z0-9_]*)(?::([-+])(.*))?$/s.exec(body);
      if (!m) {
        out += text.slice(i, end + 1);
      } else {
        const v = vars.get(m[1]!);
        if (m[2] === '-') out += v === undefined || v === '' ? expand(m[3]!, vars) : v;
        else if (m[2] === '+') out += v === undefined || v === '' ? '' : expand(m[3]!, vars);
        else out += v ?? '';
      }
      i = end + 1;
      continue;
    }
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i + 1));
    if (!m) {
      out += c;
      i++;
      continue;
    }
    out += vars.get(m[0]) ?? '';
    i += 1 + m[0].length;
  }
  return out;
}
